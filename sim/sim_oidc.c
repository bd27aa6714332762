/*
 * sim_oidc.c - the identity platform's OpenID Connect side, for sign-in
 * tests: the discovery document, the key set, a sign-in form at the
 * authorization endpoint (the tenant's users by UPN and a password), the
 * authorization_code grant of the token endpoint (PKCE S256 checked, the
 * app's credential checked by sim_token.c) returning an RS256 ID token,
 * and the admin endpoints that rotate the signing key and set who has
 * which app roles.
 *
 * Who may sign in and with which roles comes from the state file's
 * "openid" object: {"password": "...", "users": {"upn": {"roles":
 * ["Assent.Admin"], "password": "..."}}, "redirect_uris": [...]}; every
 * enabled user of the tenant may sign in, with the user's password, else
 * openid.password, else SIM_OIDC_TEST_PASSWORD.  Group object ids come
 * from the tenant's groups (conditional_access.groups members).  Which
 * parts follow Microsoft's documentation and which are assumed:
 * docs/simulator.md.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "base/encode.h"
#include "base/html.h"

#define CODE_LIFETIME_MS (10 * 60 * 1000LL)
#define ID_TOKEN_LIFETIME_S 3600

/* ---- keys --------------------------------------------------------------------------------- */

/* A new signing key and its kid (base64url of the first 15 bytes of SHA-256(n)). */
static EVP_PKEY *new_key(char kid[32])
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIGNUM *n = NULL;
    unsigned char nb[512], md[32];
    if (!k || EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n) != 1) {
        EVP_PKEY_free(k);
        return NULL;
    }
    int nl = BN_bn2bin(n, nb);
    BN_free(n);
    unsigned int ml = 0;
    EVP_Digest(nb, (size_t)nl, md, &ml, EVP_sha256(), NULL);
    encode_b64url(md, 15, kid, 32);
    return k;
}

int sim_oidc_init(struct sim *s)
{
    pthread_mutex_init(&s->oidc_lock, NULL);
    s->oidc_key = new_key(s->oidc_kid);
    return s->oidc_key ? 0 : -1;
}

void sim_oidc_free(struct sim *s)
{
    EVP_PKEY_free(s->oidc_key);
    EVP_PKEY_free(s->oidc_prev);
    s->oidc_key = s->oidc_prev = NULL;
    pthread_mutex_destroy(&s->oidc_lock);
}

static void jwk_json(struct strbuf *b, EVP_PKEY *k, const char *kid)
{
    BIGNUM *n = NULL, *e = NULL;
    unsigned char nb[512], eb[16];
    char ns[720], es[32];
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
    encode_b64url(nb, (size_t)BN_bn2bin(n, nb), ns, sizeof ns);
    encode_b64url(eb, (size_t)BN_bn2bin(e, eb), es, sizeof es);
    BN_free(n);
    BN_free(e);
    strbuf_addf(b, "{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}",
                kid, ns, es);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void json_answer(struct sim_resp *o, int status)
{
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, "application/json; charset=utf-8");
}

static void issuer_of(struct sim *s, struct sim_req *r, char *out, size_t size)
{
    snprintf(out, size, "%s/%s/v2.0", r->base_url, s->st.tenant_id);
}

/* A form body or query as name -> value (decoded), one level. */
static json_t *form_fields(const char *body, size_t len)
{
    json_t *o = json_object();
    char *buf = malloc(len + 1);
    if (!o || !buf) {
        free(buf);
        return o;
    }
    memcpy(buf, body, len);
    buf[len] = '\0';
    char *save = NULL;
    for (char *kv = strtok_r(buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        url_decode(kv, 1);
        url_decode(eq + 1, 1);
        json_object_set_new(o, kv, json_string(eq + 1));
    }
    free(buf);
    return o;
}

static const char *field(const json_t *f, const char *name)
{
    return json_string_value(json_object_get(f, name));
}

static const char *query_or_field(struct sim_req *r, const json_t *f, const char *name)
{
    return f ? field(f, name) : sim_req_query(r, name);
}

static void html_answer(struct sim_resp *o, int status, struct html_buf *b)
{
    size_t len = 0;
    char *text = html_buf_take(b, &len);
    strbuf_free(&o->body);
    strbuf_add(&o->body, text ? text : "");
    free(text);
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, "text/html; charset=utf-8");
}

