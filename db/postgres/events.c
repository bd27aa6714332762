/*
 * events.c - the PostgreSQL store's event log: appends and reads (contract
 * in db/db_events.h; the hash, appends of JSON and the verification of the
 * chain are db/events.c, the same on every backend).
 *
 * One chain across nodes.  Every append's hash covers the previous event's,
 * so appends must be serialised across all nodes writing to the database.
 * The first append of a write transaction locks the one row of event_chain
 * (SELECT ... FOR UPDATE, held until the transaction ends) and only then,
 * in a new statement and so a new READ COMMITTED snapshot, reads the newest
 * event: a transaction that waited for the lock sees what the one before
 * it committed.  The head then stays in the connection for the rest of the
 * transaction (nobody else can append meanwhile), so a batch of appends
 * costs one INSERT each.
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <string.h>

/* The head read by the first append of the current write transaction. */
struct chain_head {
    int64_t id;
    char hash[65];
};

static enum as_code lock_chain(struct db_conn *conn, struct chain_head *h, struct as_err *err)
{
    PGresult *r = pg_run(conn, "SELECT id FROM event_chain WHERE id = 1 FOR UPDATE", NULL,
                         "lock the event chain", err);
    if (!r)
        return AS_EDB;
    int locked = PQntuples(r) == 1;
    PQclear(r);
    if (!locked)
        return as_errf(err, AS_EDB, "lock the event chain: its row is missing");
    r = pg_run(conn, "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", NULL,
               "read event chain head", err);
    if (!r)
        return AS_EDB;
    h->id = 0;
    memcpy(h->hash, db_event_zero_hash, sizeof h->hash);
    if (PQntuples(r) == 1) {
        h->id = pg_i64(r, 0, 0);
        snprintf(h->hash, sizeof h->hash, "%s", pg_text(r, 0, 1));
    }
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                        int64_t run_id, int64_t exec_id, const char *type,
                                        const char *data, const char *data_digest, int64_t now,
                                        struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO events (id, run_id, exec_id, ts, type, data, prev_hash, hash) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    if (!db_event_type_ok(type))
        return as_errf(err, AS_EINVAL, "event type \"%.80s\" must be 1-64 of [a-z0-9._-]", type);
    if (!conn->in_write)
        return as_errf(err, AS_EINVAL, "an event is appended inside a write transaction");
    if (!data)
        data = "{}";
    /* The caller's chain cache is kept in step for its own use; the head
     * that counts is the connection's, read under the lock. */
    struct chain_head h;
    if (!conn->chain_locked) {
        enum as_code rc = lock_chain(conn, &h, err);
        if (rc)
            return rc;
        conn->chain_locked = 1;
        conn->chain_id = h.id;
        memcpy(conn->chain_hash, h.hash, sizeof conn->chain_hash);
    }
    char hash[65], digest[65];
    int64_t id = conn->chain_id + 1;
    if (!data_digest) {
        if (db_event_digest(data, digest))
            return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
        data_digest = digest;
    }
    if (db_event_hash(conn->chain_hash, id, run_id, exec_id, now, type, data_digest, hash))
        return as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
    struct pg_args a = {0};
    pg_arg_i64(&a, id);
    if (run_id)
        pg_arg_i64(&a, run_id);
    else
        pg_arg_text(&a, NULL);
    if (exec_id)
        pg_arg_i64(&a, exec_id);
    else
        pg_arg_text(&a, NULL);
    pg_arg_i64(&a, now);
    pg_arg_text(&a, type);
    pg_arg_text(&a, data);
    pg_arg_text(&a, conn->chain_hash);
    pg_arg_text(&a, hash);
    enum as_code rc = pg_do(conn, ins, &a, "append event", NULL, err);
    if (rc)
        return rc;
    conn->chain_id = id;
    memcpy(conn->chain_hash, hash, sizeof conn->chain_hash);
    if (chain) {
        chain->loaded = 1;
        chain->id = id;
        memcpy(chain->hash, hash, sizeof chain->hash);
    }
    return AS_OK;
}

/* Events are read in pages of this many (the log grows without bound). */
#define EVENT_PAGE 1000

struct events {
    db_event_cb cb;
    void *ud;
    int64_t last_id;
    int stopped;
};

static int event_row(void *ud, const PGresult *r, int i)
{
    struct events *e = ud;
    struct db_event_info ev = {
        .id = pg_i64(r, i, 0),
        .run_id = pg_i64(r, i, 1),
        .exec_id = pg_i64(r, i, 2),
        .ts = pg_i64(r, i, 3),
        .type = pg_text(r, i, 4),
        .data = pg_text(r, i, 5),
        .prev_hash = pg_text(r, i, 6),
        .hash = pg_text(r, i, 7),
    };
    e->last_id = ev.id;
    e->stopped = e->cb(e->ud, &ev);
    return e->stopped;
}

enum as_code db_pg_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                              struct as_err *err)
{
    static const char one[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events WHERE id > $1 AND run_id = $3 ORDER BY id LIMIT $2";
    static const char all[] = "SELECT id, run_id, exec_id, ts, type, data, prev_hash, hash "
                              "FROM events WHERE id > $1 ORDER BY id LIMIT $2";
    struct events e = {cb, ud, 0, 0};
    for (;;) {
        struct pg_args a = {0};
        pg_arg_i64(&a, e.last_id);
        pg_arg_i64(&a, EVENT_PAGE);
        if (run_id)
            pg_arg_i64(&a, run_id);
        PGresult *r = pg_run(conn, run_id ? one : all, &a, "read events", err);
        if (!r)
            return AS_EDB;
        int n = PQntuples(r);
        for (int i = 0; i < n && !e.stopped; i++)
            event_row(&e, r, i);
        PQclear(r);
        if (e.stopped || n < EVENT_PAGE)
            return AS_OK;
    }
}
