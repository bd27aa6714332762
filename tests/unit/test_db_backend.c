/*
 * test_db_backend.c - how db_open() chooses the backend (db/backend.h): a
 * PostgreSQL URI or libpq key=value string selects PostgreSQL, anything else
 * is a SQLite file; a PostgreSQL string is never taken for a file name
 * (errors name the host and never show a password); SQLite handles
 * dispatch to SQLite.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/backend.h"
#include "db/db.h"
#include "db/db_runs.h"

static void test_selection(void **state)
{
    (void)state;
    static const char *const pg[] = {
        "postgresql://assent@db1:5432/assent",
        "postgresql:///assent",
        "postgres://db1/assent?sslmode=require",
        "host=db1 dbname=assent",
        "  dbname = assent",
        "service=assent",
        "hostaddr=10.0.0.1 port=5433",
    };
    static const char *const sqlite[] = {
        "var/assent.db",
        "/srv/assent/assent.db",
        "assent.db",
        "var/a=b.db", /* '=' but no libpq keyword before it */
        "hosts=x",    /* not a keyword */
        "postgresql.db",
        "./postgresql://x", /* a path, explicitly */
        "",
    };
    for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
        if (db_backend_for(pg[i]) != &db_pg_backend)
            fail_msg("%s: not PostgreSQL", pg[i]);
    }
    for (size_t i = 0; i < sizeof sqlite / sizeof sqlite[0]; i++) {
        if (db_backend_for(sqlite[i]) != &db_sqlite_backend)
            fail_msg("\"%s\": not SQLite", sqlite[i]);
    }
    assert_ptr_equal(db_backend_for(NULL), &db_sqlite_backend);
}

/* Every entry of both tables is set: a missing one would be a crash. */
static void test_tables_complete(void **state)
{
    (void)state;
    const struct db_backend *tables[] = {&db_sqlite_backend, &db_pg_backend};
    for (size_t t = 0; t < 2; t++) {
        assert_non_null(tables[t]->name);
        /* After the name, the table is nothing but function pointers. */
        const unsigned char *p = (const unsigned char *)tables[t] + sizeof(const char *);
        size_t n = (sizeof *tables[t] - sizeof(const char *)) / sizeof(void (*)(void));
        assert_true(n >= 90);
        for (size_t i = 0; i < n; i++) {
            void (*fn)(void);
            memcpy(&fn, p + i * sizeof fn, sizeof fn);
            if (!fn)
                fail_msg("%s: entry %zu of its table is NULL", tables[t]->name, i);
        }
    }
}

/* A PostgreSQL string is never taken for a file: an unreachable server is
 * a database error naming the host and quoting libpq; a bad string or one
 * holding a password is refused before any connection; nothing is created. */
static void test_pg_never_a_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("dbbackend");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    static const struct {
        const char *uri;
        enum as_code rc;
        const char *says[2];
    } cases[] = {
        {"postgresql://assent@127.0.0.1:1/assent", AS_EDB, {"127.0.0.1:1", "Connection refused"}},
        {"host=127.0.0.1 port=1 dbname=assent", AS_EDB, {"127.0.0.1:1", "Connection refused"}},
        {"postgres://assent:hunter2@127.0.0.1:1/assent", AS_EINVAL, {"password file", NULL}},
        {"host=127.0.0.1 password=hunter2", AS_EINVAL, {"password file", NULL}},
        {"postgresql://[::1/assent", AS_EINVAL, {"invalid PostgreSQL connection string", NULL}},
        {"host=x nosuchkeyword=1", AS_EINVAL, {"nosuchkeyword", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct db *db = (struct db *)1;
        struct as_err err = {0};
        enum as_code rc = db_open(cases[i].uri, "NORMAL", &db, &err);
        if (rc != cases[i].rc)
            fail_msg("%s: %d (%s), not %d", cases[i].uri, rc, err.msg, cases[i].rc);
        assert_null(db);
        for (int k = 0; k < 2; k++)
            if (cases[i].says[k] && !strstr(err.msg, cases[i].says[k]))
                fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].uri, err.msg,
                         cases[i].says[k]);
        if (strstr(err.msg, "hunter2"))
            fail_msg("%s: the message shows the password: %s", cases[i].uri, err.msg);
    }
    struct stat st;
    assert_int_equal(stat("postgresql:", &st), -1);
    assert_int_equal(stat("postgres:", &st), -1);
    assert_int_equal(stat("host=127.0.0.1 port=1 dbname=assent", &st), -1);
    assert_int_equal(chdir(cwd), 0);
    tu_rmrf(dir);
    free(dir);
}

/* What messages and `assent config` show of a database string. */
static void test_display_name(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"var/assent.db", "var/assent.db"},
        {"postgresql://assent@db1/assent", "postgresql://assent@db1/assent"},
        {"postgresql://assent:pw@db1:5432/assent", "postgresql://assent:***@db1:5432/assent"},
        {"postgres://u:p%40ss@h/d?sslmode=require", "postgres://u:***@h/d?sslmode=require"},
        {"postgresql://h/d?password=pw&sslmode=require",
         "postgresql://h/d?password=***&sslmode=require"},
        {"host=db1 password=pw dbname=x", "host=db1 password=*** dbname=x"},
        {"host=db1 password='p w\\'x' dbname=x", "host=db1 password=*** dbname=x"},
        {"host=db1 sslpassword=pw", "host=db1 sslpassword=***"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[256];
        db_display_name(cases[i][0], buf, sizeof buf);
        if (strcmp(buf, cases[i][1]))
            fail_msg("%s -> %s, not %s", cases[i][0], buf, cases[i][1]);
    }
    char small[8];
    db_display_name("postgresql://u:pw@host/db", small, sizeof small);
    assert_string_equal(small, "postgre");
}

/* A SQLite database's handles carry the SQLite table. */
static void test_sqlite_handles(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("dbbackend");
    struct db *db = tu_db_open(dir, "t.db");
    assert_ptr_equal(db_ops(db), &db_sqlite_backend);
    struct db_conn *c = NULL;
    struct as_err err = {0};
    assert_int_equal(db_read_begin(db, &c, &err), AS_OK);
    assert_ptr_equal(db_ops(c), &db_sqlite_backend);
    int64_t n = -1;
    assert_int_equal(db_runs_count_open(c, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    db_read_end(db, c);
    assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
    assert_ptr_equal(db_ops(c), &db_sqlite_backend);
    assert_int_equal(db_write_end(db, AS_OK, &err), AS_OK);
    db_close(db);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_tables_complete),
        cmocka_unit_test(test_pg_never_a_file),
        cmocka_unit_test(test_display_name),
        cmocka_unit_test(test_sqlite_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
