/*
 * test_console.c - the admin console over real HTTP (libcurl) against a
 * running `assent serve` with a temporary database: /console/ and a page
 * without a session lead to the login page; login with a good token, a bad
 * one, without the form's CSRF token or its cookie; the cookie's attributes
 * (HttpOnly, SameSite=Strict, Path, Max-Age, no Secure over plain HTTP) and
 * that only its hash is stored; a form without the session's CSRF token,
 * one from another site, one of a role too low (403); GETs of every page
 * change nothing; an operator decides an approval; logout ends the session
 * (and the cookie stops working), so does revoking the token; a session
 * made on one node works on a second node sharing the database; login and
 * logout are in the audit chain with the token's name.
 */
#include "tests/testutil.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/encode.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "db/db.h"
#include "db/db_events.h"
#include "db/db_tokens.h"
#include "tests/integration/web_harness.h"
#include "web/api_token.h"

#define WAIT_MS 30000

/* A browser's cookie jar for one server (the console's two cookies). */
struct browser {
    char login[128];
    char session[128];
    char set_cookie[512]; /* the last Set-Cookie of assent_console, whole */
};

/* Take the Set-Cookie headers of a response into the jar. */
static void take_cookies(struct browser *br, const char *headers)
{
    for (const char *h = headers; h && *h;) {
        size_t n = strcspn(h, "\r\n");
        if (n > 12 && strncasecmp(h, "Set-Cookie: ", 12) == 0) {
            const char *v = h + 12;
            size_t vl = strcspn(v, ";\r\n");
            char *slot = NULL;
            size_t slot_size = 0;
            if (strncmp(v, "assent_console=", 15) == 0) {
                slot = br->session;
                slot_size = sizeof br->session;
                snprintf(br->set_cookie, sizeof br->set_cookie, "%.*s", (int)n - 12, v);
            } else if (strncmp(v, "assent_login=", 13) == 0) {
                slot = br->login;
                slot_size = sizeof br->login;
            }
            if (slot)
                snprintf(slot, slot_size, "%.*s", (int)vl, v);
            if (slot && strstr(v, "Max-Age=0") && (size_t)(strstr(v, "Max-Age=0") - h) < n)
                slot[0] = '\0';
        }
        h += n;
        while (*h == '\r' || *h == '\n')
            h++;
    }
}

/*
 * One request as the browser br (cookies sent, Set-Cookie taken); body
 * (may be NULL) is a urlencoded form; extra (may be NULL) one more header.
 * Returns the status; *r keeps the response (caller frees).
 */
static long req(struct wh_server *s, struct browser *br, const char *method, const char *path,
                const char *body, const char *extra, struct tu_http_resp *r)
{
    char url[512], cookie[300];
    char *headers[4];
    int n = 0;
    snprintf(url, sizeof url, "%s%s", s->url, path);
    if (br && (br->login[0] || br->session[0])) {
        snprintf(cookie, sizeof cookie, "Cookie: %s%s%s", br->login,
                 br->login[0] && br->session[0] ? "; " : "", br->session);
        headers[n++] = cookie;
    }
    if (body)
        headers[n++] = "Content-Type: application/x-www-form-urlencoded";
    if (extra)
        headers[n++] = (char *)extra;
    headers[n] = NULL;
    memset(r, 0, sizeof *r);
    if (tu_http(method, url, headers, body, r) != 0)
        fail_msg("%s %s: no answer", method, url);
    if (br)
        take_cookies(br, r->headers);
    return r->status;
}

/* GET path; returns the status; *page (may be NULL) the body. */
static long get(struct wh_server *s, struct browser *br, const char *path, char **page)
{
    struct tu_http_resp r;
    long st = req(s, br, "GET", path, NULL, NULL, &r);
    if (page)
        *page = strdup(r.body);
    tu_http_free(&r);
    return st;
}

static char *location(const struct tu_http_resp *r)
{
    return tu_http_header(r, "Location");
}

/* Sign in as the browser with token: GET the login page, POST its form.
 * Returns the POST's status. */
static long login(struct wh_server *s, struct browser *br, const char *token)
{
    char *page = NULL;
    assert_int_equal(get(s, br, "/console/login", &page), 200);
    char *csrf = wh_csrf(page);
    assert_non_null(csrf);
    assert_true(br->login[0]);
    char body[512];
    snprintf(body, sizeof body, "csrf=%s&token=%s", csrf, token);
    struct tu_http_resp r;
    long st = req(s, br, "POST", "/console/login", body, NULL, &r);
    if (st == 303) {
        char *loc = location(&r);
        assert_string_equal(loc, "/console/overview");
        free(loc);
    }
    tu_http_free(&r);
    free(csrf);
    free(page);
    return st;
}

