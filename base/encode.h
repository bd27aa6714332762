/*
 * encode.h - the byte encodings Assent uses: hex, base64 and base64url
 * (RFC 4648), and SHA-256 as hex.  (Text encoding: base/utf8.h.)
 *
 * One implementation for the engine, the web pages, the steps, the tests and
 * the tenant simulator (which compiles this file in: it depends on libc and
 * libcrypto only).  Every function works on caller buffers, keeps no state
 * and is thread-safe.
 */
#ifndef ASSENT_ENCODE_H
#define ASSENT_ENCODE_H

#include <stddef.h>

/* Size of a SHA-256 hex digest with its NUL. */
#define ENCODE_SHA256_HEX_SIZE 65

/* Lower-case hex of in[0..len) into out, which holds 2 * len + 1 bytes. */
void encode_hex(const void *in, size_t len, char *out);

/* The value (0..15) of hex digit c, either case, or -1 when c is none. */
int encode_hex_value(int c);

/*
 * SHA-256 of data[0..len) as 64 lower-case hex characters and a NUL in out.
 * Returns 0, or -1 when libcrypto fails (out is then "").
 */
int encode_sha256_hex(const void *data, size_t len, char out[ENCODE_SHA256_HEX_SIZE]);

/*
 * base64url without padding (RFC 4648 section 5) of in[0..len) into out.
 * Returns the number of characters written before the NUL, or 0 (nothing
 * written) when out_size cannot hold them and the NUL.
 */
size_t encode_b64url(const void *in, size_t len, char *out, size_t out_size);

/* Standard base64 with '=' padding (RFC 4648 section 4); as encode_b64url. */
size_t encode_base64(const void *in, size_t len, char *out, size_t out_size);

/* Flags of encode_b64_decode. */
#define ENCODE_B64_URL 1       /* the url alphabet ('-', '_') instead of ('+', '/') */
#define ENCODE_B64_PADDED 2    /* '=' characters at the end are allowed (and ignored) */
#define ENCODE_B64_CANONICAL 4 /* the unused low bits of the last character must be 0,
                                * so each value has one spelling (tokens) */
#define ENCODE_B64_SKIP 8      /* MIME bodies: every character outside the alphabet
                                * (line breaks, padding) is skipped; no other check */

/*
 * Decode base64 in[0..len) into out (out_size bytes) as `flags` say.
 * Returns the number of bytes, or -1 when the input is not allowed (a
 * character outside the alphabet, a length no encoding has, non-zero unused
 * bits with ENCODE_B64_CANONICAL) or out is too small.  len / 4 * 3 + 2
 * bytes always suffice.
 */
long encode_b64_decode(const char *in, size_t len, int flags, unsigned char *out,
                       size_t out_size);

#endif
