/*
 * test_signin.c - sign-in with Entra ID over real HTTP: the tenant
 * simulator as the OpenID provider and `assent serve` with sign_in: entra,
 * driven with libcurl as a browser would be (cookies kept, pages followed
 * by hand).
 *
 *  - console: the login page offers "Sign in with Microsoft"; a user with
 *    the app role Assent.Operator gets a console session of that role
 *    (console.login names the UPN and oid); a user with no role gets 403
 *    and no session; the callback replayed (same state) is refused; a
 *    callback from another browser (no flow cookie) is refused;
 *  - an approval with require_sign_in: GET and HEAD of the link show the
 *    sign-in page and change nothing (database fingerprint); the wrong user
 *    signs in: 403 naming both, an approval.sign_in_refused event, nothing
 *    decided; a POST with the form's CSRF token but without the approver's
 *    session: 403, nothing decided; someone signed in as a different
 *    person (the first link's approver) posts to another approver's link
 *    with that link's form token: 403 naming both, an
 *    approval.sign_in_refused event, nothing decided, the link still open
 *    for its approver; the approver signs in and approves: the decision
 *    event carries identity, oid, tid and signed_in.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "db/db.h"
#include "db/db_events.h"
#include "tests/integration/sim_harness.h"
#include "tests/integration/web_harness.h"

#define WAIT_MS 60000
#define PASSWORD "Assent-test-1"

/* A browser: its cookies, whatever their path (the servers are ours). */
struct browser {
    char cookies[8][200];
};

static void take_cookies(struct browser *br, const char *headers)
{
    for (const char *h = headers; h && *h;) {
        size_t n = strcspn(h, "\r\n");
        if (n > 12 && strncasecmp(h, "Set-Cookie: ", 12) == 0) {
            const char *v = h + 12;
            size_t vl = strcspn(v, ";\r\n"), nl = strcspn(v, "=");
            int clear = strstr(v, "Max-Age=0") && (size_t)(strstr(v, "Max-Age=0") - h) < n;
            int slot = -1;
            for (int i = 0; i < 8 && slot < 0; i++)
                if (br->cookies[i][0] && strncmp(br->cookies[i], v, nl + 1) == 0)
                    slot = i;
            for (int i = 0; i < 8 && slot < 0; i++)
                if (!br->cookies[i][0])
                    slot = i;
            if (slot >= 0) {
                if (clear)
                    br->cookies[slot][0] = '\0';
                else
                    snprintf(br->cookies[slot], sizeof br->cookies[0], "%.*s", (int)vl, v);
            }
        }
        h += n;
        while (*h == '\r' || *h == '\n')
            h++;
    }
}

/* One request of the browser to an absolute URL; the status, *r the answer. */
static long breq(struct browser *br, const char *method, const char *url, const char *body,
                 struct tu_http_resp *r)
{
    char cookie[1700] = "Cookie: ";
    size_t cl = 8;
    char *headers[4];
    int n = 0;
    for (int i = 0; br && i < 8; i++) {
        if (!br->cookies[i][0])
            continue;
        cl += (size_t)snprintf(cookie + cl, sizeof cookie - cl, "%s%s", cl > 8 ? "; " : "",
                               br->cookies[i]);
    }
    if (cl > 8)
        headers[n++] = cookie;
    if (body)
        headers[n++] = "Content-Type: application/x-www-form-urlencoded";
    headers[n] = NULL;
    memset(r, 0, sizeof *r);
    if (tu_http(method, url, headers, body, r) != 0)
        fail_msg("%s %s: no answer", method, url);
    if (br)
        take_cookies(br, r->headers);
    return r->status;
}

