/*
 * runs.c - the PostgreSQL store's workflow definitions and runs (contract
 * in db/db_runs.h; the SQLite store's db/sqlite/db_runs.c does the same in
 * SQLite's dialect).  Step executions are in execs.c, the event log in
 * events.c.
 *
 * A statement that fails aborts a PostgreSQL transaction, while the
 * contract keeps the transaction usable after a refused insert (a dedupe
 * key in use) or retry: those use ON CONFLICT DO NOTHING or a savepoint
 * instead of letting the statement fail.
 */
#include "db/postgres/pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* ---- workflow definitions ------------------------------------------------- */

enum as_code db_pg_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w,
                                int64_t now, int64_t *id, struct as_err *err)
{
    /* The insert returns the id when it inserted or updated; a known
     * version it left alone is read by the SELECT.  A row another node
     * committed after this statement's snapshot is read by the second
     * SELECT, which takes a new one (READ COMMITTED). */
    static const char put[] =
        "WITH ins AS (INSERT INTO workflows (name, version, hash, definition, source_path, "
        "created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (hash) DO UPDATE SET "
        "source_path = excluded.source_path WHERE substr(excluded.source_path, 1, 1) = '/' "
        "AND (workflows.source_path IS NULL OR substr(workflows.source_path, 1, 1) <> '/') "
        "RETURNING id) "
        "SELECT id FROM ins UNION ALL SELECT id FROM workflows WHERE hash = $3 LIMIT 1";
    static const char sel[] = "SELECT id FROM workflows WHERE hash = $1";
    struct pg_args a = {0};
    pg_arg_text(&a, w->name);
    pg_arg_text(&a, w->version);
    pg_arg_text(&a, w->hash);
    pg_arg_text(&a, w->definition);
    pg_arg_text(&a, w->source_path);
    pg_arg_i64(&a, now);
    PGresult *r = pg_run(conn, put, &a, "store workflow", err);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        struct pg_args b = {0};
        pg_arg_text(&b, w->hash);
        r = pg_run(conn, sel, &b, "find workflow", err);
        if (!r)
            return AS_EDB;
    }
    enum as_code rc = AS_OK;
    if (PQntuples(r) > 0)
        *id = pg_i64(r, 0, 0);
    else
        rc = as_errf(err, AS_EDB, "workflow %s vanished", w->hash);
    PQclear(r);
    return rc;
}

enum as_code db_pg_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                                struct as_err *err)
{
    struct pg_args a = {0};
    *definition = NULL;
    pg_arg_text(&a, hash);
    PGresult *r =
        pg_run(conn, "SELECT definition FROM workflows WHERE hash = $1", &a, "load workflow", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) == 1) {
        *definition = strdup(pg_text(r, 0, 0));
        if (!*definition)
            rc = oom(err);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no workflow version %s in the database", hash);
    }
    PQclear(r);
    return rc;
}

/* ---- runs ---------------------------------------------------------------- */

enum as_code db_pg_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                              int64_t *run_id, struct as_err *err)
{
    /* The conflict target names the partial unique index runs_open_dedupe
     * (its columns and its condition), so an open run holding the key makes
     * the insert do nothing instead of failing the transaction. */
    static const char ins[] =
        "INSERT INTO runs (workflow_id, workflow, status, input, dedupe_key, trigger, dry_run, "
        "created_at, updated_at, kpi) VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $7, $8) "
        "ON CONFLICT (workflow, dedupe_key) WHERE dedupe_key IS NOT NULL AND "
        "(status = 'running' OR status = 'waiting') DO NOTHING RETURNING id";
    static const char open[] = "SELECT id FROM runs WHERE workflow = $1 AND dedupe_key = $2 "
                               "AND (status = 'running' OR status = 'waiting')";
    struct pg_args a = {0};
    pg_arg_i64(&a, r->workflow_id);
    pg_arg_text(&a, r->workflow);
    pg_arg_text(&a, r->input ? r->input : "{}");
    pg_arg_text(&a, r->dedupe_key);
    pg_arg_text(&a, r->trigger);
    pg_arg_i64(&a, r->dry_run ? 1 : 0);
    pg_arg_i64(&a, now);
    pg_arg_text(&a, r->kpi);
    PGresult *res = pg_run(conn, ins, &a, "insert run", err);
    if (!res)
        return AS_EDB;
    if (PQntuples(res) == 1) {
        *run_id = pg_i64(res, 0, 0);
        PQclear(res);
        return AS_OK;
    }
    PQclear(res);
    struct pg_args b = {0};
    pg_arg_text(&b, r->workflow);
    pg_arg_text(&b, r->dedupe_key);
    res = pg_run(conn, open, &b, "find run by dedupe key", err);
    if (!res)
        return AS_EDB;
    enum as_code rc;
    if (PQntuples(res) == 1) {
        *run_id = pg_i64(res, 0, 0);
        rc = as_errf(err, AS_ECONFLICT, "run %" PRId64 " of %s with dedupe key \"%s\" is still open",
                     *run_id, r->workflow, r->dedupe_key);
    } else {
        /* It ended between the two statements: the caller may try again. */
        rc = as_errf(err, AS_ECONFLICT, "a run of %s with dedupe key \"%s\" was open", r->workflow,
                     r->dedupe_key);
    }
    PQclear(res);
    return rc;
}

