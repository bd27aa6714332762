/*
 * test_sim.c - integration tests of the tenant simulator (assent-tenant-sim):
 * the real binary on a free port, every endpoint exercised over HTTP with
 * libcurl, shapes checked against the shared M365 reference, paging
 * completeness, $filter semantics, state-file changes, each fault kind, the
 * generator's determinism and mix, bad input, and a clean SIGTERM (exit 0,
 * which under ASan also means no leak).
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "base/encode.h"
#include "m365/m365_jwt.h"
#include "tests/integration/sim_harness.h"

static struct sim_harness H; /* the shared simulator: 300 users, seed 11 */
static char *GRAPH_TOK, *EXO_TOK;

/* ---------------------------------------------------------------- helpers */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/* GET/POST with a bearer token; returns the parsed body (or NULL) and fills *status. */
static json_t *call(const char *method, const char *url, const char *token, const char *body,
                    const char *ctype, long *status, struct tu_http_resp *keep)
{
    char *auth = token ? fmt("Authorization: Bearer %s", token) : NULL;
    char *ct = ctype ? fmt("Content-Type: %s", ctype) : NULL;
    char *hdrs[4] = {0};
    int n = 0;
    if (auth)
        hdrs[n++] = auth;
    if (ct)
        hdrs[n++] = ct;
    struct tu_http_resp r;
    int rc = tu_http(method, url, hdrs, body, &r);
    assert_int_equal(rc, 0);
    *status = r.status;
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    if (keep)
        *keep = r;
    else
        tu_http_free(&r);
    free(auth);
    free(ct);
    return j;
}

/* printf-like "%s" (first one) and "%%" substitution for templates kept in tables. */
static char *subst(const char *tmpl, const char *val)
{
    size_t cap = strlen(tmpl) + strlen(val) + 1, o = 0;
    char *out = malloc(cap);
    int used = 0;
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == '%') {
            out[o++] = '%';
            p++;
        } else if (p[0] == '%' && p[1] == 's' && !used) {
            memcpy(out + o, val, strlen(val));
            o += strlen(val);
            used = 1;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static json_t *graph_get(const char *path_and_query, long *status)
{
    char *url = fmt("%s%s", H.url, path_and_query);
    json_t *j = call("GET", url, GRAPH_TOK, NULL, NULL, status, NULL);
    free(url);
    return j;
}

/* POST an InvokeCommand body to url (absolute) with extra headers; keeps the response in *keep when given. */
static json_t *exo_post(const char *url, const char *body, const char *extra_hdr, long *status,
                        struct tu_http_resp *keep)
{
    char *auth = fmt("Authorization: Bearer %s", EXO_TOK);
    char *hdrs[] = {auth, "Content-Type: application/json", (char *)extra_hdr, NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", url, hdrs, body, &r), 0);
    *status = r.status;
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    if (keep)
        *keep = r;
    else
        tu_http_free(&r);
    free(auth);
    return j;
}

static json_t *exo(const char *cmdlet_body, long *status)
{
    char *url = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    json_t *j = exo_post(url, cmdlet_body, NULL, status, NULL);
    free(url);
    return j;
}

static const char *exo_detail(json_t *err)
{
    json_t *d = json_array_get(json_object_get(json_object_get(err, "error"), "details"), 0);
    return json_string_value(json_object_get(d, "message"));
}

static void set_faults(const char *json)
{
    char *url = fmt("%s/_sim/faults", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", url, NULL, json, &r), 0);
    if (r.status != 200)
        fprintf(stderr, "faults: %s\n", r.body);
    assert_int_equal(r.status, 200);
    tu_http_free(&r);
    free(url);
}

static void clear_faults(void)
{
    char *url = fmt("%s/_sim/faults", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("DELETE", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    tu_http_free(&r);
    free(url);
}

static json_int_t stat_of(const char *group, const char *key)
{
    char *url = fmt("%s/_sim/stats", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *g = group ? json_object_get(j, group) : j;
    json_int_t v = json_integer_value(json_object_get(g, key));
    json_decref(j);
    tu_http_free(&r);
    free(url);
    return v;
}

/* The user object in the state file whose userPrincipalName is upn (borrowed from st). */
static json_t *state_user(json_t *st, const char *upn)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u) {
        if (!strcasecmp(json_string_value(json_object_get(u, "userPrincipalName")), upn))
            return u;
    }
    return NULL;
}

/* First user in st with a mailbox whose bool property prop has value want (-1 null). */
static json_t *state_find_mailbox(json_t *st, const char *prop, int want)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u) {
        json_t *m = json_object_get(u, "mailbox");
        json_t *v = json_object_get(m, prop);
        if (!json_is_object(m))
            continue;
        if ((want < 0 && json_is_null(v)) || (want == 1 && json_is_true(v)) ||
            (want == 0 && json_is_false(v)))
            return u;
    }
    return NULL;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* nextLink → path+query on our simulator (asserting same origin). */
static char *follow(const char *next)
{
    assert_non_null(next);
    assert_true(strncmp(next, H.url, strlen(H.url)) == 0);
    return strdup(next);
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    if (sim_harness_start(&H, 300, 11, NULL) != 0)
        return -1;
    GRAPH_TOK = sim_harness_token(&H, "graph");
    EXO_TOK = sim_harness_token(&H, "exo");
    return GRAPH_TOK && EXO_TOK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int code = sim_harness_stop(&H);
    free(GRAPH_TOK);
    free(EXO_TOK);
    curl_global_cleanup();
    return code == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- generator */

static void test_generator_deterministic_and_mixed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("simgen");
    char *a = tu_path(dir, "a.json"), *b = tu_path(dir, "b.json"), *c = tu_path(dir, "c.json");
    const char *bin = sim_harness_bin();
    char *args_a[] = {(char *)bin, "generate", "--users", "2000", "--seed", "5", "--now",
                      "2024-06-01T00:00:00Z", "--out", a, NULL};
    char *args_b[] = {(char *)bin, "generate", "--users", "2000", "--seed", "5", "--now",
                      "2024-06-01T00:00:00Z", "--out", b, NULL};
    char *args_c[] = {(char *)bin, "generate", "--users", "2000", "--seed", "6", "--now",
                      "2024-06-01T00:00:00Z", "--out", c, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(args_a, NULL, 60000, &out, NULL), 0);
    json_t *summary = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(summary, "users")), 2000);
    json_decref(summary);
    free(out);
    assert_int_equal(tu_run(args_b, NULL, 60000, NULL, NULL), 0);
    assert_int_equal(tu_run(args_c, NULL, 60000, NULL, NULL), 0);
    char *ta = tu_read_file(a), *tb = tu_read_file(b), *tc = tu_read_file(c);
    assert_string_equal(ta, tb);
    assert_true(strcmp(ta, tc) != 0);

    json_t *st = json_loads(ta, 0, NULL);
    assert_non_null(st);
    assert_string_equal(jstr(st, "format"), "assent-tenant-sim/1");
    size_t i, n_mbx = 0, n_modern = 0, n_pop = 0, n_imap = 0, n_eas = 0, n_ews = 0,
              n_smtp_false = 0, n_smtp_null = 0, n_no_mbx = 0, n_pop_use = 0, n_imap_use = 0,
              n_smtp_use = 0, n_disabled = 0;
    json_t *u;
    json_t *ids = json_object();
    json_array_foreach(json_object_get(st, "users"), i, u) {
        const char *id = jstr(u, "id");
        assert_non_null(id);
        assert_int_equal(strlen(id), 36);
        assert_null(json_object_get(ids, id)); /* ids are unique */
        json_object_set_new(ids, id, json_true());
        assert_non_null(strchr(jstr(u, "userPrincipalName"), '@'));
        assert_non_null(jstr(u, "displayName"));
        n_disabled += json_is_false(json_object_get(u, "accountEnabled"));
        json_t *m = json_object_get(u, "mailbox");
        if (!json_is_object(m)) {
            n_no_mbx++;
            continue;
        }
        n_mbx++;
        int pop = json_is_true(json_object_get(m, "PopEnabled"));
        int imap = json_is_true(json_object_get(m, "ImapEnabled"));
        int eas = json_is_true(json_object_get(m, "ActiveSyncEnabled"));
        int ews = json_is_true(json_object_get(m, "EwsEnabled"));
        json_t *smtp = json_object_get(m, "SmtpClientAuthenticationDisabled");
        n_pop += pop;
        n_imap += imap;
        n_eas += eas;
        n_ews += ews;
        n_smtp_false += json_is_false(smtp);
        n_smtp_null += json_is_null(smtp);
        n_modern += !pop && !imap && !eas && !ews && !json_is_false(smtp);
        json_t *us = json_object_get(u, "usage");
        n_pop_use += json_object_get(us, "POP3 App") != NULL;
        n_imap_use += json_object_get(us, "IMAP4 App") != NULL;
        n_smtp_use += json_object_get(us, "SMTP App") != NULL;
    }
    json_decref(ids);
    /* "most modern-only, a realistic fraction with legacy protocols" */
    assert_true(n_modern * 2 > n_mbx);
    assert_true(n_modern < n_mbx * 95 / 100);
    assert_true(n_pop > 0 && n_imap > 0 && n_eas > 0 && n_ews > 0);
    assert_true(n_smtp_false > 0 && n_smtp_null > 0);
    assert_true(n_no_mbx > 0 && n_no_mbx < 2000 / 5);
    assert_true(n_disabled > 0);
    assert_true(n_pop_use > 0 && n_imap_use > 0 && n_smtp_use > 0);
    assert_true(json_is_true(json_object_get(json_object_get(st, "transport_config"),
                                             "SmtpClientAuthenticationDisabled")));

    /* sign-ins: inside the 30 days before --now, legacy values, varied casing */
    int64_t now = 1717200000; /* 2024-06-01T00:00:00Z */
    size_t n_legacy = 0, n_modern_si = 0, n_variant = 0;
    json_array_foreach(json_object_get(st, "sign_ins"), i, u) {
        const char *app = jstr(u, "clientAppUsed");
        const char *created = jstr(u, "createdDateTime");
        struct tm tm = {0};
        assert_non_null(strptime(created, "%Y-%m-%dT%H:%M:%S", &tm));
        int64_t t = (int64_t)timegm(&tm);
        assert_true(t < now && t >= now - 30 * 86400);
        if (!strcmp(app, "Browser") || !strcmp(app, "Mobile Apps and Desktop clients"))
            n_modern_si++;
        else
            n_legacy++;
        if (!strcmp(app, "AutoDiscover") || !strcmp(app, "MAPI Over HTTP") ||
            !strcmp(app, "Pop3") || !strcmp(app, "imap4") || !strcmp(app, "Exchange Activesync"))
            n_variant++;
    }
    assert_true(n_legacy > 0 && n_modern_si > 0 && n_variant > 0);
    json_decref(st);
    free(ta);
    free(tb);
    free(tc);
    tu_rmrf(dir);
    free(a);
    free(b);
    free(c);
    free(dir);
}

/* ---------------------------------------------------------------- tokens */

static json_t *token_req(const char *tenant, const char *body, const char *extra_hdr,
                         long *status)
{
    char *url = fmt("%s/%s/oauth2/v2.0/token", H.url, tenant);
    char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", (char *)extra_hdr, NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", url, hdrs, body, &r), 0);
    *status = r.status;
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    tu_http_free(&r);
    free(url);
    return j;
}

