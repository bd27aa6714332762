/*
 * evidence.c - evidence of Basic use and drift on PostgreSQL (db_evidence.h);
 * the same statements as db/sqlite/db_evidence.c.
 */
#include "db/postgres/pg.h"

#include <stdlib.h>
#include <string.h>

enum as_code db_pg_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows, size_t n,
                                     int64_t now_ms, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = pg_do(c, "DELETE FROM tenant_smtp_auth", NULL, "clear SMTP AUTH report", NULL, err);
    if (!rc)
        rc = pg_do(c, "INSERT INTO tenant_org (id) VALUES (1) ON CONFLICT (id) DO NOTHING", NULL,
                   "organisation row", NULL, err);
    for (size_t i = 0; !rc && i < n; i++) {
        struct pg_args a = {0};
        pg_arg_text(&a, rows[i].upn);
        pg_arg_i64(&a, rows[i].basic_messages);
        pg_arg_i64(&a, rows[i].oauth_messages);
        pg_arg_i64(&a, now_ms);
        rc = pg_do(c,
                   "INSERT INTO tenant_smtp_auth (upn_lower, upn, basic_messages, oauth_messages,"
                   " imported_at) VALUES (lower($1), $1, $2, $3, $4) ON CONFLICT (upn_lower) DO"
                   " UPDATE SET basic_messages = tenant_smtp_auth.basic_messages"
                   " + excluded.basic_messages, oauth_messages = tenant_smtp_auth.oauth_messages"
                   " + excluded.oauth_messages",
                   &a, "store SMTP AUTH report row", NULL, err);
    }
    if (!rc) {
        struct pg_args a = {0};
        pg_arg_i64(&a, now_ms);
        rc = pg_do(c, "UPDATE tenant_org SET smtp_auth_imported_at = $1 WHERE id = 1", &a,
                   "stamp SMTP AUTH report import", NULL, err);
    }
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                   int64_t run_id, int64_t now_ms, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && protocols && protocols[i]; i++) {
        struct pg_args a = {0};
        pg_arg_text(&a, upn);
        pg_arg_text(&a, protocols[i]);
        pg_arg_i64(&a, now_ms);
        if (run_id > 0)
            pg_arg_i64(&a, run_id);
        else
            pg_arg_text(&a, NULL);
        rc = pg_do(c,
                   "INSERT INTO m365_disabled (upn_lower, protocol, upn, disabled_at, run_id)"
                   " VALUES (lower($1), $2, $1, $3, $4) ON CONFLICT (upn_lower, protocol) DO"
                   " UPDATE SET drift_at = NULL, run_id = excluded.run_id",
                   &a, "record a protocol Assent turned off", NULL, err);
    }
    return db_pg_write_end(db, rc, err);
}

struct drift_scan {
    json_t *out;
    int oom;
};

static int drift_row(void *ud, const PGresult *r, int i)
{
    struct drift_scan *d = ud;
    if (pg_isnull(r, i, 3))
        return 0; /* mailbox not synced: unknown, never drift */
    int was = pg_i64(r, i, 2) != 0;
    int now = pg_i64(r, i, 3) != 0 && pg_i64(r, i, 4) == 0;
    if (was == now)
        return 0;
    if (json_array_append_new(d->out, json_pack("{s:s, s:s, s:b}", "upn", pg_text(r, i, 0),
                                                "protocol", pg_text(r, i, 1), "drift", now)))
        d->oom = 1;
    return d->oom;
}

enum as_code db_pg_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                              struct as_err *err)
{
    struct drift_scan d = {json_array(), 0};
    *changes = NULL;
    if (!d.out)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct pg_args a = {0};
    pg_arg_i64(&a, now_ms);
    enum as_code rc = pg_each(
        c,
        "SELECT d.upn, d.protocol, (d.drift_at IS NOT NULL)::int,"
        " CASE d.protocol WHEN 'pop' THEN c.pop WHEN 'imap' THEN c.imap"
        "  WHEN 'activesync' THEN c.activesync WHEN 'ews' THEN c.ews"
        "  WHEN 'smtp' THEN (COALESCE(c.smtp_auth_disabled, o.smtp_client_auth_disabled) = 0)::int"
        " END,"
        " (EXISTS (SELECT 1 FROM exceptions e WHERE lower(e.upn) = d.upn_lower"
        "  AND e.removed_at IS NULL AND e.expires_at > $1"
        "  AND (strpos(e.protocols, '\"all\"') > 0"
        "  OR strpos(e.protocols, '\"' || d.protocol || '\"') > 0)))::int"
        " FROM m365_disabled d"
        " LEFT JOIN tenant_users u ON u.upn_lower = d.upn_lower"
        " LEFT JOIN tenant_cas c ON c.user_id = u.id"
        " LEFT JOIN tenant_org o ON o.id = 1"
        " ORDER BY d.upn_lower, d.protocol",
        &a, drift_row, &d, "scan for drift", err);
    if (!rc && d.oom)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    size_t i;
    json_t *ch;
    json_array_foreach(d.out, i, ch)
    {
        if (rc)
            break;
        struct pg_args u = {0};
        pg_arg_text(&u, json_string_value(json_object_get(ch, "upn")));
        pg_arg_text(&u, json_string_value(json_object_get(ch, "protocol")));
        if (json_is_true(json_object_get(ch, "drift")))
            pg_arg_i64(&u, now_ms);
        else
            pg_arg_text(&u, NULL);
        rc = pg_do(c,
                   "UPDATE m365_disabled SET drift_at = $3::bigint WHERE upn_lower = lower($1)"
                   " AND protocol = $2",
                   &u, "record drift", NULL, err);
    }
    if (rc) {
        json_decref(d.out);
        return rc;
    }
    *changes = d.out;
    return AS_OK;
}
