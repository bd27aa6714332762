/*
 * test_console_browser.c - a headless Chromium follows a campaign through
 * the admin console: the tenant simulator with a generated tenant, `assent
 * sync`, the legacy-enabled KPI created and evaluated, an admin token, and
 * `assent serve` (engine and web server) on a temporary database with the
 * file mail transport.  The browser part is
 * tests/integration/console_browser.py (Selenium + chromium-driver): sign
 * in with the token, see the KPI's chart (an <svg>), filter the users
 * report, tick two users and start the change with an approver, approve
 * both from the approval links in the mail folder, add and remove an
 * exception, submit an invalid workflow and see its error at its line.
 * This program then checks that both mailboxes changed in the simulator.
 * Screenshots stay under the build tree (console-*.png).  Skipped (exit
 * 77) when Chromium, its driver or Selenium is missing.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/timeutil.h"
#include "cli/cli.h"
#include "tests/integration/sim_harness.h"
#include "tests/integration/web_harness.h"
#include "web/api_token.h"

#define USERS 40
#define SEED 11
#define WAIT_MS 300000
#define APPROVER "owner@example.org"

/* Run `assent ARGS` with the server's configuration; exit code. */
static int assent_cli(struct wh_server *s, char *const args[])
{
    char *argv[16];
    char *envp[24];
    char db[600];
    int n = 0, e = 0;
    argv[n++] = (char *)tu_assent_bin();
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(db, sizeof db, "ASSENT_DB=%s", s->db_path);
    envp[e++] = db;
    envp[e++] = "ASSENT_LOG_LEVEL=warn";
    for (int i = 0; i < s->n_extra_env && e < 23; i++)
        envp[e++] = s->extra_env[i];
    envp[e] = NULL;
    char *out = NULL, *err = NULL;
    int rc = tu_run(argv, envp, WAIT_MS, &out, &err);
    if (rc != 0)
        fprintf(stderr, "assent %s: exit %d\n%s\n%s\n", args[0], rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    return rc;
}

static void add_env(struct wh_server *s, const char *name, const char *value)
{
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "%s=%s", name, value);
}

static const json_t *mailbox_of(const json_t *state, const char *upn)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(state, "users"), i, u)
    {
        if (strcasecmp(json_string_value(json_object_get(u, "userPrincipalName")), upn) == 0)
            return json_object_get(u, "mailbox");
    }
    return NULL;
}

static void test_console_campaign(void **state)
{
    struct wh_server *s = *state;
    struct sim_harness sim;
    assert_int_equal(sim_harness_start(&sim, USERS, SEED, NULL), 0);
    wh_init(s, "console-browser", 0);
    s->helper = sim.pid; /* killed at cleanup should the test fail half-way */
    char workflows[1024];
    snprintf(workflows, sizeof workflows, "%s/workflows", tu_source_dir());
    add_env(s, "ASSENT_LOGIN_URL", sim.url);
    add_env(s, "ASSENT_GRAPH_URL", sim.url);
    add_env(s, "ASSENT_EXCHANGE_URL", sim.url);
    add_env(s, "ASSENT_TENANT_ID", sim.tenant_id);
    add_env(s, "ASSENT_CLIENT_ID", sim.client_id);
    add_env(s, "ASSENT_CLIENT_SECRET_FILE", sim.secret_path);
    add_env(s, "ASSENT_API_WORKFLOW_DIR", workflows);
    add_env(s, "ASSENT_M365_BACKOFF_INITIAL_MS", "200");

    /* The tenant synced, the KPI made and evaluated (its chart has a point). */
    char kpi_file[1100];
    snprintf(kpi_file, sizeof kpi_file, "%s/kpis/legacy-enabled.json", workflows);
    char *sync[] = {"sync", NULL};
    char *create[] = {"kpi", "create", "--from", kpi_file, NULL};
    char *eval[] = {"kpi", "eval", "legacy-enabled", NULL};
    assert_int_equal(assent_cli(s, sync), 0);
    assert_int_equal(assent_cli(s, create), 0);
    assert_int_equal(assent_cli(s, eval), 0);

    char token[API_TOKEN_LEN + 1];
    struct as_err err = {0};
    assert_int_equal(api_token_create(s->app.db, "browser-admin", API_ROLE_ADMIN, 0, "test",
                                      time_now_ms(), token, sizeof token, NULL, &err),
                     AS_OK);
    wh_start(s, 0);

    char script[1024], shots[1024];
    snprintf(script, sizeof script, "%s/tests/integration/console_browser.py", tu_source_dir());
    snprintf(shots, sizeof shots, "%s", tu_build_dir());
    char *argv[] = {"/usr/bin/python3", script, "--url", s->url, "--token", token,
                    "--mail-dir", s->mail_dir, "--approver", APPROVER, "--shots", shots,
                    NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, NULL, 900000, &out, &errout);
    if (rc != 0) {
        char *log = wh_log(s);
        fail_msg("console_browser.py failed (%d):\n%s\n%s\nserver log:\n%s", rc, out ? out : "",
                 errout ? errout : "", log ? log : "");
    }
    json_error_t jerr;
    json_t *seen = json_loads(out, 0, &jerr);
    if (!seen)
        fail_msg("console_browser.py printed no JSON: %s", out);
    const json_t *users = json_object_get(seen, "users"), *runs = json_object_get(seen, "runs");
    assert_int_equal(json_array_size(users), 2);
    assert_int_equal(json_array_size(runs), 2);

    /* Both runs approved and done; both mailboxes changed in the simulator. */
    for (size_t i = 0; i < 2; i++) {
        int64_t run = json_integer_value(json_array_get(runs, i));
        if (wh_wait_run(s, run, "succeeded", WAIT_MS) != 0) {
            char st[32];
            wh_run_status(s, run, st, sizeof st);
            char *log = wh_log(s);
            fail_msg("run %lld is %s\n%s", (long long)run, st, log ? log : "");
        }
    }
    json_t *after = sim_harness_state(&sim);
    assert_non_null(after);
    for (size_t i = 0; i < 2; i++) {
        const char *upn = json_string_value(json_array_get(users, i));
        const json_t *m = mailbox_of(after, upn);
        assert_non_null(m);
        if (json_is_true(json_object_get(m, "PopEnabled")) ||
            json_is_true(json_object_get(m, "ImapEnabled")))
            fail_msg("mailbox %s still has POP or IMAP on", upn);
    }
    json_decref(after);
    json_decref(seen);
    free(out);
    free(errout);
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
        cmocka_unit_test_setup_teardown(test_console_campaign, wh_setup, wh_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