/* The href of the page's "continue" link (entities undone), malloc'd. */
static char *continue_link(const char *page)
{
    const char *p = strstr(page, "id=\"continue\" href=\"");
    if (!p)
        return NULL;
    p += 20;
    size_t n = strcspn(p, "\"");
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(p + i, "&amp;", 5) == 0) {
            *o++ = '&';
            i += 4;
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

static char *enc(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = strdup(e);
    curl_free(e);
    return out;
}

/*
 * Sign in as upn from the browser, for return_to: POST /auth/login, follow
 * the page to the provider, post its form, then the callback.  Returns the
 * callback's status; *page its body, *callback (may be NULL) its URL.
 */
static long sign_in(struct wh_server *s, struct browser *br, const char *return_to,
                    const char *upn, char **page, char **callback)
{
    struct tu_http_resp r;
    char url[300], body[600];
    snprintf(url, sizeof url, "%s/auth/login", s->url);
    char *e = enc(return_to);
    snprintf(body, sizeof body, "return=%s", e);
    free(e);
    assert_int_equal(breq(br, "POST", url, body, &r), 200);
    /* The flow cookie must come back with the provider's cross-site
     * redirect to the callback: SameSite=Lax (a Strict one is not sent). */
    assert_non_null(strstr(r.headers, "assent_flow="));
    assert_non_null(strstr(strstr(r.headers, "assent_flow="), "SameSite=Lax"));
    char *authorize = continue_link(r.body);
    assert_non_null(authorize);
    tu_http_free(&r);
    /* The provider's form, then its post: the request's query and the user. */
    assert_int_equal(breq(NULL, "GET", authorize, NULL, &r), 200);
    assert_non_null(strstr(r.body, "name=\"passwd\""));
    tu_http_free(&r);
    char *q = strchr(authorize, '?');
    assert_non_null(q);
    *q++ = '\0';
    char *eu = enc(upn);
    size_t bl = strlen(q) + strlen(eu) + 64;
    char *form = malloc(bl);
    snprintf(form, bl, "%s&login=%s&passwd=%s", q, eu, PASSWORD);
    free(eu);
    assert_int_equal(breq(NULL, "POST", authorize, form, &r), 302);
    free(form);
    free(authorize);
    char *cb = tu_http_header(&r, "Location");
    assert_non_null(cb);
    assert_true(strncmp(cb, s->url, strlen(s->url)) == 0);
    assert_non_null(strstr(cb, "/auth/callback?code="));
    tu_http_free(&r);
    long st = breq(br, "GET", cb, NULL, &r);
    /* A session cookie stays SameSite=Strict. */
    if (st == 200) {
        const char *sc = strstr(r.headers, "assent_signin=");
        if (!sc)
            sc = strstr(r.headers, "assent_console=");
        assert_non_null(sc);
        const char *strict = strstr(sc, "SameSite=Strict");
        assert_non_null(strict);
        assert_true((size_t)(strict - sc) < strcspn(sc, "\r\n"));
    }
    if (page)
        *page = strdup(r.body);
    if (callback)
        *callback = cb;
    else
        free(cb);
    tu_http_free(&r);
    return st;
}

struct count_ctx {
    const char *type;
    const char *needle;
    int n;
    char last[2048];
};

static int count_events(void *ud, const struct db_event_info *ev)
{
    struct count_ctx *c = ud;
    if (strcmp(ev->type, c->type) == 0 && (!c->needle || (ev->data && strstr(ev->data, c->needle)))) {
        c->n++;
        snprintf(c->last, sizeof c->last, "%s", ev->data ? ev->data : "");
    }
    return 0;
}

/* Audit events of type (with needle in their data when not NULL); *last (may be NULL) the last one's data. */
static int audit_count(struct wh_server *s, const char *type, const char *needle, char *last,
                       size_t size)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct count_ctx ctx = {.type = type, .needle = needle};
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, 0, count_events, &ctx, &err), AS_OK);
    db_read_end(s->app.db, c);
    if (last)
        snprintf(last, size, "%s", ctx.last);
    return ctx.n;
}

static void add_env(struct wh_server *s, const char *name, const char *value)
{
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "%s=%s", name, value);
}

