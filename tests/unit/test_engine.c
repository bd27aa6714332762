/*
 * test_engine.c - the executor end to end inside one process: linear runs
 * with ${} references, retries with backoff, failure and the error branch,
 * `retry` of a failed run, waits resumed or expired, cancel, dedupe, input
 * checks, batch submission, graceful stop, and recovery of claims left by
 * a dead process (same idempotency key).  Steps are test-only types that
 * record every call.
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_events.h"
#include "db/db_mail.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "base/config.h"
#include "engine/engine.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "engine/step.h"
#include "cli/cli.h"

/* ---- test step types ------------------------------------------------------ */

/* Every call: idempotency key, attempt, dry_run; guarded by calls_lock. */
static pthread_mutex_t calls_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *calls; /* array of {"key","step","attempt","dry_run"} */

static void note_call(struct step_ctx *ctx)
{
    pthread_mutex_lock(&calls_lock);
    json_array_append_new(calls, json_pack("{s:s, s:s, s:i, s:b}", "key", ctx->idempotency_key,
                                           "step", ctx->step_name, "attempt", ctx->attempt,
                                           "dry_run", ctx->dry_run));
    pthread_mutex_unlock(&calls_lock);
}

/* Calls so far with this idempotency key. */
static int calls_for(const char *key)
{
    int n = 0;
    pthread_mutex_lock(&calls_lock);
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
        if (strcmp(json_string_value(json_object_get(c, "key")), key) == 0)
            n++;
    pthread_mutex_unlock(&calls_lock);
    return n;
}

static size_t n_calls(void)
{
    pthread_mutex_lock(&calls_lock);
    size_t n = json_array_size(calls);
    pthread_mutex_unlock(&calls_lock);
    return n;
}

static const struct step_param any_params[] = {
    {"value", SP_ANY, 0, "echoed as output.value"},
    {"outcome", SP_STRING, 0, "outcome to end with"},
    {"succeed_at", SP_INT, 0, "t_flaky: calls with this key before success"},
    {"ms", SP_INT, 0, "t_wait: wait length (0 = default); t_slow: sleep"},
    {"message", SP_STRING, 0, "t_fail: error"},
    {NULL, SP_ANY, 0, NULL},
};

static void t_ok(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    const char *outcome = json_string_value(json_object_get(ctx->params, "outcome"));
    json_t *value = json_object_get(ctx->params, "value");
    step_event(ctx, "test.touched", json_pack("{s:s}", "step", ctx->step_name));
    step_ok(res, outcome, json_pack("{s:O, s:s, s:i, s:b}", "value", value ? value : json_null(),
                                    "key", ctx->idempotency_key, "attempt", ctx->attempt,
                                    "dry_run", ctx->dry_run));
}

/* Transient failure until this key has been called succeed_at times. */
static void t_flaky(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    json_int_t want = json_integer_value(json_object_get(ctx->params, "succeed_at"));
    if (calls_for(ctx->idempotency_key) < want) {
        step_retry(res, 0, "flaky: call %d of %d", calls_for(ctx->idempotency_key), (int)want);
        return;
    }
    step_ok(res, NULL, json_pack("{s:i}", "calls", calls_for(ctx->idempotency_key)));
}

static void t_fail(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    const char *m = json_string_value(json_object_get(ctx->params, "message"));
    json_t *value = json_object_get(ctx->params, "value");
    if (value) {
        /* Fail with an output, as http does with the response of a 404; "transient"
         * asks for a retry. */
        res->output = json_pack("{s:O, s:i}", "status", value, "attempt", ctx->attempt);
        if (m && strcmp(m, "transient") == 0) {
            step_retry(res, 0, "try again");
            return;
        }
    }
    if (m && strcmp(m, "binary") == 0) {
        /* A peer's bytes in an error: quotes, control characters, invalid UTF-8. */
        step_fail(res, "got \"\xff\xfe\" from \x01peer\n\xe2\x82\xac ok");
        return;
    }
    step_fail(res, "%s", m ? m : "failed on purpose");
}

static void t_wait(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    if (ctx->resume) {
        step_ok(res, "approved", json_pack("{s:O, s:O}", "resume", ctx->resume, "state",
                                           ctx->wait_state ? ctx->wait_state : json_null()));
        return;
    }
    if (ctx->deadline_reached) {
        step_ok(res, "expired", NULL);
        return;
    }
    json_int_t ms = json_integer_value(json_object_get(ctx->params, "ms"));
    step_wait(res, ms ? ctx->now_ms + ms : 0, json_pack("{s:s}", "token", "t-1"));
}

static void t_slow(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    tu_sleep_ms((int)json_integer_value(json_object_get(ctx->params, "ms")));
    step_ok(res, NULL, NULL);
}

/* t_hold: like t_wait, but its first call holds (inside execute) until the
 * test calls hold_release(), so the test can act while the step runs. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static int hold_entered, hold_released;

static void t_hold(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    if (ctx->resume) {
        step_ok(res, "approved", json_pack("{s:O, s:O}", "resume", ctx->resume, "state",
                                           ctx->wait_state ? ctx->wait_state : json_null()));
        return;
    }
    if (ctx->deadline_reached) {
        step_ok(res, "expired", NULL);
        return;
    }
    pthread_mutex_lock(&hold_lock);
    hold_entered = 1;
    pthread_cond_broadcast(&hold_cond);
    while (!hold_released)
        pthread_cond_wait(&hold_cond, &hold_lock);
    pthread_mutex_unlock(&hold_lock);
    step_wait(res, ctx->now_ms + 3600 * 1000, json_pack("{s:s}", "token", "t-2"));
}

/* Wait until a t_hold step is inside execute(). */
static void hold_wait_entered(void)
{
    pthread_mutex_lock(&hold_lock);
    while (!hold_entered)
        pthread_cond_wait(&hold_cond, &hold_lock);
    pthread_mutex_unlock(&hold_lock);
}

static void hold_release(void)
{
    pthread_mutex_lock(&hold_lock);
    hold_released = 1;
    pthread_cond_broadcast(&hold_cond);
    pthread_mutex_unlock(&hold_lock);
}

