/*
 * server.c - the libmicrohttpd daemon: limits, the three-call request
 * pattern with a capped body, dispatch to the route table, security
 * headers, access log, metrics, the per-request deadline reaper, and the
 * quiesce-then-stop shutdown (see server.h).
 */
#include "web/signin.h"
#include "web/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "db/db_approvals.h"
#include "engine/app.h"
#include "base/file.h"
#include "base/config.h"
#include "engine/engine.h"
#include "base/log.h"
#include "base/secret_file.h"
#include "base/timeutil.h"
#include "base/html.h"
#include "web/metrics.h"
#include "web/ratelimit.h"
#include "base/netaddr.h"
#include "web/routes.h"
#include "approvals/token.h"

#define REAPER_TICK_MS 250

/* A live connection, watched by the deadline reaper and the evictor. */
struct conn_track {
    int fd;
    int64_t phase_start; /* monotonic ms: connection accepted, or previous request finished */
    int busy;            /* a request is being handled (headers complete) */
    int handling;        /* busy, and past its body: the handler runs or the answer goes out */
    int shut;            /* already shut down (deadline, eviction or shutdown) */
    struct conn_track *prev, *next;
};

/* Per-request state (MHD's *con_cls), freed in on_completed. */
struct req_state {
    const struct web_route *route;
    char *body;
    size_t body_len;
    size_t body_cap; /* bytes allocated for the body, without its NUL */
    int64_t started; /* monotonic ms */
    int responded;
    int status;
    int too_large;   /* the body passed WEB_MAX_BODY: the rest is discarded, then 413 */
    char method[16];
    char log_path[192];
    char log_note[128];
    char client_addr[64];
    int https; /* TLS here, public_url https, or a trusted proxy's X-Forwarded-Proto */
    struct web_deferred *deferred; /* the handler's answer comes later (web_req_defer) */
};

/*
 * A deferred answer, shared by the connection and the thread doing the
 * work: freed (and its ud dropped) by whichever lets go of it last.
 */
struct web_deferred {
    pthread_mutex_t lock;
    int refs;       /* the connection's and the worker's */
    int suspended;  /* the connection is suspended, waiting for ready */
    int ready;      /* web_deferred_ready was called */
    int conn_gone;  /* on_completed: the connection is no more */
    struct MHD_Connection *conn;
    web_finish_fn finish;
    void (*drop)(void *ud);
    void *ud;
};

struct web_server {
    struct app *app;
    struct MHD_Daemon *daemon;
    struct ratelimit *rl;
    struct netaddr_list *trusted_proxies;
    int https; /* TLS on this listener, or public_url is https */
    struct web_metrics *metrics;
    unsigned char csrf_secret[CSRF_SECRET_LEN];
    char public_url[512];
    char public_origin[512];
    char *admin_token;
    char *tls_cert;
    char *tls_key;
    int64_t deadline_ms;
    int port;
    int tls; /* MHD_USE_TLS */

    pthread_mutex_t track_lock;
    pthread_cond_t track_cond;
    struct conn_track *tracks;
    int n_live;          /* tracked connections not yet shut down */
    int max_connections; /* web_max_connections: MHD's limit, and the evictor's */
    int n_evicted;       /* evictions not yet logged by the reaper */
    int stopping;
    int reaper_started;
    pthread_t reaper;
};

/* ---- deferred answers -------------------------------------------------- */

