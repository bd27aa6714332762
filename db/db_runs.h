/*
 * db_runs.h - durable state of the executor: workflow definitions by hash,
 * runs, step executions (claims, leases, timers), and the hash-chained
 * event log that is Assent's audit trail.  Schema: db/migrations/001_engine.sql.
 *
 * The engine (engine/engine.c) composes these calls inside transactions it
 * opens with db_write_begin()/db_read_begin(); it never sees SQL.  Every
 * function is one or two statements so that a PostgreSQL backend can
 * implement the same contract (db_exec_due would be SELECT ... FOR UPDATE
 * SKIP LOCKED, db_exec_take the UPDATE that follows in the same transaction).
 *
 * Conventions: `conn` is a connection from db_write_begin (functions that
 * write, marked "write") or from either db_write_begin or db_read_begin
 * (functions that only read).  JSON columns are passed as text; NULL means
 * SQL NULL.  Times are ms since the epoch.  Strings handed to callbacks are
 * borrowed and valid only during the callback.  A callback returns 0 to go
 * on, nonzero to stop early.
 */
#ifndef ASSENT_DB_RUNS_H
#define ASSENT_DB_RUNS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "engine/error.h"

/* ---- workflow definitions ---------------------------------------------- */

struct db_workflow_rec {
    const char *name;
    const char *version;
    const char *hash;        /* hex SHA-256 of definition */
    const char *definition;  /* canonical JSON text */
    const char *source_path; /* may be NULL */
};

/* (write) Store a definition unless its hash is known; *id is its row id either way. */
enum as_code db_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w, int64_t now,
                             int64_t *id, struct as_err *err) AS_WUR;

/* The definition text stored under hash; *definition is malloc'd (caller frees).
 * AS_ENOTFOUND when unknown. */
enum as_code db_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                             struct as_err *err) AS_WUR;

/* ---- runs ---------------------------------------------------------------- */

struct db_run_new {
    int64_t workflow_id;    /* from db_workflow_put */
    const char *workflow;   /* its name: dedupe keys are per name, across versions */
    const char *input;      /* JSON text */
    const char *dedupe_key; /* NULL: none */
    const char *trigger;    /* NULL: none */
    int dry_run;
};

/*
 * (write) Insert a run in status running.  With a dedupe_key and an open run
 * (running or waiting) of the same workflow name and key, nothing is inserted:
 * AS_ECONFLICT and *run_id = that run.  The transaction stays usable.
 */
enum as_code db_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                           int64_t *run_id, struct as_err *err) AS_WUR;

/*
 * (write) Move an open run to `status`: "running" or "waiting" (between
 * steps), or "succeeded" / "failed" (sets finished_at; error may be NULL).
 * AS_ECONFLICT when the run has already ended (e.g. cancelled meanwhile).
 */
enum as_code db_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                               const char *error, int64_t now, struct as_err *err) AS_WUR;

/*
 * (write) Cancel an open run and every open step execution of it.
 * AS_ENOTFOUND: no such run; AS_ECONFLICT: it has already ended.
 */
enum as_code db_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now,
                           struct as_err *err) AS_WUR;

/*
 * (write) Re-queue the failed step of a failed run: that execution becomes
 * ready now with attempts reset (same row, so the same idempotency key) and
 * the run running again.  *exec_id (may be NULL) receives it.
 * AS_ENOTFOUND: no such run; AS_ECONFLICT: the run is not failed, has no
 * failed step to retry, or another open run holds its dedupe key.
 */
enum as_code db_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                          struct as_err *err) AS_WUR;

/* Status of a run into buf ("running", ...).  AS_ENOTFOUND when unknown. */
enum as_code db_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                           struct as_err *err) AS_WUR;

/* Number of open (running or waiting) runs. */
enum as_code db_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err) AS_WUR;

struct db_run_info {
    int64_t id;
    const char *workflow; /* name */
    const char *version;
    const char *hash;
    const char *status;
    const char *input;
    const char *error;      /* "" when none */
    const char *dedupe_key; /* "" when none */
    const char *trigger;    /* "" when none */
    const char *current_step; /* step of the latest execution, "" when none */
    int dry_run;
    int64_t created_at, updated_at, finished_at; /* finished_at 0 while open */
};
typedef int (*db_run_cb)(void *ud, const struct db_run_info *run);

struct db_run_filter {
    const char *status;   /* NULL: any */
    const char *workflow; /* name; NULL: any */
    int64_t before_id;    /* 0: newest first from the top; else only ids below (paging) */
    int limit;            /* <= 0: 50 */
};

