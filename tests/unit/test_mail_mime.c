/*
 * test_mail_mime.c - the RFC 5322/MIME builder: addresses, encoded-words,
 * folding, quoted-printable and base64 bodies, line lengths and CRLF,
 * header injection, Message-ID derivation and the Date format.  The
 * decoders used here are independent of the encoder under test (base64 is
 * engine/encode.c's, checked against RFC 4648 vectors in test_encode); the
 * integration test also decodes with Python's email package.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "steps/mail_mime.h"

/* Append s to the NUL-terminated text in dst (size bytes). */
static void append(char *dst, size_t size, const char *s)
{
    size_t n = strlen(dst);
    snprintf(dst + n, size - n, "%s", s);
}

/* ---- independent decoders ------------------------------------------------ */

/* Decode base64 (line breaks skipped, nothing else) into a malloc'd
 * NUL-terminated string. */
static char *b64_decode(const char *in, size_t len)
{
    char *joined = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (in[i] != '\r' && in[i] != '\n')
            joined[n++] = in[i];
    char *out = malloc(len + 1);
    long dec = encode_b64_decode(joined, n, ENCODE_B64_PADDED, (unsigned char *)out, len);
    free(joined);
    assert_true(dec >= 0);
    out[dec] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode quoted-printable; hard line breaks stay CRLF. */
static char *qp_decode(const char *in)
{
    size_t len = strlen(in);
    char *out = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '=') {
            if (in[i + 1] == '\r' && in[i + 2] == '\n') {
                i += 2; /* soft break */
                continue;
            }
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            assert_true(h >= 0 && l >= 0);
            out[n++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* Every line ends in CRLF (no bare CR or LF) and is at most max octets. */
static void assert_lines(const char *s, size_t max)
{
    size_t col = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\r') {
            assert_int_equal(p[1], '\n');
            assert_true(col <= max);
            col = 0;
            p++;
        } else {
            assert_int_not_equal(*p, '\n');
            col++;
        }
    }
    assert_true(col <= max);
}

/* Unfold a header field (remove CRLF before WSP) into a malloc'd string. */
static char *unfold(const char *h)
{
    char *out = malloc(strlen(h) + 1);
    size_t n = 0;
    for (const char *p = h; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t')) {
            p++;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

/* Decode the encoded-words of an unfolded unstructured value (words only,
 * separated by single spaces, as the builder writes them). */
static char *decode_words(const char *v)
{
    size_t size = strlen(v) + 1;
    char *out = calloc(1, size);
    const char *p = v;
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        /* Each word decodes on its own to valid UTF-8 (no split characters). */
        char *part = b64_decode(p, (size_t)(end - p));
        assert_true(mail_mime_utf8_valid(part, strlen(part)));
        assert_true(end - p + 12 <= 75); /* RFC 2047: at most 75 characters per word */
        append(out, size, part);
        free(part);
        p = end + 2;
    }
    return out;
}

/* ---- tests --------------------------------------------------------------- */

static void test_addr_parse(void **state)
{
    (void)state;
    struct mail_addr a;
    struct as_err err = {0};
    assert_int_equal(mail_addr_parse("user@example.org", &a, &err), AS_OK);
    assert_null(a.name);
    assert_string_equal(a.addr, "user@example.org");
    assert_string_equal(mail_addr_domain(&a), "example.org");
    mail_addr_clear(&a);
    assert_int_equal(mail_addr_parse("  Jürgen Müller  < j.m+tag@mail.example.org > ", &a, &err),
                     AS_OK);
    assert_string_equal(a.name, "Jürgen Müller");
    assert_string_equal(a.addr, "j.m+tag@mail.example.org");
    mail_addr_clear(&a);
    assert_int_equal(mail_addr_parse("\"Doe, \\\"JD\\\" John\" <jd@example.org>", &a, &err), AS_OK);
    assert_string_equal(a.name, "Doe, \"JD\" John");
    mail_addr_clear(&a);
    assert_int_equal(mail_addr_parse("<only@example.org>", &a, &err), AS_OK);
    assert_null(a.name);
    mail_addr_clear(&a);
    assert_int_equal(mail_addr_parse("ops@[192.0.2.1]", &a, &err), AS_OK);
    mail_addr_clear(&a);

    static const char *const bad[] = {
        "", "no-at-sign", "@example.org", "user@", "a b@example.org", "user@exa mple.org",
        "user@example..org", ".user@example.org", "us..er@example.org", "user.@example.org",
        "usér@example.org", "user@exämple.org", "user@-example.org", "user@example-.org",
        "Name <user@example.org", "Name user@example.org>", "<a@example.org> trailing",
        "\"unbalanced <a@example.org>", "user@example.org\r\nBcc: x@example.org",
        "Name\n <user@example.org>", "user@exa\x01mple.org", "\xff@example.org",
        "user@example.org,other@example.org",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mail_addr_parse(bad[i], &a, &err) == AS_OK)
            fail_msg("accepted bad address #%zu \"%s\"", i, bad[i]);
        assert_null(a.addr);
        assert_true(err.msg[0] != '\0');
    }
    /* Too long: a 65-octet local part, a 255-octet address. */
    char longlocal[100];
    memset(longlocal, 'a', 65);
    snprintf(longlocal + 65, sizeof longlocal - 65, "@example.org");
    assert_int_equal(mail_addr_parse(longlocal, &a, &err), AS_EINVAL);
    char longaddr[300] = "a@";
    for (int i = 0; i < 26; i++)
        append(longaddr, sizeof longaddr, "abcdefghi.");
    append(longaddr, sizeof longaddr, "org");
    assert_int_equal(mail_addr_parse(longaddr, &a, &err), AS_EINVAL);
    assert_int_equal(mail_addr_parse("user@example.org\r\nBcc: x@example.org", &a, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "control character"));
}

static void test_qp(void **state)
{
    (void)state;
    const char *in = "Grüße = Gruß\n"
                     ".leading dot\n"
                     "From the start\n"
                     "trailing space \n"
                     "trailing tab\t\r\n"
                     "lone CR\rend"
                     "0123456789012345678901234567890123456789012345678901234567890123456789"
                     "0123456789012345678901234567890123456789012345678901234567890123456789"
                     "äöü€ at the end ";
    char *enc = mail_mime_qp(in, strlen(in));
    assert_non_null(enc);
    assert_lines(enc, 76);
    for (const char *p = enc; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    /* No line ends in white space; no line starts with "." or "From ". */
    for (const char *p = enc; (p = strstr(p, "\r\n")); p += 2) {
        assert_true(p[-1] != ' ' && p[-1] != '\t');
        assert_true(p[2] != '.');
        assert_true(strncmp(p + 2, "From ", 5) != 0);
    }
    assert_true(enc[strlen(enc) - 1] != ' ');
    char *dec = qp_decode(enc);
    assert_string_equal(dec, "Grüße = Gruß\r\n"
                             ".leading dot\r\n"
                             "From the start\r\n"
                             "trailing space \r\n"
                             "trailing tab\t\r\n"
                             "lone CR\r\nend"
                             "0123456789012345678901234567890123456789012345678901234567890123456789"
                             "0123456789012345678901234567890123456789012345678901234567890123456789"
                             "äöü€ at the end ");
    free(dec);
    free(enc);
    enc = mail_mime_qp("", 0);
    assert_string_equal(enc, "");
    free(enc);
}

static void test_base64_body(void **state)
{
    (void)state;
    const char *in = "日本語のテキストです。\nもう一行。\n";
    char *enc = mail_mime_base64_body(in, strlen(in));
    assert_lines(enc, 76);
    char *dec = b64_decode(enc, strlen(enc));
    assert_string_equal(dec, "日本語のテキストです。\r\nもう一行。\r\n");
    free(dec);
    free(enc);
}

static void test_subject(void **state)
{
    (void)state;
    /* Short ASCII: as is. */
    char *h = mail_mime_header_text("Subject", "Hello world");
    assert_string_equal(h, "Subject: Hello world\r\n");
    free(h);

    /* Long ASCII: folded at spaces only, unfolding restores it. */
    char subj[400] = "";
    for (int i = 0; i < 30; i++)
        append(subj, sizeof subj, i ? " word" : "Approve");
    append(subj, sizeof subj, "  double  spaces kept ");
    h = mail_mime_header_text("Subject", subj);
    assert_lines(h, 78);
    char *u = unfold(h);
    char expect[500];
    snprintf(expect, sizeof expect, "Subject: %s\r\n", subj);
    assert_string_equal(u, expect);
    free(u);
    /* No continuation line consists of white space only. */
    for (const char *p = h; (p = strstr(p, "\r\n ")); p += 3)
        assert_true(p[3] != '\r' && p[3] != ' ');
    free(h);

    /* Non-ASCII: encoded-words, each complete UTF-8, decoding to the original. */
    const char *nonascii = "Genehmigung: Protokolle für Jürgen Müller abschalten — "
                           "日本語の件名もあります ✅ und noch mehr Text, damit es lang wird";
    h = mail_mime_header_text("Subject", nonascii);
    assert_lines(h, 78);
    for (const char *p = h; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    u = unfold(h);
    char *d = decode_words(u);
    assert_string_equal(d, nonascii);
    free(d);
    free(u);
    free(h);

    /* "=?" in plain text would be taken for an encoded-word: encode it. */
    h = mail_mime_header_text("Subject", "=?UTF-8?B?SGk=?= literal");
    assert_null(strstr(h, "Subject: =?UTF-8?B?SGk=?= literal"));
    u = unfold(h);
    d = decode_words(u);
    assert_string_equal(d, "=?UTF-8?B?SGk=?= literal");
    free(d);
    free(u);
    free(h);

    /* A word too long to fold goes encoded, so no line passes 78. */
    char longword[1200];
    memset(longword, 'x', 1100);
    longword[1100] = '\0';
    h = mail_mime_header_text("Subject", longword);
    assert_lines(h, 78);
    free(h);

    /* Header injection: CR/LF become spaces, no new field appears. */
    h = mail_mime_header_text("Subject", "Hi\r\nBcc: victim@example.org\nX: y");
    assert_string_equal(h, "Subject: Hi  Bcc: victim@example.org X: y\r\n");
    free(h);

    /* Invalid UTF-8 is refused. */
    assert_null(mail_mime_header_text("Subject", "bad \xc3\x28 byte"));
    assert_null(mail_mime_header_text("Subject", "overlong \xc0\xaf"));
    assert_null(mail_mime_header_text("Subject", "surrogate \xed\xa0\x80"));
}

/* The value of header `name` in message m, unfolded (malloc'd), or NULL. */
static char *header(const char *m, const char *name)
{
    size_t nl = strlen(name);
    const char *body = strstr(m, "\r\n\r\n");
    for (const char *p = m; p && p < body; p = strstr(p, "\r\n") + 2) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *end = p;
            while ((end = strstr(end, "\r\n")) && (end[2] == ' ' || end[2] == '\t'))
                end += 2;
            char *raw = strndup(p + nl + 1, (size_t)(end - p - nl - 1));
            char *u = unfold(raw);
            free(raw);
            memmove(u, u + (u[0] == ' '), strlen(u));
            return u;
        }
    }
    return NULL;
}

static int count_header(const char *m, const char *name)
{
    int n = 0;
    size_t nl = strlen(name);
    const char *body = strstr(m, "\r\n\r\n");
    if (strncmp(m, name, nl) == 0 && m[nl] == ':')
        n++;
    for (const char *p = m; (p = strstr(p, "\r\n")) && p < body; p += 2)
        if (strncmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
            n++;
    return n;
}

static void test_build(void **state)
{
    (void)state;
    const char *to[] = {"Jürgen Müller <juergen@example.org>", "ops@example.org", NULL};
    const char *cc[] = {"\"Audit, Team\" <audit@example.org>", NULL};
    struct mail_mime_in in = {
        .from = "Assent <assent@example.org>",
        .to = to,
        .cc = cc,
        .reply_to = "help@example.org",
        .subject = "Freigabe für Jürgen",
        .text = "Hallo,\nbitte prüfen.\n",
        .html = "<p>Hallo, <b>bitte prüfen</b>.</p>",
        .message_id = "<0123456789abcdef@assent.example.org>",
        .date_ms = 1700000000000LL,
    };
    char *m = NULL, *m2 = NULL;
    size_t len = 0, len2 = 0;
    struct as_err err = {0};
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    assert_int_equal(strlen(m), len);
    assert_lines(m, 78);
    for (const char *p = m; *p; p++)
        assert_true((unsigned char)*p < 0x80); /* 7-bit throughout */

    char *v = header(m, "Date");
    assert_string_equal(v, "Tue, 14 Nov 2023 22:13:20 +0000");
    free(v);
    v = header(m, "Message-ID");
    assert_string_equal(v, "<0123456789abcdef@assent.example.org>");
    free(v);
    v = header(m, "MIME-Version");
    assert_string_equal(v, "1.0");
    free(v);
    v = header(m, "From");
    assert_string_equal(v, "\"Assent\" <assent@example.org>");
    free(v);
    v = header(m, "Cc");
    assert_string_equal(v, "\"Audit, Team\" <audit@example.org>");
    free(v);
    v = header(m, "Reply-To");
    assert_string_equal(v, "help@example.org");
    free(v);
    v = header(m, "To");
    assert_non_null(strstr(v, "<juergen@example.org>, ops@example.org"));
    char *names = decode_words(v);
    assert_string_equal(names, "Jürgen Müller");
    free(names);
    free(v);
    v = header(m, "Subject");
    char *subj = decode_words(v);
    assert_string_equal(subj, "Freigabe für Jürgen");
    free(subj);
    free(v);
    assert_int_equal(count_header(m, "Subject"), 1);
    assert_int_equal(count_header(m, "Auto-Submitted"), 1);

    /* multipart/alternative: text first, then HTML, boundary not in the bodies. */
    v = header(m, "Content-Type");
    assert_non_null(strstr(v, "multipart/alternative"));
    char *b = strstr(v, "boundary=\"");
    assert_non_null(b);
    char boundary[80];
    snprintf(boundary, sizeof boundary, "--%.*s", (int)(strchr(b + 10, '"') - b - 10), b + 10);
    free(v);
    const char *p1 = strstr(m, boundary), *p2 = p1 ? strstr(p1 + 1, boundary) : NULL;
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(strstr(p1, "Content-Type: text/plain; charset=UTF-8") < p2);
    assert_non_null(strstr(p2, "Content-Type: text/html; charset=UTF-8"));
    char closing[90];
    snprintf(closing, sizeof closing, "\r\n%s--\r\n", boundary);
    assert_non_null(strstr(m, closing));
    /* The text part decodes back to the text with CRLF line ends. */
    const char *tb = strstr(p1, "\r\n\r\n") + 4;
    const char *te = strstr(tb, boundary) - 2; /* the CRLF before it belongs to the boundary */
    char *qp = strndup(tb, (size_t)(te - tb));
    char *text = qp_decode(qp);
    assert_string_equal(text, "Hallo,\r\nbitte prüfen.\r\n");
    free(text);
    free(qp);

    /* Same input, same bytes. */
    assert_int_equal(mail_mime_build(&in, &m2, &len2, &err), AS_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(m, m2, len);
    free(m2);
    free(m);

    /* Text only: a single text/plain part. */
    in.html = NULL;
    in.cc = NULL;
    in.reply_to = NULL;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    v = header(m, "Content-Type");
    assert_string_equal(v, "text/plain; charset=UTF-8");
    free(v);
    assert_null(header(m, "Cc"));
    assert_lines(m, 78);
    free(m);

    /* HTML only. */
    in.text = NULL;
    in.html = "<p>x</p>";
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    v = header(m, "Content-Type");
    assert_string_equal(v, "text/html; charset=UTF-8");
    free(v);
    free(m);

    /* Refusals. */
    in.html = NULL;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_EINVAL); /* no body */
    assert_null(m);
    in.text = "x";
    const char *evil_to[] = {"Eve <eve@example.org>\r\nBcc: all@example.org", NULL};
    in.to = evil_to;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "to"));
    const char *no_to[] = {NULL};
    in.to = no_to;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_EINVAL);
    in.to = to;
    in.text = "bad \xff utf-8";
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_EINVAL);
    in.text = "x";
    in.message_id = "no brackets@example.org";
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_EINVAL);
    in.message_id = "<a@b>";
    in.subject = "Subject with\r\nBcc: injected@example.org";
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    assert_int_equal(count_header(m, "Bcc"), 0);
    free(m);
    char *big = malloc(MAIL_MIME_MAX_SIZE / 4 + 2);
    memset(big, 'a', MAIL_MIME_MAX_SIZE / 4 + 1);
    big[MAIL_MIME_MAX_SIZE / 4 + 1] = '\0';
    in.text = big;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_ELIMIT);
    free(big);
}

