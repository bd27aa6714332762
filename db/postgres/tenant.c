/*
 * tenant.c - the PostgreSQL store's synced Microsoft 365 tenant: the writes
 * of `assent sync` and the report rows of `assent report`, `plan` and the
 * KPIs (contract in db/db_tenant.h; the SQLite dialect is
 * db/sqlite/db_tenant.c, whose column table this one follows key for key).
 *
 * Ordering and case.  SQLite sorts text by bytes and compares UPNs without
 * regard to ASCII case; here text is ordered COLLATE "C" (bytes, whatever
 * the database's collation) and UPNs are lower-cased in ASCII by the caller
 * (as they are stored in upn_lower), so both backends list the same rows in
 * the same order.  NULLs sort first ascending and last descending, as in
 * SQLite.
 */
#include "db/postgres/pg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

enum col_kind { COL_TEXT, COL_BOOL, COL_INT, COL_TIME_ISO };

struct user_col {
    const char *key;
    const char *sql;
    enum col_kind kind;
};

/*
 * Tables: u = tenant_users, c = tenant_cas, o = tenant_org, g = tenant_usage,
 * s = per-user aggregate of tenant_signins since $1 (the last 30 days).
 * The keys and their order are db/sqlite/db_tenant.c's (db_tenant.h);
 * booleans are selected as integers (0/1, NULL).
 */