/* Runs matching f, newest first. */
enum as_code db_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                          void *ud, struct as_err *err) AS_WUR;

/* One run.  AS_ENOTFOUND when unknown. */
enum as_code db_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                        struct as_err *err) AS_WUR;

/* ---- step executions ------------------------------------------------------ */

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
 * clears resume and deadline_reached (a wait is a completed phase).
 * AS_ECONFLICT when the execution is no longer running under this claim.
 */
enum as_code db_exec_record(struct db_conn *conn, const struct db_exec_result *r,
                            struct as_err *err) AS_WUR;

/*
 * (write) Give back a claim that was never started (shutdown, or its lease
 * became too short while queued): ready again, attempt not counted.
 */
enum as_code db_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                             int attempt, struct as_err *err) AS_WUR;

/*
 * (write) Wake a waiting execution with `payload` (NULL: JSON null): it
 * becomes ready now with resume = payload, its run running, and a
 * "step.resumed" event is appended.  Call inside any write transaction,
 * then engine_wake() after the commit so an in-process engine runs it at
 * once.  AS_ENOTFOUND: no such execution; AS_ECONFLICT: it is not waiting
 * (already resumed, expired and running, cancelled, done).
 */
enum as_code db_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                            struct as_err *err) AS_WUR;

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

/* ---- event log (audit trail) ---------------------------------------------- */

/*
 * (write) Append an event to the hash-chained log: hash = SHA-256(prev_hash
 * || "id|run_id|exec_id|ts|type|" || SHA-256(data)), digests in hex, data
 * the exact text stored (here: compact JSON with sorted keys).  run_id/exec_id 0 = none.  `type` is [a-z0-9._-]{1,64},
 * e.g. "approval.decided"; data may be NULL ({}); it is borrowed.  The
 * previous hash is read inside the transaction, so other processes may
 * append too.
 */
enum as_code db_event_append(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                             const char *type, const json_t *data, struct as_err *err) AS_WUR;

/* The same with data already as canonical JSON text (the executor's hot path). */
enum as_code db_event_append_text(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                                  const char *type, const char *data, int64_t now,
                                  struct as_err *err) AS_WUR;

/*
 * The chain's head carried through ONE write transaction, so that a batch of
 * appends reads it once (nobody else can append while the transaction holds
 * the write lock).  Zero it at the start of each transaction; it must not
 * outlive the transaction, nor be used while other code appends in it.
 */
struct db_event_chain {
    int loaded;
    int64_t id;
    char hash[65];
};

/*
 * db_event_append_text through a chain cache (chain may be NULL), with
 * data's digest from db_event_digest() computed beforehand (e.g. on another
 * thread) or NULL to compute it here.
 */
enum as_code db_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                     int64_t run_id, int64_t exec_id, const char *type,
                                     const char *data, const char *data_digest, int64_t now,
                                     struct as_err *err) AS_WUR;

/* Hex SHA-256 of an event's data text (NULL: "{}") into out; 0, or -1 on failure.
 * Thread-safe. */
int db_event_digest(const char *data, char out[65]);

struct db_event_info {
    int64_t id, run_id, exec_id, ts; /* run_id/exec_id 0 when none */
    const char *type, *data, *prev_hash, *hash;
};
typedef int (*db_event_cb)(void *ud, const struct db_event_info *ev);

/* Events of one run in order (run_id 0: every event). */
enum as_code db_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                           struct as_err *err) AS_WUR;

struct db_audit_report {
    int64_t n_events;     /* records read */
    int64_t bad_id;       /* 0: chain intact; else the first record that breaks it */
    char problem[512];    /* what is wrong with bad_id, for people */
    int64_t head_id;      /* last record and its hash: anchor these elsewhere to */
    char head_hash[65];   /* detect a truncated tail on a later verify */
};

/*
 * Recompute the chain from the first record.  The first record that was
 * altered, inserted, or follows deleted records is reported in rep->bad_id
 * with an explanation.  With anchor_id > 0 the record anchor_id must still
 * exist with hash anchor_hash (detects deletion of the newest records, which
 * a chain alone cannot).  Returns AS_OK whether or not the chain is intact;
 * errors are database errors only.
 */
enum as_code db_audit_verify(struct db_conn *conn, int64_t anchor_id, const char *anchor_hash,
                             struct db_audit_report *rep, struct as_err *err) AS_WUR;

#endif