static int has_code(json_t *j, int code)
{
    json_t *codes = json_object_get(j, "error_codes");
    char prefix[32];
    snprintf(prefix, sizeof prefix, "AADSTS%d:", code);
    return json_integer_value(json_array_get(codes, 0)) == code &&
           strncmp(jstr(j, "error_description"), prefix, strlen(prefix)) == 0 &&
           jstr(j, "trace_id") && jstr(j, "correlation_id") && jstr(j, "timestamp");
}

static void test_token_secret(void **state)
{
    (void)state;
    long st;
    char *body = fmt("grant_type=client_credentials&client_id=%s&client_secret=%s&scope="
                     "https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default",
                     H.client_id, H.secret);
    json_t *j = token_req(H.tenant_id, body, NULL, &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_true(json_integer_value(json_object_get(j, "expires_in")) > 60);
    assert_non_null(json_object_get(j, "ext_expires_in"));
    assert_non_null(jstr(j, "access_token"));
    json_decref(j);
    /* the tenant may be named by its domain */
    j = token_req(H.initial_domain, body, NULL, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    free(body);

    /* HTTP Basic carries the secret too */
    char raw[300], b64[500];
    snprintf(raw, sizeof raw, "%s:%s", H.client_id, H.secret);
    encode_base64(raw, strlen(raw), b64, sizeof b64);
    char *basic = fmt("Authorization: Basic %s", b64);
    j = token_req(H.tenant_id,
                  "grant_type=client_credentials&scope=https%3A%2F%2Foutlook.office365.com%2F.default",
                  basic, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    free(basic);

    struct {
        const char *tenant;
        const char *body_fmt;
        long status;
        const char *error;
        int code;
    } cases[] = {
        {NULL, "grant_type=client_credentials&client_id=%s&client_secret=wrong&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default",
         401, "invalid_client", 7000215},
        {NULL, "grant_type=client_credentials&client_id=%s&client_secret=S&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2FUser.Read.All",
         400, "invalid_scope", 1002012},
        {NULL, "grant_type=client_credentials&client_id=%s&client_secret=S&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default+https%%3A%%2F%%2Foutlook.office365.com%%2F.default",
         400, "invalid_scope", 70011},
        {NULL, "grant_type=client_credentials&client_id=%s&client_secret=S&scope=https%%3A%%2F%%2Fexample.com%%2F.default",
         400, "invalid_resource", 500011},
        {NULL, "grant_type=client_credentials&client_id=%s&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default",
         400, "invalid_client", 7000218},
        {NULL, "grant_type=password&client_id=%s&client_secret=S&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default",
         400, "unsupported_grant_type", 70003},
        {"nosuch.onmicrosoft.com", "grant_type=client_credentials&client_id=%s&client_secret=S&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default",
         400, "invalid_request", 90002},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *b = subst(cases[i].body_fmt, H.client_id);
        j = token_req(cases[i].tenant ? cases[i].tenant : H.tenant_id, b, NULL, &st);
        assert_int_equal(st, cases[i].status);
        assert_string_equal(jstr(j, "error"), cases[i].error);
        assert_true(has_code(j, cases[i].code));
        json_decref(j);
        free(b);
    }
    j = token_req(H.tenant_id,
                  "grant_type=client_credentials&client_id=00000000-1111-2222-3333-444444444444&"
                  "client_secret=x&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
                  NULL, &st);
    assert_int_equal(st, 400);
    assert_true(has_code(j, 700016));
    json_decref(j);
}

/* ---- a certificate and signed assertions, made with libcrypto ---- */

struct test_cert {
    EVP_PKEY *key;
    X509 *x509;
    char *pem;
    char x5t256[64];
};

static void make_cert(struct test_cert *c)
{
    c->key = EVP_RSA_gen(2048);
    assert_non_null(c->key);
    c->x509 = X509_new();
    X509_set_version(c->x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c->x509), 1);
    X509_gmtime_adj(X509_getm_notBefore(c->x509), 0);
    X509_gmtime_adj(X509_getm_notAfter(c->x509), 3600);
    X509_set_pubkey(c->x509, c->key);
    X509_NAME *n = X509_get_subject_name(c->x509);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"assent-test", -1, -1, 0);
    X509_set_issuer_name(c->x509, n);
    assert_true(X509_sign(c->x509, c->key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, c->x509);
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    c->pem = strndup(data, (size_t)len);
    BIO_free(bio);
    unsigned char *der = NULL;
    int dl = i2d_X509(c->x509, &der);
    unsigned char d[32];
    SHA256(der, (size_t)dl, d);
    OPENSSL_free(der);
    encode_b64url(d, 32, c->x5t256, sizeof c->x5t256);
}

static void free_cert(struct test_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x509);
    free(c->pem);
}

/* A signed compact JWT; alg "PS256" or "RS256". */
static char *make_jwt(EVP_PKEY *key, const char *alg, const char *x5t256, const char *iss,
                      const char *aud, long exp_offset)
{
    long now = (long)time(NULL);
    char *hdr = x5t256 ? fmt("{\"alg\":\"%s\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", alg, x5t256)
                       : fmt("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    char *claims = fmt("{\"aud\":\"%s\",\"iss\":\"%s\",\"sub\":\"%s\",\"jti\":\"%ld-%d\","
                       "\"nbf\":%ld,\"iat\":%ld,\"exp\":%ld}",
                       aud, iss, iss, now, rand(), now, now, now + exp_offset);
    char h64[512], c64[1024];
    encode_b64url(hdr, strlen(hdr), h64, sizeof h64);
    encode_b64url(claims, strlen(claims), c64, sizeof c64);
    char *input = fmt("%s.%s", h64, c64);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
    if (!strcmp(alg, "PS256")) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    unsigned char sig[512];
    size_t sl = sizeof sig;
    assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(ctx);
    char s64[1024];
    encode_b64url(sig, sl, s64, sizeof s64);
    char *jwt = fmt("%s.%s", input, s64);
    free(hdr);
    free(claims);
    free(input);
    return jwt;
}

static void test_token_assertion(void **state)
{
    (void)state;
    struct test_cert cert, other;
    make_cert(&cert);
    make_cert(&other);
    /* a tenant whose app has the certificate registered */
    char *dir = tu_tmpdir("simcert");
    char *pem_path = tu_path(dir, "cert.pem"), *st_path = tu_path(dir, "t.json");
    assert_int_equal(tu_write_file(pem_path, cert.pem), 0);
    char *gen[] = {(char *)sim_harness_bin(), "generate", "--users", "5", "--seed", "3",
                   "--app-cert", pem_path, "--out", st_path, NULL};
    assert_int_equal(tu_run(gen, NULL, 60000, NULL, NULL), 0);
    char *text = tu_read_file(st_path);
    struct sim_harness h;
    assert_int_equal(sim_harness_start_state(&h, text, NULL), 0);
    free(text);

    char *aud = fmt("%s/%s/oauth2/v2.0/token", h.url, h.tenant_id);
    char *aud_real = fmt("https://login.microsoftonline.com/%s/oauth2/v2.0/token", h.initial_domain);
    struct {
        EVP_PKEY *key;
        const char *alg;
        const char *x5t;
        const char *iss;
        const char *aud;
        long exp;
        long status;
        int code;
    } cases[] = {
        {cert.key, "PS256", cert.x5t256, h.client_id, aud, 300, 200, 0},
        {cert.key, "RS256", cert.x5t256, h.client_id, aud, 300, 200, 0},
        {cert.key, "PS256", NULL, h.client_id, aud_real, 300, 200, 0},
        {other.key, "PS256", NULL, h.client_id, aud, 300, 401, 700027},     /* wrong key */
        {other.key, "PS256", other.x5t256, h.client_id, aud, 300, 401, 700027}, /* unknown cert */
        {cert.key, "PS256", cert.x5t256, h.client_id, aud, -3600, 401, 700024}, /* expired */
        {cert.key, "PS256", cert.x5t256, h.client_id, "https://evil.example/t", 300, 401, 700212},
        {cert.key, "PS256", cert.x5t256, "someone-else", aud, 300, 401, 700021},
        {cert.key, "HS256", cert.x5t256, h.client_id, aud, 300, 401, 5002738},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *jwt = make_jwt(cases[i].key, cases[i].alg, cases[i].x5t, cases[i].iss, cases[i].aud,
                             cases[i].exp);
        char *body = fmt("grant_type=client_credentials&client_id=%s&scope=https%%3A%%2F%%2F"
                         "graph.microsoft.com%%2F.default&client_assertion_type=urn%%3Aietf%%3A"
                         "params%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s",
                         h.client_id, jwt);
        char *url = fmt("%s/%s/oauth2/v2.0/token", h.url, h.tenant_id);
        char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
        struct tu_http_resp r;
        assert_int_equal(tu_http("POST", url, hdrs, body, &r), 0);
        if (r.status != cases[i].status)
            fprintf(stderr, "case %zu: %ld %s\n", i, r.status, r.body);
        assert_int_equal(r.status, cases[i].status);
        json_t *j = json_loads(r.body, 0, NULL);
        if (cases[i].code)
            assert_true(has_code(j, (int)cases[i].code));
        else
            assert_non_null(jstr(j, "access_token"));
        json_decref(j);
        tu_http_free(&r);
        free(url);
        free(body);
        free(jwt);
    }
    /* Assent's own client code (steps/m365_jwt.c) signs assertions the simulator accepts */
    char *key_path = tu_path(dir, "key.pem");
    BIO *kb = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(kb, cert.key, NULL, NULL, 0, NULL, NULL);
    char *kdata;
    long klen = BIO_get_mem_data(kb, &kdata);
    char *ktext = strndup(kdata, (size_t)klen);
    BIO_free(kb);
    assert_int_equal(tu_write_file(key_path, ktext), 0);
    chmod(key_path, 0600);
    free(ktext);
    struct m365_cert *mc = NULL;
    struct as_err aerr = {0};
    assert_int_equal(m365_cert_load(pem_path, key_path, &mc, &aerr), AS_OK);
    const enum m365_jwt_alg algs[] = {M365_JWT_PS256, M365_JWT_RS256};
    for (int k = 0; k < 2; k++) {
        char *jwt = NULL;
        assert_int_equal(m365_jwt_assertion(mc, algs[k], h.client_id, aud, (int64_t)time(NULL), 300,
                                            &jwt, &aerr), AS_OK);
        char *body = fmt("grant_type=client_credentials&client_id=%s&scope=https%%3A%%2F%%2F"
                         "outlook.office365.com%%2F.default&client_assertion_type=urn%%3Aietf%%3A"
                         "params%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s",
                         h.client_id, jwt);
        char *url = fmt("%s/%s/oauth2/v2.0/token", h.url, h.tenant_id);
        char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
        struct tu_http_resp r;
        assert_int_equal(tu_http("POST", url, hdrs, body, &r), 0);
        if (r.status != 200)
            fprintf(stderr, "m365_jwt alg %d: %s\n", k, r.body);
        assert_int_equal(r.status, 200);
        tu_http_free(&r);
        free(url);
        free(body);
        free(jwt);
    }
    m365_cert_free(mc);
    free(key_path);

    /* malformed assertion */
    char *url = fmt("%s/%s/oauth2/v2.0/token", h.url, h.tenant_id);
    char *body = fmt("grant_type=client_credentials&client_id=%s&scope=https%%3A%%2F%%2F"
                     "graph.microsoft.com%%2F.default&client_assertion_type=urn%%3Aietf%%3A"
                     "params%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=abc.def",
                     h.client_id);
    char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", url, hdrs, body, &r), 0);
    assert_int_equal(r.status, 400);
    tu_http_free(&r);
    free(url);
    free(body);
    free(aud);
    free(aud_real);
    assert_int_equal(sim_harness_stop(&h), 0);
    free_cert(&cert);
    free_cert(&other);
    tu_rmrf(dir);
    free(pem_path);
    free(st_path);
    free(dir);
}

static void test_bearer_checks(void **state)
{
    (void)state;
    long st;
    char *url = fmt("%s/v1.0/users", H.url);
    struct tu_http_resp r;
    /* no token */
    json_t *j = call("GET", url, NULL, NULL, NULL, &st, &r);
    assert_int_equal(st, 401);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"), "InvalidAuthenticationToken");
    char *www = tu_http_header(&r, "WWW-Authenticate");
    assert_non_null(www);
    free(www);
    tu_http_free(&r);
    json_decref(j);
    /* an Exchange token on Graph, garbage */
    const char *bad[] = {EXO_TOK, "sim.nope"};
    for (int i = 0; i < 2; i++) {
        j = call("GET", url, bad[i], NULL, NULL, &st, NULL);
        assert_int_equal(st, 401);
        assert_string_equal(jstr(json_object_get(j, "error"), "code"), "InvalidAuthenticationToken");
        json_decref(j);
    }
    free(url);
    /* a Graph token on Exchange: 401 with WWW-Authenticate, no JSON body */
    url = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    j = call("POST", url, GRAPH_TOK, "{\"CmdletInput\":{\"CmdletName\":\"Get-TransportConfig\"}}",
             "application/json", &st, &r);
    assert_int_equal(st, 401);
    assert_null(j);
    www = tu_http_header(&r, "WWW-Authenticate");
    assert_non_null(strstr(www, "invalid_token"));
    free(www);
    tu_http_free(&r);
    free(url);

    /* real expiry: a simulator whose tokens live one second */
    struct sim_harness h;
    char *args[] = {"--token-lifetime", "1", NULL};
    assert_int_equal(sim_harness_start(&h, 3, 1, args), 0);
    char *tok = sim_harness_token(&h, "graph");
    assert_non_null(tok);
    tu_sleep_ms(1500);
    url = fmt("%s/v1.0/users", h.url);
    j = call("GET", url, tok, NULL, NULL, &st, NULL);
    assert_int_equal(st, 401);
    assert_non_null(strstr(jstr(json_object_get(j, "error"), "message"), "expired"));
    json_decref(j);
    free(url);
    free(tok);
    assert_int_equal(sim_harness_stop(&h), 0);
}

/* ---------------------------------------------------------------- Graph users */

static void test_users_paging(void **state)
{
    (void)state;
    json_t *stf = sim_harness_state(&H);
    json_t *users = json_object_get(stf, "users");
    size_t n = json_array_size(users), seen = 0, pages = 0;
    char *next = fmt("%s/v1.0/users?$select=id,userPrincipalName,accountEnabled,assignedLicenses&$top=37", H.url);
    while (next) {
        long st;
        struct tu_http_resp r;
        json_t *page = call("GET", next, GRAPH_TOK, NULL, NULL, &st, &r);
        assert_int_equal(st, 200);
        char *rid = tu_http_header(&r, "request-id");
        char *crid = tu_http_header(&r, "client-request-id");
        assert_non_null(rid);
        assert_non_null(crid);
        free(rid);
        free(crid);
        tu_http_free(&r);
        free(next);
        next = NULL;
        assert_non_null(strstr(jstr(page, "@odata.context"), "$metadata#users"));
        json_t *v = json_object_get(page, "value");
        assert_true(json_array_size(v) <= 37);
        size_t i;
        json_t *u;
        json_array_foreach(v, i, u) {
            json_t *want = json_array_get(users, seen);
            assert_string_equal(jstr(u, "id"), jstr(want, "id"));
            assert_string_equal(jstr(u, "userPrincipalName"), jstr(want, "userPrincipalName"));
            assert_true(json_is_boolean(json_object_get(u, "accountEnabled")));
            assert_true(json_is_array(json_object_get(u, "assignedLicenses")));
            assert_null(json_object_get(u, "displayName")); /* not selected */
            seen++;
        }
        const char *nl = jstr(page, "@odata.nextLink");
        if (nl) {
            assert_non_null(strstr(nl, "$skiptoken="));
            next = follow(nl);
        }
        pages++;
        json_decref(page);
    }
    assert_int_equal(seen, n);
    assert_int_equal(pages, (n + 36) / 37);

    /* default property set: accountEnabled only with $select */
    long st;
    json_t *page = graph_get("/v1.0/users?$top=5", &st);
    assert_int_equal(st, 200);
    json_t *u0 = json_array_get(json_object_get(page, "value"), 0);
    assert_non_null(json_object_get(u0, "displayName"));
    assert_non_null(json_object_get(u0, "businessPhones"));
    assert_null(json_object_get(u0, "accountEnabled"));
    assert_null(json_object_get(u0, "assignedLicenses"));
    json_decref(page);

    struct {
        const char *path;
        long status;
        const char *code;
    } bad[] = {
        {"/v1.0/users?$top=1000", 400, "Request_UnsupportedQuery"},
        {"/v1.0/users?$top=0", 400, "Request_UnsupportedQuery"},
        {"/v1.0/users?$select=id,shoeSize", 400, "BadRequest"},
        {"/v1.0/users?$skiptoken=garbage", 400, "Directory_ExpiredPageToken"},
        {"/v1.0/users?$count=true", 400, "Request_BadRequest"},
        {"/v1.0/users?$skip=10", 400, "Request_UnsupportedQuery"},
        {"/v1.0/users/nobody@nowhere.example", 404, "Request_ResourceNotFound"},
        {"/v1.0/nothing", 400, "BadRequest"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *e = graph_get(bad[i].path, &st);
        assert_int_equal(st, bad[i].status);
        json_t *err = json_object_get(e, "error");
        assert_string_equal(jstr(err, "code"), bad[i].code);
        assert_non_null(jstr(err, "message"));
        assert_non_null(jstr(json_object_get(err, "innerError"), "request-id"));
        json_decref(e);
    }
    /* $count with ConsistencyLevel */
    char *url = fmt("%s/v1.0/users?$count=true&$top=1", H.url);
    char *auth = fmt("Authorization: Bearer %s", GRAPH_TOK);
    char *hdrs[] = {auth, "ConsistencyLevel: eventual", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, hdrs, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "@odata.count")), (json_int_t)n);
    json_decref(j);
    tu_http_free(&r);
    free(url);
    free(auth);

    /* one user, by UPN and by id */
    json_t *w = json_array_get(users, 3);
    char *p1 = fmt("/v1.0/users/%s", jstr(w, "userPrincipalName"));
    char *p2 = fmt("/v1.0/users/%s?$select=id,accountEnabled", jstr(w, "id"));
    j = graph_get(p1, &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "id"), jstr(w, "id"));
    json_decref(j);
    j = graph_get(p2, &st);
    assert_int_equal(st, 200);
    assert_true(json_is_boolean(json_object_get(j, "accountEnabled")));
    json_decref(j);
    free(p1);
    free(p2);
    json_decref(stf);
}

