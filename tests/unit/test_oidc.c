/*
 * test_oidc.c - ID token verification (m365/oidc.h) with keys made here:
 * a good token; a bad signature; the wrong aud, iss and tid; expired and
 * not yet valid (and the skew); a missing and a wrong nonce; alg "none"
 * and HS256 (signed with the public key's bytes, the classic confusion);
 * an unknown kid refetches the key set (rotation) but at most once per
 * 30 s; the discovery document; the key set's refusals; PKCE S256 (the
 * RFC 7636 example); approver matching by UPN or object id.
 */
#include "tests/testutil.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "m365/oidc.h"

#define ISS "https://login.example/11111111-2222-3333-4444-555555555555/v2.0"
#define TID "11111111-2222-3333-4444-555555555555"
#define CLIENT "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define NOW 1700000000LL

static EVP_PKEY *key_a, *key_b;

static void b64(const void *in, size_t len, char *out, size_t size)
{
    assert_true(encode_b64url(in, len, out, size) > 0);
}

/* {"kty":"RSA","kid":kid,"n","e","use":"sig"} of pkey. */
static json_t *jwk(EVP_PKEY *pkey, const char *kid)
{
    BIGNUM *n = NULL, *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    unsigned char nb[1024], eb[16];
    int nl = BN_bn2bin(n, nb), el = BN_bn2bin(e, eb);
    char ns[1400], es[32];
    b64(nb, (size_t)nl, ns, sizeof ns);
    b64(eb, (size_t)el, es, sizeof es);
    BN_free(n);
    BN_free(e);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "use", "sig", "kid", kid, "n",
                     ns, "e", es);
}

static char *jwks_text(EVP_PKEY *k1, const char *kid1, EVP_PKEY *k2, const char *kid2)
{
    json_t *keys = json_array();
    json_array_append_new(keys, jwk(k1, kid1));
    if (k2)
        json_array_append_new(keys, jwk(k2, kid2));
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static struct oidc_jwks *jwks(EVP_PKEY *k1, const char *kid1, EVP_PKEY *k2, const char *kid2)
{
    char *t = jwks_text(k1, kid1, k2, kid2);
    struct oidc_jwks *k = NULL;
    struct as_err err = {0};
    assert_int_equal(oidc_jwks_parse(t, strlen(t), &k, &err), AS_OK);
    free(t);
    return k;
}

/* The standard claims, for the test to change. */
static json_t *claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:[s]}", "iss", ISS,
                     "aud", CLIENT, "tid", TID, "iat", (json_int_t)NOW - 10, "nbf",
                     (json_int_t)NOW - 10, "exp", (json_int_t)NOW + 3600, "nonce", "n-123",
                     "oid", "99999999-8888-7777-6666-555555555555", "preferred_username",
                     "Ada@Contoso.com", "name", "Ada", "roles", "Assent.Admin");
}

/* A compact JWT of header and claims (taken), signed per alg: "RS256" with
 * pkey, "HS256" with hmac_key, anything else unsigned. */
static char *token(json_t *hdr, json_t *cl, EVP_PKEY *pkey, const unsigned char *hmac_key,
                   size_t hmac_len)
{
    char *h = json_dumps(hdr, JSON_COMPACT), *c = json_dumps(cl, JSON_COMPACT);
    char hb[1024], cb[4096], signing[5200], sigb[1024];
    b64(h, strlen(h), hb, sizeof hb);
    b64(c, strlen(c), cb, sizeof cb);
    snprintf(signing, sizeof signing, "%s.%s", hb, cb);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    sigb[0] = '\0';
    if (alg && strcmp(alg, "RS256") == 0) {
        unsigned char sig[512];
        size_t sl = sizeof sig;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sl, (unsigned char *)signing, strlen(signing)), 1);
        EVP_MD_CTX_free(md);
        b64(sig, sl, sigb, sizeof sigb);
    } else if (alg && strcmp(alg, "HS256") == 0) {
        unsigned char mac[32];
        unsigned int ml = 0;
        HMAC(EVP_sha256(), hmac_key, (int)hmac_len, (unsigned char *)signing, strlen(signing),
             mac, &ml);
        b64(mac, ml, sigb, sizeof sigb);
    }
    size_t n = strlen(signing) + strlen(sigb) + 2;
    char *out = malloc(n);
    snprintf(out, n, "%s.%s", signing, sigb);
    free(h);
    free(c);
    json_decref(hdr);
    json_decref(cl);
    return out;
}

static char *rs256(json_t *cl, EVP_PKEY *pkey, const char *kid)
{
    return token(json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "kid", kid), cl,
                 pkey, NULL, 0);
}

static const struct oidc_expect expect = {
    .issuer = ISS, .client_id = CLIENT, .tenant = TID, .nonce = "n-123", .now_s = NOW,
};

