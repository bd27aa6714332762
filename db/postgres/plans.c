/*
 * plans.c - the PostgreSQL store's mailbox plans, organisation config and
 * organisation-config writes (contract in db/db_plans.h; the SQLite dialect
 * is db/sqlite/db_plans.c).  Rows are built by db/common.c, the same for
 * both backends.  Display names are ordered COLLATE "C" (bytes), as SQLite
 * orders them.
 */
#include "db/postgres/pg.h"

#include <stdlib.h>
#include <string.h>

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

enum as_code db_pg_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                            const json_t *plan, struct as_err *err)
{
    const char *name = json_string_value(json_object_get(plan, "Name"));
    const char *display = json_string_value(json_object_get(plan, "DisplayName"));
    if (!name || !*name)
        return as_errf(err, AS_EINVAL, "a mailbox plan without Name");
    char *body = json_dumps(plan, JSON_COMPACT | JSON_SORT_KEYS);
    if (!body)
        return oom(err);
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    pg_arg_text(&a, display ? display : name);
    pg_arg_text(&a, body);
    pg_arg_i64(&a, sync_id);
    pg_arg_i64(&a, now_ms);
    enum as_code rc = pg_do(c,
        "INSERT INTO tenant_mailbox_plans (name, display_name, body, sync_id, synced_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET"
        " display_name = excluded.display_name, body = excluded.body,"
        " sync_id = excluded.sync_id, synced_at = excluded.synced_at",
        &a, "store mailbox plan", NULL, err);
    free(body);
    return rc;
}

enum as_code db_pg_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, sync_id);
    return pg_do(c, "DELETE FROM tenant_mailbox_plans WHERE sync_id <> $1", &a,
                 "remove mailbox plans gone from the tenant", NULL, err);
}

static json_t *plan_row(const PGresult *r, int i)
{
    return db_plan_row(pg_text(r, i, 0), pg_i64(r, i, 1));
}

enum as_code db_pg_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud), void *ud,
                                 struct as_err *err)
{
    return pg_rows_each(db,
                     "SELECT body, synced_at FROM tenant_mailbox_plans"
                     " ORDER BY display_name COLLATE \"C\", name COLLATE \"C\"",
                     NULL, plan_row, cb, ud, "read mailbox plans", err);
}

enum as_code db_pg_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                                  struct as_err *err)
{
    char *body = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    if (!body)
        return oom(err);
    struct pg_args a = {0};
    pg_arg_text(&a, body);
    pg_arg_i64(&a, now_ms);
    enum as_code rc = pg_do(c,
        "INSERT INTO tenant_org_config (id, body, synced_at) VALUES (1, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET body = excluded.body, synced_at = excluded.synced_at",
        &a, "store the organisation config", NULL, err);
    free(body);
    return rc;
}

static json_t *org_row(const PGresult *r, int i)
{
    return db_org_config_row(pg_text(r, i, 0), pg_i64(r, i, 1));
}

static int keep_one(const json_t *row, void *ud)
{
    *(json_t **)ud = json_incref((json_t *)row);
    return 1;
}

enum as_code db_pg_org_config_get(struct db *db, json_t **out, struct as_err *err)
{
    *out = NULL;
    return pg_rows_each(db, "SELECT body, synced_at FROM tenant_org_config WHERE id = 1", NULL,
                     org_row, keep_one, out, "read the organisation config", err);
}

enum as_code db_pg_org_write_put(struct db *db, const char *key, const char *setting,
                                 const json_t *value, int64_t run_id, int64_t now_ms,
                                 struct as_err *err)
{
    if (!key || !*key || !setting || !*setting)
        return as_errf(err, AS_EINVAL, "an organisation-config write needs a key and a setting");
    char *text = json_dumps(value ? value : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return oom(err);
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc) {
        free(text);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    pg_arg_text(&a, setting);
    pg_arg_text(&a, text);
    pg_arg_i64(&a, run_id);
    pg_arg_i64(&a, now_ms);
    rc = pg_do(c,
               "INSERT INTO org_config_writes (idem_key, setting, value, run_id, written_at,"
               " visible_at) VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (idem_key) DO UPDATE"
               " SET setting = excluded.setting, value = excluded.value,"
               " run_id = excluded.run_id, written_at = excluded.written_at, visible_at = NULL",
               &a, "record the organisation-config write", NULL, err);
    rc = db_pg_write_end(db, rc, err);
    free(text);
    return rc;
}

static json_t *write_row(const PGresult *r, int i)
{
    return db_org_write_row(pg_text(r, i, 0), pg_text(r, i, 1), pg_text(r, i, 2),
                            pg_i64(r, i, 3), pg_i64(r, i, 4),
                            pg_isnull(r, i, 5) ? 0 : pg_i64(r, i, 5));
}

#define WRITE_COLS "idem_key, setting, value, run_id, written_at, visible_at"

enum as_code db_pg_org_write_get(struct db *db, const char *key, json_t **out,
                                 struct as_err *err)
{
    *out = NULL;
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    return pg_rows_each(db, "SELECT " WRITE_COLS " FROM org_config_writes WHERE idem_key = $1", &a,
                     write_row, keep_one, out, "read the organisation-config write", err);
}

enum as_code db_pg_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                     struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    pg_arg_i64(&a, now_ms);
    rc = pg_do(c,
               "UPDATE org_config_writes SET visible_at = $2 WHERE idem_key = $1"
               " AND visible_at IS NULL",
               &a, "mark the organisation-config write visible", NULL, err);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_org_writes_foreach(struct db *db, int limit,
                                      int (*cb)(const json_t *row, void *ud), void *ud,
                                      struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, limit > 0 ? limit : 50);
    return pg_rows_each(db,
                     "SELECT " WRITE_COLS " FROM org_config_writes"
                     " ORDER BY written_at DESC, idem_key COLLATE \"C\" LIMIT $1",
                     &a, write_row, cb, ud, "read the organisation-config writes", err);
}
