/*
 * test_web_approval.c - approval links over real HTTP (libcurl) against a
 * running `assent serve` with a temporary database and the file mail
 * transport: GET/HEAD change nothing, a POST with the page's CSRF token
 * decides and the run continues, and every refusal has the right status.
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/web_harness.h"
#include "cli/cli.h"

#define WAIT_MS 30000

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

static void assert_header(const char *headers, const char *line)
{
    if (!strcasestr(headers, line))
        fail_msg("missing response header \"%s\" in:\n%s", line, headers);
}

/* GET a link, check the security headers, return the page (caller frees). */
static char *get_page(const char *link, long want)
{
    char *page = NULL, *headers = NULL;
    long st = wh_get("GET", link, &page, &headers);
    if (st != want)
        fail_msg("GET %s: %ld, expected %ld:\n%s", link, st, want, page ? page : "");
    assert_header(headers, "Referrer-Policy: no-referrer");
    assert_header(headers, "Content-Security-Policy: default-src 'none'");
    assert_header(headers, "frame-ancestors 'none'");
    assert_header(headers, "X-Content-Type-Options: nosniff");
    assert_header(headers, "Cache-Control: no-store");
    free(headers);
    return page;
}

/* ---- any policy: the whole refusal catalogue --------------------------- */

static void test_any_policy_over_http(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-any", 1);
    wh_start(s, 0);
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"a@example.org\", \"b@example.org\"]}");
    char *la = NULL, *lb = NULL;
    assert_int_equal(wh_wait_mail(s, "a@example.org", "Approval requested", 1, WAIT_MS, &la), 1);
    assert_int_equal(wh_wait_mail(s, "b@example.org", "Approval requested", 1, WAIT_MS, &lb), 1);
    assert_non_null(la);
    assert_non_null(lb);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    /* GET and HEAD, many times: the page shows everything and changes nothing. */
    char *before = wh_db_fingerprint(s);
    char *page_a = NULL, *page_b = NULL;
    for (int i = 0; i < 20; i++) {
        free(page_a);
        free(page_b);
        page_a = get_page(la, 200);
        page_b = get_page(lb, 200);
        assert_int_equal(wh_get("HEAD", la, NULL, NULL), 200);
        assert_int_equal(wh_get("HEAD", lb, NULL, NULL), 200);
    }
    char *after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    free(before);
    free(after);
    char status[32];
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");

    assert_non_null(strstr(page_a, "Disable legacy protocols for u@example.org"));
    assert_non_null(strstr(page_a, "a@example.org"));              /* asked of */
    assert_non_null(strstr(page_a, "&lt;b&gt;not bold&lt;/b&gt;")); /* escaped */
    assert_null(strstr(page_a, "<b>not bold"));
    assert_non_null(strstr(page_a, "IMAP &ndash; used in the last 30 days"));
    assert_non_null(strstr(page_a, "&quot;PopEnabled&quot;: false")); /* exactly what changes */
    assert_non_null(strstr(page_a, "<form method=\"post\">"));
    assert_non_null(strstr(page_a, "name=\"viewport\""));
    assert_null(strstr(page_a, "<script"));
    assert_null(strstr(page_a, "http-equiv=\"refresh\""));
    char *csrf_a = wh_csrf(page_a), *csrf_b = wh_csrf(page_b);
    assert_non_null(csrf_a);
    assert_non_null(csrf_b);

    /* Refusals, none of which decides anything. */
    char *body = form_body(csrf_a, "approve", "");
    assert_int_equal(wh_post(lb, body, NULL, NULL), 403); /* b's link, a's page's token */
    free(body);
    body = form_body("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "approve", "");
    assert_int_equal(wh_post(la, body, NULL, NULL), 403); /* forged */
    free(body);
    body = form_body(csrf_a, "approve", "");
    char *evil_origin[] = {"Origin: http://evil.example", NULL};
    assert_int_equal(wh_post(la, body, evil_origin, NULL), 403);
    char *null_origin[] = {"Origin: null", NULL};
    assert_int_equal(wh_post(la, body, null_origin, NULL), 403);
    char *cross_site[] = {"Sec-Fetch-Site: cross-site", NULL};
    assert_int_equal(wh_post(la, body, cross_site, NULL), 403);
    free(body);
    size_t big_len = 20 * 1024;
    char *big = malloc(big_len + 1);
    memset(big, 'x', big_len);
    memcpy(big, "comment=", 8);
    big[big_len] = '\0';
    assert_int_equal(wh_post(la, big, NULL, NULL), 413);
    free(big);
    body = form_body(csrf_a, "perhaps", "");
    assert_int_equal(wh_post(la, body, NULL, NULL), 400);
    free(body);
    struct tu_http_resp r;
    char *json_ct[] = {"Content-Type: application/json", NULL};
    assert_int_equal(tu_http("POST", la, json_ct, "{\"decision\":\"approve\"}", &r), 0);
    assert_int_equal(r.status, 415);
    tu_http_free(&r);
    assert_int_equal(tu_http("PUT", la, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    char *allow = tu_http_header(&r, "Allow");
    assert_non_null(allow);
    assert_string_equal(allow, "GET, HEAD, POST");
    free(allow);
    tu_http_free(&r);
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");

    /* The real decision, with the page's own token, from the same origin. */
    char origin_line[96];
    snprintf(origin_line, sizeof origin_line, "Origin: %s", s->url);
    char *same_origin[] = {origin_line, "Sec-Fetch-Site: same-origin", "User-Agent: web-test/1", NULL};
    body = form_body(csrf_a, "approve", "Looks right.\r\nFAKE LOG LINE");
    char *page = NULL;
    assert_int_equal(wh_post(la, body, same_origin, &page), 200);
    assert_non_null(strstr(page, "You approved"));
    free(page);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");

    /* Replays and the other approver: already decided (409), and GET says by whom. */
    assert_int_equal(wh_post(la, body, same_origin, NULL), 409);
    free(body);
    body = form_body(csrf_b, "reject", "no");
    assert_int_equal(wh_post(lb, body, NULL, &page), 409);
    assert_non_null(strstr(page, "a@example.org"));
    free(page);
    free(body);
    page = get_page(lb, 200);
    assert_non_null(strstr(page, "Approved by a@example.org"));
    assert_null(strstr(page, "<form"));
    free(page);

    /* Unknown and malformed tokens. */
    char unknown[128];
    snprintf(unknown, sizeof unknown, "%s/a/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", s->url);
    page = get_page(unknown, 404);
    assert_non_null(strstr(page, "Unknown link"));
    free(page);
    snprintf(unknown, sizeof unknown, "%s/a/short", s->url);
    free(get_page(unknown, 404));
    snprintf(unknown, sizeof unknown, "%s/nothing-here", s->url);
    free(get_page(unknown, 404));

    /* Health, API and metrics: the admin token is required. */
    char url[160];
    snprintf(url, sizeof url, "%s/healthz", s->url);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);
    snprintf(url, sizeof url, "%s/api/runs", s->url);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 401);
    char *auth[] = {"Authorization: Bearer test-admin-token-0123456789", NULL};
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"web-test\""));
    tu_http_free(&r);
    snprintf(url, sizeof url, "%s/api/runs/%lld", s->url, (long long)run);
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"approved\""));
    tu_http_free(&r);
    snprintf(url, sizeof url, "%s/api/approvals?all=1", s->url);
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "b@example.org"));
    tu_http_free(&r);
    snprintf(url, sizeof url, "%s/metrics", s->url);
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "assent_approvals{status=\"approved\"} 1"));
    assert_non_null(strstr(r.body, "assent_runs{status=\"succeeded\"} 1"));
    assert_non_null(strstr(r.body, "assent_http_requests_total{route=\"approval\",code=\"200\"}"));
    tu_http_free(&r);

    /* Tokens never reach the log; user text cannot forge a log line. */
    wh_stop(s, SIGTERM);
    char *log = wh_log(s);
    const char *tok_a = strstr(la, "/a/") + 3, *tok_b = strstr(lb, "/a/") + 3;
    assert_null(strstr(log, tok_a));
    assert_null(strstr(log, tok_b));
    assert_null(strstr(log, csrf_a));
    assert_null(strstr(log, "\nFAKE LOG LINE"));
    assert_non_null(strstr(log, "/a/[sha256:"));
    free(log);

    free(csrf_a);
    free(csrf_b);
    free(page_a);
    free(page_b);
    free(la);
    free(lb);
    free(wf);
}

