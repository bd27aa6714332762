/*
 * mail_mime.c - RFC 5322/MIME message builder (see mail_mime.h).
 *
 * Everything is written into one growing buffer with a hard cap.  Header
 * lines are folded at 78 columns; encoded-words carry at most 39 octets of
 * UTF-8 (52 base64 characters, 64 with the "=?UTF-8?B?" wrapper), never
 * splitting a character, so each one decodes to valid UTF-8 on its own.
 */
#include "steps/mail_mime.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/strbuf.h"

#define LINE_MAX_SOFT 78 /* RFC 5322 2.1.1 SHOULD */
#define EW_MAX_OCTETS 39 /* UTF-8 octets per encoded-word */
#define ADDR_MAX 254
#define LOCAL_MAX 64
#define NAME_MAX_OCTETS 512

/* ---- growing buffer: base/strbuf.h, capped at MAIL_MIME_MAX_SIZE ------- */

#define MIME_BUF {.max = MAIL_MIME_MAX_SIZE}

/* ---- UTF-8 --------------------------------------------------------------- */

int mail_mime_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < n + 1)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* Length of the UTF-8 sequence starting with byte c (1 for ASCII and stray bytes). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c >= 0xF0)
        return 4;
    if (c >= 0xE0)
        return 3;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/* ---- base64 -------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_add(struct strbuf *b, const unsigned char *in, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        q[0] = b64[(v >> 18) & 63];
        q[1] = b64[(v >> 12) & 63];
        q[2] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        strbuf_addn(b, q, 4);
    }
}

/* ---- bodies -------------------------------------------------------------- */

/* Copy `in` with every line break (CRLF, LF, lone CR) turned into CRLF. */
static void add_crlf_normalised(struct strbuf *b, const char *in, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            strbuf_addn(b, in + start, i - start);
            strbuf_addn(b, "\r\n", 2);
            if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
            start = i + 1;
        }
    }
    strbuf_addn(b, in + start, len - start);
}

char *mail_mime_base64_body(const char *in, size_t len)
{
    struct strbuf canon = MIME_BUF, out = MIME_BUF;
    add_crlf_normalised(&canon, in, len);
    if (canon.failed) {
        free(canon.p);
        return NULL;
    }
    /* 57 input octets per 76-character line. */
    for (size_t i = 0; i < canon.len; i += 57) {
        size_t n = canon.len - i < 57 ? canon.len - i : 57;
        b64_add(&out, (const unsigned char *)canon.p + i, n);
        strbuf_addn(&out, "\r\n", 2);
    }
    free(canon.p);
    return strbuf_take(&out);
}

char *mail_mime_qp(const char *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    struct strbuf b = MIME_BUF;
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\r' || c == '\n') {
            strbuf_addn(&b, "\r\n", 2);
            col = 0;
            if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
            continue;
        }
        int eol_next = i + 1 >= len || in[i + 1] == '\r' || in[i + 1] == '\n';
        for (int pass = 0; pass < 2; pass++) {
            int literal;
            if (c == ' ' || c == '\t')
                literal = !eol_next; /* trailing white space would be stripped in transit */
            else
                literal = c >= 33 && c <= 126 && c != '=';
            /* At a line start, "." could meet a transport that does not
             * dot-stuff and "From " an mbox that escapes it: encode both. */
            if (literal && col == 0 &&
                (c == '.' || (c == 'F' && len - i >= 5 && memcmp(in + i, "From ", 5) == 0)))
                literal = 0;
            size_t need = literal ? 1 : 3;
            /* Keep room for the soft break "=" in 76 columns. */
            if (col + need > 75 && pass == 0) {
                strbuf_addn(&b, "=\r\n", 3);
                col = 0;
                continue; /* re-decide: the line-start rules may apply now */
            }
            if (literal) {
                strbuf_addc(&b, (char)c);
            } else {
                char e[3] = {'=', hex[c >> 4], hex[c & 15]};
                strbuf_addn(&b, e, 3);
            }
            col += need;
            break;
        }
    }
    return strbuf_take(&b);
}

