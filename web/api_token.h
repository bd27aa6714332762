/*
 * api_token.h - the REST API's bearer tokens and roles: making a token
 * (`assent token create`, POST /api/v1/tokens) and checking one a request
 * presents (web/auth.c).
 *
 * A token is "assent_" and 43 base64url characters: 32 bytes (256 bits)
 * from the OS CSPRNG (RAND_bytes).  It is shown once, when made; only the
 * hex SHA-256 of the whole text is stored (db/db_tokens.h), so a copy of
 * the database holds no usable token.  The prefix lets secret scanners
 * recognise a token that leaked into a repository or a log.
 *
 * Roles are ordered: a viewer reads; an operator also starts, cancels and
 * retries runs, decides approvals as an administrator, evaluates and
 * triggers KPIs and manages exceptions; an admin also manages workflows,
 * KPIs and tokens.  The token in config admin_token_file is an admin whose
 * name is API_ADMIN_FILE_NAME.
 *
 * Thread-safe; no state.
 */
#ifndef ASSENT_WEB_API_TOKEN_H
#define ASSENT_WEB_API_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "db/db_tokens.h"

struct db;

#define API_TOKEN_PREFIX "assent_"
#define API_TOKEN_LEN 50 /* the prefix and 43 characters */
/* The name the admin_token_file token acts as (no stored token may take it). */
#define API_ADMIN_FILE_NAME "admin_token_file"

enum api_role { API_ROLE_NONE = 0, API_ROLE_VIEWER, API_ROLE_OPERATOR, API_ROLE_ADMIN };

/* "viewer", "operator", "admin" ("none" for API_ROLE_NONE). */
const char *api_role_name(enum api_role role);

/* The role called s, or API_ROLE_NONE when s names none. */
enum api_role api_role_parse(const char *s);

/* 1 when name may name a token: 1 to 64 of [A-Za-z0-9._@-], not API_ADMIN_FILE_NAME. */
int api_token_name_ok(const char *name);

/*
 * Make and store a token called name with role, expiring at expires_at (0:
 * never), made by created_by (who asked: an OS user, a token's name) at now.
 * token (token_size >= API_TOKEN_LEN + 1) receives the token: the only time
 * it exists outside the request that uses it.  rec (may be NULL) receives
 * the stored row.  AS_EINVAL for a bad name or role, AS_ECONFLICT when a
 * token of that name is not revoked, AS_EIO when the CSPRNG fails.  Logged
 * in the audit chain as "token.created".
 */
enum as_code api_token_create(struct db *db, const char *name, enum api_role role,
                              int64_t expires_at, const char *created_by, int64_t now,
                              char *token, size_t token_size, struct db_api_token *rec,
                              struct as_err *err) AS_WUR;

/*
 * Check a presented token at now: hash it, find the stored token by the
 * hash (an indexed lookup), compare the two hashes again in constant time,
 * and refuse a revoked one (AS_EAUTH) or an expired one (AS_EEXPIRED).  An
 * unknown token is AS_EAUTH.  On AS_OK *out is the stored row.  AS_EDB when
 * the store fails.
 */
enum as_code api_token_check(struct db *db, const char *presented, int64_t now,
                             struct db_api_token *out, struct as_err *err) AS_WUR;

#endif