/*
 * Allocation failure, injected: jansson allocates through these (set in
 * main before any jansson call), and the next json_allocs_to_fail
 * allocations of the calling thread fail.  Thread-local, so the engine's
 * other threads are untouched.
 */
static __thread int json_allocs_to_fail;

static void *json_test_malloc(size_t n)
{
    if (json_allocs_to_fail > 0) {
        json_allocs_to_fail--;
        return NULL;
    }
    return malloc(n);
}

/* t_lossy: an event that cannot be recorded, then success.  message
 * "alloc": out of memory inside step_event(); "text": data that json_dumps
 * refuses (invalid UTF-8 let in by json_stringn_nocheck), which the engine
 * meets where an out-of-memory json_dumps would return NULL too. */
static void t_lossy(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    const char *m = json_string_value(json_object_get(ctx->params, "message"));
    step_event(ctx, "test.kept", json_pack("{s:s}", "before", "the lost one"));
    if (m && strcmp(m, "alloc") == 0) {
        json_t *data = json_pack("{s:s}", "wrote", "u@example.org");
        json_allocs_to_fail = 1;
        step_event(ctx, "test.lost", data);
        json_allocs_to_fail = 0;
    } else {
        step_event(ctx, "test.lost", json_pack("{s:o}", "bytes", json_stringn_nocheck("\xff\xfe", 2)));
    }
    step_ok(res, NULL, json_pack("{s:b}", "done", 1));
}

/*
 * t_group: two of the store's own writes and an event through
 * engine_group_write (a mail_sends claim each, keys <idempotency key>/1
 * and /2, and a test.grouped event), then fn fails when params.message
 * is "fail".  Output {"kept": whether the first claim is in the store after}.
 */
struct group_ud {
    struct step_ctx *ctx;
    int fail;
};

static enum as_code group_claim(struct db *db, struct step_ctx *ctx, const char *n,
                                struct as_err *err)
{
    char key[600];
    struct db_mail_claim c = {0};
    snprintf(key, sizeof key, "%s/%s", ctx->idempotency_key, n);
    int64_t now = time_now_ms();
    enum as_code rc = db_mail_claim(db, key, key, "test", now, "t", now, now + 60000, 3, NULL,
                                    NULL, &c, err);
    db_mail_claim_clear(&c);
    return rc;
}

static enum as_code group_fn(struct db *db, void *ud, struct as_err *err)
{
    struct group_ud *g = ud;
    struct db_conn *conn;
    enum as_code rc = group_claim(db, g->ctx, "1", err);
    if (!rc)
        rc = db_write_begin(db, &conn, err);
    if (!rc)
        rc = db_write_end(db, db_event_append(conn, g->ctx->run_id, g->ctx->exec_id,
                                              "test.grouped", NULL, err), err);
    if (!rc)
        rc = group_claim(db, g->ctx, "2", err);
    if (!rc && g->fail)
        rc = as_errf(err, AS_EINVAL, "failing after the writes, as asked");
    return rc;
}

static void t_group(struct step_ctx *ctx, struct step_result *res)
{
    note_call(ctx);
    const char *m = json_string_value(json_object_get(ctx->params, "message"));
    struct group_ud g = {ctx, m && strcmp(m, "fail") == 0};
    struct as_err err = {0};
    enum as_code rc = engine_group_write(ctx->app->engine, ctx->app->db, group_fn, &g, &err);
    char key[600];
    json_t *row = NULL;
    snprintf(key, sizeof key, "%s/1", ctx->idempotency_key);
    struct as_err gerr = {0};
    int kept = db_mail_get(ctx->app->db, key, &row, &gerr) == AS_OK && row;
    json_decref(row);
    if (rc && !g.fail) {
        step_fail(res, "%s", err.msg);
        return;
    }
    step_ok(res, NULL, json_pack("{s:b, s:s}", "kept", kept, "error", rc ? err.msg : ""));
}

static const char *const ok_outcomes[] = {"success", "yes", "no", NULL};
static const char *const wait_outcomes[] = {"approved", "expired", NULL};
static const struct step_type type_ok = {.name = "t_ok", .doc = "test", .params = any_params,
                                         .outcomes = ok_outcomes, .execute = t_ok};
static const struct step_type type_flaky = {.name = "t_flaky", .doc = "test",
                                            .params = any_params, .execute = t_flaky};
static const struct step_type type_fail = {.name = "t_fail", .doc = "test", .params = any_params,
                                           .execute = t_fail};
static const struct step_type type_wait = {.name = "t_wait", .doc = "test", .params = any_params,
                                           .outcomes = wait_outcomes, .waits = 1,
                                           .execute = t_wait};
static const struct step_type type_slow = {.name = "t_slow", .doc = "test", .params = any_params,
                                           .execute = t_slow};
static const struct step_type type_hold = {.name = "t_hold", .doc = "test", .params = any_params,
                                           .outcomes = wait_outcomes, .waits = 1,
                                           .execute = t_hold};
static const struct step_type type_lossy = {.name = "t_lossy", .doc = "test", .params = any_params,
                                            .execute = t_lossy};
static const struct step_type type_group = {.name = "t_group", .doc = "test", .params = any_params,
                                            .execute = t_group};
static const struct step_type *const test_types[] = {&type_ok, &type_flaky, &type_fail, &type_wait,
                                                     &type_slow, &type_hold, &type_lossy,
                                                     &type_group, NULL};

/* ---- fixture -------------------------------------------------------------- */

