/*
 * db_runs.c - SQL of the executor: workflows by hash, runs, step executions
 * (claims, leases, timers) and the hash-chained event log.  Contract in
 * db_runs.h; schema in migrations/001_engine.sql.
 *
 * Every statement goes through db_stmt(), so each is compiled once per
 * connection and reused: the executor's hot path (claim, record, insert the
 * next step, append events) is a handful of prepared statements per step.
 */
#include "db/db_runs.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/timeutil.h"

static const char ZERO_HASH[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- small helpers -------------------------------------------------------- */

/* Note: conditions on status are written with OR, never IN (...): SQLite 3.40
 * builds a temporary table for an IN list each time a statement runs, which
 * dominated the executor's hot path.  Queries that should use a partial
 * index repeat its condition word for word. */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int64_t col_i64(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, col);
}

/* malloc'd copy of a column, NULL when the column is NULL (or on ENOMEM:
 * callers that need the value check). */
static char *col_dup(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

/* Step a statement that returns no rows; maps errors. */
static enum as_code step_done(struct db_conn *conn, sqlite3_stmt *st, const char *what,
                              struct as_err *err)
{
    int r = sqlite3_step(st);
    enum as_code rc = AS_OK;
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = db_error(conn, what, err);
    db_stmt_done(st);
    return rc;
}

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* ---- workflow definitions ------------------------------------------------- */

enum as_code db_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w, int64_t now,
                             int64_t *id, struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO workflows (name, version, hash, definition, source_path, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(hash) DO NOTHING";
    static const char sel[] = "SELECT id FROM workflows WHERE hash = ?1";
    sqlite3_stmt *st = db_stmt(conn, ins, err);
    if (!st)
        return AS_EDB;
    bind_text(st, 1, w->name);
    bind_text(st, 2, w->version);
    bind_text(st, 3, w->hash);
    bind_text(st, 4, w->definition);
    bind_text(st, 5, w->source_path);
    sqlite3_bind_int64(st, 6, now);
    enum as_code rc = step_done(conn, st, "store workflow", err);
    if (rc)
        return rc;
    st = db_stmt(conn, sel, err);
    if (!st)
        return AS_EDB;
    bind_text(st, 1, w->hash);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else
        rc = r == SQLITE_DONE ? as_errf(err, AS_EDB, "workflow %s vanished", w->hash)
                              : db_error(conn, "find workflow", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                             struct as_err *err)
{
    static const char sql[] = "SELECT definition FROM workflows WHERE hash = ?1";
    *definition = NULL;
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    bind_text(st, 1, hash);
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
    bind_text(st, 1, workflow);
    bind_text(st, 2, key);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *run_id = sqlite3_column_int64(st, 0);
    else
        rc = r == SQLITE_DONE ? AS_ENOTFOUND : db_error(conn, "find run by dedupe key", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                           int64_t *run_id, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO runs (workflow_id, workflow, status, input, dedupe_key, trigger, dry_run, "
        "created_at, updated_at) VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?7)";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, r->workflow_id);
    bind_text(st, 2, r->workflow);
    bind_text(st, 3, r->input ? r->input : "{}");
    bind_text(st, 4, r->dedupe_key);
    bind_text(st, 5, r->trigger);
    sqlite3_bind_int(st, 6, r->dry_run ? 1 : 0);
    sqlite3_bind_int64(st, 7, now);
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

enum as_code db_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
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
    bind_text(st, 2, status);
    bind_text(st, 3, error);
    sqlite3_bind_int64(st, 4, now);
    enum as_code rc = step_done(conn, st, "update run", err);
    if (rc)
        return rc;
    if (sqlite3_changes(db_conn_handle(conn)) != 1)
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended", run_id);
    return AS_OK;
}

/* Status of a run into buf; AS_ENOTFOUND when unknown. */
enum as_code db_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                           struct as_err *err)
{
    static const char sql[] = "SELECT status FROM runs WHERE id = ?1";
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

enum as_code db_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now, struct as_err *err)
{
    static const char execs[] =
        "UPDATE step_execs SET status = 'cancelled', lease_until = NULL, lease_owner = NULL, "
        "finished_at = ?2 WHERE run_id = ?1 AND (status = 'ready' OR status = 'running' OR "
        "status = 'waiting')";
    char status[16];
    enum as_code rc = db_run_status(conn, run_id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "running") && strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended (%s)", run_id, status);
    rc = db_run_set_status(conn, run_id, "cancelled", NULL, now, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(conn, execs, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, now);
    return step_done(conn, st, "cancel step executions", err);
}

enum as_code db_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                          struct as_err *err)
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
    enum as_code rc = db_run_status(conn, run_id, status, sizeof status, err);
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
    rc = step_done(conn, st, "requeue step", err);
    if (!rc && exec_id)
        *exec_id = id;
    return rc;
}

enum as_code db_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err)
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
    "SELECT r.id, r.workflow, w.version, w.hash, r.status, r.input, r.error, r.dedupe_key, "   \
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
    r->created_at = col_i64(st, 11);
    r->updated_at = col_i64(st, 12);
    r->finished_at = col_i64(st, 13);
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

