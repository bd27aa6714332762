/*
 * oidc.c - discovery, key sets, ID token verification and PKCE (see
 * oidc.h).  libcrypto does the cryptography (EVP_PKEY_fromdata for the RSA
 * keys, EVP_DigestVerify for RS256, RAND_bytes, SHA-256); this file only
 * parses JSON and base64url.
 */
#include "m365/oidc.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/encode.h"

#define MIN_RSA_BITS 2048
#define MAX_MODULUS_BYTES 1024 /* 8192-bit keys */

struct oidc_key {
    char kid[128];
    EVP_PKEY *pkey;
};

struct oidc_jwks {
    struct oidc_key *keys;
    size_t n;
};

/* ---- discovery --------------------------------------------------------------------------- */

static int http_url(const char *s)
{
    return s && (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) &&
           strlen(s) < OIDC_URL_MAX && !strpbrk(s, " \r\n\t\"<>");
}

static enum as_code meta_field(json_t *doc, const char *name, char *out, size_t size,
                               struct as_err *err)
{
    const char *v = json_string_value(json_object_get(doc, name));
    if (!http_url(v))
        return as_errf(err, AS_EPERMANENT,
                       "the discovery document has no usable \"%s\" (an http(s) URL)", name);
    snprintf(out, size, "%s", v);
    return AS_OK;
}

enum as_code oidc_discovery_parse(const char *json, size_t len, struct oidc_meta *out,
                                  struct as_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return as_errf(err, AS_EPERMANENT, "the discovery document is not a JSON object");
    }
    enum as_code rc = meta_field(doc, "issuer", out->issuer, sizeof out->issuer, err);
    if (!rc)
        rc = meta_field(doc, "authorization_endpoint", out->authorization_endpoint,
                        sizeof out->authorization_endpoint, err);
    if (!rc)
        rc = meta_field(doc, "token_endpoint", out->token_endpoint, sizeof out->token_endpoint,
                        err);
    if (!rc)
        rc = meta_field(doc, "jwks_uri", out->jwks_uri, sizeof out->jwks_uri, err);
    json_decref(doc);
    if (rc)
        return rc;
    /* https://login.microsoftonline.com/{tid}/v2.0: the tenant is the first segment. */
    const char *host = strstr(out->issuer, "://") + 3;
    const char *seg = strchr(host, '/');
    size_t n = seg ? strcspn(seg + 1, "/") : 0;
    if (!seg || n == 0 || n >= sizeof out->tenant)
        return as_errf(err, AS_EPERMANENT,
                       "the issuer \"%s\" names no tenant (expected https://HOST/TENANT/v2.0)",
                       out->issuer);
    memcpy(out->tenant, seg + 1, n);
    out->tenant[n] = '\0';
    return AS_OK;
}

/* ---- key sets ---------------------------------------------------------------------------- */

/* base64url text of a JSON member into out; the byte count, or -1. */
static long b64url_member(const json_t *o, const char *name, unsigned char *out, size_t size)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s || !*s)
        return -1;
    return encode_b64_decode(s, strlen(s), ENCODE_B64_URL | ENCODE_B64_PADDED, out, size);
}

/* An RSA public key from its modulus and exponent (big-endian bytes). */
static EVP_PKEY *rsa_from(const unsigned char *n, size_t n_len, const unsigned char *e,
                          size_t e_len)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL), *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    if (!bld || !bn_n || !bn_e || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

void oidc_jwks_free(struct oidc_jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pkey);
    free(k->keys);
    free(k);
}

size_t oidc_jwks_count(const struct oidc_jwks *k)
{
    return k ? k->n : 0;
}

