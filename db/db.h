/*
 * db.h - the SQLite core every data-access module in db/ builds on.
 *
 * One database file in WAL mode.  SQLite has one writer at a time, and two
 * writer connections in one process contend into "database is locked" and
 * second-long tails, so all writes of a process go through ONE connection
 * guarded by a mutex (db_write_begin .. db_write_commit, BEGIN IMMEDIATE).
 * The executor batches many step results into one such transaction (group
 * commit).  Reads use a pool of separate connections, which WAL lets run
 * beside the writer.
 *
 * Only files in db/ include <sqlite3.h> or write SQL.  A future PostgreSQL
 * backend replaces db/ behind the same db_* functions; nothing above db/
 * sees a connection.
 */
#ifndef ASSENT_DB_H
#define ASSENT_DB_H

#include <sqlite3.h>
#include <stdint.h>

#include "base/error.h"

struct db;

/* A connection with its cache of prepared statements.  Used only inside db/. */
struct db_conn;

/*
 * Open (creating if needed) the database at `path`, creating its directory,
 * set WAL, synchronous ("NORMAL" or "FULL"), foreign keys and a busy timeout,
 * and apply pending migrations.  Caller closes with db_close().
 * Whatever the umask, folders it creates are 0700 and a database file it
 * creates is 0600 (SQLite gives the -wal, -shm and -journal files the same
 * mode); an existing folder or database file that group or others can read
 * gets a warning in the log (left as it is).
 */
enum as_code db_open(const char *path, const char *synchronous, struct db **out,
                     struct as_err *err) AS_WUR;

/* Close every connection.  No db_* call may be in flight.  NULL is fine. */
void db_close(struct db *db);

/* The path given to db_open (borrowed). */
const char *db_path(const struct db *db);

/* PRAGMA user_version after migrations. */
int db_schema_version(struct db *db);

/*
 * Begin a write transaction: lock the process's writer mutex, BEGIN
 * IMMEDIATE (waiting on other processes up to the busy timeout).  On success
 * *conn is the writer connection until db_write_commit/rollback; on failure
 * the mutex is released.
 */
enum as_code db_write_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;

/* COMMIT and unlock.  On failure the transaction is rolled back and unlocked. */
enum as_code db_write_commit(struct db *db, struct as_err *err) AS_WUR;

/* ROLLBACK and unlock.  Safe after any failure inside the transaction. */
void db_write_rollback(struct db *db);

/* Borrow a read connection from the pool (opened on demand).  Return it with db_read_end. */
enum as_code db_read_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
void db_read_end(struct db *db, struct db_conn *conn);

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

/*
 * End the write transaction begun by db_write_begin according to rc, the
 * result of the work done in it: AS_OK commits (returning the commit's
 * result), anything else rolls back and returns rc unchanged (err already
 * describes it).  Lets a writer read: begin; rc = work(); return db_write_end().
 */
enum as_code db_write_end(struct db *db, enum as_code rc, struct as_err *err) AS_WUR;

#endif