enum as_code db_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                          void *ud, struct as_err *err)
{
    /* One statement per filter combination, so each can use its index. */
    static const char *const sql[4] = {
        RUN_COLS "WHERE (?3 = 0 OR r.id < ?3) ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.status = ?1 AND (?3 = 0 OR r.id < ?3) ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.workflow = ?2 AND (?3 = 0 OR r.id < ?3) ORDER BY r.id DESC LIMIT ?4",
        RUN_COLS "WHERE r.status = ?1 AND r.workflow = ?2 AND (?3 = 0 OR r.id < ?3) "
                 "ORDER BY r.id DESC LIMIT ?4",
    };
    int which = (f->status ? 1 : 0) | (f->workflow ? 2 : 0);
    sqlite3_stmt *st = db_stmt(conn, sql[which], err);
    if (!st)
        return AS_EDB;
    if (f->status)
        bind_text(st, 1, f->status);
    if (f->workflow)
        bind_text(st, 2, f->workflow);
    sqlite3_bind_int64(st, 3, f->before_id > 0 ? f->before_id : 0);
    sqlite3_bind_int(st, 4, f->limit > 0 ? f->limit : 50);
    int n;
    return each_run(conn, st, cb, ud, &n, err);
}

enum as_code db_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
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

/* ---- step executions ------------------------------------------------------ */

/* The database's instance id (meta.instance_id), cached per database file:
 * it never changes once the schema is created. */
static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;
static char instance_path[4096];
static char instance_id[40];

static enum as_code get_instance_id(struct db_conn *conn, char *out, size_t size,
                                    struct as_err *err)
{
    static const char sql[] = "SELECT value FROM meta WHERE key = 'instance_id'";
    const char *path = sqlite3_db_filename(db_conn_handle(conn), "main");
    if (!path)
        path = "";
    pthread_mutex_lock(&instance_lock);
    if (instance_id[0] && strcmp(instance_path, path) == 0) {
        snprintf(out, size, "%s", instance_id);
        pthread_mutex_unlock(&instance_lock);
        return AS_OK;
    }
    pthread_mutex_unlock(&instance_lock);
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, size, "%s", db_col_text(st, 0));
    else
        rc = db_error(conn, "read instance id", err);
    db_stmt_done(st);
    if (!rc && strlen(path) < sizeof instance_path) {
        pthread_mutex_lock(&instance_lock);
        snprintf(instance_path, sizeof instance_path, "%s", path);
        snprintf(instance_id, sizeof instance_id, "%s", out);
        pthread_mutex_unlock(&instance_lock);
    }
    return rc;
}

/*
 * The next visit of step in a run (or visit_hint when > 0: the caller knows)
 * and its idempotency key "<instance>/run-<run_id>/<step>/<visit>" (*key
 * malloc'd).
 */
static enum as_code next_visit(struct db_conn *conn, int64_t run_id, const char *step,
                               int visit_hint, int *visit, char **key, struct as_err *err)
{
    static const char sql[] =
        "SELECT COALESCE(MAX(visit), 0) + 1 FROM step_execs WHERE run_id = ?1 AND step = ?2";
    char inst[40];
    *key = NULL;
    enum as_code rc = get_instance_id(conn, inst, sizeof inst, err);
    if (rc)
        return rc;
    if (visit_hint > 0) {
        *visit = visit_hint;
    } else {
        sqlite3_stmt *st = db_stmt(conn, sql, err);
        if (!st)
            return AS_EDB;
        sqlite3_bind_int64(st, 1, run_id);
        bind_text(st, 2, step);
        if (sqlite3_step(st) == SQLITE_ROW)
            *visit = sqlite3_column_int(st, 0);
        else
            rc = db_error(conn, "next visit of a step", err);
        db_stmt_done(st);
        if (rc)
            return rc;
    }
    size_t len = strlen(inst) + strlen(step) + 64;
    *key = malloc(len);
    if (!*key)
        return oom(err);
    snprintf(*key, len, "%s/run-%" PRId64 "/%s/%d", inst, run_id, step, *visit);
    return AS_OK;
}

