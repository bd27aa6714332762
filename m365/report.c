/*
 * report.c - the users, sign-ins, policies, plans and organisation reports
 * (see report.h): the column
 * tables, cell text, CSV, and streaming the rows of a query from the store
 * with the exceptions annotated and the where expression applied.
 */
#include "m365/report.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/expr.h"
#include "base/strbuf.h"
#include "db/db_ca.h"
#include "db/db_plans.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "m365/kpi.h"

enum cell_fmt { CF_TEXT, CF_ONOFF, CF_YESNO, CF_SMTP, CF_SIGNIN, CF_INT, CF_LIST, CF_EWS };

/* The users report: one line per user. */
static const struct report_col user_cols[] = {
    {"upn", "upn", CF_TEXT},
    {"ActiveSync", "activesync_enabled", CF_ONOFF},
    {"OWA", "owa_enabled", CF_ONOFF},
    {"POP", "pop_enabled", CF_ONOFF},
    {"IMAP", "imap_enabled", CF_ONOFF},
    {"MAPI", "mapi_enabled", CF_ONOFF},
    {"EWS", "ews_enabled", CF_ONOFF},
    {"SMTP client auth", "smtp_client_auth_disabled", CF_SMTP},
    {"pop3_30d", "pop3_30d", CF_YESNO},
    {"imap4_30d", "imap4_30d", CF_YESNO},
    {"smtp_30d", "smtp_30d", CF_YESNO},
    {"last legacy sign-in", "last_legacy_signin", CF_SIGNIN},
    {"smtp_basic_30d", "smtp_basic_30d", CF_INT},
    {"drift", "drift", CF_TEXT},
    /* Who is exempt and why: active exceptions (m365/kpi.h, docs/kpis.md). */
    {"exempt", "exempt", CF_LIST},
    {"exempt_reason", "exempt_reason", CF_TEXT},
};

/* The sign-ins report: one line per legacy sign-in. */
static const struct report_col signin_cols[] = {
    {"created_at", "created_at", CF_TEXT},
    {"upn", "upn", CF_TEXT},
    {"client_app", "client_app", CF_TEXT},
    {"app", "app_name", CF_TEXT},
    {"ip_address", "ip_address", CF_TEXT},
    {"error_code", "error_code", CF_INT},
    {"interactive", "interactive", CF_YESNO},
};

/* The policies report: one line per synced Conditional Access policy that
 * blocks legacy authentication (db/db_ca.h). */
static const struct report_col policy_cols[] = {
    {"policy", "display_name", CF_TEXT},
    {"state", "state", CF_TEXT},
    {"microsoft_managed", "managed", CF_YESNO},
    {"written_by_assent", "assent", CF_YESNO},
    {"client_app_types", "client_app_types", CF_LIST},
    {"grant", "grant_controls", CF_LIST},
    {"modified_at", "modified_at", CF_TEXT},
    {"id", "id", CF_TEXT},
};

/* The plans report: one line per CAS mailbox plan. */
static const struct report_col plan_cols[] = {
    {"plan", "display_name", CF_TEXT},
    {"POP", "pop_enabled", CF_ONOFF},
    {"IMAP", "imap_enabled", CF_ONOFF},
    {"ActiveSync", "activesync_enabled", CF_ONOFF},
    {"legacy_on", "legacy_on", CF_YESNO},
    {"OWA policy", "owa_mailbox_policy", CF_TEXT},
    {"name", "name", CF_TEXT},
};

/* The organisation report: one line, the EWS settings. */
static const struct report_col org_cols[] = {
    {"EWSEnabled", "ews_enabled", CF_EWS},
    {"EwsApplicationAccessPolicy", "ews_application_access_policy", CF_TEXT},
    {"EwsAllowedAppIDs", "ews_allowed_app_ids", CF_LIST},
    {"pending (not visible yet)", "pending_app_ids", CF_LIST},
    {"synced_at", "synced_at", CF_TEXT},
};

