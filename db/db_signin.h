/*
 * db_signin.h - storage of sign-in with Entra ID (schema:
 * db/sqlite/migrations/015_sign_in.sql and its PostgreSQL twin): the
 * OpenID Connect flows under way and the approvers' sign-in sessions.
 *
 * A flow (web/signin.c) is stored when the browser is sent to the identity
 * platform: the hash of its `state`, the hash of the browser's flow cookie,
 * the nonce, the PKCE code verifier and where to go afterwards.  The
 * callback TAKES it (deletes and returns it in one statement), so a state
 * is good for one callback on whichever node it lands, and a replayed
 * callback finds nothing.  Flows live DB_SIGNIN_FLOW_MS.
 *
 * A sign-in session holds the verified identity (UPN, object id, tenant)
 * of a person who signed in to answer approval links; the cookie is never
 * stored, only its hex SHA-256.  Opening one appends "sign_in.login"
 * {session_id, upn, oid, tid, name, client_addr, user_agent, expires_at,
 * actor} to the audit chain in the same transaction.  (A console session
 * opened by signing in is a row of db_sessions.h with upn/oid/tid set.)
 *
 * Every function is thread-safe and opens and ends its own transaction
 * (db/db.h); each add also deletes the rows of its table that expired
 * before `created_at`.  Times are ms since the epoch.
 */
#ifndef ASSENT_DB_SIGNIN_H
#define ASSENT_DB_SIGNIN_H

#include <stdint.h>

#include "base/error.h"

struct db;

#define DB_SIGNIN_FLOW_MS (10 * 60 * 1000LL)
#define DB_SIGNIN_RETURN_MAX 511
#define DB_SIGNIN_SECRET_MAX 127

/* One flow under way. */
struct db_signin_flow {
    char state_hash[65];   /* hex SHA-256 of the state parameter */
    char browser_hash[65]; /* hex SHA-256 of the browser's flow cookie */
    char nonce[DB_SIGNIN_SECRET_MAX + 1];
    char code_verifier[DB_SIGNIN_SECRET_MAX + 1];
    char return_to[DB_SIGNIN_RETURN_MAX + 1]; /* a path of Assent's: /console/... or /a/TOKEN */
    int64_t created_at;
    int64_t expires_at;
};

/* Store a new flow.  AS_EINVAL when a field is empty or too long. */
enum as_code db_signin_flow_add(struct db *db, const struct db_signin_flow *f,
                                struct as_err *err) AS_WUR;

/*
 * Take (delete and return) the flow whose state hash is state_hash, expired
 * or not (the caller decides).  AS_ENOTFOUND when there is none: never
 * made, taken already, or removed after it expired.
 */
enum as_code db_signin_flow_take(struct db *db, const char *state_hash,
                                 struct db_signin_flow *out, struct as_err *err) AS_WUR;

/* One approver's sign-in session as stored. */
struct db_signin_session {
    int64_t id;
    char session_hash[65];
    char upn[256];
    char oid[65];
    char tid[65];
    char name[256];
    int64_t created_at;
    int64_t expires_at;
    char client_addr[64];
    char user_agent[256];
};

/* Store a new session (s->id receives its row) and append "sign_in.login". */
enum as_code db_signin_session_add(struct db *db, struct db_signin_session *s,
                                   struct as_err *err) AS_WUR;

/* The session whose hash is session_hash (expired ones too).  AS_ENOTFOUND when none. */
enum as_code db_signin_session_find(struct db *db, const char *session_hash,
                                    struct db_signin_session *out, struct as_err *err) AS_WUR;

#endif
