/*
 * utf8.h - UTF-8 (RFC 3629): validating, measuring and writing sequences.
 *
 * The one implementation for the parsers (expressions, JSON locations), the
 * web form decoder, the HTML escaper and the JSON text builder.  Strict:
 * overlong forms, surrogates (U+D800..U+DFFF) and code points past
 * U+10FFFF are invalid.  Pure functions, thread-safe.
 */
#ifndef ASSENT_UTF8_H
#define ASSENT_UTF8_H

#include <stddef.h>

/*
 * Length (1..4) of the valid UTF-8 sequence at s, 1 for an ASCII byte
 * (NUL included), or 0 when s does not start a valid sequence.  Stops at the
 * first byte that is not a continuation byte, so a NUL-terminated string is
 * never read past its end.
 */
size_t utf8_valid_len(const unsigned char *s);

/* 1 when the NUL-terminated s is valid UTF-8, else 0. */
int utf8_valid(const char *s);

/*
 * Length (1..4) of the sequence lead byte c announces, without checking
 * it: 1 for ASCII and for bytes that cannot lead (continuation bytes), so a
 * loop stepping by it always moves on.
 */
size_t utf8_lead_len(unsigned char c);

/* Bytes (1..4) that code point cp takes in UTF-8. */
size_t utf8_encoded_len(unsigned cp);

/*
 * Write cp (at most U+10FFFF; the caller rejects surrogates) as UTF-8 into
 * buf, which has room for 4 bytes; returns the number written.  No NUL.
 */
size_t utf8_encode(unsigned cp, char *buf);

/* The 1-based character column of byte offset off in s (for messages). */
size_t utf8_column(const char *s, size_t off);

#endif
