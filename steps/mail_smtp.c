/*
 * mail_smtp.c - SMTP transport through libESMTP (see mail_smtp.h).
 *
 * libESMTP pitfalls handled here (c-libraries.md B2):
 *  - smtp_start_session() succeeding says nothing about delivery: the
 *    reverse-path, message transfer and each recipient's status are read
 *    after, and mapped to accepted/rejected, transient/permanent;
 *  - auth-client.h comes before libesmtp.h (else smtp_auth_set_context is
 *    not declared), auth_client_init() runs once, PLAIN/LOGIN are enabled
 *    explicitly, and the OpenSSL password callback is set so nothing ever
 *    prompts on a terminal;
 *  - timeouts are milliseconds with Timeout_OVERRIDE_RFC2822_MINIMUM;
 *  - TLS (STARTTLS and implicit) is done by mail_tls_relay.c, not by
 *    libESMTP, whose STARTTLS stalls on TLS 1.3 post-handshake records and
 *    which has no implicit TLS; certificate verification is OpenSSL's and
 *    cannot be turned off;
 *  - libESMTP's connect() has no timeout, so a plain server is probed first
 *    with one (a black-holed server would otherwise hold a worker thread
 *    for minutes); the relay connects with a timeout itself.
 */
#include "steps/mail_smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "base/log.h"
#include "base/secret_file.h"
#include "steps/mail_tls_relay.h"

#define MAX_RECIPIENTS 500

/* ---- URL ----------------------------------------------------------------- */

enum as_code mail_smtp_parse_url(const char *url, struct mail_smtp_url *out, struct as_err *err)
{
    static const char expect[] =
        "expected smtp://host:port, smtp+starttls://host:port or smtps://host:port";
    const char *p;
    memset(out, 0, sizeof *out);
    if (!url || !*url)
        return as_errf(err, AS_EINVAL, "smtp_url is empty; %s", expect);
    if (strncasecmp(url, "smtp://", 7) == 0) {
        out->tls = MAIL_SMTP_PLAIN;
        out->port = 25;
        p = url + 7;
    } else if (strncasecmp(url, "smtp+starttls://", 16) == 0) {
        out->tls = MAIL_SMTP_STARTTLS;
        out->port = 587;
        p = url + 16;
    } else if (strncasecmp(url, "smtps://", 8) == 0) {
        out->tls = MAIL_SMTP_IMPLICIT;
        out->port = 465;
        p = url + 8;
    } else {
        return as_errf(err, AS_EINVAL, "smtp_url \"%s\": unknown scheme; %s", url, expect);
    }
    for (const char *q = p; *q; q++) {
        if (*q == '@')
            return as_errf(err, AS_EINVAL,
                           "smtp_url must not carry a user or password; use smtp_user and "
                           "smtp_password_file");
        if (*q == '/' && q[1] != '\0')
            return as_errf(err, AS_EINVAL, "smtp_url \"%s\": no path allowed; %s", url, expect);
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7F)
            return as_errf(err, AS_EINVAL, "smtp_url contains a space or control character");
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return as_errf(err, AS_EINVAL, "smtp_url \"%s\": missing ']'", url);
        if (host_end[1] == ':')
            port = host_end + 2;
        else if (host_end[1] != '\0' && host_end[1] != '/')
            return as_errf(err, AS_EINVAL, "smtp_url \"%s\": junk after ']'", url);
    } else {
        host_end = host + strcspn(host, ":/");
        if (*host_end == ':')
            port = host_end + 1;
    }
    size_t hl = (size_t)(host_end - host);
    if (hl == 0)
        return as_errf(err, AS_EINVAL, "smtp_url \"%s\": missing host; %s", url, expect);
    if (hl >= sizeof out->host)
        return as_errf(err, AS_EINVAL, "smtp_url: host name too long");
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    for (size_t i = 0; i < hl; i++) {
        char c = out->host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_'))
            return as_errf(err, AS_EINVAL, "smtp_url \"%s\": bad character in host", url);
    }
    if (out->tls == MAIL_SMTP_PLAIN && strchr(out->host, ':'))
        /* libESMTP splits "host:port" at the first colon. */
        return as_errf(err, AS_EINVAL,
                       "smtp_url \"%s\": an IPv6 address works only with smtp+starttls:// or "
                       "smtps://; for smtp:// use a host name",
                       url);
    if (port) {
        char *end;
        errno = 0;
        long n = strtol(port, &end, 10);
        if (errno || end == port || (*end && strcmp(end, "/") != 0) || n < 1 || n > 65535)
            return as_errf(err, AS_EINVAL, "smtp_url \"%s\": port must be 1-65535", url);
        out->port = (int)n;
    }
    return AS_OK;
}

