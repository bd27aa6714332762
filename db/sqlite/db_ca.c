/*
 * db_ca.c - SQL for Conditional Access (see db/db_ca.h): the synced
 * policies concerning legacy authentication and Assent's record of the
 * policies it writes.
 */
#include "db/db_ca.h"
#include "db/sqlite/ops.h"
#include "db/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

/* The JSON text of path a.b under obj, or "[]" when absent (malloc'd; NULL on OOM). */
static char *array_text(const json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(obj, a), b);
    return json_dumps(json_is_array(v) ? v : json_array(), JSON_COMPACT);
}

enum as_code db_sqlite_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     const json_t *policy, int managed, struct as_err *err)
{
    const char *id = json_string_value(json_object_get(policy, "id"));
    const char *name = json_string_value(json_object_get(policy, "displayName"));
    const char *state = json_string_value(json_object_get(policy, "state"));
    if (!id || !*id || !name)
        return as_errf(err, AS_EINVAL, "a Conditional Access policy without id or displayName");
    char *apps = array_text(policy, "conditions", "clientAppTypes");
    char *grant = array_text(policy, "grantControls", "builtInControls");
    char *body = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    enum as_code rc = AS_OK;
    if (!apps || !grant || !body) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO tenant_ca_policies(id, display_name, state, managed, client_app_types,"
        " grant_controls, modified_at, body, sync_id, synced_at)"
        " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
        " ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name,"
        " state = excluded.state, managed = excluded.managed,"
        " client_app_types = excluded.client_app_types, grant_controls = excluded.grant_controls,"
        " modified_at = excluded.modified_at, body = excluded.body, sync_id = excluded.sync_id,"
        " synced_at = excluded.synced_at", err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, state ? state : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, managed != 0);
    sqlite3_bind_text(st, 5, apps, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, grant, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 7, json_string_value(json_object_get(policy, "modifiedDateTime")));
    sqlite3_bind_text(st, 8, body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, sync_id);
    sqlite3_bind_int64(st, 10, now_ms);
    rc = db_step_done(c, st, "store Conditional Access policy", err);
out:
    free(apps);
    free(grant);
    free(body);
    return rc;
}

enum as_code db_sqlite_ca_policies_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, "DELETE FROM tenant_ca_policies WHERE sync_id <> ?1", err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, sync_id);
    return db_step_done(c, st, "remove Conditional Access policies gone from the tenant", err);
}

/* A JSON column, or def (new reference) when it does not parse. */
static json_t *json_col(sqlite3_stmt *st, int i, json_t *def)
{
    json_t *v = json_loads(db_col_text(st, i), 0, NULL);
    if (v) {
        json_decref(def);
        return v;
    }
    return def;
}

static json_t *policy_row(sqlite3_stmt *st)
{
    char synced[40];
    time_format_iso(sqlite3_column_int64(st, 7), synced, sizeof synced);
    const char *modified = (const char *)sqlite3_column_text(st, 6);
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:s, s:b, s:o}", "id",
                     db_col_text(st, 0), "display_name", db_col_text(st, 1), "state",
                     db_col_text(st, 2), "managed", sqlite3_column_int(st, 3) != 0,
                     "client_app_types", json_col(st, 4, json_array()), "grant_controls",
                     json_col(st, 5, json_array()), "modified_at",
                     modified ? json_string(modified) : json_null(), "synced_at", synced,
                     "assent", sqlite3_column_int(st, 9) != 0, "policy",
                     json_col(st, 8, json_object()));
}

enum as_code db_sqlite_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                           void *ud, struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    enum as_code rc = db_read_stmt(db,
        "SELECT p.id, p.display_name, p.state, p.managed, p.client_app_types, p.grant_controls,"
        " p.modified_at, p.synced_at, p.body,"
        " EXISTS (SELECT 1 FROM ca_assent_policies a WHERE a.policy_id = p.id)"
        " FROM tenant_ca_policies p ORDER BY p.display_name, p.id", &c, &st, err);
    if (rc)
        return rc;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = policy_row(st);
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
        rc = db_error(c, "read Conditional Access policies", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_ca_record_get(struct db *db, const char *name, json_t **out,
                                     struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    *out = NULL;
    enum as_code rc = db_read_stmt(db,
        "SELECT name, policy_id, group_id, body_hash, body, written_at FROM ca_assent_policies"
        " WHERE name = ?1", &c, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *group = (const char *)sqlite3_column_text(st, 2);
        *out = json_pack("{s:s, s:s, s:o, s:s, s:o, s:I}", "name", db_col_text(st, 0),
                         "policy_id", db_col_text(st, 1), "group_id",
                         group ? json_string(group) : json_null(), "body_hash",
                         db_col_text(st, 3), "body", json_col(st, 4, json_object()),
                         "written_at", (json_int_t)sqlite3_column_int64(st, 5));
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    } else if (r != SQLITE_DONE) {
        rc = db_error(c, "read the Conditional Access record", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_ca_record_put(struct db *db, const char *name, const char *policy_id,
                                     const char *group_id, const char *body_hash,
                                     const json_t *body, int64_t now_ms, struct as_err *err)
{
    if (!name || !*name || !policy_id || !*policy_id || !body_hash || strlen(body_hash) != 64)
        return as_errf(err, AS_EINVAL, "a Conditional Access record needs a name, a policy id "
                                       "and a SHA-256 body hash");
    char *text = json_dumps(body ? body : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(c,
        "INSERT INTO ca_assent_policies(name, policy_id, group_id, body_hash, body, written_at)"
        " VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT(name) DO UPDATE SET"
        " policy_id = excluded.policy_id, group_id = excluded.group_id,"
        " body_hash = excluded.body_hash, body = excluded.body, written_at = excluded.written_at",
        err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, policy_id, -1, SQLITE_TRANSIENT);
        db_bind_text_or_null(st, 3, group_id);
        sqlite3_bind_text(st, 4, body_hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, now_ms);
        rc = db_step_done(c, st, "store the Conditional Access record", err);
    }
    rc = db_sqlite_write_end(db, rc, err);
    free(text);
    return rc;
}
