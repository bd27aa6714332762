/*
 * wakeups.c - wake-ups between nodes on PostgreSQL (contract in
 * db/db_nodes.h): a thread with a connection of its own LISTENs on
 * PG_WAKEUP_CHANNEL and calls the caller's wake() for each burst of
 * notifications.  The writers' side is db.c: a write transaction that made
 * work due (db_conn.notify_due: a new, resumed, retried or released step
 * execution) NOTIFYs at commit, so a node learns of it in a round trip
 * instead of at its next poll.
 *
 * The connection is only for this: it never runs a transaction, so
 * notifications reach it as soon as they are committed.  When it fails it
 * is reopened after a pause (1 s, doubling to 30 s), and wake() is called
 * once it is back, since a notification may have been missed meanwhile.
 * Stopping writes a byte to a pipe the thread polls beside the socket.
 */
#include "db/postgres/pg.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000

struct db_wakeups {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    struct db *db;
    void (*wake)(void *ud);
    void *ud;
    int stop_pipe[2];
    pthread_t thread;
    PGconn *pg;
};

/* Open the listening connection; 0 on success. */
static int listen_open(struct db_wakeups *w)
{
    struct as_err err = {0};
    if (pg_connect(w->db, &w->pg, &err) != AS_OK) {
        LOG_WARN("db", "wake-ups from other nodes: %s (polling meanwhile)", err.msg);
        return -1;
    }
    PGresult *r = PQexec(w->pg, "LISTEN " PG_WAKEUP_CHANNEL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        LOG_WARN("db", "wake-ups from other nodes: LISTEN failed: %s (polling meanwhile)",
                 PQresultErrorMessage(r));
    PQclear(r);
    if (!ok || PQsetnonblocking(w->pg, 1) != 0) {
        PQfinish(w->pg);
        w->pg = NULL;
        return -1;
    }
    return 0;
}

/* Wait up to timeout_ms (-1: for ever) for the socket (fd >= 0) or a stop;
 * 1 when asked to stop. */
static int wait_for(struct db_wakeups *w, int fd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = w->stop_pipe[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR)
        LOG_WARN("db", "wake-ups: poll: %s", strerror(errno));
    return n > 0 && (p[0].revents & (POLLIN | POLLHUP));
}

static void *wakeups_main(void *arg)
{
    struct db_wakeups *w = arg;
    int retry_ms = RETRY_FIRST_MS;
    for (;;) {
        if (!w->pg) {
            if (listen_open(w) != 0) {
                if (wait_for(w, -1, retry_ms))
                    break;
                retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
                continue;
            }
            if (retry_ms != RETRY_FIRST_MS)
                LOG_INFO("db", "wake-ups from other nodes: listening again");
            retry_ms = RETRY_FIRST_MS;
            w->wake(w->ud); /* anything committed while we were not listening */
        }
        int fd = PQsocket(w->pg);
        if (fd >= 0 && wait_for(w, fd, -1))
            break;
        if (fd < 0 || !PQconsumeInput(w->pg) || PQstatus(w->pg) != CONNECTION_OK) {
            LOG_WARN("db", "wake-ups from other nodes: connection lost: %s",
                     PQerrorMessage(w->pg));
            PQfinish(w->pg);
            w->pg = NULL;
            continue;
        }
        int woken = 0;
        PGnotify *n;
        while ((n = PQnotifies(w->pg)) != NULL) {
            woken = 1;
            PQfreemem(n);
        }
        if (woken)
            w->wake(w->ud);
    }
    return NULL;
}

enum as_code db_pg_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                                 struct db_wakeups **out, struct as_err *err)
{
    *out = NULL;
    struct db_wakeups *w = calloc(1, sizeof *w);
    if (!w)
        return as_errf(err, AS_ENOMEM, "out of memory");
    w->head.backend = &db_pg_backend;
    w->db = db;
    w->wake = wake;
    w->ud = ud;
    if (pipe2(w->stop_pipe, O_CLOEXEC) != 0) {
        free(w);
        return as_errf(err, AS_EIO, "wake-ups: pipe: %s", strerror(errno));
    }
    /* The first connection now, so that a wrong setting shows at start. */
    listen_open(w);
    if (pthread_create(&w->thread, NULL, wakeups_main, w) != 0) {
        PQfinish(w->pg);
        close(w->stop_pipe[0]);
        close(w->stop_pipe[1]);
        free(w);
        return as_errf(err, AS_ENOMEM, "wake-ups: cannot start a thread");
    }
    *out = w;
    return AS_OK;
}

void db_pg_wakeups_stop(struct db_wakeups *w)
{
    if (!w)
        return;
    ssize_t n;
    do
        n = write(w->stop_pipe[1], "x", 1);
    while (n < 0 && errno == EINTR);
    pthread_join(w->thread, NULL);
    PQfinish(w->pg);
    close(w->stop_pipe[0]);
    close(w->stop_pipe[1]);
    free(w);
}

/* ---- leaders -------------------------------------------------------------------- */

struct db_leader {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    struct db *db;
    PGconn *pg;
    int held;
};

/* The advisory lock key of a role: "assent" in the high bytes, FNV-1a of
 * the role in the low ones, so it stays clear of other applications' keys. */
static long long leader_key(const char *role)
{
    uint32_t h = 2166136261u;
    for (const char *p = role; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (long long)((0x6173736eULL << 32) | h);
}

/* Run a one-row query on l's connection: its result, or NULL with err set. */
static PGresult *leader_query(struct db_leader *l, const char *sql, struct as_err *err)
{
    PGresult *r = PQexec(l->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        as_errf(err, AS_EDB, "leader: %s", PQerrorMessage(l->pg));
        PQclear(r);
        return NULL;
    }
    return r;
}

enum as_code db_pg_leader_try(struct db *db, struct db_leader **lp, const char *role, int *leader,
                              struct as_err *err)
{
    struct db_leader *l = *lp;
    *leader = 0;
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l)
            return as_errf(err, AS_ENOMEM, "out of memory");
        l->head.backend = &db_pg_backend;
        l->db = db;
        *lp = l;
    }
    if (l->pg && (PQstatus(l->pg) != CONNECTION_OK || l->db != db)) {
        PQfinish(l->pg); /* the session is gone (or another store's), and the lock with it */
        l->pg = NULL;
        l->held = 0;
    }
    l->db = db;
    if (!l->pg) {
        enum as_code rc = pg_connect(db, &l->pg, err);
        if (rc) {
            l->pg = NULL;
            return rc;
        }
    }
    char sql[128];
    if (l->held)
        snprintf(sql, sizeof sql, "SELECT 1"); /* still our session, so still our lock */
    else
        snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", leader_key(role));
    PGresult *r = leader_query(l, sql, err);
    if (!r) {
        PQfinish(l->pg);
        l->pg = NULL;
        l->held = 0;
        return AS_EDB;
    }
    if (!l->held)
        l->held = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *leader = l->held;
    return AS_OK;
}

void db_pg_leader_release(struct db_leader *l)
{
    if (!l)
        return;
    PQfinish(l->pg); /* ends the session: the lock is free for another node */
    free(l);
}
