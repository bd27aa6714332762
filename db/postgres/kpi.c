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

#include "db/db_events.h"

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

/* ---- KPIs ---- */

enum as_code db_pg_kpi_put(struct db *db, const char *name, const char *report,
                           const char *definition, const char *schedule, const char *tz,
                           int replace, int64_t now, int64_t *id, struct as_err *err)
{
    /* FOR UPDATE: a node replacing the KPI meanwhile waits; the insert of a
     * new name does nothing when another node made it first (the loop then
     * finds it, as the SELECT would have). */
    static const char sel[] =
        "SELECT id, schedule, timezone FROM kpis WHERE name = $1 FOR UPDATE";
    static const char upd[] =
        "UPDATE kpis SET report = $2, definition = $3, schedule = $4, timezone = $5,"
        " sched_last_for = CASE WHEN $6::int = 1 THEN sched_last_for"
        "   WHEN $4::text IS NULL THEN NULL ELSE $7::bigint END,"
        " updated_at = $7 WHERE id = $1";
    static const char ins[] =
        "INSERT INTO kpis (name, report, definition, schedule, timezone, sched_last_for,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4::text, $5,"
        " CASE WHEN $4::text IS NULL THEN NULL ELSE $6::bigint END, $6, $6)"
        " ON CONFLICT (name) DO NOTHING RETURNING id";
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    int64_t existing = 0;
    for (int round = 0; round < 2 && !rc; round++) {
        struct pg_args a = {0};
        pg_arg_text(&a, name);
        PGresult *r = pg_run(c, sel, &a, "select kpi", err);
        if (!r) {
            rc = AS_EDB;
            break;
        }
        int same_schedule = 0;
        if (PQntuples(r) == 1) {
            existing = pg_i64(r, 0, 0);
            same_schedule = strcmp(pg_text(r, 0, 1), schedule ? schedule : "") == 0 &&
                            strcmp(pg_text(r, 0, 2), tz ? tz : "") == 0;
        }
        PQclear(r);
        if (existing && !replace) {
            rc = as_errf(err, AS_ECONFLICT, "a KPI named \"%s\" exists already", name);
            break;
        }
        if (existing) {
            struct pg_args u = {0};
            pg_arg_i64(&u, existing);
            pg_arg_text(&u, report);
            pg_arg_text(&u, definition);
            pg_arg_nonempty(&u, schedule);
            pg_arg_nonempty(&u, tz);
            pg_arg_i64(&u, same_schedule);
            pg_arg_i64(&u, now);
            rc = pg_do(c, upd, &u, "store kpi", NULL, err);
            break;
        }
        struct pg_args n = {0};
        pg_arg_text(&n, name);
        pg_arg_text(&n, report);
        pg_arg_text(&n, definition);
        pg_arg_nonempty(&n, schedule);
        pg_arg_nonempty(&n, tz);
        pg_arg_i64(&n, now);
        r = pg_run(c, ins, &n, "store kpi", err);
        if (!r) {
            rc = AS_EDB;
            break;
        }
        if (PQntuples(r) == 1)
            existing = pg_i64(r, 0, 0);
        PQclear(r);
        if (existing)
            break;
        /* Another node stored this name just now: as if it had been there. */
    }
    if (!rc && !existing)
        rc = as_errf(err, AS_EDB, "store kpi \"%s\": it appeared and vanished", name);
    if (!rc && id)
        *id = existing;
    return db_pg_write_end(db, rc, err);
}

#define KPI_COLS                                                                                  \
    "k.id, k.name, k.report, k.definition, k.schedule, k.timezone, k.sched_last_for,"             \
    " k.created_at, k.updated_at"

static json_t *kpi_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I}", "id",
                     (json_int_t)pg_i64(r, i, 0), "name", pg_text(r, i, 1), "report",
                     pg_text(r, i, 2), "definition", cell_json(r, i, 3), "schedule",
                     cell_str(r, i, 4), "timezone", cell_str(r, i, 5), "sched_last_for",
                     cell_int(r, i, 6), "created_at", (json_int_t)pg_i64(r, i, 7), "updated_at",
                     (json_int_t)pg_i64(r, i, 8));
}