enum as_code oidc_jwks_parse(const char *json, size_t len, struct oidc_jwks **out,
                             struct as_err *err)
{
    enum as_code rc = AS_OK;
    *out = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = json_object_get(doc, "keys");
    struct oidc_jwks *k = calloc(1, sizeof *k);
    unsigned char *n = malloc(MAX_MODULUS_BYTES + 8);
    unsigned char e[16];
    if (!k || !n) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (!json_is_array(keys)) {
        rc = as_errf(err, AS_EPERMANENT, "the key set is not a JSON object with a \"keys\" array");
        goto out;
    }
    size_t total = json_array_size(keys);
    if (total > OIDC_JWKS_MAX_KEYS) {
        rc = as_errf(err, AS_EPERMANENT, "the key set has %zu keys (at most %d)", total,
                     OIDC_JWKS_MAX_KEYS);
        goto out;
    }
    k->keys = calloc(total ? total : 1, sizeof *k->keys);
    if (!k->keys) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *jk;
    json_array_foreach(keys, i, jk)
    {
        const char *kty = json_string_value(json_object_get(jk, "kty"));
        const char *use = json_string_value(json_object_get(jk, "use"));
        const char *kid = json_string_value(json_object_get(jk, "kid"));
        if (!kty || strcmp(kty, "RSA") != 0 || (use && strcmp(use, "sig") != 0))
            continue;
        if (!kid || !*kid || strlen(kid) >= sizeof k->keys[0].kid) {
            rc = as_errf(err, AS_EPERMANENT, "key %zu of the key set has no usable kid", i);
            goto out;
        }
        long n_len = b64url_member(jk, "n", n, MAX_MODULUS_BYTES + 8);
        long e_len = b64url_member(jk, "e", e, sizeof e);
        if (n_len <= 0 || n_len > MAX_MODULUS_BYTES || e_len <= 0 || e_len > 8) {
            rc = as_errf(err, AS_EPERMANENT, "key \"%s\" of the key set has a malformed n or e",
                         kid);
            goto out;
        }
        EVP_PKEY *pkey = rsa_from(n, (size_t)n_len, e, (size_t)e_len);
        if (!pkey || EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
            EVP_PKEY_free(pkey);
            rc = as_errf(err, AS_EPERMANENT, "key \"%s\" of the key set is not an RSA key of at "
                                             "least %d bits", kid, MIN_RSA_BITS);
            goto out;
        }
        snprintf(k->keys[k->n].kid, sizeof k->keys[k->n].kid, "%s", kid);
        k->keys[k->n++].pkey = pkey;
    }
    if (k->n == 0)
        rc = as_errf(err, AS_EPERMANENT, "the key set holds no RSA signing key");
out:
    free(n);
    json_decref(doc);
    if (rc) {
        oidc_jwks_free(k);
        return rc;
    }
    *out = k;
    return AS_OK;
}

static EVP_PKEY *jwks_find(const struct oidc_jwks *k, const char *kid)
{
    for (size_t i = 0; k && i < k->n; i++)
        if (strcmp(k->keys[i].kid, kid) == 0)
            return k->keys[i].pkey;
    return NULL;
}

/* ---- tokens ------------------------------------------------------------------------------ */

void oidc_identity_clear(struct oidc_identity *id)
{
    json_decref(id->roles);
    json_decref(id->groups);
    memset(id, 0, sizeof *id);
}

/* One base64url part of a token as JSON (an object), or NULL. */
static json_t *part_json(const char *p, size_t len)
{
    unsigned char buf[OIDC_JWT_MAX];
    long n = encode_b64_decode(p, len, ENCODE_B64_URL, buf, sizeof buf);
    if (n <= 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int rs256_ok(EVP_PKEY *pkey, const char *signed_part, size_t signed_len,
                    const char *sig_b64, size_t sig_len)
{
    unsigned char sig[MAX_MODULUS_BYTES + 8];
    long n = encode_b64_decode(sig_b64, sig_len, ENCODE_B64_URL, sig, sizeof sig);
    if (n <= 0)
        return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, sig, (size_t)n, (const unsigned char *)signed_part,
                              signed_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* A NumericDate claim into *out: 1 when present and a number. */
static int time_claim(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    if (!json_is_number(v))
        return 0;
    *out = (int64_t)json_number_value(v);
    return 1;
}

static int aud_ok(const json_t *aud, const char *client_id)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), client_id) == 0;
    size_t i;
    json_t *a;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, a) if (json_is_string(a) && strcmp(json_string_value(a), client_id) == 0)
        return 1;
    return 0;
}

static int const_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static void claim_str(const json_t *claims, const char *name, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(claims, name));
    if (v && !*out && strlen(v) < size)
        snprintf(out, size, "%s", v);
}

