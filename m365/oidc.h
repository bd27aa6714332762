/*
 * oidc.h - OpenID Connect with the Microsoft identity platform, the parts
 * that need no network: the discovery document, the JSON Web Key Set, ID
 * token verification, PKCE, and a key cache that refetches the key set when
 * a token names a key it does not know.
 *
 * Sign-in (web/signin.c) uses the authorization code flow with PKCE (S256),
 * `state` and `nonce`; this module checks what comes back.  An ID token is
 * accepted only when ALL of these hold (oidc_verify):
 *   - it is a compact JWS of three base64url parts (at most OIDC_JWT_MAX
 *     bytes) whose header says "alg": "RS256" - "none", HS256 and every
 *     other algorithm are refused before any key is looked at - and names a
 *     key ("kid") of the key set;
 *   - the RS256 signature verifies with that key (libcrypto
 *     EVP_DigestVerify, RSASSA-PKCS1-v1_5 with SHA-256; RSA keys of at
 *     least 2048 bits);
 *   - "iss" equals the discovered issuer exactly; "aud" is the client id (a
 *     string, or an array holding it); "tid" is the tenant of the issuer;
 *   - "exp" is after now and "nbf" (when present) before now, each with
 *     `skew_s` seconds of clock skew;
 *   - "nonce" equals the one stored with the flow (compared in constant
 *     time); a token without one is refused.
 * Single use of a nonce is the flow store's job: a flow's row (state,
 * nonce, PKCE verifier) is deleted when its callback takes it
 * (db/db_signin.h), so a replayed callback finds nothing.
 *
 * Every cryptographic operation is libcrypto's; this file parses JSON and
 * base64url (base/encode.h).  Everything is thread-safe: a key set is
 * immutable once parsed, and a key cache has its own lock.
 */
#ifndef ASSENT_M365_OIDC_H
#define ASSENT_M365_OIDC_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define OIDC_JWT_MAX (16 * 1024)  /* bytes of an ID token */
#define OIDC_JWKS_MAX_KEYS 64
#define OIDC_SKEW_S 120           /* clock skew allowed on exp and nbf */
#define OIDC_REFETCH_MIN_MS 30000 /* at most one key-set fetch per 30 s on unknown kids */
#define OIDC_URL_MAX 1024

/* What the discovery document says (the fields Assent uses). */
struct oidc_meta {
    char issuer[OIDC_URL_MAX];
    char authorization_endpoint[OIDC_URL_MAX];
    char token_endpoint[OIDC_URL_MAX];
    char jwks_uri[OIDC_URL_MAX];
    char tenant[128]; /* the first path segment of the issuer: the tenant id */
};

/*
 * Parse a discovery document ({login_url}/{tenant}/v2.0/.well-known/
 * openid-configuration) into *out.  AS_EPERMANENT when it is not JSON, a
 * field is missing or not an http(s) URL, or the issuer has no tenant
 * segment ("https://login.microsoftonline.com/{tid}/v2.0").
 */
enum as_code oidc_discovery_parse(const char *json, size_t len, struct oidc_meta *out,
                                  struct as_err *err) AS_WUR;

/* A parsed key set: RSA signing keys by kid.  Immutable; free with oidc_jwks_free. */
struct oidc_jwks;

/*
 * Parse a JWKS document ({"keys": [{"kty": "RSA", "kid", "n", "e", ...}]}).
 * Keys that are not RSA, or whose "use" is not "sig", are skipped; a key
 * with a malformed n or e, or under 2048 bits, is an error.  AS_EPERMANENT
 * when the document is not a key set or holds no usable key.
 */
enum as_code oidc_jwks_parse(const char *json, size_t len, struct oidc_jwks **out,
                             struct as_err *err) AS_WUR;
void oidc_jwks_free(struct oidc_jwks *k);
size_t oidc_jwks_count(const struct oidc_jwks *k);

/* What a token must say (all borrowed). */
struct oidc_expect {
    const char *issuer;    /* the discovered issuer */
    const char *client_id; /* aud */
    const char *tenant;    /* tid (from the issuer) */
    const char *nonce;     /* the flow's nonce */
    int64_t now_s;         /* seconds since the epoch */
    int skew_s;            /* 0: OIDC_SKEW_S */
};

/* Who signed in, from a verified token. */
struct oidc_identity {
    char upn[256];  /* preferred_username, else upn, else email ("" when none) */
    char oid[64];   /* the user's object id */
    char tid[64];
    char name[256]; /* display name ("" when none) */
    json_t *roles;  /* the "roles" claim (array of strings) or NULL; owned */
    json_t *groups; /* the "groups" claim (array of object ids) or NULL; owned */
};

/* Free what an identity owns (its roles and groups). */
void oidc_identity_clear(struct oidc_identity *id);

/*
 * Verify ID token `jwt` against key set `keys` and `x` (see the list at the
 * top).  On AS_OK *id is filled (clear it with oidc_identity_clear).
 * AS_ENOTFOUND: the header names a kid the set does not hold (the caller
 * may refetch the set; err says which kid); AS_EAUTH: refused (err says
 * why, naming no secret).  keys may be NULL (then every kid is unknown).
 */
enum as_code oidc_verify(const struct oidc_jwks *keys, const char *jwt,
                         const struct oidc_expect *x, struct oidc_identity *id,
                         struct as_err *err) AS_WUR;

/*
 * A key cache: the provider's current key set, refetched through `fetch`
 * when none is held yet, or when a token names an unknown kid and the last
 * fetch was at least OIDC_REFETCH_MIN_MS ago (so a stream of tokens with
 * made-up kids cannot make Assent hammer the provider).
 */
typedef enum as_code (*oidc_fetch_fn)(void *ud, char **jwks_json, size_t *len,
                                      struct as_err *err);

struct oidc_keycache {
    pthread_mutex_t lock;
    struct oidc_jwks *keys; /* NULL until the first fetch */
    int64_t fetched_at_ms;  /* the last fetch attempt (time of the caller's clock) */
    long n_fetches;         /* attempts, for tests and logs */
};

void oidc_keycache_init(struct oidc_keycache *kc);
void oidc_keycache_free(struct oidc_keycache *kc);

/*
 * oidc_verify with the cached keys; on an unknown kid (or no keys yet),
 * fetch the set again when allowed (see above; the fetched text is freed
 * here) and verify once more.  An unknown kid that may not be refetched
 * yet is AS_EAUTH.  Fetch failures are returned as the fetch gave them.
 * Serialised by the cache's lock (a fetch is rare).
 */
enum as_code oidc_keycache_verify(struct oidc_keycache *kc, const char *jwt,
                                  const struct oidc_expect *x, int64_t now_ms, oidc_fetch_fn fetch,
                                  void *ud, struct oidc_identity *id, struct as_err *err) AS_WUR;

/* `n` random bytes (CSPRNG), base64url, into out (4 * n / 3 + 2 bytes suffice); 0 or -1. */
int oidc_random(size_t n, char *out, size_t out_size);

/* The PKCE S256 challenge of verifier: base64url(SHA-256(verifier)), 43 characters + NUL. */
int oidc_pkce_challenge(const char *verifier, char out[48]);

/*
 * Whether a signed-in identity is approver `approver`: an address matches
 * upn case-insensitively; an approver written as an object id (a GUID)
 * matches oid (case-insensitively).  1 when it matches.
 */
int oidc_identity_is(const char *approver, const char *upn, const char *oid);

#endif