static void error_page(struct sim_resp *o, int status, int code, const char *msg)
{
    struct html_buf b = {0};
    html_raw(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in"
                 "</title></head><body><h1>Sorry, but we're having trouble signing you in.</h1>"
                 "<p id=\"error\">");
    html_rawf(&b, "AADSTS%d: ", code);
    html_text(&b, msg);
    html_raw(&b, "</p></body></html>\n");
    html_answer(o, status, &b);
}

/* ---- discovery and keys ------------------------------------------------------------------- */

static void discovery(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    char iss[400];
    pthread_rwlock_rdlock(&s->lock);
    issuer_of(s, r, iss, sizeof iss);
    const char *tid = s->st.tenant_id;
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_addf(b,
                "{\"token_endpoint\":\"%s/%s/oauth2/v2.0/token\","
                "\"token_endpoint_auth_methods_supported\":[\"client_secret_post\","
                "\"private_key_jwt\",\"client_secret_basic\"],"
                "\"jwks_uri\":\"%s/%s/discovery/v2.0/keys\","
                "\"response_modes_supported\":[\"query\",\"fragment\",\"form_post\"],"
                "\"subject_types_supported\":[\"pairwise\"],"
                "\"id_token_signing_alg_values_supported\":[\"RS256\"],"
                "\"response_types_supported\":[\"code\",\"id_token\",\"code id_token\","
                "\"id_token token\"],"
                "\"scopes_supported\":[\"openid\",\"profile\",\"email\",\"offline_access\"],"
                "\"issuer\":\"%s\",\"request_uri_parameter_supported\":false,"
                "\"userinfo_endpoint\":\"%s/oidc/userinfo\","
                "\"authorization_endpoint\":\"%s/%s/oauth2/v2.0/authorize\","
                "\"http_logout_supported\":true,\"frontchannel_logout_supported\":true,"
                "\"end_session_endpoint\":\"%s/%s/oauth2/v2.0/logout\","
                "\"claims_supported\":[\"sub\",\"iss\",\"aud\",\"exp\",\"iat\",\"nbf\",\"nonce\","
                "\"name\",\"oid\",\"tid\",\"preferred_username\",\"roles\",\"ver\"],"
                "\"tenant_region_scope\":\"EU\",\"cloud_instance_name\":\"microsoftonline.com\"}",
                r->base_url, tid, r->base_url, tid, iss, r->base_url, r->base_url, tid,
                r->base_url, tid);
    pthread_rwlock_unlock(&s->lock);
    json_answer(o, 200);
}

static void keys(struct sim *s, struct sim_resp *o)
{
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_add(b, "{\"keys\":[");
    pthread_mutex_lock(&s->oidc_lock);
    jwk_json(b, s->oidc_key, s->oidc_kid);
    if (s->oidc_prev) {
        strbuf_add(b, ",");
        jwk_json(b, s->oidc_prev, s->oidc_prev_kid);
    }
    pthread_mutex_unlock(&s->oidc_lock);
    strbuf_add(b, "]}");
    json_answer(o, 200);
}

/* ---- the authorization endpoint ----------------------------------------------------------- */

/* The params of an authorization request that the form carries along. */
static const char *const carried[] = {"client_id",      "redirect_uri", "state",
                                      "nonce",          "scope",        "response_type",
                                      "code_challenge", "code_challenge_method", NULL};

