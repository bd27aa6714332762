/*
 * test_outbox_page.c - the demo outbox: messages built by the mail module
 * (multipart, quoted-printable and base64 bodies, RFC 2047 subjects) parse
 * back to their subject, recipients and text; the page lists them with
 * their links and the simulator's mailbox states; unconfigured it is a 404.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "steps/mail_mime.h"
#include "web/outbox_page.h"
#include "web/server.h"

static char *build(const char *subject, const char *text, const char *html, const char *to)
{
    const char *rcpt[] = {to, NULL};
    struct mail_mime_in in = {.from = "assent@localhost", .to = rcpt, .subject = subject,
                              .text = text, .html = html, .message_id = "<abc@assent.localhost>",
                              .date_ms = 1767225600000LL};
    char *out = NULL;
    size_t len = 0;
    struct as_err err = {0};
    if (mail_mime_build(&in, &out, &len, &err) != AS_OK)
        fail_msg("mail_mime_build: %s", err.msg);
    return out;
}

static void check(const char *msg, const char *subject, const char *to, const char *text_part)
{
    char *s, *t, *d, *x;
    assert_int_equal(outbox_parse_message(msg, strlen(msg), &s, &t, &d, &x), 0);
    assert_string_equal(s, subject);
    assert_non_null(strstr(t, to));
    assert_non_null(strstr(d, "2026"));
    if (!strstr(x, text_part))
        fail_msg("text \"%s\" lacks \"%s\"", x, text_part);
    free(s);
    free(t);
    free(d);
    free(x);
}

static void test_parse(void **state)
{
    (void)state;
    /* Plain ASCII, text only. */
    char *m = build("Approve?", "Open http://127.0.0.1:8080/a/tok123 to decide.\n", NULL, "o@x.com");
    check(m, "Approve?", "o@x.com", "http://127.0.0.1:8080/a/tok123");
    free(m);
    /* Non-ASCII subject (RFC 2047) and a long line with '=' (quoted-printable soft breaks). */
    char longline[400];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    char text[600];
    snprintf(text, sizeof text, "Grüße = hello %s end", longline);
    m = build("Änderung für Jürgen: POP & IMAP aus", text, "<p>html</p>", "j@x.com");
    check(m, "Änderung für Jürgen: POP & IMAP aus", "j@x.com", text);
    free(m);
    /* Mostly non-Latin text: base64. */
    m = build("Τίτλος", "Καλημέρα κόσμε, αυτό είναι ένα κείμενο στα ελληνικά http://h/a/b", NULL, "g@x.com");
    check(m, "Τίτλος", "g@x.com", "http://h/a/b");
    free(m);
    /* Not a message at all. */
    char *s, *t, *d, *x;
    assert_int_equal(outbox_parse_message("\r\nbody only", 11, &s, &t, &d, &x), -1);
}

static void test_page(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("outbox");
    struct web_req req = {.method = "GET", .path = "/outbox"};
    struct web_resp resp = {0};
    outbox_page_configure(NULL, NULL);
    web_outbox_page(&req, &resp);
    assert_int_equal(resp.status, 404);
    free(resp.body);

    char *eml = tu_path(dir, "one.eml");
    char *m = build("Turn off POP for a@contoso.com?", "Decide here: http://127.0.0.1:8080/a/SECRET.\n",
                    "<p>x</p>", "owner@contoso.com");
    assert_int_equal(tu_write_file(eml, m), 0);
    free(m);
    char *statefile = tu_path(dir, "tenant.json");
    assert_int_equal(tu_write_file(statefile,
                                   "{\"transport_config\": {\"SmtpClientAuthenticationDisabled\": true},"
                                   " \"users\": [{\"userPrincipalName\": \"a@contoso.com\", \"mailbox\":"
                                   " {\"PopEnabled\": true, \"ImapEnabled\": false,"
                                   " \"SmtpClientAuthenticationDisabled\": null, \"ActiveSyncEnabled\": true,"
                                   " \"EwsEnabled\": false}},"
                                   " {\"userPrincipalName\": \"nombx@contoso.com\"}]}"),
                     0);
    outbox_page_configure(dir, statefile);
    memset(&resp, 0, sizeof resp);
    web_outbox_page(&req, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(resp.body);
    assert_non_null(strstr(resp.body, "Turn off POP for a@contoso.com?"));
    assert_non_null(strstr(resp.body, "<a href=\"http://127.0.0.1:8080/a/SECRET\">"));
    assert_non_null(strstr(resp.body, "owner@contoso.com"));
    assert_non_null(strstr(resp.body, "<td>a@contoso.com</td><td><span class=\"used\">on</span></td><td>off</td><td>off (org)</td>"));
    assert_null(strstr(resp.body, "nombx@contoso.com"));
    free(resp.body);
    outbox_page_configure(NULL, NULL);
    tu_rmrf(dir);
    free(eml);
    free(statefile);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
