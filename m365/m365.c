/*
 * m365.c - the transport under the Microsoft 365 client (see m365.h): the
 * client object and its thread-local instance, app-only tokens (client
 * secret or certificate assertion), requests through the one outbound
 * transport (steps/http_client.h), the retry policy (Retry-After, exponential backoff with jitter, deadlines),
 * 401 refresh, and the mapping of service errors to messages.  The Graph and
 * Exchange calls built on it live in m365_calls.c.
 */
#include "m365/m365.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "base/retry.h"
#include "base/secret_file.h"
#include "base/timeutil.h"
#include "m365/m365_internal.h"
#include "m365/m365_parse.h"
#include "steps/http_client.h"

#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)
#define SECRET_MAX 4096
#define TOKEN_MAX 16384
#define ASSERTION_LIFETIME_S 300

/* ---------------------------------------------------------------- helpers */

static char *dup_trimmed_url(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return strndup(s, n);
}

/* Identifiers that go into URL paths: GUIDs or domain names. */
static int safe_ident(const char *s)
{
    if (!*s || strlen(s) > 255)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return 0;
    return 1;
}

/* "scheme://host[:port]" of url into out; 0 on success. */
static int url_origin(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -1;
    p += 3;
    size_t n = strcspn(p, "/?#");
    size_t len = (size_t)(p - url) + n;
    if (len + 1 > size)
        return -1;
    memcpy(out, url, len);
    out[len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)out[i]);
    return 0;
}

/*
 * The token scope for a service.  Scopes name the resource, not the address
 * we talk to: when graph_url/exchange_url point at a national cloud we use
 * that cloud's resource, and anything else (the simulator on 127.0.0.1, a
 * proxy) gets the public cloud's resource, which is what it stands in for.
 */
static void derive_scope(const char *base, const char *const *known, const char *fallback,
                         char *out, size_t size)
{
    char origin[256];
    if (url_origin(base, origin, sizeof origin) == 0) {
        for (size_t i = 0; known[i]; i++) {
            if (strcmp(origin, known[i]) == 0) {
                snprintf(out, size, "%s/.default", known[i]);
                return;
            }
        }
    }
    snprintf(out, size, "%s/.default", fallback);
}

static const char *const graph_resources[] = {
    "https://graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn", NULL};
static const char *const exo_resources[] = {
    "https://outlook.office365.com", "https://outlook.office365.us",
    "https://outlook-dod.office365.us", "https://partner.outlook.cn", NULL};

/* Printable ASCII excerpt of a body for messages. */
static void body_excerpt(const char *body, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c >= 32 && c < 127) ? (char)c : ' ';
    }
    out[o] = '\0';
}

/* ----------------------------------------------------------- life cycle */

