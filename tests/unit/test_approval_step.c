/* test_approval_step.c - the approval step's execute() against a real
 * database and the file mail transport: first run, re-runs that mail
 * nobody twice, a crash between sending and marking sent, reminders,
 * decisions, expiry with escalation, dry runs and bad parameters.
 *
 * The store is read and set through the db/ headers only.  Time passes for an
 * approval (a reminder falls due, it expires) by running the step in a
 * child process of this program whose clock is ahead: the
 * ASSENT_FAKE_NOW_OFFSET_MS test hook, which is fixed per process. */
#include "tests/testutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "db/db.h"
#include "db/db_events.h"
#include "db/db_execs.h"
#include "engine/engine.h"
#include "engine/workflow.h"
#include "approvals/approval_decide.h"
#include "db/db_approvals.h"
#include "db/db_mail.h"
#include "db/db_runs.h"
#include "db/db_testing.h"
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

/* ---- the store, through its interface ---------------------------------------- */

/* Approval approval_id as db_approvals_get shows it (new reference). */
static json_t *view_of(struct fixture *f, int64_t approval_id)
{
    struct as_err err = {0};
    json_t *view = NULL;
    if (db_approvals_get(f->app.db, approval_id, &view, &err) != AS_OK)
        fail_msg("db_approvals_get %" PRId64 ": %s", approval_id, err.msg);
    return view;
}

/* Every approval's id, each once, into ids[0..*n) (at most max). */
static void approval_ids(struct fixture *f, int64_t *ids, size_t max, size_t *n)
{
    struct as_err err = {0};
    json_t *rows = NULL;
    *n = 0;
    assert_int_equal(db_approvals_list(f->app.db, 1, 0, &rows, &err), AS_OK);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        int64_t id = json_integer_value(json_object_get(row, "approval_id"));
        size_t k = 0;
        while (k < *n && ids[k] != id)
            k++;
        if (k == *n && *n < max)
            ids[(*n)++] = id;
    }
    json_decref(rows);
}

static size_t n_approvals(struct fixture *f)
{
    int64_t ids[64];
    size_t n;
    approval_ids(f, ids, 64, &n);
    return n;
}

/* The newest approval (the highest id); fails the test when there is none. */
static int64_t latest_approval(struct fixture *f)
{
    int64_t ids[64], max = 0;
    size_t n;
    approval_ids(f, ids, 64, &n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] > max)
            max = ids[i];
    assert_true(max > 0);
    return max;
}

/* The one approval the test has made; fails the test when there are none or more. */
static int64_t the_approval(struct fixture *f)
{
    assert_int_equal(n_approvals(f), 1);
    return latest_approval(f);
}

static json_int_t approval_int(struct fixture *f, const char *key)
{
    json_t *view = view_of(f, the_approval(f));
    json_int_t v = json_integer_value(json_object_get(view, key));
    json_decref(view);
    return v;
}

/* Approvers mailed (sent_at set) and links made (all approvers, or only
 * the approver `email`), from the approval's view. */
static int n_mailed(struct fixture *f)
{
    json_t *view = view_of(f, the_approval(f));
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(view, "approvers"), i, a)
        n += json_integer_value(json_object_get(a, "sent_at")) > 0;
    json_decref(view);
    return n;
}

static int n_links(struct fixture *f, const char *email)
{
    json_t *view = view_of(f, the_approval(f));
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(view, "approvers"), i, a)
        if (!email || strcmp(json_string_value(json_object_get(a, "email")), email) == 0)
            n += (int)json_integer_value(json_object_get(a, "n_links"));
    json_decref(view);
    return n;
}

static int n_approvers_with_status(struct fixture *f, const char *status)
{
    json_t *view = view_of(f, the_approval(f));
    int n = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(view, "approvers"), i, a)
        n += strcmp(json_string_value(json_object_get(a, "status")), status) == 0;
    json_decref(view);
    return n;
}

/* ---- the emails ------------------------------------------------------------- */

#define LINK_PREFIX "https://assent.example.org/a/"