static const struct user_col user_cols[] = {
    {"id", "u.id", COL_TEXT},
    {"upn", "u.upn", COL_TEXT},
    {"display_name", "u.display_name", COL_TEXT},
    {"mail", "u.mail", COL_TEXT},
    {"account_enabled", "u.account_enabled", COL_BOOL},
    {"has_mailbox", "(c.user_id IS NOT NULL)::int", COL_BOOL},
    {"activesync_enabled", "c.activesync", COL_BOOL},
    {"owa_enabled", "c.owa", COL_BOOL},
    {"pop_enabled", "c.pop", COL_BOOL},
    {"imap_enabled", "c.imap", COL_BOOL},
    {"mapi_enabled", "c.mapi", COL_BOOL},
    {"ews_enabled", "c.ews", COL_BOOL},
    {"smtp_client_auth_disabled",
     "CASE WHEN c.user_id IS NULL THEN NULL "
     "ELSE COALESCE(c.smtp_auth_disabled, o.smtp_client_auth_disabled) END",
     COL_BOOL},
    {"smtp_client_auth_disabled_mailbox", "c.smtp_auth_disabled", COL_BOOL},
    {"pop3_30d", "CASE WHEN g.upn_lower IS NOT NULL THEN g.pop3 WHEN o.usage_synced_at IS NOT NULL THEN 0 END", COL_BOOL},
    {"imap4_30d", "CASE WHEN g.upn_lower IS NOT NULL THEN g.imap4 WHEN o.usage_synced_at IS NOT NULL THEN 0 END", COL_BOOL},
    {"smtp_30d", "CASE WHEN g.upn_lower IS NOT NULL THEN g.smtp WHEN o.usage_synced_at IS NOT NULL THEN 0 END", COL_BOOL},
    {"legacy_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"last_legacy_signin", "s.last_at", COL_TEXT},
    {"last_legacy_client_app", "s.app", COL_TEXT},
    {"smtp_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.smtp_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"pop3_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.pop3_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"imap4_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.imap4_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"activesync_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.activesync_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"ews_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.ews_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"other_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.other_n WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"noninteractive_signins_30d", "CASE WHEN s.n IS NOT NULL THEN s.ni WHEN o.signins_synced_at IS NOT NULL THEN 0 END", COL_INT},
    {"smtp_basic_30d", "CASE WHEN a.upn_lower IS NOT NULL THEN a.basic_messages WHEN o.smtp_auth_imported_at IS NOT NULL THEN 0 END", COL_INT},
    {"drift", "(SELECT string_agg(protocol, ',' ORDER BY protocol) FROM m365_disabled WHERE upn_lower = u.upn_lower AND drift_at IS NOT NULL)", COL_TEXT},
    {"synced_at", "u.synced_at", COL_TIME_ISO},
};
#define N_USER_COLS (sizeof user_cols / sizeof user_cols[0])

/* s: each user's count of legacy sign-ins since $1 and the newest of them
 * (DISTINCT ON keeps the first row per user in the window's order). */
static const char user_from[] =
    " FROM tenant_users u"
    " LEFT JOIN tenant_cas c ON c.user_id = u.id"
    " LEFT JOIN tenant_org o ON o.id = 1"
    " LEFT JOIN tenant_usage g ON g.upn_lower = u.upn_lower"
    " LEFT JOIN tenant_smtp_auth a ON a.upn_lower = u.upn_lower"
    " LEFT JOIN (SELECT DISTINCT ON (user_id) user_id,"
    " count(*) OVER w AS n, created_at AS last_at, client_app AS app,"
    " count(*) FILTER (WHERE interactive = 0) OVER w AS ni"
    ", count(*) FILTER (WHERE lower(client_app) = 'authenticated smtp') OVER w AS smtp_n, count(*) FILTER (WHERE lower(client_app) = 'pop3') OVER w AS pop3_n, count(*) FILTER (WHERE lower(client_app) = 'imap4') OVER w AS imap4_n, count(*) FILTER (WHERE lower(client_app) = 'exchange activesync') OVER w AS activesync_n, count(*) FILTER (WHERE lower(client_app) = 'exchange web services') OVER w AS ews_n, count(*) FILTER (WHERE lower(client_app) = 'other clients') OVER w AS other_n"
    " FROM tenant_signins WHERE created_ms >= $1 AND user_id IS NOT NULL"
    " WINDOW w AS (PARTITION BY user_id)"
    " ORDER BY user_id, created_ms DESC, id COLLATE \"C\") s ON s.user_id = u.id";

static char sql_all[8192], sql_one[8192], sql_after[8192];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void build_sql(void)
{
    char cols[6000];
    size_t o = 0;
    for (size_t i = 0; i < N_USER_COLS; i++)
        o += (size_t)snprintf(cols + o, sizeof cols - o, "%s(%s)", i ? ", " : "", user_cols[i].sql);
    snprintf(sql_all, sizeof sql_all, "SELECT %s%s ORDER BY u.upn_lower COLLATE \"C\"", cols,
             user_from);
    snprintf(sql_one, sizeof sql_one,
             "SELECT %s%s WHERE u.upn_lower = $3 OR u.id = $2 LIMIT 1", cols, user_from);
    /* A page: its users first (p), then their rows, the sign-ins of p only. */
    char from_page[4096];
    const char *agg = strstr(user_from, " AND user_id IS NOT NULL");
    snprintf(from_page, sizeof from_page, "%.*s AND user_id IN (SELECT id FROM p)%s",
             (int)(agg - user_from), user_from, agg + strlen(" AND user_id IS NOT NULL"));
    snprintf(sql_after, sizeof sql_after,
             "WITH p AS (SELECT id FROM tenant_users WHERE upn_lower COLLATE \"C\" > $2"
             " ORDER BY upn_lower COLLATE \"C\" LIMIT $3) SELECT %s%s WHERE u.id IN"
             " (SELECT id FROM p) ORDER BY u.upn_lower COLLATE \"C\"",
             cols, from_page);
}

static json_t *cell(const PGresult *r, int i, int col, enum col_kind kind)
{
    if (pg_isnull(r, i, col))
        return json_null();
    switch (kind) {
    case COL_BOOL:
        return json_boolean(pg_i64(r, i, col) != 0);
    case COL_INT:
        return json_integer(pg_i64(r, i, col));
    case COL_TIME_ISO: {
        char buf[40];
        time_format_iso(pg_i64(r, i, col), buf, sizeof buf);
        return json_string(buf);
    }
    case COL_TEXT:
    default:
        return json_string(pg_text(r, i, col));
    }
}

static json_t *user_row(const PGresult *r, int i)
{
    json_t *row = json_object();
    if (!row)
        return NULL;
    for (size_t k = 0; k < N_USER_COLS; k++) {
        json_t *v = cell(r, i, (int)k, user_cols[k].kind);
        if (!v || json_object_set_new(row, user_cols[k].key, v) != 0) {
            json_decref(row);
            return NULL;
        }
    }
    return row;
}

/* Lower-case ASCII copy (UPNs compare case-insensitively), malloc'd. */
static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *l = malloc(n + 1);
    if (!l)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        l[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    return l;
}

/* A JSON boolean as 1/0, anything else as NULL. */
static void arg_bool(struct pg_args *a, const json_t *v)
{
    if (json_is_boolean(v))
        pg_arg_i64(a, json_is_true(v));
    else
        pg_arg_text(a, NULL);
}

/* Run sql with one integer parameter for its effect; *changed may be NULL. */
static enum as_code do_i64(struct db_conn *c, const char *sql, int64_t v, const char *what,
                           int64_t *changed, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, v);
    return pg_do(c, sql, &a, what, changed, err);
}

