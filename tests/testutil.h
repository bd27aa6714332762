/*
 * testutil.h - helpers shared by Assent's tests: temporary directories, free
 * ports, child processes (the real `assent` binary, the tenant simulator, an
 * SMTP server), and HTTP requests through libcurl.
 *
 * Tests include <cmocka.h> after this header.  Every helper cleans up what
 * it makes when asked (tu_rmrf, tu_stop), so leak checkers stay quiet.
 */
#ifndef ASSENT_TESTUTIL_H
#define ASSENT_TESTUTIL_H

#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "engine/app.h"

/* A new directory under $TMPDIR (or /tmp); caller frees the string and removes it with tu_rmrf. */
char *tu_tmpdir(const char *tag);
void tu_rmrf(const char *path);

/* path joined: dir + "/" + name, malloc'd. */
char *tu_path(const char *dir, const char *name);

/* Write/read a whole file.  tu_read_file returns malloc'd NUL-terminated text or NULL. */
int tu_write_file(const char *path, const char *text);
char *tu_read_file(const char *path);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tu_free_port(void);

/*
 * Hang guards (tu_wait_port, tu_wait_exit, tu_run) wait timeout_ms times
 * tu_timeout_scale(): ASSENT_TEST_TIMEOUT_SCALE, a positive integer (1 when
 * unset or invalid), which also scales the ctest TIMEOUTs
 * (tests/timeout_scale.cmake).  They return as soon as the awaited thing
 * happens, so a larger scale only delays a failure.
 */
int tu_timeout_scale(void);

/* Wait until 127.0.0.1:port accepts connections; 0 on success, -1 after timeout_ms (scaled). */
int tu_wait_port(int port, int timeout_ms);

/* The assent binary under test ($ASSENT_BIN) and the source tree ($ASSENT_SOURCE_DIR). */
const char *tu_assent_bin(void);
const char *tu_source_dir(void);
const char *tu_build_dir(void);

/*
 * Start argv[0] (a path) with extra environment entries "K=V" (NULL-terminated
 * list, may be NULL) added to the current environment; stdout and stderr go
 * to log_path (appended) when not NULL.  Returns the pid, or -1.
 */
pid_t tu_spawn(char *const argv[], char *const extra_env[], const char *log_path);

/* Send sig and wait for the child; returns its wait status. */
int tu_stop(pid_t pid, int sig);

/* Wait up to timeout_ms (scaled) for the child to exit; returns exit code, or -1 on timeout (child left running). */
int tu_wait_exit(pid_t pid, int timeout_ms);

/*
 * Run a command to completion (timeout_ms scaled, killed after), capturing stdout and
 * stderr into malloc'd strings (either out pointer may be NULL).  Returns the
 * exit code, 128+signal when killed by a signal, -1 on failure to start.
 */
int tu_run(char *const argv[], char *const extra_env[], int timeout_ms, char **out, char **errout);

/* What the headless browser tests need (chromium, chromedriver, python3's
 * selenium): NULL when all is there, else what is missing, for a
 * "skipped: ..." line. */
const char *tu_browser_missing(void);

struct tu_http_resp {
    long status;
    char *body;      /* malloc'd, NUL-terminated */
    size_t body_len;
    char *headers;   /* malloc'd raw header block */
};

/*
 * One HTTP request through libcurl.  headers: NULL-terminated "Name: value"
 * list or NULL; body may be NULL.  Returns 0 when a response arrived.
 */
int tu_http(const char *method, const char *url, char *const headers[], const char *body,
            struct tu_http_resp *resp);
void tu_http_free(struct tu_http_resp *resp);

/* Value of header `name` (case-insensitive) in resp->headers, malloc'd, or NULL. */
char *tu_http_header(const struct tu_http_resp *resp, const char *name);

/*
 * For test programs that ctest runs once per test ("prog NAME"): with a
 * name in argv[1], run only that test.  A name that matches no test is
 * refused (returns -1 after printing why), since a filter that selects
 * nothing would pass vacuously.  Returns 0 otherwise.
 */
