/*
 * jsonbuf.h - build JSON text by hand where building a json_t and dumping it
 * would cost more than the work itself (the executor writes several small
 * JSON records per step).  Values are appended as raw text, integers, or
 * string literals escaped per RFC 8259 as jansson's json_dumps escapes them
 * (invalid UTF-8 becomes U+FFFD, so the result is always valid JSON text).
 *
 * Usage: struct jsonbuf b = {0}; jsonbuf_add(&b, "{\"n\":"); jsonbuf_add_i64(&b, 1);
 * jsonbuf_add(&b, "}"); char *text = jsonbuf_take(&b);   (caller frees)
 */
#ifndef ASSENT_JSONBUF_H
#define ASSENT_JSONBUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

struct jsonbuf {
    struct strbuf text; /* failure latched there: jsonbuf_take returns NULL */
};

/* Append n bytes / a NUL-terminated string of raw JSON text. */
void jsonbuf_addn(struct jsonbuf *b, const char *s, size_t n);
void jsonbuf_add(struct jsonbuf *b, const char *s);

/* Append a decimal integer. */
void jsonbuf_add_i64(struct jsonbuf *b, int64_t v);

/* Append s as a JSON string literal (quotes included). */
void jsonbuf_add_str(struct jsonbuf *b, const char *s);

/* The text (malloc'd, caller frees), or NULL after an allocation failure.  b is spent. */
char *jsonbuf_take(struct jsonbuf *b);

#endif