enum as_code db_pg_kpi_get(struct db *db, const char *name, json_t **out, struct as_err *err)
{
    json_t *rows = NULL;
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    *out = NULL;
    enum as_code rc = read_rows(db, "SELECT " KPI_COLS " FROM kpis k WHERE k.name = $1", &a,
                                kpi_row, "select kpi", &rows, err);
    if (rc)
        return rc;
    if (json_array_size(rows) == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no KPI named \"%s\"", name);
    else
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

static json_t *kpi_list_row(const PGresult *r, int i)
{
    json_t *row = kpi_row(r, i);
    if (row) {
        json_object_set_new(row, "last_value", cell_int(r, i, 9));
        json_object_set_new(row, "last_exempt", cell_int(r, i, 10));
        json_object_set_new(row, "last_ts", cell_int(r, i, 11));
    }
    return row;
}

enum as_code db_pg_kpi_list(struct db *db, json_t **out, struct as_err *err)
{
    /* Names in byte order, as SQLite sorts them, whatever the database's
     * collation. */
    return read_rows(db,
                     "SELECT " KPI_COLS ", v.value, v.exempt, v.ts FROM kpis k"
                     " LEFT JOIN kpi_values v ON v.id ="
                     "  (SELECT max(id) FROM kpi_values WHERE kpi_id = k.id)"
                     " ORDER BY k.name COLLATE \"C\"",
                     NULL, kpi_list_row, "list kpis", out, err);
}

enum as_code db_pg_kpi_delete(struct db *db, const char *name, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    int64_t changed = 0;
    /* Its values and schedule runs go with it (ON DELETE CASCADE). */
    rc = pg_do(c, "DELETE FROM kpis WHERE name = $1", &a, "delete kpi", &changed, err);
    if (!rc && changed == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no KPI named \"%s\"", name);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                 int64_t exempt, const json_t *breakdown, struct as_err *err)
{
    char *bd = breakdown ? json_dumps(breakdown, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (breakdown && !bd)
        return oom(err);
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc) {
        free(bd);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_i64(&a, kpi_id);
    pg_arg_i64(&a, ts);
    pg_arg_i64(&a, value);
    pg_arg_i64(&a, exempt);
    pg_arg_nonempty(&a, bd);
    rc = pg_do(c,
               "INSERT INTO kpi_values (kpi_id, ts, value, exempt, breakdown)"
               " VALUES ($1, $2, $3, $4, $5)",
               &a, "insert kpi value", NULL, err);
    rc = db_pg_write_end(db, rc, err);
    free(bd);
    return rc;
}

static json_t *kpi_value_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:I, s:I, s:o}", "ts", (json_int_t)pg_i64(r, i, 0), "value",
                     (json_int_t)pg_i64(r, i, 1), "exempt", (json_int_t)pg_i64(r, i, 2),
                     "breakdown", cell_json(r, i, 3));
}

enum as_code db_pg_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                              struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, kpi_id);
    pg_arg_i64(&a, limit > 0 ? limit : 1000000);
    return read_rows(db,
                     "SELECT ts, value, exempt, breakdown FROM"
                     " (SELECT id, ts, value, exempt, breakdown FROM kpi_values"
                     "  WHERE kpi_id = $1 ORDER BY id DESC LIMIT $2) v ORDER BY id",
                     &a, kpi_value_row, "select kpi values", out, err);
}

enum as_code db_pg_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                                 struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, workflow);
    PGresult *r = pg_run(c,
                         "SELECT count(*) FROM runs"
                         " WHERE workflow = $1 AND status IN ('running','waiting')",
                         &a, "count open runs", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    *n = pg_i64(r, 0, 0);
    PQclear(r);
    return AS_OK;
}

/* ---- exceptions ---- */

/* Append an exception's change to the audit chain (data is stolen). */
static enum as_code exception_event(struct db_conn *c, const char *type, json_t *data,
                                    struct as_err *err)
{
    if (!data)
        return oom(err);
    enum as_code rc = db_event_append(c, 0, 0, type, data, err);
    json_decref(data);
    return rc;
}

enum as_code db_pg_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                                 int *created, struct as_err *err)
{
    /* A step recording its exception on two nodes at once (its claim lost
     * and taken over): the key's unique index lets one insert; the other
     * inserts nothing and reads the first one's id. */
    static const char ins[] =
        "INSERT INTO exceptions (upn, protocols, reason, granted_by, created_at, expires_at,"
        " source, source_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (source_key) DO NOTHING RETURNING id";
    static const char by_key[] = "SELECT id FROM exceptions WHERE source_key = $1";
    if (!ex->upn || !*ex->upn || !ex->reason || !*ex->reason || !ex->granted_by ||
        !*ex->granted_by || !ex->protocols)
        return as_errf(err, AS_EINVAL,
                       "an exception needs a user, protocols, a reason and who granted it");
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, ex->upn);
    pg_arg_text(&a, ex->protocols);
    pg_arg_text(&a, ex->reason);
    pg_arg_text(&a, ex->granted_by);
    pg_arg_i64(&a, ex->created_at);
    pg_arg_i64(&a, ex->expires_at);
    pg_arg_text(&a, ex->source ? ex->source : "cli");
    pg_arg_nonempty(&a, ex->source_key);
    PGresult *r = pg_run(c, ins, &a, "insert exception", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    int made = PQntuples(r) == 1;
    int64_t new_id = made ? pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!made) {
        struct pg_args k = {0};
        pg_arg_text(&k, ex->source_key);
        r = pg_run(c, by_key, &k, "select exception", err);
        if (!r)
            return db_pg_write_end(db, AS_EDB, err);
        new_id = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
        PQclear(r);
        if (!new_id)
            return db_pg_write_end(
                db, as_errf(err, AS_EDB, "exception %s vanished", ex->source_key), err);
    } else {
        rc = exception_event(c, "exception.added",
                             json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:s}", "id",
                                       (json_int_t)new_id, "user", ex->upn, "protocols",
                                       ex->protocols, "reason", ex->reason, "granted_by",
                                       ex->granted_by, "expires_at", (json_int_t)ex->expires_at,
                                       "source", ex->source ? ex->source : "cli"),
                             err);
    }
    rc = db_pg_write_end(db, rc, err);
    if (!rc) {
        if (id)
            *id = new_id;
        if (created)
            *created = made;
    }
    return rc;
}