const struct report_col *report_columns(enum report_kind kind, size_t *n)
{
    if (kind == REPORT_PLANS) {
        *n = sizeof plan_cols / sizeof plan_cols[0];
        return plan_cols;
    }
    if (kind == REPORT_ORG) {
        *n = sizeof org_cols / sizeof org_cols[0];
        return org_cols;
    }
    if (kind == REPORT_POLICIES) {
        *n = sizeof policy_cols / sizeof policy_cols[0];
        return policy_cols;
    }
    if (kind == REPORT_USERS) {
        *n = sizeof user_cols / sizeof user_cols[0];
        return user_cols;
    }
    *n = sizeof signin_cols / sizeof signin_cols[0];
    return signin_cols;
}

void report_cell_text(const struct report_col *c, const json_t *row, char *out, size_t size)
{
    const json_t *v = json_object_get(row, c->key);
    switch (c->fmt) {
    case CF_ONOFF:
        snprintf(out, size, "%s", json_is_true(v) ? "on" : json_is_false(v) ? "off" : "-");
        return;
    case CF_YESNO:
        snprintf(out, size, "%s", json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-");
        return;
    case CF_SMTP: {
        /* The mailbox's own switch, or "org" when it follows the organisation. */
        const json_t *mbx = json_object_get(row, "smtp_client_auth_disabled_mailbox");
        if (!json_is_true(json_object_get(row, "has_mailbox")))
            snprintf(out, size, "-");
        else if (json_is_boolean(mbx))
            snprintf(out, size, "%s", json_is_true(mbx) ? "disabled" : "enabled");
        else
            snprintf(out, size, "org:%s",
                     json_is_true(v) ? "disabled" : json_is_false(v) ? "enabled" : "?");
        return;
    }
    case CF_SIGNIN: {
        const char *when = json_string_value(v);
        const char *app = json_string_value(json_object_get(row, "last_legacy_client_app"));
        if (!when)
            snprintf(out, size, "-");
        else
            snprintf(out, size, "%s%s%s%s", when, app ? " (" : "", app ? app : "", app ? ")" : "");
        return;
    }
    case CF_INT:
        if (json_is_integer(v))
            snprintf(out, size, "%lld", (long long)json_integer_value(v));
        else
            snprintf(out, size, "-");
        return;
    case CF_LIST: {
        size_t used = 0, i;
        json_t *e;
        snprintf(out, size, "-");
        json_array_foreach(v, i, e)
        {
            int n = snprintf(out + used, size - used, "%s%s", i ? "," : "",
                             json_is_string(e) ? json_string_value(e) : "?");
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
        return;
    }
    case CF_EWS:
        /* Unset is not "on": Microsoft treats it as off from 1 October 2026. */
        snprintf(out, size, "%s",
                 json_is_true(v)    ? "true"
                 : json_is_false(v) ? "false"
                                    : "unset (treated as false from 2026-10-01)");
        return;
    case CF_TEXT:
    default:
        snprintf(out, size, "%s", json_is_string(v) ? json_string_value(v) : "-");
        return;
    }
}

void report_csv_field(struct strbuf *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        strbuf_add(b, s);
        return;
    }
    strbuf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            strbuf_addc(b, '"');
        strbuf_addc(b, *s);
    }
    strbuf_addc(b, '"');
}

void report_csv_header(struct strbuf *b, enum report_kind kind)
{
    size_t n;
    const struct report_col *cols = report_columns(kind, &n);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_addc(b, ',');
        report_csv_field(b, cols[i].header);
    }
    strbuf_addc(b, '\n');
}

void report_csv_row(struct strbuf *b, enum report_kind kind, const json_t *row)
{
    size_t n;
    const struct report_col *cols = report_columns(kind, &n);
    char cell[512];
    for (size_t i = 0; i < n; i++) {
        report_cell_text(&cols[i], row, cell, sizeof cell);
        if (i)
            strbuf_addc(b, ',');
        report_csv_field(b, cell);
    }
    strbuf_addc(b, '\n');
}

/* ---- running a query ---- */

#define KEYSET_CHUNK 500 /* users read per statement in the keyset listing */

