/*
 * outbox_page.c - the demo's outbox page (see outbox_page.h).
 *
 * Messages are read from the file transport's directory on each request
 * (a demo holds a few hundred at most): headers unfolded, the subject
 * decoded from RFC 2047, the text/plain part found in a multipart message
 * and decoded from quoted-printable or base64.  Every size is capped.
 */
#include "web/outbox_page.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/encode.h"
#include "base/strbuf.h"
#include "base/html.h"
#include "web/server.h"

#define MAX_MESSAGES 200
#define MAX_MESSAGE_SIZE (1024 * 1024)
#define MAX_STATE_SIZE (64 * 1024 * 1024)
#define MAX_MAILBOX_ROWS 1000
#define MAX_LINKS 20

static char cfg_mail_dir[1024];
static char cfg_sim_state[1024];

void outbox_page_configure(const char *mail_dir, const char *sim_state)
{
    snprintf(cfg_mail_dir, sizeof cfg_mail_dir, "%s", mail_dir ? mail_dir : "");
    snprintf(cfg_sim_state, sizeof cfg_sim_state, "%s", sim_state ? sim_state : "");
}

/* ---- decoding ---- */

/* MIME base64: line breaks and padding are skipped. */
static void decode_base64(struct strbuf *out, const char *s, size_t n)
{
    size_t size = n / 4 * 3 + 2;
    unsigned char *bytes = malloc(size);
    long len = bytes ? encode_b64_decode(s, n, ENCODE_B64_SKIP, bytes, size) : -1;
    if (len < 0)
        out->failed = 1;
    else
        strbuf_addn(out, (const char *)bytes, (size_t)len);
    free(bytes);
}

/* Quoted-printable; q_words = RFC 2047 "Q" (underscore is a space). */
static void decode_qp(struct strbuf *out, const char *s, size_t n, int q_words)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=' && i + 1 < n && (s[i + 1] == '\r' || s[i + 1] == '\n')) {
            i++; /* soft line break */
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
        } else if (c == '=' && i + 2 < n && encode_hex_value((unsigned char)s[i + 1]) >= 0 &&
                   encode_hex_value((unsigned char)s[i + 2]) >= 0) {
            strbuf_addc(out, (char)(encode_hex_value((unsigned char)s[i + 1]) * 16 + encode_hex_value((unsigned char)s[i + 2])));
            i += 2;
        } else if (q_words && c == '_') {
            strbuf_addc(out, ' ');
        } else {
            strbuf_addc(out, c);
        }
    }
}

/* RFC 2047 encoded-words in a header value; whitespace between two encoded
 * words is dropped, as the RFC says. */
static char *decode_words(const char *v)
{
    struct strbuf out = {0};
    const char *p = v;
    int last_was_word = 0;
    while (*p) {
        if (p[0] == '=' && p[1] == '?') {
            const char *q1 = strchr(p + 2, '?');
            const char *q2 = q1 ? strchr(q1 + 1, '?') : NULL;
            const char *end = q2 ? strstr(q2 + 1, "?=") : NULL;
            if (q1 && q2 && end && q2 == q1 + 2) {
                char enc = (char)toupper((unsigned char)q1[1]);
                if (enc == 'B')
                    decode_base64(&out, q2 + 1, (size_t)(end - q2 - 1));
                else
                    decode_qp(&out, q2 + 1, (size_t)(end - q2 - 1), 1);
                p = end + 2;
                last_was_word = 1;
                continue;
            }
        }
        if (last_was_word && (*p == ' ' || *p == '\t')) {
            const char *w = p;
            while (*w == ' ' || *w == '\t')
                w++;
            if (w[0] == '=' && w[1] == '?') {
                p = w;
                continue;
            }
        }
        last_was_word = 0;
        strbuf_addc(&out, *p++);
    }
    return strbuf_take(&out);
}