/* ---- header fields ------------------------------------------------------- */

/* Header output with a column count for folding. */
struct hdr {
    struct strbuf *b;
    size_t col;
};

static void hdr_start(struct hdr *h, struct strbuf *b, const char *name)
{
    h->b = b;
    strbuf_add(b, name);
    strbuf_addc(b, ':');
    h->col = strlen(name) + 1;
}

/* Append a token that must stay whole, preceded by one space, folding first
 * when it would pass the soft limit (never on an empty line). */
static void hdr_token(struct hdr *h, const char *tok, size_t n)
{
    if (h->col + 1 + n > LINE_MAX_SOFT && h->col > 1) {
        strbuf_addn(h->b, "\r\n", 2);
        h->col = 0;
    }
    strbuf_addc(h->b, ' ');
    strbuf_addn(h->b, tok, n);
    h->col += 1 + n;
}

/* Append a token directly after the previous one (no space): "," after an address. */
static void hdr_glue(struct hdr *h, const char *tok)
{
    strbuf_add(h->b, tok);
    h->col += strlen(tok);
}

static void hdr_end(struct hdr *h)
{
    strbuf_addn(h->b, "\r\n", 2);
}

/* Encoded-words for a UTF-8 string, as hdr tokens. */
static void hdr_encoded_words(struct hdr *h, const char *s, size_t len)
{
    size_t i = 0;
    do {
        size_t n = 0;
        while (i + n < len) {
            size_t k = utf8_seq_len((unsigned char)s[i + n]);
            if (i + n + k > len)
                k = len - i - n;
            if (n + k > EW_MAX_OCTETS && n > 0)
                break;
            n += k;
        }
        struct strbuf w = MIME_BUF;
        strbuf_add(&w, "=?UTF-8?B?");
        b64_add(&w, (const unsigned char *)s + i, n);
        strbuf_add(&w, "?=");
        if (w.failed) {
            h->b->failed = w.failed;
            free(w.p);
            return;
        }
        hdr_token(h, w.p, w.len);
        free(w.p);
        i += n;
    } while (i < len);
}

/* Copy of s with every control character (C0, DEL) replaced by a space. */
static char *decontrol(const char *s)
{
    char *c = strdup(s);
    if (c)
        for (char *p = c; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F)
                *p = ' ';
    return c;
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
            return 0;
    return 1;
}

/* Write an unstructured value (already free of control characters). */
static void hdr_unstructured(struct hdr *h, const char *v)
{
    size_t len = strlen(v);
    if (len == 0)
        return;
    int plain = printable_ascii(v) && !strstr(v, "=?");
    /* A word too long to fold (the line would pass 998) goes encoded too. */
    for (size_t i = 0, run = 0; plain && i < len; i++) {
        run = v[i] == ' ' ? 0 : run + 1;
        if (run > 900)
            plain = 0;
    }
    if (!plain) {
        hdr_encoded_words(h, v, len);
        return;
    }
    /* Fold only before a space that follows a non-space, so that no
     * continuation line is white space only and unfolding gives v back. */
    strbuf_addc(h->b, ' ');
    h->col++;
    size_t i = 0;
    while (i < len) {
        size_t j = i + 1;
        while (j < len && !(v[j] == ' ' && v[j - 1] != ' '))
            j++;
        /* segment [i, j) starts with a fold point (a space) unless i == 0 */
        int all_space = 1;
        for (size_t k = i; k < j; k++)
            if (v[k] != ' ')
                all_space = 0;
        if (i > 0 && !all_space && h->col + (j - i) > LINE_MAX_SOFT && h->col > 1) {
            strbuf_addn(h->b, "\r\n", 2);
            h->col = 0;
        }
        strbuf_addn(h->b, v + i, j - i);
        h->col += j - i;
        i = j;
    }
}

char *mail_mime_header_text(const char *name, const char *value)
{
    if (!mail_mime_utf8_valid(value, strlen(value)))
        return NULL;
    char *v = decontrol(value);
    if (!v)
        return NULL;
    struct strbuf b = MIME_BUF;
    struct hdr h;
    hdr_start(&h, &b, name);
    hdr_unstructured(&h, v);
    hdr_end(&h);
    free(v);
    return strbuf_take(&b);
}

