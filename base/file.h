/*
 * file.h - reading a whole file into memory, with a cap.  The one reader
 * of the workflow loader, the CLI's input files, the web server's TLS
 * files, the demo and the outbox page.
 */
#ifndef ASSENT_FILE_H
#define ASSENT_FILE_H

#include <stddef.h>

#include "base/error.h"

/*
 * Read the file at path into *out (malloc'd, NUL-terminated; *len, when not
 * NULL, its length without the NUL).  Errors: AS_EIO "cannot open PATH:
 * reason" or "cannot read PATH: reason"; AS_ELIMIT "PATH is larger than MAX
 * bytes" (nothing is returned of a file past max); AS_ENOMEM.
 */
enum as_code file_read(const char *path, size_t max, char **out, size_t *len,
                       struct as_err *err) AS_WUR;

#endif
