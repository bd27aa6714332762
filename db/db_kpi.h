/*
 * db_kpi.h - storage of KPIs, their value history, protocol exceptions and
 * the scheduler's record (schema: db/migrations/005_kpi.sql).
 *
 * Every function is thread-safe (it takes its own reader or the writer for
 * one short transaction) and returns results as new JSON references the
 * caller owns (json_decref).  Times are ms since the epoch.
 */
#ifndef ASSENT_DB_KPI_H
#define ASSENT_DB_KPI_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct db;

/* ---- KPIs ---- */

/*
 * Store KPI `name` with its canonical JSON definition.  `schedule` and
 * `timezone` may be NULL (unscheduled).  With replace = 0 an existing KPI of
 * that name is AS_ECONFLICT; with replace = 1 it is updated in place (id,
 * history and created_at kept).  A new or changed schedule counts as handled
 * up to `now`, so it never "catches up" on times before it existed.
 */
enum as_code db_kpi_put(struct db *db, const char *name, const char *report,
                        const char *definition, const char *schedule, const char *timezone,
                        int replace, int64_t now, int64_t *id, struct as_err *err) AS_WUR;

/*
 * KPI `name` as {"id", "name", "report", "definition": {...}, "schedule",
 * "timezone", "sched_last_for", "created_at", "updated_at"}; AS_ENOTFOUND
 * when there is none.
 */
enum as_code db_kpi_get(struct db *db, const char *name, json_t **out, struct as_err *err) AS_WUR;

/* All KPIs (as db_kpi_get) plus "last_value", "last_exempt" and "last_ts"
 * (null when never evaluated), ordered by name. */
enum as_code db_kpi_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/* Delete KPI `name` with its history and schedule record.  AS_ENOTFOUND if absent. */
enum as_code db_kpi_delete(struct db *db, const char *name, struct as_err *err) AS_WUR;

/* Append one evaluation result.  breakdown (borrowed) may be NULL. */
enum as_code db_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                              int64_t exempt, const json_t *breakdown, struct as_err *err) AS_WUR;

/* The last `limit` values of a KPI, oldest first: [{"ts","value","exempt","breakdown"}]. */
enum as_code db_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                           struct as_err *err) AS_WUR;

/* Number of open (running or waiting) runs of workflows named `workflow`. */
enum as_code db_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                              struct as_err *err) AS_WUR;

/* ---- exceptions ---- */

struct db_exception {
    const char *upn;
    const char *protocols;  /* JSON array text, e.g. ["pop","imap"] or ["all"] */
    const char *reason;     /* required, non-empty */
    const char *granted_by; /* required, non-empty */
    int64_t created_at;
    int64_t expires_at;
    const char *source;     /* "cli", "run:<id>"; NULL = "cli" */
    const char *source_key; /* idempotency key or NULL */
};

/*
 * Record an exception.  When source_key is set and an exception with that
 * key exists already, nothing is inserted and *id is the existing one
 * (*created = 0) - so a step re-executed after a crash records it once.
 * A new exception appends "exception.added" {id, user, protocols, reason,
 * granted_by, expires_at, source} to the audit chain in the same transaction.
 */
enum as_code db_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                              int *created, struct as_err *err) AS_WUR;

enum db_exception_filter { DB_EXC_ACTIVE, DB_EXC_EXPIRED, DB_EXC_REMOVED, DB_EXC_ALL };

/*
 * Exceptions as [{"id","upn","protocols":[...],"reason","granted_by",
 * "created_at","expires_at","removed_at","removed_by","source","state",
 * "removed_reason"}]
 * where state is "active", "expired" or "removed" as of `now`.  upn (may be
 * NULL) restricts to one user (case-insensitive).  Newest first.
 */
enum as_code db_exception_list(struct db *db, enum db_exception_filter filter, const char *upn,
                               int64_t now, json_t **out, struct as_err *err) AS_WUR;

/* Mark exception `id` removed by `by` because of `reason` (may be NULL).
 * AS_ENOTFOUND when there is no such exception or it was removed already.
 * Appends "exception.removed" {id, user, protocols, removed_by, reason} to the
 * audit chain in the same transaction. */
enum as_code db_exception_remove(struct db *db, int64_t id, const char *by, const char *reason,
                                 int64_t now, struct as_err *err) AS_WUR;

/* Called once per active exception; return nonzero to stop early. */
typedef int (*db_exception_cb)(void *ud, const char *upn, const char *protocols,
                               const char *reason, const char *granted_by, int64_t expires_at);

/* Every exception active at `now` (not removed, expires_at > now). */
enum as_code db_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb, void *ud,
                                         struct as_err *err) AS_WUR;

/* ---- schedules ---- */

/* KPIs with a schedule: [{"id","name","schedule","timezone","sched_last_for","updated_at"}]. */
enum as_code db_sched_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/*
 * Claim the firing of KPI kpi_id for time `scheduled_for`: atomically move
 * its sched_last_for from `prev` (-1 = NULL) to scheduled_for and record a
 * schedule run (status running, `missed` earlier times folded in).
 * AS_ECONFLICT when another scheduler got there first.
 */
enum as_code db_sched_claim(struct db *db, int64_t kpi_id, int64_t prev, int64_t scheduled_for,
                            int64_t missed, int64_t now, int64_t *run_id, struct as_err *err) AS_WUR;

/* Finish a schedule run: ok = 1 done, 0 failed.  result (borrowed) and error may be NULL. */
enum as_code db_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                             const char *error, int64_t now, struct as_err *err) AS_WUR;

/* Schedule runs left "running" by a process that died:
 * [{"id","kpi_id","name","scheduled_for","missed"}]. */
enum as_code db_sched_interrupted(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/* The last `limit` schedule runs of a KPI (kpi_id 0 = all), newest first. */
enum as_code db_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                           struct as_err *err) AS_WUR;

#endif