/* 0 when the request's params are acceptable; else an error page in o. Read lock held. */
static int check_request(struct sim *s, struct sim_req *r, const json_t *f, struct sim_resp *o)
{
    const char *client = query_or_field(r, f, "client_id");
    const char *redirect = query_or_field(r, f, "redirect_uri");
    const char *type = query_or_field(r, f, "response_type");
    const char *scope = query_or_field(r, f, "scope");
    const char *method = query_or_field(r, f, "code_challenge_method");
    const char *challenge = query_or_field(r, f, "code_challenge");
    int known = 0;
    for (size_t i = 0; client && i < s->st.n_apps; i++)
        known |= str_ieq(s->st.apps[i].client_id, client);
    if (!known) {
        error_page(o, 400, 700016, "Application not found in the directory.");
        return -1;
    }
    if (!redirect || (!str_starts(redirect, "http://") && !str_starts(redirect, "https://"))) {
        error_page(o, 400, 900144, "The request must contain the parameter 'redirect_uri'.");
        return -1;
    }
    json_t *uris = json_object_get(s->st.openid, "redirect_uris");
    if (json_is_array(uris)) {
        size_t i;
        json_t *u;
        int ok = 0;
        json_array_foreach(uris, i, u) ok |= json_is_string(u) && !strcmp(json_string_value(u), redirect);
        if (!ok) {
            error_page(o, 400, 50011, "The redirect URI specified in the request does not match "
                                      "the redirect URIs configured for the application.");
            return -1;
        }
    }
    if (!type || strcmp(type, "code") != 0) {
        error_page(o, 400, 700054, "response_type 'code' is the only one the simulator serves.");
        return -1;
    }
    if (!scope || !strstr(scope, "openid")) {
        error_page(o, 400, 900144, "The scope must include 'openid' to sign in.");
        return -1;
    }
    if (challenge && (!method || strcmp(method, "S256") != 0)) {
        error_page(o, 400, 501491, "The code_challenge_method must be S256.");
        return -1;
    }
    return 0;
}

static void sign_in_form(struct sim *s, struct sim_req *r, const json_t *f, const char *tenant,
                         const char *error, struct sim_resp *o)
{
    struct html_buf b = {0};
    html_raw(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<title>Sign in to your account</title></head><body>"
                 "<h1>Sign in</h1><p>Simulated tenant ");
    html_text(&b, s->st.initial_domain);
    html_raw(&b, "</p>");
    if (error) {
        html_raw(&b, "<p id=\"error\" role=\"alert\">");
        html_text(&b, error);
        html_raw(&b, "</p>");
    }
    html_raw(&b, "<form method=\"post\" action=\"/");
    html_text(&b, tenant);
    html_raw(&b, "/oauth2/v2.0/authorize\">");
    for (size_t i = 0; carried[i]; i++) {
        const char *v = query_or_field(r, f, carried[i]);
        if (!v)
            continue;
        html_rawf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", carried[i]);
        html_text(&b, v);
        html_raw(&b, "\">");
    }
    html_raw(&b, "<p><label for=\"login\">Email, phone, or Skype</label><br>"
                 "<input type=\"email\" id=\"login\" name=\"login\" list=\"upns\"></p>"
                 "<p><label for=\"passwd\">Password</label><br>"
                 "<input type=\"password\" id=\"passwd\" name=\"passwd\"></p>"
                 "<p><button type=\"submit\" id=\"signin\">Sign in</button></p></form>"
                 "<datalist id=\"upns\">");
    /* The users named in the provider's configuration, then the first others. */
    json_t *users = json_object_get(s->st.openid, "users");
    const char *upn;
    json_t *v;
    json_object_foreach(users, upn, v)
    {
        html_raw(&b, "<option value=\"");
        html_text(&b, upn);
        html_raw(&b, "\">");
    }
    for (size_t i = 0; i < s->st.n_users && i < 20; i++) {
        html_raw(&b, "<option value=\"");
        html_text(&b, s->st.users[i].upn);
        html_raw(&b, "\">");
    }
    html_raw(&b, "</datalist></body></html>\n");
    html_answer(o, 200, &b);
}

/* The password user upn signs in with (the state's, or the fixed test password). */
static const char *password_of(const struct sim_state *st, const char *upn)
{
    json_t *users = json_object_get(st->openid, "users");
    const char *key;
    json_t *v;
    json_object_foreach(users, key, v) if (str_ieq(key, upn) && json_is_string(json_object_get(v, "password")))
        return json_string_value(json_object_get(v, "password"));
    const char *all = json_string_value(json_object_get(st->openid, "password"));
    return all ? all : SIM_OIDC_TEST_PASSWORD;
}

