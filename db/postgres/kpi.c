/*
 * kpi.c - the PostgreSQL store's KPIs, their values, protocol exceptions
 * and the scheduler's record (contract in db/db_kpi.h; the SQLite dialect
 * is db/sqlite/db_kpi.c).
 *
 * Several nodes' schedulers run at once: db_sched_claim moves a KPI's
 * sched_last_for with a conditional UPDATE (the row as the caller saw it),
 * so of two nodes claiming one fire time the second waits for the first's
 * row lock, finds the row changed, and is refused (AS_ECONFLICT).
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* Cells as JSON: NULL-able integers, text and JSON text. */
static json_t *cell_int(const PGresult *r, int i, int col)
{
    return pg_isnull(r, i, col) ? json_null() : json_integer(pg_i64(r, i, col));
}

static json_t *cell_str(const PGresult *r, int i, int col)
{
    return pg_isnull(r, i, col) ? json_null() : json_string(pg_text(r, i, col));
}

static json_t *cell_json(const PGresult *r, int i, int col)
{
    if (pg_isnull(r, i, col))
        return json_null();
    json_t *v = json_loads(pg_text(r, i, col), JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

/*
 * Run sql with a on a read connection and collect row(r, i) of each result
 * row into a new array *out (caller decrefs).
 */
static enum as_code read_rows(struct db *db, const char *sql, const struct pg_args *a,
                              json_t *(*row)(const PGresult *r, int i), const char *what,
                              json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    PGresult *r = pg_run(c, sql, a, what, err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    json_t *arr = json_array();
    if (!arr)
        rc = oom(err);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        json_t *v = row(r, i);
        if (!v || json_array_append_new(arr, v))
            rc = oom(err);
    }
    PQclear(r);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

/* ---- schedules ---- */

static json_t *sched_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:I}", "id", (json_int_t)pg_i64(r, i, 0), "name",
                     pg_text(r, i, 1), "schedule", pg_text(r, i, 2), "timezone", pg_text(r, i, 3),
                     "sched_last_for", cell_int(r, i, 4), "updated_at",
                     (json_int_t)pg_i64(r, i, 5));
}

enum as_code db_pg_sched_list(struct db *db, json_t **out, struct as_err *err)
{
    return read_rows(db,
                     "SELECT id, name, schedule, timezone, sched_last_for, updated_at"
                     " FROM kpis WHERE schedule IS NOT NULL ORDER BY id",
                     NULL, sched_row, "list schedules", out, err);
}

enum as_code db_pg_sched_claim(struct db *db, int64_t kpi_id, int64_t prev, int64_t scheduled_for,
                               int64_t missed, int64_t now, int64_t *run_id, struct as_err *err)
{
    static const char claim[] =
        "UPDATE kpis SET sched_last_for = $2 WHERE id = $1"
        " AND sched_last_for IS NOT DISTINCT FROM $3::bigint";
    static const char record[] =
        "INSERT INTO schedule_runs (kpi_id, scheduled_for, missed, status, started_at)"
        " VALUES ($1, $2, $3, 'running', $4) RETURNING id";
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, kpi_id);
    pg_arg_i64(&a, scheduled_for);
    if (prev >= 0)
        pg_arg_i64(&a, prev);
    else
        pg_arg_text(&a, NULL);
    int64_t changed = 0;
    rc = pg_do(c, claim, &a, "claim schedule", &changed, err);
    if (!rc && changed == 0)
        rc = as_errf(err, AS_ECONFLICT, "schedule of KPI %lld was handled by someone else",
                     (long long)kpi_id);
    if (rc)
        return db_pg_write_end(db, rc, err);
    struct pg_args b = {0};
    pg_arg_i64(&b, kpi_id);
    pg_arg_i64(&b, scheduled_for);
    pg_arg_i64(&b, missed);
    pg_arg_i64(&b, now);
    PGresult *r = pg_run(c, record, &b, "record schedule run", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (run_id)
        *run_id = pg_i64(r, 0, 0);
    PQclear(r);
    return db_pg_write_end(db, AS_OK, err);
}

enum as_code db_pg_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                                const char *error, int64_t now, struct as_err *err)
{
    char *res = result ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (result && !res)
        return oom(err);
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc) {
        free(res);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    pg_arg_text(&a, ok ? "done" : "failed");
    pg_arg_i64(&a, now);
    pg_arg_nonempty(&a, res);
    pg_arg_nonempty(&a, error);
    rc = pg_do(c,
               "UPDATE schedule_runs SET status = $2, finished_at = $3, result = $4, error = $5"
               " WHERE id = $1",
               &a, "finish schedule run", NULL, err);
    rc = db_pg_write_end(db, rc, err);
    free(res);
    return rc;
}

static json_t *sched_run_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:I, s:s, s:I, s:I, s:s, s:I, s:o, s:o, s:o}", "id",
                     (json_int_t)pg_i64(r, i, 0), "kpi_id", (json_int_t)pg_i64(r, i, 1), "name",
                     pg_text(r, i, 2), "scheduled_for", (json_int_t)pg_i64(r, i, 3), "missed",
                     (json_int_t)pg_i64(r, i, 4), "status", pg_text(r, i, 5), "started_at",
                     (json_int_t)pg_i64(r, i, 6), "finished_at", cell_int(r, i, 7), "result",
                     cell_json(r, i, 8), "error", cell_str(r, i, 9));
}

#define SCHED_RUN_COLS                                                                            \
    "s.id, s.kpi_id, k.name, s.scheduled_for, s.missed, s.status, s.started_at, s.finished_at,"   \
    " s.result, s.error FROM schedule_runs s JOIN kpis k ON k.id = s.kpi_id"

enum as_code db_pg_sched_interrupted(struct db *db, json_t **out, struct as_err *err)
{
    return read_rows(db, "SELECT " SCHED_RUN_COLS " WHERE s.status = 'running' ORDER BY s.id",
                     NULL, sched_run_row, "select schedule runs", out, err);
}

enum as_code db_pg_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                              struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, kpi_id);
    pg_arg_i64(&a, limit > 0 ? limit : 1000000);
    return read_rows(db,
                     "SELECT " SCHED_RUN_COLS " WHERE ($1 = 0 OR s.kpi_id = $1)"
                     " ORDER BY s.id DESC LIMIT $2",
                     &a, sched_run_row, "select schedule runs", out, err);
}
