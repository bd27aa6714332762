/*
 * test_m365_jwt.c - the certificate client assertion (signature verified with
 * libcrypto against the certificate's public key), key file permissions,
 * base64url, PowerShell quoting and the manage_cas request hash.
 */
#include "tests/testutil.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "m365/m365.h"
#include "m365/m365_jwt.h"
#include "tests/m365_testutil.h"
#include "approvals/token.h"

static json_t *decode_part(const char *p, size_t n)
{
    size_t len = 0;
    unsigned char *raw = mt_b64url_decode(p, n, &len);
    assert_non_null(raw);
    json_t *j = json_loadb((const char *)raw, len, 0, NULL);
    free(raw);
    assert_non_null(j);
    return j;
}

static void check_assertion(const char *cert_path, const char *jwt, const char *want_alg,
                            const struct m365_cert *cert)
{
    const char *dot1 = strchr(jwt, '.');
    assert_non_null(dot1);
    const char *dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    json_t *hdr = decode_part(jwt, (size_t)(dot1 - jwt));
    json_t *claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), want_alg);
    assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(hdr, "x5t#S256")),
                        m365_cert_x5t_s256(cert));
    assert_string_equal(json_string_value(json_object_get(claims, "aud")),
                        "https://login.example/t1/oauth2/v2.0/token");
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), "client-1");
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "client-1");
    assert_int_equal(json_integer_value(json_object_get(claims, "nbf")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 1700000300);
    assert_int_equal(strlen(json_string_value(json_object_get(claims, "jti"))), 36);

    /* x5t#S256 really is the SHA-256 of the certificate DER. */
    FILE *f = fopen(cert_path, "r");
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL);
    char b64[64];
    encode_b64url(md, md_len, b64, sizeof b64);
    assert_string_equal(b64, m365_cert_x5t_s256(cert));
    OPENSSL_free(der);

    /* The signature verifies with the certificate's public key. */
    size_t sig_len = 0;
    unsigned char *sig = mt_b64url_decode(dot2 + 1, strlen(dot2 + 1), &sig_len);
    assert_non_null(sig);
    EVP_PKEY *pub = X509_get_pubkey(x);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, pub), 1);
    if (strcmp(want_alg, "PS256") == 0) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256());
    }
    assert_int_equal(EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)jwt,
                                      (size_t)(dot2 - jwt)),
                     1);
    /* A changed payload does not verify. */
    char *tampered = strdup(jwt);
    tampered[dot1 - jwt + 3] ^= 1;
    EVP_MD_CTX_reset(mctx);
    pctx = NULL;
    EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, pub);
    if (strcmp(want_alg, "PS256") == 0) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    assert_int_not_equal(EVP_DigestVerify(mctx, sig, sig_len, (const unsigned char *)tampered,
                                          (size_t)(dot2 - jwt)),
                         1);
    free(tampered);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(pub);
    X509_free(x);
    free(sig);
    json_decref(hdr);
    json_decref(claims);
}

static void test_assertion_signatures(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("jwt");
    char *cert_path, *key_path;
    assert_int_equal(mt_make_cert(dir, 0600, &cert_path, &key_path), 0);
    struct m365_cert *cert = NULL;
    struct as_err err = {0};
    assert_int_equal(m365_cert_load(cert_path, key_path, &cert, &err), AS_OK);
    assert_int_equal(strlen(m365_cert_thumbprint_hex(cert)), 40);
    for (int alg = 0; alg < 2; alg++) {
        char *jwt = NULL;
        assert_int_equal(m365_jwt_assertion(cert, alg == 0 ? M365_JWT_PS256 : M365_JWT_RS256,
                                            "client-1", "https://login.example/t1/oauth2/v2.0/token",
                                            1700000000, 300, &jwt, &err),
                         AS_OK);
        check_assertion(cert_path, jwt, alg == 0 ? "PS256" : "RS256", cert);
        free(jwt);
    }
    m365_cert_free(cert);
    tu_rmrf(dir);
    free(dir);
    free(cert_path);
    free(key_path);
}

static void test_key_file_rules(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("jwtperm");
    char *cert_path, *key_path;
    assert_int_equal(mt_make_cert(dir, 0644, &cert_path, &key_path), 0);
    struct m365_cert *cert = NULL;
    struct as_err err = {0};
    /* A key others can read is refused, and the message names the file, not the key. */
    assert_int_equal(m365_cert_load(cert_path, key_path, &cert, &err), AS_EINVAL);
    assert_null(cert);
    assert_non_null(strstr(err.msg, "key.pem"));
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(strstr(err.msg, "PRIVATE KEY"));

    /* A key that does not belong to the certificate. */
    char *dir2 = tu_tmpdir("jwtother");
    char *cert2, *key2;
    assert_int_equal(mt_make_cert(dir2, 0600, &cert2, &key2), 0);
    assert_int_equal(m365_cert_load(cert_path, key2, &cert, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "does not match"));

    /* Not a certificate. */
    assert_int_equal(m365_cert_load(key2, key2, &cert, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "client_cert_file"));
    assert_int_equal(m365_cert_load("", key2, &cert, &err), AS_EINVAL);

    tu_rmrf(dir);
    tu_rmrf(dir2);
    free(dir);
    free(dir2);
    free(cert_path);
    free(key_path);
    free(cert2);
    free(key2);
}

