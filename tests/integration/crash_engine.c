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
 * With ASSENT_TEST_DB=pg (ctest pg.crash) the store is a PostgreSQL database
 * and each round runs three nodes (`assent worker` / `run --wait` processes
 * sharing it), each killed with SIGKILL at its own moment, now and then one
 * stopped gracefully instead: the same checks, across nodes.
 * ASSENT_CRASH_SEED reproduces a sequence; ASSENT_CRASH_ROUNDS changes its length.
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db_runs.h"
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
#define MAX_NODES 3


/*
 * What the store holds after the drain, read through its interface (runs,
 * their step executions, the event log) and tallied for the checks.
 */
struct step_count {
    char step[16];
    int n;
};

struct tally {
    int64_t runs, not_ok, execs, execs_ok, dup_steps, incomplete, bad_branch;
    int64_t succeeded_events, twice, recovered;
    int64_t *run_ids;
    size_t n_run_ids, cap_run_ids;
    /* The executions of the http steps (post, confirm): key, status, and the
     * repeats the log explains (its step.retry and step.recovered events). */
    char **keys;
    int64_t *key_exec, *explained;
    size_t n_keys, cap_keys;
    int64_t *succeeded_of; /* step.succeeded events per execution id */
    int64_t *explained_of; /* step.retry and step.recovered events per execution id */
    int64_t max_exec_id;
    /* the run being read */
    struct step_count steps[4 * N_STEPS];
    int n_steps, n_run_execs;
    int oom;
};

static int tally_run(void *ud, const struct db_run_info *r)
{
    struct tally *t = ud;
    if (t->n_run_ids == t->cap_run_ids) {
        size_t cap = t->cap_run_ids ? 2 * t->cap_run_ids : 64;
        int64_t *v = realloc(t->run_ids, cap * sizeof *v);
        if (!v) {
            t->oom = 1;
            return 1;
        }
        t->run_ids = v;
        t->cap_run_ids = cap;
    }
    t->run_ids[t->n_run_ids++] = r->id;
    t->runs++;
    t->not_ok += strcmp(r->status, "succeeded") != 0;
    return 0;
}

static int tally_exec(void *ud, const struct db_exec_info *x)
{
    struct tally *t = ud;
    int ok = strcmp(x->status, "succeeded") == 0;
    t->execs++;
    t->execs_ok += ok;
    t->bad_branch += strcmp(x->step, "bad") == 0;
    t->n_run_execs++;
    if (x->id > t->max_exec_id)
        t->max_exec_id = x->id;
    int i = 0;
    while (i < t->n_steps && strcmp(t->steps[i].step, x->step) != 0)
        i++;
    if (i == t->n_steps && t->n_steps < (int)(sizeof t->steps / sizeof t->steps[0])) {
        snprintf(t->steps[i].step, sizeof t->steps[i].step, "%s", x->step);
        t->steps[i].n = 0;
        t->n_steps++;
    }
    if (i < t->n_steps)
        t->steps[i].n++;
    if (strcmp(x->step, "post") == 0 || strcmp(x->step, "confirm") == 0) {
        TU_CHECK(ok, "http step %s not succeeded", x->idempotency_key);
        if (t->n_keys == t->cap_keys) {
            size_t cap = t->cap_keys ? 2 * t->cap_keys : 64;
            char **k = realloc(t->keys, cap * sizeof *k);
            if (k)
                t->keys = k;
            int64_t *ids = k ? realloc(t->key_exec, cap * sizeof *ids) : NULL;
            if (!ids) {
                t->oom = 1;
                return 1;
            }
            t->key_exec = ids;
            t->cap_keys = cap;
        }
        char *key = strdup(x->idempotency_key);
        if (!key) {
            t->oom = 1;
            return 1;
        }
        t->key_exec[t->n_keys] = x->id;
        t->keys[t->n_keys++] = key;
    }
    return 0;
}

static int tally_event(void *ud, const struct db_event_info *ev)
{
    struct tally *t = ud;
    int succeeded = strcmp(ev->type, "step.succeeded") == 0;
    int recovered = strcmp(ev->type, "step.recovered") == 0;
    int retry = strcmp(ev->type, "step.retry") == 0;
    t->succeeded_events += succeeded;
    t->recovered += recovered;
    if (ev->exec_id > 0 && ev->exec_id <= t->max_exec_id) {
        t->succeeded_of[ev->exec_id] += succeeded;
        t->explained_of[ev->exec_id] += recovered || retry;
    }
    return 0;
}

