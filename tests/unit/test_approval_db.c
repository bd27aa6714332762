/* test_approval_db.c - approvals in the store: creation, links, the decision
 * function under every policy, conflicts, expiry, cancelled runs, the
 * resume retry, concurrent decisions, listing and secrets. */
#include "tests/testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "approvals/approval_decide.h"
#include "db/db_approvals.h"
#include "db/db_runs.h"
#include "approvals/token.h"

#define NOW 1700000000000LL
#define HOUR (3600 * 1000LL)

/* test_approval_db_pg.c runs these cases on PostgreSQL: it defines
 * APPROVAL_DB_SETUP and includes this file. */
#ifndef APPROVAL_DB_SETUP
#define APPROVAL_DB_SETUP tu_db_setup
#endif

static int setup(void **state)
{
    return APPROVAL_DB_SETUP(state, "approvaldb");
}

static int teardown(void **state)
{
    return tu_db_teardown(state);
}

/* A run with one execution of step "ask", claimed by "t" and, if `wait`,
 * parked waiting (as the executor leaves an approval step). */
static void new_exec(struct tu_db_fixture *f, int wait, int64_t *run_id, int64_t *exec_id)
{
    struct as_err err = {0};
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    struct db_run_new r = {.workflow_id = f->wf_id, .workflow = "wf", .input = "{}"};
    assert_int_equal(db_run_insert(c, &r, 1000, run_id, &err), AS_OK);
    assert_int_equal(db_exec_insert(c, *run_id, "ask", 1000, 1000, exec_id, &err), AS_OK);
    struct db_claim cl[8];
    size_t n = 0;
    assert_int_equal(db_exec_due(c, 2000, "t", 8, cl, &n, &err), AS_OK);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i].exec_id == *exec_id) {
            assert_int_equal(db_exec_take(c, &cl[i], "t", 2000, NOW * 2, &err), AS_OK);
            found = 1;
        }
        db_claim_clear(&cl[i]);
    }
    assert_true(found);
    if (wait) {
        struct db_exec_result res = {.exec_id = *exec_id, .owner = "t", .attempt = 1,
                                     .status = "waiting", .due_at = NOW * 2, .finished_at = 2000};
        assert_int_equal(db_exec_record(c, &res, &err), AS_OK);
    }
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
}

