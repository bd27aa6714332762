/* strbuf.c - growable byte string (see strbuf.h). */
#include "base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_addn(struct strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > (size_t)-1 / 2 - b->len) {
        b->failed = STRBUF_OOM;
        return;
    }
    if (b->max && b->len + n + 1 > b->max) {
        b->failed = STRBUF_OVER;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = STRBUF_OOM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void strbuf_add(struct strbuf *b, const char *s)
{
    strbuf_addn(b, s, strlen(s));
}

void strbuf_addc(struct strbuf *b, char c)
{
    strbuf_addn(b, &c, 1);
}

char *strbuf_take(struct strbuf *b)
{
    char *p = b->p;
    int failed = b->failed;
    *b = (struct strbuf){0};
    if (failed) {
        free(p);
        return NULL;
    }
    return p ? p : strdup("");
}

void strbuf_addf(struct strbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    if (b->failed)
        return;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = STRBUF_OOM;
    } else if ((size_t)n < sizeof small) {
        strbuf_addn(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = STRBUF_OOM;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            strbuf_addn(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
}

void strbuf_free(struct strbuf *b)
{
    free(b->p);
    *b = (struct strbuf){0};
}