/* ---- concurrency: two (eight) POSTs of one link, one decision ------------ */

struct poster {
    const char *link;
    const char *body;
    long status;
};

static void *post_main(void *arg)
{
    struct poster *p = arg;
    p->status = wh_post(p->link, p->body, NULL, NULL);
    return NULL;
}

static void test_concurrent_posts(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-race", 0);
    wh_start(s, 0);
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"a@example.org\"]}");
    char *la = NULL;
    assert_int_equal(wh_wait_mail(s, "a@example.org", "Approval requested", 1, WAIT_MS, &la), 1);
    char *page = get_page(la, 200);
    char *csrf = wh_csrf(page);
    char *body_ok = form_body(csrf, "approve", "first");
    char *body_no = form_body(csrf, "reject", "second");
    enum { N = 8 };
    pthread_t th[N];
    struct poster p[N];
    for (int i = 0; i < N; i++) {
        p[i] = (struct poster){la, i % 2 ? body_no : body_ok, 0};
        pthread_create(&th[i], NULL, post_main, &p[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += p[i].status == 200;
        conflict += p[i].status == 409;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, N - 1);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    wh_stop(s, SIGTERM);
    free(body_ok);
    free(body_no);
    free(csrf);
    free(page);
    free(la);
    free(wf);
}

/* ---- rate limit of wrong tokens ----------------------------------------- */

static void test_rate_limit(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-rate", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_BAD_TOKEN_LIMIT=5");
    wh_start(s, 0);
    char url[128];
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof url, "%s/a/%043d", s->url, i);
        assert_int_equal(wh_get("GET", url, NULL, NULL), 404);
    }
    snprintf(url, sizeof url, "%s/a/%043d", s->url, 99);
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 429);
    char *ra = tu_http_header(&r, "Retry-After");
    assert_non_null(ra);
    assert_true(strtol(ra, NULL, 10) > 0);
    free(ra);
    tu_http_free(&r);
    /* POSTs from the same address are refused too. */
    assert_int_equal(wh_post(url, "csrf=x&decision=approve", NULL, NULL), 429);
    wh_stop(s, SIGTERM);
}

/* ---- all and sequential --------------------------------------------------- */

static long decide_link(const char *link, const char *decision, const char *comment)
{
    char *page = get_page(link, 200);
    char *csrf = wh_csrf(page);
    assert_non_null(csrf);
    char *body = form_body(csrf, decision, comment);
    long st = wh_post(link, body, NULL, NULL);
    free(body);
    free(csrf);
    free(page);
    return st;
}

