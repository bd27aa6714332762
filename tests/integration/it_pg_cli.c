/*
 * it_pg_cli.c - the real `assent` binary on PostgreSQL (the tests' private
 * server, a database per test): run --wait of a simple workflow, runs,
 * show, audit verify; a run started by one command and executed by two
 * workers at once (each step once, one audit chain); cancel and retry;
 * and what a bad, unreachable or password-carrying database string and a
 * command not ported yet answer.
 *
 * usage: it_pg_cli [TEST_NAME]
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_MS 120000

struct env {
    char *dir, *uri, *env_db;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->dir = tu_tmpdir("pg-cli");
    e->uri = tu_pg_db_new("pgcli");
    size_t n = strlen(e->uri) + 16;
    e->env_db = malloc(n);
    snprintf(e->env_db, n, "ASSENT_DB=%s", e->uri);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    tu_pg_db_drop(e->uri);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e->env_db);
    free(e);
    return 0;
}

/* Run assent with up to 10 arguments (NULL-terminated) on the test's database. */
static int assent(struct env *e, char **out, char **err, ...)
{
    char *argv[12] = {(char *)tu_assent_bin()};
    va_list ap;
    va_start(ap, err);
    int n = 1;
    const char *a;
    while (n < 11 && (a = va_arg(ap, const char *)))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char *env[] = {e->env_db, "ASSENT_LOG_LEVEL=warn", NULL};
    return tu_run(argv, env, T_MS, out, err);
}

static char *write_wf(struct env *e, const char *name, const char *text)
{
    char *p = tu_path(e->dir, name);
    assert_int_equal(tu_write_file(p, text), 0);
    return p;
}

static json_t *json_out(const char *text)
{
    json_t *v = json_loads(text ? text : "", 0, NULL);
    if (!v)
        fail_msg("not JSON: %s", text ? text : "(nothing)");
    return v;
}

static const char hello_wf[] =
    "{\"name\": \"hello\", \"version\": \"1\",\n"
    " \"input\": {\"who\": {\"type\": \"string\", \"required\": true}},\n"
    " \"steps\": {\n"
    "  \"greet\": {\"type\": \"log\", \"params\": {\"message\": \"hello ${input.who}\"},\n"
    "            \"next\": \"check\"},\n"
    "  \"check\": {\"type\": \"condition\", \"params\": {\"expr\": \"input.who == 'ann'\"},\n"
    "            \"next\": {\"true\": \"bye\", \"false\": \"bye\"}},\n"
    "  \"bye\": {\"type\": \"log\", \"params\": {\"message\": \"bye ${input.who}\"}}}}\n";

static void test_run_wait_runs_show_audit(void **state)
{
    struct env *e = *state;
    char *wf = write_wf(e, "hello.json", hello_wf);
    char *out = NULL, *err = NULL;
    int rc = assent(e, &out, &err, "run", wf, "--input", "{\"who\": \"ann\"}", "--wait", "--json",
                    NULL);
    if (rc != 0)
        fail_msg("run --wait: exit %d: %s", rc, err ? err : "");
    json_t *h = json_out(out);
    json_t *run = json_object_get(h, "run");
    assert_string_equal(json_string_value(json_object_get(run, "status")), "succeeded");
    int64_t id = json_integer_value(json_object_get(run, "id"));
    assert_true(id > 0);
    assert_int_equal(json_array_size(json_object_get(h, "steps")), 3);
    json_decref(h);
    free(out);
    free(err);
    out = err = NULL;

    assert_int_equal(assent(e, &out, NULL, "runs", "--json", NULL), 0);
    json_t *list = json_out(out);
    assert_int_equal(json_array_size(list), 1);
    json_t *r0 = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "id")), id);
    assert_string_equal(json_string_value(json_object_get(r0, "status")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(r0, "step")), "bye");
    json_decref(list);
    free(out);
    out = NULL;
    assert_int_equal(assent(e, &out, NULL, "runs", "--status", "succeeded", NULL), 0);
    assert_non_null(strstr(out, "hello v1"));
    free(out);
    out = NULL;

    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    assert_int_equal(assent(e, &out, NULL, "show", idbuf, NULL), 0);
    assert_non_null(strstr(out, "succeeded"));
    assert_non_null(strstr(out, "greet"));
    assert_non_null(strstr(out, "bye ann"));
    free(out);
    out = NULL;
    assert_int_equal(assent(e, NULL, &err, "show", "424242", NULL), 4);
    free(err);
    err = NULL;

    assert_int_equal(assent(e, &out, NULL, "audit", "verify", "--json", NULL), 0);
    json_t *rep = json_out(out);
    assert_true(json_integer_value(json_object_get(rep, "events")) >= 5);
    json_decref(rep);
    free(out);
    out = NULL;
    assert_int_equal(assent(e, &out, NULL, "audit", "verify", NULL), 0);
    assert_non_null(strstr(out, "chain intact"));
    free(out);
    out = NULL;
    /* Tampering shows. */
    tu_pg_exec(e->uri, "UPDATE events SET data = '{\"forged\":true}' WHERE id = 2");
    assert_int_equal(assent(e, &out, &err, "audit", "verify", NULL), 1);
    free(out);
    free(err);
    free(wf);
}

