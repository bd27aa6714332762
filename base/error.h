/*
 * error.h - the one error enum of Assent, and an error context that carries a
 * human message next to the code (curl's CURLcode + error buffer pattern).
 *
 * Fallible functions return enum as_code and, where they take a struct as_err,
 * leave a message in it.  Library codes (SQLITE_*, CURLcode, MHD, smtp_errno)
 * are mapped at the module boundary, with the library's own text kept in the
 * message.
 */
#ifndef ASSENT_ERROR_H
#define ASSENT_ERROR_H

#include <stddef.h>

#define AS_WUR __attribute__((warn_unused_result))
#define AS_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum as_code {
    AS_OK = 0,
    AS_ENOMEM,       /* allocation failed */
    AS_EINVAL,       /* bad input: workflow, request, argument, config */
    AS_EIO,          /* file or socket I/O */
    AS_EDB,          /* SQLite error (message has the extended code) */
    AS_ENOTFOUND,    /* no such run, step, token, user, ... */
    AS_ECONFLICT,    /* state changed under us: already decided, duplicate */
    AS_EEXPIRED,     /* token or wait past its expiry */
    AS_EAUTH,        /* authentication or permission refused by a peer */
    AS_ETRANSIENT,   /* worth retrying: network error, 429, 5xx, 4xx SMTP */
    AS_EPERMANENT,   /* peer said no for good: 4xx HTTP, 5xx SMTP */
    AS_ETIMEOUT,     /* a deadline passed */
    AS_ECANCELLED,   /* stopped on request */
    AS_EUNSUPPORTED, /* not supported by this build or peer */
    AS_ELIMIT,       /* a size or rate cap was hit */
    AS_ECODE_MAX
};

/* An error code with its message.  Zero-initialise before use. */
struct as_err {
    enum as_code code;
    char msg[1024];
};

/* Static name of a code, e.g. "invalid input".  Never NULL. */
const char *as_strerror(enum as_code code);

/*
 * Record code and a printf-formatted message in err (which may be NULL) and
 * return code, so callers can write `return as_errf(err, AS_EINVAL, ...)`.
 * The message is truncated to fit; control characters are kept as given (the
 * logger escapes them).
 */
enum as_code as_errf(struct as_err *err, enum as_code code, const char *fmt, ...)
    AS_PRINTF(3, 4);

/* Prefix an existing message with more context: "ctx: old message". */
void as_err_prefix(struct as_err *err, const char *fmt, ...) AS_PRINTF(2, 3);

#endif
