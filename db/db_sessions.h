/*
 * db_sessions.h - storage of the admin console's sessions (schema:
 * db/sqlite/migrations/013_console_sessions.sql and its PostgreSQL twin).
 *
 * The console (web/console.c) signs a person in with an API token and
 * gives the browser a random session cookie.  The cookie is never stored:
 * a row holds the hex SHA-256 of it, found through a unique index, so any
 * node that shares the database recognises the session.  A session keeps
 * the name and role of the token it was opened with, the token's id (0 for
 * the admin_token_file token) so that revoking the token ends it, and its
 * own expiry.  A session opened by signing in with Entra ID has no token
 * (token_id 0) and carries the identity instead (upn, oid, tid; oid is
 * never empty for it), recorded in "console.login" too.
 *
 * Opening and ending a session append "console.login" {session_id, name,
 * role, via, client_addr, user_agent, expires_at, actor} and
 * "console.logout" {session_id, name, role, actor} to the audit chain in
 * the same transaction; the actor is the token's name.
 *
 * Every function is thread-safe and opens and ends its own transaction
 * (db/db.h).  Times are ms since the epoch.
 */
#ifndef ASSENT_DB_SESSIONS_H
#define ASSENT_DB_SESSIONS_H

#include <stdint.h>

#include "base/error.h"
#include "db/db_tokens.h"

struct db;

#define DB_SESSION_ADDR_MAX 63
#define DB_SESSION_AGENT_MAX 255

/* One session as stored (never the cookie itself). */
struct db_console_session {
    int64_t id;
    char session_hash[65];          /* hex SHA-256 of the cookie */
    int64_t token_id;               /* the API token; 0: admin_token_file */
    char name[DB_TOKEN_NAME_MAX + 1];
    char role[16];                  /* viewer | operator | admin */
    int64_t created_at;
    int64_t expires_at;
    char client_addr[DB_SESSION_ADDR_MAX + 1];
    char user_agent[DB_SESSION_AGENT_MAX + 1];
    /* Signed in with Entra ID (web/signin.c): who; all "" for a token's session. */
    char upn[256];
    char oid[65];
    char tid[65];
    /* Filled by db_console_session_find: the token as it is now. */
    int token_gone;                 /* token_id names no token */
    int64_t token_revoked_at;       /* 0: not revoked */
    int64_t token_expires_at;       /* 0: never */
};

/*
 * Store a new session: every field but id and the token_* state is read;
 * s->id receives the new row.  Sessions that expired before s->created_at
 * are deleted in the same transaction.  AS_EINVAL when a field is empty or
 * the role unknown.  Appends "console.login" with `via` ("token" or
 * "admin_token_file") and the name as the actor.
 */
enum as_code db_console_session_add(struct db *db, struct db_console_session *s, const char *via,
                                    struct as_err *err) AS_WUR;

/*
 * The session whose hash is session_hash (expired ones too: the caller
 * decides) into *out, with its token's state now.  AS_ENOTFOUND when there
 * is none.
 */
enum as_code db_console_session_find(struct db *db, const char *session_hash,
                                     struct db_console_session *out, struct as_err *err) AS_WUR;

/*
 * End the session whose hash is session_hash: delete it and append
 * "console.logout" with its name as the actor.  *out (may be NULL) receives
 * it as it was.  AS_ENOTFOUND when there is none (ended already).
 */
enum as_code db_console_session_delete(struct db *db, const char *session_hash,
                                       struct db_console_session *out, struct as_err *err) AS_WUR;

#endif
