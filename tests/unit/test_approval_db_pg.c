/*
 * test_approval_db_pg.c - approvals in the PostgreSQL store: every case of
 * test_approval_db.c (included below, run on a database of the tests'
 * PostgreSQL server), then what only several nodes can do to it: decisions
 * of one approval arriving on different nodes at the same moment (one
 * wins, the others are refused), two approvers of a policy "all" answering
 * at once (the approval is decided, once), an expiry racing a decision, and
 * the per-installation secret made by two nodes at once (one secret).
 */
#define APPROVAL_DB_SETUP tu_db_setup_pg
#define APPROVAL_DB_NO_MAIN
#include "test_approval_db.c"

#include "base/timeutil.h"

/* A second node: another store (its own connections) on the same database. */
static struct db *node_open(struct tu_db_fixture *f)
{
    struct db *db = NULL;
    struct as_err err = {0};
    if (db_open(f->pg_uri, "NORMAL", &db, &err) != AS_OK)
        fail_msg("db_open %s: %s", f->pg_uri, err.msg);
    return db;
}

struct node_race {
    struct db *db;
    const char *hash;
    const char *decision;
    pthread_barrier_t *barrier;
    enum as_code rc;
    struct approval_decision_result res;
    char msg[256];
};

static void *node_race_main(void *arg)
{
    struct node_race *r = arg;
    struct as_err err = {0};
    struct approval_decision d = {.token_hash = r->hash, .decision = r->decision, .via = "web",
                                  .comment = "race", .now = NOW + 100};
    pthread_barrier_wait(r->barrier);
    r->rc = approval_decide(r->db, &d, &r->res, &err);
    snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    return NULL;
}

/* Eight nodes receive a POST for one approval (two approvers, policy any)
 * at the same moment: exactly one decides, the seven others are told it
 * was decided (409 on the web), and the log holds one decision. */
static void test_nodes_decide_once(void **state)
{
    struct tu_db_fixture *f = *state;
    enum { N = 8 };
    for (int round = 0; round < 3; round++) {
        int64_t run, exec;
        new_exec(f, 1, &run, &exec);
        int64_t id = create(f, run, exec, "any", "[\"a@example.org\", \"b@example.org\"]", 0,
                            NOW + HOUR);
        char ta[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], tb[TOKEN_LEN + 1], hb[TOKEN_HASH_LEN + 1];
        link_for(f, id, 0, ta, ha);
        link_for(f, id, 1, tb, hb);
        pthread_t th[N];
        struct node_race r[N];
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, N);
        for (int i = 0; i < N; i++) {
            r[i] = (struct node_race){.db = node_open(f), .hash = i % 2 ? hb : ha,
                                      .decision = i % 3 ? "approve" : "reject",
                                      .barrier = &barrier, .rc = AS_EIO};
            assert_int_equal(pthread_create(&th[i], NULL, node_race_main, &r[i]), 0);
        }
        int ok = 0, conflict = 0, winner = -1;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc == AS_OK)
                ok++, winner = i;
            else if (r[i].rc == AS_ECONFLICT)
                conflict++;
            else
                fail_msg("node %d: %s (%s)", i, as_strerror(r[i].rc), r[i].msg);
            db_close(r[i].db);
        }
        pthread_barrier_destroy(&barrier);
        assert_int_equal(ok, 1);
        assert_int_equal(conflict, N - 1);
        assert_int_equal(count_events(f, run, "approval.decision", NULL), 1);
        /* The losers were told who won. */
        for (int i = 0; i < N; i++)
            if (i != winner)
                assert_string_equal(r[i].res.decided_by, r[winner].res.approver);
        json_t *view = NULL;
        struct as_err err = {0};
        assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
        assert_string_equal(json_string_value(json_object_get(view, "status")),
                            r[winner].decision[0] == 'a' ? "approved" : "rejected");
        json_decref(view);
        char *st = exec_status(f, run, exec);
        assert_string_equal(st, "ready"); /* woken once */
        free(st);
    }
}

struct decide_later {
    struct db *db;
    const char *hash;
    enum as_code rc;
    int64_t waited_ms;
    struct approval_decision_result res;
    char msg[256];
};

static void *decide_later_main(void *arg)
{
    struct decide_later *d = arg;
    struct as_err err = {0};
    struct approval_decision dec = {.token_hash = d->hash, .decision = "approve", .via = "web",
                                    .now = NOW + 200};
    int64_t t0 = time_now_ms();
    d->rc = approval_decide(d->db, &dec, &d->res, &err);
    d->waited_ms = time_now_ms() - t0;
    snprintf(d->msg, sizeof d->msg, "%s", err.msg);
    return NULL;
}