struct fx {
    char *dir, *path;
    struct app app;
    struct engine *e;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct as_err err = {0};
    f->dir = tu_tmpdir("engine");
    f->path = tu_path(f->dir, "e.db");
    f->app.cfg = config_defaults();
    assert_int_equal(config_set(f->app.cfg, "lease_seconds", "2", &err), AS_OK);
    f->app.db = tu_db_open(f->dir, "e.db");
    pthread_mutex_lock(&calls_lock);
    json_decref(calls);
    calls = json_array();
    pthread_mutex_unlock(&calls_lock);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hold_release(); /* a t_hold step of a failed test must not block the stop */
    if (f->e)
        assert_int_equal(engine_stop(f->e, 5000), AS_OK);
    db_close(f->app.db);
    config_free(f->app.cfg);
    tu_rmrf(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return 0;
}

static void start(struct fx *f, int workers)
{
    struct as_err err = {0};
    assert_int_equal(engine_start(&f->app, workers, &f->e, &err), AS_OK);
    assert_ptr_equal(f->app.engine, f->e);
}

static struct workflow *load(const char *text)
{
    struct workflow *wf = NULL;
    struct diag_list diags = {0};
    struct as_err err = {0};
    enum as_code rc = wf_load_string(text, "test", &wf, &diags, &err);
    if (rc) {
        wf_diags_print(&diags, "test", 0, stderr);
        fprintf(stderr, "%s\n", err.msg);
    }
    diag_free(&diags);
    assert_int_equal(rc, AS_OK);
    return wf;
}

static int64_t submit(struct fx *f, const struct workflow *wf, const char *input)
{
    struct as_err err = {0};
    json_t *in = input ? json_loads(input, 0, NULL) : NULL;
    int64_t id = 0;
    struct engine_run_opts o = {.trigger = "test"};
    enum as_code rc = engine_submit_run(&f->app, wf, in, &o, &id, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, AS_OK);
    json_decref(in);
    return id;
}

static void wait_status(struct fx *f, int64_t run, const char *want)
{
    char status[16];
    struct as_err err = {0};
    enum as_code rc = engine_wait_run(&f->app, run, 20000, status, sizeof status, &err);
    assert_int_equal(rc, AS_OK);
    assert_string_equal(status, want);
}

/* Wait until a run reaches `want` (also for open states, which engine_wait_run does not). */
static void poll_status(struct fx *f, int64_t run, const char *want)
{
    char status[16] = "";
    struct as_err err = {0};
    for (int i = 0; i < 2000; i++) {
        struct db_conn *c;
        assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
        assert_int_equal(db_run_status(c, run, status, sizeof status, &err), AS_OK);
        db_read_end(f->app.db, c);
        if (strcmp(status, want) == 0)
            return;
        tu_sleep_ms(10);
    }
    assert_string_equal(status, want);
}

/* The executions of a run as a JSON array of
 * {step,status,attempt,outcome,output,error,key,id,visit,params,recoveries}. */
static int exec_cb(void *ud, const struct db_exec_info *e)
{
    json_array_append_new(
        (json_t *)ud,
        json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:i}", "step", e->step,
                  "status", e->status, "attempt", e->attempt, "outcome", e->outcome, "output",
                  e->output, "error", e->error, "key", e->idempotency_key, "id",
                  (json_int_t)e->id, "visit", e->visit, "params", e->params, "recoveries",
                  e->recoveries));
    return 0;
}

static json_t *execs(struct fx *f, int64_t run)
{
    json_t *a = json_array();
    struct db_conn *c;
    struct as_err err = {0};
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_execs(c, run, exec_cb, a, &err), AS_OK);
    db_read_end(f->app.db, c);
    return a;
}

static int event_cb(void *ud, const struct db_event_info *ev)
{
    json_array_append_new((json_t *)ud, json_pack("{s:s, s:s, s:I}", "type", ev->type, "data",
                                                  ev->data, "exec", (json_int_t)ev->exec_id));
    return 0;
}

static json_t *events(struct fx *f, int64_t run)
{
    json_t *a = json_array();
    struct db_conn *c;
    struct as_err err = {0};
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, run, event_cb, a, &err), AS_OK);
    db_read_end(f->app.db, c);
    return a;
}

static int count_events(json_t *evs, const char *type)
{
    int n = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(evs, i, ev)
        if (strcmp(json_string_value(json_object_get(ev, "type")), type) == 0)
            n++;
    return n;
}

static const char *field(json_t *arr, size_t i, const char *k)
{
    return json_string_value(json_object_get(json_array_get(arr, i), k));
}

static json_int_t ifield(json_t *arr, size_t i, const char *k)
{
    return json_integer_value(json_object_get(json_array_get(arr, i), k));
}

static void audit_ok(struct fx *f)
{
    struct db_audit_report rep;
    struct as_err err = {0};
    struct db_conn *c;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_audit_verify(c, 0, NULL, &rep, &err), AS_OK);
    db_read_end(f->app.db, c);
    if (rep.bad_id)
        fprintf(stderr, "audit: %s\n", rep.problem);
    assert_int_equal(rep.bad_id, 0);
    assert_true(rep.n_events > 0);
}

/* ---- tests ---------------------------------------------------------------- */

static const char linear_wf[] =
    "{\"name\": \"linear\", \"version\": \"1\","
    " \"input\": {\"who\": {\"type\": \"string\", \"required\": true},"
    "             \"n\": {\"type\": \"integer\", \"default\": 7}},"
    " \"steps\": {"
    "  \"a\": {\"type\": \"t_ok\", \"params\": {\"value\": \"${input.who}\"}, \"next\": \"b\"},"
    "  \"b\": {\"type\": \"t_ok\", \"params\": {\"value\": {\"from_a\": \"${steps.a.output.value}\","
    "         \"n\": \"${input.n}\", \"run\": \"${run.id}\"}, \"outcome\": \"yes\"},"
    "         \"next\": {\"yes\": \"c\"}},"
    "  \"c\": {\"type\": \"t_ok\", \"params\": {\"value\": \"hello ${steps.a.output.value}\"}}}}";

