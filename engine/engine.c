/*
 * engine.c - the executor (contract in engine.h).
 *
 * Threads.  One dispatcher thread owns the write path; N worker threads run
 * steps.  They share two in-memory queues under one mutex:
 *
 *   todo: claimed work, leased in SQLite, not started yet   (dispatcher -> workers)
 *   done: finished attempts with their result              (workers -> dispatcher)
 *
 * The dispatcher loop takes everything in `done`, and in ONE transaction
 * records each result (the execution's row, its events, the next step's row
 * or the end of the run) and claims more due work, commits, and only then
 * puts the claims on `todo`.  So results of many steps share one commit
 * (group commit), and a result is durable together with its successor.
 *
 * The dispatcher's commits do not checkpoint the WAL: a checkpointer thread
 * with its own connection does (db/db_wal.h), so that copying the log into
 * the database and its fsyncs do not stall the one writer.
 *
 * Claims are prefetched beyond the idle workers (a few per worker when steps
 * are fast), which is what makes batches large; a queued claim whose lease
 * has become too short to run the step safely is handed back unstarted.
 *
 * Workers (engine_worker.c) read what a step may refer to (run input,
 * earlier outputs) through reader connections, resolve the step's ${...}
 * parameters, call execute(), and serialise the result to text, so the
 * dispatcher's transaction only binds and steps prepared statements.
 * Starting and steering runs is in engine_runs.c.
 */
