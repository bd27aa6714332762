/*
 * engine.h - the executor: runs workflows durably, step by step, with a pool
 * of worker threads and one dispatcher thread that owns every write.
 *
 * Life of a step.  A step execution is a row in SQLite (db/db_runs.h).  The
 * dispatcher claims due rows (ready, a wait whose deadline passed, or a
 * running row whose lease expired: a crashed process's work) with a lease,
 * hands them to workers, and records each result together with the
 * scheduling of the next step (or the end of the run) in ONE transaction.
 * Results of many steps share a transaction: group commit, one fsync for
 * many steps.  Because result and successor commit atomically, a completed
 * step never runs again; a step interrupted by a crash runs again with the
 * same idempotency key.
 *
 * Retries: STEP_RETRY (or a failure to resolve parameters) with attempts
 * left waits now + backoff*factor^(attempt-1), capped by max_backoff, with
 * full jitter (or until the step's not-before time, e.g. Retry-After).  Out
 * of attempts, or STEP_FAILED: the workflow's `error` branch if any, else
 * the run fails with the error (engine_retry_run re-queues it).  A failed
 * step's output, when it gave one (http: the response), is kept for that
 * branch as steps.<name>.output; a retried attempt's is not.
 *
 * Waits: STEP_WAIT parks the row until its deadline (0 = now + config
 * default_wait) or db_exec_resume(); no thread waits.  A resume that comes
 * while the step still runs is held, and a STEP_WAIT result then makes the
 * step ready again at once with it (same transaction), so it is never lost.
 *
 * Leases: timeout of the step + lease_seconds.  The owner is
 * "host/pid/start-time"; at start the engine expires leases of dead
 * processes of the same host at once, others when their lease ends.
 *
 * Every state change is appended to the hash-chained event log.
 */
#ifndef ASSENT_ENGINE_H
#define ASSENT_ENGINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct app;
struct engine;
struct workflow;

/*
 * Start the dispatcher and n_workers worker threads on app->db and set
 * app->engine.  Call json_object_seed() and block SIGINT/SIGTERM (if the
 * caller handles them) before, since threads inherit the mask.  Stop with
 * engine_stop().
 */
enum as_code engine_start(struct app *app, int n_workers, struct engine **out,
                          struct as_err *err) AS_WUR;

/*
 * Look for due work now (e.g. after db_exec_resume() or a new run from this
 * process).  Cheap; thread-safe; NULL is ignored.  Other processes' writes
 * are noticed by polling within ~200 ms anyway.
 */
void engine_wake(struct engine *e);

/*
 * Writes of others in the engine's group commit.  A web thread that
 * records an approval decision hands it to the dispatcher instead of
 * taking the writer itself: the write then shares a transaction (and its
 * commit) with step results and other such writes, and the thread that
 * handed it over does not wait.
 *
 * The caller fills apply and done (and ud) and keeps w alive until done
 * has been called; the engine owns the other fields.
 *
 *   apply  runs on the dispatcher thread inside its next write
 *          transaction, within a savepoint of its own (db_savepoint_begin):
 *          when it fails, what it wrote is undone and the rest of the
 *          transaction goes on.  It appends its events through `chain`
 *          (db_event_append_chained).  It may ask for a waiting step
 *          execution to be resumed (engine_write_resume): the engine then
 *          resumes it in the same savepoint, or, when the step is waiting
 *          and apply gave the step's result (outcome and output), ends the
 *          execution with that result at once and schedules the run's next
 *          step as if the step had run again and returned it (events
 *          step.resumed and step.succeeded, as then).  apply must not
 *          block: the whole engine waits for it.
 *   done   is called exactly once on the dispatcher thread, after the
 *          transaction has ended, outside the engine's lock: rc AS_OK when
 *          apply succeeded and its transaction committed (the write is
 *          durable), apply's error (nothing of it was written), the
 *          commit's error, or AS_ECANCELLED when the engine stopped first.
 *          It must not block; it may free w.
 */
struct db_conn;
struct db_event_chain;
struct engine_write;
typedef enum as_code (*engine_write_apply_fn)(struct engine_write *w, struct db_conn *conn,
                                              struct db_event_chain *chain, struct as_err *err);
