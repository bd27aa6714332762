/*
 * it_m365.c - the tenant commands end to end with the real `assent` binary
 * and the tenant simulator over HTTP: `assent sync` fills the report; the
 * report lists exactly the users with legacy protocols (computed here from
 * the simulator's state file, independently); users gone from the tenant are
 * removed; a tenant without Entra ID P1 and with concealed report names syncs
 * partially with warnings; `assent plan` and `--dry-run` change nothing; a
 * manage_cas run disables POP/IMAP/SMTP AUTH for one user (the state file
 * shows it) and a second run is a no-op (no Set-CASMailbox sent); validate
 * refuses lockouts and unknown properties; an approval hash mismatch acts on
 * nothing.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"
#include "m365/m365.h"
#include "tests/m365_testutil.h"

#define N_USERS 1500

static char *g_dir;
static struct mt_sim g_sim;
static struct mt_env g_env;
static char *g_wf; /* the manage_cas workflow file */

/* The databases of the test's tenants: with ASSENT_TEST_DB=pg each is a
 * database of the tests' PostgreSQL server, made on first use and dropped
 * at teardown; otherwise a SQLite file in g_dir. */
#define MAX_DBS 4
static char *g_db_name[MAX_DBS], *g_db_uri[MAX_DBS];

/* The database string of tenant file name `name`, malloc'd. */
static char *db_for(const char *name)
{
    if (!tu_test_on_pg())
        return tu_path(g_dir, name);
    int i;
    for (i = 0; i < MAX_DBS && g_db_name[i]; i++)
        if (strcmp(g_db_name[i], name) == 0)
            return strdup(g_db_uri[i]);
    assert_true(i < MAX_DBS);
    g_db_name[i] = strdup(name);
    g_db_uri[i] = tu_pg_db_new(name);
    return strdup(g_db_uri[i]);
}

static void set_env(const struct mt_sim *s, const char *db)
{
    mt_env_set(&g_env, s, db, NULL);
}

/* Run assent with args (NULL-terminated); out/err malloc'd (may be NULL). */
#define assent(out, err, ...) mt_assent(&g_env, out, err, __VA_ARGS__)

static const char wf_text[] =
    "{\"name\": \"disable-legacy-test\", \"version\": \"1\",\n"
    " \"input\": {\"upn\": {\"type\": \"string\", \"required\": true},\n"
    "           \"hash\": {\"type\": \"string\", \"default\": \"\"}},\n"
    " \"steps\": {\n"
    "  \"lookup\": {\"type\": \"cas_lookup\", \"params\": {\"identity\": \"${input.upn}\"}, \"next\": \"disable\"},\n"
    "  \"disable\": {\"type\": \"manage_cas\", \"params\": {\"identity\": \"${input.upn}\",\n"
    "     \"approved_hash\": \"${input.hash}\",\n"
    "     \"settings\": {\"PopEnabled\": false, \"ImapEnabled\": false,\n"
    "                  \"SmtpClientAuthenticationDisabled\": true}}}}}\n";

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("itm365");
    if (mt_sim_start(&g_sim, g_dir, "tenant", N_USERS, 21, NULL, NULL, NULL) != 0)
        return -1;
    g_wf = tu_path(g_dir, "disable.json");
    tu_write_file(g_wf, wf_text);
    char *db = db_for("a.db");
    set_env(&g_sim, db);
    free(db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mt_sim_stop(&g_sim);
    for (int i = 0; i < MAX_DBS && g_db_name[i]; i++) {
        tu_pg_db_drop(g_db_uri[i]);
        free(g_db_name[i]);
        g_db_name[i] = g_db_uri[i] = NULL;
    }
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_wf);
    return 0;
}

/* ------------------------------------------------- independent oracle */

static int org_smtp_disabled(json_t *st)
{
    return json_is_true(json_object_get(json_object_get(st, "transport_config"),
                                        "SmtpClientAuthenticationDisabled"));
}

