/*
 * it_playbook.c - evidence of Basic use, drift and deadlines, end to end with
 * the real `assent` binary and the tenant simulator over HTTP:
 *
 * - a non-interactive "authenticated smtp" sign-in (Graph beta's other
 *   stream, lower-case on the wire) is synced and counted in the users
 *   report's per-app counts, and shown as not interactive;
 * - the SMTP AUTH clients report import gives smtp_basic_30d (0, not
 *   unknown, for senders absent from it) and a bad export changes nothing;
 * - a protocol manage_cas turned off and the simulator turns on again is
 *   drift after the next sync (audited, in the drift KPI's rows), and no
 *   longer drift once an exception covers it;
 * - a KPI's deadline shows days left and the burn-down per week.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>

#include "base/timeutil.h"
#include "tests/m365_testutil.h"

#define N_USERS 60

static char *g_dir, *g_db;
static char g_mail_dir[600];
static struct mt_sim g_sim;
static struct mt_env g_env;
static pid_t g_worker; /* stopped by teardown too, should a test fail while it runs */

static void set_env(const struct mt_sim *s, const char *db)
{
    char mail[700];
    snprintf(mail, sizeof mail, "ASSENT_MAIL_DIR=%s", g_mail_dir);
    const char *extra[] = {mail, NULL};
    mt_env_set(&g_env, s, db, extra);
}

/* Run assent with args (NULL-terminated); out/err malloc'd (may be NULL). */
#define assent(out, err, ...) mt_assent(&g_env, out, err, __VA_ARGS__)

/* assent ... must exit 0; its stdout parsed as JSON. */
static json_t *assent_json(const char *a1, const char *a2, const char *a3, const char *a4,
                           const char *a5, const char *a6)
{
    char *out = NULL, *err = NULL;
    int rc = assent(&out, &err, a1, a2, a3, a4, a5, a6, NULL);
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

/* The users-report row of upn (new reference). */
static json_t *user_row(const char *upn)
{
    char where[300];
    snprintf(where, sizeof where, "upn == '%s'", upn);
    json_t *rows = assent_json("report", "users", "--format", "json", "--where", where);
    assert_int_equal(json_array_size(rows), 1);
    json_t *r = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return r;
}

/* A user with a mailbox whose POP is on, from the state file. */
static void pick_pop_user(char *out, size_t size)
{
    json_t *st = mt_sim_state(&g_sim), *u;
    size_t i;
    out[0] = '\0';
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mbx = json_object_get(u, "mailbox");
        if (json_is_true(json_object_get(mbx, "PopEnabled"))) {
            snprintf(out, size, "%s", json_string_value(json_object_get(u, "userPrincipalName")));
            break;
        }
    }
    json_decref(st);
    assert_true(out[0]);
}

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("itplaybook");
    snprintf(g_mail_dir, sizeof g_mail_dir, "%s/mail", g_dir);
    if (mt_sim_start(&g_sim, g_dir, "tenant", N_USERS, 7, NULL, NULL, NULL) != 0)
        return -1;
    g_db = tu_test_on_pg() ? tu_pg_db_new("playbook") : tu_path(g_dir, "a.db");
    set_env(&g_sim, g_db);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_worker > 0)
        tu_stop(g_worker, SIGKILL);
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