static void deferred_release(struct web_deferred *d)
{
    pthread_mutex_lock(&d->lock);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (!last)
        return;
    if (d->drop)
        d->drop(d->ud);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

struct web_deferred *web_req_defer(struct web_req *req, web_finish_fn finish,
                                   void (*drop)(void *ud), void *ud)
{
    struct req_state *rs = req->state;
    if (!rs || rs->deferred)
        return NULL;
    struct web_deferred *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->refs = 2;
    d->conn = req->mhd_conn;
    d->finish = finish;
    d->drop = drop;
    d->ud = ud;
    rs->deferred = d;
    return d;
}

void web_deferred_ready(struct web_deferred *d)
{
    pthread_mutex_lock(&d->lock);
    d->ready = 1;
    /* Suspended only once the handler has returned (on_request, under this
     * lock): before that, the answer is simply there when it looks. */
    if (d->suspended && !d->conn_gone)
        MHD_resume_connection(d->conn);
    pthread_mutex_unlock(&d->lock);
    deferred_release(d);
}

/* ---- small helpers ---------------------------------------------------- */

int web_parse_listen(const char *listen, char *host, size_t host_size, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hl;
    if (*listen == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -1;
        h = listen + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - listen);
    }
    if (hl == 0 || hl >= host_size)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int web_url_origin(const char *url, char *out, size_t out_size)
{
    const char *scheme_end = strstr(url, "://");
    if (!scheme_end)
        return -1;
    size_t sl = (size_t)(scheme_end - url);
    int https;
    if (sl == 4 && strncasecmp(url, "http", 4) == 0)
        https = 0;
    else if (sl == 5 && strncasecmp(url, "https", 5) == 0)
        https = 1;
    else
        return -1;
    const char *auth = scheme_end + 3;
    size_t al = strcspn(auth, "/?#");
    if (al == 0 || memchr(auth, '@', al))
        return -1;
    char hostport[300];
    if (al >= sizeof hostport)
        return -1;
    for (size_t i = 0; i < al; i++)
        hostport[i] = (char)tolower((unsigned char)auth[i]);
    hostport[al] = '\0';
    /* Drop the scheme's default port, as browsers do in Origin. */
    size_t hl = strlen(hostport);
    if (!https && hl > 3 && strcmp(hostport + hl - 3, ":80") == 0)
        hostport[hl - 3] = '\0';
    else if (https && hl > 4 && strcmp(hostport + hl - 4, ":443") == 0)
        hostport[hl - 4] = '\0';
    int n = snprintf(out, out_size, "%s://%s", https ? "https" : "http", hostport);
    return n > 0 && (size_t)n < out_size ? 0 : -1;
}

int web_body_check(const char *content_length, const char *transfer_encoding, int takes_body)
{
    return web_body_check_max(content_length, transfer_encoding, takes_body ? WEB_MAX_BODY : 0);
}

int web_body_check_max(const char *content_length, const char *transfer_encoding,
                       size_t max_body)
{
    if (content_length) {
        char *end;
        errno = 0;
        /* strtoull takes a sign and spaces: a plain number starts with a digit. */
        if (!isdigit((unsigned char)content_length[0]))
            return 400;
        unsigned long long n = strtoull(content_length, &end, 10);
        if (errno || end == content_length || *end)
            return 400;
        if (n > (unsigned long long)max_body)
            return 413;
        return 0;
    }
    return !max_body && transfer_encoding ? 413 : 0;
}

static void client_addr_text(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    char host[NI_MAXHOST];
    if (getnameinfo(sa, len, host, sizeof host, NULL, 0, NI_NUMERICHOST) != 0)
        return;
    const char *h = host;
    if (strncmp(h, "::ffff:", 7) == 0 && strchr(h + 7, '.'))
        h += 7; /* IPv4-mapped: one address, one rate-limit bucket */
    snprintf(out, size, "%s", h);
}

/* ---- response building (handler API) ---------------------------------- */

const char *web_req_header(const struct web_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->mhd_conn, MHD_HEADER_KIND, name);
}

const char *web_req_query(const struct web_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->mhd_conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
    int (*cb)(void *ud, const char *name, const char *value);
    void *ud;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_each *q = cls;
    return q->cb(q->ud, key, value) ? MHD_NO : MHD_YES;
}

int web_req_query_each(const struct web_req *req,
                       int (*cb)(void *ud, const char *name, const char *value), void *ud)
{
    struct query_each q = {cb, ud};
    return MHD_get_connection_values(req->mhd_conn, MHD_GET_ARGUMENT_KIND, query_each_cb, &q);
}

void web_resp_take(struct web_resp *resp, int status, const char *content_type, char *body,
                   size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = body;
    resp->body_len = body ? len : 0;
}

void web_resp_textf(struct web_resp *resp, int status, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        web_resp_take(resp, 500, "text/plain; charset=utf-8", NULL, 0);
    else
        web_resp_take(resp, status, "text/plain; charset=utf-8", text, (size_t)n);
}