/* ---- sync writes ------------------------------------------------------------ */

enum as_code db_pg_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                     struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, now_ms);
    PGresult *r = pg_run(c,
                         "INSERT INTO tenant_syncs (started_at, status) VALUES ($1, 'running')"
                         " RETURNING id",
                         &a, "start sync", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    *sync_id = pg_i64(r, 0, 0);
    PQclear(r);
    return db_pg_write_end(db, AS_OK, err);
}

enum as_code db_pg_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                      const char *status, const json_t *summary, const char *error,
                                      struct as_err *err)
{
    struct db_conn *c;
    char *text = summary ? json_dumps(summary, JSON_COMPACT) : strdup("{}");
    if (!text)
        return oom(err);
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, now_ms);
    pg_arg_text(&a, status);
    pg_arg_text(&a, text);
    pg_arg_text(&a, error);
    rc = pg_do(c,
               "UPDATE tenant_syncs SET finished_at = $2, status = $3, summary = $4, error = $5"
               " WHERE id = $1",
               &a, "finish sync", NULL, err);
    rc = db_pg_write_end(db, rc, err);
    free(text);
    return rc;
}

enum as_code db_pg_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                   const json_t *user, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO tenant_users (id, upn, upn_lower, display_name, mail, account_enabled,"
        " licensed, sync_id, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (id) DO UPDATE SET upn = excluded.upn, upn_lower = excluded.upn_lower,"
        " display_name = excluded.display_name, mail = excluded.mail,"
        " account_enabled = excluded.account_enabled, licensed = excluded.licensed,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at";
    const char *id = json_string_value(json_object_get(user, "id"));
    const char *upn = json_string_value(json_object_get(user, "userPrincipalName"));
    if (!id || !*id || !upn || !*upn)
        return as_errf(err, AS_EINVAL, "a Graph user without id or userPrincipalName");
    char *lower = lower_dup(upn);
    if (!lower)
        return oom(err);
    json_t *lic = json_object_get(user, "assignedLicenses");
    struct pg_args a = {0};
    pg_arg_text(&a, id);
    pg_arg_text(&a, upn);
    pg_arg_text(&a, lower);
    pg_arg_text(&a, json_string_value(json_object_get(user, "displayName")));
    pg_arg_text(&a, json_string_value(json_object_get(user, "mail")));
    arg_bool(&a, json_object_get(user, "accountEnabled"));
    if (json_is_array(lic))
        pg_arg_i64(&a, json_array_size(lic) > 0);
    else
        pg_arg_text(&a, NULL);
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, now_ms);
    enum as_code rc = pg_do(c, sql, &a, "store user", NULL, err);
    free(lower);
    return rc;
}

enum as_code db_pg_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                      struct as_err *err)
{
    int64_t n = 0;
    enum as_code rc = do_i64(c, "DELETE FROM tenant_users WHERE sync_id <> $1", sync_id,
                             "remove users gone from the tenant", &n, err);
    if (rc)
        return rc;
    *removed = (long)n;
    return pg_do(c, "DELETE FROM tenant_cas WHERE user_id NOT IN (SELECT id FROM tenant_users)",
                 NULL, "remove mailboxes of removed users", NULL, err);
}

