/* trigger.c - one workflow run per KPI row, in batches (see trigger.h). */
#include "m365/trigger.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_kpi.h"
#include "db/db_runs.h"
#include "db/db_tenant.h"
#include "base/config.h"
#include "base/timeutil.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "base/expr.h"
#include "base/log.h"
#include "engine/workflow.h"

#define DEFAULT_BATCH 500
#define MAX_BATCH 10000

const char *trigger_what_name(enum trigger_what w)
{
    switch (w) {
    case TRIGGER_STARTED: return "started";
    case TRIGGER_DUPLICATE: return "duplicate";
    case TRIGGER_DEFERRED: return "deferred";
    case TRIGGER_WOULD_START: return "would start";
    case TRIGGER_INVALID: return "invalid";
    case TRIGGER_SUPERSEDED: return "superseded";
    case TRIGGER_WOULD_SUPERSEDE: return "would supersede";
    }
    return "?";
}

json_t *trigger_stats_json(const struct trigger_stats *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows", (json_int_t)s->rows,
                     "started", (json_int_t)s->started, "duplicates", (json_int_t)s->duplicates,
                     "deferred", (json_int_t)s->deferred, "invalid", (json_int_t)s->invalid,
                     "exempt", (json_int_t)s->exempt, "open_before", (json_int_t)s->open_before,
                     "superseded", (json_int_t)s->superseded);
}

struct pending {
    json_t *input;
    char *key;
    char *upn;
};

struct trig_ctx {
    struct app *app;
    const struct kpi *k;
    const struct trigger_opts *o;
    struct workflow *wf;
    const json_t *input_map;
    json_t *kpi_scope;        /* {"name": ...} */
    json_t *seen;             /* dedupe keys of the rows found: {key: true} */
    struct trigger_stats *st;
    int64_t remaining;        /* runs we may still open; INT64_MAX without a limit */
    size_t batch;
    struct pending *pend;
    struct engine_run_req *reqs;
    int64_t *run_ids;
    int *created;
    size_t n;
    enum as_code rc;
    struct as_err *err;
};

static void note(struct trig_ctx *tc, const char *upn, const json_t *input, enum trigger_what w,
                 int64_t run_id, const char *why)
{
    if (tc->o->on_row)
        tc->o->on_row(tc->o->ud, upn, input, w, run_id, why);
}

static void pending_clear(struct trig_ctx *tc)
{
    for (size_t i = 0; i < tc->n; i++) {
        json_decref(tc->pend[i].input);
        free(tc->pend[i].key);
        free(tc->pend[i].upn);
    }
    tc->n = 0;
}

/* Submit the pending batch in one transaction. */
static enum as_code flush(struct trig_ctx *tc)
{
    if (!tc->n)
        return AS_OK;
    for (size_t i = 0; i < tc->n; i++) {
        tc->reqs[i].input = tc->pend[i].input;
        tc->reqs[i].dedupe_key = tc->pend[i].key;
    }
    struct engine_run_opts ro = {
        .trigger = tc->o->trigger,
        .kpi = tc->k->name,
        .dry_run = tc->o->dry_run,
        .source_path = tc->o->workflow_path,
        .actor = tc->o->actor,
    };
    size_t n_created = 0;
    enum as_code rc = engine_submit_runs(tc->app, tc->wf, tc->reqs, tc->n, &ro, tc->run_ids,
                                         tc->created, &n_created, tc->err);
    if (rc)
        return rc;
    for (size_t i = 0; i < tc->n; i++) {
        if (tc->created[i]) {
            tc->st->started++;
            note(tc, tc->pend[i].upn, tc->pend[i].input, TRIGGER_STARTED, tc->run_ids[i], NULL);
        } else {
            tc->st->duplicates++;
            note(tc, tc->pend[i].upn, tc->pend[i].input, TRIGGER_DUPLICATE, tc->run_ids[i], NULL);
        }
    }
    if (tc->remaining != INT64_MAX)
        tc->remaining -= (int64_t)n_created;
    pending_clear(tc);
    return AS_OK;
}

/* The run input for one row (see trigger.h).  New reference or NULL. */
static json_t *map_row(struct trig_ctx *tc, const json_t *row, const char *upn, struct as_err *err)
{
    const json_t *declared = tc->wf->input;
    json_t *input = json_object();
    if (!input)
        goto oom;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)row, key, val)
    {
        if (json_is_null(val))
            continue;
        if (declared && !json_object_get(declared, key))
            continue;
        if (json_object_set(input, key, val))
            goto oom;
    }
    if (!declared || json_object_get(declared, "user"))
        json_object_set_new(input, "user", json_string(upn));
    if (!declared || json_object_get(declared, "upn"))
        json_object_set_new(input, "upn", json_string(upn));
    if (tc->input_map) {
        json_t *scope = json_pack("{s:O, s:O}", "row", row, "kpi", tc->kpi_scope);
        json_t *resolved = NULL;
        if (!scope)
            goto oom;
        enum as_code rc = tmpl_resolve(tc->input_map, scope, &resolved, err);
        json_decref(scope);
        if (rc) {
            as_err_prefix(err, "trigger input");
            json_decref(input);
            return NULL;
        }
        json_object_update(input, resolved);
        json_decref(resolved);
    }
    return input;
