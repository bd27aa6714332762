/*
 * db_tenant.c - SQL for the synced tenant (see db_tenant.h).
 *
 * The report row is defined once, by the column table user_cols[]: each
 * entry names the JSON key, the SQL expression over the joined tables and how
 * to convert it.  The SELECT is assembled from that table on first use.  To
 * add a column (e.g. an exception flag) add one line there.
 */
#include "db/db_tenant.h"
#include "db/sqlite/sqlite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"

enum col_kind { COL_TEXT, COL_BOOL, COL_INT, COL_TIME_ISO };

struct user_col {
    const char *key;
    const char *sql;
    enum col_kind kind;
};

/*
 * Tables: u = tenant_users, c = tenant_cas, o = tenant_org, g = tenant_usage,
 * s = per-user aggregate of tenant_signins in the last 30 days (?1 = since),
 * a = tenant_smtp_auth (the imported SMTP AUTH clients report).
 */
static const struct user_col user_cols[] = {
    {"id", "u.id", COL_TEXT},
    {"upn", "u.upn", COL_TEXT},
    {"display_name", "u.display_name", COL_TEXT},
    {"mail", "u.mail", COL_TEXT},
    {"account_enabled", "u.account_enabled", COL_BOOL},
    {"has_mailbox", "c.user_id IS NOT NULL", COL_BOOL},
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
    {"drift", "(SELECT group_concat(d.protocol, ',') FROM (SELECT protocol FROM m365_disabled WHERE upn_lower = u.upn_lower AND drift_at IS NOT NULL ORDER BY protocol) d)", COL_TEXT},
    {"synced_at", "u.synced_at", COL_TIME_ISO},
};
#define N_USER_COLS (sizeof user_cols / sizeof user_cols[0])

static const char user_from[] =
    " FROM tenant_users u"
    " LEFT JOIN tenant_cas c ON c.user_id = u.id"
    " LEFT JOIN tenant_org o ON o.id = 1"
    " LEFT JOIN tenant_usage g ON g.upn_lower = u.upn_lower"
    " LEFT JOIN tenant_smtp_auth a ON a.upn_lower = u.upn_lower"
    /* SQLite: bare columns next to max() come from the row holding the max. */
    " LEFT JOIN (SELECT user_id, count(*) AS n, max(created_ms) AS last_ms,"
    " created_at AS last_at, client_app AS app, sum(interactive = 0) AS ni"
    ", sum(lower(client_app) = 'authenticated smtp') AS smtp_n, sum(lower(client_app) = 'pop3') AS pop3_n, sum(lower(client_app) = 'imap4') AS imap4_n, sum(lower(client_app) = 'exchange activesync') AS activesync_n, sum(lower(client_app) = 'exchange web services') AS ews_n, sum(lower(client_app) = 'other clients') AS other_n FROM tenant_signins"
    " WHERE created_ms >= ?1 AND user_id IS NOT NULL GROUP BY user_id) s ON s.user_id = u.id";

static char sql_all[8192], sql_one[8192], sql_after[8192];
static const char *user_keys[N_USER_COLS + 1];
static pthread_once_t sql_once = PTHREAD_ONCE_INIT;

static void build_sql(void)
{
    char cols[6000];
    size_t o = 0;
    for (size_t i = 0; i < N_USER_COLS; i++) {
        o += (size_t)snprintf(cols + o, sizeof cols - o, "%s(%s)", i ? ", " : "", user_cols[i].sql);
        user_keys[i] = user_cols[i].key;
    }
    user_keys[N_USER_COLS] = NULL;
    snprintf(sql_all, sizeof sql_all, "SELECT %s%s ORDER BY u.upn_lower", cols, user_from);
    /* A page: its users first (p), then their rows, the sign-ins of p only. */
    char from_page[4096];
    const char *agg = strstr(user_from, " AND user_id IS NOT NULL");
    snprintf(from_page, sizeof from_page, "%.*s AND user_id IN (SELECT id FROM p)%s",
             (int)(agg - user_from), user_from, agg + strlen(" AND user_id IS NOT NULL"));
    snprintf(sql_after, sizeof sql_after,
             "WITH p AS (SELECT id FROM tenant_users WHERE upn_lower > ?2 ORDER BY upn_lower"
             " LIMIT ?3) SELECT %s%s WHERE u.id IN (SELECT id FROM p) ORDER BY u.upn_lower",
             cols, from_page);
    snprintf(sql_one, sizeof sql_one,
             "SELECT %s%s WHERE u.upn_lower = lower(?2) OR u.id = ?2 LIMIT 1", cols, user_from);
}

