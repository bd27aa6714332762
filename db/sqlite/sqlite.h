/*
 * sqlite.h - private to the SQLite store (db/sqlite/): the connection's
 * prepared-statement cache and the helpers every file of db/sqlite/ writes
 * its SQL with.  Nothing outside db/sqlite/ includes it, except the tests of
 * this implementation.
 */
#ifndef ASSENT_DB_SQLITE_H
#define ASSENT_DB_SQLITE_H

#include <sqlite3.h>

#include "db/db.h"
#include "db/sqlite/ops.h"

/*
 * db_read_begin and db_stmt(sql) in one: on success the caller holds *conn
 * and *st, and releases them with db_stmt_done(*st) then db_read_end(db,
 * *conn); on failure nothing is held and err is set.
 */
enum as_code db_read_stmt(struct db *db, const char *sql, struct db_conn **conn,
                          sqlite3_stmt **st, struct as_err *err) AS_WUR;

/*
 * The connection's cached prepared statement for `sql` (compiled once with
 * SQLITE_PREPARE_PERSISTENT, keyed by the text).  The statement is reset and
 * its bindings cleared; use it and call db_stmt_done() (or sqlite3_reset)
 * before the next db_stmt() of the same SQL.  NULL on error, with err set.
 */
sqlite3_stmt *db_stmt(struct db_conn *conn, const char *sql, struct as_err *err);
void db_stmt_done(sqlite3_stmt *st);

/*
 * The two ends of db_write_end, for the SQLite store's own code (callers
 * above db/ end a transaction with db_write_end only).
 * db_write_commit: COMMIT and unlock; on failure the transaction is rolled
 * back and unlocked.  db_write_rollback: ROLLBACK and unlock, safe after any
 * failure inside the transaction.
 */
enum as_code db_write_commit(struct db *db, struct as_err *err) AS_WUR;
void db_write_rollback(struct db *db);

/* The raw handle (inside db/ only). */
sqlite3 *db_conn_handle(struct db_conn *conn);

/* Map the connection's last error: AS_EDB with "what: (extended code) message". */
enum as_code db_error(struct db_conn *conn, const char *what, struct as_err *err);

/* Execute SQL with no results (may hold several statements). */
enum as_code db_exec(struct db_conn *conn, const char *sql, struct as_err *err) AS_WUR;

/* Helpers for column text that may be NULL: returns "" instead. */
const char *db_col_text(sqlite3_stmt *st, int col);

/*
 * Bind text parameter i of st, or SQL NULL when s is NULL.  The text is not
 * copied (SQLITE_STATIC): s must stay valid until the statement is reset
 * (db_stmt_done or the next step/reset).
 */
void db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);

/* As db_bind_text_or_null, but an empty string is bound as NULL too. */
void db_bind_nonempty_or_null(sqlite3_stmt *st, int i, const char *s);

/*
 * Step st once for its effect (INSERT/UPDATE/DELETE; a row it may return is
 * ignored) and reset it with db_stmt_done.  Any result other than
 * SQLITE_DONE or SQLITE_ROW is mapped with db_error(conn, what, err).
 */
enum as_code db_step_done(struct db_conn *conn, sqlite3_stmt *st, const char *what,
                          struct as_err *err) AS_WUR;

#endif
