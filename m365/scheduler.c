/* scheduler.c - the KPI schedule thread of `assent serve` (see scheduler.h). */
#include "m365/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db_kpi.h"
#include "db/db_nodes.h"
#include "engine/app.h"
#include "base/cron.h"
#include "m365/kpi.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "m365/trigger.h"
#include "base/tz.h"
#include "m365/m365.h"
#include "m365/tenant_sync.h"

/* Look at the schedules at least this often (KPIs changed elsewhere). */
#define POLL_MS 30000
/* Fire times walked when folding a long downtime into one catch-up. */
#define MAX_FOLD 200000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int running, stopping, woken;
    struct app *app;
    struct db_leader *leader; /* several nodes: only the leader fires (db_leader_try) */
    int leading;
} sched = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* Process start as the scheduler sees it: schedule runs left "running"
 * before it belong to a process that died. */
static int64_t boot_ms;

/* `assent sync` before a KPI whose schedule asks for it. */
static enum as_code sync_tenant(struct app *app, const char *name, struct as_err *err)
{
    struct m365 *m = NULL;
    struct tenant_sync_result res = {0};
    enum as_code rc = m365_new(app->cfg, &m, err);
    if (!rc)
        rc = tenant_sync_run(app, m, NULL, &res, err);
    if (rc)
        as_err_prefix(err, "sync before kpi %s", name);
    else
        LOG_INFO("scheduler", "kpi %s: tenant synced (%s, %ld users)", name, res.status, res.users);
    tenant_sync_result_free(&res);
    m365_free(m);
    return rc;
}

/* Evaluate (and trigger) one KPI for schedule run `run_id`, then close the run. */
static void fire(struct app *app, const char *name, int64_t run_id, int64_t now)
{
    struct as_err err = {0};
    struct kpi *k = NULL;
    json_t *result = NULL;
    enum as_code rc = kpi_load(app, name, &k, &err);
    if (rc)
        goto done;
    if (json_is_true(json_object_get(json_object_get(k->def, "schedule"), "sync"))) {
        /* Judge fresh data: a stale sync would start runs for users whose
         * protocols are off already.  No trigger when the sync fails. */
        rc = sync_tenant(app, name, &err);
        if (rc)
            goto done;
    }
    if (k->trigger) {
        char trig[128];
        snprintf(trig, sizeof trig, "schedule:%s", name);
        struct trigger_opts o = {.max_open = -1, .trigger = trig, .record_value = 1};
        struct trigger_stats st;
        rc = trigger_kpi(app, k, now, &o, &st, &err);
        if (!rc)
            result = trigger_stats_json(&st);
    } else {
        struct kpi_result res;
        rc = kpi_eval(app, k, now, NULL, NULL, NULL, &res, &err);
        if (!rc)
            rc = kpi_record(app, k, &res, &err);
        if (!rc)
            result = json_pack("{s:I, s:I}", "value", (json_int_t)res.value, "exempt",
                               (json_int_t)res.exempt);
        kpi_result_clear(&res);
    }
done:
    if (rc)
        LOG_ERROR("scheduler", "kpi %s: %s", name, err.msg);
    else
        LOG_INFO("scheduler", "kpi %s fired (schedule run %lld)", name, (long long)run_id);
    struct as_err ferr = {0};
    if (db_sched_finish(app->db, run_id, rc == AS_OK, result, rc ? err.msg : NULL, time_now_ms(),
                        &ferr) != AS_OK)
        LOG_ERROR("scheduler", "kpi %s: recording schedule run %lld: %s", name, (long long)run_id,
                  ferr.msg);
    json_decref(result);
    kpi_free(k);
}

static enum as_code recover(struct app *app, int64_t now, int *n_fired, struct as_err *err)
{
    json_t *runs = NULL;
    enum as_code rc = db_sched_interrupted(app->db, &runs, err);
    if (rc)
        return rc;
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        if (json_integer_value(json_object_get(r, "started_at")) >= boot_ms)
            continue; /* someone alive is working on it */
        const char *name = json_string_value(json_object_get(r, "name"));
        int64_t id = json_integer_value(json_object_get(r, "id"));
        LOG_WARN("scheduler", "kpi %s: schedule run %lld was interrupted; running it again", name,
                 (long long)id);
        fire(app, name, id, now);
        if (n_fired)
            (*n_fired)++;
    }
    json_decref(runs);
    return AS_OK;
}

/*
 * For one scheduled KPI: if a fire time has passed since the last handled
 * one, claim the latest such time (folding earlier ones) and fire.  *next
 * receives the next future fire time.
 */
