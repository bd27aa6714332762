/*
 * db_tokens.h - storage of the REST API's bearer tokens (schema:
 * db/sqlite/migrations/009_api_tokens.sql).
 *
 * A token is never stored: a row holds the hex SHA-256 of it (64
 * characters), looked up through a unique index and compared again in
 * constant time by the caller (web/api_token.c).  A token has a name (unique
 * among tokens not revoked, so `assent token revoke NAME` means one token),
 * a role ("viewer", "operator" or "admin"), who made it, an optional expiry
 * and, once revoked, who revoked it and when.  Rows are never deleted, so
 * the record of who held which access stays.
 *
 * Creating and revoking append "token.created" {id, name, role, expires_at,
 * actor} and "token.revoked" {id, name, role, actor} to the audit chain in
 * the same transaction.
 *
 * Every function is thread-safe and opens and ends its own transaction
 * (db/db.h).  Times are ms since the epoch; 0 means "none".
 */
#ifndef ASSENT_DB_TOKENS_H
#define ASSENT_DB_TOKENS_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct db;

#define DB_TOKEN_NAME_MAX 64  /* bytes of a token name */
#define DB_TOKEN_ACTOR_MAX 160 /* bytes of created_by / revoked_by kept */

/* One token as stored (never the token itself). */
struct db_api_token {
    int64_t id;
    char name[DB_TOKEN_NAME_MAX + 1];
    char role[16];          /* viewer | operator | admin */
    char token_hash[65];    /* hex SHA-256 of the token */
    char created_by[DB_TOKEN_ACTOR_MAX + 1];
    int64_t created_at;
    int64_t expires_at;     /* 0: never */
    int64_t revoked_at;     /* 0: not revoked */
    char revoked_by[DB_TOKEN_ACTOR_MAX + 1];
};

/*
 * Store a new token: t->name, t->role, t->token_hash, t->created_by,
 * t->created_at and t->expires_at are read; t->id receives the new row.
 * AS_ECONFLICT when a token of that name is not revoked (expired ones
 * included: revoke it first), AS_EINVAL when a field is empty or the role
 * unknown.  Appends "token.created" with created_by as the actor.
 */
enum as_code db_api_token_add(struct db *db, struct db_api_token *t, struct as_err *err) AS_WUR;

/*
 * The token whose hash is token_hash (revoked and expired ones too: the
 * caller decides) into *out.  AS_ENOTFOUND when there is none.
 */
enum as_code db_api_token_find(struct db *db, const char *token_hash, struct db_api_token *out,
                               struct as_err *err) AS_WUR;

/*
 * Tokens as a new array, newest first: [{"id", "name", "role", "created_at",
 * "created_by", "expires_at" (null: never), "revoked_at", "revoked_by" (null
 * when not revoked)}].  Revoked tokens only with include_revoked.  Never a
 * hash.
 */
enum as_code db_api_token_list(struct db *db, int include_revoked, json_t **out,
                               struct as_err *err) AS_WUR;

/*
 * Revoke the token called name that is not revoked yet, as `by` at now;
 * *out (may be NULL) receives it as it is after.  AS_ENOTFOUND when there
 * is none.  Appends "token.revoked" with `by` as the actor.
 */
enum as_code db_api_token_revoke(struct db *db, const char *name, const char *by, int64_t now,
                                 struct db_api_token *out, struct as_err *err) AS_WUR;

#endif
