/* test_approval_step.c - the approval step's execute() against a real
 * database and the file mail transport: first run, re-runs that mail
 * nobody twice, a crash between sending and marking sent, reminders,
 * decisions, expiry with escalation, dry runs and bad parameters. */
#include "tests/testutil.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "approvals/approval_decide.h"
#include "db/db_approvals.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/encode.h"
#include "base/timeutil.h"
#include "engine/step.h"
#include "approvals/token.h"
#include "cli/cli.h"

struct fixture {
    char *dir, *mail_dir;
    struct app app;
    int64_t wf_id;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct as_err err = {0};
    f->dir = tu_tmpdir("approvalstep");
    f->mail_dir = tu_path(f->dir, "mail");
    f->app.cfg = config_defaults();
    assert_int_equal(config_set(f->app.cfg, "mail_transport", "file", &err), AS_OK);
    assert_int_equal(config_set(f->app.cfg, "mail_dir", f->mail_dir, &err), AS_OK);
    assert_int_equal(config_set(f->app.cfg, "public_url", "https://assent.example.org/", &err), AS_OK);
    f->app.db = tu_db_open(f->dir, "t.db");
    f->wf_id = tu_db_workflow(f->app.db, "bbbb");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->app.db);
    config_free(f->app.cfg);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->mail_dir);
    free(f);
    return 0;
}

static int64_t new_exec(struct fixture *f, int64_t *run_id)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t exec_id = 0;
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    struct db_run_new r = {.workflow_id = f->wf_id, .workflow = "wf", .input = "{}"};
    assert_int_equal(db_run_insert(c, &r, 1000, run_id, &err), AS_OK);
    assert_int_equal(db_exec_insert(c, *run_id, "ask", 1000, 1000, &exec_id, &err), AS_OK);
    assert_int_equal(db_write_end(f->app.db, AS_OK, &err), AS_OK);
    return exec_id;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".eml") != NULL;
    closedir(d);
    return n;
}

static void raw_sql(struct fixture *f, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db_path(f->app.db), &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

static long long raw_int(struct fixture *f, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    assert_int_equal(sqlite3_open(db_path(f->app.db), &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

struct run_ctx {
    struct step_ctx ctx;
    struct step_result res;
    json_t *params;
    char key[128];
};

static void execute(struct fixture *f, struct run_ctx *r, int64_t run_id, int64_t exec_id,
                    const char *params_json)
{
    const struct step_type *t = step_type_find("approval");
    assert_non_null(t);
    json_decref(r->params);
    json_decref(r->ctx.events);
    json_decref(r->res.output);
    json_decref(r->res.wait_state);
    r->params = json_loads(params_json, 0, NULL);
    assert_non_null(r->params);
    snprintf(r->key, sizeof r->key, "inst/run-%lld/ask/1", (long long)run_id);
    struct step_ctx ctx = {
        .app = &f->app, .run_id = run_id, .exec_id = exec_id, .workflow = "wf",
        .step_name = "ask", .idempotency_key = r->key, .attempt = 1, .max_attempts = 3,
        .timeout_ms = 60000, .now_ms = time_now_ms(), .params = r->params,
        .resume = r->ctx.resume, .deadline_reached = r->ctx.deadline_reached,
        .dry_run = r->ctx.dry_run, .events = json_array(),
    };
    r->ctx = ctx;
    memset(&r->res, 0, sizeof r->res);
    t->execute(&r->ctx, &r->res);
}

static void run_free(struct run_ctx *r)
{
    json_decref(r->params);
    json_decref(r->ctx.events);
    json_decref(r->res.output);
    json_decref(r->res.wait_state);
}

#define PARAMS_2                                                                            \
    "{\"approvers\": [\"a@example.org\", \"b@example.org\"], \"subject\": \"Disable POP3\","   \
    " \"request\": {\"identity\": \"u@example.org\", \"settings\": {\"PopEnabled\": false}},"   \
    " \"expiry\": \"P2D\", \"reminder_every\": \"P1D\", \"escalate_to\": \"boss@example.org\"}"

static void test_first_run_reruns_and_crash(void **state)
{
    struct fixture *f = *state;
    struct run_ctx r = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    int64_t before = time_now_ms();
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    /* Waits until the first reminder (a day), which comes before the expiry. */
    assert_true(r.res.wait_until_ms >= before + 86400000LL);
    assert_true(r.res.wait_until_ms < before + 2 * 86400000LL);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_approvers WHERE sent_at IS NOT NULL"), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_links"), 2);
    /* The link in the email is public_url + /a/ + token, and only its hash is stored. */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_links WHERE length(token_hash) = 64"), 2);

    /* A re-run (lease expired, crash after the wait was chosen): nobody is mailed twice. */
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approvals"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_links"), 2);

    /* A crash after b's email went out but before b was marked sent: the
     * re-run makes a new token, the mail layer sends nothing new (same key),
     * and b's earlier link stays valid. */
    raw_sql(f, "UPDATE approval_approvers SET sent_at = NULL WHERE email = 'b@example.org'");
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_links l JOIN approval_approvers p"
                                " ON p.id = l.approver_id WHERE p.email = 'b@example.org'"), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_approvers WHERE sent_at IS NOT NULL"), 2);

    /* A reminder is due: a new link each for a and b, one email each. */
    raw_sql(f, "UPDATE approvals SET next_reminder_at = 1");
    r.ctx.deadline_reached = 1;
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 4);
    assert_int_equal(raw_int(f, "SELECT reminders_sent FROM approvals"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_links WHERE purpose = 'reminder'"), 2);
    /* Missed reminders are not sent in a burst: the next is in the future. */
    assert_true(raw_int(f, "SELECT next_reminder_at FROM approvals") == 0 ||
                raw_int(f, "SELECT next_reminder_at FROM approvals") > time_now_ms());
    int events_reminded = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(r.ctx.events, i, ev)
        events_reminded += strcmp(json_string_value(json_object_get(ev, "type")), "approval.reminded") == 0;
    assert_int_equal(events_reminded, 1);

    /* A decision arrives (as the web POST records it); the woken step ends. */
    struct as_err err = {0};
    struct approval_decision d = {.approval_id = raw_int(f, "SELECT id FROM approvals"),
                                  .decision = "reject", .comment = "no", .via = "cli",
                                  .actor = "admin", .now = time_now_ms()};
    struct approval_decision_result res;
    assert_int_equal(approval_decide(f->app.db, &d, &res, &err), AS_OK);
    json_t *resume = json_pack("{s:s}", "decision", "rejected");
    r.ctx.resume = resume;
    r.ctx.deadline_reached = 0;
    execute(f, &r, run, exec, PARAMS_2);
    json_decref(resume);
    r.ctx.resume = NULL;
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "rejected");
    json_t *out = r.res.output;
    assert_string_equal(json_string_value(json_object_get(out, "decision")), "rejected");
    assert_string_equal(json_string_value(json_object_get(out, "decided_by")), "admin");
    assert_string_equal(json_string_value(json_object_get(out, "comment")), "no");
    assert_int_equal(json_array_size(json_object_get(out, "approvers")), 2);
    /* The request hash: canonical JSON (sorted keys, compact), SHA-256 hex. */
    char want[TOKEN_HASH_LEN + 1];
    const char *canonical = "{\"identity\":\"u@example.org\",\"settings\":{\"PopEnabled\":false}}";
    assert_int_equal(encode_sha256_hex(canonical, strlen(canonical), want), 0);
    assert_string_equal(json_string_value(json_object_get(out, "request_hash")), want);
    run_free(&r);
}

