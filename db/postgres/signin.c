/*
 * signin.c - sign-in flows and approvers' sign-in sessions in the
 * PostgreSQL store (contract in db/db_signin.h; the SQLite dialect is
 * db/sqlite/db_signin.c).  Of two callbacks with one state, one DELETE
 * returns the row and the other finds nothing.
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <string.h>

#include "db/db_events.h"

#define FLOW_COLS "state_hash, browser_hash, nonce, code_verifier, return_to, created_at, expires_at"
#define SIGNIN_COLS                                                                              \
    "id, session_hash, upn, oid, tid, name, created_at, expires_at, client_addr, user_agent"

enum as_code db_pg_signin_flow_add(struct db *db, const struct db_signin_flow *f,
                                   struct as_err *err)
{
    if (!db_signin_flow_ok(f))
        return as_errf(err, AS_EINVAL, "a sign-in flow needs its hashes, nonce, verifier, "
                                       "a path to return to and an expiry");
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, f->created_at);
    rc = pg_do(c, "DELETE FROM signin_flows WHERE expires_at <= $1", &a,
               "delete expired sign-in flows", NULL, err);
    if (rc)
        return db_pg_write_end(db, rc, err);
    struct pg_args b = {0};
    pg_arg_text(&b, f->state_hash);
    pg_arg_text(&b, f->browser_hash);
    pg_arg_text(&b, f->nonce);
    pg_arg_text(&b, f->code_verifier);
    pg_arg_text(&b, f->return_to);
    pg_arg_i64(&b, f->created_at);
    pg_arg_i64(&b, f->expires_at);
    rc = pg_do(c, "INSERT INTO signin_flows (" FLOW_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7)",
               &b, "insert sign-in flow", NULL, err);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_signin_flow_take(struct db *db, const char *state_hash,
                                    struct db_signin_flow *out, struct as_err *err)
{
    struct db_conn *c;
    memset(out, 0, sizeof *out);
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, state_hash);
    PGresult *r = pg_run(c, "DELETE FROM signin_flows WHERE state_hash = $1 RETURNING " FLOW_COLS,
                         &a, "take sign-in flow", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (PQntuples(r) == 1) {
        snprintf(out->state_hash, sizeof out->state_hash, "%s", pg_text(r, 0, 0));
        snprintf(out->browser_hash, sizeof out->browser_hash, "%s", pg_text(r, 0, 1));
        snprintf(out->nonce, sizeof out->nonce, "%s", pg_text(r, 0, 2));
        snprintf(out->code_verifier, sizeof out->code_verifier, "%s", pg_text(r, 0, 3));
        snprintf(out->return_to, sizeof out->return_to, "%s", pg_text(r, 0, 4));
        out->created_at = pg_i64(r, 0, 5);
        out->expires_at = pg_i64(r, 0, 6);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no such sign-in (used already, or expired)");
    }
    PQclear(r);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_signin_session_add(struct db *db, struct db_signin_session *s,
                                      struct as_err *err)
{
    if (!db_signin_session_ok(s))
        return as_errf(err, AS_EINVAL, "a sign-in session needs its hash, an oid and an expiry");
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, s->created_at);
    rc = pg_do(c, "DELETE FROM signin_sessions WHERE expires_at <= $1", &a,
               "delete expired sign-in sessions", NULL, err);
    if (rc)
        return db_pg_write_end(db, rc, err);
    struct pg_args b = {0};
    pg_arg_text(&b, s->session_hash);
    pg_arg_text(&b, s->upn);
    pg_arg_text(&b, s->oid);
    pg_arg_text(&b, s->tid);
    pg_arg_text(&b, s->name);
    pg_arg_i64(&b, s->created_at);
    pg_arg_i64(&b, s->expires_at);
    pg_arg_text(&b, s->client_addr);
    pg_arg_text(&b, s->user_agent);
    PGresult *r = pg_run(c,
                         "INSERT INTO signin_sessions (session_hash, upn, oid, tid, name,"
                         " created_at, expires_at, client_addr, user_agent)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                         &b, "insert sign-in session", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    s->id = pg_i64(r, 0, 0);
    PQclear(r);
    json_t *data = db_signin_event_json(s);
    rc = data ? db_event_append(c, 0, 0, "sign_in.login", data, err)
              : as_errf(err, AS_ENOMEM, "out of memory");
    json_decref(data);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_signin_session_find(struct db *db, const char *session_hash,
                                       struct db_signin_session *out, struct as_err *err)
{
    struct db_conn *c;
    memset(out, 0, sizeof *out);
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, session_hash);
    PGresult *r = pg_run(c, "SELECT " SIGNIN_COLS " FROM signin_sessions WHERE session_hash = $1",
                         &a, "find sign-in session", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        out->id = pg_i64(r, 0, 0);
        snprintf(out->session_hash, sizeof out->session_hash, "%s", pg_text(r, 0, 1));
        snprintf(out->upn, sizeof out->upn, "%s", pg_text(r, 0, 2));
        snprintf(out->oid, sizeof out->oid, "%s", pg_text(r, 0, 3));
        snprintf(out->tid, sizeof out->tid, "%s", pg_text(r, 0, 4));
        snprintf(out->name, sizeof out->name, "%s", pg_text(r, 0, 5));
        out->created_at = pg_i64(r, 0, 6);
        out->expires_at = pg_i64(r, 0, 7);
        snprintf(out->client_addr, sizeof out->client_addr, "%s", pg_text(r, 0, 8));
        snprintf(out->user_agent, sizeof out->user_agent, "%s", pg_text(r, 0, 9));
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no such sign-in session");
    }
    PQclear(r);
    return rc;
}