/* POST a form of the page at page_path (its CSRF token) to action, with more fields. */
static long post_form(struct wh_server *s, struct browser *br, const char *page_path,
                      const char *action, const char *fields, char **answer, char **loc)
{
    char *page = NULL;
    assert_int_equal(get(s, br, page_path, &page), 200);
    char *csrf = wh_csrf(page);
    assert_non_null(csrf);
    char body[2048];
    snprintf(body, sizeof body, "csrf=%s%s%s", csrf, fields && *fields ? "&" : "",
             fields ? fields : "");
    struct tu_http_resp r;
    long st = req(s, br, "POST", action, body, NULL, &r);
    if (answer)
        *answer = strdup(r.body);
    if (loc)
        *loc = location(&r);
    tu_http_free(&r);
    free(csrf);
    free(page);
    return st;
}

static void make_token(struct wh_server *s, const char *name, enum api_role role, char *token)
{
    struct as_err err = {0};
    if (api_token_create(s->app.db, name, role, 0, "test", time_now_ms(), token,
                         API_TOKEN_LEN + 1, NULL, &err) != AS_OK)
        fail_msg("token %s: %s", name, err.msg);
}

struct count_ctx {
    const char *type;
    const char *actor;
    int n;
};

static int count_events(void *ud, const struct db_event_info *ev)
{
    struct count_ctx *c = ud;
    if (strcmp(ev->type, c->type) != 0)
        return 0;
    if (!c->actor || (ev->data && strstr(ev->data, c->actor)))
        c->n++;
    return 0;
}

/* Audit events of type (with actor in their data when not NULL). */
static int audit_count(struct wh_server *s, const char *type, const char *actor)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct count_ctx ctx = {type, actor, 0};
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, 0, count_events, &ctx, &err), AS_OK);
    db_read_end(s->app.db, c);
    return ctx.n;
}

/* ---- the tests ---------------------------------------------------------------------- */

