/*
 * test_db_pg.c - the PostgreSQL store (db/postgres/) against the tests'
 * private server (scripts/pg.sh; each test on a database of its own):
 * opening and migrating (once, also when two open at once), workflows by
 * hash, runs and dedupe, claims and leases, waits and resumes,
 * cancel/retry, the audit chain (tampering done with raw SQL), two writers
 * claiming with SKIP LOCKED and appending to one chain, and the password
 * file.  The cases of test_db_runs.c, where they
 * apply, with the same expectations.
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
#include "db/db_nodes.h"
#include "db/db_runs.h"
#include "db/db_wal.h"
#include "base/timeutil.h"

struct fixture {
    char *uri;
    struct db *db;
    int64_t wf_id;
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
    f->wf_id = tu_db_workflow(f->db, "aaaa");
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

static struct db_conn *wbegin(struct db *db)
{
    struct db_conn *c = NULL;
    struct as_err err = {0};
    assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
    return c;
}

static void wcommit(struct db *db)
{
    struct as_err err = {0};
    enum as_code rc = db_write_end(db, AS_OK, &err);
    if (rc)
        fail_msg("commit: %s", err.msg);
}

static int64_t new_run(struct fixture *f, struct db_conn *c, const char *key)
{
    struct as_err err = {0};
    struct db_run_new r = {.workflow_id = f->wf_id, .workflow = "wf", .input = "{\"x\":1}",
                           .dedupe_key = key, .trigger = "test"};
    int64_t id = 0;
    assert_int_equal(db_run_insert(c, &r, 1000, &id, &err), AS_OK);
    return id;
}

static void test_open_migrates_once(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(db_schema_version(f->db), 15);
    assert_string_equal(db_path(f->db), f->uri);
    /* Reopening applies nothing twice. */
    struct db *again = open_or_fail(f->uri);
    assert_int_equal(db_schema_version(again), 15);
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
        assert_int_equal(o[i].version, 15);
    }
    char *n = tu_pg_query(uri, "SELECT count(*) FROM meta WHERE key = 'instance_id'");
    assert_string_equal(n, "1");
    free(n);
    tu_pg_db_drop(uri);
}

static void test_workflow_by_hash(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t id2 = 0, id3 = 0;
    struct db_workflow_rec same = {"wf", "1", "aaaa", "{\"name\":\"wf\"}", "x.json"};
    struct db_workflow_rec other = {"wf", "2", "bbbb", "{\"name\":\"wf\",\"v\":2}", NULL};
    assert_int_equal(db_workflow_put(c, &same, 2000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &other, 2000, &id3, &err), AS_OK);
    wcommit(f->db);
    assert_int_equal(id2, f->wf_id);
    assert_int_not_equal(id3, f->wf_id);

    struct db_conn *r;
    char *def = NULL;
    assert_int_equal(db_read_begin(f->db, &r, &err), AS_OK);
    assert_int_equal(db_workflow_get(r, "bbbb", &def, &err), AS_OK);
    assert_string_equal(def, "{\"name\":\"wf\",\"v\":2}");
    free(def);
    assert_int_equal(db_workflow_get(r, "cccc", &def, &err), AS_ENOTFOUND);
    assert_null(def);
    db_read_end(f->db, r);

    /* A source path stored as typed (relative) is replaced by the first absolute one. */
    struct db_workflow_rec abs1 = {"wf", "1", "aaaa", "{\"name\":\"wf\"}", "/srv/flows/x.json"};
    struct db_workflow_rec abs2 = {"wf", "1", "aaaa", "{\"name\":\"wf\"}", "/elsewhere/x.json"};
    c = wbegin(f->db);
    assert_int_equal(db_workflow_put(c, &abs1, 3000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &abs2, 3000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &same, 3000, &id2, &err), AS_OK);
    wcommit(f->db);
    assert_int_equal(id2, f->wf_id);
    char *path = tu_pg_query(f->uri, "SELECT source_path FROM workflows WHERE hash = 'aaaa'");
    assert_string_equal(path, "/srv/flows/x.json");
    free(path);
}

static int count_cb(void *ud, const struct db_run_info *run)
{
    (*(int *)ud)++;
    return 0;
}