enum as_code db_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                            int64_t due_at, int64_t now, int64_t *exec_id, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO step_execs (run_id, step, visit, status, attempt, due_at, idempotency_key, "
        "created_at) VALUES (?1, ?2, ?3, 'ready', 0, ?4, ?5, ?6)";
    int visit = 0;
    char *key = NULL;
    enum as_code rc = next_visit(conn, run_id, step, 0, &visit, &key, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st) {
        free(key);
        return AS_EDB;
    }
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, step);
    sqlite3_bind_int(st, 3, visit);
    sqlite3_bind_int64(st, 4, due_at);
    bind_text(st, 5, key);
    sqlite3_bind_int64(st, 6, now);
    rc = step_done(conn, st, "insert step execution", err);
    free(key);
    if (!rc && exec_id)
        *exec_id = sqlite3_last_insert_rowid(db_conn_handle(conn));
    return rc;
}

enum as_code db_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                    int visit_hint, int64_t now, const char *owner,
                                    int64_t lease_until, int queued, struct db_claim *out,
                                    struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO step_execs (run_id, step, visit, status, attempt, due_at, lease_until, "
        "lease_owner, queued, idempotency_key, created_at, started_at) "
        "VALUES (?1, ?2, ?3, 'running', 1, ?4, ?5, ?6, ?7, ?8, ?4, ?4)";
    memset(out, 0, sizeof *out);
    enum as_code rc =
        next_visit(conn, run_id, step, visit_hint, &out->visit, &out->idempotency_key, err);
    if (rc)
        goto fail;
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st) {
        rc = AS_EDB;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, run_id);
    bind_text(st, 2, step);
    sqlite3_bind_int(st, 3, out->visit);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, lease_until);
    bind_text(st, 6, owner);
    sqlite3_bind_int(st, 7, queued ? 1 : 0);
    bind_text(st, 8, out->idempotency_key);
    rc = step_done(conn, st, "insert claimed step execution", err);
    if (rc)
        goto fail;
    out->exec_id = sqlite3_last_insert_rowid(db_conn_handle(conn));
    out->run_id = run_id;
    out->step = strdup(step);
    out->attempt = 1;
    out->lease_until = lease_until;
    out->queued = queued ? 1 : 0;
    snprintf(out->prev_status, sizeof out->prev_status, "ready");
    if (!out->step) {
        rc = oom(err);
        goto fail;
    }
    return AS_OK;
fail:
    db_claim_clear(out);
    return rc;
}

void db_claim_clear(struct db_claim *c)
{
    if (!c)
        return;
    free(c->step);
    free(c->idempotency_key);
    free(c->resume);
    free(c->wait_state);
    free(c->prev_owner);
    memset(c, 0, sizeof *c);
}

#define CLAIM_COLS                                                                            \
    "SELECT e.id, e.run_id, e.step, e.visit, e.attempt, e.status, e.idempotency_key, "        \
    "e.resume, e.wait_state, e.deadline_reached, e.lease_owner, w.hash, r.dry_run, "          \
    "e.recoveries, e.queued "                                                                \
    "FROM step_execs e JOIN runs r ON r.id = e.run_id JOIN workflows w ON w.id = r.workflow_id "

