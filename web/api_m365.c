/*
 * api_m365.c - the REST API's KPIs, exceptions and reports (see api_v1.h,
 * docs/api.md): the same m365/ and store calls as `assent kpi`, `assent
 * exception`, `assent trigger` and `assent report`.
 */
#include "web/api_v1.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strbuf.h"
#include "base/timeutil.h"
#include "db/db_events.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "m365/kpi.h"
#include "m365/report.h"
#include "m365/trigger.h"
#include "web/web_ops.h"

#define HISTORY_DEFAULT 30
#define TRIGGER_ROWS_MAX 1000 /* rows detailed in a trigger's answer */

/* Append an audit event {..., "actor": caller, "via": "api"} of a change made outside a run. */
static enum as_code audit(struct api_call *c, const char *type, json_t *data, struct as_err *err)
{
    return web_ops_audit(c->req->app->db, type, data, c->who.name, "api", err);
}

/*
 * The page of items (an array, borrowed) that starts after the element
 * whose `key` equals cursor (a string key) or whose integer `key` is below
 * cursor (an integer key, lists newest first), at most limit long; *next
 * receives the cursor of the next page ("" when none).  New array.
 */
static json_t *page_of(const json_t *items, const char *key, int numeric, const char *cursor,
                       int limit, char *next, size_t next_size)
{
    json_t *page = json_array();
    size_t i, start = 0;
    json_t *e;
    next[0] = '\0';
    if (!page)
        return NULL;
    if (cursor) {
        long long below = numeric ? strtoll(cursor, NULL, 10) : 0;
        start = json_array_size(items);
        json_array_foreach(items, i, e)
        {
            const json_t *v = json_object_get(e, key);
            if (numeric ? json_integer_value(v) < below
                        : strcmp(json_string_value(v) ? json_string_value(v) : "", cursor) > 0) {
                start = i;
                break;
            }
        }
    }
    for (i = start; i < json_array_size(items); i++) {
        if ((int)json_array_size(page) == limit) {
            const json_t *last = json_object_get(json_array_get(page, (size_t)limit - 1), key);
            if (numeric)
                snprintf(next, next_size, "%lld", (long long)json_integer_value(last));
            else
                snprintf(next, next_size, "%s", json_string_value(last));
            break;
        }
        json_array_append(page, json_array_get(items, i));
    }
    return page;
}

/* ---- KPIs ---------------------------------------------------------------------- */

void api_kpis_list(struct api_call *c)
{
    static const char *const params[] = {"limit", "cursor", NULL};
    int limit;
    const char *cursor;
    struct as_err err = {0};
    json_t *list = NULL;
    char next[256];
    if (!api_query_allowed(c, params) || !api_page(c, &limit, &cursor))
        return;
    enum as_code rc = db_kpi_list(c->req->app->db, &list, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    json_t *page = page_of(list, "name", 0, cursor, limit, next, sizeof next);
    json_decref(list);
    api_reply_list(c, page, next[0] ? next : NULL);
}

void api_kpi_get(struct api_call *c)
{
    static const char *const params[] = {"history", NULL};
    struct as_err err = {0};
    json_t *shown = NULL;
    int history = HISTORY_DEFAULT;
    if (!api_query_allowed(c, params))
        return;
    const char *h = api_query(c, "history");
    if (h) {
        char *end;
        errno = 0;
        long n = strtol(h, &end, 10);
        if (errno || *end || n < 1 || n > 100000) {
            api_error(c, 400, "bad_request", "history must be an integer from 1 to 100000");
            return;
        }
        history = (int)n;
    }
    enum as_code rc = kpi_show_json(c->req->app, c->arg, history, c->req->now_ms, &shown, &err);
    if (rc)
        api_fail(c, rc, &err);
    else
        api_reply(c, 200, shown);
}

void api_kpi_save(struct api_call *c)
{
    static const char *const params[] = {"replace", NULL};
    struct as_err err = {0};
    json_t *def = NULL;
    int64_t id = 0;
    if (!api_query_allowed(c, params))
        return;
    const char *replace = api_query(c, "replace");
    if (replace && strcmp(replace, "true") != 0 && strcmp(replace, "false") != 0) {
        api_error(c, 400, "bad_request", "replace must be true or false");
        return;
    }
    int rep = replace && strcmp(replace, "true") == 0;
    enum as_code rc = kpi_save(c->req->app, c->body, rep, c->who.name, &id, &def, &err);
    if (rc == AS_ECONFLICT) {
        api_error(c, 409, "conflict", "%s (replace it with ?replace=true)", err.msg);
        return;
    }
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "kpi %s saved by %s", json_string_value(json_object_get(def, "name")),
             c->who.name);
    api_reply(c, rep ? 200 : 201,
              json_pack("{s:I, s:O, s:o}", "id", (json_int_t)id, "name",
                        json_object_get(def, "name"), "definition", def));
}

