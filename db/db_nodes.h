/*
 * db_nodes.h - several nodes on one database: heartbeats, by which a dead
 * node's claims are taken over before their leases end, and wake-ups, by
 * which one node's write that makes work due reaches the others at once
 * instead of at their next poll.
 *
 * A node is an engine (engine/engine.c), named by its lease owner
 * "host/pid/start-time" (base/lease_owner.h).  On PostgreSQL both are real
 * (docs/postgresql.md: the nodes table, LISTEN/NOTIFY); on SQLite, one
 * host, whose dead processes are recognised by their process ids and whose
 * writers are seen by polling, both do nothing.
 */
#ifndef ASSENT_DB_NODES_H
#define ASSENT_DB_NODES_H

#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/*
 * Node `owner` is alive (own transaction): until the database's clock has
 * passed its now plus timeout_ms, nobody takes over its claims unless their
 * leases end.  A node beats every third of its timeout or so.  timeout_ms
 * 0: the node leaves (a clean stop); its claims keep their leases.
 * *clock_ms (may be NULL) receives the database's clock at the beat (ms
 * since the epoch; on SQLite this host's), for warning about a clock that
 * is off.
 */
enum as_code db_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                               int64_t *clock_ms, struct as_err *err) AS_WUR;

struct db_wakeups;

/*
 * Call wake(ud) from a thread of the store's whenever another writer (a
 * node, or a command such as `assent run` or `assent decide`) committed
 * work that is due, or may be: a new step execution, a resumed or retried
 * one, a claim handed back.  Calls may be spurious and come in bursts; wake
 * must be quick and thread-safe (engine_wake).  PostgreSQL: LISTEN/NOTIFY;
 * should the listening connection fail it is reopened, and wake is called
 * once after it is (a wake-up may have been missed meanwhile).  SQLite:
 * inotify on the -wal file, which every commit writes (this process's own
 * too: after a call the watch rests 200 ms, then wake is called once more
 * and the watch resumes).  Callers keep polling, slowly, as the fallback.  Stop with db_wakeups_stop() before db_close().
 */
enum as_code db_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                              struct db_wakeups **out, struct as_err *err) AS_WUR;

/* Stop the thread, close its connection and free w.  NULL is fine. */
void db_wakeups_stop(struct db_wakeups *w);

struct db_leader;

/*
 * Become, or stay, the one leader of `role` (e.g. "scheduler") among the
 * processes sharing the database: *leader = 1 while this process holds it.
 * Call it again before each piece of leader's work (it also checks that the
 * leadership still holds).  *l is made on the first call; free it with
 * db_leader_release().
 * PostgreSQL: a session advisory lock on a connection of its own.  The lock
 * lives as long as that session: a node that dies, or whose connection
 * breaks, loses it at once, and the next try of another node gets it.  An
 * error (no connection) answers *leader = 0 and the error; the next call
 * connects again.
 * SQLite: always the leader (one host; concurrent schedulers on one file
 * are told apart by their claims, db_sched_claim).
 */
enum as_code db_leader_try(struct db *db, struct db_leader **l, const char *role, int *leader,
                           struct as_err *err) AS_WUR;

/* Give the leadership up (closes its connection) and free l.  NULL is fine. */
void db_leader_release(struct db_leader *l);

#endif
