/*
 * db_execs.c - SQL of step executions: inserts, claims (db_exec_due +
 * db_exec_take), results, releases, resumes, leases.  Contract in
 * db_execs.h.  The executor's hot path: each statement is prepared once per
 * connection, and none uses an IN list or a foreign key (see the schema).
 */
#include "db/db_execs.h"
#include "db/sqlite/sqlite.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_events.h"
#include "db/db_runs.h"
#include "base/timeutil.h"

/* ---- small helpers -------------------------------------------------------- */

/* Note: conditions on status are written with OR, never IN (...): SQLite 3.40
 * builds a temporary table for an IN list each time a statement runs, which
 * dominated the executor's hot path.  Queries that should use a partial
 * index repeat its condition word for word. */

/* malloc'd copy of a column, NULL when the column is NULL (or on ENOMEM:
 * callers that need the value check). */
static char *col_dup(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

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
        db_bind_text_or_null(st, 2, step);
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

enum as_code db_sqlite_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                                   int64_t due_at, int64_t now, int64_t *exec_id,
                                   struct as_err *err)
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
    db_bind_text_or_null(st, 2, step);
    sqlite3_bind_int(st, 3, visit);
    sqlite3_bind_int64(st, 4, due_at);
    db_bind_text_or_null(st, 5, key);
    sqlite3_bind_int64(st, 6, now);
    rc = db_step_done(conn, st, "insert step execution", err);
    free(key);
    if (!rc && exec_id)
        *exec_id = sqlite3_last_insert_rowid(db_conn_handle(conn));
    return rc;
}

enum as_code db_sqlite_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
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
    db_bind_text_or_null(st, 2, step);
    sqlite3_bind_int(st, 3, out->visit);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, lease_until);
    db_bind_text_or_null(st, 6, owner);
    sqlite3_bind_int(st, 7, queued ? 1 : 0);
    db_bind_text_or_null(st, 8, out->idempotency_key);
    rc = db_step_done(conn, st, "insert claimed step execution", err);
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

enum as_code db_sqlite_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
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
    db_bind_text_or_null(st, 3, owner);
    rc = claims_from(conn, st, out, max, n, err);
out:
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            db_claim_clear(&out[i]);
        *n = 0;
    }
    return rc;
}

enum as_code db_sqlite_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
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
    db_bind_text_or_null(st, 2, owner);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, c->exec_id);
    db_bind_text_or_null(st, 5, c->prev_status);
    sqlite3_bind_int(st, 6, c->attempt);
    sqlite3_bind_int(st, 7, c->queued ? 1 : 0);
    enum as_code rc = db_step_done(conn, st, "claim step", err);
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

