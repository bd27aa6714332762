/*
 * db_execs.h - step executions: the executor's durable state machine (one
 * row per visit of a run to a step: ready -> running under a lease ->
 * succeeded | failed, or back to ready (retry) or waiting (timer)), claims
 * and leases, resumes.  Conventions as in db_runs.h.
 */
#ifndef ASSENT_DB_EXECS_H
#define ASSENT_DB_EXECS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/*
 * (write) Insert the next visit of `step` in a run as ready at due_at.  Its
 * idempotency key is "<instance>/run-<run_id>/<step>/<visit>".
 */
enum as_code db_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                            int64_t due_at, int64_t now, int64_t *exec_id,
                            struct as_err *err) AS_WUR;

struct db_claim;

/*
 * (write) Insert the next visit of `step` already claimed by `owner` until
 * lease_until (status running, attempt 1, started now): the executor's
 * shortcut when it runs a run's next step itself.  visit_hint > 0 is the
 * visit number when the caller knows it (1: the run never reached the step),
 * 0 to look it up.  Fills out (exec_id, run_id, step, idempotency_key,
 * visit, attempt, lease_until, queued, prev_status "ready"); the caller sets
 * workflow_hash and dry_run.  out is cleared with db_claim_clear() by the
 * caller.
 */
enum as_code db_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                    int visit_hint, int64_t now, const char *owner,
                                    int64_t lease_until, int queued, struct db_claim *out,
                                    struct as_err *err) AS_WUR;

/* A claimable execution, as found by db_exec_due and taken by db_exec_take. */
struct db_claim {
    int64_t exec_id, run_id;
    char *step;            /* owned */
    char *idempotency_key; /* owned */
    char *resume;          /* owned JSON text or NULL */
    char *wait_state;      /* owned JSON text or NULL */
    char *prev_owner;      /* owned; set when recovered */
    char workflow_hash[65];
    int visit;
    int attempt;           /* after db_exec_take: this attempt's number (1-based); a
                            * recovered claim keeps the lost attempt's number, since
                            * nobody knows whether that attempt ever started */
    int recoveries;        /* after db_exec_take: lost claims of it that had started */
    int queued;            /* set before db_exec_take: 1 when the claim waits for a free
                            * worker (prefetch), so losing it says nothing about the step */
    int dry_run;
    int deadline_reached;  /* after db_exec_take: woke because its due_at passed while waiting */
    int recovered;         /* found running with another owner's expired lease */
    int prev_queued;       /* recovered: the lost claim had been waiting for a worker */
    char prev_status[12];  /* ready, waiting or running */
    int64_t lease_until;   /* after db_exec_take */
};

/* Free the strings of c and zero it. */
void db_claim_clear(struct db_claim *c);

/*
 * (write, first half of a claim) Up to max executions that may be claimed
 * now: ready or waiting with due_at <= now (earliest first), then running
 * ones whose lease expired and whose owner is not `owner` (a process never
 * re-claims its own in-flight steps).  Fills out[0..*n).  Must be followed
 * by db_exec_take for each in the same transaction, or nothing.
 */
enum as_code db_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                         struct db_claim *out, size_t *n, struct as_err *err) AS_WUR;

/*
 * (write) Claim c for `owner` until lease_until: status running, attempt+1,
 * started_at = now; a wait whose deadline passed gets deadline_reached = 1.
 * A recovered claim keeps its attempt number instead and counts a recovery
 * when the lost claim was not c->queued (it went straight to a worker, so
 * it had most likely started: a step that kills its process shows up as
 * recoveries).  Updates c (attempt, recoveries, deadline_reached,
 * lease_until).  AS_ECONFLICT when
 * the row changed since db_exec_due.
 */
enum as_code db_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
                          int64_t now, int64_t lease_until, struct as_err *err) AS_WUR;

/* What to record when an attempt ends. */
struct db_exec_result {
    int64_t exec_id;
    const char *owner;   /* the claim's owner and attempt: a stale result (lease */
    int attempt;         /* lost, run cancelled) is refused with AS_ECONFLICT    */
    const char *status;  /* "succeeded", "failed", "ready" (retry) or "waiting" */
    int64_t due_at;      /* ready/waiting: when to run again */
    const char *params;  /* resolved parameters (JSON) or NULL */
    const char *output;  /* JSON or NULL */
    const char *outcome; /* or NULL */
    const char *error;   /* or NULL */
    const char *wait_state; /* waiting: JSON or NULL */
    int64_t finished_at;
};

/*
 * (write) Record the end of an attempt.  "waiting" also resets attempt to 0,
 * clears resume and deadline_reached (a wait is a completed phase); but when
 * a resume was held for the execution while the attempt ran (see
 * db_exec_resume), the wait ends at once: the row is ready now with the held
 * payload as its resume.  AS_ECONFLICT when the execution is no longer
 * running under this claim.
 */