static void test_expiry_escalates_once(void **state)
{
    struct fixture *f = *state;
    struct run_ctx r = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    raw_sql(f, "UPDATE approvals SET expires_at = 1, next_reminder_at = NULL");
    r.ctx.deadline_reached = 1;
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "expired");
    assert_int_equal(count_files(f->mail_dir), 3); /* the escalation */
    assert_true(raw_int(f, "SELECT escalated_at FROM approvals") > 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approval_approvers WHERE status = 'closed'"), 2);
    /* Executed again (crash before the result was recorded): no second escalation. */
    execute(f, &r, run, exec, PARAMS_2);
    assert_string_equal(r.res.outcome, "expired");
    assert_int_equal(count_files(f->mail_dir), 3);
    run_free(&r);
}

static void test_sequential_mails_in_turn(void **state)
{
    struct fixture *f = *state;
    struct run_ctx r = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    const char *p = "{\"approvers\": [\"a@example.org\", \"b@example.org\"], \"subject\": \"S\","
                    " \"policy\": \"sequential\", \"message\": null, \"reminder_every\": null}";
    execute(f, &r, run, exec, p);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 1);
    /* a approves (through the database, as the web does): b becomes pending; the woken step mails b. */
    raw_sql(f, "UPDATE approval_approvers SET status = 'approved' WHERE email = 'a@example.org';"
               "UPDATE approval_approvers SET status = 'pending' WHERE email = 'b@example.org'");
    execute(f, &r, run, exec, p);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    run_free(&r);
}

/* current and cmdlet are stored with the approval for the page, and stay
 * out of the request hash; without cmdlet the request decides it. */
