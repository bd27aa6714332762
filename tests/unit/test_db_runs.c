/* test_db_runs.c - the SQLite store (db/sqlite/) itself: opening and
 * migrating, file modes, workflows by hash, runs and dedupe, claims and
 * leases, waits and resumes, cancel/retry, the audit chain (with tampering
 * done through a raw sqlite3 connection) and WAL checkpoints.  The one test
 * outside db/ that may use the implementation's private header. */
#include "tests/testutil.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_events.h"
#include "db/db_nodes.h"
#include "db/db_runs.h"
#include "db/db_wal.h"
#include "db/sqlite/sqlite.h"
#include "base/timeutil.h"

struct fixture {
    char *dir;
    char *path;
    struct db *db;
    int64_t wf_id;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("dbruns");
    f->path = tu_path(f->dir, "t.db");
    f->db = tu_db_open(f->dir, "t.db");
    f->wf_id = tu_db_workflow(f->db, "aaaa");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    tu_rmrf(f->dir);
    free(f->path);
    free(f->dir);
    free(f);
    return 0;
}

static struct db_conn *wbegin(struct fixture *f)
{
    struct db_conn *c = NULL;
    struct as_err err = {0};
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    return c;
}

static void wcommit(struct fixture *f)
{
    struct as_err err = {0};
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
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

/* Raw SQL on a separate connection, as an intruder (or a test) would. */
static void raw(struct fixture *f, const char *sql)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw SQL failed: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    assert_int_equal(rc, SQLITE_OK);
}

/* Frames in the log and frames copied, from a passive checkpoint on a
 * connection of the test's own. */
static void wal_frames(struct fixture *f, int *log, int *copied)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    assert_int_equal(sqlite3_exec(h, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, log, copied),
                     SQLITE_OK);
    sqlite3_close(h);
}

/* With the checkpointer, the writer's commits no longer checkpoint, yet the
 * log is copied and starts over instead of growing with every write. */
static void test_checkpointer_keeps_log_short(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
    assert_int_equal(db_exec(c, "CREATE TABLE filler (b BLOB)", &err), AS_OK);
    wcommit(f);
    struct db_checkpointer *ck = NULL;
    assert_int_equal(db_checkpointer_start(f->db, &ck, &err), AS_OK);
    /* About 6000 pages in commits of 20, as the dispatcher writes. */
    for (int i = 0; i < 300; i++) {
        c = wbegin(f);
        assert_int_equal(db_exec(c, "INSERT INTO filler SELECT randomblob(4000) FROM "
                                    "(SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL "
                                    "SELECT 4 UNION ALL SELECT 5) a, (SELECT 1 UNION ALL "
                                    "SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4) b",
                         &err), AS_OK);
        wcommit(f);
        tu_sleep_ms(1);
    }
    db_checkpointer_stop(ck);
    int log = -1, copied = -1;
    wal_frames(f, &log, &copied);
    /* Never started over, the log would hold every page written (~6000). */
    assert_true(log >= 0);
    assert_true(log < 4000);
    assert_int_equal(copied, log);
}

static void test_workflow_by_hash(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
    int64_t id2 = 0, id3 = 0;
    struct db_workflow_rec same = {"wf", "1", "aaaa", "{\"name\":\"wf\"}", "x.json"};
    struct db_workflow_rec other = {"wf", "2", "bbbb", "{\"name\":\"wf\",\"v\":2}", NULL};
    assert_int_equal(db_workflow_put(c, &same, 2000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &other, 2000, &id3, &err), AS_OK);
    wcommit(f);
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
    c = wbegin(f);
    assert_int_equal(db_workflow_put(c, &abs1, 3000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &abs2, 3000, &id2, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &same, 3000, &id2, &err), AS_OK);
    wcommit(f);
    assert_int_equal(id2, f->wf_id);
    sqlite3 *h;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT source_path FROM workflows WHERE hash = 'aaaa'",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "/srv/flows/x.json");
    sqlite3_finalize(st);
    sqlite3_close(h);
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
    struct db_conn *c = wbegin(f);
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
    wcommit(f);

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
    struct db_conn *c = wbegin(f);
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
    /* Another owner also sees our lease as a future claim. */
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
    wcommit(f);
}

