/*
 * db_wakeups.c - wake-ups from other processes' commits on SQLite
 * (db_nodes.h db_wakeups_start), so that an idle engine need not poll.
 *
 * In WAL mode every commit, by any process, writes the -wal file.  A
 * thread watches the database's folder with inotify for changes to that
 * file (a watch on the folder survives the file being removed and made
 * again) and calls wake.  When nobody writes, the thread sleeps in poll()
 * and costs nothing.
 *
 * The engine's own commits write the file too, and a watch costs the
 * kernel work on every write: so after a wake-up the watch is dropped for
 * BUSY_MS, then the thread wakes the engine once more (for what was written
 * meanwhile) and watches again.  While the store is busy the engine is thus
 * nudged every BUSY_MS, as it used to poll; while it is idle, any commit
 * from anywhere wakes it at once.
 */
#include "db/sqlite/sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define BUSY_MS 200

struct db_wakeups {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    void (*wake)(void *ud);
    void *ud;
    int in_fd, stop_fd, wd;
    char dir[PATH_MAX];
    char wal_name[NAME_MAX + 1]; /* the -wal file's name in the folder */
    pthread_t thread;
};

/* 1 when the events in buf (n bytes) touch the -wal file (or overflowed). */
static int touches_wal(const struct db_wakeups *w, const char *buf, ssize_t n)
{
    for (ssize_t off = 0; off < n;) {
        const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
        if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, w->wal_name) == 0))
            return 1;
        off += (ssize_t)(sizeof *ev + ev->len);
    }
    return 0;
}

/* Drain the inotify queue; 1 when the -wal file was written. */
static int drain(struct db_wakeups *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    ssize_t n;
    while ((n = read(w->in_fd, buf, sizeof buf)) > 0)
        hit |= touches_wal(w, buf, n);
    return hit;
}

/* Wait up to ms for the stop signal: 1 when it came. */
static int stop_within(const struct db_wakeups *w, int ms)
{
    struct pollfd p = {.fd = w->stop_fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
}

static void *watch_main(void *arg)
{
    struct db_wakeups *w = arg;
    pthread_setname_np(pthread_self(), "assent-wakeups");
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->in_fd, .events = POLLIN},
                                {.fd = w->stop_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            LOG_ERROR("db", "wake-ups: poll: %s; the engine polls instead", strerror(errno));
            return NULL;
        }
        if (fds[1].revents)
            return NULL;
        if (!drain(w))
            continue;
        w->wake(w->ud);
        /* Busy, likely with the engine's own commits: stop watching for a
         * while, then look once more and watch again. */
        inotify_rm_watch(w->in_fd, w->wd);
        drain(w);
        if (stop_within(w, BUSY_MS))
            return NULL;
        w->wd = inotify_add_watch(w->in_fd, w->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO);
        if (w->wd < 0) {
            LOG_ERROR("db", "wake-ups: cannot watch %s again: %s; the engine polls instead",
                      w->dir, strerror(errno));
            return NULL;
        }
        w->wake(w->ud);
    }
}

enum as_code db_sqlite_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                                     struct db_wakeups **out, struct as_err *err)
{
    *out = NULL;
    const char *path = db_sqlite_path(db);
    const char *slash = strrchr(path, '/');
    struct db_wakeups *w = calloc(1, sizeof *w);
    if (!w)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (slash)
        snprintf(w->dir, sizeof w->dir, "%.*s",
                 (int)(slash - path) > 0 ? (int)(slash - path) : 1, path);
    else
        snprintf(w->dir, sizeof w->dir, ".");
    w->head.backend = &db_sqlite_backend;
    w->wake = wake;
    w->ud = ud;
    w->stop_fd = -1;
    if (snprintf(w->wal_name, sizeof w->wal_name, "%s-wal", slash ? slash + 1 : path) >=
        (int)sizeof w->wal_name) {
        free(w);
        return as_errf(err, AS_EINVAL, "%s: name too long to watch", path);
    }
    w->in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->in_fd < 0 ||
        (w->wd = inotify_add_watch(w->in_fd, w->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO)) < 0 ||
        (w->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
        enum as_code rc = as_errf(err, AS_EIO, "%s: cannot watch for other processes' "
                                               "commits: %s", w->dir, strerror(errno));
        if (w->in_fd >= 0)
            close(w->in_fd);
        free(w);
        return rc;
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        close(w->in_fd);
        close(w->stop_fd);
        free(w);
        return as_errf(err, AS_ENOMEM, "cannot start the wake-up thread");
    }
    *out = w;
    return AS_OK;
}

void db_sqlite_wakeups_stop(struct db_wakeups *w)
{
    if (!w)
        return;
    uint64_t one = 1;
    if (write(w->stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
        LOG_ERROR("db", "wake-ups: cannot signal the thread to stop: %s", strerror(errno));
    pthread_join(w->thread, NULL);
    close(w->in_fd);
    close(w->stop_fd);
    free(w);
}
