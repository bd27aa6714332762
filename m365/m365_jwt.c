/*
 * m365_jwt.c - certificate client assertion (see m365_jwt.h).
 *
 * Every cryptographic operation is libcrypto's (X509 parsing, digests,
 * EVP_DigestSign with PSS or PKCS#1 v1.5 padding, RAND_bytes).  This file
 * only formats JSON and base64url.
 */
#include "m365/m365_jwt.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/secret_file.h"

#define CERT_FILE_MAX (256 * 1024)
#define KEY_FILE_MAX (64 * 1024)

struct m365_cert {
    EVP_PKEY *key;
    char x5t_s256[64]; /* base64url of a 32-byte digest: 43 chars */
    char x5t_sha1[32]; /* base64url of a 20-byte digest: 27 chars */
    char thumb_hex[48];
};

/* Append the most recent libcrypto error text to a message buffer. */
static const char *ossl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, size, "unknown error");
        return buf;
    }
    ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

int m365_jwt_alg_parse(const char *name)
{
    if (name && strcmp(name, "PS256") == 0)
        return M365_JWT_PS256;
    if (name && strcmp(name, "RS256") == 0)
        return M365_JWT_RS256;
    return -1;
}

enum as_code m365_cert_load(const char *cert_path, const char *key_path, struct m365_cert **out,
                            struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365_cert *c = NULL;
    X509 *x = NULL;
    BIO *kbio = NULL;
    FILE *f = NULL;
    char *keytext = NULL;
    size_t keylen = 0;
    unsigned char *der = NULL;
    char why[256];

    *out = NULL;
    if (!cert_path || !*cert_path || !key_path || !*key_path)
        return as_errf(err, AS_EINVAL,
                       "certificate authentication needs both client_cert_file and client_key_file");
    c = calloc(1, sizeof *c);
    if (!c)
        return as_errf(err, AS_ENOMEM, "out of memory");

    /* The certificate is public: plain read, but bounded. */
    f = fopen(cert_path, "r");
    if (!f) {
        rc = as_errf(err, AS_EINVAL, "client_cert_file %s: cannot open", cert_path);
        goto out;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    if (!x) {
        rc = as_errf(err, AS_EINVAL, "client_cert_file %s: not a PEM certificate (%s)", cert_path,
                     ossl_reason(why, sizeof why));
        goto out;
    }

    rc = secret_file_read(key_path, KEY_FILE_MAX, 0, &keytext, &keylen, err);
    if (rc) {
        as_err_prefix(err, "client_key_file");
        goto out;
    }
    kbio = BIO_new_mem_buf(keytext, (int)keylen);
    if (!kbio) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    /* An empty passphrase callback: an encrypted key fails instead of prompting on stdin. */
    c->key = PEM_read_bio_PrivateKey(kbio, NULL, NULL, (void *)"");
    if (!c->key) {
        ERR_clear_error();
        rc = as_errf(err, AS_EINVAL,
                     "client_key_file %s: not an unencrypted PEM private key", key_path);
        goto out;
    }
    if (EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA) {
        rc = as_errf(err, AS_EINVAL, "client_key_file %s: the key must be RSA", key_path);
        goto out;
    }
    if (X509_check_private_key(x, c->key) != 1) {
        ERR_clear_error();
        rc = as_errf(err, AS_EINVAL, "client_key_file %s does not match client_cert_file %s",
                     key_path, cert_path);
        goto out;
    }

    int der_len = i2d_X509(x, &der);
    if (der_len <= 0 || der_len > CERT_FILE_MAX) {
        rc = as_errf(err, AS_EINVAL, "client_cert_file %s: cannot encode the certificate",
                     cert_path);
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL)) {
        rc = as_errf(err, AS_EIO, "SHA-256 failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    encode_b64url(md, md_len, c->x5t_s256, sizeof c->x5t_s256);
    if (!EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha1(), NULL)) {
        rc = as_errf(err, AS_EIO, "SHA-1 failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    encode_b64url(md, md_len, c->x5t_sha1, sizeof c->x5t_sha1);
    for (unsigned int i = 0; i < md_len && 2 * i + 2 < sizeof c->thumb_hex; i++)
        snprintf(c->thumb_hex + 2 * i, 3, "%02X", md[i]);

    *out = c;
    c = NULL;
out:
    OPENSSL_free(der);
    BIO_free(kbio);
    secret_free(keytext);
    X509_free(x);
    if (f)
        fclose(f);
    m365_cert_free(c);
    return rc;
}

void m365_cert_free(struct m365_cert *cert)
{
    if (!cert)
        return;
    EVP_PKEY_free(cert->key);
    free(cert);
}

const char *m365_cert_x5t_s256(const struct m365_cert *cert)
{
    return cert->x5t_s256;
}

const char *m365_cert_thumbprint_hex(const struct m365_cert *cert)
{
    return cert->thumb_hex;
}

/* base64url of a JSON object's compact text, malloc'd. */
static char *b64_json(const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    size_t size = 4 * ((len + 2) / 3) + 1;
    char *b = malloc(size);
    if (b)
        encode_b64url(text, len, b, size);
    free(text);
    return b;
}

enum as_code m365_jwt_assertion(const struct m365_cert *cert, enum m365_jwt_alg alg,
                                const char *client_id, const char *aud, int64_t now_s,
                                int lifetime_s, char **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t *hdr = NULL, *claims = NULL;
    char *h64 = NULL, *c64 = NULL, *jwt = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    char why[256];

    *out = NULL;
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return as_errf(err, AS_EIO, "random source failed: %s", ossl_reason(why, sizeof why));
    rnd[6] = (unsigned char)((rnd[6] & 0x0f) | 0x40); /* version 4 */
    rnd[8] = (unsigned char)((rnd[8] & 0x3f) | 0x80); /* variant 10 */
    char jti[40];
    snprintf(jti, sizeof jti,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
             rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);

    hdr = json_pack("{s:s, s:s, s:s}", "alg", alg == M365_JWT_PS256 ? "PS256" : "RS256", "typ",
                    "JWT", "x5t#S256", cert->x5t_s256);
    if (hdr && alg == M365_JWT_RS256)
        json_object_set_new(hdr, "x5t", json_string(cert->x5t_sha1));
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", client_id, "sub",
                       client_id, "jti", jti, "nbf", (json_int_t)now_s, "iat", (json_int_t)now_s,
                       "exp", (json_int_t)(now_s + lifetime_s));
    if (!hdr || !claims) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    h64 = b64_json(hdr);
    c64 = b64_json(claims);
    if (!h64 || !c64) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t hl = strlen(h64), cl = strlen(c64);
    size_t signing_len = hl + 1 + cl;

    md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, cert->key) != 1) {
        rc = as_errf(err, AS_EIO, "signing set-up failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    if (alg == M365_JWT_PS256 &&
        (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)) {
        rc = as_errf(err, AS_EIO, "PSS set-up failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    jwt = malloc(signing_len + 1 + 1024);
    if (!jwt) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(jwt, h64, hl);
    jwt[hl] = '.';
    memcpy(jwt + hl + 1, c64, cl);
    size_t sig_len = 0;
    if (EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)jwt, signing_len) != 1 ||
        sig_len == 0 || sig_len > 700) {
        rc = as_errf(err, AS_EIO, "signing failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    sig = malloc(sig_len);
    if (!sig) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)jwt, signing_len) != 1) {
        rc = as_errf(err, AS_EIO, "signing failed: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    jwt[signing_len] = '.';
    if (!encode_b64url(sig, sig_len, jwt + signing_len + 1, 1024)) {
        rc = as_errf(err, AS_EINVAL, "the signature (%zu bytes) is too long for a JWT", sig_len);
        goto out;
    }
    *out = jwt;
    jwt = NULL;
out:
    free(jwt);
    free(sig);
    EVP_MD_CTX_free(md);
    free(h64);
    free(c64);
    json_decref(hdr);
    json_decref(claims);
    return rc;
}
