/*
 * test_web_browser.c - a headless Chromium against a running `assent serve`:
 * the page loaded and left idle (as a link scanner does) decides nothing,
 * fits a phone, and a click on Approve continues the run; a configuration
 * change shows as Setting | Current | New with the exact command, details in
 * the workflow's order and tenant times without their fractions.  The browser part
 * is tests/integration/web_browser.py (Selenium + chromium-driver); this
 * program sets up the server and the run and checks the run afterwards.
 * Skipped (exit 77) when Chromium, its driver or Selenium is missing.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/web_harness.h"
#include "cli/cli.h"

static void test_browser_scan_then_click(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-browser", 0);
    wh_start(s, 0);
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"phone@example.org\"]}");
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, "phone@example.org", "Approval requested", 1, 30000, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", 30000), 0);

    char script[1024], shot[1024];
    snprintf(script, sizeof script, "%s/tests/integration/web_browser.py", tu_source_dir());
    snprintf(shot, sizeof shot, "%s/web-approval-phone.png", tu_build_dir());
    char *argv[] = {"/usr/bin/python3", script, "--link", link, "--db", s->db_path,
                    "--assent", (char *)tu_assent_bin(), "--shot", shot,
                    "--comment", "Checked on a phone.", NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, NULL, 180000, &out, &errout);
    if (rc != 0)
        fail_msg("web_browser.py failed (%d):\n%s\n%s", rc, out ? out : "", errout ? errout : "");
    assert_non_null(strstr(out, "\"scripts\": 0"));
    assert_int_equal(access(shot, R_OK), 0);
    assert_int_equal(wh_wait_run(s, run, "succeeded", 30000), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    /* The browser's POST carried its user agent into the decision record. */
    char *log = wh_log(s);
    assert_non_null(strstr(log, "phone@example.org chose approve on the web"));
    free(log);
    wh_stop(s, SIGTERM);
    free(out);
    free(errout);
    free(link);
    free(wf);
}

/* A configuration change as a person reviews it: the details in the order
 * the workflow writes them (through the stored definition the worker
 * loads), a tenant timestamp without its 7-digit fraction, the table
 * Setting | Current | New and the exact PowerShell line; then Approve. */
static const char CHANGE_WORKFLOW[] =
    "{\"name\": \"web-change\", \"version\": \"1\",\n"
    " \"input\": {\"approvers\": {\"type\": \"array\", \"required\": true},\n"
    "           \"user\": {\"type\": \"string\", \"required\": true},\n"
    "           \"last_sign_in\": {\"type\": \"string\"},\n"
    "           \"current\": {\"type\": \"object\"}},\n"
    " \"steps\": {\n"
    "  \"ask\": {\"type\": \"approval\", \"params\": {\n"
    "    \"approvers\": \"${input.approvers}\",\n"
    "    \"subject\": \"Turn off legacy protocols for ${input.user}\",\n"
    "    \"details\": {\"user\": \"${input.user}\", \"protocols\": [\"POP\", \"SMTP AUTH\"],\n"
    "                \"last_sign_in\": \"${input.last_sign_in}\", \"exempt\": \"none\",\n"
    "                \"contact\": \"helpdesk\"},\n"
    "    \"request\": {\"identity\": \"${input.user}\",\n"
    "                \"settings\": {\"PopEnabled\": false, \"SmtpClientAuthenticationDisabled\": true}},\n"
    "    \"current\": \"${input.current}\"},\n"
    "   \"next\": {\"approved\": \"done\", \"rejected\": \"done\", \"expired\": \"done\"}},\n"
    "  \"done\": {\"type\": \"log\", \"params\": {\"message\": \"${steps.ask.output.decision}\"}}}}\n";

static void test_browser_change_page(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-browser-change", 0);
    wh_start(s, 0);
    int64_t run = wh_submit(s, CHANGE_WORKFLOW,
                            "{\"approvers\": [\"owner@example.org\"], \"user\": \"ada@contoso.com\","
                            " \"last_sign_in\": \"2026-11-30T08:12:44.1234567Z\","
                            " \"current\": {\"PopEnabled\": true}}");
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, "owner@example.org", "Approval requested", 1, 30000, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", 30000), 0);

    char script[1024], shot[1024];
    snprintf(script, sizeof script, "%s/tests/integration/web_browser.py", tu_source_dir());
    snprintf(shot, sizeof shot, "%s/web-approval-change.png", tu_build_dir());
    char *argv[] = {"/usr/bin/python3", script, "--link", link, "--db", s->db_path,
                    "--assent", (char *)tu_assent_bin(), "--shot", shot,
                    "--change",
                    "[[\"PopEnabled\", \"$true\", \"$false\"],"
                    " [\"SmtpClientAuthenticationDisabled\", \"unknown\", \"$true\"]]",
                    "--command",
                    "Set-CASMailbox -Identity 'ada@contoso.com' -PopEnabled $false "
                    "-SmtpClientAuthenticationDisabled $true",
                    "--details-order",
                    "[\"user\", \"protocols\", \"last_sign_in\", \"exempt\", \"contact\"]",
                    "--expect", "2026-11-30 08:12 UTC", "--absent", "1234567",
                    "--absent", "2026-11-30T08", NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, NULL, 180000, &out, &errout);
    if (rc != 0)
        fail_msg("web_browser.py failed (%d):\n%s\n%s", rc, out ? out : "", errout ? errout : "");
    assert_non_null(strstr(out, "\"scripts\": 0"));
    assert_int_equal(wh_wait_run(s, run, "succeeded", 30000), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    wh_stop(s, SIGTERM);
    free(out);
    free(errout);
    free(link);
}

int main(void)
{
    cli_register_types();
    const char *missing = tu_browser_missing();
    if (missing) {
        fprintf(stderr, "skipped: %s\n", missing);
        return 77;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_browser_scan_then_click, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_browser_change_page, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
