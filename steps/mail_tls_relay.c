/*
 * mail_tls_relay.c - TLS for libESMTP through a private loopback relay (see
 * mail_tls_relay.h).
 *
 * The STARTTLS preamble and the TLS handshake are done before libESMTP
 * starts, on the caller's thread, so certificate and connection errors are
 * reported precisely.  The relay thread then accepts one connection from
 * this process, replays the greeting (STARTTLS), and copies bytes both ways
 * until either side closes or mail_tls_relay_stop() is called.
 */
#include "steps/mail_tls_relay.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define REPLY_MAX 8192

struct mail_tls_relay {
    char greeting[REPLY_MAX]; /* STARTTLS: the server's 220, shown to libESMTP */
    int listen_fd;
    int server_fd;
    int wake[2]; /* stop signal for the thread */
    SSL_CTX *ctx;
    SSL *ssl;
    long timeout_ms;
    pthread_t thread;
    int thread_started;
};

static enum as_code new_client_ctx(const char *ca_file, SSL_CTX **out, struct as_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    *out = NULL;
    if (!ctx)
        return as_errf(err, AS_ENOMEM, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ctx);
    if (ca_file && *ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return as_errf(err, AS_EINVAL, "smtp_ca_file %s: cannot load certificates", ca_file);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Hand non-application records (TLS 1.3 tickets) back to the relay's
     * poll loop instead of blocking inside SSL_read for data that may
     * never come. */
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    *out = ctx;
    return AS_OK;
}

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *ctx_cached;  /* one reference held by the cache */
static char ctx_ca[4096];    /* ca_file it was built with */
static struct stat ctx_ca_st;

enum as_code mail_tls_client_ctx(const char *ca_file, SSL_CTX **out, struct as_err *err)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    *out = NULL;
    if (!ca_file)
        ca_file = "";
    if (strlen(ca_file) >= sizeof ctx_ca)
        return as_errf(err, AS_EINVAL, "smtp_ca_file path too long");
    if (*ca_file && stat(ca_file, &st) != 0)
        return as_errf(err, AS_EINVAL, "smtp_ca_file %s: %s", ca_file, strerror(errno));
    pthread_mutex_lock(&ctx_lock);
    if (ctx_cached && strcmp(ctx_ca, ca_file) == 0 && st.st_size == ctx_ca_st.st_size &&
        st.st_mtim.tv_sec == ctx_ca_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == ctx_ca_st.st_mtim.tv_nsec && st.st_ino == ctx_ca_st.st_ino) {
        SSL_CTX_up_ref(ctx_cached);
        *out = ctx_cached;
        pthread_mutex_unlock(&ctx_lock);
        return AS_OK;
    }
    SSL_CTX *ctx = NULL;
    enum as_code rc = new_client_ctx(ca_file, &ctx, err);
    if (!rc) {
        /* Senders still using the old context hold their own reference. */
        SSL_CTX_free(ctx_cached);
        ctx_cached = ctx;
        snprintf(ctx_ca, sizeof ctx_ca, "%s", ca_file);
        ctx_ca_st = st;
        SSL_CTX_up_ref(ctx);
        *out = ctx;
    }
    pthread_mutex_unlock(&ctx_lock);
    return rc;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Non-blocking connect with a deadline; returns the (non-blocking) fd or -1 with errno. */
static int connect_timeout(const char *host, int port, long timeout_ms, char *why, size_t why_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(why, why_size, "%s", gai_strerror(gai));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int pr;
            do
                pr = poll(&p, 1, (int)timeout_ms);
            while (pr < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr)
                break;
            last = pr == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, why_size, "%s", strerror(last));
    return fd;
}

/* Is `peer` the local address of one of this process's own sockets? */
static int peer_is_ours(const struct sockaddr_in *peer)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end)
            continue;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname((int)fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family != AF_INET)
            continue;
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        found = a->sin_port == peer->sin_port && a->sin_addr.s_addr == peer->sin_addr.s_addr;

    }
    closedir(d);
    return found;
}

