/*
 * strbuf.h - a growable NUL-terminated byte string, the one buffer the
 * hand-built texts share (base/jsonbuf.h builds JSON on it; the outbox
 * page decodes mail bodies into it).
 *
 * Failure is latched: after an allocation fails (or the optional cap is
 * passed) every append is a no-op and strbuf_take returns NULL, so a caller
 * appends freely and checks once at the end.
 *
 * Usage: struct strbuf b = {0};  (b.max = N to cap it at N bytes)
 *        strbuf_add(&b, "..."); char *s = strbuf_take(&b);  (caller frees)
 */
#ifndef ASSENT_STRBUF_H
#define ASSENT_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *p;    /* NUL-terminated once anything was added; NULL before */
    size_t len; /* bytes, without the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* 0 = no cap; else the most bytes (NUL included) it may hold */
    int failed; /* latched: STRBUF_OOM or STRBUF_OVER (0 while all is well) */
};

/* Why a strbuf failed. */
enum { STRBUF_OOM = 1, STRBUF_OVER = 2 };

/* Append n bytes of s (which may hold NULs) / a NUL-terminated string / one byte. */
void strbuf_addn(struct strbuf *b, const char *s, size_t n);
void strbuf_add(struct strbuf *b, const char *s);
void strbuf_addc(struct strbuf *b, char c);

/* Append printf-style text. */
void strbuf_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The text, malloc'd (caller frees): "" when nothing was added, NULL when
 * an append failed.  b is spent either way.
 */
char *strbuf_take(struct strbuf *b);

/* Free the text and reset b (for a buffer given up on). */
void strbuf_free(struct strbuf *b);

#endif