oom:
    json_decref(input);
    as_errf(err, AS_ENOMEM, "out of memory");
    return NULL;
}

/* The run's dedupe key: "<workflow name>:<upn, lower case>". */
static void dedupe_key(const char *workflow, const char *upn, char *key, size_t size)
{
    size_t kl = (size_t)snprintf(key, size, "%s:", workflow);
    for (const char *p = upn; *p && kl + 1 < size; p++)
        key[kl++] = (char)tolower((unsigned char)*p);
    key[kl < size ? kl : size - 1] = '\0';
}

static int on_row(void *ud, json_t *row)
{
    struct trig_ctx *tc = ud;
    char key[600];
    tc->st->rows++;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    if (!upn || !*upn) {
        tc->st->invalid++;
        note(tc, "", row, TRIGGER_INVALID, 0, "the row has no upn");
        return 0;
    }
    dedupe_key(tc->wf->name, upn, key, sizeof key);
    if (tc->seen && json_object_set_new(tc->seen, key, json_true())) {
        tc->rc = as_errf(tc->err, AS_ENOMEM, "out of memory");
        return 1;
    }
    struct as_err ierr = {0};
    json_t *input = map_row(tc, row, upn, &ierr);
    json_t *prepared = NULL;
    if (input) {
        /* Inputs the KPI gives no value for may come from the configuration
         * (e.g. approvers from default_approvers): recorded with the run. */
        json_t *full = engine_input_with_config(tc->app, tc->wf, input);
        json_decref(input);
        input = full;
        if (!input)
            ierr.code = AS_ENOMEM;
    }
    if (!input || wf_input_prepare(tc->wf, input, &prepared, &ierr) != AS_OK) {
        if (ierr.code == AS_ENOMEM) {
            tc->rc = as_errf(tc->err, AS_ENOMEM, "out of memory");
            json_decref(input);
            return 1;
        }
        tc->st->invalid++;
        note(tc, upn, input ? input : row, TRIGGER_INVALID, 0, ierr.msg);
        json_decref(input);
        return 0;
    }
    json_decref(prepared);
    if (tc->o->preview) {
        tc->st->started++;
        note(tc, upn, input, TRIGGER_WOULD_START, 0, NULL);
        json_decref(input);
        return 0;
    }
    if (tc->remaining <= (int64_t)tc->n) {
        /* The batch in hand may still turn out to hold duplicates: submit it
         * before deciding that this row must wait. */
        tc->rc = flush(tc);
        if (tc->rc) {
            json_decref(input);
            return 1;
        }
        if (tc->remaining <= 0) {
            tc->st->deferred++;
            note(tc, upn, input, TRIGGER_DEFERRED, 0, NULL);
            json_decref(input);
            return 0;
        }
    }
    struct pending *pd = &tc->pend[tc->n];
    pd->input = input;
    pd->key = strdup(key);
    pd->upn = strdup(upn);
    tc->n++;
    if (!pd->key || !pd->upn) {
        tc->rc = as_errf(tc->err, AS_ENOMEM, "out of memory");
        return 1;
    }
    if (tc->n == tc->batch) {
        tc->rc = flush(tc);
        if (tc->rc)
            return 1;
    }
    return 0;
}

struct open_run {
    int64_t id;
    char *key;
};

struct open_runs {
    const json_t *seen;
    struct open_run *v;
    size_t n, cap;
    int oom;
};

static int collect_unseen(void *ud, int64_t run_id, const char *key)
{
    struct open_runs *o = ud;
    if (json_object_get(o->seen, key))
        return 0;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct open_run *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            o->oom = 1;
            return 1;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n].id = run_id;
    o->v[o->n].key = strdup(key);
    if (!o->v[o->n].key) {
        o->oom = 1;
        return 1;
    }
    o->n++;
    return 0;
}