static void test_linear_run(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(linear_wf);
    start(f, 2);
    int64_t run = submit(f, wf, "{\"who\": \"ann\"}");
    wait_status(f, run, "succeeded");

    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 3);
    assert_string_equal(field(ex, 0, "step"), "a");
    assert_string_equal(field(ex, 1, "step"), "b");
    assert_string_equal(field(ex, 2, "step"), "c");
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(field(ex, i, "status"), "succeeded");
        assert_int_equal(ifield(ex, i, "attempt"), 1);
    }
    assert_string_equal(field(ex, 1, "outcome"), "yes");
    /* ${} references resolved against input (with its default) and a's output;
     * a whole-string reference keeps its JSON type. */
    json_t *out_b = json_loads(field(ex, 1, "output"), 0, NULL);
    json_t *val = json_object_get(out_b, "value");
    assert_string_equal(json_string_value(json_object_get(val, "from_a")), "ann");
    assert_int_equal(json_integer_value(json_object_get(val, "n")), 7);
    assert_int_equal(json_integer_value(json_object_get(val, "run")), run);
    /* The step saw its own idempotency key, stored with its execution. */
    assert_string_equal(json_string_value(json_object_get(out_b, "key")), field(ex, 1, "key"));
    json_decref(out_b);
    json_t *out_c = json_loads(field(ex, 2, "output"), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(out_c, "value")), "hello ann");
    json_decref(out_c);
    assert_non_null(strstr(field(ex, 2, "params"), "hello ann"));

    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "run.created"), 1);
    assert_int_equal(count_events(ev, "step.succeeded"), 3);
    assert_int_equal(count_events(ev, "test.touched"), 3);
    assert_int_equal(count_events(ev, "run.succeeded"), 1);
    assert_string_equal(field(ev, 0, "type"), "run.created");
    assert_string_equal(field(ev, json_array_size(ev) - 1, "type"), "run.succeeded");
    audit_ok(f);
    json_decref(ev);
    json_decref(ex);
    wf_free(wf);
}

/*
 * A step's own writes handed to the engine (engine_group_write) commit in
 * the dispatcher's transaction: kept and durable when the step goes on,
 * all undone when the function fails after writing, and the event chain
 * stays whole around them; without an engine they are written directly.
 */
static const char group_wf[] =
    "{\"name\": \"grouped\", \"version\": \"1\", \"input\": {\"mode\": {\"type\": \"string\"}},"
    " \"steps\": {\"g\": {\"type\": \"t_group\", \"params\": {\"message\": \"${input.mode}\"},"
    "   \"next\": \"after\"}, \"after\": {\"type\": \"t_ok\"}}}";

static void test_group_write(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(group_wf);
    start(f, 2);
    int64_t kept = submit(f, wf, "{\"mode\": \"keep\"}");
    int64_t undone = submit(f, wf, "{\"mode\": \"fail\"}");
    wait_status(f, kept, "succeeded");
    wait_status(f, undone, "succeeded");

    json_t *ex = execs(f, kept);
    json_t *out = json_loads(field(ex, 0, "output"), 0, NULL);
    assert_true(json_is_true(json_object_get(out, "kept")));
    json_decref(out);
    json_t *ev = events(f, kept);
    assert_int_equal(count_events(ev, "test.grouped"), 1);
    json_decref(ev);
    json_decref(ex);

    ex = execs(f, undone);
    out = json_loads(field(ex, 0, "output"), 0, NULL);
    assert_true(json_is_false(json_object_get(out, "kept")));
    assert_non_null(strstr(json_string_value(json_object_get(out, "error")), "as asked"));
    json_decref(out);
    ev = events(f, undone);
    assert_int_equal(count_events(ev, "test.grouped"), 0);
    json_decref(ev);
    json_decref(ex);
    audit_ok(f);

    /* Without an engine the function runs on the caller, each write its own. */
    struct step_ctx ctx = {.app = &f->app, .run_id = kept, .exec_id = 0,
                           .idempotency_key = "no-engine"};
    struct group_ud g = {&ctx, 1};
    struct as_err err = {0};
    assert_int_equal(engine_group_write(NULL, f->app.db, group_fn, &g, &err), AS_EINVAL);
    json_t *row = NULL;
    assert_int_equal(db_mail_get(f->app.db, "no-engine/2", &row, &err), AS_OK);
    assert_non_null(row);
    json_decref(row);
    wf_free(wf);
}

static const char retry_wf[] =
    "{\"name\": \"retrying\", \"version\": \"1\", \"steps\": {"
    "  \"flaky\": {\"type\": \"t_flaky\", \"params\": {\"succeed_at\": 3},"
    "     \"retry\": {\"attempts\": 4, \"backoff\": \"10ms\", \"max_backoff\": \"50ms\"},"
    "     \"next\": \"after\"},"
    "  \"after\": {\"type\": \"t_ok\"}}}";

static void test_retry_then_success(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(retry_wf);
    start(f, 2);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_int_equal(ifield(ex, 0, "attempt"), 3);
    assert_int_equal(calls_for(field(ex, 0, "key")), 3);
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "step.retry"), 2);
    /* The attempts' errors are in the log. */
    size_t i;
    json_t *e;
    int seen = 0;
    json_array_foreach(ev, i, e)
        if (strstr(json_string_value(json_object_get(e, "data")), "flaky: call 2 of 3"))
            seen = 1;
    assert_true(seen);
    json_decref(ev);
    json_decref(ex);
    wf_free(wf);
}

static const char exhaust_wf[] =
    "{\"name\": \"exhaust\", \"version\": \"1\", \"steps\": {"
    "  \"flaky\": {\"type\": \"t_flaky\", \"params\": {\"succeed_at\": 3},"
    "     \"retry\": {\"attempts\": 2, \"backoff\": \"5ms\"}, \"next\": \"after\"},"
    "  \"after\": {\"type\": \"t_ok\"}}}";

static void test_exhausted_fails_then_retry_run(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(exhaust_wf);
    start(f, 2);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "failed");
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 1);
    assert_string_equal(field(ex, 0, "status"), "failed");
    assert_int_equal(ifield(ex, 0, "attempt"), 2);
    assert_non_null(strstr(field(ex, 0, "error"), "gave up after 2 attempts"));
    char key[200];
    snprintf(key, sizeof key, "%s", field(ex, 0, "key"));
    json_decref(ex);

    /* `retry` re-queues the failed step with fresh attempts and the same key. */
    assert_int_equal(engine_retry_run(&f->app, run, &err), AS_OK);
    wait_status(f, run, "succeeded");
    assert_int_equal(engine_retry_run(&f->app, run, &err), AS_ECONFLICT);
    assert_int_equal(engine_retry_run(&f->app, 9999, &err), AS_ENOTFOUND);
    ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "status"), "succeeded");
    assert_string_equal(field(ex, 0, "key"), key);
    assert_int_equal(calls_for(key), 3);
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "run.failed"), 1);
    assert_int_equal(count_events(ev, "run.retried"), 1);
    assert_int_equal(count_events(ev, "run.succeeded"), 1);
    audit_ok(f);
    json_decref(ev);
    json_decref(ex);
    wf_free(wf);
}

