/*
 * auth.c - identifying the caller of the REST API and the console (see
 * auth.h): the authenticators (bearer tokens, console sessions), the
 * admin_token_file token, stored API tokens, and the REST API's refusals
 * with the rate limiter.
 */
#include "web/auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/encode.h"
#include "db/db_sessions.h"
#include "engine/app.h"
#include "web/ratelimit.h"

enum web_auth_found web_auth_token(struct web_req *req, const char *presented,
                                   struct web_principal *who, struct as_err *err)
{
    const char *admin = web_server_admin_token(req->server);
    if (admin) {
        char want[ENCODE_SHA256_HEX_SIZE], got[ENCODE_SHA256_HEX_SIZE];
        /* Hash both so the comparison takes the same time whatever the lengths. */
        if (encode_sha256_hex(admin, strlen(admin), want) == 0 &&
            encode_sha256_hex(presented, strnlen(presented, 4096), got) == 0 &&
            CRYPTO_memcmp(want, got, sizeof want - 1) == 0) {
            who->role = API_ROLE_ADMIN;
            snprintf(who->name, sizeof who->name, "%s", API_ADMIN_FILE_NAME);
            who->via = "admin_token_file";
            who->token_id = 0;
            return WEB_AUTH_OK;
        }
    }
    struct db_api_token t;
    enum as_code rc = api_token_check(req->app->db, presented, req->now_ms, &t, err);
    if (rc == AS_EAUTH || rc == AS_EEXPIRED)
        return WEB_AUTH_REFUSED;
    if (rc)
        return WEB_AUTH_FAILED;
    who->role = api_role_parse(t.role);
    snprintf(who->name, sizeof who->name, "%s", t.name);
    who->via = "token";
    who->token_id = t.id;
    if (who->role == API_ROLE_NONE) {
        as_errf(err, AS_EAUTH, "the token \"%s\" has no known role", t.name);
        return WEB_AUTH_REFUSED;
    }
    return WEB_AUTH_OK;
}

/* "Authorization: Bearer TOKEN": admin_token_file, then the stored tokens. */
static enum web_auth_found auth_bearer(struct web_req *req, struct web_principal *who,
                                       struct as_err *err)
{
    const char *auth = web_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return WEB_AUTH_NONE;
    const char *presented = auth + 7;
    while (*presented == ' ')
        presented++;
    return web_auth_token(req, presented, who, err);
}

int web_auth_cookie(struct web_req *req, const char *name, char *out, size_t out_size)
{
    const char *h = web_req_header(req, "Cookie");
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        size_t len = strcspn(h, ";");
        if (len > nl && strncmp(h, name, nl) == 0 && h[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= out_size)
                return 0;
            memcpy(out, h + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        h += len;
    }
    return 0;
}

/* The console's session cookie: a stored, live session of a live token. */
static enum web_auth_found auth_session(struct web_req *req, struct web_principal *who,
                                        struct as_err *err)
{
    char cookie[128], hash[ENCODE_SHA256_HEX_SIZE];
    if (!web_auth_cookie(req, WEB_AUTH_COOKIE, cookie, sizeof cookie) || !cookie[0])
        return WEB_AUTH_NONE;
    if (encode_sha256_hex(cookie, strlen(cookie), hash) != 0) {
        as_errf(err, AS_EIO, "cannot hash the session");
        return WEB_AUTH_FAILED;
    }
    OPENSSL_cleanse(cookie, sizeof cookie);
    struct db_console_session s;
    enum as_code rc = db_console_session_find(req->app->db, hash, &s, err);
    if (rc == AS_ENOTFOUND) {
        as_errf(err, AS_EAUTH, "the session has ended: sign in again");
        return WEB_AUTH_REFUSED;
    }
    if (rc)
        return WEB_AUTH_FAILED;
    if (req->now_ms >= s.expires_at) {
        as_errf(err, AS_EEXPIRED, "the session has expired: sign in again");
        return WEB_AUTH_REFUSED;
    }
    if (s.token_gone || s.token_revoked_at ||
        (s.token_expires_at && req->now_ms >= s.token_expires_at)) {
        as_errf(err, AS_EAUTH, "the token \"%s\" of this session was revoked or has expired",
                s.name);
        return WEB_AUTH_REFUSED;
    }
    /* A session opened by signing in with Entra ID lasts while sign-in is on. */
    if (s.oid[0] && strcmp(config_str(req->app->cfg, "sign_in"), "entra") != 0) {
        as_errf(err, AS_EAUTH, "sign-in with Entra ID is no longer configured");
        return WEB_AUTH_REFUSED;
    }
    /* A session of admin_token_file lasts only while that file's token is set. */
    if (!s.token_id && !s.oid[0] && !web_server_admin_token(req->server)) {
        as_errf(err, AS_EAUTH, "admin_token_file is no longer configured");
        return WEB_AUTH_REFUSED;
    }
    who->role = api_role_parse(s.role);
    if (who->role == API_ROLE_NONE) {
        as_errf(err, AS_EAUTH, "the session has no known role");
        return WEB_AUTH_REFUSED;
    }
    snprintf(who->name, sizeof who->name, "%s", s.name);
    who->via = "session";
    who->token_id = s.token_id;
    memcpy(who->session_hash, hash, sizeof who->session_hash);
    who->session_expires_at = s.expires_at;
    return WEB_AUTH_OK;
}

typedef enum web_auth_found (*authenticator)(struct web_req *req, struct web_principal *who,
                                             struct as_err *err);

/* The authenticators, in the order they are asked, with their kind. */
static const struct {
    unsigned kind;
    authenticator fn;
} authenticators[] = {
    {WEB_AUTH_BEARER, auth_bearer},
    {WEB_AUTH_SESSION, auth_session},
};

enum web_auth_found web_auth_identify(struct web_req *req, unsigned kinds,
                                      struct web_principal *who, struct as_err *err)
{
    memset(who, 0, sizeof *who);
    for (size_t i = 0; i < sizeof authenticators / sizeof authenticators[0]; i++) {
        if (!(authenticators[i].kind & kinds))
            continue;
        enum web_auth_found found = authenticators[i].fn(req, who, err);
        if (found != WEB_AUTH_NONE)
            return found;
    }
    return WEB_AUTH_NONE;
}

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
    /* Bearer tokens only: a cookie a browser adds by itself is never enough here. */
    switch (web_auth_identify(req, WEB_AUTH_BEARER, who, &err)) {
    case WEB_AUTH_OK:
        snprintf(resp->log_note, sizeof resp->log_note, "by=%s", who->name);
        if (who->role >= need)
            return 1;
        web_resp_error(resp, 403, "forbidden", "%s \"%s\" has the role %s; this needs %s",
                       who->via, who->name, api_role_name(who->role), api_role_name(need));
        return 0;
    case WEB_AUTH_FAILED:
        web_resp_error(resp, 500, "internal", "cannot check the credential: %s", err.msg);
        return 0;
    case WEB_AUTH_REFUSED:
        ratelimit_fail(rl, req->client_addr, req->now_ms);
        web_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"assent\", error=\"invalid_token\"");
        web_resp_error(resp, 401, "unauthorized", "%s", err.msg);
        return 0;
    case WEB_AUTH_NONE:
    default:
        web_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"assent\"");
        web_resp_error(resp, 401, "unauthorized",
                       "a bearer token is required (Authorization: Bearer TOKEN; see "
                       "`assent token create`)");
        return 0;
    }
}
