/*
 * common.c - the parts of the store's interface that are the same on every
 * backend: choosing the backend in db_open(), clearing claims, the approval
 * statuses, and operations that are a call of another operation
 * (db_exec_record, db_approvals_list).  The event log's shared parts are in
 * events.c.
 */
#include "db/backend.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"

/*
 * The keywords of a libpq connection string (PostgreSQL 15, "Parameter Key
 * Words"), so that "host=db1 dbname=assent" selects PostgreSQL while a file
 * name that merely holds a '=' stays a SQLite path.
 */
static const char *const libpq_keywords[] = {
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "channel_binding",
    "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode", "requiressl",
    "sslcompression", "sslcert", "sslkey", "sslpassword", "sslrootcert", "sslcrl", "sslcrldir",
    "sslsni", "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version",
    "krbsrvname", "gsslib", "service", "target_session_attrs", "load_balance_hosts",
};

static int is_libpq_keyword_value(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = 0;
    while ((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_')
        n++;
    const char *p = s + n;
    while (isspace((unsigned char)*p))
        p++;
    if (n == 0 || *p != '=')
        return 0;
    for (size_t i = 0; i < sizeof libpq_keywords / sizeof libpq_keywords[0]; i++)
        if (strlen(libpq_keywords[i]) == n && memcmp(libpq_keywords[i], s, n) == 0)
            return 1;
    return 0;
}

const struct db_backend *db_backend_for(const char *path)
{
    if (path && (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0 ||
                 is_libpq_keyword_value(path)))
        return &db_pg_backend;
    return &db_sqlite_backend;
}

enum as_code db_open(const char *path, const char *synchronous, struct db **out, struct as_err *err)
{
    struct db_options opts = {.synchronous = synchronous};
    return db_open_options(path, &opts, out, err);
}

enum as_code db_open_options(const char *path, const struct db_options *opts, struct db **out,
                             struct as_err *err)
{
    *out = NULL;
    return db_backend_for(path)->open(path, opts, out, err);
}

/* Copy n bytes of s to buf at *o (bounded by size). */
static void put(char *buf, size_t size, size_t *o, const char *s, size_t n)
{
    while (n-- && *o + 1 < size)
        buf[(*o)++] = *s++;
    buf[*o < size ? *o : size - 1] = '\0';
}

void db_display_name(const char *path, char *buf, size_t size)
{
    size_t o = 0;
    if (!size)
        return;
    buf[0] = '\0';
    if (!path)
        return;
    if (db_backend_for(path) != &db_pg_backend) {
        put(buf, size, &o, path, strlen(path));
        return;
    }
    const char *scheme_end = strstr(path, "://");
    if (scheme_end) {
        /* URI: scheme://[user[:password]@]host... */
        const char *auth = scheme_end + 3;
        const char *auth_end = auth + strcspn(auth, "/?");
        const char *at = memchr(auth, '@', (size_t)(auth_end - auth));
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
            put(buf, size, &o, path, (size_t)(colon - path) + 1);
            put(buf, size, &o, "***", 3);
            path = at;
        }
        /* A password=... parameter in the query is hidden below, like a keyword. */
    }
    /* password=value (key=value strings; URI query parameters). */
    while (*path) {
        /* Also sslpassword=, the passphrase of a client key. */
        const char *p = strstr(path, "password=");
        if (!p) {
            put(buf, size, &o, path, strlen(path));
            break;
        }
        put(buf, size, &o, path, (size_t)(p - path) + 9);
        put(buf, size, &o, "***", 3);
        p += 9;
        if (*p == '\'') {
            /* A quoted value: up to the closing quote, skipping \' escapes. */
            for (p++; *p && *p != '\''; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else {
            p += strcspn(p, " \t&");
        }
        path = p;
    }
}

void db_claim_clear(struct db_claim *c)
{
    if (!c)
        return;
    free(c->step);
    free(c->idempotency_key);
    free(c->resume);
    free(c->wait_state);
    free(c->prev_owner);
    memset(c, 0, sizeof *c);
}

enum as_code db_exec_record(struct db_conn *conn, const struct db_exec_result *r,
                            struct as_err *err)
{
    char *held = NULL;
    enum as_code rc = db_exec_record_held(conn, r, &held, err);
    free(held);
    return rc;
}

void db_mail_claim_clear(struct db_mail_claim *c)
{
    if (!c)
        return;
    free(c->message_id);
    json_decref(c->result);
    memset(c, 0, sizeof *c);
}

int db_approvals_status_known(const char *status)
{
    static const char *const known[] = {"pending", "approved", "rejected", "expired", "withdrawn"};
    for (size_t i = 0; status && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(status, known[i]) == 0)
            return 1;
    return 0;
}

enum as_code db_approvals_list(struct db *db, int all, int limit, json_t **out,
                               struct as_err *err)
{
    struct db_approvals_filter f = {.all = all, .limit = limit};
    return db_approvals_list_where(db, &f, out, err);
}

uint64_t db_sql_hash(const char *sql)
{
    size_t n = strlen(sql);
    uint64_t h = 1469598103934665603ULL ^ n;
    const char *p = sql;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
    }
    uint64_t t = 0;
    memcpy(&t, p, n);
    h = (h ^ t) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 32;
    return h ? h : 1;
}

enum as_code db_approval_mark_link(json_t **view, int64_t approver_id, const char *purpose,
                                   struct as_err *err)
{
    json_t *list = json_object_get(*view, "approvers");
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        if (json_integer_value(json_object_get(p, "id")) == approver_id) {
            json_object_set_new(*view, "me", json_integer((json_int_t)i));
            json_object_set_new(*view, "link_purpose", json_string(purpose));
            return AS_OK;
        }
    }
    json_decref(*view);
    *view = NULL;
    return as_errf(err, AS_ENOTFOUND, "unknown link");
}

/* 0 when a sign-in came from the non-interactive stream (beta signInEventTypes
 * holds "nonInteractiveUser" and not "interactiveUser"), else 1: v1.0 lists
 * interactive sign-ins only and has no such property. */
int db_signin_interactive(const json_t *signin)
{
    const json_t *types = json_object_get(signin, "signInEventTypes"), *t;
    size_t i;
    int non = 0;
    json_array_foreach((json_t *)types, i, t)
    {
        const char *v = json_string_value(t);
        if (v && !strcasecmp(v, "interactiveUser"))
            return 1;
        if (v && !strcasecmp(v, "nonInteractiveUser"))
            non = 1;
    }
    return !non;
}

json_t *db_session_event_json(const struct db_console_session *s, const char *via, int login)
{
    json_t *data = json_pack("{s:I, s:s, s:s, s:s}", "session_id", (json_int_t)s->id, "name",
                             s->name, "role", s->role, "actor", s->name);
    if (!data || !login)
        return data;
    if (json_object_set_new(data, "via", json_string(via ? via : "token")) ||
        json_object_set_new(data, "client_addr", json_string(s->client_addr)) ||
        json_object_set_new(data, "user_agent", json_string(s->user_agent)) ||
        json_object_set_new(data, "expires_at", json_integer(s->expires_at))) {
        json_decref(data);
        return NULL;
    }
    /* Signed in with Entra ID: who, as the identity platform said. */
    if (s->oid[0] &&
        (json_object_set_new(data, "upn", json_string(s->upn)) ||
         json_object_set_new(data, "oid", json_string(s->oid)) ||
         json_object_set_new(data, "tid", json_string(s->tid)))) {
        json_decref(data);
        return NULL;
    }
    return data;
}

/* ---- rows of db_plans.h, shared by the backends ---------------------------------- */

/* The member key of obj when it is a boolean, else null (new reference). */
static json_t *bool_or_null(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_incref(v) : json_null();
}

static json_t *iso_or_null(int64_t ms)
{
    char iso[40];
    if (ms <= 0)
        return json_null();
    time_format_iso(ms, iso, sizeof iso);
    return json_string(iso);
}

json_t *db_plan_row(const char *body, int64_t synced_at)
{
    json_t *p = json_loads(body ? body : "", 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        p = json_object();
    }
    const char *policy = json_string_value(json_object_get(p, "OwaMailboxPolicy"));
    json_t *row = json_pack(
        "{s:s?, s:s?, s:s?, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:O}", "name",
        json_string_value(json_object_get(p, "Name")), "display_name",
        json_string_value(json_object_get(p, "DisplayName")), "guid",
        json_string_value(json_object_get(p, "Guid")), "pop_enabled",
        bool_or_null(p, "PopEnabled"), "imap_enabled", bool_or_null(p, "ImapEnabled"),
        "activesync_enabled", bool_or_null(p, "ActiveSyncEnabled"), "owa_enabled",
        bool_or_null(p, "OWAEnabled"), "mapi_enabled", bool_or_null(p, "MAPIEnabled"),
        "ews_enabled", bool_or_null(p, "EwsEnabled"), "owa_mailbox_policy",
        policy ? json_string(policy) : json_null(), "legacy_on",
        json_is_true(json_object_get(p, "PopEnabled")) ||
            json_is_true(json_object_get(p, "ImapEnabled")),
        "synced_at", iso_or_null(synced_at), "plan", p);
    json_decref(p);
    return row;
}

static json_t *array_or_null(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_array(v) ? json_incref(v) : json_null();
}

json_t *db_org_config_row(const char *body, int64_t synced_at)
{
    json_t *o = json_loads(body ? body : "", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_t *ids = json_object_get(o, "EwsAllowedAppIDs");
    const char *policy = json_string_value(json_object_get(o, "EwsApplicationAccessPolicy"));
    json_t *row = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:O}", "ews_enabled",
                            bool_or_null(o, "EwsEnabled"), "ews_application_access_policy",
                            policy ? json_string(policy) : json_null(), "ews_allowed_app_ids",
                            json_is_array(ids) ? json_incref(ids) : json_array(), "ews_allow_list",
                            array_or_null(o, "EwsAllowList"), "ews_block_list",
                            array_or_null(o, "EwsBlockList"), "synced_at",
                            iso_or_null(synced_at), "config", o);
    json_decref(o);
    return row;
}