static json_t *exception_row(const PGresult *r, int i)
{
    return json_pack("{s:I, s:s, s:o, s:s, s:s, s:I, s:I, s:o, s:o, s:s, s:s, s:o}", "id",
                     (json_int_t)pg_i64(r, i, 0), "upn", pg_text(r, i, 1), "protocols",
                     cell_json(r, i, 2), "reason", pg_text(r, i, 3), "granted_by",
                     pg_text(r, i, 4), "created_at", (json_int_t)pg_i64(r, i, 5), "expires_at",
                     (json_int_t)pg_i64(r, i, 6), "removed_at", cell_int(r, i, 7), "removed_by",
                     cell_str(r, i, 8), "source", pg_text(r, i, 9), "state", pg_text(r, i, 10),
                     "removed_reason", cell_str(r, i, 11));
}

enum as_code db_pg_exception_list(struct db *db, enum db_exception_filter filter, const char *upn,
                                  int64_t now, json_t **out, struct as_err *err)
{
    /* The UPN compares without regard to case (SQLite: COLLATE NOCASE). */
    struct pg_args a = {0};
    pg_arg_nonempty(&a, upn);
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, (int64_t)filter);
    return read_rows(
        db,
        "SELECT id, upn, protocols, reason, granted_by, created_at, expires_at, removed_at,"
        " removed_by, source,"
        " CASE WHEN removed_at IS NOT NULL THEN 'removed'"
        "      WHEN expires_at <= $2 THEN 'expired' ELSE 'active' END AS state,"
        " removed_reason FROM exceptions WHERE ($1::text IS NULL OR lower(upn) = lower($1::text))"
        " AND ($3::int = 3 OR ($3::int = 0 AND removed_at IS NULL AND expires_at > $2)"
        "      OR ($3::int = 1 AND removed_at IS NULL AND expires_at <= $2)"
        "      OR ($3::int = 2 AND removed_at IS NOT NULL))"
        " ORDER BY id DESC",
        &a, exception_row, "list exceptions", out, err);
}

enum as_code db_pg_exception_remove(struct db *db, int64_t id, const char *by, const char *reason,
                                    int64_t now, struct as_err *err)
{
    static const char sql[] =
        "UPDATE exceptions SET removed_at = $2, removed_by = $3, removed_reason = $4"
        " WHERE id = $1 AND removed_at IS NULL RETURNING upn, protocols";
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, id);
    pg_arg_i64(&a, now);
    pg_arg_nonempty(&a, by);
    pg_arg_nonempty(&a, reason);
    PGresult *r = pg_run(c, sql, &a, "remove exception", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    json_t *data = NULL;
    if (PQntuples(r) == 1) {
        data = json_pack("{s:I, s:s, s:s, s:s?, s:s?}", "id", (json_int_t)id, "user",
                         pg_text(r, 0, 0), "protocols", pg_text(r, 0, 1), "removed_by", by,
                         "reason", reason);
        rc = exception_event(c, "exception.removed", data, err);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no exception %lld (or it was removed already)",
                     (long long)id);
    }
    PQclear(r);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb,
                                            void *ud, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, now);
    PGresult *r = pg_run(c,
                         "SELECT upn, protocols, reason, granted_by, expires_at FROM exceptions"
                         " WHERE removed_at IS NULL AND expires_at > $1 ORDER BY id",
                         &a, "select exceptions", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    for (int i = 0; i < PQntuples(r); i++)
        if (cb(ud, pg_text(r, i, 0), pg_text(r, i, 1), pg_text(r, i, 2), pg_text(r, i, 3),
               pg_i64(r, i, 4)))
            break;
    PQclear(r);
    return AS_OK;
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