const char *const *db_tenant_user_keys(void)
{
    pthread_once(&sql_once, build_sql);
    return user_keys;
}

static json_t *col_json(sqlite3_stmt *st, int i, enum col_kind kind)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    switch (kind) {
    case COL_BOOL:
        return json_boolean(sqlite3_column_int64(st, i) != 0);
    case COL_INT:
        return json_integer(sqlite3_column_int64(st, i));
    case COL_TIME_ISO: {
        char buf[40];
        time_format_iso(sqlite3_column_int64(st, i), buf, sizeof buf);
        return json_string(buf);
    }
    case COL_TEXT:
    default:
        return json_string((const char *)sqlite3_column_text(st, i));
    }
}

static json_t *user_row(sqlite3_stmt *st)
{
    json_t *row = json_object();
    if (!row)
        return NULL;
    for (size_t i = 0; i < N_USER_COLS; i++) {
        json_t *v = col_json(st, (int)i, user_cols[i].kind);
        if (!v || json_object_set_new(row, user_cols[i].key, v) != 0) {
            json_decref(row);
            return NULL;
        }
    }
    return row;
}

/* ------------------------------------------------------------- helpers */

/* Run sql, with ?1 bound to v, for its effect. */
static enum as_code exec_i64(struct db_conn *c, const char *sql, int64_t v, const char *what,
                             struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, v);
    return db_step_done(c, st, what, err);
}

static void bind_bool_or_null(sqlite3_stmt *st, int i, const json_t *v)
{
    if (json_is_boolean(v))
        sqlite3_bind_int(st, i, json_is_true(v));
    else
        sqlite3_bind_null(st, i);
}

/* Lower-case ASCII copy (UPNs are compared case-insensitively). */
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

/* ------------------------------------------------------------ sync rows */

enum as_code db_sqlite_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                         struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = exec_i64(c, "INSERT INTO tenant_syncs(started_at, status) VALUES (?1, 'running')", now_ms,
                  "start sync", err);
    if (!rc)
        *sync_id = sqlite3_last_insert_rowid(db_conn_handle(c));
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                          const char *status, const json_t *summary,
                                          const char *error, struct as_err *err)
{
    struct db_conn *c;
    char *text = summary ? json_dumps(summary, JSON_COMPACT) : strdup("{}");
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE tenant_syncs SET finished_at = ?2, status = ?3, summary = ?4,"
                               " error = ?5 WHERE id = ?1",
                               err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_int64(st, 1, sync_id);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
        db_bind_text_or_null(st, 5, error);
        rc = db_step_done(c, st, "finish sync", err);
    }
    rc = db_sqlite_write_end(db, rc, err);
    free(text);
    return rc;
}