static void test_run_dedupe(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t a = new_run(f, c, "user@x");
    int64_t dup = 0;
    struct db_run_new r = {.workflow_id = f->wf_id, .workflow = "wf", .input = "{}",
                           .dedupe_key = "user@x"};
    assert_int_equal(db_run_insert(c, &r, 1000, &dup, &err), AS_ECONFLICT);
    assert_int_equal(dup, a);
    assert_non_null(strstr(err.msg, "user@x"));
    /* Same key, other workflow name: allowed.  No key: always allowed. */
    struct db_run_new other = {.workflow_id = f->wf_id, .workflow = "other", .dedupe_key = "user@x"};
    int64_t b = 0;
    assert_int_equal(db_run_insert(c, &other, 1000, &b, &err), AS_OK);
    new_run(f, c, NULL);
    new_run(f, c, NULL);
    /* The transaction survived the refused insert; once the run ends the key is free. */
    assert_int_equal(db_run_set_status(c, a, "succeeded", NULL, 1500, &err), AS_OK);
    assert_int_equal(db_run_set_status(c, a, "failed", "x", 1600, &err), AS_ECONFLICT);
    int64_t again = new_run(f, c, "user@x");
    assert_true(again > a);
    wcommit(f->db);

    struct db_conn *rd;
    int n = 0;
    assert_int_equal(db_read_begin(f->db, &rd, &err), AS_OK);
    struct db_run_filter all = {0};
    assert_int_equal(db_runs_list(rd, &all, count_cb, &n, &err), AS_OK);
    assert_int_equal(n, 5);
    n = 0;
    struct db_run_filter done = {.status = "succeeded", .workflow = "wf"};
    assert_int_equal(db_runs_list(rd, &done, count_cb, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    n = 0;
    struct db_run_filter named = {.workflow = "other", .limit = 10};
    assert_int_equal(db_runs_list(rd, &named, count_cb, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    n = 0;
    struct db_run_filter paged = {.before_id = again, .limit = 2};
    assert_int_equal(db_runs_list(rd, &paged, count_cb, &n, &err), AS_OK);
    assert_int_equal(n, 2);
    int64_t open = 0;
    assert_int_equal(db_runs_count_open(rd, &open, &err), AS_OK);
    assert_int_equal(open, 4);
    char status[16];
    assert_int_equal(db_run_status(rd, a, status, sizeof status, &err), AS_OK);
    assert_string_equal(status, "succeeded");
    assert_int_equal(db_run_status(rd, 999, status, sizeof status, &err), AS_ENOTFOUND);
    db_read_end(f->db, rd);
}

static void test_claim_and_record(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL);
    int64_t e1 = 0, e2 = 0, later = 0;
    assert_int_equal(db_exec_insert(c, run, "first", 1000, 1000, &e1, &err), AS_OK);
    assert_int_equal(db_exec_insert(c, run, "first", 5000, 1000, &e2, &err), AS_OK);
    assert_int_equal(db_exec_insert(c, run, "late", 9000, 1000, &later, &err), AS_OK);

    struct db_claim cl[4];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 2000, "me", 4, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, e1);
    assert_int_equal(cl[0].visit, 1);
    assert_string_equal(cl[0].step, "first");
    assert_string_equal(cl[0].workflow_hash, "aaaa");
    assert_string_equal(cl[0].prev_status, "ready");
    char want[128];
    snprintf(want, sizeof want, "/run-%" PRId64 "/first/1", run);
    const char *slash = strchr(cl[0].idempotency_key, '/');
    assert_non_null(slash);
    assert_string_equal(slash, want);
    assert_int_equal(slash - cl[0].idempotency_key, 12); /* the database's instance id */
    assert_int_equal(db_exec_take(c, &cl[0], "me", 2000, 62000, &err), AS_OK);
    assert_int_equal(cl[0].attempt, 1);
    assert_int_equal(cl[0].lease_until, 62000);
    /* Taken twice: the second sees the row changed. */
    struct db_claim copy = cl[0];
    copy.attempt = 0;
    snprintf(copy.prev_status, sizeof copy.prev_status, "ready");
    assert_int_equal(db_exec_take(c, &copy, "me", 2000, 62000, &err), AS_ECONFLICT);

    /* Nothing else due at 2000; next due is the second visit at 5000. */
    size_t n2 = 0;
    struct db_claim more[4];
    assert_int_equal(db_exec_due(c, 2000, "me", 4, more, &n2, &err), AS_OK);
    assert_int_equal(n2, 0);
    int64_t due = 0;
    assert_int_equal(db_exec_next_due(c, "me", &due, &err), AS_OK);
    assert_int_equal(due, 5000);
    assert_int_equal(db_exec_next_due(c, "other", &due, &err), AS_OK);
    assert_int_equal(due, 5000);

    /* A result from a stale claim is refused; the right one is recorded. */
    struct db_exec_result res = {.exec_id = e1, .owner = "someone", .attempt = 1,
                                 .status = "succeeded", .output = "{\"ok\":true}",
                                 .outcome = "success", .params = "{\"p\":1}", .finished_at = 2500};
    assert_int_equal(db_exec_record(c, &res, &err), AS_ECONFLICT);
    res.owner = "me";
    res.attempt = 2;
    assert_int_equal(db_exec_record(c, &res, &err), AS_ECONFLICT);
    res.attempt = 1;
    assert_int_equal(db_exec_record(c, &res, &err), AS_OK);
    assert_int_equal(db_exec_record(c, &res, &err), AS_ECONFLICT);
    db_claim_clear(&cl[0]);
    assert_null(cl[0].step);

    /* The second visit: a retry puts it back as ready at its due time. */
    assert_int_equal(db_exec_due(c, 6000, "me", 1, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].visit, 2);
    assert_int_equal(db_exec_take(c, &cl[0], "me", 6000, 7000, &err), AS_OK);
    struct db_exec_result retry = {.exec_id = e2, .owner = "me", .attempt = 1, .status = "ready",
                                   .due_at = 6500, .error = "503", .finished_at = 6100};
    assert_int_equal(db_exec_record(c, &retry, &err), AS_OK);
    db_claim_clear(&cl[0]);
    assert_int_equal(db_exec_due(c, 6400, "me", 4, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_exec_due(c, 6500, "me", 4, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].attempt, 1);
    assert_int_equal(db_exec_take(c, &cl[0], "me", 6500, 7000, &err), AS_OK);
    assert_int_equal(cl[0].attempt, 2);
    /* Released unstarted: the attempt is not counted. */
    assert_int_equal(db_exec_release(c, e2, "me", 2, &err), AS_OK);
    assert_int_equal(db_exec_release(c, e2, "me", 2, &err), AS_ECONFLICT);
    db_claim_clear(&cl[0]);
    assert_int_equal(db_exec_due(c, 6500, "me", 1, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].attempt, 1);
    db_claim_clear(&cl[0]);
    wcommit(f->db);

    /* A claim inserted by the executor itself knows its visit. */
    c = wbegin(f->db);
    struct db_claim ic;
    assert_int_equal(db_exec_insert_claimed(c, run, "late", 0, 7000, "me", 9000, 1, &ic, &err),
                     AS_OK);
    assert_int_equal(ic.visit, 2);
    assert_int_equal(ic.attempt, 1);
    assert_int_equal(ic.queued, 1);
    assert_non_null(strstr(ic.idempotency_key, "/late/2"));
    db_claim_clear(&ic);
    wcommit(f->db);
}

static int owner_cb(void *ud, const char *owner)
{
    json_array_append_new(ud, json_string(owner));
    return 0;
}

/* Leases are measured by the database's clock: a lease of "now + 1 s"
 * ends one second of the database's clock later, whatever the caller's own
 * clock (its `now`) says. */
static void test_lease_expiry(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL), ex = 0;
    assert_int_equal(db_exec_insert(c, run, "s", 1000, 1000, &ex, &err), AS_OK);
    struct db_claim cl[2];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 1000, "A", 2, cl, &n, &err), AS_OK);
    assert_int_equal(db_exec_take(c, &cl[0], "A", 1000, 2000, &err), AS_OK);
    assert_int_equal(cl[0].lease_until, 2000); /* the caller's view is its own clock */
    char key[200];
    snprintf(key, sizeof key, "%s", cl[0].idempotency_key);
    db_claim_clear(&cl[0]);
    wcommit(f->db);
    /* B's clock says the lease ended long ago: the database's does not. */
    c = wbegin(f->db);
    assert_int_equal(db_exec_due(c, INT64_MAX / 4, "B", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    /* When it ends, in B's clock: about a second from now. */
    int64_t due = 0, now = time_now_ms();
    assert_int_equal(db_exec_next_due(c, "B", &due, &err), AS_OK);
    assert_true(due > now - 1000 && due <= now + 1000);
    wcommit(f->db);
    tu_sleep_ms(1100);
    /* After it, by the database's clock, anyone but A (whatever `now`). */
    c = wbegin(f->db);
    assert_int_equal(db_exec_due(c, 0, "A", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_exec_due(c, 0, "B", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_true(cl[0].recovered);
    assert_string_equal(cl[0].prev_owner, "A");
    assert_string_equal(cl[0].idempotency_key, key);
    assert_int_equal(db_exec_take(c, &cl[0], "B", 3000, 603000, &err), AS_OK);
    assert_int_equal(cl[0].attempt, 1);
    assert_int_equal(cl[0].recoveries, 1);
    db_claim_clear(&cl[0]);
    struct db_exec_result late = {.exec_id = ex, .owner = "A", .attempt = 1, .status = "succeeded"};
    assert_int_equal(db_exec_record(c, &late, &err), AS_ECONFLICT);

    /* The engine asks who holds leases to find dead owners. */
    json_t *owners = json_array();
    assert_int_equal(db_exec_lease_owners(c, owner_cb, owners, &err), AS_OK);
    assert_int_equal(json_array_size(owners), 1);
    assert_string_equal(json_string_value(json_array_get(owners, 0)), "B");
    json_decref(owners);
    int64_t expired = 0;
    assert_int_equal(db_exec_expire_owner(c, "B", &expired, &err), AS_OK);
    assert_int_equal(expired, 1);
    assert_int_equal(db_exec_due(c, 3001, "C", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    db_claim_clear(&cl[0]);
    wcommit(f->db);
}

/* Claimable by `who` now: the number of executions db_exec_due finds (none
 * is taken: the transaction ends without a take). */
static size_t claimable(struct db *db, const char *who)
{
    struct as_err err = {0};
    struct db_conn *c = wbegin(db);
    struct db_claim cl[4];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 0, who, 4, cl, &n, &err), AS_OK);
    for (size_t i = 0; i < n; i++)
        db_claim_clear(&cl[i]);
    wcommit(db);
    return n;
}

/* A node that stops beating is dead after its node_timeout: its claims
 * are taken over then, long before their leases end.  A node that beats
 * keeps them; a node that left is judged by its leases again. */
static void test_dead_node_takeover(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    int64_t clock = 0, before = time_now_ms();
    assert_int_equal(db_node_heartbeat(f->db, "A", 1000, &clock, &err), AS_OK);
    assert_true(clock >= before - 2000 && clock <= time_now_ms() + 2000);
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL);
    assert_int_equal(db_exec_insert(c, run, "s", 1000, 1000, NULL, &err), AS_OK);
    struct db_claim cl[2];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 1000, "A", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    /* A ten-minute lease. */
    assert_int_equal(db_exec_take(c, &cl[0], "A", 1000, 601000, &err), AS_OK);
    db_claim_clear(&cl[0]);
    wcommit(f->db);

    /* A beats on time: B may not take its claim. */
    for (int i = 0; i < 4; i++) {
        tu_sleep_ms(300);
        assert_int_equal(db_node_heartbeat(f->db, "A", 1000, NULL, &err), AS_OK);
    }
    assert_int_equal(claimable(f->db, "B"), 0);
    /* The claim becomes claimable when A's beat runs out, in B's clock. */
    int64_t due = 0, now = time_now_ms();
    c = wbegin(f->db);
    assert_int_equal(db_exec_next_due(c, "B", &due, &err), AS_OK);
    wcommit(f->db);
    assert_true(due > now - 1000 && due <= now + 1000);

    /* A falls silent: after its second, B takes the claim over. */
    tu_sleep_ms(1200);
    c = wbegin(f->db);
    assert_int_equal(db_exec_due(c, 0, "B", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_true(cl[0].recovered);
    assert_string_equal(cl[0].prev_owner, "A");
    assert_int_equal(db_exec_take(c, &cl[0], "B", 1000, 601000, &err), AS_OK);
    db_claim_clear(&cl[0]);
    wcommit(f->db);

    /* B left cleanly (its row gone): its claim keeps its ten-minute lease,
     * so C may not take it, though B never beat again. */
    assert_int_equal(db_node_heartbeat(f->db, "B", 1000, NULL, &err), AS_OK);
    assert_int_equal(db_node_heartbeat(f->db, "B", 0, NULL, &err), AS_OK);
    tu_sleep_ms(1200);
    assert_int_equal(claimable(f->db, "C"), 0);
    char *rows = tu_pg_query(f->uri, "SELECT string_agg(owner, ',' ORDER BY owner) FROM nodes");
    assert_string_equal(rows, "A");
    free(rows);

    /* A node dead for over a day with no claim left is forgotten at the
     * next beat; A still holds nothing, so it goes too. */
    tu_pg_exec(f->uri, "INSERT INTO nodes VALUES ('old', 0, 0, 0); "
                       "UPDATE nodes SET expires_at = 0 WHERE owner = 'A'");
    assert_int_equal(db_node_heartbeat(f->db, "D", 1000, NULL, &err), AS_OK);
    rows = tu_pg_query(f->uri, "SELECT string_agg(owner, ',' ORDER BY owner) FROM nodes");
    assert_string_equal(rows, "D");
    free(rows);
}

struct wake_count {
    pthread_mutex_t lock;
    int n;
    int64_t last_ms;
};

static void count_wake(void *ud)
{
    struct wake_count *w = ud;
    pthread_mutex_lock(&w->lock);
    w->n++;
    w->last_ms = time_now_ms();
    pthread_mutex_unlock(&w->lock);
}

/* Wake-ups of w after `since` within timeout_ms; *at receives the last one's time. */
static int wakes_after(struct wake_count *w, int n0, int timeout_ms, int64_t *at)
{
    for (int waited = 0;; waited += 5) {
        pthread_mutex_lock(&w->lock);
        int n = w->n;
        if (at)
            *at = w->last_ms;
        pthread_mutex_unlock(&w->lock);
        if (n > n0 || waited >= timeout_ms)
            return n - n0;
        tu_sleep_ms(5);
    }
}

/* Another node's commit that makes work due wakes a listening node at once;
 * a rolled-back one and one that made nothing due do not; a listening
 * connection cut by the server is reopened. */
static void test_wakeups(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db *other = open_or_fail(f->uri);
    struct wake_count w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct db_wakeups *wk = NULL;
    assert_int_equal(db_wakeups_start(f->db, count_wake, &w, &wk, &err), AS_OK);
    assert_non_null(wk);
    tu_sleep_ms(200); /* listening */

    /* Nothing due: no wake-up. */
    struct db_conn *c = wbegin(other);
    int64_t run = new_run(f, c, NULL);
    wcommit(other);
    assert_int_equal(wakes_after(&w, 0, 300, NULL), 0);
    /* Rolled back: none either. */
    c = wbegin(other);
    assert_int_equal(db_exec_insert(c, run, "s", 1000, 1000, NULL, &err), AS_OK);
    assert_int_equal(db_write_end(other, AS_ECANCELLED, &err), AS_ECANCELLED);
    assert_int_equal(wakes_after(&w, 0, 300, NULL), 0);
    /* A new execution, committed: woken, within a moment. */
    int64_t lat_max = 0;
    for (int i = 0; i < 5; i++) {
        int n0 = w.n;
        c = wbegin(other);
        char step[8];
        snprintf(step, sizeof step, "s%d", i);
        assert_int_equal(db_exec_insert(c, run, step, 1000, 1000, NULL, &err), AS_OK);
        int64_t t0 = time_now_ms(), at = 0; /* from the commit's start */
        wcommit(other);
        assert_int_equal(wakes_after(&w, n0, 5000, &at), 1);
        if (at - t0 > lat_max)
            lat_max = at - t0;
    }
    print_message("wake-up after commit: at most %" PRId64 " ms over 5 commits\n", lat_max);
    assert_true(lat_max < 2000);

    /* The listening connection is cut (as by a server restart): it is
     * reopened, with a wake-up for what may have been missed, and later
     * commits wake again. */
    int n0 = w.n;
    tu_pg_exec(f->uri, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND query = 'LISTEN assent_due'");
    assert_int_equal(wakes_after(&w, n0, 10000, NULL) >= 1, 1);
    n0 = w.n;
    c = wbegin(other);
    assert_int_equal(db_exec_insert(c, run, "again", 1000, 1000, NULL, &err), AS_OK);
    wcommit(other);
    assert_int_equal(wakes_after(&w, n0, 5000, NULL) >= 1, 1);
    db_wakeups_stop(wk);
    db_close(other);
}

static void test_wait_and_resume(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL), ex = 0, ex2 = 0;
    const int64_t far = time_now_ms() + 1000000000LL; /* resume uses the real clock */
    assert_int_equal(db_exec_insert(c, run, "approve", 1000, 1000, &ex, &err), AS_OK);
    assert_int_equal(db_exec_insert(c, run, "timer", 1000, 1000, &ex2, &err), AS_OK);
    struct db_claim cl[2];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 1000, "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(db_exec_take(c, &cl[i], "me", 1000, 5000, &err), AS_OK);
        struct db_exec_result w = {.exec_id = cl[i].exec_id, .owner = "me", .attempt = 1,
                                   .status = "waiting", .due_at = far,
                                   .wait_state = "{\"token\":1}", .finished_at = 1100};
        assert_int_equal(db_exec_record(c, &w, &err), AS_OK);
        db_claim_clear(&cl[i]);
    }
    assert_int_equal(db_run_set_status(c, run, "waiting", NULL, 1100, &err), AS_OK);
    wcommit(f->db);

    c = wbegin(f->db);
    json_t *payload = json_pack("{s:s, s:s}", "decision", "approved", "by", "owner@x");
    assert_int_equal(db_exec_resume(c, ex, payload, &err), AS_OK);
    json_t *second = json_pack("{s:s}", "decision", "next");
    assert_int_equal(db_exec_resume(c, ex, second, &err), AS_OK);
    json_decref(second);
    assert_int_equal(db_exec_resume(c, 4242, payload, &err), AS_ENOTFOUND);
    json_decref(payload);
    wcommit(f->db);

    c = wbegin(f->db);
    char status[16];
    assert_int_equal(db_run_status(c, run, status, sizeof status, &err), AS_OK);
    assert_string_equal(status, "running");
    assert_int_equal(db_exec_due(c, time_now_ms(), "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, ex);
    assert_string_equal(cl[0].resume, "{\"by\":\"owner@x\",\"decision\":\"approved\"}");
    assert_string_equal(cl[0].wait_state, "{\"token\":1}");
    assert_int_equal(db_exec_take(c, &cl[0], "me", 2000, 5000, &err), AS_OK);
    assert_int_equal(cl[0].attempt, 1);
    assert_int_equal(cl[0].deadline_reached, 0);
    db_claim_clear(&cl[0]);
    /* This attempt waits again: the held payload ends that wait at once. */
    struct db_exec_result again = {.exec_id = ex, .owner = "me", .attempt = 1,
                                   .status = "waiting", .due_at = far,
                                   .wait_state = "{\"token\":2}", .finished_at = 2100};
    char *held = NULL;
    assert_int_equal(db_exec_record_held(c, &again, &held, &err), AS_OK);
    assert_string_equal(held, "{\"decision\":\"next\"}");
    free(held);
    assert_int_equal(db_exec_due(c, 2100, "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, ex);
    assert_string_equal(cl[0].prev_status, "ready");
    assert_string_equal(cl[0].resume, "{\"decision\":\"next\"}");
    assert_string_equal(cl[0].wait_state, "{\"token\":2}");
    assert_int_equal(db_exec_take(c, &cl[0], "me", 2100, 5000, &err), AS_OK);
    db_claim_clear(&cl[0]);
    again.finished_at = 2200;
    again.due_at = far + 1000;
    assert_int_equal(db_exec_record_held(c, &again, &held, &err), AS_OK);
    assert_null(held);
    assert_int_equal(db_exec_due(c, 2200, "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_exec_due(c, far, "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, ex2);
    assert_string_equal(cl[0].prev_status, "waiting");
    assert_int_equal(db_exec_take(c, &cl[0], "me", far, far + 5000, &err), AS_OK);
    assert_int_equal(cl[0].deadline_reached, 1);
    db_claim_clear(&cl[0]);
    assert_int_equal(db_exec_resume(c, ex2, NULL, &err), AS_OK);
    struct db_exec_result done = {.exec_id = ex2, .owner = "me", .attempt = 1,
                                  .status = "succeeded", .outcome = "expired",
                                  .finished_at = far + 1};
    assert_int_equal(db_exec_record_held(c, &done, &held, &err), AS_OK);
    assert_null(held);
    assert_int_equal(db_exec_resume(c, ex2, NULL, &err), AS_ECONFLICT);
    wcommit(f->db);
}

static int scope_cb(void *ud, const struct db_exec_info *e)
{
    json_array_append_new(ud, json_string(e->step));
    return 0;
}

static void test_cancel_and_retry(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, "k"), ex = 0;
    assert_int_equal(db_exec_insert(c, run, "s", 1000, 1000, &ex, &err), AS_OK);
    assert_int_equal(db_run_retry(c, run, 1000, NULL, &err), AS_ECONFLICT);
    assert_int_equal(db_run_cancel(c, run, 1200, &err), AS_OK);
    assert_int_equal(db_run_cancel(c, run, 1200, &err), AS_ECONFLICT);
    assert_int_equal(db_run_cancel(c, 777, 1200, &err), AS_ENOTFOUND);
    struct db_claim cl[1];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 5000, "me", 1, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);

    /* A failed run: its failed step is re-queued, same row, attempts reset. */
    int64_t run2 = new_run(f, c, "k2"), ex2 = 0;
    assert_int_equal(db_exec_insert(c, run2, "s", 1000, 1000, &ex2, &err), AS_OK);
    assert_int_equal(db_exec_due(c, 1000, "me", 1, cl, &n, &err), AS_OK);
    assert_int_equal(db_exec_take(c, &cl[0], "me", 1000, 9000, &err), AS_OK);
    db_claim_clear(&cl[0]);
    struct db_exec_result fail = {.exec_id = ex2, .owner = "me", .attempt = 1, .status = "failed",
                                  .error = "boom", .outcome = "error", .finished_at = 1100};
    assert_int_equal(db_exec_record(c, &fail, &err), AS_OK);
    assert_int_equal(db_run_set_status(c, run2, "failed", "step s failed: boom", 1100, &err), AS_OK);
    /* Meanwhile another run took the dedupe key: retry must refuse, and the
     * transaction goes on (a savepoint catches the failed statement). */
    int64_t rival = new_run(f, c, "k2");
    assert_int_equal(db_run_retry(c, run2, 2000, NULL, &err), AS_ECONFLICT);
    assert_non_null(strstr(err.msg, "dedupe"));
    assert_int_equal(db_run_cancel(c, rival, 2000, &err), AS_OK);
    int64_t requeued = 0;
    assert_int_equal(db_run_retry(c, run2, 2000, &requeued, &err), AS_OK);
    assert_int_equal(requeued, ex2);
    assert_int_equal(db_exec_due(c, 2000, "me", 1, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, ex2);
    assert_int_equal(cl[0].attempt, 0);
    db_claim_clear(&cl[0]);
    /* Superseded: stored cancelled, shown superseded. */
    int64_t run3 = new_run(f, c, "k3");
    assert_int_equal(db_run_supersede(c, run3, "no longer needed", 2100, &err), AS_OK);
    char status[16];
    assert_int_equal(db_run_status(c, run3, status, sizeof status, &err), AS_OK);
    assert_string_equal(status, "superseded");
    wcommit(f->db);

    struct db_conn *r;
    assert_int_equal(db_read_begin(f->db, &r, &err), AS_OK);
    int cnt = 0;
    struct db_run_filter sup = {.status = "superseded"};
    assert_int_equal(db_runs_list(r, &sup, count_cb, &cnt, &err), AS_OK);
    assert_int_equal(cnt, 1);
    char *input = NULL;
    json_t *steps = json_array();
    assert_int_equal(db_run_scope(r, run2, &input, scope_cb, steps, &err), AS_OK);
    assert_string_equal(input, "{\"x\":1}");
    assert_int_equal(json_array_size(steps), 0); /* the failed step is ready again */
    free(input);
    json_decref(steps);
    assert_int_equal(db_run_scope(r, 4242, &input, scope_cb, NULL, &err), AS_ENOTFOUND);
    db_read_end(f->db, r);
}

static void append_n(struct fixture *f, int n)
{
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    for (int i = 0; i < n; i++) {
        json_t *d = json_pack("{s:i, s:s}", "i", i, "note", "x|y\nz");
        assert_int_equal(db_event_append(c, i % 3 ? 1 : 0, i % 2 ? 7 : 0, "test.event", d, &err),
                         AS_OK);
        json_decref(d);
    }
    assert_int_equal(db_event_append(c, 1, 0, "Bad Type", NULL, &err), AS_EINVAL);
    wcommit(f->db);
}

static void verify(struct fixture *f, struct db_audit_report *rep, int64_t anchor_id,
                   const char *anchor_hash)
{
    struct as_err err = {0};
    struct db_conn *r;
    assert_int_equal(db_read_begin(f->db, &r, &err), AS_OK);
    assert_int_equal(db_audit_verify(r, anchor_id, anchor_hash, rep, &err), AS_OK);
    db_read_end(f->db, r);
}

static void test_audit_chain(void **state)
{
    struct fixture *f = *state;
    struct db_audit_report rep;
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.n_events, 0);
    assert_int_equal(rep.bad_id, 0);

    append_n(f, 10);
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.n_events, 10);
    assert_int_equal(rep.bad_id, 0);
    assert_int_equal(rep.head_id, 10);
    char head[65];
    snprintf(head, sizeof head, "%s", rep.head_hash);
    verify(f, &rep, 10, head);
    assert_int_equal(rep.bad_id, 0);

    /* Altered content. */
    tu_pg_exec(f->uri, "UPDATE events SET data = '{\"i\":4,\"note\":\"forged\"}' WHERE id = 5");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 5);
    assert_non_null(strstr(rep.problem, "altered"));
    tu_pg_exec(f->uri, "UPDATE events SET data = '{\"i\":4,\"note\":\"x|y\\nz\"}' WHERE id = 5");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    /* Altered metadata: the run an event belongs to. */
    tu_pg_exec(f->uri, "UPDATE events SET run_id = 99 WHERE id = 3");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 3);
    tu_pg_exec(f->uri, "UPDATE events SET run_id = 1 WHERE id = 3");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);

    /* Deleted record: the chain breaks at the one after it. */
    tu_pg_exec(f->uri, "CREATE TABLE saved AS SELECT * FROM events WHERE id = 7; "
                       "DELETE FROM events WHERE id = 7");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 8);
    assert_non_null(strstr(rep.problem, "7..7"));
    assert_non_null(strstr(rep.problem, "deleted"));
    tu_pg_exec(f->uri, "INSERT INTO events SELECT * FROM saved; DROP TABLE saved");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);

    /* Inserted record at the end, with a made-up chain. */
    tu_pg_exec(f->uri, "INSERT INTO events (id, run_id, ts, type, data, prev_hash, hash) "
                       "VALUES (11, 1, 5, 'approval.decided', '{}', 'f00d', 'beef')");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 11);
    assert_non_null(strstr(rep.problem, "inserted"));
    tu_pg_exec(f->uri,
               "UPDATE events SET prev_hash = (SELECT hash FROM events WHERE id = 10) WHERE id = 11");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 11);
    tu_pg_exec(f->uri, "DELETE FROM events WHERE id = 11");

    /* Inserted in the middle (a row squeezed between, ids shifted). */
    tu_pg_exec(f->uri, "UPDATE events SET id = id + 100 WHERE id > 4; "
                       "UPDATE events SET id = id - 99 WHERE id > 100; "
                       "INSERT INTO events (id, run_id, ts, type, data, prev_hash, hash) "
                       "SELECT 5, 1, ts, 'approval.decided', '{}', hash, hash FROM events "
                       "WHERE id = 4");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 5);

    /* Truncated tail: only an anchor can tell. */
    tu_pg_exec(f->uri, "DELETE FROM events WHERE id = 5; "
                       "UPDATE events SET id = id + 1000 WHERE id > 5; "
                       "UPDATE events SET id = id - 1001 WHERE id > 1000");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    tu_pg_exec(f->uri, "DELETE FROM events WHERE id >= 9");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    verify(f, &rep, 10, head);
    assert_int_equal(rep.bad_id, 10);
    assert_non_null(strstr(rep.problem, "missing"));

    /* Appends after tampering carry on from the current head. */
    append_n(f, 2);
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    assert_int_equal(rep.n_events, 10);
}