struct report {
    struct app *app;
    enum report_kind kind;
    struct expr *where;
    char sort_key[128]; /* "" = the store's order */
    int desc;
    int keyset;         /* users by UPN in chunks after a UPN (report_query.after) */
    char after[320];    /* the keyset cursor, lower-cased; "" = from the first */
    char last[320];     /* keyset: the lower-cased UPN of the last row of the chunk */
    int chunk_rows, stopped;
    struct db_tenant_signin_query signins;
    struct kpi_exemptions *exempt; /* users: active exceptions */
    /* per report_foreach */
    int (*cb)(void *ud, const json_t *row);
    void *ud;
    int row_failed;
    struct as_err row_err;
};

enum as_code report_open(struct app *app, const struct report_query *q, int64_t now,
                         struct report **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    *out = NULL;
    struct report *r = calloc(1, sizeof *r);
    if (!r)
        return as_errf(err, AS_ENOMEM, "out of memory");
    r->app = app;
    r->kind = q->kind;
    if (q->where && (rc = expr_compile(q->where, &r->where, err)) != AS_OK) {
        as_err_prefix(err, "where");
        goto fail;
    }
    if (q->sort) {
        if (q->kind != REPORT_USERS) {
            rc = as_errf(err, AS_EINVAL, "sort: sign-ins are always newest first, policies "
                                         "and plans ordered by name; sort is for users");
            goto fail;
        }
        const char *comma = strchr(q->sort, ',');
        size_t n = comma ? (size_t)(comma - q->sort) : strlen(q->sort);
        snprintf(r->sort_key, sizeof r->sort_key, "%.*s", (int)n, q->sort);
        if (comma && strcasecmp(comma + 1, "desc") == 0) {
            r->desc = 1;
        } else if (comma && strcasecmp(comma + 1, "asc") != 0) {
            rc = as_errf(err, AS_EINVAL, "sort: give COL, COL,asc or COL,desc");
            goto fail;
        }
        /* A column header names its row key. */
        for (size_t i = 0; i < sizeof user_cols / sizeof user_cols[0]; i++)
            if (strcasecmp(user_cols[i].header, r->sort_key) == 0)
                snprintf(r->sort_key, sizeof r->sort_key, "%s", user_cols[i].key);
        if (!r->sort_key[0]) {
            rc = as_errf(err, AS_EINVAL, "sort: no column given");
            goto fail;
        }
    }
    if (q->after) {
        if (q->kind != REPORT_USERS || r->sort_key[0]) {
            rc = as_errf(err, AS_EINVAL, "cursor: a keyset cursor is for users by user "
                         "principal name only");
            goto fail;
        }
        size_t n = strlen(q->after);
        if (n >= sizeof r->after) {
            rc = as_errf(err, AS_EINVAL, "cursor: too long");
            goto fail;
        }
        /* The store orders by the lower-cased UPN (ASCII lower-case, as it stores it). */
        for (size_t i = 0; i <= n; i++)
            r->after[i] = (char)tolower((unsigned char)q->after[i]);
        r->keyset = 1;
    }
    if (q->kind == REPORT_SIGNINS) {
        r->signins.since_ms = q->since_ms > 0 ? q->since_ms : now - 30LL * 86400000;
        r->signins.client_app = q->client_app;
        r->signins.upn = q->upn;
    } else if (q->kind == REPORT_USERS &&
               (rc = kpi_exemptions_load(app, now, &r->exempt, err)) != AS_OK) {
        goto fail;
    }
    *out = r;
    return AS_OK;
fail:
    report_free(r);
    return rc;
}

/* A row of the store: annotated (users), filtered, handed on. */
static int report_row(const json_t *row, void *ud)
{
    struct report *r = ud;
    json_t *copy = NULL;
    if (r->exempt) {
        copy = json_copy((json_t *)row);
        if (!copy) {
            as_errf(&r->row_err, AS_ENOMEM, "out of memory");
            r->row_failed = 1;
            return 1;
        }
        kpi_exemptions_annotate(r->exempt, copy);
        row = copy;
    }
    int stop = 0;
    if (r->where) {
        int keep = 0;
        if (expr_eval_bool(r->where, row, &keep, &r->row_err) != AS_OK) {
            const char *upn = json_string_value(json_object_get(row, "upn"));
            as_err_prefix(&r->row_err, "where on %s", upn ? upn : "a row");
            r->row_failed = 1;
            stop = 1;
        } else if (!keep) {
            json_decref(copy);
            return 0;
        }
    }
    if (!stop)
        stop = r->cb(r->ud, row);
    json_decref(copy);
    return stop;
}

