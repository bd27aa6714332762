/*
 * http_echo_server.h - a small HTTP server for the http step's tests, run
 * inside the test program (libmicrohttpd, one thread per connection) on
 * 127.0.0.1 with a port chosen by the kernel.
 *
 * Every request is recorded (method, path, Idempotency-Key, Content-Type,
 * body).  By default it answers 200 with a JSON echo:
 *   {"ok": true, "n": <1-based request number>, "method", "path",
 *    "idempotency_key", "body": <request body parsed as JSON, else a string>}
 * A path "/status/NNN" answers NNN with the same echo body; "/redirect"
 * answers 302 to http://localhost:PORT/landed; "/drop" closes
 * every connection without an answer.  Faults queued
 * with echo_push() apply to the next requests, one each, before that:
 * a status (with Retry-After), a slow answer, a dropped connection, a huge
 * or non-JSON body.
 */
#ifndef ASSENT_HTTP_ECHO_SERVER_H
#define ASSENT_HTTP_ECHO_SERVER_H

#include <jansson.h>
#include <stddef.h>

struct echo_server;

struct echo_fault {
    int status;              /* 0 = 200 */
    const char *retry_after; /* Retry-After value, or NULL */
    int delay_ms;            /* sleep before answering */
    int drop;                /* close the connection without an answer */
    size_t big;              /* answer with this many bytes of JSON string instead of the echo */
    const char *body;        /* answer with this body instead of the echo */
    const char *content_type;/* with body */
};

/* Start the server; returns NULL on failure. */
struct echo_server *echo_start(void);

int echo_port(const struct echo_server *s);

/* "http://127.0.0.1:PORT" + path, malloc'd. */
char *echo_url(const struct echo_server *s, const char *path);

/* Queue a fault for the next request not yet served (strings are copied). */
void echo_push(struct echo_server *s, const struct echo_fault *f);

/* Number of requests received so far. */
size_t echo_count(struct echo_server *s);

/* Records of every request so far: new reference to an array of
 * {"method","path","idempotency_key"|null,"content_type"|null,"authorization"|null,"body"}. */
json_t *echo_requests(struct echo_server *s);

/* Stop the server and free everything.  NULL is fine. */
void echo_stop(struct echo_server *s);

#endif
