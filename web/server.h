/*
 * server.h - Assent's embedded HTTP server (libmicrohttpd 0.9.75): the
 * daemon with its limits, the request/response types handlers work with,
 * and start/stop.  Routes live in one table in web/routes.c.
 *
 * Limits (all from the configuration):
 *   - web_max_connections, web_per_ip_connections: MHD connection limits;
 *   - web_timeout_seconds: MHD's idle timeout AND an absolute deadline per
 *     request (headers + body + handler): a reaper thread shuts down the
 *     socket of any connection whose current request has run longer, so a
 *     client trickling one byte every few seconds cannot hold a slot;
 *   - request headers must fit in WEB_CONN_MEMORY bytes (MHD answers 431);
 *   - a body is accepted only by routes that take one, up to WEB_MAX_BODY
 *     bytes (WEB_API_MAX_BODY for the REST API; 413 otherwise: before
 *     reading it when Content-Length says so, after discarding it when
 *     chunked; always before token or origin checks).
 *
 * Handlers run on MHD's thread pool (web_threads), concurrently: they may
 * read and write SQLite (short transactions) but never block on SMTP or
 * outbound HTTP.  Every response carries the security headers (CSP,
 * Referrer-Policy: no-referrer, nosniff, no-store, frame denial).
 *
 * Links in pages and mails are built from public_url, never from the Host
 * header.  Client addresses are the socket peer (X-Forwarded-For is not
 * trusted).
 */
#ifndef ASSENT_WEB_SERVER_H
#define ASSENT_WEB_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define WEB_MAX_BODY (16 * 1024)
#define WEB_API_MAX_BODY (1024 * 1024) /* JSON bodies of /api/v1/ */
#define WEB_CONN_MEMORY (32 * 1024)
#define WEB_MAX_HEADERS 8

struct app;
struct web_server;
struct html_buf;
struct ratelimit;

/* One request as a handler sees it.  Everything is borrowed for the call. */
struct web_req {
    struct app *app;
    struct web_server *server;
    const char *method;      /* "GET", "HEAD", "POST", ... */
    const char *path;        /* URL path without the query */
    const char *param;       /* prefix routes: the rest of the path after the prefix; else "" */
    const char *body;        /* NUL-terminated; "" when none */
    size_t body_len;
    const char *client_addr; /* the client: the socket peer, or behind a trusted proxy
                              * (config trusted_proxies) the address it forwards */
    int https;               /* the client came over https: TLS here, an https public_url,
                              * or a trusted proxy's X-Forwarded-Proto (cookies: Secure) */
    int64_t now_ms;          /* time_now_ms() when the handler was called */
    void *mhd_conn;          /* private to server.c */
    void *state;             /* private to server.c */
};

struct web_header {
    char name[48];
    char value[512];
};

/* The response a handler fills.  The server sends it and frees body. */
struct web_resp {
    int status;               /* 0 = the handler forgot: 500 */
    const char *content_type; /* static string */
    char *body;               /* malloc'd, owned by the response */
    size_t body_len;
    struct web_header headers[WEB_MAX_HEADERS];
    int n_headers;
    char log_note[128];       /* appended to the access log line, e.g. "approval=12" */
    const char *csp;          /* static Content-Security-Policy; NULL: html_csp() */
};

/* Value of request header `name` (case-insensitive), borrowed, or NULL. */
const char *web_req_header(const struct web_req *req, const char *name);

/* Value of query argument `name`, borrowed, or NULL. */
const char *web_req_query(const struct web_req *req, const char *name);

/* Call cb with the name of each query argument (value may be NULL), until
 * it returns nonzero.  Returns the number of arguments visited. */
int web_req_query_each(const struct web_req *req,
                       int (*cb)(void *ud, const char *name, const char *value), void *ud);

/* Set status and take ownership of body (malloc'd; NULL = empty). */
void web_resp_take(struct web_resp *resp, int status, const char *content_type, char *body,
                   size_t len);

/* Plain text response built from a format. */
void web_resp_textf(struct web_resp *resp, int status, const char *fmt, ...) AS_PRINTF(3, 4);

/* HTML response from a page buffer (taken; 500 page when the buffer failed). */
void web_resp_html(struct web_resp *resp, int status, struct html_buf *page);

