/*
 * sqlite_tamper.c - a test of the SQLite store, not of Assent through its
 * interface: it changes the database file behind Assent's back with raw SQL
 * (edits an event, deletes one, cuts the newest) and checks that the real
 * `assent audit verify` notices each change, and that the chain verifies
 * again once the record is put back.  Tampering is specific to a backend's
 * storage, so this is the one integration test that writes SQL; another
 * backend brings its own.  (tests/unit/test_db_runs.c is the SQLite store's
 * unit test.)
 *
 * usage: sqlite_tamper [TEST_NAME]
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/cli_env.h"
#include "tests/integration/http_echo_server.h"

/* The shared fixture (cli_env.h), under this file's names. */
static int setup(void **state)
{
    return cli_env_setup(state, "sqlite-tamper");
}

static int teardown(void **state)
{
    return cli_env_teardown(state);
}



/* Change the database file behind Assent's back (no assent process is running). */
static void raw_sql(struct cli_env *e, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(e->db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

static void test_audit_verify_tampering(void **state)
{
    struct cli_env *e = *state;
    char *wf = cli_env_post_wf(e);
    char *out = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "run", wf, "--wait", NULL), 0);
    free(out);
    out = NULL;
    assert_int_equal(cli_env_assent(e, &out, NULL, "audit", "verify", "--json", NULL), 0);
    json_t *rep = json_loads(out, 0, NULL);
    free(out);
    out = NULL;
    assert_true(json_is_true(json_object_get(rep, "intact")));
    int64_t n = json_integer_value(json_object_get(rep, "events"));
    assert_true(n >= 5);
    char anchor[100];
    snprintf(anchor, sizeof anchor, "%" PRId64 ":%s",
             (int64_t)json_integer_value(json_object_get(rep, "head_id")),
             json_string_value(json_object_get(rep, "head_hash")));
    json_decref(rep);

    /* Someone edits a record... */
    raw_sql(e, "CREATE TABLE orig AS SELECT * FROM events WHERE id = 3; "
               "UPDATE events SET data = '{\"forged\":true}' WHERE id = 3");
    assert_int_equal(cli_env_assent(e, &out, NULL, "audit", "verify", NULL), 1);
    assert_non_null(strstr(out, "TAMPERED at event 3"));
    free(out);
    out = NULL;
    raw_sql(e, "UPDATE events SET data = (SELECT data FROM orig) WHERE id = 3; DROP TABLE orig");
    assert_int_equal(cli_env_assent(e, NULL, NULL, "audit", "verify", NULL), 0);
    /* ... deletes a record ... */
    raw_sql(e, "CREATE TABLE keep AS SELECT * FROM events WHERE id = 2; "
               "DELETE FROM events WHERE id = 2");
    assert_int_equal(cli_env_assent(e, &out, NULL, "audit", "verify", "--json", NULL), 1);
    rep = json_loads(out, 0, NULL);
    free(out);
    out = NULL;
    assert_int_equal(json_integer_value(json_object_get(rep, "bad_id")), 3);
    assert_non_null(strstr(json_string_value(json_object_get(rep, "problem")), "deleted"));
    json_decref(rep);
    raw_sql(e, "INSERT INTO events SELECT * FROM keep; DROP TABLE keep");
    /* ... or cuts the newest ones: only the anchor tells. */
    raw_sql(e, "DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)");
    assert_int_equal(cli_env_assent(e, NULL, NULL, "audit", "verify", NULL), 0);
    assert_int_equal(cli_env_assent(e, &out, NULL, "audit", "verify", "--anchor", anchor, NULL), 1);
    assert_non_null(strstr(out, "missing"));
    free(out);
    free(wf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_verify_tampering, setup, teardown),
    };
    if (tu_select_test("sqlite_tamper", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 2;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
