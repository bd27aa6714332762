/*
 * sim_token.c - the identity platform's token endpoint (OAuth2 client
 * credentials with a client secret or a signed JWT client assertion), the
 * bearer-token check the Graph and Exchange endpoints use, and the
 * preauthenticated report download ids.
 *
 * Tokens are opaque random strings (real ones are JWTs; a client must not
 * look inside either).  Error bodies follow the identity platform's shape
 * (error, error_description with "AADSTSnnnn: ...", error_codes, trace_id,
 * correlation_id, timestamp).  Which AADSTS code answers which assertion
 * problem is partly assumed: see docs/simulator.md.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define CLOCK_SKEW_S 300

/* ---- identity platform error body ------------------------------------------- */

static void aad_error(struct sim_resp *o, struct sim_req *r, int status, const char *error,
                      int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void aad_error(struct sim_resp *o, struct sim_req *r, int status, const char *error,
                      int code, const char *fmt, ...)
{
    char msg[700], desc[1000], stamp[40], corr[37];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int64_t now = now_ms();
    char iso[40];
    fmt_iso_s(now, iso, sizeof iso);
    /* "2016-01-09 02:02:12Z" as in the reference */
    str_copy(stamp, sizeof stamp, iso);
    stamp[10] = ' ';
    guid_random(corr);
    snprintf(desc, sizeof desc,
             "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, msg,
             r->request_id, corr, stamp);
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_add(b, "{\"error\":");
    sbuf_json_str(b, error);
    strbuf_add(b, ",\"error_description\":");
    sbuf_json_str(b, desc);
    strbuf_addf(b, ",\"error_codes\":[%d],\"timestamp\":", code);
    sbuf_json_str(b, stamp);
    strbuf_addf(b, ",\"trace_id\":\"%s\",\"correlation_id\":\"%s\","
                   "\"error_uri\":\"https://login.microsoftonline.com/error?code=%d\"}",
                r->request_id, corr, code);
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, "application/json; charset=utf-8");
    sim_resp_header(o, "Cache-Control", "no-store, no-cache");
    sim_resp_header(o, "x-ms-request-id", "%s", r->request_id);
}

/* ---- form parsing ------------------------------------------------------------- */

struct form {
    char *buf;
    char *grant_type, *client_id, *client_secret, *scope, *assertion_type, *assertion;
    char *code, *redirect_uri, *code_verifier; /* authorization_code (sim_oidc.c) */
    int dup; /* a field appeared twice */
};

static void form_free(struct form *f)
{
    free(f->buf);
}

static void form_parse(struct form *f, const char *body, size_t len)
{
    memset(f, 0, sizeof *f);
    f->buf = malloc(len + 1);
    if (!f->buf)
        return;
    memcpy(f->buf, body, len);
    f->buf[len] = '\0';
    char *save = NULL;
    for (char *kv = strtok_r(f->buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        url_decode(kv, 1);
        url_decode(v, 1);
        char **slot = NULL;
        if (!strcmp(kv, "grant_type"))
            slot = &f->grant_type;
        else if (!strcmp(kv, "client_id"))
            slot = &f->client_id;
        else if (!strcmp(kv, "client_secret"))
            slot = &f->client_secret;
        else if (!strcmp(kv, "scope"))
            slot = &f->scope;
        else if (!strcmp(kv, "client_assertion_type"))
            slot = &f->assertion_type;
        else if (!strcmp(kv, "client_assertion"))
            slot = &f->assertion;
        else if (!strcmp(kv, "code"))
            slot = &f->code;
        else if (!strcmp(kv, "redirect_uri"))
            slot = &f->redirect_uri;
        else if (!strcmp(kv, "code_verifier"))
            slot = &f->code_verifier;
        if (slot) {
            if (*slot)
                f->dup = 1;
            *slot = v;
        }
    }
}

/* Constant-time string equality (secrets). */
static int secret_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}