typedef void (*engine_write_done_fn)(struct engine_write *w, enum as_code rc,
                                     const struct as_err *err);
struct engine_write {
    engine_write_apply_fn apply;
    engine_write_done_fn done;
    void *ud;
    /* the engine's */
    struct engine_write *next;
    int64_t resume_exec_id;
    char *resume_payload; /* JSON text */
    char end_outcome[32]; /* "" : the step runs again */
    char *end_output;     /* JSON text or NULL */
    enum as_code rc;      /* apply's result, for done */
    struct as_err err;
};

/*
 * Hand w to the dispatcher of e (see above) and wake it.  AS_ECANCELLED
 * when e is NULL or stopping: then done is never called and the caller
 * writes on its own.  Thread-safe; not from the dispatcher itself.
 */
enum as_code engine_write_submit(struct engine *e, struct engine_write *w,
                                 struct as_err *err) AS_WUR;

/*
 * Run fn(db, ud, err) on the dispatcher of e inside its next group-commit
 * transaction, joined (db_join: the store's write operations fn calls run
 * in that transaction instead of one each), and wait until the transaction
 * has ended: AS_OK when everything fn wrote is durable; otherwise fn's
 * error or the transaction's, and nothing fn wrote was kept.  fn runs on
 * the dispatcher's thread while it holds the writer: only the store's
 * calls and quick work in it, no I/O and nothing that waits for the
 * engine; it must not read through db_read_begin what it has just written
 * (db_approval_view and the other calls that take the transaction's
 * connection do see it).  Without an engine to take it (e NULL or
 * stopping) fn runs on the caller's thread, each store write its own
 * transaction.  From any thread but the dispatcher's.
 */
struct db;
typedef enum as_code (*engine_group_fn)(struct db *db, void *ud, struct as_err *err);
enum as_code engine_group_write(struct engine *e, struct db *db, engine_group_fn fn, void *ud,
                                struct as_err *err) AS_WUR;

/*
 * From apply: resume waiting step execution exec_id with payload (JSON
 * text, copied) after apply; when outcome is not NULL, the step's result
 * on that resume is known: outcome and output (JSON text or NULL, copied),
 * and a waiting execution is ended with it without running again.
 * AS_ENOMEM only.
 */
enum as_code engine_write_resume(struct engine_write *w, int64_t exec_id, const char *payload,
                                 const char *outcome, const char *output,
                                 struct as_err *err) AS_WUR;

/*
 * Stop claiming, hand back claimed steps that have not started, let running
 * steps finish for up to grace_ms and record their results, then join the
 * threads, clear app->engine and free e.  A step still running after the
 * grace period keeps its lease (it runs again on the next start, with the
 * same idempotency key); then AS_ETIMEOUT is returned and e is deliberately
 * not freed, because its thread still uses it; the process should exit.
 * NULL is fine.
 */
enum as_code engine_stop(struct engine *e, int64_t grace_ms);

/* Counters since engine_start (for benchmarks and logs). */
struct engine_stats {
    uint64_t steps;        /* attempts executed */
    uint64_t transactions; /* write transactions committed by the dispatcher */
    uint64_t runs_ended;
};
void engine_get_stats(struct engine *e, struct engine_stats *out);

/* ---- starting and steering runs (any thread, with or without an engine) -- */

struct engine_run_opts {
    const char *dedupe_key;  /* one open run per workflow name and key; NULL: none */
    const char *trigger;     /* "cli", "schedule:<kpi>", "api"...; NULL: none */
    const char *kpi;         /* the KPI whose trigger starts it (see trigger.h); NULL: none */
    int dry_run;             /* steps see ctx->dry_run: record, don't act */
    const char *source_path; /* the file wf was loaded from (may be NULL): stored, made
                              * absolute (realpath), with a new workflow version, so
                              * files next to it are found from any directory */
    const char *actor;       /* who started it (an API token's name), recorded in the
                              * run.created event; NULL: not recorded */
};