static void test_current_and_cmdlet(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct run_ctx r = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    execute(f, &r, run, exec,
            "{\"approvers\": [\"a@example.org\"], \"subject\": \"Disable POP3\","
            " \"request\": {\"identity\": \"u@example.org\", \"settings\": {\"PopEnabled\": false}},"
            " \"current\": {\"PopEnabled\": true}, \"cmdlet\": \"Set-CASMailbox\"}");
    assert_int_equal(r.res.status, STEP_WAIT);
    int64_t id = raw_int(f, "SELECT max(id) FROM approvals");
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->app.db, id, &view, &err), AS_OK);
    assert_true(json_is_true(json_object_get(json_object_get(view, "current"), "PopEnabled")));
    assert_string_equal(json_string_value(json_object_get(view, "cmdlet")), "Set-CASMailbox");
    char want[TOKEN_HASH_LEN + 1];
    const char *canonical = "{\"identity\":\"u@example.org\",\"settings\":{\"PopEnabled\":false}}";
    assert_int_equal(encode_sha256_hex(canonical, strlen(canonical), want), 0);
    assert_string_equal(json_string_value(json_object_get(view, "request_hash")), want);
    json_decref(view);
    run_free(&r);

    /* An organisation-wide request: Set-TransportConfig; no current given. */
    struct run_ctx r2 = {0};
    exec = new_exec(f, &run);
    execute(f, &r2, run, exec,
            "{\"approvers\": [\"a@example.org\"], \"subject\": \"SMTP AUTH off\","
            " \"request\": {\"identity\": \"\", \"settings\": "
            "{\"SmtpClientAuthenticationDisabled\": true}}}");
    assert_int_equal(r2.res.status, STEP_WAIT);
    id = raw_int(f, "SELECT max(id) FROM approvals");
    assert_int_equal(db_approvals_get(f->app.db, id, &view, &err), AS_OK);
    assert_true(json_is_null(json_object_get(view, "current")));
    assert_string_equal(json_string_value(json_object_get(view, "cmdlet")), "Set-TransportConfig");
    json_decref(view);
    run_free(&r2);

    /* No settings, no cmdlet given: none stored. */
    struct run_ctx r3 = {0};
    exec = new_exec(f, &run);
    execute(f, &r3, run, exec, "{\"approvers\": [\"a@example.org\"], \"subject\": \"Other\"}");
    assert_int_equal(r3.res.status, STEP_WAIT);
    id = raw_int(f, "SELECT max(id) FROM approvals");
    assert_int_equal(db_approvals_get(f->app.db, id, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "cmdlet")), "");
    json_decref(view);
    run_free(&r3);
}

static void test_dry_run_and_bad_params(void **state)
{
    struct fixture *f = *state;
    struct run_ctx r = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    r.ctx.dry_run = 1;
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "approved");
    assert_int_equal(count_files(f->mail_dir), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM approvals"), 0);
    r.ctx.dry_run = 0;

    static const struct {
        const char *params, *msg;
    } bad[] = {
        {"{\"approvers\": [], \"subject\": \"S\"}", "approvers must list"},
        {"{\"approvers\": [\"not-an-address\"], \"subject\": \"S\"}", "not an email address"},
        {"{\"approvers\": [\"a@x.org\", \"A@x.org\"], \"subject\": \"S\"}", "twice"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"policy\": \"most\"}", "policy"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\\r\\nBcc: x@y\"}", "single line"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"expiry\": \"soon\"}", "expiry"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"reminder_every\": \"10ms\"}", "at least 1s"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"escalate_to\": [\"x\"]}", "escalate_to"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"request\": [1]}", "request must be an object"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"current\": [true]}", "current must be an object"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"cmdlet\": \"Set-CASMailbox; rm\"}", "cmdlet must be"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"cmdlet\": \"SetCASMailbox\"}", "cmdlet must be"},
        {"{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"cmdlet\": 3}", "cmdlet must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        execute(f, &r, run, exec, bad[i].params);
        assert_int_equal(r.res.status, STEP_FAILED);
        if (!strstr(r.res.error, bad[i].msg))
            fail_msg("params %s: error \"%s\" lacks \"%s\"", bad[i].params, r.res.error, bad[i].msg);
    }
    assert_int_equal(count_files(f->mail_dir), 0);

    /* validate() catches literal mistakes before any run. */
    const struct step_type *t = step_type_find("approval");
    struct diag_list diags = {0};
    json_t *p = json_loads("{\"approvers\": [\"a@x.org\", \"a@x.org\"], \"subject\": \"S\","
                           " \"policy\": \"most\", \"expiry\": \"P400D\"}", 0, NULL);
    t->validate(p, "$.steps.ask.params", &diags);
    assert_int_equal(diag_errors(&diags), 3);
    diag_free(&diags);
    json_decref(p);
    p = json_loads("{\"approvers\": [\"a@x.org\"], \"subject\": \"S\", \"cmdlet\": \"Set CAS\"}", 0, NULL);
    t->validate(p, "$.steps.ask.params", &diags);
    assert_int_equal(diag_errors(&diags), 1);
    diag_free(&diags);
    json_decref(p);
    p = json_loads("{\"approvers\": \"${input.approvers}\", \"subject\": \"S\", \"cmdlet\": \"${input.c}\"}", 0, NULL);
    t->validate(p, "$.steps.ask.params", &diags);
    assert_int_equal(diag_errors(&diags), 0);
    diag_free(&diags);
    json_decref(p);
    run_free(&r);
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_run_reruns_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_escalates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_mails_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_current_and_cmdlet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_and_bad_params, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