/* ---- addresses ----------------------------------------------------------- */

static int atext(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static enum as_code check_addr_spec(const char *a, struct as_err *err)
{
    const char *at = strrchr(a, '@');
    size_t len = strlen(a);
    if (!at || at == a || !at[1])
        return as_errf(err, AS_EINVAL, "\"%s\" is not an email address (local@domain)", a);
    if (len > ADDR_MAX)
        return as_errf(err, AS_EINVAL, "email address longer than %d octets", ADDR_MAX);
    if ((size_t)(at - a) > LOCAL_MAX)
        return as_errf(err, AS_EINVAL, "\"%s\": local part longer than %d octets", a, LOCAL_MAX);
    for (const char *p = a; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80)
            return as_errf(err, AS_EINVAL, "\"%s\": non-ASCII addresses are not supported", a);
        if (c == '.') {
            if (p == a || p + 1 == at || p[1] == '.')
                return as_errf(err, AS_EINVAL, "\"%s\": misplaced dot in the local part", a);
        } else if (!atext(c)) {
            return as_errf(err, AS_EINVAL, "\"%s\": character '%c' not allowed in an address", a,
                           c);
        }
    }
    const char *d = at + 1;
    if (*d == '[') {
        size_t dl = strlen(d);
        if (dl < 3 || d[dl - 1] != ']')
            return as_errf(err, AS_EINVAL, "\"%s\": bad address literal", a);
        for (const char *p = d + 1; p < d + dl - 1; p++)
            if (!(isxdigit((unsigned char)*p) || *p == '.' || *p == ':' ||
                  (p - d <= 5 && isalpha((unsigned char)*p)))) /* "IPv6:" tag */
                return as_errf(err, AS_EINVAL, "\"%s\": bad address literal", a);
        return AS_OK;
    }
    size_t label = 0;
    for (const char *p = d;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.' || c == '\0') {
            if (label == 0 || p[-1] == '-' || p[-(ptrdiff_t)label] == '-')
                return as_errf(err, AS_EINVAL, "\"%s\": bad domain", a);
            if (label > 63)
                return as_errf(err, AS_EINVAL, "\"%s\": domain label longer than 63", a);
            if (!c)
                break;
            label = 0;
            continue;
        }
        if (c >= 0x80)
            return as_errf(err, AS_EINVAL,
                           "\"%s\": non-ASCII domain (write it in its xn-- form)", a);
        if (!(isalnum(c) || c == '-'))
            return as_errf(err, AS_EINVAL, "\"%s\": character '%c' not allowed in a domain", a,
                           c);
        label++;
    }
    return AS_OK;
}

static char *trim_dup(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return strndup(s, n);
}

void mail_addr_clear(struct mail_addr *a)
{
    if (!a)
        return;
    free(a->name);
    free(a->addr);
    a->name = a->addr = NULL;
}

const char *mail_addr_domain(const struct mail_addr *a)
{
    const char *at = a->addr ? strrchr(a->addr, '@') : NULL;
    return at ? at + 1 : "";
}