/* Accept the one connection libESMTP makes (ours only), or -1 at the deadline / stop. */
static int accept_ours(struct mail_tls_relay *r)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = r->timeout_ms - elapsed_ms(&t0);
        if (left <= 0)
            return -1;
        struct pollfd p[2] = {{.fd = r->listen_fd, .events = POLLIN},
                              {.fd = r->wake[0], .events = POLLIN}};
        int pr = poll(p, 2, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0 || p[1].revents)
            return -1;
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        int c = accept4(r->listen_fd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        if (pl == sizeof peer && peer.sin_family == AF_INET && peer_is_ours(&peer))
            return c;
        close(c); /* somebody else's connection: never relay it */
    }
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *relay_thread(void *arg)
{
    struct mail_tls_relay *r = arg;
    char buf[16384];
    int c = accept_ours(r);
    if (c < 0)
        return NULL;
    /* SMTP is a dialogue of short lines: without this, Nagle's algorithm
     * meets delayed ACKs and every exchange waits ~40 ms. */
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (r->greeting[0] && write_all(c, r->greeting, strlen(r->greeting)) != 0) {
        close(c);
        return NULL;
    }
    for (;;) {
        /* Records already decrypted inside OpenSSL do not show on the fd. */
        int pending = SSL_pending(r->ssl) > 0;
        struct pollfd p[3] = {{.fd = c, .events = POLLIN},
                              {.fd = r->server_fd, .events = POLLIN},
                              {.fd = r->wake[0], .events = POLLIN}};
        int pr = pending ? 1 : poll(p, 3, -1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || p[2].revents)
            break;
        if (pending || p[1].revents) {
            int n = SSL_read(r->ssl, buf, sizeof buf);
            if (n > 0) {
                if (write_all(c, buf, (size_t)n) != 0)
                    break;
            } else {
                int e = SSL_get_error(r->ssl, n);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    break; /* server closed or TLS error */
            }
        }
        if (!pending && p[0].revents) {
            ssize_t n = read(c, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* libESMTP hung up */
            if (SSL_write(r->ssl, buf, (int)n) <= 0)
                break;
        }
    }
    close(c);
    return NULL;
}

/* ---- the STARTTLS preamble, in clear --------------------------------------- */

struct reader {
    char buf[REPLY_MAX];
    size_t len;
};

/*
 * Read one (multi-line) SMTP reply into out.  Returns the code, or -1 with
 * why set (closed, timed out, malformed, too long).  Bytes after the reply
 * stay in rd.
 */
static int read_reply(int fd, struct reader *rd, const struct timespec *t0, long timeout_ms,
                      char *out, size_t outsize, char *why, size_t whysize)
{
    size_t used = 0;
    out[0] = '\0';
    for (;;) {
        char *nl = memchr(rd->buf, '\n', rd->len);
        if (nl) {
            size_t n = (size_t)(nl - rd->buf) + 1;
            if (n < 4 || rd->buf[0] < '2' || rd->buf[0] > '5' || rd->buf[1] < '0' ||
                rd->buf[1] > '9' || rd->buf[2] < '0' || rd->buf[2] > '9' ||
                (n > 4 && rd->buf[3] != ' ' && rd->buf[3] != '-')) {
                snprintf(why, whysize, "malformed reply");
                return -1;
            }
            int last = n == 4 || rd->buf[3] == ' ' || rd->buf[3] == '\r';
            int code = (rd->buf[0] - '0') * 100 + (rd->buf[1] - '0') * 10 + (rd->buf[2] - '0');
            if (used + n + 1 > outsize) {
                snprintf(why, whysize, "reply too long");
                return -1;
            }
            memcpy(out + used, rd->buf, n);
            used += n;
            out[used] = '\0';
            memmove(rd->buf, rd->buf + n, rd->len - n);
            rd->len -= n;
            if (last)
                return code;
            continue;
        }
        if (rd->len == sizeof rd->buf) {
            snprintf(why, whysize, "reply line too long");
            return -1;
        }
        long left = timeout_ms - elapsed_ms(t0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            snprintf(why, whysize, "%s", pr == 0 ? "timed out" : strerror(errno));
            return -1;
        }
        ssize_t got = read(fd, rd->buf + rd->len, sizeof rd->buf - rd->len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            snprintf(why, whysize, "%s", got == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
        rd->len += (size_t)got;
    }
}

static int send_line(int fd, const char *line, const struct timespec *t0, long timeout_ms)
{
    size_t n = strlen(line), off = 0;
    while (off < n) {
        ssize_t w = write(fd, line + off, n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        long left = timeout_ms - elapsed_ms(t0);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
    }
    return 0;
}

/* The reply without its trailing CRLF, for error messages. */
static const char *tidy(char *reply)
{
    size_t n = strlen(reply);
    while (n && (reply[n - 1] == '\r' || reply[n - 1] == '\n'))
        reply[--n] = '\0';
    for (char *p = reply; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    return reply;
}

/* Does an EHLO reply list STARTTLS? */
static int offers_starttls(const char *reply)
{
    for (const char *line = reply; *line; ) {
        const char *kw = line + 4, *end = strchr(line, '\n');
        size_t n = strcspn(kw, " \r\n");
        if (strlen(line) > 4 && n == 8 && strncasecmp(kw, "STARTTLS", 8) == 0)
            return 1;
        if (!end)
            break;
        line = end + 1;
    }
    return 0;
}

static enum as_code starttls_preamble(struct mail_tls_relay *r, const char *host, int port,
                                      const struct timespec *t0, struct as_err *err)
{
    struct reader rd = {.len = 0};
    char reply[REPLY_MAX], why[128], ehlo[300], name[256];
    int code = read_reply(r->server_fd, &rd, t0, r->timeout_ms, r->greeting,
                          sizeof r->greeting, why, sizeof why);
    if (code < 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: greeting: %s", host, port, why);
    if (code != 220) {
        snprintf(reply, sizeof reply, "%s", r->greeting);
        return as_errf(err, code >= 500 ? AS_EPERMANENT : AS_ETRANSIENT,
                       "SMTP server %s:%d refused the connection: %s", host, port, tidy(reply));
    }
    if (gethostname(name, sizeof name) != 0 || !name[0])
        snprintf(name, sizeof name, "localhost");
    name[sizeof name - 1] = '\0';
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '-';
    snprintf(ehlo, sizeof ehlo, "EHLO %s\r\n", name);
    if (send_line(r->server_fd, ehlo, t0, r->timeout_ms) != 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: cannot send EHLO", host, port);
    code = read_reply(r->server_fd, &rd, t0, r->timeout_ms, reply, sizeof reply, why, sizeof why);
    if (code < 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: EHLO: %s", host, port, why);
    if (code >= 400 && code < 500)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: EHLO: %s", host, port,
                       tidy(reply));
    if (code != 250 || !offers_starttls(reply))
        return as_errf(err, AS_EPERMANENT,
                       "SMTP server %s does not offer STARTTLS, which smtp+starttls:// requires",
                       host);
    if (send_line(r->server_fd, "STARTTLS\r\n", t0, r->timeout_ms) != 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: cannot send STARTTLS", host, port);
    code = read_reply(r->server_fd, &rd, t0, r->timeout_ms, reply, sizeof reply, why, sizeof why);
    if (code < 0)
        return as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: STARTTLS: %s", host, port, why);
    if (code != 220)
        return as_errf(err, code >= 500 ? AS_EPERMANENT : AS_ETRANSIENT,
                       "SMTP server %s:%d refused STARTTLS: %s", host, port, tidy(reply));
    /* Anything already received now came before the handshake, i.e. in
     * clear, and would be taken as if it had been protected (the STARTTLS
     * command-injection attack, CVE-2011-0411): refuse. */
    if (rd.len > 0)
        return as_errf(err, AS_EPERMANENT,
                       "SMTP server %s:%d sent data in clear after its STARTTLS reply", host,
                       port);
    return AS_OK;
}

void mail_tls_relay_stop(struct mail_tls_relay *r)
{
    if (!r)
        return;
    if (r->thread_started) {
        if (write(r->wake[1], "x", 1) < 0) {
            /* The pipe is ours and empty; a failure here cannot happen short
             * of a closed fd, and the thread then ends on its own timeout. */
        }
        pthread_join(r->thread, NULL);
    }
    if (r->ssl) {
        SSL_shutdown(r->ssl); /* best-effort close_notify */
        SSL_free(r->ssl);
    }
    SSL_CTX_free(r->ctx);
    if (r->server_fd >= 0)
        close(r->server_fd);
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    ERR_clear_error();
    free(r);
}

enum as_code mail_tls_relay_start(const char *host, int port, enum mail_tls_mode mode,
                                  const char *ca_file, long timeout_ms,
                                  struct mail_tls_relay **out, int *local_port,
                                  struct as_err *err)
{
    enum as_code rc = AS_OK;
    char why[256] = "";
    struct mail_tls_relay *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return as_errf(err, AS_ENOMEM, "out of memory");
    r->listen_fd = r->server_fd = r->wake[0] = r->wake[1] = -1;
    r->timeout_ms = timeout_ms;

    if ((rc = mail_tls_client_ctx(ca_file, &r->ctx, err)))
        goto fail;

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r->server_fd = connect_timeout(host, port, timeout_ms, why, sizeof why);
    if (r->server_fd < 0) {
        rc = as_errf(err, AS_ETRANSIENT, "SMTP server %s:%d: %s", host, port, why);
        goto fail;
    }
    int one = 1;
    setsockopt(r->server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (mode == MAIL_TLS_STARTTLS && (rc = starttls_preamble(r, host, port, &t0, err)))
        goto fail;
    r->ssl = SSL_new(r->ctx);
    if (!r->ssl || SSL_set_fd(r->ssl, r->server_fd) != 1) {
        rc = as_errf(err, AS_ENOMEM, "cannot create a TLS connection");
        goto fail;
    }
    /* The certificate must name this host (RFC 6125 rules, IP SANs for
     * addresses); SNI for names. */
    X509_VERIFY_PARAM *param = SSL_get0_param(r->ssl);
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1) {
            rc = as_errf(err, AS_EINVAL, "cannot check certificates for %s", host);
            goto fail;
        }
    } else if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1 ||
               SSL_set_tlsext_host_name(r->ssl, host) != 1) {
        rc = as_errf(err, AS_EINVAL, "cannot check certificates for %s", host);
        goto fail;
    }

    for (;;) {
        int n = SSL_connect(r->ssl);
        if (n == 1)
            break;
        int e = SSL_get_error(r->ssl, n);
        long left = timeout_ms - elapsed_ms(&t0);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && left > 0) {
            struct pollfd p = {.fd = r->server_fd,
                               .events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
            if (poll(&p, 1, (int)left) >= 0 || errno == EINTR)
                continue;
        }
        long vr = SSL_get_verify_result(r->ssl);
        if (vr != X509_V_OK) {
            rc = as_errf(err, AS_EPERMANENT, "TLS certificate of %s refused: %s", host,
                         X509_verify_cert_error_string(vr));
        } else {
            unsigned long le = ERR_peek_last_error();
            char lib[200] = "connection closed";
            if (le)
                ERR_error_string_n(le, lib, sizeof lib);
            rc = as_errf(err, AS_ETRANSIENT, "TLS handshake with %s:%d failed: %s", host, port,
                         left <= 0 ? "timed out" : lib);
        }
        goto fail;
    }
    /* From here on the relay thread uses blocking I/O bounded by timeouts. */
    int fl = fcntl(r->server_fd, F_GETFL);
    if (fl < 0 || fcntl(r->server_fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        rc = as_errf(err, AS_EIO, "fcntl: %s", strerror(errno));
        goto fail;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(r->server_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(r->server_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = 0};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t ll = sizeof la;
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&la, sizeof la) != 0 ||
        listen(r->listen_fd, 4) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&la, &ll) != 0 ||
        pipe2(r->wake, O_CLOEXEC) != 0) {
        rc = as_errf(err, AS_EIO, "relay socket: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, relay_thread, r) != 0) {
        rc = as_errf(err, AS_EIO, "cannot start the TLS relay thread");
        goto fail;
    }
    r->thread_started = 1;
    *local_port = ntohs(la.sin_port);
    *out = r;
    return AS_OK;
fail:
    mail_tls_relay_stop(r);
    return rc;
}