void api_kpi_delete(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc = db_kpi_delete(c->req->app->db, c->arg, &err);
    if (!rc)
        rc = audit(c, "kpi.deleted", json_pack("{s:s}", "name", c->arg), &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "kpi %s deleted by %s", c->arg, c->who.name);
    api_reply(c, 200, json_pack("{s:s, s:b}", "name", c->arg, "deleted", 1));
}

void api_kpi_evaluate(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    json_t *out = NULL;
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc =
        web_ops_kpi_evaluate(c->req->app, c->arg, c->who.name, "api", c->req->now_ms, &out, &err);
    if (rc)
        api_fail(c, rc, &err);
    else
        api_reply(c, 200, out);
}

struct trigger_rows {
    json_t *rows;
    int preview;
};

static void trigger_row(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                        int64_t run_id, const char *why)
{
    struct trigger_rows *tr = ud;
    if (tr->rows && json_array_size(tr->rows) < TRIGGER_ROWS_MAX)
        json_array_append_new(tr->rows, trigger_row_json(upn, input, what, run_id, why,
                                                         tr->preview));
}

void api_kpi_trigger(struct api_call *c)
{
    static const struct api_field fields[] = {
        {"dry_run", API_BOOL, 0},
        {"allow_stale", API_BOOL, 0},
        {NULL, 0, 0},
    };
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct trigger_stats st;
    if (!api_query_allowed(c, params) || !api_fields(c, fields))
        return;
    int preview = json_is_true(json_object_get(c->body, "dry_run"));
    struct trigger_rows tr = {json_array(), preview};
    enum as_code rc = web_ops_kpi_trigger(c->req->app, c->arg, preview,
                                          json_is_true(json_object_get(c->body, "allow_stale")),
                                          c->who.name, "api", c->req->now_ms, trigger_row, &tr,
                                          &st, &err);
    if (rc == AS_EEXPIRED) {
        api_error(c, 409, "stale_tenant_data", "%s (or send \"allow_stale\": true)", err.msg);
        goto out;
    }
    if (rc) {
        api_fail(c, rc, &err);
        goto out;
    }
    LOG_INFO("api", "kpi %s triggered by %s%s", c->arg, c->who.name, preview ? " (dry run)" : "");
    json_t *body = trigger_stats_json(&st);
    if (body) {
        json_object_set_new(body, "name", json_string(c->arg));
        json_object_set_new(body, "preview", json_boolean(preview));
        json_object_set_new(body, "rows_detail", tr.rows ? json_incref(tr.rows) : json_array());
    }
    api_reply(c, 200, body);
out:
    json_decref(tr.rows);
}

/* ---- exceptions ---------------------------------------------------------------------- */

void api_exceptions_list(struct api_call *c)
{
    static const char *const params[] = {"include", "user", "limit", "cursor", NULL};
    int limit, want_removed = 0, want_expired = 0;
    const char *cursor;
    int64_t below;
    struct as_err err = {0};
    json_t *list = NULL;
    char next[32];
    if (!api_query_allowed(c, params) || !api_page(c, &limit, &cursor) ||
        !api_cursor_int(c, cursor, &below))
        return;
    const char *include = api_query(c, "include");
    for (const char *p = include; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n == 7 && strncmp(p, "removed", 7) == 0) {
            want_removed = 1;
        } else if (n == 7 && strncmp(p, "expired", 7) == 0) {
            want_expired = 1;
        } else {
            api_error(c, 400, "bad_request", "include takes removed, expired or both "
                      "(include=removed,expired)");
            return;
        }
        p += n + (p[n] == ',');
    }
    enum as_code rc = web_ops_exceptions(c->req->app, want_removed, want_expired,
                                         api_query(c, "user"), c->req->now_ms, &list, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    json_t *page = list ? page_of(list, "id", 1, cursor, limit, next, sizeof next) : NULL;
    json_decref(list);
    api_reply_list(c, page, next[0] ? next : NULL);
}

void api_exception_add(struct api_call *c)
{
    static const struct api_field fields[] = {
        {"user", API_STRING, 1},    {"protocols", API_ARRAY, 1}, {"reason", API_STRING, 1},
        {"expires", API_STRING, 0}, {NULL, 0, 0},
    };
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    json_t *ex = NULL;
    if (!api_query_allowed(c, params) || !api_fields(c, fields))
        return;
    /* granted_by: whoever holds the token. */
    enum as_code rc = kpi_exception_grant(c->req->app, api_str(c, "user"),
                                          json_object_get(c->body, "protocols"),
                                          api_str(c, "reason"), c->who.name,
                                          api_str(c, "expires"), "api", c->req->now_ms, &ex, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "exception %lld for %s granted by %s",
             (long long)json_integer_value(json_object_get(ex, "id")), api_str(c, "user"),
             c->who.name);
    api_reply(c, 201, ex);
}