/* More events than one page of db_run_events: read in order, all of them. */
static void test_events_paged(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    for (int i = 0; i < 2503; i++)
        assert_int_equal(
            db_event_append_text(c, i % 2 ? 5 : 0, 0, "bulk.event", "{}", 1000 + i, &err), AS_OK);
    wcommit(f->db);
    struct db_audit_report rep;
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.n_events, 2503);
    assert_int_equal(rep.bad_id, 0);
    assert_int_equal(rep.head_id, 2503);
}

/* ---- two writers ---------------------------------------------------------- */

struct writer {
    struct db *db;
    int64_t run_id;
    int64_t waited_ms;
    enum as_code rc;
    char msg[256];
};

/* A second node's transaction: append one event (waiting for the chain's
 * lock the first holds) and commit. */
static void *append_thread(void *arg)
{
    struct writer *w = arg;
    struct as_err err = {0};
    struct db_conn *c = NULL;
    int64_t t0 = time_now_ms();
    w->rc = db_write_begin(w->db, &c, &err);
    if (!w->rc) {
        w->rc = db_event_append_text(c, w->run_id, 0, "node.b", "{}", time_now_ms(), &err);
        w->waited_ms = time_now_ms() - t0;
        w->rc = db_write_end(w->db, w->rc, &err);
    }
    snprintf(w->msg, sizeof w->msg, "%s", err.msg);
    return NULL;
}

