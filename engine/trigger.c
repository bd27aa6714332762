/* trigger.c - one workflow run per KPI row, in batches (see trigger.h). */
#include "engine/trigger.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_kpi.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "engine/expr.h"
#include "engine/log.h"
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
    }
    return "?";
}

json_t *trigger_stats_json(const struct trigger_stats *s)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows", (json_int_t)s->rows, "started",
                     (json_int_t)s->started, "duplicates", (json_int_t)s->duplicates, "deferred",
                     (json_int_t)s->deferred, "invalid", (json_int_t)s->invalid, "exempt",
                     (json_int_t)s->exempt, "open_before", (json_int_t)s->open_before);
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
        .dry_run = tc->o->dry_run,
        .source_path = tc->o->workflow_path,
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

static int on_row(void *ud, json_t *row)
{
    struct trig_ctx *tc = ud;
    tc->st->rows++;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    if (!upn || !*upn) {
        tc->st->invalid++;
        note(tc, "", row, TRIGGER_INVALID, 0, "the row has no upn");
        return 0;
    }
    struct as_err ierr = {0};
    json_t *input = map_row(tc, row, upn, &ierr);
    json_t *prepared = NULL;
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
    char key[600];
    size_t kl = (size_t)snprintf(key, sizeof key, "%s:", tc->wf->name);
    for (const char *p = upn; *p && kl + 1 < sizeof key; p++)
        key[kl++] = (char)tolower((unsigned char)*p);
    key[kl < sizeof key ? kl : sizeof key - 1] = '\0';
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
    if (!tc.pend || !tc.reqs || !tc.run_ids || !tc.created || !tc.kpi_scope) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    rc = kpi_eval(app, k, now, opts->source, on_row, &tc, &res, err);
    if (!rc && tc.rc)
        rc = tc.rc;
    if (!rc)
        rc = flush(&tc);
    if (rc)
        goto out;
    stats->exempt = res.exempt;
    if (opts->record_value && !opts->preview && k->id) {
        rc = kpi_record(app, k, &res, err);
        if (rc)
            goto out;
    }
    LOG_INFO("trigger", "kpi %s -> workflow %s: %lld rows, %lld started, %lld already open, "
             "%lld deferred, %lld invalid, %lld exempt%s",
             k->name, tc.wf->name, (long long)stats->rows, (long long)stats->started,
             (long long)stats->duplicates, (long long)stats->deferred, (long long)stats->invalid,
             (long long)stats->exempt, opts->preview ? " (preview)" : "");
out:
    pending_clear(&tc);
    kpi_result_clear(&res);
    free(tc.pend);
    free(tc.reqs);
    free(tc.run_ids);
    free(tc.created);
    json_decref(tc.kpi_scope);
    wf_free(tc.wf);
    diag_free(&diags);
    return rc;
}