enum as_code db_pg_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                                  const char *error, int64_t now, struct as_err *err)
{
    static const char sql[] =
        "UPDATE runs SET status = $2::text, error = $3, updated_at = $4::bigint, "
        "finished_at = CASE WHEN $2 = 'succeeded' OR $2 = 'failed' OR $2 = 'cancelled' THEN $4 "
        "END WHERE id = $1 AND (status = 'running' OR status = 'waiting')";
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    pg_arg_text(&a, status);
    pg_arg_text(&a, error);
    pg_arg_i64(&a, now);
    int64_t changed = 0;
    enum as_code rc = pg_do(conn, sql, &a, "update run", &changed, err);
    if (rc)
        return rc;
    if (changed != 1)
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended", run_id);
    return AS_OK;
}

enum as_code db_pg_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                              struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    PGresult *r = pg_run(conn, "SELECT COALESCE(end_status, status) FROM runs WHERE id = $1", &a,
                         "read run", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) == 1)
        snprintf(buf, size, "%s", pg_text(r, 0, 0));
    else
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    PQclear(r);
    return rc;
}

/* End an open run as cancelled (end_status NULL) or superseded, with every
 * open step execution of it. */
static enum as_code end_open_run(struct db_conn *conn, int64_t run_id, const char *end_status,
                                 const char *reason, int64_t now, struct as_err *err)
{
    static const char execs[] =
        "UPDATE step_execs SET status = 'cancelled', lease_until = NULL, lease_owner = NULL, "
        "finished_at = $2 WHERE run_id = $1 AND (status = 'ready' OR status = 'running' OR "
        "status = 'waiting')";
    static const char mark[] = "UPDATE runs SET end_status = $2 WHERE id = $1";
    char status[16];
    enum as_code rc = db_pg_run_status(conn, run_id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "running") && strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has already ended (%s)", run_id, status);
    rc = db_pg_run_set_status(conn, run_id, "cancelled", reason, now, err);
    if (rc)
        return rc;
    if (end_status) {
        struct pg_args a = {0};
        pg_arg_i64(&a, run_id);
        pg_arg_text(&a, end_status);
        rc = pg_do(conn, mark, &a, "mark run", NULL, err);
        if (rc)
            return rc;
    }
    struct pg_args b = {0};
    pg_arg_i64(&b, run_id);
    pg_arg_i64(&b, now);
    return pg_do(conn, execs, &b, "cancel step executions", NULL, err);
}

enum as_code db_pg_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now,
                              struct as_err *err)
{
    return end_open_run(conn, run_id, NULL, NULL, now, err);
}

enum as_code db_pg_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason,
                                 int64_t now, struct as_err *err)
{
    return end_open_run(conn, run_id, "superseded", reason, now, err);
}

struct open_of_kpi {
    db_run_open_cb cb;
    void *ud;
};

static int open_of_kpi_row(void *ud, const PGresult *r, int i)
{
    struct open_of_kpi *o = ud;
    return o->cb(o->ud, pg_i64(r, i, 0), pg_text(r, i, 1));
}

enum as_code db_pg_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                    db_run_open_cb cb, void *ud, struct as_err *err)
{
    static const char sql[] =
        "SELECT id, dedupe_key FROM runs WHERE kpi = $1 AND workflow = $2 AND "
        "(status = 'running' OR status = 'waiting') ORDER BY id";
    struct pg_args a = {0};
    pg_arg_text(&a, kpi);
    pg_arg_text(&a, workflow);
    struct open_of_kpi o = {cb, ud};
    return pg_each(conn, sql, &a, open_of_kpi_row, &o, "list open runs of a KPI", err);
}

