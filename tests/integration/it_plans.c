/*
 * it_plans.c - mailbox plans and the EWS allow list, end to end with the
 * real `assent` binary (a worker process, `assent decide`) and the tenant
 * simulator over HTTP:
 *
 * - `assent sync` stores the plans and the organisation config; `assent
 *   report plans` flags the plans with POP or IMAP on, `assent report org`
 *   shows EWSEnabled unset;
 * - workflows/mailbox-plans.json turns POP and IMAP off in every plan that
 *   has them on after approval (the state file shows every plan off; a plan
 *   already off gets no Set-CASMailboxPlan); a second run asks nobody and
 *   writes nothing;
 * - a plan that disappears between approval and the change stops it before
 *   anything is written, with an error naming the plan;
 * - workflows/ews-allowlist.json merges the allow list (what was there
 *   stays, removed ids go), writes the whole list once and waits until the
 *   simulator's delayed change is visible; a second run asks nobody;
 * - an application id that is not a GUID fails the run with a clear error
 *   and writes nothing.
 */
#include "tests/testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tests/m365_testutil.h"

#define N_USERS 20
#define APP_KEEP "11111111-2222-3333-4444-555555555555"
#define APP_GONE "22222222-3333-4444-5555-666666666666"
#define APP_NEW "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"

static char *g_dir, *g_db;
static struct mt_sim g_sim;
static struct mt_env g_env;
static pid_t g_worker;

static void set_env(const struct mt_sim *s, const char *db)
{
    mt_env_set(&g_env, s, db, NULL);
}

/* Run assent with args (NULL-terminated); out/err malloc'd (may be NULL). */
#define assent(out, err, ...) mt_assent(&g_env, out, err, __VA_ARGS__)

/* assent ... must exit 0; its stdout parsed as JSON. */
static json_t *assent_json(const char *a1, const char *a2, const char *a3, const char *a4,
                           const char *a5)
{
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, a1, a2, a3, a4, a5, NULL);
    if (rc != 0)
        fail_msg("assent %s %s failed (%d): %s", a1, a2 ? a2 : "", rc, err);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("not JSON: %s", out);
    free(out);
    free(err);
    return j;
}

static void sync_ok(void)
{
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, "sync", "--quiet", NULL);
    if (rc != 0)
        fail_msg("sync failed (%d): %s%s", rc, out, err);
    free(out);
    free(err);
}

static const char *run_status(json_t *j)
{
    const char *st = json_string_value(json_object_get(json_object_get(j, "run"), "status"));
    return st ? st : json_string_value(json_object_get(j, "status"));
}

/* Poll `assent show RUN --json` until the run's status is one of want
 * ("a|b"); a slow machine only makes this slower (the bound is generous). */
static json_t *wait_run(const char *run, const char *want)
{
    char *last = NULL;
    for (int i = 0; i < 6000; i++) {
        json_t *j = assent_json("show", run, "--json", NULL, NULL);
        const char *st = run_status(j);
        if (st && strstr(want, st)) {
            free(last);
            return j;
        }
        free(last);
        last = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        tu_sleep_ms(50);
    }
    fail_msg("run %s never reached %s: %.3000s", run, want, last ? last : "?");
    return NULL;
}

static void start_run(const char *wf_name, const char *input, char *buf, size_t size)
{
    char wf[600];
    snprintf(wf, sizeof wf, "%s/workflows/%s.json", tu_source_dir(), wf_name);
    json_t *j = assent_json("run", wf, "--input", input, "--json");
    snprintf(buf, size, "%lld", (long long)json_integer_value(json_object_get(j, "run_id")));
    json_decref(j);
}

/* The run waits for its approval: check what it shows, then decide. */
static void approve(const char *run, const char *must_show)
{
    json_t *list = assent_json("approvals", "--json", NULL, NULL, NULL), *a;
    long long approval = 0;
    size_t i;
    json_array_foreach(list, i, a)
        if (json_integer_value(json_object_get(a, "run_id")) == atoll(run))
            approval = json_integer_value(json_object_get(a, "approval_id"));
    json_decref(list);
    assert_true(approval > 0);
    json_t *shown = assent_json("show", run, "--json", "--verbose", NULL);
    char *text = json_dumps(shown, JSON_COMPACT);
    if (must_show && !strstr(text, must_show))
        fail_msg("the approval does not show %s: %.3000s", must_show, text);
    free(text);
    json_decref(shown);
    char id[32], *out = NULL, *err = NULL;
    snprintf(id, sizeof id, "%lld", approval);
    assert_int_equal(assent(&out, &err, "decide", id, "approve", "--comment", "go", NULL), 0);
    free(out);
    free(err);
}