enum as_code db_sqlite_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                       const json_t *user, struct as_err *err)
{
    const char *id = json_string_value(json_object_get(user, "id"));
    const char *upn = json_string_value(json_object_get(user, "userPrincipalName"));
    if (!id || !*id || !upn || !*upn)
        return as_errf(err, AS_EINVAL, "a Graph user without id or userPrincipalName");
    char *lower = lower_dup(upn);
    if (!lower)
        return as_errf(err, AS_ENOMEM, "out of memory");
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_users(id, upn, upn_lower, display_name, mail, account_enabled,"
        " licensed, sync_id, synced_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"
        " ON CONFLICT(id) DO UPDATE SET upn = excluded.upn, upn_lower = excluded.upn_lower,"
        " display_name = excluded.display_name, mail = excluded.mail,"
        " account_enabled = excluded.account_enabled, licensed = excluded.licensed,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at", err);
    if (!st) {
        free(lower);
        return AS_EDB;
    }
    json_t *lic = json_object_get(user, "assignedLicenses");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, upn, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, lower, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 4, json_string_value(json_object_get(user, "displayName")));
    db_bind_text_or_null(st, 5, json_string_value(json_object_get(user, "mail")));
    bind_bool_or_null(st, 6, json_object_get(user, "accountEnabled"));
    if (json_is_array(lic))
        sqlite3_bind_int(st, 7, json_array_size(lic) > 0);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, sync_id);
    sqlite3_bind_int64(st, 9, now_ms);
    free(lower);
    return db_step_done(c, st, "store user", err);
}

enum as_code db_sqlite_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                          struct as_err *err)
{
    enum as_code rc = exec_i64(c, "DELETE FROM tenant_users WHERE sync_id <> ?1", sync_id,
                               "remove users gone from the tenant", err);
    if (rc)
        return rc;
    *removed = (long)sqlite3_changes(db_conn_handle(c));
    sqlite3_stmt *st =
        db_stmt(c, "DELETE FROM tenant_cas WHERE user_id NOT IN (SELECT id FROM tenant_users)", err);
    if (!st)
        return AS_EDB;
    return db_step_done(c, st, "remove mailboxes of removed users", err);
}

/* The synced user a mailbox belongs to, into id (size bytes); "" when none. */
/* The id of the synced user matched by sql with ?1 = key, into id (size
 * bytes); id is left alone when no user matches. */
static enum as_code user_id_by(struct db_conn *c, const char *sql, const char *key, char *id,
                               size_t size, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        snprintf(id, size, "%s", (const char *)sqlite3_column_text(st, 0));
    db_stmt_done(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return db_error(c, "match mailbox", err);
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
            user_id_by(c, "SELECT id FROM tenant_users WHERE id = ?1", edoi, id, size, err);
        if (rc || id[0])
            return rc;
    }
    if (smtp && *smtp) {
        char *lower = lower_dup(smtp);
        if (!lower)
            return as_errf(err, AS_ENOMEM, "out of memory");
        enum as_code rc = user_id_by(c, "SELECT id FROM tenant_users WHERE upn_lower = ?1 LIMIT 1",
                                     lower, id, size, err);
        free(lower);
        return rc;
    }
    return AS_OK;
}

enum as_code db_sqlite_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                      const json_t *mbx, int *matched, struct as_err *err)
{
    char owner[256];
    *matched = 0;
    enum as_code rc = cas_owner(c, mbx, owner, sizeof owner, err);
    if (rc || !owner[0])
        return rc;
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_cas(user_id, identity, primary_smtp, activesync, owa, pop, imap, mapi,"
        " ews, smtp_auth_disabled, sync_id, synced_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        " ON CONFLICT(user_id) DO UPDATE SET identity = excluded.identity,"
        " primary_smtp = excluded.primary_smtp, activesync = excluded.activesync,"
        " owa = excluded.owa, pop = excluded.pop, imap = excluded.imap, mapi = excluded.mapi,"
        " ews = excluded.ews, smtp_auth_disabled = excluded.smtp_auth_disabled,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at", err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 2, json_string_value(json_object_get(mbx, "Identity")));
    db_bind_text_or_null(st, 3, json_string_value(json_object_get(mbx, "PrimarySmtpAddress")));
    static const char *const props[] = {"ActiveSyncEnabled", "OWAEnabled", "PopEnabled",
                                        "ImapEnabled", "MAPIEnabled", "EwsEnabled",
                                        "SmtpClientAuthenticationDisabled"};
    for (int i = 0; i < 7; i++)
        bind_bool_or_null(st, 4 + i, json_object_get(mbx, props[i]));
    sqlite3_bind_int64(st, 11, sync_id);
    sqlite3_bind_int64(st, 12, now_ms);
    rc = db_step_done(c, st, "store mailbox", err);
    if (!rc)
        *matched = 1;
    return rc;
}

