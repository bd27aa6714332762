/*
 * html.h - building HTML safely: a growable, size-capped text buffer whose
 * only way to add user text is escaped, and the shell every Assent page
 * shares (doctype, viewport, inline stylesheet, no external assets, no
 * script).
 *
 * Errors latch: after an allocation failure or when the cap is hit, further
 * appends do nothing and html_buf_ok() returns 0, so builders check once at
 * the end.
 */
#ifndef ASSENT_WEB_HTML_H
#define ASSENT_WEB_HTML_H

#include <stddef.h>

#include "base/error.h"

#define HTML_BUF_MAX (1024 * 1024) /* no page of Assent is larger */

struct html_buf {
    char *p;     /* NUL-terminated once anything was added */
    size_t len;
    size_t cap;
    int failed;  /* latched: out of memory or over HTML_BUF_MAX */
};

/* Raw text (trusted markup written by Assent itself). */
void html_raw(struct html_buf *b, const char *s);
void html_rawn(struct html_buf *b, const char *s, size_t n);
void html_rawf(struct html_buf *b, const char *fmt, ...) AS_PRINTF(2, 3);

/* User text, escaped for element content and quoted attribute values:
 * & < > " ' become entities; invalid UTF-8 bytes become U+FFFD; NUL and
 * other C0 controls except TAB/LF/CR are dropped. */
void html_text(struct html_buf *b, const char *s);

/* 1 while no error latched. */
int html_buf_ok(const struct html_buf *b);

/* Take the text (caller frees) and reset b; NULL when an error latched (b is
 * freed then).  *len receives the length. */
char *html_buf_take(struct html_buf *b, size_t *len);

void html_buf_free(struct html_buf *b);

/* Begin a page: doctype, <head> with title (escaped), viewport, the
 * stylesheet, then <body><main>.  End it with html_page_end. */
void html_page_begin(struct html_buf *b, const char *title);
void html_page_end(struct html_buf *b);

/*
 * The Content-Security-Policy of every Assent page: default-src 'none',
 * the stylesheet allowed by its SHA-256 hash, form-action 'self',
 * frame-ancestors 'none', base-uri 'none'.  Static string, computed once.
 */
const char *html_csp(void);

/* The same policy for another page's stylesheet css (len bytes): allowed
 * by its SHA-256 alone, no script, into out (512 bytes are enough). */
void html_csp_for(const char *css, size_t len, char *out, size_t size);

#endif
