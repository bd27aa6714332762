/*
 * mail_smtp.h - the SMTP transport, through libESMTP.
 *
 * One libESMTP session per call, on the caller's thread (libESMTP sessions
 * must never be shared between threads).  The server is given as a URL:
 *   smtp://host[:25]            plain SMTP (no AUTH unless host is loopback)
 *   smtp+starttls://host[:587]  STARTTLS required before anything else
 *   smtps://host[:465]          implicit TLS (RFC 8314), which libESMTP does
 *                               not speak itself: see mail_tls_relay.h
 * TLS always verifies the server certificate (system CAs plus smtp_ca_file)
 * and its host name; nothing turns that off.  AUTH PLAIN/LOGIN (and the
 * other SASL mechanisms libESMTP offers) use smtp_user and the password
 * read from smtp_password_file for each send.
 */
#ifndef ASSENT_MAIL_SMTP_H
#define ASSENT_MAIL_SMTP_H

#include <jansson.h>

#include "base/error.h"

enum mail_smtp_tls { MAIL_SMTP_PLAIN, MAIL_SMTP_STARTTLS, MAIL_SMTP_IMPLICIT };

struct mail_smtp_url {
    enum mail_smtp_tls tls;
    char host[256]; /* name or address, without brackets */
    int port;
};

/*
 * Parse and validate an smtp_url.  AS_EINVAL with a message that says what
 * is wrong and what is expected (scheme, host, port 1-65535; no user or
 * password in the URL, no path).
 */
enum as_code mail_smtp_parse_url(const char *url, struct mail_smtp_url *out,
                                 struct as_err *err) AS_WUR;

struct mail_smtp_opts {
    const char *url;           /* smtp_url */
    const char *user;          /* smtp_user; NULL or "" = no AUTH */
    const char *password_file; /* smtp_password_file (required with user) */
    const char *ca_file;       /* smtp_ca_file; NULL or "" = system CAs only */
    long timeout_ms;           /* per SMTP command (and for connecting) */
};

/*
 * Send `message` (RFC 5322 text with CRLF line ends; borrowed) with
 * envelope sender `from` to the addr-specs in `rcpts` (NULL-terminated).
 *
 * *recipients (always set when the server was reached, else NULL; new
 * reference) is an array of {"address", "status": "accepted"|"rejected",
 * "code", "reply"} in rcpts order.  Returns AS_OK when the server accepted
 * the message for at least one recipient.  Otherwise:
 *   AS_ETRANSIENT  connection refused/dropped/timed out, 4xx to MAIL or
 *                  DATA, or every recipient refused with at least one 4xx
 *   AS_EPERMANENT  5xx to MAIL or DATA, every recipient refused with 5xx,
 *                  TLS certificate not trusted or not for this host,
 *                  STARTTLS not offered
 *   AS_EINVAL      bad URL, AUTH over plain SMTP to a remote host, unusable
 *                  CA file or password file
 * err->msg carries the server's reply ("550 5.1.1 ...") where there is one;
 * never the password.
 */
enum as_code mail_smtp_send(const struct mail_smtp_opts *opts, const char *from,
                            const char *const *rcpts, const char *message, json_t **recipients,
                            struct as_err *err) AS_WUR;

#endif
