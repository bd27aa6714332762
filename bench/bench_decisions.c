/*
 * bench_decisions.c - approval decisions per second through the real
 * `assent serve`, against a bare libmicrohttpd server in the same run.
 *
 * 1. N runs of a one-approval workflow are started in process and run
 *    until each has mailed its approver a link (file transport).
 * 2. `assent serve` (the real binary) is started on that database; the
 *    links are read from the emails.
 * 3. One client (libcurl multi, --conns keep-alive connections) decides
 *    them all: GET the page, read its CSRF token, POST "approve".  A
 *    decision is the pair; it counts when the POST answers 200 or 303.
 * 4. The same client sends the same number of GET + POST pairs to a bare
 *    server: one libmicrohttpd thread doing one SQLite WAL insert
 *    (synchronous=NORMAL) per request.
 * Prints decisions/s, the bare server's requests/s, their ratio, p50/p99
 * of a decision and the serving process's CPU per decision.
 *
 * --hold: steps 1 and 2 only, then the memory of `assent serve` holding
 * the N waiting approvals (VmRSS) and the p50/p99 of GET /healthz (2,000
 * requests over one keep-alive connection); nothing is decided.
 *
 *   bench_decisions [--dir DIR] [--approvals N] [--conns N] [--workers N] [--assent BIN]
 *                   [--db URI] [--hold] [--json]
 *
 * --db URI: Assent's store is that (empty) PostgreSQL database instead of
 * DIR's SQLite file, e.g. scripts/pg.sh run --durable -- bench_decisions
 * --db "$ASSENT_TEST_PG_URI"; the bare server stays SQLite.
 *
 * Not a test: the figures depend on the machine and its load.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "base/config.h"
#include "base/log.h"
#include "cli/cli.h"
#include "db/db.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "engine/workflow.h"

static const char *const approval_wf =
    "{\"name\": \"bench-decide\", \"version\": \"1\","
    " \"input\": {\"n\": {\"type\": \"integer\", \"required\": true}},"
    " \"steps\": {"
    "  \"ask\": {\"type\": \"approval\", \"params\": {\"approvers\": [\"owner@example.com\"],"
    "           \"subject\": \"Change ${input.n}\", \"message\": \"Approve change ${input.n}.\","
    "           \"expiry\": \"P7D\"},"
    "           \"next\": {\"approved\": \"done\", \"rejected\": \"done\", \"expired\": \"done\"}},"
    "  \"done\": {\"type\": \"log\", \"params\": {\"message\": \"decided ${input.n}\"}}"
    " }}";

static void die(const char *what, const struct as_err *err)
{
    fprintf(stderr, "bench_decisions: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    /* Ports in a range the kernel does not hand out as ephemeral ones. */
    return 20000 + (int)(getpid() % 9000);
}

/* ---- 1. waiting approvals --------------------------------------------------- */