enum as_code db_exec_record(struct db_conn *conn, const struct db_exec_result *r,
                            struct as_err *err) AS_WUR;

/*
 * db_exec_record, telling the caller whether a "waiting" result was ended at
 * once by a held resume: then *held receives its payload (malloc'd JSON
 * text, caller frees), else NULL.  The executor uses it to log the resume
 * and keep the run running.
 */
enum as_code db_exec_record_held(struct db_conn *conn, const struct db_exec_result *r,
                                 char **held, struct as_err *err) AS_WUR;

/*
 * (write) Give back a claim that was never started (shutdown, or its lease
 * became too short while queued): ready again, attempt not counted.
 */
enum as_code db_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                             int attempt, struct as_err *err) AS_WUR;

/*
 * (write) Wake a waiting execution with `payload` (NULL: JSON null): it
 * becomes ready now with resume = payload, its run running, and a
 * "step.resumed" event is appended.  An execution that is running or ready
 * (not waiting yet: e.g. an approval step still mailing its approvers, or
 * already resumed and not yet claimed) holds the payload instead, with a
 * "step.resume_held" event: when its attempt ends with a wait, the wait ends
 * at once and the step runs again with ctx->resume = payload (a "step.resumed"
 * event with "held": true); if the attempt ends otherwise, the payload is not
 * delivered.  A later held payload replaces an earlier one.  Call inside any
 * write transaction, then engine_wake() after the commit so an in-process
 * engine runs it at once.  AS_ENOTFOUND: no such execution; AS_ECONFLICT:
 * it has ended (succeeded, failed, cancelled).
 */
enum as_code db_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                            struct as_err *err) AS_WUR;

/* A waiting execution ended by its resume (db_exec_end_waiting).  Borrowed. */
struct db_exec_end {
    int64_t exec_id;
    const char *resume;  /* the payload that woke it (JSON text) */
    const char *outcome; /* its outcome */
    const char *output;  /* its output (JSON text) or NULL */
    int64_t now;
    /* Called with the execution found waiting (out filled in) before
     * anything is written; 0 leaves it as it is (AS_ECONFLICT).  NULL: go on. */
    int (*accept)(void *ud, const struct db_claim *found);
    void *ud;
};

/*
 * (write) End a waiting execution at its resume without running it again,
 * when the resume itself says what the step's result is (an approval
 * decided): status succeeded with end->outcome and end->output, attempt 1,
 * started and finished now, resume = end->resume, as a claim and a
 * recorded result would have left it.  Fills out with what the executor
 * needs to go on (exec_id, run_id, step, visit, workflow_hash, dry_run;
 * cleared by the caller with db_claim_clear).  Writes no event and leaves
 * the run's status to the caller.  AS_ECONFLICT when the execution is not
 * waiting (running, ready, ended); AS_EUNSUPPORTED on a backend that
 * leaves this to db_exec_resume (then nothing is written).
 */
enum as_code db_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                 struct db_claim *out, struct as_err *err) AS_WUR;

/*
 * Earliest time something becomes claimable for `owner` (due_at of ready or
 * waiting executions, lease_until of other owners' running ones), or
 * INT64_MAX when nothing is pending.
 */
enum as_code db_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                              struct as_err *err) AS_WUR;

/* Distinct lease owners of running executions. */
enum as_code db_exec_lease_owners(struct db_conn *conn,
                                  int (*cb)(void *ud, const char *owner), void *ud,
                                  struct as_err *err) AS_WUR;

/* (write) Expire every lease held by `owner` (a process known to be dead).
 * *n (may be NULL) receives how many. */
enum as_code db_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                  struct as_err *err) AS_WUR;

struct db_exec_info {
    int64_t id, run_id;
    const char *step;
    const char *status;
    const char *idempotency_key;
    const char *params;     /* "" when NULL */
    const char *output;     /* "" when NULL */
    const char *outcome;    /* "" when NULL */
    const char *error;      /* "" when NULL */
    const char *wait_state; /* "" when NULL */
    const char *resume;     /* "" when NULL */
    const char *lease_owner;/* "" when NULL */
    int visit, attempt, deadline_reached, recoveries;
    int64_t due_at, lease_until, created_at, started_at, finished_at; /* 0 when NULL */
};
typedef int (*db_exec_cb)(void *ud, const struct db_exec_info *e);

/* Every execution of a run, in order. */
enum as_code db_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                          struct as_err *err) AS_WUR;

/*
 * What a step may refer to: the run's input (*input, malloc'd JSON text) and,
 * through cb, each ended execution (succeeded or failed) in order, so the
 * latest visit of a step comes last.  Only step, status, output, outcome and
 * error are filled in.  AS_ENOTFOUND when the run is unknown.
 */
enum as_code db_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                          void *ud, struct as_err *err) AS_WUR;

#endif
