/* db_signin.c - sign-in flows and approvers' sign-in sessions in SQLite (see db/db_signin.h). */
#include "db/db_signin.h"
#include "db/sqlite/sqlite.h"

#include <stdio.h>
#include <string.h>

#include "db/backend.h"
#include "db/db_events.h"

#define FLOW_COLS "state_hash, browser_hash, nonce, code_verifier, return_to, created_at, expires_at"
#define SIGNIN_COLS                                                                              \
    "id, session_hash, upn, oid, tid, name, created_at, expires_at, client_addr, user_agent"

enum as_code db_sqlite_signin_flow_add(struct db *db, const struct db_signin_flow *f,
                                       struct as_err *err)
{
    if (!db_signin_flow_ok(f))
        return as_errf(err, AS_EINVAL, "a sign-in flow needs its hashes, nonce, verifier, "
                                       "a path to return to and an expiry");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM signin_flows WHERE expires_at <= ?1", err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, f->created_at);
    rc = db_step_done(c, st, "delete expired sign-in flows", err);
    if (rc)
        return db_sqlite_write_end(db, rc, err);
    st = db_stmt(c, "INSERT INTO signin_flows (" FLOW_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                 err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, f->state_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->browser_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->nonce, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->code_verifier, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, f->return_to, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, f->created_at);
    sqlite3_bind_int64(st, 7, f->expires_at);
    rc = db_step_done(c, st, "insert sign-in flow", err);
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_signin_flow_take(struct db *db, const char *state_hash,
                                        struct db_signin_flow *out, struct as_err *err)
{
    struct db_conn *c;
    memset(out, 0, sizeof *out);
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM signin_flows WHERE state_hash = ?1 RETURNING "
                               FLOW_COLS, err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, state_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(out->state_hash, sizeof out->state_hash, "%s", db_col_text(st, 0));
        snprintf(out->browser_hash, sizeof out->browser_hash, "%s", db_col_text(st, 1));
        snprintf(out->nonce, sizeof out->nonce, "%s", db_col_text(st, 2));
        snprintf(out->code_verifier, sizeof out->code_verifier, "%s", db_col_text(st, 3));
        snprintf(out->return_to, sizeof out->return_to, "%s", db_col_text(st, 4));
        out->created_at = sqlite3_column_int64(st, 5);
        out->expires_at = sqlite3_column_int64(st, 6);
        step = sqlite3_step(st);
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no such sign-in (used already, or expired)");
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_error(c, "take sign-in flow", err);
    db_stmt_done(st);
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_signin_session_add(struct db *db, struct db_signin_session *s,
                                          struct as_err *err)
{
    if (!db_signin_session_ok(s))
        return as_errf(err, AS_EINVAL, "a sign-in session needs its hash, an oid and an expiry");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM signin_sessions WHERE expires_at <= ?1", err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, s->created_at);
    rc = db_step_done(c, st, "delete expired sign-in sessions", err);
    if (rc)
        return db_sqlite_write_end(db, rc, err);
    st = db_stmt(c,
                 "INSERT INTO signin_sessions (session_hash, upn, oid, tid, name, created_at,"
                 " expires_at, client_addr, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                 err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, s->session_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->upn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->oid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->tid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, s->created_at);
    sqlite3_bind_int64(st, 7, s->expires_at);
    sqlite3_bind_text(st, 8, s->client_addr, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, s->user_agent, -1, SQLITE_STATIC);
    rc = db_step_done(c, st, "insert sign-in session", err);
    if (!rc) {
        s->id = sqlite3_last_insert_rowid(db_conn_handle(c));
        json_t *data = db_signin_event_json(s);
        rc = data ? db_event_append(c, 0, 0, "sign_in.login", data, err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(data);
    }
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_signin_session_find(struct db *db, const char *session_hash,
                                           struct db_signin_session *out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    enum as_code rc = db_read_stmt(db, "SELECT " SIGNIN_COLS " FROM signin_sessions"
                                       " WHERE session_hash = ?1", &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, session_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        snprintf(out->session_hash, sizeof out->session_hash, "%s", db_col_text(st, 1));
        snprintf(out->upn, sizeof out->upn, "%s", db_col_text(st, 2));
        snprintf(out->oid, sizeof out->oid, "%s", db_col_text(st, 3));
        snprintf(out->tid, sizeof out->tid, "%s", db_col_text(st, 4));
        snprintf(out->name, sizeof out->name, "%s", db_col_text(st, 5));
        out->created_at = sqlite3_column_int64(st, 6);
        out->expires_at = sqlite3_column_int64(st, 7);
        snprintf(out->client_addr, sizeof out->client_addr, "%s", db_col_text(st, 8));
        snprintf(out->user_agent, sizeof out->user_agent, "%s", db_col_text(st, 9));
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no such sign-in session");
    } else {
        rc = db_error(c, "find sign-in session", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}
