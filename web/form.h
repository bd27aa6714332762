/*
 * form.h - Assent's own parser for application/x-www-form-urlencoded bodies
 * (the approval form, the console's forms).  It replaces libmicrohttpd's post processor, where
 * that library's recent CVEs lived, with something small enough to read:
 *
 *   - the body is at most FORM_MAX_BODY bytes and FORM_MAX_FIELDS fields;
 *   - names are at most FORM_MAX_NAME bytes of [A-Za-z0-9_.-];
 *   - '+' is a space, %XX a byte; a bad escape, %00 or a value that is not
 *     valid UTF-8 is an error, as is a field given twice (which of two
 *     "decision" values would win is exactly the ambiguity an attacker
 *     wants).
 *
 * Errors come back as AS_EINVAL / AS_ELIMIT with a human message fit to
 * show to the sender (no echo of their data).
 */
#ifndef ASSENT_WEB_FORM_H
#define ASSENT_WEB_FORM_H

#include <stddef.h>

#include "base/error.h"

#define FORM_MAX_BODY (16 * 1024)
#define FORM_MAX_FIELDS 16
#define FORM_MAX_NAME 32

struct form;

/* Parse len bytes of body (need not be NUL-terminated).  Caller frees *out
 * with form_free(). */
enum as_code form_parse(const char *body, size_t len, struct form **out,
                        struct as_err *err) AS_WUR;

/* The same with other caps: at most max_body bytes and max_fields fields
 * (the console's forms: a selection of users, a workflow's text). */
enum as_code form_parse_max(const char *body, size_t len, size_t max_body, size_t max_fields,
                            struct form **out, struct as_err *err) AS_WUR;

/*
 * A multipart/form-data body (RFC 7578: a file sent by a form) into the
 * same fields: content_type is the request's header, whose boundary
 * parameter (1 to 70 characters) separates the parts; each part's name
 * (Content-Disposition: form-data; name="...") is checked as a field name
 * and its content, a file's included, kept as the value, which must be
 * valid UTF-8 without NUL (the console takes text files only).  The caps
 * of form_parse_max apply, and a part's headers are at most 1 KiB.
 * AS_EINVAL for anything malformed, AS_ELIMIT past a cap.
 */
enum as_code form_parse_multipart(const char *body, size_t len, const char *content_type,
                                  size_t max_body, size_t max_fields, struct form **out,
                                  struct as_err *err) AS_WUR;

/* The decoded value of field `name` (borrowed, valid while f lives), or NULL. */
const char *form_get(const struct form *f, const char *name);

/* Number of fields. */
size_t form_count(const struct form *f);

/* The name and value of field i (0 <= i < form_count, in the body's order),
 * borrowed; NULL when i is out of range. */
const char *form_name_at(const struct form *f, size_t i);
const char *form_value_at(const struct form *f, size_t i);

void form_free(struct form *f);

#endif
