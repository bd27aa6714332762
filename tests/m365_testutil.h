/*
 * m365_testutil.h - helpers for the Microsoft 365 client tests (header-only,
 * included by tests/unit/test_m365_*.c and tests/integration/m365_*.c after
 * tests/testutil.h): a self-signed certificate made with libcrypto, and
 * base64url decoding to look inside JWTs.
 */
#ifndef ASSENT_M365_TESTUTIL_H
#define ASSENT_M365_TESTUTIL_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Write a new RSA-2048 key (mode key_mode) and a self-signed certificate for
 * it into dir as cert.pem / key.pem; *cert_path and *key_path are malloc'd.
 * Returns 0 on success.
 */
static inline int mt_make_cert(const char *dir, mode_t key_mode, char **cert_path,
                               char **key_path)
{
    int rc = -1;
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *f = NULL;
    *cert_path = *key_path = NULL;
    if (!pkey || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"assent-test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, pkey, EVP_sha256()))
        goto out;
    size_t n = strlen(dir) + 16;
    *cert_path = malloc(n);
    *key_path = malloc(n);
    snprintf(*cert_path, n, "%s/cert.pem", dir);
    snprintf(*key_path, n, "%s/key.pem", dir);
    f = fopen(*cert_path, "w");
    if (!f || !PEM_write_X509(f, x))
        goto out;
    fclose(f);
    f = fopen(*key_path, "w");
    if (!f || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
        goto out;
    fclose(f);
    f = NULL;
    chmod(*key_path, key_mode);
    rc = 0;
out:
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Decode base64url (no padding) into a malloc'd buffer; *len its size. */
static inline unsigned char *mt_b64url_decode(const char *in, size_t in_len, size_t *len)
{
    size_t n = in_len, pad = (4 - n % 4) % 4;
    char *tmp = malloc(n + pad + 1);
    unsigned char *out = malloc(n + 4);
    for (size_t i = 0; i < n; i++)
        tmp[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    for (size_t i = 0; i < pad; i++)
        tmp[n + i] = '=';
    tmp[n + pad] = '\0';
    int r = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)(n + pad));
    free(tmp);
    if (r < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)r - pad;
    return out;
}

/* The PEM text of a file (for registering a certificate in the simulator state). */
static inline char *mt_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

#endif