int tu_select_test(const char *prog, const struct CMUnitTest *tests, size_t n, int argc,
                   char **argv);

/* Sleep ms milliseconds. */
void tu_sleep_ms(int ms);

/*
 * A check that counts its failure and goes on, for the crash tests that
 * report every broken property of a run at the end: prints where and why
 * to stderr and adds one to tu_failures.
 */
extern int tu_failures;
#define TU_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            tu_failures++;                                                                     \
        }                                                                                      \
    } while (0)

/* ---- databases ---- */

struct db;

/* Open (creating and migrating) the database dir/name with synchronous=NORMAL;
 * fails the test on error.  Caller closes it with db_close(). */
struct db *tu_db_open(const char *dir, const char *name);

/* A temporary directory with an app on a fresh database and the default
 * configuration, for tests that need both (name: the directory's prefix).
 * NULL on failure; free with tu_app_fixture_free(). */
struct tu_app_fixture {
    char *dir;
    struct app app;
    char *pg_uri; /* tu_app_fixture_new_pg: the database's URI (NULL on SQLite) */
};
struct tu_app_fixture *tu_app_fixture_new(const char *name);
void tu_app_fixture_free(struct tu_app_fixture *f);

/* The same with the app's database on the PostgreSQL test server (a new
 * one, tu_pg_db_new; dropped by tu_app_fixture_free). */
struct tu_app_fixture *tu_app_fixture_new_pg(const char *name);

/* A temporary directory with a fresh database in it (assent.db), the
 * minimal workflow stored (wf_id: tu_db_workflow(db, "aaaa")) and a counter
 * for tests that make keys.  cmocka setup/teardown: *state is the fixture. */
struct tu_db_fixture {
    char *dir;
    struct db *db;
    int64_t wf_id;
    int n_keys;
    char *pg_uri; /* tu_db_setup_pg: the database's URI (NULL on SQLite) */
};
int tu_db_setup(void **state, const char *name);
int tu_db_teardown(void **state);

/* The same on a new database of the PostgreSQL test server (tu_pg_db_new;
 * dropped by tu_db_teardown), so that a store test runs unchanged on both
 * backends; dir is still made, for files a test writes beside it. */
int tu_db_setup_pg(void **state, const char *name);

/* Store the minimal workflow {"name":"wf"} (version "1", the given hash) in
 * its own write transaction and return its id; fails the test on error. */
int64_t tu_db_workflow(struct db *db, const char *hash);

/* ---- the PostgreSQL test server (tests/testutil_pg.c) ---- */

/*
 * 1 when ASSENT_TEST_DB=pg: integration tests that can run on either
 * backend (web_harness.c, it_m365.c) then put their databases on the
 * PostgreSQL test server instead of in SQLite files.
 */
int tu_test_on_pg(void);

/*
 * The URI of the PostgreSQL server for tests: $ASSENT_TEST_PG_URI when set
 * (with its password in $PGPASSFILE or ~/.pgpass), else the server the
 * ctest fixture "pg" started (scripts/pg.sh start $ASSENT_TEST_PG_DIR),
 * whose password file this then puts in PGPASSFILE for the process and its
 * children.  Fails the test, saying why (PostgreSQL not installed, fixture
 * not run), when there is none.  Borrowed; valid until exit.
 */
const char *tu_pg_uri(void);

/*
 * A new, empty database on that server, owned by the server's role, named
 * after tag; returns its URI, malloc'd.  tu_pg_db_drop() drops it (ending
 * connections still open to it) and frees the URI.  Fails the test on error.
 */
char *tu_pg_db_new(const char *tag);
void tu_pg_db_drop(char *uri);

/* Run sql (one or more statements) on the database at uri on a connection
 * of its own; fails the test on error. */
void tu_pg_exec(const char *uri, const char *sql);

/*
 * The first column of the first row of a query on the database at uri, on
 * a connection of its own, malloc'd ("" for NULL, NULL when no row); fails
 * the test on error.
 */
char *tu_pg_query(const char *uri, const char *sql);

#endif