/* Two nodes (two stores on one database) append at once: the second waits
 * for the first's transaction, then chains onto its event. */
static void test_chain_two_writers(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db *other = open_or_fail(f->uri);
    struct db_conn *c = wbegin(f->db);
    assert_int_equal(db_event_append_text(c, 1, 0, "node.a", "{}", time_now_ms(), &err), AS_OK);
    struct writer w = {.db = other, .run_id = 2};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, append_thread, &w), 0);
    tu_sleep_ms(300);
    assert_int_equal(db_event_append_text(c, 1, 0, "node.a", "{}", time_now_ms(), &err), AS_OK);
    wcommit(f->db);
    pthread_join(t, NULL);
    if (w.rc)
        fail_msg("second writer: %s", w.msg);
    assert_true(w.waited_ms >= 250);
    struct db_audit_report rep;
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.n_events, 3);
    assert_int_equal(rep.bad_id, 0);
    char *last = tu_pg_query(f->uri, "SELECT type FROM events WHERE id = 3");
    assert_string_equal(last, "node.b");
    free(last);
    db_close(other);
}

/*
 * A part of a write transaction rolled back to its savepoint (the engine
 * gives each decision one) takes its events with it: the chain goes on from
 * the head before the part, and when the part took the chain's lock, that
 * lock went with it too, so another node may append meanwhile and the next
 * append must lock and read the head again.
 */