static json_t *string_array(const json_t *v)
{
    size_t i;
    json_t *a;
    if (!json_is_array(v))
        return NULL;
    json_array_foreach((json_t *)v, i, a) if (!json_is_string(a)) return NULL;
    return json_deep_copy(v);
}

enum as_code oidc_verify(const struct oidc_jwks *keys, const char *jwt,
                         const struct oidc_expect *x, struct oidc_identity *id,
                         struct as_err *err)
{
    enum as_code rc = AS_EAUTH;
    json_t *hdr = NULL, *claims = NULL;
    memset(id, 0, sizeof *id);
    size_t len = jwt ? strnlen(jwt, OIDC_JWT_MAX + 1) : 0;
    if (len == 0 || len > OIDC_JWT_MAX) {
        as_errf(err, AS_EAUTH, "no ID token, or one over %d bytes", OIDC_JWT_MAX);
        goto out;
    }
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d2[1] == '\0') {
        as_errf(err, AS_EAUTH, "the ID token is not a signed JWT (three parts)");
        goto out;
    }
    hdr = part_json(jwt, (size_t)(d1 - jwt));
    claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!hdr || !claims) {
        as_errf(err, AS_EAUTH, "the ID token's header or claims are not base64url JSON objects");
        goto out;
    }
    /* The algorithm first: only RS256, whatever key the header names. */
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (!alg || strcmp(alg, "RS256") != 0) {
        as_errf(err, AS_EAUTH, "the ID token's algorithm \"%.32s\" is refused (RS256 only)",
                alg ? alg : "(none)");
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        as_errf(err, AS_EAUTH, "the ID token has critical header parameters Assent does not know");
        goto out;
    }
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    if (!kid || !*kid || strlen(kid) > 127) {
        as_errf(err, AS_EAUTH, "the ID token's header names no key (kid)");
        goto out;
    }
    EVP_PKEY *pkey = jwks_find(keys, kid);
    if (!pkey) {
        rc = as_errf(err, AS_ENOTFOUND, "the ID token is signed with key \"%s\", which the "
                                        "provider's key set does not hold", kid);
        goto out;
    }
    if (!rs256_ok(pkey, jwt, (size_t)(d2 - jwt), d2 + 1, strlen(d2 + 1))) {
        as_errf(err, AS_EAUTH, "the ID token's signature does not verify");
        goto out;
    }
    /* Signed by the provider: now what it says. */
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, x->issuer) != 0) {
        as_errf(err, AS_EAUTH, "the ID token's issuer is not %s", x->issuer);
        goto out;
    }
    if (!aud_ok(json_object_get(claims, "aud"), x->client_id)) {
        as_errf(err, AS_EAUTH, "the ID token is not for this application (aud)");
        goto out;
    }
    const char *tid = json_string_value(json_object_get(claims, "tid"));
    if (!tid || strcasecmp(tid, x->tenant) != 0) {
        as_errf(err, AS_EAUTH, "the ID token is from another tenant (tid)");
        goto out;
    }
    int skew = x->skew_s > 0 ? x->skew_s : OIDC_SKEW_S;
    int64_t exp = 0, nbf = 0;
    if (!time_claim(claims, "exp", &exp) || x->now_s >= exp + skew) {
        as_errf(err, AS_EAUTH, "the ID token has expired");
        goto out;
    }
    if (time_claim(claims, "nbf", &nbf) && x->now_s < nbf - skew) {
        as_errf(err, AS_EAUTH, "the ID token is not valid yet (nbf)");
        goto out;
    }
    const char *nonce = json_string_value(json_object_get(claims, "nonce"));
    if (!x->nonce || !*x->nonce || !nonce || !const_eq(nonce, x->nonce)) {
        as_errf(err, AS_EAUTH, "the ID token's nonce is missing or not this sign-in's");
        goto out;
    }
    claim_str(claims, "preferred_username", id->upn, sizeof id->upn);
    claim_str(claims, "upn", id->upn, sizeof id->upn);
    claim_str(claims, "email", id->upn, sizeof id->upn);
    claim_str(claims, "oid", id->oid, sizeof id->oid);
    claim_str(claims, "name", id->name, sizeof id->name);
    snprintf(id->tid, sizeof id->tid, "%s", tid);
    if (!id->oid[0]) {
        as_errf(err, AS_EAUTH, "the ID token names no user (oid)");
        goto out;
    }
    id->roles = string_array(json_object_get(claims, "roles"));
    id->groups = string_array(json_object_get(claims, "groups"));
    rc = AS_OK;
