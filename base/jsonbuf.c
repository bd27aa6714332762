/* jsonbuf.c - JSON text built by hand (see jsonbuf.h). */
#include "base/jsonbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

void jsonbuf_addn(struct jsonbuf *b, const char *s, size_t n)
{
    strbuf_addn(&b->text, s, n);
}

void jsonbuf_add(struct jsonbuf *b, const char *s)
{
    strbuf_add(&b->text, s);
}

void jsonbuf_add_i64(struct jsonbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    jsonbuf_addn(b, tmp, (size_t)n);
}

/* s as a JSON string literal: controls, quote and backslash escaped, invalid
 * UTF-8 (a step's error may quote a peer's bytes) replaced by U+FFFD. */
void jsonbuf_add_str(struct jsonbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson */
    jsonbuf_addn(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = utf8_valid_len((const unsigned char *)s);
            if (n) {
                s += n - 1;
                continue;
            }
            jsonbuf_addn(b, run, (size_t)(s - run));
            jsonbuf_add(b, "\\ufffd");
            run = s + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jsonbuf_addn(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\b')
            esc[1] = 'b'; /* \b and \f as jansson writes them */
        else if (c == '\f')
            esc[1] = 'f';
        else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        jsonbuf_add(b, esc);
        run = s + 1;
    }
    jsonbuf_addn(b, run, (size_t)(s - run));
    jsonbuf_addn(b, "\"", 1);
}

char *jsonbuf_take(struct jsonbuf *b)
{
    return strbuf_take(&b->text);
}
