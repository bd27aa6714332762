/*
 * it_pg_web.c - approvals over real HTTP with `assent serve` on PostgreSQL
 * (the tests' private server, a database per test; web_harness.h):
 *
 *  - one node: the approval step mails its link, the page shows it (GETs
 *    change nothing), a POST with the page's CSRF token approves, the run
 *    finishes on the approved branch, a replay is refused (409), and
 *    /metrics, `assent approvals` and `assent audit verify` read the
 *    result from PostgreSQL;
 *  - two nodes (two `assent serve` processes behind one public URL, one
 *    database): both run the engine, a page fetched from one node is
 *    answered on the other (one per-installation CSRF secret), and POSTs
 *    for one approval reaching both nodes at the same moment decide it
 *    once: one 200, the other 409.
 *
 * The whole of test_web_approval.c also runs on PostgreSQL (ctest
 * pg.web.suite).
 *
 * usage: it_pg_web [TEST_NAME]
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tests/integration/web_harness.h"

#define WAIT_MS 60000

static char *form_body(const char *csrf, const char *decision, const char *comment)
{
    CURL *c = curl_easy_init();
    char *esc_csrf = curl_easy_escape(c, csrf ? csrf : "", 0);
    char *esc_comment = curl_easy_escape(c, comment ? comment : "", 0);
    size_t n = strlen(esc_csrf) + strlen(esc_comment) + 64;
    char *body = malloc(n);
    snprintf(body, n, "csrf=%s&decision=%s&comment=%s", esc_csrf, decision, esc_comment);
    curl_free(esc_csrf);
    curl_free(esc_comment);
    curl_easy_cleanup(c);
    return body;
}

/* GET url, expecting want; the page (caller frees). */
static char *get_page(const char *url, long want)
{
    char *page = NULL;
    long st = wh_get("GET", url, &page, NULL);
    if (st != want)
        fail_msg("GET %s: %ld, expected %ld:\n%s", url, st, want, page ? page : "");
    return page;
}

/* link (public_url/a/TOKEN) on another node: base + "/a/TOKEN", malloc'd. */
static char *on_node(const char *link, const char *base)
{
    const char *path = strstr(link, "/a/");
    assert_non_null(path);
    size_t n = strlen(base) + strlen(path) + 1;
    char *url = malloc(n);
    snprintf(url, n, "%s%s", base, path);
    return url;
}

static char *run_cli(struct wh_server *s, char *const args[], int want_rc)
{
    char db_env[600];
    snprintf(db_env, sizeof db_env, "ASSENT_DB=%s", s->db_path);
    char *env[] = {db_env, NULL};
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)tu_assent_bin();
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, env, 60000, &out, &errout);
    if (rc != want_rc)
        fail_msg("assent %s: exit %d, expected %d\n%s\n%s", args[0], rc, want_rc, out ? out : "",
                 errout ? errout : "");
    free(errout);
    return out;
}

static void test_decide_on_postgres(void **state)
{
    struct wh_server *s = *state;
    wh_init_pg(s, "pgweb", 1);
    wh_start(s, 0);
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"a@example.org\", \"b@example.org\"]}");
    char *la = NULL;
    assert_int_equal(wh_wait_mail(s, "a@example.org", "Approval requested", 1, WAIT_MS, &la), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    /* The page, read from PostgreSQL; reading it writes nothing. */
    char *before = wh_db_fingerprint(s);
    char *page = NULL;
    for (int i = 0; i < 5; i++) {
        free(page);
        page = get_page(la, 200);
    }
    char *after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    assert_non_null(strstr(page, "Disable legacy protocols for u@example.org"));
    char *csrf = wh_csrf(page);
    assert_non_null(csrf);

    char *args_list[] = {"approvals", "--json", NULL};
    char *out = run_cli(s, args_list, 0);
    json_t *list = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    free(out);

    char *body = form_body(csrf, "approve", "fine on PostgreSQL");
    char *answer = NULL;
    assert_int_equal(wh_post(la, body, NULL, &answer), 200);
    assert_non_null(strstr(answer, "You approved"));
    free(answer);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    assert_int_equal(wh_post(la, body, NULL, NULL), 409);

    char url[160];
    snprintf(url, sizeof url, "%s/metrics", s->url);
    char *auth[] = {"Authorization: Bearer test-admin-token-0123456789", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "assent_approvals{status=\"approved\"} 1"));
    assert_non_null(strstr(r.body, "assent_runs{status=\"succeeded\"} 1"));
    tu_http_free(&r);
    char *args_audit[] = {"audit", "verify", NULL};
    free(run_cli(s, args_audit, 0));

    wh_stop(s, SIGTERM);
    free(body);
    free(csrf);
    free(before);
    free(after);
    free(page);
    free(la);
    free(wf);
}

