/*
 * test_signin_browser.c - sign-in with Entra ID in a headless Chromium:
 * the tenant simulator as the OpenID provider (reached as localhost, another
 * site than Assent's 127.0.0.1, as the real identity platform is), `assent
 * serve` with sign_in: entra, and a run whose approval step has
 * require_sign_in.  The browser part is tests/integration/signin_browser.py
 * (Selenium + chromium-driver): the link shows a sign-in page and decides
 * nothing; the wrong person signs in through the simulator's form and gets
 * 403 naming both, nothing decided; the approver signs in in the same
 * browser and approves; in a fresh profile a user with the app role
 * Assent.Admin signs in to the console and reaches the overview.  This
 * program then checks the store: one approval.sign_in_refused audit event
 * for the wrong person, and in `assent show RUN --json` the decision event
 * with the verified identity, oid, tid and signed_in.  Screenshots stay
 * under the build tree (signin-*.png).  Skipped (exit 77) when Chromium,
 * its driver or Selenium is missing.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "db/db_events.h"
#include "tests/integration/sim_harness.h"
#include "tests/integration/web_harness.h"

#define WAIT_MS 300000
#define PASSWORD "Assent-test-1"

static void add_env(struct wh_server *s, const char *name, const char *value)
{
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "%s=%s", name, value);
}

struct count_ctx {
    const char *type;
    const char *needle;
    int n;
};

static int count_events(void *ud, const struct db_event_info *ev)
{
    struct count_ctx *c = ud;
    if (strcmp(ev->type, c->type) == 0 && (!c->needle || (ev->data && strstr(ev->data, c->needle))))
        c->n++;
    return 0;
}

/* Audit events of type with needle in their data (any when NULL). */
static int audit_count(struct wh_server *s, const char *type, const char *needle)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct count_ctx ctx = {.type = type, .needle = needle};
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, 0, count_events, &ctx, &err), AS_OK);
    db_read_end(s->app.db, c);
    return ctx.n;
}

static char *approval_workflow(void)
{
    json_t *wf = json_pack(
        "{s:s, s:s, s:{s:{s:s, s:b}}, s:s, s:{s:{s:s, s:{s:s, s:s, s:b}, s:{s:s, s:s, s:s}},"
        " s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}}}",
        "name", "signin-browser", "version", "1", "input", "approvers", "type", "array",
        "required", 1, "start", "ask", "steps", "ask", "type", "approval", "params", "approvers",
        "${input.approvers}", "subject", "Turn off POP for u@example.org", "require_sign_in", 1,
        "next", "approved", "ok", "rejected", "no", "expired", "late", "ok", "type", "log",
        "params", "message", "approved", "no", "type", "log", "params", "message", "rejected",
        "late", "type", "log", "params", "message", "expired");
    char *text = json_dumps(wf, JSON_INDENT(2));
    json_decref(wf);
    return text;
}

/* The decision events of `assent show RUN --json` (a new array). */
static json_t *show_decisions(struct wh_server *s, int64_t run)
{
    char id[32], db[700];
    snprintf(id, sizeof id, "%lld", (long long)run);
    snprintf(db, sizeof db, "ASSENT_DB=%s", s->db_path);
    char *argv[] = {(char *)tu_assent_bin(), "show", id, "--json", NULL};
    char *envp[] = {db, "ASSENT_LOG_LEVEL=warn", NULL};
    char *out = NULL, *errout = NULL;
    if (tu_run(argv, envp, WAIT_MS, &out, &errout) != 0)
        fail_msg("assent show %s --json failed: %s", id, errout ? errout : "");
    json_error_t jerr;
    json_t *h = json_loads(out, 0, &jerr);
    if (!h)
        fail_msg("assent show printed no JSON: %s", out);
    json_t *found = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(h, "events"), i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && strcmp(type, "approval.decision") == 0)
            json_array_append(found, ev);
    }
    json_decref(h);
    free(out);
    free(errout);
    return found;
}