static int is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

/* ---- process-wide libESMTP setup ----------------------------------------- */

static int no_password_cb(char *buf, int buflen, int rwflag, void *arg)
{
    /* We never load an encrypted key; answer "no password" instead of
     * letting OpenSSL prompt on the terminal. */
    (void)buf, (void)buflen, (void)rwflag, (void)arg;
    return 0;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libesmtp(void)
{
    auth_client_init();
    smtp_starttls_set_password_cb(no_password_cb, NULL);
}

/* ---- connect probe ------------------------------------------------------- */

/* Can host:port be reached within timeout_ms?  AS_ETRANSIENT if not. */
static enum as_code probe(const char *host, int port, long timeout_ms, struct as_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s: %s", host, gai_strerror(gai));
    int last_errno = ECONNREFUSED;
    enum as_code rc = AS_ETRANSIENT;
    for (struct addrinfo *a = res; a && rc; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            rc = AS_OK;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr;
            do
                pr = poll(&pfd, 1, (int)timeout_ms);
            while (pr < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 0)
                last_errno = ETIMEDOUT;
            else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                last_errno = errno;
            else if (soerr)
                last_errno = soerr;
            else
                rc = AS_OK;
        } else {
            last_errno = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (rc)
        as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: %s", host, port, strerror(last_errno));
    return rc;
}

/* ---- libESMTP callbacks -------------------------------------------------- */

struct auth_data {
    const char *user;
    char *password;
};

static int auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
    struct auth_data *a = arg;
    for (int i = 0; i < fields; i++) {
        if (request[i].flags & AUTH_USER)
            result[i] = (char *)a->user;
        else if (request[i].flags & AUTH_PASS)
            result[i] = a->password;
        else
            return 0; /* realm and the like: not configured */
    }
    return 1;
}

/* ---- outcome ------------------------------------------------------------- */

static json_t *recipient_json(const char *address, const smtp_status_t *s)
{
    int code = s ? s->code : 0;
    char reply[512];
    if (s && s->code)
        snprintf(reply, sizeof reply, "%d %s", s->code, s->text ? s->text : "");
    else
        snprintf(reply, sizeof reply, "not attempted");
    /* Server text ends in CRLF; keep the JSON tidy. */
    size_t n = strlen(reply);
    while (n && (reply[n - 1] == '\n' || reply[n - 1] == '\r' || reply[n - 1] == ' '))
        reply[--n] = '\0';
    return json_pack("{s:s, s:s, s:i, s:s}", "address", address, "status",
                     code >= 200 && code < 300 ? "accepted" : "rejected", "code", code, "reply",
                     reply);
}

static void status_text(const smtp_status_t *s, char *buf, size_t size)
{
    snprintf(buf, size, "%d %s", s->code, s->text ? s->text : "");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
}

/* Where libESMTP connects: a local TLS relay to the server (smtps://,
 * smtp+starttls://) or, for plain smtp://, the server itself once a probe
 * shows it answers. */
static enum as_code smtp_target(const struct mail_smtp_url *url, const char *ca_file,
                                long timeout, struct mail_tls_relay **relay, char *hostport,
                                size_t size, struct as_err *err)
{
    enum as_code rc;
    if (url->tls != MAIL_SMTP_PLAIN) {
        int local_port = 0;
        if ((rc = mail_tls_relay_start(url->host, url->port,
                                       url->tls == MAIL_SMTP_IMPLICIT ? MAIL_TLS_IMPLICIT
                                                                      : MAIL_TLS_STARTTLS,
                                       ca_file, timeout, relay, &local_port, err)))
            return rc;
        snprintf(hostport, size, "127.0.0.1:%d", local_port);
        return AS_OK;
    }
    if ((rc = probe(url->host, url->port, timeout, err)))
        return rc;
    snprintf(hostport, size, "%s:%d", url->host, url->port);
    return AS_OK;
}

/* A libESMTP session to hostport with every phase's timeout, its own
 * STARTTLS off (TLS is the relay's: see mail_tls_relay.h) and, when auth
 * is given, AUTH PLAIN with it (*authctx to destroy after the session). */
static enum as_code smtp_session(const char *hostport, long timeout, struct auth_data *auth,
                                 smtp_session_t *out, auth_context_t *authctx,
                                 struct as_err *err)
{
    smtp_session_t session = smtp_create_session();
    if (!session)
        return as_errf(err, AS_ENOMEM, "cannot create an SMTP session");
    *out = session;
    if (!smtp_set_server(session, hostport))
        return as_errf(err, AS_EINVAL, "SMTP server %s refused by libESMTP", hostport);
    static const int phases[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA,
                                 Timeout_TRANSFER, Timeout_DATA2};
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if (smtp_set_timeout(session, phases[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, timeout) <= 0)
            return as_errf(err, AS_EINVAL, "cannot set the SMTP timeout to %ld ms", timeout);
    smtp_starttls_enable(session, Starttls_DISABLED);
    if (auth) {
        *authctx = auth_create_context();
        if (!*authctx)
            return as_errf(err, AS_ENOMEM, "cannot create an AUTH context");
        auth_set_mechanism_flags(*authctx, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(*authctx, auth_interact, auth);
        smtp_auth_set_context(session, *authctx);
    }
    return AS_OK;
}

/* The message of the session: reverse path, recipients (their handles into
 * handles[]) and the text, borrowed until the session ends. */
static enum as_code smtp_envelope(smtp_session_t session, const char *from,
                                  const char *const *rcpts, size_t n_rcpt, const char *message,
                                  smtp_message_t *out, smtp_recipient_t *handles,
                                  struct as_err *err)
{
    smtp_message_t msg = smtp_add_message(session);
    if (!msg || !smtp_set_reverse_path(msg, from))
        return as_errf(err, AS_ENOMEM, "cannot set up the SMTP message");
    for (size_t i = 0; i < n_rcpt; i++) {
        handles[i] = smtp_add_recipient(msg, rcpts[i]);
        if (!handles[i])
            return as_errf(err, AS_ENOMEM, "cannot add recipient");
    }
    smtp_set_messagecb(msg, _smtp_message_str_cb, (void *)(uintptr_t)message);
    *out = msg;
    return AS_OK;
}

/* What the session's answers mean, once it has run. */
struct smtp_outcome {
    const struct mail_smtp_url *url;
    const char *from;
    int started;          /* smtp_start_session succeeded */
    char liberr[256];     /* libESMTP's error when it did not */
    const smtp_status_t *ts, *ms; /* the message's transfer status, the sender's */
    size_t n_ok, n_4xx, n_5xx, n_rcpt;
    const smtp_status_t *first_bad; /* the first recipient refused */
};

static enum as_code smtp_judge(const struct smtp_outcome *o, struct as_err *err)
{
    char reply[600];
    const smtp_status_t *ts = o->ts, *ms = o->ms;
    if (ts && ts->code >= 200 && ts->code < 300 && o->n_ok > 0)
        return AS_OK; /* delivered, even if the connection broke at QUIT */
    if (ms && ms->code >= 400) {
        status_text(ms, reply, sizeof reply);
        return as_errf(err, ms->code >= 500 ? AS_EPERMANENT : AS_ETRANSIENT,
                       "SMTP server refused the sender %s: %s", o->from, reply);
    }
    if (o->n_ok == 0 && o->n_4xx + o->n_5xx == o->n_rcpt) {
        /* Checked before DATA's answer: some clients send DATA anyway and
         * the server's "503 need RCPT" would hide the real refusals. */
        status_text(o->first_bad, reply, sizeof reply);
        return as_errf(err, o->n_4xx ? AS_ETRANSIENT : AS_EPERMANENT,
                       "SMTP server refused every recipient: %s", reply);
    }
    if (ts && ts->code >= 400) {
        status_text(ts, reply, sizeof reply);
        return as_errf(err, ts->code >= 500 ? AS_EPERMANENT : AS_ETRANSIENT,
                       "SMTP server refused the message: %s", reply);
    }
    if (!o->started)
        return as_errf(err, AS_ETRANSIENT, "SMTP session with %s:%d failed: %s", o->url->host,
                       o->url->port, o->liberr);
    if (ts && ts->code >= 200 && ts->code < 300)
        return AS_OK;
    /* No answer to DATA: the server hung up first (or refused AUTH and then closed). */
    return as_errf(err, AS_ETRANSIENT,
                   "SMTP server %s:%d closed the session before accepting the message",
                   o->url->host, o->url->port);
}

enum as_code mail_smtp_send(const struct mail_smtp_opts *opts, const char *from,
                            const char *const *rcpts, const char *message, json_t **recipients,
                            struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct mail_smtp_url url;
    smtp_session_t session = NULL;
    smtp_message_t msg = NULL;
    smtp_recipient_t handles[MAX_RECIPIENTS];
    auth_context_t authctx = NULL;
    struct auth_data auth = {NULL, NULL};
    struct mail_tls_relay *relay = NULL;
    json_t *list = NULL;
    size_t n_rcpt = 0;
    char hostport[300];

    *recipients = NULL;
    if ((rc = mail_smtp_parse_url(opts->url, &url, err)))
        return rc;
    while (rcpts[n_rcpt])
        n_rcpt++;
    if (n_rcpt == 0)
        return as_errf(err, AS_EINVAL, "no recipients");
    if (n_rcpt > MAX_RECIPIENTS)
        return as_errf(err, AS_ELIMIT, "more than %d recipients", MAX_RECIPIENTS);
    int use_auth = opts->user && *opts->user;
    if (use_auth && url.tls == MAIL_SMTP_PLAIN && !is_loopback(url.host))
        return as_errf(err, AS_EINVAL,
                       "SMTP AUTH over plain smtp:// would send the password in clear; use "
                       "smtp+starttls:// or smtps://");
    if (use_auth) {
        if (!opts->password_file || !*opts->password_file)
            return as_errf(err, AS_EINVAL, "smtp_user is set but smtp_password_file is not");
        if ((rc = secret_file_read(opts->password_file, 4096, 1, &auth.password, NULL, err)))
            return rc;
        auth.user = opts->user;
    }
    pthread_once(&init_once, init_libesmtp);

    long timeout = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
    if ((rc = smtp_target(&url, opts->ca_file, timeout, &relay, hostport, sizeof hostport, err)) ||
        (rc = smtp_session(hostport, timeout, use_auth ? &auth : NULL, &session, &authctx, err)) ||
        (rc = smtp_envelope(session, from, rcpts, n_rcpt, message, &msg, handles, err)))
        goto out;

    struct smtp_outcome o = {.url = &url, .from = from, .n_rcpt = n_rcpt};
    o.started = smtp_start_session(session);
    if (!o.started)
        smtp_strerror(smtp_errno(), o.liberr, sizeof o.liberr);
    o.ts = smtp_message_transfer_status(msg);
    o.ms = smtp_reverse_path_status(msg);
    list = json_array();
    if (!list) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_rcpt; i++) {
        const smtp_status_t *rs = smtp_recipient_status(handles[i]);
        json_array_append_new(list, recipient_json(rcpts[i], rs));
        int code = rs ? rs->code : 0;
        if (code >= 200 && code < 300)
            o.n_ok++;
        else if (code >= 400 && code < 500)
            o.n_4xx++;
        else if (code >= 500)
            o.n_5xx++;
        if ((code < 200 || code >= 300) && code && !o.first_bad)
            o.first_bad = rs;
    }
    rc = smtp_judge(&o, err);
    if (o.n_ok + o.n_4xx + o.n_5xx > 0 || rc == AS_OK) {
        *recipients = list;
        list = NULL;
    }
out:
    json_decref(list);
    if (session)
        smtp_destroy_session(session);
    if (authctx)
        auth_destroy_context(authctx);
    mail_tls_relay_stop(relay);
    secret_free(auth.password);
    return rc;
}