enum as_code m365_new(const struct config *cfg, struct m365 **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365 *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return as_errf(err, AS_ENOMEM, "out of memory");
    m->cfg = cfg;
    const char *tenant = config_str(cfg, "tenant_id");
    const char *client = config_str(cfg, "client_id");
    if (!*tenant || !*client) {
        rc = as_errf(err, AS_EINVAL,
                     "Microsoft 365 is not configured: set tenant_id and client_id "
                     "(ASSENT_TENANT_ID, ASSENT_CLIENT_ID) and a certificate "
                     "(ASSENT_CLIENT_CERT_FILE + ASSENT_CLIENT_KEY_FILE) or a secret file "
                     "(ASSENT_CLIENT_SECRET_FILE); see docs/m365.md");
        goto fail;
    }
    if (!safe_ident(tenant) || !safe_ident(client)) {
        rc = as_errf(err, AS_EINVAL,
                     "tenant_id and client_id must be a GUID or a domain name");
        goto fail;
    }
    m->tenant = strdup(tenant);
    m->client_id = strdup(client);
    m->login_url = dup_trimmed_url(config_str(cfg, "login_url"));
    m->graph_url = dup_trimmed_url(config_str(cfg, "graph_url"));
    m->exo_url = dup_trimmed_url(config_str(cfg, "exchange_url"));
    if (!m->tenant || !m->client_id || !m->login_url || !m->graph_url || !m->exo_url) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    const char *urls[3] = {m->login_url, m->graph_url, m->exo_url};
    const char *names[3] = {"login_url", "graph_url", "exchange_url"};
    for (int i = 0; i < 3; i++) {
        if (strncmp(urls[i], "https://", 8) != 0 && strncmp(urls[i], "http://", 7) != 0) {
            rc = as_errf(err, AS_EINVAL, "%s must be an http(s) URL, got \"%s\"", names[i], urls[i]);
            goto fail;
        }
    }
    derive_scope(m->graph_url, graph_resources, graph_resources[0], m->graph_scope,
                 sizeof m->graph_scope);
    derive_scope(m->exo_url, exo_resources, exo_resources[0], m->exo_scope, sizeof m->exo_scope);

    /* Credentials: a certificate wins over a secret (it is the recommended path). */
    const char *cert = config_str(cfg, "client_cert_file");
    const char *key = config_str(cfg, "client_key_file");
    const char *secret_file = config_str(cfg, "client_secret_file");
    const char *secret = config_str(cfg, "client_secret");
    const char *alg = config_str(cfg, "client_assertion_alg");
    int a = m365_jwt_alg_parse(alg);
    m->alg = a < 0 ? M365_JWT_PS256 : (enum m365_jwt_alg)a;
    if (*cert || *key) {
        rc = m365_cert_load(cert, key, &m->cert, err);
        if (rc)
            goto fail;
    } else if (*secret_file) {
        size_t len = 0;
        rc = secret_file_read(secret_file, SECRET_MAX, 1, &m->secret, &len, err);
        if (rc) {
            as_err_prefix(err, "client_secret_file");
            goto fail;
        }
        if (len == 0) {
            rc = as_errf(err, AS_EINVAL, "client_secret_file %s is empty", secret_file);
            goto fail;
        }
    } else if (*secret) {
        m->secret = strdup(secret);
        if (!m->secret) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto fail;
        }
    } else {
        rc = as_errf(err, AS_EINVAL,
                     "no Microsoft 365 credential: set client_cert_file + client_key_file "
                     "(recommended) or client_secret_file");
        goto fail;
    }

    m->connect_timeout_ms = (long)config_int(cfg, "http_connect_timeout_seconds") * 1000;
    m->timeout_ms = (long)config_int(cfg, "http_timeout_seconds") * 1000;
    m->max_attempts = (int)config_int(cfg, "m365_max_attempts");
    m->backoff_initial_ms = config_int(cfg, "m365_backoff_initial_ms");
    m->backoff_max_ms = config_int(cfg, "m365_backoff_max_ms");
    m->stats.last_retry_after_ms = -1;
    *out = m;
    return AS_OK;
fail:
    m365_free(m);
    return rc;
}

static void token_clear(struct m365_token *t)
{
    if (t->access) {
        secret_free(t->access);
        t->access = NULL;
    }
    t->refresh_at_ms = 0;
}

void m365_free(struct m365 *m)
{
    if (!m)
        return;
    for (int i = 0; i < M365_SVC_N; i++)
        token_clear(&m->tok[i]);
    secret_free(m->secret);
    m365_cert_free(m->cert);
    free(m->tenant);
    free(m->client_id);
    free(m->login_url);
    free(m->graph_url);
    free(m->exo_url);
    free(m);
}

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_destroy(void *p)
{
    m365_free(p);
}

static void tls_init(void)
{
    if (pthread_key_create(&tls_key, tls_destroy) != 0)
        abort(); /* only fails when the process is out of keys: a programming error */
}

enum as_code m365_thread_get(const struct config *cfg, struct m365 **out, struct as_err *err)
{
    pthread_once(&tls_once, tls_init);
    struct m365 *m = pthread_getspecific(tls_key);
    if (m && m->cfg == cfg) {
        m->deadline_ms = 0;
        *out = m;
        return AS_OK;
    }
    if (m) {
        pthread_setspecific(tls_key, NULL);
        m365_free(m);
    }
    enum as_code rc = m365_new(cfg, &m, err);
    if (rc) {
        *out = NULL;
        return rc;
    }
    pthread_setspecific(tls_key, m);
    *out = m;
    return AS_OK;
}

void m365_thread_release(void)
{
    pthread_once(&tls_once, tls_init);
    struct m365 *m = pthread_getspecific(tls_key);
    pthread_setspecific(tls_key, NULL);
    m365_free(m);
}