/* Verify with the set {a: "k1"}; the code, and the message into msg. */
static enum as_code check(const char *jwt, const struct oidc_expect *x, char *msg, size_t size)
{
    struct oidc_jwks *k = jwks(key_a, "k1", NULL, NULL);
    struct oidc_identity id;
    struct as_err err = {0};
    enum as_code rc = oidc_verify(k, jwt, x ? x : &expect, &id, &err);
    if (msg)
        snprintf(msg, size, "%s", err.msg);
    if (rc == AS_OK)
        oidc_identity_clear(&id);
    oidc_jwks_free(k);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    key_a = EVP_RSA_gen(2048);
    key_b = EVP_RSA_gen(2048);
    return key_a && key_b ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    return 0;
}

static void test_good_token(void **state)
{
    (void)state;
    struct oidc_jwks *k = jwks(key_a, "k1", key_b, "k2");
    assert_int_equal(oidc_jwks_count(k), 2);
    char *jwt = rs256(claims(), key_b, "k2");
    struct oidc_identity id;
    struct as_err err = {0};
    assert_int_equal(oidc_verify(k, jwt, &expect, &id, &err), AS_OK);
    assert_string_equal(id.upn, "Ada@Contoso.com");
    assert_string_equal(id.oid, "99999999-8888-7777-6666-555555555555");
    assert_string_equal(id.tid, TID);
    assert_string_equal(id.name, "Ada");
    assert_int_equal(json_array_size(id.roles), 1);
    assert_string_equal(json_string_value(json_array_get(id.roles, 0)), "Assent.Admin");
    oidc_identity_clear(&id);
    /* aud as an array holding the client id */
    json_t *cl = claims();
    json_object_set_new(cl, "aud", json_pack("[s, s]", "other", CLIENT));
    free(jwt);
    jwt = rs256(cl, key_b, "k2");
    assert_int_equal(oidc_verify(k, jwt, &expect, &id, &err), AS_OK);
    oidc_identity_clear(&id);
    free(jwt);
    oidc_jwks_free(k);
}

static void test_bad_signature(void **state)
{
    (void)state;
    char msg[256];
    /* signed by key b but naming key a's kid */
    char *jwt = rs256(claims(), key_b, "k1");
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "signature"));
    free(jwt);
    /* a good token with one claim changed after signing */
    jwt = rs256(claims(), key_a, "k1");
    char *d1 = strchr(jwt, '.');
    d1[5] = d1[5] == 'A' ? 'B' : 'A';
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    free(jwt);
    /* no signature, four parts, garbage */
    assert_int_equal(check("a.b.", NULL, msg, sizeof msg), AS_EAUTH);
    assert_int_equal(check("a.b.c.d", NULL, msg, sizeof msg), AS_EAUTH);
    assert_int_equal(check("", NULL, msg, sizeof msg), AS_EAUTH);
    assert_int_equal(check(NULL, NULL, msg, sizeof msg), AS_EAUTH);
}

static void test_claims_refused(void **state)
{
    (void)state;
    char msg[256];
    static const struct {
        const char *claim, *value, *why;
    } cases[] = {
        {"aud", "someone-else", "aud"},
        {"iss", "https://login.example/other/v2.0", "issuer"},
        {"tid", "00000000-0000-0000-0000-000000000000", "tid"},
        {"nonce", "n-other", "nonce"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *cl = claims();
        json_object_set_new(cl, cases[i].claim, json_string(cases[i].value));
        char *jwt = rs256(cl, key_a, "k1");
        assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
        assert_non_null(strstr(msg, cases[i].why));
        free(jwt);
    }
    /* no nonce in the token; no nonce expected (a flow without one) */
    json_t *cl = claims();
    json_object_del(cl, "nonce");
    char *jwt = rs256(cl, key_a, "k1");
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "nonce"));
    free(jwt);
    jwt = rs256(claims(), key_a, "k1");
    struct oidc_expect x = expect;
    x.nonce = "";
    assert_int_equal(check(jwt, &x, msg, sizeof msg), AS_EAUTH);
    free(jwt);
    /* no oid */
    cl = claims();
    json_object_del(cl, "oid");
    jwt = rs256(cl, key_a, "k1");
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    free(jwt);
}

static void test_times(void **state)
{
    (void)state;
    char msg[256];
    struct oidc_expect x = expect;
    char *jwt = rs256(claims(), key_a, "k1");
    /* expired: exp + 120 s of skew */
    x.now_s = NOW + 3600 + 119;
    assert_int_equal(check(jwt, &x, msg, sizeof msg), AS_OK);
    x.now_s = NOW + 3600 + 120;
    assert_int_equal(check(jwt, &x, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "expired"));
    /* not yet valid: nbf - 120 s */
    x.now_s = NOW - 10 - 120;
    assert_int_equal(check(jwt, &x, msg, sizeof msg), AS_OK);
    x.now_s = NOW - 10 - 121;
    assert_int_equal(check(jwt, &x, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "not valid yet"));
    free(jwt);
    /* no exp at all */
    json_t *cl = claims();
    json_object_del(cl, "exp");
    jwt = rs256(cl, key_a, "k1");
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    free(jwt);
}