/* A wait recorded just now ends at once when a resume was held meanwhile. */
static enum as_code take_held_resume(struct db_conn *conn, const struct db_exec_result *r,
                                     char **held, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'ready', due_at = ?2, resume = resume_held, "
        "resume_held = NULL WHERE id = ?1 AND status = 'waiting' AND resume_held IS NOT NULL "
        "RETURNING resume";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, r->exec_id);
    sqlite3_bind_int64(st, 2, r->finished_at);
    enum as_code rc = AS_OK;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *held = col_dup(st, 0);
        if (!*held)
            rc = oom(err);
    } else if (s != SQLITE_DONE) {
        rc = db_error(conn, "deliver held resume", err);
    }
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_exec_record_held(struct db_conn *conn, const struct db_exec_result *r,
                                        char **held, struct as_err *err)
{
    *held = NULL;
    /* One statement per kind of end, so that the common one (a step ended)
     * assigns only what changes: fewer columns and no CASE to evaluate. */
    static const char ended[] =
        "UPDATE step_execs SET status = ?1, lease_until = NULL, lease_owner = NULL, "
        "params = ?3, output = ?4, outcome = ?5, error = ?6, finished_at = ?8 "
        "WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 AND attempt = ?11";
    static const char retry[] =
        "UPDATE step_execs SET status = 'ready', due_at = ?2, lease_until = NULL, "
        "lease_owner = NULL, params = ?3, output = ?4, outcome = ?5, error = ?6, finished_at = ?8 "
        "WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 AND attempt = ?11";
    static const char wait[] =
        "UPDATE step_execs SET status = 'waiting', due_at = ?2, lease_until = NULL, "
        "lease_owner = NULL, params = ?3, output = ?4, outcome = ?5, error = ?6, finished_at = ?8, "
        "wait_state = ?7, resume = NULL, deadline_reached = 0, attempt = 0 "
        "WHERE id = ?9 AND status = 'running' AND lease_owner = ?10 AND attempt = ?11";
    int waiting = strcmp(r->status, "waiting") == 0;
    const char *sql = waiting ? wait : strcmp(r->status, "ready") == 0 ? retry : ended;
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, r->status);
    sqlite3_bind_int64(st, 2, r->due_at);
    db_bind_text_or_null(st, 3, r->params);
    db_bind_text_or_null(st, 4, r->output);
    db_bind_text_or_null(st, 5, r->outcome);
    db_bind_text_or_null(st, 6, r->error);
    db_bind_text_or_null(st, 7, r->wait_state);
    sqlite3_bind_int64(st, 8, r->finished_at);
    sqlite3_bind_int64(st, 9, r->exec_id);
    db_bind_text_or_null(st, 10, r->owner);
    sqlite3_bind_int(st, 11, r->attempt);
    enum as_code rc = db_step_done(conn, st, "record step result", err);
    if (rc)
        return rc;
    if (sqlite3_changes(db_conn_handle(conn)) != 1)
        return as_errf(err, AS_ECONFLICT,
                       "step execution %" PRId64 " is no longer held by this claim "
                       "(cancelled, or its lease expired and it was claimed again)",
                       r->exec_id);
    return waiting ? take_held_resume(conn, r, held, err) : AS_OK;
}

enum as_code db_sqlite_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
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
    db_bind_text_or_null(st, 2, owner);
    sqlite3_bind_int(st, 3, attempt);
    enum as_code rc = db_step_done(conn, st, "release step", err);
    if (!rc && sqlite3_changes(db_conn_handle(conn)) != 1)
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is no longer held", exec_id);
    return rc;
}

enum as_code db_sqlite_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                                   struct as_err *err)
{
    static const char sel[] = "SELECT run_id, status FROM step_execs WHERE id = ?1";
    static const char upd[] = "UPDATE step_execs SET status = 'ready', due_at = ?2, resume = ?3 "
                              "WHERE id = ?1 AND status = 'waiting'";
    static const char hold[] = "UPDATE step_execs SET resume_held = ?3 WHERE id = ?1 "
                               "AND (status = 'running' OR status = 'ready')"; /* ?2 unused */
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
    /* Not waiting yet (still running, or resumed and not yet claimed): hold
     * the payload until the attempt ends with a wait (db_exec_record). */
    int held = strcmp(status, "running") == 0 || strcmp(status, "ready") == 0;
    if (!held && strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " has ended (%s)", exec_id,
                       status);

    text = json_dumps(payload ? payload : json_null(),
                      JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return oom(err);
    st = db_stmt(conn, held ? hold : upd, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, exec_id);
    sqlite3_bind_int64(st, 2, now);
    db_bind_text_or_null(st, 3, text);
    rc = db_step_done(conn, st, "resume step", err);
    if (rc)
        goto out;
    if (sqlite3_changes(db_conn_handle(conn)) != 1) {
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " changed while resuming",
                     exec_id);
        goto out;
    }
    if (!held) {
        rc = db_sqlite_run_set_status(conn, run_id, "running", NULL, now, err);
        if (rc)
            goto out;
    }
    data = held ? json_pack("{s:O, s:s}", "payload", payload ? (json_t *)payload : json_null(),
                            "status", status)
                : json_pack("{s:O}", "payload", payload ? (json_t *)payload : json_null());
    if (!data) {
        rc = oom(err);
        goto out;
    }
    rc = db_event_append(conn, run_id, exec_id, held ? "step.resume_held" : "step.resumed", data,
                         err);
out:
    json_decref(data);
    free(text);
    return rc;
}