void web_resp_html(struct web_resp *resp, int status, struct html_buf *page)
{
    size_t len = 0;
    char *p = html_buf_take(page, &len);
    if (!p) {
        static const char oom[] = "<!DOCTYPE html><title>Error</title><p>The page could not be built.</p>";
        char *copy = strdup(oom);
        web_resp_take(resp, 500, "text/html; charset=utf-8", copy, copy ? sizeof oom - 1 : 0);
        return;
    }
    web_resp_take(resp, status, "text/html; charset=utf-8", p, len);
}

void web_resp_json(struct web_resp *resp, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(body);
    if (!text) {
        web_resp_take(resp, 500, "application/json", strdup("{\"error\":\"out of memory\"}"), 25);
        return;
    }
    size_t n = strlen(text);
    web_resp_take(resp, status, "application/json", text, n);
}

const char *web_status_code(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 409: return "conflict";
    case 413: return "too_large";
    case 415: return "unsupported_media_type";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    default: return status >= 500 ? "internal" : "error";
    }
}

void web_resp_error(struct web_resp *resp, int status, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    web_resp_json(resp, status,
                  json_pack("{s:{s:s, s:s}}", "error", "code", code ? code : web_status_code(status),
                            "message", message));
}

void web_resp_page(struct web_resp *resp, int status, const char *title, const char *message)
{
    struct html_buf b = {0};
    html_page_begin(&b, title);
    html_raw(&b, "<h1>");
    html_text(&b, title);
    html_raw(&b, "</h1>\n<p>");
    html_text(&b, message);
    html_raw(&b, "</p>\n");
    html_page_end(&b);
    web_resp_html(resp, status, &b);
}

void web_resp_header(struct web_resp *resp, const char *name, const char *value)
{
    if (resp->n_headers >= WEB_MAX_HEADERS || strpbrk(name, "\r\n") || strpbrk(value, "\r\n"))
        return;
    struct web_header *h = &resp->headers[resp->n_headers++];
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->value, sizeof h->value, "%s", value);
}

struct ratelimit *web_server_ratelimit(struct web_server *ws)
{
    return ws->rl;
}

const unsigned char *web_server_csrf_secret(struct web_server *ws, size_t *len)
{
    *len = sizeof ws->csrf_secret;
    return ws->csrf_secret;
}

const char *web_server_public_url(struct web_server *ws)
{
    return ws->public_url;
}

const char *web_server_public_origin(struct web_server *ws)
{
    return ws->public_origin;
}

const char *web_server_admin_token(struct web_server *ws)
{
    return ws->admin_token;
}

struct web_metrics *web_server_metrics(struct web_server *ws)
{
    return ws->metrics;
}

int web_server_tls(const struct web_server *ws)
{
    return ws->tls;
}

int web_server_port(const struct web_server *ws)
{
    return ws->port;
}

/* ---- sending ------------------------------------------------------------ */

static int is_api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/healthz") == 0;
}

/* An error in the style of the path: JSON for the API, a page otherwise. */
static void error_resp(struct web_resp *resp, const char *path, int status, const char *title,
                       const char *message)
{
    if (is_api_path(path)) {
        web_resp_error(resp, status, NULL, "%s", message);
    } else {
        web_resp_page(resp, status, title, message);
    }
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct req_state *rs,
                                 struct web_resp *resp)
{
    if (resp->status < 100 || resp->status > 599) {
        LOG_ERROR("web", "handler of %s left no response", rs->log_path);
        web_resp_page(resp, 500, "Internal error", "The server could not answer this request.");
    }
    struct MHD_Response *r;
    if (resp->body)
        r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(resp->body);
        resp->body = NULL;
        return MHD_NO;
    }
    resp->body = NULL; /* MHD owns it now */
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(r, "Content-Security-Policy", resp->csp ? resp->csp : html_csp());
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    for (int i = 0; i < resp->n_headers; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    rs->responded = 1;
    rs->status = resp->status;
    snprintf(rs->log_note, sizeof rs->log_note, "%s", resp->log_note);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct req_state *rs,
                                  const char *path, int status, const char *title,
                                  const char *message)
{
    struct web_resp resp = {0};
    error_resp(&resp, path, status, title, message);
    if (status == 405 && rs->route) {
        char allow[64] = "";
        unsigned m = rs->route->methods;
        snprintf(allow, sizeof allow, "%s%s%s%s", m & WEB_GET ? "GET, " : "",
                 m & WEB_HEAD ? "HEAD, " : "", m & WEB_POST ? "POST, " : "",
                 m & WEB_DELETE ? "DELETE, " : "");
        size_t al = strlen(allow);
        if (al >= 2)
            allow[al - 2] = '\0';
        web_resp_header(&resp, "Allow", allow);
    }
    return send_resp(conn, rs, &resp);
}

