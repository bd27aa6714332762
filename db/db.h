/*
 * db.h - the store: what every data-access header in db/ builds on.
 *
 * The engine and everything above it see a store, not a database engine:
 * no header in db/ names a SQLite type, and nothing outside db/ writes SQL.
 * Backends live behind these headers: SQLite (db/sqlite/, private header
 * db/sqlite/sqlite.h) and PostgreSQL (db/postgres/).  db_open() chooses one
 * from the database string, and every db_* function passes its call to the
 * backend of the handle it is given (db/backend.h, private to db/).
 *
 * One transaction style.  A store operation that is one unit of work on its
 * own takes `struct db *` and opens and ends its own transaction.  An
 * operation that must commit together with others takes `struct db_conn *`,
 * the transaction handle of db_write_begin (or, for reads, db_read_begin),
 * and the caller ends it with db_write_end, passing the result of the work
 * done in it (AS_OK commits, anything else rolls back), or with db_read_end.
 * db_write_begin/db_write_end and db_read_begin/db_read_end are the only
 * transaction calls of this interface: a caller never commits or rolls back
 * by name, so every write transaction ends the same way whatever its
 * outcome.  Nothing else begins or ends a transaction.
 *
 * SQLite (db/sqlite/): one database file in WAL mode.  SQLite has one writer
 * at a time, and two writer connections in one process contend into
 * "database is locked" and second-long tails, so all writes of a process go
 * through ONE connection guarded by a mutex (BEGIN IMMEDIATE).  The executor
 * batches many step results into one such transaction (group commit).  Reads
 * use a pool of separate connections, which WAL lets run beside the writer.
 */
#ifndef ASSENT_DB_H
#define ASSENT_DB_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct db;

/* A transaction handle (a connection inside the implementation). */
struct db_conn;

/*
 * Open the store `path` names.  A PostgreSQL URI ("postgresql://..." or
 * "postgres://...") or libpq key=value connection string ("host=... dbname=...",
 * starting with a libpq keyword) selects PostgreSQL (docs/postgresql.md);
 * anything else is the path of a SQLite database file, as follows.
 *
 * SQLite: open (creating if needed) the database at `path`, creating its directory,
 * set WAL, synchronous ("NORMAL" or "FULL"), foreign keys and a busy timeout,
 * and apply pending migrations.  Caller closes with db_close().
 * Whatever the umask, folders it creates are 0700 and a database file it
 * creates is 0600 (SQLite gives the -wal, -shm and -journal files the same
 * mode); an existing folder or database file that group or others can read
 * gets a warning in the log (left as it is).
 */
enum as_code db_open(const char *path, const char *synchronous, struct db **out,
                     struct as_err *err) AS_WUR;

/* How to open a store: what db_open() takes, and what only PostgreSQL needs. */
struct db_options {
    const char *synchronous;   /* SQLite: "NORMAL" or "FULL" (PostgreSQL: the server's
                                  synchronous_commit applies) */
    const char *password_file; /* PostgreSQL: a file holding the role's password
                                  (config db_password_file, mode 0600); NULL or "":
                                  libpq's PGPASSFILE or ~/.pgpass, or no password */
};

/*
 * db_open with options.  PostgreSQL: connects (failing with AS_EDB naming
 * host, port, database and user and quoting libpq's reason), then applies
 * pending migrations under an advisory lock, so several nodes may start at
 * once.  A connection string that libpq cannot parse, or that holds a
 * password (it belongs in a password file, never on a command line), is
 * AS_EINVAL.
 */
enum as_code db_open_options(const char *path, const struct db_options *opts, struct db **out,
                             struct as_err *err) AS_WUR;

/*
 * The database string path as it may be shown (messages, logs,
 * `assent config`) into buf: a PostgreSQL connection string with any
 * password replaced by "***"; anything else as it is.
 */
void db_display_name(const char *path, char *buf, size_t size);

/* Close every connection.  No db_* call may be in flight.  NULL is fine. */
void db_close(struct db *db);

/* The path given to db_open (borrowed). */
const char *db_path(const struct db *db);

/* PRAGMA user_version after migrations. */
int db_schema_version(struct db *db);

/*
 * Begin a write transaction: lock the process's writer mutex, BEGIN
 * IMMEDIATE (waiting on other processes up to the busy timeout).  On success
 * *conn is the writer connection until db_write_end; on failure the mutex is
 * released and nothing is to be ended.
 */
enum as_code db_write_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;

/* Borrow a read connection from the pool (opened on demand).  Return it with db_read_end. */
enum as_code db_read_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
void db_read_end(struct db *db, struct db_conn *conn);

/*
 * End the write transaction begun by db_write_begin according to rc, the
 * result of the work done in it: AS_OK commits (returning the commit's
 * result), anything else rolls back and returns rc unchanged (err already
 * describes it).  Either way the writer is released: a commit that fails has
 * been rolled back, so on any non-AS_OK result nothing of the transaction
 * was written.  Lets a writer read: begin; rc = work(); return db_write_end().
 */
enum as_code db_write_end(struct db *db, enum as_code rc, struct as_err *err) AS_WUR;

/*
 * Join a thread's open write transaction: while db_join(db, conn) is in
 * force on the thread that began conn with db_write_begin, the store's own
 * write operations called on that thread, each of which is otherwise a
 * transaction of its own, run inside conn instead (their begin and commit
 * do nothing; a failure is returned and the caller undoes it, e.g. with a
 * savepoint).  The engine joins the group-commit transaction for the
 * writes handed to it (engine_group_write), so those operations commit
 * with many others.  Events they append go through chain (the joiner's
 * cache of the last event, db_events.h; may be NULL), which stays right
 * for the joiner's own appends after.  Reads through db_read_begin do not
 * see what conn has not committed yet.  db_unjoin() ends it; not nested.
 */
struct db_event_chain;
void db_join(struct db *db, struct db_conn *conn, struct db_event_chain *chain);
void db_unjoin(void);

/*
 * A part of a write transaction that can fail alone: db_savepoint_begin
 * marks the point; db_savepoint_end(conn, rc, err) keeps what was written
 * since when rc is AS_OK (returning the release's result) and otherwise
 * undoes it and returns rc unchanged, the transaction going on either way.
 * Not nested.  The engine runs each write it group-commits for others
 * (engine_write_submit) in one.
 */
enum as_code db_savepoint_begin(struct db_conn *conn, struct as_err *err) AS_WUR;
enum as_code db_savepoint_end(struct db_conn *conn, enum as_code rc, struct as_err *err) AS_WUR;

/* The backend's name, "SQLite" or "PostgreSQL" (static). */
const char *db_backend_name(const struct db *db);

/* Whether the store answers, in constant time (a trivial query on a read
 * connection): for health checks. */
enum as_code db_ping(struct db *db, struct as_err *err) AS_WUR;

#endif
