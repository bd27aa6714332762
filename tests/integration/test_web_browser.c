/*
 * test_web_browser.c - a headless Chromium against a running `assent serve`:
 * the page loaded and left idle (as a link scanner does) decides nothing,
 * fits a phone, and a click on Approve continues the run.  The browser part
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
    char *argv[] = {"/usr/bin/python3", script, "--link", link, "--db", s->db_path, "--shot", shot,
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

int main(void)
{
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/chromedriver", X_OK) != 0) {
        fprintf(stderr, "skipped: chromium and chromium-driver are not installed\n");
        return 77;
    }
    char *check[] = {"/usr/bin/python3", "-c", "import selenium", NULL};
    if (tu_run(check, NULL, 30000, NULL, NULL) != 0) {
        fprintf(stderr, "skipped: python3-selenium is not installed\n");
        return 77;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_browser_scan_then_click, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
