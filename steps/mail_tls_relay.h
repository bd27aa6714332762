/*
 * mail_tls_relay.h - TLS for libESMTP's SMTP sessions, done by Assent.
 *
 * libESMTP 1.1 has no implicit TLS (smtps://, port 465), and its own
 * STARTTLS breaks on TLS 1.3 servers: a post-handshake record (a session
 * ticket) makes its poll loop wait for a reply to a command it has not yet
 * flushed, so the session stalls until the timeout and QUITs (seen about
 * one send in five against aiosmtpd; Postfix and Exchange send tickets
 * too).  So Assent opens the connection itself - plain SMTP up to and
 * including STARTTLS for smtp+starttls://, TLS from the first byte for
 * smtps:// - verifies the certificate chain and host name with OpenSSL,
 * and lets libESMTP talk plain SMTP to a private listener on 127.0.0.1
 * whose one connection a short-lived thread pumps through the TLS
 * connection.  For STARTTLS libESMTP is shown the server's original
 * greeting and then does its own EHLO inside TLS, as RFC 3207 requires.
 *
 * The listener accepts only a connection that comes from a socket of this
 * very process (it checks the peer address against the process's own
 * sockets), so another local user cannot slip in between and use the
 * authenticated-by-address path to the server.  It lives for one send.
 */
#ifndef ASSENT_MAIL_TLS_RELAY_H
#define ASSENT_MAIL_TLS_RELAY_H

#include <openssl/ssl.h>

#include "base/error.h"

struct mail_tls_relay;

/*
 * A client TLS context that trusts the system CAs plus ca_file (when not
 * NULL/""), verifies the peer during the handshake, TLS 1.2 minimum.  The
 * host name is checked per connection (see mail_tls_relay_start).  Loading
 * the system CA bundle costs ~30 ms, so the context is built once and
 * shared (thread-safe; rebuilt when ca_file's path, size or mtime change).
 * *out holds a reference: SSL_CTX_free() it.  AS_EINVAL when ca_file cannot
 * be loaded.
 */
enum as_code mail_tls_client_ctx(const char *ca_file, SSL_CTX **out, struct as_err *err) AS_WUR;

enum mail_tls_mode {
    MAIL_TLS_IMPLICIT, /* TLS from the first byte (smtps://) */
    MAIL_TLS_STARTTLS, /* greeting, EHLO, STARTTLS in clear, then TLS */
};

/*
 * Connect to host:port within timeout_ms, (for STARTTLS: read the greeting,
 * EHLO, require STARTTLS in the answer, send it), complete a verified TLS
 * handshake (system CAs plus ca_file when not NULL/""), and start relaying.
 * *local_port is the 127.0.0.1 port to give libESMTP.  Errors:
 * AS_ETRANSIENT (cannot connect, 4xx greeting or STARTTLS reply, handshake
 * broken off or timed out), AS_EPERMANENT (certificate not trusted or not
 * for host, STARTTLS not offered, 5xx reply, bytes injected after the
 * STARTTLS reply), AS_EINVAL (unusable ca_file).  The server's reply is in
 * err->msg.  Stop with mail_tls_relay_stop() in every case after success.
 */
enum as_code mail_tls_relay_start(const char *host, int port, enum mail_tls_mode mode,
                                  const char *ca_file, long timeout_ms,
                                  struct mail_tls_relay **out, int *local_port,
                                  struct as_err *err) AS_WUR;

/* Close both sides, join the thread, free everything.  NULL is fine. */
void mail_tls_relay_stop(struct mail_tls_relay *r);

#endif