static void test_all_and_sequential(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-policies", 0);
    wh_start(s, 0);
    char status[32], outcome[32];

    /* all: every approver must approve. */
    char *wf_all = wh_workflow("all", "P1D", NULL, NULL, 1);
    int64_t run = wh_submit(s, wf_all, "{\"approvers\": [\"c@example.org\", \"d@example.org\"]}");
    char *lc = NULL, *ld = NULL;
    assert_int_equal(wh_wait_mail(s, "c@example.org", "Approval requested", 1, WAIT_MS, &lc), 1);
    assert_int_equal(wh_wait_mail(s, "d@example.org", "Approval requested", 1, WAIT_MS, &ld), 1);
    assert_int_equal(decide_link(lc, "approve", ""), 200);
    char *page = get_page(lc, 200);
    assert_non_null(strstr(page, "waits for the other approvers"));
    free(page);
    tu_sleep_ms(300);
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");
    /* A rejection needs a comment here: 400 with the form again. */
    assert_int_equal(decide_link(ld, "reject", ""), 400);
    assert_int_equal(decide_link(ld, "approve", ""), 200);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    free(lc);
    free(ld);

    /* sequential: only the current approver has a link; a rejection rejects. */
    char *wf_seq = wh_workflow("sequential", "P1D", NULL, NULL, 0);
    run = wh_submit(s, wf_seq, "{\"approvers\": [\"e@example.org\", \"f@example.org\", \"g@example.org\"]}");
    char *le = NULL, *lf = NULL;
    assert_int_equal(wh_wait_mail(s, "e@example.org", "Approval requested", 1, WAIT_MS, &le), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);
    assert_int_equal(wh_count_mail(s, "f@example.org"), 0);
    assert_int_equal(decide_link(le, "approve", "ok from e"), 200);
    assert_int_equal(wh_wait_mail(s, "f@example.org", "Approval requested", 1, WAIT_MS, &lf), 1);
    assert_int_equal(wh_count_mail(s, "g@example.org"), 0);
    assert_int_equal(decide_link(lf, "reject", "not f"), 200);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "rejected");
    assert_int_equal(wh_count_mail(s, "g@example.org"), 0);
    free(le);
    free(lf);

    wh_stop(s, SIGTERM);
    free(wf_all);
    free(wf_seq);
}

/* ---- reminders, expiry and escalation across kill -9 ----------------------- */