static void test_login_cookie_csrf_roles(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "console", 0);
    char viewer[API_TOKEN_LEN + 1], oper[API_TOKEN_LEN + 1];
    make_token(s, "watcher", API_ROLE_VIEWER, viewer);
    make_token(s, "ops", API_ROLE_OPERATOR, oper);
    wh_start(s, 0);
    struct tu_http_resp r;

    /* /console/ and /console lead to the login page; a page without a session too. */
    static const char *const entries[] = {"/console/", "/console", "/console/overview",
                                          "/console/users"};
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        assert_int_equal(req(s, NULL, "GET", entries[i], NULL, NULL, &r), 303);
        char *loc = location(&r);
        assert_string_equal(loc, "/console/login");
        free(loc);
        tu_http_free(&r);
    }
    /* The console's own CSP: no script, frames refused; no referrer. */
    assert_int_equal(req(s, NULL, "GET", "/console/login", NULL, NULL, &r), 200);
    char *csp = tu_http_header(&r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_null(strstr(csp, "script-src"));
    free(csp);
    char *referrer = tu_http_header(&r, "Referrer-Policy");
    assert_string_equal(referrer, "no-referrer");
    free(referrer);
    assert_null(strstr(r.body, "<script"));
    tu_http_free(&r);

    /* A bad token: 401, no session. */
    struct browser bad = {0};
    assert_int_equal(login(s, &bad, "assent_notatokenatallnotatokenatallnotatokenatall0"), 401);
    assert_string_equal(bad.session, "");
    /* The right token without the form's CSRF token, or without its cookie: 403. */
    struct browser nocsrf = {0};
    char *page = NULL;
    assert_int_equal(get(s, &nocsrf, "/console/login", &page), 200);
    char body[512];
    snprintf(body, sizeof body, "token=%s", viewer);
    assert_int_equal(req(s, &nocsrf, "POST", "/console/login", body, NULL, &r), 403);
    tu_http_free(&r);
    char *csrf = wh_csrf(page);
    snprintf(body, sizeof body, "csrf=%s&token=%s", csrf, viewer);
    assert_int_equal(req(s, NULL, "POST", "/console/login", body, NULL, &r), 403);
    tu_http_free(&r);
    free(csrf);
    free(page);
    assert_string_equal(nocsrf.session, "");
    assert_int_equal(audit_count(s, "console.login", NULL), 0);

    /* The viewer signs in: the cookie's attributes, the audit event, only a hash stored. */
    struct browser vb = {0};
    assert_int_equal(login(s, &vb, viewer), 303);
    assert_true(strlen(vb.session) > strlen("assent_console=") + 40);
    assert_non_null(strstr(vb.set_cookie, "HttpOnly"));
    assert_non_null(strstr(vb.set_cookie, "SameSite=Strict"));
    assert_non_null(strstr(vb.set_cookie, "Path=/console"));
    assert_non_null(strstr(vb.set_cookie, "Max-Age=28800"));
    assert_null(strstr(vb.set_cookie, "Secure")); /* plain HTTP here */
    assert_int_equal(audit_count(s, "console.login", "watcher"), 1);
    char *db_text = tu_read_file(s->db_path);
    if (db_text) { /* SQLite: the file never holds the cookie */
        assert_null(strstr(db_text, vb.session + strlen("assent_console=")));
        free(db_text);
    }
    char *over = NULL;
    assert_int_equal(get(s, &vb, "/console/overview", &over), 200);
    assert_non_null(strstr(over, "watcher (viewer)"));
    assert_null(strstr(over, "<script"));
    free(over);
    /* Signed in, the login page goes on to the overview. */
    assert_int_equal(req(s, &vb, "GET", "/console/login", NULL, NULL, &r), 303);
    tu_http_free(&r);

    /* GETs change nothing: every page, as the viewer. */
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"boss@example.org\"]}");
    free(wf);
    assert_int_equal(wh_wait_mail(s, "boss@example.org", "Approval requested", 1, WAIT_MS, NULL), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);
    char *before = wh_db_fingerprint(s);
    char run_path[64];
    snprintf(run_path, sizeof run_path, "/console/runs/%lld", (long long)run);
    static const char *const pages[] = {
        "/console/overview",   "/console/users",      "/console/users.csv", "/console/runs",
        "/console/approvals",  "/console/approvals/1", "/console/kpis",     "/console/exceptions",
        "/console/workflows",  "/console/workflows/validate", "/console/logout",
        "/console/runs?status=waiting"};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        long st = get(s, &vb, pages[i], NULL);
        if (st != 200 && !(st == 409 && strcmp(pages[i], "/console/users.csv") == 0))
            fail_msg("GET %s: %ld", pages[i], st);
    }
    assert_int_equal(get(s, &vb, run_path, &page), 200);
    assert_non_null(strstr(page, "class=\"timeline\""));
    free(page);
    char *after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* A viewer may not change anything: 403, nothing done; nor see the tokens. */
    assert_int_equal(get(s, &vb, "/console/tokens", NULL), 403);
    assert_int_equal(post_form(s, &vb, "/console/exceptions", "/console/exceptions",
                               "user=ada%40contoso.com&p.pop=1&reason=test", NULL, NULL),
                     403);
    char path[96];
    snprintf(path, sizeof path, "/console/runs/%lld/cancel", (long long)run);
    assert_int_equal(post_form(s, &vb, "/console/overview", path, "", NULL, NULL), 403);
    assert_int_equal(audit_count(s, "exception.added", NULL), 0);

    /* The operator: a form without the session's CSRF token, or from another
     * site, is refused; with it, the approval is decided as an administrator. */
    struct browser ob = {0};
    assert_int_equal(login(s, &ob, oper), 303);
    snprintf(path, sizeof path, "/console/approvals/1/decide");
    assert_int_equal(req(s, &ob, "POST", path, "decision=approve", NULL, &r), 403);
    tu_http_free(&r);
    assert_int_equal(req(s, &ob, "POST", path, "csrf=AAAAAGsRmL0BmcamdMA3hkpc3kZyfNkBW5X-ZSdXMhIMIrLja9_aBg&decision=approve", NULL, &r), 403);
    tu_http_free(&r);
    /* The viewer's CSRF token is not the operator's. */
    assert_int_equal(get(s, &vb, "/console/overview", &page), 200);
    csrf = wh_csrf(page);
    snprintf(body, sizeof body, "csrf=%s&decision=approve", csrf);
    assert_int_equal(req(s, &ob, "POST", path, body, NULL, &r), 403);
    tu_http_free(&r);
    assert_int_equal(req(s, &ob, "POST", path, body, "Sec-Fetch-Site: cross-site", &r), 403);
    tu_http_free(&r);
    free(csrf);
    free(page);
    char status[32];
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");
    char *loc = NULL;
    assert_int_equal(post_form(s, &ob, "/console/approvals/1", path,
                               "decision=approve&comment=checked+in+the+console", NULL, &loc),
                     303);
    assert_string_equal(loc, "/console/approvals/1?done=decided");
    free(loc);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    assert_int_equal(audit_count(s, "approval.decision", "ops"), 1);
    /* The decision's audit on the approval's page: who, via, address, agent, hash. */
    assert_int_equal(get(s, &vb, "/console/approvals/1", &page), 200);
    assert_non_null(strstr(page, "class=\"decisions\""));
    assert_non_null(strstr(page, "(ops)"));
    assert_non_null(strstr(page, "console"));
    assert_non_null(strstr(page, "127.0.0.1"));
    assert_non_null(strstr(page, "checked in the console"));
    free(page);

    /* Logout: the cookie is cleared and no longer works (the row is gone). */
    char old_session[128];
    snprintf(old_session, sizeof old_session, "%s", vb.session);
    assert_int_equal(post_form(s, &vb, "/console/overview", "/console/logout", "", NULL, &loc), 303);
    assert_string_equal(loc, "/console/login");
    free(loc);
    assert_string_equal(vb.session, "");
    assert_non_null(strstr(vb.set_cookie, "Max-Age=0"));
    snprintf(vb.session, sizeof vb.session, "%s", old_session);
    assert_int_equal(get(s, &vb, "/console/overview", NULL), 303);
    assert_int_equal(audit_count(s, "console.logout", "watcher"), 1);

    /* Revoking the token ends its sessions. */
    struct as_err err = {0};
    assert_int_equal(get(s, &ob, "/console/overview", NULL), 200);
    assert_int_equal(db_api_token_revoke(s->app.db, "ops", "test", time_now_ms(), NULL, &err), AS_OK);
    assert_int_equal(get(s, &ob, "/console/overview", NULL), 303);
    assert_int_equal(login(s, &ob, oper), 401);
    wh_stop(s, SIGTERM);
}