static void test_signin_in_browser(void **state)
{
    struct wh_server *s = *state;
    struct sim_harness sim;
    assert_int_equal(sim_harness_start(&sim, 5, 21, NULL), 0);
    s->helper = sim.pid; /* killed at cleanup should the test fail half-way */
    char upns[3][128], oids[3][64];
    json_t *st = sim_harness_state(&sim);
    for (int i = 0; i < 3; i++) {
        json_t *u = json_array_get(json_object_get(st, "users"), (size_t)i);
        snprintf(upns[i], sizeof upns[i], "%s",
                 json_string_value(json_object_get(u, "userPrincipalName")));
        snprintf(oids[i], sizeof oids[i], "%s", json_string_value(json_object_get(u, "id")));
    }
    json_decref(st);
    const char *approver = upns[0], *other = upns[1], *admin = upns[2];

    /* The provider under another site's name: localhost (Assent is 127.0.0.1). */
    char provider[80];
    snprintf(provider, sizeof provider, "http://localhost:%d", sim.port);
    char put[400], url[200];
    snprintf(put, sizeof put, "{\"users\":{\"%s\":{\"roles\":[\"Assent.Admin\"]}}}", admin);
    snprintf(url, sizeof url, "%s/_sim/openid", sim.url);
    char *h[] = {"Content-Type: application/json", NULL};
    struct tu_http_resp r;
    assert_int_equal(tu_http("PUT", url, h, put, &r), 0);
    assert_int_equal(r.status, 204);
    tu_http_free(&r);

    wh_init(s, "signin-browser", 0);
    add_env(s, "ASSENT_SIGN_IN", "entra");
    add_env(s, "ASSENT_LOGIN_URL", provider);
    add_env(s, "ASSENT_GRAPH_URL", sim.url);
    add_env(s, "ASSENT_EXCHANGE_URL", sim.url);
    add_env(s, "ASSENT_TENANT_ID", sim.tenant_id);
    add_env(s, "ASSENT_CLIENT_ID", sim.client_id);
    add_env(s, "ASSENT_CLIENT_SECRET_FILE", sim.secret_path);
    wh_start(s, 0);

    char *wf = approval_workflow(), input[300];
    snprintf(input, sizeof input, "{\"approvers\": [\"%s\"]}", approver);
    int64_t run = wh_submit(s, wf, input);
    free(wf);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, approver, "", 1, WAIT_MS, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    char script[1024], shots[1024], run_s[32];
    snprintf(script, sizeof script, "%s/tests/integration/signin_browser.py", tu_source_dir());
    snprintf(shots, sizeof shots, "%s", tu_build_dir());
    snprintf(run_s, sizeof run_s, "%lld", (long long)run);
    char *argv[] = {"/usr/bin/python3", script, "--link", link, "--url", s->url,
                    "--sim", provider, "--approver", (char *)approver, "--other", (char *)other,
                    "--admin", (char *)admin, "--password", PASSWORD, "--db", s->db_path,
                    "--assent", (char *)tu_assent_bin(), "--run", run_s, "--shots", shots,
                    NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, NULL, 1200000, &out, &errout);
    if (rc != 0) {
        char *log = wh_log(s);
        fail_msg("signin_browser.py failed (%d):\n%s\n%s\nserver log:\n%s", rc, out ? out : "",
                 errout ? errout : "", log ? log : "");
    }
    json_error_t jerr;
    json_t *seen = json_loads(out, 0, &jerr);
    if (!seen)
        fail_msg("signin_browser.py printed no JSON: %s", out);
    printf("what the browser saw: %s\n", out);
    assert_int_equal(json_integer_value(json_object_get(seen, "wrong_status")), 403);
    assert_int_equal(json_array_size(json_object_get(seen, "csp_violations")), 0);
    json_decref(seen);

    /* The wrong person: refused and recorded; the approver's decision
     * carries the verified identity. */
    assert_int_equal(audit_count(s, "approval.sign_in_refused", oids[1]), 1);
    assert_int_equal(audit_count(s, "approval.sign_in_refused", NULL), 1);
    assert_int_equal(audit_count(s, "console.login", oids[2]), 1);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    char outcome[32];
    wh_step_outcome(s, run, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    json_t *decisions = show_decisions(s, run);
    assert_int_equal(json_array_size(decisions), 1);
    char *text = json_dumps(json_array_get(decisions, 0), JSON_COMPACT);
    assert_non_null(text);
    char want[300];
    snprintf(want, sizeof want, "\"identity\":\"%s\"", approver);
    if (!strstr(text, want) || !strstr(text, oids[0]) || !strstr(text, sim.tenant_id) ||
        !strstr(text, "\"signed_in\":true") || strstr(text, oids[1]))
        fail_msg("the decision event does not carry the approver's verified identity: %s", text);
    free(text);
    json_decref(decisions);

    free(out);
    free(errout);
    free(link);
    wh_stop(s, SIGTERM);
    s->helper = 0;
    assert_int_equal(sim_harness_stop(&sim), 0);
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
        cmocka_unit_test_setup_teardown(test_signin_in_browser, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