static void test_noninteractive_smtp_signin_counts(void **state)
{
    (void)state;
    char upn[256], body[1200], when[40];
    json_t *st = mt_sim_state(&g_sim);
    json_t *u0 = json_array_get(json_object_get(st, "users"), 3);
    snprintf(upn, sizeof upn, "%s", json_string_value(json_object_get(u0, "userPrincipalName")));
    const char *uid = json_string_value(json_object_get(u0, "id"));
    time_format_iso(time_now_ms() - 3600 * 1000, when, sizeof when);
    /* Lower case on purpose: clientAppUsed is matched case-insensitively. */
    snprintf(body, sizeof body,
             "{\"id\": \"11111111-2222-3333-4444-555555555555\", \"createdDateTime\": \"%s\","
             " \"userPrincipalName\": \"%s\", \"userId\": \"%s\", \"clientAppUsed\": "
             "\"authenticated smtp\", \"appDisplayName\": \"Office 365 Exchange Online\","
             " \"isInteractive\": false, \"signInEventTypes\": [\"nonInteractiveUser\"],"
             " \"status\": {\"errorCode\": 0}}",
             when, upn, uid);
    json_decref(st);
    json_t *r = mt_sim_admin(&g_sim, "POST", "/_sim/sign_ins", body);
    assert_int_equal(json_integer_value(json_object_get(r, "added")), 1);
    json_decref(r);

    /* Independently: the user's legacy Authenticated SMTP sign-ins of the last
     * 30 days in the state file, by stream. */
    st = mt_sim_state(&g_sim);
    int64_t since = time_now_ms() - 30LL * 86400000;
    long smtp = 0, nonint = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(st, "sign_ins"), i, s)
    {
        int64_t t;
        const char *app = json_string_value(json_object_get(s, "clientAppUsed"));
        if (strcasecmp(json_string_value(json_object_get(s, "userPrincipalName")), upn) ||
            time_parse_iso(json_string_value(json_object_get(s, "createdDateTime")), &t) ||
            t < since || !app || strcasecmp(app, "Authenticated SMTP"))
            continue;
        smtp++;
        json_t *types = json_object_get(s, "signInEventTypes");
        if (types && !strcmp(json_string_value(json_array_get(types, 0)), "nonInteractiveUser"))
            nonint++;
    }
    json_decref(st);
    assert_int_equal(nonint, 1);

    long before = mt_sim_count(&g_sim, "graph.signIns", 0);
    sync_ok();
    /* Both streams were read: v1.0 and beta. */
    assert_true(mt_sim_count(&g_sim, "graph.signIns", 0) >= before + 2);
    json_t *row = user_row(upn);
    assert_int_equal(json_integer_value(json_object_get(row, "smtp_signins_30d")), smtp);
    assert_int_equal(json_integer_value(json_object_get(row, "noninteractive_signins_30d")), 1);
    assert_true(json_integer_value(json_object_get(row, "legacy_signins_30d")) >= smtp);
    json_decref(row);

    json_t *sis = assent_json("report", "signins", "--upn", upn, "--format", "json");
    int found = 0;
    json_array_foreach(sis, i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "id")),
                    "11111111-2222-3333-4444-555555555555")) {
            found = 1;
            assert_true(json_is_false(json_object_get(s, "interactive")));
        } else {
            assert_true(json_is_true(json_object_get(s, "interactive")));
        }
    }
    assert_true(found);
    json_decref(sis);
}

static void test_smtp_auth_report_import(void **state)
{
    (void)state;
    char upn[256], csv[1024], *path = tu_path(g_dir, "smtp-auth.csv");
    json_t *st = mt_sim_state(&g_sim);
    snprintf(upn, sizeof upn, "%s",
             json_string_value(json_object_get(
                 json_array_get(json_object_get(st, "users"), 5), "userPrincipalName")));
    json_decref(st);

    /* Before any import the column is unknown. */
    json_t *row = user_row(upn);
    assert_true(json_is_null(json_object_get(row, "smtp_basic_30d")));
    json_decref(row);

    /* A bad export: refused, naming the row; nothing imported. */
    snprintf(csv, sizeof csv,
             "Sender address,Authentication protocol,Messages sent\n%s,Basic,12\n%s,NTLM,3\n", upn,
             upn);
    tu_write_file(path, csv);
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(&out, &err, "import", "smtp-auth-report", path, NULL), 2);
    assert_non_null(strstr(err, "row 3"));
    free(out);
    free(err);
    row = user_row(upn);
    assert_true(json_is_null(json_object_get(row, "smtp_basic_30d")));
    json_decref(row);

    /* The real shape: BOM, TLS columns, a count with a thousands separator,
     * one sender on two rows (summed), upper case in the address. */
    char up[256];
    snprintf(up, sizeof up, "%s", upn);
    for (char *p = up; *p && *p != '@'; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(csv, sizeof csv,
             "\xEF\xBB\xBF\"Sender address\",\"Domain\",\"TLS 1.0\",\"TLS 1.1\",\"TLS 1.2\","
             "\"Authentication protocol\",\"Messages sent\"\n"
             "%s,x,0,0,100,Basic,300\n%s,x,0,0,100,Basic,12\n%s,x,0,0,100,OAuth,\"1,000\"\n"
             "printer@elsewhere.example,x,100,0,0,Basic,7\n",
             upn, up, upn);
    tu_write_file(path, csv);
    json_t *sum = assent_json("import", "smtp-auth-report", path, "--json", NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(sum, "senders")), 2);
    assert_int_equal(json_integer_value(json_object_get(sum, "basic_messages")), 319);
    assert_int_equal(json_integer_value(json_object_get(sum, "oauth_messages")), 1000);
    json_decref(sum);
    row = user_row(upn);
    assert_int_equal(json_integer_value(json_object_get(row, "smtp_basic_30d")), 312);
    json_decref(row);
    /* Everyone else: 0 messages with Basic, known. */
    json_t *rows = assent_json("report", "users", "--format", "json", "--where",
                               "smtp_basic_30d > 0");
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    rows = assent_json("report", "users", "--format", "json", "--where", "smtp_basic_30d == null");
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    free(path);
}

