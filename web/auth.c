/*
 * auth.c - identifying the caller of the REST API (see auth.h): the table
 * of authenticators, the admin_token_file token, stored API tokens, and the
 * refusals with the rate limiter.
 */
#include "web/auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/encode.h"
#include "engine/app.h"
#include "web/ratelimit.h"

/* What an authenticator found. */
enum auth_found {
    AUTH_NONE,    /* no credential of its kind: ask the next one */
    AUTH_OK,      /* *who is filled */
    AUTH_REFUSED, /* a credential of its kind, not valid (message in err) */
    AUTH_FAILED,  /* the check itself failed (store error in err) */
};

typedef enum auth_found (*authenticator)(struct web_req *req, struct web_principal *who,
                                         struct as_err *err);

/* "Authorization: Bearer TOKEN": admin_token_file, then the stored tokens. */
static enum auth_found auth_bearer(struct web_req *req, struct web_principal *who,
                                   struct as_err *err)
{
    const char *auth = web_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return AUTH_NONE;
    const char *presented = auth + 7;
    while (*presented == ' ')
        presented++;
    const char *admin = web_server_admin_token(req->server);
    if (admin) {
        char want[ENCODE_SHA256_HEX_SIZE], got[ENCODE_SHA256_HEX_SIZE];
        /* Hash both so the comparison takes the same time whatever the lengths. */
        if (encode_sha256_hex(admin, strlen(admin), want) == 0 &&
            encode_sha256_hex(presented, strlen(presented), got) == 0 &&
            CRYPTO_memcmp(want, got, sizeof want - 1) == 0) {
            who->role = API_ROLE_ADMIN;
            snprintf(who->name, sizeof who->name, "%s", API_ADMIN_FILE_NAME);
            who->via = "admin_token_file";
            who->token_id = 0;
            return AUTH_OK;
        }
    }
    struct db_api_token t;
    enum as_code rc = api_token_check(req->app->db, presented, req->now_ms, &t, err);
    if (rc == AS_EAUTH || rc == AS_EEXPIRED)
        return AUTH_REFUSED;
    if (rc)
        return AUTH_FAILED;
    who->role = api_role_parse(t.role);
    snprintf(who->name, sizeof who->name, "%s", t.name);
    who->via = "token";
    who->token_id = t.id;
    if (who->role == API_ROLE_NONE) {
        as_errf(err, AS_EAUTH, "the token \"%s\" has no known role", t.name);
        return AUTH_REFUSED;
    }
    return AUTH_OK;
}

/* The authenticators, in the order they are asked (see auth.h: the
 * console's session cookie goes here). */
static const authenticator authenticators[] = {auth_bearer};

int web_auth_require(struct web_req *req, struct web_resp *resp, enum api_role need,
                     struct web_principal *who)
{
    struct web_principal me;
    struct as_err err = {0};
    struct ratelimit *rl = web_server_ratelimit(req->server);
    int retry_after = 0;
    if (!who)
        who = &me;
    memset(who, 0, sizeof *who);
    if (ratelimit_blocked(rl, req->client_addr, req->now_ms, &retry_after)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        web_resp_header(resp, "Retry-After", ra);
        web_resp_error(resp, 429, "rate_limited", "too many failed attempts from this address");
        return 0;
    }
    enum auth_found found = AUTH_NONE;
    for (size_t i = 0; i < sizeof authenticators / sizeof authenticators[0]; i++) {
        found = authenticators[i](req, who, &err);
        if (found != AUTH_NONE)
            break;
    }
    switch (found) {
    case AUTH_OK:
        snprintf(resp->log_note, sizeof resp->log_note, "by=%s", who->name);
        if (who->role >= need)
            return 1;
        web_resp_error(resp, 403, "forbidden", "%s \"%s\" has the role %s; this needs %s",
                       who->via, who->name, api_role_name(who->role), api_role_name(need));
        return 0;
    case AUTH_FAILED:
        web_resp_error(resp, 500, "internal", "cannot check the credential: %s", err.msg);
        return 0;
    case AUTH_REFUSED:
        ratelimit_fail(rl, req->client_addr, req->now_ms);
        web_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"assent\", error=\"invalid_token\"");
        web_resp_error(resp, 401, "unauthorized", "%s", err.msg);
        return 0;
    case AUTH_NONE:
    default:
        web_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"assent\"");
        web_resp_error(resp, 401, "unauthorized",
                       "a bearer token is required (Authorization: Bearer TOKEN; see "
                       "`assent token create`)");
        return 0;
    }
}
