/*
 * sim_server.c - libmicrohttpd plumbing, routing, faults, stats and the
 * /_sim admin endpoints of the tenant simulator (see sim_server.h).
 *
 * Requests follow libmicrohttpd's three-call pattern: the first call
 * allocates per-request state (and refuses an announced body over the cap
 * with 413), the middle calls append body bytes up to SIM_MAX_BODY, the last
 * call answers.  Delays (the `slow` and `write_timeout` faults) do not block
 * a pool thread: the connection is suspended and a timer thread resumes it
 * when the delay is over, so other connections on the same thread proceed.
 */
#include "sim/sim_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

/* ---- request / response helpers (declared in sim.h) ----------------------------- */

const char *sim_req_query(const struct sim_req *r, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND,
                                       key);
}

const char *sim_req_header(const struct sim_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn, MHD_HEADER_KIND, name);
}

struct each_ctx {
    void (*cb)(void *ud, const char *key, const char *value);
    void *ud;
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct each_ctx *c = cls;
    (void)kind;
    c->cb(c->ud, key, value);
    return MHD_YES;
}

void sim_req_query_each(const struct sim_req *r,
                        void (*cb)(void *ud, const char *key, const char *value), void *ud)
{
    struct each_ctx c = {cb, ud};
    MHD_get_connection_values((struct MHD_Connection *)r->conn, MHD_GET_ARGUMENT_KIND, each_arg,
                              &c);
}

void sim_resp_header(struct sim_resp *o, const char *name, const char *fmt, ...)
{
    if (o->n_hdr >= (int)(sizeof o->hdr / sizeof o->hdr[0]))
        return;
    struct sim_hdr *h = &o->hdr[o->n_hdr++];
    str_copy(h->name, sizeof h->name, name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->value, sizeof h->value, fmt, ap);
    va_end(ap);
    /* header values never carry CR/LF, whatever a handler passed */
    for (char *p = h->value; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
}

void sim_resp_text(struct sim_resp *o, int status, const char *content_type, const char *text)
{
    strbuf_free(&o->body);
    strbuf_add(&o->body, text);
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, content_type);
}

void sim_resp_graph_error(struct sim_resp *o, const struct sim_req *r, int status,
                          const char *code, const char *message)
{
    char date[40];
    fmt_iso_s(now_ms(), date, sizeof date);
    date[19] = '\0'; /* "2020-08-18T12:51:51" as in the reference */
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_add(b, "{\"error\":{\"code\":");
    sbuf_json_str(b, code);
    strbuf_add(b, ",\"message\":");
    sbuf_json_str(b, message);
    strbuf_addf(b, ",\"innerError\":{\"date\":\"%s\",\"request-id\":\"%s\",\"client-request-id\":\"%s\"}}}",
                date, r->request_id, r->request_id);
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, "application/json");
}

void sim_sleep_ms(struct sim *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->sleep_lock);
    while (!s->stopping)
        if (pthread_cond_timedwait(&s->sleep_cond, &s->sleep_lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->sleep_lock);
}

int sim_persist(struct sim *s, uint64_t gen)
{
    if (!s->state_path)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&s->save_lock);
    if (s->saved_gen < gen) {
        char err[600];
        pthread_rwlock_rdlock(&s->lock);
        uint64_t cur = s->gen;
        rc = sim_state_save(&s->st, s->state_path, err, sizeof err);
        pthread_rwlock_unlock(&s->lock);
        if (rc == 0) {
            s->saved_gen = cur;
            s->n_saves++;
        } else {
            fprintf(stderr, "assent-tenant-sim: %s\n", err);
        }
    }
    pthread_mutex_unlock(&s->save_lock);
    return rc;
}

static void count_in(struct sim *s, json_t *obj, const char *key)
{
    pthread_mutex_lock(&s->stats_lock);
    json_t *v = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
    pthread_mutex_unlock(&s->stats_lock);
}

void sim_stats_count(struct sim *s, const char *label)
{
    count_in(s, s->stats_requests, label);
    pthread_mutex_lock(&s->stats_lock);
    s->n_requests++;
    pthread_mutex_unlock(&s->stats_lock);
}