enum as_code db_sqlite_tenant_cas_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    return exec_i64(c, "DELETE FROM tenant_cas WHERE sync_id <> ?1", sync_id,
                    "remove mailboxes gone from the tenant", err);
}

enum as_code db_sqlite_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                        const char *upn, int pop3, int imap4, int smtp,
                                        const char *last_activity, const char *report_date,
                                        struct as_err *err)
{
    char *lower = lower_dup(upn);
    if (!lower)
        return as_errf(err, AS_ENOMEM, "out of memory");
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_usage(upn_lower, pop3, imap4, smtp, last_activity, report_date,"
        " sync_id, synced_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"
        " ON CONFLICT(upn_lower) DO UPDATE SET pop3 = excluded.pop3, imap4 = excluded.imap4,"
        " smtp = excluded.smtp, last_activity = excluded.last_activity,"
        " report_date = excluded.report_date, sync_id = excluded.sync_id,"
        " synced_at = excluded.synced_at", err);
    if (!st) {
        free(lower);
        return AS_EDB;
    }
    sqlite3_bind_text(st, 1, lower, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, pop3 != 0);
    sqlite3_bind_int(st, 3, imap4 != 0);
    sqlite3_bind_int(st, 4, smtp != 0);
    db_bind_nonempty_or_null(st, 5, last_activity);
    db_bind_nonempty_or_null(st, 6, report_date);
    sqlite3_bind_int64(st, 7, sync_id);
    sqlite3_bind_int64(st, 8, now_ms);
    free(lower);
    return db_step_done(c, st, "store usage", err);
}

static enum as_code org_ensure(struct db_conn *c, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, "INSERT OR IGNORE INTO tenant_org(id) VALUES (1)", err);
    return st ? db_step_done(c, st, "organisation row", err) : AS_EDB;
}

enum as_code db_sqlite_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                         struct as_err *err)
{
    enum as_code rc = exec_i64(c, "DELETE FROM tenant_usage WHERE sync_id <> ?1", sync_id,
                               "remove old usage", err);
    if (!rc)
        rc = org_ensure(c, err);
    if (!rc)
        rc = exec_i64(c, "UPDATE tenant_org SET usage_synced_at = ?1 WHERE id = 1", now_ms,
                      "mark usage synced", err);
    return rc;
}

enum as_code db_sqlite_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                                const json_t *transport, struct as_err *err)
{
    enum as_code rc = org_ensure(c, err);
    if (rc)
        return rc;
    char *text = json_dumps(transport, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    sqlite3_stmt *st = db_stmt(c,
        "UPDATE tenant_org SET smtp_client_auth_disabled = ?1, allow_legacy_tls_clients = ?2,"
        " transport = ?3, transport_synced_at = ?4 WHERE id = 1", err);
    if (!st) {
        free(text);
        return AS_EDB;
    }
    bind_bool_or_null(st, 1, json_object_get(transport, "SmtpClientAuthenticationDisabled"));
    bind_bool_or_null(st, 2, json_object_get(transport, "AllowLegacyTLSClients"));
    sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, now_ms);
    free(text);
    return db_step_done(c, st, "store transport config", err);
}

