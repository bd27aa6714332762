/*
 * secret_file.h - read a secret (password, client secret, private key) from a
 * file, refusing files that group or others can read, so a secret can never
 * silently sit world-readable on a shared host.
 */
#ifndef ASSENT_SECRET_FILE_H
#define ASSENT_SECRET_FILE_H

#include <stddef.h>

#include "base/error.h"

/*
 * Read the whole file at `path` (at most max_size bytes) into a new
 * NUL-terminated buffer; trailing CR/LF are stripped when strip is nonzero.
 * Fails with AS_EAUTH-free AS_EINVAL when the mode allows group/other access.
 * Caller frees *out with secret_free() (which wipes it).  The message in err
 * names the path, never the content.
 */
enum as_code secret_file_read(const char *path, size_t max_size, int strip, char **out,
                              size_t *out_len, struct as_err *err) AS_WUR;

/*
 * Log a warning when the existing folder `dir` (holding `what`, e.g. "the
 * database") can be read or searched by group or others, naming the folder,
 * its mode and the chmod that fixes it.  Returns 1 when it warned, 0 when the
 * folder is private or does not exist (nothing to say).  Never fails.
 */
int secret_dir_warn(const char *dir, const char *what);

/* Wipe and free a buffer from secret_file_read(); NULL is fine. */
void secret_free(char *s);

#endif