/* A 7-bit body line that is our boundary cannot end the part or add one:
 * a body with a line starting "--" goes quoted-printable (found by
 * tests/fuzz/fuzz_mime.c). */
static void test_body_cannot_forge_boundary(void **state)
{
    (void)state;
    const char *to[] = {"ops@example.org", NULL};
    const char *mid = "<0123456789abcdef@assent.example.org>";
    struct mail_mime_in in = {.from = "assent@example.org", .to = to, .subject = "s",
                              .html = "<p>x</p>", .message_id = mid, .date_ms = 1700000000000LL};
    /* The boundary the builder derives from the Message-ID, read from a first build. */
    char *m = NULL;
    size_t len = 0;
    struct as_err err = {0};
    in.text = "plain\n";
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    const char *b = strstr(m, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    char boundary[80];
    size_t n = (size_t)(strchr(b, '"') - b);
    assert_true(n < sizeof boundary);
    memcpy(boundary, b, n);
    boundary[n] = '\0';
    free(m);
    char body[512];
    snprintf(body, sizeof body,
             "hi\n--%s\nContent-Type: text/html\n\n<a href=\"https://evil.example\">approve</a>\n--%s--\n",
             boundary, boundary);
    in.text = body;
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    int lines = 0;
    for (const char *p = m; (p = strstr(p, "\r\n--")) != NULL; p += 4)
        lines += strncmp(p + 4, boundary, n) == 0;
    assert_int_equal(lines, 3); /* the builder's own: two parts and the end */
    assert_non_null(strstr(m, "Content-Transfer-Encoding: quoted-printable"));
    free(m);
}

static void test_long_lines_and_many_recipients(void **state)
{
    (void)state;
    /* 40 recipients with long display names fold into lines of <= 78. */
    char *list[41];
    for (int i = 0; i < 40; i++) {
        char buf[120];
        snprintf(buf, sizeof buf, "Person Number %d With A Long Name <person.%d@department.example.org>", i, i);
        list[i] = strdup(buf);
    }
    list[40] = NULL;
    char longline[5000];
    memset(longline, 'y', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    struct mail_mime_in in = {
        .from = "a@example.org", .to = (const char *const *)list, .subject = "s",
        .text = longline, .html = longline, .message_id = "<x@y>", .date_ms = 0,
    };
    char *m = NULL;
    size_t len;
    struct as_err err = {0};
    assert_int_equal(mail_mime_build(&in, &m, &len, &err), AS_OK);
    assert_lines(m, 78);
    char *to = header(m, "To");
    for (int i = 0; i < 40; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "<person.%d@department.example.org>", i);
        assert_non_null(strstr(to, needle));
    }
    free(to);
    char *date = header(m, "Date");
    assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 +0000");
    free(date);
    free(m);
    for (int i = 0; i < 40; i++)
        free(list[i]);
}

static void test_message_id(void **state)
{
    (void)state;
    char id[128], id2[128];
    struct as_err err = {0};
    /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a3... */
    assert_int_equal(mail_mime_message_id("abc", "Example.ORG", id, sizeof id, &err), AS_OK);
    assert_string_equal(id, "<ba7816bf8f01cfea414140de5dae2223@assent.example.org>");
    assert_int_equal(mail_mime_message_id(NULL, "example.org", id, sizeof id, &err), AS_OK);
    assert_int_equal(mail_mime_message_id(NULL, "example.org", id2, sizeof id2, &err), AS_OK);
    assert_string_not_equal(id, id2);
    assert_int_equal(strlen(id), strlen("<ba7816bf8f01cfea414140de5dae2223@assent.example.org>"));
    assert_int_equal(mail_mime_message_id("abc", "example.org", id, 10, &err), AS_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_qp),
        cmocka_unit_test(test_base64_body),
        cmocka_unit_test(test_subject),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_long_lines_and_many_recipients),
        cmocka_unit_test(test_body_cannot_forge_boundary),
        cmocka_unit_test(test_message_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
