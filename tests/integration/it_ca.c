/*
 * it_ca.c - Conditional Access end to end: workflows/block-legacy-auth.json
 * run by the real `assent` binary against the tenant simulator, approved with
 * `assent decide`, checked in the simulator's state:
 *  - the first run creates exactly one report-only policy (includeUsers All,
 *    excludeGroups the group, clientAppTypes exchangeActiveSync + other,
 *    grant block) whose group holds exactly the users with an exception; the
 *    approval mail shows the policy, the members and the sign-ins it would
 *    block; a re-run with nothing different asks nobody and writes nothing;
 *  - after adding and removing exceptions a run changes only the group;
 *  - enforce switches the state to enabled;
 *  - a policy edited by hand (locations added) is reported, not overwritten
 *    by a write that did not approve it, and overwritten once approved;
 *  - a missing permission (403) fails the step naming the permission, and
 *    leaves nothing written;
 *  - `assent sync` + `assent report policies` list the legacy-auth policies,
 *    a Microsoft-managed one included.
 * Registered twice: integration.m365_ca (SQLite) and pg.m365_ca (PostgreSQL).
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/m365_testutil.h"

#define N_USERS 40
#define POLICY "Assent: Block legacy authentication"
#define GROUP "Assent legacy-auth exceptions"

static char *g_dir, *g_wf, *g_log, *g_mail, *g_db;
static struct mt_sim g_sim;
static char *g_env[20];
static char g_envbuf[20][600];
static char g_upn[4][256]; /* users given exceptions */

static void set_env(void)
{
    const char *kv[][2] = {
        {"ASSENT_LOGIN_URL", g_sim.url},       {"ASSENT_GRAPH_URL", g_sim.url},
        {"ASSENT_EXCHANGE_URL", g_sim.url},    {"ASSENT_TENANT_ID", g_sim.tenant},
        {"ASSENT_CLIENT_ID", g_sim.client_id}, {"ASSENT_CLIENT_SECRET_FILE", g_sim.secret_path},
        {"ASSENT_DB", g_db},                   {"ASSENT_M365_BACKOFF_INITIAL_MS", "10"},
        {"ASSENT_M365_BACKOFF_MAX_MS", "200"}, {"ASSENT_M365_MAX_ATTEMPTS", "3"},
        {"ASSENT_LOG_LEVEL", "warn"},          {"ASSENT_MAIL_TRANSPORT", "file"},
        {"ASSENT_MAIL_DIR", g_mail},           {"ASSENT_MAIL_FROM", "assent@contoso.com"},
    };
    size_t n = sizeof kv / sizeof kv[0];
    for (size_t i = 0; i < n; i++) {
        snprintf(g_envbuf[i], sizeof g_envbuf[i], "%s=%s", kv[i][0], kv[i][1]);
        g_env[i] = g_envbuf[i];
    }
    g_env[n] = NULL;
}

static int assent(char **out, char **err, const char *a1, ...)
{
    char *argv[24] = {(char *)tu_assent_bin(), (char *)a1};
    va_list ap;
    va_start(ap, a1);
    int n = 2;
    const char *a;
    while (n < 23 && (a = va_arg(ap, const char *)))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, g_env, 120000, out, err);
}

/* Run the workflow with input; decide its approval (when one comes) with
 * "approve" or "reject".  Returns the run's exit code; *asked = an approval
 * was requested; *log (may be NULL) the run's output, malloc'd. */
