/*
 * bench_engine.c - step throughput of the durable executor, in process.
 *
 * Throughput mode (default): a 4-step workflow whose steps do no I/O
 * (log -> condition -> log -> log) is submitted N times (batches of
 * --batch runs per transaction), then the engine is started with
 * --workers threads and timed until every run has ended.  Prints steps/s,
 * runs/s, steps per write transaction, peak RSS, and with --raw RATE the
 * ratio of steps/s to that raw SQLite commit rate (bench_sqlite).
 *
 * Waiting mode (--waiting N): N runs of a one-step workflow that parks in a
 * 7-day delay are submitted while the engine runs; once all are parked the
 * process's resident memory is sampled while they wait, to show that a
 * wait costs a row in SQLite and no memory.
 *
 *   bench_engine [--dir DIR] [--sync NORMAL|FULL] [--runs N] [--workers N]
 *                [--batch N] [--raw RATE] [--waiting N] [--db URI] [--nodes K] [--json]
 *
 * --nodes K (with --db URI): the submitted runs are executed by K nodes, K
 * `assent worker --until-done` processes sharing the database (the
 * assent binary beside the bench directory), timed from their start until
 * the last one exits: the throughput of several nodes on one database.
 *
 * Each invocation measures one configuration in a fresh database, so peak
 * RSS belongs to it; bench/run.sh runs the set.  --db URI runs it on that
 * PostgreSQL database instead of a SQLite file in DIR (it must be empty:
 * e.g. scripts/pg.sh run --durable -- bench_engine --db
 * "$ASSENT_TEST_PG_URI"); --sync then does not apply.
 */
#include <dirent.h>
#include <limits.h>
#include <spawn.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "bench/bench_util.h"
#include "base/config.h"
#include "engine/engine.h"
#include "base/log.h"
#include "engine/workflow.h"
#include "cli/cli.h"

static const char *const four_steps =
    "{\"name\": \"bench-4\", \"version\": \"1\","
    " \"start\": \"hello\", \"input\": {\"n\": {\"type\": \"integer\", \"required\": true}},"
    " \"steps\": {"
    "  \"hello\": {\"type\": \"log\", \"params\": {\"message\": \"run ${input.n} starts\"}, \"next\": \"check\"},"
    "  \"check\": {\"type\": \"condition\", \"params\": {\"expr\": \"input.n >= 0\"},"
    "             \"next\": {\"true\": \"even\", \"false\": \"even\"}},"
    "  \"even\": {\"type\": \"log\", \"params\": {\"message\": \"checked ${input.n}\"}, \"next\": \"bye\"},"
    "  \"bye\": {\"type\": \"log\", \"params\": {\"message\": \"run ${input.n} done\"}}"
    " }}";

static const char *const one_wait =
    "{\"name\": \"bench-wait\", \"version\": \"1\","
    " \"steps\": {\"nap\": {\"type\": \"delay\", \"params\": {\"duration\": \"P7D\"}}}}";

extern char **environ;
static double now_s(void);

