/*
 * crash_engine.c - kill -9 the engine at many random moments and check that
 * nothing is lost and no completed step runs again.
 *
 * A five-step workflow (http POST with retries -> condition -> delay -> http
 * POST -> log) runs against a local HTTP server (http_echo_server.c) that
 * records every request's Idempotency-Key, answers slowly (so kills land
 * mid-request) and now and then with 503.  In
 * each round the test starts a couple of runs with `assent run`, then starts
 * the engine (`assent worker`, or `assent run --wait` every third round) and
 * kills it with SIGKILL after a random 20-400 ms: mid-step, mid-commit,
 * between steps, during start-up.  Finally `assent worker --until-done`
 * drains everything.  Then, exactly:
 *   - every run succeeded, and every run has exactly one execution of each
 *     of its five steps, each succeeded, with one step.succeeded event;
 *   - the server saw exactly one distinct Idempotency-Key per http step
 *     execution, each belonging to a completed step, and every repeat of a
 *     key (the allowed at-least-once redelivery) is explained by a retry or
 *     a recovered claim of that execution in the event log;
 *   - some kills interrupted claimed steps (step.recovered events), which ran
 *     again with the same key;
 *   - `assent audit verify` finds the event chain intact.
 * ASSENT_CRASH_SEED reproduces a sequence; ASSENT_CRASH_ROUNDS changes its length.
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/http_echo_server.h"
#include "cli/cli.h"

static const char workflow[] =
    "{\"name\": \"crashy\", \"version\": \"1\",\n"
    " \"input\": {\"url\": {\"type\": \"string\", \"required\": true},\n"
    "           \"n\": {\"type\": \"integer\", \"required\": true}},\n"
    " \"start\": \"post\",\n"
    " \"steps\": {\n"
    "  \"post\": {\"type\": \"http\", \"params\": {\"method\": \"POST\", \"url\": \"${input.url}\",\n"
    "            \"body\": {\"n\": \"${input.n}\", \"step\": \"post\"}},\n"
    "            \"retry\": {\"attempts\": 30, \"backoff\": \"20ms\", \"max_backoff\": \"100ms\"},\n"
    "            \"timeout\": \"3s\", \"next\": \"check\"},\n"
    "  \"check\": {\"type\": \"condition\", \"params\": {\"expr\": \"steps.post.output.status == 200\"},\n"
    "             \"next\": {\"true\": \"pause\", \"false\": \"bad\"}},\n"
    "  \"pause\": {\"type\": \"delay\", \"params\": {\"duration\": \"120ms\"}, \"next\": \"confirm\"},\n"
    "  \"confirm\": {\"type\": \"http\", \"params\": {\"method\": \"POST\", \"url\": \"${input.url}\",\n"
    "            \"body\": {\"n\": \"${input.n}\", \"step\": \"confirm\",\n"
    "                     \"after\": \"${steps.post.output.body.n}\"}},\n"
    "            \"retry\": {\"attempts\": 30, \"backoff\": \"20ms\", \"max_backoff\": \"100ms\"},\n"
    "            \"timeout\": \"3s\", \"next\": \"note\"},\n"
    "  \"note\": {\"type\": \"log\", \"params\": {\"message\": \"run ${input.n} confirmed\"}},\n"
    "  \"bad\": {\"type\": \"fail\", \"params\": {\"message\": \"unexpected answer\"}}}}\n";

#define N_STEPS 5

static int failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return v;
}

/* Index of key in keys[0..n), or -1. */
static long find_key(char **keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return (long)i;
    return -1;
}