static void test_reminders_expiry_restart(void **state)
{
    struct wh_server *s = *state;
    const long long hour = 3600LL * 1000;
    wh_init(s, "web-expiry", 0);
    wh_start(s, 0);
    char *wf = wh_workflow("any", "P1D", "PT6H", "boss@example.org", 0);
    int64_t run_exp = wh_submit(s, wf, "{\"approvers\": [\"h@example.org\"]}");
    int64_t run_ok = wh_submit(s, wf, "{\"approvers\": [\"i@example.org\"]}");
    char *lh = NULL, *li = NULL, *lh2 = NULL;
    assert_int_equal(wh_wait_mail(s, "h@example.org", "Approval requested", 1, WAIT_MS, &lh), 1);
    assert_int_equal(wh_wait_mail(s, "i@example.org", "Approval requested", 1, WAIT_MS, &li), 1);
    assert_int_equal(wh_wait_run(s, run_exp, "waiting", WAIT_MS), 0);
    assert_int_equal(wh_wait_run(s, run_ok, "waiting", WAIT_MS), 0);

    /* Crash while waiting, come back 6 hours later: a reminder with a new link. */
    wh_stop(s, SIGKILL);
    wh_start(s, 6 * hour + 60000);
    assert_int_equal(wh_wait_mail(s, "h@example.org", "Reminder:", 1, WAIT_MS, &lh2), 1);
    assert_non_null(lh2);
    assert_string_not_equal(lh, lh2);
    free(get_page(lh, 200));  /* the first link still works */
    free(get_page(lh2, 200)); /* and so does the reminder's */
    /* The other approval still works after the crash. */
    assert_int_equal(decide_link(li, "approve", "after restart"), 200);
    assert_int_equal(wh_wait_run(s, run_ok, "succeeded", WAIT_MS), 0);
    char *page = get_page(lh, 200);
    char *csrf = wh_csrf(page);
    free(page);

    /* Crash again; a day later the approval expires and escalates. */
    wh_stop(s, SIGKILL);
    wh_start(s, 24 * hour + 120000);
    assert_int_equal(wh_wait_run(s, run_exp, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run_exp, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "expired");
    assert_int_equal(wh_wait_mail(s, "boss@example.org", "Approval expired", 1, WAIT_MS, NULL), 1);
    page = get_page(lh, 410);
    assert_non_null(strstr(page, "expired"));
    assert_null(strstr(page, "<form"));
    free(page);
    free(get_page(lh2, 410));
    char *body = form_body(csrf, "approve", "too late");
    assert_int_equal(wh_post(lh, body, NULL, NULL), 410);
    free(body);
    /* One request email per approver despite two crashes; h got exactly one
     * reminder (the expiry came before the next, and missed ones are not
     * sent in a burst). */
    assert_int_equal(wh_wait_mail(s, "i@example.org", "Approval requested", 1, 0, NULL), 1);
    assert_int_equal(wh_wait_mail(s, "h@example.org", "Approval requested", 1, 0, NULL), 1);
    assert_int_equal(wh_wait_mail(s, "h@example.org", "Reminder:", 1, 0, NULL), 1);
    wh_stop(s, SIGTERM);

    free(csrf);
    free(lh);
    free(lh2);
    free(li);
    free(wf);
}

/* ---- assent approvals / assent decide -------------------------------------- */

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

static void test_cli_approvals_and_decide(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-cli", 0);
    wh_start(s, 0);
    char *wf = wh_workflow("all", "P1D", NULL, NULL, 0);
    int64_t run1 = wh_submit(s, wf, "{\"approvers\": [\"j@example.org\", \"k@example.org\"]}");
    int64_t run2 = wh_submit(s, wf, "{\"approvers\": [\"l@example.org\"]}");
    char *lj = NULL;
    assert_int_equal(wh_wait_mail(s, "j@example.org", "Approval requested", 1, WAIT_MS, &lj), 1);
    assert_int_equal(wh_wait_mail(s, "l@example.org", "Approval requested", 1, WAIT_MS, NULL), 1);
    assert_int_equal(wh_wait_run(s, run1, "waiting", WAIT_MS), 0);
    assert_int_equal(wh_wait_run(s, run2, "waiting", WAIT_MS), 0);

    char *args_list[] = {"approvals", NULL};
    char *out = run_cli(s, args_list, 0);
    assert_non_null(strstr(out, "APPROVER"));
    assert_non_null(strstr(out, "j@example.org"));
    assert_non_null(strstr(out, "k@example.org"));
    assert_non_null(strstr(out, "l@example.org"));
    free(out);
    char *args_json[] = {"approvals", "--json", NULL};
    out = run_cli(s, args_json, 0);
    json_t *list = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(list), 3);
    long long id_run2 = 0;
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
        if (json_integer_value(json_object_get(row, "run_id")) == run2)
            id_run2 = json_integer_value(json_object_get(row, "approval_id"));
    json_decref(list);
    assert_true(id_run2 > 0);

    /* By link token (here the whole link): answers as j, through the policy. */
    char *args_tok[] = {"decide", lj, "approve", "--as", "alice", "--comment", "by phone", NULL};
    out = run_cli(s, args_tok, 0);
    assert_non_null(strstr(out, "approval is now pending")); /* policy all: k still to answer */
    /* --as names who answered; the OS user who typed it is recorded too. */
    assert_non_null(strstr(out, "recorded as alice (OS user "));
    free(out);
    out = run_cli(s, args_tok, 1); /* the link is used */
    free(out);
    /* By approval id: an administrator decides the whole approval. */
    char id_text[32];
    snprintf(id_text, sizeof id_text, "%lld", id_run2);
    char *args_id[] = {"decide", id_text, "reject", "--comment", "not now", NULL};
    out = run_cli(s, args_id, 0);
    assert_non_null(strstr(out, "approval is now rejected"));
    free(out);
    assert_int_equal(wh_wait_run(s, run2, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run2, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "rejected");
    char *args_bad[] = {"decide", "999999", "approve", NULL};
    free(run_cli(s, args_bad, 4));
    char *args_usage[] = {"decide", id_text, "maybe", NULL};
    free(run_cli(s, args_usage, 2));

    /* The page of j's link shows the terminal answer; run 1 still waits for k. */
    char *page = get_page(lj, 200);
    assert_non_null(strstr(page, "You approved this request"));
    free(page);
    out = run_cli(s, args_list, 0);
    assert_non_null(strstr(out, "k@example.org"));
    assert_null(strstr(out, "j@example.org"));
    assert_null(strstr(out, "l@example.org"));
    free(out);

    /* Cancelling the run closes every link: the page says withdrawn (410). */
    char *lk = NULL;
    assert_int_equal(wh_wait_mail(s, "k@example.org", "Approval requested", 1, WAIT_MS, &lk), 1);
    page = get_page(lk, 200);
    char *csrf = wh_csrf(page);
    free(page);
    char run_text[32];
    snprintf(run_text, sizeof run_text, "%lld", (long long)run1);
    char *args_cancel[] = {"cancel", run_text, NULL};
    free(run_cli(s, args_cancel, 0));
    page = get_page(lk, 410);
    assert_non_null(strstr(page, "withdrawn"));
    assert_null(strstr(page, "<form"));
    free(page);
    char *body = form_body(csrf, "approve", "");
    assert_int_equal(wh_post(lk, body, NULL, NULL), 410);
    free(body);
    free(csrf);
    out = run_cli(s, args_list, 0);
    assert_null(strstr(out, "k@example.org"));
    free(out);
    free(lk);
    wh_stop(s, SIGTERM);
    free(lj);
    free(wf);
}

/* ---- listings: whom a run is about; approvals of ended runs -------------- */

/* The element of a JSON array whose key `k` is the integer v (borrowed), or NULL. */
static json_t *find_by(json_t *arr, const char *k, long long v)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
        if (json_integer_value(json_object_get(e, k)) == v)
            return e;
    return NULL;
}

static void expect_str(const json_t *o, const char *k, const char *want)
{
    const json_t *v = json_object_get(o, k);
    if (!want) {
        if (!json_is_null(v))
            fail_msg("\"%s\" should be null", k);
        return;
    }
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
        fail_msg("\"%s\" is %s, not \"%s\"", k, json_is_string(v) ? json_string_value(v) : "?", want);
}