/* Run the submitted runs with `nodes` assent worker processes; wall seconds. */
static double run_nodes(const char *uri, int nodes, long workers)
{
    char exe[PATH_MAX], bin[PATH_MAX + 16], env_db[4200], w[16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "bench_engine: cannot find my own path\n");
        exit(1);
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(bin, sizeof bin, "%s/../assent", exe);
    snprintf(env_db, sizeof env_db, "ASSENT_DB=%s", uri);
    snprintf(w, sizeof w, "%ld", workers);
    /* The environment plus the database and a quiet log. */
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **envp = calloc(ne + 3, sizeof *envp);
    for (size_t i = 0; i < ne; i++)
        envp[i] = environ[i];
    envp[ne] = env_db;
    envp[ne + 1] = "ASSENT_LOG_LEVEL=error";
    char *argv[] = {bin, "worker", "--until-done", "--workers", w, NULL};
    pid_t pids[64];
    double t0 = now_s();
    for (int k = 0; k < nodes; k++)
        if (posix_spawn(&pids[k], bin, NULL, NULL, argv, envp) != 0) {
            fprintf(stderr, "bench_engine: cannot start %s\n", bin);
            exit(1);
        }
    for (int k = 0; k < nodes; k++) {
        int st = 0;
        waitpid(pids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_engine: node %d ended badly (status %d)\n", k, st);
            exit(1);
        }
    }
    free(envp);
    return now_s() - t0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Current resident set in KiB (VmRSS), or -1. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void die(const char *what, const struct as_err *err)
{
    fprintf(stderr, "bench_engine: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static int count_cb(void *ud, const struct db_run_info *run)
{
    (void)run;
    (*(int64_t *)ud)++;
    return 0;
}

/* Runs in `status` (at most limit are counted). */
static int64_t count_runs(struct app *app, const char *status, int limit)
{
    struct db_conn *conn;
    struct as_err err = {0};
    int64_t n = 0;
    if (db_read_begin(app->db, &conn, &err) != AS_OK)
        die("read", &err);
    struct db_run_filter f = {.status = status, .limit = limit};
    if (db_runs_list(conn, &f, count_cb, &n, &err) != AS_OK)
        die("list runs", &err);
    db_read_end(app->db, conn);
    return n;
}

static void submit(struct app *app, const struct workflow *wf, size_t total, size_t batch)
{
    struct engine_run_req *reqs = calloc(batch, sizeof *reqs);
    json_t **inputs = calloc(batch, sizeof *inputs);
    int64_t *ids = calloc(batch, sizeof *ids);
    struct as_err err = {0};
    if (!reqs || !inputs || !ids)
        die("out of memory", NULL);
    for (size_t done = 0; done < total;) {
        size_t n = total - done < batch ? total - done : batch;
        for (size_t i = 0; i < n; i++) {
            inputs[i] = json_pack("{s:I}", "n", (json_int_t)(done + i));
            reqs[i].input = inputs[i];
        }
        if (engine_submit_runs(app, wf, reqs, n, NULL, ids, NULL, NULL, &err) != AS_OK)
            die("submit", &err);
        for (size_t i = 0; i < n; i++)
            json_decref(inputs[i]);
        done += n;
    }
    free(reqs);
    free(inputs);
    free(ids);
}

int main(int argc, char **argv)
{
    cli_register_types();
    const char *dir = ".", *sync = "NORMAL", *uri = NULL;
    long runs = 10000, workers = 2, batch = 1000, waiting = 0, nodes = 0;
    double raw = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--dir") == 0)
            dir = v;
        else if (strcmp(a, "--sync") == 0)
            sync = v;
        else if (strcmp(a, "--runs") == 0)
            runs = strtol(v, NULL, 10);
        else if (strcmp(a, "--workers") == 0)
            workers = strtol(v, NULL, 10);
        else if (strcmp(a, "--batch") == 0)
            batch = strtol(v, NULL, 10);
        else if (strcmp(a, "--raw") == 0)
            raw = strtod(v, NULL);
        else if (strcmp(a, "--waiting") == 0)
            waiting = strtol(v, NULL, 10);
        else if (strcmp(a, "--db") == 0)
            uri = v;
        else if (strcmp(a, "--nodes") == 0)
            nodes = strtol(v, NULL, 10);
        else
            goto usage;
    }
    if (runs < 1 || workers < 1 || workers > 256 || batch < 1 || batch > 100000 || waiting < 0 ||
        nodes < 0 || nodes > 64 || (nodes && (!uri || waiting)) ||
        (strcmp(sync, "NORMAL") && strcmp(sync, "FULL")))
        goto usage;

    json_object_seed(0);
    /* The log steps log at info; the benchmark measures the engine, not stderr. */
    log_init(LOG_LVL_WARN, LOG_FMT_TEXT);

    struct as_err err = {0};
    struct app app = {0};
    const char *store = uri ? "PostgreSQL" : "SQLite";
    struct workflow *wf = NULL;
    struct engine *engine = NULL;
    char path[1024];
    if (uri)
        snprintf(path, sizeof path, "%s", uri);
    else
        snprintf(path, sizeof path, "%s/bench-engine-%s-%ld.db", dir, sync, (long)getpid());
    app.cfg = config_defaults();
    if (!app.cfg || config_set(app.cfg, "synchronous", sync, &err) != AS_OK ||
        config_set(app.cfg, "db", path, &err) != AS_OK)
        die("config", &err);
    if (db_open(path, sync, &app.db, &err) != AS_OK)
        die("open database", &err);
    if (wf_load_string(waiting ? one_wait : four_steps, "bench", &wf, NULL, &err) != AS_OK)
        die("workflow", &err);

    if (nodes) {
        submit(&app, wf, (size_t)runs, (size_t)batch);
        double secs = run_nodes(uri, (int)nodes, workers);
        int64_t ok = count_runs(&app, "succeeded", (int)runs + 1);
        double steps_s = 4.0 * (double)runs / secs;
        if (json)
            printf("{\"store\": \"%s\", \"nodes\": %ld, \"workers_per_node\": %ld, \"runs\": %ld, "
                   "\"succeeded\": %" PRId64 ", \"seconds\": %.3f, \"steps_per_s\": %.0f}\n",
                   store, nodes, workers, runs, ok, secs, steps_s);
        else
            printf("engine on %s, %ld runs x 4 steps, %ld node%s x %ld workers: %.0f steps/s "
                   "(%.2f s, %" PRId64 " succeeded)\n",
                   store, runs, nodes, nodes == 1 ? "" : "s", workers, steps_s, secs, ok);
        if (ok != runs) {
            fprintf(stderr, "bench_engine: only %" PRId64 " of %ld runs succeeded\n", ok, runs);
            return 1;
        }
    } else if (!waiting) {
        double s0 = now_s();
        submit(&app, wf, (size_t)runs, (size_t)batch);
        double submit_s = now_s() - s0;

        struct engine_stats st = {0};
        double t0 = now_s();
        if (engine_start(&app, (int)workers, &engine, &err) != AS_OK)
            die("engine start", &err);
        while (1) {
            engine_get_stats(engine, &st);
            if (st.runs_ended >= (uint64_t)runs)
                break;
            sleep_ms(2);
        }
        double secs = now_s() - t0;
        /* CPU per step of the dispatcher (the one writer: the serial part) and of
         * the workers: steadier than rates on a shared machine. */
        int64_t disp_ns = threads_cpu_ns("assent-dispatch");
        int64_t work_ns = threads_cpu_ns("assent-worker");
        double disp_us = disp_ns >= 0 && st.steps ? (double)disp_ns / 1e3 / (double)st.steps : -1;
        double work_us = work_ns >= 0 && st.steps ? (double)work_ns / 1e3 / (double)st.steps : -1;
        if (engine_stop(engine, 10000) != AS_OK)
            die("engine stop", NULL);
        int64_t ok = count_runs(&app, "succeeded", (int)runs + 1);
        double steps_s = (double)st.steps / secs, runs_s = (double)runs / secs;
        if (json) {
            printf("{\"store\": \"%s\", \"sync\": \"%s\", \"runs\": %ld, \"workers\": %ld, "
                   "\"succeeded\": %" PRId64
                   ", \"steps\": %" PRIu64 ", \"seconds\": %.3f, \"steps_per_s\": %.0f, "
                   "\"runs_per_s\": %.0f, \"transactions\": %" PRIu64 ", \"steps_per_tx\": %.1f, "
                   "\"submit_runs_per_s\": %.0f, \"peak_rss_kib\": %ld, "
                   "\"dispatcher_cpu_us_per_step\": %.2f, \"worker_cpu_us_per_step\": %.2f",
                   store, sync, runs, workers, ok, st.steps, secs, steps_s, runs_s, st.transactions,
                   st.transactions ? (double)st.steps / (double)st.transactions : 0.0,
                   (double)runs / submit_s, peak_rss_kib(), disp_us, work_us);
            if (raw > 0)
                printf(", \"ratio_to_raw_normal\": %.2f", steps_s / raw);
            printf("}\n");
        } else {
            printf("engine on %s%s%s, %ld runs x 4 steps, %ld workers\n", store,
                   uri ? "" : ", synchronous=", uri ? "" : sync, runs, workers);
            printf("  runs succeeded      %" PRId64 " of %ld\n", ok, runs);
            printf("  steps               %" PRIu64 " in %.2f s\n", st.steps, secs);
            printf("  steps/s             %.0f\n", steps_s);
            printf("  runs/s              %.0f\n", runs_s);
            printf("  write transactions  %" PRIu64 " (%.1f steps each)\n", st.transactions,
                   st.transactions ? (double)st.steps / (double)st.transactions : 0.0);
            printf("  submit              %.0f runs/s (batches of %ld)\n", (double)runs / submit_s,
                   batch);
            printf("  peak RSS            %.1f MiB\n", (double)peak_rss_kib() / 1024.0);
            if (disp_us >= 0 && work_us >= 0)
                printf("  CPU per step        dispatcher %.2f us, workers %.2f us\n", disp_us,
                       work_us);
            if (raw > 0)
                printf("  engine / raw NORMAL single-insert commit rate: %.2f (raw %.0f rows/s)\n",
                       steps_s / raw, raw);
        }
        if (ok != runs) {
            fprintf(stderr, "bench_engine: only %" PRId64 " of %ld runs succeeded\n", ok, runs);
            return 1;
        }
    } else {
        if (engine_start(&app, (int)workers, &engine, &err) != AS_OK)
            die("engine start", &err);
        sleep_ms(300);
        long rss0 = rss_kib();
        double t0 = now_s();
        struct engine_stats st = {0};
        for (long done = 0; done < waiting; done += batch) {
            long n = waiting - done < batch ? waiting - done : batch;
            submit(&app, wf, (size_t)n, (size_t)n);
        }
        while (1) {
            engine_get_stats(engine, &st);
            if (st.steps >= (uint64_t)waiting)
                break;
            sleep_ms(20);
        }
        double secs = now_s() - t0;
        sleep_ms(1000);
        long rss1 = rss_kib();
        sleep_ms(5000);
        long rss2 = rss_kib();
        int64_t parked = count_runs(&app, "waiting", (int)waiting + 1);
        if (engine_stop(engine, 10000) != AS_OK)
            die("engine stop", NULL);
        /* A restart over the parked runs: what a fresh process holds while they wait. */
        engine = NULL;
        if (engine_start(&app, (int)workers, &engine, &err) != AS_OK)
            die("engine restart", &err);
        sleep_ms(3000);
        long rss3 = rss_kib();
        if (engine_stop(engine, 10000) != AS_OK)
            die("engine stop", NULL);
        if (json)
            printf("{\"sync\": \"%s\", \"waiting\": %ld, \"parked\": %" PRId64
                   ", \"submit_and_park_s\": %.1f, \"rss_before_kib\": %ld, "
                   "\"rss_parked_kib\": %ld, \"rss_parked_5s_later_kib\": %ld, "
                   "\"rss_after_restart_kib\": %ld, \"peak_rss_kib\": %ld}\n",
                   sync, waiting, parked, secs, rss0, rss1, rss2, rss3, peak_rss_kib());
        else {
            printf("waiting runs, synchronous=%s: %ld runs parked in a 7-day delay\n", sync,
                   waiting);
            printf("  parked (status waiting)  %" PRId64 " (submitted and parked in %.1f s)\n",
                   parked, secs);
            printf("  RSS before               %.1f MiB\n", rss0 / 1024.0);
            printf("  RSS all parked           %.1f MiB\n", rss1 / 1024.0);
            printf("  RSS 5 s later            %.1f MiB\n", rss2 / 1024.0);
            printf("  RSS after a restart      %.1f MiB\n", rss3 / 1024.0);
            printf("  peak RSS (submitting)    %.1f MiB\n", peak_rss_kib() / 1024.0);
        }
    }
    wf_free(wf);
    db_close(app.db);
    config_free(app.cfg);
    if (!uri && !getenv("BENCH_KEEP_DB")) {
        char side[1100];
        unlink(path);
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
    return 0;
usage:
    fprintf(stderr, "usage: bench_engine [--dir DIR] [--sync NORMAL|FULL] [--runs N] [--workers N]\n"
                    "                    [--batch N] [--raw RATE] [--waiting N] [--db URI] [--nodes K]\n"
                    "                    [--json]\n");
    return 2;
}
