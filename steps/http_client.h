/*
 * http_client.h - one outbound HTTP request through libcurl, with the limits
 * every request built from workflow JSON needs.
 *
 * The one outbound HTTP transport: the http step and the Microsoft 365
 * client (m365/m365.c) both send through http_client_perform().
 *
 * Each thread keeps one curl easy handle (thread-local, created on first
 * use) so that keep-alive connections are reused between steps; the handle
 * is reset before every request and freed when the thread exits (or by
 * http_client_thread_cleanup()).  curl_global_init() must have been called
 * once by main() before any thread uses this module, and SIGPIPE ignored
 * (the handle sets CURLOPT_NOSIGNAL).
 *
 * Limits: only http and https (also for redirects), at most
 * HTTP_MAX_REDIRECTS redirects (none when a header carries a credential, see
 * http_header_is_sensitive), a connect and a total timeout, a response
 * body cap (a bigger body is refused with AS_ELIMIT, never truncated
 * silently), a cap on the size and number of response headers kept.
 */
#ifndef ASSENT_HTTP_CLIENT_H
#define ASSENT_HTTP_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#define HTTP_MAX_REDIRECTS 5
#define HTTP_DEFAULT_MAX_RESPONSE (4u * 1024u * 1024u)

struct http_request {
    const char *method;          /* GET HEAD POST PUT PATCH DELETE OPTIONS (upper case) */
    const char *url;             /* http:// or https:// */
    const json_t *headers;       /* object of "Name": "value" strings, or NULL (borrowed) */
    const char *body;            /* request body or NULL (borrowed) */
    size_t body_len;
    const char *content_type;    /* sent when body != NULL and headers hold no Content-Type */
    const char *idempotency_key; /* sent as Idempotency-Key unless headers hold one; may be NULL */
    int64_t connect_timeout_ms;  /* > 0 */
    int64_t timeout_ms;          /* total, > 0 */
    size_t max_response;         /* body cap in bytes; 0 = HTTP_DEFAULT_MAX_RESPONSE */
    const char *bearer;          /* sent as "Authorization: Bearer <bearer>", or NULL; a
                                    credential (no redirect is followed); the header line is
                                    wiped after the request */
    FILE *sink;                  /* write the body here, at its current position, instead of
                                    memory (resp->body is then empty); max_response applies */
    int no_redirects;            /* follow no redirect: a 3xx is the answer */
    int fresh_connect;           /* a new connection, so libcurl never re-sends the request on
                                    a reused connection that died (for non-idempotent writes) */
    const char *user_agent;      /* NULL: "assent/1" */
};

struct http_response {
    long status;             /* final HTTP status (after redirects) */
    char *body;              /* malloc'd, NUL-terminated (also when empty) */
    size_t body_len;
    json_t *headers;         /* new reference: selected headers of the final response, names in
                              * lower case (content-type, etag, location, retry-after,
                              * request-id, client-request-id, x-request-id,
                              * idempotency-replayed) */
    int64_t retry_after_ms;  /* Retry-After of the final response as a delay from now, clamped to
                              * [0, HTTP_RETRY_AFTER_MAX_MS]; -1 when absent or unparseable */
    /* Also set when http_client_perform fails: */
    int sent;                /* bytes of the request left this process */
    int unsent;              /* it failed before the request could reach the server (name
                              * resolution, connect): a write certainly did not happen */
    char reason[256];        /* on failure: libcurl's reason alone ("Connection refused") */
};

#define HTTP_RETRY_AFTER_MAX_MS (3600LL * 1000)

/*
 * Check a request before sending: method known, URL http(s) with a host,
 * header names are tokens and values hold no CR/LF/NUL.  Returns AS_EINVAL
 * with a message naming the defect.  Called by http_client_perform() too.
 */
enum as_code http_request_check(const struct http_request *req, struct as_err *err) AS_WUR;

/*
 * Perform req on this thread's handle.  On AS_OK *resp holds the final
 * response, whatever its status; the caller frees it with
 * http_response_free().  Failures, with a message naming the method and
 * the URL without query string and credentials:
 *   AS_EINVAL     the request is malformed (see http_request_check), or
 *                 the URL / protocol is refused by curl
 *   AS_ETIMEOUT   the connect or total timeout passed
 *   AS_ETRANSIENT connection refused or reset, DNS failure, empty reply,
 *                 TLS handshake failure
 *   AS_ELIMIT     response bigger than max_response, or too many redirects
 *   AS_EPERMANENT peer certificate rejected, a redirect answered to a request
 *                 with a credential header, other non-retryable errors
 *   AS_ENOMEM
 * Thread-safe (each thread has its own handle).
 */
enum as_code http_client_perform(const struct http_request *req, struct http_response *resp,
                                 struct as_err *err) AS_WUR;

/*
 * Keep one response header line (as libcurl hands it over, "Name: value\r\n",
 * or a status line, which starts a new response and clears what was kept)
 * in headers if it is one of those listed for http_response.headers.
 * *retry_after (size bytes) receives a Retry-After value.  Pure; exposed
 * for the fuzz target.
 */
void http_header_line(json_t *headers, const char *line, size_t n, char *retry_after,
                      size_t size);

/* Free what http_client_perform() put into resp; resp may be zeroed.  Safe twice. */
void http_response_free(struct http_response *resp);

/*
 * Free this thread's handle now (it is also freed at thread exit; the main
 * thread, which does not run thread-exit destructors, calls this before
 * curl_global_cleanup()).
 */
void http_client_thread_cleanup(void);

/*
 * Copy `url` into out without userinfo, query string and fragment, for
 * messages and logs ("https://user:pw@h/p?token=x" -> "https://h/p").
 */
void http_url_redact(const char *url, char *out, size_t size);

/* True when a header of this name usually carries a credential (Authorization, Cookie, *token*,
 * *secret*, *api-key*, ...): its value is never logged or recorded. */
int http_header_is_sensitive(const char *name);

#endif