static int secret_same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static void authorize_post(struct sim *s, struct sim_req *r, const char *tenant,
                           struct sim_resp *o)
{
    json_t *f = form_fields(r->body ? r->body : "", r->body_len);
    pthread_rwlock_rdlock(&s->lock);
    if (check_request(s, r, f, o) != 0)
        goto out;
    const char *login = field(f, "login"), *passwd = field(f, "passwd");
    int idx = login && *login ? sim_state_find_user(&s->st, login) : -1;
    const struct sim_user *u = idx >= 0 ? &s->st.users[idx] : NULL;
    if (!u || !str_ieq(u->upn, login) || !passwd || !secret_same(passwd, password_of(&s->st, u->upn))) {
        sign_in_form(s, r, f, tenant,
                     "AADSTS50126: Error validating credentials due to invalid username or "
                     "password.", o);
        goto out;
    }
    if (!u->account_enabled) {
        sign_in_form(s, r, f, tenant, "AADSTS50057: The user account is disabled.", o);
        goto out;
    }
    /* A code, remembered with what it was asked for. */
    char code[64];
    random_b64url(32, code, sizeof code);
    int64_t now = now_ms();
    pthread_mutex_lock(&s->oidc_lock);
    size_t slot = 0;
    for (size_t i = 0; i < SIM_MAX_CODES; i++) {
        if (s->codes[i].expires_ms < now) {
            slot = i;
            break;
        }
        if (s->codes[i].expires_ms < s->codes[slot].expires_ms)
            slot = i;
    }
    struct sim_code *c = &s->codes[slot];
    memset(c, 0, sizeof *c);
    str_copy(c->value, sizeof c->value, code);
    str_copy(c->client_id, sizeof c->client_id, field(f, "client_id"));
    str_copy(c->redirect_uri, sizeof c->redirect_uri, field(f, "redirect_uri"));
    str_copy(c->nonce, sizeof c->nonce, field(f, "nonce") ? field(f, "nonce") : "");
    str_copy(c->challenge, sizeof c->challenge,
             field(f, "code_challenge") ? field(f, "code_challenge") : "");
    str_copy(c->user_id, sizeof c->user_id, u->id);
    c->expires_ms = now + CODE_LIFETIME_MS;
    pthread_mutex_unlock(&s->oidc_lock);

    struct strbuf loc = {0};
    const char *redirect = field(f, "redirect_uri"), *state = field(f, "state");
    strbuf_add(&loc, redirect);
    strbuf_add(&loc, strchr(redirect, '?') ? "&code=" : "?code=");
    strbuf_add(&loc, code);
    if (state) {
        strbuf_add(&loc, "&state=");
        sbuf_url_encode(&loc, state);
    }
    sim_resp_header(o, "Location", "%s", loc.p ? loc.p : "");
    strbuf_free(&loc);
    sim_resp_text(o, 302, "text/plain", "Signed in.\n");
out:
    pthread_rwlock_unlock(&s->lock);
    json_decref(f);
}

int sim_oidc_route(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                   const char *what)
{
    pthread_rwlock_rdlock(&s->lock);
    int tenant_ok = sim_state_tenant_matches(&s->st, tenant);
    pthread_rwlock_unlock(&s->lock);
    if (!tenant_ok) {
        sim_resp_text(o, 400, "application/json",
                      "{\"error\":\"invalid_tenant\",\"error_description\":\"AADSTS90002: Tenant "
                      "not found.\"}");
        return 1;
    }
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (!strcmp(what, "discovery") && get) {
        discovery(s, r, o);
    } else if (!strcmp(what, "keys") && get) {
        keys(s, o);
    } else if (!strcmp(what, "authorize") && get) {
        pthread_rwlock_rdlock(&s->lock);
        if (check_request(s, r, NULL, o) == 0)
            sign_in_form(s, r, NULL, tenant, NULL, o);
        pthread_rwlock_unlock(&s->lock);
    } else if (!strcmp(what, "authorize") && post) {
        authorize_post(s, r, tenant, o);
    } else {
        sim_resp_text(o, 405, "text/plain", "method not allowed\n");
    }
    return 1;
}

/* ---- the token endpoint's authorization_code grant ---------------------------------------- */

static void b64url_json(struct strbuf *out, const char *json)
{
    size_t n = strlen(json);
    char *enc = malloc(n * 4 / 3 + 8);
    if (enc && encode_b64url(json, n, enc, n * 4 / 3 + 8))
        strbuf_add(out, enc);
    free(enc);
}