/* ---- connection tracking, eviction and the deadline reaper ------------- */

/*
 * Slow clients (slowloris): connections that send their request headers a
 * byte at a time, or open a connection and send nothing, or sit idle
 * between keep-alive requests, each hold one of web_max_connections slots
 * until the request deadline ends them.  Enough of them, from enough
 * addresses to pass web_per_ip_connections, and libmicrohttpd 0.9.75 stops
 * accepting: at its connection limit a pool thread takes the listening
 * socket out of its poll set, so new requests (/healthz too) wait in the
 * kernel's backlog until a slot frees.
 *
 * So the server never stays at the limit while a slot is held by a
 * connection that is not being served: when a new connection brings the
 * count to web_max_connections, the connection that has waited longest
 * without a complete request is shut down (shutdown(2); MHD sees it end on
 * its next poll and closes it).  Connections whose request is being
 * handled, or whose answer is going out, are never chosen; a request
 * whose body is still arriving is chosen only when no connection is
 * waiting for headers or idle.  The newest connection is never its own
 * victim.  When the count reaches the limit while every connection was
 * busy, the reaper's next tick evicts once one of them has waited a full
 * tick without a request (a connection gets at least that long to send
 * its headers).
 */

/* The connection to give up for a new one, or NULL.  Caller holds track_lock. */
static struct conn_track *evict_pick(struct web_server *ws, const struct conn_track *spare,
                                     int64_t idle_before)
{
    struct conn_track *idle = NULL, *body = NULL;
    for (struct conn_track *t = ws->tracks; t; t = t->next) {
        if (t == spare || t->shut || t->fd < 0 || t->handling || t->phase_start > idle_before)
            continue;
        /* <=: the list runs newest first, so of connections that started
         * their wait in the same millisecond the one accepted first wins. */
        struct conn_track **best = t->busy ? &body : &idle;
        if (!*best || t->phase_start <= (*best)->phase_start)
            *best = t;
    }
    return idle ? idle : body;
}

/* Shut a connection down and stop counting it as live.  Caller holds track_lock. */
static void track_shut(struct web_server *ws, struct conn_track *t)
{
    /* shutdown(), not close(): MHD still owns the descriptor and sees the
     * connection end on its next read or write. */
    shutdown(t->fd, SHUT_RDWR);
    t->shut = 1;
    ws->n_live--;
}

/* Make room when the live count is at the limit.  Caller holds track_lock. */
static void evict_if_full(struct web_server *ws, const struct conn_track *spare,
                          int64_t idle_before)
{
    while (ws->n_live >= ws->max_connections) {
        struct conn_track *victim = evict_pick(ws, spare, idle_before);
        if (!victim)
            return;
        track_shut(ws, victim);
        ws->n_evicted++;
    }
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct web_server *ws = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_track *t = calloc(1, sizeof *t);
        *socket_context = t;
        if (!t)
            return; /* untracked: only the idle timeout applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        t->phase_start = time_mono_ms();
        pthread_mutex_lock(&ws->track_lock);
        if (!ws->tracks)
            pthread_cond_signal(&ws->track_cond); /* the reaper sleeps while there are none */
        t->next = ws->tracks;
        if (ws->tracks)
            ws->tracks->prev = t;
        ws->tracks = t;
        ws->n_live++;
        evict_if_full(ws, t, INT64_MAX);
        pthread_mutex_unlock(&ws->track_lock);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* MHD calls this before it closes the socket, and the reaper only
         * calls shutdown() under track_lock, so it never touches an fd
         * number that was already reused by another connection. */
        struct conn_track *t = *socket_context;
        if (!t)
            return;
        pthread_mutex_lock(&ws->track_lock);
        if (t->prev)
            t->prev->next = t->next;
        else
            ws->tracks = t->next;
        if (t->next)
            t->next->prev = t->prev;
        if (!t->shut)
            ws->n_live--;
        pthread_mutex_unlock(&ws->track_lock);
        free(t);
        *socket_context = NULL;
    }
}

