/* db_sessions.c - the console's sessions in SQLite (see db/db_sessions.h). */
#include "db/db_sessions.h"
#include "db/sqlite/sqlite.h"

#include <stdio.h>
#include <string.h>

#include "db/db_events.h"

/* The columns session_from_row reads, qualified by s. and bare (RETURNING). */
#define SESSION_COLS                                                                             \
    "s.id, s.session_hash, s.token_id, s.name, s.role, s.created_at, s.expires_at,"              \
    " s.client_addr, s.user_agent, s.upn, s.oid, s.tid"
#define SESSION_COLS_BARE                                                                        \
    "id, session_hash, token_id, name, role, created_at, expires_at, client_addr, user_agent,"    \
    " upn, oid, tid"
#define N_SESSION_COLS 12

static int role_known(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "admin") == 0;
}

/* The row st is on (SESSION_COLS) into *s. */
static void session_from_row(sqlite3_stmt *st, struct db_console_session *s)
{
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    snprintf(s->session_hash, sizeof s->session_hash, "%s", db_col_text(st, 1));
    s->token_id = sqlite3_column_int64(st, 2); /* NULL reads as 0: admin_token_file */
    snprintf(s->name, sizeof s->name, "%s", db_col_text(st, 3));
    snprintf(s->role, sizeof s->role, "%s", db_col_text(st, 4));
    s->created_at = sqlite3_column_int64(st, 5);
    s->expires_at = sqlite3_column_int64(st, 6);
    snprintf(s->client_addr, sizeof s->client_addr, "%s", db_col_text(st, 7));
    snprintf(s->user_agent, sizeof s->user_agent, "%s", db_col_text(st, 8));
    snprintf(s->upn, sizeof s->upn, "%s", db_col_text(st, 9));
    snprintf(s->oid, sizeof s->oid, "%s", db_col_text(st, 10));
    snprintf(s->tid, sizeof s->tid, "%s", db_col_text(st, 11));
}

enum as_code db_sqlite_console_session_add(struct db *db, struct db_console_session *s,
                                           const char *via, struct as_err *err)
{
    if (!s->name[0] || strlen(s->session_hash) != 64 || !role_known(s->role) ||
        s->expires_at <= s->created_at)
        return as_errf(err, AS_EINVAL,
                       "a session needs a name, a known role, its hash and an expiry");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM console_sessions WHERE expires_at <= ?1", err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, s->created_at);
    rc = db_step_done(c, st, "delete expired sessions", err);
    if (rc)
        return db_sqlite_write_end(db, rc, err);
    st = db_stmt(c,
                 "INSERT INTO console_sessions (session_hash, token_id, name, role, created_at,"
                 " expires_at, client_addr, user_agent, upn, oid, tid)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                 err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, s->session_hash, -1, SQLITE_STATIC);
    if (s->token_id)
        sqlite3_bind_int64(st, 2, s->token_id);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_text(st, 3, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, s->created_at);
    sqlite3_bind_int64(st, 6, s->expires_at);
    sqlite3_bind_text(st, 7, s->client_addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, s->user_agent, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, s->upn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, s->oid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, s->tid, -1, SQLITE_STATIC);
    rc = db_step_done(c, st, "insert session", err);
    if (!rc) {
        s->id = sqlite3_last_insert_rowid(db_conn_handle(c));
        json_t *data = db_session_event_json(s, via, 1);
        rc = data ? db_event_append(c, 0, 0, "console.login", data, err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(data);
    }
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_console_session_find(struct db *db, const char *session_hash,
                                            struct db_console_session *out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT " SESSION_COLS ", t.id IS NULL, t.revoked_at,"
                                   " t.expires_at FROM console_sessions s"
                                   " LEFT JOIN api_tokens t ON t.id = s.token_id"
                                   " WHERE s.session_hash = ?1",
                                   &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, session_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        session_from_row(st, out);
        out->token_gone = out->token_id && sqlite3_column_int(st, N_SESSION_COLS);
        out->token_revoked_at = sqlite3_column_int64(st, N_SESSION_COLS + 1);
        out->token_expires_at = sqlite3_column_int64(st, N_SESSION_COLS + 2);
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no such session");
    } else {
        rc = db_error(c, "find session", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_console_session_delete(struct db *db, const char *session_hash,
                                              struct db_console_session *out, struct as_err *err)
{
    struct db_conn *c;
    struct db_console_session s;
    memset(&s, 0, sizeof s);
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "DELETE FROM console_sessions WHERE session_hash = ?1"
                               " RETURNING " SESSION_COLS_BARE,
                               err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, session_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        session_from_row(st, &s);
        step = sqlite3_step(st);
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no such session (it ended already)");
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_error(c, "delete session", err);
    db_stmt_done(st);
    if (!rc) {
        json_t *data = db_session_event_json(&s, NULL, 0);
        rc = data ? db_event_append(c, 0, 0, "console.logout", data, err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(data);
    }
    if (!rc && out)
        *out = s;
    return db_sqlite_write_end(db, rc, err);
}
