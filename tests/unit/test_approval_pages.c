/*
 * test_approval_pages.c - what an approval page shows of a request: the
 * change as Setting | Current | New with the exact PowerShell line (the
 * cmdlet named, or the default for the request), details in the order
 * given, and tenant timestamps such as "2026-11-30T08:12:44.1234567Z" as
 * "2026-11-30 08:12 UTC" (never their 7-digit fractions).
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "approvals/approval_render.h"
#include "web/approval_pages.h"
#include "base/html.h"

static char *render_change(const char *view_json)
{
    json_t *view = json_loads(view_json, 0, NULL);
    assert_non_null(view);
    struct html_buf b = {0};
    approval_render_change(&b, view);
    json_decref(view);
    size_t len = 0;
    char *text = html_buf_take(&b, &len);
    assert_non_null(text);
    return text;
}

static void expect(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("\"%s\" not in:\n%s", part, text);
}

static void test_timestamps(void **state)
{
    (void)state;
    char buf[48] = "untouched";
    assert_int_equal(approval_format_timestamp("2026-11-30T08:12:44.1234567Z", buf, sizeof buf), 1);
    assert_string_equal(buf, "2026-11-30 08:12 UTC");
    assert_int_equal(approval_format_timestamp("2026-11-30T08:12:44Z", buf, sizeof buf), 1);
    assert_string_equal(buf, "2026-11-30 08:12 UTC");
    assert_int_equal(approval_format_timestamp("2026-11-30T09:12:44.5+01:00", buf, sizeof buf), 1);
    assert_string_equal(buf, "2026-11-30 08:12 UTC");
    static const char *const not_times[] = {
        "2026-11-30", "2026-11-30T08:12:44", "2026-11-30 08:12:44Z", "2026-11-30T08:12:44.Z",
        "2026-11-30T08:12:44Zjunk", "x2026-11-30T08:12:44Z", "ada@contoso.com", "",
        "2026-11-30T08:12:44+0100",
    };
    for (size_t i = 0; i < sizeof not_times / sizeof not_times[0]; i++) {
        snprintf(buf, sizeof buf, "untouched");
        if (approval_format_timestamp(not_times[i], buf, sizeof buf))
            fail_msg("\"%s\" taken for a timestamp", not_times[i]);
        assert_string_equal(buf, "untouched");
    }
}

static void test_details_order_and_times(void **state)
{
    (void)state;
    /* Keys in an order no sort would give. */
    json_t *details = json_loads("{\"user\": \"ada@contoso.com\", \"protocols\": [\"POP\"],"
                                 " \"last_sign_in\": \"2026-11-30T08:12:44.1234567Z\","
                                 " \"account\": {\"created\": \"2021-01-02T03:04:05.0000001Z\"}}",
                                 0, NULL);
    struct html_buf b = {0};
    approval_render_details(&b, details);
    json_decref(details);
    size_t len = 0;
    char *text = html_buf_take(&b, &len);
    assert_non_null(text);
    const char *u = strstr(text, ">user<"), *p = strstr(text, ">protocols<"),
               *l = strstr(text, ">last_sign_in<"), *a = strstr(text, ">account<");
    assert_true(u && p && l && a);
    assert_true(u < p && p < l && l < a);
    expect(text, "2026-11-30 08:12 UTC");
    expect(text, "2021-01-02 03:04 UTC");
    assert_null(strstr(text, "1234567"));
    assert_null(strstr(text, "0000001"));
    free(text);
}

