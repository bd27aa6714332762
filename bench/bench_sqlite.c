/*
 * bench_sqlite.c - the raw SQLite commit rate of this machine, the ceiling
 * the engine's step throughput is compared with (bench/README.md).
 *
 * A fresh WAL database per case, one table, ~200-byte rows inserted through
 * one prepared statement: one row per transaction at synchronous=NORMAL and
 * FULL, and 100 rows per transaction for reference.  Each case runs for a
 * fixed time (or row count), repeated; the median rows/s is printed.
 *
 * This is the one place outside db/ that speaks SQL: it measures SQLite
 * itself, not Assent.
 *
 *   bench_sqlite [--dir DIR] [--seconds S] [--repeat N] [--json]
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int check(int rc, sqlite3 *db, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "bench_sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

/* One measurement: rows/s, or a negative value on error. */
static double run_case(const char *dir, const char *sync, int batch, double seconds)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/bench-%s-%d-%ld.db", dir, sync, batch, (long)getpid());
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    double rate = -1;
    char pragma[128];
    char payload[181];
    memset(payload, 'p', sizeof payload - 1);
    payload[sizeof payload - 1] = '\0';

    if (check(sqlite3_open(path, &db), db, "open"))
        goto out;
    snprintf(pragma, sizeof pragma, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;", sync);
    if (check(sqlite3_exec(db, pragma, NULL, NULL, NULL), db, "pragma") ||
        check(sqlite3_exec(db,
                           "CREATE TABLE t (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, "
                           "kind TEXT NOT NULL, payload TEXT NOT NULL)",
                           NULL, NULL, NULL),
              db, "create") ||
        check(sqlite3_prepare_v3(db, "INSERT INTO t (ts, kind, payload) VALUES (?, ?, ?)", -1,
                                 SQLITE_PREPARE_PERSISTENT, &ins, NULL),
              db, "prepare"))
        goto out;

    long rows = 0;
    double t0 = now_s(), t1 = t0;
    while (t1 - t0 < seconds) {
        if (check(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), db, "begin"))
            goto out;
        for (int i = 0; i < batch; i++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)rows);
            sqlite3_bind_text(ins, 2, "step.succeeded", -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 3, payload, -1, SQLITE_STATIC);
            if (check(sqlite3_step(ins), db, "insert"))
                goto out;
            sqlite3_reset(ins);
            rows++;
        }
        if (check(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), db, "commit"))
            goto out;
        t1 = now_s();
    }
    rate = (double)rows / (t1 - t0);
out:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    unlink(path);
    char side[1100];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *dir = ".";
    double seconds = 2.0;
    int repeat = 3, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
            fprintf(stderr, "usage: bench_sqlite [--dir DIR] [--seconds S] [--repeat N] [--json]\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > 20 || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "bench_sqlite: --repeat 1..20, --seconds (0, 60]\n");
        return 2;
    }
    static const struct {
        const char *sync;
        int batch;
        const char *name;
    } cases[] = {
        {"NORMAL", 1, "normal_single"},
        {"FULL", 1, "full_single"},
        {"NORMAL", 100, "normal_batch100"},
        {"FULL", 100, "full_batch100"},
    };
    if (json)
        printf("{\"sqlite\": \"%s\", \"seconds\": %.1f, \"repeat\": %d", sqlite3_libversion(),
               seconds, repeat);
    else
        printf("SQLite %s, WAL, ~200-byte rows, median of %d x %.1f s\n", sqlite3_libversion(),
               repeat, seconds);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double r[20];
        for (int i = 0; i < repeat; i++) {
            r[i] = run_case(dir, cases[c].sync, cases[c].batch, seconds);
            if (r[i] < 0)
                return 1;
        }
        qsort(r, (size_t)repeat, sizeof r[0], cmp_double);
        double median = r[repeat / 2];
        if (json)
            printf(", \"%s_rows_per_s\": %.0f", cases[c].name, median);
        else
            printf("  synchronous=%-6s %3d row(s)/tx: %9.0f rows/s\n", cases[c].sync,
                   cases[c].batch, median);
        fflush(stdout);
    }
    if (json)
        printf("}\n");
    return 0;
}
