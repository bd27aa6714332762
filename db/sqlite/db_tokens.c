/* db_tokens.c - the REST API's bearer tokens in SQLite (see db/db_tokens.h). */
#include "db/db_tokens.h"
#include "db/sqlite/sqlite.h"

#include <stdio.h>
#include <string.h>

#include "db/db_events.h"

#define TOKEN_COLS                                                                               \
    "SELECT id, name, role, token_hash, created_at, created_by, expires_at, revoked_at,"         \
    " revoked_by FROM api_tokens "

static int role_known(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "admin") == 0;
}

/* The row st is on (TOKEN_COLS) into *t. */
static void token_from_row(sqlite3_stmt *st, struct db_api_token *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    snprintf(t->name, sizeof t->name, "%s", db_col_text(st, 1));
    snprintf(t->role, sizeof t->role, "%s", db_col_text(st, 2));
    snprintf(t->token_hash, sizeof t->token_hash, "%s", db_col_text(st, 3));
    t->created_at = sqlite3_column_int64(st, 4);
    snprintf(t->created_by, sizeof t->created_by, "%s", db_col_text(st, 5));
    t->expires_at = sqlite3_column_int64(st, 6); /* NULL reads as 0: never */
    t->revoked_at = sqlite3_column_int64(st, 7);
    snprintf(t->revoked_by, sizeof t->revoked_by, "%s", db_col_text(st, 8));
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

enum as_code db_sqlite_api_token_add(struct db *db, struct db_api_token *t, struct as_err *err)
{
    if (!t->name[0] || !t->created_by[0] || strlen(t->token_hash) != 64 || !role_known(t->role))
        return as_errf(err, AS_EINVAL, "a token needs a name, a known role, its hash and who made it");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL",
                               err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    db_stmt_done(st);
    if (step == SQLITE_ROW)
        return db_sqlite_write_end(
            db, as_errf(err, AS_ECONFLICT, "a token named \"%s\" exists (revoke it first)", t->name),
            err);
    if (step != SQLITE_DONE)
        return db_sqlite_write_end(db, db_error(c, "find token", err), err);
    st = db_stmt(c,
                 "INSERT INTO api_tokens (name, role, token_hash, created_at, created_by,"
                 " expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, t->created_at);
    sqlite3_bind_text(st, 5, t->created_by, -1, SQLITE_STATIC);
    if (t->expires_at)
        sqlite3_bind_int64(st, 6, t->expires_at);
    else
        sqlite3_bind_null(st, 6);
    rc = db_step_done(c, st, "insert token", err);
    if (!rc) {
        t->id = sqlite3_last_insert_rowid(db_conn_handle(c));
        rc = token_event(c, "token.created", t, t->created_by, err);
    }
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_api_token_find(struct db *db, const char *token_hash,
                                      struct db_api_token *out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db, TOKEN_COLS "WHERE token_hash = ?1", &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        token_from_row(st, out);
    else if (step == SQLITE_DONE)
        rc = as_errf(err, AS_ENOTFOUND, "no such token");
    else
        rc = db_error(c, "find token", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_api_token_list(struct db *db, int include_revoked, json_t **out,
                                      struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db, TOKEN_COLS "WHERE ?1 OR revoked_at IS NULL ORDER BY id DESC",
                                   &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int(st, 1, include_revoked ? 1 : 0);
    json_t *list = json_array();
    int step = SQLITE_DONE;
    if (!list)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_api_token t;
        token_from_row(st, &t);
        json_t *row = json_pack(
            "{s:I, s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "id", (json_int_t)t.id, "name", t.name,
            "role", t.role, "created_at", (json_int_t)t.created_at, "created_by", t.created_by,
            "expires_at", t.expires_at ? json_integer(t.expires_at) : json_null(), "revoked_at",
            t.revoked_at ? json_integer(t.revoked_at) : json_null(), "revoked_by",
            t.revoked_at ? json_string(t.revoked_by) : json_null());
        if (!row || json_array_append_new(list, row))
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    if (!rc && step != SQLITE_DONE)
        rc = db_error(c, "list tokens", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

enum as_code db_sqlite_api_token_revoke(struct db *db, const char *name, const char *by,
                                        int64_t now, struct db_api_token *out, struct as_err *err)
{
    struct db_conn *c;
    struct db_api_token t;
    memset(&t, 0, sizeof t);
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE api_tokens SET revoked_at = ?2, revoked_by = ?3"
                               " WHERE name = ?1 AND revoked_at IS NULL RETURNING id, name, role,"
                               " token_hash, created_at, created_by, expires_at, revoked_at,"
                               " revoked_by",
                               err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, by && *by ? by : "unknown", -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        token_from_row(st, &t);
        step = sqlite3_step(st);
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no token named \"%s\" (or it was revoked already)", name);
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_error(c, "revoke token", err);
    db_stmt_done(st);
    if (!rc)
        rc = token_event(c, "token.revoked", &t, t.revoked_by, err);
    if (!rc && out)
        *out = t;
    return db_sqlite_write_end(db, rc, err);
}