static enum as_code claims_from(struct db_conn *conn, sqlite3_stmt *st, struct db_claim *out,
                                size_t max, size_t *n, struct as_err *err)
{
    enum as_code rc = AS_OK;
    int r;
    while (*n < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_claim *c = &out[*n];
        memset(c, 0, sizeof *c);
        c->exec_id = sqlite3_column_int64(st, 0);
        c->run_id = sqlite3_column_int64(st, 1);
        c->step = col_dup(st, 2);
        c->visit = sqlite3_column_int(st, 3);
        c->attempt = sqlite3_column_int(st, 4);
        snprintf(c->prev_status, sizeof c->prev_status, "%s", db_col_text(st, 5));
        c->idempotency_key = col_dup(st, 6);
        c->resume = col_dup(st, 7);
        c->wait_state = col_dup(st, 8);
        c->deadline_reached = sqlite3_column_int(st, 9);
        c->recovered = strcmp(c->prev_status, "running") == 0;
        if (c->recovered)
            c->prev_owner = col_dup(st, 10);
        snprintf(c->workflow_hash, sizeof c->workflow_hash, "%s", db_col_text(st, 11));
        c->dry_run = sqlite3_column_int(st, 12);
        c->recoveries = sqlite3_column_int(st, 13);
        c->prev_queued = sqlite3_column_int(st, 14);
        (*n)++;
        if (!c->step || !c->idempotency_key ||
            (sqlite3_column_type(st, 7) != SQLITE_NULL && !c->resume) ||
            (sqlite3_column_type(st, 8) != SQLITE_NULL && !c->wait_state)) {
            rc = oom(err);
            break;
        }
    }
    if (!rc && *n < max && r != SQLITE_DONE)
        rc = db_error(conn, "find due steps", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                         struct db_claim *out, size_t *n, struct as_err *err)
{
    static const char due[] = CLAIM_COLS
        "WHERE (e.status = 'ready' OR e.status = 'waiting') AND e.due_at <= ?1 "
        "ORDER BY e.due_at LIMIT ?2";
    static const char expired[] = CLAIM_COLS
        "WHERE e.status = 'running' AND e.lease_until <= ?1 AND e.lease_owner IS NOT ?3 "
        "ORDER BY e.lease_until LIMIT ?2";
    *n = 0;
    if (max == 0)
        return AS_OK;
    sqlite3_stmt *st = db_stmt(conn, due, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    enum as_code rc = claims_from(conn, st, out, max, n, err);
    if (rc || *n >= max)
        goto out;
    st = db_stmt(conn, expired, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(max - *n));
    bind_text(st, 3, owner);
    rc = claims_from(conn, st, out, max, n, err);
out:
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            db_claim_clear(&out[i]);
        *n = 0;
    }
    return rc;
}

enum as_code db_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
                          int64_t now, int64_t lease_until, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'running', "
        "attempt = attempt + (status <> 'running'), "
        "recoveries = recoveries + (status = 'running' AND queued = 0), queued = ?7, "
        "lease_until = ?1, lease_owner = ?2, started_at = ?3, "
        "deadline_reached = CASE WHEN status = 'waiting' THEN 1 ELSE deadline_reached END "
        "WHERE id = ?4 AND status = ?5 AND attempt = ?6";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, lease_until);
    bind_text(st, 2, owner);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, c->exec_id);
    bind_text(st, 5, c->prev_status);
    sqlite3_bind_int(st, 6, c->attempt);
    sqlite3_bind_int(st, 7, c->queued ? 1 : 0);
    enum as_code rc = step_done(conn, st, "claim step", err);
    if (rc)
        return rc;
    if (sqlite3_changes(db_conn_handle(conn)) != 1)
        return as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " changed while claiming",
                       c->exec_id);
    if (!c->recovered)
        c->attempt++;
    else if (!c->prev_queued)
        c->recoveries++;
    if (strcmp(c->prev_status, "waiting") == 0)
        c->deadline_reached = 1;
    c->lease_until = lease_until;
    return AS_OK;
}

enum as_code db_exec_record(struct db_conn *conn, const struct db_exec_result *r,
                            struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = ?1, due_at = CASE WHEN ?1 = 'ready' OR ?1 = 'waiting' "
        "THEN ?2 ELSE due_at END, lease_until = NULL, lease_owner = NULL, params = ?3, "
        "output = ?4, outcome = ?5, error = ?6, finished_at = ?8, "
        "wait_state = CASE WHEN ?1 = 'waiting' THEN ?7 ELSE wait_state END, "
        "resume = CASE WHEN ?1 = 'waiting' THEN NULL ELSE resume END, "
        "deadline_reached = CASE WHEN ?1 = 'waiting' THEN 0 ELSE deadline_reached END, "
        "attempt = CASE WHEN ?1 = 'waiting' THEN 0 ELSE attempt END "
        "WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 AND attempt = ?11";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    bind_text(st, 1, r->status);
    sqlite3_bind_int64(st, 2, r->due_at);
    bind_text(st, 3, r->params);
    bind_text(st, 4, r->output);
    bind_text(st, 5, r->outcome);
    bind_text(st, 6, r->error);
    bind_text(st, 7, r->wait_state);
    sqlite3_bind_int64(st, 8, r->finished_at);
    sqlite3_bind_int64(st, 9, r->exec_id);
    bind_text(st, 10, r->owner);
    sqlite3_bind_int(st, 11, r->attempt);
    enum as_code rc = step_done(conn, st, "record step result", err);
    if (rc)
        return rc;
    if (sqlite3_changes(db_conn_handle(conn)) != 1)
        return as_errf(err, AS_ECONFLICT,
                       "step execution %" PRId64 " is no longer held by this claim "
                       "(cancelled, or its lease expired and it was claimed again)",
                       r->exec_id);
    return AS_OK;
}