out:
    json_decref(hdr);
    json_decref(claims);
    if (rc)
        oidc_identity_clear(id);
    return rc;
}

/* ---- the key cache ------------------------------------------------------------------------ */

void oidc_keycache_init(struct oidc_keycache *kc)
{
    memset(kc, 0, sizeof *kc);
    pthread_mutex_init(&kc->lock, NULL);
}

void oidc_keycache_free(struct oidc_keycache *kc)
{
    oidc_jwks_free(kc->keys);
    kc->keys = NULL;
    pthread_mutex_destroy(&kc->lock);
}

static enum as_code refetch(struct oidc_keycache *kc, int64_t now_ms, oidc_fetch_fn fetch,
                            void *ud, struct as_err *err)
{
    char *text = NULL;
    size_t len = 0;
    struct oidc_jwks *k = NULL;
    kc->fetched_at_ms = now_ms;
    kc->n_fetches++;
    enum as_code rc = fetch(ud, &text, &len, err);
    if (!rc)
        rc = oidc_jwks_parse(text, len, &k, err);
    free(text);
    if (rc)
        return rc;
    oidc_jwks_free(kc->keys);
    kc->keys = k;
    return AS_OK;
}

enum as_code oidc_keycache_verify(struct oidc_keycache *kc, const char *jwt,
                                  const struct oidc_expect *x, int64_t now_ms, oidc_fetch_fn fetch,
                                  void *ud, struct oidc_identity *id, struct as_err *err)
{
    enum as_code rc;
    pthread_mutex_lock(&kc->lock);
    int may_fetch = !kc->n_fetches || now_ms - kc->fetched_at_ms >= OIDC_REFETCH_MIN_MS;
    if (!kc->keys) {
        if (!may_fetch) {
            rc = as_errf(err, AS_ETRANSIENT, "the provider's keys could not be fetched lately; "
                                             "try again in a minute");
            goto out;
        }
        if ((rc = refetch(kc, now_ms, fetch, ud, err)))
            goto out;
        may_fetch = 0;
    }
    rc = oidc_verify(kc->keys, jwt, x, id, err);
    if (rc == AS_ENOTFOUND && may_fetch) {
        /* The provider may have rotated its keys: fetch the set again, once. */
        if ((rc = refetch(kc, now_ms, fetch, ud, err)))
            goto out;
        rc = oidc_verify(kc->keys, jwt, x, id, err);
    }
    if (rc == AS_ENOTFOUND)
        rc = AS_EAUTH; /* err already says which kid */
out:
    pthread_mutex_unlock(&kc->lock);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------------ */

int oidc_random(size_t n, char *out, size_t out_size)
{
    unsigned char buf[64];
    if (n == 0 || n > sizeof buf || RAND_bytes(buf, (int)n) != 1)
        return -1;
    size_t w = encode_b64url(buf, n, out, out_size);
    OPENSSL_cleanse(buf, sizeof buf);
    return w ? 0 : -1;
}

int oidc_pkce_challenge(const char *verifier, char out[48])
{
    unsigned char md[32];
    unsigned int md_len = 0;
    if (EVP_Digest(verifier, strlen(verifier), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32)
        return -1;
    return encode_b64url(md, 32, out, 48) == 43 ? 0 : -1;
}

/* 8-4-4-4-12 hex digits. */
static int is_guid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, s++)
            if (encode_hex_value((unsigned char)*s) < 0)
                return 0;
        if (g < 4 && *s++ != '-')
            return 0;
    }
    return *s == '\0';
}

int oidc_identity_is(const char *approver, const char *upn, const char *oid)
{
    if (!approver || !*approver)
        return 0;
    if (is_guid(approver))
        return oid && strcasecmp(approver, oid) == 0;
    return upn && *upn && strcasecmp(approver, upn) == 0;
}