static size_t count_mail(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while (d && (de = readdir(d)))
        n += strstr(de->d_name, ".eml") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* How the approvals were made: the time from the engine's start until the
 * last link was mailed (the runs were submitted before), and the CPU of
 * the engine's threads over that time, per approval (ns). */
struct making {
    double seconds;
    double dispatch_ns, workers_ns, ckpt_ns;
};

static struct making make_approvals(struct app *app, const char *mail_dir, long n, int workers)
{
    struct making mk = {0};
    struct as_err err = {0};
    struct workflow *wf = NULL;
    struct engine *engine = NULL;
    if (wf_load_string(approval_wf, "bench", &wf, NULL, &err) != AS_OK)
        die("workflow", &err);
    struct engine_run_req *reqs = calloc((size_t)n, sizeof *reqs);
    json_t **inputs = calloc((size_t)n, sizeof *inputs);
    int64_t *ids = calloc((size_t)n, sizeof *ids);
    if (!reqs || !inputs || !ids)
        die("out of memory", NULL);
    for (long done = 0; done < n; done += 1000) {
        long k = n - done < 1000 ? n - done : 1000;
        for (long i = 0; i < k; i++) {
            inputs[done + i] = json_pack("{s:I}", "n", (json_int_t)(done + i));
            reqs[done + i].input = inputs[done + i];
        }
        if (engine_submit_runs(app, wf, reqs + done, (size_t)k, NULL, ids + done, NULL, NULL, &err))
            die("submit", &err);
    }
    double t0 = now_s();
    if (engine_start(app, workers, &engine, &err) != AS_OK)
        die("engine start", &err);
    /* Each approval is one step attempt, recorded after its email's send
     * is: the engine's count says when all are made, without listing a
     * folder of a million files. */
    struct engine_stats st = {0};
    for (;;) {
        engine_get_stats(engine, &st);
        if (st.steps >= (uint64_t)n)
            break;
        sleep_ms(20);
    }
    mk.seconds = now_s() - t0;
    if (count_mail(mail_dir) < (size_t)n)
        die("fewer emails than approvals", NULL);
    mk.dispatch_ns = (double)threads_cpu_ns("assent-dispatch") / (double)n;
    mk.workers_ns = (double)threads_cpu_ns("assent-worker") / (double)n;
    mk.ckpt_ns = (double)threads_cpu_ns("assent-ckpt") / (double)n;
    sleep_ms(500); /* the last sends recorded */
    if (engine_stop(engine, 10000) != AS_OK)
        die("engine stop", NULL);
    for (long i = 0; i < n; i++)
        json_decref(inputs[i]);
    free(inputs);
    free(reqs);
    free(ids);
    wf_free(wf);
    return mk;
}

/* The /a/{token} link of each email in dir (quoted-printable soft breaks removed). */
static char **read_links(const char *dir, const char *base, size_t *n_out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0, cap = 1024;
    char **links = malloc(cap * sizeof *links);
    while (d && links && (de = readdir(d))) {
        if (!strstr(de->d_name, ".eml"))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf - 1, f), w = 0;
        fclose(f);
        for (size_t r = 0; r < len; r++) {
            if (buf[r] == '=' && r + 1 < len && (buf[r + 1] == '\n' || buf[r + 1] == '\r')) {
                r += buf[r + 1] == '\r' && r + 2 < len && buf[r + 2] == '\n' ? 2 : 1;
                continue;
            }
            buf[w++] = buf[r];
        }
        buf[w] = '\0';
        const char *p = strstr(buf, "/a/");
        if (!p)
            continue;
        p += 3;
        size_t t = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
        if (n == cap) {
            char **nl = realloc(links, (cap *= 2) * sizeof *links);
            if (!nl)
                break;
            links = nl;
        }
        size_t sz = strlen(base) + t + 8;
        links[n] = malloc(sz);
        snprintf(links[n], sz, "%s/a/%.*s", base, (int)t, p);
        n++;
    }
    if (d)
        closedir(d);
    *n_out = n;
    return links;
}

/* ---- 3. the client --------------------------------------------------------------- */

struct conn {
    CURL *h;
    size_t item;       /* which link */
    int posting;       /* 0: the GET is out, 1: the POST */
    double started;    /* the decision's GET */
    char *body;
    size_t len, cap;
    char form[512];
};

struct client {
    char **urls;
    size_t n, next, done, failed;
    int bare;          /* no CSRF to read: a plain GET + POST pair */
    double *lat;       /* per decision, seconds */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct conn *c = ud;
    size_t n = size * nmemb;
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        while (cap < c->len + n + 1)
            cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b)
            return 0;
        c->body = b;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->body[c->len] = '\0';
    return n;
}

static void start_get(CURLM *m, struct client *cl, struct conn *c)
{
    c->item = cl->next++;
    c->posting = 0;
    c->len = 0;
    c->started = now_s();
    curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c->h, CURLOPT_URL, cl->urls[c->item]);
    curl_multi_add_handle(m, c->h);
}

