/* web_ops.c - what the REST API and the console both do (see web_ops.h). */
#include "web/web_ops.h"

#include <string.h>

#include "base/diag.h"
#include "db/db_approvals.h"
#include "db/db_events.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "engine/run_title.h"
#include "engine/workflow.h"

struct page_ctx {
    int64_t skip, limit, seen;
    int more;
    int (*row)(void *ud, const json_t *r);
    void *ud;
};

static int page_take(void *ud, const json_t *row)
{
    struct page_ctx *p = ud;
    if (p->seen++ < p->skip)
        return 0;
    if (p->limit >= 0 && p->seen > p->skip + p->limit) {
        p->more = 1;
        return 1;
    }
    return p->row(p->ud, row);
}

enum as_code web_ops_report_page(struct app *app, const struct report_query *q, int64_t now,
                                 int64_t skip, int64_t limit,
                                 int (*row)(void *ud, const json_t *r), void *ud, int *more,
                                 int *no_data, struct as_err *err)
{
    struct report *rep = NULL;
    json_t *last = NULL;
    struct page_ctx p = {.skip = skip, .limit = limit, .row = row, .ud = ud};
    *more = 0;
    *no_data = 0;
    enum as_code rc = db_tenant_last_sync(app->db, &last, err);
    if (rc)
        return rc;
    if (!last) {
        *no_data = 1;
        return AS_OK;
    }
    json_decref(last);
    rc = report_open(app, q, now, &rep, err);
    if (!rc)
        rc = report_foreach(rep, page_take, &p, err);
    report_free(rep);
    *more = p.more;
    return rc;
}

enum as_code web_ops_approvals_page(struct db *db, const char *status, int64_t before, int limit,
                                    json_t **items, int64_t *next, struct as_err *err)
{
    struct db_approvals_page_query q = {.status = status, .before_id = before, .limit = limit + 1};
    *items = NULL;
    *next = 0;
    /* One more than asked tells whether there is a next page. */
    enum as_code rc = db_approvals_page(db, &q, items, err);
    if (!rc)
        rc = run_titles_annotate(db, *items, err);
    if (rc) {
        json_decref(*items);
        *items = NULL;
        return rc;
    }
    if ((int)json_array_size(*items) > limit) {
        json_array_remove(*items, (size_t)limit);
        *next = json_integer_value(json_object_get(json_array_get(*items, (size_t)limit - 1), "id"));
    }
    return AS_OK;
}

enum as_code web_ops_exceptions(struct app *app, int want_removed, int want_expired,
                                const char *user, int64_t now, json_t **out, struct as_err *err)
{
    json_t *all = NULL;
    *out = NULL;
    enum as_code rc = db_exception_list(app->db, DB_EXC_ALL, user, now, &all, err);
    if (rc)
        return rc;
    json_t *list = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        const char *state = json_string_value(json_object_get(e, "state"));
        if (!state || (strcmp(state, "removed") == 0 && !want_removed) ||
            (strcmp(state, "expired") == 0 && !want_expired))
            continue;
        if (list && json_array_append(list, e)) {
            json_decref(list);
            list = NULL;
        }
    }
    json_decref(all);
    if (!list)
        return as_errf(err, AS_ENOMEM, "out of memory");
    *out = list;
    return AS_OK;
}

enum as_code web_ops_audit(struct db *db, const char *type, json_t *data, const char *actor,
                           const char *via, struct as_err *err)
{
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    json_object_set_new(data, "actor", json_string(actor));
    json_object_set_new(data, "via", json_string(via));
    enum as_code rc = db_audit_append(db, type, data, err);
    json_decref(data);
    return rc;
}

enum as_code web_ops_kpi_evaluate(struct app *app, const char *name, const char *actor,
                                  const char *via, int64_t now, json_t **out,
                                  struct as_err *err)
{
    struct kpi *k = NULL;
    struct kpi_result res = {0};
    *out = NULL;
    enum as_code rc = kpi_load(app, name, &k, err);
    if (!rc)
        rc = kpi_eval(app, k, now, NULL, NULL, NULL, &res, err);
    if (!rc)
        rc = kpi_record(app, k, &res, err);
    /* The value is recorded first: its audit event says it was. */
    if (!rc)
        rc = web_ops_audit(app->db, "kpi.evaluated",
                           json_pack("{s:s, s:I, s:I, s:I}", "name", k->name, "value",
                                     (json_int_t)res.value, "exempt", (json_int_t)res.exempt, "ts",
                                     (json_int_t)res.ts),
                           actor, via, err);
    if (!rc) {
        *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "name", k->name, "value",
                         (json_int_t)res.value, "exempt", (json_int_t)res.exempt, "scanned",
                         (json_int_t)res.scanned, "ts", (json_int_t)res.ts, "recorded", 1);
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
        else if (res.breakdown)
            json_object_set(*out, "breakdown", res.breakdown);
    }
    kpi_result_clear(&res);
    kpi_free(k);
    return rc;
}

enum as_code web_ops_kpi_trigger(struct app *app, const char *name, int preview, int allow_stale,
                                 const char *actor, const char *via, int64_t now,
                                 void (*on_row)(void *ud, const char *upn, const json_t *input,
                                                enum trigger_what what, int64_t run_id,
                                                const char *why),
                                 void *ud, struct trigger_stats *st, struct as_err *err)
{
    struct kpi *k = NULL;
    memset(st, 0, sizeof *st);
    enum as_code rc = kpi_load(app, name, &k, err);
    if (!rc && !k->trigger)
        rc = as_errf(err, AS_ECONFLICT, "KPI \"%s\" has no trigger (see docs/kpis.md)", k->name);
    struct trigger_opts o = {
        .max_open = -1,
        .preview = preview,
        .trigger = via,
        .actor = actor,
        .record_value = 1,
        .allow_stale = allow_stale,
        .on_row = on_row,
        .ud = ud,
    };
    if (!rc)
        rc = trigger_kpi(app, k, now, &o, st, err);
    /* A preview changes nothing; a trigger is recorded with what it did
     * (each run it started has its own run.created event with the actor). */
    if (!rc && !preview) {
        json_t *ev = trigger_stats_json(st);
        if (ev)
            json_object_set_new(ev, "name", json_string(k->name));
        rc = web_ops_audit(app->db, "kpi.triggered", ev, actor, via, err);
    }
    kpi_free(k);
    return rc;
}

static size_t count_errors(const struct diag_list *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->items[i].severity == DIAG_ERROR;
    return n;
}

enum as_code web_ops_workflow_check(const char *text, size_t len, const char *origin,
                                    struct workflow **wf, json_t **diags, struct as_err *err)
{
    struct diag_list list = {0};
    *wf = NULL;
    enum as_code rc = wf_load_buffer(text, len, origin, wf, &list, err);
    if (rc && count_errors(&list) == 0) {
        /* Nothing to point at (out of memory, say): one diagnostic for the whole. */
        diag_free(&list);
        diag_add(&list, DIAG_ERROR, "READ_ERROR", "$", "%s", err->msg);
    }
    *diags = json_array();
    if (!*diags || wf_diags_append_json(*diags, &list, origin) != 0) {
        diag_free(&list);
        json_decref(*diags);
        *diags = NULL;
        wf_free(*wf);
        *wf = NULL;
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    diag_free(&list);
    return rc ? AS_EINVAL : AS_OK;
}