/* ---------------------------------------------------------------- reports */

/* Split one CSV line (no quoted commas in our data) into fields. */
static int csv_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static char *fetch_report(void)
{
    long st;
    struct tu_http_resp r;
    char *url = fmt("%s/v1.0/reports/getEmailAppUsageUserDetail(period='D30')", H.url);
    json_t *j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, &r);
    json_decref(j);
    assert_int_equal(st, 302);
    char *loc = tu_http_header(&r, "Location");
    assert_non_null(loc);
    assert_true(strncmp(loc, H.url, strlen(H.url)) == 0);
    tu_http_free(&r);
    free(url);
    /* no Authorization on the download */
    assert_int_equal(tu_http("GET", loc, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char *ct = tu_http_header(&r, "Content-Type");
    assert_string_equal(ct, "application/octet-stream");
    free(ct);
    free(loc);
    char *body = r.body;
    r.body = NULL;
    tu_http_free(&r);
    return body;
}

static void test_usage_report(void **state)
{
    (void)state;
    static const char header[] =
        "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last "
        "Activity Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,Other "
        "For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report Period";
    char *csv = fetch_report();
    assert_memory_equal(csv, "\xEF\xBB\xBF", 3);
    assert_true(strncmp(csv + 3, header, strlen(header)) == 0);
    json_t *stf = sim_harness_state(&H);
    size_t want_rows = 0, i;
    json_t *u;
    json_array_foreach(json_object_get(stf, "users"), i, u) want_rows += json_is_object(json_object_get(u, "usage"));
    size_t rows = 0, pop_rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(csv + 3, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (!strncmp(line, "Report Refresh Date", 19))
            continue;
        char *f[20];
        assert_int_equal(csv_fields(line, f, 20), 16);
        assert_string_equal(f[15], "30");
        assert_string_equal(f[3], "False");
        json_t *su = state_user(stf, f[1]);
        assert_non_null(su);
        json_t *us = json_object_get(su, "usage");
        const char *pop = jstr(us, "POP3 App");
        assert_string_equal(f[12], pop ? pop : "");
        pop_rows += *f[12] != '\0';
        rows++;
    }
    assert_int_equal(rows, want_rows);
    assert_true(pop_rows > 0);
    free(csv);

    /* concealed names: hashes without '@'; PATCH answers 204 and saves */
    long st;
    char *url = fmt("%s/v1.0/admin/reportSettings", H.url);
    json_t *j = call("PATCH", url, GRAPH_TOK, "{\"displayConcealedNames\":true}", "application/json", &st, NULL);
    assert_int_equal(st, 204);
    json_decref(j);
    json_t *s2 = sim_harness_state(&H);
    assert_true(json_is_true(json_object_get(json_object_get(s2, "report_settings"), "displayConcealedNames")));
    json_decref(s2);
    j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    assert_true(json_is_true(json_object_get(j, "displayConcealedNames")));
    json_decref(j);
    csv = fetch_report();
    char *first_row = strstr(csv, "\r\n") + 2;
    char *f[20];
    char *eol = strstr(first_row, "\r\n");
    *eol = '\0';
    assert_int_equal(csv_fields(first_row, f, 20), 16);
    assert_null(strchr(f[1], '@'));
    assert_int_equal(strlen(f[1]), 32);
    free(csv);
    j = call("PATCH", url, GRAPH_TOK, "{\"displayConcealedNames\":false}", "application/json", &st, NULL);
    assert_int_equal(st, 204);
    json_decref(j);
    j = call("PATCH", url, GRAPH_TOK, "{\"displayConcealedNames\":\"yes\"}", "application/json", &st, NULL);
    assert_int_equal(st, 400);
    json_decref(j);
    free(url);

    /* bad period, unknown download id */
    j = graph_get("/v1.0/reports/getEmailAppUsageUserDetail(period='D31')", &st);
    assert_int_equal(st, 400);
    json_decref(j);
    url = fmt("%s/data/download/nosuchid", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    tu_http_free(&r);
    free(url);
    json_decref(stf);
}

/* ---------------------------------------------------------------- sign-ins */

static int64_t iso_to_s(const char *s)
{
    struct tm tm = {0};
    strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    return (int64_t)timegm(&tm);
}

static void test_signins_filter_and_paging(void **state)
{
    (void)state;
    json_t *stf = sim_harness_state(&H);
    json_t *all = json_object_get(stf, "sign_ins");
    /* the window: the last 20 days, and legacy mail clients (as in the reference's example) */
    time_t now = time(NULL);
    char lo[32], hi[32];
    time_t t_lo = now - 20 * 86400, t_hi = now + 86400;
    strftime(lo, sizeof lo, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t_lo));
    strftime(hi, sizeof hi, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t_hi));
    size_t want = 0, i;
    json_t *s;
    json_array_foreach(all, i, s) {
        int64_t t = iso_to_s(jstr(s, "createdDateTime"));
        const char *app = jstr(s, "clientAppUsed");
        if (t >= t_lo && t < t_hi &&
            (!strcasecmp(app, "IMAP4") || !strcasecmp(app, "POP3") ||
             !strcasecmp(app, "Authenticated SMTP")))
            want++;
    }
    assert_true(want > 0);
    char filter[512];
    snprintf(filter, sizeof filter,
             "createdDateTime ge %s and createdDateTime lt %s and (clientAppUsed eq 'IMAP4' or "
             "clientAppUsed eq 'POP3' or clientAppUsed eq 'Authenticated SMTP')",
             lo, hi);
    CURL *c = curl_easy_init();
    char *enc = curl_easy_escape(c, filter, 0);
    char *next = fmt("%s/v1.0/auditLogs/signIns?$filter=%s&$top=7", H.url, enc);
    curl_free(enc);
    curl_easy_cleanup(c);
    size_t got = 0;
    int64_t prev = INT64_MAX;
    json_t *ids = json_object();
    while (next) {
        long st;
        json_t *page = call("GET", next, GRAPH_TOK, NULL, NULL, &st, NULL);
        assert_int_equal(st, 200);
        free(next);
        next = NULL;
        json_t *v = json_object_get(page, "value");
        assert_true(json_array_size(v) <= 7);
        json_array_foreach(v, i, s) {
            int64_t t = iso_to_s(jstr(s, "createdDateTime"));
            assert_true(t <= prev); /* newest first */
            prev = t;
            assert_true(t >= t_lo && t < t_hi);
            const char *app = jstr(s, "clientAppUsed");
            assert_true(!strcasecmp(app, "IMAP4") || !strcasecmp(app, "POP3") ||
                        !strcasecmp(app, "Authenticated SMTP"));
            assert_null(json_object_get(ids, jstr(s, "id")));
            json_object_set_new(ids, jstr(s, "id"), json_true());
            assert_true(json_is_integer(json_object_get(json_object_get(s, "status"), "errorCode")));
            assert_non_null(jstr(s, "userPrincipalName"));
            got++;
        }
        if (jstr(page, "@odata.nextLink"))
            next = follow(jstr(page, "@odata.nextLink"));
        json_decref(page);
    }
    assert_int_equal(got, want);
    json_decref(ids);

    /* not, startswith, errorCode */
    size_t want_fail = 0;
    json_array_foreach(all, i, s) {
        want_fail += json_integer_value(json_object_get(json_object_get(s, "status"), "errorCode")) == 50126;
    }
    long st;
    json_t *page = graph_get("/v1.0/auditLogs/signIns?$filter=status/errorCode%20eq%2050126", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(page, "value")),
                     want_fail < 1000 ? want_fail : 1000);
    json_decref(page);
    page = graph_get("/v1.0/auditLogs/signIns?$filter=not%20(clientAppUsed%20eq%20'Browser')%20and%20startswith(userPrincipalName,'zz')", &st);
    assert_int_equal(st, 200);
    json_decref(page);

    const char *bad[] = {
        "/v1.0/auditLogs/signIns?$filter=clientAppUsed%20eq%20IMAP4",
        "/v1.0/auditLogs/signIns?$filter=createdDateTime%20ge%20'2024-01-01'",
        "/v1.0/auditLogs/signIns?$filter=(clientAppUsed%20eq%20'x'",
        "/v1.0/auditLogs/signIns?$filter=shoeSize%20eq%20'x'",
        "/v1.0/auditLogs/signIns?$filter=clientAppUsed%20gt%20'x'",
        "/v1.0/auditLogs/signIns?$top=1001",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        page = graph_get(bad[k], &st);
        assert_int_equal(st, 400);
        assert_non_null(jstr(json_object_get(page, "error"), "code"));
        json_decref(page);
    }
    json_decref(stf);
}

