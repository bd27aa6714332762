/*
 * db_wal.h - WAL checkpoints off the write path.
 *
 * SQLite folds the write-ahead log back into the database file (a
 * checkpoint) in whichever connection commits when the log passes 1000
 * pages: one commit in every few dozen then copies megabytes and, unless
 * synchronous=OFF, waits for two fsyncs.  For the executor that commit is
 * the dispatcher's, the one writer every step waits on; measured on the
 * development machine, checkpoints took a third of its throughput.
 *
 * A checkpointer moves that work to a thread of its own with its own
 * connection: the writer's automatic checkpoints are turned off, and a hook
 * on the writer (called after each commit with the log's size) wakes the
 * thread once the log passes the same 1000 pages.  It runs PASSIVE
 * checkpoints, which never block the writer or readers.  Durability does not
 * change: a commit is durable when it is in the log (per `synchronous`); a
 * checkpoint only moves committed pages into the main file.
 */
#ifndef ASSENT_DB_WAL_H
#define ASSENT_DB_WAL_H

#include "db/db.h"
#include "base/error.h"

struct db_checkpointer;

/*
 * Open a second read-write connection to db's file, start the thread and
 * take over the writer's checkpoints.  One per db at a time.  Stop with
 * db_checkpointer_stop() before db_close().
 */
enum as_code db_checkpointer_start(struct db *db, struct db_checkpointer **out,
                                   struct as_err *err) AS_WUR;

/*
 * Give the writer its automatic checkpoints back, stop the thread after a
 * last checkpoint, close its connection and free ck.  Waits for a
 * checkpoint in progress.  NULL is fine.
 */
void db_checkpointer_stop(struct db_checkpointer *ck);

#endif