/* A row of a keyset chunk: noted (how many, the last UPN), then as any row. */
static int chunk_row(const json_t *row, void *ud)
{
    struct report *r = ud;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    size_t i = 0;
    for (; upn && upn[i] && i + 1 < sizeof r->last; i++)
        r->last[i] = (char)tolower((unsigned char)upn[i]);
    r->last[i] = '\0';
    r->chunk_rows++;
    int stop = report_row(row, ud);
    r->stopped |= stop;
    return stop;
}

/*
 * The keyset listing: chunks of KEYSET_CHUNK users after the cursor, each
 * starting after the last of the one before, until the consumer stops or
 * the users end.  A page reads about as many rows as it shows.
 */
static enum as_code keyset_foreach(struct report *r, struct as_err *err)
{
    char cursor[sizeof r->after];
    memcpy(cursor, r->after, sizeof cursor);
    for (;;) {
        r->chunk_rows = 0;
        r->stopped = 0;
        enum as_code rc =
            db_tenant_users_foreach_after(r->app->db, cursor, KEYSET_CHUNK, chunk_row, r, err);
        if (rc || r->stopped || r->chunk_rows < KEYSET_CHUNK)
            return rc;
        memcpy(cursor, r->last, sizeof cursor);
    }
}

static int newest_pending(const json_t *row, void *ud)
{
    json_t **slot = ud;
    const char *setting = json_string_value(json_object_get(row, "setting"));
    if (!*slot && json_is_true(json_object_get(row, "pending")) && setting &&
        !strcmp(setting, "EwsAllowedAppIDs"))
        *slot = json_incref((json_t *)row);
    return *slot != NULL;
}

/* The organisation's one row, with the newest pending allow-list write. */
static enum as_code org_foreach(struct report *r, struct as_err *err)
{
    json_t *row = NULL, *pending = NULL;
    enum as_code rc = db_org_config_get(r->app->db, &row, err);
    if (!rc && row)
        rc = db_org_writes_foreach(r->app->db, 20, newest_pending, &pending, err);
    if (!rc && row) {
        json_object_set(row, "pending_app_ids",
                        pending ? json_object_get(pending, "value") : json_null());
        json_object_set(row, "pending_since",
                        pending ? json_object_get(pending, "written_at") : json_null());
        report_row(row, r);
    }
    json_decref(pending);
    json_decref(row);
    return rc;
}

enum as_code report_foreach(struct report *r, int (*cb)(void *ud, const json_t *row), void *ud,
                            struct as_err *err)
{
    r->cb = cb;
    r->ud = ud;
    r->row_failed = 0;
    memset(&r->row_err, 0, sizeof r->row_err);
    enum as_code rc;
    if (r->kind == REPORT_SIGNINS)
        rc = db_tenant_signins_foreach(r->app->db, &r->signins, report_row, r, err);
    else if (r->kind == REPORT_POLICIES)
        rc = db_ca_policies_foreach(r->app->db, report_row, r, err);
    else if (r->keyset)
        rc = keyset_foreach(r, err);
    else if (r->kind == REPORT_PLANS)
        rc = db_plans_foreach(r->app->db, report_row, r, err);
    else if (r->kind == REPORT_ORG)
        rc = org_foreach(r, err);
    else if (r->sort_key[0])
        rc = db_tenant_users_foreach_sorted(r->app->db, r->sort_key, r->desc, report_row, r, err);
    else
        rc = db_tenant_users_foreach(r->app->db, report_row, r, err);
    if (rc == AS_EINVAL && r->sort_key[0] && !r->row_failed)
        as_err_prefix(err, "sort");
    if (!rc && r->row_failed)
        rc = as_errf(err, r->row_err.code ? r->row_err.code : AS_EINVAL, "%s", r->row_err.msg);
    return rc;
}

int report_row_failed(const struct report *r)
{
    return r->row_failed;
}

void report_free(struct report *r)
{
    if (!r)
        return;
    expr_free(r->where);
    kpi_exemptions_free(r->exempt);
    free(r);
}
