/*
 * engine_group.c - a caller's store writes in the dispatcher's group
 * commit (engine.h engine_group_write).
 *
 * The write is an engine_write whose apply joins the open transaction
 * (db_join) and calls the caller's function on the dispatcher's thread,
 * within the savepoint the dispatcher gives every write; the caller waits
 * for done, after the commit.  No connection changes threads, and the
 * caller's statements cost no thread switch of their own.
 */
#include <pthread.h>

#include "db/db.h"
#include "engine/engine.h"

struct group_write {
    struct engine_write w; /* first: apply and done get it */
    struct db *db;
    engine_group_fn fn;
    void *ud;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int applied; /* apply ran (in some transaction): fn is not run again */
    enum as_code rc;
    struct as_err err;
};

static enum as_code group_apply(struct engine_write *w, struct db_conn *conn,
                                struct db_event_chain *chain, struct as_err *err)
{
    struct group_write *g = (struct group_write *)w;
    g->applied = 1;
    db_join(g->db, conn, chain); /* their events through the dispatcher's chain cache */
    enum as_code rc = g->fn(g->db, g->ud, err);
    db_unjoin();
    return rc;
}

static void group_done(struct engine_write *w, enum as_code rc, const struct as_err *err)
{
    struct group_write *g = (struct group_write *)w;
    pthread_mutex_lock(&g->lock);
    g->rc = rc;
    if (rc && err)
        g->err = *err;
    g->done = 1;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

enum as_code engine_group_write(struct engine *e, struct db *db, engine_group_fn fn, void *ud,
                                struct as_err *err)
{
    struct group_write g = {.w = {.apply = group_apply, .done = group_done}, .db = db,
                            .fn = fn, .ud = ud};
    struct as_err serr = {0};
    g.w.ud = &g;
    pthread_mutex_init(&g.lock, NULL);
    pthread_cond_init(&g.cond, NULL);
    enum as_code rc = engine_write_submit(e, &g.w, &serr);
    if (rc == AS_OK) {
        pthread_mutex_lock(&g.lock);
        while (!g.done)
            pthread_cond_wait(&g.cond, &g.lock);
        pthread_mutex_unlock(&g.lock);
        rc = g.rc;
        if (rc)
            *err = g.err;
    }
    if (rc == AS_ECANCELLED && !g.applied) {
        /* No engine to take it (refused, or handed back unapplied as the
         * engine stopped): each of the store's writes on its own. */
        rc = fn(db, ud, err);
    }
    pthread_cond_destroy(&g.cond);
    pthread_mutex_destroy(&g.lock);
    return rc;
}
