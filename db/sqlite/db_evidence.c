/*
 * db_evidence.c - SQL for evidence of Basic use and drift (db_evidence.h).
 */
#include "db/db_evidence.h"
#include "db/sqlite/ops.h"
#include "db/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

enum as_code db_sqlite_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows,
                                         size_t n, int64_t now_ms, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = db_exec(c, "DELETE FROM tenant_smtp_auth; INSERT OR IGNORE INTO tenant_org(id) VALUES (1)",
                 err);
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_stmt *st = db_stmt(c,
            "INSERT INTO tenant_smtp_auth(upn_lower, upn, basic_messages, oauth_messages,"
            " imported_at) VALUES (lower(?1), ?1, ?2, ?3, ?4) ON CONFLICT(upn_lower) DO UPDATE"
            " SET basic_messages = basic_messages + excluded.basic_messages,"
            " oauth_messages = oauth_messages + excluded.oauth_messages", err);
        if (!st) {
            rc = AS_EDB;
            break;
        }
        sqlite3_bind_text(st, 1, rows[i].upn, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, rows[i].basic_messages);
        sqlite3_bind_int64(st, 3, rows[i].oauth_messages);
        sqlite3_bind_int64(st, 4, now_ms);
        rc = db_step_done(c, st, "store SMTP AUTH report row", err);
    }
    if (!rc) {
        sqlite3_stmt *st = db_stmt(c, "UPDATE tenant_org SET smtp_auth_imported_at = ?1 WHERE id = 1",
                                   err);
        if (!st)
            rc = AS_EDB;
        else {
            sqlite3_bind_int64(st, 1, now_ms);
            rc = db_step_done(c, st, "stamp SMTP AUTH report import", err);
        }
    }
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                       int64_t run_id, int64_t now_ms, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && protocols && protocols[i]; i++) {
        sqlite3_stmt *st = db_stmt(c,
            "INSERT INTO m365_disabled(upn_lower, protocol, upn, disabled_at, run_id)"
            " VALUES (lower(?1), ?2, ?1, ?3, ?4) ON CONFLICT(upn_lower, protocol) DO UPDATE"
            " SET drift_at = NULL, run_id = excluded.run_id", err);
        if (!st) {
            rc = AS_EDB;
            break;
        }
        sqlite3_bind_text(st, 1, upn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, protocols[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now_ms);
        if (run_id > 0)
            sqlite3_bind_int64(st, 4, run_id);
        else
            sqlite3_bind_null(st, 4);
        rc = db_step_done(c, st, "record a protocol Assent turned off", err);
    }
    return db_sqlite_write_end(db, rc, err);
}

/*
 * Per protocol Assent turned off: is it on in the synced mailbox (NULL when
 * the mailbox is not synced), and does an exception in force cover it?
 */
static const char drift_sql[] =
    "SELECT d.upn, d.protocol, d.drift_at IS NOT NULL,"
    " CASE d.protocol WHEN 'pop' THEN c.pop WHEN 'imap' THEN c.imap"
    "  WHEN 'activesync' THEN c.activesync WHEN 'ews' THEN c.ews"
    "  WHEN 'smtp' THEN (COALESCE(c.smtp_auth_disabled, o.smtp_client_auth_disabled) = 0) END,"
    " EXISTS (SELECT 1 FROM exceptions e WHERE e.upn = d.upn AND e.removed_at IS NULL"
    "  AND e.expires_at > ?1 AND (instr(e.protocols, '\"all\"') > 0"
    "  OR instr(e.protocols, '\"' || d.protocol || '\"') > 0))"
    " FROM m365_disabled d"
    " LEFT JOIN tenant_users u ON u.upn_lower = d.upn_lower"
    " LEFT JOIN tenant_cas c ON c.user_id = u.id"
    " LEFT JOIN tenant_org o ON o.id = 1"
    " ORDER BY d.upn_lower, d.protocol";

enum as_code db_sqlite_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                                  struct as_err *err)
{
    json_t *out = json_array();
    *changes = NULL;
    if (!out)
        return as_errf(err, AS_ENOMEM, "out of memory");
    sqlite3_stmt *st = db_stmt(c, drift_sql, err);
    if (!st) {
        json_decref(out);
        return AS_EDB;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_type(st, 3) == SQLITE_NULL)
            continue; /* mailbox not synced: unknown, never drift */
        int was = sqlite3_column_int(st, 2);
        int now = sqlite3_column_int(st, 3) != 0 && !sqlite3_column_int(st, 4);
        if (was == now)
            continue;
        json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "upn", db_col_text(st, 0),
                                             "protocol", db_col_text(st, 1), "drift", now));
    }
    enum as_code rc = r == SQLITE_DONE ? AS_OK : db_error(c, "scan for drift", err);
    db_stmt_done(st);
    size_t i;
    json_t *ch;
    json_array_foreach(out, i, ch)
    {
        if (rc)
            break;
        sqlite3_stmt *up = db_stmt(c,
            "UPDATE m365_disabled SET drift_at = ?3 WHERE upn_lower = lower(?1) AND protocol = ?2",
            err);
        if (!up) {
            rc = AS_EDB;
            break;
        }
        sqlite3_bind_text(up, 1, json_string_value(json_object_get(ch, "upn")), -1, SQLITE_STATIC);
        sqlite3_bind_text(up, 2, json_string_value(json_object_get(ch, "protocol")), -1,
                          SQLITE_STATIC);
        if (json_is_true(json_object_get(ch, "drift")))
            sqlite3_bind_int64(up, 3, now_ms);
        else
            sqlite3_bind_null(up, 3);
        rc = db_step_done(c, up, "record drift", err);
    }
    if (rc) {
        json_decref(out);
        return rc;
    }
    *changes = out;
    return AS_OK;
}
