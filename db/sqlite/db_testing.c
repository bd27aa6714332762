/*
 * db_testing.c - the store operations for tests (see db_testing.h) in
 * SQLite: a digest of the workflow state and a crash state of an approver.
 */
#include "db/db_testing.h"
#include "db/sqlite/sqlite.h"

#include <inttypes.h>

#include "base/encode.h"

/* One statement, so one snapshot; ORDER BY makes the text deterministic
 * and ifnull keeps an empty table from turning the whole text NULL. */
static const char SQL_STATE[] =
    "SELECT"
    " ifnull((SELECT group_concat(x, ';') FROM (SELECT id||':'||status||':'"
    "   ||ifnull(decided_at,'')||':'||ifnull(decided_by,'')||':'||reminders_sent||':'"
    "   ||ifnull(next_reminder_at,'')||':'||resume_pending AS x FROM approvals ORDER BY id)), '')"
    " ||'|'|| ifnull((SELECT group_concat(x, ';') FROM (SELECT id||':'||status||':'"
    "   ||ifnull(sent_at,'')||':'||n_links||':'||ifnull(decided_at,'') AS x"
    "   FROM approval_approvers ORDER BY id)), '')"
    " ||'|'|| ifnull((SELECT group_concat(x, ';') FROM (SELECT token_hash||':'"
    "   ||ifnull(sent_at,'') AS x FROM approval_links ORDER BY token_hash)), '')"
    " ||'|'|| (SELECT count(*) FROM events)"
    " ||'|'|| ifnull((SELECT group_concat(x, ';') FROM (SELECT id||':'||status||':'||due_at"
    "   ||':'||attempt AS x FROM step_execs ORDER BY id)), '')"
    " ||'|'|| ifnull((SELECT group_concat(x, ';') FROM (SELECT id||':'||status||':'"
    "   ||updated_at AS x FROM runs ORDER BY id)), '')";

enum as_code db_sqlite_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                            struct as_err *err)
{
    struct db_conn *c;
    sqlite3_stmt *st;
    digest[0] = '\0';
    enum as_code rc = db_read_stmt(db, SQL_STATE, &c, &st, err);
    if (rc)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *text = sqlite3_column_blob(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        if (encode_sha256_hex(text ? text : "", (size_t)len, digest) != 0)
            rc = as_errf(err, AS_ENOMEM, "cannot compute a digest");
    } else {
        rc = db_error(c, "read the workflow state", err);
    }
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    return rc;
}

enum as_code db_sqlite_testing_approver_unsent(struct db *db, int64_t approval_id,
                                               const char *email, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE approval_approvers SET sent_at = NULL"
                               " WHERE approval_id = ?1 AND email = ?2",
                               err);
    if (!st) {
        rc = AS_EDB;
    } else {
        sqlite3_bind_int64(st, 1, approval_id);
        sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
        rc = db_step_done(c, st, "forget an approver's email", err);
        if (!rc && sqlite3_changes(db_conn_handle(c)) != 1)
            rc = as_errf(err, AS_ENOTFOUND, "approval %" PRId64 " has no approver %s", approval_id,
                         email);
    }
    return db_sqlite_write_end(db, rc, err);
}
