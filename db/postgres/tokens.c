/*
 * tokens.c - the REST API's bearer tokens in the PostgreSQL store
 * (contract in db/db_tokens.h; the SQLite dialect is db/sqlite/db_tokens.c).
 *
 * A name is unique among the tokens not revoked (the partial unique index
 * api_tokens_live_name, 009_api_tokens.sql).  Creating inserts with ON
 * CONFLICT DO NOTHING on that index, so of two nodes making a token of one
 * name at once one makes it and the other is refused (AS_ECONFLICT), and
 * neither transaction fails.  Revoking is a conditional UPDATE (revoked_at
 * IS NULL): of two revocations one wins, the other finds nothing to revoke.
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <string.h>

#include "db/db_events.h"

#define TOKEN_COLS                                                                               \
    "id, name, role, token_hash, created_at, created_by, expires_at, revoked_at, revoked_by"

static int role_known(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "admin") == 0;
}

/* Row i of r (TOKEN_COLS) into *t. */
static void token_from_row(const PGresult *r, int i, struct db_api_token *t)
{
    memset(t, 0, sizeof *t);
    t->id = pg_i64(r, i, 0);
    snprintf(t->name, sizeof t->name, "%s", pg_text(r, i, 1));
    snprintf(t->role, sizeof t->role, "%s", pg_text(r, i, 2));
    snprintf(t->token_hash, sizeof t->token_hash, "%s", pg_text(r, i, 3));
    t->created_at = pg_i64(r, i, 4);
    snprintf(t->created_by, sizeof t->created_by, "%s", pg_text(r, i, 5));
    t->expires_at = pg_i64(r, i, 6); /* NULL reads as 0: never */
    t->revoked_at = pg_i64(r, i, 7);
    snprintf(t->revoked_by, sizeof t->revoked_by, "%s", pg_text(r, i, 8));
}

/* Append a token event to the audit chain (run and step: none). */
static enum as_code token_event(struct db_conn *c, const char *type, const struct db_api_token *t,
                                const char *actor, struct as_err *err)
{
    json_t *data = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)t->id, "name", t->name,
                             "role", t->role, "actor", actor);
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (strcmp(type, "token.created") == 0)
        json_object_set_new(data, "expires_at",
                            t->expires_at ? json_integer(t->expires_at) : json_null());
    enum as_code rc = db_event_append(c, 0, 0, type, data, err);
    json_decref(data);
    return rc;
}

enum as_code db_pg_api_token_add(struct db *db, struct db_api_token *t, struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO api_tokens (name, role, token_hash, created_at, created_by, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING RETURNING id";
    if (!t->name[0] || !t->created_by[0] || strlen(t->token_hash) != 64 || !role_known(t->role))
        return as_errf(err, AS_EINVAL,
                       "a token needs a name, a known role, its hash and who made it");
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, t->name);
    pg_arg_text(&a, t->role);
    pg_arg_text(&a, t->token_hash);
    pg_arg_i64(&a, t->created_at);
    pg_arg_text(&a, t->created_by);
    if (t->expires_at)
        pg_arg_i64(&a, t->expires_at);
    else
        pg_arg_text(&a, NULL);
    PGresult *r = pg_run(c, ins, &a, "insert token", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (PQntuples(r) == 1) {
        t->id = pg_i64(r, 0, 0);
        rc = token_event(c, "token.created", t, t->created_by, err);
    } else {
        rc = as_errf(err, AS_ECONFLICT, "a token named \"%s\" exists (revoke it first)", t->name);
    }
    PQclear(r);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_api_token_find(struct db *db, const char *token_hash,
                                  struct db_api_token *out, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, token_hash);
    PGresult *r = pg_run(c, "SELECT " TOKEN_COLS " FROM api_tokens WHERE token_hash = $1", &a,
                         "find token", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1)
        token_from_row(r, 0, out);
    else
        rc = as_errf(err, AS_ENOTFOUND, "no such token");
    PQclear(r);
    return rc;
}

enum as_code db_pg_api_token_list(struct db *db, int include_revoked, json_t **out,
                                  struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, include_revoked ? 1 : 0);
    PGresult *r = pg_run(c,
                         "SELECT " TOKEN_COLS " FROM api_tokens"
                         " WHERE $1::int = 1 OR revoked_at IS NULL ORDER BY id DESC",
                         &a, "list tokens", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    json_t *list = json_array();
    if (!list)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        struct db_api_token t;
        token_from_row(r, i, &t);
        json_t *row = json_pack(
            "{s:I, s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "id", (json_int_t)t.id, "name", t.name,
            "role", t.role, "created_at", (json_int_t)t.created_at, "created_by", t.created_by,
            "expires_at", t.expires_at ? json_integer(t.expires_at) : json_null(), "revoked_at",
            t.revoked_at ? json_integer(t.revoked_at) : json_null(), "revoked_by",
            t.revoked_at ? json_string(t.revoked_by) : json_null());
        if (!row || json_array_append_new(list, row))
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    PQclear(r);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

enum as_code db_pg_api_token_revoke(struct db *db, const char *name, const char *by, int64_t now,
                                    struct db_api_token *out, struct as_err *err)
{
    static const char sql[] =
        "UPDATE api_tokens SET revoked_at = $2, revoked_by = $3"
        " WHERE name = $1 AND revoked_at IS NULL RETURNING " TOKEN_COLS;
    struct db_conn *c;
    struct db_api_token t;
    memset(&t, 0, sizeof t);
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    pg_arg_i64(&a, now);
    pg_arg_text(&a, by && *by ? by : "unknown");
    PGresult *r = pg_run(c, sql, &a, "revoke token", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (PQntuples(r) == 1) {
        token_from_row(r, 0, &t);
        rc = token_event(c, "token.revoked", &t, t.revoked_by, err);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no token named \"%s\" (or it was revoked already)", name);
    }
    PQclear(r);
    if (!rc && out)
        *out = t;
    return db_pg_write_end(db, rc, err);
}