static void test_jwt_alg(void **state)
{
    (void)state;
    assert_int_equal(m365_jwt_alg_parse("PS256"), M365_JWT_PS256);
    assert_int_equal(m365_jwt_alg_parse("RS256"), M365_JWT_RS256);
    assert_int_equal(m365_jwt_alg_parse("HS256"), -1);
}

static void test_powershell(void **state)
{
    (void)state;
    char *q = m365_ps_quote("o'brien@x.com");
    assert_string_equal(q, "'o''brien@x.com'");
    free(q);
    /* U+2019 is a single quote to PowerShell too. */
    q = m365_ps_quote("a\xE2\x80\x99" "b");
    assert_string_equal(q, "'a\xE2\x80\x99\xE2\x80\x99" "b'");
    free(q);
    json_t *p = json_pack("{s:s, s:b, s:b, s:b, s:n}", "Identity", "o'b@x", "PopEnabled", 0,
                          "ImapEnabled", 0, "SmtpClientAuthenticationDisabled", 1, "X", "Y");
    json_object_del(p, "X");
    char *cmd = m365_powershell_command("Set-CASMailbox", p);
    assert_string_equal(cmd, "Set-CASMailbox -Identity 'o''b@x' -ImapEnabled $false "
                             "-PopEnabled $false -SmtpClientAuthenticationDisabled $true");
    free(cmd);
    json_object_set_new(p, "SmtpClientAuthenticationDisabled", json_null());
    json_object_set_new(p, "Evil;Name", json_string("x'; Remove-Mailbox"));
    cmd = m365_powershell_command("Set-CASMailbox", p);
    assert_non_null(strstr(cmd, "-SmtpClientAuthenticationDisabled $null"));
    assert_non_null(strstr(cmd, "-EvilName 'x''; Remove-Mailbox'"));
    free(cmd);
    json_decref(p);
}

static void test_request_hash(void **state)
{
    (void)state;
    char h1[65], h2[65], h3[65];
    struct as_err err = {0};
    json_t *a = json_pack("{s:b, s:b}", "PopEnabled", 0, "ImapEnabled", 0);
    json_t *b = json_pack("{s:b, s:b}", "ImapEnabled", 0, "PopEnabled", 0);
    assert_int_equal(m365_cas_request_hash("u@x", a, h1, &err), AS_OK);
    assert_int_equal(m365_cas_request_hash("u@x", b, h2, &err), AS_OK);
    assert_string_equal(h1, h2); /* key order does not matter */
    assert_int_equal(m365_cas_request_hash("v@x", a, h3, &err), AS_OK);
    assert_string_not_equal(h1, h3);
    /* The documented canonical form: SHA-256 of the compact, sorted JSON. */
    const char *canon = "{\"identity\":\"u@x\",\"settings\":{\"ImapEnabled\":false,\"PopEnabled\":false}}";
    char want[65];
    assert_int_equal(encode_sha256_hex(canon, strlen(canon), want), 0);
    assert_string_equal(h1, want);
    /* The approval step freezes its "request" object with web/token.c: the
     * same request must give the same hash, or approved changes never run. */
    json_t *req = json_pack("{s:O, s:s}", "settings", a, "identity", "u@x");
    char h4[65];
    assert_int_equal(token_request_hash(req, h4, NULL, &err), AS_OK);
    assert_string_equal(h4, h1);
    json_decref(req);
    json_decref(a);
    json_decref(b);
}

static void test_legacy_apps(void **state)
{
    (void)state;
    assert_true(m365_client_app_is_legacy("IMAP4"));
    assert_true(m365_client_app_is_legacy("imap4"));
    assert_true(m365_client_app_is_legacy("AutoDiscover"));
    assert_true(m365_client_app_is_legacy("Unknown"));
    assert_false(m365_client_app_is_legacy("Browser"));
    assert_false(m365_client_app_is_legacy("mobile apps and desktop clients"));
    assert_false(m365_client_app_is_legacy(NULL));
    assert_true(m365_cas_property_known("PopEnabled"));
    assert_false(m365_cas_property_known("popenabled"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assertion_signatures), cmocka_unit_test(test_key_file_rules),
        cmocka_unit_test(test_jwt_alg),              cmocka_unit_test(test_powershell),
        cmocka_unit_test(test_request_hash),         cmocka_unit_test(test_legacy_apps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