/* Header `name` of the header block [h, end), unfolded, malloc'd; NULL if absent. */
static char *header_get(const char *h, const char *end, const char *name)
{
    size_t nl = strlen(name);
    const char *line = h;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            struct strbuf v = {0};
            const char *s = line + nl + 1;
            for (;;) {
                while (s < eol && (*s == ' ' || *s == '\t'))
                    s++;
                const char *e = eol;
                while (e > s && (e[-1] == '\r' || e[-1] == ' '))
                    e--;
                if (v.len)
                    strbuf_addc(&v, ' ');
                strbuf_addn(&v, s, (size_t)(e - s));
                /* A line starting with white space continues the header. */
                if (eol + 1 < end && (eol[1] == ' ' || eol[1] == '\t')) {
                    s = eol + 1;
                    eol = memchr(s, '\n', (size_t)(end - s));
                    if (!eol)
                        eol = end;
                    continue;
                }
                break;
            }
            return strbuf_take(&v);
        }
        line = eol + 1;
    }
    return NULL;
}

/* Split msg into its header block and body. */
static void split(const char *msg, size_t len, const char **hend, const char **body)
{
    const char *p = msg, *end = msg + len;
    if (len && (msg[0] == '\n' || (msg[0] == '\r' && len > 1 && msg[1] == '\n'))) {
        *hend = msg; /* no headers at all */
        *body = msg + (msg[0] == '\n' ? 1 : 2);
        return;
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        const char *next = eol + 1;
        if (next < end && (*next == '\n' || (*next == '\r' && next + 1 < end && next[1] == '\n'))) {
            *hend = next;
            *body = *next == '\n' ? next + 1 : next + 2;
            return;
        }
        p = next;
    }
    *hend = end;
    *body = end;
}

/* Decode body [b, e) per its Content-Transfer-Encoding. */
static void decode_body(struct strbuf *out, const char *cte, const char *b, const char *e)
{
    if (cte && strncasecmp(cte, "base64", 6) == 0)
        decode_base64(out, b, (size_t)(e - b));
    else if (cte && strncasecmp(cte, "quoted-printable", 16) == 0)
        decode_qp(out, b, (size_t)(e - b), 0);
    else
        strbuf_addn(out, b, (size_t)(e - b));
}

/* The boundary parameter of a multipart Content-Type into buf; 0 if found. */
static int boundary_of(const char *ctype, char *buf, size_t size)
{
    const char *b = ctype ? strcasestr(ctype, "boundary=") : NULL;
    if (!b)
        return -1;
    b += 9;
    size_t n;
    if (*b == '"') {
        b++;
        const char *q = strchr(b, '"');
        n = q ? (size_t)(q - b) : strlen(b);
    } else {
        n = strcspn(b, "; \t");
    }
    if (n == 0 || n + 1 > size)
        return -1;
    memcpy(buf, b, n);
    buf[n] = '\0';
    return 0;
}

/* The text/plain content of a message or part [msg, msg+len), decoded. */
static int text_of(const char *msg, size_t len, struct strbuf *out, int depth)
{
    const char *hend, *body, *end = msg + len;
    split(msg, len, &hend, &body);
    char *ctype = header_get(msg, hend, "Content-Type");
    char *cte = header_get(msg, hend, "Content-Transfer-Encoding");
    char boundary[200];
    int found = -1;
    if (ctype && strncasecmp(ctype, "multipart/", 10) == 0 && depth < 4 &&
        boundary_of(ctype, boundary, sizeof boundary) == 0) {
        char delim[210];
        snprintf(delim, sizeof delim, "--%s", boundary);
        size_t dl = strlen(delim);
        const char *p = body;
        /* Parts sit between delimiter lines; take the first text/plain one. */
        while (found != 0 && (p = memmem(p, (size_t)(end - p), delim, dl)) != NULL) {
            p += dl;
            if (p + 1 < end && p[0] == '-' && p[1] == '-')
                break;
            const char *start = memchr(p, '\n', (size_t)(end - p));
            if (!start)
                break;
            start++;
            const char *next = memmem(start, (size_t)(end - start), delim, dl);
            const char *pend = next ? next : end;
            found = text_of(start, (size_t)(pend - start), out, depth + 1);
            p = pend;
        }
    } else if (!ctype || strncasecmp(ctype, "text/plain", 10) == 0) {
        decode_body(out, cte, body, end);
        found = 0;
    }
    free(ctype);
    free(cte);
    return found;
}