/*
 * The link token in each email to `to` (any recipient when NULL), checked
 * against the store: the email's link is public_url + /a/ + token, and the
 * link is found by the token's hash, for an approver who is a recipient of
 * that email.  Returns how many emails had one; the last token goes to
 * token_out (TOKEN_LEN + 1 bytes) when not NULL.
 */
static int mailed_tokens(struct fixture *f, const char *to, char *token_out)
{
    DIR *d = opendir(f->mail_dir);
    int n = 0;
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".eml"))
            continue;
        char *path = tu_path(f->mail_dir, e->d_name);
        char *text = tu_read_file(path);
        free(path);
        assert_non_null(text);
        const char *link = strstr(text, LINK_PREFIX);
        if (!link || (to && !strstr(text, to))) {
            free(text);
            continue;
        }
        char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
        snprintf(token, sizeof token, "%s", link + strlen(LINK_PREFIX));
        assert_true(token_well_formed(token));
        token_hash(token, hash);
        struct as_err err = {0};
        json_t *view = NULL;
        if (db_approvals_by_token(f->app.db, hash, &view, &err) != AS_OK)
            fail_msg("the link in %s is not found by its token's hash: %s", e->d_name, err.msg);
        json_t *me = json_array_get(json_object_get(view, "approvers"),
                                    json_integer_value(json_object_get(view, "me")));
        assert_non_null(strstr(text, json_string_value(json_object_get(me, "email"))));
        json_decref(view);
        if (token_out)
            memcpy(token_out, token, sizeof token);
        n++;
        free(text);
    }
    closedir(d);
    return n;
}