/* Why the KPI no longer finds the user: exempt now, or no longer matching. */
static void superseded_reason(struct trig_ctx *tc, const char *upn, int64_t now, char *out,
                              size_t size)
{
    struct as_err err = {0};
    unsigned mask = 0;
    json_t *reasons = NULL;
    if (kpi_exemption_now(tc->app, upn, now, &mask, &reasons, &err) == AS_OK && mask) {
        json_t *first = json_array_get(reasons, 0);
        json_t *list = kpi_protocols_json(mask);
        char *names = list ? json_dumps(list, JSON_COMPACT) : NULL;
        json_decref(list);
        snprintf(out, size,
                 "KPI %s no longer finds %s: the user is exempt now (%s, exception %lld: \"%s\")",
                 tc->k->name, upn, names ? names : "?",
                 (long long)json_integer_value(json_object_get(first, "id")),
                 json_string_value(json_object_get(first, "reason")));
        free(names);
    } else {
        snprintf(out, size,
                 "KPI %s no longer finds %s: its legacy protocols were turned off elsewhere, or "
                 "the user no longer matches or left the tenant (last sync)",
                 tc->k->name, upn);
    }
    json_decref(reasons);
}

/* End (or, previewing, list) the KPI's open runs whose user no row named. */
static enum as_code close_superseded(struct trig_ctx *tc, int64_t now)
{
    struct open_runs o = {.seen = tc->seen};
    struct db_conn *conn;
    enum as_code rc = db_read_begin(tc->app->db, &conn, tc->err);
    if (rc)
        return rc;
    rc = db_runs_open_of_kpi(conn, tc->k->name, tc->wf->name, collect_unseen, &o, tc->err);
    db_read_end(tc->app->db, conn);
    if (!rc && o.oom)
        rc = as_errf(tc->err, AS_ENOMEM, "out of memory");
    size_t prefix = strlen(tc->wf->name) + 1;
    for (size_t i = 0; !rc && i < o.n; i++) {
        const char *upn = strlen(o.v[i].key) > prefix ? o.v[i].key + prefix : o.v[i].key;
        char reason[1024];
        superseded_reason(tc, upn, now, reason, sizeof reason);
        if (tc->o->preview) {
            tc->st->superseded++;
            note(tc, upn, NULL, TRIGGER_WOULD_SUPERSEDE, o.v[i].id, reason);
            continue;
        }
        struct as_err serr = {0};
        enum as_code src = engine_supersede_run(tc->app, o.v[i].id, tc->k->name, reason, &serr);
        if (src == AS_ECONFLICT)
            continue; /* it ended by itself meanwhile */
        if (src) {
            rc = as_errf(tc->err, src, "superseding run %lld: %s", (long long)o.v[i].id,
                         serr.msg);
            break;
        }
        tc->st->superseded++;
        LOG_INFO("trigger", "run %lld superseded: %s", (long long)o.v[i].id, reason);
        note(tc, upn, NULL, TRIGGER_SUPERSEDED, o.v[i].id, reason);
    }
    for (size_t i = 0; i < o.n; i++)
        free(o.v[i].key);
    free(o.v);
    return rc;
}