static const char error_branch_wf[] =
    "{\"name\": \"branch\", \"version\": \"1\", \"steps\": {"
    "  \"boom\": {\"type\": \"t_fail\", \"params\": {\"message\": \"no such mailbox\"},"
    "     \"next\": {\"success\": \"fine\", \"error\": \"handle\"}},"
    "  \"fine\": {\"type\": \"t_ok\"},"
    "  \"handle\": {\"type\": \"t_ok\", \"params\": {\"value\": "
    "     \"${steps.boom.outcome}: ${steps.boom.error}\"}}}}";

static void test_error_branch(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(error_branch_wf);
    start(f, 1);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "status"), "failed");
    assert_string_equal(field(ex, 0, "outcome"), "error");
    assert_int_equal(ifield(ex, 0, "attempt"), 1); /* STEP_FAILED is not retried */
    assert_string_equal(field(ex, 1, "step"), "handle");
    assert_non_null(strstr(field(ex, 1, "output"), "error: no such mailbox"));
    json_decref(ex);
    wf_free(wf);
}

static const char failed_output_wf[] =
    "{\"name\": \"failed-output\", \"version\": \"1\", \"steps\": {"
    "  \"lookup\": {\"type\": \"t_fail\", \"params\": {\"value\": 404, \"message\": \"not found\"},"
    "     \"next\": {\"success\": \"fine\", \"error\": \"flaky\"}},"
    "  \"flaky\": {\"type\": \"t_fail\", \"params\": {\"value\": 503, \"message\": \"transient\"},"
    "     \"retry\": {\"attempts\": 2, \"backoff\": \"5ms\"},"
    "     \"next\": {\"success\": \"fine\", \"error\": \"handle\"}},"
    "  \"fine\": {\"type\": \"t_ok\"},"
    "  \"handle\": {\"type\": \"t_ok\", \"params\": {\"value\": {"
    "     \"lookup\": \"${steps.lookup.output.status}\", \"flaky\": \"${steps.flaky.output}\"}}}}}";

/* A failed step's output is kept (stored and in scope), so an error branch can
 * look at e.g. the status of a failed HTTP call; also after retries run out. */
static void test_failed_step_keeps_output(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(failed_output_wf);
    start(f, 1);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 3);
    assert_string_equal(field(ex, 0, "status"), "failed");
    assert_string_equal(field(ex, 0, "output"), "{\"status\":404,\"attempt\":1}");
    assert_string_equal(field(ex, 1, "status"), "failed");
    assert_int_equal(ifield(ex, 1, "attempt"), 2);
    assert_string_equal(field(ex, 1, "output"), "{\"status\":503,\"attempt\":2}");
    assert_string_equal(field(ex, 2, "step"), "handle");
    json_t *out = json_loads(field(ex, 2, "output"), 0, NULL);
    json_t *val = json_object_get(out, "value");
    assert_int_equal(json_integer_value(json_object_get(val, "lookup")), 404);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(val, "flaky"), "attempt")), 2);
    json_decref(out);
    json_decref(ex);
    wf_free(wf);
}

static const char fail_wf[] =
    "{\"name\": \"failing\", \"version\": \"1\", \"steps\": {"
    "  \"boom\": {\"type\": \"t_fail\", \"params\": {\"message\": \"quota exceeded\"}}}}";

static int copy_error(void *ud, const struct db_run_info *r)
{
    snprintf((char *)ud, 256, "%s", r->error);
    return 0;
}

static void test_failure_ends_run(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(fail_wf);
    start(f, 1);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "failed");
    struct db_conn *c;
    struct as_err err = {0};
    char error[256] = "";
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_get(c, run, copy_error, error, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_string_equal(error, "step boom failed: quota exceeded");
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "run.failed"), 1);
    const char *last = field(ev, json_array_size(ev) - 1, "data");
    assert_non_null(strstr(last, "step boom failed: quota exceeded"));
    json_decref(ev);
    wf_free(wf);
}

static const char binary_wf[] =
    "{\"name\": \"binary\", \"version\": \"1\", \"steps\": {"
    "  \"boom\": {\"type\": \"t_fail\", \"params\": {\"message\": \"binary\"}}}}";

/* An error holding bytes that are not valid JSON text is still logged as valid JSON. */
static void test_binary_error_in_event(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(binary_wf);
    start(f, 1);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "failed");
    json_t *ev = events(f, run);
    int seen = 0;
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "type")), "step.failed"))
            continue;
        json_t *data = json_loads(json_string_value(json_object_get(e, "data")), 0, NULL);
        assert_non_null(data);
        assert_string_equal(json_string_value(json_object_get(data, "error")),
                            "got \"\xef\xbf\xbd\xef\xbf\xbd\" from \x01peer\n\xe2\x82\xac ok");
        json_decref(data);
        seen++;
    }
    assert_int_equal(seen, 1);
    json_decref(ev);
    audit_ok(f);
    wf_free(wf);
}

/*
 * An event that cannot be recorded (out of memory in step_event, or a
 * json_dumps that fails in the engine) fails the step visibly, with the
 * reason in the step's error, its step.failed event and the run's error;
 * the run takes no success path.  Events that could be recorded are kept.
 */
