/*
 * signin.c - sign-in with Microsoft Entra ID for the console and for
 * approvers (see signin.h): the provider's documents, /auth/login,
 * /auth/callback, the roles of a console session and the approver's
 * sign-in session.
 */
#include "web/signin.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "approvals/token.h"
#include "base/config.h"
#include "base/encode.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "db/db_approvals.h"
#include "db/db_events.h"
#include "db/db_sessions.h"
#include "engine/app.h"
#include "m365/m365.h"
#include "m365/m365_oidc.h"
#include "m365/oidc.h"
#include "web/api_token.h"
#include "web/approval_pages.h"
#include "web/auth.h"
#include "web/form.h"
#include "web/ratelimit.h"

#define META_MAX_AGE_MS (24 * 3600 * 1000LL) /* the discovery document is fetched again daily */
#define CALL_DEADLINE_MS 15000               /* the provider's calls of one request */
#define FLOW_COOKIE_MAX_AGE_S 900
#define SECRET_BYTES 32

/* The provider as discovered, shared by the handler threads. */
static struct {
    pthread_mutex_t lock;
    int have_meta;
    struct oidc_meta meta;
    int64_t meta_at_ms;
    char meta_url[OIDC_URL_MAX];
    int keys_ready;
    struct oidc_keycache keys;
} provider = {.lock = PTHREAD_MUTEX_INITIALIZER};

int web_signin_enabled(const struct web_req *req)
{
    return strcmp(config_str(req->app->cfg, "sign_in"), "entra") == 0;
}

void web_signin_shutdown(void)
{
    pthread_mutex_lock(&provider.lock);
    if (provider.keys_ready)
        oidc_keycache_free(&provider.keys);
    provider.keys_ready = 0;
    provider.have_meta = 0;
    pthread_mutex_unlock(&provider.lock);
}

/* ---- the provider ------------------------------------------------------------------------ */

/* The app's client on this thread, with a deadline for this request's calls. */
static enum as_code client(struct web_req *req, struct m365 **m, struct as_err *err)
{
    enum as_code rc = m365_thread_get(req->app->cfg, m, err);
    if (!rc)
        m365_set_deadline(*m, time_mono_ms() + CALL_DEADLINE_MS);
    return rc;
}

/* The discovery document (cached for a day) into *out. */
static enum as_code provider_meta(struct web_req *req, struct m365 *m, struct oidc_meta *out,
                                  struct as_err *err)
{
    char url[OIDC_URL_MAX];
    const char *login = config_str(req->app->cfg, "login_url");
    size_t ll = strlen(login);
    while (ll && login[ll - 1] == '/')
        ll--;
    snprintf(url, sizeof url, "%.*s/%s/v2.0/.well-known/openid-configuration", (int)ll, login,
             config_str(req->app->cfg, "tenant_id"));
    pthread_mutex_lock(&provider.lock);
    if (provider.have_meta && strcmp(provider.meta_url, url) == 0 &&
        req->now_ms - provider.meta_at_ms < META_MAX_AGE_MS) {
        *out = provider.meta;
        pthread_mutex_unlock(&provider.lock);
        return AS_OK;
    }
    pthread_mutex_unlock(&provider.lock);

    char *text = NULL;
    size_t len = 0;
    enum as_code rc = m365_oidc_get(m, url, &text, &len, err);
    if (!rc)
        rc = oidc_discovery_parse(text, len, out, err);
    free(text);
    if (rc)
        return rc;
    pthread_mutex_lock(&provider.lock);
    if (!provider.keys_ready) {
        oidc_keycache_init(&provider.keys);
        provider.keys_ready = 1;
    }
    provider.meta = *out;
    provider.have_meta = 1;
    provider.meta_at_ms = req->now_ms;
    snprintf(provider.meta_url, sizeof provider.meta_url, "%s", url);
    pthread_mutex_unlock(&provider.lock);
    return AS_OK;
}