/* The ID token of user u (read lock held) for client_id with nonce; malloc'd, or NULL. */
static char *id_token(struct sim *s, struct sim_req *r, const struct sim_user *u,
                      const char *client_id, const char *nonce)
{
    char iss[400];
    issuer_of(s, r, iss, sizeof iss);
    int64_t now = now_ms() / 1000;
    struct strbuf claims = {0};
    strbuf_add(&claims, "{\"aud\":");
    sbuf_json_str(&claims, client_id);
    strbuf_add(&claims, ",\"iss\":");
    sbuf_json_str(&claims, iss);
    strbuf_addf(&claims, ",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld", (long long)now,
                (long long)now, (long long)now + ID_TOKEN_LIFETIME_S);
    strbuf_add(&claims, ",\"name\":");
    sbuf_json_str(&claims, u->display_name ? u->display_name : "");
    if (nonce && *nonce) {
        strbuf_add(&claims, ",\"nonce\":");
        sbuf_json_str(&claims, nonce);
    }
    strbuf_add(&claims, ",\"oid\":");
    sbuf_json_str(&claims, u->id);
    strbuf_add(&claims, ",\"preferred_username\":");
    sbuf_json_str(&claims, u->upn);
    /* sub is pairwise: per user and app */
    char sub_src[200], sub_hex[65];
    snprintf(sub_src, sizeof sub_src, "%s|%s", u->id, client_id);
    encode_sha256_hex(sub_src, strlen(sub_src), sub_hex);
    sub_hex[43] = '\0';
    strbuf_addf(&claims, ",\"sub\":\"%s\",\"tid\":", sub_hex);
    sbuf_json_str(&claims, s->st.tenant_id);
    strbuf_add(&claims, ",\"ver\":\"2.0\"");
    json_t *users = json_object_get(s->st.openid, "users");
    const char *key;
    json_t *v;
    json_object_foreach(users, key, v)
    {
        json_t *roles = json_object_get(v, "roles");
        if (str_ieq(key, u->upn) && json_array_size(roles)) {
            char *t = json_dumps(roles, JSON_COMPACT);
            strbuf_add(&claims, ",\"roles\":");
            strbuf_add(&claims, t ? t : "[]");
            free(t);
        }
    }
    /* Groups the user is a member of (conditional_access.groups). */
    size_t i, j;
    json_t *g, *m;
    int n_groups = 0;
    json_array_foreach(s->st.groups, i, g) json_array_foreach(json_object_get(g, "members"), j, m)
    {
        if (json_is_string(m) && str_ieq(json_string_value(m), u->id)) {
            strbuf_add(&claims, n_groups++ ? "," : ",\"groups\":[");
            sbuf_json_str(&claims, json_string_value(json_object_get(g, "id")));
        }
    }
    if (n_groups)
        strbuf_add(&claims, "]");
    strbuf_add(&claims, "}");

    struct strbuf jwt = {0};
    pthread_mutex_lock(&s->oidc_lock);
    char hdr[200];
    snprintf(hdr, sizeof hdr, "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"%s\"}", s->oidc_kid);
    b64url_json(&jwt, hdr);
    strbuf_add(&jwt, ".");
    b64url_json(&jwt, claims.p ? claims.p : "{}");
    unsigned char sig[512];
    size_t sl = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && jwt.p && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->oidc_key) == 1 &&
             EVP_DigestSign(md, sig, &sl, (unsigned char *)jwt.p, jwt.len) == 1;
    EVP_MD_CTX_free(md);
    pthread_mutex_unlock(&s->oidc_lock);
    strbuf_free(&claims);
    char sigb[720];
    if (!ok || !encode_b64url(sig, sl, sigb, sizeof sigb)) {
        strbuf_free(&jwt);
        return NULL;
    }
    strbuf_add(&jwt, ".");
    strbuf_add(&jwt, sigb);
    return strbuf_take(&jwt);
}

