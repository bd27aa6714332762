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
 * The console's session cookie is meant to be a second authenticator in
 * that table: it maps the cookie to the API token the session was opened
 * with (re-checked on every request, so revoking the token ends the
 * session), and refuses a state-changing request whose CSRF token does not
 * match, since a browser sends cookies by itself.  A bearer token needs no
 * CSRF token: a browser never adds one on its own.  Handlers do not change:
 * they ask web_auth_require for a role and get a principal.
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

#include <stdint.h>

#include "db/db_tokens.h"
#include "web/api_token.h"
#include "web/server.h"

/* Who made a request. */
struct web_principal {
    enum api_role role;
    char name[DB_TOKEN_NAME_MAX + 1]; /* recorded as the actor of what it changes */
    const char *via;                  /* "token" or "admin_token_file" (static) */
    int64_t token_id;                 /* the stored token; 0 for admin_token_file */
};

/*
 * 1 when the request carries a valid credential with at least role `need`
 * (who, which may be NULL, then says whose); otherwise fills resp (429,
 * 401, 403 as above, or 500 when the store fails) and returns 0.  The
 * access log line gets "by=NAME".
 */
int web_auth_require(struct web_req *req, struct web_resp *resp, enum api_role need,
                     struct web_principal *who);

#endif
