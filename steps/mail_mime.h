/*
 * mail_mime.h - build one Internet message (RFC 5322 + MIME) from UTF-8
 * parts: addresses, subject, a text and/or an HTML body.
 *
 * What comes out is safe to hand to any transport as is:
 *  - every line ends in CRLF and is at most 78 octets (headers are folded,
 *    bodies are quoted-printable or base64); only a single address longer
 *    than a line can pass 78, and nothing comes near the 998 limit;
 *  - non-ASCII subjects and display names become RFC 2047 encoded-words
 *    (UTF-8, "B" encoding), so the header block is 7-bit;
 *  - nothing taken from the caller can start a header of its own: CR, LF
 *    and other control characters are refused in addresses, and turned
 *    into spaces in the subject (so a template value cannot add a Bcc:);
 *  - a text+HTML message is multipart/alternative (text first, so that
 *    clients prefer the HTML); the boundary starts with "=_", which
 *    neither encoding can produce.
 *
 * Pure functions, no global state: thread-safe.
 */
#ifndef ASSENT_MAIL_MIME_H
#define ASSENT_MAIL_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Hard cap on a whole built message (and on each body given to the builder). */
#define MAIL_MIME_MAX_SIZE (8u * 1024 * 1024)

/* An address split into its display name (may be NULL) and addr-spec. */
struct mail_addr {
    char *name; /* UTF-8 display name without quotes, or NULL */
    char *addr; /* local@domain, ASCII */
};

/*
 * Parse "local@domain", "<local@domain>", "Name <local@domain>" or
 * "\"Name, Jr.\" <local@domain>" into *out (fields malloc'd; free with
 * mail_addr_clear()).  Refused with AS_EINVAL and a message naming the
 * problem: control characters (CR, LF, NUL...) anywhere, an addr-spec that
 * is not a plain dot-atom local part @ a host name or [literal], non-ASCII
 * in the address itself (SMTPUTF8 is not used), more than 64/254 octets.
 */
enum as_code mail_addr_parse(const char *in, struct mail_addr *out, struct as_err *err) AS_WUR;
void mail_addr_clear(struct mail_addr *a);

/* The domain part of a parsed addr-spec (borrowed from a->addr). */
const char *mail_addr_domain(const struct mail_addr *a);

struct mail_mime_in {
    const char *from;              /* address as accepted by mail_addr_parse */
    const char *const *to;         /* NULL-terminated; at least one */
    const char *const *cc;         /* NULL-terminated, or NULL */
    const char *reply_to;          /* or NULL */
    const char *subject;           /* UTF-8 (required; may be "") */
    const char *text;              /* UTF-8 text body, or NULL */
    const char *html;              /* UTF-8 HTML body, or NULL; one of text/html required */
    const char *message_id;        /* "<id@domain>" (see mail_mime_message_id) */
    int64_t date_ms;               /* Date header, ms since the epoch */
};

/*
 * Build the message.  *out is malloc'd, NUL-terminated, CRLF line ends;
 * *out_len its length.  AS_EINVAL for bad addresses, invalid UTF-8 or a
 * missing part (message names the field), AS_ELIMIT past MAIL_MIME_MAX_SIZE,
 * AS_ENOMEM.  The same input always gives the same bytes.
 */
enum as_code mail_mime_build(const struct mail_mime_in *in, char **out, size_t *out_len,
                             struct as_err *err) AS_WUR;

/*
 * The Message-ID for an idempotency key: "<" + first 32 hex digits of
 * SHA-256(key) + "@assent." + domain + ">", or 32 random hex digits from the
 * OS CSPRNG when key is NULL.  domain is lower-cased.  Fails (AS_ELIMIT)
 * only when out is too small (128 is always enough for a valid domain).
 */
enum as_code mail_mime_message_id(const char *key, const char *domain, char *out, size_t outsize,
                                  struct as_err *err) AS_WUR;

/* The Date header value for ms since the epoch: "Tue, 04 Feb 2025 10:00:00 +0000". */
void mail_mime_date(int64_t ms, char *out, size_t outsize);

/* Building blocks, exposed for tests.  Each returns a malloc'd NUL-terminated string or NULL (ENOMEM). */

/* Quoted-printable body (RFC 2045 6.7): line breaks in `in` (LF, CRLF or CR) become CRLF. */
char *mail_mime_qp(const char *in, size_t len);
/* Base64 body in lines of 76 characters, each ending in CRLF; line breaks normalised to CRLF first. */
char *mail_mime_base64_body(const char *in, size_t len);
/*
 * One unstructured header field, folded: "Name: value\r\n".  A value of
 * printable ASCII without "=?" is folded at spaces; anything else is sent
 * as encoded-words.  Control characters become spaces.  NULL also when value
 * is not valid UTF-8.
 */
char *mail_mime_header_text(const char *name, const char *value);

/* True when s (len bytes) is valid UTF-8 without overlongs or surrogates. */
int mail_mime_utf8_valid(const char *s, size_t len);

#endif