/* Two nodes on one database: a session made on one works on the other,
 * forms included (the CSRF secret is the installation's). */
static void test_session_across_nodes(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "console-a", 0);
    char admin[API_TOKEN_LEN + 1];
    make_token(s, "root", API_ROLE_ADMIN, admin);
    wh_start(s, 0);
    /* Node b: its own folder and port, a's database (its own database, made
     * by the harness, is put back for the cleanup). */
    struct wh_server b;
    wh_init(&b, "console-b", 0);
    char *b_own_db = b.db_path;
    b.db_path = s->db_path;
    wh_start(&b, 0);

    struct browser br = {0};
    assert_int_equal(login(s, &br, admin), 303);
    char *page = NULL;
    assert_int_equal(get(&b, &br, "/console/overview", &page), 200);
    assert_non_null(strstr(page, "root (admin)"));
    free(page);
    /* A form of node b, sent to node a. */
    assert_int_equal(get(&b, &br, "/console/exceptions", &page), 200);
    char *csrf = wh_csrf(page);
    char body[512];
    snprintf(body, sizeof body, "csrf=%s&user=scanner%%40contoso.com&p.smtp=1&reason=MFP&"
                                "expires=P30D", csrf);
    struct tu_http_resp r;
    assert_int_equal(req(s, &br, "POST", "/console/exceptions", body, NULL, &r), 303);
    tu_http_free(&r);
    free(csrf);
    free(page);
    assert_int_equal(audit_count(s, "exception.added", "root"), 1);
    /* An admin makes a token (shown once) and revokes it. */
    char *made = NULL;
    assert_int_equal(post_form(s, &br, "/console/tokens", "/console/tokens",
                               "name=made-here&role=operator&expires=P7D", &made, NULL),
                     200);
    assert_non_null(strstr(made, "made-here"));
    const char *shown = strstr(made, "<code>assent_");
    assert_non_null(shown);
    char made_token[API_TOKEN_LEN + 1];
    snprintf(made_token, sizeof made_token, "%.*s", API_TOKEN_LEN, shown + 6);
    free(made);
    struct browser other = {0};
    assert_int_equal(login(&b, &other, made_token), 303);
    assert_int_equal(audit_count(s, "token.created", "made-here"), 1);
    assert_int_equal(post_form(s, &br, "/console/tokens", "/console/tokens/revoke",
                               "name=made-here", NULL, NULL),
                     303);
    assert_int_equal(get(s, &other, "/console/overview", NULL), 303);
    /* Logout on a ends the session on b. */
    char keep[128];
    snprintf(keep, sizeof keep, "%s", br.session);
    assert_int_equal(post_form(s, &br, "/console/overview", "/console/logout", "", NULL, NULL), 303);
    snprintf(br.session, sizeof br.session, "%s", keep);
    assert_int_equal(get(&b, &br, "/console/overview", NULL), 303);
    wh_stop(&b, SIGTERM);
    b.db_path = b_own_db;
    wh_cleanup(&b);
    wh_stop(s, SIGTERM);
}

int main(void)
{
    cli_register_types();
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_cookie_csrf_roles, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_session_across_nodes, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