void sim_stats_fault(struct sim *s, const char *kind)
{
    count_in(s, s->stats_faults, kind);
}

/* ---- init / free ----------------------------------------------------------------- */

void sim_init(struct sim *s, struct sim_state *st_taken, const char *state_path,
              const char *mail_dir, uint64_t fault_seed)
{
    memset(s, 0, sizeof *s);
    s->st = *st_taken;
    memset(st_taken, 0, sizeof *st_taken);
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->save_lock, NULL);
    pthread_mutex_init(&s->tok_lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->rl_lock, NULL);
    pthread_mutex_init(&s->sleep_lock, NULL);
    pthread_cond_init(&s->sleep_cond, NULL);
    s->state_path = str_dup(state_path);
    s->mail_dir = str_dup(mail_dir);
    s->stats_requests = json_object();
    s->stats_faults = json_object();
    s->stats_status = json_object();
    sim_faults_init(&s->faults, fault_seed);
    if (sim_oidc_init(s) != 0)
        fprintf(stderr, "assent-tenant-sim: no OpenID signing key (libcrypto failed)\n");
}

void sim_free(struct sim *s)
{
    sim_state_free(&s->st);
    free(s->state_path);
    free(s->mail_dir);
    json_decref(s->stats_requests);
    json_decref(s->stats_faults);
    json_decref(s->stats_status);
    sim_faults_free(&s->faults);
    sim_oidc_free(s);
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->save_lock);
    pthread_mutex_destroy(&s->tok_lock);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_mutex_destroy(&s->rl_lock);
    pthread_mutex_destroy(&s->sleep_lock);
    pthread_cond_destroy(&s->sleep_cond);
}

/* ---- delayed connections ------------------------------------------------------------ */

struct delayed {
    struct MHD_Connection *conn;
    int64_t due_ms;
};

struct sim_server {
    struct sim *s;
    struct MHD_Daemon *d;
    pthread_t timer;
    int timer_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct delayed *pending;
    size_t n_pending, cap_pending;
    int stopping;
};

