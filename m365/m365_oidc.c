/* m365_oidc.c - the network calls of sign-in with Entra ID (see m365_oidc.h). */
#include "m365/m365_oidc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secret_file.h"
#include "base/strbuf.h"
#include "base/timeutil.h"
#include "m365/m365_internal.h"

#define ASSERTION_LIFETIME_S 300
#define ID_TOKEN_MAX (16 * 1024)

const char *m365_client_id(const struct m365 *m)
{
    return m->client_id;
}

enum as_code m365_oidc_get(struct m365 *m, const char *url, char **text, size_t *len,
                           struct as_err *err)
{
    struct m365_resp resp = {0};
    *text = NULL;
    *len = 0;
    struct m365_req req = {
        .svc = M365_SVC_NONE,
        .what = "identity platform GET",
        .method = "GET",
        .url = url,
        .max_body = M365_OIDC_DOC_MAX,
    };
    enum as_code rc = m365_call(m, &req, &resp, NULL, err);
    if (!rc && resp.status != 200)
        rc = as_errf(err, AS_EPERMANENT, "identity platform GET %s: HTTP %ld", url, resp.status);
    if (!rc) {
        *text = malloc(resp.len + 1);
        if (!*text) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
        } else {
            memcpy(*text, resp.body ? resp.body : "", resp.len);
            (*text)[resp.len] = '\0';
            *len = resp.len;
        }
    }
    m365_resp_free(&resp);
    return rc;
}

/* "&name=" + the escaped value, appended to b; 0 or -1. */
static int add_field(struct m365 *m, struct strbuf *b, const char *name, const char *value)
{
    char *e = m365_escape(m, value);
    if (!e)
        return -1;
    strbuf_addf(b, "%s%s=%s", b->len ? "&" : "", name, e);
    explicit_bzero(e, strlen(e));
    curl_free(e);
    return b->failed ? -1 : 0;
}

enum as_code m365_oidc_redeem(struct m365 *m, const char *token_endpoint, const char *code,
                              const char *code_verifier, const char *redirect_uri,
                              char **id_token, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct strbuf form = {0};
    struct m365_resp resp = {0};
    json_t *j = NULL;
    char *assertion = NULL;
    *id_token = NULL;
    if (m->cert) {
        /* The audience of the assertion is the token endpoint it is sent to. */
        rc = m365_jwt_assertion(m->cert, m->alg, m->client_id, token_endpoint,
                                time_now_ms() / 1000, ASSERTION_LIFETIME_S, &assertion, err);
        if (rc)
            goto out;
    }
    if (add_field(m, &form, "client_id", m->client_id) ||
        add_field(m, &form, "grant_type", "authorization_code") ||
        add_field(m, &form, "code", code) || add_field(m, &form, "redirect_uri", redirect_uri) ||
        add_field(m, &form, "code_verifier", code_verifier) ||
        add_field(m, &form, "scope", "openid profile") ||
        (m->cert ? add_field(m, &form, "client_assertion_type",
                             "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") ||
                       add_field(m, &form, "client_assertion", assertion)
                 : add_field(m, &form, "client_secret", m->secret))) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    struct m365_req req = {
        .svc = M365_SVC_NONE,
        .what = "sign-in code redemption",
        .method = "POST",
        .url = token_endpoint,
        .body = form.p,
        .body_len = form.len,
        .content_type = "application/x-www-form-urlencoded",
        .write = 1,
        .max_body = M365_OIDC_DOC_MAX,
        .parse_json = 1,
    };
    rc = m365_call(m, &req, &resp, &j, err);
    if (rc) {
        if (rc == AS_EPERMANENT)
            rc = AS_EAUTH;
        goto out;
    }
    const char *tok = json_string_value(json_object_get(j, "id_token"));
    if (!tok || !*tok || strlen(tok) > ID_TOKEN_MAX) {
        rc = as_errf(err, AS_EPERMANENT, "the token endpoint's answer has no usable id_token");
        goto out;
    }
    *id_token = strdup(tok);
    if (!*id_token)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    json_decref(j);
    if (resp.body)
        explicit_bzero(resp.body, resp.len);
    m365_resp_free(&resp);
    if (form.p)
        explicit_bzero(form.p, form.len);
    strbuf_free(&form);
    secret_free(assertion);
    return rc;
}