static void test_chain_after_rolled_back_part(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db *other = open_or_fail(f->uri);
    struct db_conn *c = wbegin(f->db);
    assert_int_equal(db_savepoint_begin(c, &err), AS_OK);
    assert_int_equal(db_event_append_text(c, 1, 0, "part.undone", "{}", time_now_ms(), &err),
                     AS_OK);
    assert_int_equal(db_savepoint_end(c, AS_EINVAL, &err), AS_EINVAL);

    /* The lock went with the part: another node appends and commits. */
    struct db_conn *o = wbegin(other);
    assert_int_equal(db_event_append_text(o, 2, 0, "node.b", "{}", time_now_ms(), &err), AS_OK);
    wcommit(other);

    assert_int_equal(db_event_append_text(c, 1, 0, "node.a", "{}", time_now_ms(), &err), AS_OK);
    /* A part after the lock was taken: its event undone, the head kept. */
    assert_int_equal(db_savepoint_begin(c, &err), AS_OK);
    assert_int_equal(db_event_append_text(c, 1, 0, "part.undone", "{}", time_now_ms(), &err),
                     AS_OK);
    assert_int_equal(db_savepoint_end(c, AS_EINVAL, &err), AS_EINVAL);
    assert_int_equal(db_savepoint_begin(c, &err), AS_OK);
    assert_int_equal(db_event_append_text(c, 1, 0, "part.kept", "{}", time_now_ms(), &err),
                     AS_OK);
    assert_int_equal(db_savepoint_end(c, AS_OK, &err), AS_OK);
    wcommit(f->db);

    struct db_audit_report rep;
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.n_events, 3);
    assert_int_equal(rep.bad_id, 0);
    assert_int_equal(rep.head_id, 3);
    char *types = tu_pg_query(f->uri, "SELECT string_agg(type, ',' ORDER BY id) FROM events");
    assert_string_equal(types, "node.b,node.a,part.kept");
    free(types);
    db_close(other);
}