/* GET an API route with the admin token; the parsed body (caller decrefs). */
static json_t *api_get(struct wh_server *s, const char *route, long want_status)
{
    char url[300];
    snprintf(url, sizeof url, "%s%s", s->url, route);
    char *auth[] = {"Authorization: Bearer test-admin-token-0123456789", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("GET", url, auth, NULL, &r), 0);
    if (r.status != want_status)
        fail_msg("GET %s: %ld, expected %ld\n%s", route, r.status, want_status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    tu_http_free(&r);
    assert_non_null(j);
    return j;
}

static void test_listings_user_title_withdrawn(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-list", 1);
    wh_start(s, 0);
    char *base = wh_workflow("any", "P1D", NULL, NULL, 0);
    json_t *def = json_loads(base, 0, NULL);
    free(base);
    json_t *inputs = json_object_get(def, "input");
    json_object_set_new(inputs, "user", json_pack("{s:s}", "type", "string"));
    json_object_set_new(inputs, "display_name", json_pack("{s:s}", "type", "string"));
    char *plain = json_dumps(def, JSON_INDENT(2));
    json_object_set_new(def, "name", json_string("web-titled"));
    json_object_set_new(def, "title", json_string("${input.user} (${input.display_name})"));
    char *titled = json_dumps(def, JSON_INDENT(2));
    json_decref(def);
    int64_t run_a = wh_submit(s, titled, "{\"approvers\": [\"m@example.org\"], \"user\": "
                                         "\"ada@contoso.com\", \"display_name\": \"Ada Lovelace\"}");
    int64_t run_b = wh_submit(s, plain, "{\"approvers\": [\"n@example.org\"], \"user\": "
                                        "\"bob@contoso.com\"}");
    int64_t run_c = wh_submit(s, plain, "{\"approvers\": [\"o@example.org\"]}");
    assert_int_equal(wh_wait_mail(s, "m@example.org", "Approval requested", 1, WAIT_MS, NULL), 1);
    assert_int_equal(wh_wait_mail(s, "n@example.org", "Approval requested", 1, WAIT_MS, NULL), 1);
    assert_int_equal(wh_wait_mail(s, "o@example.org", "Approval requested", 1, WAIT_MS, NULL), 1);
    assert_int_equal(wh_wait_run(s, run_a, "waiting", WAIT_MS), 0);
    assert_int_equal(wh_wait_run(s, run_b, "waiting", WAIT_MS), 0);
    assert_int_equal(wh_wait_run(s, run_c, "waiting", WAIT_MS), 0);

    /* assent runs: the title, else input.user, else nothing; the keys that
     * were there stay. */
    char *args_runs_json[] = {"runs", "--json", NULL};
    char *out = run_cli(s, args_runs_json, 0);
    json_t *runs = json_loads(out, 0, NULL);
    free(out);
    json_t *ra = find_by(runs, "id", run_a), *rb = find_by(runs, "id", run_b),
           *rc_ = find_by(runs, "id", run_c);
    assert_non_null(ra);
    assert_non_null(rb);
    assert_non_null(rc_);
    expect_str(ra, "title", "ada@contoso.com (Ada Lovelace)");
    expect_str(ra, "user", "ada@contoso.com");
    expect_str(ra, "workflow", "web-titled");
    expect_str(ra, "status", "waiting");
    expect_str(rb, "title", NULL);
    expect_str(rb, "user", "bob@contoso.com");
    expect_str(rc_, "title", NULL);
    expect_str(rc_, "user", NULL);
    json_decref(runs);
    char *args_runs[] = {"runs", NULL};
    out = run_cli(s, args_runs, 0);
    assert_non_null(strstr(out, " USER "));
    assert_non_null(strstr(out, "ada@contoso.com (Ada Lovelace)"));
    assert_non_null(strstr(out, "bob@contoso.com"));
    free(out);

    /* assent approvals and the API say the same. */
    char *args_appr_json[] = {"approvals", "--json", NULL};
    out = run_cli(s, args_appr_json, 0);
    json_t *appr = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(appr), 3);
    expect_str(find_by(appr, "run_id", run_a), "title", "ada@contoso.com (Ada Lovelace)");
    expect_str(find_by(appr, "run_id", run_a), "approver", "m@example.org");
    expect_str(find_by(appr, "run_id", run_b), "user", "bob@contoso.com");
    expect_str(find_by(appr, "run_id", run_c), "user", NULL);
    json_decref(appr);
    char *args_appr[] = {"approvals", NULL};
    out = run_cli(s, args_appr, 0);
    assert_non_null(strstr(out, "ada@contoso.com (Ada Lovelace)"));
    assert_non_null(strstr(out, "bob@contoso.com"));
    free(out);
    json_t *api = api_get(s, "/api/runs", 200);
    expect_str(find_by(json_object_get(api, "runs"), "id", run_a), "title",
               "ada@contoso.com (Ada Lovelace)");
    expect_str(find_by(json_object_get(api, "runs"), "id", run_b), "user", "bob@contoso.com");
    assert_non_null(json_object_get(find_by(json_object_get(api, "runs"), "id", run_b), "input"));
    json_decref(api);
    api = api_get(s, "/api/approvals", 200);
    expect_str(find_by(json_object_get(api, "approvals"), "run_id", run_a), "user",
               "ada@contoso.com");
    json_decref(api);

    /* A cancelled run's approval that was still pending is withdrawn. */
    char run_text[32];
    snprintf(run_text, sizeof run_text, "%lld", (long long)run_a);
    char *args_cancel[] = {"cancel", run_text, NULL};
    free(run_cli(s, args_cancel, 0));
    char *args_all[] = {"approvals", "--all", "--json", NULL};
    out = run_cli(s, args_all, 0);
    appr = json_loads(out, 0, NULL);
    free(out);
    json_t *wa = find_by(appr, "run_id", run_a);
    expect_str(wa, "status", "withdrawn");
    expect_str(wa, "approver_status", "withdrawn");
    expect_str(wa, "run_status", "cancelled");
    expect_str(find_by(appr, "run_id", run_b), "status", "pending");
    json_decref(appr);
    char *args_all_text[] = {"approvals", "--all", NULL};
    out = run_cli(s, args_all_text, 0);
    assert_non_null(strstr(out, "withdrawn/withdrawn (run cancelled)"));
    free(out);
    char *args_wd[] = {"approvals", "--status", "withdrawn", "--json", NULL};
    out = run_cli(s, args_wd, 0);
    appr = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(appr), 1);
    assert_non_null(find_by(appr, "run_id", run_a));
    json_decref(appr);
    char *args_pending[] = {"approvals", "--status", "pending", "--json", NULL};
    out = run_cli(s, args_pending, 0);
    appr = json_loads(out, 0, NULL);
    free(out);
    assert_int_equal(json_array_size(appr), 2);
    assert_null(find_by(appr, "run_id", run_a));
    json_decref(appr);
    char *args_bad[] = {"approvals", "--status", "gone", NULL};
    free(run_cli(s, args_bad, 2));
    api = api_get(s, "/api/approvals?status=withdrawn", 200);
    assert_int_equal(json_array_size(json_object_get(api, "approvals")), 1);
    expect_str(json_array_get(json_object_get(api, "approvals"), 0), "status", "withdrawn");
    expect_str(json_array_get(json_object_get(api, "approvals"), 0), "title",
               "ada@contoso.com (Ada Lovelace)");
    json_decref(api);
    api = api_get(s, "/api/approvals?all=1", 200);
    expect_str(find_by(json_object_get(api, "approvals"), "run_id", run_a), "status", "withdrawn");
    json_decref(api);
    json_decref(api_get(s, "/api/approvals?status=gone", 400));

    wh_stop(s, SIGTERM);
    free(plain);
    free(titled);
}