/* Effective "SMTP AUTH disabled" of a mailbox: its own value, else the org's. */
static int smtp_disabled(json_t *st, json_t *mbx)
{
    json_t *v = json_object_get(mbx, "SmtpClientAuthenticationDisabled");
    return json_is_boolean(v) ? json_is_true(v) : org_smtp_disabled(st);
}

static int has_legacy(json_t *st, json_t *mbx)
{
    return json_is_true(json_object_get(mbx, "PopEnabled")) ||
           json_is_true(json_object_get(mbx, "ImapEnabled")) ||
           json_is_true(json_object_get(mbx, "ActiveSyncEnabled")) ||
           json_is_true(json_object_get(mbx, "EwsEnabled")) || !smtp_disabled(st, mbx);
}

static int legacy_app(const char *app)
{
    for (size_t k = 0; m365_legacy_client_apps[k]; k++)
        if (!strcasecmp(app, m365_legacy_client_apps[k]))
            return 1;
    return 0;
}

static json_t *report_json(const char *where)
{
    char *out = NULL, *err = NULL;
    int rc = where ? assent(&out, &err, "report", "users", "--format", "json", "--where", where, NULL)
                   : assent(&out, &err, "report", "users", "--format", "json", NULL);
    if (rc != 0)
        fail_msg("report failed (%d): %s", rc, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("report is not JSON: %s", je.text);
    free(out);
    free(err);
    return j;
}

/* ------------------------------------------------------------------ tests */

static void test_sync_fills_report(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(&out, &err, "sync", NULL), 0);
    assert_non_null(strstr(out, " ok in "));
    assert_non_null(strstr(out, "users           1500"));
    assert_non_null(strstr(err, "sync: users: 1500 done")); /* plain progress lines: no TTY */
    free(out);
    free(err);

    json_t *st = mt_sim_state(&g_sim);
    json_t *rows = report_json(NULL);
    assert_int_equal(json_array_size(rows), N_USERS);
    json_t *by_upn = json_object();
    size_t i;
    json_t *r, *u;
    json_array_foreach(rows, i, r) json_object_set(by_upn, json_string_value(json_object_get(r, "upn")), r);

    /* Per-user legacy sign-ins, computed from the state's events. */
    int64_t since = time_now_ms() - 30LL * 86400000;
    json_t *signins = json_object();
    json_array_foreach(json_object_get(st, "sign_ins"), i, u)
    {
        int64_t t;
        const char *app = json_string_value(json_object_get(u, "clientAppUsed"));
        if (time_parse_iso(json_string_value(json_object_get(u, "createdDateTime")), &t) != AS_OK ||
            t < since || !legacy_app(app))
            continue;
        const char *uid = json_string_value(json_object_get(u, "userId"));
        json_t *c = json_object_get(signins, uid);
        json_object_set_new(signins, uid, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    long with_mailbox = 0, usage_pop = 0;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        json_t *row = json_object_get(by_upn, upn);
        assert_non_null(row);
        json_t *mbx = json_object_get(u, "mailbox");
        json_t *usage = json_object_get(u, "usage");
        if (!json_is_object(mbx)) {
            assert_true(json_is_false(json_object_get(row, "has_mailbox")));
            assert_true(json_is_null(json_object_get(row, "pop_enabled")));
            continue;
        }
        with_mailbox++;
        assert_true(json_equal(json_object_get(row, "pop_enabled"), json_object_get(mbx, "PopEnabled")));
        assert_true(json_equal(json_object_get(row, "imap_enabled"), json_object_get(mbx, "ImapEnabled")));
        assert_true(json_equal(json_object_get(row, "owa_enabled"), json_object_get(mbx, "OWAEnabled")));
        assert_true(json_equal(json_object_get(row, "smtp_client_auth_disabled_mailbox"),
                               json_object_get(mbx, "SmtpClientAuthenticationDisabled")));
        assert_int_equal(json_is_true(json_object_get(row, "smtp_client_auth_disabled")),
                         smtp_disabled(st, mbx));
        const char *pop = json_is_object(usage) ? json_string_value(json_object_get(usage, "POP3 App")) : NULL;
        int used = pop && *pop;
        usage_pop += used;
        assert_int_equal(json_is_true(json_object_get(row, "pop3_30d")), used);
        assert_true(json_is_boolean(json_object_get(row, "pop3_30d")));
        json_t *c = json_object_get(signins, json_string_value(json_object_get(u, "id")));
        assert_int_equal(json_integer_value(json_object_get(row, "legacy_signins_30d")),
                         c ? json_integer_value(c) : 0);
    }
    assert_true(with_mailbox > 0 && usage_pop > 0 && json_object_size(signins) > 0);

    /* The report lists exactly the users with a legacy protocol enabled. */
    json_t *legacy = report_json("pop_enabled || imap_enabled || activesync_enabled || "
                                 "ews_enabled || smtp_client_auth_disabled == false");
    json_t *want = json_object();
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mbx = json_object_get(u, "mailbox");
        if (json_is_object(mbx) && has_legacy(st, mbx))
            json_object_set_new(want, json_string_value(json_object_get(u, "userPrincipalName")), json_true());
    }
    assert_true(json_object_size(want) > 0 && json_object_size(want) < N_USERS);
    assert_int_equal(json_array_size(legacy), json_object_size(want));
    json_array_foreach(legacy, i, r) assert_non_null(json_object_get(want, json_string_value(json_object_get(r, "upn"))));

    /* Sign-ins report, case-insensitive client app. */
    long want_imap = 0;
    json_array_foreach(json_object_get(st, "sign_ins"), i, u)
    {
        int64_t t;
        if (time_parse_iso(json_string_value(json_object_get(u, "createdDateTime")), &t) == AS_OK &&
            t >= since && !strcasecmp(json_string_value(json_object_get(u, "clientAppUsed")), "IMAP4"))
            want_imap++;
    }
    assert_int_equal(assent(&out, &err, "report", "signins", "--client-app", "imap4", "--format",
                            "json", NULL),
                     0);
    json_t *si = json_loads(out, 0, NULL);
    assert_non_null(si);
    assert_int_equal((long)json_array_size(si), want_imap);
    json_decref(si);
    free(out);
    free(err);

    /* CSV and table, sort and limit. */
    assert_int_equal(assent(&out, &err, "report", "users", "--format", "csv", "--sort",
                            "legacy_signins_30d,desc", "--limit", "3", NULL),
                     0);
    assert_true(strncmp(out, "upn,ActiveSync,OWA,POP,IMAP,MAPI,EWS,SMTP client auth,", 52) == 0);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "report", "users", "--sort", "legacy_signins_30d,desc",
                            "--limit", "1", "--format", "json", NULL),
                     0);
    si = json_loads(out, 0, NULL);
    long top = (long)json_integer_value(json_object_get(json_array_get(si, 0), "legacy_signins_30d"));
    long max = 0;
    const char *k;
    json_t *v;
    json_object_foreach(signins, k, v) if (json_integer_value(v) > max) max = (long)json_integer_value(v);
    assert_int_equal(top, max);
    json_decref(si);
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "report", "users", "--limit", "2", NULL), 0);
    assert_non_null(strstr(out, "SMTP client auth"));
    assert_non_null(strstr(err, "tenant as of sync"));
    free(out);
    free(err);
    /* Bad input gets a clear error. */
    assert_int_equal(assent(&out, &err, "report", "users", "--where", "pop_enabled ===", NULL), 2);
    assert_non_null(strstr(err, "--where"));
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "report", "users", "--sort", "nope", NULL), 2);
    assert_non_null(strstr(err, "cannot sort by"));
    free(out);
    free(err);

    json_decref(want);
    json_decref(legacy);
    json_decref(signins);
    json_decref(by_upn);
    json_decref(rows);
    json_decref(st);
}