static void test_algorithms(void **state)
{
    (void)state;
    char msg[256];
    /* alg none, with and without a kid */
    char *jwt = token(json_pack("{s:s, s:s}", "alg", "none", "kid", "k1"), claims(), NULL, NULL, 0);
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    free(jwt);
    jwt = token(json_pack("{s:s}", "alg", "none"), claims(), NULL, NULL, 0);
    size_t n = strlen(jwt);
    char *withsig = malloc(n + 3);
    snprintf(withsig, n + 3, "%sAA", jwt);
    assert_int_equal(check(withsig, NULL, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "RS256 only"));
    free(withsig);
    free(jwt);
    /* HS256 keyed with the public key's JWK text (what a confused verifier would use) */
    char *pub = jwks_text(key_a, "k1", NULL, NULL);
    jwt = token(json_pack("{s:s, s:s}", "alg", "HS256", "kid", "k1"), claims(), NULL,
                (unsigned char *)pub, strlen(pub));
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    assert_non_null(strstr(msg, "HS256"));
    free(jwt);
    free(pub);
    /* PS256 and RS512 are not RS256 either; nor is "rs256" */
    static const char *const algs[] = {"PS256", "RS512", "rs256", "ES256"};
    for (size_t i = 0; i < 4; i++) {
        jwt = token(json_pack("{s:s, s:s}", "alg", algs[i], "kid", "k1"), claims(), NULL, NULL, 0);
        assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
        free(jwt);
    }
    /* no kid */
    jwt = token(json_pack("{s:s}", "alg", "RS256"), claims(), key_a, NULL, 0);
    assert_int_equal(check(jwt, NULL, msg, sizeof msg), AS_EAUTH);
    free(jwt);
}

/* A fetcher that serves whatever *text holds now, counting calls. */
struct fake_provider {
    char *text;
    int calls;
    int fail;
};

static enum as_code fake_fetch(void *ud, char **out, size_t *len, struct as_err *err)
{
    struct fake_provider *p = ud;
    p->calls++;
    if (p->fail)
        return as_errf(err, AS_ETRANSIENT, "provider down");
    *out = strdup(p->text);
    *len = strlen(p->text);
    return AS_OK;
}

static void test_key_rotation(void **state)
{
    (void)state;
    struct oidc_keycache kc;
    oidc_keycache_init(&kc);
    struct fake_provider p = {.text = jwks_text(key_a, "k1", NULL, NULL)};
    struct oidc_identity id;
    struct as_err err = {0};
    int64_t t = NOW * 1000;

    /* first use fetches */
    char *jwt1 = rs256(claims(), key_a, "k1");
    assert_int_equal(oidc_keycache_verify(&kc, jwt1, &expect, t, fake_fetch, &p, &id, &err), AS_OK);
    oidc_identity_clear(&id);
    assert_int_equal(p.calls, 1);
    /* known kid: no fetch */
    assert_int_equal(oidc_keycache_verify(&kc, jwt1, &expect, t + 1000, fake_fetch, &p, &id, &err),
                     AS_OK);
    oidc_identity_clear(&id);
    assert_int_equal(p.calls, 1);

    /* the provider rotates to k2, but only 10 s have passed: no refetch, refused */
    free(p.text);
    p.text = jwks_text(key_b, "k2", NULL, NULL);
    char *jwt2 = rs256(claims(), key_b, "k2");
    assert_int_equal(oidc_keycache_verify(&kc, jwt2, &expect, t + 10000, fake_fetch, &p, &id, &err),
                     AS_EAUTH);
    assert_non_null(strstr(err.msg, "k2"));
    assert_int_equal(p.calls, 1);
    /* 30 s after the last fetch: refetched once, accepted */
    assert_int_equal(oidc_keycache_verify(&kc, jwt2, &expect, t + 30000, fake_fetch, &p, &id, &err),
                     AS_OK);
    oidc_identity_clear(&id);
    assert_int_equal(p.calls, 2);
    /* the old key is gone from the set now */
    assert_int_equal(oidc_keycache_verify(&kc, jwt1, &expect, t + 31000, fake_fetch, &p, &id, &err),
                     AS_EAUTH);
    assert_int_equal(p.calls, 2);
    /* a stream of made-up kids costs one fetch per 30 s at most */
    char *bogus = rs256(claims(), key_b, "made-up");
    for (int i = 0; i < 50; i++)
        assert_int_equal(oidc_keycache_verify(&kc, bogus, &expect, t + 61000 + i * 100, fake_fetch,
                                              &p, &id, &err),
                         AS_EAUTH);
    assert_int_equal(p.calls, 3);
    /* a failing fetch is reported, and counts against the limit */
    p.fail = 1;
    assert_int_equal(oidc_keycache_verify(&kc, bogus, &expect, t + 100000, fake_fetch, &p, &id,
                                          &err),
                     AS_ETRANSIENT);
    assert_int_equal(p.calls, 4);
    /* a good token still verifies with the keys held */
    assert_int_equal(oidc_keycache_verify(&kc, jwt2, &expect, t + 100001, fake_fetch, &p, &id,
                                          &err),
                     AS_OK);
    oidc_identity_clear(&id);
    free(bogus);
    free(jwt1);
    free(jwt2);
    free(p.text);
    oidc_keycache_free(&kc);
}

