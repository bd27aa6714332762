/*
 * it_http_step.c - the generic steps end to end: the real `assent` binary
 * runs workflows/examples/resilient-http.json against a local HTTP server
 * (http_echo_server.c, running in this program) that injects failures and
 * records every Idempotency-Key it receives.
 *
 * Cases: success; retries after 503 + Retry-After, a dropped connection and
 * a 500, with the same key on every attempt; a permanent 404 that fails the
 * run with the error in `assent show`; the condition's false branch; a dry
 * run that sends nothing; and a delay that survives `kill -9` and is
 * finished by `assent worker`.  No timing assertions.
 *
 * usage: it_http_step [TEST_NAME_PATTERN]
 */
#include "tests/testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/http_echo_server.h"

#define RUN_TIMEOUT_MS 120000

struct env {
    char *dir;
    char *db;
    char *wf;
    struct echo_server *srv;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->dir = tu_tmpdir("http-step");
    e->db = tu_path(e->dir, "assent.db");
    e->wf = tu_path(tu_source_dir(), "workflows/examples/resilient-http.json");
    e->srv = echo_start();
    *state = e;
    return e->dir && e->db && e->wf && e->srv ? 0 : -1;
}

static int teardown(void **state)
{
    struct env *e = *state;
    echo_stop(e->srv);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e->db);
    free(e->wf);
    free(e);
    return 0;
}

/* `assent --db DB <args...>`; returns the exit code, stdout in *out (caller frees). */
static int assent(struct env *e, char **out, const char *a1, const char *a2, const char *a3,
                  const char *a4, const char *a5, const char *a6)
{
    char *argv[] = {(char *)tu_assent_bin(), "--db", e->db, (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, (char *)a5, (char *)a6, NULL};
    char *err = NULL;
    int rc = tu_run(argv, NULL, RUN_TIMEOUT_MS, out, &err);
    if (rc != 0 && err)
        fprintf(stderr, "assent %s %s: exit %d\n%s\n", a1, a2 ? a2 : "", rc, err);
    free(err);
    return rc;
}

static char *input_for(struct env *e, const char *path)
{
    char *url = echo_url(e->srv, path);
    json_t *in = json_pack("{s:s}", "url", url);
    char *text = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    free(url);
    return text;
}

/* Run the example to its end with --wait; returns the exit code and the run's id. */
static int run_example(struct env *e, const char *path, const char *extra, int64_t *run_id)
{
    char *input = input_for(e, path);
    char *out = NULL;
    int rc = assent(e, &out, "run", e->wf, "--input", input, "--wait", extra ? extra : "--json");
    *run_id = 0;
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    json_t *id = json_object_get(json_object_get(j, "run"), "id");
    if (!id)
        id = json_object_get(j, "run_id");
    if (json_is_integer(id))
        *run_id = json_integer_value(id);
    json_decref(j);
    free(out);
    free(input);
    return rc;
}

/* `assent show RUN --json`, parsed (new reference). */
static json_t *show(struct env *e, int64_t run_id)
{
    char id[32], *out = NULL;
    snprintf(id, sizeof id, "%lld", (long long)run_id);
    int rc = assent(e, &out, "show", id, "--json", NULL, NULL, NULL);
    assert_int_equal(rc, 0);
    assert_non_null(out);
    json_t *j = json_loads(out, 0, NULL);
    if (!j)
        fail_msg("show --json printed no JSON: %s", out);
    free(out);
    return j;
}

/* The latest execution of `step` in a show document, or NULL when it never ran. */
static json_t *step_of(json_t *hist, const char *step)
{
    json_t *found = NULL, *s;
    size_t i;
    json_array_foreach(json_object_get(hist, "steps"), i, s)
        if (strcmp(json_string_value(json_object_get(s, "step")), step) == 0)
            found = s;
    return found;
}

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static const char *run_status(json_t *hist)
{
    return str_at(json_object_get(hist, "run"), "status");
}

static void assert_keys(struct env *e, size_t from, const char *want, size_t min_n)
{
    json_t *reqs = echo_requests(e->srv);
    size_t n = json_array_size(reqs);
    assert_true(n >= from + min_n);
    for (size_t i = from; i < n; i++) {
        const char *k = json_string_value(json_object_get(json_array_get(reqs, i), "idempotency_key"));
        assert_non_null(k);
        assert_string_equal(k, want);
    }
    json_decref(reqs);
}

static void test_success(void **state)
{
    struct env *e = *state;
    size_t before = echo_count(e->srv);
    int64_t id;
    assert_int_equal(run_example(e, "/ok", NULL, &id), 0);
    assert_true(id > 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    json_t *post = step_of(h, "post");
    assert_non_null(post);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(post, "output"), "status")), 200);
    assert_string_equal(str_at(step_of(h, "check"), "outcome"), "true");
    assert_string_equal(str_at(step_of(h, "settle"), "status"), "succeeded");
    assert_string_equal(str_at(step_of(h, "done"), "status"), "succeeded");
    assert_null(step_of(h, "unexpected"));
    /* One POST, carrying the step's idempotency key and the JSON body. */
    assert_int_equal(echo_count(e->srv), before + 1);
    assert_keys(e, before, str_at(post, "idempotency_key"), 1);
    json_t *reqs = echo_requests(e->srv);
    json_t *r = json_array_get(reqs, before);
    assert_string_equal(str_at(r, "method"), "POST");
    assert_string_equal(str_at(r, "content_type"), "application/json");
    assert_string_equal(str_at(json_object_get(r, "body"), "source"), "assent");
    json_decref(reqs);
    json_decref(h);
}

