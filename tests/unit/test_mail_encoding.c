/* test_mail_encoding.c - which transfer encoding each body part gets: plain
 * ASCII text ending in a line break goes as 7bit so links stay whole on one
 * line; anything else is quoted-printable or base64. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/mail_mime.h"

static char *build(const char *text, const char *html)
{
    const char *to[] = {"owner@example.org", NULL};
    struct mail_mime_in in = {
        .from = "assent@example.org", .to = to, .subject = "s", .text = text, .html = html,
        .message_id = "<abc@assent.example.org>", .date_ms = 1700000000000LL,
    };
    char *out = NULL;
    size_t len = 0;
    struct as_err err = {0};
    assert_int_equal(mail_mime_build(&in, &out, &len, &err), AS_OK);
    return out;
}

static void test_ascii_link_stays_whole(void **state)
{
    (void)state;
    const char *link = "https://assent.approvals.example.org/a/0JPt7COyjFNuFp4ezBboOnPUCnpMylkd5VDHCQXlvqA";
    char text[512];
    snprintf(text, sizeof text, "Decide here:\n%s\nThanks.\n", link);
    char *msg = build(text, NULL);
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: 7bit\r\n"));
    char line[600];
    snprintf(line, sizeof line, "\r\n%s\r\n", link);
    assert_non_null(strstr(msg, line)); /* the whole link, on its own CRLF line */
    assert_null(strstr(msg, "Decide here:\n")); /* bare LF became CRLF */
    free(msg);
}

static void test_fallbacks(void **state)
{
    (void)state;
    /* Non-ASCII: quoted-printable. */
    char *msg = build("Viele Gr\xc3\xbc\xc3\x9f" "e aus dem Rechenzentrum\n", NULL);
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    free(msg);
    /* No final line break: quoted-printable (7bit would add one). */
    msg = build("no newline at the end", NULL);
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    free(msg);
    /* A line over 998 octets: quoted-printable. */
    char *long_line = malloc(1202);
    memset(long_line, 'x', 1200);
    long_line[1200] = '\n';
    long_line[1201] = '\0';
    msg = build(long_line, NULL);
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    free(msg);
    free(long_line);
    /* A lone CR is not a line break: encoded. */
    msg = build("a\rb\n", NULL);
    assert_non_null(strstr(msg, "Content-Transfer-Encoding: quoted-printable\r\n"));
    free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_link_stays_whole),
        cmocka_unit_test(test_fallbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
