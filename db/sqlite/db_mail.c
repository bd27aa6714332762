/* db_mail.c - mail_sends rows: the idempotency record of each email (see db_mail.h). */
#include "db/db_mail.h"
#include "db/sqlite/sqlite.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_GET[] =
    "SELECT message_id, state, attempts, resends, owner, lease_until, date_ms, result"
    " FROM mail_sends WHERE idempotency_key = ?1";

static const char SQL_INSERT[] =
    "INSERT INTO mail_sends (idempotency_key, message_id, transport, state, attempts, resends,"
    " owner, lease_until, date_ms, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, 'sending', 1, 0, ?4, ?5, ?6, ?7, ?7)";

/* SQL_RETRY and SQL_RESEND share ?1..?5 (see bind_update). */
static const char SQL_RETRY[] =
    "UPDATE mail_sends SET state = 'sending', attempts = attempts + 1, transport = ?2,"
    " owner = ?3, lease_until = ?4, date_ms = ?6, error = NULL, updated_at = ?5"
    " WHERE idempotency_key = ?1";

static const char SQL_RESEND[] =
    "UPDATE mail_sends SET attempts = attempts + 1, resends = resends + 1, transport = ?2,"
    " owner = ?3, lease_until = ?4, updated_at = ?5 WHERE idempotency_key = ?1";

static const char SQL_FINISH[] =
    "UPDATE mail_sends SET state = ?2, result = ?3, error = ?4, owner = NULL,"
    " lease_until = NULL, updated_at = ?5 WHERE idempotency_key = ?1";

static const char SQL_ROW[] =
    "SELECT idempotency_key, message_id, transport, state, attempts, resends, owner,"
    " lease_until, date_ms, result, error, created_at, updated_at"
    " FROM mail_sends WHERE idempotency_key = ?1";

static const char SQL_STEP_SOURCE[] =
    "SELECT w.definition, w.source_path FROM runs r JOIN workflows w ON w.id = r.workflow_id"
    " WHERE r.id = ?1";

/* Prepare SQL_RETRY or SQL_RESEND with their common parameters bound. */
static sqlite3_stmt *bind_update(struct db_conn *conn, const char *sql, const char *key,
                                 const char *transport, const char *owner, int64_t lease_until,
                                 int64_t now_ms, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(conn, sql, err);
    if (st) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, transport, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, lease_until);
        sqlite3_bind_int64(st, 5, now_ms);
    }
    return st;
}

enum as_code db_sqlite_mail_claim(struct db *db, const char *key, const char *message_id,
                                  const char *transport, int64_t date_ms, const char *owner,
                                  int64_t now_ms, int64_t lease_until, int max_resends,
                                  int (*owner_alive)(const char *owner, void *ud), void *ud,
                                  struct db_mail_claim *out, struct as_err *err)
{
    struct db_conn *conn = NULL;
    enum as_code rc;
    sqlite3_stmt *st;
    char *stored_id = NULL, *stored_owner = NULL, *state = NULL, *result_text = NULL;
    int found = 0, attempts = 0, resends = 0;
    int64_t stored_lease = 0, stored_date = 0;

    memset(out, 0, sizeof *out);
    if ((rc = db_sqlite_write_begin(db, &conn, err)))
        return rc;

    if (!(st = db_stmt(conn, SQL_GET, err))) {
        rc = err ? err->code : AS_EDB;
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        found = 1;
        stored_id = strdup(db_col_text(st, 0));
        state = strdup(db_col_text(st, 1));
        attempts = sqlite3_column_int(st, 2);
        resends = sqlite3_column_int(st, 3);
        stored_owner = strdup(db_col_text(st, 4));
        stored_lease = sqlite3_column_int64(st, 5);
        stored_date = sqlite3_column_int64(st, 6);
        result_text = strdup(db_col_text(st, 7));
        if (!stored_id || !state || !stored_owner || !result_text) {
            db_stmt_done(st);
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
    } else if (r != SQLITE_DONE) {
        rc = db_error(conn, "mail_sends lookup", err);
        db_stmt_done(st);
        goto out;
    }
    db_stmt_done(st);

    if (!found) {
        if (!(st = db_stmt(conn, SQL_INSERT, err))) {
            rc = err ? err->code : AS_EDB;
            goto out;
        }
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, transport, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, lease_until);
        sqlite3_bind_int64(st, 6, date_ms);
        sqlite3_bind_int64(st, 7, now_ms);
        if ((rc = db_step_done(conn, st, "mail_sends insert", err)))
            goto out;
        out->action = DB_MAIL_SEND;
        out->message_id = strdup(message_id);
        out->date_ms = date_ms;
        out->attempts = 1;
    } else {
        /* Start from the stored row; each case below changes what it changes. */
        out->message_id = stored_id;
        stored_id = NULL;
        out->date_ms = stored_date;
        out->attempts = attempts;
        out->resends = resends;
        if (strcmp(state, "sent") == 0) {
            out->action = DB_MAIL_DONE;
            json_error_t jerr;
            out->result = json_loads(result_text, 0, &jerr);
            if (!out->result) {
                rc = as_errf(err, AS_EDB, "mail_sends %s: stored result is not JSON", key);
                goto out;
            }
        } else if (strcmp(state, "failed") == 0) {
            st = bind_update(conn, SQL_RETRY, key, transport, owner, lease_until, now_ms, err);
            if (!st) {
                rc = err ? err->code : AS_EDB;
                goto out;
            }
            sqlite3_bind_int64(st, 6, date_ms);
            if ((rc = db_step_done(conn, st, "mail_sends retry", err)))
                goto out;
            out->action = DB_MAIL_SEND;
            out->date_ms = date_ms;
            out->attempts = attempts + 1;
        } else if (now_ms < stored_lease && owner_alive && owner_alive(stored_owner, ud)) {
            out->action = DB_MAIL_BUSY;
            out->lease_until = stored_lease;
        } else if (resends >= max_resends) {
            out->action = DB_MAIL_GIVEUP;
        } else {
            st = bind_update(conn, SQL_RESEND, key, transport, owner, lease_until, now_ms, err);
            if (!st) {
                rc = err ? err->code : AS_EDB;
                goto out;
            }
            if ((rc = db_step_done(conn, st, "mail_sends resend", err)))
                goto out;
            out->action = DB_MAIL_RESEND;
            out->attempts = attempts + 1;
            out->resends = resends + 1;
        }
    }
    if (!out->message_id)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    rc = db_sqlite_write_end(db, rc, err);
    if (rc)
        db_mail_claim_clear(out);
    free(stored_id);
    free(stored_owner);
    free(state);
    free(result_text);
    return rc;
}