struct run_ctx {
    struct step_ctx ctx;
    struct step_result res;
    json_t *params;
    char key[128];
    int64_t now_ms; /* the clock of the process that ran it (execute_later) */
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

#define DAY (86400000LL)

/*
 * execute() in a child process of this program whose clock runs offset_ms
 * ahead (ASSENT_TEST_HOOKS=1 and ASSENT_FAKE_NOW_OFFSET_MS), on the same
 * database and mail directory; the result comes back as JSON (see
 * execute_child) into r, and r->now_ms is the child's clock.  Only time
 * passes: what is stored is left as it is.
 */
static void execute_later(struct fixture *f, struct run_ctx *r, int64_t run_id, int64_t exec_id,
                          const char *params_json, int64_t offset_ms)
{
    char self[4096], run_s[24], exec_s[24], deadline_s[8], offset_env[64];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    snprintf(run_s, sizeof run_s, "%" PRId64, run_id);
    snprintf(exec_s, sizeof exec_s, "%" PRId64, exec_id);
    snprintf(deadline_s, sizeof deadline_s, "%d", r->ctx.deadline_reached);
    snprintf(offset_env, sizeof offset_env, "ASSENT_FAKE_NOW_OFFSET_MS=%" PRId64, offset_ms);
    char *argv[] = {self, "--execute-child", f->dir, run_s, exec_s, (char *)params_json,
                    deadline_s, NULL};
    char *env[] = {"ASSENT_TEST_HOOKS=1", offset_env, NULL};
    char *out = NULL, *errout = NULL;
    int code = tu_run(argv, env, 60000, &out, &errout);
    if (code != 0)
        fail_msg("the step in a child process exited %d: %s", code, errout ? errout : "");
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    if (!o)
        fail_msg("the child's result is not JSON (%s): %s", je.text, out);
    free(out);
    free(errout);

    json_decref(r->params);
    json_decref(r->ctx.events);
    json_decref(r->res.output);
    json_decref(r->res.wait_state);
    r->params = json_loads(params_json, 0, NULL);
    r->ctx.events = json_incref(json_object_get(o, "events"));
    memset(&r->res, 0, sizeof r->res);
    r->res.status = (enum step_status)json_integer_value(json_object_get(o, "status"));
    snprintf(r->res.outcome, sizeof r->res.outcome, "%s",
             json_string_value(json_object_get(o, "outcome")));
    snprintf(r->res.error, sizeof r->res.error, "%s", json_string_value(json_object_get(o, "error")));
    json_t *output = json_object_get(o, "output"), *wait_state = json_object_get(o, "wait_state");
    r->res.output = json_is_null(output) ? NULL : json_incref(output);
    r->res.wait_state = json_is_null(wait_state) ? NULL : json_incref(wait_state);
    r->res.wait_until_ms = json_integer_value(json_object_get(o, "wait_until_ms"));
    r->now_ms = json_integer_value(json_object_get(o, "now_ms"));
    json_decref(o);
}

/*
 * The child of execute_later: argv = PROG --execute-child DIR RUN EXEC PARAMS
 * DEADLINE_REACHED.  Runs execute() with the fixture's configuration on
 * DIR's database and prints {status, outcome, error, output, wait_state,
 * wait_until_ms, events, now_ms} on stdout.  Returns the exit code.
 */
static int execute_child(char **argv)
{
    struct fixture f = {.dir = argv[2]};
    struct as_err err = {0};
    struct run_ctx r = {0};
    int code = 1;
    f.mail_dir = tu_path(f.dir, "mail");
    f.app.cfg = config_defaults();
    if (config_set(f.app.cfg, "mail_transport", "file", &err) ||
        config_set(f.app.cfg, "mail_dir", f.mail_dir, &err) ||
        config_set(f.app.cfg, "public_url", "https://assent.example.org/", &err)) {
        fprintf(stderr, "config: %s\n", err.msg);
        goto out;
    }
    char *db_path = tu_path(f.dir, "t.db");
    enum as_code rc = db_open(db_path, "NORMAL", &f.app.db, &err);
    free(db_path);
    if (rc) {
        fprintf(stderr, "db_open: %s\n", err.msg);
        goto out;
    }
    r.ctx.deadline_reached = argv[6][0] == '1';
    execute(&f, &r, strtoll(argv[3], NULL, 10), strtoll(argv[4], NULL, 10), argv[5]);
    json_t *o = json_pack("{s:i, s:s, s:s, s:O?, s:O?, s:I, s:O, s:I}", "status",
                          (int)r.res.status, "outcome", r.res.outcome, "error", r.res.error,
                          "output", r.res.output, "wait_state", r.res.wait_state, "wait_until_ms",
                          (json_int_t)r.res.wait_until_ms, "events", r.ctx.events, "now_ms",
                          (json_int_t)time_now_ms());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text) {
        printf("%s\n", text);
        code = 0;
    }
    free(text);
    json_decref(o);
out:
    run_free(&r);
    db_close(f.app.db);
    config_free(f.app.cfg);
    free(f.mail_dir);
    return code;
}

