/*
 * it_engine_cli.c - the run commands of the real `assent` binary: --help of
 * each, exit codes for bad input, an invalid workflow and a taken dedupe
 * key, `runs` filters, `show --json`, `cancel`, `retry` of a failed run (same
 * idempotency key, seen by a local HTTP server), and SIGTERM while a step
 * runs (the step finishes, its result is kept, nothing is sent twice).
 * `audit verify` against a tampered database is the SQLite store's own test
 * (sqlite_tamper.c).
 *
 * usage: it_engine_cli [TEST_NAME]
 */
#include "tests/testutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/integration/cli_env.h"
#include "tests/integration/http_echo_server.h"

#define T_MS 60000

/* The shared fixture (cli_env.h), under this file's names. */
static int setup(void **state)
{
    return cli_env_setup(state, "engine-cli");
}

static int teardown(void **state)
{
    return cli_env_teardown(state);
}

static char *write_wf(struct cli_env *e, const char *name, const char *text)
{
    char *p = tu_path(e->dir, name);
    assert_int_equal(tu_write_file(p, text), 0);
    return p;
}

static int64_t started_id(const char *json_out)
{
    json_t *o = json_loads(json_out, 0, NULL);
    assert_non_null(o);
    int64_t id = json_integer_value(json_object_get(o, "run_id"));
    json_decref(o);
    assert_true(id > 0);
    return id;
}

static json_t *show(struct cli_env *e, int64_t id)
{
    char idbuf[24], *out = NULL;
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    assert_int_equal(cli_env_assent(e, &out, NULL, "show", idbuf, "--json", NULL), 0);
    json_t *h = json_loads(out, 0, NULL);
    free(out);
    assert_non_null(h);
    return h;
}

static const char *run_status(json_t *h)
{
    return json_string_value(json_object_get(json_object_get(h, "run"), "status"));
}

static void test_help(void **state)
{
    struct cli_env *e = *state;
    const char *cmds[] = {"run", "worker", "runs", "show", "cancel", "retry", "audit"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *out = NULL, want[64];
        assert_int_equal(cli_env_assent(e, &out, NULL, cmds[i], "--help", NULL), 0);
        snprintf(want, sizeof want, "usage: assent %s", cmds[i]);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "exit status"));
        free(out);
    }
    /* Bad usage is exit 2, with the usage on stderr. */
    char *err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "runs", "--status", "sleeping", NULL), 2);
    assert_non_null(strstr(err, "--status"));
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "show", NULL), 2);
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "audit", "check", NULL), 2);
    free(err);
}

static const char wait_wf[] =
    "{\"name\": \"pause\", \"version\": \"1\",\n"
    " \"input\": {\"who\": {\"type\": \"string\", \"required\": true}},\n"
    " \"steps\": {\"nap\": {\"type\": \"delay\", \"params\": {\"duration\": \"1h\"}, \"next\": \"hi\"},\n"
    "           \"hi\": {\"type\": \"log\", \"params\": {\"message\": \"hello ${input.who}\"}}}}\n";

