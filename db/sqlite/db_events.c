/*
 * db_events.c - the hash-chained event log in SQLite: appends and reads
 * (contract in db_events.h).  The hash, appends of JSON and the chain's
 * verification are the same on every backend (db/events.c).
 */
#include "db/db_events.h"
#include "db/sqlite/sqlite.h"

#include <stdio.h>
#include <string.h>

#include "db/backend.h"

enum as_code db_sqlite_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                            int64_t run_id, int64_t exec_id, const char *type,
                                            const char *data, const char *data_digest, int64_t now,
                                            struct as_err *err)
{
    static const char last[] = "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1";
    static const char ins[] =
        "INSERT INTO events (id, run_id, exec_id, ts, type, data, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    struct db_event_chain local = {0};
    if (!db_event_type_ok(type))
        return as_errf(err, AS_EINVAL, "event type \"%.80s\" must be 1-64 of [a-z0-9._-]", type);
    if (!data)
        data = "{}";
    if (!chain)
        chain = &local;
    enum as_code rc = AS_OK;
    sqlite3_stmt *st;
    if (!chain->loaded) {
        /* Read the chain's head inside this write transaction: another process
         * may have appended since our last event. */
        chain->id = 0;
        memcpy(chain->hash, db_event_zero_hash, sizeof chain->hash);
        st = db_stmt(conn, last, err);
        if (!st)
            return AS_EDB;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            chain->id = sqlite3_column_int64(st, 0);
            snprintf(chain->hash, sizeof chain->hash, "%s", db_col_text(st, 1));
        } else if (r != SQLITE_DONE) {
            rc = db_error(conn, "read event chain head", err);
        }
        db_stmt_done(st);
        if (rc)
            return rc;
        chain->loaded = 1;
    }
    char hash[65], digest[65];
    int64_t id = chain->id + 1;
    if (!data_digest) {
        if (db_event_digest(data, digest))
            return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
        data_digest = digest;
    }
    if (db_event_hash(chain->hash, id, run_id, exec_id, now, type, data_digest, hash))
        return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
    st = db_stmt(conn, ins, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    if (run_id)
        sqlite3_bind_int64(st, 2, run_id);
    else
        sqlite3_bind_null(st, 2);
    if (exec_id)
        sqlite3_bind_int64(st, 3, exec_id);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, now);
    db_bind_text_or_null(st, 5, type);
    db_bind_text_or_null(st, 6, data);
    db_bind_text_or_null(st, 7, chain->hash);
    db_bind_text_or_null(st, 8, hash);
    rc = db_step_done(conn, st, "append event", err);
    if (rc) {
        chain->loaded = 0;
        return rc;
    }
    chain->id = id;
    memcpy(chain->hash, hash, sizeof chain->hash);
    return AS_OK;
}

enum as_code db_sqlite_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                                  struct as_err *err)
{
    static const char one[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events WHERE run_id = ?1 ORDER BY id";
    static const char all[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events ORDER BY id";
    sqlite3_stmt *st = db_stmt(conn, run_id ? one : all, err);
    if (!st)
        return AS_EDB;
    if (run_id)
        sqlite3_bind_int64(st, 1, run_id);
    enum as_code rc = AS_OK;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_event_info ev = {
            .id = sqlite3_column_int64(st, 0),
            .run_id = sqlite3_column_int64(st, 1),
            .exec_id = sqlite3_column_int64(st, 2),
            .ts = sqlite3_column_int64(st, 3),
            .type = db_col_text(st, 4),
            .data = db_col_text(st, 5),
            .prev_hash = db_col_text(st, 6),
            .hash = db_col_text(st, 7),
        };
        if (cb(ud, &ev))
            break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = db_error(conn, "read events", err);
    db_stmt_done(st);
    return rc;
}