static int run_wf(const char *wf, const char *input, const char *decision, int *asked, char **log)
{
    char *argv[] = {(char *)tu_assent_bin(), "run", (char *)wf, "--input", (char *)input,
                    "--wait", NULL};
    unlink(g_log);
    pid_t pid = tu_spawn(argv, g_env, g_log);
    assert_true(pid > 0);
    int rc = -1;
    *asked = 0;
    /* Until the run ends or asks: each round waits a little for the exit. */
    for (int i = 0; i < 1200 && rc < 0; i++) {
        char *out = NULL;
        assert_int_equal(assent(&out, NULL, "approvals", "--json", NULL), 0);
        json_t *list = json_loads(out ? out : "[]", 0, NULL);
        free(out);
        json_t *first = json_array_get(list, 0);
        if (first) {
            char id[32];
            snprintf(id, sizeof id, "%lld",
                     (long long)json_integer_value(json_object_get(first, "approval_id")));
            json_decref(list);
            *asked = 1;
            char *dout = NULL, *derr = NULL;
            int d = decision && !strcmp(decision, "reject")
                        ? assent(&dout, &derr, "decide", id, "reject", "--comment", "not now",
                                 "--as", "tester", NULL)
                        : assent(&dout, &derr, "decide", id, "approve", "--as", "tester", NULL);
            if (d != 0)
                fail_msg("decide: %s %s", dout ? dout : "", derr ? derr : "");
            free(dout);
            free(derr);
            rc = tu_wait_exit(pid, 120000);
            break;
        }
        json_decref(list);
        rc = tu_wait_exit(pid, 100);
    }
    if (rc < 0)
        tu_stop(pid, SIGTERM);
    if (log)
        *log = tu_read_file(g_log);
    return rc;
}

static json_t *ca_state(void)
{
    json_t *j = mt_sim_admin(&g_sim, "GET", "/_sim/conditional_access", NULL);
    assert_non_null(j);
    return j;
}

/* The policies / groups called name (borrowed from state). */
static size_t count_named(json_t *arr, const char *name, json_t **one)
{
    size_t i, n = 0;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (!strcmp(json_string_value(json_object_get(x, "displayName")), name)) {
            n++;
            if (one)
                *one = x;
        }
    }
    return n;
}

static const char *user_id(const char *upn)
{
    static char id[64];
    json_t *st = mt_sim_state(&g_sim);
    snprintf(id, sizeof id, "%s",
             json_string_value(json_object_get(mt_state_user(st, upn), "id")));
    json_decref(st);
    return id;
}

/* The group's members equal exactly the ids of the UPNs given (NULL-terminated). */
static void assert_members(json_t *group, const char *const *upns)
{
    json_t *m = json_object_get(group, "members");
    size_t n = 0;
    for (; upns[n]; n++) {
        const char *id = user_id(upns[n]);
        int found = 0;
        size_t i;
        json_t *x;
        json_array_foreach(m, i, x) found |= !strcasecmp(json_string_value(x), id);
        if (!found)
            fail_msg("%s is not in the group", upns[n]);
    }
    assert_int_equal(json_array_size(m), n);
}

static long exception_add(const char *upn, const char *protocols)
{
    char *out = NULL;
    assert_int_equal(assent(&out, NULL, "--json", "exception", "add", "--user", upn,
                            "--protocols", protocols, "--reason", "test", "--granted-by",
                            "boss@contoso.com", NULL),
                     0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    long id = (long)json_integer_value(json_object_get(j, "id"));
    if (!id)
        id = (long)json_integer_value(json_object_get(json_object_get(j, "exception"), "id"));
    json_decref(j);
    return id;
}

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("itca");
    if (mt_sim_start(&g_sim, g_dir, "tenant", N_USERS, 31, NULL, NULL, NULL) != 0)
        return -1;
    char src[600];
    snprintf(src, sizeof src, "%s/workflows/block-legacy-auth.json", tu_source_dir());
    g_wf = strdup(src);
    g_log = tu_path(g_dir, "run.log");
    g_mail = tu_path(g_dir, "mail");
    /* With ASSENT_TEST_DB=pg (pg.m365_ca) the store is a database of the
     * tests' PostgreSQL server, so db/postgres/ca.c is what runs. */
    g_db = tu_test_on_pg() ? tu_pg_db_new("itca") : tu_path(g_dir, "a.db");
    set_env();
    json_t *st = mt_sim_state(&g_sim);
    size_t k = 0, i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        if (k < 4 && upn && !strchr(upn, '#'))
            snprintf(g_upn[k++], sizeof g_upn[0], "%s", upn);
    }
    json_decref(st);
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, "sync", "--quiet", NULL);
    free(out);
    free(err);
    return rc == 0 && k == 4 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mt_sim_stop(&g_sim);
    if (tu_test_on_pg())
        tu_pg_db_drop(g_db);
    else
        free(g_db);
    g_db = NULL;
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_wf);
    free(g_log);
    free(g_mail);
    return 0;
}