static void consider(struct app *app, const json_t *s, int64_t now, int *n_fired, int64_t *next)
{
    struct as_err err = {0};
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *spec = json_string_value(json_object_get(s, "schedule"));
    const char *zone_name = json_string_value(json_object_get(s, "timezone"));
    const json_t *jlast = json_object_get(s, "sched_last_for");
    int64_t prev = json_is_integer(jlast) ? json_integer_value(jlast) : -1;
    int64_t base = prev >= 0 ? prev : json_integer_value(json_object_get(s, "updated_at"));
    struct cron c;
    struct tz_zone *zone = NULL;
    int64_t due, t;
    if (cron_parse(spec, &c, &err) != AS_OK ||
        tz_load(zone_name && *zone_name ? zone_name : "UTC", &zone, &err) != AS_OK ||
        cron_next(&c, zone, base, &due, &err) != AS_OK) {
        LOG_ERROR("scheduler", "kpi %s: schedule \"%s\": %s", name, spec, err.msg);
        goto out;
    }
    if (due > now) {
        if (due < *next)
            *next = due;
        goto out;
    }
    /* Fold every fire time up to now into the latest one. */
    int64_t missed = 0;
    for (;;) {
        if (cron_next(&c, zone, due, &t, &err) != AS_OK || t > now)
            break;
        due = t;
        if (++missed >= MAX_FOLD)
            break;
    }
    int64_t run_id = 0;
    enum as_code rc = db_sched_claim(app->db, json_integer_value(json_object_get(s, "id")), prev, due,
                                     missed, now, &run_id, &err);
    if (rc == AS_ECONFLICT)
        goto out;
    if (rc) {
        LOG_ERROR("scheduler", "kpi %s: %s", name, err.msg);
        goto out;
    }
    if (missed)
        LOG_WARN("scheduler", "kpi %s: %lld fire time(s) passed while Assent was down; firing once",
                 name, (long long)missed);
    fire(app, name, run_id, now);
    if (n_fired)
        (*n_fired)++;
    if (cron_next(&c, zone, now, &t, &err) == AS_OK && t < *next)
        *next = t;
out:
    tz_free(zone);
}

enum as_code scheduler_run_due(struct app *app, int64_t now, int *n_fired, int64_t *next_due,
                               struct as_err *err)
{
    int fired = 0, leader = 0;
    int64_t next = INT64_MAX;
    if (!boot_ms)
        boot_ms = time_now_ms();
    /* Of several nodes on one database only the leader fires; another takes
     * over when it dies.  The firings the old leader left running are then
     * interrupted: they started before this node began to lead. */
    struct as_err lerr = {0};
    if (db_leader_try(app->db, &sched.leader, "scheduler", &leader, &lerr) != AS_OK)
        LOG_WARN("scheduler", "cannot tell whether this node leads the schedules: %s", lerr.msg);
    if (!leader) {
        if (sched.leading)
            LOG_WARN("scheduler", "another node leads the schedules now");
        sched.leading = 0;
        if (n_fired)
            *n_fired = 0;
        if (next_due)
            *next_due = now + POLL_MS;
        return AS_OK;
    }
    if (!sched.leading) {
        int64_t t = time_now_ms();
        if (t > boot_ms)
            boot_ms = t;
        sched.leading = 1;
    }
    enum as_code rc = recover(app, now, &fired, err);
    if (rc)
        return rc;
    json_t *list = NULL;
    rc = db_sched_list(app->db, &list, err);
    if (rc)
        return rc;
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        consider(app, s, now, &fired, &next);
    }
    json_decref(list);
    if (n_fired)
        *n_fired = fired;
    if (next_due)
        *next_due = next;
    return AS_OK;
}

static void *thread_main(void *arg)
{
    struct app *app = arg;
    pthread_mutex_lock(&sched.lock);
    while (!sched.stopping) {
        pthread_mutex_unlock(&sched.lock);
        struct as_err err = {0};
        int64_t next = INT64_MAX, now = time_now_ms();
        if (scheduler_run_due(app, now, NULL, &next, &err) != AS_OK)
            LOG_ERROR("scheduler", "%s", err.msg);
        int64_t wait_ms = POLL_MS;
        now = time_now_ms();
        if (next != INT64_MAX && next - now < wait_ms)
            wait_ms = next - now < 0 ? 0 : next - now;
        pthread_mutex_lock(&sched.lock);
        if (sched.stopping)
            break;
        if (!sched.woken && wait_ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            while (!sched.stopping && !sched.woken) {
                int w = pthread_cond_timedwait(&sched.cond, &sched.lock, &ts);
                if (w == ETIMEDOUT)
                    break;
            }
        }
        sched.woken = 0;
    }
    pthread_mutex_unlock(&sched.lock);
    return NULL;
}

enum as_code scheduler_start(struct app *app, struct as_err *err)
{
    pthread_mutex_lock(&sched.lock);
    if (sched.running) {
        pthread_mutex_unlock(&sched.lock);
        return as_errf(err, AS_ECONFLICT, "the scheduler is running already");
    }
    if (!boot_ms)
        boot_ms = time_now_ms();
    sched.app = app;
    sched.stopping = 0;
    sched.woken = 0;
    int e = pthread_create(&sched.thread, NULL, thread_main, app);
    if (e) {
        pthread_mutex_unlock(&sched.lock);
        return as_errf(err, AS_EIO, "cannot start the scheduler thread: %s", strerror(e));
    }
    sched.running = 1;
    pthread_mutex_unlock(&sched.lock);
    LOG_INFO("scheduler", "started");
    return AS_OK;
}

void scheduler_stop(void)
{
    pthread_mutex_lock(&sched.lock);
    if (!sched.running) {
        pthread_mutex_unlock(&sched.lock);
        return;
    }
    sched.stopping = 1;
    pthread_cond_broadcast(&sched.cond);
    pthread_mutex_unlock(&sched.lock);
    pthread_join(sched.thread, NULL);
    pthread_mutex_lock(&sched.lock);
    sched.running = 0;
    sched.app = NULL;
    db_leader_release(sched.leader); /* another node may lead at once */
    sched.leader = NULL;
    sched.leading = 0;
    pthread_mutex_unlock(&sched.lock);
    LOG_INFO("scheduler", "stopped");
}

void scheduler_wake(void)
{
    pthread_mutex_lock(&sched.lock);
    sched.woken = 1;
    pthread_cond_broadcast(&sched.cond);
    pthread_mutex_unlock(&sched.lock);
}