/*
 * Start a run of wf with input (borrowed; NULL = {}): in one transaction,
 * store the workflow version if new, insert the run and its first step, and
 * log run.created.  The input is checked and completed with defaults by
 * wf_input_prepare() first.  Wakes app->engine.  AS_EINVAL for bad input;
 * AS_ECONFLICT when opts->dedupe_key is held by an
 * open run of the same workflow name, with *run_id = that run.  opts may be
 * NULL.
 */
enum as_code engine_submit_run(struct app *app, const struct workflow *wf, const json_t *input,
                               const struct engine_run_opts *opts, int64_t *run_id,
                               struct as_err *err) AS_WUR;

/* One run of a batch. */
struct engine_run_req {
    const json_t *input;    /* borrowed; NULL = {} */
    const char *dedupe_key; /* NULL: none (overrides opts->dedupe_key) */
};

/*
 * Start n runs of wf in ONE transaction (fan-out).  All inputs are checked
 * first; one bad input fails the call with AS_EINVAL naming its index and
 * nothing is started.  run_ids[i] receives the new run, or the open run that
 * holds reqs[i].dedupe_key; created[i] (created may be NULL) is 1 for a new
 * run and 0 for a deduplicated one; *n_created (may be NULL) counts new
 * runs.  The writer is held for the whole batch: keep batches to some
 * thousands so running steps keep committing between them.
 */
enum as_code engine_submit_runs(struct app *app, const struct workflow *wf,
                                const struct engine_run_req *reqs, size_t n,
                                const struct engine_run_opts *opts, int64_t *run_ids,
                                int *created, size_t *n_created, struct as_err *err) AS_WUR;

/* Cancel an open run (its open steps too; a step running now has its result
 * discarded).  AS_ENOTFOUND / AS_ECONFLICT (already ended). */
/*
 * input (borrowed; NULL = {}) completed with the configuration defaults its
 * workflow declares: an input with "config_default": KEY that the run does
 * not give (absent or null) takes config KEY's value when that is not empty
 * (split at commas into an array when the input's type is "array").  New
 * reference, or NULL out of memory.  engine_submit_run(s) and triggers apply
 * it before wf_input_prepare().
 */
json_t *engine_input_with_config(const struct app *app, const struct workflow *wf,
                                 const json_t *input);

/*
 * End an open run as superseded: a later trigger of its KPI no longer finds
 * its user.  Like a cancel (open steps cancelled, approval links answer 410),
 * with status "superseded" and `reason` as its error text, and a
 * "run.superseded" event {reason, kpi} in the same transaction.
 * AS_ECONFLICT when the run has ended meanwhile.
 */
enum as_code engine_supersede_run(struct app *app, int64_t run_id, const char *kpi,
                                  const char *reason, struct as_err *err) AS_WUR;

enum as_code engine_cancel_run(struct app *app, int64_t run_id, struct as_err *err) AS_WUR;

/* Re-queue the failed step of a failed run, attempts reset, same idempotency
 * key.  AS_ENOTFOUND / AS_ECONFLICT (not failed; dedupe key taken). */
enum as_code engine_retry_run(struct app *app, int64_t run_id, struct as_err *err) AS_WUR;

/*
 * engine_cancel_run and engine_retry_run on behalf of `actor` (an API
 * token's name; NULL: nobody named): the run.cancelled / run.retried event
 * carries {"actor": actor, "via": via} (via: "api", "cli"; NULL: left out).
 */
enum as_code engine_cancel_run_as(struct app *app, int64_t run_id, const char *actor,
                                  const char *via, struct as_err *err) AS_WUR;
enum as_code engine_retry_run_as(struct app *app, int64_t run_id, const char *actor,
                                 const char *via, struct as_err *err) AS_WUR;

/*
 * Wait until run_id has ended or timeout_ms passed (-1: no limit), waking at
 * once when this engine ends it and polling the database otherwise.
 * *status receives the run's status.  AS_ETIMEOUT when still open.
 */
enum as_code engine_wait_run(struct app *app, int64_t run_id, int64_t timeout_ms, char *status,
                             size_t size, struct as_err *err) AS_WUR;

#endif