/* The executor runs the woken step again, which waits again. */
static void park(struct tu_db_fixture *f, int64_t exec_id)
{
    struct as_err err = {0};
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    struct db_claim cl[8];
    size_t n = 0;
    int attempt = 0;
    assert_int_equal(db_exec_due(c, NOW * 2 - 1, "t", 8, cl, &n, &err), AS_OK);
    for (size_t i = 0; i < n; i++) {
        if (cl[i].exec_id == exec_id) {
            assert_int_equal(db_exec_take(c, &cl[i], "t", NOW, NOW * 2, &err), AS_OK);
            attempt = cl[i].attempt;
        }
        db_claim_clear(&cl[i]);
    }
    assert_true(attempt > 0);
    struct db_exec_result res = {.exec_id = exec_id, .owner = "t", .attempt = attempt,
                                 .status = "waiting", .due_at = NOW * 2, .finished_at = NOW};
    assert_int_equal(db_exec_record(c, &res, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
}

struct exec_status_req {
    int64_t exec_id;
    char *status; /* malloc'd */
};

static int exec_status_cb(void *ud, const struct db_exec_info *e)
{
    struct exec_status_req *q = ud;
    if (e->id != q->exec_id)
        return 0;
    q->status = strdup(e->status);
    return 1;
}

/* The status of execution exec_id of run run_id (malloc'd). */
static char *exec_status(struct tu_db_fixture *f, int64_t run_id, int64_t exec_id)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct exec_status_req q = {.exec_id = exec_id};
    assert_int_equal(db_read_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_execs(c, run_id, exec_status_cb, &q, &err), AS_OK);
    db_read_end(f->db, c);
    assert_non_null(q.status);
    return q.status;
}

static int64_t create(struct tu_db_fixture *f, int64_t run_id, int64_t exec_id, const char *policy,
                      const char *approvers_json, int require_comment, int64_t expires_at)
{
    char key[64];
    snprintf(key, sizeof key, "inst/run-%lld/ask/%d", (long long)run_id, ++f->n_keys);
    json_t *approvers = json_loads(approvers_json, 0, NULL);
    json_t *details = json_pack("{s:s}", "user", "u@example.org");
    struct approval_new a = {
        .run_id = run_id, .exec_id = exec_id, .workflow = "wf", .step = "ask",
        .idempotency_key = key, .policy = policy, .subject = "Disable POP3 for u",
        .message = "Please decide", .requested_by = "test", .details = details,
        .request_json = "{\"identity\":\"u@example.org\"}",
        .request_hash = "3b5d0c0c3b5d0c0c3b5d0c0c3b5d0c0c3b5d0c0c3b5d0c0c3b5d0c0c3b5d0c0c",
        .require_comment_on_reject = require_comment, .approvers = approvers,
        .expires_at = expires_at, .now = NOW,
    };
    struct as_err err = {0};
    int64_t id = 0, id2 = 0;
    int created = 0;
    assert_int_equal(db_approvals_ensure(f->db, &a, &id, &created, &err), AS_OK);
    assert_int_equal(created, 1);
    /* Same step key: the same approval, nothing new. */
    assert_int_equal(db_approvals_ensure(f->db, &a, &id2, &created, &err), AS_OK);
    assert_int_equal(created, 0);
    assert_int_equal(id, id2);
    json_decref(approvers);
    json_decref(details);
    return id;
}

/* A new link for approver number i, its token into token. */
static void link_for(struct tu_db_fixture *f, int64_t approval_id, size_t i, char *token, char *hash)
{
    struct as_err err = {0};
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->db, approval_id, &view, &err), AS_OK);
    json_t *p = json_array_get(json_object_get(view, "approvers"), i);
    assert_non_null(p);
    assert_int_equal(token_new(token, TOKEN_LEN + 1, hash, TOKEN_HASH_LEN + 1, &err), AS_OK);
    int seq = 0;
    assert_int_equal(db_approvals_add_link(f->db, json_integer_value(json_object_get(p, "id")),
                                           "request", hash, NOW, &seq, &err), AS_OK);
    assert_true(seq >= 1);
    assert_int_equal(db_approvals_link_sent(f->db, hash, NOW, &err), AS_OK);
    json_decref(view);
}

static enum as_code decide(struct tu_db_fixture *f, const char *hash, const char *decision,
                           const char *comment, int64_t now, struct approval_decision_result *res)
{
    struct as_err err = {0};
    struct approval_decision d = {.token_hash = hash, .decision = decision, .comment = comment,
                                  .via = "web", .client_addr = "192.0.2.7",
                                  .user_agent = "TestAgent/1.0", .now = now};
    return approval_decide(f->db, &d, res, &err);
}

static const char *approver_status(const json_t *view, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(view, "approvers"), i), "status"));
}

struct count_events_req {
    const char *type, *needle;
    int n;
};

static int count_events_cb(void *ud, const struct db_event_info *ev)
{
    struct count_events_req *q = ud;
    if (strcmp(ev->type, q->type) == 0 && (!q->needle || strstr(ev->data, q->needle)))
        q->n++;
    return 0;
}

/* Events of type `type` of run run_id whose data contains needle (NULL: any). */
static int count_events(struct tu_db_fixture *f, int64_t run_id, const char *type, const char *needle)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct count_events_req q = {.type = type, .needle = needle};
    assert_int_equal(db_read_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, run_id, count_events_cb, &q, &err), AS_OK);
    db_read_end(f->db, c);
    return q.n;
}

