/*
 * http_client.c - outbound HTTP for steps: one reusable curl easy handle per
 * thread, hard limits on everything that comes back, and curl's codes mapped
 * to Assent's error enum at this boundary.
 */
#include "steps/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/retry.h"
#include "base/timeutil.h"

#define MAX_URL_LEN 8192
#define MAX_HEADER_VALUE 1024
#define MAX_KEPT_HEADERS 16

/* The thread's handle and the error buffer curl writes into (which must live as long as it). */
struct http_tls {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *p)
{
    struct http_tls *t = p;
    if (!t)
        return;
    curl_easy_cleanup(t->curl);
    free(t);
}

static void tls_init_key(void)
{
    /* Cannot fail in practice (only on exhausting PTHREAD_KEYS_MAX at start-up). */
    if (pthread_key_create(&tls_key, tls_destroy) != 0)
        abort();
}

static struct http_tls *tls_get(void)
{
    pthread_once(&tls_once, tls_init_key);
    struct http_tls *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->curl = curl_easy_init();
    if (!t->curl || pthread_setspecific(tls_key, t) != 0) {
        tls_destroy(t);
        return NULL;
    }
    return t;
}

void http_client_thread_cleanup(void)
{
    pthread_once(&tls_once, tls_init_key);
    struct http_tls *t = pthread_getspecific(tls_key);
    if (t) {
        (void)pthread_setspecific(tls_key, NULL);
        tls_destroy(t);
    }
}

void http_url_redact(const char *url, char *out, size_t size)
{
    if (size == 0)
        return;
    out[0] = '\0';
    if (!url)
        return;
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    size_t auth_len = strcspn(host, "/?#");
    /* userinfo ends at the last '@' of the authority */
    const char *at = NULL;
    for (const char *p = host; p < host + auth_len; p++)
        if (*p == '@')
            at = p;
    const char *host_start = at ? at + 1 : host;
    size_t tail_len = strcspn(host_start, "?#");
    snprintf(out, size, "%.*s%.*s", (int)(host - url), url, (int)tail_len, host_start);
}

int http_header_is_sensitive(const char *name)
{
    static const char *const exact[] = {"authorization", "proxy-authorization", "cookie",
                                        "set-cookie", NULL};
    static const char *const parts[] = {"token", "secret", "password", "api-key", "apikey",
                                        "api_key", "signature", "session", NULL};
    for (size_t i = 0; exact[i]; i++)
        if (strcasecmp(name, exact[i]) == 0)
            return 1;
    for (size_t i = 0; parts[i]; i++)
        if (strcasestr(name, parts[i]))
            return 1;
    return 0;
}

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                      NULL};

enum as_code http_request_check(const struct http_request *req, struct as_err *err)
{
    int known = 0;
    for (size_t i = 0; req->method && methods[i]; i++)
        if (strcmp(req->method, methods[i]) == 0)
            known = 1;
    if (!known)
        return as_errf(err, AS_EINVAL,
                       "method \"%.32s\" is not one of GET HEAD POST PUT PATCH DELETE OPTIONS",
                       req->method ? req->method : "");
    if (!req->url || !*req->url)
        return as_errf(err, AS_EINVAL, "url is empty");
    size_t ulen = strlen(req->url);
    if (ulen > MAX_URL_LEN)
        return as_errf(err, AS_EINVAL, "url is longer than %d bytes", MAX_URL_LEN);
    for (size_t i = 0; i < ulen; i++)
        if ((unsigned char)req->url[i] <= ' ' || req->url[i] == 0x7f)
            return as_errf(err, AS_EINVAL, "url contains a space or control character at offset %zu",
                           i);
    size_t skip = 0;
    if (strncasecmp(req->url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(req->url, "https://", 8) == 0)
        skip = 8;
    else
        return as_errf(err, AS_EINVAL, "url must start with http:// or https://");
    if (strchr("/?#", req->url[skip]))
        return as_errf(err, AS_EINVAL, "url has no host");
    if (req->headers) {
        if (!json_is_object(req->headers))
            return as_errf(err, AS_EINVAL, "headers must be an object of strings");
        const char *name;
        json_t *v;
        json_object_foreach((json_t *)req->headers, name, v) {
            char shown[80];
            log_escape(shown, sizeof shown, name, 0);
            if (!*name)
                return as_errf(err, AS_EINVAL, "header with an empty name");
            for (const char *p = name; *p; p++)
                if (!is_tchar((unsigned char)*p))
                    return as_errf(err, AS_EINVAL, "header name \"%s\" has an invalid character",
                                   shown);
            if (!json_is_string(v))
                return as_errf(err, AS_EINVAL, "header \"%s\" must be a string", shown);
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            if (memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))
                return as_errf(err, AS_EINVAL, "header \"%s\" contains CR, LF or NUL", shown);
            if (n > 8192)
                return as_errf(err, AS_EINVAL, "header \"%s\" is longer than 8192 bytes", shown);
        }
    }
    return AS_OK;
}