struct key_fetch {
    struct m365 *m;
    const char *url;
};

static enum as_code fetch_keys(void *ud, char **text, size_t *len, struct as_err *err)
{
    struct key_fetch *f = ud;
    LOG_INFO("signin", "fetching the identity platform's keys from %s", f->url);
    return m365_oidc_get(f->m, f->url, text, len, err);
}

/* ---- small pieces ------------------------------------------------------------------------- */

/* samesite: "Strict" for sessions; "Lax" for the flow cookie only, which must
 * come back with the identity platform's redirect to /auth/callback: that
 * navigation starts on another site, and a browser sends no Strict cookie
 * with it (a Lax one goes with a top-level GET). */
static void set_cookie(struct web_req *req, struct web_resp *resp, const char *name,
                       const char *value, const char *path, int64_t max_age_s,
                       const char *samesite)
{
    char h[400];
    snprintf(h, sizeof h, "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=%s%s", name, value,
             path, (long long)max_age_s, samesite, req->https ? "; Secure" : "");
    web_resp_header(resp, "Set-Cookie", h);
}

/* s percent-encoded as one query value into out (cut to fit). */
static void url_escape(const char *s, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* Where a sign-in may return to: a console page, or an approval link. */
static int return_ok(const char *r)
{
    if (!r || strlen(r) > DB_SIGNIN_RETURN_MAX)
        return 0;
    if (strncmp(r, "/a/", 3) == 0)
        return token_well_formed(r + 3);
    if (strncmp(r, "/console/", 9) != 0)
        return 0;
    for (const char *p = r; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 127 || strchr("\\\"'<>", *p))
            return 0;
    return !strstr(r, "//") && !strstr(r, "/..");
}

void web_signin_button(struct html_buf *b, const char *return_to)
{
    html_raw(b, "<form method=\"post\" action=\"/auth/login\">"
                "<input type=\"hidden\" name=\"return\" value=\"");
    html_text(b, return_to);
    html_raw(b, "\"><div class=\"actions\"><button type=\"submit\" class=\"approve\">"
                "Sign in with Microsoft</button></div></form>\n");
}

/*
 * A page that goes on to `to` at once (meta refresh) with a link for the
 * rest.  Not a redirect: after /auth/login's form post, the pages' CSP
 * (form-action 'self') would stop a redirect to the identity platform;
 * after the callback, the navigation must start from our own page so that
 * the new SameSite=Strict cookie goes with it.
 */
static void continue_to(struct web_resp *resp, const char *title, const char *what,
                        const char *to)
{
    struct html_buf b = {0};
    html_raw(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<meta name=\"robots\" content=\"noindex, nofollow\">"
                 "<meta http-equiv=\"refresh\" content=\"0;url=");
    html_text(&b, to);
    html_raw(&b, "\"><title>");
    html_text(&b, title);
    html_raw(&b, "</title></head>\n<body><main>\n<h1>");
    html_text(&b, title);
    html_raw(&b, "</h1>\n<p>");
    html_text(&b, what);
    html_raw(&b, "</p>\n<p><a id=\"continue\" href=\"");
    html_text(&b, to);
    html_raw(&b, "\">Continue</a></p>\n</main></body></html>\n");
    web_resp_html(resp, 200, &b);
}

/* ---- /auth/login ------------------------------------------------------------------------- */

static void login_page(struct web_req *req, struct web_resp *resp)
{
    const char *ret = web_req_query(req, "return");
    if (!ret)
        ret = "/console/overview";
    if (!return_ok(ret)) {
        web_resp_page(resp, 400, "Bad request", "There is nothing to sign in to at that address.");
        return;
    }
    struct html_buf b = {0};
    html_page_begin(&b, "Sign in");
    html_raw(&b, "<h1>Sign in</h1>\n<p>Sign in with your Microsoft work account to go on.</p>\n");
    web_signin_button(&b, ret);
    html_page_end(&b);
    web_resp_html(resp, 200, &b);
}

static void login_start(struct web_req *req, struct web_resp *resp)
{
    struct as_err err = {0};
    struct form *form = NULL;
    struct m365 *m = NULL;
    struct oidc_meta meta;
    if (!approval_same_origin(web_req_header(req, "Sec-Fetch-Site"), web_req_header(req, "Origin"),
                              web_server_public_origin(req->server))) {
        web_resp_page(resp, 403, "Refused", "This form was sent from another site.");
        return;
    }
    if (form_parse(req->body, req->body_len, &form, &err) != AS_OK) {
        web_resp_page(resp, 400, "Bad request", err.msg);
        return;
    }
    const char *ret = form_get(form, "return");
    if (!return_ok(ret)) {
        web_resp_page(resp, 400, "Bad request", "There is nothing to sign in to at that address.");
        goto out;
    }
    if (client(req, &m, &err) || provider_meta(req, m, &meta, &err)) {
        LOG_ERROR("signin", "the identity platform cannot be reached: %s", err.msg);
        web_resp_page(resp, 503, "Sign-in unavailable",
                      "Signing in with Microsoft is not possible right now. Try again in a minute.");
        goto out;
    }
    /* The browser's flow cookie: kept across sign-ins of this browser. */
    char browser[96], state[64], challenge[48];
    struct db_signin_flow f;
    memset(&f, 0, sizeof f);
    if (!web_auth_cookie(req, WEB_SIGNIN_FLOW_COOKIE, browser, sizeof browser) ||
        strlen(browser) != 43) {
        if (oidc_random(SECRET_BYTES, browser, sizeof browser) != 0)
            goto fail;
    }
    set_cookie(req, resp, WEB_SIGNIN_FLOW_COOKIE, browser, "/auth", FLOW_COOKIE_MAX_AGE_S, "Lax");
    if (oidc_random(SECRET_BYTES, state, sizeof state) != 0 ||
        oidc_random(SECRET_BYTES, f.nonce, sizeof f.nonce) != 0 ||
        oidc_random(SECRET_BYTES, f.code_verifier, sizeof f.code_verifier) != 0 ||
        oidc_pkce_challenge(f.code_verifier, challenge) != 0 ||
        encode_sha256_hex(state, strlen(state), f.state_hash) != 0 ||
        encode_sha256_hex(browser, strlen(browser), f.browser_hash) != 0)
        goto fail;
    snprintf(f.return_to, sizeof f.return_to, "%s", ret);
    f.created_at = req->now_ms;
    f.expires_at = req->now_ms + DB_SIGNIN_FLOW_MS;
    if (db_signin_flow_add(req->app->db, &f, &err) != AS_OK) {
        LOG_ERROR("signin", "storing a sign-in failed: %s", err.msg);
        goto fail;
    }
    char client_id[300], redirect[600], e_redirect[1800];
    url_escape(config_str(req->app->cfg, "client_id"), client_id, sizeof client_id);
    snprintf(redirect, sizeof redirect, "%s/auth/callback", web_server_public_url(req->server));
    url_escape(redirect, e_redirect, sizeof e_redirect);
    /* state, nonce and the challenge are base64url: nothing to escape. */
    char location[3000];
    snprintf(location, sizeof location,
             "%s%sclient_id=%s&response_type=code&redirect_uri=%s&response_mode=query"
             "&scope=openid%%20profile&state=%s&nonce=%s&code_challenge=%s"
             "&code_challenge_method=S256",
             meta.authorization_endpoint, strchr(meta.authorization_endpoint, '?') ? "&" : "?",
             client_id, e_redirect, state, f.nonce, challenge);
    OPENSSL_cleanse(&f, sizeof f);
    continue_to(resp, "Sign in with Microsoft", "Going on to Microsoft to sign in.", location);
    goto out;
fail:
    web_resp_page(resp, 503, "Try again", "The sign-in could not be started. Try again.");
out:
    if (m)
        m365_set_deadline(m, 0);
    form_free(form);
}

void web_auth_login(struct web_req *req, struct web_resp *resp)
{
    if (!web_signin_enabled(req)) {
        web_resp_page(resp, 404, "Not found", "Signing in with Microsoft is not configured.");
        return;
    }
    if (strcmp(req->method, "POST") == 0)
        login_start(req, resp);
    else
        login_page(req, resp);
}

/* ---- /auth/callback ---------------------------------------------------------------------- */

/* The role of a console session: the token's app roles and config
 * sign_in_roles (a UPN or a group object id -> role); the highest wins. */
static enum api_role role_of(struct web_req *req, const struct oidc_identity *id)
{
    static const struct {
        const char *app_role;
        enum api_role role;
    } app_roles[] = {{"Assent.Viewer", API_ROLE_VIEWER},
                     {"Assent.Operator", API_ROLE_OPERATOR},
                     {"Assent.Admin", API_ROLE_ADMIN}};
    enum api_role best = API_ROLE_NONE;
    size_t i, j;
    json_t *v;
    json_array_foreach(id->roles, i, v) for (j = 0; j < 3; j++) if (
        strcmp(json_string_value(v), app_roles[j].app_role) == 0 && app_roles[j].role > best)
        best = app_roles[j].role;
    const char *map_text = config_str(req->app->cfg, "sign_in_roles");
    if (!*map_text)
        return best;
    json_error_t jerr;
    json_t *map = json_loads(map_text, 0, &jerr);
    if (!json_is_object(map)) {
        LOG_WARN("signin", "config sign_in_roles is not a JSON object; it is ignored");
        json_decref(map);
        return best;
    }
    const char *key;
    json_object_foreach(map, key, v)
    {
        enum api_role r = api_role_parse(json_string_value(v) ? json_string_value(v) : "");
        int match = (id->upn[0] && strcasecmp(key, id->upn) == 0) || strcasecmp(key, id->oid) == 0;
        json_t *g;
        json_array_foreach(id->groups, j, g) match |= strcasecmp(key, json_string_value(g)) == 0;
        if (match && r > best)
            best = r;
    }
    json_decref(map);
    return best;
}

static void console_signed_in(struct web_req *req, struct web_resp *resp,
                              const struct db_signin_flow *f, const struct oidc_identity *id)
{
    struct as_err err = {0};
    const char *who = id->upn[0] ? id->upn : id->oid;
    enum api_role role = role_of(req, id);
    if (role == API_ROLE_NONE) {
        char msg[600];
        snprintf(msg, sizeof msg,
                 "You signed in as %s, who has no role in Assent. An administrator can assign "
                 "you the app role Assent.Viewer, Assent.Operator or Assent.Admin (or name you in "
                 "sign_in_roles).", who);
        LOG_INFO("signin", "%s (%s) signed in but has no Assent role", who, id->oid);
        web_resp_page(resp, 403, "No role in Assent", msg);
        return;
    }
    char session[64];
    struct db_console_session s;
    memset(&s, 0, sizeof s);
    if (oidc_random(SECRET_BYTES, session, sizeof session) != 0 ||
        encode_sha256_hex(session, strlen(session), s.session_hash) != 0) {
        web_resp_page(resp, 503, "Try again", "The server could not make a session.");
        return;
    }
    /* The console's name is the UPN when it fits its column, else the object id. */
    snprintf(s.name, sizeof s.name, "%s", strlen(id->upn) < sizeof s.name && id->upn[0] ? id->upn
                                                                                       : id->oid);
    snprintf(s.role, sizeof s.role, "%s", api_role_name(role));
    snprintf(s.upn, sizeof s.upn, "%s", id->upn);
    snprintf(s.oid, sizeof s.oid, "%s", id->oid);
    snprintf(s.tid, sizeof s.tid, "%s", id->tid);
    s.created_at = req->now_ms;
    s.expires_at = req->now_ms + config_int(req->app->cfg, "console_session_hours") * 3600 * 1000;
    snprintf(s.client_addr, sizeof s.client_addr, "%s", req->client_addr);
    const char *agent = web_req_header(req, "User-Agent");
    snprintf(s.user_agent, sizeof s.user_agent, "%s", agent ? agent : "");
    if (db_console_session_add(req->app->db, &s, "entra", &err) != AS_OK) {
        OPENSSL_cleanse(session, sizeof session);
        LOG_ERROR("signin", "storing a console session failed: %s", err.msg);
        web_resp_page(resp, 503, "Try again", "The session could not be stored. Try again.");
        return;
    }
    LOG_INFO("signin", "%s (%s) signed in to the console as %s from %s", s.name, id->oid, s.role,
             req->client_addr);
    snprintf(resp->log_note, sizeof resp->log_note, "by=%s", s.name);
    set_cookie(req, resp, WEB_AUTH_COOKIE, session, "/console",
               (s.expires_at - req->now_ms + 999) / 1000, "Strict");
    OPENSSL_cleanse(session, sizeof session);
    char what[400];
    snprintf(what, sizeof what, "Signed in as %s (%s).", who, s.role);
    continue_to(resp, "Signed in", what, f->return_to);
}

static void approver_signed_in(struct web_req *req, struct web_resp *resp,
                               const struct db_signin_flow *f, const struct oidc_identity *id)
{
    struct as_err err = {0};
    json_t *view = NULL;
    const char *who = id->upn[0] ? id->upn : id->oid;
    char link_hash[TOKEN_HASH_LEN + 1];
    token_hash(f->return_to + 3, link_hash);
    enum as_code rc = db_approvals_by_token(req->app->db, link_hash, &view, &err);
    if (rc) {
        web_resp_page(resp, rc == AS_ENOTFOUND ? 404 : 503,
                      rc == AS_ENOTFOUND ? "Unknown link" : "Try again",
                      rc == AS_ENOTFOUND ? "This approval link is not known."
                                         : "Please try again in a minute.");
        return;
    }
    json_t *me = json_array_get(json_object_get(view, "approvers"),
                                (size_t)json_integer_value(json_object_get(view, "me")));
    const char *approver = json_string_value(json_object_get(me, "email"));
    int64_t approval_id = json_integer_value(json_object_get(view, "id"));
    snprintf(resp->log_note, sizeof resp->log_note, "approval=%lld", (long long)approval_id);
    if (!oidc_identity_is(approver, id->upn, id->oid)) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "You signed in as %s; this request is for %s. Nothing was recorded. Sign out of "
                 "Microsoft and sign in as %s, or forward the email to them.",
                 who, approver ? approver : "someone else", approver ? approver : "them");
        json_t *ev = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:s}", "approval_id",
                               (json_int_t)approval_id, "run_id",
                               json_integer_value(json_object_get(view, "run_id")), "approver",
                               approver ? approver : "", "identity", id->upn, "oid", id->oid,
                               "tid", id->tid, "user_agent", web_req_header(req, "User-Agent"),
                               "actor", who);
        if (ev && json_object_set_new(ev, "client_addr", json_string(req->client_addr)) == 0 &&
            db_audit_append(req->app->db, "approval.sign_in_refused", ev, &err) != AS_OK)
            LOG_ERROR("signin", "recording a refused sign-in failed: %s", err.msg);
        json_decref(ev);
        LOG_INFO("signin", "approval %lld: %s (%s) signed in for %s's link: refused",
                 (long long)approval_id, who, id->oid, approver ? approver : "?");
        web_resp_page(resp, 403, "Not your request", msg);
        json_decref(view);
        return;
    }
    json_decref(view);
    char session[64];
    struct db_signin_session s;
    memset(&s, 0, sizeof s);
    if (oidc_random(SECRET_BYTES, session, sizeof session) != 0 ||
        encode_sha256_hex(session, strlen(session), s.session_hash) != 0) {
        web_resp_page(resp, 503, "Try again", "The server could not make a session.");
        return;
    }
    snprintf(s.upn, sizeof s.upn, "%s", id->upn);
    snprintf(s.oid, sizeof s.oid, "%s", id->oid);
    snprintf(s.tid, sizeof s.tid, "%s", id->tid);
    snprintf(s.name, sizeof s.name, "%s", id->name);
    s.created_at = req->now_ms;
    s.expires_at = req->now_ms + config_int(req->app->cfg, "console_session_hours") * 3600 * 1000;
    snprintf(s.client_addr, sizeof s.client_addr, "%s", req->client_addr);
    const char *agent = web_req_header(req, "User-Agent");
    snprintf(s.user_agent, sizeof s.user_agent, "%s", agent ? agent : "");
    if (db_signin_session_add(req->app->db, &s, &err) != AS_OK) {
        OPENSSL_cleanse(session, sizeof session);
        LOG_ERROR("signin", "storing a sign-in session failed: %s", err.msg);
        web_resp_page(resp, 503, "Try again", "The session could not be stored. Try again.");
        return;
    }
    LOG_INFO("signin", "approval %lld: %s (%s) signed in from %s", (long long)approval_id, who,
             id->oid, req->client_addr);
    set_cookie(req, resp, WEB_SIGNIN_COOKIE, session, "/a",
               (s.expires_at - req->now_ms + 999) / 1000, "Strict");
    OPENSSL_cleanse(session, sizeof session);
    char what[400];
    snprintf(what, sizeof what, "Signed in as %s.", who);
    continue_to(resp, "Signed in", what, f->return_to);
}