/* The id of the synced user matched by sql with $1 = key, into id (size
 * bytes); id is left alone when no user matches. */
static enum as_code user_id_by(struct db_conn *c, const char *sql, const char *key, char *id,
                               size_t size, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    PGresult *r = pg_run(c, sql, &a, "match mailbox", err);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) > 0)
        snprintf(id, size, "%s", pg_text(r, 0, 0));
    PQclear(r);
    return AS_OK;
}

/* The synced user a mailbox belongs to, into id (size bytes); "" when none. */
static enum as_code cas_owner(struct db_conn *c, const json_t *mbx, char *id, size_t size,
                              struct as_err *err)
{
    const char *edoi = json_string_value(json_object_get(mbx, "ExternalDirectoryObjectId"));
    const char *smtp = json_string_value(json_object_get(mbx, "PrimarySmtpAddress"));
    id[0] = '\0';
    if (edoi && *edoi) {
        enum as_code rc =
            user_id_by(c, "SELECT id FROM tenant_users WHERE id = $1", edoi, id, size, err);
        if (rc || id[0])
            return rc;
    }
    if (smtp && *smtp) {
        char *lower = lower_dup(smtp);
        if (!lower)
            return oom(err);
        enum as_code rc =
            user_id_by(c, "SELECT id FROM tenant_users WHERE upn_lower = $1 LIMIT 1", lower, id,
                       size, err);
        free(lower);
        return rc;
    }
    return AS_OK;
}

enum as_code db_pg_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                  const json_t *mbx, int *matched, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO tenant_cas (user_id, identity, primary_smtp, activesync, owa, pop, imap, mapi,"
        " ews, smtp_auth_disabled, sync_id, synced_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (user_id) DO UPDATE SET identity = excluded.identity,"
        " primary_smtp = excluded.primary_smtp, activesync = excluded.activesync,"
        " owa = excluded.owa, pop = excluded.pop, imap = excluded.imap, mapi = excluded.mapi,"
        " ews = excluded.ews, smtp_auth_disabled = excluded.smtp_auth_disabled,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at";
    static const char *const props[] = {"ActiveSyncEnabled", "OWAEnabled", "PopEnabled",
                                        "ImapEnabled", "MAPIEnabled", "EwsEnabled",
                                        "SmtpClientAuthenticationDisabled"};
    char owner[256];
    *matched = 0;
    enum as_code rc = cas_owner(c, mbx, owner, sizeof owner, err);
    if (rc || !owner[0])
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, owner);
    pg_arg_text(&a, json_string_value(json_object_get(mbx, "Identity")));
    pg_arg_text(&a, json_string_value(json_object_get(mbx, "PrimarySmtpAddress")));
    for (int i = 0; i < 7; i++)
        arg_bool(&a, json_object_get(mbx, props[i]));
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, now_ms);
    rc = pg_do(c, sql, &a, "store mailbox", NULL, err);
    if (!rc)
        *matched = 1;
    return rc;
}

enum as_code db_pg_tenant_cas_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    return do_i64(c, "DELETE FROM tenant_cas WHERE sync_id <> $1", sync_id,
                  "remove mailboxes gone from the tenant", NULL, err);
}

enum as_code db_pg_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                    const char *upn, int pop3, int imap4, int smtp,
                                    const char *last_activity, const char *report_date,
                                    struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO tenant_usage (upn_lower, pop3, imap4, smtp, last_activity, report_date,"
        " sync_id, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (upn_lower) DO UPDATE SET pop3 = excluded.pop3, imap4 = excluded.imap4,"
        " smtp = excluded.smtp, last_activity = excluded.last_activity,"
        " report_date = excluded.report_date, sync_id = excluded.sync_id,"
        " synced_at = excluded.synced_at";
    char *lower = lower_dup(upn);
    if (!lower)
        return oom(err);
    struct pg_args a = {0};
    pg_arg_text(&a, lower);
    pg_arg_i64(&a, pop3 != 0);
    pg_arg_i64(&a, imap4 != 0);
    pg_arg_i64(&a, smtp != 0);
    pg_arg_nonempty(&a, last_activity);
    pg_arg_nonempty(&a, report_date);
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, now_ms);
    enum as_code rc = pg_do(c, sql, &a, "store usage", NULL, err);
    free(lower);
    return rc;
}

