/* mail_file.c - the file transport (see mail_file.h). */
#include "steps/mail_file.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0700 for the directories it creates. */
static enum as_code make_dirs(const char *dir, struct as_err *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0)
        return as_errf(err, AS_EINVAL, "mail_dir is empty");
    if (n >= sizeof path)
        return as_errf(err, AS_EINVAL, "mail_dir path too long");
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return as_errf(err, AS_EIO, "%s: cannot create directory: %s", path, strerror(errno));
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return as_errf(err, AS_EIO, "%s: not a directory", dir);
    return AS_OK;
}

static int safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}

/*
 * Group sync of the directory: the threads renaming messages into it at
 * the same time share each fsync() of it instead of one a message.  A
 * thread asks for a sync that starts after its rename: one thread syncs
 * for everyone who asked so far while the others wait for it; a failed
 * sync covers nobody, and the next asker tries again.  One directory at a
 * time shares (the process has one mail_dir); another syncs alone.
 */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cv = PTHREAD_COND_INITIALIZER;
static uint64_t sync_asked, sync_done;
static int sync_running;
static dev_t sync_dev;
static ino_t sync_ino;

static int dir_sync(int dfd, const struct stat *st)
{
    pthread_mutex_lock(&sync_mu);
    if (sync_asked && (sync_dev != st->st_dev || sync_ino != st->st_ino)) {
        pthread_mutex_unlock(&sync_mu);
        return fsync(dfd);
    }
    sync_dev = st->st_dev;
    sync_ino = st->st_ino;
    uint64_t mine = ++sync_asked;
    int r = 0;
    while (sync_done < mine) {
        if (sync_running) {
            pthread_cond_wait(&sync_cv, &sync_mu);
            continue;
        }
        sync_running = 1;
        uint64_t upto = sync_asked; /* everyone who renamed before this point */
        pthread_mutex_unlock(&sync_mu);
        r = fsync(dfd);
        int saved = errno;
        pthread_mutex_lock(&sync_mu);
        sync_running = 0;
        if (r == 0 && upto > sync_done)
            sync_done = upto;
        pthread_cond_broadcast(&sync_cv);
        if (r != 0) {
            errno = saved;
            break;
        }
    }
    pthread_mutex_unlock(&sync_mu);
    return r;
}

/*
 * This host's name as it appears in temporary file names: [A-Za-z0-9_-]
 * only, so that the dots around it delimit it.
 */
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_tag[64];

static void host_tag_init(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "localhost");
    size_t j = 0;
    for (const char *p = host; *p && j + 1 < sizeof host_tag; p++)
        host_tag[j++] = (safe_char(*p) && *p != '.' && *p != '@' && *p != '+') ? *p : '_';
    host_tag[j] = '\0';
}

const char *mail_file_host(void)
{
    pthread_once(&host_once, host_tag_init);
    return host_tag;
}

/*
 * Whether a directory entry is a temporary file that a process of this
 * host left behind: ".<name>.<host>.<pid>.<thread>.tmp" with our host, and
 * a pid that is ours (a previous process that had our pid: no thread of
 * ours has written here yet) or that no longer exists.
 */
static int stale_tmp(const char *entry, const char *host)
{
    size_t n = strlen(entry);
    if (entry[0] != '.' || n < 6 || strcmp(entry + n - 4, ".tmp") != 0)
        return 0;
    char buf[512];
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, entry, n - 4);
    buf[n - 4] = '\0';
    char *thread = strrchr(buf, '.');
    if (!thread || thread == buf)
        return 0;
    *thread = '\0';
    char *pid_s = strrchr(buf, '.');
    if (!pid_s || pid_s == buf)
        return 0;
    *pid_s++ = '\0';
    char *host_s = strrchr(buf, '.');
    if (!host_s || host_s == buf || strcmp(host_s + 1, host) != 0)
        return 0;
    char *end;
    errno = 0;
    long pid = strtol(pid_s, &end, 10);
    if (errno || *end || end == pid_s || pid <= 0)
        return 0;
    if (pid == (long)getpid())
        return 1;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/*
 * Remove the temporary files of dead processes of this host, once per
 * directory and process, before this process first writes there (so a
 * file with our own pid is a previous process's).  At most SWEPT_MAX
 * directories are remembered; further ones are not swept (sweeping them
 * on each write would remove our own threads' files).
 */