/* The run's final `assent show --json` (new reference); status must be want. */
static json_t *finished(const char *run, const char *want)
{
    json_t *done = wait_run(run, "succeeded|failed|cancelled");
    if (strcmp(run_status(done), want) != 0) {
        char *t = json_dumps(done, JSON_COMPACT);
        fail_msg("run %s is %s, not %s: %.3000s", run, run_status(done), want, t);
    }
    return done;
}

static json_t *plan_in(json_t *st, const char *display)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(st, "mailbox_plans"), i, p)
        if (!strcmp(json_string_value(json_object_get(p, "DisplayName")), display))
            return p;
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("itplans");
    if (mt_sim_start(&g_sim, g_dir, "tenant", N_USERS, 11, NULL, NULL, NULL) != 0)
        return -1;
    g_db = tu_test_on_pg() ? tu_pg_db_new("plans") : tu_path(g_dir, "a.db");
    set_env(&g_sim, g_db);
    char *log = tu_path(g_dir, "worker.log");
    char *wargv[] = {(char *)tu_assent_bin(), "worker", NULL};
    g_worker = tu_spawn(wargv, g_env.v, log);
    free(log);
    return g_worker > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_worker > 0)
        tu_stop(g_worker, SIGTERM);
    mt_sim_stop(&g_sim);
    if (tu_test_on_pg())
        tu_pg_db_drop(g_db); /* frees it */
    else
        free(g_db);
    tu_rmrf(g_dir);
    free(g_dir);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_sync_and_reports(void **state)
{
    (void)state;
    sync_ok();
    json_t *rows = assent_json("report", "plans", "--format", "json", NULL);
    assert_int_equal(json_array_size(rows), 4);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) assert_true(json_is_true(json_object_get(r, "legacy_on")));
    json_decref(rows);
    rows = assent_json("report", "org", "--format", "json", NULL);
    assert_int_equal(json_array_size(rows), 1);
    assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "ews_enabled")));
    json_decref(rows);
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(&out, &err, "report", "org", NULL), 0);
    assert_non_null(strstr(out, "unset (treated as false from 2026-10-01)"));
    free(out);
    free(err);
}

static void test_mailbox_plans(void **state)
{
    (void)state;
    char run[32];
    /* One plan is compliant already: it must get no write. */
    json_decref(mt_sim_admin(&g_sim, "PATCH", "/_sim/mailbox_plans/ExchangeOnlineEssentials",
                             "{\"PopEnabled\": false, \"ImapEnabled\": false}"));
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailboxPlan", 0);
    start_run("mailbox-plans", "{\"approvers\": [\"owner@example.com\"]}", run, sizeof run);
    json_decref(wait_run(run, "waiting"));
    approve(run, "Set-CASMailboxPlan -Identity 'ExchangeOnlineEnterprise-");
    json_decref(finished(run, "succeeded"));

    json_t *st = mt_sim_state(&g_sim), *p;
    size_t i;
    assert_int_equal(json_array_size(json_object_get(st, "mailbox_plans")), 4);
    json_array_foreach(json_object_get(st, "mailbox_plans"), i, p)
    {
        assert_true(json_is_false(json_object_get(p, "PopEnabled")));
        assert_true(json_is_false(json_object_get(p, "ImapEnabled")));
        assert_true(json_is_true(json_object_get(p, "OWAEnabled"))); /* nothing else touched */
    }
    json_decref(st);
    /* Three plans had something on; the compliant one got nothing. */
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailboxPlan", 0), sets + 3);

    /* Again: nothing to do, nobody asked, nothing written. */
    start_run("mailbox-plans", "{\"approvers\": [\"owner@example.com\"]}", run, sizeof run);
    json_t *done = finished(run, "succeeded");
    char *text = json_dumps(done, JSON_COMPACT);
    assert_non_null(strstr(text, "already_off"));
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailboxPlan", 0), sets + 3);
}