static void lost_event_fails_step(struct fx *f, const char *how)
{
    char wf_text[512];
    snprintf(wf_text, sizeof wf_text,
             "{\"name\": \"lossy\", \"version\": \"1\", \"steps\": {"
             "  \"write\": {\"type\": \"t_lossy\", \"params\": {\"message\": \"%s\"},"
             "     \"next\": \"after\"},"
             "  \"after\": {\"type\": \"t_ok\"}}}", how);
    struct workflow *wf = load(wf_text);
    int64_t run = submit(f, wf, NULL);
    wait_status(f, run, "failed");

    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 1); /* "after" never ran */
    assert_string_equal(field(ex, 0, "step"), "write");
    assert_string_equal(field(ex, 0, "status"), "failed");
    assert_string_equal(field(ex, 0, "outcome"), "error");
    assert_non_null(strstr(field(ex, 0, "error"), "1 event of this step could not be recorded"));
    json_decref(ex);

    struct db_conn *c;
    struct as_err err = {0};
    char error[256] = "";
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_get(c, run, copy_error, error, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_non_null(strstr(error, "step write failed: 1 event of this step could not be recorded"));

    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "test.kept"), 1);
    assert_int_equal(count_events(ev, "test.lost"), 0);
    assert_int_equal(count_events(ev, "step.succeeded"), 0);
    assert_int_equal(count_events(ev, "step.failed"), 1);
    assert_int_equal(count_events(ev, "run.failed"), 1);
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "type")), "step.failed") == 0)
            assert_non_null(strstr(json_string_value(json_object_get(e, "data")),
                                   "could not be recorded"));
    }
    json_decref(ev);
    audit_ok(f);
    wf_free(wf);
}

static void test_lost_event_oom_fails_step(void **state)
{
    struct fx *f = *state;
    start(f, 1);
    lost_event_fails_step(f, "alloc");
}

static void test_lost_event_dump_fails_step(void **state)
{
    struct fx *f = *state;
    start(f, 1);
    lost_event_fails_step(f, "text");
}

static const char wait_wf[] =
    "{\"name\": \"waiting\", \"version\": \"1\","
    " \"input\": {\"ms\": {\"type\": \"integer\", \"required\": true}}, \"steps\": {"
    "  \"gate\": {\"type\": \"t_wait\", \"params\": {\"ms\": \"${input.ms}\"},"
    "     \"next\": {\"approved\": \"go\", \"expired\": \"late\"}},"
    "  \"go\": {\"type\": \"t_ok\", \"params\": {\"value\": \"${steps.gate.output.resume.by}\"}},"
    "  \"late\": {\"type\": \"t_ok\", \"params\": {\"value\": \"expired\"}}}}";

static int64_t first_exec(struct fx *f, int64_t run)
{
    json_t *ex = execs(f, run);
    int64_t id = ifield(ex, 0, "id");
    json_decref(ex);
    return id;
}

static void test_wait_resume(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(wait_wf);
    start(f, 2);
    int64_t run = submit(f, wf, "{\"ms\": 3600000}");
    poll_status(f, run, "waiting");
    int64_t gate = first_exec(f, run);

    struct db_conn *c;
    json_t *payload = json_pack("{s:s}", "by", "owner@example.com");
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_exec_resume(c, gate, payload, &err), AS_OK);
    assert_int_equal(db_write_end(f->app.db, AS_OK, &err), AS_OK);
    engine_wake(f->e);
    wait_status(f, run, "succeeded");
    /* Too late now. */
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_write_end(f->app.db, db_exec_resume(c, gate, payload, &err), &err),
                     AS_ECONFLICT);
    json_decref(payload);

    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "outcome"), "approved");
    assert_non_null(strstr(field(ex, 0, "output"), "\"token\":\"t-1\"")); /* wait_state kept */
    assert_string_equal(field(ex, 1, "step"), "go");
    assert_non_null(strstr(field(ex, 1, "output"), "owner@example.com"));
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "step.waiting"), 1);
    assert_int_equal(count_events(ev, "step.resumed"), 1);
    json_decref(ev);
    json_decref(ex);
    wf_free(wf);
}

static int exec_running(struct fx *f, int64_t run);

static const char hold_wf[] =
    "{\"name\": \"holding\", \"version\": \"1\", \"steps\": {"
    "  \"gate\": {\"type\": \"t_hold\", \"next\": {\"approved\": \"go\", \"expired\": \"late\"}},"
    "  \"go\": {\"type\": \"t_ok\", \"params\": {\"value\": \"${steps.gate.output.resume.by}\"}},"
    "  \"late\": {\"type\": \"t_ok\", \"params\": {\"value\": \"expired\"}}}}";

/* A resume that arrives while the step is still running (an approver clicks
 * before the approval step has finished mailing) is held, and delivered the
 * moment the step waits: the step runs again at once with ctx->resume. */
static void test_resume_while_running(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(hold_wf);
    pthread_mutex_lock(&hold_lock);
    hold_entered = hold_released = 0;
    pthread_mutex_unlock(&hold_lock);
    start(f, 2);
    int64_t run = submit(f, wf, NULL);
    hold_wait_entered();
    int64_t gate = first_exec(f, run);
    assert_true(exec_running(f, run));

    struct db_conn *c;
    json_t *payload = json_pack("{s:s}", "by", "early@example.com");
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_exec_resume(c, gate, payload, &err), AS_OK);
    assert_int_equal(db_write_end(f->app.db, AS_OK, &err), AS_OK);
    engine_wake(f->e);
    hold_release(); /* now the step returns STEP_WAIT, for an hour */
    wait_status(f, run, "succeeded");

    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "outcome"), "approved");
    assert_non_null(strstr(field(ex, 0, "output"), "\"token\":\"t-2\"")); /* its wait_state */
    assert_int_equal(calls_for(field(ex, 0, "key")), 2);
    assert_string_equal(field(ex, 1, "step"), "go");
    assert_non_null(strstr(field(ex, 1, "output"), "early@example.com"));
    json_decref(ex);
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "step.resume_held"), 1);
    assert_int_equal(count_events(ev, "step.waiting"), 1);
    assert_int_equal(count_events(ev, "step.resumed"), 1);
    json_decref(ev);
    audit_ok(f);

    /* An ended step takes no resume. */
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_write_end(f->app.db, db_exec_resume(c, gate, payload, &err), &err),
                     AS_ECONFLICT);
    json_decref(payload);
    wf_free(wf);
}

