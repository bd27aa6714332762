/* strbuf.c - growable byte string (see strbuf.h). */
#include "engine/strbuf.h"

#include <stdlib.h>
#include <string.h>

void strbuf_addn(struct strbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > (size_t)-1 / 2 - b->len || (b->max && b->len + n + 1 > b->max)) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
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
