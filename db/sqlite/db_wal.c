/*
 * db_wal.c - WAL checkpoints in a thread of their own (contract in
 * db_wal.h).
 */
#include "db/db_wal.h"
#include "db/sqlite/sqlite.h"

#include <pthread.h>
#include <stdlib.h>

#include "base/log.h"

/* Checkpoint once the log holds this many pages: SQLite's own default. */
#define CKPT_PAGES 1000
/* When the checkpointer has left at most this many frames, the writer copies
 * them itself after its next commit (see wal_hook). */
#define REST_FRAMES 256
/* Past this the writer checkpoints itself (passively) as SQLite would have:
 * a checkpointer that cannot keep up must not let the log grow without end. */
#define CKPT_WRITER_PAGES (16 * CKPT_PAGES)

struct db_checkpointer {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    struct db *db;
    sqlite3 *h; /* the checkpointer's own connection */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t cond;
    int due, stop, running;
    int gen;        /* log restarts seen by the hook */
    int last_pages; /* the log's size at the last commit */
    int done, done_gen; /* frames copied by the last checkpoint, in log `done_gen` */
};

/*
 * After every commit of the writer, in the committing thread, with the log's
 * size in pages: wake the checkpointer.  SQLite starts the log over only
 * when a write begins with the whole log copied, which a checkpointer
 * running beside a busy writer never achieves (the writer commits while it
 * copies).  So once the checkpointer has copied all but a little, the
 * writer copies that little itself, here: a fraction of a checkpoint's cost,
 * and the next write starts the log from its beginning.
 */
static int wal_hook(void *ud, sqlite3 *writer, const char *name, int n_pages)
{
    struct db_checkpointer *ck = ud;
    int finish = 0;
    pthread_mutex_lock(&ck->lock);
    if (n_pages < ck->last_pages)
        ck->gen++; /* the log started over */
    ck->last_pages = n_pages;
    if (n_pages >= CKPT_PAGES) {
        int done = ck->done_gen == ck->gen ? ck->done : 0;
        finish = !ck->running && done > 0 && n_pages - done <= REST_FRAMES;
        if (!finish && !ck->due && !ck->running) {
            ck->due = 1;
            pthread_cond_signal(&ck->cond);
        }
    }
    pthread_mutex_unlock(&ck->lock);
    if (finish || n_pages >= CKPT_WRITER_PAGES)
        sqlite3_wal_checkpoint_v2(writer, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

/* One passive checkpoint; returns the frames copied (-1 unknown). */
static int checkpoint(struct db_checkpointer *ck, int *left)
{
    int log = -1, done = -1;
    int r = sqlite3_wal_checkpoint_v2(ck->h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (r != SQLITE_OK && r != SQLITE_BUSY)
        LOG_WARN("db", "checkpoint: (%d) %s", r, sqlite3_errmsg(ck->h));
    *left = log >= 0 && done >= 0 ? log - done : -1;
    return done;
}

static void *ck_main(void *arg)
{
    struct db_checkpointer *ck = arg;
    pthread_setname_np(pthread_self(), "assent-ckpt");
    pthread_mutex_lock(&ck->lock);
    for (;;) {
        while (!ck->due && !ck->stop)
            pthread_cond_wait(&ck->cond, &ck->lock);
        if (ck->stop)
            break;
        ck->due = 0;
        ck->running = 1;
        int gen = ck->gen;
        pthread_mutex_unlock(&ck->lock);
        /* Each round copies what was committed when it began: a few rounds
         * shrink the rest to what the writer finishes cheaply. */
        int left = -1, done = -1;
        for (int round = 0; round < 4 && (left < 0 || left > REST_FRAMES); round++)
            done = checkpoint(ck, &left);
        pthread_mutex_lock(&ck->lock);
        ck->running = 0;
        ck->done = done;
        ck->done_gen = gen;
    }
    pthread_mutex_unlock(&ck->lock);
    int left;
    checkpoint(ck, &left);
    return NULL;
}

/* Install (ck) or remove (NULL: SQLite's automatic checkpoints again) the
 * writer's hook, holding the writer so no commit runs meanwhile. */
static enum as_code set_writer_hook(struct db *db, struct db_checkpointer *ck,
                                    struct as_err *err)
{
    struct db_conn *conn;
    enum as_code rc = db_sqlite_write_begin(db, &conn, err);
    if (rc)
        return rc;
    if (ck)
        sqlite3_wal_hook(db_conn_handle(conn), wal_hook, ck);
    else
        sqlite3_wal_autocheckpoint(db_conn_handle(conn), CKPT_PAGES);
    db_write_rollback(db);
    return AS_OK;
}

static void ck_free(struct db_checkpointer *ck)
{
    sqlite3_close(ck->h);
    pthread_mutex_destroy(&ck->lock);
    pthread_cond_destroy(&ck->cond);
    free(ck);
}

enum as_code db_sqlite_checkpointer_start(struct db *db, struct db_checkpointer **out,
                                          struct as_err *err)
{
    *out = NULL;
    struct db_checkpointer *ck = calloc(1, sizeof *ck);
    if (!ck)
        return as_errf(err, AS_ENOMEM, "out of memory");
    ck->head.backend = &db_sqlite_backend;
    ck->db = db;
    pthread_mutex_init(&ck->lock, NULL);
    pthread_cond_init(&ck->cond, NULL);
    enum as_code rc;
    if (sqlite3_open_v2(db_sqlite_path(db), &ck->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = as_errf(err, AS_EDB, "%s: %s", db_sqlite_path(db),
                     ck->h ? sqlite3_errmsg(ck->h) : "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(ck->h, 1);
    sqlite3_busy_timeout(ck->h, 10000);
    /* A connection learns that the database is in WAL mode on its first read;
     * until then a checkpoint through it does nothing. */
    if (sqlite3_exec(ck->h, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL) != SQLITE_OK) {
        rc = as_errf(err, AS_EDB, "%s: %s", db_sqlite_path(db), sqlite3_errmsg(ck->h));
        goto fail;
    }
    if (pthread_create(&ck->thread, NULL, ck_main, ck) != 0) {
        rc = as_errf(err, AS_ENOMEM, "cannot start the checkpoint thread");
        goto fail;
    }
    ck->thread_started = 1;
    rc = set_writer_hook(db, ck, err);
    if (rc)
        goto fail;
    *out = ck;
    return AS_OK;
fail:
    if (ck->thread_started) {
        pthread_mutex_lock(&ck->lock);
        ck->stop = 1;
        pthread_cond_signal(&ck->cond);
        pthread_mutex_unlock(&ck->lock);
        pthread_join(ck->thread, NULL);
    }
    ck_free(ck);
    return rc;
}

void db_sqlite_checkpointer_stop(struct db_checkpointer *ck)
{
    if (!ck)
        return;
    struct as_err err = {0};
    int unhooked = set_writer_hook(ck->db, NULL, &err) == AS_OK;
    pthread_mutex_lock(&ck->lock);
    ck->stop = 1;
    pthread_cond_signal(&ck->cond);
    pthread_mutex_unlock(&ck->lock);
    pthread_join(ck->thread, NULL);
    if (unhooked) {
        ck_free(ck);
        return;
    }
    /* The writer could not be taken (another process held the database for
     * the whole busy timeout) and still calls the hook with ck: keep ck (the
     * hook only sets a flag in it now) and give up its connection. */
    LOG_ERROR("db", "cannot hand checkpoints back to the writer: %s", err.msg);
    sqlite3_close(ck->h);
    ck->h = NULL;
}
