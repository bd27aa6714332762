/*
 * db_runs.c - SQL of the executor: workflow definitions by hash and runs.
 * Contract in db_runs.h; schema in migrations/001_engine.sql.  Step
 * executions are in db_execs.c, the event log in db_events.c.
 *
 * Every statement goes through db_stmt(), so each is compiled once per
 * connection and reused.
 */
#include "db/db_runs.h"
#include "db/sqlite/sqlite.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers -------------------------------------------------------- */

/* Note: conditions on status are written with OR, never IN (...): SQLite 3.40
 * builds a temporary table for an IN list each time a statement runs, which
 * dominated the executor's hot path.  Queries that should use a partial
 * index repeat its condition word for word. */

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* ---- workflow definitions ------------------------------------------------- */

enum as_code db_sqlite_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w,
                                    int64_t now, int64_t *id, struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO workflows (name, version, hash, definition, source_path, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(hash) DO UPDATE SET "
        "source_path = excluded.source_path WHERE substr(excluded.source_path, 1, 1) = '/' "
        "AND (source_path IS NULL OR substr(source_path, 1, 1) <> '/')";
    static const char sel[] = "SELECT id FROM workflows WHERE hash = ?1";
    sqlite3_stmt *st = db_stmt(conn, ins, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, w->name);
    db_bind_text_or_null(st, 2, w->version);
    db_bind_text_or_null(st, 3, w->hash);
    db_bind_text_or_null(st, 4, w->definition);
    db_bind_text_or_null(st, 5, w->source_path);
    sqlite3_bind_int64(st, 6, now);
    enum as_code rc = db_step_done(conn, st, "store workflow", err);
    if (rc)
        return rc;
    st = db_stmt(conn, sel, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, w->hash);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else
        rc = r == SQLITE_DONE ? as_errf(err, AS_EDB, "workflow %s vanished", w->hash)
                              : db_error(conn, "find workflow", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                                    struct as_err *err)
{
    static const char sql[] = "SELECT definition FROM workflows WHERE hash = ?1";
    *definition = NULL;
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, hash);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *definition = strdup(db_col_text(st, 0));
        if (!*definition)
            rc = oom(err);
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no workflow version %s in the database", hash);
    } else {
        rc = db_error(conn, "load workflow", err);
    }
    db_stmt_done(st);
    return rc;
}

/* ---- runs ---------------------------------------------------------------- */

static enum as_code find_open_by_dedupe(struct db_conn *conn, const char *workflow,
                                        const char *key, int64_t *run_id, struct as_err *err)
{
    static const char sql[] = "SELECT id FROM runs WHERE workflow = ?1 AND dedupe_key = ?2 "
                              "AND (status = 'running' OR status = 'waiting')";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, workflow);
    db_bind_text_or_null(st, 2, key);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *run_id = sqlite3_column_int64(st, 0);
    else
        rc = r == SQLITE_DONE ? AS_ENOTFOUND : db_error(conn, "find run by dedupe key", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                                  int64_t *run_id, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO runs (workflow_id, workflow, status, input, dedupe_key, trigger, dry_run, "
        "created_at, updated_at, kpi) VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?7, ?8)";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, r->workflow_id);
    db_bind_text_or_null(st, 2, r->workflow);
    db_bind_text_or_null(st, 3, r->input ? r->input : "{}");
    db_bind_text_or_null(st, 4, r->dedupe_key);
    db_bind_text_or_null(st, 5, r->trigger);
    sqlite3_bind_int(st, 6, r->dry_run ? 1 : 0);
    sqlite3_bind_int64(st, 7, now);
    db_bind_text_or_null(st, 8, r->kpi);
    int s = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(db_conn_handle(conn));
    if (s == SQLITE_DONE) {
        db_stmt_done(st);
        *run_id = sqlite3_last_insert_rowid(db_conn_handle(conn));
        return AS_OK;
    }
    enum as_code rc = db_error(conn, "insert run", err);
    db_stmt_done(st);
    if (ext == SQLITE_CONSTRAINT_UNIQUE && r->dedupe_key) {
        int64_t existing = 0;
        if (find_open_by_dedupe(conn, r->workflow, r->dedupe_key, &existing, err) == AS_OK) {
            *run_id = existing;
            return as_errf(err, AS_ECONFLICT,
                           "run %" PRId64 " of %s with dedupe key \"%s\" is still open", existing,
                           r->workflow, r->dedupe_key);
        }
    }
    return rc;
}

enum as_code db_sqlite_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                                      const char *error, int64_t now, struct as_err *err)
{
    static const char sql[] =
        "UPDATE runs SET status = ?2, error = ?3, updated_at = ?4, "
        "finished_at = CASE WHEN ?2 = 'succeeded' OR ?2 = 'failed' OR ?2 = 'cancelled' THEN ?4 END "
        "WHERE id = ?1 AND (status = 'running' OR status = 'waiting')";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    db_bind_text_or_null(st, 2, status);
    db_bind_text_or_null(st, 3, error);
    sqlite3_bind_int64(st, 4, now);
    enum as_code rc = db_step_done(conn, st, "update run", err);
    if (rc)
        return rc;
    if (sqlite3_changes(db_conn_handle(conn)) != 1)
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended", run_id);
    return AS_OK;
}

