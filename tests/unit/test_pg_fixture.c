/*
 * test_pg_fixture.c - the PostgreSQL server the tests run against
 * (scripts/pg.sh, the ctest fixture "pg", tests/testutil_pg.c): reached
 * over TCP on 127.0.0.1 with the password from a 0600 password file (not in
 * the URI), as a role that is not a superuser and owns its database, and a
 * fresh database per test that is dropped again.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_server_and_role(void **state)
{
    (void)state;
    const char *uri = tu_pg_uri();
    assert_non_null(strstr(uri, "127.0.0.1"));
    /* postgresql://user@host: no "user:password@". */
    const char *at = strchr(uri, '@');
    if (at && memchr(uri + 13, ':', (size_t)(at - (uri + 13))))
        fail_msg("the URI carries a password: %s", uri);
    const char *passfile = getenv("PGPASSFILE");
    if (passfile && !getenv("ASSENT_TEST_PG_URI")) {
        struct stat st;
        assert_int_equal(stat(passfile, &st), 0);
        assert_int_equal(st.st_mode & 077, 0);
    }
    char *super = tu_pg_query(uri, "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user");
    assert_string_equal(super, "false");
    free(super);
    char *owner = tu_pg_query(uri, "SELECT (pg_get_userbyid(datdba) = current_user)::text "
                                   "FROM pg_database WHERE datname = current_database()");
    assert_string_equal(owner, "true");
    free(owner);
}

static void test_database_per_test(void **state)
{
    (void)state;
    char *a = tu_pg_db_new("fixture");
    char *b = tu_pg_db_new("fixture");
    assert_string_not_equal(a, b);
    tu_pg_exec(a, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    tu_pg_exec(b, "CREATE TABLE t (x int)");
    char *n = tu_pg_query(a, "SELECT count(*) FROM t");
    assert_string_equal(n, "1");
    free(n);
    n = tu_pg_query(b, "SELECT count(*) FROM t");
    assert_string_equal(n, "0");
    free(n);
    char name[128];
    char *db = tu_pg_query(a, "SELECT current_database()");
    snprintf(name, sizeof name, "SELECT count(*) FROM pg_database WHERE datname = '%s'", db);
    free(db);
    tu_pg_db_drop(a);
    tu_pg_db_drop(b);
    n = tu_pg_query(tu_pg_uri(), name);
    assert_string_equal(n, "0");
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_and_role),
        cmocka_unit_test(test_database_per_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
