/*
 * test_web_example.c - workflows/examples/email-approval.json end to end:
 * `assent run` with the documented input, `assent serve` mailing through a
 * real SMTP server (tests/integration/smtp_test_server.py, aiosmtpd), the
 * links read from the received messages, GET/HEAD changing nothing, a POST
 * with the page's CSRF token approving, the run continuing to log_approved,
 * and the frozen request hash matching the canonical request.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db_approvals.h"
#include "tests/integration/web_harness.h"
#include "approvals/token.h"

#define WAIT_MS 30000

static int64_t start_example_run(struct wh_server *s)
{
    char wf[1024];
    snprintf(wf, sizeof wf, "%s/workflows/examples/email-approval.json", tu_source_dir());
    char db_env[600];
    snprintf(db_env, sizeof db_env, "ASSENT_DB=%s", s->db_path);
    char *env[] = {db_env, NULL};
    char *argv[] = {(char *)tu_assent_bin(), "run", wf, "--json", "--input",
                    "{\"user\": \"user@example.org\", \"approvers\": [\"owner@example.org\", "
                    "\"deputy@example.org\"]}",
                    NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, env, 60000, &out, &errout);
    if (rc != 0)
        fail_msg("assent run: %d\n%s\n%s", rc, out ? out : "", errout ? errout : "");
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    int64_t run = json_integer_value(json_object_get(j, "run_id"));
    assert_true(run > 0);
    json_decref(j);
    free(out);
    free(errout);
    return run;
}

static void test_email_approval_example(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-example", 0);
    char *smtp_dir = tu_path(s->dir, "smtp");
    assert_int_equal(mkdir(smtp_dir, 0700), 0);
    int smtp_port = tu_free_port();
    char script[1024], port_arg[16];
    snprintf(script, sizeof script, "%s/tests/integration/smtp_test_server.py", tu_source_dir());
    snprintf(port_arg, sizeof port_arg, "%d", smtp_port);
    char *smtp_argv[] = {"/usr/bin/python3", script, "--port", port_arg, "--dir", smtp_dir, NULL};
    char *smtp_log = tu_path(s->dir, "smtp.log");
    s->helper = tu_spawn(smtp_argv, NULL, smtp_log);
    assert_true(s->helper > 0);
    assert_int_equal(tu_wait_port(smtp_port, 30000), 0);

    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_MAIL_TRANSPORT=smtp");
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_SMTP_URL=smtp://127.0.0.1:%d", smtp_port);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_MAIL_FROM=assent@example.org");
    wh_start(s, 0);
    int64_t run = start_example_run(s);

    /* The user hears first, then each approver gets a personal link. */
    assert_int_equal(wh_wait_smtp(s, smtp_dir, "user@example.org", "Planned change", 1, WAIT_MS, NULL), 1);
    char *lo = NULL, *ld = NULL;
    assert_int_equal(wh_wait_smtp(s, smtp_dir, "owner@example.org", "Approval requested", 1, WAIT_MS, &lo), 1);
    assert_int_equal(wh_wait_smtp(s, smtp_dir, "deputy@example.org", "Approval requested", 1, WAIT_MS, &ld), 1);
    assert_non_null(lo);
    assert_non_null(ld);
    assert_string_not_equal(lo, ld);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    /* GET and HEAD, many times, change nothing. */
    char *before = wh_db_fingerprint(s);
    char *page = NULL;
    for (int i = 0; i < 20; i++) {
        free(page);
        page = NULL;
        assert_int_equal(wh_get("GET", lo, &page, NULL), 200);
        assert_int_equal(wh_get("HEAD", lo, NULL, NULL), 200);
        assert_int_equal(wh_get("HEAD", ld, NULL, NULL), 200);
    }
    char *after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_non_null(strstr(page, "Turn off legacy protocols for user@example.org"));

    /* The frozen request: its hash is the canonical JSON's, shown on the page. */
    json_t *request = json_pack("{s:s, s:{s:b, s:b, s:b}}", "identity", "user@example.org",
                                "settings", "PopEnabled", 0, "ImapEnabled", 0,
                                "SmtpClientAuthenticationDisabled", 1);
    char want_hash[TOKEN_HASH_LEN + 1];
    struct as_err err = {0};
    assert_int_equal(token_request_hash(request, want_hash, NULL, &err), AS_OK);
    json_decref(request);
    assert_non_null(strstr(page, want_hash));

    /* Approve with the page's CSRF token. */
    char *csrf = wh_csrf(page);
    assert_non_null(csrf);
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, csrf, 0);
    char body[512];
    snprintf(body, sizeof body, "csrf=%s&decision=approve&comment=Not+needed+any+more", esc);
    curl_free(esc);
    curl_easy_cleanup(c);
    assert_int_equal(wh_post(lo, body, NULL, NULL), 200);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    wh_step_status(s, run, "log_approved", outcome, sizeof outcome);
    assert_string_equal(outcome, "succeeded");
    wh_step_status(s, run, "log_rejected", outcome, sizeof outcome);
    assert_string_equal(outcome, "");
    json_t *list = NULL;
    assert_int_equal(db_approvals_list(s->app.db, 1, 10, &list, &err), AS_OK);
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(s->app.db,
                                      json_integer_value(json_object_get(json_array_get(list, 0), "approval_id")),
                                      &view, &err),
                     AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "request_hash")), want_hash);
    assert_string_equal(json_string_value(json_object_get(view, "decided_by")), "owner@example.org");
    json_decref(view);
    json_decref(list);

    /* The deputy's link is closed now: who decided, and 409 on a POST. */
    char *dpage = NULL;
    assert_int_equal(wh_get("GET", ld, &dpage, NULL), 200);
    assert_non_null(strstr(dpage, "Approved by owner@example.org"));
    free(dpage);
    assert_int_equal(wh_post(ld, body, NULL, NULL), 409);
    /* One email per approver: nothing was sent twice. */
    assert_int_equal(wh_wait_smtp(s, smtp_dir, "owner@example.org", NULL, 1, 0, NULL), 1);
    assert_int_equal(wh_wait_smtp(s, smtp_dir, "user@example.org", NULL, 1, 0, NULL), 1);

    wh_stop(s, SIGTERM);
    tu_stop(s->helper, SIGTERM);
    s->helper = 0;
    free(csrf);
    free(page);
    free(lo);
    free(ld);
    free(smtp_log);
    free(smtp_dir);
}

int main(void)
{
    char *check[] = {"/usr/bin/python3", "-c", "import aiosmtpd", NULL};
    if (tu_run(check, NULL, 30000, NULL, NULL) != 0) {
        fprintf(stderr, "skipped: python3-aiosmtpd is not installed\n");
        return 77;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_email_approval_example, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