/* First user with a mailbox where PopEnabled or ImapEnabled is on and SMTP AUTH is not off. */
static const char *pick_legacy(json_t *st)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mbx = json_object_get(u, "mailbox");
        if (json_is_object(mbx) &&
            (json_is_true(json_object_get(mbx, "PopEnabled")) ||
             json_is_true(json_object_get(mbx, "ImapEnabled"))) &&
            !json_is_true(json_object_get(mbx, "SmtpClientAuthenticationDisabled")))
            return json_string_value(json_object_get(u, "userPrincipalName"));
    }
    return NULL;
}

static void test_plan_changes_nothing(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    char *before = tu_read_file(g_sim.state);
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);
    assert_int_equal(assent(&out, &err, "plan", g_wf, "--where", "pop_enabled || imap_enabled", NULL), 0);
    char *after = tu_read_file(g_sim.state);
    assert_string_equal(before, after);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets);

    /* One line per matching mailbox, with exactly the settings that differ. */
    json_t *st = mt_sim_state(&g_sim);
    long want = 0, got = 0;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mbx = json_object_get(u, "mailbox");
        if (!json_is_object(mbx) || !(json_is_true(json_object_get(mbx, "PopEnabled")) ||
                                      json_is_true(json_object_get(mbx, "ImapEnabled"))))
            continue;
        want++;
        char *q = m365_ps_quote(json_string_value(json_object_get(u, "userPrincipalName")));
        char line[512];
        snprintf(line, sizeof line, "Set-CASMailbox -Identity %s", q);
        free(q);
        char *p = strstr(out, line);
        assert_non_null(p);
        char *eol = strchr(p, '\n');
        *eol = '\0';
        assert_int_equal(strstr(p, "-PopEnabled $false") != NULL, json_is_true(json_object_get(mbx, "PopEnabled")));
        assert_int_equal(strstr(p, "-ImapEnabled $false") != NULL, json_is_true(json_object_get(mbx, "ImapEnabled")));
        assert_int_equal(strstr(p, "-SmtpClientAuthenticationDisabled $true") != NULL,
                         !json_is_true(json_object_get(mbx, "SmtpClientAuthenticationDisabled")));
        *eol = '\n';
    }
    for (char *p = out; (p = strstr(p, "\nSet-CASMailbox ")); p++)
        got++;
    assert_int_equal(got, want);
    assert_non_null(strstr(out, "Nothing has been changed"));
    json_decref(st);
    free(before);
    free(after);
    free(out);
    free(err);

    /* --kpi: the KPI's rows carry the per-user settings (cas_settings). */
    char *kpi = tu_path(g_dir, "kpi.json");
    char *kwf = tu_path(g_dir, "kpiwf.json");
    tu_write_file(kpi, "{\"name\": \"legacy-test\", \"report\": \"users\", \"filter\": "
                       "\"pop_enabled || imap_enabled || smtp_client_auth_disabled == false\", "
                       "\"protocols\": [\"pop\", \"imap\", \"smtp\"]}");
    tu_write_file(kwf, "{\"name\": \"kpi-wf\", \"version\": \"1\", \"input\": {"
                       "\"user\": {\"type\": \"string\", \"required\": true},"
                       "\"cas_settings\": {\"type\": \"object\", \"required\": true}},"
                       "\"steps\": {\"d\": {\"type\": \"manage_cas\", \"params\": {"
                       "\"identity\": \"${input.user}\", \"settings\": \"${input.cas_settings}\"}}}}");
    assert_int_equal(assent(&out, &err, "kpi", "create", "--from", kpi, NULL), 0);
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "plan", kwf, "--kpi", "legacy-test", NULL), 0);
    st = mt_sim_state(&g_sim);
    want = got = 0;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mbx = json_object_get(u, "mailbox");
        if (!json_is_object(mbx))
            continue;
        int pop = json_is_true(json_object_get(mbx, "PopEnabled"));
        int imap = json_is_true(json_object_get(mbx, "ImapEnabled"));
        json_t *sm = json_object_get(mbx, "SmtpClientAuthenticationDisabled");
        int smtp = json_is_boolean(sm) ? json_is_false(sm)
                                       : !json_is_true(json_object_get(
                                             json_object_get(st, "transport_config"),
                                             "SmtpClientAuthenticationDisabled"));
        if (!pop && !imap && !smtp)
            continue;
        want++;
        char *q = m365_ps_quote(json_string_value(json_object_get(u, "userPrincipalName")));
        char line[512];
        snprintf(line, sizeof line, "\nSet-CASMailbox -Identity %s ", q);
        free(q);
        char *p = strstr(out, line);
        assert_non_null(p);
        char *eol = strchr(p + 1, '\n');
        *eol = '\0';
        assert_int_equal(strstr(p, "-PopEnabled $false") != NULL, pop);
        assert_int_equal(strstr(p, "-ImapEnabled $false") != NULL, imap);
        assert_int_equal(strstr(p, "-SmtpClientAuthenticationDisabled $true") != NULL, smtp);
        *eol = '\n';
    }
    for (char *p = out; (p = strstr(p, "\nSet-CASMailbox ")); p++)
        got++;
    assert_int_equal(got, want);
    json_decref(st);
    free(out);
    free(err);
    free(kpi);
    free(kwf);
    assert_int_equal(assent(&out, &err, "plan", g_wf, "--kpi", "no-such-kpi", NULL), 4);
    free(out);
    free(err);

    /* A workflow without Exchange steps has nothing to plan. */
    char *other = tu_path(g_dir, "log.json");
    tu_write_file(other, "{\"name\":\"x\",\"version\":\"1\",\"steps\":{\"a\":{\"type\":\"log\",\"params\":{\"message\":\"hi\"}}}}");
    assert_int_equal(assent(&out, &err, "plan", other, NULL), 1);
    assert_non_null(strstr(err, "no manage_cas"));
    free(out);
    free(err);
    free(other);
}