int main(void)
{
    cli_register_types();
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *s = getenv("ASSENT_CRASH_SEED");
    if (s)
        seed = (unsigned)strtoul(s, NULL, 10);
    int rounds = 36;
    if ((s = getenv("ASSENT_CRASH_ROUNDS")))
        rounds = (int)strtol(s, NULL, 10);
    srand(seed);
    signal(SIGPIPE, SIG_IGN); /* the server answers clients that were killed */
    printf("crash test: seed %u, %d rounds (ASSENT_CRASH_SEED=%u reproduces)\n", seed, rounds, seed);

    char *dir = tu_tmpdir("crash");
    char *wf_path = tu_path(dir, "crashy.json");
    char *db_path = tu_path(dir, "crash.db");
    char *log_path = tu_path(dir, "engine.log");
    if (tu_write_file(wf_path, workflow) != 0) {
        fprintf(stderr, "cannot write %s\n", wf_path);
        return 1;
    }
    struct echo_server *srv = echo_start();
    if (!srv) {
        fprintf(stderr, "cannot start the HTTP server\n");
        return 1;
    }
    char *url = echo_url(srv, "/hook");
    char env_db[4200];
    snprintf(env_db, sizeof env_db, "ASSENT_DB=%s", db_path);
    char *env[] = {env_db, "ASSENT_LOG_LEVEL=warn", "ASSENT_WORKERS=2",
                   "ASSENT_LEASE_SECONDS=2", "ASSENT_SHUTDOWN_GRACE_SECONDS=5", NULL};
    char *bin = (char *)tu_assent_bin();

    int submitted = 0, kills = 0, faults = 0, n = 0;
    for (int r = 0; r < rounds; r++) {
        /* Two new runs per round, so kills land on runs at every stage. */
        for (int k = 0; k < 2; k++) {
            char input[512];
            snprintf(input, sizeof input, "{\"url\": \"%s\", \"n\": %d}", url, ++n);
            char *argv[] = {bin, "run", wf_path, "--input", input, NULL};
            char *out = NULL, *errout = NULL;
            int code = tu_run(argv, env, 30000, &out, &errout);
            CHECK(code == 0, "assent run exited %d: %s", code, errout ? errout : "");
            submitted += code == 0;
            free(out);
            free(errout);
        }
        if (rand() % 3 == 0) {
            struct echo_fault f = {.status = 503, .retry_after = "0"};
            echo_push(srv, &f);
            faults++;
        }
        /* Slow answers keep steps in flight, so that kills hit them mid-request. */
        for (int k = 0; k < 3; k++) {
            struct echo_fault f = {.delay_ms = 50 + rand() % 250};
            echo_push(srv, &f);
        }
        pid_t pid;
        if (r % 3 == 2) {
            char input[512];
            snprintf(input, sizeof input, "{\"url\": \"%s\", \"n\": %d}", url, ++n);
            char *argv[] = {bin, "run", wf_path, "--input", input, "--wait", NULL};
            pid = tu_spawn(argv, env, log_path);
        } else {
            char *argv[] = {bin, "worker", NULL};
            pid = tu_spawn(argv, env, log_path);
        }
        CHECK(pid > 0, "cannot start assent");
        tu_sleep_ms(20 + rand() % 380);
        int status = tu_stop(pid, SIGKILL);
        /* It may have finished on its own (run --wait of a quick run). */
        kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }

    /* Drain: the next start recovers every claim the dead processes held. */
    char *drain[] = {bin, "worker", "--until-done", NULL};
    char *out = NULL, *errout = NULL;
    int code = tu_run(drain, env, 120000, &out, &errout);
    CHECK(code == 0, "assent worker --until-done exited %d: %s", code, errout ? errout : "");
    free(out);
    free(errout);

    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", db_path);
        return 1;
    }
    int64_t runs = query_int(db, "SELECT COUNT(*) FROM runs");
    int64_t not_ok = query_int(db, "SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'");
    int64_t execs = query_int(db, "SELECT COUNT(*) FROM step_execs");
    int64_t execs_ok = query_int(db, "SELECT COUNT(*) FROM step_execs WHERE status = 'succeeded'");
    int64_t dup_steps = query_int(db, "SELECT COUNT(*) FROM (SELECT run_id, step FROM step_execs "
                                      "GROUP BY run_id, step HAVING COUNT(*) > 1)");
    int64_t incomplete = query_int(db, "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM "
                                       "step_execs e WHERE e.run_id = r.id) <> 5");
    int64_t succeeded_events = query_int(db, "SELECT COUNT(*) FROM events WHERE type = 'step.succeeded'");
    int64_t twice = query_int(db, "SELECT COUNT(*) FROM (SELECT exec_id FROM events WHERE type = "
                                  "'step.succeeded' GROUP BY exec_id HAVING COUNT(*) > 1)");
    int64_t recovered = query_int(db, "SELECT COUNT(*) FROM events WHERE type = 'step.recovered'");
    int64_t bad_branch = query_int(db, "SELECT COUNT(*) FROM step_execs WHERE step = 'bad'");

    CHECK(runs >= submitted && runs <= n, "runs %" PRId64 ", submitted %d..%d", runs, submitted, n);
    CHECK(not_ok == 0, "%" PRId64 " runs did not succeed", not_ok);
    CHECK(execs == runs * N_STEPS, "%" PRId64 " executions for %" PRId64 " runs", execs, runs);
    CHECK(execs_ok == execs, "%" PRId64 " of %" PRId64 " executions succeeded", execs_ok, execs);
    CHECK(dup_steps == 0, "%" PRId64 " steps executed twice in one run", dup_steps);
    CHECK(incomplete == 0, "%" PRId64 " runs without exactly 5 executions", incomplete);
    CHECK(bad_branch == 0, "%" PRId64 " runs took the false branch", bad_branch);
    CHECK(succeeded_events == execs, "%" PRId64 " step.succeeded events for %" PRId64 " executions",
          succeeded_events, execs);
    CHECK(twice == 0, "%" PRId64 " executions succeeded twice in the event log", twice);
    /* The point of the exercise: some kills did interrupt claimed steps. */
    CHECK(recovered > 0, "no kill interrupted a claimed step (%d kills)", kills);

    /* The http steps' keys, against what the server received. */
    size_t n_keys = 0;
    char **keys = calloc((size_t)(runs > 0 ? runs : 1) * 2, sizeof *keys);
    sqlite3_stmt *st = NULL;
    /* With each key, the repeats the log explains: retries and recovered claims. */
    int64_t *explained = calloc((size_t)(runs > 0 ? runs : 1) * 2, sizeof *explained);
    if (sqlite3_prepare_v2(db, "SELECT e.idempotency_key, e.status, (SELECT COUNT(*) FROM events v "
                               "WHERE v.exec_id = e.id AND v.type IN ('step.retry', "
                               "'step.recovered')) FROM step_execs e WHERE e.step IN "
                               "('post','confirm')", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW && n_keys < (size_t)runs * 2) {
            CHECK(strcmp((const char *)sqlite3_column_text(st, 1), "succeeded") == 0,
                  "http step %s not succeeded", sqlite3_column_text(st, 0));
            explained[n_keys] = sqlite3_column_int64(st, 2);
            keys[n_keys++] = strdup((const char *)sqlite3_column_text(st, 0));
        }
    }
    sqlite3_finalize(st);
    CHECK((int64_t)n_keys == runs * 2, "%zu http executions for %" PRId64 " runs", n_keys, runs);

    json_t *reqs = echo_requests(srv);
    size_t *seen = calloc(n_keys ? n_keys : 1, sizeof *seen);
    size_t i, n_req = json_array_size(reqs), distinct = 0, foreign = 0;
    json_t *req;
    json_array_foreach(reqs, i, req) {
        const char *k = json_string_value(json_object_get(req, "idempotency_key"));
        long at = k ? find_key(keys, n_keys, k) : -1;
        if (at < 0) {
            foreign++;
            fprintf(stderr, "request with key %s belongs to no completed http step\n",
                    k ? k : "(none)");
            continue;
        }
        distinct += seen[at]++ == 0;
    }
    size_t never = 0, unexplained = 0;
    for (size_t j = 0; j < n_keys; j++) {
        never += seen[j] == 0;
        /* At least once, and every repeat explained by a retry or a recovery. */
        if (seen[j] > 1 + (size_t)explained[j]) {
            unexplained++;
            fprintf(stderr, "key %s: %zu requests, but only %" PRId64 " retries/recoveries\n",
                    keys[j], seen[j], explained[j]);
        }
    }
    size_t repeats = n_req - distinct - foreign;
    CHECK(foreign == 0, "%zu requests with an unknown key", foreign);
    CHECK(never == 0, "%zu completed http steps never reached the server", never);
    CHECK(distinct == n_keys, "%zu distinct keys for %zu http executions", distinct, n_keys);
    CHECK(unexplained == 0, "%zu keys delivered more often than retried or recovered",
          unexplained);

    char *audit[] = {bin, "audit", "verify", NULL};
    char *aout = NULL;
    code = tu_run(audit, env, 30000, &aout, NULL);
    CHECK(code == 0, "audit verify exited %d: %s", code, aout ? aout : "");
    free(aout);

    printf("crash test: %d rounds, %d kills, %" PRId64 " runs x %d steps all succeeded once; "
           "%" PRId64 " claims recovered from killed processes; %zu http requests for %zu keys "
           "(%zu repeats: %d answered 503, the rest redelivered after a kill)\n",
           rounds, kills, runs, N_STEPS, recovered, n_req, n_keys, repeats, faults);
    if (failures) {
        char *tail = tu_read_file(log_path);
        if (tail) {
            size_t len = strlen(tail);
            fprintf(stderr, "--- engine log (end) ---\n%s\n", len > 6000 ? tail + len - 6000 : tail);
            free(tail);
        }
    }

    json_decref(reqs);
    free(seen);
    free(explained);
    for (size_t j = 0; j < n_keys; j++)
        free(keys[j]);
    free(keys);
    sqlite3_close(db);
    free(url);
    echo_stop(srv);
    if (!failures)
        tu_rmrf(dir);
    else
        fprintf(stderr, "kept %s for inspection\n", dir);
    free(wf_path);
    free(db_path);
    free(log_path);
    free(dir);
    printf("crash test: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