static void test_any_policy(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "any", "[\"a@example.org\", \"b@example.org\"]", 0,
                        NOW + HOUR);
    char ta[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], tb[TOKEN_LEN + 1], hb[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, ta, ha);
    link_for(f, id, 1, tb, hb);

    json_t *view = NULL;
    assert_int_equal(db_approvals_by_token(f->db, hb, &view, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(view, "me")), 1);
    assert_string_equal(json_string_value(json_object_get(view, "status")), "pending");
    assert_string_equal(json_string_value(json_object_get(json_object_get(view, "details"), "user")),
                        "u@example.org");
    assert_true(json_integer_value(json_object_get(json_array_get(json_object_get(view, "approvers"), 1),
                                                   "sent_at")) > 0);
    json_decref(view);

    struct approval_decision_result res;
    assert_int_equal(decide(f, ha, "approve", "fine", NOW + 1000, &res), AS_OK);
    assert_string_equal(res.status, "approved");
    assert_string_equal(res.approver, "a@example.org");
    assert_int_equal(res.resumed, 1);
    char *st = exec_status(f, run, exec);
    assert_string_equal(st, "ready"); /* the step was woken */
    free(st);

    /* Replay of the same link, and the other approver: already decided, by whom. */
    assert_int_equal(decide(f, ha, "approve", NULL, NOW + 2000, &res), AS_ECONFLICT);
    assert_string_equal(res.decided_by, "a@example.org");
    assert_int_equal(decide(f, hb, "reject", "no", NOW + 2000, &res), AS_ECONFLICT);
    assert_string_equal(res.decided_by, "a@example.org");
    assert_string_equal(res.decided_what, "approved");
    assert_int_equal(res.decided_at, NOW + 1000);

    assert_int_equal(db_approvals_by_token(f->db, hb, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "status")), "approved");
    assert_string_equal(json_string_value(json_object_get(view, "decided_by")), "a@example.org");
    assert_string_equal(json_string_value(json_object_get(view, "comment")), "fine");
    assert_string_equal(approver_status(view, 0), "approved");
    assert_string_equal(approver_status(view, 1), "closed"); /* the other link is closed */
    json_decref(view);

    /* The decision is in the run's event log with address and user agent. */
    assert_int_equal(count_events(f, run, "approval.decision", "TestAgent/1.0"), 1);
    assert_int_equal(count_events(f, run, "approval.decision", "192.0.2.7"), 1);
    assert_int_equal(count_events(f, run, "approval.requested", NULL), 1);

    /* Unknown tokens. */
    char hx[TOKEN_HASH_LEN + 1];
    token_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", hx);
    assert_int_equal(decide(f, hx, "approve", NULL, NOW, &res), AS_ENOTFOUND);
    assert_int_equal(db_approvals_by_token(f->db, hx, &view, &err), AS_ENOTFOUND);
    assert_int_equal(decide(f, ha, "maybe", NULL, NOW, &res), AS_EINVAL);
}

static void test_all_policy(void **state)
{
    struct tu_db_fixture *f = *state;
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "all", "[\"a@example.org\", \"b@example.org\"]", 0,
                        NOW + HOUR);
    char ta[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], tb[TOKEN_LEN + 1], hb[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, ta, ha);
    link_for(f, id, 1, tb, hb);
    struct approval_decision_result res;
    assert_int_equal(decide(f, ha, "approve", NULL, NOW + 10, &res), AS_OK);
    assert_string_equal(res.status, "pending");
    assert_int_equal(res.resumed, 0); /* nothing for the step to do yet */
    assert_int_equal(decide(f, ha, "approve", NULL, NOW + 20, &res), AS_ECONFLICT);
    assert_string_equal(res.decided_what, "approved");
    assert_int_equal(decide(f, hb, "approve", NULL, NOW + 30, &res), AS_OK);
    assert_string_equal(res.status, "approved");
    assert_int_equal(res.resumed, 1);

    /* A second approval under `all`: one rejection rejects. */
    int64_t run2, exec2;
    new_exec(f, 1, &run2, &exec2);
    int64_t id2 = create(f, run2, exec2, "all", "[\"a@example.org\", \"b@example.org\"]", 0,
                         NOW + HOUR);
    link_for(f, id2, 0, ta, ha);
    link_for(f, id2, 1, tb, hb);
    assert_int_equal(decide(f, ha, "approve", NULL, NOW + 10, &res), AS_OK);
    assert_int_equal(decide(f, hb, "reject", "not now", NOW + 20, &res), AS_OK);
    assert_string_equal(res.status, "rejected");
    assert_int_equal(res.resumed, 1);
}