static struct conn_track *conn_track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Count and log evictions (once per tick: an attack would flood the log). */
static void report_evicted(struct web_server *ws, int evicted)
{
    if (!evicted)
        return;
    metrics_evicted(ws->metrics, evicted);
    LOG_WARN("web", "at the limit of %d connections: closed %d connection(s) that waited "
             "longest without a request, to serve new ones", ws->max_connections, evicted);
}

/*
 * The housekeeping thread: every REAPER_TICK_MS while there are
 * connections it shuts down those past the per-request deadline, evicts
 * when the server sits at its connection limit (see above), and logs what
 * it and the evictor closed; without connections it sleeps.
 */
static void *reaper_main(void *arg)
{
    struct web_server *ws = arg;
    pthread_mutex_lock(&ws->track_lock);
    while (!ws->stopping) {
        if (!ws->tracks && !ws->n_evicted) {
            /* No connection to watch: no ticks until one comes (an idle
             * server costs no CPU). */
            pthread_cond_wait(&ws->track_cond, &ws->track_lock);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)REAPER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ws->track_cond, &ws->track_lock, &ts);
        if (ws->stopping)
            break;
        int64_t now = time_mono_ms();
        int killed = 0;
        for (struct conn_track *t = ws->tracks; t; t = t->next) {
            if (!t->shut && t->fd >= 0 && now - t->phase_start > ws->deadline_ms) {
                track_shut(ws, t);
                killed++;
            }
        }
        evict_if_full(ws, NULL, now - REAPER_TICK_MS);
        int evicted = ws->n_evicted;
        ws->n_evicted = 0;
        pthread_mutex_unlock(&ws->track_lock);

        for (int i = 0; i < killed; i++)
            metrics_deadline_kill(ws->metrics);
        if (killed)
            LOG_WARN("web", "closed %d connection(s) that exceeded the %lld ms request deadline",
                     killed, (long long)ws->deadline_ms);
        report_evicted(ws, evicted);

        pthread_mutex_lock(&ws->track_lock);
    }
    int evicted = ws->n_evicted; /* since the last tick */
    ws->n_evicted = 0;
    pthread_mutex_unlock(&ws->track_lock);
    report_evicted(ws, evicted);
    return NULL;
}

/* ---- the request callbacks --------------------------------------------- */

static void describe_path(const struct web_route *route, const char *url, char *out, size_t size)
{
    if (route && route->secret_tail) {
        const char *tail = url + strlen(route->path);
        if (*tail) {
            char hex[TOKEN_HASH_LEN + 1];
            token_hash(tail, hex);
            snprintf(out, size, "%s[sha256:%.12s]", route->path, hex);
            return;
        }
    }
    snprintf(out, size, "%.180s", url);
}