/* A user of a hostile tenant: a UPN with line breaks, and no mailbox. */
static void add_evil_user(json_t *st)
{
    json_array_append_new(json_object_get(st, "users"),
                          json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", "evil-id",
                                    "userPrincipalName",
                                    "evil@x.com\nRemove-Mailbox -Identity boss\r", "displayName",
                                    "Evil", "userType", "Member", "accountEnabled", 1));
}

/* A UPN with a line break (tenant data is untrusted) cannot end a "# ..."
 * comment of the plan and slip a command of its own into the script.  The
 * user comes the way tenant data does: from a tenant (a small one of its
 * own, with its own database) through `assent sync`. */
static void test_plan_comment_injection(void **state)
{
    (void)state;
    struct mt_sim s;
    assert_int_equal(mt_sim_start(&s, g_dir, "inject", 20, 5, NULL, add_evil_user, NULL), 0);
    char *db = db_for("inject.db");
    set_env(&s, db);
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, "sync", "--quiet", NULL);
    if (rc != 0)
        fail_msg("sync exited %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    out = err = NULL;
    rc = assent(&out, &err, "plan", g_wf, NULL);
    mt_sim_stop(&s);
    char *main_db = db_for("a.db");
    set_env(&g_sim, main_db);
    free(main_db);
    free(db);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "# evil@x.com?Remove-Mailbox -Identity boss?: no mailbox"));
    /* Every line is a comment or a Set- command. */
    for (const char *line = out; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
        if (*line == '\n')
            continue;
        if (*line != '#' && strncmp(line, "Set-", 4) != 0)
            fail_msg("unexpected plan line: %.*s", (int)strcspn(line, "\n"), line);
    }
    assert_null(strchr(out, '\r'));
    free(out);
    free(err);
}

