/* testutil.c - shared test helpers (see testutil.h). */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "base/file.h"
#include "base/config.h"

extern char **environ;

int tu_failures;

void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/assent-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(path);
    return 0;
}

void tu_rmrf(const char *path)
{
    if (path && getenv("ASSENT_KEEP_TEST_FILES") == NULL)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *tu_read_file(const char *path)
{
    char *buf = NULL;
    struct as_err err = {0};
    return file_read(path, (size_t)1 << 30, &buf, NULL, &err) == AS_OK ? buf : NULL;
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int tu_timeout_scale(void)
{
    const char *s = getenv("ASSENT_TEST_TIMEOUT_SCALE");
    char *end = NULL;
    long v = s && *s ? strtol(s, &end, 10) : 1;
    if (end && *end)
        v = 1;
    return v >= 1 && v <= 1000 ? (int)v : 1;
}

/* A hang guard of timeout_ms scaled for a slow machine (tu_timeout_scale). */
static int scaled_ms(int timeout_ms)
{
    long long ms = (long long)timeout_ms * tu_timeout_scale();
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int tu_wait_port(int port, int timeout_ms)
{
    timeout_ms = scaled_ms(timeout_ms);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        tu_sleep_ms(20);
    }
    return -1;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *tu_assent_bin(void)
{
    return env_or("ASSENT_BIN", "./assent");
}

const char *tu_source_dir(void)
{
    return env_or("ASSENT_SOURCE_DIR", ".");
}

const char *tu_build_dir(void)
{
    return env_or("ASSENT_BUILD_DIR", ".");
}

static char **merged_env(char *const extra[])
{
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    while (extra && extra[m])
        m++;
    char **env = calloc(n + m + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        /* drop entries overridden by extra */
        const char *eq = strchr(environ[i], '=');
        size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < m; j++)
            if (strncmp(extra[j], environ[i], kl) == 0 && extra[j][kl] == '=')
                overridden = 1;
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = extra[j];
    return env;
}

static pid_t spawn_fds(char *const argv[], char *const extra_env[], int outfd, int errfd)
{
    char **env = merged_env(extra_env);
    if (!env)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (outfd >= 0)
            dup2(outfd, 1);
        if (errfd >= 0)
            dup2(errfd, 2);
        setpgid(0, 0);
        execve(argv[0], argv, env);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(env);
    return pid;
}

pid_t tu_spawn(char *const argv[], char *const extra_env[], const char *log_path)
{
    int fd = -1;
    if (log_path) {
        fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
    }
    pid_t pid = spawn_fds(argv, extra_env, fd, fd);
    if (fd >= 0)
        close(fd);
    return pid;
}

int tu_stop(pid_t pid, int sig)
{
    int status = 0;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

int tu_wait_exit(pid_t pid, int timeout_ms)
{
    int status;
    timeout_ms = scaled_ms(timeout_ms);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        tu_sleep_ms(10);
    }
    return -1;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    return buf;
}

int tu_run(char *const argv[], char *const extra_env[], int timeout_ms, char **out, char **errout)
{
    char tmpl1[] = "/tmp/assent-out-XXXXXX", tmpl2[] = "/tmp/assent-err-XXXXXX";
    int ofd = mkstemp(tmpl1), efd = mkstemp(tmpl2);
    if (ofd < 0 || efd < 0)
        return -1;
    unlink(tmpl1);
    unlink(tmpl2);
    pid_t pid = spawn_fds(argv, extra_env, ofd, efd);
    int code = -1;
    if (pid > 0) {
        code = tu_wait_exit(pid, timeout_ms);
        if (code == -1) {
            kill(-pid, SIGKILL);
            int st = tu_stop(pid, SIGKILL);
            code = 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            fprintf(stderr, "tu_run: %s timed out after %d ms (x%d)\n", argv[0], timeout_ms,
                    tu_timeout_scale());
        }
    }
    if (out)
        *out = slurp_fd(ofd);
    if (errout)
        *errout = slurp_fd(efd);
    close(ofd);
    close(efd);
    return code;
}

struct growbuf {
    char *p;
    size_t len;
};

static size_t grow_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    struct growbuf *b = ud;
    size_t n = size * nmemb;
    char *np = realloc(b->p, b->len + n + 1);
    if (!np)
        return 0;
    memcpy(np + b->len, data, n);
    b->p = np;
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

int tu_http(const char *method, const char *url, char *const headers[], const char *body,
            struct tu_http_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    struct growbuf b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    resp->body = b.p ? b.p : strdup("");
    resp->body_len = b.len;
    resp->headers = h.p ? h.p : strdup("");
    return cc == CURLE_OK ? 0 : -1;
}

void tu_http_free(struct tu_http_resp *resp)
{
    free(resp->body);
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

char *tu_http_header(const struct tu_http_resp *resp, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = resp->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = ll - (size_t)(v - p);
            char *out = malloc(vl + 1);
            if (out) {
                memcpy(out, v, vl);
                out[vl] = '\0';
            }
            return out;
        }
        p = eol ? eol + 2 : p + ll;
    }
    return NULL;
}

struct db *tu_db_open(const char *dir, const char *name)
{
    struct as_err err = {0};
    struct db *db = NULL;
    char *path = tu_path(dir, name);
    enum as_code rc = db_open(path, "NORMAL", &db, &err);
    free(path);
    if (rc)
        fail_msg("db_open: %s", err.msg);
    return db;
}

int tu_db_setup(void **state, const char *name)
{
    struct tu_db_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_tmpdir(name);
    f->db = tu_db_open(f->dir, "assent.db");
    f->wf_id = tu_db_workflow(f->db, "aaaa");
    *state = f;
    return 0;
}

int tu_db_setup_pg(void **state, const char *name)
{
    struct tu_db_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    struct as_err err = {0};
    f->dir = tu_tmpdir(name);
    f->pg_uri = tu_pg_db_new(name);
    if (db_open(f->pg_uri, "NORMAL", &f->db, &err) != AS_OK)
        fail_msg("db_open %s: %s", f->pg_uri, err.msg);
    f->wf_id = tu_db_workflow(f->db, "aaaa");
    *state = f;
    return 0;
}

int tu_db_teardown(void **state)
{
    struct tu_db_fixture *f = *state;
    db_close(f->db);
    tu_pg_db_drop(f->pg_uri); /* NULL (SQLite): nothing */
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

int64_t tu_db_workflow(struct db *db, const char *hash)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t id = 0;
    struct db_workflow_rec w = {"wf", "1", hash, "{\"name\":\"wf\"}", NULL};
    assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
    enum as_code rc = db_workflow_put(c, &w, 1000, &id, &err);
    if (db_write_end(db, rc, &err) != AS_OK)
        fail_msg("%s: %s", rc ? "db_workflow_put" : "commit", err.msg);
    return id;
}

int tu_select_test(const char *prog, const struct CMUnitTest *tests, size_t n, int argc,
                   char **argv)
{
    if (argc < 2)
        return 0;
    int known = 0;
    for (size_t i = 0; i < n; i++)
        known |= strcmp(tests[i].name, argv[1]) == 0;
    if (!known) {
        fprintf(stderr, "%s: no test called %s\n", prog, argv[1]);
        return -1;
    }
    cmocka_set_test_filter(argv[1]);
    return 0;
}

struct tu_app_fixture *tu_app_fixture_new(const char *name)
{
    struct tu_app_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->dir = tu_tmpdir(name);
    f->app.cfg = config_defaults();
    f->app.db = f->dir ? tu_db_open(f->dir, "assent.db") : NULL;
    if (!f->app.cfg || !f->app.db) {
        tu_app_fixture_free(f);
        return NULL;
    }
    return f;
}

struct tu_app_fixture *tu_app_fixture_new_pg(const char *name)
{
    struct tu_app_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    struct as_err err = {0};
    f->dir = tu_tmpdir(name);
    f->app.cfg = config_defaults();
    f->pg_uri = tu_pg_db_new(name);
    if (db_open(f->pg_uri, "NORMAL", &f->app.db, &err) != AS_OK)
        fail_msg("db_open %s: %s", f->pg_uri, err.msg);
    if (!f->app.cfg || !f->dir) {
        tu_app_fixture_free(f);
        return NULL;
    }
    return f;
}

void tu_app_fixture_free(struct tu_app_fixture *f)
{
    if (!f)
        return;
    db_close(f->app.db);
    tu_pg_db_drop(f->pg_uri); /* NULL (SQLite): nothing */
    config_free(f->app.cfg);
    if (f->dir)
        tu_rmrf(f->dir);
    free(f->dir);
    free(f);
}

const char *tu_browser_missing(void)
{
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/chromedriver", X_OK) != 0)
        return "chromium and chromium-driver are not installed";
    char *check[] = {"/usr/bin/python3", "-c", "import selenium", NULL};
    if (tu_run(check, NULL, 60000, NULL, NULL) != 0)
        return "python3-selenium is not installed";
    return NULL;
}