/* Create, re-run (nothing), change exceptions (group only), enforce. */
static void test_create_update_enforce(void **state)
{
    (void)state;
    const char *in = "{\"approvers\": [\"sec@contoso.com\"]}";
    long e0 = exception_add(g_upn[0], "pop");
    exception_add(g_upn[1], "imap,smtp");
    assert_true(e0 > 0);
    int asked = 0;
    char *log = NULL;
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 0);
    assert_true(asked);
    free(log);

    json_t *ca = ca_state(), *p = NULL, *g = NULL;
    assert_int_equal(count_named(json_object_get(ca, "policies"), POLICY, &p), 1);
    assert_int_equal(count_named(json_object_get(ca, "groups"), GROUP, &g), 1);
    assert_string_equal(json_string_value(json_object_get(p, "state")),
                        "enabledForReportingButNotEnforced");
    json_t *c = json_object_get(p, "conditions"), *users = json_object_get(c, "users");
    assert_string_equal(json_string_value(json_array_get(json_object_get(users, "includeUsers"), 0)),
                        "All");
    assert_int_equal(json_array_size(json_object_get(users, "excludeGroups")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(users, "excludeGroups"), 0)),
                        json_string_value(json_object_get(g, "id")));
    assert_int_equal(json_array_size(json_object_get(users, "excludeUsers")), 0);
    assert_int_equal(json_array_size(json_object_get(c, "clientAppTypes")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "clientAppTypes"), 0)),
                        "exchangeActiveSync");
    assert_string_equal(json_string_value(json_array_get(json_object_get(c, "clientAppTypes"), 1)),
                        "other");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(c, "applications"), "includeApplications"), 0)),
                        "All");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(p, "grantControls"), "builtInControls"), 0)),
                        "block");
    assert_true(json_is_true(json_object_get(g, "securityEnabled")));
    assert_members(g, (const char *const[]){g_upn[0], g_upn[1], NULL});
    json_decref(ca);

    /* The approval mail showed the policy, the members and what it would block. */
    char *cmd_out = NULL;
    char ls[700];
    snprintf(ls, sizeof ls, "%s", g_mail);
    char *argv[] = {"/bin/sh", "-c", "cat \"$0\"/*", ls, NULL};
    assert_int_equal(tu_run(argv, NULL, 30000, &cmd_out, NULL), 0);
    assert_non_null(strstr(cmd_out, "\"clientAppTypes\":[\"exchangeActiveSync\",\"other\"]"));
    assert_non_null(strstr(cmd_out, g_upn[0]));
    assert_non_null(strstr(cmd_out, "would block (legacy sign-ins, last 30 days)"));
    free(cmd_out);

    /* Again: nothing differs, nobody is asked, nothing is written. */
    long pw = mt_sim_count(&g_sim, "graph.ca.policies.write", 0);
    long mw = mt_sim_count(&g_sim, "graph.groups.members.write", 0);
    long gw = mt_sim_count(&g_sim, "graph.groups.write", 0);
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 0);
    assert_false(asked);
    assert_non_null(strstr(log, "nothing_to_do"));
    free(log);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw);
    assert_int_equal(mt_sim_count(&g_sim, "graph.groups.members.write", 0), mw);
    assert_int_equal(mt_sim_count(&g_sim, "graph.groups.write", 0), gw);

    /* A new exception and one that ends: only the membership changes. */
    exception_add(g_upn[2], "activesync");
    char id[32];
    snprintf(id, sizeof id, "%ld", e0);
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(&out, &err, "exception", "remove", id, "--reason", "done", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 0);
    assert_true(asked);
    free(log);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw);
    assert_int_equal(mt_sim_count(&g_sim, "graph.groups.members.write", 0), mw + 2);
    assert_int_equal(mt_sim_count(&g_sim, "graph.groups.write", 0), gw);
    ca = ca_state();
    assert_int_equal(count_named(json_object_get(ca, "groups"), GROUP, &g), 1);
    assert_members(g, (const char *const[]){g_upn[1], g_upn[2], NULL});
    json_decref(ca);

    /* enforce: the state switches to enabled; the group stays. */
    assert_int_equal(run_wf(g_wf, "{\"approvers\": [\"sec@contoso.com\"], \"enforce\": true}",
                            "approve", &asked, &log),
                     0);
    assert_true(asked);
    free(log);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw + 1);
    assert_int_equal(mt_sim_count(&g_sim, "graph.groups.members.write", 0), mw + 2);
    ca = ca_state();
    assert_int_equal(count_named(json_object_get(ca, "policies"), POLICY, &p), 1);
    assert_string_equal(json_string_value(json_object_get(p, "state")), "enabled");
    json_decref(ca);
}

