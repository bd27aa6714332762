/*
 * test_api_token_pg.c - the REST API's tokens in the PostgreSQL store: the
 * cases of test_api_token.c (included below) on a database of the tests'
 * PostgreSQL server, then four nodes making a token of one name at once
 * (one makes it, the others are refused, one audit event).
 */
#define API_TOKEN_SETUP tu_db_setup_pg
#define API_TOKEN_NO_MAIN
#include "test_api_token.c"

#include <pthread.h>
#include <stdio.h>

struct maker {
    const char *uri;
    pthread_barrier_t *barrier;
    enum as_code rc;
    char msg[256];
};

static void *make_main(void *arg)
{
    struct maker *m = arg;
    struct as_err err = {0};
    struct db *db = NULL;
    char token[API_TOKEN_LEN + 1];
    if (db_open(m->uri, "NORMAL", &db, &err) == AS_OK) {
        pthread_barrier_wait(m->barrier);
        m->rc = api_token_create(db, "ci", API_ROLE_OPERATOR, 0, "node", time_now_ms(), token,
                                 sizeof token, NULL, &err);
    } else {
        pthread_barrier_wait(m->barrier);
        m->rc = AS_EDB;
    }
    snprintf(m->msg, sizeof m->msg, "%s", err.msg);
    db_close(db);
    return NULL;
}

static void test_nodes_make_one_name(void **state)
{
    struct tu_db_fixture *f = *state;
    enum { N = 4 };
    struct maker m[N];
    pthread_t th[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        m[i] = (struct maker){.uri = f->pg_uri, .barrier = &barrier, .rc = AS_EIO};
        assert_int_equal(pthread_create(&th[i], NULL, make_main, &m[i]), 0);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (m[i].rc == AS_OK)
            ok++;
        else if (m[i].rc == AS_ECONFLICT)
            conflict++;
        else
            fail_msg("node %d: %s", i, m[i].msg);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, N - 1);
    char *n = tu_pg_query(f->pg_uri, "SELECT count(*) FROM api_tokens");
    assert_string_equal(n, "1");
    free(n);
    n = tu_pg_query(f->pg_uri, "SELECT count(*) FROM events WHERE type = 'token.created'");
    assert_string_equal(n, "1");
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        API_TOKEN_CASES,
        cmocka_unit_test_setup_teardown(test_nodes_make_one_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