#define SWEPT_MAX 16
static pthread_mutex_t sweep_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    dev_t dev;
    ino_t ino;
} swept[SWEPT_MAX];
static int n_swept;

static void sweep_once(int dfd, const struct stat *st, const char *host)
{
    pthread_mutex_lock(&sweep_mu);
    if (n_swept == SWEPT_MAX) {
        pthread_mutex_unlock(&sweep_mu);
        return;
    }
    for (int i = 0; i < n_swept; i++)
        if (swept[i].dev == st->st_dev && swept[i].ino == st->st_ino) {
            pthread_mutex_unlock(&sweep_mu);
            return;
        }
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0)
        close(fd);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] == '.' && stale_tmp(e->d_name, host))
            unlinkat(dfd, e->d_name, 0); /* best effort: it is never read */
    if (d)
        closedir(d);
    if (d) {
        swept[n_swept].dev = st->st_dev;
        swept[n_swept].ino = st->st_ino;
        n_swept++;
    }
    pthread_mutex_unlock(&sweep_mu);
}

/* The directory, open for syncing; created first when missing. */
static enum as_code open_dir(const char *dir, int *dfd, struct stat *st, struct as_err *err)
{
    *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dfd < 0 && errno == ENOENT) {
        enum as_code rc = make_dirs(dir, err);
        if (rc)
            return rc;
        *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (*dfd < 0)
        return as_errf(err, AS_EIO, "%s: %s", dir, strerror(errno));
    if (fstat(*dfd, st) != 0) {
        close(*dfd);
        *dfd = -1;
        return as_errf(err, AS_EIO, "%s: %s", dir, strerror(errno));
    }
    return AS_OK;
}

enum as_code mail_file_write(const char *dir, const char *message_id, const char *message,
                             size_t len, char **path_out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    char name[256], final[4352], tmp[4400];
    int fd = -1, dfd = -1;
    struct stat dst;
    if (path_out)
        *path_out = NULL;

    size_t j = 0;
    for (const char *p = message_id; *p && j + 1 < sizeof name; p++) {
        if (*p == '<' || *p == '>')
            continue;
        name[j++] = safe_char(*p) ? *p : '_';
    }
    name[j] = '\0';
    if (j == 0 || name[0] == '.')
        return as_errf(err, AS_EINVAL, "cannot derive a file name from Message-ID");
    int n1 = snprintf(final, sizeof final, "%s/%s.eml", dir, name);
    int n2 = snprintf(tmp, sizeof tmp, "%s/.%s.%s.%ld.%lx.tmp", dir, name, mail_file_host(),
                      (long)getpid(),
                      (unsigned long)pthread_self());
    if (n1 < 0 || (size_t)n1 >= sizeof final || n2 < 0 || (size_t)n2 >= sizeof tmp)
        return as_errf(err, AS_EINVAL, "mail_dir path too long");
    if ((rc = open_dir(dir, &dfd, &dst, err)))
        return rc;
    sweep_once(dfd, &dst, host_tag);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = as_errf(err, AS_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, message + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = as_errf(err, AS_EIO, "%s: write: %s", tmp, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    /* The content on disk before the name: a reader never finds a part. */
    if (fsync(fd) != 0) {
        rc = as_errf(err, AS_EIO, "%s: fsync: %s", tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = as_errf(err, AS_EIO, "%s: close: %s", tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) != 0) {
        rc = as_errf(err, AS_EIO, "%s: rename: %s", final, strerror(errno));
        goto fail;
    }
    /* The name on disk before the send is recorded. */
    if (dir_sync(dfd, &dst) != 0) {
        rc = as_errf(err, AS_EIO, "%s: fsync of the directory: %s", final, strerror(errno));
        goto out;
    }
    if (path_out && !(*path_out = strdup(final)))
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    goto out;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    close(dfd);
    return rc;
}