/* Suspend conn for ms; returns 0, or -1 when stopping (the caller answers at once). */
static int delay_conn(struct sim_server *srv, struct MHD_Connection *conn, int64_t ms)
{
    int rc = 0;
    pthread_mutex_lock(&srv->lock);
    if (srv->stopping) {
        rc = -1;
    } else {
        if (srv->n_pending == srv->cap_pending) {
            size_t ncap = srv->cap_pending ? srv->cap_pending * 2 : 16;
            struct delayed *np = realloc(srv->pending, ncap * sizeof *np);
            if (!np)
                rc = -1;
            else {
                srv->pending = np;
                srv->cap_pending = ncap;
            }
        }
        if (rc == 0) {
            MHD_suspend_connection(conn);
            srv->pending[srv->n_pending].conn = conn;
            srv->pending[srv->n_pending].due_ms = now_ms() + ms;
            srv->n_pending++;
            pthread_cond_signal(&srv->cond);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static void *timer_main(void *arg)
{
    struct sim_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    while (!srv->stopping) {
        int64_t now = now_ms(), next = now + 1000;
        for (size_t i = 0; i < srv->n_pending;) {
            if (srv->pending[i].due_ms <= now) {
                MHD_resume_connection(srv->pending[i].conn);
                srv->pending[i] = srv->pending[--srv->n_pending];
                continue;
            }
            if (srv->pending[i].due_ms < next)
                next = srv->pending[i].due_ms;
            i++;
        }
        struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000L};
        pthread_cond_timedwait(&srv->cond, &srv->lock, &ts);
    }
    for (size_t i = 0; i < srv->n_pending; i++)
        MHD_resume_connection(srv->pending[i].conn);
    srv->n_pending = 0;
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ---- per-request state ---------------------------------------------------------------- */

enum phase { PH_NEW, PH_SLEPT, PH_READY };

struct conn_ctx {
    struct strbuf body;
    int too_big;
    enum phase phase;
    int has_fault;
    struct sim_fault fault;
    struct sim_resp resp; /* PH_READY: the answer held back by write_timeout */
    char label[96];
    char request_id[37];
    char cmdlet[64];
};

static void ctx_free(struct conn_ctx *cc)
{
    strbuf_free(&cc->body);
    strbuf_free(&cc->resp.body);
    free(cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls)
        ctx_free(*con_cls);
    *con_cls = NULL;
}

static enum MHD_Result send_resp(struct sim *s, struct MHD_Connection *c, struct sim_resp *o)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        o->body.len, o->body.p ? o->body.p : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (o->content_type[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, o->content_type);
    for (int i = 0; i < o->n_hdr; i++)
        MHD_add_response_header(resp, o->hdr[i].name, o->hdr[i].value);
    char st[8];
    snprintf(st, sizeof st, "%d", o->status);
    count_in(s, s->stats_status, st);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)o->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- routing --------------------------------------------------------------------------- */

enum area { A_ADMIN, A_TOKEN, A_GRAPH, A_DOWNLOAD, A_EXO, A_OIDC, A_UNKNOWN };

/* The OpenID provider's paths below /{tenant}: their name for sim_oidc_route. */
static const struct {
    const char *suffix, *what;
} oidc_paths[] = {
    {"/v2.0/.well-known/openid-configuration", "discovery"},
    {"/discovery/v2.0/keys", "keys"},
    {"/oauth2/v2.0/authorize", "authorize"},
};

/* Classify the path; tenant (for token/EXO) and download id are copied out. */
static enum area classify(const char *path, char *tenant, size_t tsize, char *id, size_t idsize)
{
    tenant[0] = id[0] = '\0';
    if (str_starts(path, "/_sim/"))
        return A_ADMIN;
    if (!strncmp(path, "/v1.0/", 6) || !strncmp(path, "/beta/", 6))
        return A_GRAPH;
    if (str_starts(path, "/data/download/")) {
        const char *p = path + 15;
        if (!*p || strchr(p, '/') || strlen(p) >= idsize)
            return A_UNKNOWN;
        str_copy(id, idsize, p);
        return A_DOWNLOAD;
    }
    if (!strncasecmp(path, "/adminapi/beta/", 15)) {
        const char *p = path + 15;
        const char *slash = strchr(p, '/');
        if (!slash || slash == p || (size_t)(slash - p) >= tsize || strcasecmp(slash, "/InvokeCommand"))
            return A_UNKNOWN;
        memcpy(tenant, p, (size_t)(slash - p));
        tenant[slash - p] = '\0';
        return A_EXO;
    }
    for (size_t i = 0; i < sizeof oidc_paths / sizeof oidc_paths[0]; i++) {
        size_t pl = strlen(path), sl = strlen(oidc_paths[i].suffix);
        if (pl > sl + 1 && !strcmp(path + pl - sl, oidc_paths[i].suffix)) {
            size_t tl = pl - sl - 1;
            if (tl >= tsize || memchr(path + 1, '/', tl) || idsize < 16)
                return A_UNKNOWN;
            memcpy(tenant, path + 1, tl);
            tenant[tl] = '\0';
            str_copy(id, idsize, oidc_paths[i].what);
            return A_OIDC;
        }
    }
    const char *suffix = "/oauth2/v2.0/token";
    size_t pl = strlen(path), sl = strlen(suffix);
    if (pl > sl + 1 && !strcmp(path + pl - sl, suffix)) {
        size_t tl = pl - sl - 1;
        if (tl >= tsize || memchr(path + 1, '/', tl))
            return A_UNKNOWN;
        memcpy(tenant, path + 1, tl);
        tenant[tl] = '\0';
        return A_TOKEN;
    }
    return A_UNKNOWN;
}

static void admin_route(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *m = r->method;
    json_t *out = NULL;
    if (str_starts(r->path, "/_sim/openid")) {
        sim_oidc_admin(s, r, o);
        return;
    }
    if (!strcmp(r->path, "/_sim/health") && !strcmp(m, "GET")) {
        sim_resp_text(o, 200, "application/json", "{\"status\":\"ok\"}");
        return;
    }
    if (!strcmp(r->path, "/_sim/stats")) {
        if (!strcmp(m, "DELETE")) {
            pthread_mutex_lock(&s->stats_lock);
            json_object_clear(s->stats_requests);
            json_object_clear(s->stats_faults);
            json_object_clear(s->stats_status);
            s->n_requests = 0;
            pthread_mutex_unlock(&s->stats_lock);
            sim_resp_text(o, 200, "application/json", "{}");
            return;
        }
        if (strcmp(m, "GET") != 0)
            goto bad_method;
        pthread_mutex_lock(&s->stats_lock);
        out = json_pack("{s:I, s:O, s:O, s:O}", "requests_total", (json_int_t)s->n_requests,
                        "requests", s->stats_requests, "faults_injected", s->stats_faults,
                        "status", s->stats_status);
        pthread_mutex_unlock(&s->stats_lock);
        pthread_mutex_lock(&s->save_lock);
        json_object_set_new(out, "state_saves", json_integer((json_int_t)s->n_saves));
        pthread_mutex_unlock(&s->save_lock);
        pthread_rwlock_rdlock(&s->lock);
        json_object_set_new(out, "users", json_integer((json_int_t)s->st.n_users));
        json_object_set_new(out, "sign_ins", json_integer((json_int_t)s->st.n_signins));
        json_object_set_new(out, "sent_mail", json_integer((json_int_t)json_array_size(s->st.sent_mail)));
        pthread_rwlock_unlock(&s->lock);
        goto send;
    }
    if (!strcmp(r->path, "/_sim/sent_mail") && !strcmp(m, "GET")) {
        /* save_lock too: jansson's copy and dump must not run on one value at once */
        pthread_mutex_lock(&s->save_lock);
        pthread_rwlock_rdlock(&s->lock);
        out = json_deep_copy(s->st.sent_mail);
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(&s->save_lock);
        goto send;
    }
    if (!strcmp(r->path, "/_sim/faults")) {
        if (!strcmp(m, "DELETE")) {
            sim_faults_clear(&s->faults);
        } else if (!strcmp(m, "POST")) {
            json_error_t je;
            json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
            char err[300];
            const char *append = sim_req_query(r, "append");
            if (!doc) {
                snprintf(err, sizeof err, "faults: invalid JSON: %s", je.text);
            } else if (sim_faults_set_json(&s->faults, doc, !(append && !strcmp(append, "1")), err,
                                           sizeof err) == 0) {
                err[0] = '\0';
            }
            json_decref(doc);
            if (err[0]) {
                json_t *e = json_pack("{s:s}", "error", err);
                char *txt = json_dumps(e, JSON_COMPACT);
                sim_resp_text(o, 400, "application/json", txt ? txt : "{}");
                free(txt);
                json_decref(e);
                return;
            }
        } else if (strcmp(m, "GET") != 0) {
            goto bad_method;
        }
        out = json_pack("{s:o}", "faults", sim_faults_to_json(&s->faults));
        goto send;
    }
    if (!strcmp(r->path, "/_sim/users") || !strcmp(r->path, "/_sim/sign_ins")) {
        /* add a user, or sign-in events (one object or an array), in the state file's shape */
        if (strcmp(m, "POST") != 0)
            goto bad_method;
        int users = !strcmp(r->path, "/_sim/users");
        json_error_t je;
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
        char err[400] = "";
        size_t added = 0;
        if (!doc) {
            snprintf(err, sizeof err, "invalid JSON: %s", je.text);
        } else {
            pthread_rwlock_wrlock(&s->lock);
            if (users) {
                if (sim_state_add_user_json(&s->st, doc, err, sizeof err) == 0)
                    added = 1;
            } else {
                json_t *one = json_is_array(doc) ? NULL : doc;
                size_t n = one ? 1 : json_array_size(doc);
                for (size_t i = 0; i < n; i++)
                    if (sim_state_add_signin_json(&s->st, one ? one : json_array_get(doc, i), err,
                                                  sizeof err) != 0)
                        break;
                    else
                        added++;
            }
            uint64_t gen = added ? ++s->gen : 0;
            pthread_rwlock_unlock(&s->lock);
            if (added && sim_persist(s, gen) != 0 && !err[0])
                snprintf(err, sizeof err, "the state could not be saved");
        }
        json_decref(doc);
        out = err[0] ? json_pack("{s:s, s:I}", "error", err, "added", (json_int_t)added)
                     : json_pack("{s:I}", "added", (json_int_t)added);
        if (err[0]) {
            char *txt = json_dumps(out, JSON_COMPACT);
            sim_resp_text(o, err[0] && strstr(err, "already taken") ? 409 : 400, "application/json",
                          txt ? txt : "{}");
            free(txt);
            json_decref(out);
            return;
        }
        char *txt = json_dumps(out, JSON_COMPACT);
        sim_resp_text(o, 201, "application/json", txt ? txt : "{}");
        free(txt);
        json_decref(out);
        return;
    }
    if (!strcmp(r->path, "/_sim/transport")) {
        /* the organisation's transport settings changed outside Assent */
        if (strcmp(m, "PATCH") != 0)
            goto bad_method;
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
        json_t *smtp = json_object_get(doc, "SmtpClientAuthenticationDisabled");
        json_t *tls = json_object_get(doc, "AllowLegacyTLSClients");
        if (!json_is_object(doc) || (smtp && !json_is_boolean(smtp)) || (tls && !json_is_boolean(tls))) {
            json_decref(doc);
            sim_resp_text(o, 400, "application/json",
                          "{\"error\":\"SmtpClientAuthenticationDisabled / AllowLegacyTLSClients: true or false\"}");
            return;
        }
        pthread_rwlock_wrlock(&s->lock);
        int changed = sim_transport_apply(&s->st, smtp ? json_is_true(smtp) : -1,
                                          tls ? json_is_true(tls) : -1);
        uint64_t gen = changed ? ++s->gen : 0;
        pthread_rwlock_unlock(&s->lock);
        json_decref(doc);
        if (changed && sim_persist(s, gen) != 0)
            sim_resp_text(o, 500, "application/json", "{\"error\":\"state not saved\"}");
        else
            sim_resp_text(o, 200, "application/json", changed ? "{\"changed\":true}" : "{\"changed\":false}");
        return;
    }
    if (str_starts(r->path, "/_sim/mailboxes/")) {
        /* someone changes a mailbox outside Assent (admin center, another
         * script): CAS properties as JSON, e.g. {"PopEnabled": true} */
        if (strcmp(m, "PATCH") != 0)
            goto bad_method;
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
        if (!json_is_object(doc)) {
            json_decref(doc);
            sim_resp_text(o, 400, "application/json", "{\"error\":\"a JSON object of CAS properties\"}");
            return;
        }
        pthread_rwlock_wrlock(&s->lock);
        int idx = sim_state_find_user(&s->st, r->path + 16);
        struct sim_mailbox *mb = idx >= 0 ? s->st.users[idx].mbx : NULL;
        int changed = mb ? sim_mailbox_apply(&s->st, mb, doc) : 0;
        uint64_t gen = changed ? ++s->gen : 0;
        pthread_rwlock_unlock(&s->lock);
        json_decref(doc);
        if (!mb)
            sim_resp_text(o, 404, "application/json", "{\"error\":\"no such mailbox\"}");
        else if (changed && sim_persist(s, gen) != 0)
            sim_resp_text(o, 500, "application/json", "{\"error\":\"state not saved\"}");
        else
            sim_resp_text(o, 200, "application/json", changed ? "{\"changed\":true}" : "{\"changed\":false}");
        return;
    }
    if (!strcmp(r->path, "/_sim/organization_config") ||
        str_starts(r->path, "/_sim/mailbox_plans")) {
        sim_org_admin(s, r, o);
        return;
    }
    if (str_starts(r->path, "/_sim/conditional_access") || str_starts(r->path, "/_sim/apps/")) {
        sim_ca_admin(s, r, o);
        return;
    }
    if (str_starts(r->path, "/_sim/users/")) {
        if (strcmp(m, "DELETE") != 0)
            goto bad_method;
        pthread_rwlock_wrlock(&s->lock);
        int idx = sim_state_find_user(&s->st, r->path + 12);
        int ok = idx >= 0 && sim_state_remove_user(&s->st, idx) == 0;
        uint64_t gen = ok ? ++s->gen : 0;
        pthread_rwlock_unlock(&s->lock);
        if (ok && sim_persist(s, gen) != 0)
            ok = 0;
        if (ok)
            sim_resp_text(o, 204, "", "");
        else
            sim_resp_text(o, 404, "application/json", "{\"error\":\"no such user\"}");
        return;
    }
    sim_resp_text(o, 404, "application/json", "{\"error\":\"no such admin endpoint\"}");
    return;
bad_method:
    sim_resp_text(o, 405, "application/json", "{\"error\":\"method not allowed\"}");
    return;
send: {
    char *txt = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(out);
    if (!txt) {
        sim_resp_text(o, 500, "application/json", "{\"error\":\"out of memory\"}");
        return;
    }
    sim_resp_text(o, 200, "application/json", txt);
    free(txt);
}
}

static void dispatch(struct sim *s, struct sim_req *r, struct sim_resp *o, enum area a,
                     const char *tenant, const char *id)
{
    switch (a) {
    case A_ADMIN:
        admin_route(s, r, o);
        break;
    case A_TOKEN:
        if (strcmp(r->method, "POST") != 0)
            sim_resp_text(o, 405, "application/json",
                          "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS900561: "
                          "The endpoint only accepts POST requests.\"}");
        else
            sim_token_endpoint(s, r, o, tenant);
        break;
    case A_GRAPH:
        sim_graph_route(s, r, o);
        break;
    case A_DOWNLOAD:
        if (strcmp(r->method, "GET") != 0)
            sim_resp_text(o, 405, "text/plain", "GET only\n");
        else
            sim_graph_download(s, r, o, id);
        break;
    case A_EXO:
        sim_exo_invoke(s, r, o, tenant);
        break;
    case A_OIDC:
        sim_oidc_route(s, r, o, tenant, id);
        break;
    case A_UNKNOWN:
        sim_resp_text(o, 404, "application/json",
                      "{\"error\":{\"code\":\"NotFound\",\"message\":\"The simulator has no such "
                      "endpoint.\"}}");
        break;
    }
}

/*
 * The immediate fault answers (all but slow, malformed, write_timeout, drop).
 * Graph's 429 body is documented; the 503/504/500 bodies, and using Graph's
 * shape on Exchange paths, are assumed [?].
 */
static void fault_answer(struct sim_req *r, struct sim_resp *o, const struct sim_fault *f,
                         enum area a)
{
    switch (f->kind) {
    case SIM_FAULT_429: {
        char date[40];
        fmt_iso_s(now_ms(), date, sizeof date);
        date[19] = '\0';
        struct strbuf *b = &o->body;
        strbuf_free(b);
        strbuf_addf(b,
                    "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"Please retry again "
                    "later.\",\"innerError\":{\"code\":\"429\",\"date\":\"%s\",\"message\":"
                    "\"Please retry after\",\"request-id\":\"%s\",\"status\":\"429\"}}}",
                    date, r->request_id);
        o->status = 429;
        str_copy(o->content_type, sizeof o->content_type, "application/json");
        break;
    }
    case SIM_FAULT_503:
        sim_resp_graph_error(o, r, 503, "serviceNotAvailable",
                             "The service is temporarily unavailable. Please retry later.");
        break;
    case SIM_FAULT_504:
        sim_resp_graph_error(o, r, 504, "UnknownError", "Gateway timeout.");
        break;
    case SIM_FAULT_500:
        sim_resp_graph_error(o, r, 500, "generalException", "An internal error occurred.");
        break;
    case SIM_FAULT_EXPIRED_TOKEN:
        sim_token_unauthorized(o, r, a == A_EXO ? SIM_RES_EXO : SIM_RES_GRAPH,
                               "Lifetime validation failed, the token is expired.");
        break;
    case SIM_FAULT_NUL403: {
        strbuf_free(&o->body);
        char zeros[256] = {0};
        for (int64_t left = f->body_len; left > 0; left -= (int64_t)sizeof zeros)
            strbuf_addn(&o->body, zeros, left < (int64_t)sizeof zeros ? (size_t)left : sizeof zeros);
        o->status = 403;
        str_copy(o->content_type, sizeof o->content_type, "application/json; charset=utf-8");
        break;
    }
    default:
        break;
    }
    if ((f->kind == SIM_FAULT_429 || f->kind == SIM_FAULT_503) && f->retry_after[0]) {
        if (!strcmp(f->retry_after, "date")) {
            char d[64];
            /* an HTTP-date rounds down to the second: add one so the wait is never short */
            fmt_http_date(now_ms() + (f->retry_after_s + 1) * 1000, d, sizeof d);
            sim_resp_header(o, "Retry-After", "%s", d);
        } else {
            sim_resp_header(o, "Retry-After", "%s", f->retry_after);
        }
    }
}

static void common_headers(struct sim_req *r, struct sim_resp *o, enum area a)
{
    if (a == A_GRAPH || a == A_DOWNLOAD) {
        const char *crid = sim_req_header(r, "client-request-id");
        int ok = crid && strlen(crid) < 100 && !strpbrk(crid, "\r\n");
        sim_resp_header(o, "request-id", "%s", r->request_id);
        sim_resp_header(o, "client-request-id", "%s", ok ? crid : r->request_id);
    } else if (a == A_EXO) {
        sim_resp_header(o, "Request-Id", "%s", r->request_id);
    }
}

static int host_ok(const char *h)
{
    return h && *h && strlen(h) < 256 &&
           strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-[]") ==
               strlen(h);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct sim_server *srv = cls;
    struct sim *s = srv->s;
    struct conn_ctx *cc = *con_cls;
    (void)version;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc)
            return MHD_NO;
        *con_cls = cc;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > SIM_MAX_BODY) {
            struct sim_resp o = {0};
            sim_resp_text(&o, 413, "application/json",
                          "{\"error\":{\"code\":\"RequestEntityTooLarge\",\"message\":\"The "
                          "request body is over the simulator's limit.\"}}");
            enum MHD_Result ret = send_resp(s, c, &o);
            strbuf_free(&o.body);
            cc->phase = PH_READY; /* answered */
            cc->too_big = 2;
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cc->too_big) {
            if (cc->body.len + *upload_data_size > SIM_MAX_BODY) {
                cc->too_big = 1;
                strbuf_free(&cc->body);
            } else {
                strbuf_addn(&cc->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cc->too_big == 2)
        return MHD_YES; /* the 413 is already queued */

    struct sim_req r = {0};
    struct sim_resp o = {0};
    enum MHD_Result ret;
    r.conn = c;
    r.method = method;
    r.path = url;
    r.body = cc->body.p;
    r.body_len = cc->body.len;
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    snprintf(r.base_url, sizeof r.base_url, "http://%s", host_ok(host) ? host : "127.0.0.1");
    if (!cc->request_id[0])
        guid_random(cc->request_id);
    str_copy(r.request_id, sizeof r.request_id, cc->request_id);

    char tenant[256], id[64];
    enum area a = classify(url, tenant, sizeof tenant, id, sizeof id);

    if (cc->phase == PH_READY) {
        /* resumed after write_timeout's delay: send what was prepared */
        ret = send_resp(s, c, &cc->resp);
        return ret;
    }
    if (cc->phase == PH_NEW) {
        if (a == A_EXO) {
            sim_exo_peek_cmdlet(r.body, r.body_len, cc->cmdlet, sizeof cc->cmdlet);
            snprintf(cc->label, sizeof cc->label, "exo.%s",
                     cc->cmdlet[0] ? cc->cmdlet : "InvokeCommand");
        } else {
            const char *l = a == A_ADMIN      ? "admin"
                            : a == A_TOKEN    ? "token"
                            : a == A_GRAPH    ? sim_graph_label(method, url)
                            : a == A_DOWNLOAD ? "reports.download"
                            : a == A_OIDC     ? (!strcmp(id, "keys")        ? "oidc.keys"
                                                 : !strcmp(id, "discovery") ? "oidc.discovery"
                                                                            : "oidc.authorize")
                                              : "unknown";
            str_copy(cc->label, sizeof cc->label, l);
        }
        if (a != A_ADMIN)
            sim_stats_count(s, cc->label);
        if (cc->too_big) {
            sim_resp_text(&o, 413, "application/json",
                          "{\"error\":{\"code\":\"RequestEntityTooLarge\",\"message\":\"The "
                          "request body is over the simulator's limit.\"}}");
            goto answer;
        }
        if (a != A_ADMIN && sim_faults_pick(&s->faults, method, url, cc->label,
                                            cc->cmdlet[0] ? cc->cmdlet : NULL, &cc->fault)) {
            cc->has_fault = 1;
            sim_stats_fault(s, sim_fault_kind_name(cc->fault.kind));
            if (cc->fault.kind == SIM_FAULT_DROP)
                return MHD_NO; /* close the socket, answer nothing */
            if (cc->fault.kind == SIM_FAULT_SLOW) {
                cc->phase = PH_SLEPT;
                if (delay_conn(srv, c, cc->fault.delay_ms) == 0)
                    return MHD_YES;
            }
        }
    }
    r.label = cc->label;
    str_copy(r.cmdlet, sizeof r.cmdlet, cc->cmdlet);
    if (cc->has_fault && cc->fault.kind != SIM_FAULT_SLOW && cc->fault.kind != SIM_FAULT_MALFORMED &&
        cc->fault.kind != SIM_FAULT_WRITE_TIMEOUT) {
        fault_answer(&r, &o, &cc->fault, a);
    } else {
        dispatch(s, &r, &o, a, tenant, id);
        if (cc->has_fault && cc->fault.kind == SIM_FAULT_MALFORMED && o.body.len > 1) {
            o.body.len /= 2; /* a truncated document */
            o.body.p[o.body.len] = '\0';
        }
    }
answer:
    common_headers(&r, &o, a);
    if (cc->has_fault && cc->fault.kind == SIM_FAULT_WRITE_TIMEOUT) {
        cc->resp = o; /* the change is saved; the answer comes too late */
        cc->phase = PH_READY;
        if (delay_conn(srv, c, cc->fault.delay_ms) == 0)
            return MHD_YES;
        ret = send_resp(s, c, &cc->resp);
        return ret;
    }
    ret = send_resp(s, c, &o);
    strbuf_free(&o.body);
    return ret;
}

/* ---- start / stop ------------------------------------------------------------------------ */

int sim_server_start(struct sim *s, const struct sim_server_opts *o, struct sim_server **out,
                     int *port_out, char *err, size_t err_size)
{
    struct sim_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    srv->s = s;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->listen_host, &addr.sin_addr) != 1) {
        snprintf(err, err_size, "--listen: '%s' is not a numeric IPv4 address", o->listen_host);
        goto fail;
    }
    if (pthread_create(&srv->timer, NULL, timer_main, srv) != 0) {
        snprintf(err, err_size, "cannot start the timer thread");
        goto fail;
    }
    srv->timer_started = 1;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    srv->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, srv,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads > 0 ? o->threads : 4),
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_END);
    if (!srv->d) {
        snprintf(err, err_size, "cannot listen on %s:%d: %s", o->listen_host, o->port,
                 strerror(errno ? errno : EADDRINUSE));
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = info ? info->port : o->port;
    *out = srv;
    return 0;
fail:
    if (srv->timer_started) {
        pthread_mutex_lock(&srv->lock);
        srv->stopping = 1;
        pthread_cond_signal(&srv->cond);
        pthread_mutex_unlock(&srv->lock);
        pthread_join(srv->timer, NULL);
    }
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->cond);
    free(srv);
    return -1;
}

void sim_server_stop(struct sim *s, struct sim_server *srv)
{
    pthread_mutex_lock(&s->sleep_lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->sleep_cond);
    pthread_mutex_unlock(&s->sleep_lock);
    /* resume every suspended connection so the daemon can finish them */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = 1;
    pthread_cond_signal(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    pthread_join(srv->timer, NULL);
    MHD_stop_daemon(srv->d);
    pthread_rwlock_rdlock(&s->lock);
    uint64_t gen = s->gen;
    pthread_rwlock_unlock(&s->lock);
    (void)sim_persist(s, gen);
    free(srv->pending);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->cond);
    free(srv);
}