static void test_lease_expiry(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
    int64_t run = new_run(f, c, NULL), ex = 0;
    assert_int_equal(db_exec_insert(c, run, "s", 1000, 1000, &ex, &err), AS_OK);
    struct db_claim cl[2];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 1000, "A", 2, cl, &n, &err), AS_OK);
    assert_int_equal(db_exec_take(c, &cl[0], "A", 1000, 3000, &err), AS_OK);
    char key[200];
    snprintf(key, sizeof key, "%s", cl[0].idempotency_key);
    db_claim_clear(&cl[0]);
    /* Before the lease ends nobody may take it; after, anyone but A. */
    assert_int_equal(db_exec_due(c, 2999, "B", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_exec_due(c, 3000, "A", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_exec_due(c, 3000, "B", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_true(cl[0].recovered);
    assert_string_equal(cl[0].prev_owner, "A");
    assert_string_equal(cl[0].idempotency_key, key);
    assert_int_equal(db_exec_take(c, &cl[0], "B", 3000, 9000, &err), AS_OK);
    /* Nobody knows whether A's attempt started: it keeps its number. */
    assert_int_equal(cl[0].attempt, 1);
    assert_int_equal(cl[0].recoveries, 1);
    db_claim_clear(&cl[0]);
    /* A's late result is refused: B holds it now. */
    struct db_exec_result late = {.exec_id = ex, .owner = "A", .attempt = 1, .status = "succeeded"};
    assert_int_equal(db_exec_record(c, &late, &err), AS_ECONFLICT);

    /* Expiring an owner makes its claims due at once. */
    int64_t expired = 0;
    assert_int_equal(db_exec_expire_owner(c, "B", &expired, &err), AS_OK);
    assert_int_equal(expired, 1);
    assert_int_equal(db_exec_due(c, 3001, "C", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    db_claim_clear(&cl[0]);
    wcommit(f);
}

static void test_wait_and_resume(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
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
    wcommit(f);

    c = wbegin(f);
    json_t *payload = json_pack("{s:s, s:s}", "decision", "approved", "by", "owner@x");
    assert_int_equal(db_exec_resume(c, ex, payload, &err), AS_OK);
    /* Resumed but not yet claimed: a second payload is held for the next wait. */
    json_t *second = json_pack("{s:s}", "decision", "next");
    assert_int_equal(db_exec_resume(c, ex, second, &err), AS_OK);
    json_decref(second);
    assert_int_equal(db_exec_resume(c, 4242, payload, &err), AS_ENOTFOUND);
    json_decref(payload);
    char status[16];
    assert_int_equal(db_run_status(c, run, status, sizeof status, &err), AS_OK);
    assert_string_equal(status, "running");
    /* The resumed step is due now with its payload and saved state; the other
     * waits until its deadline, then wakes with deadline_reached. */
    assert_int_equal(db_exec_due(c, time_now_ms(), "me", 2, cl, &n, &err), AS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].exec_id, ex);
    assert_string_equal(cl[0].resume, "{\"by\":\"owner@x\",\"decision\":\"approved\"}");
    assert_string_equal(cl[0].wait_state, "{\"token\":1}");
    assert_int_equal(db_exec_take(c, &cl[0], "me", 2000, 5000, &err), AS_OK);
    assert_int_equal(cl[0].attempt, 1); /* a wait resets the attempts */
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
    /* Without a held payload a wait is a wait. */
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
    /* A resume while the expired wait runs is held; it is not delivered when
     * the attempt ends otherwise, and an ended step takes none. */
    assert_int_equal(db_exec_resume(c, ex2, NULL, &err), AS_OK);
    struct db_exec_result done = {.exec_id = ex2, .owner = "me", .attempt = 1,
                                  .status = "succeeded", .outcome = "expired",
                                  .finished_at = far + 1};
    assert_int_equal(db_exec_record_held(c, &done, &held, &err), AS_OK);
    assert_null(held);
    assert_int_equal(db_exec_resume(c, ex2, NULL, &err), AS_ECONFLICT);
    wcommit(f);
}

static void test_cancel_and_retry(void **state)
{
    struct fixture *f = *state;
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
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
    /* Meanwhile another run took the dedupe key: retry must refuse. */
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
    wcommit(f);
}

static void append_n(struct fixture *f, int n)
{
    struct as_err err = {0};
    struct db_conn *c = wbegin(f);
    for (int i = 0; i < n; i++) {
        json_t *d = json_pack("{s:i, s:s}", "i", i, "note", "x|y\nz");
        assert_int_equal(db_event_append(c, i % 3 ? 1 : 0, i % 2 ? 7 : 0, "test.event", d, &err),
                         AS_OK);
        json_decref(d);
    }
    assert_int_equal(db_event_append(c, 1, 0, "Bad Type", NULL, &err), AS_EINVAL);
    wcommit(f);
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
    raw(f, "UPDATE events SET data = '{\"i\":4,\"note\":\"forged\"}' WHERE id = 5");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 5);
    assert_non_null(strstr(rep.problem, "altered"));
    raw(f, "UPDATE events SET data = '{\"i\":4,\"note\":\"x|y\\nz\"}' WHERE id = 5");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    /* Altered metadata: the run an event belongs to. */
    raw(f, "UPDATE events SET run_id = 99 WHERE id = 3");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 3);
    raw(f, "UPDATE events SET run_id = 1 WHERE id = 3");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);

    /* Deleted record: the chain breaks at the one after it. */
    raw(f, "CREATE TABLE saved AS SELECT * FROM events WHERE id = 7; DELETE FROM events WHERE id = 7");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 8);
    assert_non_null(strstr(rep.problem, "7..7"));
    assert_non_null(strstr(rep.problem, "deleted"));
    raw(f, "INSERT INTO events SELECT * FROM saved; DROP TABLE saved");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);

    /* Inserted record at the end, with a made-up chain. */
    raw(f, "INSERT INTO events (id, run_id, ts, type, data, prev_hash, hash) "
           "VALUES (11, 1, 5, 'approval.decided', '{}', 'f00d', 'beef')");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 11);
    assert_non_null(strstr(rep.problem, "inserted"));
    /* ... or copying the previous hash as its link: still caught by its own hash. */
    raw(f, "UPDATE events SET prev_hash = (SELECT hash FROM events WHERE id = 10) WHERE id = 11");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 11);
    raw(f, "DELETE FROM events WHERE id = 11");

    /* Inserted in the middle (a row squeezed between, ids shifted). */
    raw(f, "UPDATE events SET id = id + 100 WHERE id > 4; "
           "UPDATE events SET id = id - 99 WHERE id > 100; "
           "INSERT INTO events (id, run_id, ts, type, data, prev_hash, hash) "
           "SELECT 5, 1, ts, 'approval.decided', '{}', hash, hash FROM events WHERE id = 4");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 5);

    /* Truncated tail: only an anchor can tell. */
    raw(f, "DELETE FROM events WHERE id = 5; UPDATE events SET id = id - 1 WHERE id > 5");
    verify(f, &rep, 0, NULL);
    assert_int_equal(rep.bad_id, 0);
    raw(f, "DELETE FROM events WHERE id >= 9");
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

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("%s: cannot stat", path);
    return st.st_mode & 07777;
}

