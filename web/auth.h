/*
 * auth.h - who is asking: the credentials the REST API (and /metrics)
 * accepts, and the role each route needs.
 *
 * A request is identified by the first authenticator in web/auth.c's table
 * that finds a credential of its kind:
 *   - bearer: "Authorization: Bearer TOKEN", either the token of config
 *     admin_token_file (an admin acting as API_ADMIN_FILE_NAME; compared in
 *     constant time) or a stored API token (web/api_token.h: found by its
 *     hash, refused when revoked or expired).
 *   - session: the admin console's cookie (WEB_AUTH_COOKIE), found by its
 *     hash among the sessions in the database (db/db_sessions.h, shared by
 *     every node), refused when it expired or when the API token it was
 *     opened with was revoked, expired or deleted since (checked on every
 *     request, so revoking the token ends its sessions).
 * The REST API takes bearer tokens only (web_auth_require): a browser sends
 * cookies by itself, so a cookie must never be enough for a JSON route.  The
 * console (web/console.c) takes sessions only (web_auth_identify with
 * WEB_AUTH_SESSION) and checks a CSRF token bound to the session on every
 * state-changing form; a bearer token needs none, a browser never adds one
 * on its own.  Handlers do not change: they ask for a role and get a
 * principal.
 *
 * Refusals (JSON, {"error": {"code", "message"}}):
 *   429 rate_limited  the address has used up its failures (Retry-After);
 *                     every refused credential counts, shared with approval
 *                     links (web/ratelimit.h);
 *   401 unauthorized  no credential, or an unknown, revoked or expired one
 *                     (with WWW-Authenticate: Bearer);
 *   403 forbidden     a valid credential whose role is below the one needed.
 */
#ifndef ASSENT_WEB_AUTH_H
#define ASSENT_WEB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "db/db_tokens.h"
#include "web/api_token.h"
#include "web/server.h"

/* The console's session cookie, and the cookie of its login form. */
#define WEB_AUTH_COOKIE "assent_console"
#define WEB_AUTH_LOGIN_COOKIE "assent_login"

/* Who made a request. */
struct web_principal {
    enum api_role role;
    char name[DB_TOKEN_NAME_MAX + 1]; /* recorded as the actor of what it changes */
    const char *via;                  /* "token", "admin_token_file" or "session" (static) */
    int64_t token_id;                 /* the stored token; 0 for admin_token_file */
    char session_hash[65];            /* a console session: the cookie's hash; else "" */
    int64_t session_expires_at;       /* a console session: when it ends */
};

/* Which credentials web_auth_identify looks for. */
enum web_auth_kind { WEB_AUTH_BEARER = 1, WEB_AUTH_SESSION = 2 };

/* What web_auth_identify found. */
enum web_auth_found {
    WEB_AUTH_NONE,    /* no credential of the kinds asked for */
    WEB_AUTH_OK,      /* *who is filled */
    WEB_AUTH_REFUSED, /* a credential, not valid (why in err) */
    WEB_AUTH_FAILED,  /* the check itself failed (store error in err) */
};

/*
 * Who is asking, by the credential kinds in `kinds` (enum web_auth_kind
 * bits), without answering: the caller decides what a refusal looks like.
 * Does not consult or feed the rate limiter.
 */
enum web_auth_found web_auth_identify(struct web_req *req, unsigned kinds,
                                      struct web_principal *who, struct as_err *err);

/*
 * The principal of a token text `presented` (as typed into the console's
 * login form, or sent as a bearer token): the admin_token_file token
 * (constant-time) or a stored API token (api_token_check).  WEB_AUTH_OK,
 * WEB_AUTH_REFUSED (unknown, revoked, expired: why in err) or
 * WEB_AUTH_FAILED.
 */
enum web_auth_found web_auth_token(struct web_req *req, const char *presented,
                                   struct web_principal *who, struct as_err *err);

/* The value of cookie `name` in the request's Cookie header into out; 1
 * when found (and it fits), else 0. */
int web_auth_cookie(struct web_req *req, const char *name, char *out, size_t out_size);

/*
 * 1 when the request carries a valid credential with at least role `need`
 * (who, which may be NULL, then says whose); otherwise fills resp (429,
 * 401, 403 as above, or 500 when the store fails) and returns 0.  The
 * access log line gets "by=NAME".
 */
int web_auth_require(struct web_req *req, struct web_resp *resp, enum api_role need,
                     struct web_principal *who);

#endif
