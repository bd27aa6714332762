/*
 * test_db_pg.c - the PostgreSQL store (db/postgres/) against the tests'
 * private server (scripts/pg.sh; each test on a database of its own):
 * opening and migrating (once, also when several open at once), the
 * password file, and operations not ported yet.
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_kpi.h"
#include "db/db_runs.h"
#include "db/db_wal.h"
#include "base/timeutil.h"

struct fixture {
    char *uri;
    struct db *db;
};

static struct db *open_or_fail(const char *uri)
{
    struct db *db = NULL;
    struct as_err err = {0};
    if (db_open(uri, "NORMAL", &db, &err) != AS_OK)
        fail_msg("db_open %s: %s", uri, err.msg);
    return db;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->uri = tu_pg_db_new("dbpg");
    f->db = open_or_fail(f->uri);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    tu_pg_db_drop(f->uri);
    free(f);
    return 0;
}

static void test_open_migrates_once(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(db_schema_version(f->db), 8);
    assert_string_equal(db_path(f->db), f->uri);
    /* Reopening applies nothing twice. */
    struct db *again = open_or_fail(f->uri);
    assert_int_equal(db_schema_version(again), 8);
    db_close(again);
    /* PostgreSQL checkpoints itself: no checkpointer to start. */
    struct db_checkpointer *ck = (struct db_checkpointer *)1;
    struct as_err err = {0};
    assert_int_equal(db_checkpointer_start(f->db, &ck, &err), AS_OK);
    assert_null(ck);
    db_checkpointer_stop(ck);
    /* Tables in the role's own schema, no extension. */
    char *n = tu_pg_query(f->uri, "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'");
    assert_string_equal(n, "0");
    free(n);
}

struct opener {
    const char *uri;
    enum as_code rc;
    int version;
    char msg[256];
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct db *db = NULL;
    struct as_err err = {0};
    o->rc = db_open(o->uri, "NORMAL", &db, &err);
    snprintf(o->msg, sizeof o->msg, "%s", err.msg);
    if (!o->rc)
        o->version = db_schema_version(db);
    db_close(db);
    return NULL;
}

/* Nodes that start at once on an empty database: the migrations run once,
 * under the advisory lock, and every node opens. */
static void test_concurrent_first_open(void **state)
{
    (void)state;
    char *uri = tu_pg_db_new("dbpgopen");
    struct opener o[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        o[i] = (struct opener){.uri = uri};
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (o[i].rc)
            fail_msg("open %d: %s", i, o[i].msg);
        assert_int_equal(o[i].version, 8);
    }
    char *n = tu_pg_query(uri, "SELECT count(*) FROM meta WHERE key = 'instance_id'");
    assert_string_equal(n, "1");
    free(n);
    tu_pg_db_drop(uri);
}

/* The password from db_password_file (0600), not from a libpq file; a file
 * others can read is refused. */
static void test_password_file(void **state)
{
    struct fixture *f = *state;
    const char *pgpass = getenv("PGPASSFILE");
    if (!pgpass || getenv("ASSENT_TEST_PG_URI"))
        skip(); /* a server of the developer's own: its password is not ours to read */
    char *line = tu_read_file(pgpass);
    assert_non_null(line);
    line[strcspn(line, "\r\n")] = '\0';
    const char *pw = strrchr(line, ':');
    assert_non_null(pw);
    char *dir = tu_tmpdir("dbpgpw");
    char *file = tu_path(dir, "pw");
    assert_int_equal(tu_write_file(file, pw + 1), 0);
    assert_int_equal(chmod(file, 0600), 0);

    char *saved = strdup(pgpass);
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    struct db *db = NULL;
    struct as_err err = {0};
    assert_int_equal(db_open(f->uri, "NORMAL", &db, &err), AS_EDB); /* no password at all */
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    struct db_options opts = {.synchronous = "NORMAL", .password_file = file};
    if (db_open_options(f->uri, &opts, &db, &err) != AS_OK)
        fail_msg("with db_password_file: %s", err.msg);
    assert_int_equal(db_schema_version(db), 8);
    db_close(db);
    assert_int_equal(chmod(file, 0644), 0);
    assert_int_equal(db_open_options(f->uri, &opts, &db, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "db_password_file"));
    assert_null(strstr(err.msg, pw + 1));
    setenv("PGPASSFILE", saved, 1);
    free(saved);
    tu_rmrf(dir);
    free(file);
    free(dir);
    free(line);
}

/* An operation not ported yet says so, and the store stays usable. */
static void test_unported_operation(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    json_t *list = NULL;
    assert_int_equal(db_kpi_list(f->db, &list, &err), AS_EINVAL);
    assert_null(list);
    assert_string_equal(err.msg, "not supported on PostgreSQL yet: db_kpi_list");
    assert_int_equal(db_schema_version(f->db), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrates_once, setup, teardown),
        cmocka_unit_test(test_concurrent_first_open),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unported_operation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