static void test_retries_same_key(void **state)
{
    struct env *e = *state;
    size_t before = echo_count(e->srv);
    echo_push(e->srv, &(struct echo_fault){.status = 503, .retry_after = "1", .body = "busy"});
    echo_push(e->srv, &(struct echo_fault){.drop = 1});
    echo_push(e->srv, &(struct echo_fault){.status = 500, .body = "oops"});
    int64_t id;
    assert_int_equal(run_example(e, "/flaky", NULL, &id), 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    json_t *post = step_of(h, "post");
    assert_string_equal(str_at(post, "status"), "succeeded");
    assert_true(json_integer_value(json_object_get(post, "attempts")) >= 3);
    /* The three faults and the success all reached the server with the SAME key. */
    assert_keys(e, before, str_at(post, "idempotency_key"), 4);
    /* The history keeps the 503 and its Retry-After. */
    char *dump = json_dumps(json_object_get(post, "history"), 0);
    assert_non_null(strstr(dump, "HTTP 503"));
    free(dump);
    assert_string_equal(str_at(step_of(h, "done"), "status"), "succeeded");
    json_decref(h);
}

static void test_permanent_4xx(void **state)
{
    struct env *e = *state;
    size_t before = echo_count(e->srv);
    int64_t id;
    assert_int_equal(run_example(e, "/status/404", NULL, &id), 1);
    assert_true(id > 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "failed");
    json_t *post = step_of(h, "post");
    assert_string_equal(str_at(post, "status"), "failed");
    assert_non_null(strstr(str_at(post, "error"), "HTTP 404"));
    assert_string_equal(str_at(step_of(h, "report_failure"), "status"), "succeeded");
    assert_string_equal(str_at(step_of(h, "give_up"), "status"), "failed");
    assert_non_null(strstr(str_at(json_object_get(h, "run"), "error"), "failed"));
    assert_null(step_of(h, "check"));
    /* A 4xx is not retried. */
    assert_int_equal(echo_count(e->srv), before + 1);
    json_decref(h);

    /* The person-readable timeline names the status too. */
    char id_s[32], *out = NULL;
    snprintf(id_s, sizeof id_s, "%lld", (long long)id);
    assert_int_equal(assent(e, &out, "show", id_s, NULL, NULL, NULL, NULL), 0);
    assert_non_null(strstr(out, "HTTP 404"));
    free(out);
}

static void test_condition_false(void **state)
{
    struct env *e = *state;
    int64_t id;
    assert_int_equal(run_example(e, "/status/202", NULL, &id), 0);
    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    assert_string_equal(str_at(step_of(h, "check"), "outcome"), "false");
    assert_string_equal(str_at(step_of(h, "unexpected"), "status"), "succeeded");
    assert_null(step_of(h, "settle"));
    assert_null(step_of(h, "done"));
    json_decref(h);
}

static void test_dry_run_sends_nothing(void **state)
{
    struct env *e = *state;
    size_t before = echo_count(e->srv);
    char *input = input_for(e, "/dry");
    char *out = NULL;
    int rc = assent(e, &out, "run", e->wf, "--input", input, "--wait", "--dry-run");
    free(input);
    free(out);
    assert_int_equal(rc, 0);
    assert_int_equal(echo_count(e->srv), before);
}

/* The example's delay is parked in SQLite: kill -9 during it loses nothing. */
static void test_delay_survives_kill(void **state)
{
    struct env *e = *state;
    size_t before = echo_count(e->srv);
    char *input = input_for(e, "/restart");
    char *log = tu_path(e->dir, "run.log");
    /* The example's 2 s pause, made 10 minutes so that a loaded machine
     * cannot see it end between the test finding it parked and the kill;
     * the second process then runs 20 minutes ahead (test clock hook). */
    char *text = tu_read_file(e->wf);
    assert_non_null(text);
    char *pause = strstr(text, "\"duration\": \"2s\"");
    assert_non_null(pause);
    char *wf_text = malloc(strlen(text) + 8);
    snprintf(wf_text, strlen(text) + 8, "%.*s\"duration\": \"10m\"%s", (int)(pause - text), text,
             pause + strlen("\"duration\": \"2s\""));
    char *wf = tu_path(e->dir, "resilient-http-10m.json");
    assert_int_equal(tu_write_file(wf, wf_text), 0);
    free(text);
    free(wf_text);
    char *argv[] = {(char *)tu_assent_bin(), "--db", e->db, "run", wf, "--input", input,
                    "--wait", NULL};
    pid_t pid = tu_spawn(argv, NULL, log);
    assert_true(pid > 0);

    /* Wait until the run's delay is parked. */
    int64_t id = 0;
    int parked = 0;
    for (int i = 0; i < 600 && !parked; i++) {
        char *out = NULL;
        if (assent(e, &out, "runs", "--json", NULL, NULL, NULL, NULL) == 0 && out) {
            json_t *runs = json_loads(out, 0, NULL);
            /* The database is this test's own: its only run is ours. */
            id = json_integer_value(json_object_get(json_array_get(runs, 0), "id"));
            json_decref(runs);
        }
        free(out);
        if (id) {
            json_t *h = show(e, id);
            parked = strcmp(str_at(step_of(h, "settle"), "status"), "waiting") == 0;
            json_decref(h);
        }
        if (!parked)
            tu_sleep_ms(50);
    }
    assert_true(id > 0);
    assert_true(parked);
    tu_stop(pid, SIGKILL);

    json_t *h = show(e, id);
    assert_string_equal(run_status(h), "waiting");
    json_decref(h);

    /* A new process, 20 minutes later by its clock, finishes the run; the
     * POST is not sent again. */
    char *worker[] = {(char *)tu_assent_bin(), "--db", e->db, "worker", "--until-done", NULL};
    char *later[] = {"ASSENT_TEST_HOOKS=1", "ASSENT_FAKE_NOW_OFFSET_MS=1200000", NULL};
    assert_int_equal(tu_run(worker, later, RUN_TIMEOUT_MS, NULL, NULL), 0);
    h = show(e, id);
    assert_string_equal(run_status(h), "succeeded");
    assert_string_equal(str_at(step_of(h, "settle"), "status"), "succeeded");
    assert_string_equal(str_at(step_of(h, "done"), "status"), "succeeded");
    json_decref(h);
    assert_int_equal(echo_count(e->srv), before + 1);
    free(input);
    free(log);
    free(wf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_same_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_4xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_condition_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_sends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_survives_kill, setup, teardown),
    };
    if (tu_select_test("it_http_step", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 2;
    return cmocka_run_group_tests_name("http_step", tests, NULL, NULL);
}
