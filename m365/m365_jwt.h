/*
 * m365_jwt.h - the signed JWT "client assertion" an app presents instead of a
 * client secret when it authenticates with a certificate (OAuth2 client
 * credentials, urn:ietf:params:oauth:client-assertion-type:jwt-bearer).
 *
 * The certificate is the one registered on the app (Entra admin center ->
 * App registrations -> Certificates & secrets); the private key never leaves
 * this process.  All cryptography is OpenSSL's libcrypto: this module only
 * assembles the header and claims and base64url-encodes them.
 *
 *   header  {"alg":"PS256","typ":"JWT","x5t#S256":"<b64url SHA-256 of cert DER>"}
 *           (RS256 adds "x5t", the SHA-1 thumbprint, as older libraries send)
 *   claims  {"aud":"<token endpoint>","iss":client_id,"sub":client_id,
 *            "jti":"<random GUID>","nbf":now,"iat":now,"exp":now+300}
 *
 * A struct m365_cert is immutable after loading and may be shared by threads.
 */
#ifndef ASSENT_M365_JWT_H
#define ASSENT_M365_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct m365_cert;

enum m365_jwt_alg {
    M365_JWT_PS256, /* RSASSA-PSS, SHA-256, salt = 32 (the current documented form) */
    M365_JWT_RS256, /* RSASSA-PKCS1-v1_5, SHA-256 (the older form) */
};

/*
 * Load the PEM certificate at cert_path and its PEM private key at key_path.
 * The key file is read with secret_file_read(), so a key file that group or
 * others can read is refused.  The key must be RSA (the identity platform
 * accepts RSA certificates) and must match the certificate.  Messages name
 * the files, never their content.  Caller frees with m365_cert_free().
 */
enum as_code m365_cert_load(const char *cert_path, const char *key_path, struct m365_cert **out,
                            struct as_err *err) AS_WUR;

void m365_cert_free(struct m365_cert *cert);

/* base64url (no padding) SHA-256 thumbprint of the certificate DER (borrowed). */
const char *m365_cert_x5t_s256(const struct m365_cert *cert);

/* Upper-case hex SHA-1 thumbprint, as the Entra admin center shows it (borrowed). */
const char *m365_cert_thumbprint_hex(const struct m365_cert *cert);

/*
 * Build and sign a client assertion for `client_id` with audience `aud` (the
 * token endpoint URL), valid from now_s for lifetime_s seconds.  *out is a
 * malloc'd compact JWT; caller frees it with free().  Thread-safe.
 */
enum as_code m365_jwt_assertion(const struct m365_cert *cert, enum m365_jwt_alg alg,
                                const char *client_id, const char *aud, int64_t now_s,
                                int lifetime_s, char **out, struct as_err *err) AS_WUR;

/* "PS256" / "RS256" -> alg; returns -1 when unknown. */
int m365_jwt_alg_parse(const char *name);

#endif