static void test_run_manage_cas(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL, input[400];
    json_t *st = mt_sim_state(&g_sim);
    char upn[256];
    snprintf(upn, sizeof upn, "%s", pick_legacy(st));
    json_decref(st);
    snprintf(input, sizeof input, "{\"upn\": \"%s\"}", upn);
    char *before = tu_read_file(g_sim.state);
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);

    /* Dry run: the exact command recorded, nothing changed. */
    assert_int_equal(assent(&out, &err, "run", g_wf, "--input", input, "--wait", "--dry-run", "--json", NULL), 0);
    char *q = m365_ps_quote(upn);
    char want_cmd[400];
    snprintf(want_cmd, sizeof want_cmd, "Set-CASMailbox -Identity %s", q);
    free(q);
    /* The command is inside JSON text: its quotes are not JSON-escaped ('), so it appears as is. */
    assert_non_null(strstr(out, want_cmd));
    assert_non_null(strstr(out, "m365.dry_run"));
    free(out);
    free(err);
    char *after = tu_read_file(g_sim.state);
    assert_string_equal(before, after);
    free(after);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets);

    /* For real: POP, IMAP and SMTP AUTH off, as the state file shows. */
    assert_int_equal(assent(&out, &err, "run", g_wf, "--input", input, "--wait", NULL), 0);
    free(out);
    free(err);
    st = mt_sim_state(&g_sim);
    json_t *mbx = json_object_get(mt_state_user(st, upn), "mailbox");
    assert_true(json_is_false(json_object_get(mbx, "PopEnabled")));
    assert_true(json_is_false(json_object_get(mbx, "ImapEnabled")));
    assert_true(json_is_true(json_object_get(mbx, "SmtpClientAuthenticationDisabled")));
    json_decref(st);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);

    /* Again: a no-op, no Set-CASMailbox sent. */
    assert_int_equal(assent(&out, &err, "run", g_wf, "--input", input, "--wait", "--json", NULL), 0);
    assert_non_null(strstr(out, "\"changed\": []"));
    free(out);
    free(err);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);

    /* An approval hash for another request: refused, nothing changed. */
    st = mt_sim_state(&g_sim);
    char other[256];
    snprintf(other, sizeof other, "%s", pick_legacy(st));
    json_decref(st);
    snprintf(input, sizeof input, "{\"upn\": \"%s\", \"hash\": \"%064d\"}", other, 0);
    free(before);
    before = tu_read_file(g_sim.state);
    assert_int_equal(assent(&out, &err, "run", g_wf, "--input", input, "--wait", NULL), 1);
    assert_non_null(strstr(out, "not the one that was approved"));
    free(out);
    free(err);
    after = tu_read_file(g_sim.state);
    assert_string_equal(before, after);
    /* ... and the right hash is accepted. */
    json_t *settings = json_pack("{s:b, s:b, s:b}", "PopEnabled", 0, "ImapEnabled", 0,
                                 "SmtpClientAuthenticationDisabled", 1);
    char h[65];
    struct as_err e = {0};
    assert_int_equal(m365_cas_request_hash(other, settings, h, &e), AS_OK);
    json_decref(settings);
    snprintf(input, sizeof input, "{\"upn\": \"%s\", \"hash\": \"%s\"}", other, h);
    assert_int_equal(assent(&out, &err, "run", g_wf, "--input", input, "--wait", NULL), 0);
    free(out);
    free(err);
    free(before);
    free(after);
}