enum as_code db_pg_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                             struct as_err *err)
{
    static const char last[] =
        "SELECT id, status FROM step_execs WHERE run_id = $1 ORDER BY id DESC LIMIT 1";
    static const char reopen[] =
        "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, updated_at = $2 "
        "WHERE id = $1 AND status = 'failed'";
    static const char requeue[] =
        "UPDATE step_execs SET status = 'ready', attempt = 0, recoveries = 0, due_at = $2, "
        "error = NULL, outcome = NULL, output = NULL, lease_until = NULL, lease_owner = NULL, "
        "finished_at = NULL WHERE id = $1 AND status = 'failed'";
    char status[16];
    enum as_code rc = db_pg_run_status(conn, run_id, status, sizeof status, err);
    if (rc)
        return rc;
    if (strcmp(status, "failed"))
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " is %s; only a failed run can be retried",
                       run_id, status);
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    PGresult *r = pg_run(conn, last, &a, "find failed step", err);
    if (!r)
        return AS_EDB;
    int64_t id = 0;
    int failed = 0;
    if (PQntuples(r) == 1) {
        id = pg_i64(r, 0, 0);
        failed = strcmp(pg_text(r, 0, 1), "failed") == 0;
    }
    PQclear(r);
    if (!failed)
        return as_errf(err, AS_ECONFLICT, "run %" PRId64 " has no failed step to retry", run_id);

    /* Reopening breaks runs_open_dedupe when another open run holds the
     * key; the savepoint keeps that failure from aborting the caller's
     * transaction. */
    rc = pg_exec(conn, "SAVEPOINT run_retry", "retry", err);
    if (rc)
        return rc;
    struct pg_args b = {0};
    pg_arg_i64(&b, run_id);
    pg_arg_i64(&b, now);
    rc = pg_do(conn, reopen, &b, "reopen run", NULL, err);
    if (rc) {
        struct as_err ignored = {0};
        if (pg_unique_violation(conn))
            rc = as_errf(err, AS_ECONFLICT,
                         "another open run of this workflow holds run %" PRId64 "'s dedupe key",
                         run_id);
        if (pg_exec(conn, "ROLLBACK TO SAVEPOINT run_retry", "retry", &ignored) != AS_OK)
            conn->broken = 1;
        return rc;
    }
    rc = pg_exec(conn, "RELEASE SAVEPOINT run_retry", "retry", err);
    if (rc)
        return rc;
    struct pg_args c = {0};
    pg_arg_i64(&c, id);
    pg_arg_i64(&c, now);
    rc = pg_do(conn, requeue, &c, "requeue step", NULL, err);
    if (!rc)
        conn->notify_due = 1;
    if (!rc && exec_id)
        *exec_id = id;
    return rc;
}

enum as_code db_pg_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err)
{
    PGresult *r = pg_run(conn,
                         "SELECT count(*) FROM runs WHERE status = 'running' OR status = 'waiting'",
                         NULL, "count open runs", err);
    if (!r)
        return AS_EDB;
    *n = pg_i64(r, 0, 0);
    PQclear(r);
    return AS_OK;
}

#define RUN_COLS                                                                                   \
    "SELECT r.id, r.workflow, w.version, w.hash, COALESCE(r.end_status, r.status), r.input, "     \
    "r.error, r.dedupe_key, r.trigger, (SELECT e.step FROM step_execs e WHERE e.run_id = r.id "    \
    "ORDER BY e.id DESC LIMIT 1), r.dry_run, r.created_at, r.updated_at, r.finished_at "           \
    "FROM runs r JOIN workflows w ON w.id = r.workflow_id "

struct each_run {
    db_run_cb cb;
    void *ud;
    int n_rows;
};

static int run_row(void *ud, const PGresult *r, int i)
{
    struct each_run *e = ud;
    struct db_run_info info = {
        .id = pg_i64(r, i, 0),
        .workflow = pg_text(r, i, 1),
        .version = pg_text(r, i, 2),
        .hash = pg_text(r, i, 3),
        .status = pg_text(r, i, 4),
        .input = pg_text(r, i, 5),
        .error = pg_text(r, i, 6),
        .dedupe_key = pg_text(r, i, 7),
        .trigger = pg_text(r, i, 8),
        .current_step = pg_text(r, i, 9),
        .dry_run = (int)pg_i64(r, i, 10),
        .created_at = pg_i64(r, i, 11),
        .updated_at = pg_i64(r, i, 12),
        .finished_at = pg_i64(r, i, 13),
    };
    e->n_rows++;
    return e->cb(e->ud, &info);
}

