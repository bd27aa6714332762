/*
 * db_plans.c - SQL for the CAS mailbox plans, the organisation config and
 * Assent's organisation-config writes (see db/db_plans.h).  The rows are
 * built by db/common.c from the stored JSON, the same for both backends.
 */
#include "db/backend.h"
#include "db/sqlite/ops.h"
#include "db/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

enum as_code db_sqlite_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                const json_t *plan, struct as_err *err)
{
    const char *name = json_string_value(json_object_get(plan, "Name"));
    const char *display = json_string_value(json_object_get(plan, "DisplayName"));
    if (!name || !*name)
        return as_errf(err, AS_EINVAL, "a mailbox plan without Name");
    char *body = json_dumps(plan, JSON_COMPACT | JSON_SORT_KEYS);
    if (!body)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc;
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_mailbox_plans(name, display_name, body, sync_id, synced_at)"
        " VALUES (?1,?2,?3,?4,?5) ON CONFLICT(name) DO UPDATE SET"
        " display_name = excluded.display_name, body = excluded.body,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at", err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, display ? display : name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, body, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, sync_id);
        sqlite3_bind_int64(st, 5, now_ms);
        rc = db_step_done(c, st, "store mailbox plan", err);
    }
    free(body);
    return rc;
}

enum as_code db_sqlite_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM tenant_mailbox_plans WHERE sync_id <> ?1", err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, sync_id);
    return db_step_done(c, st, "remove mailbox plans gone from the tenant", err);
}

/* Run a read statement (bind: NULL or one text parameter), handing each
 * row made by mk to cb. */
static enum as_code each_row(struct db *db, const char *sql, const char *bind, int64_t bind_i,
                             json_t *(*mk)(sqlite3_stmt *st),
                             int (*cb)(const json_t *row, void *ud), void *ud, const char *what,
                             struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db, sql, &c, &st, err);
    if (rc)
        return rc;
    if (bind)
        sqlite3_bind_text(st, 1, bind, -1, SQLITE_TRANSIENT);
    else if (bind_i)
        sqlite3_bind_int64(st, 1, bind_i);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = mk(st);
        if (!row) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
        int stop = cb(row, ud);
        json_decref(row);
        if (stop)
            break;
    }
    if (!rc && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(c, what, err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

static json_t *plan_row(sqlite3_stmt *st)
{
    return db_plan_row(db_col_text(st, 0), sqlite3_column_int64(st, 1));
}

enum as_code db_sqlite_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                     void *ud, struct as_err *err)
{
    return each_row(db,
                    "SELECT body, synced_at FROM tenant_mailbox_plans"
                    " ORDER BY display_name, name",
                    NULL, 0, plan_row, cb, ud, "read mailbox plans", err);
}

enum as_code db_sqlite_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                                      struct as_err *err)
{
    char *body = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    if (!body)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc;
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_org_config(id, body, synced_at) VALUES (1, ?1, ?2)"
        " ON CONFLICT(id) DO UPDATE SET body = excluded.body, synced_at = excluded.synced_at",
        err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, body, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = db_step_done(c, st, "store the organisation config", err);
    }
    free(body);
    return rc;
}

static json_t *org_row(sqlite3_stmt *st)
{
    return db_org_config_row(db_col_text(st, 0), sqlite3_column_int64(st, 1));
}

static int keep_one(const json_t *row, void *ud)
{
    *(json_t **)ud = json_incref((json_t *)row);
    return 1;
}

enum as_code db_sqlite_org_config_get(struct db *db, json_t **out, struct as_err *err)
{
    *out = NULL;
    return each_row(db, "SELECT body, synced_at FROM tenant_org_config WHERE id = 1", NULL, 0,
                    org_row, keep_one, out, "read the organisation config", err);
}

enum as_code db_sqlite_org_write_put(struct db *db, const char *key, const char *setting,
                                     const json_t *value, int64_t run_id, int64_t now_ms,
                                     struct as_err *err)
{
    if (!key || !*key || !setting || !*setting)
        return as_errf(err, AS_EINVAL, "an organisation-config write needs a key and a setting");
    char *text = json_dumps(value ? value : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO org_config_writes(idem_key, setting, value, run_id, written_at, visible_at)"
        " VALUES (?1,?2,?3,?4,?5,NULL) ON CONFLICT(idem_key) DO UPDATE SET"
        " setting = excluded.setting, value = excluded.value, run_id = excluded.run_id,"
        " written_at = excluded.written_at, visible_at = NULL", err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, setting, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, run_id);
        sqlite3_bind_int64(st, 5, now_ms);
        rc = db_step_done(c, st, "record the organisation-config write", err);
    }
    rc = db_sqlite_write_end(db, rc, err);
    free(text);
    return rc;
}

static json_t *write_row(sqlite3_stmt *st)
{
    return db_org_write_row(db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2),
                            sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
                            sqlite3_column_type(st, 5) == SQLITE_NULL
                                ? 0
                                : sqlite3_column_int64(st, 5));
}

#define WRITE_COLS "idem_key, setting, value, run_id, written_at, visible_at"

enum as_code db_sqlite_org_write_get(struct db *db, const char *key, json_t **out,
                                     struct as_err *err)
{
    *out = NULL;
    return each_row(db, "SELECT " WRITE_COLS " FROM org_config_writes WHERE idem_key = ?1", key,
                    0, write_row, keep_one, out, "read the organisation-config write", err);
}

enum as_code db_sqlite_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                         struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
        "UPDATE org_config_writes SET visible_at = ?2 WHERE idem_key = ?1"
        " AND visible_at IS NULL", err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = db_step_done(c, st, "mark the organisation-config write visible", err);
    }
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_org_writes_foreach(struct db *db, int limit,
                                          int (*cb)(const json_t *row, void *ud), void *ud,
                                          struct as_err *err)
{
    return each_row(db,
                    "SELECT " WRITE_COLS " FROM org_config_writes"
                    " ORDER BY written_at DESC, idem_key LIMIT ?1",
                    NULL, limit > 0 ? limit : 50, write_row, cb, ud,
                    "read the organisation-config writes", err);
}