static enum as_code org_ensure(struct db_conn *c, struct as_err *err)
{
    return pg_do(c, "INSERT INTO tenant_org (id) VALUES (1) ON CONFLICT (id) DO NOTHING", NULL,
                 "organisation row", NULL, err);
}

enum as_code db_pg_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     struct as_err *err)
{
    enum as_code rc = do_i64(c, "DELETE FROM tenant_usage WHERE sync_id <> $1", sync_id,
                             "remove old usage", NULL, err);
    if (!rc)
        rc = org_ensure(c, err);
    if (!rc)
        rc = do_i64(c, "UPDATE tenant_org SET usage_synced_at = $1 WHERE id = 1", now_ms,
                    "mark usage synced", NULL, err);
    return rc;
}

enum as_code db_pg_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                            const json_t *transport, struct as_err *err)
{
    enum as_code rc = org_ensure(c, err);
    if (rc)
        return rc;
    char *text = json_dumps(transport, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return oom(err);
    struct pg_args a = {0};
    arg_bool(&a, json_object_get(transport, "SmtpClientAuthenticationDisabled"));
    arg_bool(&a, json_object_get(transport, "AllowLegacyTLSClients"));
    pg_arg_text(&a, text);
    pg_arg_i64(&a, now_ms);
    rc = pg_do(c,
               "UPDATE tenant_org SET smtp_client_auth_disabled = $1, allow_legacy_tls_clients = $2,"
               " transport = $3, transport_synced_at = $4 WHERE id = 1",
               &a, "store transport config", NULL, err);
    free(text);
    return rc;
}

enum as_code db_pg_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                     struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO tenant_signins (id, created_ms, created_at, user_id, upn, client_app,"
        " app_name, ip_address, error_code, sync_id, interactive)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (id) DO UPDATE SET sync_id = excluded.sync_id";
    const char *id = json_string_value(json_object_get(signin, "id"));
    const char *when = json_string_value(json_object_get(signin, "createdDateTime"));
    const char *app = json_string_value(json_object_get(signin, "clientAppUsed"));
    int64_t ms;
    if (!id || !when || !app || time_parse_iso(when, &ms) != AS_OK)
        return as_errf(err, AS_EINVAL,
                       "a sign-in event without id, createdDateTime or clientAppUsed");
    json_t *code = json_object_get(json_object_get(signin, "status"), "errorCode");
    struct pg_args a = {0};
    pg_arg_text(&a, id);
    pg_arg_i64(&a, ms);
    pg_arg_text(&a, when);
    pg_arg_text(&a, json_string_value(json_object_get(signin, "userId")));
    pg_arg_text(&a, json_string_value(json_object_get(signin, "userPrincipalName")));
    pg_arg_text(&a, app);
    pg_arg_text(&a, json_string_value(json_object_get(signin, "appDisplayName")));
    pg_arg_text(&a, json_string_value(json_object_get(signin, "ipAddress")));
    if (json_is_integer(code))
        pg_arg_i64(&a, json_integer_value(code));
    else
        pg_arg_text(&a, NULL);
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, db_signin_interactive(signin));
    return pg_do(c, sql, &a, "store sign-in", NULL, err);
}

enum as_code db_pg_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                       struct as_err *err)
{
    enum as_code rc = do_i64(c, "DELETE FROM tenant_signins WHERE created_ms < $1",
                             older_than_ms, "remove old sign-ins", NULL, err);
    if (!rc)
        rc = org_ensure(c, err);
    if (!rc)
        rc = do_i64(c, "UPDATE tenant_org SET signins_synced_at = $1 WHERE id = 1", now_ms,
                    "mark sign-ins synced", NULL, err);
    return rc;
}