static void test_sequential_policy(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "sequential",
                        "[\"a@example.org\", \"b@example.org\", \"c@example.org\"]", 0, NOW + HOUR);
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
    assert_string_equal(approver_status(view, 0), "pending");
    assert_string_equal(approver_status(view, 1), "queued");
    assert_string_equal(approver_status(view, 2), "queued");
    json_decref(view);

    char t[TOKEN_LEN + 1], h[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, t, h);
    struct approval_decision_result res;
    assert_int_equal(decide(f, h, "approve", NULL, NOW + 10, &res), AS_OK);
    assert_string_equal(res.status, "pending");
    assert_int_equal(res.resumed, 1); /* the step must mail the next approver */
    assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
    assert_string_equal(approver_status(view, 1), "pending");
    assert_string_equal(approver_status(view, 2), "queued");
    json_decref(view);

    park(f, exec); /* the step mailed b and waits again */
    link_for(f, id, 1, t, h);
    assert_int_equal(decide(f, h, "approve", NULL, NOW + 20, &res), AS_OK);
    assert_string_equal(res.status, "pending");
    park(f, exec);
    link_for(f, id, 2, t, h);
    assert_int_equal(decide(f, h, "reject", "third says no", NOW + 30, &res), AS_OK);
    assert_string_equal(res.status, "rejected");
    assert_int_equal(db_approvals_get(f->db, id, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "decided_by")), "c@example.org");
    json_decref(view);
}

static void test_expiry_comment_cancel_admin(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    struct approval_decision_result res;
    char t[TOKEN_LEN + 1], h[TOKEN_HASH_LEN + 1];

    /* Expiry: refused after expires_at even before the step marks it. */
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "any", "[\"a@example.org\"]", 1, NOW + HOUR);
    link_for(f, id, 0, t, h);
    assert_int_equal(decide(f, h, "approve", NULL, NOW + HOUR, &res), AS_EEXPIRED);
    /* A required comment. */
    assert_int_equal(decide(f, h, "reject", "  \n", NOW + 10, &res), AS_EINVAL);
    int changed = 0;
    assert_int_equal(db_approvals_expire(f->db, id, NOW + HOUR, &changed, &err), AS_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(db_approvals_expire(f->db, id, NOW + HOUR, &changed, &err), AS_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(decide(f, h, "approve", NULL, NOW + 10, &res), AS_EEXPIRED);
    assert_int_equal(count_events(f, run, "approval.expired", NULL), 1);

    /* A cancelled run closes every link. */
    int64_t run2, exec2;
    new_exec(f, 1, &run2, &exec2);
    int64_t id2 = create(f, run2, exec2, "any", "[\"a@example.org\"]", 1, NOW + HOUR);
    link_for(f, id2, 0, t, h);
    json_t *list = NULL;
    assert_int_equal(db_approvals_list(f->db, 0, 0, &list, &err), AS_OK);
    size_t before = json_array_size(list);
    json_decref(list);
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_cancel(c, run2, NOW, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    assert_int_equal(decide(f, h, "reject", "why", NOW + 10, &res), AS_ECANCELLED);
    assert_int_equal(db_approvals_list(f->db, 0, 0, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), before - 1);
    json_decref(list);

    /* An administrator decides a whole `all` approval by id from the terminal. */
    int64_t run3, exec3;
    new_exec(f, 1, &run3, &exec3);
    int64_t id3 = create(f, run3, exec3, "all", "[\"a@example.org\", \"b@example.org\"]", 0,
                         NOW + HOUR);
    struct approval_decision d = {.approval_id = id3, .decision = "approve", .comment = "ok",
                                  .via = "cli", .actor = "root", .now = NOW + 5};
    assert_int_equal(approval_decide(f->db, &d, &res, &err), AS_OK);
    assert_string_equal(res.status, "approved");
    json_t *view = NULL;
    assert_int_equal(db_approvals_get(f->db, id3, &view, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(view, "decided_by")), "root");
    assert_string_equal(json_string_value(json_object_get(view, "decided_via")), "cli");
    assert_string_equal(approver_status(view, 0), "closed");
    json_decref(view);
    assert_int_equal(count_events(f, run3, "approval.decision", "\"via\":\"cli\""), 1);

    assert_int_equal(db_approvals_list(f->db, 1, 0, &list, &err), AS_OK);
    assert_true(json_array_size(list) >= 4);
    json_decref(list);
    json_t *stats = NULL;
    assert_int_equal(db_approvals_stats(f->db, &stats, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "approvals"), "expired")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(stats, "runs"), "cancelled")), 1);
    json_decref(stats);
}