/* A hand edit is reported and only overwritten once approved. */
static void test_edited_outside(void **state)
{
    (void)state;
    const char *in = "{\"approvers\": [\"sec@contoso.com\"], \"enforce\": true}";
    json_t *ca = ca_state(), *p = NULL;
    assert_int_equal(count_named(json_object_get(ca, "policies"), POLICY, &p), 1);
    char path[200];
    snprintf(path, sizeof path, "/_sim/conditional_access/policies/%s",
             json_string_value(json_object_get(p, "id")));
    json_decref(ca);
    json_t *r = mt_sim_admin(&g_sim, "PATCH", path,
                             "{\"conditions\": {\"locations\": {\"includeLocations\": [\"All\"], "
                             "\"excludeLocations\": [\"AllTrusted\"]}}}");
    json_decref(r);

    /* The plan reports it; rejected: nothing written. */
    long pw = mt_sim_count(&g_sim, "graph.ca.policies.write", 0);
    int asked = 0;
    char *log = NULL;
    assert_int_equal(run_wf(g_wf, in, "reject", &asked, &log), 0);
    assert_true(asked);
    assert_non_null(strstr(log, "rejected"));
    free(log);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw);

    /* A ca_policy that did not approve the overwrite refuses it. */
    static const char wf[] =
        "{\"name\": \"ca-no-approval\", \"version\": \"1\", \"steps\": {\"apply\": {\"type\": "
        "\"ca_policy\", \"params\": {\"policy_name\": \"" POLICY "\", \"exclusion_group\": \"" GROUP
        "\", \"enforce\": true}}}}";
    char *wfp = tu_path(g_dir, "noapproval.json");
    tu_write_file(wfp, wf);
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(&out, &err, "run", wfp, "--wait", NULL), 1);
    assert_non_null(strstr(out, "changed outside Assent"));
    assert_non_null(strstr(out, "conditions.locations"));
    free(out);
    free(err);
    free(wfp);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw);

    /* Approved with the difference shown: overwritten. */
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 0);
    assert_true(asked);
    free(log);
    ca = ca_state();
    assert_int_equal(count_named(json_object_get(ca, "policies"), POLICY, &p), 1);
    assert_true(json_is_null(json_object_get(json_object_get(p, "conditions"), "locations")));
    json_decref(ca);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw + 1);
}

/* A missing permission: the step names it, nothing is left written. */
static void test_missing_permission(void **state)
{
    (void)state;
    const char *in = "{\"approvers\": [\"sec@contoso.com\"], \"policy_name\": \"Other block\", "
                     "\"exclusion_group\": \"Other exceptions\"}";
    char path[200];
    snprintf(path, sizeof path, "/_sim/apps/%s/graph_permissions", g_sim.client_id);
    json_decref(mt_sim_admin(&g_sim, "PUT", path,
                             "[\"User.Read.All\", \"Reports.Read.All\", \"AuditLog.Read.All\", "
                             "\"Policy.Read.All\", \"Group.ReadWrite.All\", "
                             "\"GroupMember.ReadWrite.All\"]"));
    int asked = 0;
    char *log = NULL;
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 1);
    assert_true(asked);
    assert_non_null(strstr(log, "HTTP 403"));
    assert_non_null(strstr(log, "Policy.ReadWrite.ConditionalAccess"));
    free(log);
    json_t *ca = ca_state();
    assert_int_equal(count_named(json_object_get(ca, "policies"), "Other block", NULL), 0);
    assert_int_equal(count_named(json_object_get(ca, "groups"), "Other exceptions", NULL), 0);
    json_decref(ca);

    /* Without a group member permission: named, no group left behind. */
    json_decref(mt_sim_admin(&g_sim, "PUT", path,
                             "[\"User.Read.All\", \"Policy.Read.All\", "
                             "\"Policy.ReadWrite.ConditionalAccess\", \"Group.Create\", "
                             "\"Group.Read.All\"]"));
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 1);
    assert_non_null(strstr(log, "GroupMember.ReadWrite.All"));
    free(log);
    ca = ca_state();
    assert_int_equal(count_named(json_object_get(ca, "policies"), "Other block", NULL), 0);
    json_decref(ca);

    /* Without Policy.Read.All the plan fails naming it, before anyone is asked. */
    json_decref(mt_sim_admin(&g_sim, "PUT", path, "[\"User.Read.All\"]"));
    assert_int_equal(run_wf(g_wf, in, "approve", &asked, &log), 1);
    assert_false(asked);
    assert_non_null(strstr(log, "Policy.Read.All"));
    free(log);
    json_decref(mt_sim_admin(&g_sim, "PUT", path, "null"));
}