static int method_bit(const char *method)
{
    if (strcmp(method, "GET") == 0)
        return WEB_GET;
    if (strcmp(method, "HEAD") == 0)
        return WEB_HEAD;
    if (strcmp(method, "POST") == 0)
        return WEB_POST;
    if (strcmp(method, "DELETE") == 0)
        return WEB_DELETE;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct web_server *ws = cls;
    struct req_state *rs = *con_cls;

    if (!rs) {
        /* First call: headers are complete. */
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        *con_cls = rs;
        rs->started = time_mono_ms();
        snprintf(rs->method, sizeof rs->method, "%s", method);
        char peer[64];
        int fwd_https = 0;
        client_addr_text(conn, peer, sizeof peer);
        netaddr_client(ws->trusted_proxies, peer,
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"),
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Forwarded"),
                       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-Proto"),
                       rs->client_addr, sizeof rs->client_addr, &fwd_https);
        rs->https = ws->https || fwd_https;
        rs->route = web_route_find(url);
        describe_path(rs->route, url, rs->log_path, sizeof rs->log_path);
        struct conn_track *t = conn_track_of(conn);
        if (t) {
            pthread_mutex_lock(&ws->track_lock);
            t->busy = 1;
            pthread_mutex_unlock(&ws->track_lock);
        }
        if (!rs->route)
            return send_error(conn, rs, url, 404, "Not found", "There is no page at this address.");
        int bit = method_bit(method);
        if (!(bit & (int)rs->route->methods))
            return send_error(conn, rs, url, 405, "Method not allowed",
                              "This address does not accept that method.");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
        size_t max_body = web_route_max_body(rs->route);
        char too_large[128];
        snprintf(too_large, sizeof too_large,
                 "The request body is larger than this address accepts (%zu bytes).", max_body);
        switch (web_body_check_max(cl, te, max_body)) {
        case 400:
            return send_error(conn, rs, url, 400, "Bad request", "Invalid Content-Length.");
        case 413:
            return send_error(conn, rs, url, 413, "Request too large",
                              cl && max_body ? too_large : "This address takes no request body.");
        default:
            break;
        }
        if (cl && max_body) {
            /* Room for the announced body at once (it is at most max_body). */
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > 0 && !(rs->body = malloc((size_t)n + 1)))
                return send_error(conn, rs, url, 503, "Busy", "The server is out of memory.");
            rs->body_cap = rs->body ? (size_t)n : 0;
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rs->responded)
            return MHD_YES; /* discarding after an early answer */
        if (time_mono_ms() - rs->started > ws->deadline_ms)
            return send_error(conn, rs, url, 408, "Request timeout",
                              "The request took too long to arrive.");
        if (rs->too_large)
            return MHD_YES;
        if (!rs->route->takes_body || rs->body_len + n > web_route_max_body(rs->route)) {
            /* A chunked body has no Content-Length to refuse up front, and
             * libmicrohttpd 0.9.75 cannot queue an answer in the middle of
             * an upload (the connection would just close): drop what came,
             * discard the rest (the request deadline bounds it) and answer
             * 413 at the end, before any token or origin check. */
            free(rs->body);
            rs->body = NULL;
            rs->body_len = 0;
            rs->body_cap = 0;
            rs->too_large = 1;
            return MHD_YES;
        }
        if (rs->body_len + n > rs->body_cap) {
            char *nb = realloc(rs->body, rs->body_len + n + 1);
            if (!nb)
                return send_error(conn, rs, url, 503, "Busy", "The server is out of memory.");
            rs->body = nb;
            rs->body_cap = rs->body_len + n;
        }
        memcpy(rs->body + rs->body_len, upload_data, n);
        rs->body_len += n;
        rs->body[rs->body_len] = '\0';
        return MHD_YES;
    }

    struct conn_track *t = conn_track_of(conn);
    if (t) {
        /* The whole request is in: from here on it is served, never evicted. */
        pthread_mutex_lock(&ws->track_lock);
        t->handling = 1;
        pthread_mutex_unlock(&ws->track_lock);
    }
    if (rs->responded)
        return MHD_YES;
    if (rs->too_large)
        return send_error(conn, rs, url, 413, "Request too large",
                          "The request body is larger than this server accepts.");

    /* Final call: dispatch (or, resumed, finish a deferred answer). */
    struct web_req req = {
        .app = ws->app,
        .server = ws,
        .method = method,
        .path = url,
        .param = rs->route->prefix ? url + strlen(rs->route->path) : "",
        .body = rs->body ? rs->body : "",
        .body_len = rs->body_len,
        .client_addr = rs->client_addr,
        .https = rs->https,
        .now_ms = time_now_ms(),
        .mhd_conn = conn,
        .state = rs,
    };
    struct web_resp resp = {0};
    struct web_deferred *d = rs->deferred;
    if (!d) {
        rs->route->handler(&req, &resp);
        d = rs->deferred;
        if (d) {
            pthread_mutex_lock(&d->lock);
            int ready = d->ready;
            if (!ready) {
                MHD_suspend_connection(conn);
                d->suspended = 1;
            }
            pthread_mutex_unlock(&d->lock);
            if (!ready)
                return MHD_YES; /* on_request is called again after the resume */
        }
    }
    if (d) {
        pthread_mutex_lock(&d->lock);
        int ready = d->ready;
        pthread_mutex_unlock(&d->lock);
        if (!ready)
            return MHD_NO; /* resumed by the daemon's stop, not by the work: no answer */
        /* The work is done: the answer, on this web thread. */
        free(resp.body);
        memset(&resp, 0, sizeof resp);
        d->finish(&req, &resp, d->ud);
        rs->deferred = NULL;
        deferred_release(d);
    }
    return send_resp(conn, rs, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct web_server *ws = cls;
    struct req_state *rs = *con_cls;
    struct conn_track *t = conn_track_of(conn);
    if (t) {
        pthread_mutex_lock(&ws->track_lock);
        t->busy = 0;
        t->handling = 0;
        t->phase_start = time_mono_ms(); /* the next request's clock starts now */
        pthread_mutex_unlock(&ws->track_lock);
    }
    if (!rs)
        return;
    if (rs->deferred) {
        /* Ended before its answer: the worker's web_deferred_ready must not
         * touch the connection any more. */
        pthread_mutex_lock(&rs->deferred->lock);
        rs->deferred->conn_gone = 1;
        pthread_mutex_unlock(&rs->deferred->lock);
        deferred_release(rs->deferred);
        rs->deferred = NULL;
    }
    int64_t ms = time_mono_ms() - rs->started;
    int status = rs->responded ? rs->status : 0;
    metrics_http(ws->metrics, rs->route ? rs->route->name : "none", status);
    LOG_INFO("web", "%s %s %d %lldms from %s%s%s%s", rs->method, rs->log_path, status,
             (long long)ms, rs->client_addr, rs->log_note[0] ? " " : "", rs->log_note,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    free(rs->body);
    free(rs);
    *con_cls = NULL;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_WARN("web", "libmicrohttpd: %s", msg);
}
#pragma GCC diagnostic pop

/* ---- start and stop ------------------------------------------------------ */

static enum as_code read_plain_file(const char *path, char **out, struct as_err *err)
{
    return file_read(path, 1024 * 1024, out, NULL, err);
}

static void server_free(struct web_server *ws)
{
    if (!ws)
        return;
    while (ws->tracks) {
        struct conn_track *t = ws->tracks;
        ws->tracks = t->next;
        free(t);
    }
    ratelimit_free(ws->rl);
    netaddr_list_free(ws->trusted_proxies);
    metrics_free(ws->metrics);
    secret_free(ws->admin_token);
    free(ws->tls_cert);
    secret_free(ws->tls_key);
    OPENSSL_cleanse(ws->csrf_secret, sizeof ws->csrf_secret);
    pthread_mutex_destroy(&ws->track_lock);
    pthread_cond_destroy(&ws->track_cond);
    free(ws);
}

enum as_code web_server_start(struct app *app, struct web_server **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    const struct config *cfg = app->cfg;
    *out = NULL;
    struct web_server *ws = calloc(1, sizeof *ws);
    if (!ws)
        return as_errf(err, AS_ENOMEM, "out of memory");
    pthread_mutex_init(&ws->track_lock, NULL);
    pthread_cond_init(&ws->track_cond, NULL);
    ws->app = app;
    ws->deadline_ms = config_int(cfg, "web_timeout_seconds") * 1000;
    ws->max_connections = (int)config_int(cfg, "web_max_connections");

    const char *listen = config_str(cfg, "listen");
    char host[256];
    int port;
    if (web_parse_listen(listen, host, sizeof host, &port) != 0) {
        rc = as_errf(err, AS_EINVAL, "listen: \"%s\" is not address:port", listen);
        goto fail;
    }
    const char *public_url = config_str(cfg, "public_url");
    snprintf(ws->public_url, sizeof ws->public_url, "%s", public_url);
    size_t pl = strlen(ws->public_url);
    while (pl && ws->public_url[pl - 1] == '/')
        ws->public_url[--pl] = '\0';
    if (web_url_origin(ws->public_url, ws->public_origin, sizeof ws->public_origin) != 0) {
        rc = as_errf(err, AS_EINVAL, "public_url: \"%s\" is not an absolute http(s) URL",
                     public_url);
        goto fail;
    }

    rc = netaddr_list_parse(config_str(cfg, "trusted_proxies"), &ws->trusted_proxies, err);
    if (rc) {
        as_err_prefix(err, "trusted_proxies");
        goto fail;
    }
    ws->https = strncasecmp(ws->public_url, "https:", 6) == 0;
    ws->rl = ratelimit_new((int)config_int(cfg, "web_bad_token_limit"),
                           config_int(cfg, "web_bad_token_window_seconds") * 1000,
                           ws->trusted_proxies);
    ws->metrics = metrics_new();
    if (!ws->rl || !ws->metrics) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    rc = db_approvals_secret(app->db, "csrf", ws->csrf_secret, sizeof ws->csrf_secret, err);
    if (rc)
        goto fail;

    const char *admin_file = config_str(cfg, "admin_token_file");
    if (*admin_file) {
        size_t len = 0;
        rc = secret_file_read(admin_file, 4096, 1, &ws->admin_token, &len, err);
        if (rc)
            goto fail;
        if (len < 16) {
            rc = as_errf(err, AS_EINVAL, "admin_token_file %s: the token must be at least 16 characters",
                         admin_file);
            goto fail;
        }
    }

    /* Suspend/resume: a decision waits for the engine's commit without a
     * web thread (web_req_defer). */
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    const char *cert_file = config_str(cfg, "tls_cert_file");
    const char *key_file = config_str(cfg, "tls_key_file");
    if (*cert_file || *key_file) {
        if (!*cert_file || !*key_file) {
            rc = as_errf(err, AS_EINVAL, "TLS needs both tls_cert_file and tls_key_file");
            goto fail;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            rc = as_errf(err, AS_EUNSUPPORTED, "this libmicrohttpd was built without TLS");
            goto fail;
        }
        rc = read_plain_file(cert_file, &ws->tls_cert, err);
        if (rc)
            goto fail;
        size_t kl;
        rc = secret_file_read(key_file, 1024 * 1024, 0, &ws->tls_key, &kl, err);
        if (rc)
            goto fail;
        flags |= MHD_USE_TLS;
        ws->https = 1;
        ws->tls = 1;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        rc = as_errf(err, AS_EINVAL, "listen: cannot resolve \"%s\": %s", host, gai_strerror(gai));
        goto fail;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (flags & MHD_USE_TLS) {
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, ws->tls_cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, ws->tls_key};
    }
    errno = 0;
    ws->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, ws,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, ws, /* first, or MHD logs the rest itself */
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)config_int(cfg, "web_threads"),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ws->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config_int(cfg, "web_per_ip_connections"),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)config_int(cfg, "web_timeout_seconds"),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_CONN_MEMORY,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, ws,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, ws,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    int saved_errno = errno;
    freeaddrinfo(ai);
    if (!ws->daemon) {
        rc = as_errf(err, AS_EIO, "cannot listen on %s%s%s", listen, saved_errno ? ": " : "",
                     saved_errno ? strerror(saved_errno) : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ws->daemon, MHD_DAEMON_INFO_BIND_PORT);
    ws->port = di ? di->port : port;

    if (pthread_create(&ws->reaper, NULL, reaper_main, ws) != 0) {
        rc = as_errf(err, AS_EIO, "cannot start the deadline thread");
        goto fail;
    }
    ws->reaper_started = 1;
    LOG_INFO("web", "listening on %s (port %d)%s; links use %s", listen, ws->port,
             (flags & MHD_USE_TLS) ? " with TLS" : "", ws->public_url);
    if (!ws->admin_token)
        LOG_INFO("web", "no admin_token_file configured: the REST API and /metrics take the "
                        "tokens of `assent token create` only");
    *out = ws;
    return AS_OK;
fail:
    if (ws->daemon)
        MHD_stop_daemon(ws->daemon);
    server_free(ws);
    return rc;
}

void web_server_stop(struct web_server *ws, int grace_ms)
{
    if (!ws)
        return;
    MHD_socket lsock = MHD_quiesce_daemon(ws->daemon);
    /* Idle keep-alive connections would hold the count up until their
     * timeout: end them now; connections inside a request may finish. */
    int64_t until = time_mono_ms() + grace_ms;
    for (;;) {
        pthread_mutex_lock(&ws->track_lock);
        for (struct conn_track *t = ws->tracks; t; t = t->next)
            if (!t->busy && !t->shut && t->fd >= 0)
                track_shut(ws, t);
        pthread_mutex_unlock(&ws->track_lock);
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(ws->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!di || di->num_connections == 0 || time_mono_ms() >= until)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(ws->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    if (ws->reaper_started) {
        pthread_mutex_lock(&ws->track_lock);
        ws->stopping = 1;
        pthread_cond_signal(&ws->track_cond);
        pthread_mutex_unlock(&ws->track_lock);
        pthread_join(ws->reaper, NULL);
    }
    web_signin_shutdown();
    LOG_INFO("web", "stopped");
    server_free(ws);
}