#include "engine/engine.h"
#include "engine/engine_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_events.h"
#include "db/db_execs.h"
#include "db/db_nodes.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/jsonbuf.h"
#include "base/lease_owner.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "engine/step.h"

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *engine_dump(const json_t *v)
{
    /* Compact, in the objects' own key order: the audit hash covers the stored
     * text exactly, so no canonical (sorted) form is needed, and sorting was a
     * large part of a step's cost. */
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Hex SHA-256 of a string into out[65]; 0 on success. */
void engine_work_free(struct work *w)
{
    if (!w)
        return;
    json_decref(w->scope);
    db_claim_clear(&w->c);
    free(w->load_error);
    free(w->params);
    free(w->output);
    free(w->wait_state);
    free(w->error);
    free(w->event_type);
    free(w->event_data);
    for (size_t i = 0; i < w->n_events; i++) {
        free(w->events[i].type);
        free(w->events[i].data);
    }
    free(w->events);
    free(w);
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Wait on c for at most ms (monotonic clock). */
static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

struct owner_list {
    char **v;
    size_t n, cap;
    const char *self;
};

static int collect_dead_owner(void *ud, const char *owner)
{
    struct owner_list *l = ud;
    if (!lease_owner_is_dead(l->self, owner))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return 1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(owner);
    if (l->v[l->n])
        l->n++;
    return 0;
}

/* Expire the leases of dead processes of this host, so their steps are recovered now. */
static enum as_code expire_dead_owners(struct engine *e, struct as_err *err)
{
    struct db *db = e->app->db;
    struct db_conn *conn;
    struct owner_list l = {.self = e->owner};
    enum as_code rc = db_read_begin(db, &conn, err);
    if (rc)
        return rc;
    rc = db_exec_lease_owners(conn, collect_dead_owner, &l, err);
    db_read_end(db, conn);
    if (rc || l.n == 0)
        goto out;
    rc = db_write_begin(db, &conn, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < l.n && !rc; i++) {
        int64_t n = 0;
        rc = db_exec_expire_owner(conn, l.v[i], &n, err);
        if (!rc)
            LOG_WARN("engine", "process %s is gone: %" PRId64 " of its steps will run again",
                     l.v[i], n);
    }
    rc = db_write_end(db, rc, err);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

/* ---- workflow versions, cached by hash ------------------------------------ */

/*
 * The workflow stored under hash, parsed once per process.  Returns NULL
 * and sets *error (borrowed, lives as long as e) when it cannot be loaded.
 */
static const struct workflow *wf_cached(struct engine *e, const char *hash, const char **error)
{
    pthread_mutex_lock(&e->cache_lock);
    struct wf_cache_entry *ce;
    for (ce = e->cache; ce; ce = ce->next)
        if (strcmp(ce->hash, hash) == 0)
            break;
    if (!ce) {
        ce = calloc(1, sizeof *ce);
        if (!ce) {
            pthread_mutex_unlock(&e->cache_lock);
            *error = "out of memory";
            return NULL;
        }
        snprintf(ce->hash, sizeof ce->hash, "%s", hash);
        struct as_err err = {0};
        struct db_conn *conn;
        char *def = NULL;
        enum as_code rc = db_read_begin(e->app->db, &conn, &err);
        if (!rc) {
            rc = db_workflow_get(conn, hash, &def, &err);
            db_read_end(e->app->db, conn);
        }
        if (!rc) {
            char origin[80];
            snprintf(origin, sizeof origin, "db:%.12s", hash);
            rc = wf_load_string(def, origin, &ce->wf, NULL, &err);
        }
        free(def);
        if (rc) {
            char msg[1200];
            snprintf(msg, sizeof msg, "workflow version %.12s cannot be loaded: %s", hash,
                     err.msg[0] ? err.msg : as_strerror(rc));
            ce->error = strdup(msg);
            LOG_ERROR("engine", "%s", msg);
            if (rc == AS_EDB) {
                /* A database hiccup is not a property of the version: retry next time. */
                free(ce->error);
                free(ce);
                pthread_mutex_unlock(&e->cache_lock);
                *error = "the workflow definition could not be read from the database";
                return NULL;
            }
        }
        ce->next = e->cache;
        e->cache = ce;
    }
    pthread_mutex_unlock(&e->cache_lock);
    *error = ce->error ? ce->error : "out of memory";
    return ce->wf;
}

/* ---- dispatcher: recording results and claiming work ----------------------- */

enum as_code engine_event_json(struct db_conn *conn, struct db_event_chain *chain, int64_t run_id,
                               int64_t exec_id, const char *type, json_t *data, int64_t now,
                               struct as_err *err)
{
    char *text = engine_dump(data);
    json_decref(data);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc =
        db_event_append_chained(conn, chain, run_id, exec_id, type, text, NULL, now, err);
    free(text);
    return rc;
}

/* What one transaction claims, in order; published to the workers after its commit. */
struct claims {
    struct work *head, **tail;
    size_t n;
    size_t want; /* at most this many */
    size_t idle; /* the first `idle` go straight to a free worker, the rest are queued */
};

static void claims_add(struct claims *cl, struct work *w)
{
    *cl->tail = w;
    cl->tail = &w->next;
    cl->n++;
}

static void claims_free(struct claims *cl)
{
    while (cl->head) {
        struct work *nx = cl->head->next;
        engine_work_free(cl->head);
        cl->head = nx;
    }
    cl->tail = &cl->head;
    cl->n = 0;
}

/* Lease for a claim: the step's timeout plus the configured margin. */
static int64_t lease_for(struct engine *e, const struct wf_step *step, int64_t now)
{
    int64_t timeout = step ? step->timeout_ms : WF_DEFAULT_TIMEOUT_MS;
    return now + timeout + e->lease_margin_ms;
}

/* End a run (succeeded/failed) with its event. */
static enum as_code end_run(struct engine *e, struct db_conn *conn, struct work *w,
                            const char *status, const char *error, int64_t now, int *ended,
                            struct as_err *err)
{
    enum as_code rc = db_run_set_status(conn, w->c.run_id, status, error, now, err);
    if (rc)
        return rc;
    struct jsonbuf b = {0};
    jsonbuf_add(&b, "{\"step\":");
    jsonbuf_add_str(&b, w->c.step);
    if (error) {
        jsonbuf_add(&b, ",\"error\":");
        jsonbuf_add_str(&b, error);
    }
    jsonbuf_add(&b, "}");
    char *data = jsonbuf_take(&b);
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    char type[32];
    snprintf(type, sizeof type, "run.%s", status);
    (*ended)++;
    rc = db_event_append_chained(conn, &e->chain, w->c.run_id, 0, type, data, NULL, now, err);
    free(data);
    return rc;
}

/*
 * After a step ended with `outcome`: insert its successor or end the run.
 * While this transaction may claim more, the successor is inserted already
 * claimed, with the finished step's scope: the run goes on without a
 * round trip through the claim query or a re-read of its state.
 */
static enum as_code schedule_next(struct engine *e, struct db_conn *conn, struct work *w,
                                  const char *outcome, int64_t now, int *ended,
                                  struct claims *cl, struct as_err *err)
{
    const struct wf_step *next = w->wf && w->step ? wf_next(w->wf, w->step, outcome) : NULL;
    if (!next) {
        if (strcmp(outcome, "error") == 0) {
            char msg[1300];
            snprintf(msg, sizeof msg, "step %s failed: %s", w->c.step,
                     w->error ? w->error : "failed");
            return end_run(e, conn, w, "failed", msg, now, ended, err);
        }
        return end_run(e, conn, w, "succeeded", NULL, now, ended, err);
    }
    if (cl->n >= cl->want)
        return db_exec_insert(conn, w->c.run_id, next->name, now, now, NULL, err);
    struct work *nw = calloc(1, sizeof *nw);
    if (!nw)
        return as_errf(err, AS_ENOMEM, "out of memory");
    /* The scope lists every step the run has ended; a step it lacks was never
     * reached (a run has one open step at a time), so this is its first visit. */
    json_t *seen = json_object_get(w->scope, "steps");
    int visit_hint = seen && !json_object_get(seen, next->name) ? 1 : 0;
    enum as_code rc =
        db_exec_insert_claimed(conn, w->c.run_id, next->name, visit_hint, now, e->owner,
                               lease_for(e, next, now), cl->n >= cl->idle, &nw->c, err);
    if (rc) {
        free(nw);
        return rc;
    }
    memcpy(nw->c.workflow_hash, w->c.workflow_hash, sizeof nw->c.workflow_hash);
    nw->c.dry_run = w->c.dry_run;
    nw->wf = w->wf;
    nw->step = next;
    nw->scope = w->scope; /* moved: w is done with it */
    w->scope = NULL;
    claims_add(cl, nw);
    return AS_OK;
}

/*
 * Write one finished attempt.  AS_ECONFLICT (stale claim: cancelled, or
 * re-claimed elsewhere after its lease expired) writes nothing and is not
 * an error for the transaction; anything else is.
 */
static enum as_code record(struct engine *e, struct db_conn *conn, struct work *w, int64_t now,
                           int *ended, struct claims *cl, struct as_err *err)
{
    enum as_code rc;
    if (w->kind == WK_RELEASE)
        return db_exec_release(conn, w->c.exec_id, e->owner, w->c.attempt, err);

    static const char *const status[] = {"", "succeeded", "waiting", "ready", "failed"};
    struct db_exec_result r = {
        .exec_id = w->c.exec_id,
        .owner = e->owner,
        .attempt = w->c.attempt,
        .status = status[w->kind],
        .due_at = w->due_at,
        .params = w->params,
        .output = w->output,
        .outcome = (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED) ? w->outcome : NULL,
        .error = w->error,
        .wait_state = w->wait_state,
        .finished_at = w->finished_ms,
    };
    /* settle() could not build the step's event (out of memory): try again
     * now, and if it still fails, fail this transaction (the dispatcher
     * retries it, then records the step as failed) rather than write the
     * result without its event. */
    if ((!w->event_type || !w->event_data) && engine_work_event(w) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory building the event of step %s", w->c.step);
    char *held = NULL; /* a resume that came while the step ran: its wait ends at once */
    rc = db_exec_record_held(conn, &r, &held, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < w->n_events; i++) {
        const char *dg = w->events[i].digest[0] ? w->events[i].digest : NULL;
        rc = db_event_append_chained(conn, &e->chain, w->c.run_id, w->c.exec_id,
                                     w->events[i].type, w->events[i].data, dg, now, err);
        if (rc == AS_EINVAL) {
            /* A step named its event badly: keep the event under a generic type. */
            json_t *d = json_pack("{s:s, s:o}", "type", w->events[i].type, "data",
                                  engine_parse_text(w->events[i].data));
            rc = engine_event_json(conn, &e->chain, w->c.run_id, w->c.exec_id, "step.event", d, now,
                            err);
        }
        if (rc)
            return rc;
    }
    rc = db_event_append_chained(conn, &e->chain, w->c.run_id, w->c.exec_id, w->event_type,
                                 w->event_data, w->event_digest[0] ? w->event_digest : NULL, now,
                                 err);
    if (!rc && held) {
        /* The step is ready again with the held payload as its resume; the run
         * stays running and the claim below may take it in this transaction. */
        struct jsonbuf b = {0};
        jsonbuf_add(&b, "{\"payload\":");
        jsonbuf_add(&b, held);
        jsonbuf_add(&b, ",\"held\":true}");
        char *data = jsonbuf_take(&b);
        rc = data ? db_event_append_chained(conn, &e->chain, w->c.run_id, w->c.exec_id,
                                            "step.resumed", data, NULL, now, err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        free(data);
        free(held);
        return rc;
    }
    free(held);
    if (rc)
        return rc;
    switch (w->kind) {
    case WK_SUCCEEDED:
        return schedule_next(e, conn, w, w->outcome, now, ended, cl, err);
    case WK_FAILED:
        return schedule_next(e, conn, w, "error", now, ended, cl, err);
    case WK_WAITING:
        rc = db_run_set_status(conn, w->c.run_id, "waiting", NULL, now, err);
        return rc == AS_ECONFLICT ? AS_OK : rc;
    default:
        return AS_OK;
    }
}

/* Claim due executions until cl->want. */
static enum as_code claim(struct engine *e, struct db_conn *conn, int64_t now, struct claims *cl,
                          struct as_err *err)
{
    size_t want = cl->want > cl->n ? cl->want - cl->n : 0;
    if (!want)
        return AS_OK;
    struct db_claim *found = calloc(want, sizeof *found);
    size_t n = 0;
    enum as_code rc = AS_OK;
    if (!found)
        return as_errf(err, AS_ENOMEM, "out of memory");
    rc = db_exec_due(conn, now, e->owner, want, found, &n, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct work *w = calloc(1, sizeof *w);
        if (!w) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        w->c = found[i];
        memset(&found[i], 0, sizeof found[i]);
        const char *load_error = NULL;
        w->wf = wf_cached(e, w->c.workflow_hash, &load_error);
        if (w->wf) {
            w->step = wf_step_find(w->wf, w->c.step);
            if (!w->step) {
                char msg[300];
                snprintf(msg, sizeof msg, "workflow %s has no step \"%s\"", w->wf->name,
                         w->c.step);
                w->load_error = strdup(msg);
            }
        } else {
            w->load_error = xstrdup(load_error);
        }
        /* Claims beyond the idle workers wait in the queue: losing one of those
         * in a crash says nothing about the step (see db_exec_take). */
        w->c.queued = cl->n >= cl->idle;
        rc = db_exec_take(conn, &w->c, e->owner, now, lease_for(e, w->step, now), err);
        if (rc == AS_ECONFLICT) {
            engine_work_free(w);
            rc = AS_OK;
            continue;
        }
        claims_add(cl, w);
        if (!rc && strcmp(w->c.prev_status, "waiting") == 0) {
            rc = db_run_set_status(conn, w->c.run_id, "running", NULL, now, err);
            if (rc == AS_ECONFLICT)
                rc = AS_OK;
        }
        if (!rc && w->c.recovered) {
            LOG_WARN("engine",
                     "run %" PRId64 " step %s: the claim of %s was lost; running it again "
                     "(attempt %d, same idempotency key)",
                     w->c.run_id, w->c.step, w->c.prev_owner ? w->c.prev_owner : "?",
                     w->c.attempt);
            rc = engine_event_json(conn, &e->chain, w->c.run_id, w->c.exec_id, "step.recovered",
                            json_pack("{s:s, s:i, s:i, s:s}", "step", w->c.step, "attempt",
                                      w->c.attempt, "recoveries", w->c.recoveries,
                                      "previous_owner", w->c.prev_owner ? w->c.prev_owner : ""),
                            now, err);
        }
        if (rc)
            goto out;
    }
out:
    for (size_t i = 0; i < n; i++)
        db_claim_clear(&found[i]);
    free(found);
    return rc;
}

/* ---- writes of others (engine_write_submit) ---------------------------------- */

static void write_reset(struct engine_write *w)
{
    free(w->resume_payload);
    free(w->end_output);
    w->resume_payload = w->end_output = NULL;
    w->resume_exec_id = 0;
    w->end_outcome[0] = '\0';
    w->rc = AS_OK;
    memset(&w->err, 0, sizeof w->err);
}

enum as_code engine_write_resume(struct engine_write *w, int64_t exec_id, const char *payload,
                                 const char *outcome, const char *output, struct as_err *err)
{
    free(w->resume_payload);
    free(w->end_output);
    w->resume_exec_id = exec_id;
    w->resume_payload = xstrdup(payload ? payload : "null");
    w->end_output = outcome ? xstrdup(output) : NULL;
    snprintf(w->end_outcome, sizeof w->end_outcome, "%s", outcome ? outcome : "");
    if (!w->resume_payload || (outcome && output && !w->end_output))
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

/* db_exec_end_waiting's check: end the step only when its workflow version
 * is loaded and has the step; else it runs again, as any resumed step. */
struct end_check {
    struct engine *e;
    struct work *t;
};

static int end_accept(void *ud, const struct db_claim *found)
{
    struct end_check *ck = ud;
    const char *load_error = NULL;
    ck->t->wf = wf_cached(ck->e, found->workflow_hash, &load_error);
    ck->t->step = ck->t->wf ? wf_step_find(ck->t->wf, found->step) : NULL;
    return ck->t->step != NULL;
}

/*
 * A write asked for a resume: end the waiting step with the result the
 * write gave (as if it had run again and returned it) and schedule what
 * follows, or resume it to run again.
 */
static enum as_code resume_or_end(struct engine *e, struct db_conn *conn, struct engine_write *w,
                                  int64_t now, int *ended, struct claims *cl, struct as_err *err)
{
    enum as_code rc;
    if (w->end_outcome[0]) {
        struct work *t = calloc(1, sizeof *t);
        if (!t)
            return as_errf(err, AS_ENOMEM, "out of memory");
        struct end_check ck = {e, t};
        struct db_exec_end end = {
            .exec_id = w->resume_exec_id, .resume = w->resume_payload,
            .outcome = w->end_outcome, .output = w->end_output, .now = now,
            .accept = end_accept, .ud = &ck,
        };
        rc = db_exec_end_waiting(conn, &end, &t->c, err);
        if (rc == AS_OK) {
            t->kind = WK_SUCCEEDED;
            snprintf(t->outcome, sizeof t->outcome, "%s", w->end_outcome);
            t->started_ms = t->finished_ms = now;
            struct jsonbuf b = {0};
            jsonbuf_add(&b, "{\"payload\":");
            jsonbuf_add(&b, w->resume_payload);
            jsonbuf_add(&b, "}");
            char *resumed = jsonbuf_take(&b);
            if (!resumed || engine_work_event(t) != 0)
                rc = as_errf(err, AS_ENOMEM, "out of memory");
            /* The events a resume and the step's run again would have written. */
            if (!rc)
                rc = db_event_append_chained(conn, &e->chain, t->c.run_id, t->c.exec_id,
                                             "step.resumed", resumed, NULL, now, err);
            if (!rc)
                rc = db_event_append_chained(conn, &e->chain, t->c.run_id, t->c.exec_id,
                                             t->event_type, t->event_data,
                                             t->event_digest[0] ? t->event_digest : NULL, now,
                                             err);
            free(resumed);
            if (!rc && wf_next(t->wf, t->step, t->outcome)) {
                rc = db_run_set_status(conn, t->c.run_id, "running", NULL, now, err);
                if (rc == AS_ECONFLICT)
                    rc = AS_OK;
            }
            if (!rc)
                rc = schedule_next(e, conn, t, t->outcome, now, ended, cl, err);
            engine_work_free(t);
            e->write_resumed = 1; /* a successor not claimed here is claimed next */
            return rc;
        }
        engine_work_free(t);
        if (rc != AS_ECONFLICT && rc != AS_EUNSUPPORTED)
            return rc;
        memset(err, 0, sizeof *err); /* not waiting: resume it as any other step */
    }
    json_t *payload = json_loads(w->resume_payload, JSON_DECODE_ANY, NULL);
    rc = db_exec_resume(conn, w->resume_exec_id, payload, err);
    json_decref(payload);
    /* db_exec_resume appended its event past the chain cache. */
    memset(&e->chain, 0, sizeof e->chain);
    if (rc == AS_ECONFLICT) /* the step has ended: nobody is left to wake */
        return AS_OK;
    if (rc == AS_OK)
        e->write_resumed = 1;
    return rc;
}

/* Run the writes in the open transaction, each within a savepoint: a
 * write's failure is its own (w->rc); the transaction fails only when a
 * savepoint itself does. */
static enum as_code run_writes(struct engine *e, struct db_conn *conn, struct engine_write *ws,
                               int64_t now, int *ended, struct claims *cl, struct as_err *err)
{
    for (struct engine_write *w = ws; w; w = w->next) {
        write_reset(w);
        enum as_code rc = db_savepoint_begin(conn, err);
        if (rc)
            return rc;
        w->rc = w->apply(w, conn, &e->chain, &w->err);
        if (!w->rc && w->resume_exec_id)
            w->rc = resume_or_end(e, conn, w, now, ended, cl, &w->err);
        rc = db_savepoint_end(conn, w->rc, err);
        if (w->rc)
            memset(&e->chain, 0, sizeof e->chain); /* its events were undone */
        else if (rc)
            return rc;
    }
    return AS_OK;
}

/*
 * One group-commit transaction: record every result in `done` (a list),
 * then claim up to `want` (successors of the recorded steps first).  On
 * success *claimed and *n_claimed hold the claims and *next_due is refreshed
 * when fewer than wanted were found.  On failure nothing is written and the
 * items of `done` can be recorded again (a successor's scope may be gone:
 * it is then read from the database).
 */
static enum as_code txn(struct engine *e, struct work *done, struct engine_write *writes,
                        size_t want, size_t idle, struct work **claimed, size_t *n_claimed,
                        int64_t *next_due, int *ended, struct as_err *err)
{
    struct db *db = e->app->db;
    struct db_conn *conn;
    int64_t now = time_now_ms();
    struct claims cl = {.want = want, .idle = idle};
    cl.tail = &cl.head;
    *claimed = NULL;
    *n_claimed = 0;
    *ended = 0;
    enum as_code rc = db_write_begin(db, &conn, err);
    if (rc)
        return rc;
    memset(&e->chain, 0, sizeof e->chain);
    for (struct work *w = done; w; w = w->next) {
        rc = record(e, conn, w, now, ended, &cl, err);
        if (rc == AS_ECONFLICT) {
            LOG_WARN("engine", "run %" PRId64 " step %s: result discarded: %s", w->c.run_id,
                     w->c.step, err->msg);
            rc = AS_OK;
        }
        if (rc)
            goto end;
    }
    /* Writes of others (decisions) after the results and before the claims,
     * so that a step they resume can be claimed in this very transaction. */
    rc = run_writes(e, conn, writes, now, ended, &cl, err);
    if (rc)
        goto end;
    if (want) {
        rc = claim(e, conn, now, &cl, err);
        if (rc)
            goto end;
        if (cl.n < want) {
            rc = db_exec_next_due(conn, e->owner, next_due, err);
            if (rc)
                goto end;
        } else {
            *next_due = now;
        }
    }
end:
    /* Commits when all went well; otherwise (or when the commit itself
     * fails) nothing was written, so the claims are dropped and `done` is
     * left to be recorded again. */
    rc = db_write_end(db, rc, err);
    if (rc) {
        claims_free(&cl);
        *ended = 0;
        return rc;
    }
    *claimed = cl.head;
    *n_claimed = cl.n;
    return AS_OK;
}

static size_t capacity(struct engine *e)
{
    /* Queue claims beyond the idle workers while the queue drains quickly. */
    double per = e->avg_step_ms > 0.01 ? e->avg_step_ms : 0.01;
    double extra = (double)e->n_workers * QUEUE_TARGET_MS / per;
    double cap = (double)e->n_workers * PREFETCH_PER_WORKER;
    if (extra > cap)
        extra = cap;
    return (size_t)e->n_workers + (size_t)extra;
}

/* ---- nodes ------------------------------------------------------------------ */

/*
 * This engine is alive (db_nodes.h), a third of node_timeout apart: beaten
 * by the dispatcher, the thread that records results, so a node whose write
 * path is stuck for longer than node_timeout is taken for dead and its
 * claims are run elsewhere (its late results are then refused, and the
 * steps' idempotency keys keep their effects from repeating).
 */
static enum as_code beat(struct engine *e, struct as_err *err)
{
    int64_t clock = 0, before = time_now_ms();
    enum as_code rc = db_node_heartbeat(e->app->db, e->owner, e->node_timeout_ms, &clock, err);
    e->next_beat_mono = time_mono_ms() + e->node_timeout_ms / 3;
    int64_t skew = clock - before;
    if (!rc && (skew > 5000 || skew < -5000))
        LOG_WARN("engine", "this host's clock is %+" PRId64 " ms off the database's; leases "
                 "are measured by the database's, due times by each node's own",
                 -skew);
    return rc;
}

static void beat_if_due(struct engine *e)
{
    if (time_mono_ms() < e->next_beat_mono)
        return;
    struct as_err err = {0};
    if (beat(e, &err) != AS_OK)
        LOG_ERROR("engine", "node heartbeat: %s", err.msg);
}

/* Another node committed work that may be due: look now (db_wakeups_start). */
static void wake_from_store(void *ud)
{
    engine_wake(ud);
}

/* The dispatcher's own state between rounds. */
struct disp {
    struct work *pending, **pending_tail; /* results not yet written */
    struct engine_write *writes;          /* engine_write_submit's, for the next transaction */
    int64_t next_due, next_poll, retry_at;
    int failures;                         /* write rounds failed in a row */
};

/* Under e->lock: take finished results; on stop, hand back queued claims unstarted. */
static void take_finished(struct engine *e, struct disp *d)
{
    if (e->done_head) {
        *d->pending_tail = e->done_head;
        d->pending_tail = &e->done_tail->next;
        e->done_head = e->done_tail = NULL;
    }
    if (e->stopping && e->todo_head) {
        for (struct work *w = e->todo_head; w; w = w->next)
            w->kind = WK_RELEASE;
        *d->pending_tail = e->todo_head;
        d->pending_tail = &e->todo_tail->next;
        e->todo_head = e->todo_tail = NULL;
        e->n_todo = 0;
    }
    if (e->writes_head && !d->writes) {
        d->writes = e->writes_head;
        e->writes_head = e->writes_tail = NULL;
    }
}

/* Tell the writers of a transaction that has ended (rc: its result; their
 * own, w->rc, when it committed).  Not under e->lock: done may take other
 * locks (the web server's). */
static void writes_done(struct engine_write *ws, enum as_code rc, const struct as_err *err)
{
    while (ws) {
        struct engine_write *nx = ws->next;
        enum as_code wrc = rc ? rc : ws->rc;
        const struct as_err *werr = rc ? err : &ws->err;
        free(ws->resume_payload);
        free(ws->end_output);
        ws->resume_payload = ws->end_output = NULL;
        ws->next = NULL;
        ws->done(ws, wrc, werr); /* may free ws */
        ws = nx;
    }
}

/* How often to look for other processes' work: rarely when their commits
 * wake the dispatcher (then looking is the fallback), else often. */
static int64_t poll_ms(const struct engine *e)
{
    return e->wakeups ? POLL_WOKEN_MS : POLL_MS;
}

/* Only the poll timer fired: look with a read before taking the write lock.
 * 1 when something is due now. */
static int poll_due(struct engine *e, struct disp *d, int64_t now)
{
    struct as_err err = {0};
    struct db_conn *conn;
    d->next_poll = now + poll_ms(e);
    if (db_read_begin(e->app->db, &conn, &err) == AS_OK) {
        if (db_exec_next_due(conn, e->owner, &d->next_due, &err) != AS_OK)
            d->next_due = now;
        db_read_end(e->app->db, conn);
    }
    return d->next_due <= now;
}

/* The group commit failed: find the result that cannot be written, one
 * transaction each.  Those written are freed; AS_EDB when any is left. */
static enum as_code write_one_by_one(struct engine *e, struct disp *d, int *ended,
                                     struct as_err *err)
{
    LOG_WARN("engine", "group commit failed (%s); writing results one by one", err->msg);
    struct work *keep = NULL, **keep_tail = &keep;
    while (d->pending) {
        struct work *w = d->pending;
        d->pending = w->next;
        w->next = NULL;
        struct work *none = NULL;
        size_t n0 = 0;
        int64_t nd = d->next_due;
        int en = 0;
        if (txn(e, w, NULL, 0, 0, &none, &n0, &nd, &en, err) == AS_OK) {
            *ended += en;
            engine_work_free(w);
        } else {
            *keep_tail = w;
            keep_tail = &w->next;
        }
    }
    d->pending = keep;
    /* Not keep_tail when nothing is kept: it would point at this frame. */
    d->pending_tail = keep ? keep_tail : &d->pending;
    return keep ? AS_EDB : AS_OK;
}

/* Every pending result is written: free them, keeping the step time average. */
static void forget_written(struct engine *e, struct disp *d)
{
    while (d->pending) {
        struct work *nx = d->pending->next;
        double ms = (double)(d->pending->finished_ms - d->pending->started_ms);
        if (d->pending->kind != WK_RELEASE)
            e->avg_step_ms = e->avg_step_ms * 0.9 + ms * 0.1;
        engine_work_free(d->pending);
        d->pending = nx;
    }
    d->pending_tail = &d->pending;
}

/* Writing failed again: after three rounds, a result that cannot be written
 * even alone is recorded as a failure of its step instead, so the run is
 * not stuck. */
static void write_failed(struct disp *d, const struct as_err *err)
{
    d->failures++;
    d->retry_at = time_now_ms() + RECORD_RETRY_MS;
    LOG_ERROR("engine", "cannot write step results (try %d): %s", d->failures, err->msg);
    if (!d->pending || d->failures < 3)
        return;
    for (struct work *w = d->pending; w; w = w->next) {
        if (w->kind == WK_RELEASE || w->record_failures++ < 2)
            continue;
        free(w->output);
        free(w->wait_state);
        w->output = w->wait_state = NULL;
        w->kind = WK_FAILED;
        snprintf(w->outcome, sizeof w->outcome, "error");
        engine_work_set_error(w, "the engine could not record this step's result: %s", err->msg);
        /* The event must say what is recorded now (record() builds it
         * again if this runs out of memory). */
        (void)engine_work_event(w);
    }
}

/* Under e->lock: queue the new claims for the workers and announce ended runs. */
static void publish(struct engine *e, struct work *claimed, size_t n_claimed, int ended)
{
    if (claimed) {
        struct work *last = claimed;
        while (last->next)
            last = last->next;
        if (e->todo_tail)
            e->todo_tail->next = claimed;
        else
            e->todo_head = claimed;
        e->todo_tail = last;
        e->n_todo += n_claimed;
        if (n_claimed == 1)
            pthread_cond_signal(&e->work_cond);
        else
            pthread_cond_broadcast(&e->work_cond);
    }
    if (ended) {
        e->stats.runs_ended += (uint64_t)ended;
        e->ended_gen++;
        pthread_cond_broadcast(&e->ended_cond);
    }
}

/* One write round: the pending results and, when try_claim, up to `want`
 * new claims in one transaction.  Returns with e->lock held. */
static void write_round(struct engine *e, struct disp *d, int try_claim, size_t want,
                        size_t idle, int64_t now)
{
    struct as_err err = {0};
    struct work *claimed = NULL;
    size_t n_claimed = 0;
    int ended = 0;
    if (try_claim)
        d->next_poll = now + poll_ms(e);
    enum as_code rc = txn(e, d->pending, d->writes, try_claim ? want : 0, idle, &claimed,
                          &n_claimed, &d->next_due, &ended, &err);
    if (d->writes) {
        struct engine_write *ws = d->writes;
        d->writes = NULL;
        enum as_code wrc = rc;
        struct as_err werr = err;
        if (wrc) {
            /* The group failed: the writes alone, in a transaction of their own. */
            struct work *none = NULL;
            size_t n0 = 0;
            int64_t nd = d->next_due;
            int en = 0;
            memset(&werr, 0, sizeof werr);
            wrc = txn(e, NULL, ws, 0, 0, &none, &n0, &nd, &en, &werr);
            ended += en;
        }
        writes_done(ws, wrc, &werr);
    }
    if (rc && d->pending && d->pending->next)
        rc = write_one_by_one(e, d, &ended, &err);
    else if (!rc)
        forget_written(e, d);
    if (rc)
        write_failed(d, &err);
    else
        d->failures = 0;
    pthread_mutex_lock(&e->lock);
    e->stats.transactions += rc == AS_OK;
    if (e->write_resumed) {
        e->write_resumed = 0;
        e->wake = 1; /* a resumed step, or a successor not claimed above */
    }
    publish(e, claimed, n_claimed, ended);
}

/* Under e->lock: 1 when the dispatcher should stop; else wait until a
 * result, a wake-up, a due claim with room for it, a write retry or the
 * end of the grace period. */
static int idle_wait(struct engine *e, struct disp *d)
{
    if (e->stopping && !e->done_head && !e->todo_head &&
        ((!d->pending && e->n_busy == 0) || time_mono_ms() >= e->grace_deadline_mono))
        return 1;
    if (e->done_head || e->wake || e->writes_head || (e->stopping && e->todo_head))
        return 0;
    int64_t now = time_now_ms();
    int64_t wait = poll_ms(e);
    /* A due claim matters only with room for it; else a finishing worker wakes us. */
    if (!e->stopping && capacity(e) > e->n_todo + e->n_busy && d->next_due - now < wait)
        wait = d->next_due - now;
    if (d->pending && d->retry_at - now < wait)
        wait = d->retry_at - now;
    if (e->stopping && e->grace_deadline_mono - time_mono_ms() < wait)
        wait = e->grace_deadline_mono - time_mono_ms();
    if (e->next_beat_mono - time_mono_ms() < wait)
        wait = e->next_beat_mono - time_mono_ms();
    if (wait > 0)
        cond_wait_ms(&e->disp_cond, &e->lock, wait);
    return 0;
}

static void *dispatcher_main(void *arg)
{
    struct engine *e = arg;
    pthread_setname_np(pthread_self(), "assent-dispatch"); /* for top -H, benchmarks */
    struct disp d = {0};
    d.pending_tail = &d.pending;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        take_finished(e, &d);
        int stopping = e->stopping;
        int woken = e->wake;
        e->wake = 0;
        size_t inflight = e->n_todo + e->n_busy;
        size_t idle = (size_t)e->n_workers > inflight ? (size_t)e->n_workers - inflight : 0;
        pthread_mutex_unlock(&e->lock);

        beat_if_due(e);
        int64_t now = time_now_ms();
        size_t cap = capacity(e);
        size_t want = !stopping && cap > inflight ? cap - inflight : 0;
        /* Recording results schedules successors: claim in the same transaction. */
        int try_claim = want > 0 && (d.pending || woken || now >= d.next_due || now >= d.next_poll);
        if (try_claim && !d.pending && !woken && now < d.next_due)
            try_claim = poll_due(e, &d, now);
        if ((d.pending || try_claim || d.writes) && now >= d.retry_at) {
            write_round(e, &d, try_claim, want, idle, now);
            continue; /* more may be due right away (we claimed all we wanted) */
        }
        pthread_mutex_lock(&e->lock);
        if (idle_wait(e, &d))
            break;
    }
    /* Writes handed over too late: their callers write on their own. */
    take_finished(e, &d);
    e->stopping = 1; /* no engine_write_submit from here on */
    pthread_mutex_unlock(&e->lock);
    struct as_err stop_err = {0};
    as_errf(&stop_err, AS_ECANCELLED, "the engine stopped");
    writes_done(d.writes, AS_ECANCELLED, &stop_err);
    d.writes = NULL;
    while (d.pending) {
        struct work *nx = d.pending->next;
        LOG_ERROR("engine", "run %" PRId64 " step %s: result lost at shutdown; the step runs "
                  "again on the next start",
                  d.pending->c.run_id, d.pending->c.step);
        engine_work_free(d.pending);
        d.pending = nx;
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void engine_free(struct engine *e)
{
    while (e->todo_head) {
        struct work *nx = e->todo_head->next;
        engine_work_free(e->todo_head);
        e->todo_head = nx;
    }
    while (e->done_head) {
        struct work *nx = e->done_head->next;
        engine_work_free(e->done_head);
        e->done_head = nx;
    }
    while (e->cache) {
        struct wf_cache_entry *nx = e->cache->next;
        wf_free(e->cache->wf);
        free(e->cache->error);
        free(e->cache);
        e->cache = nx;
    }
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->cache_lock);
    pthread_cond_destroy(&e->work_cond);
    pthread_cond_destroy(&e->disp_cond);
    pthread_cond_destroy(&e->ended_cond);
    free(e->workers);
    free(e);
}

enum as_code engine_start(struct app *app, int n_workers, struct engine **out, struct as_err *err)
{
    *out = NULL;
    if (n_workers < 1)
        return as_errf(err, AS_EINVAL, "the engine needs at least one worker");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return as_errf(err, AS_ENOMEM, "out of memory");
    e->app = app;
    e->n_workers = n_workers;
    e->avg_step_ms = 50;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->cache_lock, NULL);
    cond_init_mono(&e->work_cond);
    cond_init_mono(&e->disp_cond);
    cond_init_mono(&e->ended_cond);
    lease_owner_make(e->owner, sizeof e->owner);
    e->lease_margin_ms = config_int(app->cfg, "lease_seconds") * 1000;
    enum as_code rc = time_parse_duration(config_str(app->cfg, "default_wait"),
                                          &e->default_wait_ms, err);
    if (rc) {
        as_err_prefix(err, "default_wait");
        goto fail;
    }
    rc = time_parse_duration(config_str(app->cfg, "node_timeout"), &e->node_timeout_ms, err);
    if (rc) {
        as_err_prefix(err, "node_timeout");
        goto fail;
    }
    e->workers = calloc((size_t)n_workers, sizeof *e->workers);
    if (!e->workers) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    rc = expire_dead_owners(e, err);
    if (!rc)
        rc = beat(e, err); /* alive before the first claim */
    if (rc)
        goto fail;
    struct as_err wk_err = {0};
    if (db_wakeups_start(app->db, wake_from_store, e, &e->wakeups, &wk_err) != AS_OK)
        LOG_WARN("engine", "no wake-ups from other nodes (polling only): %s", wk_err.msg);
    /* Checkpoints would otherwise run inside the dispatcher's commits. */
    struct as_err ck_err = {0};
    if (db_checkpointer_start(app->db, &e->ckpt, &ck_err) != AS_OK)
        LOG_WARN("engine", "WAL checkpoints stay with the writer: %s", ck_err.msg);
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&e->workers[i], NULL, engine_worker_main, e) != 0) {
            rc = as_errf(err, AS_ENOMEM, "cannot start worker thread: %s", strerror(errno));
            goto fail_threads;
        }
        e->n_workers_started++;
    }
    if (pthread_create(&e->dispatcher, NULL, dispatcher_main, e) != 0) {
        rc = as_errf(err, AS_ENOMEM, "cannot start dispatcher thread: %s", strerror(errno));
        goto fail_threads;
    }
    e->dispatcher_started = 1;
    app->engine = e;
    LOG_INFO("engine", "started: %d workers, owner %s", n_workers, e->owner);
    *out = e;
    return AS_OK;
fail_threads:
    pthread_mutex_lock(&e->lock);
    e->quit_workers = 1;
    pthread_cond_broadcast(&e->work_cond);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->n_workers_started; i++)
        pthread_join(e->workers[i], NULL);
    db_checkpointer_stop(e->ckpt);
    db_wakeups_stop(e->wakeups);
fail:
    engine_free(e);
    return rc;
}

void engine_wake(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->wake = 1;
    pthread_cond_signal(&e->disp_cond);
    pthread_mutex_unlock(&e->lock);
}

enum as_code engine_write_submit(struct engine *e, struct engine_write *w, struct as_err *err)
{
    if (!e)
        return as_errf(err, AS_ECANCELLED, "no engine in this process");
    w->next = NULL;
    w->resume_payload = w->end_output = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->stopping || !e->dispatcher_started) {
        pthread_mutex_unlock(&e->lock);
        return as_errf(err, AS_ECANCELLED, "the engine is stopping");
    }
    if (e->writes_tail)
        e->writes_tail->next = w;
    else
        e->writes_head = w;
    e->writes_tail = w;
    pthread_cond_signal(&e->disp_cond);
    pthread_mutex_unlock(&e->lock);
    return AS_OK;
}