/* ---- details too large to show --------------------------------------------- */

/* The only .eml in the mail directory with soft line breaks removed (malloc'd). */
static char *only_mail(struct wh_server *s, size_t *raw_size)
{
    DIR *d = opendir(s->mail_dir);
    assert_non_null(d);
    struct dirent *e;
    char *msg = NULL;
    int n = 0;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".eml") != 0)
            continue;
        char *path = tu_path(s->mail_dir, e->d_name);
        free(msg);
        msg = tu_read_file(path);
        free(path);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
    assert_non_null(msg);
    *raw_size = strlen(msg);
    char *o = msg;
    for (const char *p = msg; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n')
            p += 3;
        else if (p[0] == '=' && p[1] == '\n')
            p += 2;
        else
            *o++ = *p++;
    }
    *o = '\0';
    return msg;
}

/*
 * An approval whose details (and so its default request) are far larger
 * than a page shows: about 600 KB of JSON, which rendered twice used to
 * pass the 1 MiB page cap and answer 500.  The page answers 200, stays
 * under 64 KiB, shows the notice with the request's fingerprint, and still
 * decides; the email is small too; the log says why.
 */
static void test_huge_details_notice(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-huge", 0);
    wh_start(s, 0);
    json_t *rows = json_array();
    char line[128];
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof line, "user%05d@example.org <b>row</b> %0*d", i, 80, i);
        json_array_append_new(rows, json_string(line));
    }
    json_t *wf = json_pack(
        "{s:s, s:s, s:{s:{s:s, s:b}}, s:s, s:{s:{s:s, s:{s:s, s:s, s:s, s:{s:o}}, s:{s:s, s:s}},"
        " s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}}}",
        "name", "web-huge", "version", "1",
        "input", "approvers", "type", "array", "required", 1,
        "start", "ask",
        "steps",
        "ask", "type", "approval", "params", "approvers", "${input.approvers}",
        "subject", "Disable legacy protocols for 5000 users", "expiry", "P1D",
        "details", "users", rows,
        "next", "approved", "ok", "rejected", "no",
        "ok", "type", "log", "params", "message", "approved",
        "no", "type", "log", "params", "message", "rejected");
    assert_non_null(wf);
    char *wf_text = json_dumps(wf, JSON_COMPACT);
    json_decref(wf);
    assert_true(strlen(wf_text) > 500 * 1000);
    int64_t run = wh_submit(s, wf_text, "{\"approvers\": [\"a@example.org\"]}");
    free(wf_text);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, "a@example.org", "Approval requested", 1, WAIT_MS, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    char *page = get_page(link, 200);
    assert_true(strlen(page) < 64 * 1024);
    assert_non_null(strstr(page, "The details are too large to show here"));
    assert_non_null(strstr(page, "The request is too large to show here"));
    assert_null(strstr(page, "user00000@example.org")); /* none of the content */
    /* The notice names the fingerprint that the page states and the run records. */
    const char *fp = strstr(page, "Fingerprint of this request (SHA-256): <code>");
    assert_non_null(fp);
    char hash[65];
    assert_int_equal(sscanf(fp + strlen("Fingerprint of this request (SHA-256): <code>"), "%64[0-9a-f]", hash), 1);
    assert_int_equal(strlen(hash), 64);
    char notice[160];
    snprintf(notice, sizeof notice, "whose fingerprint (SHA-256) is <code>%s</code>", hash);
    assert_non_null(strstr(page, notice));

    size_t raw_size = 0;
    char *mail = only_mail(s, &raw_size);
    assert_true(raw_size < 64 * 1024);
    assert_non_null(strstr(mail, "The details are too large to show here"));
    assert_non_null(strstr(mail, hash));
    free(mail);

    char *csrf = wh_csrf(page);
    assert_non_null(csrf);
    char *body = form_body(csrf, "approve", "");
    assert_int_equal(wh_post(link, body, NULL, NULL), 200);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    free(body);
    free(csrf);
    free(page);
    free(link);
    wh_stop(s, SIGTERM);
    char *log = wh_log(s);
    assert_non_null(strstr(log, "details not shown: "));
    assert_non_null(strstr(log, "a notice with the request's fingerprint stands in"));
    free(log);
}