static void test_bad_input_dedupe_cancel_and_runs(void **state)
{
    struct cli_env *e = *state;
    char *wf = write_wf(e, "pause.json", wait_wf);
    char *out = NULL, *err = NULL;

    /* Missing input: exit 2 naming it, nothing stored. */
    assert_int_equal(cli_env_assent(e, NULL, &err, "run", wf, NULL), 2);
    assert_non_null(strstr(err, "who"));
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "run", wf, "--input", "{\"who\": 1}", NULL), 2);
    assert_non_null(strstr(err, "who"));
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "run", wf, "--input", "{not json", NULL), 2);
    free(err);
    err = NULL;

    /* An invalid workflow: exit 1 with file:line:column diagnostics. */
    char *bad = write_wf(e, "bad.json", "{\"name\": \"x\", \"version\": \"1\", \"steps\": {\n"
                                        "  \"a\": {\"type\": \"log\", \"next\": \"nowhere\"}}}\n");
    assert_int_equal(cli_env_assent(e, NULL, &err, "run", bad, NULL), 1);
    assert_non_null(strstr(err, "bad.json:2:"));
    free(err);
    err = NULL;
    free(bad);

    /* Start, with a dedupe key; the same key again is refused with the open run. */
    assert_int_equal(cli_env_assent(e, &out, NULL, "run", wf, "--input", "{\"who\": \"ann\"}",
                            "--dedupe-key", "ann", "--json", NULL),
                     0);
    int64_t id = started_id(out);
    free(out);
    out = NULL;
    assert_int_equal(cli_env_assent(e, &out, &err, "run", wf, "--input", "{\"who\": \"ann\"}",
                            "--dedupe-key", "ann", "--json", NULL),
                     1);
    assert_int_equal(started_id(out), id);
    assert_non_null(strstr(err, "ann"));
    free(out);
    free(err);
    out = err = NULL;

    /* Listed as running; cancelled; listed as cancelled; not twice. */
    assert_int_equal(cli_env_assent(e, &out, NULL, "runs", "--status", "running", "--json", NULL), 0);
    json_t *list = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "workflow")),
                        "pause");
    json_decref(list);
    free(out);
    out = NULL;
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    assert_int_equal(cli_env_assent(e, &out, NULL, "cancel", idbuf, NULL), 0);
    assert_non_null(strstr(out, "cancelled"));
    free(out);
    out = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "cancel", idbuf, NULL), 1);
    assert_non_null(strstr(err, "already ended"));
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "cancel", "424242", NULL), 4);
    free(err);
    err = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "show", "424242", NULL), 4);
    free(err);
    err = NULL;
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "cancelled");
    json_t *s0 = json_array_get(json_object_get(h, "steps"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "status")), "cancelled");
    json_decref(h);
    assert_int_equal(cli_env_assent(e, &out, NULL, "runs", "--workflow", "pause", NULL), 0);
    assert_non_null(strstr(out, "cancelled"));
    free(out);
    out = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "runs", "--workflow", "other", "--json", NULL), 0);
    list = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    free(out);
    /* The key is free again once the run has ended. */
    out = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "run", wf, "--input", "{\"who\": \"ann\"}",
                            "--dedupe-key", "ann", "--json", NULL),
                     0);
    assert_true(started_id(out) > id);
    free(out);
    free(wf);
}



static void test_failed_run_retry_same_key(void **state)
{
    struct cli_env *e = *state;
    char *wf = cli_env_post_wf(e);
    char *out = NULL, *err = NULL;
    struct echo_fault f = {.status = 503};
    echo_push(e->srv, &f);
    /* One attempt only, and it gets a 503: the run fails, exit 1, the error shown. */
    assert_int_equal(cli_env_assent(e, &out, &err, "run", wf, "--wait", NULL), 1);
    assert_non_null(strstr(out, "failed"));
    assert_non_null(strstr(out, "HTTP 503"));
    assert_non_null(strstr(out, "output {\"status\":503")); /* the failed step's response */
    free(out);
    free(err);
    out = err = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "runs", "--status", "failed", "--json", NULL), 0);
    json_t *list = json_loads(out, 0, NULL);
    free(out);
    out = NULL;
    assert_int_equal(json_array_size(list), 1);
    int64_t id = json_integer_value(json_object_get(json_array_get(list, 0), "id"));
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(list, 0), "error")),
                           "step post failed"));
    json_decref(list);

    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    assert_int_equal(cli_env_assent(e, &out, NULL, "retry", idbuf, NULL), 0);
    free(out);
    out = NULL;
    assert_int_equal(cli_env_assent(e, NULL, NULL, "worker", "--until-done", NULL), 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    json_t *post = json_array_get(json_object_get(h, "steps"), 0);
    const char *key = json_string_value(json_object_get(post, "idempotency_key"));
    /* Both deliveries carried the step's one key. */
    json_t *reqs = echo_requests(e->srv);
    assert_int_equal(json_array_size(reqs), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(reqs, i), "idempotency_key")), key);
    json_decref(reqs);
    /* The timeline shows the failure, the retry request and the success. */
    json_t *hist = json_object_get(post, "history");
    assert_int_equal(json_array_size(hist), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 0), "event")),
                        "step.failed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 1), "event")),
                        "step.succeeded");
    int retried = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(h, "events"), i, ev)
        retried += strcmp(json_string_value(json_object_get(ev, "type")), "run.retried") == 0;
    assert_int_equal(retried, 1);
    json_decref(h);
    assert_int_equal(cli_env_assent(e, NULL, NULL, "retry", idbuf, NULL), 1);
    free(wf);
}

/* The first regular file's text in dir (malloc'd), or NULL. */
static char *first_file_in(const char *dir)
{
    DIR *d = opendir(dir);
    char *text = NULL;
    struct dirent *de;
    while (d && !text && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = tu_path(dir, de->d_name);
        text = tu_read_file(p);
        free(p);
    }
    if (d)
        closedir(d);
    return text;
}

/* `assent run` with a path relative to its working directory; the worker runs
 * elsewhere and still finds the email template next to the workflow. */