/* sync + report policies: the legacy-auth policies, Microsoft-managed included. */
static void test_report_policies(void **state)
{
    (void)state;
    json_decref(mt_sim_admin(
        &g_sim, "POST", "/_sim/conditional_access/policies",
        "{\"displayName\": \"Microsoft-managed: Block legacy authentication\", \"state\": "
        "\"enabledForReportingButNotEnforced\", \"conditions\": {\"clientAppTypes\": "
        "[\"exchangeActiveSync\", \"other\"], \"applications\": {\"includeApplications\": "
        "[\"All\"]}, \"users\": {\"includeUsers\": [\"All\"]}}, \"grantControls\": "
        "{\"operator\": \"OR\", \"builtInControls\": [\"block\"]}}"));
    json_decref(mt_sim_admin(
        &g_sim, "POST", "/_sim/conditional_access/policies",
        "{\"displayName\": \"Require MFA\", \"state\": \"enabled\", \"conditions\": "
        "{\"clientAppTypes\": [\"all\"], \"applications\": {\"includeApplications\": [\"All\"]}, "
        "\"users\": {\"includeUsers\": [\"All\"]}}, \"grantControls\": {\"operator\": \"OR\", "
        "\"builtInControls\": [\"mfa\"]}}"));
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, "sync", "--quiet", NULL);
    if (rc != 0)
        fail_msg("sync: %d: %s %s", rc, out ? out : "", err ? err : "");
    assert_non_null(strstr(out, "CA policies        2"));
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "report", "policies", "--format", "json", NULL), 0);
    json_t *rows = json_loads(out, 0, NULL);
    free(out);
    free(err);
    assert_int_equal(json_array_size(rows), 2);
    json_t *a = json_array_get(rows, 0), *m = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(a, "display_name")), POLICY);
    assert_true(json_is_true(json_object_get(a, "assent")));
    assert_false(json_is_true(json_object_get(a, "managed")));
    assert_string_equal(json_string_value(json_object_get(a, "state")), "enabled");
    assert_true(json_is_true(json_object_get(m, "managed")));
    assert_string_equal(json_string_value(json_object_get(m, "state")),
                        "enabledForReportingButNotEnforced");
    json_decref(rows);
    assert_int_equal(assent(&out, &err, "report", "policies", "--format", "csv", NULL), 0);
    assert_non_null(strstr(out, "policy,state,microsoft_managed,written_by_assent"));
    assert_non_null(strstr(out, "Microsoft-managed: Block legacy authentication,"
                                "enabledForReportingButNotEnforced,yes,no"));
    free(out);
    free(err);

    /* A workflow naming the Microsoft-managed policy never writes it. */
    long pw = mt_sim_count(&g_sim, "graph.ca.policies.write", 0);
    int asked = 0;
    char *log = NULL;
    assert_int_equal(run_wf(g_wf,
                            "{\"approvers\": [\"sec@contoso.com\"], \"policy_name\": "
                            "\"Microsoft-managed: Block legacy authentication\"}",
                            "approve", &asked, &log),
                     1);
    assert_false(asked);
    assert_non_null(strstr(log, "Microsoft-managed"));
    free(log);
    assert_int_equal(mt_sim_count(&g_sim, "graph.ca.policies.write", 0), pw);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_update_enforce),
        cmocka_unit_test(test_edited_outside),
        cmocka_unit_test(test_missing_permission),
        cmocka_unit_test(test_report_policies),
    };
    (void)argc;
    (void)argv;
    return cmocka_run_group_tests(tests, setup, teardown);
}