/* ---- reads ------------------------------------------------------------------- */

#define DAY_MS (86400000LL)

struct rows_each {
    json_t *(*make_row)(const PGresult *r, int i);
    int (*cb)(const json_t *row, void *ud);
    void *ud;
    int oom;
};

static int each_row(void *ud, const PGresult *r, int i)
{
    struct rows_each *e = ud;
    json_t *row = e->make_row(r, i);
    if (!row) {
        e->oom = 1;
        return 1;
    }
    int stop = e->cb(row, e->ud);
    json_decref(row);
    return stop;
}

/* See pg.h. */
enum as_code pg_rows_each(struct db *db, const char *sql, const struct pg_args *a,
                          json_t *(*make_row)(const PGresult *r, int i),
                          int (*cb)(const json_t *row, void *ud), void *ud, const char *what,
                          struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct rows_each e = {make_row, cb, ud, 0};
    rc = pg_each_stream(c, sql, a, each_row, &e, what, err);
    db_pg_read_end(db, c);
    if (!rc && e.oom)
        rc = oom(err);
    return rc;
}

/* The first parameter of every user-row query: the start of the sign-in window. */
static void users_args(struct pg_args *a)
{
    pg_arg_i64(a, time_now_ms() - 30 * DAY_MS);
}

enum as_code db_pg_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                        void *ud, struct as_err *err)
{
    pthread_once(&sql_once, build_sql);
    struct pg_args a = {0};
    users_args(&a);
    return pg_rows_each(db, sql_all, &a, user_row, cb, ud, "read users", err);
}

enum as_code db_pg_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                              int (*cb)(const json_t *row, void *ud), void *ud,
                                              struct as_err *err)
{
    pthread_once(&sql_once, build_sql);
    struct pg_args a = {0};
    users_args(&a);
    pg_arg_text(&a, after_lower);
    if (limit > 0)
        pg_arg_i64(&a, limit);
    else
        pg_arg_text(&a, NULL); /* LIMIT NULL: no limit */
    return pg_rows_each(db, sql_after, &a, user_row, cb, ud, "read users", err);
}

enum as_code db_pg_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                               int (*cb)(const json_t *row, void *ud), void *ud,
                                               struct as_err *err)
{
    pthread_once(&sql_once, build_sql);
    size_t k;
    for (k = 0; k < N_USER_COLS; k++)
        if (strcmp(user_cols[k].key, sort_key) == 0)
            break;
    if (k == N_USER_COLS) {
        char keys[1024];
        size_t o = 0;
        for (size_t i = 0; i < N_USER_COLS && o < sizeof keys; i++)
            o += (size_t)snprintf(keys + o, sizeof keys - o, "%s%s", i ? ", " : "",
                                  user_cols[i].key);
        return as_errf(err, AS_EINVAL, "cannot sort by \"%s\"; columns: %s", sort_key, keys);
    }
    /* At most one statement per key and direction, so preparing each once
     * per connection stays bounded. */
    char sql[9000];
    /* The listing's own ORDER BY is the last one (s has one too). */
    const char *all_end = NULL;
    for (const char *p = sql_all; (p = strstr(p, " ORDER BY ")) != NULL; p++)
        all_end = p;
    snprintf(sql, sizeof sql, "%.*s ORDER BY (%s)%s %s, u.upn_lower COLLATE \"C\"",
             (int)(all_end - sql_all), sql_all, user_cols[k].sql,
             user_cols[k].kind == COL_TEXT ? " COLLATE \"C\"" : "",
             desc ? "DESC NULLS LAST" : "ASC NULLS FIRST");
    struct pg_args a = {0};
    users_args(&a);
    return pg_rows_each(db, sql, &a, user_row, cb, ud, "read users", err);
}

enum as_code db_pg_tenant_org_transport(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    PGresult *r = pg_run(c, "SELECT transport FROM tenant_org WHERE id = 1 AND transport IS NOT NULL",
                         NULL, "read transport config", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        *out = json_loads(pg_text(r, 0, 0), 0, NULL);
        if (!*out)
            rc = as_errf(err, AS_EDB, "stored transport config is not JSON");
    }
    PQclear(r);
    return rc;
}