/* Read the store at db_path into t; 0, or -1 with the reason printed. */
static int tally_store(const char *db_path, struct tally *t)
{
    struct as_err err = {0};
    struct db *db = NULL;
    struct db_conn *c = NULL;
    enum as_code rc = db_open(db_path, "NORMAL", &db, &err);
    if (!rc)
        rc = db_read_begin(db, &c, &err);
    /* Every run, newest first, a page at a time. */
    struct db_run_filter f = {.limit = 500};
    while (!rc) {
        size_t before = t->n_run_ids;
        rc = db_runs_list(c, &f, tally_run, t, &err);
        if (rc || t->oom || t->n_run_ids == before)
            break;
        f.before_id = t->run_ids[t->n_run_ids - 1];
    }
    for (size_t i = 0; !rc && !t->oom && i < t->n_run_ids; i++) {
        t->n_steps = t->n_run_execs = 0;
        rc = db_run_execs(c, t->run_ids[i], tally_exec, t, &err);
        for (int k = 0; k < t->n_steps; k++)
            t->dup_steps += t->steps[k].n > 1;
        t->incomplete += t->n_run_execs != N_STEPS;
    }
    if (!rc && !t->oom) {
        t->succeeded_of = calloc((size_t)t->max_exec_id + 1, sizeof *t->succeeded_of);
        t->explained_of = calloc((size_t)t->max_exec_id + 1, sizeof *t->explained_of);
        t->explained = calloc(t->n_keys + 1, sizeof *t->explained);
        t->oom = !t->succeeded_of || !t->explained_of || !t->explained;
    }
    if (!rc && !t->oom)
        rc = db_run_events(c, 0, tally_event, t, &err);
    if (!rc && !t->oom) {
        for (int64_t id = 1; id <= t->max_exec_id; id++)
            t->twice += t->succeeded_of[id] > 1;
        for (size_t j = 0; j < t->n_keys; j++)
            t->explained[j] = t->explained_of[t->key_exec[j]];
    }
    db_read_end(db, c);
    db_close(db);
    if (rc || t->oom) {
        fprintf(stderr, "cannot read %s: %s\n", db_path, rc ? err.msg : "out of memory");
        return -1;
    }
    return 0;
}