struct poster {
    const char *url, *body;
    pthread_barrier_t *barrier;
    long status;
};

static void *post_main(void *arg)
{
    struct poster *p = arg;
    pthread_barrier_wait(p->barrier);
    p->status = wh_post(p->url, p->body, NULL, NULL);
    return NULL;
}

static void test_two_nodes_decide_once(void **state)
{
    struct wh_server *s = *state;
    wh_init_pg(s, "pgweb2", 0);
    wh_start(s, 0);
    /* Node B: another `assent serve` on the same database, behind the same
     * public URL (as behind a load balancer), listening on its own port. */
    struct wh_server b = {0};
    b.db_path = s->db_path;
    b.mail_dir = s->mail_dir;
    b.log_path = tu_path(s->dir, "serve-b.log");
    b.port = tu_free_port();
    snprintf(b.url, sizeof b.url, "%s", s->url); /* public_url */
    snprintf(b.extra_env[b.n_extra_env++], sizeof b.extra_env[0], "ASSENT_LISTEN=127.0.0.1:%d",
             b.port);
    wh_start(&b, 0);
    s->helper = b.pid; /* killed by the teardown should the test fail */
    char base_b[64];
    snprintf(base_b, sizeof base_b, "http://127.0.0.1:%d", b.port);

    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    enum { RUNS = 4 };
    int64_t runs[RUNS];
    char to[RUNS][2][32];
    for (int i = 0; i < RUNS; i++) {
        char input[160];
        snprintf(to[i][0], sizeof to[i][0], "a%d@example.org", i);
        snprintf(to[i][1], sizeof to[i][1], "b%d@example.org", i);
        snprintf(input, sizeof input, "{\"approvers\": [\"%s\", \"%s\"]}", to[i][0], to[i][1]);
        runs[i] = wh_submit(s, wf, input);
    }
    for (int i = 0; i < RUNS; i++) {
        char *la = NULL, *lb = NULL;
        assert_int_equal(wh_wait_mail(s, to[i][0], "Approval requested", 1, WAIT_MS, &la), 1);
        assert_int_equal(wh_wait_mail(s, to[i][1], "Approval requested", 1, WAIT_MS, &lb), 1);
        assert_int_equal(wh_wait_run(s, runs[i], "waiting", WAIT_MS), 0);
        /* Pages from node A; the POSTs go to A and B at once.  Even runs:
         * the two approvers answer (one link each node); odd runs: one
         * link posted to both nodes. */
        char *page_a = get_page(la, 200), *page_b = get_page(i % 2 ? la : lb, 200);
        char *csrf_a = wh_csrf(page_a), *csrf_b = wh_csrf(page_b);
        char *body_a = form_body(csrf_a, "approve", "node A");
        char *body_b = form_body(csrf_b, i % 2 ? "approve" : "reject", "node B");
        char *url_b = on_node(i % 2 ? la : lb, base_b);
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, 2);
        struct poster p[2] = {{la, body_a, &barrier, 0}, {url_b, body_b, &barrier, 0}};
        pthread_t th[2];
        for (int k = 0; k < 2; k++)
            assert_int_equal(pthread_create(&th[k], NULL, post_main, &p[k]), 0);
        for (int k = 0; k < 2; k++)
            pthread_join(th[k], NULL);
        pthread_barrier_destroy(&barrier);
        if (!((p[0].status == 200 && p[1].status == 409) ||
              (p[0].status == 409 && p[1].status == 200)))
            fail_msg("run %d: node A answered %ld, node B %ld (want one 200 and one 409)", i,
                     p[0].status, p[1].status);
        assert_int_equal(wh_wait_run(s, runs[i], "succeeded", WAIT_MS), 0);
        char outcome[32];
        wh_step_outcome(s, runs[i], "ask", outcome, sizeof outcome);
        assert_string_equal(outcome, p[0].status == 200 || i % 2 ? "approved" : "rejected");
        free(url_b);
        free(body_a);
        free(body_b);
        free(csrf_a);
        free(csrf_b);
        free(page_a);
        free(page_b);
        free(la);
        free(lb);
    }
    char *args_audit[] = {"audit", "verify", NULL};
    free(run_cli(s, args_audit, 0));
    wh_stop(&b, SIGTERM);
    s->helper = 0;
    wh_stop(s, SIGTERM);
    free(b.log_path);
    free(wf);
}

int main(int argc, char **argv)
{
    cli_register_types();
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decide_on_postgres, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_decide_once, wh_setup, wh_teardown),
    };
    if (tu_select_test("it_pg_web", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 2;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
