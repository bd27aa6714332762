/* db_kpi.c - KPIs, values, exceptions and schedule runs in SQLite (see db_kpi.h). */
#include "db/db_kpi.h"
#include "db/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_events.h"

/* Column helpers: NULL-able integers and JSON text as jansson values. */
static json_t *col_int_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null()
                                                       : json_integer(sqlite3_column_int64(st, col));
}

static json_t *col_str_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null()
                                                       : json_string(db_col_text(st, col));
}

static json_t *col_json(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    json_t *v = json_loads(db_col_text(st, col), JSON_DECODE_ANY, NULL);
    return v ? v : json_null();
}

/*
 * Run st (from db_read_stmt, parameters bound) and collect row(st) of each
 * result row into a new array *out (caller decrefs).  Consumes the
 * statement and the read connection whatever the outcome.
 */
static enum as_code read_rows(struct db *db, struct db_conn *c, sqlite3_stmt *st,
                              json_t *(*row)(sqlite3_stmt *st), const char *what, json_t **out,
                              struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t *arr = json_array();
    int step = SQLITE_DONE;
    if (!arr)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *r = row(st);
        if (!r || json_array_append_new(arr, r))
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    if (!rc && step != SQLITE_DONE)
        rc = db_error(c, what, err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

/* ---- KPIs ---- */

enum as_code db_sqlite_kpi_put(struct db *db, const char *name, const char *report,
                               const char *definition, const char *schedule, const char *timezone,
                               int replace, int64_t now, int64_t *id, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "SELECT id, schedule, timezone FROM kpis WHERE name = ?1", err);
    if (!st)
        goto fail_db;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int64_t existing = 0;
    int same_schedule = 0;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        existing = sqlite3_column_int64(st, 0);
        const char *old_sched = db_col_text(st, 1), *old_tz = db_col_text(st, 2);
        same_schedule = strcmp(old_sched, schedule ? schedule : "") == 0 &&
                        strcmp(old_tz, timezone ? timezone : "") == 0;
    } else if (step != SQLITE_DONE) {
        db_error(c, "select kpi", err);
        db_stmt_done(st);
        goto fail_db;
    }
    db_stmt_done(st);
    if (existing && !replace) {
        rc = as_errf(err, AS_ECONFLICT, "a KPI named \"%s\" exists already", name);
        goto out;
    }
    if (existing) {
        st = db_stmt(c,
                     "UPDATE kpis SET report = ?2, definition = ?3, schedule = ?4, timezone = ?5,"
                     " sched_last_for = CASE WHEN ?6 THEN sched_last_for"
                     "   WHEN ?4 IS NULL THEN NULL ELSE ?7 END,"
                     " updated_at = ?7 WHERE id = ?1",
                     err);
        if (!st)
            goto fail_db;
        sqlite3_bind_int64(st, 1, existing);
        sqlite3_bind_int(st, 6, same_schedule);
    } else {
        st = db_stmt(c,
                     "INSERT INTO kpis (name, report, definition, schedule, timezone, sched_last_for,"
                     " created_at, updated_at) VALUES (?8, ?2, ?3, ?4, ?5,"
                     " CASE WHEN ?4 IS NULL THEN NULL ELSE ?7 END, ?7, ?7)",
                     err);
        if (!st)
            goto fail_db;
        sqlite3_bind_text(st, 8, name, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(st, 2, report, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, definition, -1, SQLITE_STATIC);
    db_bind_nonempty_or_null(st, 4, schedule);
    db_bind_nonempty_or_null(st, 5, timezone);
    sqlite3_bind_int64(st, 7, now);
    rc = db_step_done(c, st, "store kpi", err);
    if (!rc && id)
        *id = existing ? existing : sqlite3_last_insert_rowid(db_conn_handle(c));
    goto out;
fail_db:
    rc = AS_EDB;
out:
    return db_sqlite_write_end(db, rc, err);
}

#define KPI_COLS                                                                                  \
    "k.id, k.name, k.report, k.definition, k.schedule, k.timezone, k.sched_last_for,"             \
    " k.created_at, k.updated_at"

static json_t *kpi_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "name", db_col_text(st, 1), "report",
                     db_col_text(st, 2), "definition", col_json(st, 3), "schedule",
                     col_str_or_null(st, 4), "timezone", col_str_or_null(st, 5), "sched_last_for",
                     col_int_or_null(st, 6), "created_at", (json_int_t)sqlite3_column_int64(st, 7),
                     "updated_at", (json_int_t)sqlite3_column_int64(st, 8));
}