static void test_signins_non_premium(void **state)
{
    (void)state;
    /* a hand-written state: also checks that minimal files load */
    const char *text =
        "{\"tenant\": {\"id\": \"11111111-2222-3333-4444-555555555555\",\n"
        "              \"initial_domain\": \"fabrikam.onmicrosoft.com\", \"premium\": false},\n"
        " \"apps\": [{\"client_id\": \"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\", \"secrets\": [\"s3\"]}],\n"
        " \"users\": [{\"id\": \"u1\", \"userPrincipalName\": \"a@fabrikam.com\",\n"
        "             \"mailbox\": {\"PopEnabled\": false}}]}\n";
    struct sim_harness h;
    assert_int_equal(sim_harness_start_state(&h, text, NULL), 0);
    char *tok = sim_harness_token(&h, "graph");
    assert_non_null(tok);
    char *url = fmt("%s/v1.0/auditLogs/signIns", h.url);
    long st;
    json_t *j = call("GET", url, tok, NULL, NULL, &st, NULL);
    assert_int_equal(st, 403);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"),
                        "Authentication_RequestFromNonPremiumTenantOrB2CTenant");
    json_decref(j);
    free(url);
    /* the rest works: users */
    url = fmt("%s/v1.0/users", h.url);
    j = call("GET", url, tok, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 1);
    json_decref(j);
    free(url);
    free(tok);
    assert_int_equal(sim_harness_stop(&h), 0);
}

