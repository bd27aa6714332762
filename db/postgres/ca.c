/*
 * ca.c - the PostgreSQL store's Conditional Access (contract in
 * db/db_ca.h; the SQLite dialect is db/sqlite/db_ca.c, whose rows this one
 * builds key for key).  Display names are ordered COLLATE "C" (bytes), as
 * SQLite orders them.
 */
#include "db/postgres/pg.h"

#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* The JSON text of path a.b under obj, or "[]" when absent (malloc'd; NULL on OOM). */
static char *array_text(const json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(obj, a), b);
    return json_dumps(json_is_array(v) ? v : json_array(), JSON_COMPACT);
}

enum as_code db_pg_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                 const json_t *policy, int managed, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO tenant_ca_policies (id, display_name, state, managed, client_app_types,"
        " grant_controls, modified_at, body, sync_id, synced_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name,"
        " state = excluded.state, managed = excluded.managed,"
        " client_app_types = excluded.client_app_types, grant_controls = excluded.grant_controls,"
        " modified_at = excluded.modified_at, body = excluded.body, sync_id = excluded.sync_id,"
        " synced_at = excluded.synced_at";
    const char *id = json_string_value(json_object_get(policy, "id"));
    const char *name = json_string_value(json_object_get(policy, "displayName"));
    const char *state = json_string_value(json_object_get(policy, "state"));
    if (!id || !*id || !name)
        return as_errf(err, AS_EINVAL, "a Conditional Access policy without id or displayName");
    char *apps = array_text(policy, "conditions", "clientAppTypes");
    char *grant = array_text(policy, "grantControls", "builtInControls");
    char *body = json_dumps(policy, JSON_COMPACT | JSON_SORT_KEYS);
    enum as_code rc;
    if (!apps || !grant || !body) {
        rc = oom(err);
    } else {
        struct pg_args a = {0};
        pg_arg_text(&a, id);
        pg_arg_text(&a, name);
        pg_arg_text(&a, state ? state : "");
        pg_arg_i64(&a, managed != 0);
        pg_arg_text(&a, apps);
        pg_arg_text(&a, grant);
        pg_arg_text(&a, json_string_value(json_object_get(policy, "modifiedDateTime")));
        pg_arg_text(&a, body);
        pg_arg_i64(&a, sync_id);
        pg_arg_i64(&a, now_ms);
        rc = pg_do(c, sql, &a, "store Conditional Access policy", NULL, err);
    }
    free(apps);
    free(grant);
    free(body);
    return rc;
}

enum as_code db_pg_ca_policies_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, sync_id);
    return pg_do(c, "DELETE FROM tenant_ca_policies WHERE sync_id <> $1", &a,
                 "remove Conditional Access policies gone from the tenant", NULL, err);
}

/* A JSON cell, or def (new reference) when it does not parse. */
static json_t *json_cell(const PGresult *r, int i, int col, json_t *def)
{
    json_t *v = json_loads(pg_text(r, i, col), 0, NULL);
    if (v) {
        json_decref(def);
        return v;
    }
    return def;
}

struct policies_each {
    int (*cb)(const json_t *row, void *ud);
    void *ud;
    int oom;
};

static int policy_row(void *ud, const PGresult *r, int i)
{
    struct policies_each *e = ud;
    char synced[40];
    time_format_iso(pg_i64(r, i, 7), synced, sizeof synced);
    json_t *row = json_pack(
        "{s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:s, s:b, s:o}", "id", pg_text(r, i, 0),
        "display_name", pg_text(r, i, 1), "state", pg_text(r, i, 2), "managed",
        pg_i64(r, i, 3) != 0, "client_app_types", json_cell(r, i, 4, json_array()),
        "grant_controls", json_cell(r, i, 5, json_array()), "modified_at",
        pg_isnull(r, i, 6) ? json_null() : json_string(pg_text(r, i, 6)), "synced_at", synced,
        "assent", pg_i64(r, i, 9) != 0, "policy", json_cell(r, i, 8, json_object()));
    if (!row) {
        e->oom = 1;
        return 1;
    }
    int stop = e->cb(row, e->ud);
    json_decref(row);
    return stop;
}

enum as_code db_pg_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                       void *ud, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct policies_each e = {cb, ud, 0};
    rc = pg_each(c,
                 "SELECT p.id, p.display_name, p.state, p.managed, p.client_app_types,"
                 " p.grant_controls, p.modified_at, p.synced_at, p.body,"
                 " (EXISTS (SELECT 1 FROM ca_assent_policies a WHERE a.policy_id = p.id))::int"
                 " FROM tenant_ca_policies p ORDER BY p.display_name COLLATE \"C\","
                 " p.id COLLATE \"C\"",
                 NULL, policy_row, &e, "read Conditional Access policies", err);
    db_pg_read_end(db, c);
    if (!rc && e.oom)
        rc = oom(err);
    return rc;
}

enum as_code db_pg_ca_record_get(struct db *db, const char *name, json_t **out,
                                 struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    PGresult *r = pg_run(c,
                         "SELECT name, policy_id, group_id, body_hash, body, written_at"
                         " FROM ca_assent_policies WHERE name = $1",
                         &a, "read the Conditional Access record", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        *out = json_pack("{s:s, s:s, s:o, s:s, s:o, s:I}", "name", pg_text(r, 0, 0),
                         "policy_id", pg_text(r, 0, 1), "group_id",
                         pg_isnull(r, 0, 2) ? json_null() : json_string(pg_text(r, 0, 2)),
                         "body_hash", pg_text(r, 0, 3), "body",
                         json_cell(r, 0, 4, json_object()), "written_at",
                         (json_int_t)pg_i64(r, 0, 5));
        if (!*out)
            rc = oom(err);
    }
    PQclear(r);
    return rc;
}

enum as_code db_pg_ca_record_put(struct db *db, const char *name, const char *policy_id,
                                 const char *group_id, const char *body_hash, const json_t *body,
                                 int64_t now_ms, struct as_err *err)
{
    if (!name || !*name || !policy_id || !*policy_id || !body_hash || strlen(body_hash) != 64)
        return as_errf(err, AS_EINVAL, "a Conditional Access record needs a name, a policy id "
                                       "and a SHA-256 body hash");
    char *text = json_dumps(body ? body : json_object(), JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return oom(err);
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    pg_arg_text(&a, policy_id);
    pg_arg_text(&a, group_id);
    pg_arg_text(&a, body_hash);
    pg_arg_text(&a, text);
    pg_arg_i64(&a, now_ms);
    rc = pg_do(c,
               "INSERT INTO ca_assent_policies (name, policy_id, group_id, body_hash, body,"
               " written_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET"
               " policy_id = excluded.policy_id, group_id = excluded.group_id,"
               " body_hash = excluded.body_hash, body = excluded.body,"
               " written_at = excluded.written_at",
               &a, "store the Conditional Access record", NULL, err);
    rc = db_pg_write_end(db, rc, err);
    free(text);
    return rc;
}