/* Events in the audit chain, which must be intact. */
static json_int_t audit_events(void)
{
    json_t *a = assent_json("audit", "verify", "--json", NULL, NULL, NULL);
    assert_true(json_is_true(json_object_get(a, "intact")));
    json_int_t n = json_integer_value(json_object_get(a, "events"));
    json_decref(a);
    return n;
}

static const char wf_text[] =
    "{\"name\": \"pop-off\", \"version\": \"1\",\n"
    " \"input\": {\"upn\": {\"type\": \"string\", \"required\": true}},\n"
    " \"steps\": {\"off\": {\"type\": \"manage_cas\", \"params\": {\"identity\": \"${input.upn}\",\n"
    "     \"settings\": {\"PopEnabled\": false}}}}}\n";

static void test_drift(void **state)
{
    (void)state;
    char upn[256], path[600], *out = NULL, *err = NULL;
    pick_pop_user(upn, sizeof upn);
    char *wf = tu_path(g_dir, "pop-off.json");
    tu_write_file(wf, wf_text);
    char input[400];
    snprintf(input, sizeof input, "{\"upn\": \"%s\"}", upn);
    assert_int_equal(assent(&out, &err, "run", wf, "--input", input, "--wait", NULL), 0);
    free(out);
    free(err);
    sync_ok();
    json_t *row = user_row(upn);
    assert_true(json_is_false(json_object_get(row, "pop_enabled")));
    assert_true(json_is_null(json_object_get(row, "drift")));
    json_decref(row);

    /* Someone turns POP on again outside Assent. */
    snprintf(path, sizeof path, "/_sim/mailboxes/%s", upn);
    json_t *r = mt_sim_admin(&g_sim, "PATCH", path, "{\"PopEnabled\": true}");
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    json_int_t events = audit_events();
    json_t *res = assent_json("sync", "--json", "--quiet", NULL, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(res, "drift")), 1);
    json_decref(res);
    /* One m365.drift event in the audit chain, which holds. */
    assert_int_equal(audit_events(), events + 1);
    row = user_row(upn);
    assert_string_equal(json_string_value(json_object_get(row, "drift")), "pop");
    json_decref(row);
    /* A second sync finds the same drift: not recorded twice. */
    res = assent_json("sync", "--json", "--quiet", NULL, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(res, "drift")), 0);
    json_decref(res);
    assert_int_equal(audit_events(), events + 1);

    /* The shipped drift KPI lists exactly that user. */
    char kpi[600];
    snprintf(kpi, sizeof kpi, "%s/workflows/kpis/drift.json", tu_source_dir());
    assert_int_equal(assent(&out, &err, "kpi", "create", "--from", kpi, NULL), 0);
    free(out);
    free(err);
    json_t *ev = assent_json("kpi", "eval", "drift", "--rows", "--json", NULL);
    assert_int_equal(json_integer_value(json_object_get(ev, "value")), 1);
    json_t *rows = json_object_get(ev, "rows");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "upn")), upn);
    json_decref(ev);

    /* An exception for POP explains it: no longer drift. */
    assert_int_equal(assent(&out, &err, "exception", "add", "--user", upn, "--protocols", "pop",
                            "--reason", "old scanner", "--granted-by", "it-security@example.com", NULL),
                     0);
    free(out);
    free(err);
    sync_ok();
    row = user_row(upn);
    assert_true(json_is_null(json_object_get(row, "drift")));
    json_decref(row);
    free(wf);
}