/* ---- slow clients, per-address connections, TLS --------------------------- */

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* 1 when the peer closed (EOF or reset) within timeout_ms. */
static int closed_within(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[512];
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (poll(&p, 1, 100) > 0) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0)
                return 1;
        }
    }
    return 0;
}

static void test_slow_client_and_limits(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-limits", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_TIMEOUT_SECONDS=2");
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_PER_IP_CONNECTIONS=3");
    wh_start(s, 0);

    /* A client that trickles a header line every 300 ms never idles, yet the
     * absolute deadline ends it. */
    int slow = connect_local(s->port);
    const char *start = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    assert_int_equal(send(slow, start, strlen(start), MSG_NOSIGNAL), (ssize_t)strlen(start));
    int closed = 0;
    for (int i = 0; i < 60 && !closed; i++) {
        char line[32];
        snprintf(line, sizeof line, "X-Slow-%d: y\r\n", i);
        if (send(slow, line, strlen(line), MSG_NOSIGNAL) < 0)
            closed = 1;
        else
            closed = closed_within(slow, 300);
    }
    assert_true(closed);
    close(slow);

    /* Per-address connection limit: the fourth concurrent connection is refused. */
    int held[3];
    char buf[256];
    const char *keep = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        /* One answered request each proves the server holds the connection.
         * The slow connection above may still count against the address for
         * a moment after the server dropped it (its clean-up runs on the
         * server's own thread), so a refused connection is tried again a few
         * times before the test gives up. */
        ssize_t got = -1;
        for (int attempt = 0; attempt < 20 && got <= 0; attempt++) {
            if (attempt) {
                close(held[i]);
                tu_sleep_ms(100);
            }
            held[i] = connect_local(s->port);
            assert_int_equal(send(held[i], keep, strlen(keep), MSG_NOSIGNAL), (ssize_t)strlen(keep));
            struct pollfd hp = {.fd = held[i], .events = POLLIN};
            if (poll(&hp, 1, 10000) > 0)
                got = recv(held[i], buf, sizeof buf, 0);
        }
        assert_true(got > 0);
    }
    int extra = connect_local(s->port);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    send(extra, req, strlen(req), MSG_NOSIGNAL);
    struct pollfd p = {.fd = extra, .events = POLLIN};
    assert_true(poll(&p, 1, 5000) > 0);
    ssize_t n = recv(extra, buf, sizeof buf - 1, 0);
    assert_true(n <= 0); /* closed without an answer */
    close(extra);
    for (int i = 0; i < 3; i++)
        close(held[i]);
    tu_sleep_ms(200);
    char url[96];
    snprintf(url, sizeof url, "%s/healthz", s->url);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);

    /* Oversized request headers: refused by the server, not crashed on. */
    struct tu_http_resp r;
    char *huge = malloc(40 * 1024);
    memcpy(huge, "X-Huge: ", 8);
    memset(huge + 8, 'h', 40 * 1024 - 9);
    huge[40 * 1024 - 1] = '\0';
    char *hdrs[] = {huge, NULL};
    tu_http("GET", url, hdrs, NULL, &r);
    assert_true(r.status == 431 || r.status == 413 || r.status == 400);
    tu_http_free(&r);
    free(huge);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);

    wh_stop(s, SIGTERM);
    char *log = wh_log(s);
    assert_non_null(strstr(log, "request deadline"));
    free(log);
}

/* A connection to 127.0.0.1:port from the loopback address `from`
 * (127.0.0.2, ...: all of 127/8 is loopback on Linux). */
static int connect_from(const char *from, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, from, &src.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Open slow connections: each sends half a request header and stops. */
static void open_slow(int port, int *fds, int n)
{
    const char *part = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (int i = 0; i < n; i++) {
        char from[32];
        snprintf(from, sizeof from, "127.0.0.%d", 2 + i % 8);
        fds[i] = connect_from(from, port);
        assert_int_equal(send(fds[i], part, strlen(part), MSG_NOSIGNAL), (ssize_t)strlen(part));
    }
}

/*
 * Slowloris: more slow connections than web_max_connections, from eight
 * addresses (so web_per_ip_connections does not stop them first), each
 * holding half a request header.  The request deadline is far away, so
 * only eviction at the connection limit can make room: /healthz must still
 * be answered, the oldest slow connection is the one dropped, and a second
 * wave (the clients reconnecting) changes nothing.
 */
static void test_slowloris_evicts_oldest(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-slowloris", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_MAX_CONNECTIONS=8");
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_PER_IP_CONNECTIONS=2");
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_TIMEOUT_SECONDS=600");
    wh_start(s, 0);
    char url[96];
    snprintf(url, sizeof url, "%s/healthz", s->url);

    enum { N_SLOW = 16 };
    int wave1[N_SLOW], wave2[N_SLOW];
    open_slow(s->port, wave1, N_SLOW);
    /* Without eviction the eight slots stay held for 600 s and this GET
     * times out (30 s) instead. */
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);
    /* The first slow connection was the oldest without a request. */
    assert_true(closed_within(wave1[0], 20000 * tu_timeout_scale()));

    open_slow(s->port, wave2, N_SLOW);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);
    assert_int_equal(wh_get("GET", url, NULL, NULL), 200);
    for (int i = 0; i < N_SLOW; i++) {
        close(wave1[i]);
        close(wave2[i]);
    }
    wh_stop(s, SIGTERM);
    char *log = wh_log(s);
    assert_non_null(strstr(log, "at the limit of 8 connections: closed"));
    assert_null(strstr(log, "request deadline"));
    free(log);
}

