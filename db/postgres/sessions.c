/*
 * sessions.c - the console's sessions in the PostgreSQL store (contract in
 * db/db_sessions.h; the SQLite dialect is db/sqlite/db_sessions.c).
 *
 * A session row is written once (login) and deleted once (logout, or after
 * it expired by the next login on any node); a lookup reads it with its
 * token's state in one statement.  Of two logouts of one session one
 * deletes the row, the other finds nothing (AS_ENOTFOUND).
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <string.h>

#include "db/db_events.h"

#define SESSION_COLS                                                                             \
    "id, session_hash, token_id, name, role, created_at, expires_at, client_addr, user_agent,"    \
    " upn, oid, tid"

static int role_known(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "admin") == 0;
}

/* Row i of r (SESSION_COLS) into *s. */
static void session_from_row(const PGresult *r, int i, struct db_console_session *s)
{
    memset(s, 0, sizeof *s);
    s->id = pg_i64(r, i, 0);
    snprintf(s->session_hash, sizeof s->session_hash, "%s", pg_text(r, i, 1));
    s->token_id = pg_i64(r, i, 2); /* NULL reads as 0: admin_token_file */
    snprintf(s->name, sizeof s->name, "%s", pg_text(r, i, 3));
    snprintf(s->role, sizeof s->role, "%s", pg_text(r, i, 4));
    s->created_at = pg_i64(r, i, 5);
    s->expires_at = pg_i64(r, i, 6);
    snprintf(s->client_addr, sizeof s->client_addr, "%s", pg_text(r, i, 7));
    snprintf(s->user_agent, sizeof s->user_agent, "%s", pg_text(r, i, 8));
    snprintf(s->upn, sizeof s->upn, "%s", pg_text(r, i, 9));
    snprintf(s->oid, sizeof s->oid, "%s", pg_text(r, i, 10));
    snprintf(s->tid, sizeof s->tid, "%s", pg_text(r, i, 11));
}

enum as_code db_pg_console_session_add(struct db *db, struct db_console_session *s,
                                       const char *via, struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO console_sessions (session_hash, token_id, name, role, created_at,"
        " expires_at, client_addr, user_agent, upn, oid, tid)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " RETURNING id";
    if (!s->name[0] || strlen(s->session_hash) != 64 || !role_known(s->role) ||
        s->expires_at <= s->created_at)
        return as_errf(err, AS_EINVAL,
                       "a session needs a name, a known role, its hash and an expiry");
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, s->created_at);
    rc = pg_do(c, "DELETE FROM console_sessions WHERE expires_at <= $1", &a,
               "delete expired sessions", NULL, err);
    if (rc)
        return db_pg_write_end(db, rc, err);
    struct pg_args b = {0};
    pg_arg_text(&b, s->session_hash);
    if (s->token_id)
        pg_arg_i64(&b, s->token_id);
    else
        pg_arg_text(&b, NULL);
    pg_arg_text(&b, s->name);
    pg_arg_text(&b, s->role);
    pg_arg_i64(&b, s->created_at);
    pg_arg_i64(&b, s->expires_at);
    pg_arg_text(&b, s->client_addr);
    pg_arg_text(&b, s->user_agent);
    pg_arg_text(&b, s->upn);
    pg_arg_text(&b, s->oid);
    pg_arg_text(&b, s->tid);
    PGresult *r = pg_run(c, ins, &b, "insert session", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    s->id = pg_i64(r, 0, 0);
    PQclear(r);
    json_t *data = db_session_event_json(s, via, 1);
    rc = data ? db_event_append(c, 0, 0, "console.login", data, err)
              : as_errf(err, AS_ENOMEM, "out of memory");
    json_decref(data);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_console_session_find(struct db *db, const char *session_hash,
                                        struct db_console_session *out, struct as_err *err)
{
    static const char sql[] =
        "SELECT s.id, s.session_hash, s.token_id, s.name, s.role, s.created_at, s.expires_at,"
        " s.client_addr, s.user_agent, s.upn, s.oid, s.tid, (t.id IS NULL)::int, t.revoked_at,"
        " t.expires_at"
        " FROM console_sessions s LEFT JOIN api_tokens t ON t.id = s.token_id"
        " WHERE s.session_hash = $1";
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, session_hash);
    PGresult *r = pg_run(c, sql, &a, "find session", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        session_from_row(r, 0, out);
        out->token_gone = out->token_id && pg_i64(r, 0, 12);
        out->token_revoked_at = pg_i64(r, 0, 13);
        out->token_expires_at = pg_i64(r, 0, 14);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no such session");
    }
    PQclear(r);
    return rc;
}

enum as_code db_pg_console_session_delete(struct db *db, const char *session_hash,
                                          struct db_console_session *out, struct as_err *err)
{
    struct db_conn *c;
    struct db_console_session s;
    memset(&s, 0, sizeof s);
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, session_hash);
    PGresult *r = pg_run(c, "DELETE FROM console_sessions WHERE session_hash = $1 RETURNING "
                         SESSION_COLS, &a, "delete session", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (PQntuples(r) == 1)
        session_from_row(r, 0, &s);
    else
        rc = as_errf(err, AS_ENOTFOUND, "no such session (it ended already)");
    PQclear(r);
    if (!rc) {
        json_t *data = db_session_event_json(&s, NULL, 0);
        rc = data ? db_event_append(c, 0, 0, "console.logout", data, err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(data);
    }
    if (!rc && out)
        *out = s;
    return db_pg_write_end(db, rc, err);
}