void m365_set_deadline(struct m365 *m, int64_t deadline_mono_ms)
{
    m->deadline_ms = deadline_mono_ms;
}

void m365_set_durable_retry(struct m365 *m, int on)
{
    m->durable_retry = on;
}

int64_t m365_retry_hint_ms(const struct m365 *m)
{
    return m->retry_hint_ms;
}

void m365_get_stats(const struct m365 *m, struct m365_stats *out)
{
    *out = m->stats;
}

char *m365_url(const struct m365 *m, enum m365_svc svc, const char *path)
{
    const char *base = svc == M365_SVC_EXO ? m->exo_url : svc == M365_SVC_GRAPH ? m->graph_url
                                                                                : m->login_url;
    size_t n = strlen(base) + strlen(path) + 1;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%s%s", base, path);
    return u;
}

char *m365_escape(struct m365 *m, const char *s)
{
    return curl_easy_escape(NULL, s, 0); /* the handle is unused since libcurl 7.82 */
}

enum as_code m365_next_link(const struct m365 *m, enum m365_svc svc, const char *link,
                            char **out, struct as_err *err)
{
    return m365_next_link_on(svc == M365_SVC_EXO ? m->exo_url : m->graph_url, link, out, err);
}

enum as_code m365_next_link_on(const char *base, const char *link, char **out,
                               struct as_err *err)
{
    char want[256], got[256];
    *out = NULL;
    if (link[0] == '/' && link[1] != '/' && url_origin(base, want, sizeof want) == 0) {
        /* A relative link: on the service's own host by construction. */
        size_t n = strlen(want) + strlen(link) + 1;
        *out = malloc(n);
        if (!*out)
            return as_errf(err, AS_ENOMEM, "out of memory");
        snprintf(*out, n, "%s%s", want, link);
        return AS_OK;
    }
    if (url_origin(base, want, sizeof want) != 0 || url_origin(link, got, sizeof got) != 0 ||
        strcmp(want, got) != 0)
        return as_errf(err, AS_EPERMANENT,
                       "refusing to follow @odata.nextLink to another host than %s", want);
    *out = strdup(link);
    return *out ? AS_OK : as_errf(err, AS_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------ backoff */

/* Exponential backoff for attempt n (1 = first retry) with "equal jitter". */
static int64_t backoff_ms(struct m365 *m, int n)
{
    return retry_backoff_equal(m->backoff_initial_ms, 2, n, m->backoff_max_ms);
}

/* Retry-After as a wait in ms, clamped to [0, backoff_max], or -1; the
 * parsed value is kept in the stats. */
static int64_t parse_retry_after(struct m365 *m, const char *v)
{
    int64_t ms = retry_after_parse(v, time_now_ms());
    if (ms < 0)
        return -1;
    m->stats.last_retry_after_ms = ms;
    if (ms > m->backoff_max_ms)
        ms = m->backoff_max_ms;
    return ms;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Wait `wait` ms before the next attempt unless that passes the deadline. */
static enum as_code wait_or_give_up(struct m365 *m, int64_t wait, const char *why,
                                    struct as_err *err)
{
    m->retry_hint_ms = wait;
    if (m->durable_retry && wait > 0)
        /* In a worker: the engine retries the step at that time (a durable
         * retry), rather than this thread sleeping through it. */
        return as_errf(err, AS_ETRANSIENT, "%s; the step is tried again in %lld ms", why,
                       (long long)wait);
    if (m->deadline_ms && time_mono_ms() + wait >= m->deadline_ms)
        return as_errf(err, AS_ETRANSIENT, "%s; next attempt in %lld ms would pass the deadline",
                       why, (long long)wait);
    if (wait > 0)
        sleep_ms(wait);
    m->stats.retries++;
    return AS_OK;
}

enum as_code m365_backoff_sleep(struct m365 *m, int attempt, const char *why, struct as_err *err)
{
    return wait_or_give_up(m, backoff_ms(m, attempt), why, err);
}

/* ------------------------------------------------------------- HTTP */

void m365_resp_free(struct m365_resp *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

static void resp_reset(struct m365_resp *r, const struct m365_req *req)
{
    free(r->body);
    memset(r, 0, sizeof *r);
    r->max = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
    r->sink = req->sink;
    if (r->sink) {
        rewind(r->sink);
        if (ftruncate(fileno(r->sink), 0) != 0)
            r->too_big = 1; /* reported as a write error by the first body byte */
    }
}

/* Copy header `name` of the response (its value, cut to size) into dst. */
static void take_header(const json_t *headers, const char *name, char *dst, size_t size)
{
    const char *v = json_string_value(json_object_get(headers, name));
    if (v && !dst[0])
        snprintf(dst, size, "%s", v);
}

/* The request's extra "Name: value" lines and Accept, as the transport's header object. */
static json_t *request_headers(const struct m365_req *req)
{
    json_t *h = json_object();
    if (h && req->parse_json)
        json_object_set_new(h, "Accept", json_string("application/json"));
    for (int i = 0; h && i < 6 && req->headers[i]; i++) {
        const char *line = req->headers[i], *colon = strchr(line, ':');
        if (!colon)
            continue;
        char name[128];
        size_t n = (size_t)(colon - line);
        if (n >= sizeof name)
            continue;
        memcpy(name, line, n);
        name[n] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        json_object_set_new(h, name, json_string(v));
    }
    return h;
}

/* One attempt, through the one outbound transport (steps/http_client.h). */
static enum as_code http_once(struct m365 *m, const struct m365_req *req, struct m365_resp *resp,
                              const char *bearer, struct as_err *err)
{
    long total = m->timeout_ms;
    if (m->deadline_ms) {
        int64_t left = m->deadline_ms - time_mono_ms();
        if (left < total)
            total = left > 1 ? (long)left : 1;
    }
    json_t *headers = request_headers(req);
    if (!headers)
        return as_errf(err, AS_ENOMEM, "%s: out of memory", req->what);
    struct http_request hr = {
        .method = req->method,
        .url = req->url,
        .headers = headers,
        .body = strcmp(req->method, "GET") != 0 ? (req->body ? req->body : "") : NULL,
        .body_len = req->body ? req->body_len : 0,
        .content_type = req->content_type,
        .connect_timeout_ms = m->connect_timeout_ms,
        .timeout_ms = total,
        .max_response = resp->max,
        .bearer = bearer,
        .sink = resp->sink,
        .no_redirects = 1,
        /* libcurl silently re-sends a request when a reused connection dies
         * before the answer.  For a write that would be a blind repeat, so
         * writes always open a fresh connection. */
        .fresh_connect = req->write,
        .user_agent = "Assent/1 (+docs/m365.md)",
    };
    struct http_response hres;
    m->stats.requests++;
    enum as_code rc = http_client_perform(&hr, &hres, err);
    json_decref(headers);
    resp->sent = hres.sent;
    resp->unsent = hres.unsent;
    snprintf(resp->reason, sizeof resp->reason, "%s", hres.reason);
    if (rc == AS_OK) {
        resp->status = hres.status;
        resp->len = hres.body_len;
        if (!resp->sink) {
            resp->body = hres.body;
            hres.body = NULL;
        }
        take_header(hres.headers, "request-id", resp->request_id, sizeof resp->request_id);
        take_header(hres.headers, "client-request-id", resp->request_id, sizeof resp->request_id);
        take_header(hres.headers, "retry-after", resp->retry_after, sizeof resp->retry_after);
        take_header(hres.headers, "location", resp->location, sizeof resp->location);
        take_header(hres.headers, "content-type", resp->content_type, sizeof resp->content_type);
        m->stats.bytes_received += (long long)resp->len;
    }
    http_response_free(&hres);
    return rc;
}

/* -------------------------------------------------------- error mapping */

enum as_code m365_http_error(const char *what, int exo_errors, const struct m365_resp *resp,
                             struct as_err *err)
{
    enum as_code code;
    long s = resp->status;
    if (s == 401 || s == 403)
        code = AS_EAUTH;
    else if (s == 404)
        code = AS_ENOTFOUND;
    else if (s == 429 || s >= 500)
        code = AS_ETRANSIENT;
    else
        code = AS_EPERMANENT;

    char svc_code[128] = "", msg[600] = "", rid[128] = "";
    snprintf(rid, sizeof rid, "%s", resp->request_id);
    json_t *j = NULL;
    if (resp->body && resp->len)
        j = json_loadb(resp->body, resp->len, 0, NULL);
    json_t *e = j ? json_object_get(j, "error") : NULL;
    if (json_is_object(e)) {
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *mm = json_string_value(json_object_get(e, "message"));
        json_t *inner = json_object_get(e, "innerError");
        if (!inner)
            inner = json_object_get(e, "innererror");
        const char *r = json_string_value(json_object_get(inner, "request-id"));
        if (r)
            snprintf(rid, sizeof rid, "%s", r);
        if (exo_errors) {
            /* Exchange: details[].message, then innererror.internalexception.message,
             * then error.message (which is often just "Invalid Operation"). */
            const char *best = NULL;
            json_t *details = json_object_get(e, "details");
            size_t i;
            json_t *d;
            json_array_foreach(details, i, d)
            {
                const char *dm = json_string_value(json_object_get(d, "message"));
                if (dm && *dm) {
                    best = dm;
                    break;
                }
            }
            if (!best) {
                json_t *ie = json_object_get(inner, "internalexception");
                if (!ie)
                    ie = json_object_get(inner, "internalException");
                best = json_string_value(json_object_get(ie, "message"));
            }
            if (!best)
                best = mm;
            /* "|Microsoft.Exchange...ManagementObjectNotFoundException|text" */
            if (best && best[0] == '|') {
                const char *end = strchr(best + 1, '|');
                if (end) {
                    const char *dot = end;
                    while (dot > best + 1 && dot[-1] != '.')
                        dot--;
                    snprintf(svc_code, sizeof svc_code, "%.*s", (int)(end - dot), dot);
                    best = end + 1;
                    if (strstr(svc_code, "NotFound"))
                        code = AS_ENOTFOUND;
                }
            }
            if (!svc_code[0] && c)
                snprintf(svc_code, sizeof svc_code, "%s", c);
            snprintf(msg, sizeof msg, "%s", best ? best : "");
        } else {
            snprintf(svc_code, sizeof svc_code, "%s", c ? c : "");
            snprintf(msg, sizeof msg, "%s", mm ? mm : "");
        }
    } else if (j && json_is_string(json_object_get(j, "error"))) {
        /* The token endpoint: {"error":"invalid_client","error_description":"AADSTS...\r\nTrace ID..."} */
        snprintf(svc_code, sizeof svc_code, "%s", json_string_value(json_object_get(j, "error")));
        const char *d = json_string_value(json_object_get(j, "error_description"));
        if (d)
            snprintf(msg, sizeof msg, "%.*s", (int)strcspn(d, "\r\n"), d);
        const char *t = json_string_value(json_object_get(j, "trace_id"));
        if (t && !rid[0])
            snprintf(rid, sizeof rid, "%s", t);
    } else if (resp->len) {
        size_t nul = 0;
        for (size_t i = 0; i < resp->len; i++)
            nul += resp->body[i] == '\0';
        if (nul == resp->len)
            snprintf(msg, sizeof msg, "the body is %zu NUL bytes instead of an error document",
                     resp->len);
        else {
            char ex[200];
            body_excerpt(resp->body, resp->len, ex, sizeof ex);
            snprintf(msg, sizeof msg, "non-JSON body: %s", ex);
        }
    }
    json_decref(j);

    const char *hint = "";
    if (exo_errors && s == 403)
        hint = " (the app needs the Exchange.ManageAsApp permission with admin consent and an "
               "Exchange Administrator role on its service principal; see docs/m365.md)";
    else if (exo_errors && s == 401)
        hint = " (no Exchange.ManageAsApp grant for the app, or the token was refused)";
    else if (s == 403 && strcmp(svc_code, "Authorization_RequestDenied") == 0)
        hint = " (grant the application permission this call needs, with admin consent; see "
               "docs/m365.md)";
    as_errf(err, code, "%s: HTTP %ld%s%s%s%s%s%s%s", what, s, svc_code[0] ? " " : "",
            svc_code, msg[0] ? ": " : "", msg, rid[0] ? " (request-id " : "", rid,
            rid[0] ? ")" : "");
    if (*hint) {
        size_t l = strlen(err ? err->msg : "");
        if (err && l + 1 < sizeof err->msg)
            snprintf(err->msg + l, sizeof err->msg - l, "%s", hint);
    }
    return code;
}

/* Map a non-2xx response to a message with the service's code and request id. */
static enum as_code map_http_error(const struct m365_req *req, const struct m365_resp *resp,
                                   struct as_err *err)
{
    return m365_http_error(req->what, req->exo_errors, resp, err);
}

/* ------------------------------------------------------------- tokens */

static enum as_code token_fetch(struct m365 *m, enum m365_svc svc, struct as_err *err)
{
    enum as_code rc = AS_OK;
    char *url = NULL, *form = NULL, *assertion = NULL;
    char *e_client = NULL, *e_scope = NULL, *e_secret = NULL;
    json_t *j = NULL;
    struct m365_resp resp = {0};
    const char *scope = svc == M365_SVC_EXO ? m->exo_scope : m->graph_scope;

    size_t ul = strlen(m->login_url) + strlen(m->tenant) + 32;
    url = malloc(ul);
    if (!url) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, ul, "%s/%s/oauth2/v2.0/token", m->login_url, m->tenant);
    e_client = m365_escape(m, m->client_id);
    e_scope = m365_escape(m, scope);
    if (!e_client || !e_scope) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (m->cert) {
        /* The audience is the token endpoint we post to. */
        rc = m365_jwt_assertion(m->cert, m->alg, m->client_id, url, time_now_ms() / 1000,
                                ASSERTION_LIFETIME_S, &assertion, err);
        if (rc)
            goto out;
        e_secret = m365_escape(m, assertion);
    } else {
        e_secret = m365_escape(m, m->secret);
    }
    if (!e_secret) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t fl = strlen(e_client) + strlen(e_scope) + strlen(e_secret) + 256;
    form = malloc(fl);
    if (!form) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (m->cert)
        snprintf(form, fl,
                 "client_id=%s&scope=%s&grant_type=client_credentials&client_assertion_type="
                 "urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&"
                 "client_assertion=%s",
                 e_client, e_scope, e_secret);
    else
        snprintf(form, fl, "client_id=%s&scope=%s&grant_type=client_credentials&client_secret=%s",
                 e_client, e_scope, e_secret);

    struct m365_req req = {
        .svc = M365_SVC_NONE,
        .what = svc == M365_SVC_EXO ? "token request (Exchange)" : "token request (Graph)",
        .method = "POST",
        .url = url,
        .body = form,
        .body_len = strlen(form),
        .content_type = "application/x-www-form-urlencoded",
        .max_body = 1024 * 1024,
        .parse_json = 1,
    };
    m->stats.token_requests++;
    rc = m365_call(m, &req, &resp, &j, err);
    if (rc) {
        if (rc == AS_EAUTH || rc == AS_EPERMANENT)
            rc = AS_EAUTH;
        goto out;
    }
    const char *tok = json_string_value(json_object_get(j, "access_token"));
    json_t *exp = json_object_get(j, "expires_in");
    long long expires = json_is_integer(exp) ? (long long)json_integer_value(exp)
                        : json_is_string(exp) ? strtoll(json_string_value(exp), NULL, 10)
                                              : 3599;
    if (!tok || !*tok || strlen(tok) > TOKEN_MAX) {
        rc = as_errf(err, AS_EAUTH, "%s: the response has no usable access_token", req.what);
        goto out;
    }
    if (expires <= 0)
        expires = 60;
    /* Refresh a little before expiry: 5 minutes, or a quarter of a short lifetime. */
    long long margin = expires / 4 < 300 ? expires / 4 : 300;
    token_clear(&m->tok[svc]);
    m->tok[svc].access = strdup(tok);
    if (!m->tok[svc].access) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    m->tok[svc].refresh_at_ms = time_mono_ms() + (expires - margin) * 1000;
    LOG_DEBUG("m365", "new %s token, valid %lld s", svc == M365_SVC_EXO ? "Exchange" : "Graph",
              expires);
out:
    if (j) {
        /* The token text inside the parsed response is wiped via a copy we own;
         * jansson's copy is freed here. */
        json_decref(j);
    }
    if (resp.body)
        explicit_bzero(resp.body, resp.len);
    m365_resp_free(&resp);
    if (form) {
        explicit_bzero(form, strlen(form));
        free(form);
    }
    if (e_secret) {
        explicit_bzero(e_secret, strlen(e_secret));
        curl_free(e_secret);
    }
    secret_free(assertion);
    curl_free(e_client);
    curl_free(e_scope);
    free(url);
    return rc;
}

static enum as_code token_get(struct m365 *m, enum m365_svc svc, const char **out,
                              struct as_err *err)
{
    struct m365_token *t = &m->tok[svc];
    if (!t->access || time_mono_ms() >= t->refresh_at_ms) {
        enum as_code rc = token_fetch(m, svc, err);
        if (rc)
            return rc;
    }
    *out = t->access;
    return AS_OK;
}

/* ------------------------------------------------------------- the call */

enum as_code m365_call(struct m365 *m, const struct m365_req *req, struct m365_resp *resp,
                       json_t **json, struct as_err *err)
{
    enum as_code rc = AS_OK;
    int refreshed = 0;
    char why[700];

    if (json)
        *json = NULL;
    m->retry_hint_ms = 0;
    for (int attempt = 1;; attempt++) {
        const char *bearer = NULL;
        int64_t wait = -1;
        resp_reset(resp, req);
        if (req->svc != M365_SVC_NONE) {
            rc = token_get(m, req->svc, &bearer, err);
            if (rc)
                return rc;
        }
        struct as_err herr = {0};
        enum as_code hrc = http_once(m, req, resp, bearer, &herr);
        if (hrc == AS_ELIMIT)
            return as_errf(err, AS_ELIMIT, "%s: response larger than %zu bytes", req->what,
                           resp->max);
        if (hrc == AS_ENOMEM || hrc == AS_EIO || hrc == AS_EINVAL || hrc == AS_EPERMANENT)
            return as_errf(err, hrc, "%s: %s", req->what, resp->reason[0] ? resp->reason : herr.msg);
        if (hrc != AS_OK) {
            snprintf(why, sizeof why, "%s: %s", req->what, resp->reason[0] ? resp->reason : herr.msg);
            if (req->write && resp->sent && !resp->unsent) {
                resp->ambiguous = 1;
                return as_errf(err, AS_ETRANSIENT,
                               "%s (the request was sent; the service may have acted)", why);
            }
        } else if (resp->status >= 200 && resp->status < 400) {
            if (!json || !req->parse_json || resp->len == 0 || resp->sink)
                return AS_OK;
            json_error_t jerr;
            *json = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, &jerr);
            if (*json)
                return AS_OK;
            snprintf(why, sizeof why, "%s: malformed JSON in the HTTP %ld response at line %d "
                     "column %d: %s", req->what, resp->status, jerr.line, jerr.column, jerr.text);
            if (req->write) {
                resp->ambiguous = 1;
                return as_errf(err, AS_ETRANSIENT, "%s", why);
            }
        } else if (resp->status == 401 && req->svc != M365_SVC_NONE && !refreshed) {
            /* The token may have been revoked or expired early: fetch a new one, once. */
            refreshed = 1;
            token_clear(&m->tok[req->svc]);
            LOG_DEBUG("m365", "%s: 401, refreshing the token", req->what);
            attempt--;
            continue;
        } else if (resp->status == 429 || resp->status == 503 || resp->status == 504 ||
                   resp->status == 500 || resp->status == 502) {
            struct as_err e2 = {0};
            map_http_error(req, resp, &e2);
            snprintf(why, sizeof why, "%s", e2.msg);
            int not_done = resp->status == 429 || resp->status == 503;
            if (req->write && !not_done) {
                resp->ambiguous = 1;
                return as_errf(err, AS_ETRANSIENT, "%s (the service may have acted)", why);
            }
            if (resp->retry_after[0] &&
                (resp->status == 429 || resp->status == 503 || resp->status == 504)) {
                wait = parse_retry_after(m, resp->retry_after);
                if (wait >= 0)
                    m->stats.retry_after_honoured++;
            }
        } else {
            return map_http_error(req, resp, err);
        }
        if (attempt >= m->max_attempts)
            return as_errf(err, AS_ETRANSIENT, "%s (gave up after %d attempts)", why, attempt);
        if (wait < 0)
            wait = backoff_ms(m, attempt);
        LOG_DEBUG("m365", "retry %d in %lld ms: %s", attempt, (long long)wait, why);
        rc = wait_or_give_up(m, wait, why, err);
        if (rc)
            return rc;
    }
}
