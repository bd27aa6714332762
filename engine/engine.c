/*
 * engine.c - the executor (contract in engine.h).
 *
 * Threads.  One dispatcher thread owns the write path; N worker threads run
 * steps.  They share two in-memory queues under one mutex:
 *
 *   todo: claimed work, leased in SQLite, not started yet   (dispatcher -> workers)
 *   done: finished attempts with their result              (workers -> dispatcher)
 *
 * The dispatcher loop takes everything in `done`, and in ONE transaction
 * records each result (the execution's row, its events, the next step's row
 * or the end of the run) and claims more due work, commits, and only then
 * puts the claims on `todo`.  So results of many steps share one commit
 * (group commit), and a result is durable together with its successor.
 *
 * Claims are prefetched beyond the idle workers (a few per worker when steps
 * are fast), which is what makes batches large; a queued claim whose lease
 * has become too short to run the step safely is handed back unstarted.
 *
 * Workers read what a step may refer to (run input, earlier outputs) through
 * reader connections, resolve the step's ${...} parameters, call execute(),
 * and serialise the result to text, so the dispatcher's transaction only
 * binds and steps prepared statements.
 */
#include "engine/engine.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "engine/config.h"
#include "engine/expr.h"
#include "engine/log.h"
#include "engine/timeutil.h"
#include "engine/workflow.h"
#include "steps/step.h"

#define POLL_MS 200               /* notice other processes' writes at least this often */
#define PREFETCH_PER_WORKER 32    /* queued claims per worker when steps are fast */
#define QUEUE_TARGET_MS 1000      /* ...as long as the queue drains within this */
#define LEASE_SAFETY_MS 1000      /* a queued claim needs timeout + this left to start */
#define MAX_OUTPUT_BYTES (1024 * 1024)
#define MAX_STEP_EVENTS 64
#define RECORD_RETRY_MS 500
/* A step whose claim was lost this often (its process died each time, maybe
 * because of it) fails instead of taking the engine down again and again. */
#define MAX_RECOVERIES 20

/* The final shape of an attempt, decided by the worker. */
enum work_kind {
    WK_RELEASE,   /* never started: hand the claim back */
    WK_SUCCEEDED, /* follow next[outcome] */
    WK_WAITING,
    WK_RETRY,
    WK_FAILED,    /* follow next.error, else fail the run */
};

struct step_event_text {
    char *type;
    char *data;
    char digest[65]; /* db_event_digest(data), computed by the worker */
};

struct work {
    struct work *next;
    struct db_claim c;
    const struct workflow *wf;  /* NULL when the version could not be loaded */
    const struct wf_step *step; /* NULL when wf is NULL or lacks the step */
    char *load_error;           /* why wf/step is NULL */

    /* filled by the worker */
    enum work_kind kind;
    int64_t started_ms, finished_ms, due_at;
    char outcome[32];
    char *params, *output, *wait_state, *error; /* JSON text / message, NULL when none */
    char *event_type;                           /* step.succeeded, step.retry, ... */
    char *event_data;
    char event_digest[65];
    struct step_event_text *events;
    size_t n_events;
    int record_failures;
    /* {"input","steps","run"} as the step saw it, plus its own result once done:
     * handed to the run's next step when the dispatcher claims that at once, so
     * it need not be read back from the database (NULL: read it). */
    json_t *scope;
};

struct wf_cache_entry {
    struct wf_cache_entry *next;
    char hash[65];
    struct workflow *wf;
    char *error;
};

struct engine {
    struct app *app;
    int n_workers;
    char owner[160];
    int64_t lease_margin_ms;
    int64_t default_wait_ms;

    pthread_t dispatcher;
    pthread_t *workers;
    int dispatcher_started;
    int n_workers_started;

    pthread_mutex_t lock;
    pthread_cond_t work_cond;  /* workers wait for todo */
    pthread_cond_t disp_cond;  /* dispatcher waits for done / wake */
    pthread_cond_t ended_cond; /* engine_wait_run waits for run ends */
    struct work *todo_head, *todo_tail;
    struct work *done_head, *done_tail;
    size_t n_todo, n_busy;
    int wake;
    int stopping;
    int quit_workers;
    int64_t grace_deadline_mono;
    uint64_t ended_gen;
    struct engine_stats stats;
    double avg_step_ms; /* moving average of attempt durations (dispatcher only) */

    pthread_mutex_t cache_lock;
    struct wf_cache_entry *cache;

