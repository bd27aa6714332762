/* file.c - a whole file into memory (see file.h). */
#include "base/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum as_code file_read(const char *path, size_t max, char **out, size_t *len,
                       struct as_err *err)
{
    enum as_code rc = AS_OK;
    size_t n = 0, cap = 0;
    char *buf = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return as_errf(err, AS_EIO, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        if (n + 1 >= cap) {
            /* Room for max + 1 bytes at most: one byte past max tells a file too large. */
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > max + 2)
                ncap = max + 2;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) {
                rc = as_errf(err, AS_ENOMEM, "out of memory reading %s", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (n > max) {
            rc = as_errf(err, AS_ELIMIT, "%s is larger than %zu bytes", path, max);
            break;
        }
        if (got == 0) {
            if (ferror(f))
                rc = as_errf(err, AS_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return AS_OK;
}
