/* mail_file.c - the file transport (see mail_file.h). */
#include "steps/mail_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

enum as_code mail_file_write(const char *dir, const char *message_id, const char *message,
                             size_t len, char **path_out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    char name[256], final[4352], tmp[4400];
    int fd = -1;
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
    if ((rc = make_dirs(dir, err)))
        return rc;
    int n1 = snprintf(final, sizeof final, "%s/%s.eml", dir, name);
    int n2 = snprintf(tmp, sizeof tmp, "%s/.%s.%ld.%lx.tmp", dir, name, (long)getpid(),
                      (unsigned long)pthread_self());
    if (n1 < 0 || (size_t)n1 >= sizeof final || n2 < 0 || (size_t)n2 >= sizeof tmp)
        return as_errf(err, AS_EINVAL, "mail_dir path too long");

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return as_errf(err, AS_EIO, "%s: %s", tmp, strerror(errno));
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
    /* Make the rename itself durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0) {
            /* The file is complete; only its durability across a power
             * loss is in doubt, which a re-send would repair. */
        }
        close(dfd);
    }
    if (path_out) {
        *path_out = strdup(final);
        if (!*path_out)
            return as_errf(err, AS_ENOMEM, "out of memory");
    }
    return AS_OK;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}