/* Decode "Authorization: Basic base64(id:secret)" into malloc'd id and secret. */
static int basic_auth(const char *h, char **id, char **secret)
{
    *id = *secret = NULL;
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    size_t n;
    unsigned char *raw = b64_decode(h + 6, strlen(h + 6), 1, &n);
    if (!raw)
        return -1;
    char *txt = malloc(n + 1);
    if (!txt) {
        free(raw);
        return -1;
    }
    memcpy(txt, raw, n);
    txt[n] = '\0';
    free(raw);
    char *colon = strchr(txt, ':');
    if (!colon) {
        free(txt);
        return -1;
    }
    *colon = '\0';
    url_decode(txt, 1);
    url_decode(colon + 1, 1);
    *id = strdup(txt);
    *secret = strdup(colon + 1);
    free(txt);
    return *id && *secret ? 0 : -1;
}

/* ---- JWT client assertion ---------------------------------------------------- */

struct jwt {
    json_t *header, *claims;
    unsigned char *sig;
    size_t sig_len;
    const char *signed_part; /* header.payload, borrowed from the assertion */
    size_t signed_len;
};

static void jwt_free(struct jwt *j)
{
    json_decref(j->header);
    json_decref(j->claims);
    free(j->sig);
}

static json_t *b64_json(const char *p, size_t len)
{
    size_t n;
    unsigned char *raw = b64_decode(p, len, 0, &n);
    if (!raw)
        return NULL;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int jwt_parse(const char *tok, struct jwt *j)
{
    memset(j, 0, sizeof *j);
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.'))
        return -1;
    j->header = b64_json(tok, (size_t)(d1 - tok));
    j->claims = b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
    j->sig = b64_decode(d2 + 1, strlen(d2 + 1), 0, &j->sig_len);
    j->signed_part = tok;
    j->signed_len = (size_t)(d2 - tok);
    if (!j->header || !j->claims || !j->sig || j->sig_len == 0)
        return -1;
    return 0;
}

static int verify_sig(EVP_PKEY *key, int pss, const struct jwt *j)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;
    if (!ctx)
        return 0;
    if (EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, key) != 1)
        goto out;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1))
        goto out;
    ok = EVP_DigestVerify(ctx, j->sig, j->sig_len, (const unsigned char *)j->signed_part,
                          j->signed_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* 1 when thumbprint header value `t` (base64url) equals raw digest d. */
static int thumb_eq(const char *t, const unsigned char *d, size_t dlen)
{
    size_t n;
    unsigned char *raw = b64_decode(t, strlen(t), 0, &n);
    int eq = raw && n == dlen && memcmp(raw, d, dlen) == 0;
    free(raw);
    return eq;
}

/* The audience must be this token endpoint, reached here or at the real host. */
static int aud_ok(struct sim *s, struct sim_req *r, const char *aud)
{
    static const char *const suffixes[] = {"/oauth2/v2.0/token", "/oauth2/token"};
    const char *rest = NULL;
    if (str_starts(aud, r->base_url))
        rest = aud + strlen(r->base_url);
    else if (str_starts(aud, "https://login.microsoftonline.com"))
        rest = aud + strlen("https://login.microsoftonline.com");
    if (!rest || rest[0] != '/')
        return 0;
    rest++;
    for (size_t i = 0; i < 2; i++) {
        size_t rl = strlen(rest), sl = strlen(suffixes[i]);
        if (rl > sl && strcmp(rest + rl - sl, suffixes[i]) == 0) {
            char tenant[256];
            if (rl - sl >= sizeof tenant)
                return 0;
            memcpy(tenant, rest, rl - sl);
            tenant[rl - sl] = '\0';
            return sim_state_tenant_matches(&s->st, tenant);
        }
    }
    return 0;
}

/*
 * Check a client assertion for app (state read-locked by the caller).
 * Returns 0, or -1 with the answer already in o.
 */
static int check_assertion(struct sim *s, struct sim_req *r, struct sim_resp *o,
                           const struct sim_app *app, const char *assertion)
{
    struct jwt j;
    int rc = -1;
    if (jwt_parse(assertion, &j) != 0) {
        aad_error(o, r, 400, "invalid_request", 50027,
                  "JWT token is invalid or malformed.");
        goto out;
    }
    const char *alg = json_string_value(json_object_get(j.header, "alg"));
    int pss;
    if (alg && !strcmp(alg, "PS256"))
        pss = 1;
    else if (alg && !strcmp(alg, "RS256"))
        pss = 0;
    else {
        aad_error(o, r, 401, "invalid_client", 5002738,
                  "The JWT's signing algorithm '%s' is not supported; use PS256 or RS256.",
                  alg ? alg : "(none)");
        goto out;
    }
    const char *iss = json_string_value(json_object_get(j.claims, "iss"));
    const char *sub = json_string_value(json_object_get(j.claims, "sub"));
    const char *aud = json_string_value(json_object_get(j.claims, "aud"));
    json_t *exp = json_object_get(j.claims, "exp");
    json_t *nbf = json_object_get(j.claims, "nbf");
    const char *jti = json_string_value(json_object_get(j.claims, "jti"));
    if (!iss || !sub || strcmp(iss, app->client_id) || strcmp(sub, app->client_id)) {
        aad_error(o, r, 401, "invalid_client", 700021,
                  "Client assertion application identifier doesn't match 'client_id' parameter.");
        goto out;
    }
    if (!aud || !aud_ok(s, r, aud)) {
        aad_error(o, r, 401, "invalid_client", 700212,
                  "The audience claim '%s' of the client assertion is not this token endpoint.",
                  aud ? aud : "(none)");
        goto out;
    }
    if (!jti) {
        aad_error(o, r, 401, "invalid_client", 50027,
                  "JWT token is invalid or malformed: the jti claim is missing.");
        goto out;
    }
    int64_t now_s = now_ms() / 1000;
    if (!json_is_integer(exp) || json_integer_value(exp) + CLOCK_SKEW_S < now_s ||
        (nbf && (!json_is_integer(nbf) || json_integer_value(nbf) > now_s + CLOCK_SKEW_S))) {
        aad_error(o, r, 401, "invalid_client", 700024,
                  "Client assertion is not within its valid time range.");
        goto out;
    }
    if (app->n_keys == 0) {
        /* No certificate registered in the state: well-formedness is all we can check. */
        rc = 0;
        goto out;
    }
    const char *x5t = json_string_value(json_object_get(j.header, "x5t"));
    const char *x5t256 = json_string_value(json_object_get(j.header, "x5t#S256"));
    int key_seen = 0;
    for (size_t k = 0; k < app->n_keys; k++) {
        const struct sim_key *key = &app->keys[k];
        if (key->has_cert && x5t256 && !thumb_eq(x5t256, key->sha256, 32))
            continue;
        if (key->has_cert && !x5t256 && x5t && !thumb_eq(x5t, key->sha1, 20))
            continue;
        key_seen = 1;
        if (verify_sig(key->pkey, pss, &j)) {
            rc = 0;
            goto out;
        }
    }
    if (!key_seen)
        aad_error(o, r, 401, "invalid_client", 700027,
                  "Client assertion failed signature validation. (Reason - The key was not "
                  "found.)");
    else
        aad_error(o, r, 401, "invalid_client", 700027,
                  "Client assertion failed signature validation.");
out:
    jwt_free(&j);
    return rc;
}

/* ---- token store -------------------------------------------------------------- */

static int token_lifetime(struct sim *s)
{
    return s->token_lifetime_override > 0 ? s->token_lifetime_override
                                          : s->st.token_lifetime_s;
}

static void token_issue(struct sim *s, const char *client_id, enum sim_resource res, int life_s,
                        char out[64])
{
    char rnd[64];
    random_b64url(32, rnd, sizeof rnd);
    snprintf(out, 64, "sim.%s", rnd);
    int64_t now = now_ms();
    pthread_mutex_lock(&s->tok_lock);
    size_t slot = 0;
    for (size_t i = 0; i < SIM_MAX_TOKENS; i++) {
        if (s->tokens[i].expires_ms < now) {
            slot = i;
            break;
        }
        if (s->tokens[i].expires_ms < s->tokens[slot].expires_ms)
            slot = i;
    }
    struct sim_token *t = &s->tokens[slot];
    str_copy(t->value, sizeof t->value, out);
    str_copy(t->client_id, sizeof t->client_id, client_id);
    t->res = res;
    t->expires_ms = now + (int64_t)life_s * 1000;
    pthread_mutex_unlock(&s->tok_lock);
}

static enum sim_resource scope_resource(const char *res)
{
    static const char *const graph[] = {"https://graph.microsoft.com", "https://graph.microsoft.com/",
                                        "00000003-0000-0000-c000-000000000000"};
    static const char *const exo[] = {"https://outlook.office365.com",
                                      "https://outlook.office365.com/",
                                      "https://outlook.office.com",
                                      "00000002-0000-0ff1-ce00-000000000000"};
    for (size_t i = 0; i < sizeof graph / sizeof *graph; i++)
        if (str_ieq(res, graph[i]))
            return SIM_RES_GRAPH;
    for (size_t i = 0; i < sizeof exo / sizeof *exo; i++)
        if (str_ieq(res, exo[i]))
            return SIM_RES_EXO;
    return SIM_RES_NONE;
}

void sim_token_endpoint(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant)
{
    struct form f;
    char *basic_id = NULL, *basic_secret = NULL;
    int locked = 0;
    form_parse(&f, r->body ? r->body : "", r->body_len);
    if (!f.buf) {
        aad_error(o, r, 500, "server_error", 90000, "Out of memory.");
        goto out;
    }
    const char *ct = sim_req_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        aad_error(o, r, 400, "invalid_request", 900144,
                  "The request body must contain the following parameter: 'grant_type'.");
        goto out;
    }
    if (f.dup) {
        aad_error(o, r, 400, "invalid_request", 90015,
                  "Requested query string is too long or a parameter is duplicated.");
        goto out;
    }
    pthread_rwlock_rdlock(&s->lock);
    locked = 1;
    if (!sim_state_tenant_matches(&s->st, tenant)) {
        aad_error(o, r, 400, "invalid_request", 90002,
                  "Tenant '%s' not found. Check to make sure you have the correct tenant ID and "
                  "are signing into the correct cloud.",
                  tenant);
        goto out;
    }
    if (!f.grant_type) {
        aad_error(o, r, 400, "invalid_request", 900144,
                  "The request body must contain the following parameter: 'grant_type'.");
        goto out;
    }
    int auth_code = strcmp(f.grant_type, "authorization_code") == 0;
    if (!auth_code && strcmp(f.grant_type, "client_credentials") != 0) {
        aad_error(o, r, 400, "unsupported_grant_type", 70003,
                  "The app requested an unsupported grant type '%s'.", f.grant_type);
        goto out;
    }
    (void)basic_auth(sim_req_header(r, "Authorization"), &basic_id, &basic_secret);
    const char *client_id = f.client_id ? f.client_id : basic_id;
    if (!client_id) {
        aad_error(o, r, 400, "invalid_request", 900144,
                  "The request body must contain the following parameter: 'client_id'.");
        goto out;
    }
    const struct sim_app *app = NULL;
    for (size_t i = 0; i < s->st.n_apps; i++)
        if (str_ieq(s->st.apps[i].client_id, client_id))
            app = &s->st.apps[i];
    if (!app) {
        aad_error(o, r, 400, "unauthorized_client", 700016,
                  "Application with identifier '%s' was not found in the directory '%s'. This "
                  "can happen if the application has not been installed by the administrator of "
                  "the tenant or consented to by any user in the tenant.",
                  client_id, s->st.initial_domain);
        goto out;
    }
    if (!f.scope && !auth_code) {
        aad_error(o, r, 400, "invalid_request", 900144,
                  "The request body must contain the following parameter: 'scope'.");
        goto out;
    }
    if (auth_code) {
        /* Sign-in (sim_oidc.c): the client's credential first, as for client credentials. */
        if (f.client_secret && f.assertion) {
            aad_error(o, r, 400, "invalid_request", 90014,
                      "Send either 'client_secret' or 'client_assertion', not both.");
            goto out;
        }
        if (f.assertion ? check_assertion(s, r, o, app, f.assertion) != 0 : !f.client_secret) {
            if (!f.assertion)
                aad_error(o, r, 400, "invalid_client", 7000218,
                          "The request body must contain the following parameter: "
                          "'client_assertion' or 'client_secret'.");
            goto out;
        }
        if (!f.assertion) {
            int ok = 0;
            for (size_t i = 0; i < app->n_secrets; i++)
                ok |= secret_eq(f.client_secret, app->secrets[i]);
            if (!ok) {
                aad_error(o, r, 401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the "
                          "request is the client secret value, not the client secret ID, for a "
                          "secret added to app '%s'.",
                          app->client_id);
                goto out;
            }
        }
        char app_id[64];
        str_copy(app_id, sizeof app_id, app->client_id);
        pthread_rwlock_unlock(&s->lock);
        locked = 0;
        char *idt = NULL, why[300];
        int code = 0;
        if (sim_oidc_redeem(s, r, app_id, f.code, f.redirect_uri, f.code_verifier, &idt, &code,
                            why, sizeof why) != 0) {
            aad_error(o, r, 400, "invalid_grant", code, "%s", why);
            goto out;
        }
        char opaque[64];
        random_b64url(32, opaque, sizeof opaque);
        struct strbuf *b = &o->body;
        strbuf_free(b);
        strbuf_addf(b,
                    "{\"token_type\":\"Bearer\",\"scope\":\"openid profile\",\"expires_in\":3599,"
                    "\"ext_expires_in\":3599,\"access_token\":\"sim.%s\",\"id_token\":\"%s\"}",
                    opaque, idt);
        free(idt);
        o->status = 200;
        str_copy(o->content_type, sizeof o->content_type, "application/json; charset=utf-8");
        sim_resp_header(o, "Cache-Control", "no-store, no-cache");
        sim_resp_header(o, "x-ms-request-id", "%s", r->request_id);
        goto out;
    }
    size_t sl = strlen(f.scope);
    if (strchr(f.scope, ' ')) {
        aad_error(o, r, 400, "invalid_scope", 70011,
                  "The provided request must include a 'scope' input parameter. The provided "
                  "value for the input parameter 'scope' is not valid. The scope %s is not valid. "
                  "A token request names one resource only.",
                  f.scope);
        goto out;
    }
    if (sl < 9 || strcmp(f.scope + sl - 9, "/.default") != 0) {
        aad_error(o, r, 400, "invalid_scope", 1002012,
                  "The provided value for scope %s is not valid. Client credential flows must "
                  "have a scope value with /.default suffixed to the resource identifier "
                  "(application ID URI).",
                  f.scope);
        goto out;
    }
    char res_name[512];
    str_copy(res_name, sizeof res_name, f.scope);
    if (sl - 9 < sizeof res_name)
        res_name[sl - 9] = '\0';
    enum sim_resource res = scope_resource(res_name);
    if (res == SIM_RES_NONE) {
        aad_error(o, r, 400, "invalid_resource", 500011,
                  "The resource principal named %s was not found in the tenant named %s. This "
                  "can happen if the application has not been installed by the administrator of "
                  "the tenant or consented to by any user in the tenant.",
                  res_name, s->st.initial_domain);
        goto out;
    }
    const char *secret = f.client_secret ? f.client_secret : basic_secret;
    if (secret && f.assertion) {
        aad_error(o, r, 400, "invalid_request", 90014,
                  "Send either 'client_secret' or 'client_assertion', not both.");
        goto out;
    }
    if (f.assertion) {
        if (!f.assertion_type || strcmp(f.assertion_type, JWT_BEARER) != 0) {
            aad_error(o, r, 400, "invalid_request", 900144,
                      "The request body must contain the following parameter: "
                      "'client_assertion_type'.");
            goto out;
        }
        if (check_assertion(s, r, o, app, f.assertion) != 0)
            goto out;
    } else if (secret) {
        int ok = 0;
        for (size_t i = 0; i < app->n_secrets; i++)
            ok |= secret_eq(secret, app->secrets[i]);
        if (!ok) {
            aad_error(o, r, 401, "invalid_client", 7000215,
                      "Invalid client secret provided. Ensure the secret being sent in the "
                      "request is the client secret value, not the client secret ID, for a "
                      "secret added to app '%s'.",
                      app->client_id);
            goto out;
        }
    } else {
        aad_error(o, r, 400, "invalid_client", 7000218,
                  "The request body must contain the following parameter: 'client_assertion' "
                  "or 'client_secret'.");
        goto out;
    }
    int life = token_lifetime(s);
    char app_id[64];
    str_copy(app_id, sizeof app_id, app->client_id);
    pthread_rwlock_unlock(&s->lock);
    locked = 0;

    char tok[64];
    token_issue(s, app_id, res, life, tok);
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_addf(b,
                "{\"token_type\":\"Bearer\",\"expires_in\":%d,\"ext_expires_in\":%d,"
                "\"access_token\":\"%s\"}",
                life, life, tok);
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, "application/json; charset=utf-8");
    sim_resp_header(o, "Cache-Control", "no-store, no-cache");
    sim_resp_header(o, "Pragma", "no-cache");
    sim_resp_header(o, "x-ms-request-id", "%s", r->request_id);