static void test_wait_expires(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(wait_wf);
    start(f, 2);
    int64_t run = submit(f, wf, "{\"ms\": 50}");
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "outcome"), "expired");
    assert_string_equal(field(ex, 1, "step"), "late");
    json_decref(ex);
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "step.resumed"), 0);
    json_decref(ev);
    wf_free(wf);
}

static void test_wait_default_expiry_and_cancel(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(wait_wf);
    start(f, 2);
    int64_t run = submit(f, wf, "{\"ms\": 0}");
    poll_status(f, run, "waiting");
    /* No deadline given: the configured default (P7D) applies, so it does not wait forever. */
    struct db_conn *c;
    json_t *ex = execs(f, run);
    json_decref(ex);
    int64_t due = 0;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_exec_next_due(c, "nobody", &due, &err), AS_OK);
    db_read_end(f->app.db, c);
    int64_t week = 7LL * 86400 * 1000;
    assert_true(due > time_now_ms() + week - 60000 && due <= time_now_ms() + week);

    assert_int_equal(engine_cancel_run(&f->app, run, &err), AS_OK);
    wait_status(f, run, "cancelled");
    assert_int_equal(engine_cancel_run(&f->app, run, &err), AS_ECONFLICT);
    assert_int_equal(engine_cancel_run(&f->app, 4242, &err), AS_ENOTFOUND);
    ex = execs(f, run);
    assert_string_equal(field(ex, 0, "status"), "cancelled");
    json_decref(ex);
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_exec_next_due(c, "nobody", &due, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_true(due == INT64_MAX);
    wf_free(wf);
}