/* Status of a run into buf; AS_ENOTFOUND when unknown. */
enum as_code db_sqlite_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                                  struct as_err *err)
{
    static const char sql[] = "SELECT COALESCE(end_status, status) FROM runs WHERE id = ?1";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        snprintf(buf, size, "%s", db_col_text(st, 0));
    else if (r == SQLITE_DONE)
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    else
        rc = db_error(conn, "read run", err);
    db_stmt_done(st);
    return rc;
}

/* End an open run as cancelled (end_status NULL) or superseded, with every
 * open step execution of it. */
static enum as_code end_open_run(struct db_conn *conn, int64_t run_id, const char *end_status,
                                 const char *reason, int64_t now, struct as_err *err)
{
    static const char execs[] =
        "UPDATE step_execs SET status = 'cancelled', lease_until = NULL, lease_owner = NULL, "
        "finished_at = ?2 WHERE run_id = ?1 AND (status = 'ready' OR status = 'running' OR "
        "status = 'waiting')";
    static const char mark[] = "UPDATE runs SET end_status = ?2 WHERE id = ?1";
    char status[16];
    enum as_code rc = db_sqlite_run_status(conn, run_id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "running") && strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended (%s)", run_id, status);
    rc = db_sqlite_run_set_status(conn, run_id, "cancelled", reason, now, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if (end_status) {
        st = db_stmt(conn, mark, err);
        if (!st)
            return AS_EDB;
        sqlite3_bind_int64(st, 1, run_id);
        db_bind_text_or_null(st, 2, end_status);
        rc = db_step_done(conn, st, "mark run", err);
        if (rc)
            return rc;
    }
    st = db_stmt(conn, execs, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, now);
    return db_step_done(conn, st, "cancel step executions", err);
}

enum as_code db_sqlite_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now,
                                  struct as_err *err)
{
    return end_open_run(conn, run_id, NULL, NULL, now, err);
}

enum as_code db_sqlite_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason,
                                     int64_t now, struct as_err *err)
{
    return end_open_run(conn, run_id, "superseded", reason, now, err);
}

