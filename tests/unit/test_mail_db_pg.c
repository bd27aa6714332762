/*
 * test_mail_db_pg.c - the idempotency record of emails in the PostgreSQL
 * store: the cases of test_mail_db.c (included below) on a database of the
 * tests' PostgreSQL server, then several nodes claiming one key at once
 * (one sends, the others find it busy) and taking over from a dead sender
 * at once (one re-sends).
 */
#define MAIL_DB_SETUP tu_db_setup_pg
#define MAIL_DB_NO_MAIN
#include "test_mail_db.c"

#include <pthread.h>
#include <stdio.h>

/* Every owner lives but the one named "dead". */
static int alive_unless_dead(const char *owner, void *ud)
{
    (void)ud;
    return strcmp(owner, "dead") != 0;
}

struct claimer {
    struct db *db;
    char owner[16];
    pthread_barrier_t *barrier;
    enum as_code rc;
    enum db_mail_action action;
};

static void *claim_main(void *arg)
{
    struct claimer *c = arg;
    struct as_err err = {0};
    struct db_mail_claim claim;
    pthread_barrier_wait(c->barrier);
    c->rc = db_mail_claim(c->db, "k", "<id@x>", "smtp", 1000, c->owner, 1000, 1000000, 2,
                          alive_unless_dead, NULL, &claim, &err);
    c->action = claim.action;
    db_mail_claim_clear(&claim);
    return NULL;
}

/* n nodes claim key "k" at once; counts[action] receives how many got each. */
static void race(struct tu_db_fixture *f, int counts[5])
{
    enum { N = 6 };
    struct claimer c[N];
    pthread_t th[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < 5; i++)
        counts[i] = 0;
    for (int i = 0; i < N; i++) {
        struct as_err err = {0};
        c[i] = (struct claimer){.barrier = &barrier, .rc = AS_EIO};
        snprintf(c[i].owner, sizeof c[i].owner, "node-%d", i);
        if (db_open(f->pg_uri, "NORMAL", &c[i].db, &err) != AS_OK)
            fail_msg("db_open: %s", err.msg);
        assert_int_equal(pthread_create(&th[i], NULL, claim_main, &c[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].rc, AS_OK);
        counts[c[i].action]++;
        db_close(c[i].db);
    }
    pthread_barrier_destroy(&barrier);
}

static void test_nodes_claim_once(void **state)
{
    struct tu_db_fixture *f = *state;
    int counts[5];
    race(f, counts);
    assert_int_equal(counts[DB_MAIL_SEND], 1);
    assert_int_equal(counts[DB_MAIL_BUSY], 5);
    char *n = tu_pg_query(f->pg_uri, "SELECT attempts || ':' || resends FROM mail_sends");
    assert_string_equal(n, "1:0");
    free(n);
    /* The sender died: one node re-sends, the others see the new sender. */
    tu_pg_exec(f->pg_uri, "UPDATE mail_sends SET owner = 'dead'");
    race(f, counts);
    assert_int_equal(counts[DB_MAIL_RESEND], 1);
    assert_int_equal(counts[DB_MAIL_BUSY], 5);
    n = tu_pg_query(f->pg_uri, "SELECT attempts || ':' || resends FROM mail_sends");
    assert_string_equal(n, "2:1");
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        MAIL_DB_CASES,
        cmocka_unit_test_setup_teardown(test_nodes_claim_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