static void test_discovery_and_jwks(void **state)
{
    (void)state;
    struct oidc_meta m;
    struct as_err err = {0};
    const char *doc = "{\"issuer\":\"" ISS "\",\"authorization_endpoint\":\"https://login.example/"
                      TID "/oauth2/v2.0/authorize\",\"token_endpoint\":\"https://login.example/"
                      TID "/oauth2/v2.0/token\",\"jwks_uri\":\"https://login.example/" TID
                      "/discovery/v2.0/keys\",\"id_token_signing_alg_values_supported\":[\"RS256\"]}";
    assert_int_equal(oidc_discovery_parse(doc, strlen(doc), &m, &err), AS_OK);
    assert_string_equal(m.issuer, ISS);
    assert_string_equal(m.tenant, TID);
    assert_non_null(strstr(m.jwks_uri, "/discovery/v2.0/keys"));
    const char *bad[] = {"[]", "{\"issuer\":\"" ISS "\"}", "not json",
                         "{\"issuer\":\"https://login.example\",\"authorization_endpoint\":\"https://"
                         "a/b\",\"token_endpoint\":\"https://a/b\",\"jwks_uri\":\"https://a/b\"}",
                         "{\"issuer\":\"ftp://x/t/v2.0\",\"authorization_endpoint\":\"https://"
                         "a/b\",\"token_endpoint\":\"https://a/b\",\"jwks_uri\":\"https://a/b\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(oidc_discovery_parse(bad[i], strlen(bad[i]), &m, &err), AS_EPERMANENT);

    struct oidc_jwks *k = NULL;
    const char *sets[] = {"{}", "{\"keys\":[]}", "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\"}]}",
                          "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"x\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                          "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        assert_int_equal(oidc_jwks_parse(sets[i], strlen(sets[i]), &k, &err), AS_EPERMANENT);
        assert_null(k);
    }
    /* an encryption key beside a signing key is skipped */
    json_t *set = json_pack("{s:[o, o]}", "keys", jwk(key_a, "enc"), jwk(key_b, "sig"));
    json_object_set_new(json_array_get(json_object_get(set, "keys"), 0), "use", json_string("enc"));
    char *t = json_dumps(set, JSON_COMPACT);
    assert_int_equal(oidc_jwks_parse(t, strlen(t), &k, &err), AS_OK);
    assert_int_equal(oidc_jwks_count(k), 1);
    oidc_jwks_free(k);
    free(t);
    json_decref(set);
}

static void test_pkce_and_matching(void **state)
{
    (void)state;
    char ch[48];
    /* RFC 7636, appendix B */
    assert_int_equal(oidc_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", ch), 0);
    assert_string_equal(ch, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    char r1[64], r2[64];
    assert_int_equal(oidc_random(32, r1, sizeof r1), 0);
    assert_int_equal(oidc_random(32, r2, sizeof r2), 0);
    assert_int_equal(strlen(r1), 43);
    assert_string_not_equal(r1, r2);

    const char *oid = "99999999-8888-7777-6666-555555555555";
    assert_true(oidc_identity_is("ada@contoso.com", "Ada@Contoso.com", oid));
    assert_false(oidc_identity_is("bob@contoso.com", "Ada@Contoso.com", oid));
    assert_true(oidc_identity_is("99999999-8888-7777-6666-555555555555", "x@y", oid));
    assert_true(oidc_identity_is("99999999-8888-7777-6666-55555555555A", "x@y",
                                 "99999999-8888-7777-6666-55555555555a"));
    assert_false(oidc_identity_is("99999999-8888-7777-6666-000000000000", "x@y", oid));
    /* an address never matches an oid, an empty UPN never matches */
    assert_false(oidc_identity_is("ada@contoso.com", "", oid));
    assert_false(oidc_identity_is("", "", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_token),       cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_claims_refused),   cmocka_unit_test(test_times),
        cmocka_unit_test(test_algorithms),       cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_discovery_and_jwks), cmocka_unit_test(test_pkce_and_matching),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