enum as_code mail_addr_parse(const char *in, struct mail_addr *out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    memset(out, 0, sizeof *out);
    if (!in)
        return as_errf(err, AS_EINVAL, "missing email address");
    size_t len = strlen(in);
    if (len > ADDR_MAX + NAME_MAX_OCTETS)
        return as_errf(err, AS_EINVAL, "email address too long (%zu octets)", len);
    for (const char *p = in; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return as_errf(err, AS_EINVAL,
                           "email address contains a control character (CR, LF, ...)");
    if (!mail_mime_utf8_valid(in, len))
        return as_errf(err, AS_EINVAL, "email address is not valid UTF-8");
    const char *lt = strrchr(in, '<');
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt)
            return as_errf(err, AS_EINVAL, "\"%s\": missing '>'", in);
        for (const char *p = gt + 1; *p; p++)
            if (*p != ' ' && *p != '\t')
                return as_errf(err, AS_EINVAL, "\"%s\": text after '>'", in);
        out->addr = trim_dup(lt + 1, (size_t)(gt - lt - 1));
        char *name = trim_dup(in, (size_t)(lt - in));
        if (!out->addr || !name) {
            free(name);
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto fail;
        }
        size_t nl = strlen(name);
        if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
            /* Unquote a quoted-string: \x stands for x. */
            size_t j = 0;
            for (size_t i = 1; i + 1 < nl; i++) {
                if (name[i] == '\\' && i + 2 < nl)
                    i++;
                name[j++] = name[i];
            }
            name[j] = '\0';
        } else if (strchr(name, '"')) {
            free(name);
            rc = as_errf(err, AS_EINVAL, "\"%s\": unbalanced quotes in the display name", in);
            goto fail;
        }
        if (*name)
            out->name = name;
        else
            free(name);
    } else {
        if (strchr(in, '>'))
            return as_errf(err, AS_EINVAL, "\"%s\": '>' without '<'", in);
        out->addr = trim_dup(in, len);
        if (!out->addr)
            return as_errf(err, AS_ENOMEM, "out of memory");
    }
    rc = check_addr_spec(out->addr, err);
    if (rc)
        goto fail;
    return AS_OK;
fail:
    mail_addr_clear(out);
    return rc;
}

/* A display name as tokens: a quoted-string when short printable ASCII,
 * else encoded-words. */
static void hdr_display_name(struct hdr *h, const char *name)
{
    size_t n = strlen(name);
    if (printable_ascii(name) && n <= 60 && !strstr(name, "=?")) {
        struct strbuf q = MIME_BUF;
        strbuf_addc(&q, '"');
        for (const char *p = name; *p; p++) {
            if (*p == '"' || *p == '\\')
                strbuf_addc(&q, '\\');
            strbuf_addc(&q, *p);
        }
        strbuf_addc(&q, '"');
        if (q.failed)
            h->b->failed = q.failed;
        else
            hdr_token(h, q.p, q.len);
        free(q.p);
    } else {
        hdr_encoded_words(h, name, n);
    }
}

static void hdr_mailbox(struct hdr *h, const struct mail_addr *a)
{
    if (a->name) {
        hdr_display_name(h, a->name);
        char angle[ADDR_MAX + 3];
        int n = snprintf(angle, sizeof angle, "<%s>", a->addr);
        hdr_token(h, angle, (size_t)n);
    } else {
        hdr_token(h, a->addr, strlen(a->addr));
    }
}

/* "Name: a, b, c" from address strings; fails on the first bad one. */
static enum as_code add_address_header(struct strbuf *b, const char *name, const char *const *list,
                                       const char *what, struct as_err *err)
{
    struct hdr h;
    hdr_start(&h, b, name);
    for (size_t i = 0; list[i]; i++) {
        struct mail_addr a;
        enum as_code rc = mail_addr_parse(list[i], &a, err);
        if (rc) {
            as_err_prefix(err, "%s", what);
            return rc;
        }
        if (i > 0)
            hdr_glue(&h, ",");
        hdr_mailbox(&h, &a);
        mail_addr_clear(&a);
    }
    hdr_end(&h);
    return AS_OK;
}

/* ---- message ------------------------------------------------------------- */

void mail_mime_date(int64_t ms, char *out, size_t outsize)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outsize, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

enum as_code mail_mime_message_id(const char *key, const char *domain, char *out, size_t outsize,
                                  struct as_err *err)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    char hex[33];
    if (key) {
        SHA256((const unsigned char *)key, strlen(key), digest);
    } else {
        size_t got = 0;
        while (got < 16) {
            ssize_t n = getrandom(digest + got, 16 - got, 0);
            if (n < 0)
                return as_errf(err, AS_EIO, "getrandom failed");
            got += (size_t)n;
        }
    }
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    char dom[256];
    size_t j = 0;
    for (; domain[j] && j + 1 < sizeof dom; j++)
        dom[j] = (char)tolower((unsigned char)domain[j]);
    dom[j] = '\0';
    int n = snprintf(out, outsize, "<%s@assent.%s>", hex, dom);
    if (n < 0 || (size_t)n >= outsize)
        return as_errf(err, AS_ELIMIT, "message id does not fit");
    return AS_OK;
}