static void tally_free(struct tally *t)
{
    for (size_t j = 0; j < t->n_keys; j++)
        free(t->keys[j]);
    free(t->keys);
    free(t->key_exec);
    free(t->explained);
    free(t->succeeded_of);
    free(t->explained_of);
    free(t->run_ids);
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
    /* On PostgreSQL (ASSENT_TEST_DB=pg) three nodes share the database. */
    int pg = tu_test_on_pg(), nodes = pg ? 3 : 1;
    char *db_path = pg ? tu_pg_db_new("crash") : tu_path(dir, "crash.db");
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
            TU_CHECK(code == 0, "assent run exited %d: %s", code, errout ? errout : "");
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
        pid_t pids[MAX_NODES];
        for (int k = 0; k < nodes; k++) {
            if (r % 3 == 2 && k == 0) {
                char input[512];
                snprintf(input, sizeof input, "{\"url\": \"%s\", \"n\": %d}", url, ++n);
                char *argv[] = {bin, "run", wf_path, "--input", input, "--wait", NULL};
                pids[k] = tu_spawn(argv, env, log_path);
            } else {
                char *argv[] = {bin, "worker", NULL};
                pids[k] = tu_spawn(argv, env, log_path);
            }
            TU_CHECK(pids[k] > 0, "cannot start assent");
        }
        /* Each node dies at its own moment; with several nodes one of them
         * now and then stops gracefully instead (its claims handed back). */
        for (int k = 0; k < nodes; k++) {
            /* Each node gets the whole range: under a sanitizer a start
             * takes long enough that shorter lives would never claim. */
            tu_sleep_ms(20 + rand() % 380);
            int graceful = nodes > 1 && rand() % 4 == 0;
            int status = tu_stop(pids[k], graceful ? SIGTERM : SIGKILL);
            /* It may have finished on its own (run --wait of a quick run). */
            kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        }
    }

    /* Drain: the next start recovers every claim the dead processes held. */
    char *drain[] = {bin, "worker", "--until-done", NULL};
    char *out = NULL, *errout = NULL;
    int code = tu_run(drain, env, 120000, &out, &errout);
    TU_CHECK(code == 0, "assent worker --until-done exited %d: %s", code, errout ? errout : "");
    free(out);
    free(errout);

    struct tally t = {0};
    if (tally_store(db_path, &t) != 0)
        return 1;
    int64_t runs = t.runs, execs = t.execs;
    TU_CHECK(runs >= submitted && runs <= n, "runs %" PRId64 ", submitted %d..%d", runs, submitted, n);
    TU_CHECK(t.not_ok == 0, "%" PRId64 " runs did not succeed", t.not_ok);
    TU_CHECK(execs == runs * N_STEPS, "%" PRId64 " executions for %" PRId64 " runs", execs, runs);
    TU_CHECK(t.execs_ok == execs, "%" PRId64 " of %" PRId64 " executions succeeded", t.execs_ok,
          execs);
    TU_CHECK(t.dup_steps == 0, "%" PRId64 " steps executed twice in one run", t.dup_steps);
    TU_CHECK(t.incomplete == 0, "%" PRId64 " runs without exactly 5 executions", t.incomplete);
    TU_CHECK(t.bad_branch == 0, "%" PRId64 " runs took the false branch", t.bad_branch);
    TU_CHECK(t.succeeded_events == execs,
          "%" PRId64 " step.succeeded events for %" PRId64 " executions", t.succeeded_events,
          execs);
    TU_CHECK(t.twice == 0, "%" PRId64 " executions succeeded twice in the event log", t.twice);
    /* The point of the exercise: some kills did interrupt claimed steps. */
    TU_CHECK(t.recovered > 0, "no kill interrupted a claimed step (%d kills)", kills);

    /* The http steps' keys, against what the server received; with each key,
     * the repeats the log explains: retries and recovered claims. */
    size_t n_keys = t.n_keys;
    char **keys = t.keys;
    int64_t *explained = t.explained;
    TU_CHECK((int64_t)n_keys == runs * 2, "%zu http executions for %" PRId64 " runs", n_keys, runs);

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
    TU_CHECK(foreign == 0, "%zu requests with an unknown key", foreign);
    TU_CHECK(never == 0, "%zu completed http steps never reached the server", never);
    TU_CHECK(distinct == n_keys, "%zu distinct keys for %zu http executions", distinct, n_keys);
    TU_CHECK(unexplained == 0, "%zu keys delivered more often than retried or recovered",
          unexplained);

    char *audit[] = {bin, "audit", "verify", NULL};
    char *aout = NULL;
    code = tu_run(audit, env, 30000, &aout, NULL);
    TU_CHECK(code == 0, "audit verify exited %d: %s", code, aout ? aout : "");
    free(aout);

    printf("crash test: %d node%s on %s, %d rounds, %d kills, %" PRId64 " runs x %d steps all succeeded once; "
           "%" PRId64 " claims recovered from killed processes; %zu http requests for %zu keys "
           "(%zu repeats: %d answered 503, the rest redelivered after a kill)\n",
           nodes, nodes == 1 ? "" : "s", pg ? "PostgreSQL" : "SQLite", rounds, kills, runs,
           N_STEPS, t.recovered, n_req, n_keys, repeats, faults);
    if (tu_failures) {
        char *tail = tu_read_file(log_path);
        if (tail) {
            size_t len = strlen(tail);
            fprintf(stderr, "--- engine log (end) ---\n%s\n", len > 6000 ? tail + len - 6000 : tail);
            free(tail);
        }
    }

    json_decref(reqs);
    free(seen);
    tally_free(&t);
    free(url);
    echo_stop(srv);
    if (!tu_failures)
        tu_rmrf(dir);
    else
        fprintf(stderr, "kept %s for inspection\n", dir);
    free(wf_path);
    if (pg && !tu_failures)
        tu_pg_db_drop(db_path); /* frees it */
    else
        free(db_path);
    free(log_path);
    free(dir);
    printf("crash test: %s\n", tu_failures ? "FAILED" : "passed");
    return tu_failures ? 1 : 0;
}