int sim_oidc_redeem(struct sim *s, struct sim_req *r, const char *client_id, const char *code,
                    const char *redirect_uri, const char *verifier, char **out, int *aadsts,
                    char *why, size_t why_size)
{
    *out = NULL;
    int64_t now = now_ms();
    char user_id[64], nonce[160];
    pthread_mutex_lock(&s->oidc_lock);
    struct sim_code *c = NULL;
    for (size_t i = 0; code && i < SIM_MAX_CODES; i++)
        if (s->codes[i].value[0] && secret_same(s->codes[i].value, code))
            c = &s->codes[i];
    int bad = 0;
    if (!c || c->expires_ms < now) {
        *aadsts = 70008;
        snprintf(why, why_size, "The provided authorization code or refresh token has expired "
                                "due to inactivity. Send a new interactive authorization request.");
        bad = 1;
    } else if (c->used) {
        *aadsts = 54005;
        snprintf(why, why_size, "OAuth2 Authorization code was already redeemed, please retry "
                                "with a new valid code or use an existing refresh token.");
        bad = 1;
    } else if (!str_ieq(c->client_id, client_id) || !redirect_uri ||
               strcmp(c->redirect_uri, redirect_uri) != 0) {
        *aadsts = 70002;
        snprintf(why, why_size, "The code was issued to another client or redirect URI.");
        bad = 1;
    } else if (c->challenge[0]) {
        char want[48] = "";
        unsigned char md[32];
        unsigned int ml = 0;
        if (verifier)
            EVP_Digest(verifier, strlen(verifier), md, &ml, EVP_sha256(), NULL);
        if (!verifier || ml != 32 || !encode_b64url(md, 32, want, sizeof want) ||
            strcmp(want, c->challenge) != 0) {
            *aadsts = 501481;
            snprintf(why, why_size, "The Code_Verifier does not match the code_challenge "
                                    "supplied in the authorization request.");
            bad = 1;
        }
    }
    if (c && !bad)
        c->used = 1;
    if (c) {
        str_copy(user_id, sizeof user_id, c->user_id);
        str_copy(nonce, sizeof nonce, c->nonce);
    }
    pthread_mutex_unlock(&s->oidc_lock);
    if (bad)
        return -1;
    pthread_rwlock_rdlock(&s->lock);
    int idx = sim_state_find_user(&s->st, user_id);
    if (idx >= 0)
        *out = id_token(s, r, &s->st.users[idx], client_id, nonce);
    pthread_rwlock_unlock(&s->lock);
    if (!*out) {
        *aadsts = 50034;
        snprintf(why, why_size, "The user account does not exist in the directory.");
        return -1;
    }
    return 0;
}

/* ---- admin --------------------------------------------------------------------------------- */

void sim_oidc_admin(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    if (!strcmp(r->path, "/_sim/openid/rotate_key") && !strcmp(r->method, "POST")) {
        char kid[32];
        EVP_PKEY *k = new_key(kid);
        if (!k) {
            sim_resp_text(o, 500, "application/json", "{\"error\":\"key generation failed\"}");
            return;
        }
        pthread_mutex_lock(&s->oidc_lock);
        EVP_PKEY_free(s->oidc_prev);
        s->oidc_prev = s->oidc_key;
        str_copy(s->oidc_prev_kid, sizeof s->oidc_prev_kid, s->oidc_kid);
        s->oidc_key = k;
        str_copy(s->oidc_kid, sizeof s->oidc_kid, kid);
        strbuf_free(&o->body);
        strbuf_addf(&o->body, "{\"kid\":\"%s\",\"previous\":\"%s\"}", s->oidc_kid,
                    s->oidc_prev_kid);
        pthread_mutex_unlock(&s->oidc_lock);
        json_answer(o, 200);
        return;
    }
    if (!strcmp(r->path, "/_sim/openid") && !strcmp(r->method, "GET")) {
        pthread_rwlock_rdlock(&s->lock);
        char *t = json_dumps(s->st.openid, JSON_COMPACT);
        pthread_rwlock_unlock(&s->lock);
        sim_resp_text(o, 200, "application/json", t ? t : "{}");
        free(t);
        return;
    }
    if (!strcmp(r->path, "/_sim/openid") && !strcmp(r->method, "PUT")) {
        json_error_t jerr;
        json_t *v = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
        if (!json_is_object(v) ||
            (json_object_get(v, "users") && !json_is_object(json_object_get(v, "users")))) {
            json_decref(v);
            sim_resp_text(o, 400, "application/json",
                          "{\"error\":\"openid must be {\\\"password\\\", \\\"users\\\": {upn: "
                          "{\\\"roles\\\": [...]}}}\"}");
            return;
        }
        pthread_rwlock_wrlock(&s->lock);
        json_decref(s->st.openid);
        s->st.openid = v;
        uint64_t gen = ++s->gen;
        pthread_rwlock_unlock(&s->lock);
        sim_persist(s, gen);
        sim_resp_text(o, 204, "text/plain", "");
        return;
    }
    sim_resp_text(o, 404, "application/json", "{\"error\":\"no such admin endpoint\"}");
}