static enum as_code check_message_id(const char *id, struct as_err *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 5 || n > 250 || id[0] != '<' || id[n - 1] != '>' || !strchr(id, '@'))
        return as_errf(err, AS_EINVAL, "bad Message-ID");
    for (size_t i = 1; i + 1 < n; i++)
        if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7F || id[i] == '<' ||
            id[i] == '>')
            return as_errf(err, AS_EINVAL, "bad Message-ID");
    return AS_OK;
}

/*
 * A body that is plain ASCII with lines of at most 998 octets goes as 7bit,
 * CRLF-terminated: no encoding at all, so a long approval link is never
 * split by a soft line break for a reader (or a script) that does not
 * decode quoted-printable.  Only a body that ends in a line break qualifies:
 * the CRLF before the next boundary then carries that break, where for a
 * body without one it would add a line break that readers keep.  Returns
 * the CRLF text, or NULL when the body needs an encoding (or on allocation
 * failure, which then falls back too).
 */
static char *body_7bit(const char *body, size_t len)
{
    size_t line = 0, lfs = 0;
    if (len == 0 || body[len - 1] != '\n')
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c >= 0x80 || c == 0 || (c == '\r' && (i + 1 >= len || body[i + 1] != '\n')))
            return NULL;
        /* A line starting "--" could be our MIME boundary (derived from the
         * Message-ID, so predictable) and end the part early or add one:
         * such a body goes quoted-printable, which encodes the boundary's
         * '='.  Found by tests/fuzz/fuzz_mime.c. */
        if (line == 0 && c == '-' && i + 1 < len && body[i + 1] == '-')
            return NULL;
        if (c == '\n') {
            lfs++;
            line = 0;
        } else if (c != '\r' && ++line > 998) {
            return NULL;
        }
    }
    char *out = malloc(len + lfs + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r')
            continue; /* re-added before its LF */
        if (body[i] == '\n')
            out[o++] = '\r';
        out[o++] = body[i];
    }
    out[o] = '\0';
    return out;
}

/* Content-Type + Content-Transfer-Encoding + blank line + encoded body. */
static enum as_code add_part(struct strbuf *b, const char *subtype, const char *body,
                             struct as_err *err)
{
    size_t len = strlen(body);
    size_t high = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)body[i] >= 0x80)
            high++;
    /* Mostly non-Latin text is much shorter in base64; else QP stays readable. */
    int use_b64 = high * 6 > len;
    char *enc = body_7bit(body, len);
    const char *cte = "7bit";
    if (!enc) {
        enc = use_b64 ? mail_mime_base64_body(body, len) : mail_mime_qp(body, len);
        cte = use_b64 ? "base64" : "quoted-printable";
    }
    if (!enc)
        return as_errf(err, AS_ENOMEM, "out of memory");
    strbuf_add(b, "Content-Type: text/");
    strbuf_add(b, subtype);
    strbuf_add(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: ");
    strbuf_add(b, cte);
    strbuf_add(b, "\r\n\r\n");
    strbuf_add(b, enc);
    /* End on a complete line without changing the content: a QP soft
     * line break decodes to nothing (base64 lines always end in CRLF). */
    size_t el = strlen(enc);
    if (el < 2 || enc[el - 2] != '\r' || enc[el - 1] != '\n')
        strbuf_add(b, "=\r\n");
    free(enc);
    return AS_OK;
}

static enum as_code check_body(const char *body, const char *what, struct as_err *err)
{
    size_t len = strlen(body);
    if (len > MAIL_MIME_MAX_SIZE / 4)
        return as_errf(err, AS_ELIMIT, "%s body too large (%zu octets)", what, len);
    if (!mail_mime_utf8_valid(body, len))
        return as_errf(err, AS_EINVAL, "%s body is not valid UTF-8", what);
    return AS_OK;
}