/* ---------------------------------------------------------------- sendMail */

static void test_send_mail(void **state)
{
    (void)state;
    json_t *stf = sim_harness_state(&H);
    json_t *sender = state_find_mailbox(stf, "OWAEnabled", 1);
    const char *upn = jstr(sender, "userPrincipalName");
    json_t *nombx = NULL;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(stf, "users"), i, u) {
        if (!json_is_object(json_object_get(u, "mailbox")))
            nombx = u;
    }
    assert_non_null(nombx);
    size_t before = json_array_size(json_object_get(stf, "sent_mail"));

    const char *msg =
        "{\"message\":{\"subject\":\"Legacy protocol report\",\"body\":{\"contentType\":\"Text\","
        "\"content\":\"hello\"},\"toRecipients\":[{\"emailAddress\":{\"address\":"
        "\"admin@contoso.com\"}}],\"internetMessageId\":\"<k1@assent>\"},\"saveToSentItems\":false}";
    char *url = fmt("%s/v1.0/users/%s/sendMail", H.url, upn);
    long st;
    struct tu_http_resp r;
    json_t *j = call("POST", url, GRAPH_TOK, msg, "application/json", &st, &r);
    assert_int_equal(st, 202);
    assert_int_equal(r.body_len, 0);
    json_decref(j);
    tu_http_free(&r);
    json_t *s2 = sim_harness_state(&H);
    json_t *sent = json_object_get(s2, "sent_mail");
    assert_int_equal(json_array_size(sent), before + 1);
    json_t *last = json_array_get(sent, json_array_size(sent) - 1);
    assert_string_equal(jstr(last, "from"), upn);
    assert_string_equal(jstr(json_object_get(last, "message"), "subject"), "Legacy protocol report");
    assert_string_equal(jstr(json_object_get(last, "message"), "internetMessageId"), "<k1@assent>");
    assert_true(json_is_false(json_object_get(last, "saveToSentItems")));
    json_decref(s2);

    struct {
        const char *body;
        const char *ctype;
        long status;
        const char *code;
    } bad[] = {
        {"{\"message\":", "application/json", 400, "BadRequest"},
        {"{\"saveToSentItems\":true}", "application/json", 400, "ErrorInvalidRequest"},
        {"{\"message\":{\"subject\":\"x\"}}", "application/json", 400, "ErrorInvalidRecipients"},
        {"{\"message\":{\"toRecipients\":[{\"emailAddress\":{\"address\":\"nope\"}}]}}",
         "application/json", 400, "ErrorInvalidRecipients"},
        {"!!!not base64!!!", "text/plain", 400, "ErrorMimeContentInvalidBase64String"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        j = call("POST", url, GRAPH_TOK, bad[k].body, bad[k].ctype, &st, NULL);
        assert_int_equal(st, bad[k].status);
        assert_string_equal(jstr(json_object_get(j, "error"), "code"), bad[k].code);
        json_decref(j);
    }
    /* MIME variant */
    const char *mime_b64 = "RnJvbTogYUBiLmMKVG86IGRAZS5mClN1YmplY3Q6IGhpCgpib2R5Cg==";
    j = call("POST", url, GRAPH_TOK, mime_b64, "text/plain", &st, NULL);
    assert_int_equal(st, 202);
    json_decref(j);
    free(url);
    /* unknown user, user without mailbox */
    url = fmt("%s/v1.0/users/ghost@contoso.com/sendMail", H.url);
    j = call("POST", url, GRAPH_TOK, msg, "application/json", &st, NULL);
    assert_int_equal(st, 404);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"), "ErrorInvalidUser");
    json_decref(j);
    free(url);
    url = fmt("%s/v1.0/users/%s/sendMail", H.url, jstr(nombx, "id"));
    j = call("POST", url, GRAPH_TOK, msg, "application/json", &st, NULL);
    assert_int_equal(st, 404);
    assert_string_equal(jstr(json_object_get(j, "error"), "code"), "MailboxNotEnabledForRESTAPI");
    json_decref(j);
    free(url);
    json_decref(stf);
}

/* ---------------------------------------------------------------- Exchange */

static void test_get_cas_paging(void **state)
{
    (void)state;
    json_t *stf = sim_harness_state(&H);
    size_t n_mbx = 0, i;
    json_t *u;
    json_array_foreach(json_object_get(stf, "users"), i, u) n_mbx += json_is_object(json_object_get(u, "mailbox"));
    const char *body = "{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\",\"Parameters\":{\"ResultSize\":\"Unlimited\"}}}";
    char *next = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    size_t seen = 0, pages = 0;
    json_t *ids = json_object();
    while (next) {
        long st;
        struct tu_http_resp r;
        json_t *page = exo_post(next, body, "Prefer: odata.maxpagesize=40", &st, &r);
        assert_int_equal(st, 200);
        const char *hn[] = {"Rate-Limit-Limit", "Rate-Limit-Remaining", "Rate-Limit-Reset", "Request-Id"};
        for (int k = 0; k < 4; k++) {
            char *v = tu_http_header(&r, hn[k]);
            assert_non_null(v);
            free(v);
        }
        tu_http_free(&r);
        free(next);
        next = NULL;
        assert_non_null(strstr(jstr(page, "@odata.context"), "Exchange.GenericHashTable"));
        assert_true(json_is_array(json_object_get(page, "@adminapi.warnings")));
        json_t *v = json_object_get(page, "value");
        assert_true(json_array_size(v) <= 40);
        json_t *m;
        json_array_foreach(v, i, m) {
            const char *ext = jstr(m, "ExternalDirectoryObjectId");
            assert_non_null(ext);
            assert_null(json_object_get(ids, ext));
            json_object_set_new(ids, ext, json_true());
            assert_string_equal(jstr(m, "Guid@odata.type"), "#Guid");
            assert_string_equal(jstr(m, "EmailAddresses@odata.type"), "#Collection(String)");
            assert_true(json_is_boolean(json_object_get(m, "PopEnabled")));
            assert_non_null(json_object_get(m, "SmtpClientAuthenticationDisabled"));
            /* matches the state */
            json_t *su = state_user(stf, jstr(m, "PrimarySmtpAddress"));
            assert_non_null(su);
            assert_string_equal(jstr(su, "id"), ext);
            assert_true(json_equal(json_object_get(m, "ImapEnabled"),
                                   json_object_get(json_object_get(su, "mailbox"), "ImapEnabled")));
            seen++;
        }
        if (jstr(page, "@odata.nextLink"))
            next = follow(jstr(page, "@odata.nextLink"));
        pages++;
        json_decref(page);
    }
    assert_int_equal(seen, n_mbx);
    assert_int_equal(pages, (n_mbx + 39) / 40);
    json_decref(ids);

    /* $select, Identity by alias / UPN / ExternalDirectoryObjectId, ResultSize */
    json_t *w = state_find_mailbox(stf, "PopEnabled", 0);
    const char *ids3[] = {jstr(w, "userPrincipalName"), jstr(w, "id"),
                          jstr(json_object_get(w, "mailbox"), "Name")};
    for (int k = 0; k < 3; k++) {
        char *b = fmt("{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\",\"Parameters\":{\"Identity\":\"%s\"}}}", ids3[k]);
        char *url = fmt("%s/adminapi/beta/%s/InvokeCommand?$select=Identity,PopEnabled,ExternalDirectoryObjectId", H.url, H.initial_domain);
        long st;
        json_t *j = exo_post(url, b, NULL, &st, NULL);
        assert_int_equal(st, 200);
        json_t *m = json_array_get(json_object_get(j, "value"), 0);
        assert_int_equal(json_object_size(m), 3);
        assert_true(json_is_false(json_object_get(m, "PopEnabled")));
        assert_string_equal(jstr(m, "ExternalDirectoryObjectId"), jstr(w, "id"));
        json_decref(j);
        free(b);
        free(url);
    }
    long st;
    json_t *j = exo("{\"CmdletInput\":{\"CmdletName\":\"get-casmailbox\",\"Parameters\":{\"ResultSize\":5}}}", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 5);
    assert_null(json_object_get(j, "@odata.nextLink"));
    json_decref(j);
    json_decref(stf);
}