/* JSON response; steals `body` (a new reference). */
void web_resp_json(struct web_resp *resp, int status, json_t *body);

/* A complete small HTML page "title" + message (escaped) with the status. */
void web_resp_page(struct web_resp *resp, int status, const char *title, const char *message);

/* Add a response header (name and value copied; ignored when full or when
 * either contains CR/LF). */
void web_resp_header(struct web_resp *resp, const char *name, const char *value);

/*
 * An answer that comes later, without holding a web thread meanwhile.  A
 * handler that hands its work to another thread (an approval decision to
 * the engine's writer) calls web_req_defer() and returns without filling
 * resp; the connection is suspended (libmicrohttpd's suspend/resume), and
 * whoever finishes the work calls web_deferred_ready(d) from any thread.
 * Then finish(req, resp, ud) runs on a web thread with the request as it
 * was and fills resp.  ud is released with drop(ud) exactly once, after
 * finish or when the connection ends without it (the client went away, or
 * the server stopped first).  One deferral per request; NULL out of memory
 * (the handler answers at once instead).  web_deferred_ready must be called
 * exactly once for each deferral made.
 */
struct web_deferred;
typedef void (*web_finish_fn)(struct web_req *req, struct web_resp *resp, void *ud);
struct web_deferred *web_req_defer(struct web_req *req, web_finish_fn finish,
                                   void (*drop)(void *ud), void *ud);
void web_deferred_ready(struct web_deferred *d);

/* Services handlers share (borrowed; valid while the server runs). */
struct ratelimit *web_server_ratelimit(struct web_server *ws);
const unsigned char *web_server_csrf_secret(struct web_server *ws, size_t *len);
const char *web_server_public_url(struct web_server *ws);    /* no trailing '/' */
const char *web_server_public_origin(struct web_server *ws); /* scheme://host[:port] */
/* The admin bearer token, or NULL when admin_token_file is not configured. */
const char *web_server_admin_token(struct web_server *ws);
struct web_metrics *web_server_metrics(struct web_server *ws);
/* 1 when the server speaks TLS itself (tls_cert_file and tls_key_file). */
int web_server_tls(const struct web_server *ws);

/*
 * Start the daemon on config `listen` with the limits above; TLS when
 * tls_cert_file and tls_key_file are set.  Loads (or creates) the CSRF key
 * from the database.  app->db must be open; app->engine may be NULL (then
 * decisions are recorded and picked up by the next worker poll).
 */
enum as_code web_server_start(struct app *app, struct web_server **out, struct as_err *err) AS_WUR;

/* The TCP port actually bound (useful with port 0). */
int web_server_port(const struct web_server *ws);

/*
 * Graceful stop: quiesce (stop accepting), let in-flight requests finish for
 * up to grace_ms, stop the daemon, close the listen socket, free.  NULL ok.
 */
void web_server_stop(struct web_server *ws, int grace_ms);

/* Parse "host:port" / "[v6]:port" into host (buffer) and port; 0 on success. */
int web_parse_listen(const char *listen, char *host, size_t host_size, int *port);

/* The origin (scheme://host[:port], lower-cased, default port dropped) of an
 * absolute http(s) URL into out; 0 on success, -1 when url is not one. */
int web_url_origin(const char *url, char *out, size_t out_size);

/*
 * Whether a request may send the body its headers announce, decided when
 * the headers are in: content_length and transfer_encoding are the header
 * values (NULL when absent), takes_body the route's flag.  Returns 0, 400
 * (a Content-Length that is not a plain decimal number) or 413 (more than
 * WEB_MAX_BODY, or any body for a route that takes none).  Pure; exposed
 * for tests and tests/fuzz/fuzz_approval_http.c.
 */
int web_body_check(const char *content_length, const char *transfer_encoding, int takes_body);

/* The same with the route's limit: max_body bytes (0: the route takes no body). */
int web_body_check_max(const char *content_length, const char *transfer_encoding,
                       size_t max_body);

/* The code of an error status in JSON error bodies: 404 "not_found", ... */
const char *web_status_code(int status);

/* An error in the REST API's shape: {"error": {"code": code, "message": ...}}. */
void web_resp_error(struct web_resp *resp, int status, const char *code, const char *fmt, ...)
    AS_PRINTF(4, 5);

#endif