enum as_code mail_mime_build(const struct mail_mime_in *in, char **out, size_t *out_len,
                             struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct strbuf b = MIME_BUF;
    char *subject = NULL;
    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (!in->to || !in->to[0])
        return as_errf(err, AS_EINVAL, "no recipient (to)");
    if (!in->subject)
        return as_errf(err, AS_EINVAL, "missing subject");
    if (!in->text && !in->html)
        return as_errf(err, AS_EINVAL, "a message needs a text or an HTML body");
    if (!mail_mime_utf8_valid(in->subject, strlen(in->subject)))
        return as_errf(err, AS_EINVAL, "subject is not valid UTF-8");
    if (strlen(in->subject) > 4096)
        return as_errf(err, AS_ELIMIT, "subject longer than 4096 octets");
    if (in->text && (rc = check_body(in->text, "text", err)))
        return rc;
    if (in->html && (rc = check_body(in->html, "HTML", err)))
        return rc;
    if ((rc = check_message_id(in->message_id, err)))
        return rc;

    char date[64];
    mail_mime_date(in->date_ms, date, sizeof date);
    strbuf_add(&b, "Date: ");
    strbuf_add(&b, date);
    strbuf_add(&b, "\r\n");

    const char *from_list[] = {in->from, NULL};
    if ((rc = add_address_header(&b, "From", from_list, "from", err)))
        goto out;
    if ((rc = add_address_header(&b, "To", in->to, "to", err)))
        goto out;
    if (in->cc && in->cc[0] && (rc = add_address_header(&b, "Cc", in->cc, "cc", err)))
        goto out;
    if (in->reply_to && *in->reply_to) {
        const char *rt[] = {in->reply_to, NULL};
        if ((rc = add_address_header(&b, "Reply-To", rt, "reply_to", err)))
            goto out;
    }

    subject = decontrol(in->subject);
    if (!subject) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    struct hdr h;
    hdr_start(&h, &b, "Subject");
    hdr_unstructured(&h, subject);
    hdr_end(&h);

    strbuf_add(&b, "Message-ID: ");
    strbuf_add(&b, in->message_id);
    strbuf_add(&b, "\r\nMIME-Version: 1.0\r\n");
    /* RFC 3834: machine-sent, so auto-responders stay quiet; the second is
     * Exchange's spelling of the same wish. */
    strbuf_add(&b, "Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n");

    if (in->text && in->html) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        char boundary[64];
        SHA256((const unsigned char *)in->message_id, strlen(in->message_id), d);
        int n = snprintf(boundary, sizeof boundary, "=_assent_");
        for (int i = 0; i < 12; i++)
            n += snprintf(boundary + n, sizeof boundary - (size_t)n, "%02x", d[i]);
        strbuf_add(&b, "Content-Type: multipart/alternative;\r\n boundary=\"");
        strbuf_add(&b, boundary);
        strbuf_add(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n");
        const char *subtypes[2] = {"plain", "html"};
        const char *bodies[2] = {in->text, in->html};
        for (int i = 0; i < 2; i++) {
            strbuf_add(&b, "\r\n--");
            strbuf_add(&b, boundary);
            strbuf_add(&b, "\r\n");
            if ((rc = add_part(&b, subtypes[i], bodies[i], err)))
                goto out;
        }
        strbuf_add(&b, "\r\n--");
        strbuf_add(&b, boundary);
        strbuf_add(&b, "--\r\n");
    } else {
        if ((rc = add_part(&b, in->text ? "plain" : "html", in->text ? in->text : in->html, err)))
            goto out;
    }
    if (b.failed) {
        rc = b.failed == STRBUF_OVER ? as_errf(err, AS_ELIMIT, "message larger than %u octets",
                                     MAIL_MIME_MAX_SIZE)
                           : as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (out_len)
        *out_len = b.len;
    *out = strbuf_take(&b);
out:
    free(subject);
    if (rc)
        free(b.p);
    return rc;
}