enum as_code db_sqlite_kpi_get(struct db *db, const char *name, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db, "SELECT " KPI_COLS " FROM kpis k WHERE k.name = ?1", &c,
                                   &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *out = kpi_row(st);
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no KPI named \"%s\"", name);
    } else {
        rc = db_error(c, "select kpi", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

static json_t *kpi_list_row(sqlite3_stmt *st)
{
    json_t *row = kpi_row(st);
    if (row) {
        json_object_set_new(row, "last_value", col_int_or_null(st, 9));
        json_object_set_new(row, "last_exempt", col_int_or_null(st, 10));
        json_object_set_new(row, "last_ts", col_int_or_null(st, 11));
    }
    return row;
}

enum as_code db_sqlite_kpi_list(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT " KPI_COLS ", v.value, v.exempt, v.ts FROM kpis k"
                                   " LEFT JOIN kpi_values v ON v.id ="
                                   "  (SELECT max(id) FROM kpi_values WHERE kpi_id = k.id)"
                                   " ORDER BY k.name",
                                   &c, &st, err);
    if (rc)
        return rc;
    return read_rows(db, c, st, kpi_list_row, "list kpis", out, err);
}

enum as_code db_sqlite_kpi_delete(struct db *db, const char *name, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM kpis WHERE name = ?1", err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = db_step_done(c, st, "delete kpi", err);
    if (!rc && sqlite3_changes(db_conn_handle(c)) == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no KPI named \"%s\"", name);
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                     int64_t exempt, const json_t *breakdown, struct as_err *err)
{
    char *bd = breakdown ? json_dumps(breakdown, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (breakdown && !bd)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc) {
        free(bd);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(c,
                               "INSERT INTO kpi_values (kpi_id, ts, value, exempt, breakdown)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)",
                               err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_int64(st, 1, kpi_id);
        sqlite3_bind_int64(st, 2, ts);
        sqlite3_bind_int64(st, 3, value);
        sqlite3_bind_int64(st, 4, exempt);
        db_bind_nonempty_or_null(st, 5, bd);
        rc = db_step_done(c, st, "insert kpi value", err);
    }
    rc = db_sqlite_write_end(db, rc, err);
    free(bd);
    return rc;
}

static json_t *kpi_value_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:I, s:I, s:o}", "ts", (json_int_t)sqlite3_column_int64(st, 0),
                     "value", (json_int_t)sqlite3_column_int64(st, 1), "exempt",
                     (json_int_t)sqlite3_column_int64(st, 2), "breakdown", col_json(st, 3));
}

enum as_code db_sqlite_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                  struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT ts, value, exempt, breakdown FROM"
                                   " (SELECT id, ts, value, exempt, breakdown FROM kpi_values"
                                   "  WHERE kpi_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
                                   &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, kpi_id);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 1000000);
    return read_rows(db, c, st, kpi_value_row, "select kpi values", out, err);
}

enum as_code db_sqlite_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                                     struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT count(*) FROM runs"
                                   " WHERE workflow = ?1 AND status IN ('running','waiting')",
                                   &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = db_error(c, "count open runs", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

/* ---- exceptions ---- */

/* Append an exception's change to the audit chain (data is stolen). */
static enum as_code exception_event(struct db_conn *c, const char *type, json_t *data,
                                    struct as_err *err)
{
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_event_append(c, 0, 0, type, data, err);
    json_decref(data);
    return rc;
}

enum as_code db_sqlite_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                                     int *created, struct as_err *err)
{
    if (!ex->upn || !*ex->upn || !ex->reason || !*ex->reason || !ex->granted_by ||
        !*ex->granted_by || !ex->protocols)
        return as_errf(err, AS_EINVAL, "an exception needs a user, protocols, a reason and who granted it");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if (ex->source_key) {
        st = db_stmt(c, "SELECT id FROM exceptions WHERE source_key = ?1", err);
        if (!st)
            goto fail_db;
        sqlite3_bind_text(st, 1, ex->source_key, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            if (id)
                *id = sqlite3_column_int64(st, 0);
            if (created)
                *created = 0;
            db_stmt_done(st);
            db_write_rollback(db);
            return AS_OK;
        }
        db_stmt_done(st);
        if (step != SQLITE_DONE) {
            db_error(c, "select exception", err);
            goto fail_db;
        }
    }
    st = db_stmt(c,
                 "INSERT INTO exceptions (upn, protocols, reason, granted_by, created_at, expires_at,"
                 " source, source_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                 err);
    if (!st)
        goto fail_db;
    sqlite3_bind_text(st, 1, ex->upn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ex->protocols, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ex->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, ex->granted_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, ex->created_at);
    sqlite3_bind_int64(st, 6, ex->expires_at);
    sqlite3_bind_text(st, 7, ex->source ? ex->source : "cli", -1, SQLITE_STATIC);
    db_bind_nonempty_or_null(st, 8, ex->source_key);
    rc = db_step_done(c, st, "insert exception", err);
    if (!rc) {
        int64_t new_id = sqlite3_last_insert_rowid(db_conn_handle(c));
        if (id)
            *id = new_id;
        if (created)
            *created = 1;
        rc = exception_event(c, "exception.added",
                             json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "id",
                                       (json_int_t)new_id, "user", ex->upn, "protocols",
                                       ex->protocols, "reason", ex->reason, "granted_by",
                                       ex->granted_by, "expires_at", (json_int_t)ex->expires_at,
                                       "source", ex->source ? ex->source : "cli"),
                             err);
    }
    return db_sqlite_write_end(db, rc, err);
fail_db:
    return db_sqlite_write_end(db, AS_EDB, err);
}