/* An approval still pending when its run ended in any way is shown as
 * withdrawn in listings, approvers still asked or queued too; decided
 * approvals keep their status; the status filter matches what is shown. */
static void test_withdrawn_in_listings(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run_f, exec_f, run_o, exec_o, run_d, exec_d;
    new_exec(f, 1, &run_f, &exec_f);
    new_exec(f, 1, &run_o, &exec_o);
    new_exec(f, 1, &run_d, &exec_d);
    int64_t id_f = create(f, run_f, exec_f, "sequential", "[\"a@example.org\", \"b@example.org\"]",
                          0, NOW + HOUR);
    int64_t id_o = create(f, run_o, exec_o, "any", "[\"c@example.org\"]", 0, NOW + HOUR);
    int64_t id_d = create(f, run_d, exec_d, "any", "[\"d@example.org\"]", 0, NOW + HOUR);
    struct approval_decision d = {.approval_id = id_d, .decision = "approve", .comment = "ok",
                                  .via = "cli", .actor = "root", .now = NOW + 5};
    struct approval_decision_result res;
    assert_int_equal(approval_decide(f->db, &d, &res, &err), AS_OK);
    /* Run f fails, run d succeeds after its decision; run o stays open. */
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_set_status(c, run_f, "failed", "boom", NOW + 6, &err), AS_OK);
    assert_int_equal(db_run_set_status(c, run_d, "succeeded", NULL, NOW + 6, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);

    json_t *list = NULL;
    struct db_approvals_filter all = {.all = 1};
    assert_int_equal(db_approvals_list_where(f->db, &all, &list, &err), AS_OK);
    size_t i;
    json_t *row;
    int seen_f = 0;
    json_array_foreach(list, i, row)
    {
        int64_t id = json_integer_value(json_object_get(row, "approval_id"));
        const char *st = json_string_value(json_object_get(row, "status"));
        const char *ast = json_string_value(json_object_get(row, "approver_status"));
        if (id == id_f) {
            seen_f++;
            assert_string_equal(st, "withdrawn");
            assert_string_equal(ast, "withdrawn"); /* pending a, queued b */
            assert_string_equal(json_string_value(json_object_get(row, "run_status")), "failed");
        } else if (id == id_o) {
            assert_string_equal(st, "pending");
            assert_string_equal(ast, "pending");
        } else if (id == id_d) {
            assert_string_equal(st, "approved");
            assert_string_equal(ast, "closed"); /* an administrator decided for everyone */
        }
    }
    assert_int_equal(seen_f, 2);
    json_decref(list);

    struct db_approvals_filter wd = {.status = "withdrawn"};
    assert_int_equal(db_approvals_list_where(f->db, &wd, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 2);
    json_array_foreach(list, i, row)
        assert_int_equal(json_integer_value(json_object_get(row, "approval_id")), id_f);
    json_decref(list);
    struct db_approvals_filter pend = {.status = "pending"};
    assert_int_equal(db_approvals_list_where(f->db, &pend, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "approval_id")),
                     id_o);
    json_decref(list);
    /* Without a filter: only approvers still asked in open runs, as before. */
    assert_int_equal(db_approvals_list(f->db, 0, 0, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    struct db_approvals_filter bad = {.status = "gone"};
    assert_int_equal(db_approvals_list_where(f->db, &bad, &list, &err), AS_EINVAL);
    assert_null(list);
    assert_non_null(strstr(err.msg, "withdrawn"));
}

static void test_resume_while_running(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t run, exec;
    new_exec(f, 0, &run, &exec); /* the step is still running (mailing) */
    int64_t id = create(f, run, exec, "any", "[\"a@example.org\"]", 0, NOW + HOUR);
    char t[TOKEN_LEN + 1], h[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, t, h);
    struct approval_decision_result res;
    assert_int_equal(decide(f, h, "approve", NULL, NOW + 10, &res), AS_OK);
    assert_string_equal(res.status, "approved");
    assert_int_equal(res.resumed, 1); /* held by the engine until the step waits */
    char *st = exec_status(f, run, exec);
    assert_string_equal(st, "running");
    free(st);
    struct db_conn *c;
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    struct db_exec_result wait = {.exec_id = exec, .owner = "t", .attempt = 1,
                                  .status = "waiting", .due_at = NOW * 2, .finished_at = NOW};
    char *held = NULL;
    assert_int_equal(db_exec_record_held(c, &wait, &held, &err), AS_OK); /* the executor records the wait */
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    assert_non_null(held); /* ...which ends at once with the decision */
    assert_non_null(strstr(held, "\"decision\":\"approved\""));
    free(held);
    st = exec_status(f, run, exec);
    assert_string_equal(st, "ready");
    free(st);
}

struct race {
    struct tu_db_fixture *f;
    const char *hash;
    const char *decision;
    pthread_barrier_t *barrier;
    enum as_code rc;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    struct approval_decision_result res;
    pthread_barrier_wait(r->barrier);
    r->rc = decide(r->f, r->hash, r->decision, NULL, NOW + 100, &res);
    return NULL;
}

static void test_concurrent_decisions(void **state)
{
    struct tu_db_fixture *f = *state;
    int64_t run, exec;
    new_exec(f, 1, &run, &exec);
    int64_t id = create(f, run, exec, "any", "[\"a@example.org\", \"b@example.org\"]", 0,
                        NOW + HOUR);
    char ta[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], tb[TOKEN_LEN + 1], hb[TOKEN_HASH_LEN + 1];
    link_for(f, id, 0, ta, ha);
    link_for(f, id, 1, tb, hb);
    enum { N = 8 };
    pthread_t th[N];
    struct race r[N];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (struct race){f, i % 2 ? hb : ha, i % 3 ? "approve" : "reject", &barrier, AS_EIO};
        pthread_create(&th[i], NULL, race_main, &r[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].rc == AS_OK;
        conflict += r[i].rc == AS_ECONFLICT;
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, N - 1);
    assert_int_equal(count_events(f, run, "approval.decision", NULL), 1);
}

static void test_secret(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    unsigned char a[32], b[32], zero[32] = {0};
    assert_int_equal(db_approvals_secret(f->db, "csrf", a, sizeof a, &err), AS_OK);
    assert_int_equal(db_approvals_secret(f->db, "csrf", b, sizeof b, &err), AS_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(db_approvals_secret(f->db, "other", b, sizeof b, &err), AS_OK);
    assert_memory_not_equal(a, b, sizeof a);
}

#define APPROVAL_DB_CASES                                                                         \
    cmocka_unit_test_setup_teardown(test_any_policy, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_all_policy, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_sequential_policy, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_expiry_comment_cancel_admin, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_withdrawn_in_listings, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_resume_while_running, setup, teardown),              \
        cmocka_unit_test_setup_teardown(test_concurrent_decisions, setup, teardown),              \
        cmocka_unit_test_setup_teardown(test_secret, setup, teardown)

#ifndef APPROVAL_DB_NO_MAIN
int main(void)
{
    const struct CMUnitTest tests[] = {APPROVAL_DB_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