/* Send raw bytes on a new connection and return the status of the answer
 * (0 when the connection closed without one). */
static int raw_status(int port, const char *head, const char *body, size_t body_len)
{
    int fd = connect_local(port);
    int status = 0;
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head)) {
        size_t off = 0;
        while (off < body_len) {
            ssize_t n = send(fd, body + off, body_len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        char buf[64] = "";
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000 * tu_timeout_scale()) > 0 && recv(fd, buf, sizeof buf - 1, 0) > 12)
            sscanf(buf, "HTTP/1.1 %d", &status);
    }
    close(fd);
    return status;
}

/* Any POST whose body passes the limit gets 413, chunked or not, before the
 * token is even looked at (no rate-limit failure is counted for it). */
static void test_body_limit_chunked(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-body", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_WEB_BAD_TOKEN_LIMIT=1");
    wh_start(s, 0);
    const char *tok = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    size_t big = 20 * 1024;
    char *body = malloc(big * 2);
    char head[512];
    /* One chunk past the limit, then many small chunks past it. */
    int n = snprintf(body, big * 2, "%zx\r\n", big);
    memset(body + n, 'x', big);
    n += (int)big;
    n += snprintf(body + n, big * 2 - (size_t)n, "\r\n0\r\n\r\n");
    snprintf(head, sizeof head, "POST /a/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                                "Content-Type: application/x-www-form-urlencoded\r\n\r\n", tok);
    assert_int_equal(raw_status(s->port, head, body, (size_t)n), 413);
    n = 0;
    for (int i = 0; i < 20; i++) {
        n += snprintf(body + n, big * 2 - (size_t)n, "400\r\n");
        memset(body + n, 'y', 1024);
        n += 1024;
        n += snprintf(body + n, big * 2 - (size_t)n, "\r\n");
    }
    n += snprintf(body + n, big * 2 - (size_t)n, "0\r\n\r\n");
    assert_int_equal(raw_status(s->port, head, body, (size_t)n), 413);
    /* With Content-Length, and chunked to a route that takes no body. */
    snprintf(head, sizeof head, "POST /a/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n",
             tok, big);
    memset(body, 'z', big);
    assert_int_equal(raw_status(s->port, head, body, big), 413);
    const char *chunk = "5\r\nhello\r\n0\r\n\r\n";
    assert_int_equal(raw_status(s->port,
                                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                                chunk, strlen(chunk)), 413);
    /* None of it counted as a bad token: a small POST still reaches the
     * token check (404 for an unknown link, not 429). */
    char url[160];
    snprintf(url, sizeof url, "%s/a/%s", s->url, tok);
    long st = wh_post(url, "decision=approve", NULL, NULL);
    assert_true(st == 404 || st == 403 || st == 400);
    free(body);
    wh_stop(s, SIGTERM);
}

static void test_tls(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-tls", 0);
    char *certs = tu_path(s->dir, "certs");
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/integration/smtp_test_server.py", tu_source_dir());
    char *mk[] = {"/usr/bin/python3", script, "--make-certs", certs, NULL};
    if (tu_run(mk, NULL, 60000, NULL, NULL) != 0) {
        free(certs);
        skip();
    }
    char *key = tu_path(certs, "server.key");
    chmod(key, 0600);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_TLS_CERT_FILE=%s/server.pem", certs);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_TLS_KEY_FILE=%s", key);
    snprintf(s->url, sizeof s->url, "https://127.0.0.1:%d", s->port);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_PUBLIC_URL=%s", s->url);
    wh_start(s, 0);
    CURL *c = curl_easy_init();
    char url[96], ca[1024];
    snprintf(url, sizeof url, "%s/healthz", s->url);
    snprintf(ca, sizeof ca, "%s/ca.pem", certs);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    curl_easy_cleanup(c);
    fclose(devnull);
    /* Plain HTTP on the TLS port gets no page. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", s->port);
    assert_true(wh_get("GET", url, NULL, NULL) != 200);
    wh_stop(s, SIGTERM);
    free(key);
    free(certs);
}

int main(int argc, char **argv)
{
    cli_register_types();
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_any_policy_over_http, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_posts, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_all_and_sequential, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_reminders_expiry_restart, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_cli_approvals_and_decide, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_listings_user_title_withdrawn, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_huge_details_notice, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_and_limits, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_slowloris_evicts_oldest, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_body_limit_chunked, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_tls, wh_setup, wh_teardown),
    };
    if (tu_select_test("test_web_approval", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