enum as_code db_sqlite_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                        struct db_claim *out, struct as_err *err)
{
    static const char find[] =
        "SELECT e.run_id, e.step, e.visit, w.hash, r.dry_run FROM step_execs e "
        "JOIN runs r ON r.id = e.run_id JOIN workflows w ON w.id = r.workflow_id "
        "WHERE e.id = ?1 AND e.status = 'waiting'";
    /* What a claim (attempt 1, started now) and a recorded success would
     * have written, in one statement. */
    static const char upd[] =
        "UPDATE step_execs SET status = 'succeeded', attempt = 1, resume = ?2, started_at = ?3, "
        "finished_at = ?3, outcome = ?4, output = ?5, error = NULL, deadline_reached = 0 "
        "WHERE id = ?1 AND status = 'waiting'";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(conn, find, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, end->exec_id);
    enum as_code rc = AS_OK;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        out->exec_id = end->exec_id;
        out->run_id = sqlite3_column_int64(st, 0);
        out->step = col_dup(st, 1);
        out->visit = sqlite3_column_int(st, 2);
        snprintf(out->workflow_hash, sizeof out->workflow_hash, "%s", db_col_text(st, 3));
        out->dry_run = sqlite3_column_int(st, 4);
        out->attempt = 1;
        snprintf(out->prev_status, sizeof out->prev_status, "waiting");
        if (!out->step)
            rc = oom(err);
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is not waiting",
                     end->exec_id);
    } else {
        rc = db_error(conn, "find waiting step", err);
    }
    db_stmt_done(st);
    if (!rc && end->accept && !end->accept(end->ud, out))
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is left to run again",
                     end->exec_id);
    if (rc)
        goto fail;
    st = db_stmt(conn, upd, err);
    if (!st) {
        rc = AS_EDB;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, end->exec_id);
    db_bind_text_or_null(st, 2, end->resume);
    sqlite3_bind_int64(st, 3, end->now);
    db_bind_text_or_null(st, 4, end->outcome);
    db_bind_text_or_null(st, 5, end->output);
    rc = db_step_done(conn, st, "end waiting step", err);
    if (!rc)
        return AS_OK;
fail:
    db_claim_clear(out);
    return rc;
}

enum as_code db_sqlite_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
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
            db_bind_text_or_null(st, 1, owner);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            int64_t t = sqlite3_column_int64(st, 0);
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

enum as_code db_sqlite_exec_lease_owners(struct db_conn *conn,
                                         int (*cb)(void *ud, const char *owner), void *ud,
                                         struct as_err *err)
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

enum as_code db_sqlite_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                         struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET lease_until = 0 WHERE status = 'running' AND lease_owner = ?1";
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, owner);
    enum as_code rc = db_step_done(conn, st, "expire leases", err);
    if (!rc && n)
        *n = sqlite3_changes(db_conn_handle(conn));
    return rc;
}

/* One host: a dead process is recognised by its process id
 * (db_exec_lease_owners, base/lease_owner.h), so there is nothing to beat. */
enum as_code db_sqlite_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                                      int64_t *clock_ms, struct as_err *err)
{
    if (clock_ms)
        *clock_ms = time_now_ms();
    return AS_OK;
}

/* One host: every scheduler may act, and its claims keep firings single. */
enum as_code db_sqlite_leader_try(struct db *db, struct db_leader **l, const char *role,
                                  int *leader, struct as_err *err)
{
    *l = NULL;
    *leader = 1;
    return AS_OK;
}

void db_sqlite_leader_release(struct db_leader *l)
{
    /* db_sqlite_leader_try never makes one. */
}

enum as_code db_sqlite_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
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
            .due_at = sqlite3_column_int64(st, 15),
            .lease_until = sqlite3_column_int64(st, 16),
            .created_at = sqlite3_column_int64(st, 17),
            .started_at = sqlite3_column_int64(st, 18),
            .finished_at = sqlite3_column_int64(st, 19),
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

enum as_code db_sqlite_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
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