static void test_validate_lockout(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    char *p = tu_path(g_dir, "lockout.json");
    tu_write_file(p, "{\"name\":\"l\",\"version\":\"1\",\"steps\":{\"x\":{\"type\":\"manage_cas\","
                     "\"params\":{\"identity\":\"a@b\",\"settings\":{\"OWAEnabled\":false,\"PopEnabld\":false}}}}}");
    assert_int_equal(assent(&out, &err, "validate", p, NULL), 1);
    char *all = out && *out ? out : err;
    assert_non_null(strstr(all, "LOCKOUT_RISK"));
    assert_non_null(strstr(all, "$.steps.x.params.settings.OWAEnabled"));
    assert_non_null(strstr(all, "UNKNOWN_CAS_PROPERTY"));
    free(out);
    free(err);
    tu_write_file(p, "{\"name\":\"l\",\"version\":\"1\",\"steps\":{\"x\":{\"type\":\"manage_cas\","
                     "\"params\":{\"identity\":\"a@b\",\"allow_lockout\":true,\"settings\":{\"OWAEnabled\":false}}}}}");
    assert_int_equal(assent(&out, &err, "validate", p, NULL), 0);
    free(out);
    free(err);
    free(p);
}

/* A tenant that changes between syncs, lacks Entra ID P1 and conceals report names. */
static void drop_first_user(json_t *st)
{
    json_array_remove(json_object_get(st, "users"), 0);
}

