/* token.c - link tokens, their hashes, CSRF tokens and request hashes (see token.h). */
#include "approvals/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"

#define TOKEN_BYTES 32
#define CSRF_MAC_BYTES 32

void token_hash(const char *token, char *hex)
{
    encode_sha256_hex(token, strlen(token), hex);
}

enum as_code token_new(char *out, size_t out_size, char *hash, size_t hash_size,
                       struct as_err *err)
{
    unsigned char raw[TOKEN_BYTES];
    if (out_size < TOKEN_LEN + 1 || hash_size < TOKEN_HASH_LEN + 1)
        return as_errf(err, AS_EINVAL, "token buffer too small");
    if (RAND_bytes(raw, sizeof raw) != 1)
        return as_errf(err, AS_EIO, "the system's random number generator failed");
    encode_b64url(raw, sizeof raw, out, out_size);
    OPENSSL_cleanse(raw, sizeof raw);
    token_hash(out, hash);
    return AS_OK;
}

int token_well_formed(const char *s)
{
    unsigned char raw[TOKEN_BYTES];
    return strnlen(s, TOKEN_LEN + 1) == TOKEN_LEN &&
           encode_b64_decode(s, TOKEN_LEN, ENCODE_B64_URL, raw, sizeof raw) == TOKEN_BYTES;
}

enum as_code token_request_hash(const json_t *request, char *hex, char **canonical,
                                struct as_err *err)
{
    char *text = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return as_errf(err, AS_ENOMEM, "cannot serialise the request");
    encode_sha256_hex(text, strlen(text), hex);
    if (canonical)
        *canonical = text;
    else
        free(text);
    return AS_OK;
}

static void csrf_mac(const unsigned char *secret, size_t secret_len, const char *link_hash,
                     uint64_t issued_s, unsigned char *mac)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "assent-csrf:%s:%llu", link_hash,
                     (unsigned long long)issued_s);
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, mac,
         &mac_len);
}

void token_csrf_issue(const unsigned char *secret, size_t secret_len, const char *link_hash,
                      int64_t now_ms, char *out, size_t out_size)
{
    unsigned char raw[8 + CSRF_MAC_BYTES];
    uint64_t issued = (uint64_t)(now_ms / 1000);
    for (int i = 0; i < 8; i++)
        raw[i] = (unsigned char)(issued >> (56 - 8 * i));
    csrf_mac(secret, secret_len, link_hash, issued, raw + 8);
    if (!encode_b64url(raw, sizeof raw, out, out_size) && out_size)
        out[0] = '\0';
}

enum as_code token_csrf_verify(const unsigned char *secret, size_t secret_len,
                               const char *link_hash, const char *csrf, int64_t now_ms,
                               int64_t max_age_ms)
{
    unsigned char raw[8 + CSRF_MAC_BYTES + 4];
    unsigned char mac[CSRF_MAC_BYTES];
    if (!csrf || strlen(csrf) > 64)
        return AS_EAUTH;
    long n = encode_b64_decode(csrf, strlen(csrf), ENCODE_B64_URL | ENCODE_B64_CANONICAL, raw,
                               sizeof raw);
    if (n != 8 + CSRF_MAC_BYTES)
        return AS_EAUTH;
    uint64_t issued = 0;
    for (int i = 0; i < 8; i++)
        issued = issued << 8 | raw[i];
    csrf_mac(secret, secret_len, link_hash, issued, mac);
    if (CRYPTO_memcmp(mac, raw + 8, CSRF_MAC_BYTES) != 0)
        return AS_EAUTH;
    if (issued > (uint64_t)INT64_MAX / 1000)
        return AS_EAUTH;
    int64_t issued_ms = (int64_t)issued * 1000;
    if (issued_ms > now_ms + 60000)
        return AS_EAUTH;
    if (now_ms - issued_ms > max_age_ms)
        return AS_EEXPIRED;
    return AS_OK;
}

int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}