/* The simulator and `assent serve` with sign-in on; upns[0..2] three users of the tenant. */
static void start(struct wh_server *s, struct sim_harness *sim, char upns[3][128], char oids[3][64])
{
    assert_int_equal(sim_harness_start(sim, 5, 21, NULL), 0);
    json_t *st = sim_harness_state(sim);
    for (int i = 0; i < 3; i++) {
        json_t *u = json_array_get(json_object_get(st, "users"), (size_t)i);
        snprintf(upns[i], 128, "%s", json_string_value(json_object_get(u, "userPrincipalName")));
        snprintf(oids[i], 64, "%s", json_string_value(json_object_get(u, "id")));
    }
    json_decref(st);
    /* users[0] is an operator of Assent, users[1] has no role, users[2] is an admin
     * through sign_in_roles */
    char put[600], url[200];
    snprintf(put, sizeof put, "{\"users\":{\"%s\":{\"roles\":[\"Assent.Viewer\",\"Assent.Operator\"]}}}",
             upns[0]);
    snprintf(url, sizeof url, "%s/_sim/openid", sim->url);
    char *h[] = {"Content-Type: application/json", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("PUT", url, h, put, &r), 0);
    assert_int_equal(r.status, 204);
    tu_http_free(&r);

    wh_init(s, "signin", 0);
    s->helper = sim->pid;
    add_env(s, "ASSENT_SIGN_IN", "entra");
    add_env(s, "ASSENT_LOGIN_URL", sim->url);
    add_env(s, "ASSENT_GRAPH_URL", sim->url);
    add_env(s, "ASSENT_EXCHANGE_URL", sim->url);
    add_env(s, "ASSENT_TENANT_ID", sim->tenant_id);
    add_env(s, "ASSENT_CLIENT_ID", sim->client_id);
    add_env(s, "ASSENT_CLIENT_SECRET_FILE", sim->secret_path);
    char roles[300];
    snprintf(roles, sizeof roles, "{\"%s\": \"admin\"}", upns[2]);
    add_env(s, "ASSENT_SIGN_IN_ROLES", roles);
    wh_start(s, 0);
}

static void test_console_sign_in(void **state)
{
    struct wh_server *s = *state;
    struct sim_harness sim;
    char upns[3][128], oids[3][64];
    start(s, &sim, upns, oids);
    struct tu_http_resp r;
    char url[300], data[2048];

    /* The login page offers both ways. */
    struct browser op = {0};
    snprintf(url, sizeof url, "%s/console/login", s->url);
    assert_int_equal(breq(&op, "GET", url, NULL, &r), 200);
    assert_non_null(strstr(r.body, "Sign in with Microsoft"));
    assert_non_null(strstr(r.body, "name=\"token\""));
    tu_http_free(&r);

    /* An operator by app role. */
    char *page = NULL, *callback = NULL;
    assert_int_equal(sign_in(s, &op, "/console/overview", upns[0], &page, &callback), 200);
    assert_non_null(strstr(page, "(operator)"));
    free(page);
    snprintf(url, sizeof url, "%s/console/overview", s->url);
    assert_int_equal(breq(&op, "GET", url, NULL, &r), 200);
    assert_non_null(strstr(r.body, upns[0]));
    tu_http_free(&r);
    snprintf(url, sizeof url, "%s/console/tokens", s->url);
    assert_int_equal(breq(&op, "GET", url, NULL, &r), 403); /* admin only */
    tu_http_free(&r);
    assert_int_equal(audit_count(s, "console.login", oids[0], data, sizeof data), 1);
    assert_non_null(strstr(data, "\"via\":\"entra\""));
    assert_non_null(strstr(data, upns[0]));
    assert_non_null(strstr(data, sim.tenant_id));

    /* The same callback again: the state was taken. */
    assert_int_equal(breq(&op, "GET", callback, NULL, &r), 400);
    assert_non_null(strstr(r.body, "used already"));
    tu_http_free(&r);
    assert_int_equal(audit_count(s, "console.login", oids[0], NULL, 0), 1);
    free(callback);

    /* No role: 403, no session. */
    struct browser none = {0};
    assert_int_equal(sign_in(s, &none, "/console/overview", upns[1], &page, NULL), 403);
    assert_non_null(strstr(page, "no role"));
    free(page);
    snprintf(url, sizeof url, "%s/console/overview", s->url);
    assert_int_equal(breq(&none, "GET", url, NULL, &r), 303);
    tu_http_free(&r);
    assert_int_equal(audit_count(s, "console.login", oids[1], NULL, 0), 0);

    /* An admin through sign_in_roles. */
    struct browser adm = {0};
    assert_int_equal(sign_in(s, &adm, "/console/overview", upns[2], &page, NULL), 200);
    assert_non_null(strstr(page, "(admin)"));
    free(page);
    snprintf(url, sizeof url, "%s/console/tokens", s->url);
    assert_int_equal(breq(&adm, "GET", url, NULL, &r), 200);
    tu_http_free(&r);

    /* A callback in a browser that did not start the flow. */
    struct browser other = {0};
    snprintf(url, sizeof url, "%s/auth/login", s->url);
    assert_int_equal(breq(&other, "POST", url, "return=%2Fconsole%2Foverview", &r), 200);
    tu_http_free(&r);
    snprintf(url, sizeof url, "%s/auth/callback?code=x&state=unknown", s->url);
    assert_int_equal(breq(&other, "GET", url, NULL, &r), 400);
    tu_http_free(&r);

    /* Somewhere else to return to is refused. */
    snprintf(url, sizeof url, "%s/auth/login", s->url);
    assert_int_equal(breq(&other, "POST", url, "return=https%3A%2F%2Fevil.example%2F", &r), 400);
    tu_http_free(&r);
    wh_stop(s, SIGTERM);
    assert_int_equal(sim_harness_stop(&sim), 0);
    s->helper = 0;
}