int outbox_parse_message(const char *msg, size_t len, char **subject, char **to, char **date,
                         char **text)
{
    const char *hend, *body;
    *subject = *to = *date = *text = NULL;
    split(msg, len, &hend, &body);
    if (hend == msg)
        return -1;
    char *raw_subject = header_get(msg, hend, "Subject");
    *subject = decode_words(raw_subject ? raw_subject : "");
    free(raw_subject);
    *to = header_get(msg, hend, "To");
    *date = header_get(msg, hend, "Date");
    struct strbuf t = {0};
    if (text_of(msg, len, &t, 0) != 0) {
        free(t.p);
        t = (struct strbuf){0};
    }
    *text = strbuf_take(&t);
    if (!*to)
        *to = strdup("");
    if (!*date)
        *date = strdup("");
    if (!*subject || !*to || !*date || !*text) {
        free(*subject);
        free(*to);
        free(*date);
        free(*text);
        *subject = *to = *date = *text = NULL;
        return -1;
    }
    return 0;
}

/* ---- the page ---- */

struct msg_file {
    char name[256];
    long long mtime_ns;
};

static int by_mtime_desc(const void *a, const void *b)
{
    const struct msg_file *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? 1 : -1;
    return strcmp(x->name, y->name);
}

static char *read_capped(const char *path, size_t cap, size_t *len)
{
    char *buf = NULL;
    struct as_err err = {0};
    return file_read(path, cap, &buf, len, &err) == AS_OK ? buf : NULL;
}

/* The http(s) links in text, as list items. */
static void render_links(struct html_buf *b, const char *text)
{
    int n = 0;
    const char *p = text;
    while (n < MAX_LINKS && (p = strstr(p, "http")) != NULL) {
        if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
            p += 4;
            continue;
        }
        size_t len = strcspn(p, " \t\r\n<>\"'()");
        while (len && (p[len - 1] == '.' || p[len - 1] == ','))
            len--;
        char url[2048];
        snprintf(url, sizeof url, "%.*s", (int)(len < sizeof url - 1 ? len : sizeof url - 1), p);
        if (n++ == 0)
            html_raw(b, "<ul>\n");
        html_raw(b, "<li><a href=\"");
        html_text(b, url);
        html_raw(b, "\">");
        html_text(b, url);
        html_raw(b, "</a></li>\n");
        p += len;
    }
    if (n)
        html_raw(b, "</ul>\n");
}

static void render_messages(struct html_buf *b)
{
    DIR *d = opendir(cfg_mail_dir);
    if (!d) {
        html_raw(b, "<p class=\"note\">No email yet (the outbox folder does not exist yet).</p>\n");
        return;
    }
    struct msg_file *files = calloc(MAX_MESSAGES * 4, sizeof *files);
    size_t n = 0;
    struct dirent *e;
    while (files && (e = readdir(d)) != NULL && n < MAX_MESSAGES * 4) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || nl >= sizeof files[0].name || strcmp(e->d_name + nl - 4, ".eml") != 0)
            continue;
        char path[1400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", cfg_mail_dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(files[n].name, sizeof files[n].name, "%s", e->d_name);
        files[n].mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        n++;
    }
    closedir(d);
    if (!files) {
        b->failed = 1;
        return;
    }
    qsort(files, n, sizeof *files, by_mtime_desc);
    html_rawf(b, "<p class=\"note\">%zu message%s, newest first%s.</p>\n", n, n == 1 ? "" : "s",
              n > MAX_MESSAGES ? " (showing the newest " : "");
    if (n > MAX_MESSAGES)
        n = MAX_MESSAGES;
    for (size_t i = 0; i < n; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", cfg_mail_dir, files[i].name);
        size_t len = 0;
        char *msg = read_capped(path, MAX_MESSAGE_SIZE, &len);
        char *subject = NULL, *to = NULL, *date = NULL, *text = NULL;
        if (!msg || outbox_parse_message(msg, len, &subject, &to, &date, &text) != 0) {
            free(msg);
            continue;
        }
        html_raw(b, "<h2>");
        html_text(b, *subject ? subject : "(no subject)");
        html_raw(b, "</h2>\n<p class=\"note\">To ");
        html_text(b, to);
        html_raw(b, " &middot; ");
        html_text(b, date);
        html_raw(b, "</p>\n");
        render_links(b, text);
        html_raw(b, "<details><summary>Text</summary><pre>");
        html_text(b, text);
        html_raw(b, "</pre></details>\n");
        free(msg);
        free(subject);
        free(to);
        free(date);
        free(text);
    }
    free(files);
}