json_t *db_org_write_row(const char *key, const char *setting, const char *value,
                         int64_t run_id, int64_t written_at, int64_t visible_at)
{
    json_t *v = json_loads(value ? value : "", JSON_DECODE_ANY, NULL);
    return json_pack("{s:s, s:s, s:o, s:I, s:o, s:o, s:b}", "key", key ? key : "", "setting",
                     setting ? setting : "", "value", v ? v : json_null(), "run_id",
                     (json_int_t)run_id, "written_at", iso_or_null(written_at), "visible_at",
                     iso_or_null(visible_at), "pending", visible_at <= 0);
}

json_t *db_signin_event_json(const struct db_signin_session *s)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "session_id",
                     (json_int_t)s->id, "upn", s->upn, "oid", s->oid, "tid", s->tid, "name",
                     s->name, "client_addr", s->client_addr, "user_agent", s->user_agent,
                     "expires_at", (json_int_t)s->expires_at, "actor",
                     s->upn[0] ? s->upn : s->oid);
}

int db_signin_flow_ok(const struct db_signin_flow *f)
{
    return strlen(f->state_hash) == 64 && strlen(f->browser_hash) == 64 && f->nonce[0] &&
           f->code_verifier[0] && f->return_to[0] == '/' && f->expires_at > f->created_at;
}

int db_signin_session_ok(const struct db_signin_session *s)
{
    return strlen(s->session_hash) == 64 && s->oid[0] && s->expires_at > s->created_at;
}