static char *approval_workflow(void)
{
    json_t *wf = json_pack(
        "{s:s, s:s, s:{s:{s:s, s:b}}, s:s, s:{s:{s:s, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:s}},"
        " s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}}}",
        "name", "signin-test", "version", "1", "input", "approvers", "type", "array", "required",
        1, "start", "ask", "steps", "ask", "type", "approval", "params", "approvers",
        "${input.approvers}", "subject", "Turn off POP for u@example.org", "require_sign_in", 1,
        "next", "approved", "ok", "rejected", "no", "expired", "late", "ok", "type", "log",
        "params", "message", "approved", "no", "type", "log", "params", "message", "rejected",
        "late", "type", "log", "params", "message", "expired");
    char *text = json_dumps(wf, JSON_INDENT(2));
    json_decref(wf);
    return text;
}

static void test_approval_sign_in(void **state)
{
    struct wh_server *s = *state;
    struct sim_harness sim;
    char upns[3][128], oids[3][64];
    start(s, &sim, upns, oids);
    struct tu_http_resp r;
    char data[4096];

    char *wf = approval_workflow(), input[300];
    snprintf(input, sizeof input, "{\"approvers\": [\"%s\"]}", upns[0]);
    int64_t run = wh_submit(s, wf, input);
    free(wf);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, upns[0], "", 1, WAIT_MS, &link), 1);
    /* The email is out before the step has parked the run: wait for that,
     * or the engine's last writes land between the fingerprints below. */
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);
    const char *path = strstr(link, "/a/");

    /* GET and HEAD show the sign-in page and change nothing. */
    char *before = wh_db_fingerprint(s);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(breq(NULL, i % 2 ? "HEAD" : "GET", link, NULL, &r), 200);
        if (i % 2 == 0) {
            assert_non_null(strstr(r.body, "Sign in with Microsoft"));
            assert_non_null(strstr(r.body, upns[0]));
            assert_null(strstr(r.body, "name=\"decision\""));
            assert_null(strstr(r.body, "name=\"csrf\""));
        }
        tu_http_free(&r);
    }
    char *after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* The wrong user signs in: 403 naming both, an audit event, nothing decided. */
    struct browser wrong = {0};
    char *page = NULL;
    assert_int_equal(sign_in(s, &wrong, path, upns[1], &page, NULL), 403);
    assert_non_null(strstr(page, upns[1]));
    assert_non_null(strstr(page, upns[0]));
    assert_non_null(strstr(page, "this request is for"));
    free(page);
    assert_int_equal(audit_count(s, "approval.sign_in_refused", upns[1], data, sizeof data), 1);
    assert_non_null(strstr(data, oids[1]));
    char status[32];
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");
    /* ... and still no form for that browser */
    assert_int_equal(breq(&wrong, "GET", link, NULL, &r), 200);
    assert_null(strstr(r.body, "name=\"decision\""));
    tu_http_free(&r);

    /* The approver signs in and sees the form. */
    struct browser me = {0};
    assert_int_equal(sign_in(s, &me, path, upns[0], &page, NULL), 200);
    assert_non_null(strstr(page, "Signed in as"));
    free(page);
    assert_int_equal(breq(&me, "GET", link, NULL, &r), 200);
    assert_non_null(strstr(r.body, "name=\"decision\""));
    assert_non_null(strstr(r.body, "Signed in as"));
    char *csrf = wh_csrf(r.body);
    assert_non_null(csrf);
    tu_http_free(&r);

    /* The form's CSRF token without the approver's session: 403, nothing decided. */
    char body[300];
    snprintf(body, sizeof body, "csrf=%s&decision=approve&comment=", csrf);
    before = wh_db_fingerprint(s);
    assert_int_equal(breq(NULL, "POST", link, body, &r), 403);
    assert_non_null(strstr(r.body, "Sign in"));
    tu_http_free(&r);
    /* ... nor from the wrong user's browser (its sign-in made no session) */
    assert_int_equal(breq(&wrong, "POST", link, body, &r), 403);
    tu_http_free(&r);
    after = wh_db_fingerprint(s);
    assert_string_equal(before, after);
    free(before);
    free(after);
    assert_int_equal(audit_count(s, "approval.decision", NULL, NULL, 0), 0);

    /* Someone signed in as a different person: the approver of the first
     * link, with that session, posts to a second run's link (for upns[2])
     * with that link's own form token.  403 naming both, an
     * approval.sign_in_refused event, nothing decided. */
    wf = approval_workflow();
    snprintf(input, sizeof input, "{\"approvers\": [\"%s\"]}", upns[2]);
    int64_t run2 = wh_submit(s, wf, input);
    free(wf);
    char *link2 = NULL;
    assert_int_equal(wh_wait_mail(s, upns[2], "", 1, WAIT_MS, &link2), 1);
    assert_int_equal(wh_wait_run(s, run2, "waiting", WAIT_MS), 0);
    struct browser third = {0};
    assert_int_equal(sign_in(s, &third, strstr(link2, "/a/"), upns[2], &page, NULL), 200);
    free(page);
    assert_int_equal(breq(&third, "GET", link2, NULL, &r), 200);
    char *csrf2 = wh_csrf(r.body);
    assert_non_null(csrf2);
    tu_http_free(&r);
    /* GET with the other person's session: no form, decides nothing */
    assert_int_equal(breq(&me, "GET", link2, NULL, &r), 403);
    assert_null(strstr(r.body, "name=\"decision\""));
    tu_http_free(&r);
    char body2[300], expect[400];
    snprintf(body2, sizeof body2, "csrf=%s&decision=approve&comment=", csrf2);
    assert_int_equal(audit_count(s, "approval.sign_in_refused", oids[0], NULL, 0), 0);
    assert_int_equal(breq(&me, "POST", link2, body2, &r), 403);
    snprintf(expect, sizeof expect, "Signed in as %s; this request is for %s.", upns[0], upns[2]);
    if (!strstr(r.body, expect))
        fail_msg("the refusal does not name both people: %s", r.body);
    tu_http_free(&r);
    assert_int_equal(audit_count(s, "approval.sign_in_refused", oids[0], data, sizeof data), 1);
    assert_non_null(strstr(data, upns[2])); /* the approver the link is for */
    assert_non_null(strstr(data, sim.tenant_id));
    assert_int_equal(audit_count(s, "approval.decision", NULL, NULL, 0), 0);
    wh_run_status(s, run2, status, sizeof status);
    assert_string_equal(status, "waiting");
    wh_run_status(s, run, status, sizeof status);
    assert_string_equal(status, "waiting");
    /* ... and the link is still open for its approver */
    assert_int_equal(breq(&third, "GET", link2, NULL, &r), 200);
    assert_non_null(strstr(r.body, "name=\"decision\""));
    tu_http_free(&r);
    assert_int_equal(breq(&third, "POST", link2, body2, &r), 200);
    assert_non_null(strstr(r.body, "Thank you"));
    tu_http_free(&r);
    free(csrf2);
    assert_int_equal(audit_count(s, "approval.decision", oids[2], NULL, 0), 1);
    assert_int_equal(wh_wait_run(s, run2, "succeeded", WAIT_MS), 0);
    free(link2);

    /* With the session: approved, the identity in the decision. */
    assert_int_equal(breq(&me, "POST", link, body, &r), 200);
    assert_non_null(strstr(r.body, "Thank you"));
    tu_http_free(&r);
    free(csrf);
    assert_int_equal(audit_count(s, "approval.decision", oids[0], data, sizeof data), 1);
    assert_non_null(strstr(data, "\"signed_in\":true"));
    assert_non_null(strstr(data, "\"identity\":\""));
    assert_non_null(strstr(data, sim.tenant_id));
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    free(link);
    wh_stop(s, SIGTERM);
    assert_int_equal(sim_harness_stop(&sim), 0);
    s->helper = 0;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_sign_in, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_approval_sign_in, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
