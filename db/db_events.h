/*
 * db_events.h - the event log: an append-only, hash-chained record of every
 * state change of runs and steps, and of what steps report (decisions, writes
 * to Microsoft 365, mail sent).  It is Assent's audit trail; `assent audit
 * verify` recomputes the chain.  Conventions as in db_runs.h.
 */
#ifndef ASSENT_DB_EVENTS_H
#define ASSENT_DB_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/*
 * (write) Append an event to the hash-chained log: hash = SHA-256(prev_hash
 * || "id|run_id|exec_id|ts|type|" || SHA-256(data)), digests in hex, data
 * the exact text stored (here: compact JSON with sorted keys).  run_id/exec_id 0 = none.  `type` is [a-z0-9._-]{1,64},
 * e.g. "approval.decided"; data may be NULL ({}); it is borrowed.  The
 * previous hash is read inside the transaction, so other processes may
 * append too.
 */
enum as_code db_event_append(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                             const char *type, const json_t *data, struct as_err *err) AS_WUR;

/*
 * (own transaction) Append one event that belongs to no run: an
 * administrative change made outside a run (a KPI evaluated or saved by
 * hand, a workflow stored), in a write transaction of its own.  data
 * (borrowed) names the actor.  Written once for every backend (db/events.c).
 */
enum as_code db_audit_append(struct db *db, const char *type, const json_t *data,
                             struct as_err *err) AS_WUR;

/* The same with data already as JSON text, stored and hashed exactly as given. */
enum as_code db_event_append_text(struct db_conn *conn, int64_t run_id, int64_t exec_id,
                                  const char *type, const char *data, int64_t now,
                                  struct as_err *err) AS_WUR;

/*
 * The chain's head carried through ONE write transaction, so that a batch of
 * appends reads it once (nobody else can append while the transaction holds
 * the write lock).  Zero it at the start of each transaction; it must not
 * outlive the transaction, nor be used while other code appends in it.
 */
struct db_event_chain {
    int loaded;
    int64_t id;
    char hash[65];
};

/*
 * db_event_append_text through a chain cache (chain may be NULL), with
 * data's digest from db_event_digest() computed beforehand (e.g. on another
 * thread) or NULL to compute it here.
 */
enum as_code db_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                     int64_t run_id, int64_t exec_id, const char *type,
                                     const char *data, const char *data_digest, int64_t now,
                                     struct as_err *err) AS_WUR;

/* Hex SHA-256 of an event's data text (NULL: "{}") into out; 0, or -1 on failure.
 * Thread-safe. */
int db_event_digest(const char *data, char out[65]);

struct db_event_info {
    int64_t id, run_id, exec_id, ts; /* run_id/exec_id 0 when none */
    const char *type, *data, *prev_hash, *hash;
};
typedef int (*db_event_cb)(void *ud, const struct db_event_info *ev);

/* Events of one run in order (run_id 0: every event). */
enum as_code db_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                           struct as_err *err) AS_WUR;

struct db_audit_report {
    int64_t n_events;     /* records read */
    int64_t bad_id;       /* 0: chain intact; else the first record that breaks it */
    char problem[512];    /* what is wrong with bad_id, for people */
    int64_t head_id;      /* last record and its hash: anchor these elsewhere to */
    char head_hash[65];   /* detect a truncated tail on a later verify */
};

/*
 * Recompute the chain from the first record.  The first record that was
 * altered, inserted, or follows deleted records is reported in rep->bad_id
 * with an explanation.  With anchor_id > 0 the record anchor_id must still
 * exist with hash anchor_hash (detects deletion of the newest records, which
 * a chain alone cannot).  Returns AS_OK whether or not the chain is intact;
 * errors are database errors only.
 */
enum as_code db_audit_verify(struct db_conn *conn, int64_t anchor_id, const char *anchor_hash,
                             struct db_audit_report *rep, struct as_err *err) AS_WUR;

#endif