static void test_template_next_to_workflow(void **state)
{
    struct cli_env *e = *state;
    char *flows = tu_path(e->dir, "flows"), *mail = tu_path(e->dir, "mail");
    assert_int_equal(mkdir(flows, 0700), 0);
    char *wf = tu_path(flows, "notify.json"), *body = tu_path(flows, "body.txt");
    assert_int_equal(tu_write_file(wf,
        "{\"name\": \"notify\", \"version\": \"1\","
        " \"input\": {\"name\": {\"type\": \"string\", \"required\": true}},"
        " \"steps\": {\"mail\": {\"type\": \"email\", \"params\": {\"to\": \"ann@example.org\","
        " \"subject\": \"Hi\", \"text_file\": \"body.txt\"}}}}"), 0);
    assert_int_equal(tu_write_file(body, "Hello ${input.name} from the template\n"), 0);
    size_t n = strlen(mail) + 32;
    char *env_mail = malloc(n);
    snprintf(env_mail, n, "ASSENT_MAIL_DIR=%s", mail);
    char *env[] = {e->env_db, env_mail, "ASSENT_MAIL_TRANSPORT=file", "ASSENT_LOG_LEVEL=warn",
                   NULL};
    char *run_argv[] = {"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" run notify.json --input \"$3\" --json",
                        "sh", flows, (char *)tu_assent_bin(), "{\"name\": \"Ann\"}", NULL};
    char *out = NULL, *err = NULL;
    int rc = tu_run(run_argv, env, T_MS, &out, &err);
    if (rc)
        fprintf(stderr, "%s%s", out ? out : "", err ? err : "");
    assert_int_equal(rc, 0);
    int64_t id = started_id(out);
    free(out);
    free(err);
    /* The worker's working directory is not the workflow's. */
    char *worker_argv[] = {(char *)tu_assent_bin(), "worker", "--until-done", NULL};
    assert_int_equal(tu_run(worker_argv, env, T_MS, NULL, NULL), 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    json_decref(h);
    char *msg = first_file_in(mail);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Hello Ann from the template"));
    free(msg);
    free(env_mail);
    free(body);
    free(wf);
    free(mail);
    free(flows);
}

/* A bad mail configuration stops `worker`, `run --wait` and `serve` at start
 * (exit 3, the key named), before anything is stored or served. */
static void test_bad_mail_config_fails_fast(void **state)
{
    struct cli_env *e = *state;
    char *wf = cli_env_post_wf(e);
    char *env[] = {e->env_db, "ASSENT_MAIL_FROM=not an address", "ASSENT_LOG_LEVEL=warn", NULL};
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", tu_free_port());
    char *worker_argv[] = {(char *)tu_assent_bin(), "worker", "--until-done", NULL};
    char *run_argv[] = {(char *)tu_assent_bin(), "run", wf, "--wait", NULL};
    char *serve_argv[] = {(char *)tu_assent_bin(), "serve", "--listen", listen, NULL};
    char *const *cmds[] = {worker_argv, run_argv, serve_argv};
    for (size_t i = 0; i < 3; i++) {
        char *err = NULL;
        assert_int_equal(tu_run(cmds[i], env, 20000, NULL, &err), 3);
        assert_non_null(strstr(err, "bad mail configuration"));
        assert_non_null(strstr(err, "mail_from"));
        free(err);
    }
    /* The refused `run --wait` started nothing; without --wait the run is only stored. */
    char *out = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "runs", "--json", NULL), 0);
    json_t *list = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    free(out);
    char *plain_run[] = {(char *)tu_assent_bin(), "run", wf, NULL};
    assert_int_equal(tu_run(plain_run, env, T_MS, NULL, NULL), 0);
    free(wf);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("%s: cannot stat", path);
    return st.st_mode & 07777;
}

/* File modes with a umask of 022: what Assent creates is private; an
 * existing folder open to others gets a warning; a configuration file with
 * an inline client_secret that others can read stops every command. */
