/*
 * token.h - the cryptography of approval links: random link tokens, their
 * hashes, the anti-CSRF tokens of the confirmation page, and the hash that
 * freezes what an approval asks about.  All of it is OpenSSL libcrypto.
 *
 * Link tokens are 32 bytes (256 bits) from the OS CSPRNG (RAND_bytes),
 * base64url without padding: 43 characters.  Only SHA-256(token) as 64 hex
 * digits is ever stored; the token itself lives in the email and in memory
 * for the time it takes to send it.
 *
 * The encodings themselves (base64url, hex, SHA-256 hex) are base/encode.h.
 * All functions are thread-safe and keep no state.
 */
#ifndef ASSENT_WEB_TOKEN_H
#define ASSENT_WEB_TOKEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define TOKEN_LEN 43      /* characters of a link token */
#define TOKEN_HASH_LEN 64 /* hex digits of SHA-256 */
#define CSRF_SECRET_LEN 32

/* A new link token into out (>= TOKEN_LEN + 1 bytes) and its hash into hash
 * (>= TOKEN_HASH_LEN + 1).  AS_EIO when the CSPRNG fails. */
enum as_code token_new(char *out, size_t out_size, char *hash, size_t hash_size,
                       struct as_err *err) AS_WUR;

/* 1 when s has the shape of a link token (43 base64url characters), else 0.
 * Lets the web server refuse junk before touching the database. */
int token_well_formed(const char *s);

/* Hash of a link token (hex SHA-256 of its characters). */
void token_hash(const char *token, char *hex);

/*
 * The hash that freezes an approval's request: SHA-256 hex of the canonical
 * JSON of `request` = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENCODE_ANY).  Any later step checks what it executes against this
 * (manage_cas's approved_hash).  When canonical is not NULL it receives the
 * malloc'd canonical text (caller frees).  AS_ENOMEM on allocation failure.
 */
enum as_code token_request_hash(const json_t *request, char *hex, char **canonical,
                                struct as_err *err) AS_WUR;

/*
 * Anti-CSRF token of a confirmation page: base64url(issued_at_s as 8 bytes
 * big-endian || HMAC-SHA256(secret, "assent-csrf:" || link_hash || ":" ||
 * issued_at_s)).  It binds the form to the link it was served for, so the
 * token of one approver's page cannot decide another approver's link.
 * out needs >= 64 bytes.
 */
void token_csrf_issue(const unsigned char *secret, size_t secret_len, const char *link_hash,
                      int64_t now_ms, char *out, size_t out_size);

/*
 * Check a CSRF token for link_hash: well-formed, HMAC equal (constant-time),
 * issued no more than max_age_ms ago and not in the future (60 s slack).
 * Returns AS_OK, AS_EAUTH (forged/foreign) or AS_EEXPIRED (too old).
 */
enum as_code token_csrf_verify(const unsigned char *secret, size_t secret_len,
                               const char *link_hash, const char *csrf, int64_t now_ms,
                               int64_t max_age_ms) AS_WUR;

/* Constant-time comparison of two equal-length strings (hashes); 1 when equal. */
int token_equal(const char *a, const char *b);

#endif