/* A run started by one command and executed by two workers at once: each
 * step runs once, every run succeeds, the audit chain is one chain. */
static void test_two_workers(void **state)
{
    struct env *e = *state;
    char *wf = write_wf(e, "hello.json", hello_wf);
    enum { RUNS = 40 };
    for (int i = 0; i < RUNS; i++) {
        char input[64];
        snprintf(input, sizeof input, "{\"who\": \"user%d\"}", i);
        char *err = NULL;
        int rc = assent(e, NULL, &err, "run", wf, "--input", input, NULL);
        if (rc != 0)
            fail_msg("run %d: exit %d: %s", i, rc, err ? err : "");
        free(err);
    }
    char *argv[] = {(char *)tu_assent_bin(), "worker", "--until-done", NULL};
    char *env[] = {e->env_db, "ASSENT_LOG_LEVEL=warn", "ASSENT_WORKERS=2", NULL};
    char *log1 = tu_path(e->dir, "worker1.log"), *log2 = tu_path(e->dir, "worker2.log");
    pid_t a = tu_spawn(argv, env, log1);
    pid_t b = tu_spawn(argv, env, log2);
    assert_true(a > 0 && b > 0);
    assert_int_equal(tu_wait_exit(a, T_MS), 0);
    assert_int_equal(tu_wait_exit(b, T_MS), 0);
    free(log1);
    free(log2);

    char *n = tu_pg_query(e->uri, "SELECT count(*) FROM runs WHERE status = 'succeeded'");
    assert_int_equal(strtol(n, NULL, 10), RUNS);
    free(n);
    /* Every step of every run: one execution, one attempt, no recovery. */
    n = tu_pg_query(e->uri, "SELECT count(*) FROM step_execs WHERE status = 'succeeded' "
                            "AND attempt = 1 AND recoveries = 0");
    assert_int_equal(strtol(n, NULL, 10), 3 * RUNS);
    free(n);
    n = tu_pg_query(e->uri, "SELECT count(*) FROM step_execs");
    assert_int_equal(strtol(n, NULL, 10), 3 * RUNS);
    free(n);
    char *out = NULL;
    assert_int_equal(assent(e, &out, NULL, "audit", "verify", NULL), 0);
    assert_non_null(strstr(out, "chain intact"));
    free(out);
    free(wf);
}

static const char pause_wf[] =
    "{\"name\": \"pause\", \"version\": \"1\",\n"
    " \"steps\": {\"nap\": {\"type\": \"delay\", \"params\": {\"duration\": \"1h\"}, \"next\": \"hi\"},\n"
    "           \"hi\": {\"type\": \"log\", \"params\": {\"message\": \"hello\"}}}}\n";

static const char fail_wf[] =
    "{\"name\": \"boom\", \"version\": \"1\",\n"
    " \"steps\": {\"explode\": {\"type\": \"fail\", \"params\": {\"message\": \"boom\"}}}}\n";