out:
    if (locked)
        pthread_rwlock_unlock(&s->lock);
    free(basic_id);
    free(basic_secret);
    form_free(&f);
}

/* ---- bearer check ------------------------------------------------------------- */

void sim_token_unauthorized(struct sim_resp *o, struct sim_req *r, enum sim_resource res,
                            const char *message)
{
    if (res == SIM_RES_EXO) {
        /*
         * Exchange's admin API answers 401 with a WWW-Authenticate header and no
         * JSON body (assumed: the simulator models the header, not exact text).
         */
        o->status = 401;
        strbuf_free(&o->body);
        o->content_type[0] = '\0';
        sim_resp_header(o, "WWW-Authenticate",
                        "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", "
                        "token_types=\"app_asserted_user_v1 service_asserted_app_v1\", "
                        "error=\"invalid_token\", error_description=\"%s\"",
                        message);
        return;
    }
    sim_resp_graph_error(o, r, 401, "InvalidAuthenticationToken", message);
    sim_resp_header(o, "WWW-Authenticate",
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/"
                    "common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"");
}

int sim_token_check(struct sim *s, struct sim_req *r, struct sim_resp *o, enum sim_resource res)
{
    const char *h = sim_req_header(r, "Authorization");
    if (!h || !*h) {
        sim_token_unauthorized(o, r, res, "Access token is empty.");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        sim_token_unauthorized(o, r, res, "Access token validation failure: not a Bearer token.");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    int64_t now = now_ms();
    int found = 0, expired = 0, wrong = 0;
    pthread_mutex_lock(&s->tok_lock);
    for (size_t i = 0; i < SIM_MAX_TOKENS; i++) {
        struct sim_token *t = &s->tokens[i];
        if (t->value[0] && strcmp(t->value, tok) == 0) {
            found = 1;
            expired = t->expires_ms <= now;
            wrong = t->res != res;
            break;
        }
    }
    pthread_mutex_unlock(&s->tok_lock);
    if (!found) {
        sim_token_unauthorized(o, r, res, "Access token validation failure. Invalid token.");
        return -1;
    }
    if (expired) {
        sim_token_unauthorized(o, r, res, "Lifetime validation failed, the token is expired.");
        return -1;
    }
    if (wrong) {
        sim_token_unauthorized(o, r, res, "Access token validation failure. Invalid audience.");
        return -1;
    }
    return 0;
}

int sim_token_client(struct sim *s, struct sim_req *r, char *out, size_t size)
{
    const char *h = sim_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    int rc = -1;
    pthread_mutex_lock(&s->tok_lock);
    for (size_t i = 0; i < SIM_MAX_TOKENS; i++) {
        if (s->tokens[i].value[0] && strcmp(s->tokens[i].value, tok) == 0) {
            snprintf(out, size, "%s", s->tokens[i].client_id);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->tok_lock);
    return rc;
}

/* ---- report downloads ------------------------------------------------------- */

void sim_download_new(struct sim *s, int period_days, char out[48])
{
    char rnd[48];
    random_b64url(24, rnd, sizeof rnd);
    str_copy(out, 48, rnd);
    int64_t now = now_ms();
    pthread_mutex_lock(&s->tok_lock);
    size_t slot = 0;
    for (size_t i = 0; i < SIM_MAX_DOWNLOADS; i++)
        if (s->downloads[i].expires_ms < s->downloads[slot].expires_ms)
            slot = i;
    str_copy(s->downloads[slot].value, sizeof s->downloads[slot].value, out);
    s->downloads[slot].expires_ms = now + 5 * 60 * 1000; /* "valid for a few minutes" */
    s->downloads[slot].period_days = period_days;
    pthread_mutex_unlock(&s->tok_lock);
}

int sim_download_get(struct sim *s, const char *value)
{
    int period = -1;
    int64_t now = now_ms();
    pthread_mutex_lock(&s->tok_lock);
    for (size_t i = 0; i < SIM_MAX_DOWNLOADS; i++)
        if (s->downloads[i].value[0] && strcmp(s->downloads[i].value, value) == 0 &&
            s->downloads[i].expires_ms > now)
            period = s->downloads[i].period_days;
    pthread_mutex_unlock(&s->tok_lock);
    return period;
}