static void test_plan_disappears(void **state)
{
    (void)state;
    char run[32];
    json_decref(mt_sim_admin(&g_sim, "PATCH", "/_sim/mailbox_plans/ExchangeOnline",
                             "{\"PopEnabled\": true}"));
    json_decref(mt_sim_admin(&g_sim, "PATCH", "/_sim/mailbox_plans/ExchangeOnlineEnterprise",
                             "{\"ImapEnabled\": true}"));
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailboxPlan", 0);
    start_run("mailbox-plans", "{\"approvers\": [\"owner@example.com\"]}", run, sizeof run);
    json_decref(wait_run(run, "waiting"));
    /* Gone while the approval was pending. */
    json_decref(mt_sim_admin(&g_sim, "DELETE", "/_sim/mailbox_plans/ExchangeOnlineEnterprise",
                             NULL));
    approve(run, "ExchangeOnlineEnterprise");
    json_t *done = finished(run, "failed");
    char *text = json_dumps(done, JSON_COMPACT);
    if (!strstr(text, "no longer exists") || !strstr(text, "nothing was changed"))
        fail_msg("the failure does not say the plan is gone: %.3000s", text);
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailboxPlan", 0), sets);
    json_t *st = mt_sim_state(&g_sim);
    assert_true(json_is_true(json_object_get(plan_in(st, "ExchangeOnline"), "PopEnabled")));
    assert_null(plan_in(st, "ExchangeOnlineEnterprise"));
    json_decref(st);
}

static void test_ews_allowlist(void **state)
{
    (void)state;
    char run[32];
    /* The organisation allows two apps; one stays, one goes, one comes. */
    json_decref(mt_sim_admin(&g_sim, "PATCH", "/_sim/organization_config",
                             "{\"EwsEnabled\": true, \"EwsAllowedAppIDs\": [\"" APP_KEEP "\", \""
                             APP_GONE "\"]}"));
    sync_ok();
    long sets = mt_sim_count(&g_sim, "exo.Set-OrganizationConfig", 0);
    start_run("ews-allowlist",
              "{\"approvers\": [\"owner@example.com\"], \"add\": [\"" APP_NEW "\"], "
              "\"remove\": [\"" APP_GONE "\"], \"poll_every\": \"100ms\"}",
              run, sizeof run);
    json_decref(wait_run(run, "waiting"));
    approve(run, "Set-OrganizationConfig -EwsAllowedAppIDs '" APP_KEEP
                 ",aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'");
    json_t *done = finished(run, "succeeded");
    char *text = json_dumps(done, JSON_COMPACT);
    /* Waited for the simulator's delayed change (read again, not written again). */
    if (!strstr(text, "\"waited_ms\"") || strstr(text, "\"waited_ms\":0,"))
        fail_msg("the step did not wait for the change: %.3000s", text);
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-OrganizationConfig", 0), sets + 1);

    json_t *st = mt_sim_state(&g_sim);
    json_t *oc = json_object_get(st, "organization_config");
    json_t *ids = json_object_get(oc, "EwsAllowedAppIDs");
    assert_null(json_object_get(oc, "pending"));
    assert_int_equal(json_array_size(ids), 2);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), APP_KEEP);
    assert_string_equal(json_string_value(json_array_get(ids, 1)),
                        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    assert_true(json_is_true(json_object_get(oc, "EwsEnabled"))); /* not changed */
    json_decref(st);

    /* The sync and the report see it; a second run asks nobody. */
    sync_ok();
    json_t *rows = assent_json("report", "org", "--format", "json", NULL);
    assert_int_equal(json_array_size(json_object_get(json_array_get(rows, 0),
                                                     "ews_allowed_app_ids")), 2);
    assert_true(json_is_null(json_object_get(json_array_get(rows, 0), "pending_app_ids")));
    json_decref(rows);
    start_run("ews-allowlist",
              "{\"approvers\": [\"owner@example.com\"], \"add\": [\"" APP_NEW "\"], "
              "\"remove\": [\"" APP_GONE "\"]}",
              run, sizeof run);
    done = finished(run, "succeeded");
    text = json_dumps(done, JSON_COMPACT);
    assert_non_null(strstr(text, "\"already\""));
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-OrganizationConfig", 0), sets + 1);
}

static void test_ews_bad_app_id(void **state)
{
    (void)state;
    char run[32];
    long sets = mt_sim_count(&g_sim, "exo.Set-OrganizationConfig", 0);
    start_run("ews-allowlist",
              "{\"approvers\": [\"owner@example.com\"], \"add\": [\"" APP_KEEP
              "\", \"contoso-backup\"]}",
              run, sizeof run);
    json_t *done = finished(run, "failed");
    char *text = json_dumps(done, JSON_COMPACT);
    if (!strstr(text, "add[1]") || !strstr(text, "is not an application (client) id"))
        fail_msg("no clear error for a bad application id: %.3000s", text);
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-OrganizationConfig", 0), sets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_and_reports), cmocka_unit_test(test_mailbox_plans),
        cmocka_unit_test(test_plan_disappears),  cmocka_unit_test(test_ews_allowlist),
        cmocka_unit_test(test_ews_bad_app_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