enum as_code db_sqlite_mail_finish(struct db *db, const char *key, const char *state,
                                   const json_t *result, const char *error, int64_t now_ms,
                                   struct as_err *err)
{
    struct db_conn *conn = NULL;
    enum as_code rc;
    char *text = NULL;
    sqlite3_stmt *st;

    if (result) {
        text = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            return as_errf(err, AS_ENOMEM, "out of memory");
    }
    if ((rc = db_sqlite_write_begin(db, &conn, err)))
        goto out;
    if (!(st = db_stmt(conn, SQL_FINISH, err))) {
        rc = err ? err->code : AS_EDB;
    } else {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
        db_bind_text_or_null(st, 3, text);
        db_bind_text_or_null(st, 4, error);
        sqlite3_bind_int64(st, 5, now_ms);
        rc = db_step_done(conn, st, "mail_sends finish", err);
        if (!rc && sqlite3_changes(db_conn_handle(conn)) == 0)
            rc = as_errf(err, AS_ENOTFOUND, "no mail_sends row for this key");
    }
    rc = db_sqlite_write_end(db, rc, err);
out:
    free(text);
    return rc;
}

enum as_code db_sqlite_mail_get(struct db *db, const char *key, json_t **row, struct as_err *err)
{
    struct db_conn *conn = NULL;
    enum as_code rc;
    sqlite3_stmt *st;
    *row = NULL;
    if ((rc = db_read_stmt(db, SQL_ROW, &conn, &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "no mail_sends row for this key");
    } else if (r != SQLITE_ROW) {
        rc = db_error(conn, "mail_sends get", err);
    } else {
        json_t *o = json_object();
        static const char *const names[] = {"idempotency_key", "message_id", "transport", "state",
                                            "attempts", "resends", "owner", "lease_until",
                                            "date_ms", "result", "error", "created_at",
                                            "updated_at"};
        for (int i = 0; o && i < 13; i++) {
            json_t *v;
            int t = sqlite3_column_type(st, i);
            if (t == SQLITE_NULL)
                v = json_null();
            else if (t == SQLITE_INTEGER)
                v = json_integer(sqlite3_column_int64(st, i));
            else if (i == 9)
                v = json_loads(db_col_text(st, i), 0, NULL);
            else
                v = json_string(db_col_text(st, i));
            json_object_set_new(o, names[i], v ? v : json_null());
        }
        if (!o)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
        *row = o;
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, conn);
    return rc;
}

enum as_code db_sqlite_mail_step_source(struct db *db, int64_t run_id, const char *step,
                                        json_t **params, char **source_path, struct as_err *err)
{
    struct db_conn *conn = NULL;
    enum as_code rc;
    sqlite3_stmt *st;
    json_t *def = NULL;
    *params = NULL;
    *source_path = NULL;
    if ((rc = db_read_stmt(db, SQL_STEP_SOURCE, &conn, &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        json_error_t jerr;
        def = json_loads(db_col_text(st, 0), 0, &jerr);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL && *db_col_text(st, 1))
            *source_path = strdup(db_col_text(st, 1));
        if (!def)
            rc = as_errf(err, AS_EDB, "run %lld: stored workflow definition is not JSON",
                         (long long)run_id);
    } else if (r == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "run %lld not found", (long long)run_id);
    } else {
        rc = db_error(conn, "workflow of run", err);
    }
    db_stmt_done(st);
    if (rc)
        goto out;
    json_t *s = json_object_get(json_object_get(def, "steps"), step);
    if (!json_is_object(s)) {
        rc = as_errf(err, AS_ENOTFOUND, "run %lld: no step \"%s\" in its workflow",
                     (long long)run_id, step);
        goto out;
    }
    json_t *p = json_object_get(s, "params");
    *params = json_is_object(p) ? json_incref(p) : json_object();
    if (!*params)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    if (rc) {
        free(*source_path);
        *source_path = NULL;
    }
    json_decref(def);
    db_sqlite_read_end(db, conn);
    return rc;
}