static void test_kpi_deadline(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    int64_t now = time_now_ms();
    char date[40];
    /* A deadline 20 days ahead (its end: 20 to 21 days from now). */
    time_format_iso(now + 20LL * 86400000, date, sizeof date);
    date[10] = '\0';
    char *path = tu_path(g_dir, "pop-kpi.json");
    char def[600];
    snprintf(def, sizeof def,
             "{\"name\": \"pop-on\", \"report\": \"users\", \"filter\": \"pop_enabled\","
             " \"protocols\": [\"pop\"], \"deadline\": \"%s\"}",
             date);
    tu_write_file(path, def);
    assert_int_equal(assent(&out, &err, "kpi", "create", "--from", path, NULL), 0);
    free(out);
    free(err);
    json_t *ev = assent_json("kpi", "eval", "pop-on", "--json", NULL, NULL);
    int64_t value = json_integer_value(json_object_get(ev, "value"));
    json_decref(ev);
    assert_true(value > 0);
    json_t *shown = assent_json("kpi", "show", "pop-on", "--json", NULL, NULL);
    json_t *dl = json_object_get(shown, "deadline");
    assert_non_null(dl);
    assert_string_equal(json_string_value(json_object_get(dl, "date")), date);
    assert_int_equal(json_integer_value(json_object_get(dl, "days_left")), 21);
    assert_int_equal(json_integer_value(json_object_get(dl, "remaining")), value);
    /* Three weeks or a little less are left: value / weeks, rounded up. */
    int64_t per_week = json_integer_value(json_object_get(dl, "needed_per_week"));
    assert_true(per_week * 3 >= value && per_week <= value);
    json_decref(shown);
    assert_int_equal(assent(&out, &err, "kpi", "show", "pop-on", NULL), 0);
    assert_non_null(strstr(out, "21 days left"));
    assert_non_null(strstr(out, "per week needed"));
    free(out);
    free(err);
    /* Not a date: refused with the reason. */
    tu_write_file(path, "{\"name\": \"bad\", \"filter\": \"pop_enabled\", \"deadline\": \"2026-02-30\"}");
    assert_int_equal(assent(&out, &err, "kpi", "create", "--from", path, NULL), 2);
    assert_non_null(strstr(err, "deadline.date must be a date"));
    free(out);
    free(err);
    free(path);
}


/* ----------------------------------------------- the organisation switch */

/* Set a mailbox's SMTP AUTH switch in the simulator ("null", "false", "true"). */
static void set_smtp(const char *upn, const char *value)
{
    char path[400], body[100];
    snprintf(path, sizeof path, "/_sim/mailboxes/%s", upn);
    snprintf(body, sizeof body, "{\"SmtpClientAuthenticationDisabled\": %s}", value);
    json_decref(mt_sim_admin(&g_sim, "PATCH", path, body));
}

static json_t *smtp_of(json_t *st, const char *upn)
{
    return json_object_get(json_object_get(mt_state_user(st, upn), "mailbox"),
                           "SmtpClientAuthenticationDisabled");
}

/* Poll `assent show RUN --json` until the run's status is one of want
 * ("a|b"); a slow machine only makes this slower (the bound is generous). */