static json_t *exception_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:o, s:s, s:s, s:I, s:I, s:o, s:o, s:s, s:s, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "upn", db_col_text(st, 1),
                     "protocols", col_json(st, 2), "reason", db_col_text(st, 3), "granted_by",
                     db_col_text(st, 4), "created_at", (json_int_t)sqlite3_column_int64(st, 5),
                     "expires_at", (json_int_t)sqlite3_column_int64(st, 6), "removed_at",
                     col_int_or_null(st, 7), "removed_by", col_str_or_null(st, 8), "source",
                     db_col_text(st, 9), "state", db_col_text(st, 10), "removed_reason",
                     col_str_or_null(st, 11));
}

enum as_code db_sqlite_exception_list(struct db *db, enum db_exception_filter filter,
                                      const char *upn, int64_t now, json_t **out,
                                      struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(
        db,
        "SELECT id, upn, protocols, reason, granted_by, created_at, expires_at, removed_at,"
        " removed_by, source,"
        " CASE WHEN removed_at IS NOT NULL THEN 'removed'"
        "      WHEN expires_at <= ?2 THEN 'expired' ELSE 'active' END AS state,"
        " removed_reason FROM exceptions WHERE (?1 IS NULL OR upn = ?1)"
        " AND (?3 = 3 OR (?3 = 0 AND removed_at IS NULL AND expires_at > ?2)"
        "      OR (?3 = 1 AND removed_at IS NULL AND expires_at <= ?2)"
        "      OR (?3 = 2 AND removed_at IS NOT NULL))"
        " ORDER BY id DESC",
        &c, &st, err);
    if (rc)
        return rc;
    db_bind_nonempty_or_null(st, 1, upn);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, (int)filter);
    return read_rows(db, c, st, exception_row, "list exceptions", out, err);
}

enum as_code db_sqlite_exception_remove(struct db *db, int64_t id, const char *by,
                                        const char *reason, int64_t now, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE exceptions SET removed_at = ?2, removed_by = ?3,"
                               " removed_reason = ?4 WHERE id = ?1 AND removed_at IS NULL"
                               " RETURNING upn, protocols",
                               err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    db_bind_nonempty_or_null(st, 3, by);
    db_bind_nonempty_or_null(st, 4, reason);
    json_t *data = NULL;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        data = json_pack("{s:I, s:s, s:s, s:s?, s:s?}", "id", (json_int_t)id, "user",
                         db_col_text(st, 0), "protocols", db_col_text(st, 1), "removed_by", by,
                         "reason", reason);
        rc = data ? AS_OK : as_errf(err, AS_ENOMEM, "out of memory");
        step = sqlite3_step(st);
    } else if (step == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no exception %lld (or it was removed already)",
                     (long long)id);
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        rc = db_error(c, "remove exception", err);
    db_stmt_done(st);
    if (!rc)
        rc = exception_event(c, "exception.removed", data, err);
    else
        json_decref(data);
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb,
                                                void *ud, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT upn, protocols, reason, granted_by, expires_at"
                                   " FROM exceptions"
                                   " WHERE removed_at IS NULL AND expires_at > ?1 ORDER BY id",
                                   &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(ud, db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2), db_col_text(st, 3),
               sqlite3_column_int64(st, 4)))
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_error(c, "select exceptions", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

/* ---- schedules ---- */

static json_t *sched_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:I}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "name", db_col_text(st, 1),
                     "schedule", db_col_text(st, 2), "timezone", db_col_text(st, 3),
                     "sched_last_for", col_int_or_null(st, 4), "updated_at",
                     (json_int_t)sqlite3_column_int64(st, 5));
}