/* Two nodes claim at once: SKIP LOCKED gives each different executions and
 * neither waits for the other. */
static void test_claims_skip_locked(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL);
    for (int i = 0; i < 4; i++) {
        char step[16];
        snprintf(step, sizeof step, "s%d", i);
        assert_int_equal(db_exec_insert(c, run, step, 1000 + i, 1000, NULL, &err), AS_OK);
    }
    wcommit(f->db);

    struct db *other = open_or_fail(f->uri);
    struct db_conn *a = wbegin(f->db);
    struct db_claim ca[4], cb[4];
    size_t na = 0, nb = 0;
    assert_int_equal(db_exec_due(a, 5000, "A", 2, ca, &na, &err), AS_OK);
    assert_int_equal(na, 2);
    /* A holds its two rows: B gets the other two at once. */
    struct db_conn *b = wbegin(other);
    int64_t t0 = time_now_ms();
    assert_int_equal(db_exec_due(b, 5000, "B", 4, cb, &nb, &err), AS_OK);
    assert_true(time_now_ms() - t0 < 2000);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < na; i++)
        for (size_t k = 0; k < nb; k++)
            assert_int_not_equal(ca[i].exec_id, cb[k].exec_id);
    for (size_t k = 0; k < nb; k++) {
        assert_int_equal(db_exec_take(b, &cb[k], "B", 5000, 65000, &err), AS_OK);
        db_claim_clear(&cb[k]);
    }
    wcommit(other);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(db_exec_take(a, &ca[i], "A", 5000, 65000, &err), AS_OK);
        db_claim_clear(&ca[i]);
    }
    wcommit(f->db);
    char *owners = tu_pg_query(f->uri, "SELECT string_agg(lease_owner, ',' ORDER BY lease_owner) "
                                       "FROM step_execs WHERE status = 'running'");
    assert_string_equal(owners, "A,A,B,B");
    free(owners);
    db_close(other);
}

