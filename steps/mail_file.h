/*
 * mail_file.h - the file transport: each message becomes one .eml file in
 * a directory (config mail_dir), readable by any mail client or by
 * `cat`.  It is the default transport, so a fresh install "sends" mail with
 * no server at all.
 *
 * The file name comes from the Message-ID, so sending the same message
 * again (a crash re-send) replaces the file instead of adding a second one.
 * Files are written to a temporary name, fsync'd and renamed, so a reader
 * never sees half a message, and the directory is fsync'd before the send
 * returns; threads renaming at the same time share that directory fsync.
 * A process killed while writing leaves its temporary file
 * (".<name>.<host>.<pid>.<thread>.tmp", hidden, never renamed): readers
 * skip it, and the first write of a later process of the same host to that
 * directory removes the temporary files of that host's processes that no
 * longer exist (another host's, on a shared directory, are left to it).
 * Messages may carry approval links, so the directory is created 0700 and
 * files 0600.
 */
#ifndef ASSENT_MAIL_FILE_H
#define ASSENT_MAIL_FILE_H

#include <stddef.h>

#include "base/error.h"

/*
 * Write message (len octets) as <dir>/<name>.eml, where name is message_id
 * without its angle brackets, characters other than [A-Za-z0-9._@+-]
 * replaced by '_'.  dir is created (with parents) when missing.
 * *path_out (may be NULL) receives the final path, malloc'd.
 * AS_EIO with the path and errno text on failure; thread-safe.
 */
enum as_code mail_file_write(const char *dir, const char *message_id, const char *message,
                             size_t len, char **path_out, struct as_err *err) AS_WUR;

/* This host's name as temporary file names carry it: [A-Za-z0-9_-]. */
const char *mail_file_host(void);

#endif