enum as_code db_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                             int attempt, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'ready', attempt = attempt - 1, lease_until = NULL, "
        "lease_owner = NULL WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 "
        "AND attempt = ?3";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, exec_id);
    bind_text(st, 2, owner);
    sqlite3_bind_int(st, 3, attempt);
    enum as_code rc = step_done(conn, st, "release step", err);
    if (!rc && sqlite3_changes(db_conn_handle(conn)) != 1)
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is no longer held", exec_id);
    return rc;
}

enum as_code db_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                            struct as_err *err)
{
    static const char sel[] = "SELECT run_id, status FROM step_execs WHERE id = ?1";
    static const char upd[] = "UPDATE step_execs SET status = 'ready', due_at = ?2, resume = ?3 "
                              "WHERE id = ?1 AND status = 'waiting'";
    enum as_code rc = AS_OK;
    char *text = NULL;
    json_t *data = NULL;
    int64_t run_id = 0, now = time_now_ms();
    char status[16] = "";

    sqlite3_stmt *st = db_stmt(conn, sel, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, exec_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        run_id = sqlite3_column_int64(st, 0);
        snprintf(status, sizeof status, "%s", db_col_text(st, 1));
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no step execution %" PRId64, exec_id);
    } else {
        rc = db_error(conn, "find step execution", err);
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    if (strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is %s, not waiting",
                       exec_id, status);

    text = json_dumps(payload ? payload : json_null(),
                      JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return oom(err);
    st = db_stmt(conn, upd, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, exec_id);
    sqlite3_bind_int64(st, 2, now);
    bind_text(st, 3, text);
    rc = step_done(conn, st, "resume step", err);
    if (rc)
        goto out;
    rc = db_run_set_status(conn, run_id, "running", NULL, now, err);
    if (rc)
        goto out;
    data = json_pack("{s:O}", "payload", payload ? (json_t *)payload : json_null());
    if (!data) {
        rc = oom(err);
        goto out;
    }
    rc = db_event_append(conn, run_id, exec_id, "step.resumed", data, err);
out:
    json_decref(data);
    free(text);
    return rc;
}

enum as_code db_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                              struct as_err *err)
{
    static const char q1[] = "SELECT due_at FROM step_execs WHERE (status = 'ready' OR status = 'waiting') "
                             "ORDER BY due_at LIMIT 1";
    static const char q2[] = "SELECT lease_until FROM step_execs WHERE status = 'running' "
                             "AND lease_owner IS NOT ?1 ORDER BY lease_until LIMIT 1";
    const char *qs[2] = {q1, q2};
    *due = INT64_MAX;
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = db_stmt(conn, qs[i], err);
        if (!st)
            return AS_EDB;
        if (i == 1)
            bind_text(st, 1, owner);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            int64_t t = col_i64(st, 0);
            if (t < *due)
                *due = t;
        } else if (r != SQLITE_DONE) {
            enum as_code rc = db_error(conn, "find next due step", err);
            db_stmt_done(st);
            return rc;
        }
        db_stmt_done(st);
    }
    return AS_OK;
}

enum as_code db_exec_lease_owners(struct db_conn *conn, int (*cb)(void *ud, const char *owner),
                                  void *ud, struct as_err *err)
{
    static const char sql[] = "SELECT DISTINCT lease_owner FROM step_execs "
                              "WHERE status = 'running' AND lease_owner IS NOT NULL";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(ud, db_col_text(st, 0)))
            break;
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "list lease owners", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                  struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET lease_until = 0 WHERE status = 'running' AND lease_owner = ?1";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    bind_text(st, 1, owner);
    enum as_code rc = step_done(conn, st, "expire leases", err);
    if (!rc && n)
        *n = sqlite3_changes(db_conn_handle(conn));
    return rc;
}