enum as_code db_sqlite_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                         struct as_err *err)
{
    const char *id = json_string_value(json_object_get(signin, "id"));
    const char *when = json_string_value(json_object_get(signin, "createdDateTime"));
    const char *app = json_string_value(json_object_get(signin, "clientAppUsed"));
    int64_t ms;
    if (!id || !when || !app || time_parse_iso(when, &ms) != AS_OK)
        return as_errf(err, AS_EINVAL, "a sign-in event without id, createdDateTime or clientAppUsed");
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_signins(id, created_ms, created_at, user_id, upn, client_app, app_name,"
        " ip_address, error_code, sync_id, interactive) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"
        " ON CONFLICT(id) DO UPDATE SET sync_id = excluded.sync_id", err);
    if (!st)
        return AS_EDB;
    json_t *status = json_object_get(signin, "status");
    json_t *code = json_object_get(status, "errorCode");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, ms);
    sqlite3_bind_text(st, 3, when, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 4, json_string_value(json_object_get(signin, "userId")));
    db_bind_text_or_null(st, 5, json_string_value(json_object_get(signin, "userPrincipalName")));
    sqlite3_bind_text(st, 6, app, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 7, json_string_value(json_object_get(signin, "appDisplayName")));
    db_bind_text_or_null(st, 8, json_string_value(json_object_get(signin, "ipAddress")));
    if (json_is_integer(code))
        sqlite3_bind_int64(st, 9, json_integer_value(code));
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int64(st, 10, sync_id);
    sqlite3_bind_int(st, 11, db_signin_interactive(signin));
    return db_step_done(c, st, "store sign-in", err);
}

enum as_code db_sqlite_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                           struct as_err *err)
{
    enum as_code rc = exec_i64(c, "DELETE FROM tenant_signins WHERE created_ms < ?1",
                               older_than_ms, "remove old sign-ins", err);
    if (!rc)
        rc = org_ensure(c, err);
    if (!rc)
        rc = exec_i64(c, "UPDATE tenant_org SET signins_synced_at = ?1 WHERE id = 1", now_ms,
                      "mark sign-ins synced", err);
    return rc;
}

/* ----------------------------------------------------------------- reads */

#define DAY_MS (86400000LL)

/* Step st and call cb with each row as make_row builds it, until cb
 * returns non-zero; `what` names the read in an error. */
static enum as_code rows_each(struct db_conn *c, sqlite3_stmt *st,
                              json_t *(*make_row)(sqlite3_stmt *st),
                              int (*cb)(const json_t *row, void *ud), void *ud, const char *what,
                              struct as_err *err)
{
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = make_row(st);
        if (!row) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
        int stop = cb(row, ud);
        json_decref(row);
        if (stop)
            break;
    }
    if (!rc && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(c, what, err);
    return rc;
}

/* Run a user-row statement (?1 bound here) and call cb per row. */
static enum as_code users_run(struct db_conn *c, sqlite3_stmt *st,
                              int (*cb)(const json_t *row, void *ud), void *ud,
                              struct as_err *err)
{
    sqlite3_bind_int64(st, 1, time_now_ms() - 30 * DAY_MS);
    return rows_each(c, st, user_row, cb, ud, "read users", err);
}