/* Whatever the umask: folders 0700, database and its -wal/-shm/-journal 0600. */
static void test_db_file_modes(void **state)
{
    (void)state;
    const mode_t umasks[] = {0, 022, 002};
    for (size_t u = 0; u < sizeof umasks / sizeof umasks[0]; u++) {
        mode_t old = umask(umasks[u]);
        char *dir = tu_tmpdir("dbmode");
        char *path = tu_path(dir, "var/sub/assent.db");
        char *var = tu_path(dir, "var"), *sub = tu_path(dir, "var/sub");
        char wal[600], shm[600], journal[600];
        snprintf(wal, sizeof wal, "%s-wal", path);
        snprintf(shm, sizeof shm, "%s-shm", path);
        snprintf(journal, sizeof journal, "%s-journal", path);
        struct db *db = NULL;
        struct as_err err = {0};
        assert_int_equal(db_open(path, "NORMAL", &db, &err), AS_OK);
        struct db_conn *c;
        assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
        assert_int_equal(db_exec(c, "CREATE TABLE t(x); INSERT INTO t VALUES (1)", &err), AS_OK);
        assert_int_equal(db_write_end(db, AS_OK, &err), AS_OK);
        assert_int_equal(mode_of(var), 0700);
        assert_int_equal(mode_of(sub), 0700);
        assert_int_equal(mode_of(path), 0600);
        assert_int_equal(mode_of(wal), 0600);
        assert_int_equal(mode_of(shm), 0600);
        db_close(db);
        /* A rollback journal (kept with PERSIST) gets the file's mode too. */
        sqlite3 *h = NULL;
        assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
        assert_int_equal(sqlite3_exec(h, "PRAGMA journal_mode=PERSIST; INSERT INTO t VALUES (2)",
                                      NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(mode_of(journal), 0600);
        sqlite3_close(h);
        umask(old);
        tu_rmrf(dir);
        free(path);
        free(var);
        free(sub);
        free(dir);
    }
}

static void test_db_open_migrates(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("db");
    char *path = tu_path(dir, "sub/dir/assent.db");
    struct db *db = NULL;
    struct as_err err = {0};
    assert_int_equal(db_open(path, "NORMAL", &db, &err), AS_OK);
    int v = db_schema_version(db);
    assert_true(v >= 1);
    struct db_conn *c;
    assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
    sqlite3_stmt *st = db_stmt(c, "PRAGMA journal_mode", &err);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal(db_col_text(st, 0), "wal");
    db_stmt_done(st);
    /* No CHECK is an IN list (migration 016: a temporary b-tree per row
     * written), and the OR forms still refuse what they refused. */
    st = db_stmt(c, "SELECT count(*) FROM sqlite_schema WHERE sql GLOB '* IN (''*'", &err);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    db_stmt_done(st);
    st = db_stmt(c, "EXPLAIN INSERT INTO approval_links (token_hash, approver_id, seq, purpose,"
                    " created_at) VALUES ('h', 1, 1, 'request', 1)", &err);
    assert_non_null(st);
    int ephemeral = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        ephemeral += strcmp(db_col_text(st, 1), "OpenEphemeral") == 0;
    db_stmt_done(st);
    assert_int_equal(ephemeral, 0);
    assert_int_equal(db_exec(c, "INSERT INTO mail_sends (idempotency_key, message_id, transport,"
                                " state, attempts, resends, owner, lease_until, date_ms,"
                                " created_at, updated_at) VALUES ('k', 'm', 'file', 'lost', 1,"
                                " 0, 'o', 1, 1, 1, 1)", &err),
                     AS_EDB);
    assert_non_null(strstr(err.msg, "CHECK"));
    assert_int_equal(db_write_end(db, AS_OK, &err), AS_OK);
    db_close(db);
    /* Reopening applies nothing twice. */
    assert_int_equal(db_open(path, "FULL", &db, &err), AS_OK);
    assert_int_equal(db_schema_version(db), v);
    db_close(db);
    assert_int_equal(db_open(path, "SOMETIMES", &db, &err), AS_EINVAL);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* Wake-ups on SQLite: a commit through another handle on the file (as
 * another process's) wakes the watcher; with nothing written, nothing. */
struct wake_count {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
};

static void count_wake(void *ud)
{
    struct wake_count *w = ud;
    pthread_mutex_lock(&w->lock);
    w->n++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void test_wakeups_from_other_writers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("dbwake");
    char *path = tu_path(dir, "w.db");
    struct db *db = NULL, *other = NULL;
    struct db_wakeups *wk = NULL;
    struct as_err err = {0};
    struct wake_count w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    assert_int_equal(db_open(path, "NORMAL", &db, &err), AS_OK);
    assert_int_equal(db_open(path, "NORMAL", &other, &err), AS_OK);
    assert_int_equal(db_wakeups_start(db, count_wake, &w, &wk, &err), AS_OK);
    assert_non_null(wk);
    struct timespec nap = {0, 100 * 1000000L};
    nanosleep(&nap, NULL);
    pthread_mutex_lock(&w.lock);
    assert_int_equal(w.n, 0); /* nobody wrote */
    pthread_mutex_unlock(&w.lock);

    json_t *data = json_pack("{s:s}", "who", "another process");
    assert_int_equal(db_audit_append(other, "test.written", data, &err), AS_OK);
    json_decref(data);
    /* Woken: no deadline of ours to trip on a busy machine, only the
     * test's own overall limit. */
    pthread_mutex_lock(&w.lock);
    while (w.n == 0)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    db_wakeups_stop(wk);
    db_close(other);
    db_close(db);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* Several processes opening one new file at once (a worker and a command
 * started together): each opens it, the schema made once. */
static void test_concurrent_first_open(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("dbopen");
    char *path = tu_path(dir, "new.db");
    enum { N = 6 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct db *db = NULL;
            struct as_err err = {0};
            int rc = db_open(path, "NORMAL", &db, &err);
            if (rc)
                fprintf(stderr, "child %d: %s\n", i, err.msg);
            db_close(db);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < N; i++) {
        int st = 0;
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    struct db *db = NULL;
    struct as_err err = {0};
    assert_int_equal(db_open(path, "NORMAL", &db, &err), AS_OK);
    assert_true(db_schema_version(db) > 0);
    db_close(db);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workflow_by_hash, setup, teardown),
        cmocka_unit_test(test_wakeups_from_other_writers),
        cmocka_unit_test_setup_teardown(test_run_dedupe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_and_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpointer_keeps_log_short, setup, teardown),
        cmocka_unit_test(test_db_open_migrates),
        cmocka_unit_test(test_db_file_modes),
        cmocka_unit_test(test_concurrent_first_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
