/*
 * db_runs.h - durable state of the executor: workflow definitions by hash
 * and runs (here), step executions with claims, leases and timers
 * (db_execs.h), and the hash-chained event log that is Assent's audit
 * trail (db_events.h).  Schema: db/migrations/001_engine.sql.
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
#include "base/error.h"

/* ---- workflow definitions ---------------------------------------------- */

struct db_workflow_rec {
    const char *name;
    const char *version;
    const char *hash;        /* hex SHA-256 of definition */
    const char *definition;  /* canonical JSON text */
    const char *source_path; /* may be NULL */
};

/*
 * (write) Store a definition unless its hash is known; *id is its row id
 * either way.  A known version whose source_path is missing or relative
 * takes w->source_path when that is absolute (it was stored as typed before).
 */
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
    const char *kpi;        /* the KPI whose trigger started it; NULL: none */
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
 * (write) End an open run as `superseded`: cancelled like db_run_cancel, with
 * end_status 'superseded' (what listings and db_run_status show) and
 * `reason` as its error text.  Same errors as db_run_cancel.
 */
enum as_code db_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason,
                              int64_t now, struct as_err *err) AS_WUR;

/* Called per open run by db_runs_open_of_kpi; nonzero stops. */
typedef int (*db_run_open_cb)(void *ud, int64_t run_id, const char *dedupe_key);

/* Open runs of `workflow` (a name) started by a trigger of KPI `kpi`, oldest first. */
enum as_code db_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                 db_run_open_cb cb, void *ud, struct as_err *err) AS_WUR;

/*
 * (write) Re-queue the failed step of a failed run: that execution becomes
 * ready now with attempts reset (same row, so the same idempotency key) and
 * the run running again.  *exec_id (may be NULL) receives it.
 * AS_ENOTFOUND: no such run; AS_ECONFLICT: the run is not failed, has no
 * failed step to retry, or another open run holds its dedupe key.
 */
enum as_code db_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                          struct as_err *err) AS_WUR;

/* Status of a run into buf ("running", ..., "superseded").  AS_ENOTFOUND when unknown. */
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
    const char *user;     /* runs whose input "user" is exactly this; NULL: any */
    int64_t since;        /* runs created at or after this time; 0: any */
};

/* Runs matching f, newest first. */
enum as_code db_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                          void *ud, struct as_err *err) AS_WUR;

/* One run.  AS_ENOTFOUND when unknown. */
enum as_code db_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                        struct as_err *err) AS_WUR;

/* ---- stored workflows ------------------------------------------------------ */

struct db_workflow_info {
    int64_t id;              /* the row of this version */
    const char *name, *version, *hash;
    const char *source_path; /* "" when none */
    int64_t created_at;      /* when this version was stored */
    int64_t n_versions;      /* versions stored under this name */
};
typedef int (*db_workflow_cb)(void *ud, const struct db_workflow_info *w);

/*
 * The latest stored version (the one stored last) of each workflow name, by
 * name, starting after name `after` (NULL: from the first), at most `limit`
 * (<= 0: all).  `name` (NULL: any) restricts to that one name.
 */
enum as_code db_workflows_list(struct db_conn *conn, const char *name, const char *after, int limit,
                               db_workflow_cb cb, void *ud, struct as_err *err) AS_WUR;

/* Step executions and the event log have their own headers; including
 * this one brings them too. */
#include "db/db_events.h"
#include "db/db_execs.h"

#endif