enum as_code db_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                          struct as_err *err)
{
    static const char sql[] =
        "SELECT id, run_id, step, status, idempotency_key, params, output, outcome, error, "
        "wait_state, resume, lease_owner, visit, attempt, deadline_reached, due_at, lease_until, "
        "created_at, started_at, finished_at, recoveries FROM step_execs WHERE run_id = ?1 "
        "ORDER BY id";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_exec_info e = {
            .id = sqlite3_column_int64(st, 0),
            .run_id = sqlite3_column_int64(st, 1),
            .step = db_col_text(st, 2),
            .status = db_col_text(st, 3),
            .idempotency_key = db_col_text(st, 4),
            .params = db_col_text(st, 5),
            .output = db_col_text(st, 6),
            .outcome = db_col_text(st, 7),
            .error = db_col_text(st, 8),
            .wait_state = db_col_text(st, 9),
            .resume = db_col_text(st, 10),
            .lease_owner = db_col_text(st, 11),
            .visit = sqlite3_column_int(st, 12),
            .attempt = sqlite3_column_int(st, 13),
            .deadline_reached = sqlite3_column_int(st, 14),
            .due_at = col_i64(st, 15),
            .lease_until = col_i64(st, 16),
            .created_at = col_i64(st, 17),
            .started_at = col_i64(st, 18),
            .finished_at = col_i64(st, 19),
            .recoveries = sqlite3_column_int(st, 20),
        };
        if (cb(ud, &e))
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "list step executions", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                          void *ud, struct as_err *err)
{
    static const char q_input[] = "SELECT input FROM runs WHERE id = ?1";
    static const char q_steps[] =
        "SELECT step, status, output, outcome, error FROM step_execs "
        "WHERE run_id = ?1 AND (status = 'succeeded' OR status = 'failed') ORDER BY id";
    *input = NULL;
    sqlite3_stmt *st = db_stmt(conn, q_input, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, run_id);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *input = strdup(db_col_text(st, 0));
        if (!*input)
            rc = oom(err);
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    } else {
        rc = db_error(conn, "read run input", err);
    }
    db_stmt_done(st);
    if (rc)
        return rc;
    st = db_stmt(conn, q_steps, err);
    if (!st) {
        rc = AS_EDB;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, run_id);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_exec_info e = {
            .run_id = run_id,
            .step = db_col_text(st, 0),
            .status = db_col_text(st, 1),
            .output = db_col_text(st, 2),
            .outcome = db_col_text(st, 3),
            .error = db_col_text(st, 4),
        };
        if (cb(ud, &e))
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "read step outputs", err);
    db_stmt_done(st);
    if (!rc)
        return AS_OK;
fail:
    free(*input);
    *input = NULL;
    return rc;
}

/* ---- event log ------------------------------------------------------------ */

/*
 * The chained hash of an event: SHA-256 over prev_hash (hex) followed by
 * "id|run_id|exec_id|ts|type|" (empty run_id/exec_id for none) and the hex
 * SHA-256 of data.  The fields are integers, a type limited to [a-z0-9._-]
 * and fixed-length digests, so the text is unambiguous; hashing data apart
 * lets the executor's workers digest it in parallel.
 */
