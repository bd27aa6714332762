/*
 * engine_internal.h - what the executor's files share; not an API.
 *
 *   engine.c         lifecycle, the dispatcher (the one write path: record
 *                    results, schedule successors, claim), workflow cache
 *   engine_worker.c  worker threads: run one claimed step, shape its result
 *   engine_runs.c    starting and steering runs (submit, cancel, retry, wait)
 *
 * A `struct work` is one claimed step execution: made by the dispatcher,
 * executed and filled in by a worker, written and freed by the dispatcher.
 * It belongs to whichever queue holds it (engine.lock), or to the one
 * thread that took it from there.
 */
#ifndef ASSENT_ENGINE_INTERNAL_H
#define ASSENT_ENGINE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db_runs.h"
#include "db/db_wal.h"
#include "engine/engine.h"
#include "base/error.h"
#include "engine/workflow.h"

#define POLL_MS 200               /* notice other processes' writes at least this often */
#define POLL_WOKEN_MS 5000        /* ...or this, when their commits wake us (db_wakeups_start) */
#define PREFETCH_PER_WORKER 32    /* queued claims per worker when steps are fast */
#define QUEUE_TARGET_MS 1000      /* ...as long as the queue drains within this */
#define LEASE_SAFETY_MS 1000      /* a queued claim needs timeout + this left to start */
#define MAX_OUTPUT_BYTES (1024 * 1024)
#define MAX_STEP_EVENTS 64
#define RECORD_RETRY_MS 500

/* A step whose claim was lost this often (its process died each time, maybe
 * because of it) fails instead of taking the engine down again and again. */
#define MAX_RECOVERIES 20

/* The final shape of an attempt, decided by the worker. */
enum work_kind {
    WK_RELEASE,   /* never started: hand the claim back */
    WK_SUCCEEDED, /* follow next[outcome] */
    WK_WAITING,
    WK_RETRY,
    WK_FAILED,    /* follow next.error, else fail the run */
};

struct step_event_text {
    char *type;
    char *data;
    char digest[65]; /* db_event_digest(data), computed by the worker */
};

struct work {
    struct work *next;
    struct db_claim c;
    const struct workflow *wf;  /* NULL when the version could not be loaded */
    const struct wf_step *step; /* NULL when wf is NULL or lacks the step */
    char *load_error;           /* why wf/step is NULL */

    /* filled by the worker */
    enum work_kind kind;
    int64_t started_ms, finished_ms, due_at;
    char outcome[32];
    char *params, *output, *wait_state, *error; /* JSON text / message, NULL when none */
    char *event_type;                           /* step.succeeded, step.retry, ... */
    char *event_data;
    char event_digest[65];
    struct step_event_text *events;
    size_t n_events;
    int record_failures;
    /* {"input","steps","run"} as the step saw it, plus its own result once done:
     * handed to the run's next step when the dispatcher claims that at once, so
     * it need not be read back from the database (NULL: read it). */
    json_t *scope;
};

struct wf_cache_entry {
    struct wf_cache_entry *next;
    char hash[65];
    struct workflow *wf;
    char *error;
};

struct engine {
    struct app *app;
    int n_workers;
    char owner[160];
    int64_t lease_margin_ms;
    int64_t default_wait_ms;

    pthread_t dispatcher;
    pthread_t *workers;
    int dispatcher_started;
    int n_workers_started;

    pthread_mutex_t lock;
    pthread_cond_t work_cond;  /* workers wait for todo */
    pthread_cond_t disp_cond;  /* dispatcher waits for done / wake */
    pthread_cond_t ended_cond; /* engine_wait_run waits for run ends */
    struct work *todo_head, *todo_tail;
    struct work *done_head, *done_tail;
    size_t n_todo, n_busy;
    int wake;
    int stopping;
    int quit_workers;
    int64_t grace_deadline_mono;
    uint64_t ended_gen;
    struct engine_stats stats;
    double avg_step_ms; /* moving average of attempt durations (dispatcher only) */

    pthread_mutex_t cache_lock;
    struct wf_cache_entry *cache;

    struct db_checkpointer *ckpt;  /* WAL checkpoints off the dispatcher (NULL: SQLite's own) */
    struct db_wakeups *wakeups;    /* other nodes' writes wake the dispatcher (NULL: polling) */
    int64_t node_timeout_ms;       /* config node_timeout: dead when silent this long */
    int64_t next_beat_mono;        /* dispatcher only: when to beat next (db_node_heartbeat) */
    struct engine *next_abandoned; /* see engine_stop */
    struct db_event_chain chain;   /* dispatcher only: event chain head within its transaction */
    struct engine_write *writes_head, *writes_tail; /* engine_write_submit: not yet taken */
    int write_resumed;             /* dispatcher only: a write resumed a step: claim soon */
};

/* engine.c */
void engine_work_free(struct work *w);
/* Compact JSON text of v (malloc'd), or NULL for NULL or out of memory. */
char *engine_dump(const json_t *v);
/* Append an event (data is stolen) through a transaction's chain cache (may be NULL). */
enum as_code engine_event_json(struct db_conn *conn, struct db_event_chain *chain, int64_t run_id,
                               int64_t exec_id, const char *type, json_t *data, int64_t now,
                               struct as_err *err) AS_WUR;
/* Runs ended: wake engine_wait_run callers. */
void engine_note_ended(struct engine *e);
/* The count of run ends seen so far, and a wait of at most ms for it to change. */
uint64_t engine_ended_gen(struct engine *e);
void engine_wait_ended(struct engine *e, uint64_t gen, int64_t ms);

/* engine_worker.c */
void *engine_worker_main(void *arg);
/* Parse JSON text; text that is not JSON becomes a string, "" or NULL null. */
json_t *engine_parse_text(const char *text);
/* Replace w->error with a formatted message. */
void engine_work_set_error(struct work *w, const char *fmt, ...) AS_PRINTF(2, 3);

/*
 * (Re)build w's step event (event_type, event_data, event_digest) from its
 * kind, outcome, error and timing.  Returns 0, or -1 when out of memory
 * (both fields are NULL then; the dispatcher must not write the result).
 */
int engine_work_event(struct work *w);

#endif