/* Engines whose threads outlived engine_stop's grace: kept reachable on purpose. */
static struct engine *abandoned;

enum as_code engine_stop(struct engine *e, int64_t grace_ms)
{
    if (!e)
        return AS_OK;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    e->grace_deadline_mono = time_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
    pthread_cond_signal(&e->disp_cond);
    pthread_mutex_unlock(&e->lock);
    if (e->dispatcher_started)
        pthread_join(e->dispatcher, NULL);
    /* Nothing more to write from here (a step past the grace period keeps its
     * lease, its result is never recorded): checkpoints go back to SQLite. */
    db_checkpointer_stop(e->ckpt);
    e->ckpt = NULL;
    db_wakeups_stop(e->wakeups);
    e->wakeups = NULL;

    pthread_mutex_lock(&e->lock);
    e->quit_workers = 1;
    pthread_cond_broadcast(&e->work_cond);
    size_t busy = e->n_busy;
    pthread_mutex_unlock(&e->lock);
    if (e->app->engine == e)
        e->app->engine = NULL;
    if (busy) {
        LOG_WARN("engine", "%zu step(s) still running after the grace period; they keep their "
                 "lease and run again on the next start",
                 busy);
        for (int i = 0; i < e->n_workers_started; i++)
            pthread_detach(e->workers[i]);
        e->next_abandoned = abandoned;
        abandoned = e;
        return AS_ETIMEOUT;
    }
    for (int i = 0; i < e->n_workers_started; i++)
        pthread_join(e->workers[i], NULL);
    /* Every claim was recorded or handed back: leave the nodes.  (With
     * steps still running, above, the node is left to expire instead, so
     * that other nodes take those claims over after node_timeout.) */
    struct as_err beat_err = {0};
    if (db_node_heartbeat(e->app->db, e->owner, 0, NULL, &beat_err) != AS_OK)
        LOG_WARN("engine", "leaving the nodes: %s", beat_err.msg);
    LOG_INFO("engine", "stopped: %" PRIu64 " step attempts in %" PRIu64 " transactions",
             e->stats.steps, e->stats.transactions);
    engine_free(e);
    return AS_OK;
}

void engine_get_stats(struct engine *e, struct engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    pthread_mutex_unlock(&e->lock);
}

void engine_note_ended(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->ended_gen++;
    pthread_cond_broadcast(&e->ended_cond);
    pthread_mutex_unlock(&e->lock);
}

uint64_t engine_ended_gen(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t gen = e->ended_gen;
    pthread_mutex_unlock(&e->lock);
    return gen;
}

void engine_wait_ended(struct engine *e, uint64_t gen, int64_t ms)
{
    pthread_mutex_lock(&e->lock);
    if (e->ended_gen == gen)
        cond_wait_ms(&e->ended_cond, &e->lock, ms);
    pthread_mutex_unlock(&e->lock);
}