static json_t *wait_run(const char *run, const char *want)
{
    char *last = NULL;
    for (int i = 0; i < 6000; i++) {
        json_t *j = assent_json("show", run, "--json", NULL, NULL, NULL);
        const char *st = json_string_value(json_object_get(json_object_get(j, "run"), "status"));
        if (!st)
            st = json_string_value(json_object_get(j, "status"));
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

/* Start the workflow; returns its run id as text in buf. */
static void start_run(const char *wf, const char *input, char *buf, size_t size)
{
    json_t *j = assent_json("run", wf, "--input", input, "--json", NULL);
    snprintf(buf, size, "%lld", (long long)json_integer_value(json_object_get(j, "run_id")));
    json_decref(j);
}

static void test_tenant_smtp_auth(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL, a[256], b[256], c[256], wf[600], run[32];
    json_t *st = mt_sim_state(&g_sim), *users = json_object_get(st, "users");
    /* Three users with mailboxes, far from the ones other tests used. */
    int k = 0;
    for (size_t i = json_array_size(users); i-- > 0 && k < 3;) {
        json_t *u = json_array_get(users, i);
        if (!json_is_object(json_object_get(u, "mailbox")))
            continue;
        snprintf(k == 0 ? a : k == 1 ? b : c, sizeof a, "%s",
                 json_string_value(json_object_get(u, "userPrincipalName")));
        k++;
    }
    json_decref(st);
    assert_int_equal(k, 3);
    /* The organisation allows SMTP AUTH; a follows it and is exempt for smtp,
     * b enables it explicitly with no exception, c explicitly with one for all. */
    json_decref(mt_sim_admin(&g_sim, "PATCH", "/_sim/transport",
                             "{\"SmtpClientAuthenticationDisabled\": false}"));
    set_smtp(a, "null");
    set_smtp(b, "false");
    set_smtp(c, "false");
    assert_int_equal(assent(&out, &err, "exception", "add", "--user", a, "--protocols", "smtp",
                            "--reason", "copier", "--granted-by", "it@example.com", NULL), 0);
    free(out);
    free(err);
    assert_int_equal(assent(&out, &err, "exception", "add", "--user", c, "--protocols", "all",
                            "--reason", "legacy app", "--granted-by", "it@example.com", NULL), 0);
    free(out);
    free(err);
    sync_ok();

    /* Independently, from the state file: whom reset_explicit resets. */
    st = mt_sim_state(&g_sim);
    json_t *expect_reset = json_array(), *u;
    size_t i;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        json_t *v = json_object_get(json_object_get(u, "mailbox"), "SmtpClientAuthenticationDisabled");
        if (json_is_false(v) && strcmp(upn, c) != 0)
            json_array_append_new(expect_reset, json_string(upn));
    }
    json_decref(st);
    assert_true(json_array_size(expect_reset) >= 1);

    char *log = tu_path(g_dir, "worker.log");
    char *wargv[] = {(char *)tu_assent_bin(), "worker", NULL};
    pid_t w = g_worker = tu_spawn(wargv, g_env.v, log);
    assert_true(w > 0);
    snprintf(wf, sizeof wf, "%s/workflows/tenant-smtp-auth.json", tu_source_dir());
    long sets = mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0);
    start_run(wf, "{\"reset_explicit\": true, \"approvers\": [\"owner@example.com\"]}", run,
              sizeof run);
    json_decref(wait_run(run, "waiting"));

    /* The approval shows the impact; decided as an administrator. */
    json_t *list = assent_json("approvals", "--json", NULL, NULL, NULL, NULL);
    long long approval = 0;
    json_array_foreach(list, i, u)
        if (json_integer_value(json_object_get(u, "run_id")) == atoll(run))
            approval = json_integer_value(json_object_get(u, "approval_id"));
    json_decref(list);
    assert_true(approval > 0);
    json_t *shown = assent_json("show", run, "--json", "--verbose", NULL, NULL);
    char *text = json_dumps(shown, JSON_COMPACT);
    assert_non_null(strstr(text, b)); /* listed to be reset */
    assert_non_null(strstr(text, a)); /* kept on explicitly */
    free(text);
    json_decref(shown);
    char id[32];
    snprintf(id, sizeof id, "%lld", approval);
    assert_int_equal(assent(&out, &err, "decide", id, "approve", "--comment", "go", NULL), 0);
    free(out);
    free(err);
    json_t *done = wait_run(run, "succeeded|failed|cancelled");
    const char *status = json_string_value(json_object_get(json_object_get(done, "run"), "status"));
    if (!status)
        status = json_string_value(json_object_get(done, "status"));
    assert_string_equal(status, "succeeded");
    json_decref(done);

    st = mt_sim_state(&g_sim);
    assert_true(json_is_true(json_object_get(json_object_get(st, "transport_config"),
                                             "SmtpClientAuthenticationDisabled")));
    assert_true(json_is_false(smtp_of(st, a))); /* kept: its exception holds */
    assert_true(json_is_false(smtp_of(st, c))); /* exempt: untouched */
    json_array_foreach(expect_reset, i, u) assert_true(json_is_null(smtp_of(st, json_string_value(u))));
    /* Exactly the expected mailboxes changed: nobody else is explicit false now. */
    json_t *x;
    json_array_foreach(json_object_get(st, "users"), i, x)
    {
        const char *upn = json_string_value(json_object_get(x, "userPrincipalName"));
        if (json_is_false(json_object_get(json_object_get(x, "mailbox"),
                                          "SmtpClientAuthenticationDisabled")))
            assert_true(!strcmp(upn, a) || !strcmp(upn, c));
    }
    json_decref(st);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0), sets + 1);

    /* Again, after a sync: nothing to do, nobody asked, no second write. */
    sync_ok();
    start_run(wf, "{\"reset_explicit\": true, \"approvers\": [\"owner@example.com\"]}", run,
              sizeof run);
    done = wait_run(run, "succeeded|failed|cancelled|waiting");
    text = json_dumps(done, JSON_COMPACT);
    assert_non_null(strstr(text, "already_off"));
    free(text);
    json_decref(done);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0), sets + 1);

    tu_stop(w, SIGTERM);
    g_worker = 0;
    json_decref(expect_reset);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noninteractive_smtp_signin_counts),
        cmocka_unit_test(test_smtp_auth_report_import),
        cmocka_unit_test(test_drift),
        cmocka_unit_test(test_kpi_deadline),
        cmocka_unit_test(test_tenant_smtp_auth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
