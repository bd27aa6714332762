/*
 * m365_oidc.h - the two network calls of sign-in with Entra ID, made with
 * the app's own client (m365.h): fetching a public document of the
 * identity platform (the discovery document, the key set), and redeeming
 * an authorization code for tokens at the token endpoint with the PKCE
 * code verifier and the app's credential - the certificate's client
 * assertion or the client secret, exactly as the app-only token requests
 * send it.  What comes back is checked by m365/oidc.h.
 *
 * Both honour the client's deadline (m365_set_deadline): the web server
 * sets one, so a slow identity platform costs a sign-in at most that long.
 * A code is redeemed at most once (the request is a write: an ambiguous
 * failure is not repeated; the code is single-use anyway).
 */
#ifndef ASSENT_M365_M365_OIDC_H
#define ASSENT_M365_M365_OIDC_H

#include <stddef.h>

#include "base/error.h"

struct m365;

#define M365_OIDC_DOC_MAX (1024 * 1024)

/* GET url (no credential).  *text is malloc'd and NUL-terminated, *len its length. */
enum as_code m365_oidc_get(struct m365 *m, const char *url, char **text, size_t *len,
                           struct as_err *err) AS_WUR;

/*
 * POST grant_type=authorization_code with code, redirect_uri, code_verifier,
 * scope "openid profile" and the app's credential to token_endpoint; *id_token
 * (malloc'd) receives the response's id_token.  AS_EAUTH when the platform
 * refuses (its AADSTS message in err), AS_EPERMANENT when the answer has no
 * id_token.  The access token that comes with it is not kept.
 */
enum as_code m365_oidc_redeem(struct m365 *m, const char *token_endpoint, const char *code,
                              const char *code_verifier, const char *redirect_uri,
                              char **id_token, struct as_err *err) AS_WUR;

/* The app's client id (borrowed). */
const char *m365_client_id(const struct m365 *m);

#endif