static void test_set_cas(void **state)
{
    (void)state;
    json_t *stf = sim_harness_state(&H);
    json_t *w = state_find_mailbox(stf, "PopEnabled", 1);
    assert_non_null(w);
    char upn[256];
    snprintf(upn, sizeof upn, "%s", jstr(w, "userPrincipalName"));
    json_decref(stf);

    char *set = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-CASMailbox\",\"Parameters\":{"
                    "\"Identity\":\"%s\",\"PopEnabled\":false,\"ImapEnabled\":false,"
                    "\"SmtpClientAuthenticationDisabled\":true}}}", upn);
    long st;
    json_t *j = exo(set, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "@adminapi.warnings")), 0);
    json_decref(j);
    stf = sim_harness_state(&H);
    json_t *m = json_object_get(state_user(stf, upn), "mailbox");
    assert_true(json_is_false(json_object_get(m, "PopEnabled")));
    assert_true(json_is_false(json_object_get(m, "ImapEnabled")));
    assert_true(json_is_true(json_object_get(m, "SmtpClientAuthenticationDisabled")));
    json_decref(stf);
    /* again: nothing changes, and the warning says so */
    j = exo(set, &st);
    assert_int_equal(st, 200);
    const char *warn = json_string_value(json_array_get(json_object_get(j, "@adminapi.warnings"), 0));
    assert_non_null(warn);
    assert_non_null(strstr(warn, "no settings of"));
    assert_non_null(strstr(warn, "have been modified"));
    json_decref(j);
    free(set);
    /* null resets SmtpClientAuthenticationDisabled */
    set = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-CASMailbox\",\"Parameters\":{"
              "\"Identity\":\"%s\",\"SmtpClientAuthenticationDisabled\":null}}}", upn);
    j = exo(set, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    free(set);
    stf = sim_harness_state(&H);
    m = json_object_get(state_user(stf, upn), "mailbox");
    assert_true(json_is_null(json_object_get(m, "SmtpClientAuthenticationDisabled")));
    json_decref(stf);

    struct {
        const char *params;
        long status;
        const char *exception;
    } bad[] = {
        {"{\"Identity\":\"nobody@contoso.com\",\"PopEnabled\":false}", 404,
         "ManagementObjectNotFoundException"},
        {"{\"PopEnabled\":false}", 400, "ParameterBindingException"},
        {"{\"Identity\":\"%s\",\"PopEnable\":false}", 400, "AmbiguousParameterSetException"},
        {"{\"Identity\":\"%s\",\"PopEnabled\":\"no\"}", 400,
         "ParameterBindingArgumentTransformationException"},
        {"{\"Identity\":\"%s\",\"PopEnabled\":null}", 400, "ParameterBindingValidationException"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *params = subst(bad[k].params, upn);
        char *b = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-CASMailbox\",\"Parameters\":%s}}", params);
        j = exo(b, &st);
        assert_int_equal(st, bad[k].status);
        json_t *err = json_object_get(j, "error");
        assert_string_equal(jstr(err, "message"), "Invalid Operation");
        const char *d = exo_detail(j);
        assert_non_null(d);
        assert_int_equal(d[0], '|');
        assert_non_null(strstr(d, bad[k].exception));
        assert_non_null(jstr(json_object_get(json_object_get(err, "innererror"), "internalexception"), "message"));
        json_decref(j);
        free(b);
        free(params);
    }
    j = exo("{\"CmdletInput\":{\"CmdletName\":\"Remove-Mailbox\",\"Parameters\":{}}}", &st);
    assert_int_equal(st, 400);
    assert_non_null(strstr(exo_detail(j), "CommandNotFoundException"));
    json_decref(j);
    const char *garbage[] = {"", "{", "[]", "{\"CmdletInput\":{}}", "{\"CmdletInput\":{\"CmdletName\":5}}",
                             "{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\",\"Parameters\":[1]}}"};
    for (size_t k = 0; k < sizeof garbage / sizeof garbage[0]; k++) {
        j = exo(garbage[k], &st);
        assert_int_equal(st, 400);
        json_decref(j);
    }
    /* an unknown tenant in the path */
    char *url = fmt("%s/adminapi/beta/other.onmicrosoft.com/InvokeCommand", H.url);
    j = exo_post(url, "{\"CmdletInput\":{\"CmdletName\":\"Get-TransportConfig\"}}", NULL, &st, NULL);
    assert_int_equal(st, 404);
    json_decref(j);
    free(url);
}

static void test_transport_config(void **state)
{
    (void)state;
    long st;
    json_t *j = exo("{\"CmdletInput\":{\"CmdletName\":\"Get-TransportConfig\",\"Parameters\":{}}}", &st);
    assert_int_equal(st, 200);
    json_t *t = json_array_get(json_object_get(j, "value"), 0);
    assert_string_equal(jstr(t, "Name"), "Transport Settings");
    int was = json_is_true(json_object_get(t, "SmtpClientAuthenticationDisabled"));
    assert_true(json_is_boolean(json_object_get(t, "AllowLegacyTLSClients")));
    json_decref(j);
    char *b = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-TransportConfig\",\"Parameters\":"
                  "{\"SmtpClientAuthenticationDisabled\":%s,\"AllowLegacyTLSClients\":true}}}",
                  was ? "false" : "true");
    j = exo(b, &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "@adminapi.warnings")), 0);
    json_decref(j);
    json_t *stf = sim_harness_state(&H);
    json_t *tc = json_object_get(stf, "transport_config");
    assert_int_equal(json_is_true(json_object_get(tc, "SmtpClientAuthenticationDisabled")), !was);
    assert_true(json_is_true(json_object_get(tc, "AllowLegacyTLSClients")));
    json_decref(stf);
    j = exo(b, &st);
    assert_int_equal(json_array_size(json_object_get(j, "@adminapi.warnings")), 1);
    json_decref(j);
    free(b);
    /* restore */
    b = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-TransportConfig\",\"Parameters\":"
            "{\"SmtpClientAuthenticationDisabled\":%s,\"AllowLegacyTLSClients\":false}}}",
            was ? "true" : "false");
    j = exo(b, &st);
    assert_int_equal(st, 200);
    json_decref(j);
    free(b);
    j = exo("{\"CmdletInput\":{\"CmdletName\":\"Set-TransportConfig\",\"Parameters\":{\"MaxSendSize\":\"1 MB\"}}}", &st);
    assert_int_equal(st, 400);
    json_decref(j);
}

/* ---------------------------------------------------------------- faults */

/* A request with its own timeout (ms); returns the curl result, status in *status. */
static CURLcode http_timeout(const char *method, const char *url, char *const hdrs[],
                             const char *body, long timeout_ms, long *status)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        hl = curl_slist_append(hl, hdrs[i]);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    fclose(devnull);
    return cc;
}