static void edit_partial(json_t *st)
{
    json_object_set_new(json_object_get(st, "tenant"), "premium", json_false());
    json_object_set_new(st, "report_settings", json_pack("{s:b}", "displayConcealedNames", 1));
}

static void test_partial_sync_and_removal(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    struct mt_sim s2;
    assert_int_equal(mt_sim_start(&s2, g_dir, "partial", 40, 3, NULL, edit_partial, NULL), 0);
    char *db = db_for("partial.db");
    set_env(&s2, db);
    /* Partial: its own exit code (6), so cron notices, with the data stored. */
    assert_int_equal(assent(&out, &err, "sync", NULL), 6);
    assert_non_null(strstr(err, "partial"));
    assert_non_null(strstr(out, " partial in "));
    assert_non_null(strstr(out, "P1"));
    assert_non_null(strstr(out, "Display concealed user, group, and site names"));
    assert_non_null(strstr(out, "users             40"));
    free(out);
    free(err);
    /* The rest is there; usage and sign-in columns are unknown (null), not "no". */
    json_t *rows = report_json(NULL);
    assert_int_equal(json_array_size(rows), 40);
    json_t *r0 = json_array_get(rows, 0);
    assert_true(json_is_null(json_object_get(r0, "pop3_30d")));
    assert_true(json_is_null(json_object_get(r0, "legacy_signins_30d")));
    json_decref(rows);
    assert_int_equal(assent(&out, &err, "sync", "--json", "--quiet", NULL), 6);
    json_t *j = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "partial");
    assert_int_equal(json_array_size(json_object_get(j, "warnings")), 2);
    json_decref(j);
    free(out);
    free(err);

    /* A user removed from the tenant is removed by the next sync. */
    json_t *st = mt_sim_state(&s2);
    char gone[256];
    snprintf(gone, sizeof gone, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(st, "users"), 0),
                                               "userPrincipalName")));
    json_decref(st);
    mt_sim_stop(&s2);
    struct mt_sim s3;
    /* Same seed and size: the same tenant, then one user less. */
    assert_int_equal(mt_sim_start(&s3, g_dir, "partial2", 40, 3, NULL, drop_first_user, NULL), 0);
    set_env(&s3, db);
    assert_int_equal(assent(&out, &err, "sync", NULL), 0);
    assert_non_null(strstr(out, "(removed 1)"));
    free(out);
    free(err);
    rows = report_json(NULL);
    assert_int_equal(json_array_size(rows), 39);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) assert_string_not_equal(json_string_value(json_object_get(r, "upn")), gone);
    json_decref(rows);
    mt_sim_stop(&s3);

    /* A tenant nobody can reach: a clear error, exit 1. */
    struct mt_sim dead = s3;
    snprintf(dead.url, sizeof dead.url, "http://127.0.0.1:%d", tu_free_port());
    dead.secret_path = g_sim.secret_path;
    set_env(&dead, db);
    assert_int_equal(assent(&out, &err, "sync", "--quiet", NULL), 1);
    assert_non_null(strstr(err, "token request"));
    free(out);
    free(err);

    char *main_db = db_for("a.db");
    set_env(&g_sim, main_db);
    free(main_db);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_fills_report),   cmocka_unit_test(test_plan_changes_nothing),
        cmocka_unit_test(test_plan_comment_injection),
        cmocka_unit_test(test_run_manage_cas),      cmocka_unit_test(test_validate_lockout),
        cmocka_unit_test(test_partial_sync_and_removal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