static void test_dedupe_and_input(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(wait_wf);
    json_t *in = json_pack("{s:i}", "ms", 3600000);
    struct engine_run_opts o = {.dedupe_key = "user@x", .trigger = "test"};
    int64_t a = 0, b = 0;
    assert_int_equal(engine_submit_run(&f->app, wf, in, &o, &a, &err), AS_OK);
    assert_int_equal(engine_submit_run(&f->app, wf, in, &o, &b, &err), AS_ECONFLICT);
    assert_int_equal(b, a);
    assert_non_null(strstr(err.msg, "user@x"));
    o.dedupe_key = "user@y";
    assert_int_equal(engine_submit_run(&f->app, wf, in, &o, &b, &err), AS_OK);
    assert_true(b > a);
    json_decref(in);

    /* Bad input: a clear error naming the field, nothing stored. */
    json_t *bad = json_pack("{s:s}", "ms", "soon");
    assert_int_equal(engine_submit_run(&f->app, wf, bad, NULL, &b, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "ms"));
    json_decref(bad);
    bad = json_object();
    assert_int_equal(engine_submit_run(&f->app, wf, bad, NULL, &b, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "ms"));
    json_object_set_new(bad, "ms", json_integer(1));
    json_object_set_new(bad, "extra", json_true());
    assert_int_equal(engine_submit_run(&f->app, wf, bad, NULL, &b, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "extra"));
    json_decref(bad);
    struct db_conn *c;
    int64_t open = 0;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_runs_count_open(c, &open, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_int_equal(open, 2);
    wf_free(wf);
}

static void test_batch_and_group_commit(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(linear_wf);
    enum { N = 60 };
    struct engine_run_req reqs[N];
    json_t *inputs[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        inputs[i] = json_pack("{s:s}", "who", "u");
        snprintf(keys[i], sizeof keys[i], "u%d", i % (N - 2)); /* two duplicates */
        reqs[i].input = inputs[i];
        reqs[i].dedupe_key = keys[i];
    }
    int64_t ids[N];
    int created[N];
    size_t n_created = 0;
    assert_int_equal(engine_submit_runs(&f->app, wf, reqs, N, NULL, ids, created, &n_created, &err),
                     AS_OK);
    assert_int_equal(n_created, N - 2);
    assert_int_equal(created[N - 1], 0);
    assert_int_equal(ids[N - 1], ids[1]);
    assert_int_equal(created[N - 3], 1);

    /* One bad input refuses the whole batch. */
    json_t *bad = json_object();
    reqs[5].input = bad;
    int64_t ids2[N];
    assert_int_equal(engine_submit_runs(&f->app, wf, reqs, N, NULL, ids2, NULL, NULL, &err),
                     AS_EINVAL);
    assert_non_null(strstr(err.msg, "run 6 of 60"));
    json_decref(bad);

    start(f, 2);
    for (int i = 0; i < N; i++)
        wait_status(f, ids[i], "succeeded");
    struct engine_stats st;
    engine_get_stats(f->e, &st);
    assert_int_equal(st.steps, 3 * (N - 2));
    assert_true(st.transactions < st.steps); /* results share commits */
    for (int i = 0; i < N; i++)
        json_decref(inputs[i]);
    audit_ok(f);
    wf_free(wf);
}

static const char slow_wf[] =
    "{\"name\": \"slow\", \"version\": \"1\", \"steps\": {"
    "  \"nap\": {\"type\": \"t_slow\", \"params\": {\"ms\": 400}, \"timeout\": \"5s\", \"next\": \"after\"},"
    "  \"after\": {\"type\": \"t_ok\"}}}";

static int exec_running(struct fx *f, int64_t run)
{
    json_t *ex = execs(f, run);
    int r = strcmp(field(ex, 0, "status"), "running") == 0;
    json_decref(ex);
    return r;
}

static void test_graceful_stop(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(slow_wf);
    start(f, 1);
    int64_t run = submit(f, wf, NULL);
    /* Wait until the step is executing (claimed is not enough: it may still be queued). */
    for (int i = 0; i < 1000 && n_calls() == 0; i++)
        tu_sleep_ms(5);
    assert_int_equal(n_calls(), 1);
    assert_true(exec_running(f, run));
    /* Stop while the step runs: it finishes within the grace period, its result
     * and successor are committed, and nothing more is claimed. */
    assert_int_equal(engine_stop(f->e, 5000), AS_OK);
    f->e = NULL;
    assert_null(f->app.engine);
    json_t *ex = execs(f, run);
    assert_int_equal(json_array_size(ex), 2);
    assert_string_equal(field(ex, 0, "status"), "succeeded");
    assert_string_equal(field(ex, 1, "status"), "ready");
    json_decref(ex);
    /* A new engine carries on. */
    start(f, 1);
    wait_status(f, run, "succeeded");
    wf_free(wf);
}

/* Claim the first step of a run as `owner` with lease_until, as a process that then died. */
static void fake_claim(struct fx *f, const char *owner, int64_t lease_until)
{
    struct db_conn *c;
    struct as_err err = {0};
    struct db_claim cl[1];
    size_t n = 0;
    assert_int_equal(db_write_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_exec_due(c, time_now_ms(), owner, 1, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(db_exec_take(c, &cl[0], owner, time_now_ms(), lease_until, &err), AS_OK);
    db_claim_clear(&cl[0]);
    assert_int_equal(db_write_end(f->app.db, AS_OK, &err), AS_OK);
}

static void test_recover_dead_local_process(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(linear_wf);
    int64_t run = submit(f, wf, "{\"who\": \"bob\"}");
    /* A process of this host that no longer exists (pid far above pid_max)
     * held the first step with a lease that would last an hour. */
    char host[128] = "localhost", owner[200];
    gethostname(host, sizeof host - 1);
    snprintf(owner, sizeof owner, "%s/99999999/12345", host);
    fake_claim(f, owner, time_now_ms() + 3600 * 1000);
    start(f, 2);
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_int_equal(ifield(ex, 0, "attempt"), 1); /* the lost claim is not an attempt */
    assert_int_equal(calls_for(field(ex, 0, "key")), 1);
    json_decref(ex);
    json_t *ev = events(f, run);
    assert_int_equal(count_events(ev, "step.recovered"), 1);
    json_decref(ev);
    wf_free(wf);
}

/* A step whose claims keep getting lost (its process dies every time) is failed
 * after MAX_RECOVERIES (engine/engine_internal.h: 20) instead of taking the
 * engine down forever. */
#define MAX_RECOVERIES 20
static void test_poison_step_gives_up(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(linear_wf);
    int64_t run = submit(f, wf, "{\"who\": \"eve\"}");
    char host[128] = "localhost", owner[200];
    gethostname(host, sizeof host - 1);
    snprintf(owner, sizeof owner, "%s/99999998/777", host);
    /* Claimed and lost 20 times already: each claim taken by another
     * process whose lease had run out counts one recovery... */
    for (int i = 0; i < MAX_RECOVERIES; i++) {
        char other[64];
        snprintf(other, sizeof other, "other-host/%d/1", i);
        fake_claim(f, other, time_now_ms() - 1);
    }
    /* ... and the 21st is held by a process of this host that is gone. */
    fake_claim(f, owner, time_now_ms() + 3600 * 1000);
    json_t *held = execs(f, run);
    assert_int_equal(ifield(held, 0, "recoveries"), MAX_RECOVERIES);
    json_decref(held);
    start(f, 1);
    wait_status(f, run, "failed");
    json_t *ex = execs(f, run);
    assert_non_null(strstr(field(ex, 0, "error"), "stopped 21 times"));
    assert_int_equal(calls_for(field(ex, 0, "key")), 0);
    json_decref(ex);
    assert_int_equal(engine_retry_run(&f->app, run, &err), AS_OK);
    wait_status(f, run, "succeeded");
    wf_free(wf);
}

static void test_recover_expired_remote_lease(void **state)
{
    struct fx *f = *state;
    struct workflow *wf = load(linear_wf);
    int64_t live = submit(f, wf, "{\"who\": \"live\"}");
    fake_claim(f, "other-host/1/1", time_now_ms() + 3600 * 1000);
    int64_t dead = submit(f, wf, "{\"who\": \"dead\"}");
    fake_claim(f, "other-host/2/1", time_now_ms() + 300);
    start(f, 2);
    /* Another host's lease is trusted until it ends, then the step is re-run. */
    wait_status(f, dead, "succeeded");
    json_t *ex = execs(f, live);
    assert_int_equal(json_array_size(ex), 1);
    assert_string_equal(field(ex, 0, "status"), "running");
    json_decref(ex);
    wf_free(wf);
}

static void test_dry_run_and_show_version(void **state)
{
    struct fx *f = *state;
    struct as_err err = {0};
    struct workflow *wf = load(linear_wf);
    json_t *in = json_pack("{s:s}", "who", "d");
    struct engine_run_opts o = {.dry_run = 1, .trigger = "test"};
    int64_t run = 0;
    assert_int_equal(engine_submit_run(&f->app, wf, in, &o, &run, &err), AS_OK);
    json_decref(in);
    start(f, 1);
    wait_status(f, run, "succeeded");
    json_t *ex = execs(f, run);
    assert_non_null(strstr(field(ex, 0, "output"), "\"dry_run\":true"));
    json_decref(ex);

    /* A new version of the workflow does not change a run that started with the old one. */
    struct workflow *v2 = load(
        "{\"name\": \"linear\", \"version\": \"2\", \"steps\": {\"only\": {\"type\": \"t_ok\"}}}");
    int64_t r2 = submit(f, v2, NULL);
    wait_status(f, r2, "succeeded");
    ex = execs(f, r2);
    assert_int_equal(json_array_size(ex), 1);
    json_decref(ex);
    struct db_conn *c;
    char *def = NULL;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_workflow_get(c, wf->hash, &def, &err), AS_OK);
    free(def);
    assert_int_equal(db_workflow_get(c, v2->hash, &def, &err), AS_OK);
    free(def);
    db_read_end(f->app.db, c);
    wf_free(v2);
    wf_free(wf);
}

int main(void)
{
    json_set_alloc_funcs(json_test_malloc, free);
    cli_register_types();
    json_object_seed(0);
    step_type_register_extra(test_types);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linear_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exhausted_fails_then_retry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_branch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_ends_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_step_keeps_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_error_in_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_event_oom_fails_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_event_dump_fails_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_default_expiry_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_and_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_dead_local_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_expired_remote_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_step_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_and_show_version, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(calls);
    return rc;
}