enum as_code db_sqlite_sched_list(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db,
                                   "SELECT id, name, schedule, timezone, sched_last_for, updated_at"
                                   " FROM kpis WHERE schedule IS NOT NULL ORDER BY id",
                                   &c, &st, err);
    if (rc)
        return rc;
    return read_rows(db, c, st, sched_row, "list schedules", out, err);
}

enum as_code db_sqlite_sched_claim(struct db *db, int64_t kpi_id, int64_t prev,
                                   int64_t scheduled_for, int64_t missed, int64_t now,
                                   int64_t *run_id, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE kpis SET sched_last_for = ?2 WHERE id = ?1"
                               " AND sched_last_for IS ?3",
                               err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, kpi_id);
    sqlite3_bind_int64(st, 2, scheduled_for);
    if (prev >= 0)
        sqlite3_bind_int64(st, 3, prev);
    else
        sqlite3_bind_null(st, 3);
    rc = db_step_done(c, st, "claim schedule", err);
    if (rc)
        return db_sqlite_write_end(db, rc, err);
    if (sqlite3_changes(db_conn_handle(c)) == 0) {
        rc = as_errf(err, AS_ECONFLICT, "schedule of KPI %lld was handled by someone else",
                     (long long)kpi_id);
        return db_sqlite_write_end(db, rc, err);
    }
    st = db_stmt(c,
                 "INSERT INTO schedule_runs (kpi_id, scheduled_for, missed, status, started_at)"
                 " VALUES (?1, ?2, ?3, 'running', ?4)",
                 err);
    if (!st)
        return db_sqlite_write_end(db, AS_EDB, err);
    sqlite3_bind_int64(st, 1, kpi_id);
    sqlite3_bind_int64(st, 2, scheduled_for);
    sqlite3_bind_int64(st, 3, missed);
    sqlite3_bind_int64(st, 4, now);
    rc = db_step_done(c, st, "record schedule run", err);
    if (!rc && run_id)
        *run_id = sqlite3_last_insert_rowid(db_conn_handle(c));
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                                    const char *error, int64_t now, struct as_err *err)
{
    char *res = result ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc) {
        free(res);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE schedule_runs SET status = ?2, finished_at = ?3, result = ?4,"
                               " error = ?5 WHERE id = ?1",
                               err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_int64(st, 1, run_id);
        sqlite3_bind_text(st, 2, ok ? "done" : "failed", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        db_bind_nonempty_or_null(st, 4, res);
        db_bind_nonempty_or_null(st, 5, error);
        rc = db_step_done(c, st, "finish schedule run", err);
    }
    rc = db_sqlite_write_end(db, rc, err);
    free(res);
    return rc;
}

static json_t *sched_run_row(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:I, s:s, s:I, s:I, s:s, s:I, s:o, s:o, s:o}", "id",
                     (json_int_t)sqlite3_column_int64(st, 0), "kpi_id",
                     (json_int_t)sqlite3_column_int64(st, 1), "name", db_col_text(st, 2),
                     "scheduled_for", (json_int_t)sqlite3_column_int64(st, 3), "missed",
                     (json_int_t)sqlite3_column_int64(st, 4), "status", db_col_text(st, 5),
                     "started_at", (json_int_t)sqlite3_column_int64(st, 6), "finished_at",
                     col_int_or_null(st, 7), "result", col_json(st, 8), "error",
                     col_str_or_null(st, 9));
}

static enum as_code sched_runs_query(struct db *db, const char *sql, int64_t a, int b, int with_b,
                                     json_t **out, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db, sql, &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, a);
    if (with_b)
        sqlite3_bind_int(st, 2, b);
    return read_rows(db, c, st, sched_run_row, "select schedule runs", out, err);
}

#define SCHED_RUN_COLS                                                                            \
    "s.id, s.kpi_id, k.name, s.scheduled_for, s.missed, s.status, s.started_at, s.finished_at,"   \
    " s.result, s.error FROM schedule_runs s JOIN kpis k ON k.id = s.kpi_id"

enum as_code db_sqlite_sched_interrupted(struct db *db, json_t **out, struct as_err *err)
{
    return sched_runs_query(db,
                            "SELECT " SCHED_RUN_COLS " WHERE s.status = 'running' AND ?1 = ?1"
                            " ORDER BY s.id",
                            0, 0, 0, out, err);
}

enum as_code db_sqlite_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                  struct as_err *err)
{
    return sched_runs_query(db,
                            "SELECT " SCHED_RUN_COLS " WHERE (?1 = 0 OR s.kpi_id = ?1)"
                            " ORDER BY s.id DESC LIMIT ?2",
                            kpi_id, limit > 0 ? limit : 1000000, 1, out, err);
}