/* ---- configuration ------------------------------------------------------------- */

/* The password from db_password_file (0600), not from a libpq file; a file
 * others can read is refused. */
/* One leader of a role among the nodes; another leads once it is gone, also
 * when it dies without letting go (its session ends). */
static void test_leader(void **state)
{
    struct fixture *f = *state;
    struct db *other = open_or_fail(f->uri);
    struct db_leader *a = NULL, *b = NULL, *c = NULL;
    struct as_err err = {0};
    int la = 0, lb = 1, lc = 1;
    assert_int_equal(db_leader_try(f->db, &a, "scheduler", &la, &err), AS_OK);
    assert_int_equal(db_leader_try(other, &b, "scheduler", &lb, &err), AS_OK);
    assert_int_equal(la, 1);
    assert_int_equal(lb, 0);
    /* Another role has its own leader. */
    assert_int_equal(db_leader_try(other, &c, "other-role", &lc, &err), AS_OK);
    assert_int_equal(lc, 1);
    /* Asking again keeps it. */
    assert_int_equal(db_leader_try(f->db, &a, "scheduler", &la, &err), AS_OK);
    assert_int_equal(db_leader_try(other, &b, "scheduler", &lb, &err), AS_OK);
    assert_int_equal(la, 1);
    assert_int_equal(lb, 0);
    /* The leader goes: the other leads at its next try, and the first,
     * trying again, does not. */
    db_leader_release(a);
    a = NULL;
    /* The server ends the closed session in its own time: wait for it (a
     * hang guard, not a timing goal). */
    for (int tries = 0; tries < 15000; tries++) {
        assert_int_equal(db_leader_try(other, &b, "scheduler", &lb, &err), AS_OK);
        if (lb)
            break;
        tu_sleep_ms(20);
    }
    assert_int_equal(lb, 1);
    assert_int_equal(db_leader_try(f->db, &a, "scheduler", &la, &err), AS_OK);
    assert_int_equal(la, 0);
    /* A leader whose session is killed (as when its node dies) loses it. */
    free(tu_pg_query(f->uri,
                     "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                     " AND granted AND database = (SELECT oid FROM pg_database WHERE datname ="
                     " current_database()) AND pid <> pg_backend_pid()"));
    /* The server ends the killed sessions in its own time: wait for it, as
     * long as a loaded machine needs (a hang guard, not a timing goal). */
    int tries = 0;
    do {
        tu_sleep_ms(20);
        assert_int_equal(db_leader_try(f->db, &a, "scheduler", &la, &err), AS_OK);
    } while (!la && ++tries < 15000);
    assert_int_equal(la, 1);
    db_leader_release(a);
    db_leader_release(b);
    db_leader_release(c);
    db_close(other);
}

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
    assert_int_equal(db_schema_version(db), 15);
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

/* A statement that failed inside a transaction: COMMIT says it rolled back. */
static void test_failed_statement_is_not_committed(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f->db);
    int64_t run = new_run(f, c, NULL);
    /* A step execution of a visit that exists: the unique constraint fails. */
    struct db_claim cl;
    assert_int_equal(db_exec_insert_claimed(c, run, "s", 1, 1000, "me", 5000, 0, &cl, &err),
                     AS_OK);
    db_claim_clear(&cl);
    assert_int_equal(db_exec_insert_claimed(c, run, "s", 1, 1000, "me", 5000, 0, &cl, &err),
                     AS_EDB);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_EDB);
    assert_non_null(strstr(err.msg, "rolled back"));
    char *n = tu_pg_query(f->uri, "SELECT count(*) FROM runs");
    assert_string_equal(n, "0");
    free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrates_once, setup, teardown),
        cmocka_unit_test(test_concurrent_first_open),
        cmocka_unit_test_setup_teardown(test_workflow_by_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_and_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_node_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wakeups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_paged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_after_rolled_back_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claims_skip_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_statement_is_not_committed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
