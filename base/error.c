/* error.c - names for the error enum and the error-context helpers. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[AS_ECODE_MAX] = {
    [AS_OK] = "ok",
    [AS_ENOMEM] = "out of memory",
    [AS_EINVAL] = "invalid input",
    [AS_EIO] = "I/O error",
    [AS_EDB] = "database error",
    [AS_ENOTFOUND] = "not found",
    [AS_ECONFLICT] = "conflict",
    [AS_EEXPIRED] = "expired",
    [AS_EAUTH] = "not authorised",
    [AS_ETRANSIENT] = "temporary failure",
    [AS_EPERMANENT] = "permanent failure",
    [AS_ETIMEOUT] = "timed out",
    [AS_ECANCELLED] = "cancelled",
    [AS_EUNSUPPORTED] = "not supported",
    [AS_ELIMIT] = "limit exceeded",
};

const char *as_strerror(enum as_code code)
{
    if ((int)code < 0 || code >= AS_ECODE_MAX || !names[code])
        return "unknown error";
    return names[code];
}

enum as_code as_errf(struct as_err *err, enum as_code code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void as_err_prefix(struct as_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}