static int start_post(CURLM *m, struct client *cl, struct conn *c)
{
    const char *csrf = "x";
    char token[200] = "";
    if (!cl->bare) {
        const char *p = c->body ? strstr(c->body, "name=\"csrf\" value=\"") : NULL;
        if (!p)
            return -1;
        p += strlen("name=\"csrf\" value=\"");
        size_t t = strcspn(p, "\"");
        snprintf(token, sizeof token, "%.*s", (int)(t < sizeof token ? t : sizeof token - 1), p);
        csrf = token;
    }
    snprintf(c->form, sizeof c->form, "csrf=%s&decision=approve&comment=", csrf);
    c->posting = 1;
    c->len = 0;
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->form);
    curl_easy_setopt(c->h, CURLOPT_URL, cl->urls[c->item]);
    curl_multi_add_handle(m, c->h);
    return 0;
}

/* Decide every url over n_conns connections; seconds taken. */
static double drive(struct client *cl, int n_conns)
{
    CURLM *m = curl_multi_init();
    struct conn *conns = calloc((size_t)n_conns, sizeof *conns);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
    double t0 = now_s();
    for (int i = 0; i < n_conns; i++) {
        conns[i].h = curl_easy_init();
        curl_easy_setopt(conns[i].h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(conns[i].h, CURLOPT_WRITEDATA, &conns[i]);
        curl_easy_setopt(conns[i].h, CURLOPT_PRIVATE, &conns[i]);
        curl_easy_setopt(conns[i].h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(conns[i].h, CURLOPT_NOSIGNAL, 1L);
        if (cl->next < cl->n)
            start_get(m, cl, &conns[i]);
    }
    int running = 1;
    while (cl->done + cl->failed < cl->n) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct conn *c = NULL;
            long status = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(m, c->h);
            if (!c->posting && rc == CURLE_OK && status == 200 && start_post(m, cl, c) == 0)
                continue;
            if (c->posting && rc == CURLE_OK && (status == 200 || status == 303)) {
                cl->lat[cl->done++] = now_s() - c->started;
            } else {
                if (cl->failed++ < 3)
                    fprintf(stderr, "bench_decisions: %s %s: %s, HTTP %ld\n",
                            c->posting ? "POST" : "GET", cl->urls[c->item],
                            curl_easy_strerror(rc), status);
            }
            if (cl->next < cl->n)
                start_get(m, cl, c);
        }
        if (cl->done + cl->failed < cl->n)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    double secs = now_s() - t0;
    for (int i = 0; i < n_conns; i++) {
        curl_easy_cleanup(conns[i].h);
        free(conns[i].body);
    }
    free(conns);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(m);
    return secs;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

/* CPU seconds (user + system) of process pid so far. */
/* CPU seconds of process pid, user and system together; *sys_s (may be
 * NULL) receives the system part alone. */
static double proc_cpu_split(pid_t pid, double *sys_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    if (sys_s)
        *sys_s = (double)st / (double)sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double proc_cpu_s(pid_t pid)
{
    return proc_cpu_split(pid, NULL);
}

static int wait_healthy(const char *base)
{
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", base);
    for (int i = 0; i < 300; i++) {
        CURL *h = curl_easy_init();
        long status = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (status == 200)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

/* VmRSS of pid in KiB, or -1. */
static long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* CPU time (ms) the process has used so far, to the nanosecond: the sum of
 * its threads' /proc/PID/task/TID/schedstat (threads that ended are not
 * counted: read it over a time in which none ends). */
static double proc_cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    struct dirent *de;
    double ms = 0;
    while (d && (de = readdir(d))) {
        char f[320];
        long long ns = 0;
        if (de->d_name[0] == '.')
            continue;
        snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
        FILE *fp = fopen(f, "r");
        if (fp && fscanf(fp, "%lld", &ns) == 1)
            ms += (double)ns / 1e6;
        if (fp)
            fclose(fp);
    }
    if (d)
        closedir(d);
    return ms;
}

/* p50 and p99 (seconds) of n GET /healthz over one keep-alive connection. */
static int healthz_latency(const char *base, int n, double *p50, double *p99)
{
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", base);
    double *lat = calloc((size_t)n, sizeof *lat);
    CURL *h = curl_easy_init();
    int ok = 0;
    struct conn sink = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    for (int i = 0; lat && i < n; i++) {
        long status = 0;
        sink.len = 0;
        double t0 = now_s();
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        lat[ok] = now_s() - t0;
        ok += status == 200;
    }
    *p50 = pct(lat, (size_t)ok, 0.5);
    *p99 = pct(lat, (size_t)ok, 0.99);
    curl_easy_cleanup(h);
    free(sink.body);
    free(lat);
    return ok == n ? 0 : -1;
}

/* ---- 4. the bare server ------------------------------------------------------------ */

struct bare {
    sqlite3 *db;
    sqlite3_stmt *ins;
};

static enum MHD_Result bare_request(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
    struct bare *b = cls;
    static int marker;
    (void)url, (void)method, (void)version, (void)upload_data;
    if (!*req_cls) {
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* the form is read and dropped */
        return MHD_YES;
    }
    static const char row[] = "a decision of about two hundred bytes, recorded as one row in "
                              "its own transaction, the way a server without group commit "
                              "would write it: who, when, what, from where and by which agent.";
    sqlite3_bind_text(b->ins, 1, row, -1, SQLITE_STATIC);
    int ok = sqlite3_step(b->ins) == SQLITE_DONE;
    sqlite3_reset(b->ins);
    static const char answer[] = "ok\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof answer - 1, (void *)answer,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, ok ? 200 : 500, r);
    MHD_destroy_response(r);
    return ret;
}

/* The bare server in a child process (its CPU apart from the client's); its pid. */
static pid_t bare_start(const char *dir, int port)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char path[1024];
    struct bare b = {0};
    snprintf(path, sizeof path, "%s/bare.db", dir);
    unlink(path);
    if (sqlite3_open(path, &b.db) != SQLITE_OK ||
        sqlite3_exec(b.db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           " CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", NULL, NULL, NULL) ||
        sqlite3_prepare_v2(b.db, "INSERT INTO t(v) VALUES (?)", -1, &b.ins, NULL) != SQLITE_OK)
        _exit(1);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                                            (uint16_t)port, NULL, NULL, bare_request, &b,
                                            MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
    if (!d)
        _exit(1);
    pause();
    _exit(0);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *dir = "var/bench", *assent_bin = NULL, *db_uri = NULL;
    long n = 2000, conns = 64, workers = 2;
    int json = 0, hold = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--hold") == 0) {
            hold = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--dir") == 0)
            dir = v;
        else if (strcmp(a, "--approvals") == 0)
            n = strtol(v, NULL, 10);
        else if (strcmp(a, "--conns") == 0)
            conns = strtol(v, NULL, 10);
        else if (strcmp(a, "--workers") == 0)
            workers = strtol(v, NULL, 10);
        else if (strcmp(a, "--assent") == 0)
            assent_bin = v;
        else if (strcmp(a, "--db") == 0)
            db_uri = v;
        else
            goto usage;
    }
    if (n < 1 || conns < 1 || conns > 1000 || workers < 1 || workers > 256)
        goto usage;
    const char *store = db_uri ? "postgresql" : "sqlite";
    char self[1024], bin[1100];
    if (!assent_bin) {
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
            die("cannot find the assent binary (--assent BIN)", NULL);
        self[k] = '\0';
        *strrchr(self, '/') = '\0';
        snprintf(bin, sizeof bin, "%s/../assent", self);
        assent_bin = bin;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);
    cli_register_types();
    log_init(LOG_LVL_WARN, LOG_FMT_TEXT);

    /* 1. N approvals waiting, their emails in DIR/decide-PID/mail. */
    char work[1024], db_path[1100], mail_dir[1100], cfg_path[1100], base[64], listen[64];
    snprintf(work, sizeof work, "%s/decide-%ld", dir, (long)getpid());
    if (db_uri)
        snprintf(db_path, sizeof db_path, "%s", db_uri);
    else
        snprintf(db_path, sizeof db_path, "%s/assent.db", work);
    snprintf(mail_dir, sizeof mail_dir, "%s/mail", work);
    snprintf(cfg_path, sizeof cfg_path, "%s/assent.json", work);
    int port = free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || mkdir(work, 0700) != 0 ||
        mkdir(mail_dir, 0700) != 0)
        die("cannot create the work folder", NULL);
    /* One client address opens all the connections: let it. */
    json_t *cfgj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I}", "db", db_path,
                             "synchronous", "NORMAL", "mail_transport", "file", "mail_dir",
                             mail_dir, "mail_from", "assent@example.com", "public_url", base,
                             "listen", listen, "scheduler", 0, "web_per_ip_connections",
                             (json_int_t)conns + 8);
    if (!cfgj || json_dump_file(cfgj, cfg_path, JSON_INDENT(2)) != 0)
        die("cannot write the configuration", NULL);
    struct as_err err = {0};
    struct app app = {0};
    if (config_load(cfg_path, &app.cfg, &err) != AS_OK)
        die("configuration", &err);
    if (db_open(db_path, "NORMAL", &app.db, &err) != AS_OK)
        die("open database", &err);
    struct making mk = make_approvals(&app, mail_dir, n, (int)workers);
    double make_s = mk.seconds;
    db_close(app.db);
    config_free(app.cfg);
    json_decref(cfgj);

    /* 2. The real server. */
    pid_t serve = fork();
    if (serve == 0) {
        freopen("/dev/null", "w", stderr);
        execl(assent_bin, assent_bin, "--config", cfg_path, "serve", (char *)NULL);
        _exit(127);
    }
    if (wait_healthy(base) != 0)
        die("assent serve does not answer /healthz", NULL);
    if (hold) {
        sleep_ms(2000);
        /* Idle: nothing due for days; what the server spends anyway. */
        double idle0 = proc_cpu_ms(serve);
        sleep_ms(10000);
        double idle_ms = proc_cpu_ms(serve) - idle0;
        long rss = proc_rss_kib(serve);
        double h50 = 0, h99 = 0;
        int hrc = healthz_latency(base, 2000, &h50, &h99);
        long rss_after = proc_rss_kib(serve);
        kill(serve, SIGTERM);
        waitpid(serve, NULL, 0);
        printf("{\"store\": \"%s\", \"approvals\": %ld, \"workers\": %ld, \"created_per_s\": %.0f, "
               "\"create_cpu_us\": {\"dispatcher\": %.1f, \"workers\": %.1f, "
               "\"checkpointer\": %.1f}, \"serve_rss_mib\": %.1f, "
               "\"serve_rss_after_healthz_mib\": %.1f, \"serve_idle_cpu_ms_per_10s\": %.2f, "
               "\"healthz_p50_ms\": %.2f, \"healthz_p99_ms\": %.2f}\n",
               store, n, workers, (double)n / make_s, mk.dispatch_ns / 1e3, mk.workers_ns / 1e3,
               mk.ckpt_ns > 0 ? mk.ckpt_ns / 1e3 : 0.0, (double)rss / 1024.0, (double)rss_after / 1024.0, idle_ms,
               h50 * 1e3, h99 * 1e3);
        if (nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            fprintf(stderr, "bench_decisions: could not remove %s\n", work);
        curl_global_cleanup();
        return hrc ? 1 : 0;
    }
    size_t n_links = 0;
    char **links = read_links(mail_dir, base, &n_links);
    if (n_links != (size_t)n)
        fprintf(stderr, "bench_decisions: %zu links for %ld approvals\n", n_links, n);

    /* 3. Decide them all. */
    struct client cl = {.urls = links, .n = n_links, .lat = calloc(n_links, sizeof(double))};
    double sys0 = 0, sys1 = 0;
    double cpu0 = proc_cpu_split(serve, &sys0);
    double secs = drive(&cl, (int)conns);
    double cpu = proc_cpu_split(serve, &sys1) - cpu0, sys = sys1 - sys0;
    double p50 = pct(cl.lat, cl.done, 0.5), p99 = pct(cl.lat, cl.done, 0.99);
    kill(serve, SIGTERM);
    waitpid(serve, NULL, 0);

    /* 4. The bare server, same client, same number of pairs. */
    int bport = port + 1;
    pid_t bare = bare_start(work, bport);
    char bbase[64];
    snprintf(bbase, sizeof bbase, "http://127.0.0.1:%d", bport);
    char **burls = calloc(n_links, sizeof *burls);
    for (size_t i = 0; i < n_links; i++) {
        burls[i] = malloc(80);
        snprintf(burls[i], 80, "%s/a/%zu", bbase, i);
    }
    sleep_ms(300);
    struct client bc = {.urls = burls, .n = n_links, .bare = 1,
                        .lat = calloc(n_links, sizeof(double))};
    double bcpu0 = proc_cpu_s(bare);
    double bsecs = drive(&bc, (int)conns);
    double bcpu = proc_cpu_s(bare) - bcpu0;
    kill(bare, SIGTERM);
    waitpid(bare, NULL, 0);

    double dps = (double)cl.done / secs, rps = 2.0 * (double)bc.done / bsecs;
    if (json)
        printf("{\"store\": \"%s\", \"approvals\": %ld, \"conns\": %ld, \"created_per_s\": %.0f, \"decided\": %zu, "
               "\"failed\": %zu, \"decisions_per_s\": %.0f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
               "\"serve_cpu_us_per_decision\": %.0f, \"serve_sys_us_per_decision\": %.0f, "
               "\"bare_requests_per_s\": %.0f, "
               "\"bare_cpu_us_per_request\": %.0f, \"ratio\": %.3f}\n",
               store, n, conns, (double)n / make_s, cl.done, cl.failed, dps, p50 * 1e3, p99 * 1e3,
               cl.done ? cpu * 1e6 / (double)cl.done : 0,
               cl.done ? sys * 1e6 / (double)cl.done : 0, rps,
               bc.done ? bcpu * 1e6 / (2.0 * (double)bc.done) : 0, dps / rps);
    else {
        printf("decisions through assent serve (%s, %ld approvals, %ld keep-alive connections)\n",
               store, n, conns);
        printf("  approvals created   %.0f/s (file transport)\n", (double)n / make_s);
        printf("  decided             %zu, failed %zu\n", cl.done, cl.failed);
        printf("  decisions/s         %.0f (GET page + POST decision)\n", dps);
        printf("  latency             p50 %.1f ms, p99 %.1f ms\n", p50 * 1e3, p99 * 1e3);
        printf("  serve CPU           %.0f us per decision (of which system %.0f us)\n",
               cl.done ? cpu * 1e6 / (double)cl.done : 0,
               cl.done ? sys * 1e6 / (double)cl.done : 0);
        printf("bare libmicrohttpd + one SQLite insert per request\n");
        printf("  requests/s          %.0f (CPU %.0f us per request)\n", rps,
               bc.done ? bcpu * 1e6 / (2.0 * (double)bc.done) : 0);
        printf("ratio decisions/s : bare requests/s = %.3f\n", dps / rps);
    }
    for (size_t i = 0; i < n_links; i++) {
        free(links[i]);
        free(burls[i]);
    }
    free(links);
    free(burls);
    free(cl.lat);
    free(bc.lat);
    if (nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench_decisions: could not remove %s\n", work);
    curl_global_cleanup();
    return cl.failed || bc.failed ? 1 : 0;
usage:
    fprintf(stderr, "usage: bench_decisions [--dir DIR] [--approvals N] [--conns N] "
                    "[--workers N] [--assent BIN] [--db URI] [--hold] [--json]\n");
    return 2;
}