enum as_code db_sqlite_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                                   int (*cb)(const json_t *row, void *ud), void *ud,
                                                   struct as_err *err)
{
    struct db_conn *c;
    pthread_once(&sql_once, build_sql);
    size_t k;
    for (k = 0; k < N_USER_COLS; k++)
        if (strcmp(user_cols[k].key, sort_key) == 0)
            break;
    if (k == N_USER_COLS) {
        char keys[1024];
        size_t o = 0;
        for (size_t i = 0; i < N_USER_COLS && o < sizeof keys; i++)
            o += (size_t)snprintf(keys + o, sizeof keys - o, "%s%s", i ? ", " : "", user_cols[i].key);
        return as_errf(err, AS_EINVAL, "cannot sort by \"%s\"; columns: %s", sort_key, keys);
    }
    /* The ORDER BY varies per call, so this statement is prepared here rather
     * than cached (db_stmt keeps the SQL pointer). */
    char sql[9000];
    /* The listing's own ORDER BY is the last one (columns may hold others). */
    const char *all_end = NULL;
    for (const char *p = sql_all; (p = strstr(p, " ORDER BY ")) != NULL; p++)
        all_end = p;
    snprintf(sql, sizeof sql, "%.*s ORDER BY (%s) %s, u.upn_lower", (int)(all_end - sql_all),
             sql_all, user_cols[k].sql, desc ? "DESC" : "ASC");
    enum as_code rc = db_sqlite_read_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db_conn_handle(c), sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_error(c, "prepare sorted users", err);
    } else {
        rc = users_run(c, st, cb, ud, err);
    }
    sqlite3_finalize(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_org_transport(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(
        db, "SELECT transport FROM tenant_org WHERE id = 1 AND transport IS NOT NULL", &c, &st, err);
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = json_loads(db_col_text(st, 0), 0, NULL);
        if (!*out)
            rc = as_errf(err, AS_EDB, "stored transport config is not JSON");
    } else if (r != SQLITE_DONE) {
        rc = db_error(c, "read transport config", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                            void *ud, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    pthread_once(&sql_once, build_sql);
    enum as_code rc = db_read_stmt(db, sql_all, &c, &st, err);
    if (rc)
        return rc;
    rc = users_run(c, st, cb, ud, err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                                  int (*cb)(const json_t *row, void *ud),
                                                  void *ud, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    pthread_once(&sql_once, build_sql);
    enum as_code rc = db_read_stmt(db, sql_after, &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 2, after_lower, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1); /* LIMIT -1: no limit */
    rc = users_run(c, st, cb, ud, err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                       struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    pthread_once(&sql_once, build_sql);
    enum as_code rc = db_read_stmt(db, sql_one, &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, time_now_ms() - 30 * DAY_MS);
    sqlite3_bind_text(st, 2, upn_or_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = user_row(st);
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no synced user '%s'", upn_or_id);
    } else {
        rc = db_error(c, "read user", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

static json_t *signin_row(sqlite3_stmt *st)
{
    static const char *const keys[] = {"id", "created_at", "upn", "user_id", "client_app",
                                       "app_name", "ip_address", "error_code", "interactive"};
    json_t *row = json_object();
    for (int i = 0; row && i < 9; i++)
        json_object_set_new(row, keys[i],
                            col_json(st, i, i == 7 ? COL_INT : i == 8 ? COL_BOOL : COL_TEXT));
    return row;
}

enum as_code db_sqlite_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                              int (*cb)(const json_t *row, void *ud), void *ud,
                                              struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db,
        "SELECT id, created_at, upn, user_id, client_app, app_name, ip_address, error_code,"
        " interactive FROM tenant_signins WHERE created_ms >= ?1"
        " AND (?2 IS NULL OR client_app = ?2 COLLATE NOCASE)"
        " AND (?3 IS NULL OR upn = ?3 COLLATE NOCASE)"
        " ORDER BY created_ms DESC, id", &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, q ? q->since_ms : 0);
    db_bind_text_or_null(st, 2, q ? q->client_app : NULL);
    db_bind_text_or_null(st, 3, q ? q->upn : NULL);
    rc = rows_each(c, st, signin_row, cb, ud, "read sign-ins", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                                  size_t status_size, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *finished_at = 0;
    if (status_size)
        *status = '\0';
    enum as_code rc = db_read_stmt(db,
        "SELECT finished_at, status FROM tenant_syncs WHERE status IN ('ok','partial')"
        " AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1", &c, &st, err);
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *finished_at = sqlite3_column_int64(st, 0);
        snprintf(status, status_size, "%s", db_col_text(st, 1));
    } else if (r != SQLITE_DONE) {
        rc = db_error(c, "read last completed sync", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_tenant_last_sync(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db,
        "SELECT id, started_at, finished_at, status, summary, error FROM tenant_syncs"
        " ORDER BY id DESC LIMIT 1", &c, &st, err);
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        json_t *summary = json_loads(db_col_text(st, 4), 0, NULL);
        *out = json_pack("{s:I, s:o, s:o, s:s, s:o, s:o}", "id",
                         (json_int_t)sqlite3_column_int64(st, 0), "started_at",
                         col_json(st, 1, COL_TIME_ISO), "finished_at",
                         col_json(st, 2, COL_TIME_ISO), "status", db_col_text(st, 3), "summary",
                         summary ? summary : json_object(), "error", col_json(st, 5, COL_TEXT));
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    } else if (r != SQLITE_DONE) {
        rc = db_error(c, "read last sync", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