static void test_fault_status_codes(void **state)
{
    (void)state;
    json_int_t before = stat_of("faults_injected", "429");
    set_faults("{\"faults\":[{\"kind\":\"429\",\"path\":\"/v1.0/users\",\"count\":2,\"retry_after\":\"1\"}]}");
    long st;
    struct tu_http_resp r;
    char *url = fmt("%s/v1.0/users?$top=1", H.url);
    for (int i = 0; i < 2; i++) {
        json_t *j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, &r);
        assert_int_equal(st, 429);
        char *ra = tu_http_header(&r, "Retry-After");
        assert_string_equal(ra, "1");
        free(ra);
        assert_string_equal(jstr(json_object_get(j, "error"), "code"), "TooManyRequests");
        json_decref(j);
        tu_http_free(&r);
    }
    json_t *j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    assert_int_equal(stat_of("faults_injected", "429"), before + 2);

    /* HTTP-date form, on Exchange by cmdlet */
    set_faults("{\"faults\":[{\"kind\":\"429\",\"cmdlet\":\"Get-TransportConfig\",\"count\":1,\"retry_after\":\"date\",\"retry_after_s\":5}]}");
    char *eurl = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    j = exo_post(eurl, "{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\",\"Parameters\":{\"ResultSize\":1}}}", NULL, &st, NULL);
    assert_int_equal(st, 200); /* another cmdlet: untouched */
    json_decref(j);
    j = exo_post(eurl, "{\"CmdletInput\":{\"CmdletName\":\"Get-TransportConfig\"}}", NULL, &st, &r);
    assert_int_equal(st, 429);
    char *ra = tu_http_header(&r, "Retry-After");
    assert_non_null(strstr(ra, " GMT"));
    time_t when = curl_getdate(ra, NULL);
    assert_true(when > time(NULL));
    free(ra);
    tu_http_free(&r);
    json_decref(j);

    const char *kinds[] = {"503", "504", "500"};
    for (int k = 0; k < 3; k++) {
        char *f = fmt("{\"faults\":[{\"kind\":\"%s\",\"endpoint\":\"graph.users\",\"count\":1}]}", kinds[k]);
        set_faults(f);
        free(f);
        j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
        assert_int_equal(st, strtol(kinds[k], NULL, 10));
        assert_non_null(jstr(json_object_get(j, "error"), "code"));
        json_decref(j);
        j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
        assert_int_equal(st, 200);
        json_decref(j);
    }
    /* 403 with NUL bytes */
    set_faults("{\"faults\":[{\"kind\":\"nul403\",\"path\":\"/adminapi/\",\"count\":1,\"body_len\":40}]}");
    j = exo_post(eurl, "{\"CmdletInput\":{\"CmdletName\":\"Get-TransportConfig\"}}", NULL, &st, &r);
    assert_int_equal(st, 403);
    assert_null(j);
    assert_int_equal(r.body_len, 40);
    for (size_t i = 0; i < r.body_len; i++)
        assert_int_equal(r.body[i], 0);
    tu_http_free(&r);
    /* expired token once, then the same token works */
    set_faults("{\"faults\":[{\"kind\":\"expired_token\",\"endpoint\":\"graph.users\",\"count\":1}]}");
    j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
    assert_int_equal(st, 401);
    assert_non_null(strstr(jstr(json_object_get(j, "error"), "message"), "expired"));
    json_decref(j);
    j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    /* malformed: 200 with a cut body */
    set_faults("{\"faults\":[{\"kind\":\"malformed\",\"endpoint\":\"graph.users\",\"count\":1}]}");
    j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, &r);
    assert_int_equal(st, 200);
    assert_null(j);
    assert_true(r.body_len > 0);
    tu_http_free(&r);
    /* drop: no answer at all */
    set_faults("{\"faults\":[{\"kind\":\"drop\",\"endpoint\":\"graph.users\",\"count\":1}]}");
    char *auth = fmt("Authorization: Bearer %s", GRAPH_TOK);
    char *hdrs[] = {auth, NULL};
    assert_int_equal(tu_http("GET", url, hdrs, NULL, &r), -1);
    tu_http_free(&r);
    j = call("GET", url, GRAPH_TOK, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    free(auth);
    /* the rules list shows what fired */
    char *furl = fmt("%s/_sim/faults", H.url);
    assert_int_equal(tu_http("GET", furl, NULL, NULL, &r), 0);
    json_t *fl = json_loads(r.body, 0, NULL);
    json_t *rule = json_array_get(json_object_get(fl, "faults"), 0);
    assert_int_equal(json_integer_value(json_object_get(rule, "fired")), 1);
    assert_int_equal(json_integer_value(json_object_get(rule, "remaining")), 0);
    json_decref(fl);
    tu_http_free(&r);
    free(furl);
    clear_faults();
    free(url);
    free(eurl);
}