enum as_code db_pg_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                   struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    pthread_once(&sql_once, build_sql);
    char *lower = lower_dup(upn_or_id);
    if (!lower)
        return oom(err);
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc) {
        free(lower);
        return rc;
    }
    struct pg_args a = {0};
    users_args(&a);
    pg_arg_text(&a, upn_or_id);
    pg_arg_text(&a, lower);
    PGresult *r = pg_run(c, sql_one, &a, "read user", err);
    db_pg_read_end(db, c);
    free(lower);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        *out = user_row(r, 0);
        if (!*out)
            rc = oom(err);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no synced user '%s'", upn_or_id);
    }
    PQclear(r);
    return rc;
}

static json_t *signin_row(const PGresult *r, int i)
{
    static const char *const keys[] = {"id", "created_at", "upn", "user_id", "client_app",
                                       "app_name", "ip_address", "error_code", "interactive"};
    json_t *row = json_object();
    for (int k = 0; row && k < 9; k++)
        json_object_set_new(row, keys[k],
                            cell(r, i, k, k == 7 ? COL_INT : k == 8 ? COL_BOOL : COL_TEXT));
    return row;
}

enum as_code db_pg_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                          int (*cb)(const json_t *row, void *ud), void *ud,
                                          struct as_err *err)
{
    /* Case-insensitive in ASCII, as SQLite's NOCASE: both sides lowered by
     * the caller's rules would need the stored side too, so lower() here
     * (in a UTF-8 database with a C or ICU collation lower() also folds
     * non-ASCII letters, which NOCASE does not: a wider match, never a
     * narrower one). */
    struct pg_args a = {0};
    pg_arg_i64(&a, q ? q->since_ms : 0);
    pg_arg_text(&a, q ? q->client_app : NULL);
    pg_arg_text(&a, q ? q->upn : NULL);
    return pg_rows_each(db,
                     "SELECT id, created_at, upn, user_id, client_app, app_name, ip_address,"
                     " error_code, interactive FROM tenant_signins WHERE created_ms >= $1"
                     " AND ($2::text IS NULL OR lower(client_app) = lower($2::text))"
                     " AND ($3::text IS NULL OR lower(upn) = lower($3::text))"
                     " ORDER BY created_ms DESC, id COLLATE \"C\"",
                     &a, signin_row, cb, ud, "read sign-ins", err);
}

enum as_code db_pg_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                              size_t status_size, struct as_err *err)
{
    struct db_conn *c;
    *finished_at = 0;
    if (status_size)
        *status = '\0';
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    PGresult *r = pg_run(c,
                         "SELECT finished_at, status FROM tenant_syncs"
                         " WHERE status IN ('ok','partial') AND finished_at IS NOT NULL"
                         " ORDER BY id DESC LIMIT 1",
                         NULL, "read last completed sync", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        *finished_at = pg_i64(r, 0, 0);
        snprintf(status, status_size, "%s", pg_text(r, 0, 1));
    }
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_tenant_last_sync(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    PGresult *r = pg_run(c,
                         "SELECT id, started_at, finished_at, status, summary, error"
                         " FROM tenant_syncs ORDER BY id DESC LIMIT 1",
                         NULL, "read last sync", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        json_t *summary = json_loads(pg_text(r, 0, 4), 0, NULL);
        *out = json_pack("{s:I, s:o, s:o, s:s, s:o, s:o}", "id", (json_int_t)pg_i64(r, 0, 0),
                         "started_at", cell(r, 0, 1, COL_TIME_ISO), "finished_at",
                         cell(r, 0, 2, COL_TIME_ISO), "status", pg_text(r, 0, 3), "summary",
                         summary ? summary : json_object(), "error", cell(r, 0, 5, COL_TEXT));
        if (!*out)
            rc = oom(err);
    }
    PQclear(r);
    return rc;
}