enum as_code db_sqlite_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                        db_run_open_cb cb, void *ud, struct as_err *err)
{
    static const char sql[] =
        "SELECT id, dedupe_key FROM runs WHERE kpi = ?1 AND workflow = ?2 AND "
        "(status = 'running' OR status = 'waiting') ORDER BY id";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, kpi);
    db_bind_text_or_null(st, 2, workflow);
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(ud, sqlite3_column_int64(st, 0), db_col_text(st, 1)))
            break;
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "list open runs of a KPI", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_run_retry(struct db_conn *conn, int64_t run_id, int64_t now,
                                 int64_t *exec_id, struct as_err *err)
{
    static const char last[] =
        "SELECT id, status FROM step_execs WHERE run_id = ?1 ORDER BY id DESC LIMIT 1";
    static const char reopen[] =
        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = ?2 "
        "WHERE id = ?1 AND status = 'failed'";
    static const char requeue[] =
        "UPDATE step_execs SET status = 'ready', attempt = 0, recoveries = 0, due_at = ?2, error = NULL, "
        "outcome = NULL, output = NULL, lease_until = NULL, lease_owner = NULL, "
        "finished_at = NULL WHERE id = ?1 AND status = 'failed'";
    char status[16];
    enum as_code rc = db_sqlite_run_status(conn, run_id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "failed"))
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " is %s; only a failed run can be retried",
                       run_id, status);
    sqlite3_stmt *st = db_stmt(conn, last, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    int64_t id = 0;
    int failed = 0;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        failed = strcmp(db_col_text(st, 1), "failed") == 0;
    } else if (r != SQLITE_DONE) {
        rc = db_error(conn, "find failed step", err);
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    if (!failed)
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has no failed step to retry", run_id);

    st = db_stmt(conn, reopen, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, now);
    r = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(db_conn_handle(conn));
    if (r != SQLITE_DONE) {
        rc = ext == SQLITE_CONSTRAINT_UNIQUE
                 ? as_errf(err, AS_ECONFLICT,
                           "another open run of this workflow holds run %" PRId64 "'s dedupe key",
                           run_id)
                 : db_error(conn, "reopen run", err);
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    st = db_stmt(conn, requeue, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    rc = db_step_done(conn, st, "requeue step", err);
    if (!rc && exec_id)
        *exec_id = id;
    return rc;
}

enum as_code db_sqlite_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err)
{
    static const char sql[] = "SELECT COUNT(*) FROM runs WHERE status = 'running' OR status = 'waiting'";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = db_error(conn, "count open runs", err);
    db_stmt_done(st);
    return rc;
}

#define RUN_COLS                                                                               \
    "SELECT r.id, r.workflow, w.version, w.hash, COALESCE(r.end_status, r.status), r.input, r.error, r.dedupe_key, "   \
    "r.trigger, (SELECT e.step FROM step_execs e WHERE e.run_id = r.id ORDER BY e.id DESC "    \
    "LIMIT 1), r.dry_run, r.created_at, r.updated_at, r.finished_at "                          \
    "FROM runs r JOIN workflows w ON w.id = r.workflow_id "

static void run_from_row(sqlite3_stmt *st, struct db_run_info *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->workflow = db_col_text(st, 1);
    r->version = db_col_text(st, 2);
    r->hash = db_col_text(st, 3);
    r->status = db_col_text(st, 4);
    r->input = db_col_text(st, 5);
    r->error = db_col_text(st, 6);
    r->dedupe_key = db_col_text(st, 7);
    r->trigger = db_col_text(st, 8);
    r->current_step = db_col_text(st, 9);
    r->dry_run = sqlite3_column_int(st, 10);
    r->created_at = sqlite3_column_int64(st, 11);
    r->updated_at = sqlite3_column_int64(st, 12);
    r->finished_at = sqlite3_column_int64(st, 13);
}

/* Step st, calling cb per row; *n_rows counts rows. */
static enum as_code each_run(struct db_conn *conn, sqlite3_stmt *st, db_run_cb cb, void *ud,
                             int *n_rows, struct as_err *err)
{
    enum as_code rc = AS_OK;
    int r;
    *n_rows = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_run_info info;
        run_from_row(st, &info);
        (*n_rows)++;
        if (cb(ud, &info))
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "list runs", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                                 void *ud, struct as_err *err)
{
    /* One statement per filter combination, so each can use its index.
     * The user (the input's "user") and creation time narrow what the
     * index finds: they are read from the rows, newest first. */
#define RUN_MORE " AND (?6 IS NULL OR json_extract(r.input, '$.user') = ?6) AND (?7 = 0 OR " \
                 "r.created_at >= ?7) "
    static const char *const sql[4] = {
        RUN_COLS "WHERE (?3 = 0 OR r.id < ?3)" RUN_MORE "ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.status = ?1 AND r.end_status IS ?5 AND (?3 = 0 OR r.id < ?3)" RUN_MORE
                 "ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.workflow = ?2 AND (?3 = 0 OR r.id < ?3)" RUN_MORE
                 "ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.status = ?1 AND r.end_status IS ?5 AND r.workflow = ?2 AND "
                 "(?3 = 0 OR r.id < ?3)" RUN_MORE "ORDER BY r.id DESC LIMIT ?4",
    };
#undef RUN_MORE
    int which = (f->status ? 1 : 0) | (f->workflow ? 2 : 0);
    sqlite3_stmt *st = db_stmt(conn, sql[which], err);
    if (!st)
        return AS_EDB;
    if (f->status) {
        /* A superseded run is stored as cancelled with end_status set. */
        int superseded = strcmp(f->status, "superseded") == 0;
        db_bind_text_or_null(st, 1, superseded ? "cancelled" : f->status);
        db_bind_text_or_null(st, 5, superseded ? "superseded" : NULL);
    }
    if (f->workflow)
        db_bind_text_or_null(st, 2, f->workflow);
    sqlite3_bind_int64(st, 3, f->before_id > 0 ? f->before_id : 0);
    sqlite3_bind_int(st, 4, f->limit > 0 ? f->limit : 50);
    db_bind_text_or_null(st, 6, f->user);
    sqlite3_bind_int64(st, 7, f->since > 0 ? f->since : 0);
    int n;
    return each_run(conn, st, cb, ud, &n, err);
}

enum as_code db_sqlite_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                               struct as_err *err)
{
    static const char sql[] = RUN_COLS "WHERE r.id = ?1";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    int n;
    enum as_code rc = each_run(conn, st, cb, ud, &n, err);
    if (!rc && n == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    return rc;
}

/* ---- stored workflows ------------------------------------------------------ */

enum as_code db_sqlite_workflows_list(struct db_conn *conn, const char *name, const char *after,
                                      int limit, db_workflow_cb cb, void *ud, struct as_err *err)
{
    /* Versions are stored in time order, so the latest has the largest id. */
    static const char sql[] =
        "SELECT w.id, w.name, w.version, w.hash, w.source_path, w.created_at,"
        " (SELECT count(*) FROM workflows x WHERE x.name = w.name)"
        " FROM workflows w WHERE w.id = (SELECT max(y.id) FROM workflows y WHERE y.name = w.name)"
        " AND (?1 IS NULL OR w.name = ?1) AND (?2 IS NULL OR w.name > ?2)"
        " ORDER BY w.name LIMIT ?3";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, name);
    db_bind_text_or_null(st, 2, after);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_workflow_info w = {
            .id = sqlite3_column_int64(st, 0),
            .name = db_col_text(st, 1),
            .version = db_col_text(st, 2),
            .hash = db_col_text(st, 3),
            .source_path = db_col_text(st, 4),
            .created_at = sqlite3_column_int64(st, 5),
            .n_versions = sqlite3_column_int64(st, 6),
        };
        if (cb(ud, &w))
            break;
    }
    enum as_code rc = r == SQLITE_DONE || r == SQLITE_ROW ? AS_OK
                                                          : db_error(conn, "list workflows", err);
    db_stmt_done(st);
    return rc;
}