enum as_code db_pg_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                             void *ud, struct as_err *err)
{
    /* One statement per filter combination, so each can use its index.
     * The user (the input's "user") and creation time narrow what the
     * index finds: they are read from the rows, newest first. */
#define RUN_MORE "AND ($3::text IS NULL OR r.input::json ->> 'user' = $3::text) " \
                 "AND ($4::bigint = 0 OR r.created_at >= $4::bigint) "
    static const char *const sql[4] = {
        RUN_COLS "WHERE ($1::bigint = 0 OR r.id < $1) " RUN_MORE "ORDER BY r.id DESC LIMIT $2",
        RUN_COLS "WHERE ($1::bigint = 0 OR r.id < $1) " RUN_MORE "AND r.status = $5 AND "
                 "r.end_status IS NOT DISTINCT FROM $6::text ORDER BY r.id DESC LIMIT $2",
        RUN_COLS "WHERE ($1::bigint = 0 OR r.id < $1) " RUN_MORE "AND r.workflow = $5 "
                 "ORDER BY r.id DESC LIMIT $2",
        RUN_COLS "WHERE ($1::bigint = 0 OR r.id < $1) " RUN_MORE "AND r.status = $5 AND "
                 "r.end_status IS NOT DISTINCT FROM $6::text AND r.workflow = $7 "
                 "ORDER BY r.id DESC LIMIT $2",
    };
#undef RUN_MORE
    int which = (f->status ? 1 : 0) | (f->workflow ? 2 : 0);
    struct pg_args a = {0};
    pg_arg_i64(&a, f->before_id > 0 ? f->before_id : 0);
    pg_arg_i64(&a, f->limit > 0 ? f->limit : 50);
    pg_arg_text(&a, f->user);
    pg_arg_i64(&a, f->since > 0 ? f->since : 0);
    if (f->status) {
        /* A superseded run is stored as cancelled with end_status set. */
        int superseded = strcmp(f->status, "superseded") == 0;
        pg_arg_text(&a, superseded ? "cancelled" : f->status);
        pg_arg_text(&a, superseded ? "superseded" : NULL);
    }
    if (f->workflow)
        pg_arg_text(&a, f->workflow);
    struct each_run e = {cb, ud, 0};
    return pg_each(conn, sql[which], &a, run_row, &e, "list runs", err);
}

enum as_code db_pg_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                           struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    struct each_run e = {cb, ud, 0};
    enum as_code rc = pg_each(conn, RUN_COLS "WHERE r.id = $1", &a, run_row, &e, "read run", err);
    if (!rc && e.n_rows == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    return rc;
}

struct workflows {
    db_workflow_cb cb;
    void *ud;
};

static int workflow_row(void *ud, const PGresult *r, int i)
{
    struct workflows *x = ud;
    struct db_workflow_info w = {
        .id = pg_i64(r, i, 0),
        .name = pg_text(r, i, 1),
        .version = pg_text(r, i, 2),
        .hash = pg_text(r, i, 3),
        .source_path = pg_text(r, i, 4),
        .created_at = pg_i64(r, i, 5),
        .n_versions = pg_i64(r, i, 6),
    };
    return x->cb(x->ud, &w);
}

enum as_code db_pg_workflows_list(struct db_conn *conn, const char *name, const char *after,
                                  int limit, db_workflow_cb cb, void *ud, struct as_err *err)
{
    /* Versions are stored in time order, so the latest has the largest id;
     * names compare and sort by bytes, as on SQLite (paging with `after`
     * must agree with the order).  LIMIT NULL: all. */
    static const char sql[] =
        "SELECT w.id, w.name, w.version, w.hash, w.source_path, w.created_at,"
        " (SELECT count(*) FROM workflows x WHERE x.name = w.name)"
        " FROM workflows w WHERE w.id = (SELECT max(y.id) FROM workflows y WHERE y.name = w.name)"
        " AND ($1::text IS NULL OR w.name = $1::text)"
        " AND ($2::text IS NULL OR w.name COLLATE \"C\" > $2::text COLLATE \"C\")"
        " ORDER BY w.name COLLATE \"C\" LIMIT $3::bigint";
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    pg_arg_text(&a, after);
    if (limit > 0)
        pg_arg_i64(&a, limit);
    else
        pg_arg_text(&a, NULL);
    struct workflows x = {cb, ud};
    return pg_each(conn, sql, &a, workflow_row, &x, "list workflows", err);
}
