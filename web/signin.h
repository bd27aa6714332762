/*
 * signin.h - private to web/: sign-in with Microsoft Entra ID (OpenID
 * Connect, authorization code flow with PKCE S256, state and nonce) for
 * the admin console and for approvers (config sign_in: entra).
 *
 *   POST /auth/login (form: return)  start a sign-in: a flow is stored in
 *        the database (db/db_signin.h: the state's hash, the nonce, the
 *        PKCE verifier, where to return, bound to a flow cookie of this
 *        browser), then 303 to the provider's authorization endpoint.
 *        GET /auth/login?return=... shows a page with the button (a GET
 *        changes nothing).
 *   GET  /auth/callback?code&state   takes the flow (single use, any
 *        node), redeems the code with the verifier and the app's credential
 *        (m365/m365_oidc.h), verifies the ID token (m365/oidc.h: RS256
 *        against the discovered key set, iss, aud, tid, exp/nbf, nonce),
 *        then, by where the flow returns to:
 *          /console/...  a console session with the role of the token's
 *                        app roles or config sign_in_roles (none: 403);
 *          /a/TOKEN      the link's approver must be who signed in (else
 *                        403 "signed in as X; this request is for Y" and an
 *                        audit event "approval.sign_in_refused"); a sign-in
 *                        session cookie WEB_SIGNIN_COOKIE (Path=/a) is set.
 *        A page then continues to the return path (a same-origin
 *        navigation, so the SameSite=Strict cookies go with it).
 *
 * The provider's discovery document and key set are fetched on first use
 * and kept (keys refetched on an unknown kid at most every 30 s).  These
 * calls run in the handler: a sign-in cannot finish without them, and the
 * client's deadline bounds them.
 */
#ifndef ASSENT_WEB_SIGNIN_H
#define ASSENT_WEB_SIGNIN_H

#include "base/html.h"
#include "db/db_signin.h"
#include "web/server.h"

#define WEB_SIGNIN_COOKIE "assent_signin"    /* an approver's sign-in session, Path=/a */
#define WEB_SIGNIN_FLOW_COOKIE "assent_flow" /* binds a flow to its browser, Path=/auth */

/* 1 when config sign_in is "entra". */
int web_signin_enabled(const struct web_req *req);

/*
 * The approver's sign-in session of this request (cookie WEB_SIGNIN_COOKIE),
 * live: 1 and *out filled; 0 when there is none, it ended, or sign-in is
 * off; -1 when the store failed.
 */
int web_signin_session(struct web_req *req, struct db_signin_session *out);

/* The "Sign in with Microsoft" button: a form posting return_to to /auth/login. */
void web_signin_button(struct html_buf *b, const char *return_to);

/* Routes (web/routes.c). */
void web_auth_login(struct web_req *req, struct web_resp *resp);
void web_auth_callback(struct web_req *req, struct web_resp *resp);

/* Free the provider's cached documents (at server stop). */
void web_signin_shutdown(void);

#endif