void web_auth_callback(struct web_req *req, struct web_resp *resp)
{
    struct as_err err = {0};
    struct db_signin_flow f;
    struct oidc_identity id;
    struct m365 *m = NULL;
    char *id_token = NULL;
    memset(&id, 0, sizeof id);
    memset(&f, 0, sizeof f);
    if (!web_signin_enabled(req)) {
        web_resp_page(resp, 404, "Not found", "Signing in with Microsoft is not configured.");
        return;
    }
    struct ratelimit *rl = web_server_ratelimit(req->server);
    int retry_after = 0;
    if (ratelimit_blocked(rl, req->client_addr, req->now_ms, &retry_after)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        web_resp_header(resp, "Retry-After", ra);
        web_resp_page(resp, 429, "Too many attempts", "Too many failed sign-ins. Wait a while.");
        return;
    }
    const char *state = web_req_query(req, "state");
    char state_hash[ENCODE_SHA256_HEX_SIZE], browser[96], browser_hash[ENCODE_SHA256_HEX_SIZE];
    enum as_code rc = AS_ENOTFOUND;
    if (state && *state && strlen(state) <= 128 &&
        encode_sha256_hex(state, strlen(state), state_hash) == 0)
        rc = db_signin_flow_take(req->app->db, state_hash, &f, &err);
    if (rc == AS_ENOTFOUND || (rc == AS_OK && req->now_ms >= f.expires_at)) {
        ratelimit_fail(rl, req->client_addr, req->now_ms);
        web_resp_page(resp, 400, "Sign-in not recognised",
                      "This sign-in was used already or has expired. Start again from the page "
                      "you were signing in to.");
        goto out;
    }
    if (rc) {
        LOG_ERROR("signin", "reading a sign-in failed: %s", err.msg);
        web_resp_page(resp, 503, "Try again", "Please try again in a minute.");
        goto out;
    }
    /* The flow must come back to the browser that started it. */
    if (!web_auth_cookie(req, WEB_SIGNIN_FLOW_COOKIE, browser, sizeof browser) ||
        encode_sha256_hex(browser, strlen(browser), browser_hash) != 0 ||
        CRYPTO_memcmp(browser_hash, f.browser_hash, 64) != 0) {
        ratelimit_fail(rl, req->client_addr, req->now_ms);
        web_resp_page(resp, 403, "Refused",
                      "This sign-in was started in another browser. Start again here.");
        goto out;
    }
    const char *error = web_req_query(req, "error");
    const char *code = web_req_query(req, "code");
    if (error || !code || !*code || strlen(code) > 8192) {
        const char *desc = web_req_query(req, "error_description");
        char msg[700];
        snprintf(msg, sizeof msg, "The sign-in was not completed%s%.500s", desc ? ": " : ".",
                 desc ? desc : "");
        LOG_INFO("signin", "sign-in not completed: %s", error ? error : "no code");
        web_resp_page(resp, 401, "Not signed in", msg);
        goto out;
    }
    struct oidc_meta meta;
    if ((rc = client(req, &m, &err)) || (rc = provider_meta(req, m, &meta, &err))) {
        LOG_ERROR("signin", "the identity platform cannot be reached: %s", err.msg);
        web_resp_page(resp, 503, "Sign-in unavailable",
                      "The sign-in could not be finished right now. Try again in a minute.");
        goto out;
    }
    char redirect[600];
    snprintf(redirect, sizeof redirect, "%s/auth/callback", web_server_public_url(req->server));
    rc = m365_oidc_redeem(m, meta.token_endpoint, code, f.code_verifier, redirect, &id_token,
                          &err);
    if (!rc) {
        struct oidc_expect x = {
            .issuer = meta.issuer,
            .client_id = m365_client_id(m),
            .tenant = meta.tenant,
            .nonce = f.nonce,
            .now_s = req->now_ms / 1000,
        };
        struct key_fetch kf = {.m = m, .url = meta.jwks_uri};
        rc = oidc_keycache_verify(&provider.keys, id_token, &x, req->now_ms, fetch_keys, &kf,
                                  &id, &err);
    }
    if (rc) {
        ratelimit_fail(rl, req->client_addr, req->now_ms);
        LOG_WARN("signin", "a sign-in from %s was refused: %s", req->client_addr, err.msg);
        char msg[700];
        snprintf(msg, sizeof msg, "The sign-in could not be verified: %s", err.msg);
        web_resp_page(resp, rc == AS_ETRANSIENT || rc == AS_ETIMEOUT ? 503 : 401,
                      "Sign-in refused", msg);
        goto out;
    }
    if (strncmp(f.return_to, "/a/", 3) == 0)
        approver_signed_in(req, resp, &f, &id);
    else
        console_signed_in(req, resp, &f, &id);
out:
    if (m)
        m365_set_deadline(m, 0);
    if (id_token) {
        explicit_bzero(id_token, strlen(id_token));
        free(id_token);
    }
    oidc_identity_clear(&id);
    OPENSSL_cleanse(&f, sizeof f);
}

/* ---- the approver's session -------------------------------------------------------------- */

int web_signin_session(struct web_req *req, struct db_signin_session *out)
{
    struct as_err err = {0};
    char cookie[96], hash[ENCODE_SHA256_HEX_SIZE];
    if (!web_signin_enabled(req) ||
        !web_auth_cookie(req, WEB_SIGNIN_COOKIE, cookie, sizeof cookie) || !cookie[0])
        return 0;
    if (encode_sha256_hex(cookie, strlen(cookie), hash) != 0)
        return -1;
    OPENSSL_cleanse(cookie, sizeof cookie);
    enum as_code rc = db_signin_session_find(req->app->db, hash, out, &err);
    if (rc == AS_ENOTFOUND)
        return 0;
    if (rc) {
        LOG_ERROR("signin", "reading a sign-in session failed: %s", err.msg);
        return -1;
    }
    return req->now_ms < out->expires_at ? 1 : 0;
}