static void test_cancel_dedupe_retry(void **state)
{
    struct env *e = *state;
    char *wf = write_wf(e, "pause.json", pause_wf);
    char *out = NULL, *err = NULL;
    assert_int_equal(assent(e, &out, NULL, "run", wf, "--dedupe-key", "ann", "--json", NULL), 0);
    json_t *o = json_out(out);
    int64_t id = json_integer_value(json_object_get(o, "run_id"));
    json_decref(o);
    free(out);
    out = NULL;
    /* The same key again: refused with the open run. */
    assert_int_equal(assent(e, &out, &err, "run", wf, "--dedupe-key", "ann", "--json", NULL), 1);
    o = json_out(out);
    assert_int_equal(json_integer_value(json_object_get(o, "run_id")), id);
    json_decref(o);
    free(out);
    free(err);
    out = err = NULL;
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%" PRId64, id);
    assert_int_equal(assent(e, &out, NULL, "cancel", idbuf, NULL), 0);
    assert_non_null(strstr(out, "cancelled"));
    free(out);
    out = NULL;
    assert_int_equal(assent(e, NULL, &err, "cancel", idbuf, NULL), 1);
    assert_non_null(strstr(err, "already ended"));
    free(err);
    err = NULL;

    /* A failed run is retried: its step runs again (and fails again). */
    char *bad = write_wf(e, "boom.json", fail_wf);
    assert_int_equal(assent(e, &out, &err, "run", bad, "--wait", "--json", NULL), 1);
    o = json_out(out);
    int64_t fid = json_integer_value(json_object_get(json_object_get(o, "run"), "id"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "run"), "status")), "failed");
    json_decref(o);
    free(out);
    free(err);
    out = err = NULL;
    snprintf(idbuf, sizeof idbuf, "%" PRId64, fid);
    assert_int_equal(assent(e, &out, &err, "retry", idbuf, NULL), 0);
    free(out);
    free(err);
    out = err = NULL;
    char *n = tu_pg_query(e->uri, "SELECT status FROM runs WHERE id = (SELECT max(id) FROM runs)");
    assert_string_equal(n, "running");
    free(n);
    free(bad);
    free(wf);
}

/* Bad input about the database: exit 3 for a string that cannot be used,
 * 5 for a server that cannot be reached (naming it, quoting libpq), a
 * password never echoed, no file created; a command not ported yet says so. */
static void test_bad_database(void **state)
{
    struct env *e = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(e->dir), 0);
    char *err = NULL;
    char *argv[] = {(char *)tu_assent_bin(), "runs", "--db", NULL, NULL};
    argv[3] = "postgresql://assent@127.0.0.1:1/assent";
    assert_int_equal(tu_run(argv, NULL, T_MS, NULL, &err), 5);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_non_null(strstr(err, "Connection refused"));
    free(err);
    err = NULL;
    argv[3] = "postgresql://assent:hunter2@127.0.0.1:1/assent";
    assert_int_equal(tu_run(argv, NULL, T_MS, NULL, &err), 3);
    assert_non_null(strstr(err, "password file"));
    assert_null(strstr(err, "hunter2"));
    free(err);
    err = NULL;
    argv[3] = "postgresql://assent@[::1/assent";
    assert_int_equal(tu_run(argv, NULL, T_MS, NULL, &err), 3);
    assert_non_null(strstr(err, "invalid PostgreSQL connection string"));
    free(err);
    err = NULL;
    struct stat st;
    assert_int_equal(stat("postgresql:", &st), -1);
    assert_int_equal(stat("var", &st), -1);
    assert_int_equal(chdir(cwd), 0);

    /* Not ported yet: refused with the operation named (the exit status is
     * the command's for a store error). */
    int rc = assent(e, NULL, &err, "approvals", NULL);
    assert_true(rc == 2 || rc == 5);
    assert_non_null(strstr(err, "not supported on PostgreSQL yet"));
    free(err);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_wait_runs_show_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_dedupe_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_database, setup, teardown),
    };
    if (tu_select_test("it_pg_cli", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 2;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
