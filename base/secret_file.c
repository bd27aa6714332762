/* secret_file.c - permission-checked secret files (see secret_file.h). */
#include "base/secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

enum as_code secret_file_read(const char *path, size_t max_size, int strip, char **out,
                              size_t *out_len, struct as_err *err)
{
    enum as_code rc = AS_OK;
    char *buf = NULL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return as_errf(err, AS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = as_errf(err, AS_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = as_errf(err, AS_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        rc = as_errf(err, AS_EINVAL,
                     "%s: refusing a secret file that group or others can access (mode %03o); "
                     "run: chmod 600 %s",
                     path, (unsigned)(st.st_mode & 0777), path);
        goto out;
    }
    if ((size_t)st.st_size > max_size) {
        rc = as_errf(err, AS_ELIMIT, "%s: larger than %zu bytes", path, max_size);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = as_errf(err, AS_EIO, "%s: short read", path);
            goto out;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (strip)
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    buf = NULL;
out:
    if (buf) {
        OPENSSL_cleanse(buf, (size_t)st.st_size);
        free(buf);
    }
    close(fd);
    return rc;
}

void secret_free(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

int secret_dir_warn(const char *dir, const char *what)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    if (!(st.st_mode & (S_IRGRP | S_IXGRP | S_IROTH | S_IXOTH)))
        return 0;
    LOG_WARN("files", "folder %s holding %s can be read by group or others (mode %03o); run: chmod 700 %s",
             dir, what, (unsigned)(st.st_mode & 0777), dir);
    return 1;
}