/* "on" (highlighted) / "off" for a boolean CAS value. */
static void cell(struct html_buf *b, const json_t *v, const json_t *org_default, int on_when_true)
{
    const char *suffix = "";
    if (json_is_null(v) || !v) {
        v = org_default;
        suffix = " (org)";
    }
    html_raw(b, "<td>");
    if (!json_is_boolean(v)) {
        html_raw(b, "&mdash;");
    } else if (json_is_true(v) == on_when_true) {
        html_rawf(b, "<span class=\"used\">on%s</span>", suffix);
    } else {
        html_rawf(b, "off%s", suffix);
    }
    html_raw(b, "</td>");
}

static void render_mailboxes(struct html_buf *b)
{
    struct stat st;
    if (stat(cfg_sim_state, &st) != 0 || st.st_size > MAX_STATE_SIZE) {
        html_raw(b, "<p class=\"note\">The simulator's state file cannot be read.</p>\n");
        return;
    }
    json_error_t jerr;
    json_t *doc = json_load_file(cfg_sim_state, 0, &jerr);
    if (!doc) {
        html_raw(b, "<p class=\"note\">The simulator's state file cannot be read right now.</p>\n");
        return;
    }
    const json_t *org = json_object_get(json_object_get(doc, "transport_config"),
                                        "SmtpClientAuthenticationDisabled");
    html_raw(b, "<table>\n<tr><th scope=\"col\">Mailbox</th><th scope=\"col\">POP</th>"
                "<th scope=\"col\">IMAP</th><th scope=\"col\">SMTP AUTH</th>"
                "<th scope=\"col\">ActiveSync</th><th scope=\"col\">EWS</th></tr>\n");
    size_t i, rows = 0;
    json_t *u;
    json_array_foreach(json_object_get(doc, "users"), i, u)
    {
        const json_t *m = json_object_get(u, "mailbox");
        if (!json_is_object(m) || rows++ >= MAX_MAILBOX_ROWS)
            continue;
        html_raw(b, "<tr><td>");
        html_text(b, json_string_value(json_object_get(u, "userPrincipalName")) ?: "?");
        html_raw(b, "</td>");
        cell(b, json_object_get(m, "PopEnabled"), NULL, 1);
        cell(b, json_object_get(m, "ImapEnabled"), NULL, 1);
        cell(b, json_object_get(m, "SmtpClientAuthenticationDisabled"), org, 0);
        cell(b, json_object_get(m, "ActiveSyncEnabled"), NULL, 1);
        cell(b, json_object_get(m, "EwsEnabled"), NULL, 1);
        html_raw(b, "</tr>\n");
    }
    html_raw(b, "</table>\n");
    json_decref(doc);
}

void web_outbox_page(struct web_req *req, struct web_resp *resp)
{
    (void)req;
    if (!cfg_mail_dir[0]) {
        web_resp_page(resp, 404, "Not found", "There is no such page.");
        return;
    }
    struct html_buf b = {0};
    html_page_begin(&b, "Demo outbox");
    html_raw(&b, "<h1>Demo outbox</h1>\n<p>Emails Assent delivered (file transport), newest "
                 "first. Open an approval link, then approve or reject; reload this page to see "
                 "the mailboxes change in the tenant simulator. <a href=\"/outbox\">Reload</a></p>\n");
    if (cfg_sim_state[0]) {
        html_raw(&b, "<h2>Mailboxes in the simulator</h2>\n<p class=\"note\">Client access "
                     "protocols as the simulator has them now; highlighted = on.</p>\n");
        render_mailboxes(&b);
    }
    html_raw(&b, "<h2>Delivered email</h2>\n");
    render_messages(&b);
    html_page_end(&b);
    web_resp_html(resp, 200, &b);
}
