/* http_echo_server.c - the http step's test server (see http_echo_server.h). */
#include "http_echo_server.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (1024 * 1024)
#define MAX_FAULTS 64

struct fault {
    int status;
    char *retry_after;
    int delay_ms;
    int drop;
    size_t big;
    char *body;
    char *content_type;
};

struct echo_server {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct fault faults[MAX_FAULTS];
    size_t n_faults;
    json_t *log;
};

struct req_state {
    char *body;
    size_t len;
    int too_big;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *ctype,
                             const char *body, size_t len, const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    MHD_add_response_header(r, "X-Request-Id", "echo-1");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct echo_server *s = cls;
    struct req_state *rs = *con_cls;
    (void)version;
    if (!rs) {
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        *con_cls = rs;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (rs->len + n > MAX_BODY) {
            rs->too_big = 1;
        } else {
            char *nb = realloc(rs->body, rs->len + n + 1);
            if (!nb)
                return MHD_NO;
            rs->body = nb;
            memcpy(rs->body + rs->len, upload_data, n);
            rs->len += n;
            rs->body[rs->len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    json_t *body = NULL;
    if (rs->len) {
        body = json_loadb(rs->body, rs->len, JSON_DECODE_ANY, NULL);
        if (!body)
            body = json_stringn(rs->body, rs->len);
    }
    if (!body)
        body = json_null();

    struct fault f = {0};
    pthread_mutex_lock(&s->mu);
    if (s->n_faults) {
        f = s->faults[0];
        memmove(&s->faults[0], &s->faults[1], (s->n_faults - 1) * sizeof s->faults[0]);
        s->n_faults--;
    }
    json_array_append_new(s->log, json_pack("{s:s, s:s, s:o, s:o, s:o, s:O}", "method", method,
                                            "path", url, "idempotency_key", opt_str(key),
                                            "content_type", opt_str(ctype), "authorization",
                                            opt_str(auth), "body", body));
    size_t n = json_array_size(s->log);
    pthread_mutex_unlock(&s->mu);

    enum MHD_Result ret;
    if (f.delay_ms)
        sleep_ms(f.delay_ms);
    if (f.drop || strcmp(url, "/drop") == 0) {
        ret = MHD_NO; /* libmicrohttpd closes the connection without an answer */
        goto out;
    }
    int status = f.status ? f.status : 200;
    if (!f.status && strncmp(url, "/status/", 8) == 0) {
        int st = (int)strtol(url + 8, NULL, 10);
        if (st >= 100 && st <= 599)
            status = st;
    }
    if (strcmp(url, "/redirect") == 0) {
        /* 302 to /landed on the same server, under another host name. */
        char loc[64];
        snprintf(loc, sizeof loc, "http://localhost:%d/landed", s->port);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r) {
            ret = MHD_NO;
            goto out;
        }
        MHD_add_response_header(r, "Location", loc);
        ret = MHD_queue_response(conn, 302, r);
        MHD_destroy_response(r);
        goto out;
    }
    if (rs->too_big) {
        ret = reply(conn, 413, "text/plain", "too big", 7, NULL);
        goto out;
    }
    if (f.big) {
        char *big = malloc(f.big + 3);
        if (!big) {
            ret = MHD_NO;
            goto out;
        }
        big[0] = '"';
        memset(big + 1, 'x', f.big);
        big[f.big + 1] = '"';
        ret = reply(conn, status, "application/json", big, f.big + 2, f.retry_after);
        free(big);
        goto out;
    }
    if (f.body) {
        ret = reply(conn, status, f.content_type ? f.content_type : "text/plain", f.body,
                    strlen(f.body), f.retry_after);
        goto out;
    }
    json_t *echo = json_pack("{s:b, s:I, s:s, s:s, s:o, s:O}", "ok", 1, "n", (json_int_t)n, "method",
                             method, "path", url, "idempotency_key", opt_str(key), "body", body);
    char *text = echo ? json_dumps(echo, JSON_COMPACT) : NULL;
    json_decref(echo);
    ret = text ? reply(conn, status, "application/json", text, strlen(text), f.retry_after) : MHD_NO;
    free(text);
out:
    json_decref(body);
    free(f.retry_after);
    free(f.body);
    free(f.content_type);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct req_state *rs = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (rs) {
        free(rs->body);
        free(rs);
        *con_cls = NULL;
    }
}

struct echo_server *echo_start(void)
{
    struct echo_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->log = json_array();
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &addr,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!s->d) {
        echo_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (!s->port) {
        echo_stop(s);
        return NULL;
    }
    return s;
}

int echo_port(const struct echo_server *s)
{
    return s->port;
}

char *echo_url(const struct echo_server *s, const char *path)
{
    size_t n = strlen(path) + 64;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "http://127.0.0.1:%d%s", s->port, path);
    return u;
}

static char *dup_or_null(const char *v)
{
    return v ? strdup(v) : NULL;
}

void echo_push(struct echo_server *s, const struct echo_fault *f)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_faults < MAX_FAULTS) {
        struct fault *d = &s->faults[s->n_faults++];
        d->status = f->status;
        d->retry_after = dup_or_null(f->retry_after);
        d->delay_ms = f->delay_ms;
        d->drop = f->drop;
        d->big = f->big;
        d->body = dup_or_null(f->body);
        d->content_type = dup_or_null(f->content_type);
    }
    pthread_mutex_unlock(&s->mu);
}

size_t echo_count(struct echo_server *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = json_array_size(s->log);
    pthread_mutex_unlock(&s->mu);
    return n;
}

json_t *echo_requests(struct echo_server *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *copy = json_deep_copy(s->log);
    pthread_mutex_unlock(&s->mu);
    return copy;
}

void echo_stop(struct echo_server *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->n_faults; i++) {
        free(s->faults[i].retry_after);
        free(s->faults[i].body);
        free(s->faults[i].content_type);
    }
    json_decref(s->log);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