    struct engine *next_abandoned; /* see engine_stop */
    struct db_event_chain chain;   /* dispatcher only: event chain head within its transaction */
};

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *dump(const json_t *v)
{
    /* Compact, in the objects' own key order: the audit hash covers the stored
     * text exactly, so no canonical (sorted) form is needed, and sorting was a
     * large part of a step's cost. */
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Hex SHA-256 of a string into out[65]; 0 on success. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* fetched once: an implicit fetch per digest is slow */

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int sha256_hex(const char *s, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(s, strlen(s), md, &len, sha256_md, NULL) || len != 32)
        return -1;
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

static void work_free(struct work *w)
{
    if (!w)
        return;
    json_decref(w->scope);
    db_claim_clear(&w->c);
    free(w->load_error);
    free(w->params);
    free(w->output);
    free(w->wait_state);
    free(w->error);
    free(w->event_type);
    free(w->event_data);
    for (size_t i = 0; i < w->n_events; i++) {
        free(w->events[i].type);
        free(w->events[i].data);
    }
    free(w->events);
    free(w);
}

static void cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Wait on c for at most ms (monotonic clock). */
static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

/* A uniformly random double in [0,1) from a thread-local xorshift64*. */
static double rand01(void)
{
    static __thread uint64_t s;
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
            (uint64_t)(uintptr_t)&s;
        if (!s)
            s = 0x9e3779b97f4a7c15ULL;
    }
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (double)((s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/*
 * Backoff before attempt `attempt`+1: full jitter over
 * min(max_backoff, backoff * factor^(attempt-1)), at least 1 ms.
 */
static int64_t backoff_ms(const struct wf_retry *r, int attempt)
{
    double cap = (double)r->backoff_ms * pow(r->factor > 0 ? r->factor : 1.0, attempt - 1);
    if (cap > (double)r->max_backoff_ms)
        cap = (double)r->max_backoff_ms;
    if (cap < 1)
        cap = 1;
    int64_t d = (int64_t)(rand01() * cap);
    return d < 1 ? 1 : d;
}

/* ---- owner identity and dead-process detection ---------------------------- */

/* Start time of pid in clock ticks since boot (field 22 of /proc/pid/stat), or -1. */
static long long proc_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: skip to the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        while (*p == ' ')
            p++;
        while (*p && *p != ' ')
            p++;
        if (!*p)
            return -1;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    return end == p ? -1 : v;
}

static void make_owner(char *buf, size_t size)
{
    char host[96] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/')
            *p = '_';
    snprintf(buf, size, "%s/%ld/%lld", host, (long)getpid(), proc_start_time((long)getpid()));
}

/*
 * 1 when `owner` ("host/pid/start") names a process of this host that no
 * longer exists (or a recycled pid), so its leases can be expired at once.
 */
static int owner_is_dead(const char *self, const char *owner)
{
    const char *s1 = strchr(self, '/');
    const char *o1 = strchr(owner, '/');
    if (!s1 || !o1 || s1 - self != o1 - owner || strncmp(self, owner, (size_t)(s1 - self)))
        return 0; /* another host: only its lease tells */
    char *end;
    long pid = strtol(o1 + 1, &end, 10);
    if (end == o1 + 1 || *end != '/' || pid <= 0)
        return 0;
    long long start = strtoll(end + 1, NULL, 10);
    if (start < 0)
        return 0; /* it could not know its own start time: don't guess */
    if (pid == (long)getpid())
        return strcmp(self, owner) != 0;
    long long now_start = proc_start_time(pid);
    return now_start != start; /* -1: no such process */
}

struct owner_list {
    char **v;
    size_t n, cap;
    const char *self;
};

static int collect_dead_owner(void *ud, const char *owner)
{
    struct owner_list *l = ud;
    if (!owner_is_dead(l->self, owner))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return 1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(owner);
    if (l->v[l->n])
        l->n++;
    return 0;
}

/* Expire the leases of dead processes of this host, so their steps are recovered now. */
static enum as_code expire_dead_owners(struct engine *e, struct as_err *err)
{
    struct db *db = e->app->db;
    struct db_conn *conn;
    struct owner_list l = {.self = e->owner};
    enum as_code rc = db_read_begin(db, &conn, err);
    if (rc)
        return rc;
    rc = db_exec_lease_owners(conn, collect_dead_owner, &l, err);
    db_read_end(db, conn);
    if (rc || l.n == 0)
        goto out;
    rc = db_write_begin(db, &conn, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < l.n && !rc; i++) {
        int64_t n = 0;
        rc = db_exec_expire_owner(conn, l.v[i], &n, err);
        if (!rc)
            LOG_WARN("engine", "process %s is gone: %" PRId64 " of its steps will run again",
                     l.v[i], n);
    }
    if (rc)
        db_write_rollback(db);
    else
        rc = db_write_commit(db, err);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

/* ---- workflow versions, cached by hash ------------------------------------ */

/*
 * The workflow stored under hash, parsed once per process.  Returns NULL
 * and sets *error (borrowed, lives as long as e) when it cannot be loaded.
 */
static const struct workflow *wf_cached(struct engine *e, const char *hash, const char **error)
{
    pthread_mutex_lock(&e->cache_lock);
    struct wf_cache_entry *ce;
    for (ce = e->cache; ce; ce = ce->next)
        if (strcmp(ce->hash, hash) == 0)
            break;
    if (!ce) {
        ce = calloc(1, sizeof *ce);
        if (!ce) {
            pthread_mutex_unlock(&e->cache_lock);
            *error = "out of memory";
            return NULL;
        }
        snprintf(ce->hash, sizeof ce->hash, "%s", hash);
        struct as_err err = {0};
        struct db_conn *conn;
        char *def = NULL;
        enum as_code rc = db_read_begin(e->app->db, &conn, &err);
        if (!rc) {
            rc = db_workflow_get(conn, hash, &def, &err);
            db_read_end(e->app->db, conn);
        }
        if (!rc) {
            char origin[80];
            snprintf(origin, sizeof origin, "db:%.12s", hash);
            rc = wf_load_string(def, origin, &ce->wf, NULL, &err);
        }
        free(def);
        if (rc) {
            char msg[1200];
            snprintf(msg, sizeof msg, "workflow version %.12s cannot be loaded: %s", hash,
                     err.msg[0] ? err.msg : as_strerror(rc));
            ce->error = strdup(msg);
            LOG_ERROR("engine", "%s", msg);
            if (rc == AS_EDB) {
                /* A database hiccup is not a property of the version: retry next time. */
                free(ce->error);
                free(ce);
                pthread_mutex_unlock(&e->cache_lock);
                *error = "the workflow definition could not be read from the database";
                return NULL;
            }
        }
        ce->next = e->cache;
        e->cache = ce;
    }
    pthread_mutex_unlock(&e->cache_lock);
    *error = ce->error ? ce->error : "out of memory";
    return ce->wf;
}

/* ---- workers ---------------------------------------------------------------- */

struct scope_build {
    json_t *steps;
};

static json_t *parse_or_string(const char *text)
{
    if (!text || !*text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

static int scope_add_step(void *ud, const struct db_exec_info *ex)
{
    struct scope_build *sb = ud;
    json_t *o = json_object();
    if (!o)
        return 1;
    int failed = strcmp(ex->status, "failed") == 0;
    json_object_set_new(o, "output", parse_or_string(ex->output));
    json_object_set_new(o, "outcome", json_string(failed ? "error" : ex->outcome));
    json_object_set_new(o, "status", json_string(ex->status));
    if (failed)
        json_object_set_new(o, "error", json_string(ex->error));
    json_object_set_new(sb->steps, ex->step, o); /* a later visit replaces an earlier one */
    return 0;
}

/* Build the scope of ${...} references: {"input", "steps", "run"}. */
static enum as_code load_scope(struct engine *e, struct work *w, json_t **scope,
                               struct as_err *err)
{
    struct db_conn *conn;
    char *input_text = NULL;
    struct scope_build sb = {.steps = json_object()};
    *scope = NULL;
    if (!sb.steps)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_read_begin(e->app->db, &conn, err);
    if (rc)
        goto out;
    rc = db_run_scope(conn, w->c.run_id, &input_text, scope_add_step, &sb, err);
    db_read_end(e->app->db, conn);
    if (rc)
        goto out;
    json_t *input = json_loads(input_text, 0, NULL);
    if (!input)
        input = json_object();
    *scope = json_pack("{s:o, s:O, s:{s:I, s:s, s:s, s:b}}", "input", input, "steps",
                       sb.steps, "run", "id", (json_int_t)w->c.run_id, "workflow", w->wf->name,
                       "version", w->wf->version, "dry_run", w->c.dry_run);
    if (!*scope)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    json_decref(sb.steps);
    free(input_text);
    return rc;
}

static void set_error(struct work *w, const char *fmt, ...) AS_PRINTF(2, 3);
static void set_error(struct work *w, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(w->error);
    w->error = strdup(buf);
}

/* A growing string for building JSON text by hand (OOM makes sb_take return NULL). */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_i64(struct sbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    sb_addn(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a surrogate */
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

/* s as a JSON string literal: controls, quote and backslash escaped, invalid
 * UTF-8 (a step's error may quote a peer's bytes) replaced by U+FFFD. */
static void sb_json_str(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_addn(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)s);
            if (n) {
                s += n - 1;
                continue;
            }
            sb_addn(b, run, (size_t)(s - run));
            sb_add(b, "\\ufffd");
            run = s + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_addn(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        sb_add(b, esc);
        run = s + 1;
    }
    sb_addn(b, run, (size_t)(s - run));
    sb_addn(b, "\"", 1);
}

static char *sb_take(struct sbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* Turn the step's result into the record the dispatcher writes. */
static void settle(struct engine *e, struct work *w, struct step_result *res, json_t *events)
{
    const struct wf_retry *retry = w->step ? &w->step->retry : NULL;
    int max_attempts = retry ? retry->attempts : 1;
    int64_t now = w->finished_ms;

    switch (res->status) {
    case STEP_OK:
        w->kind = WK_SUCCEEDED;
        snprintf(w->outcome, sizeof w->outcome, "%s", res->outcome[0] ? res->outcome : "success");
        if (res->output) {
            w->output = dump(res->output);
            if (w->output && strlen(w->output) > MAX_OUTPUT_BYTES) {
                free(w->output);
                w->output = NULL;
                w->kind = WK_FAILED;
                set_error(w, "the step's output is larger than %d bytes", MAX_OUTPUT_BYTES);
            }
        }
        break;
    case STEP_WAIT:
        w->kind = WK_WAITING;
        w->due_at = res->wait_until_ms > 0 ? res->wait_until_ms : now + e->default_wait_ms;
        w->wait_state = res->wait_state ? dump(res->wait_state) : NULL;
        break;
    case STEP_RETRY:
        set_error(w, "%s", res->error[0] ? res->error : "transient failure");
        if (w->c.attempt < max_attempts) {
            w->kind = WK_RETRY;
            w->due_at = now + backoff_ms(retry, w->c.attempt);
            if (res->wait_until_ms > w->due_at)
                w->due_at = res->wait_until_ms;
        } else {
            w->kind = WK_FAILED;
            set_error(w, "gave up after %d attempt%s: %s", w->c.attempt,
                      w->c.attempt == 1 ? "" : "s", res->error[0] ? res->error : "transient failure");
        }
        break;
    case STEP_FAILED:
    default:
        w->kind = WK_FAILED;
        set_error(w, "%s", res->error[0] ? res->error : "failed");
        break;
    }
    if (w->kind == WK_FAILED)
        snprintf(w->outcome, sizeof w->outcome, "error");

    static const char *const types[] = {"", "step.succeeded", "step.waiting", "step.retry",
                                        "step.failed"};
    /* The event's JSON is written directly: a step's cost is mostly JSON work. */
    struct sbuf b = {0};
    sb_add(&b, "{\"step\":");
    sb_json_str(&b, w->c.step);
    sb_add(&b, ",\"attempt\":");
    sb_i64(&b, w->c.attempt);
    sb_add(&b, ",\"started_at\":");
    sb_i64(&b, w->started_ms);
    sb_add(&b, ",\"duration_ms\":");
    sb_i64(&b, w->finished_ms - w->started_ms);
    if (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED) {
        sb_add(&b, ",\"outcome\":");
        sb_json_str(&b, w->outcome);
    }
    if (w->error) {
        sb_add(&b, ",\"error\":");
        sb_json_str(&b, w->error);
    }
    if (w->kind == WK_WAITING || w->kind == WK_RETRY) {
        sb_add(&b, w->kind == WK_WAITING ? ",\"until\":" : ",\"next_at\":");
        sb_i64(&b, w->due_at);
    }
    if (w->c.deadline_reached)
        sb_add(&b, ",\"deadline_reached\":true");
    if (w->c.dry_run)
        sb_add(&b, ",\"dry_run\":true");
    sb_add(&b, "}");
    w->event_type = strdup(types[w->kind]);
    w->event_data = sb_take(&b);
    if (db_event_digest(w->event_data, w->event_digest))
        w->event_digest[0] = '\0';

    size_t n = json_array_size(events);
    if (n > MAX_STEP_EVENTS) {
        LOG_WARN("engine", "run %" PRId64 " step %s appended %zu events; keeping %d",
                 w->c.run_id, w->c.step, n, MAX_STEP_EVENTS);
        n = MAX_STEP_EVENTS;
    }
    if (n) {
        w->events = calloc(n, sizeof *w->events);
        for (size_t i = 0; w->events && i < n; i++) {
            const json_t *item = json_array_get(events, i);
            const char *t = json_string_value(json_object_get(item, "type"));
            w->events[w->n_events].type = strdup(t ? t : "step.event");
            w->events[w->n_events].data = dump(json_object_get(item, "data"));
            if (db_event_digest(w->events[w->n_events].data, w->events[w->n_events].digest))
                w->events[w->n_events].digest[0] = '\0';
            w->n_events++;
        }
    }
}

/*
 * Add the finished step to its scope for the run's next step: exactly what
 * load_scope() would read back once the result is committed.  A step that
 * does not end (retry, wait) gives its scope up.
 */
static void keep_scope(struct work *w, struct step_result *res)
{
    json_t *steps = json_object_get(w->scope, "steps");
    json_t *o = NULL;
    if (steps && (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED)) {
        int failed = w->kind == WK_FAILED;
        o = json_pack("{s:O, s:s, s:s}", "output",
                      w->output && res->output ? res->output : json_null(), "outcome",
                      w->outcome, "status", failed ? "failed" : "succeeded");
        if (o && failed)
            json_object_set_new(o, "error", json_string(w->error ? w->error : ""));
    }
    if (!o || json_object_set_new(steps, w->c.step, o) != 0) {
        json_decref(w->scope);
        w->scope = NULL;
    }
}

static void run_work(struct engine *e, struct work *w)
{
    struct step_result res;
    struct as_err err = {0};
    json_t *params = NULL, *resume = NULL, *wait_state = NULL;
    json_t *events = json_array();
    memset(&res, 0, sizeof res);

    w->started_ms = time_now_ms();
    if (!w->wf || !w->step) {
        step_fail(&res, "%s", w->load_error ? w->load_error : "step not found in its workflow");
        goto done;
    }
    if (w->c.recoveries > MAX_RECOVERIES) {
        step_fail(&res, "the engine stopped %d times while running this step; not trying again "
                  "(`assent retry` re-queues it)", w->c.recoveries);
        goto done;
    }
    enum as_code rc = w->scope ? AS_OK : load_scope(e, w, &w->scope, &err);
    if (rc) {
        step_retry(&res, 0, "could not read the run's state: %s", err.msg);
        goto done;
    }
    json_t *scope = w->scope;
    rc = tmpl_resolve(w->step->params, scope, &params, &err);
    if (rc) {
        /* Same scope, same answer: a parameter that does not resolve never will. */
        step_fail(&res, "parameters: %s", err.msg);
        goto done;
    }
    w->params = dump(params);
    resume = w->c.resume ? parse_or_string(w->c.resume) : NULL;
    wait_state = w->c.wait_state ? parse_or_string(w->c.wait_state) : NULL;

    struct step_ctx ctx = {
        .app = e->app,
        .run_id = w->c.run_id,
        .exec_id = w->c.exec_id,
        .workflow = w->wf->name,
        .step_name = w->c.step,
        .idempotency_key = w->c.idempotency_key,
        .attempt = w->c.attempt,
        .max_attempts = w->step->retry.attempts,
        .timeout_ms = w->step->timeout_ms,
        .now_ms = w->started_ms,
        .dry_run = w->c.dry_run,
        .params = params,
        .input = json_object_get(scope, "input"),
        .steps = json_object_get(scope, "steps"),
        .resume = resume,
        .wait_state = wait_state,
        .deadline_reached = w->c.deadline_reached,
        .events = events,
    };
    w->step->type->execute(&ctx, &res);

done:
    w->finished_ms = time_now_ms();
    if (w->step && w->finished_ms - w->started_ms > w->step->timeout_ms)
        LOG_WARN("engine", "run %" PRId64 " step %s ran %" PRId64 " ms, past its timeout of %" PRId64
                 " ms; its result is kept",
                 w->c.run_id, w->c.step, w->finished_ms - w->started_ms, w->step->timeout_ms);
    settle(e, w, &res, events);
    keep_scope(w, &res);
    json_decref(res.output);
    json_decref(res.wait_state);
    json_decref(events);
    json_decref(resume);
    json_decref(wait_state);
    json_decref(params);
}

static void *worker_main(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->todo_head && !e->quit_workers)
            pthread_cond_wait(&e->work_cond, &e->lock);
        if (!e->todo_head)
            break;
        struct work *w = e->todo_head;
        e->todo_head = w->next;
        if (!e->todo_head)
            e->todo_tail = NULL;
        w->next = NULL;
        e->n_todo--;
        e->n_busy++;
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);

        int64_t need = (w->step ? w->step->timeout_ms : 0) + LEASE_SAFETY_MS;
        if (stopping || w->c.lease_until - time_now_ms() < need)
            w->kind = WK_RELEASE;
        else
            run_work(e, w);

        pthread_mutex_lock(&e->lock);
        if (e->done_tail)
            e->done_tail->next = w;
        else
            e->done_head = w;
        e->done_tail = w;
        e->n_busy--;
        e->stats.steps += w->kind != WK_RELEASE;
        pthread_cond_signal(&e->disp_cond);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- dispatcher: recording results and claiming work ----------------------- */

/* Append an event (data is stolen) through the transaction's chain cache. */
static enum as_code event_json(struct db_conn *conn, struct db_event_chain *chain, int64_t run_id,
                               int64_t exec_id, const char *type, json_t *data, int64_t now,
                               struct as_err *err)
{
    char *text = dump(data);
    json_decref(data);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc =
        db_event_append_chained(conn, chain, run_id, exec_id, type, text, NULL, now, err);
    free(text);
    return rc;
}

/* What one transaction claims, in order; published to the workers after its commit. */
struct claims {
    struct work *head, **tail;
    size_t n;
    size_t want; /* at most this many */
    size_t idle; /* the first `idle` go straight to a free worker, the rest are queued */
};

static void claims_add(struct claims *cl, struct work *w)
{
    *cl->tail = w;
    cl->tail = &w->next;
    cl->n++;
}

static void claims_free(struct claims *cl)
{
    while (cl->head) {
        struct work *nx = cl->head->next;
        work_free(cl->head);
        cl->head = nx;
    }
    cl->tail = &cl->head;
    cl->n = 0;
}

/* Lease for a claim: the step's timeout plus the configured margin. */
static int64_t lease_for(struct engine *e, const struct wf_step *step, int64_t now)
{
    int64_t timeout = step ? step->timeout_ms : WF_DEFAULT_TIMEOUT_MS;
    return now + timeout + e->lease_margin_ms;
}

/* End a run (succeeded/failed) with its event. */
static enum as_code end_run(struct engine *e, struct db_conn *conn, struct work *w,
                            const char *status, const char *error, int64_t now, int *ended,
                            struct as_err *err)
{
    enum as_code rc = db_run_set_status(conn, w->c.run_id, status, error, now, err);
    if (rc)
        return rc;
    struct sbuf b = {0};
    sb_add(&b, "{\"step\":");
    sb_json_str(&b, w->c.step);
    if (error) {
        sb_add(&b, ",\"error\":");
        sb_json_str(&b, error);
    }
    sb_add(&b, "}");
    char *data = sb_take(&b);
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    char type[32];
    snprintf(type, sizeof type, "run.%s", status);
    (*ended)++;
    rc = db_event_append_chained(conn, &e->chain, w->c.run_id, 0, type, data, NULL, now, err);
    free(data);
    return rc;
}

/*
 * After a step ended with `outcome`: insert its successor or end the run.
 * While this transaction may claim more, the successor is inserted already
 * claimed, with the finished step's scope: the run goes on without a
 * round trip through the claim query or a re-read of its state.
 */
static enum as_code schedule_next(struct engine *e, struct db_conn *conn, struct work *w,
                                  const char *outcome, int64_t now, int *ended,
                                  struct claims *cl, struct as_err *err)
{
    const struct wf_step *next = w->wf && w->step ? wf_next(w->wf, w->step, outcome) : NULL;
    if (!next) {
        if (strcmp(outcome, "error") == 0) {
            char msg[1300];
            snprintf(msg, sizeof msg, "step %s failed: %s", w->c.step,
                     w->error ? w->error : "failed");
            return end_run(e, conn, w, "failed", msg, now, ended, err);
        }
        return end_run(e, conn, w, "succeeded", NULL, now, ended, err);
    }
    if (cl->n >= cl->want)
        return db_exec_insert(conn, w->c.run_id, next->name, now, now, NULL, err);
    struct work *nw = calloc(1, sizeof *nw);
    if (!nw)
        return as_errf(err, AS_ENOMEM, "out of memory");
    /* The scope lists every step the run has ended; a step it lacks was never
     * reached (a run has one open step at a time), so this is its first visit. */
    json_t *seen = json_object_get(w->scope, "steps");
    int visit_hint = seen && !json_object_get(seen, next->name) ? 1 : 0;
    enum as_code rc =
        db_exec_insert_claimed(conn, w->c.run_id, next->name, visit_hint, now, e->owner,
                               lease_for(e, next, now), cl->n >= cl->idle, &nw->c, err);
    if (rc) {
        free(nw);
        return rc;
    }
    memcpy(nw->c.workflow_hash, w->c.workflow_hash, sizeof nw->c.workflow_hash);
    nw->c.dry_run = w->c.dry_run;
    nw->wf = w->wf;
    nw->step = next;
    nw->scope = w->scope; /* moved: w is done with it */
    w->scope = NULL;
    claims_add(cl, nw);
    return AS_OK;
}

/*
 * Write one finished attempt.  AS_ECONFLICT (stale claim: cancelled, or
 * re-claimed elsewhere after its lease expired) writes nothing and is not
 * an error for the transaction; anything else is.
 */
static enum as_code record(struct engine *e, struct db_conn *conn, struct work *w, int64_t now,
                           int *ended, struct claims *cl, struct as_err *err)
{
    enum as_code rc;
    if (w->kind == WK_RELEASE)
        return db_exec_release(conn, w->c.exec_id, e->owner, w->c.attempt, err);

    static const char *const status[] = {"", "succeeded", "waiting", "ready", "failed"};
    struct db_exec_result r = {
        .exec_id = w->c.exec_id,
        .owner = e->owner,
        .attempt = w->c.attempt,
        .status = status[w->kind],
        .due_at = w->due_at,
        .params = w->params,
        .output = w->output,
        .outcome = (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED) ? w->outcome : NULL,
        .error = w->error,
        .wait_state = w->wait_state,
        .finished_at = w->finished_ms,
    };
    rc = db_exec_record(conn, &r, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < w->n_events; i++) {
        const char *dg = w->events[i].digest[0] ? w->events[i].digest : NULL;
        rc = db_event_append_chained(conn, &e->chain, w->c.run_id, w->c.exec_id,
                                     w->events[i].type, w->events[i].data, dg, now, err);
        if (rc == AS_EINVAL) {
            /* A step named its event badly: keep the event under a generic type. */
            json_t *d = json_pack("{s:s, s:o}", "type", w->events[i].type, "data",
                                  parse_or_string(w->events[i].data));
            rc = event_json(conn, &e->chain, w->c.run_id, w->c.exec_id, "step.event", d, now,
                            err);
        }
        if (rc)
            return rc;
    }
    rc = db_event_append_chained(conn, &e->chain, w->c.run_id, w->c.exec_id, w->event_type,
                                 w->event_data, w->event_digest[0] ? w->event_digest : NULL, now,
                                 err);
    if (rc)
        return rc;
    switch (w->kind) {
    case WK_SUCCEEDED:
        return schedule_next(e, conn, w, w->outcome, now, ended, cl, err);
    case WK_FAILED:
        return schedule_next(e, conn, w, "error", now, ended, cl, err);
    case WK_WAITING:
        rc = db_run_set_status(conn, w->c.run_id, "waiting", NULL, now, err);
        return rc == AS_ECONFLICT ? AS_OK : rc;
    default:
        return AS_OK;
    }
}

/* Claim due executions until cl->want. */
static enum as_code claim(struct engine *e, struct db_conn *conn, int64_t now, struct claims *cl,
                          struct as_err *err)
{
    size_t want = cl->want > cl->n ? cl->want - cl->n : 0;
    if (!want)
        return AS_OK;
    struct db_claim *found = calloc(want, sizeof *found);
    size_t n = 0;
    enum as_code rc = AS_OK;
    if (!found)
        return as_errf(err, AS_ENOMEM, "out of memory");
    rc = db_exec_due(conn, now, e->owner, want, found, &n, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct work *w = calloc(1, sizeof *w);
        if (!w) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        w->c = found[i];
        memset(&found[i], 0, sizeof found[i]);
        const char *load_error = NULL;
        w->wf = wf_cached(e, w->c.workflow_hash, &load_error);
        if (w->wf) {
            w->step = wf_step_find(w->wf, w->c.step);
            if (!w->step) {
                char msg[300];
                snprintf(msg, sizeof msg, "workflow %s has no step \"%s\"", w->wf->name,
                         w->c.step);
                w->load_error = strdup(msg);
            }
        } else {
            w->load_error = xstrdup(load_error);
        }
        /* Claims beyond the idle workers wait in the queue: losing one of those
         * in a crash says nothing about the step (see db_exec_take). */
        w->c.queued = cl->n >= cl->idle;
        rc = db_exec_take(conn, &w->c, e->owner, now, lease_for(e, w->step, now), err);
        if (rc == AS_ECONFLICT) {
            work_free(w);
            rc = AS_OK;
            continue;
        }
        claims_add(cl, w);
        if (!rc && strcmp(w->c.prev_status, "waiting") == 0) {
            rc = db_run_set_status(conn, w->c.run_id, "running", NULL, now, err);
            if (rc == AS_ECONFLICT)
                rc = AS_OK;
        }
        if (!rc && w->c.recovered) {
            LOG_WARN("engine",
                     "run %" PRId64 " step %s: the claim of %s was lost; running it again "
                     "(attempt %d, same idempotency key)",
                     w->c.run_id, w->c.step, w->c.prev_owner ? w->c.prev_owner : "?",
                     w->c.attempt);
            rc = event_json(conn, &e->chain, w->c.run_id, w->c.exec_id, "step.recovered",
                            json_pack("{s:s, s:i, s:i, s:s}", "step", w->c.step, "attempt",
                                      w->c.attempt, "recoveries", w->c.recoveries,
                                      "previous_owner", w->c.prev_owner ? w->c.prev_owner : ""),
                            now, err);
        }
        if (rc)
            goto out;
    }
out:
    for (size_t i = 0; i < n; i++)
        db_claim_clear(&found[i]);
    free(found);
    return rc;
}

/*
 * One group-commit transaction: record every result in `done` (a list),
 * then claim up to `want` (successors of the recorded steps first).  On
 * success *claimed and *n_claimed hold the claims and *next_due is refreshed
 * when fewer than wanted were found.  On failure nothing is written and the
 * items of `done` can be recorded again (a successor's scope may be gone:
 * it is then read from the database).
 */
static enum as_code txn(struct engine *e, struct work *done, size_t want, size_t idle,
                        struct work **claimed, size_t *n_claimed, int64_t *next_due, int *ended,
                        struct as_err *err)
{
    struct db *db = e->app->db;
    struct db_conn *conn;
    int64_t now = time_now_ms();
    struct claims cl = {.want = want, .idle = idle};
    cl.tail = &cl.head;
    *claimed = NULL;
    *n_claimed = 0;
    *ended = 0;
    enum as_code rc = db_write_begin(db, &conn, err);
    if (rc)
        return rc;
    memset(&e->chain, 0, sizeof e->chain);
    for (struct work *w = done; w; w = w->next) {
        rc = record(e, conn, w, now, ended, &cl, err);
        if (rc == AS_ECONFLICT) {
            LOG_WARN("engine", "run %" PRId64 " step %s: result discarded: %s", w->c.run_id,
                     w->c.step, err->msg);
            rc = AS_OK;
        }
        if (rc)
            goto fail;
    }
    if (want) {
        rc = claim(e, conn, now, &cl, err);
        if (rc)
            goto fail;
        if (cl.n < want) {
            rc = db_exec_next_due(conn, e->owner, next_due, err);
            if (rc)
                goto fail;
        } else {
            *next_due = now;
        }
    }
    rc = db_write_commit(db, err);
    if (rc)
        goto fail_committed;
    *claimed = cl.head;
    *n_claimed = cl.n;
    return AS_OK;
fail:
    db_write_rollback(db);
fail_committed:
    claims_free(&cl);
    *ended = 0;
    return rc;
}

static size_t capacity(struct engine *e)
{
    /* Queue claims beyond the idle workers while the queue drains quickly. */
    double per = e->avg_step_ms > 0.01 ? e->avg_step_ms : 0.01;
    double extra = (double)e->n_workers * QUEUE_TARGET_MS / per;
    double cap = (double)e->n_workers * PREFETCH_PER_WORKER;
    if (extra > cap)
        extra = cap;
    return (size_t)e->n_workers + (size_t)extra;
}

static void *dispatcher_main(void *arg)
{
    struct engine *e = arg;
    struct work *pending = NULL, **pending_tail = &pending; /* results not yet written */
    int64_t next_due = 0, next_poll = 0, retry_at = 0;
    int failures = 0;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        /* Take finished results; on stop, hand back queued claims unstarted. */
        if (e->done_head) {
            *pending_tail = e->done_head;
            pending_tail = &e->done_tail->next;
            e->done_head = e->done_tail = NULL;
        }
        if (e->stopping && e->todo_head) {
            for (struct work *w = e->todo_head; w; w = w->next)
                w->kind = WK_RELEASE;
            *pending_tail = e->todo_head;
            pending_tail = &e->todo_tail->next;
            e->todo_head = e->todo_tail = NULL;
            e->n_todo = 0;
        }
        int stopping = e->stopping;
        int woken = e->wake;
        e->wake = 0;
        size_t inflight = e->n_todo + e->n_busy;
        size_t idle = (size_t)e->n_workers > inflight ? (size_t)e->n_workers - inflight : 0;
        pthread_mutex_unlock(&e->lock);

        int64_t now = time_now_ms();
        size_t cap = capacity(e);
        size_t want = !stopping && cap > inflight ? cap - inflight : 0;
        /* Recording results schedules successors: claim in the same transaction. */
        int try_claim = want > 0 && (pending || woken || now >= next_due || now >= next_poll);
        if (try_claim && !pending && !woken && now < next_due) {
            /* Only the poll timer fired: look before taking the write lock. */
            struct as_err err = {0};
            struct db_conn *conn;
            next_poll = now + POLL_MS;
            if (db_read_begin(e->app->db, &conn, &err) == AS_OK) {
                if (db_exec_next_due(conn, e->owner, &next_due, &err) != AS_OK)
                    next_due = now;
                db_read_end(e->app->db, conn);
            }
            try_claim = next_due <= now;
        }
        if ((pending || try_claim) && now >= retry_at) {
            struct as_err err = {0};
            struct work *claimed = NULL;
            size_t n_claimed = 0;
            int ended = 0;
            if (try_claim)
                next_poll = now + POLL_MS;
            enum as_code rc = txn(e, pending, try_claim ? want : 0, idle, &claimed, &n_claimed,
                                  &next_due, &ended, &err);
            if (rc && pending && pending->next) {
                /* Find the result that cannot be written: one transaction each. */
                LOG_WARN("engine", "group commit failed (%s); writing results one by one", err.msg);
                struct work *keep = NULL, **keep_tail = &keep;
                while (pending) {
                    struct work *w = pending;
                    pending = w->next;
                    w->next = NULL;
                    struct work *none = NULL;
                    size_t n0 = 0;
                    int64_t nd = next_due;
                    int en = 0;
                    if (txn(e, w, 0, 0, &none, &n0, &nd, &en, &err) == AS_OK) {
                        ended += en;
                        work_free(w);
                    } else {
                        *keep_tail = w;
                        keep_tail = &w->next;
                    }
                }
                pending = keep;
                pending_tail = keep_tail;
                rc = pending ? AS_EDB : AS_OK;
            } else if (!rc) {
                while (pending) {
                    struct work *nx = pending->next;
                    double ms = (double)(pending->finished_ms - pending->started_ms);
                    if (pending->kind != WK_RELEASE)
                        e->avg_step_ms = e->avg_step_ms * 0.9 + ms * 0.1;
                    work_free(pending);
                    pending = nx;
                }
                pending_tail = &pending;
            }
            if (rc) {
                failures++;
                retry_at = time_now_ms() + RECORD_RETRY_MS;
                LOG_ERROR("engine", "cannot write step results (try %d): %s", failures, err.msg);
                if (pending && failures >= 3) {
                    /* A result that cannot be written even alone: record it as a
                     * failure of the step instead, so the run is not stuck. */
                    for (struct work *w = pending; w; w = w->next) {
                        if (w->kind == WK_RELEASE || w->record_failures++ < 2)
                            continue;
                        free(w->output);
                        free(w->wait_state);
                        w->output = w->wait_state = NULL;
                        w->kind = WK_FAILED;
                        snprintf(w->outcome, sizeof w->outcome, "error");
                        set_error(w, "the engine could not record this step's result: %s",
                                  err.msg);
                        free(w->event_type);
                        w->event_type = strdup("step.failed");
                    }
                }
            } else {
                failures = 0;
            }
            pthread_mutex_lock(&e->lock);
            e->stats.transactions += rc == AS_OK;
            if (claimed) {
                struct work *last = claimed;
                while (last->next)
                    last = last->next;
                if (e->todo_tail)
                    e->todo_tail->next = claimed;
                else
                    e->todo_head = claimed;
                e->todo_tail = last;
                e->n_todo += n_claimed;
                if (n_claimed == 1)
                    pthread_cond_signal(&e->work_cond);
                else
                    pthread_cond_broadcast(&e->work_cond);
            }
            if (ended) {
                e->stats.runs_ended += (uint64_t)ended;
                e->ended_gen++;
                pthread_cond_broadcast(&e->ended_cond);
            }
            /* More may be due right away (we claimed all we wanted). */
            continue;
        }

        pthread_mutex_lock(&e->lock);
        if (e->stopping && !e->done_head && !e->todo_head &&
            ((!pending && e->n_busy == 0) || time_mono_ms() >= e->grace_deadline_mono))
            break;
        if (e->done_head || e->wake || (e->stopping && e->todo_head))
            continue;
        now = time_now_ms();
        int64_t wait = POLL_MS;
        /* A due claim matters only with room for it; else a finishing worker wakes us. */
        if (!e->stopping && capacity(e) > e->n_todo + e->n_busy && next_due - now < wait)
            wait = next_due - now;
        if (pending && retry_at - now < wait)
            wait = retry_at - now;
        if (e->stopping && e->grace_deadline_mono - time_mono_ms() < wait)
            wait = e->grace_deadline_mono - time_mono_ms();
        if (wait > 0)
            cond_wait_ms(&e->disp_cond, &e->lock, wait);
    }
    pthread_mutex_unlock(&e->lock);
    while (pending) {
        struct work *nx = pending->next;
        LOG_ERROR("engine", "run %" PRId64 " step %s: result lost at shutdown; the step runs "
                  "again on the next start",
                  pending->c.run_id, pending->c.step);
        work_free(pending);
        pending = nx;
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void engine_free(struct engine *e)
{
    while (e->todo_head) {
        struct work *nx = e->todo_head->next;
        work_free(e->todo_head);
        e->todo_head = nx;
    }
    while (e->done_head) {
        struct work *nx = e->done_head->next;
        work_free(e->done_head);
        e->done_head = nx;
    }
    while (e->cache) {
        struct wf_cache_entry *nx = e->cache->next;
        wf_free(e->cache->wf);
        free(e->cache->error);
        free(e->cache);
        e->cache = nx;
    }
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->cache_lock);
    pthread_cond_destroy(&e->work_cond);
    pthread_cond_destroy(&e->disp_cond);
    pthread_cond_destroy(&e->ended_cond);
    free(e->workers);
    free(e);
}

enum as_code engine_start(struct app *app, int n_workers, struct engine **out, struct as_err *err)
{
    *out = NULL;
    if (n_workers < 1)
        return as_errf(err, AS_EINVAL, "the engine needs at least one worker");
    struct engine *e = calloc(1, sizeof *e);
    if (!e)
        return as_errf(err, AS_ENOMEM, "out of memory");
    e->app = app;
    e->n_workers = n_workers;
    e->avg_step_ms = 50;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->cache_lock, NULL);
    cond_init_mono(&e->work_cond);
    cond_init_mono(&e->disp_cond);
    cond_init_mono(&e->ended_cond);
    make_owner(e->owner, sizeof e->owner);
    e->lease_margin_ms = config_int(app->cfg, "lease_seconds") * 1000;
    enum as_code rc = time_parse_duration(config_str(app->cfg, "default_wait"),
                                          &e->default_wait_ms, err);
    if (rc) {
        as_err_prefix(err, "default_wait");
        goto fail;
    }
    e->workers = calloc((size_t)n_workers, sizeof *e->workers);
    if (!e->workers) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    rc = expire_dead_owners(e, err);
    if (rc)
        goto fail;
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&e->workers[i], NULL, worker_main, e) != 0) {
            rc = as_errf(err, AS_ENOMEM, "cannot start worker thread: %s", strerror(errno));
            goto fail_threads;
        }
        e->n_workers_started++;
    }
    if (pthread_create(&e->dispatcher, NULL, dispatcher_main, e) != 0) {
        rc = as_errf(err, AS_ENOMEM, "cannot start dispatcher thread: %s", strerror(errno));
        goto fail_threads;
    }
    e->dispatcher_started = 1;
    app->engine = e;
    LOG_INFO("engine", "started: %d workers, owner %s", n_workers, e->owner);
    *out = e;
    return AS_OK;
fail_threads:
    pthread_mutex_lock(&e->lock);
    e->quit_workers = 1;
    pthread_cond_broadcast(&e->work_cond);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->n_workers_started; i++)
        pthread_join(e->workers[i], NULL);
fail:
    engine_free(e);
    return rc;
}

void engine_wake(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->wake = 1;
    pthread_cond_signal(&e->disp_cond);
    pthread_mutex_unlock(&e->lock);
}

/* Engines whose threads outlived engine_stop's grace: kept reachable on purpose. */
static struct engine *abandoned;

enum as_code engine_stop(struct engine *e, int64_t grace_ms)
{
    if (!e)
        return AS_OK;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    e->grace_deadline_mono = time_mono_ms() + (grace_ms > 0 ? grace_ms : 0);
    pthread_cond_signal(&e->disp_cond);
    pthread_mutex_unlock(&e->lock);
    if (e->dispatcher_started)
        pthread_join(e->dispatcher, NULL);

    pthread_mutex_lock(&e->lock);
    e->quit_workers = 1;
    pthread_cond_broadcast(&e->work_cond);
    size_t busy = e->n_busy;
    pthread_mutex_unlock(&e->lock);
    if (e->app->engine == e)
        e->app->engine = NULL;
    if (busy) {
        LOG_WARN("engine", "%zu step(s) still running after the grace period; they keep their "
                 "lease and run again on the next start",
                 busy);
        for (int i = 0; i < e->n_workers_started; i++)
            pthread_detach(e->workers[i]);
        e->next_abandoned = abandoned;
        abandoned = e;
        return AS_ETIMEOUT;
    }
    for (int i = 0; i < e->n_workers_started; i++)
        pthread_join(e->workers[i], NULL);
    LOG_INFO("engine", "stopped: %" PRIu64 " step attempts in %" PRIu64 " transactions",
             e->stats.steps, e->stats.transactions);
    engine_free(e);
    return AS_OK;
}

void engine_get_stats(struct engine *e, struct engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    pthread_mutex_unlock(&e->lock);
}

/* ---- runs ----------------------------------------------------------------- */

static enum as_code submit_locked(struct db_conn *conn, struct db_event_chain *chain,
                                  const struct workflow *wf, int64_t wf_id,
                                  const json_t *input, const char *dedupe_key,
                                  const struct engine_run_opts *opts, int64_t now, int64_t *run_id,
                                  struct as_err *err)
{
    char *text = dump(input);
    json_t *data = NULL;
    enum as_code rc;
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct db_run_new r = {
        .workflow_id = wf_id,
        .workflow = wf->name,
        .input = text,
        .dedupe_key = dedupe_key,
        .trigger = opts ? opts->trigger : NULL,
        .dry_run = opts ? opts->dry_run : 0,
    };
    rc = db_run_insert(conn, &r, now, run_id, err);
    if (rc)
        goto out;
    rc = db_exec_insert(conn, *run_id, wf->start, now, now, NULL, err);
    if (rc)
        goto out;
    /* The event carries the input's digest, so the audit trail attests what the run
     * started with without copying every input into the log. */
    char digest[65];
    if (sha256_hex(text, digest)) {
        rc = as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
        goto out;
    }
    data = json_pack("{s:s, s:s, s:s, s:b}", "workflow", wf->name, "version", wf->version,
                     "hash", wf->hash, "dry_run", r.dry_run);
    if (!data) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (r.trigger)
        json_object_set_new(data, "trigger", json_string(r.trigger));
    if (dedupe_key)
        json_object_set_new(data, "dedupe_key", json_string(dedupe_key));
    json_object_set_new(data, "input_sha256", json_string(digest));
    rc = event_json(conn, chain, *run_id, 0, "run.created", data, now, err);
    data = NULL;
out:
    json_decref(data);
    free(text);
    return rc;
}

/*
 * Store wf's version if new; *id is its row.  The stored text is the
 * canonical JSON with "start" written out: without it the first step would
 * be taken from the key order, which canonical (sorted) JSON does not keep.
 */
static enum as_code put_workflow(struct db_conn *conn, const struct workflow *wf,
                                 const struct engine_run_opts *opts, int64_t now, int64_t *id,
                                 struct as_err *err)
{
    char *with_start = NULL;
    if (!json_object_get(wf->def, "start")) {
        json_t *copy = json_copy(wf->def);
        if (copy && json_object_set_new(copy, "start", json_string(wf->start)) == 0)
            with_start = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
        if (!with_start)
            return as_errf(err, AS_ENOMEM, "out of memory");
    }
    struct db_workflow_rec rec = {
        .name = wf->name,
        .version = wf->version,
        .hash = wf->hash,
        .definition = with_start ? with_start : wf->canonical,
        .source_path = opts ? opts->source_path : NULL,
    };
    enum as_code rc = db_workflow_put(conn, &rec, now, id, err);
    free(with_start);
    return rc;
}

enum as_code engine_submit_run(struct app *app, const struct workflow *wf, const json_t *input,
                               const struct engine_run_opts *opts, int64_t *run_id,
                               struct as_err *err)
{
    struct engine_run_req req = {.input = input, .dedupe_key = opts ? opts->dedupe_key : NULL};
    int created = 0;
    *run_id = 0;
    enum as_code rc = engine_submit_runs(app, wf, &req, 1, opts, run_id, &created, NULL, err);
    if (!rc && !created)
        rc = as_errf(err, AS_ECONFLICT, "run %" PRId64 " of %s with dedupe key \"%s\" is still open",
                     *run_id, wf->name, req.dedupe_key ? req.dedupe_key : "");
    return rc;
}

enum as_code engine_submit_runs(struct app *app, const struct workflow *wf,
                                const struct engine_run_req *reqs, size_t n,
                                const struct engine_run_opts *opts, int64_t *run_ids,
                                int *created, size_t *n_created, struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t **inputs = NULL;
    size_t n_new = 0;
    struct db_conn *conn = NULL;
    int in_txn = 0;

    if (n_created)
        *n_created = 0;
    if (n == 0)
        return AS_OK;
    inputs = calloc(n, sizeof *inputs);
    if (!inputs)
        return as_errf(err, AS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        rc = wf_input_prepare(wf, reqs[i].input, &inputs[i], err);
        if (rc) {
            if (n > 1)
                as_err_prefix(err, "run %zu of %zu", i + 1, n);
            goto out;
        }
    }
    int64_t now = time_now_ms(), wf_id = 0;
    struct db_event_chain chain = {0};
    rc = db_write_begin(app->db, &conn, err);
    if (rc)
        goto out;
    in_txn = 1;
    rc = put_workflow(conn, wf, opts, now, &wf_id, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *key = reqs[i].dedupe_key;
        rc = submit_locked(conn, &chain, wf, wf_id, inputs[i], key, opts, now, &run_ids[i], err);
        if (rc == AS_ECONFLICT) {
            if (created)
                created[i] = 0;
            rc = AS_OK;
            continue;
        }
        if (rc)
            goto out;
        if (created)
            created[i] = 1;
        n_new++;
    }
    rc = db_write_commit(app->db, err);
    in_txn = 0;
    if (rc)
        goto out;
    if (n_created)
        *n_created = n_new;
    if (n_new) {
        LOG_DEBUG("engine", "started %zu run(s) of %s v%s", n_new, wf->name, wf->version);
        engine_wake(app->engine);
    }
out:
    if (in_txn)
        db_write_rollback(app->db);
    for (size_t i = 0; i < n; i++)
        json_decref(inputs[i]);
    free(inputs);
    return rc;
}

/* Run op(conn, run_id) and log `type` in one transaction. */
static enum as_code steer(struct app *app, int64_t run_id, const char *type,
                          enum as_code (*op)(struct db_conn *, int64_t, int64_t, struct as_err *),
                          struct as_err *err)
{
    struct db_conn *conn;
    int64_t now = time_now_ms();
    enum as_code rc = db_write_begin(app->db, &conn, err);
    if (rc)
        return rc;
    rc = op(conn, run_id, now, err);
    if (!rc)
        rc = db_event_append_text(conn, run_id, 0, type, "{}", now, err);
    if (rc) {
        db_write_rollback(app->db);
        return rc;
    }
    rc = db_write_commit(app->db, err);
    if (!rc)
        engine_wake(app->engine);
    return rc;
}

static enum as_code cancel_op(struct db_conn *conn, int64_t run_id, int64_t now,
                              struct as_err *err)
{
    return db_run_cancel(conn, run_id, now, err);
}

static enum as_code retry_op(struct db_conn *conn, int64_t run_id, int64_t now,
                             struct as_err *err)
{
    return db_run_retry(conn, run_id, now, NULL, err);
}

enum as_code engine_cancel_run(struct app *app, int64_t run_id, struct as_err *err)
{
    enum as_code rc = steer(app, run_id, "run.cancelled", cancel_op, err);
    if (!rc && app->engine) {
        struct engine *e = app->engine;
        pthread_mutex_lock(&e->lock);
        e->ended_gen++;
        pthread_cond_broadcast(&e->ended_cond);
        pthread_mutex_unlock(&e->lock);
    }
    return rc;
}

enum as_code engine_retry_run(struct app *app, int64_t run_id, struct as_err *err)
{
    return steer(app, run_id, "run.retried", retry_op, err);
}

static int status_open(const char *s)
{
    return strcmp(s, "running") == 0 || strcmp(s, "waiting") == 0;
}

enum as_code engine_wait_run(struct app *app, int64_t run_id, int64_t timeout_ms, char *status,
                             size_t size, struct as_err *err)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : time_mono_ms() + timeout_ms;
    for (;;) {
        struct db_conn *conn;
        struct engine *e = app->engine;
        uint64_t gen = 0;
        if (e) {
            /* Read the generation before the status, so an end in between is not missed. */
            pthread_mutex_lock(&e->lock);
            gen = e->ended_gen;
            pthread_mutex_unlock(&e->lock);
        }
        enum as_code rc = db_read_begin(app->db, &conn, err);
        if (rc)
            return rc;
        rc = db_run_status(conn, run_id, status, size, err);
        db_read_end(app->db, conn);
        if (rc)
            return rc;
        if (!status_open(status))
            return AS_OK;
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return AS_ETIMEOUT;
        int64_t wait = left < POLL_MS ? left : POLL_MS;
        if (e) {
            pthread_mutex_lock(&e->lock);
            if (e->ended_gen == gen)
                cond_wait_ms(&e->ended_cond, &e->lock, wait);
            pthread_mutex_unlock(&e->lock);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                                  .tv_nsec = (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}