/* What the callbacks fill while a transfer runs. */
struct xfer {
    char *body;
    size_t len, cap, max;
    int too_big;
    FILE *sink;
    int sink_failed;         /* writing to the sink failed (errno kept in sink_errno) */
    int sink_errno;
    json_t *headers;
    char retry_after[64];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (n > x->max - x->len) {
        x->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (x->sink) {
        if (fwrite(data, 1, n, x->sink) != n) {
            x->sink_failed = 1;
            x->sink_errno = errno;
            return 0;
        }
        x->len += n;
        return n;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *nb = realloc(x->body, cap);
        if (!nb)
            return 0;
        x->body = nb;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = '\0';
    return n;
}

static const char *const kept_headers[] = {"content-type", "etag", "location", "retry-after",
                                           "request-id", "client-request-id", "x-request-id",
                                           "idempotency-replayed", NULL};

void http_header_line(json_t *headers, const char *data, size_t n, char *retry_after,
                      size_t size)
{
    /* A new status line starts the headers of the next response (a redirect, a 100 Continue). */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(headers);
        retry_after[0] = '\0';
        return;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    const char *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    for (size_t i = 0; kept_headers[i]; i++) {
        if (strlen(kept_headers[i]) != name_len || strncasecmp(data, kept_headers[i], name_len))
            continue;
        if (json_object_size(headers) >= MAX_KEPT_HEADERS)
            break;
        if (vlen > MAX_HEADER_VALUE)
            vlen = MAX_HEADER_VALUE;
        json_t *s = json_stringn(v, vlen); /* NULL when not UTF-8: such a value is dropped */
        if (s)
            json_object_set_new(headers, kept_headers[i], s);
        if (strcmp(kept_headers[i], "retry-after") == 0 && vlen < size) {
            memcpy(retry_after, v, vlen);
            retry_after[vlen] = '\0';
        }
        break;
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    http_header_line(x->headers, data, n, x->retry_after, sizeof x->retry_after);
    return n;
}

/* Retry-After as a delay from now, clamped to [0, HTTP_RETRY_AFTER_MAX_MS]; -1 when unparseable. */
static int64_t retry_after(const char *v)
{
    int64_t ms = retry_after_parse(v, time_now_ms());
    return ms > HTTP_RETRY_AFTER_MAX_MS ? HTTP_RETRY_AFTER_MAX_MS : ms;
}

static enum as_code map_curl(CURLcode cc, const struct xfer *x, const struct http_request *req,
                             const char *errbuf, struct http_response *resp, struct as_err *err)
{
    char where[512];
    http_url_redact(req->url, where, sizeof where);
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    snprintf(resp->reason, sizeof resp->reason, "%s", why);
    enum as_code code;
    switch (cc) {
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
            return as_errf(err, AS_ELIMIT, "%s %s: response body is larger than %zu bytes",
                           req->method, where, x->max);
        if (x->sink_failed) {
            snprintf(resp->reason, sizeof resp->reason, "cannot write the response: %s",
                     strerror(x->sink_errno));
            return as_errf(err, AS_EIO, "%s %s: %s", req->method, where, resp->reason);
        }
        code = AS_ENOMEM;
        break;
    case CURLE_OUT_OF_MEMORY:
        code = AS_ENOMEM;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = AS_ETIMEOUT;
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        code = AS_ELIMIT;
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        code = AS_EINVAL;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_BAD_CONTENT_ENCODING:
        code = AS_EPERMANENT;
        break;
    default:
        /* Connection refused or reset, DNS, empty reply, TLS handshake: worth another try. */
        code = AS_ETRANSIENT;
        break;
    }
    return as_errf(err, code, "%s %s: %s", req->method, where, why);
}

static int has_header(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    if (!headers)
        return 0;
    json_object_foreach((json_t *)headers, k, v)
        if (strcasecmp(k, name) == 0)
            return 1;
    return 0;
}

static enum as_code add_header(struct curl_slist **list, const char *name, const char *value,
                               struct as_err *err)
{
    char line[9000];
    /* "Name;" is curl's way to send a header with an empty value. */
    if (*value)
        snprintf(line, sizeof line, "%s: %s", name, value);
    else
        snprintf(line, sizeof line, "%s;", name);
    struct curl_slist *n = curl_slist_append(*list, line);
    if (!n)
        return as_errf(err, AS_ENOMEM, "out of memory");
    *list = n;
    return AS_OK;
}

/* The first header of req that carries a credential (http_header_is_sensitive),
 * or NULL. */
static const char *credential_header(const struct http_request *req)
{
    const char *name;
    json_t *v;
    if (req->bearer)
        return "Authorization";
    if (req->headers)
        json_object_foreach((json_t *)req->headers, name, v)
            if (http_header_is_sensitive(name))
                return name;
    return NULL;
}

static enum as_code build_headers(const struct http_request *req, struct curl_slist **out,
                                  struct as_err *err)
{
    struct curl_slist *list = NULL;
    enum as_code rc = AS_OK;
    const char *name;
    json_t *v;
    if (req->headers) {
        json_object_foreach((json_t *)req->headers, name, v) {
            rc = add_header(&list, name, json_string_value(v), err);
            if (rc)
                goto out;
        }
    }
    if (req->idempotency_key && *req->idempotency_key && !has_header(req->headers, "Idempotency-Key")) {
        rc = add_header(&list, "Idempotency-Key", req->idempotency_key, err);
        if (rc)
            goto out;
    }
    if (req->body && req->content_type && !has_header(req->headers, "Content-Type")) {
        rc = add_header(&list, "Content-Type", req->content_type, err);
        if (rc)
            goto out;
    }
    if (req->bearer) {
        /* Its own allocation, so that it can be wiped (see http_client_perform). */
        size_t n = strlen(req->bearer) + 32;
        char *line = malloc(n);
        struct curl_slist *l = NULL;
        if (line) {
            snprintf(line, n, "Authorization: Bearer %s", req->bearer);
            l = curl_slist_append(list, line);
            OPENSSL_cleanse(line, n);
            free(line);
        }
        if (!l) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        list = l;
    }
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    if (!has_header(req->headers, "Expect")) {
        struct curl_slist *n = curl_slist_append(list, "Expect:");
        if (!n) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        list = n;
    }
out:
    if (rc) {
        curl_slist_free_all(list);
        list = NULL;
    }
    *out = list;
    return rc;
}

enum as_code http_client_perform(const struct http_request *req, struct http_response *resp,
                                 struct as_err *err)
{
    enum as_code rc;
    struct curl_slist *hdrs = NULL;
    struct xfer x = {0};
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;

    rc = http_request_check(req, err);
    if (rc)
        return rc;
    struct http_tls *t = tls_get();
    if (!t)
        return as_errf(err, AS_ENOMEM, "cannot create an HTTP handle");
    x.max = req->max_response ? req->max_response : HTTP_DEFAULT_MAX_RESPONSE;
    x.sink = req->sink;
    x.headers = json_object();
    if (!x.headers) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    rc = build_headers(req, &hdrs, err);
    if (rc)
        goto out;

    CURL *c = t->curl;
    /* Reset drops every option of the previous request but keeps its live connections. */
    curl_easy_reset(c);
    t->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* libcurl drops only Authorization and Cookie when a redirect leaves the
     * host; an X-Api-Key or the like would follow to wherever Location points
     * (even http://).  So a request with a credential header follows no
     * redirect at all. */
    const char *credential = credential_header(req);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, credential || req->no_redirects ? 0L : 1L);
    if (req->fresh_connect)
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : 60000));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x.max);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, req->user_agent ? req->user_agent : "assent/1");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);

    const char *m = req->method;
    if (strcmp(m, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
        if (req->body || strcmp(m, "DELETE") != 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        }
    }

    CURLcode cc = curl_easy_perform(c);
    long reqsize = 0;
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
    resp->sent = reqsize > 0;
    if (cc != CURLE_OK) {
        resp->unsent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                       cc == CURLE_COULDNT_RESOLVE_PROXY;
        rc = map_curl(cc, &x, req, t->errbuf, resp, err);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (credential && !req->no_redirects && (resp->status == 301 || resp->status == 302 || resp->status == 303 ||
                       resp->status == 307 || resp->status == 308)) {
        char where[512];
        http_url_redact(req->url, where, sizeof where);
        rc = as_errf(err, AS_EPERMANENT,
                     "%s %s: HTTP %ld redirect not followed: the request carries the credential "
                     "header \"%s\", which must not go to another address; use the final URL",
                     req->method, where, resp->status, credential);
        goto out;
    }
    if (!x.body) {
        x.body = calloc(1, 1);
        if (!x.body) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
    }
    resp->body = x.body;
    resp->body_len = x.len;
    resp->headers = x.headers;
    resp->retry_after_ms = x.retry_after[0] ? retry_after(x.retry_after) : -1;
    x.body = NULL;
    x.headers = NULL;
out:
    /* Do not leave pointers to this stack frame in the reused handle. */
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, NULL);
    if (req->bearer)
        for (struct curl_slist *l = hdrs; l; l = l->next)
            OPENSSL_cleanse(l->data, strlen(l->data)); /* the token */
    curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, NULL);
    curl_slist_free_all(hdrs);
    free(x.body);
    json_decref(x.headers);
    return rc;
}

void http_response_free(struct http_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    json_decref(resp->headers);
    resp->body = NULL;
    resp->headers = NULL;
}