/* SHA-256, fetched once (an implicit fetch per digest costs as much as the
 * digest), with one reusable context per thread. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static pthread_key_t sha256_ctx_key;

static void sha256_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha256_init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&sha256_ctx_key, sha256_ctx_free) != 0) {
        EVP_MD_free(sha256_md);
        sha256_md = NULL;
    }
}

/* Hex SHA-256 of the concatenation of n parts; 0 on success. */
static int sha256_parts(const char *const *parts, const size_t *lens, int n, char out[65])
{
    pthread_once(&sha256_once, sha256_init);
    if (!sha256_md)
        return -1;
    EVP_MD_CTX *ctx = pthread_getspecific(sha256_ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(sha256_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            return -1;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_DigestInit_ex(ctx, sha256_md, NULL);
    for (int i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], lens[i]);
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
    if (!ok || mdlen != 32)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

int db_event_digest(const char *data, char out[65])
{
    const char *parts[1] = {data ? data : "{}"};
    size_t lens[1] = {strlen(parts[0])};
    return sha256_parts(parts, lens, 1, out);
}

/* Decimal digits of v (>= 0) at p; returns the length.  ("" for 0 when zero_empty.) */
static size_t put_i64(char *p, int64_t v, int zero_empty)
{
    char tmp[24];
    size_t n = 0;
    if (v == 0 && zero_empty)
        return 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        p[len++] = '-';
    while (n)
        p[len++] = tmp[--n];
    return len;
}

static int event_hash(const char *prev_hash, int64_t id, int64_t run_id, int64_t exec_id,
                      int64_t ts, const char *type, const char *data_digest, char out[65])
{
    char head[256];
    size_t tl = strlen(type), hl = 0;
    if (tl > 100 || strlen(prev_hash) != 64 || strlen(data_digest) != 64)
        return -1;
    hl += put_i64(head + hl, id, 0);
    head[hl++] = '|';
    hl += put_i64(head + hl, run_id, 1);
    head[hl++] = '|';
    hl += put_i64(head + hl, exec_id, 1);
    head[hl++] = '|';
    hl += put_i64(head + hl, ts, 0);
    head[hl++] = '|';
    memcpy(head + hl, type, tl);
    hl += tl;
    head[hl++] = '|';
    const char *parts[3] = {prev_hash, head, data_digest};
    size_t lens[3] = {64, hl, 64};
    return sha256_parts(parts, lens, 3, out);
}

static int type_ok(const char *type)
{
    size_t n = 0;
    for (const char *p = type; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

enum as_code db_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                     int64_t run_id, int64_t exec_id, const char *type,
                                     const char *data, const char *data_digest, int64_t now,
                                     struct as_err *err)
{
    static const char last[] = "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1";
    static const char ins[] =
        "INSERT INTO events (id, run_id, exec_id, ts, type, data, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    struct db_event_chain local = {0};
    if (!type_ok(type))
        return as_errf(err, AS_EINVAL, "event type \"%.80s\" must be 1-64 of [a-z0-9._-]", type);
    if (!data)
        data = "{}";
    if (!chain)
        chain = &local;
    enum as_code rc = AS_OK;
    sqlite3_stmt *st;
    if (!chain->loaded) {
        /* Read the chain's head inside this write transaction: another process
         * may have appended since our last event. */
        chain->id = 0;
        memcpy(chain->hash, ZERO_HASH, sizeof chain->hash);
        st = db_stmt(conn, last, err);
        if (!st)
            return AS_EDB;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            chain->id = sqlite3_column_int64(st, 0);
            snprintf(chain->hash, sizeof chain->hash, "%s", db_col_text(st, 1));
        } else if (r != SQLITE_DONE) {
            rc = db_error(conn, "read event chain head", err);
        }
        db_stmt_done(st);
        if (rc)
            return rc;
        chain->loaded = 1;
    }
    char hash[65], digest[65];
    int64_t id = chain->id + 1;
    if (!data_digest) {
        if (db_event_digest(data, digest))
            return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
        data_digest = digest;
    }
    if (event_hash(chain->hash, id, run_id, exec_id, now, type, data_digest, hash))
        return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
    st = db_stmt(conn, ins, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    if (run_id)
        sqlite3_bind_int64(st, 2, run_id);
    else
        sqlite3_bind_null(st, 2);
    if (exec_id)
        sqlite3_bind_int64(st, 3, exec_id);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, now);
    bind_text(st, 5, type);
    bind_text(st, 6, data);
    bind_text(st, 7, chain->hash);
    bind_text(st, 8, hash);
    rc = step_done(conn, st, "append event", err);
    if (rc) {
        chain->loaded = 0;
        return rc;
    }
    chain->id = id;
    memcpy(chain->hash, hash, sizeof chain->hash);
    return AS_OK;
}

enum as_code db_event_append_text(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                                  const char *type, const char *data, int64_t now,
                                  struct as_err *err)
{
    return db_event_append_chained(conn, NULL, run_id, exec_id, type, data, NULL, now, err);
}

enum as_code db_event_append(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                             const char *type, const json_t *data, struct as_err *err)
{
    char *text = NULL;
    if (data) {
        text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!text)
            return oom(err);
    }
    enum as_code rc = db_event_append_text(conn, run_id, exec_id, type, text, time_now_ms(), err);
    free(text);
    return rc;
}

enum as_code db_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                           struct as_err *err)
{
    static const char one[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events WHERE run_id = ?1 ORDER BY id";
    static const char all[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events ORDER BY id";
    sqlite3_stmt *st = db_stmt(conn, run_id ? one : all, err);
    if (!st)
        return AS_EDB;
    if (run_id)
        sqlite3_bind_int64(st, 1, run_id);
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_event_info ev = {
            .id = sqlite3_column_int64(st, 0),
            .run_id = col_i64(st, 1),
            .exec_id = col_i64(st, 2),
            .ts = col_i64(st, 3),
            .type = db_col_text(st, 4),
            .data = db_col_text(st, 5),
            .prev_hash = db_col_text(st, 6),
            .hash = db_col_text(st, 7),
        };
        if (cb(ud, &ev))
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "read events", err);
    db_stmt_done(st);
    return rc;
}

struct verify_state {
    struct db_audit_report *rep;
    int64_t prev_id;
    char prev_hash[65];
    int64_t anchor_id;
    const char *anchor_hash;
    int anchor_seen, anchor_ok;
};

static int verify_one(void *ud, const struct db_event_info *ev)
{
    struct verify_state *vs = ud;
    struct db_audit_report *rep = vs->rep;
    char computed[65];
    rep->n_events++;
    char digest[65];
    int self_ok = db_event_digest(ev->data, digest) == 0 &&
                  event_hash(ev->prev_hash, ev->id, ev->run_id, ev->exec_id, ev->ts, ev->type,
                             digest, computed) == 0 &&
                  strcmp(computed, ev->hash) == 0;
    int link_ok = strcmp(ev->prev_hash, vs->prev_hash) == 0;
    int gap = ev->id != vs->prev_id + 1;
    if (ev->id == vs->anchor_id) {
        vs->anchor_seen = 1;
        vs->anchor_ok = vs->anchor_hash && strcmp(ev->hash, vs->anchor_hash) == 0;
    }
    if (!rep->bad_id && (!self_ok || !link_ok || gap)) {
        rep->bad_id = ev->id;
        char prev[48];
        if (vs->prev_id)
            snprintf(prev, sizeof prev, "event %" PRId64, vs->prev_id);
        else
            snprintf(prev, sizeof prev, "the start of the log");
        if (gap && self_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "events %" PRId64 "..%" PRId64 " were deleted: event %" PRId64
                     " no longer follows %s",
                     vs->prev_id + 1, ev->id - 1, ev->id, prev);
        else if (gap)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was inserted: its id does not follow %s and its hash "
                     "does not match its content",
                     ev->id, prev);
        else if (!self_ok && link_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was altered: its content no longer matches its hash",
                     ev->id);
        else if (!self_ok)
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " was inserted or altered: it does not link to %s and its "
                     "hash does not match its content",
                     ev->id, prev);
        else
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " does not link to %s: %s was altered and re-hashed, or "
                     "event %" PRId64 " was inserted",
                     ev->id, prev, prev, ev->id);
    }
    vs->prev_id = ev->id;
    snprintf(vs->prev_hash, sizeof vs->prev_hash, "%s", ev->hash);
    rep->head_id = ev->id;
    snprintf(rep->head_hash, sizeof rep->head_hash, "%s", ev->hash);
    return 0;
}

enum as_code db_audit_verify(struct db_conn *conn, int64_t anchor_id, const char *anchor_hash,
                             struct db_audit_report *rep, struct as_err *err)
{
    memset(rep, 0, sizeof *rep);
    struct verify_state vs = {.rep = rep, .anchor_id = anchor_id, .anchor_hash = anchor_hash};
    memcpy(vs.prev_hash, ZERO_HASH, sizeof vs.prev_hash);
    enum as_code rc = db_run_events(conn, 0, verify_one, &vs, err);
    if (rc)
        return rc;
    if (!rep->bad_id && anchor_id > 0) {
        if (!vs.anchor_seen) {
            rep->bad_id = anchor_id;
            snprintf(rep->problem, sizeof rep->problem,
                     "anchored event %" PRId64 " is missing: the newest events were deleted",
                     anchor_id);
        } else if (!vs.anchor_ok) {
            rep->bad_id = anchor_id;
            snprintf(rep->problem, sizeof rep->problem,
                     "event %" PRId64 " does not carry the anchored hash: the log was rewritten "
                     "from there on",
                     anchor_id);
        }
    }
    return AS_OK;
}
