/* html.c - escaped HTML building and the shared page shell (see html.h). */
#include "base/html.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/utf8.h"

/*
 * The one stylesheet, inline because pages load nothing external.  Colours
 * meet WCAG AA contrast on white (#1a1a1a text, #0b5394 / #8a1c1c buttons
 * with white text); the layout is a single column that fits a phone.
 */
static const char page_css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1a1a1a;background:#f4f5f7}"
    "main{max-width:42rem;margin:0 auto;padding:1rem;background:#fff;min-height:100vh;"
    "overflow-wrap:anywhere}"
    "code{word-break:break-all}"
    "h1{font-size:1.4rem;line-height:1.3;margin:.5rem 0 1rem}"
    "h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    ".brand{font-size:.85rem;color:#4a4a4a;margin:0;text-transform:uppercase;letter-spacing:.05em}"
    ".msg{white-space:pre-wrap;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;vertical-align:top;padding:.4rem .5rem;border-bottom:1px solid #d0d4da;"
    "overflow-wrap:anywhere}"
    "th{font-weight:600;color:#333}th[scope=row]{width:35%}td th[scope=row]{width:auto}"
    "pre{background:#f0f2f5;padding:.75rem;overflow-x:auto;white-space:pre-wrap;"
    "overflow-wrap:anywhere;font-size:.9rem;border-radius:4px}"
    /* "used": highlighted (a protocol used in the last 30 days on approval
     * pages, a protocol that is on in the demo outbox's mailbox table). */
    ".used{background:#fff3cd;font-weight:600;padding:0 .3rem;border-radius:3px}"
    ".chip.used{border-color:#8a6d00}"
    ".chip{display:inline-block;margin:0 .3rem .3rem 0;padding:0 .3rem;border:1px solid #6b7280;"
    "border-radius:3px}"
    "label{display:block;font-weight:600;margin:1rem 0 .3rem}"
    "textarea{width:100%;min-height:6rem;font:inherit;padding:.5rem;border:1px solid #6b7280;"
    "border-radius:4px}"
    ".actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1rem}"
    "button{font:inherit;font-weight:600;padding:.75rem 1.5rem;border:0;border-radius:4px;"
    "color:#fff;cursor:pointer;min-width:8rem;flex:1 1 8rem}"
    "button.approve{background:#0b6e2e}button.reject{background:#8a1c1c}"
    "button:focus{outline:3px solid #1a1a1a;outline-offset:2px}"
    ".note{color:#4a4a4a;font-size:.9rem}"
    ".status{padding:.75rem 1rem;border-radius:4px;border:1px solid #6b7280;background:#f0f2f5}"
    ".status.ok{border-color:#0b6e2e;background:#e6f4ea}"
    ".status.bad{border-color:#8a1c1c;background:#fbeaea}"
    ".error{color:#8a1c1c;font-weight:600}";

static pthread_once_t csp_once = PTHREAD_ONCE_INIT;
static char csp_value[512];

void html_csp_for(const char *css, size_t len, char *out, size_t size)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char b64[4 * EVP_MAX_MD_SIZE / 3 + 8];
    EVP_Digest(css, len, md, &md_len, EVP_sha256(), NULL);
    encode_base64(md, md_len, b64, sizeof b64);
    snprintf(out, size,
             "default-src 'none'; style-src 'sha256-%s'; img-src 'none'; form-action 'self'; "
             "frame-ancestors 'none'; base-uri 'none'",
             b64);
}

static void csp_init(void)
{
    html_csp_for(page_css, sizeof page_css - 1, csp_value, sizeof csp_value);
}

const char *html_csp(void)
{
    pthread_once(&csp_once, csp_init);
    return csp_value;
}

static int reserve(struct html_buf *b, size_t more)
{
    if (b->failed)
        return 0;
    if (b->len + more + 1 > HTML_BUF_MAX) {
        b->failed = 1;
        return 0;
    }
    if (b->len + more + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->failed = 1;
        return 0;
    }
    b->p = np;
    b->cap = cap;
    return 1;
}

void html_rawn(struct html_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void html_raw(struct html_buf *b, const char *s)
{
    html_rawn(b, s, strlen(s));
}

void html_rawf(struct html_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        html_rawn(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void html_text(struct html_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && !b->failed) {
        /* Copy the longest run that needs no escaping in one go. */
        const unsigned char *run = p;
        while (*p && *p >= 0x20 && *p < 0x80 && *p != '&' && *p != '<' && *p != '>' &&
               *p != '"' && *p != '\'' && *p != 0x7f)
            p++;
        if (p > run)
            html_rawn(b, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        switch (*p) {
        case '&': html_raw(b, "&amp;"); p++; continue;
        case '<': html_raw(b, "&lt;"); p++; continue;
        case '>': html_raw(b, "&gt;"); p++; continue;
        case '"': html_raw(b, "&quot;"); p++; continue;
        case '\'': html_raw(b, "&#39;"); p++; continue;
        case '\t': case '\n': case '\r': html_rawn(b, (const char *)p, 1); p++; continue;
        default: break;
        }
        if (*p < 0x20 || *p == 0x7f) {
            p++; /* control character: dropped */
            continue;
        }
        size_t n = utf8_valid_len(p);
        if (n == 0) {
            html_raw(b, "\xef\xbf\xbd"); /* U+FFFD */
            p++;
        } else {
            html_rawn(b, (const char *)p, n);
            p += n;
        }
    }
}

int html_buf_ok(const struct html_buf *b)
{
    return !b->failed;
}

char *html_buf_take(struct html_buf *b, size_t *len)
{
    if (b->failed) {
        html_buf_free(b);
        *len = 0;
        return NULL;
    }
    if (!b->p && !reserve(b, 0)) {
        *len = 0;
        return NULL;
    }
    b->p[b->len] = '\0';
    char *p = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void html_buf_free(struct html_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

void html_page_begin(struct html_buf *b, const char *title)
{
    html_raw(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<meta name=\"referrer\" content=\"no-referrer\">"
                "<meta name=\"robots\" content=\"noindex, nofollow\"><title>");
    html_text(b, title);
    html_raw(b, " - Assent</title><style>");
    html_raw(b, page_css);
    html_raw(b, "</style></head>\n<body><main>\n<p class=\"brand\">Assent</p>\n");
}

void html_page_end(struct html_buf *b)
{
    html_raw(b, "\n</main></body></html>\n");
}