/* Policy all, the two approvers answering on two nodes at once.  Node A is
 * stopped half-way through its decision (its answer recorded, not yet
 * committed) while node B decides: B waits for A's lock on the approval,
 * then counts A's answer, and decides the approval.  (Under READ COMMITTED
 * without that lock, each would count the other as not yet approved, and
 * the approval would stay pending with both approvers approved.) */
static void test_all_policy_two_nodes(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "all", "[\"a@example.org\", \"b@example.org\"]", 0,
                        NOW + HOUR);
    char ta[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], tb[TOKEN_LEN + 1], hb[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, ta, ha);
    link_for(f, id, 1, tb, hb);

    /* Node A: the pieces of approval_decide, up to the policy. */
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    struct db_approval_state s;
    assert_int_equal(db_approval_load(c, ha, 0, &s, &err), AS_OK);
    assert_string_equal(s.approver_status, "pending");
    struct db_approval_answer a = {.approver_id = s.approver_id, .decided = "approved",
                                   .via = "web", .actor = s.approver, .now = NOW + 100};
    assert_int_equal(db_approval_answer(c, &a, &err), AS_OK);

    struct decide_later b = {.db = node_open(f), .hash = hb};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, decide_later_main, &b), 0);
    tu_sleep_ms(400);
    int64_t unapproved = -1;
    assert_int_equal(db_approval_unapproved(c, id, &unapproved, &err), AS_OK);
    assert_int_equal(unapproved, 1); /* b has not answered as far as A can see */
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    pthread_join(t, NULL);
    if (b.rc)
        fail_msg("node B: %s", b.msg);
    assert_true(b.waited_ms >= 300);
    assert_string_equal(b.res.status, "approved");
    assert_int_equal(b.res.resumed, 1);
    db_close(b.db);

    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "status")), "approved");
    assert_string_equal(approver_status(view, 0), "approved");
    assert_string_equal(approver_status(view, 1), "approved");
    json_decref(view);
}

struct expirer {
    struct db *db;
    int64_t id;
    enum as_code rc;
    int changed;
    char msg[256];
};

static void *expire_main(void *arg)
{
    struct expirer *x = arg;
    struct as_err err = {0};
    x->rc = db_approvals_expire(x->db, x->id, NOW + HOUR, &x->changed, &err);
    snprintf(x->msg, sizeof x->msg, "%s", err.msg);
    return NULL;
}

/* A node expires the approval while another is deciding it: the expiry
 * waits, finds it decided, and changes nothing. */
static void test_expiry_races_decision(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "any", "[\"a@example.org\"]", 0, NOW + HOUR);
    char t[TOKEN_LEN + 1], h[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, t, h);

    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    struct db_approval_state s;
    assert_int_equal(db_approval_load(c, h, 0, &s, &err), AS_OK);
    struct expirer x = {.db = node_open(f), .id = id, .changed = -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, expire_main, &x), 0);
    tu_sleep_ms(300);
    struct db_approval_answer a = {.approver_id = s.approver_id, .decided = "approved",
                                   .via = "web", .actor = s.approver, .now = NOW + 100};
    assert_int_equal(db_approval_answer(c, &a, &err), AS_OK);
    assert_int_equal(db_approval_close(c, id, "approved", &a, 1, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    pthread_join(th, NULL);
    if (x.rc)
        fail_msg("expire: %s", x.msg);
    assert_int_equal(x.changed, 0);
    db_close(x.db);
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "status")), "approved");
    json_decref(view);
    assert_int_equal(count_events(f, run, "approval.expired", NULL), 0);
}

struct secret_maker {
    struct db *db;
    pthread_barrier_t *barrier;
    unsigned char secret[32];
    enum as_code rc;
};

static void *secret_main(void *arg)
{
    struct secret_maker *m = arg;
    struct as_err err = {0};
    pthread_barrier_wait(m->barrier);
    m->rc = db_approvals_secret(m->db, "csrf", m->secret, sizeof m->secret, &err);
    return NULL;
}

/* Nodes starting at once make the secret once: all sign with one key. */
static void test_secret_two_nodes(void **state)
{
    struct tu_db_fixture *f = *state;
    enum { N = 4 };
    struct secret_maker m[N];
    pthread_t th[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        m[i] = (struct secret_maker){.db = node_open(f), .barrier = &barrier, .rc = AS_EIO};
        assert_int_equal(pthread_create(&th[i], NULL, secret_main, &m[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(m[i].rc, AS_OK);
        db_close(m[i].db);
    }
    pthread_barrier_destroy(&barrier);
    for (int i = 1; i < N; i++)
        assert_memory_equal(m[0].secret, m[i].secret, sizeof m[0].secret);
    char *n = tu_pg_query(f->pg_uri, "SELECT count(*) FROM web_secrets");
    assert_string_equal(n, "1");
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        APPROVAL_DB_CASES,
        cmocka_unit_test_setup_teardown(test_nodes_decide_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_policy_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_races_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_two_nodes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