static void test_file_modes_and_inline_secret(void **state)
{
    struct cli_env *e = *state;
    mode_t old = umask(022);
    char *var = tu_path(e->dir, "var"), *db = tu_path(e->dir, "var/assent.db");
    char *err = NULL, *out = NULL;
    assert_int_equal(cli_env_assent(e, NULL, &err, "runs", "--db", db, NULL), 0);
    assert_int_equal(mode_of(var), 0700);
    assert_int_equal(mode_of(db), 0600);
    assert_null(strstr(err, "can be read by group or others"));
    free(err);

    /* A folder others can read: named, with the fix. */
    char *open_dir = tu_path(e->dir, "shared"), *open_db = tu_path(e->dir, "shared/assent.db");
    assert_int_equal(mkdir(open_dir, 0755), 0);
    assert_int_equal(cli_env_assent(e, NULL, &err, "runs", "--db", open_db, NULL), 0);
    assert_non_null(strstr(err, open_dir));
    assert_non_null(strstr(err, "chmod 700"));
    assert_int_equal(mode_of(open_db), 0600);
    free(err);

    /* The mail folder, at the start of a worker (file transport). */
    char *mail = tu_path(e->dir, "mail");
    assert_int_equal(mkdir(mail, 0755), 0);
    char env_mail[600];
    snprintf(env_mail, sizeof env_mail, "ASSENT_MAIL_DIR=%s", mail);
    char *env[] = {e->env_db, env_mail, "ASSENT_LOG_LEVEL=warn", NULL};
    char *worker[] = {(char *)tu_assent_bin(), "worker", "--until-done", NULL};
    assert_int_equal(tu_run(worker, env, T_MS, NULL, &err), 0);
    assert_non_null(strstr(err, mail));
    assert_non_null(strstr(err, "chmod 700"));
    free(err);

    /* client_secret inline in a file others can read: exit 3, file named. */
    char *cfg = tu_path(e->dir, "assent.json");
    assert_int_equal(tu_write_file(cfg, "{\"client_secret\": \"inline-s3cret\"}"), 0);
    assert_int_equal(mode_of(cfg), 0644);
    char *wf = cli_env_post_wf(e);
    const char *cmds[][3] = {{"runs", NULL}, {"config", NULL}, {"validate", wf}, {"approvals", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(cli_env_assent(e, &out, &err, "--config", cfg, cmds[i][0], cmds[i][1], NULL), 3);
        assert_non_null(strstr(err, cfg));
        assert_non_null(strstr(err, "client_secret"));
        assert_null(strstr(err, "inline-s3cret"));
        assert_null(strstr(out, "inline-s3cret"));
        free(out);
        free(err);
    }
    /* The same through ASSENT_CONFIG. */
    char env_cfg[600];
    snprintf(env_cfg, sizeof env_cfg, "ASSENT_CONFIG=%s", cfg);
    char *env2[] = {e->env_db, env_cfg, NULL};
    char *runs[] = {(char *)tu_assent_bin(), "runs", NULL};
    assert_int_equal(tu_run(runs, env2, T_MS, NULL, NULL), 3);
    assert_int_equal(chmod(cfg, 0600), 0);
    assert_int_equal(cli_env_assent(e, &out, NULL, "--config", cfg, "config", NULL), 0);
    assert_null(strstr(out, "inline-s3cret"));
    free(out);
    umask(old);
    free(wf);
    free(cfg);
    free(mail);
    free(open_dir);
    free(open_db);
    free(var);
    free(db);
}

static void test_sigterm_finishes_running_step(void **state)
{
    struct cli_env *e = *state;
    char *wf = cli_env_post_wf(e);
    char *out = NULL;
    struct echo_fault slow = {.delay_ms = 1500};
    echo_push(e->srv, &slow);
    assert_int_equal(cli_env_assent(e, &out, NULL, "run", wf, "--json", NULL), 0);
    int64_t id = started_id(out);
    free(out);

    char *log = tu_path(e->dir, "worker.log");
    char *argv[] = {(char *)tu_assent_bin(), "worker", NULL};
    char *env[] = {e->env_db, "ASSENT_LOG_LEVEL=info", "ASSENT_SHUTDOWN_GRACE_SECONDS=30", NULL};
    pid_t pid = tu_spawn(argv, env, log);
    assert_true(pid > 0);
    /* Wait until the request is at the server (the step is running), then stop. */
    for (int i = 0; i < 1000 && echo_count(e->srv) == 0; i++)
        tu_sleep_ms(10);
    assert_int_equal(echo_count(e->srv), 1);
    kill(pid, SIGTERM);
    assert_int_equal(tu_wait_exit(pid, T_MS), 0);

    /* The running step finished and its result was kept; nothing more was claimed. */
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "running");
    json_t *steps = json_object_get(h, "steps");
    assert_int_equal(json_array_size(steps), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 0), "status")),
                        "succeeded");
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 1), "status")),
                        "ready");
    json_decref(h);
    char *text = tu_read_file(log);
    assert_non_null(strstr(text, "SIGTERM"));
    free(text);

    assert_int_equal(cli_env_assent(e, NULL, NULL, "worker", "--until-done", NULL), 0);
    h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    json_decref(h);
    assert_int_equal(echo_count(e->srv), 1); /* sent once: no redelivery after a clean stop */
    free(log);
    free(wf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_dedupe_cancel_and_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_run_retry_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigterm_finishes_running_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_next_to_workflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_mail_config_fails_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_modes_and_inline_secret, setup, teardown),
    };
    if (tu_select_test("it_engine_cli", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 2;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