/* Reminders daily for a week: time enough for several to be missed. */
#define PARAMS_2                                                                            \
    "{\"approvers\": [\"a@example.org\", \"b@example.org\"], \"subject\": \"Disable POP3\","   \
    " \"request\": {\"identity\": \"u@example.org\", \"settings\": {\"PopEnabled\": false}},"   \
    " \"expiry\": \"P7D\", \"reminder_every\": \"P1D\", \"escalate_to\": \"boss@example.org\"}"

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
    assert_int_equal(n_mailed(f), 2);
    assert_int_equal(n_links(f, NULL), 2);
    /* The link in the email is public_url + /a/ + token, and only its hash is stored. */
    assert_int_equal(mailed_tokens(f, NULL, NULL), 2);

    /* A re-run (lease expired, crash after the wait was chosen): nobody is mailed twice. */
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    assert_int_equal(n_approvals(f), 1);
    assert_int_equal(n_links(f, NULL), 2);

    /* A crash after b's email went out but before b was marked sent: the
     * re-run makes a new token, the mail layer sends nothing new (same key),
     * and b's earlier link stays valid. */
    struct as_err err = {0};
    assert_int_equal(db_testing_approver_unsent(f->app.db, the_approval(f), "b@example.org", &err),
                     AS_OK);
    assert_int_equal(n_mailed(f), 1);
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 2);
    assert_int_equal(n_links(f, "b@example.org"), 2);
    assert_int_equal(n_mailed(f), 2);
    assert_int_equal(mailed_tokens(f, "b@example.org", NULL), 1); /* the earlier link, still valid */

    /* Three and a half days later, three daily reminders are due: a new
     * link each for a and b, one email each. */
    r.ctx.deadline_reached = 1;
    execute_later(f, &r, run, exec, PARAMS_2, 3 * DAY + DAY / 2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(count_files(f->mail_dir), 4);
    assert_int_equal(approval_int(f, "reminders_sent"), 1);
    assert_int_equal(n_links(f, "a@example.org"), 2);
    assert_int_equal(n_links(f, "b@example.org"), 3);
    /* Missed reminders are not sent in a burst: the next is in the future. */
    assert_true(approval_int(f, "next_reminder_at") == 0 ||
                approval_int(f, "next_reminder_at") > r.now_ms);
    int events_reminded = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(r.ctx.events, i, ev)
        events_reminded += strcmp(json_string_value(json_object_get(ev, "type")), "approval.reminded") == 0;
    assert_int_equal(events_reminded, 1);

    /* A decision arrives (as the web POST records it); the woken step ends. */
    struct approval_decision d = {.approval_id = the_approval(f),
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

/*
 * The first execution records the approval, its links and their emails'
 * claims in one write and the sends in another (engine_group_write; here,
 * without an engine, each store write on its own).  When the emails cannot
 * be written, the step is retried with nothing lost: the links exist unsent,
 * the sends are recorded failed, and the next execution mails new links
 * under the same keys.
 */
static void test_first_send_fails_then_mails(void **state)
{
    struct fixture *f = *state;
    struct run_ctx r = {0};
    struct as_err err = {0};
    int64_t run;
    int64_t exec = new_exec(f, &run);
    char *blocker = tu_path(f->dir, "not-a-dir");
    char *bad_dir = tu_path(blocker, "mail");
    FILE *fp = fopen(blocker, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(config_set(f->app.cfg, "mail_dir", bad_dir, &err), AS_OK);
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_RETRY);
    assert_non_null(strstr(r.res.error, "emailing a@example.org"));
    assert_int_equal(n_approvals(f), 1);
    assert_int_equal(n_links(f, NULL), 2);
    assert_int_equal(n_mailed(f), 0);
    json_t *row = NULL;
    char key[300];
    snprintf(key, sizeof key, "%s/a@example.org", r.key);
    assert_int_equal(db_mail_get(f->app.db, key, &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "failed");
    json_decref(row);

    assert_int_equal(config_set(f->app.cfg, "mail_dir", f->mail_dir, &err), AS_OK);
    execute(f, &r, run, exec, PARAMS_2);
    assert_int_equal(r.res.status, STEP_WAIT);
    assert_int_equal(n_approvals(f), 1);
    assert_int_equal(count_files(f->mail_dir), 2);
    assert_int_equal(n_mailed(f), 2);
    assert_int_equal(n_links(f, NULL), 4);
    assert_int_equal(mailed_tokens(f, NULL, NULL), 2);
    row = NULL;
    assert_int_equal(db_mail_get(f->app.db, key, &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sent");
    json_decref(row);
    free(bad_dir);
    free(blocker);
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
    /* A week and an hour later nobody has decided. */
    r.ctx.deadline_reached = 1;
    execute_later(f, &r, run, exec, PARAMS_2, 7 * DAY + DAY / 24);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "expired");
    assert_int_equal(count_files(f->mail_dir), 3); /* the escalation */
    assert_true(approval_int(f, "escalated_at") > 0);
    assert_int_equal(n_approvers_with_status(f, "closed"), 2);
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
    /* a approves through the link in the email, as the web records it: b
     * becomes pending; the woken step mails b. */
    char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
    assert_int_equal(mailed_tokens(f, "a@example.org", token), 1);
    token_hash(token, hash);
    struct as_err err = {0};
    struct approval_decision d = {.token_hash = hash, .decision = "approve", .via = "web",
                                  .client_addr = "192.0.2.7", .now = time_now_ms()};
    struct approval_decision_result res;
    assert_int_equal(approval_decide(f->app.db, &d, &res, &err), AS_OK);
    assert_string_equal(res.status, "pending");
    assert_int_equal(n_approvers_with_status(f, "approved"), 1);
    assert_int_equal(n_approvers_with_status(f, "pending"), 1);
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
    int64_t id = latest_approval(f);
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
    id = latest_approval(f);
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
    id = latest_approval(f);
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
    assert_int_equal(n_approvals(f), 0);
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


/* ---- a decision through the engine ends the step as its re-run would --------- */

struct decided {
    pthread_mutex_t lock;
    int n;
    enum as_code rc;
};

static void on_decided(void *ud, enum as_code rc, const struct approval_decision_result *res,
                       const struct as_err *err)
{
    struct decided *dd = ud;
    (void)res, (void)err;
    pthread_mutex_lock(&dd->lock);
    dd->rc = rc;
    dd->n++;
    pthread_mutex_unlock(&dd->lock);
}

static int decided_count(struct decided *dd)
{
    pthread_mutex_lock(&dd->lock);
    int n = dd->n;
    pthread_mutex_unlock(&dd->lock);
    return n;
}

/* The output of step "ask" of a run (new reference) and its events' types in order. */
struct step_trace {
    int64_t exec_id;
    json_t *output;
    char types[512];
};

static int trace_exec(void *ud, const struct db_exec_info *e)
{
    struct step_trace *t = ud;
    if (strcmp(e->step, "ask") == 0) {
        t->exec_id = e->id;
        t->output = json_loads(e->output, 0, NULL);
    }
    return 0;
}

static int trace_event(void *ud, const struct db_event_info *ev)
{
    struct step_trace *t = ud;
    if (ev->exec_id == t->exec_id) {
        size_t n = strlen(t->types);
        snprintf(t->types + n, sizeof t->types - n, "%s ", ev->type);
    }
    return 0;
}

static void trace(struct fixture *f, int64_t run_id, struct step_trace *t)
{
    struct as_err err = {0};
    struct db_conn *c;
    memset(t, 0, sizeof *t);
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_execs(c, run_id, trace_exec, t, &err), AS_OK);
    assert_int_equal(db_run_events(c, run_id, trace_event, t, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_non_null(t->output);
}

static void run_status_of(struct fixture *f, int64_t run_id, char *buf, size_t size)
{
    struct as_err err = {0};
    struct db_conn *c;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_status(c, run_id, buf, size, &err), AS_OK);
    db_read_end(f->app.db, c);
}

/* The same decision, once through the engine's group commit (the step ends
 * in the decision's transaction) and once on its own (the step is resumed
 * and runs again): same step output but for ids and times, same events. */
static void test_decision_through_engine(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    static const char wf_text[] =
        "{\"name\": \"decide-%s\", \"version\": \"1\", \"steps\": {"
        " \"ask\": {\"type\": \"approval\", \"params\": {\"approvers\": [\"%s@example.org\", "
        "\"other@example.org\"], \"subject\": \"Change\", \"message\": \"Approve it.\","
        " \"request\": {\"identity\": \"u@example.org\"}, \"expiry\": \"P7D\"},"
        " \"next\": {\"approved\": \"done\", \"rejected\": \"done\", \"expired\": \"done\"}},"
        " \"done\": {\"type\": \"log\", \"params\": {\"message\": \"${steps.ask.output.decided_by}\"}}}}";
    const char *who[2] = {"engine", "own"};
    int64_t runs[2];
    for (int i = 0; i < 2; i++) {
        char text[1024];
        struct workflow *wf = NULL;
        snprintf(text, sizeof text, wf_text, who[i], who[i]);
        assert_int_equal(wf_load_string(text, "test", &wf, NULL, &err), AS_OK);
        assert_int_equal(engine_submit_run(&f->app, wf, NULL, NULL, &runs[i], &err), AS_OK);
        wf_free(wf);
    }
    struct engine *e = NULL;
    assert_int_equal(engine_start(&f->app, 1, &e, &err), AS_OK);
    for (int i = 0; i < 200 && count_files(f->mail_dir) < 4; i++)
        usleep(20000);
    assert_int_equal(count_files(f->mail_dir), 4);
    for (int i = 0; i < 2; i++) {
        char status[32];
        for (int k = 0; k < 200; k++) {
            run_status_of(f, runs[i], status, sizeof status);
            if (strcmp(status, "waiting") == 0)
                break;
            usleep(20000);
        }
        assert_string_equal(status, "waiting");
    }

    char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
    struct approval_decision d = {.token_hash = hash, .decision = "approve",
                                  .comment = "fine \"by\" me\n\b\f\t\\ \xc3\xa9/", .via = "web",
                                  .client_addr = "192.0.2.7", .user_agent = "test/1"};
    struct approval_decision_result res;
    /* Through the engine. */
    struct decided dd = {.n = 0};
    pthread_mutex_init(&dd.lock, NULL);
    assert_int_equal(mailed_tokens(f, "engine@example.org", token), 1);
    token_hash(token, hash);
    d.now = time_now_ms();
    assert_int_equal(approval_decide_submit(e, f->app.db, &d, on_decided, &dd, &err), AS_OK);
    for (int i = 0; i < 500 && decided_count(&dd) == 0; i++)
        usleep(10000);
    assert_int_equal(decided_count(&dd), 1);
    assert_int_equal(dd.rc, AS_OK);
    /* The same link again: refused, exactly once recorded. */
    assert_int_equal(approval_decide_submit(e, f->app.db, &d, on_decided, &dd, &err), AS_OK);
    for (int i = 0; i < 500 && decided_count(&dd) == 1; i++)
        usleep(10000);
    assert_int_equal(dd.rc, AS_ECONFLICT);
    /* On its own, the way `assent decide` or a server without an engine records it. */
    assert_int_equal(mailed_tokens(f, "own@example.org", token), 1);
    token_hash(token, hash);
    d.now = time_now_ms();
    assert_int_equal(approval_decide(f->app.db, &d, &res, &err), AS_OK);
    assert_true(res.resumed);
    engine_wake(e);
    char status[32];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(engine_wait_run(&f->app, runs[i], 10000, status, sizeof status, &err),
                         AS_OK);
        assert_string_equal(status, "succeeded");
    }
    assert_int_equal(engine_stop(e, 5000), AS_OK);
    pthread_mutex_destroy(&dd.lock);

    struct step_trace t[2];
    for (int i = 0; i < 2; i++) {
        trace(f, runs[i], &t[i]);
        json_t *o = t[i].output;
        /* What differs by construction: the approval, who and when. */
        json_object_del(o, "approval_id");
        json_object_del(o, "decided_at");
        json_object_del(o, "decided_by");
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(o, "approvers"), k, a) {
            json_object_del(a, "decided_at");
            if (k == 0)
                json_object_del(a, "email");
        }
    }
    /* In the stored key order: the engine builds the text itself. */
    char *o0 = json_dumps(t[0].output, 0), *o1 = json_dumps(t[1].output, 0);
    assert_string_equal(o0, o1);
    assert_string_equal(t[0].types, t[1].types);
    assert_non_null(strstr(t[0].types, "approval.decision step.resumed step.succeeded"));
    free(o0);
    free(o1);
    for (int i = 0; i < 2; i++)
        json_decref(t[i].output);
}

int main(int argc, char **argv)
{
    cli_register_types();
    if (argc == 7 && strcmp(argv[1], "--execute-child") == 0)
        return execute_child(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_run_reruns_and_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_send_fails_then_mails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_escalates_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_mails_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_current_and_cmdlet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_and_bad_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decision_through_engine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