static void test_change_table_and_command(void **state)
{
    (void)state;
    char *text = render_change(
        "{\"request\": {\"identity\": \"ada@contoso.com\", \"settings\": {\"PopEnabled\": false,"
        " \"SmtpClientAuthenticationDisabled\": true, \"ImapEnabled\": false}},"
        " \"current\": {\"PopEnabled\": true, \"SmtpClientAuthenticationDisabled\": null},"
        " \"cmdlet\": \"Set-CASMailbox\"}");
    expect(text, "<th scope=\"col\">Setting</th><th scope=\"col\">Current</th>"
                 "<th scope=\"col\">New</th>");
    expect(text, "<tr><th scope=\"row\">PopEnabled</th><td>$true</td><td>$false</td></tr>");
    expect(text, "<tr><th scope=\"row\">SmtpClientAuthenticationDisabled</th><td>$null</td>"
                 "<td>$true</td></tr>");
    expect(text, "<tr><th scope=\"row\">ImapEnabled</th><td>unknown</td><td>$false</td></tr>");
    expect(text, "<code>Set-CASMailbox -Identity &#39;ada@contoso.com&#39; -ImapEnabled $false "
                 "-PopEnabled $false -SmtpClientAuthenticationDisabled $true</code>");
    free(text);

    /* No cmdlet stored: the default for the request; a quote in the
     * identity is doubled for PowerShell (and escaped for HTML). */
    text = render_change("{\"request\": {\"identity\": \"o'brien@contoso.com\", \"settings\":"
                         " {\"PopEnabled\": false}}, \"current\": null, \"cmdlet\": \"\"}");
    expect(text, "<td>unknown</td><td>$false</td>");
    expect(text, "<code>Set-CASMailbox -Identity &#39;o&#39;&#39;brien@contoso.com&#39; "
                 "-PopEnabled $false</code>");
    free(text);
    text = render_change("{\"request\": {\"settings\": {\"SmtpClientAuthenticationDisabled\": true}},"
                         " \"current\": {\"SmtpClientAuthenticationDisabled\": false}}");
    expect(text, "<code>Set-TransportConfig -SmtpClientAuthenticationDisabled $true</code>");
    expect(text, "<td>$false</td><td>$true</td>");
    free(text);

    /* A request without settings shows no table and no command. */
    text = render_change("{\"request\": {\"subject\": \"S\", \"details\": {}}, \"cmdlet\": \"\"}");
    assert_string_equal(text, "");
    free(text);
}

/* Over the budget the largest part goes first, one that failed to render
 * (past HTML_BUF_MAX) counts as the largest, and parts that fit stay. */
static void test_fit_parts(void **state)
{
    (void)state;
    struct approval_part parts[3] = {{.name = "message"}, {.name = "details"}, {.name = "request"}};
    char *chunk = malloc(40 * 1024);
    assert_non_null(chunk);
    memset(chunk, 'x', 40 * 1024 - 1);
    chunk[40 * 1024 - 1] = '\0';
    html_raw(&parts[0].b, "short");
    html_raw(&parts[1].b, chunk);        /* 40 KiB */
    html_raw(&parts[2].b, chunk);
    html_raw(&parts[2].b, chunk);        /* 80 KiB */
    assert_int_equal(approval_fit_parts(parts, 3, APPROVAL_SHOW_MAX, 7), 1);
    assert_false(parts[0].dropped);
    assert_false(parts[1].dropped);
    assert_true(parts[2].dropped);
    assert_null(parts[2].b.p);

    /* Nothing to do under the budget. */
    assert_int_equal(approval_fit_parts(parts, 3, APPROVAL_SHOW_MAX, 7), 0);

    /* A part that failed (here: past the 1 MiB cap of a buffer). */
    for (int i = 0; i < 30; i++)
        html_raw(&parts[2].b, chunk);
    parts[2].dropped = 0;
    assert_false(html_buf_ok(&parts[2].b));
    html_buf_free(&parts[1].b);
    html_raw(&parts[1].b, "small");
    assert_int_equal(approval_fit_parts(parts, 3, APPROVAL_SHOW_MAX, 7), 1);
    assert_true(parts[2].dropped);
    assert_false(parts[1].dropped);
    for (int i = 0; i < 3; i++)
        html_buf_free(&parts[i].b);
    free(chunk);

    struct html_buf b = {0};
    approval_render_too_large(&b, "details", "ab12", 1);
    expect(b.p, "<p class=\"status bad\">The details are too large to show here.");
    expect(b.p, "fingerprint (SHA-256) is <code>ab12</code>");
    html_buf_free(&b);
    approval_render_too_large(&b, "request", "ab12", 0);
    expect(b.p, "The request is too large to show here. It is part of the request whose "
                "fingerprint (SHA-256) is ab12.");
    html_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_details_order_and_times),
        cmocka_unit_test(test_change_table_and_command),
        cmocka_unit_test(test_fit_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