/* "2d 3h", "5h 12m", "42s": an age for people. */
static void format_age(int64_t ms, char *out, size_t size)
{
    int64_t s = ms / 1000;
    if (s >= 86400)
        snprintf(out, size, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(out, size, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, size, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, size, "%llds", (long long)s);
}

enum as_code trigger_check_fresh(struct app *app, int64_t now, struct as_err *err)
{
    const char *max_text = app->cfg ? config_str(app->cfg, "max_sync_age") : NULL;
    int64_t max_ms = 86400000, finished = 0;
    char status[16], age[64], when[40];
    struct as_err derr = {0};
    if (max_text && time_parse_duration(max_text, &max_ms, &derr) != AS_OK)
        return as_errf(err, AS_EINVAL, "max_sync_age: %s", derr.msg);
    enum as_code rc = db_tenant_last_completed_sync(app->db, &finished, status, sizeof status, err);
    if (rc)
        return rc;
    if (!finished)
        return as_errf(err, AS_EEXPIRED,
                       "no tenant sync has completed yet: run `assent sync` first (or pass "
                       "--allow-stale)");
    if (now - finished > max_ms) {
        format_age(now - finished, age, sizeof age);
        time_format_iso(finished, when, sizeof when);
        return as_errf(err, AS_EEXPIRED,
                       "the last completed tenant sync is %s old (ended %s), older than "
                       "max_sync_age %s: run `assent sync` first, or pass --allow-stale to "
                       "start runs from it anyway",
                       age, when, max_text ? max_text : "PT24H");
    }
    return AS_OK;
}

/* The KPI's "close_superseded" (top level or in its trigger), default true. */
static int kpi_closes_superseded(const struct kpi *k)
{
    const json_t *v = json_object_get(k->def, "close_superseded");
    if (!v)
        v = json_object_get(k->trigger, "close_superseded");
    return v ? json_is_true(v) : 1;
}

enum as_code trigger_kpi(struct app *app, const struct kpi *k, int64_t now,
                         const struct trigger_opts *opts, struct trigger_stats *stats,
                         struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct trig_ctx tc = {.app = app, .k = k, .o = opts, .st = stats, .err = err};
    struct diag_list diags = {0};
    struct kpi_result res = {0};
    memset(stats, 0, sizeof *stats);
    const json_t *trig = k->trigger;
    const char *path = opts->workflow_path;
    if (!path)
        path = json_string_value(json_object_get(trig, "workflow"));
    if (!path || !*path)
        return as_errf(err, AS_EINVAL,
                       "KPI \"%s\" names no workflow to trigger (give one, or set trigger.workflow)",
                       k->name);
    struct trigger_opts o = *opts;
    o.workflow_path = path;
    tc.o = &o;
    tc.input_map = opts->input_map ? opts->input_map : json_object_get(trig, "input");
    int64_t max_open = opts->max_open;
    if (max_open < 0)
        max_open = json_integer_value(json_object_get(trig, "max_open"));
    rc = wf_load_file(path, &tc.wf, &diags, err);
    if (rc) {
        for (size_t i = 0; i < diags.n; i++) {
            if (diags.items[i].severity == DIAG_ERROR) {
                as_errf(err, AS_EINVAL, "%s:%d:%d: %s (at %s)", path, diags.items[i].line,
                        diags.items[i].column, diags.items[i].msg, diags.items[i].path);
                break;
            }
        }
        as_err_prefix(err, "workflow %s is not valid (see `assent validate %s`)", path, path);
        goto out;
    }
    if (!opts->source && !opts->allow_stale) {
        rc = trigger_check_fresh(app, now, err);
        if (rc)
            goto out;
    }
    rc = db_kpi_open_runs(app->db, tc.wf->name, &stats->open_before, err);
    if (rc)
        goto out;
    tc.remaining = max_open > 0 ? max_open - stats->open_before : INT64_MAX;
    if (tc.remaining < 0)
        tc.remaining = 0;
    tc.batch = opts->batch ? opts->batch : DEFAULT_BATCH;
    if (tc.batch > MAX_BATCH)
        tc.batch = MAX_BATCH;
    tc.pend = calloc(tc.batch, sizeof *tc.pend);
    tc.reqs = calloc(tc.batch, sizeof *tc.reqs);
    tc.run_ids = calloc(tc.batch, sizeof *tc.run_ids);
    tc.created = calloc(tc.batch, sizeof *tc.created);
    tc.kpi_scope = json_pack("{s:s}", "name", k->name);
    int supersede = !opts->keep_superseded && kpi_closes_superseded(k);
    if (supersede)
        tc.seen = json_object();
    if (!tc.pend || !tc.reqs || !tc.run_ids || !tc.created || !tc.kpi_scope ||
        (supersede && !tc.seen)) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    rc = kpi_eval(app, k, now, opts->source, on_row, &tc, &res, err);
    if (!rc && tc.rc)
        rc = tc.rc;
    if (!rc)
        rc = flush(&tc);
    /* Only an evaluation that read every row can tell who is no longer there. */
    if (!rc && supersede)
        rc = close_superseded(&tc, now);
    if (rc)
        goto out;
    stats->exempt = res.exempt;
    if (opts->record_value && !opts->preview && k->id) {
        rc = kpi_record(app, k, &res, err);
        if (rc)
            goto out;
    }
    LOG_INFO("trigger", "kpi %s -> workflow %s: %lld rows, %lld started, %lld already open, "
             "%lld deferred, %lld invalid, %lld exempt, %lld superseded%s",
             k->name, tc.wf->name, (long long)stats->rows, (long long)stats->started,
             (long long)stats->duplicates, (long long)stats->deferred, (long long)stats->invalid,
             (long long)stats->exempt, (long long)stats->superseded,
             opts->preview ? " (preview)" : "");
out:
    pending_clear(&tc);
    kpi_result_clear(&res);
    free(tc.pend);
    free(tc.reqs);
    free(tc.run_ids);
    free(tc.created);
    json_decref(tc.kpi_scope);
    json_decref(tc.seen);
    wf_free(tc.wf);
    diag_free(&diags);
    return rc;
}

json_t *trigger_row_json(const char *upn, const json_t *input, enum trigger_what what,
                         int64_t run_id, const char *why, int with_input)
{
    return json_pack("{s:s, s:s, s:I, s:s?, s:O?}", "upn", upn, "result", trigger_what_name(what),
                     "run_id", (json_int_t)run_id, "error", why, "input",
                     with_input ? input : NULL);
}
