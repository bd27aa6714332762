/*
 * test_kpi_pg.c - KPIs, exceptions and schedules in the PostgreSQL store:
 * every case of test_kpi.c (included below; the app's database on the
 * tests' PostgreSQL server), then what several nodes do at once: two
 * schedulers claiming one fire time (one fires), a step recording its
 * exception on two nodes (one exception, one audit event), and two nodes
 * storing a KPI of one name (one stores it, the other is refused).
 */
#define KPI_APP_FIXTURE tu_app_fixture_new_pg
#define KPI_NO_MAIN
#include "test_kpi.c"

#include <pthread.h>
#include <stdio.h>

#include "db/db_events.h"

enum { NODES = 4 };

/* What each node does, in a thread, after the others are ready too. */
struct node {
    struct db *db;
    pthread_barrier_t *barrier;
    int64_t kpi_id, prev, scheduled_for;
    int created;
    int64_t id;
    enum as_code rc;
    char msg[256];
};

static void nodes_open(struct tu_app_fixture *f, struct node n[NODES], pthread_barrier_t *b)
{
    pthread_barrier_init(b, NULL, NODES);
    for (int i = 0; i < NODES; i++) {
        struct as_err err = {0};
        n[i] = (struct node){.barrier = b, .rc = AS_EIO};
        if (db_open(f->pg_uri, "NORMAL", &n[i].db, &err) != AS_OK)
            fail_msg("db_open: %s", err.msg);
    }
}

static void nodes_run(struct node n[NODES], pthread_barrier_t *b, void *(*fn)(void *))
{
    pthread_t th[NODES];
    for (int i = 0; i < NODES; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, &n[i]), 0);
    for (int i = 0; i < NODES; i++) {
        pthread_join(th[i], NULL);
        db_close(n[i].db);
    }
    pthread_barrier_destroy(b);
}

static void *claim_main(void *arg)
{
    struct node *n = arg;
    struct as_err err = {0};
    pthread_barrier_wait(n->barrier);
    n->rc = db_sched_claim(n->db, n->kpi_id, n->prev, n->scheduled_for, 0, n->scheduled_for,
                           &n->id, &err);
    snprintf(n->msg, sizeof n->msg, "%s", err.msg);
    return NULL;
}

static void test_schedulers_claim_once(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    int64_t id = 0, now = time_now_ms();
    assert_int_equal(db_kpi_put(f->app.db, "hourly", "users",
                                "{\"name\":\"hourly\",\"report\":\"users\"}", "0 * * * *", "UTC", 0,
                                now, &id, &err),
                     AS_OK);
    json_t *k = NULL;
    assert_int_equal(db_kpi_get(f->app.db, "hourly", &k, &err), AS_OK);
    int64_t prev = json_integer_value(json_object_get(k, "sched_last_for"));
    json_decref(k);
    struct node n[NODES];
    pthread_barrier_t b;
    nodes_open(f, n, &b);
    for (int i = 0; i < NODES; i++) {
        n[i].kpi_id = id;
        n[i].prev = prev;
        n[i].scheduled_for = prev + 3600000;
    }
    nodes_run(n, &b, claim_main);
    int ok = 0, conflict = 0;
    for (int i = 0; i < NODES; i++) {
        if (n[i].rc == AS_OK)
            ok++;
        else if (n[i].rc == AS_ECONFLICT)
            conflict++;
        else
            fail_msg("node %d: %s", i, n[i].msg);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, NODES - 1);
    json_t *runs = NULL;
    assert_int_equal(db_sched_runs(f->app.db, id, 0, &runs, &err), AS_OK);
    assert_int_equal(json_array_size(runs), 1);
    json_decref(runs);
}

static void *exception_main(void *arg)
{
    struct node *n = arg;
    struct as_err err = {0};
    struct db_exception ex = {.upn = "U@example.com", .protocols = "[\"pop\"]",
                              .reason = "needs it", .granted_by = "boss@example.com",
                              .created_at = 1000, .expires_at = INT64_MAX / 2,
                              .source = "run:1", .source_key = "inst/run-1/record/1"};
    pthread_barrier_wait(n->barrier);
    n->rc = db_exception_add(n->db, &ex, &n->id, &n->created, &err);
    snprintf(n->msg, sizeof n->msg, "%s", err.msg);
    return NULL;
}

struct count_req {
    const char *type;
    int n;
};

static int count_cb(void *ud, const struct db_event_info *ev)
{
    struct count_req *q = ud;
    q->n += strcmp(ev->type, q->type) == 0;
    return 0;
}

static void test_exception_recorded_once(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    struct node n[NODES];
    pthread_barrier_t b;
    nodes_open(f, n, &b);
    nodes_run(n, &b, exception_main);
    int created = 0;
    for (int i = 0; i < NODES; i++) {
        if (n[i].rc != AS_OK)
            fail_msg("node %d: %s", i, n[i].msg);
        created += n[i].created;
        assert_int_equal(n[i].id, n[0].id);
    }
    assert_int_equal(created, 1);
    json_t *list = NULL;
    /* The UPN matches without regard to case. */
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ALL, "u@EXAMPLE.com", time_now_ms(),
                                       &list, &err),
                     AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    struct count_req q = {"exception.added", 0};
    struct db_conn *c;
    assert_int_equal(db_read_begin(f->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, 0, count_cb, &q, &err), AS_OK);
    db_read_end(f->app.db, c);
    assert_int_equal(q.n, 1);
}

static void *kpi_put_main(void *arg)
{
    struct node *n = arg;
    struct as_err err = {0};
    pthread_barrier_wait(n->barrier);
    n->rc = db_kpi_put(n->db, "same", "users", "{\"name\":\"same\",\"report\":\"users\"}", NULL,
                       NULL, 0, 1000, &n->id, &err);
    snprintf(n->msg, sizeof n->msg, "%s", err.msg);
    return NULL;
}

static void test_kpi_stored_once(void **state)
{
    struct tu_app_fixture *f = *state;
    struct node n[NODES];
    pthread_barrier_t b;
    nodes_open(f, n, &b);
    nodes_run(n, &b, kpi_put_main);
    int ok = 0, conflict = 0;
    for (int i = 0; i < NODES; i++) {
        if (n[i].rc == AS_OK)
            ok++;
        else if (n[i].rc == AS_ECONFLICT)
            conflict++;
        else
            fail_msg("node %d: %s", i, n[i].msg);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, NODES - 1);
    char *count = tu_pg_query(f->pg_uri, "SELECT count(*) FROM kpis");
    assert_string_equal(count, "1");
    free(count);
}

int main(void)
{
    cli_register_types();
    json_object_seed(1);
    const struct CMUnitTest tests[] = {
        KPI_CASES,
        cmocka_unit_test_setup_teardown(test_schedulers_claim_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exception_recorded_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kpi_stored_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