void api_exception_remove(struct api_call *c)
{
    static const struct api_field fields[] = {{"reason", API_STRING, 1}, {NULL, 0, 0}};
    static const char *const params[] = {NULL};
    int64_t id;
    struct as_err err = {0};
    if (!api_query_allowed(c, params) || !api_arg_id(c, "exception", &id) ||
        !api_fields(c, fields))
        return;
    const char *reason = api_str(c, "reason");
    if (!*reason) {
        api_error(c, 400, "invalid", "reason: say why the exception is no longer needed");
        return;
    }
    enum as_code rc =
        db_exception_remove(c->req->app->db, id, c->who.name, reason, c->req->now_ms, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "exception %lld removed by %s", (long long)id, c->who.name);
    api_reply(c, 200, json_pack("{s:I, s:b, s:s}", "id", (json_int_t)id, "removed", 1,
                                "removed_by", c->who.name));
}

/* ---- reports ------------------------------------------------------------------------ */

/* Where the rows of a report page go: JSON items or CSV text. */
struct report_out {
    enum report_kind kind;
    int csv;
    json_t *items;      /* json */
    struct strbuf text; /* csv */
};

static int report_take(void *ud, const json_t *row)
{
    struct report_out *o = ud;
    if (o->csv)
        report_csv_row(&o->text, o->kind, row);
    else
        json_array_append(o->items, (json_t *)row);
    return 0;
}

static void report(struct api_call *c, enum report_kind kind)
{
    static const char *const user_params[] = {"where", "sort", "format", "limit", "cursor", NULL};
    static const char *const signin_params[] = {"where", "since", "client_app", "upn",
                                                "format", "limit", "cursor", NULL};
    static const char *const other_params[] = {"where", "format", "limit", "cursor", NULL};
    static const char *const names[] = {"users", "signins", "policies", "plans", "org"};
    struct report_query q = {.kind = kind};
    struct report_out o = {.kind = kind};
    struct as_err err = {0};
    int limit, more = 0, no_data = 0;
    int64_t skip, page_limit;
    const char *cursor;
    if (!api_query_allowed(c, kind == REPORT_USERS     ? user_params
                              : kind == REPORT_SIGNINS ? signin_params
                                                       : other_params) ||
        !api_page(c, &limit, &cursor) || !api_cursor_int(c, cursor, &skip))
        return;
    const char *format = api_query(c, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        api_error(c, 400, "bad_request", "format must be json or csv");
        return;
    }
    o.csv = format && strcmp(format, "csv") == 0;
    /* A CSV export is every row unless a limit is given. */
    page_limit = o.csv && !api_query(c, "limit") ? -1 : limit;
    q.where = api_query(c, "where");
    if (kind == REPORT_USERS) {
        q.sort = api_query(c, "sort");
    } else if (kind == REPORT_SIGNINS) {
        q.client_app = api_query(c, "client_app");
        q.upn = api_query(c, "upn");
        const char *since = api_query(c, "since");
        if (since) {
            int64_t ms = 0;
            if (time_parse_duration(since, &ms, &err) != AS_OK) {
                api_error(c, 400, "bad_request", "since: %s", err.msg);
                return;
            }
            q.since_ms = c->req->now_ms - ms;
        }
    }
    enum as_code rc = AS_OK;
    if (!o.csv && !(o.items = json_array()))
        rc = as_errf(&err, AS_ENOMEM, "out of memory");
    if (!rc && o.csv)
        report_csv_header(&o.text, kind);
    if (!rc)
        rc = web_ops_report_page(c->req->app, &q, c->req->now_ms, skip, page_limit, report_take,
                                 &o, &more, &no_data, &err);
    if (!rc && no_data) {
        api_error(c, 409, "no_tenant_data", "no tenant data yet: run `assent sync` first");
        goto out;
    }
    if (rc) {
        api_fail(c, rc, &err);
        goto out;
    }
    char next[32] = "";
    if (more)
        snprintf(next, sizeof next, "%lld", (long long)(skip + page_limit));
    if (o.csv) {
        size_t len = o.text.len;
        char *text = strbuf_take(&o.text);
        if (!text) {
            api_error(c, 500, "internal", "out of memory");
            goto out;
        }
        if (next[0])
            web_resp_header(c->resp, "X-Next-Cursor", next);
        char disp[80];
        snprintf(disp, sizeof disp, "attachment; filename=\"%s.csv\"", names[kind]);
        web_resp_header(c->resp, "Content-Disposition", disp);
        web_resp_take(c->resp, 200, "text/csv; charset=utf-8", text, len);
    } else {
        api_reply_list(c, o.items, next[0] ? next : NULL);
        o.items = NULL;
    }
out:
    json_decref(o.items);
    strbuf_free(&o.text);
}

void api_report_users(struct api_call *c)
{
    report(c, REPORT_USERS);
}

void api_report_signins(struct api_call *c)
{
    report(c, REPORT_SIGNINS);
}

void api_report_policies(struct api_call *c)
{
    report(c, REPORT_POLICIES);
}

void api_report_plans(struct api_call *c)
{
    report(c, REPORT_PLANS);
}

void api_report_org(struct api_call *c)
{
    report(c, REPORT_ORG);
}