static void test_fault_delays_and_write_timeout(void **state)
{
    (void)state;
    /* slow: the answer comes after the delay, and other requests are not held */
    set_faults("{\"faults\":[{\"kind\":\"slow\",\"endpoint\":\"graph.users\",\"count\":1,\"delay_ms\":400}]}");
    char *url = fmt("%s/v1.0/users?$top=1", H.url);
    char *auth = fmt("Authorization: Bearer %s", GRAPH_TOK);
    char *hdrs[] = {auth, NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long st;
    assert_int_equal(http_timeout("GET", url, hdrs, NULL, 10000, &st), CURLE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(st, 200);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 390);
    /* a client that gives up before a slow answer */
    set_faults("{\"faults\":[{\"kind\":\"slow\",\"endpoint\":\"graph.users\",\"count\":1,\"delay_ms\":2000}]}");
    assert_int_equal(http_timeout("GET", url, hdrs, NULL, 300, &st), CURLE_OPERATION_TIMEDOUT);

    /* write_timeout: Set-CASMailbox is applied and saved, the answer comes too late */
    json_t *stf = sim_harness_state(&H);
    json_t *w = state_find_mailbox(stf, "ImapEnabled", 1);
    assert_non_null(w);
    char upn[256];
    snprintf(upn, sizeof upn, "%s", jstr(w, "userPrincipalName"));
    json_decref(stf);
    set_faults("{\"faults\":[{\"kind\":\"write_timeout\",\"cmdlet\":\"Set-CASMailbox\",\"count\":1,\"delay_ms\":3000}]}");
    char *eurl = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    char *eauth = fmt("Authorization: Bearer %s", EXO_TOK);
    char *ehdrs[] = {eauth, "Content-Type: application/json", NULL};
    char *body = fmt("{\"CmdletInput\":{\"CmdletName\":\"Set-CASMailbox\",\"Parameters\":{"
                     "\"Identity\":\"%s\",\"ImapEnabled\":false}}}", upn);
    assert_int_equal(http_timeout("POST", eurl, ehdrs, body, 500, &st), CURLE_OPERATION_TIMEDOUT);
    stf = sim_harness_state(&H);
    assert_true(json_is_false(json_object_get(json_object_get(state_user(stf, upn), "mailbox"), "ImapEnabled")));
    json_decref(stf);
    /* the client's re-read sees the change; its retry is a no-op */
    long st2;
    json_t *j = exo(body, &st2);
    assert_int_equal(st2, 200);
    assert_int_equal(json_array_size(json_object_get(j, "@adminapi.warnings")), 1);
    json_decref(j);
    clear_faults();
    free(body);
    free(eauth);
    free(eurl);
    free(auth);
    free(url);
}

static void test_fault_probability_and_specs(void **state)
{
    (void)state;
    set_faults("{\"seed\":42,\"faults\":[{\"kind\":\"503\",\"endpoint\":\"graph.user\",\"prob\":0.5}]}");
    json_t *stf = sim_harness_state(&H);
    char *path = fmt("/v1.0/users/%s", jstr(json_array_get(json_object_get(stf, "users"), 0), "id"));
    json_decref(stf);
    int fails = 0;
    for (int i = 0; i < 40; i++) {
        long st;
        json_t *j = graph_get(path, &st);
        assert_true(st == 200 || st == 503);
        fails += st == 503;
        json_decref(j);
    }
    assert_true(fails > 0 && fails < 40);
    /* after=N lets N pass first */
    set_faults("{\"faults\":[{\"kind\":\"500\",\"endpoint\":\"graph.user\",\"after\":2,\"count\":1}]}");
    long sts[4];
    for (int i = 0; i < 4; i++) {
        json_t *j = graph_get(path, &sts[i]);
        json_decref(j);
    }
    assert_int_equal(sts[0], 200);
    assert_int_equal(sts[1], 200);
    assert_int_equal(sts[2], 500);
    assert_int_equal(sts[3], 200);
    clear_faults();
    free(path);

    /* a bad rule is refused and leaves the rules as they were */
    char *furl = fmt("%s/_sim/faults", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", furl, NULL, "{\"faults\":[{\"kind\":\"418\"}]}", &r), 0);
    assert_int_equal(r.status, 400);
    tu_http_free(&r);
    assert_int_equal(tu_http("POST", furl, NULL, "not json", &r), 0);
    assert_int_equal(r.status, 400);
    tu_http_free(&r);
    free(furl);

    /* --fault on the command line */
    struct sim_harness h;
    char *args[] = {"--fault", "429,path=/v1.0/users,count=1,retry_after=2.5", NULL};
    assert_int_equal(sim_harness_start(&h, 3, 2, args), 0);
    char *tok = sim_harness_token(&h, "graph");
    char *url = fmt("%s/v1.0/users", h.url);
    long st;
    json_t *j = call("GET", url, tok, NULL, NULL, &st, &r);
    assert_int_equal(st, 429);
    char *ra = tu_http_header(&r, "Retry-After");
    assert_string_equal(ra, "2.5");
    free(ra);
    tu_http_free(&r);
    json_decref(j);
    j = call("GET", url, tok, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    json_decref(j);
    free(url);
    free(tok);
    assert_int_equal(sim_harness_stop(&h), 0);

    /* bad specs: refused at start with a message */
    const char *bad_specs[] = {"teapot", "429,count=x", "429,colour=red", "slow,delay_ms=-1"};
    for (size_t k = 0; k < 4; k++) {
        char *dir = tu_tmpdir("simbad");
        char *stp = tu_path(dir, "t.json");
        char *argv[] = {(char *)sim_harness_bin(), "--listen", "127.0.0.1:0", "--state", stp,
                        "--generate", "2", "--fault", (char *)bad_specs[k], NULL};
        char *err = NULL;
        int code = tu_run(argv, NULL, 30000, NULL, &err);
        assert_int_equal(code, 1);
        assert_non_null(strstr(err, "fault"));
        free(err);
        tu_rmrf(dir);
        free(stp);
        free(dir);
    }
}

/* ---------------------------------------------------------------- robustness */

static void test_bad_input_and_state_errors(void **state)
{
    (void)state;
    /* an over-size body: 413, and the server lives on */
    size_t big = 5u * 1024 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    char *url = fmt("%s/adminapi/beta/%s/InvokeCommand", H.url, H.tenant_id);
    long st;
    json_t *j = exo_post(url, huge, NULL, &st, NULL);
    assert_int_equal(st, 413);
    json_decref(j);
    free(huge);
    free(url);
    const char *paths[] = {"/", "/v1.0", "/v1.0/users/", "/adminapi/beta//InvokeCommand",
                           "/x/oauth2/v2.0/tokenz", "/data/download/", "/_sim/nothing",
                           "/v1.0/users/%00/sendMail", "/v1.0/auditLogs/signIns?$filter=((((((((((((((((((((((((((((((((((((x"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        url = fmt("%s%s", H.url, paths[k]);
        struct tu_http_resp r;
        assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
        assert_true(r.status >= 400 && r.status < 500);
        tu_http_free(&r);
        free(url);
    }
    url = fmt("%s/_sim/health", H.url);
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    tu_http_free(&r);
    free(url);

    /* bad state files: a clear message and exit 1; bad flags: exit 2 */
    char *dir = tu_tmpdir("simstate");
    char *p = tu_path(dir, "bad.json");
    struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"{\"tenant\": {\"id\": \"t\", \"initial_domain\": \"d\"}, \"users\": [{\"id\": 5}]}", "users[0].id"},
        {"{\"tenant\": {\"id\": \"t\"}}", "tenant.initial_domain"},
        {"{\"users\": []}", "tenant"},
        {"{\"tenant\": {\"id\": \"t\", \"initial_domain\": \"d\"}, \"users\": [{\"id\": \"u\", "
         "\"userPrincipalName\": \"a@b\", \"mailbox\": {\"PopEnabld\": true}}]}", "PopEnabld"},
        {"{\"tenant\": {\"id\": \"t\", \"initial_domain\": \"d\"}, \"users\": [{\"id\": \"u\"", "line 1"},
        {"{\"tenant\": {\"id\": \"t\", \"initial_domain\": \"d\"}, \"tenant\": {}}", "duplicate"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(tu_write_file(p, cases[k].text), 0);
        char *argv[] = {(char *)sim_harness_bin(), "--listen", "127.0.0.1:0", "--state", p, NULL};
        char *err = NULL;
        assert_int_equal(tu_run(argv, NULL, 30000, NULL, &err), 1);
        if (!strstr(err, cases[k].msg))
            fprintf(stderr, "case %zu: %s\n", k, err);
        assert_non_null(strstr(err, cases[k].msg));
        assert_non_null(strstr(err, p));
        free(err);
    }
    char *argv2[] = {(char *)sim_harness_bin(), "--listen", "nowhere", "--state", p, NULL};
    assert_int_equal(tu_run(argv2, NULL, 30000, NULL, NULL), 2);
    char *argv3[] = {(char *)sim_harness_bin(), "--bogus", "1", NULL};
    assert_int_equal(tu_run(argv3, NULL, 30000, NULL, NULL), 2);
    tu_rmrf(dir);
    free(p);
    free(dir);
}

static void test_admin_users_and_signins(void **state)
{
    (void)state;
    char *url = fmt("%s/_sim/users", H.url);
    const char *user =
        "{\"id\": \"9f1c0d1e-0000-4000-8000-000000000001\", \"userPrincipalName\": \"new.hire@contoso.com\","
        " \"displayName\": \"New Hire\", \"mail\": \"new.hire@contoso.com\","
        " \"mailbox\": {\"PopEnabled\": true, \"ImapEnabled\": false}}";
    struct tu_http_resp r;
    assert_int_equal(tu_http("POST", url, NULL, user, &r), 0);
    assert_int_equal(r.status, 201);
    tu_http_free(&r);
    assert_int_equal(tu_http("POST", url, NULL, user, &r), 0);
    assert_int_equal(r.status, 409); /* the id is taken now */
    tu_http_free(&r);
    assert_int_equal(tu_http("POST", url, NULL, "{\"id\": \"x\"}", &r), 0);
    assert_int_equal(r.status, 400); /* no userPrincipalName */
    assert_non_null(strstr(r.body, "userPrincipalName"));
    tu_http_free(&r);
    free(url);
    long st;
    json_t *j = exo("{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\",\"Parameters\":{\"Identity\":\"new.hire\"}}}", &st);
    assert_int_equal(st, 200);
    json_t *m = json_array_get(json_object_get(j, "value"), 0);
    assert_true(json_is_true(json_object_get(m, "PopEnabled")));
    assert_string_equal(jstr(m, "ExternalDirectoryObjectId"), "9f1c0d1e-0000-4000-8000-000000000001");
    json_decref(j);
    json_t *stf = sim_harness_state(&H);
    assert_non_null(state_user(stf, "new.hire@contoso.com"));
    json_decref(stf);

    /* a sign-in for the new user */
    url = fmt("%s/_sim/sign_ins", H.url);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    char *si = fmt("[{\"id\": \"si-new-1\", \"createdDateTime\": \"%s\", \"userPrincipalName\":"
                   " \"new.hire@contoso.com\", \"clientAppUsed\": \"POP3\","
                   " \"status\": {\"errorCode\": 0}}]", when);
    assert_int_equal(tu_http("POST", url, NULL, si, &r), 0);
    assert_int_equal(r.status, 201);
    tu_http_free(&r);
    assert_int_equal(tu_http("POST", url, NULL, "[{\"id\": \"bad\"}]", &r), 0);
    assert_int_equal(r.status, 400);
    tu_http_free(&r);
    free(si);
    free(url);
    j = graph_get("/v1.0/auditLogs/signIns?$filter=userPrincipalName%20eq%20'NEW.HIRE@contoso.com'", &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "value"), 0), "id"), "si-new-1");
    json_decref(j);

    /* the user leaves the tenant */
    url = fmt("%s/_sim/users/new.hire@contoso.com", H.url);
    assert_int_equal(tu_http("DELETE", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 204);
    tu_http_free(&r);
    assert_int_equal(tu_http("DELETE", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    tu_http_free(&r);
    free(url);
    j = graph_get("/v1.0/users/new.hire@contoso.com", &st);
    assert_int_equal(st, 404);
    json_decref(j);
    stf = sim_harness_state(&H);
    assert_null(state_user(stf, "new.hire@contoso.com"));
    json_decref(stf);
}

static void test_stats_and_sigterm(void **state)
{
    (void)state;
    assert_true(stat_of(NULL, "requests_total") > 0);
    assert_true(stat_of("requests", "graph.users") > 0);
    assert_true(stat_of("requests", "exo.Set-CASMailbox") > 0);
    assert_true(stat_of("requests", "token") > 0);
    assert_true(stat_of(NULL, "state_saves") > 0);
    /* a pretty-printed copy of the state (as a test might write) loads and serves */
    json_t *stf = sim_harness_state(&H);
    char *pretty = json_dumps(stf, JSON_INDENT(2));
    struct sim_harness h;
    assert_int_equal(sim_harness_start_state(&h, pretty, NULL), 0);
    char *tok = sim_harness_token(&h, "graph");
    char *url = fmt("%s/v1.0/users?$top=999", h.url);
    long st;
    json_t *j = call("GET", url, tok, NULL, NULL, &st, NULL);
    assert_int_equal(st, 200);
    assert_int_equal(json_array_size(json_object_get(j, "value")), json_array_size(json_object_get(stf, "users")));
    json_decref(j);
    free(url);
    free(tok);
    /* SIGTERM: clean exit (0; under ASan also leak-free), state still valid */
    assert_int_equal(sim_harness_stop(&h), 0);
    free(pretty);
    json_decref(stf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_deterministic_and_mixed),
        cmocka_unit_test(test_token_secret),
        cmocka_unit_test(test_token_assertion),
        cmocka_unit_test(test_bearer_checks),
        cmocka_unit_test(test_users_paging),
        cmocka_unit_test(test_usage_report),
        cmocka_unit_test(test_signins_filter_and_paging),
        cmocka_unit_test(test_signins_non_premium),
        cmocka_unit_test(test_send_mail),
        cmocka_unit_test(test_get_cas_paging),
        cmocka_unit_test(test_set_cas),
        cmocka_unit_test(test_transport_config),
        cmocka_unit_test(test_fault_status_codes),
        cmocka_unit_test(test_fault_delays_and_write_timeout),
        cmocka_unit_test(test_fault_probability_and_specs),
        cmocka_unit_test(test_bad_input_and_state_errors),
        cmocka_unit_test(test_admin_users_and_signins),
        cmocka_unit_test(test_stats_and_sigterm),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
