/* web_harness.c - a running `assent serve` for the web tests (see web_harness.h). */
#include "tests/integration/web_harness.h"

#include "tests/testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "db/db_testing.h"
#include "base/config.h"
#include "engine/engine.h"
#include "engine/workflow.h"

/* wh_init on the database db_path (malloc'd; NULL: assent.db in the dir). */
static void init_on(struct wh_server *s, const char *tag, int with_admin_token, char *db_path)
{
    struct as_err err = {0};
    memset(s, 0, sizeof *s);
    s->dir = tu_tmpdir(tag);
    assert_non_null(s->dir);
    s->pg = db_path != NULL;
    s->db_path = db_path ? db_path : tu_path(s->dir, "assent.db");
    s->mail_dir = tu_path(s->dir, "mail");
    s->log_path = tu_path(s->dir, "serve.log");
    s->port = tu_free_port();
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    if (with_admin_token) {
        s->admin_file = tu_path(s->dir, "admin-token");
        assert_int_equal(tu_write_file(s->admin_file, "test-admin-token-0123456789\n"), 0);
        chmod(s->admin_file, 0600);
    }
    s->app.cfg = config_defaults();
    assert_non_null(s->app.cfg);
    assert_int_equal(config_set(s->app.cfg, "public_url", s->url, &err), AS_OK);
    if (db_open(s->db_path, "NORMAL", &s->app.db, &err) != AS_OK)
        fail_msg("db_open %s: %s", s->db_path, err.msg);
}

void wh_init(struct wh_server *s, const char *tag, int with_admin_token)
{
    if (tu_test_on_pg())
        wh_init_pg(s, tag, with_admin_token);
    else
        init_on(s, tag, with_admin_token, NULL);
}

void wh_init_pg(struct wh_server *s, const char *tag, int with_admin_token)
{
    init_on(s, tag, with_admin_token, tu_pg_db_new(tag));
}

void wh_start(struct wh_server *s, long long fake_offset_ms)
{
    char env[24][256];
    char *envp[25];
    int n = 0;
    snprintf(env[n++], sizeof env[0], "ASSENT_DB=%s", s->db_path);
    snprintf(env[n++], sizeof env[0], "ASSENT_LISTEN=127.0.0.1:%d", s->port);
    snprintf(env[n++], sizeof env[0], "ASSENT_PUBLIC_URL=%s", s->url);
    snprintf(env[n++], sizeof env[0], "ASSENT_MAIL_TRANSPORT=file");
    snprintf(env[n++], sizeof env[0], "ASSENT_MAIL_DIR=%s", s->mail_dir);
    snprintf(env[n++], sizeof env[0], "ASSENT_SCHEDULER=false");
    snprintf(env[n++], sizeof env[0], "ASSENT_LOG_LEVEL=info");
    snprintf(env[n++], sizeof env[0], "ASSENT_SHUTDOWN_GRACE_SECONDS=5");
    snprintf(env[n++], sizeof env[0], "ASSENT_TEST_HOOKS=1"); /* lets the offset apply */
    snprintf(env[n++], sizeof env[0], "ASSENT_FAKE_NOW_OFFSET_MS=%lld", fake_offset_ms);
    snprintf(env[n++], sizeof env[0], "ASSENT_ADMIN_TOKEN_FILE=%s",
             s->admin_file ? s->admin_file : "");
    for (int i = 0; i < s->n_extra_env; i++) {
        /* An extra entry replaces the default of the same name. */
        size_t kl = strcspn(s->extra_env[i], "=");
        int j;
        for (j = 0; j < n; j++)
            if (strncmp(env[j], s->extra_env[i], kl + 1) == 0)
                break;
        snprintf(env[j], sizeof env[0], "%s", s->extra_env[i]);
        if (j == n)
            n++;
    }
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = {(char *)tu_assent_bin(), "serve", NULL};
    s->pid = tu_spawn(argv, envp, s->log_path);
    assert_true(s->pid > 0);
    if (tu_wait_port(s->port, 30000) != 0) {
        char *log = wh_log(s);
        fail_msg("assent serve did not listen on %d; log:\n%s", s->port, log ? log : "");
    }
}

void wh_stop(struct wh_server *s, int sig)
{
    if (s->pid <= 0)
        return;
    int status = tu_stop(s->pid, sig);
    s->pid = 0;
    if (sig == SIGTERM) {
        char *log = wh_log(s);
        int sanitizer = log && (strstr(log, "Sanitizer") || strstr(log, "runtime error:"));
        free(log);
        if (sanitizer || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            log = wh_log(s);
            fail_msg("assent serve did not exit cleanly on SIGTERM (status %d); log:\n%s", status,
                     log ? log : "");
        }
    }
}

void wh_cleanup(struct wh_server *s)
{
    if (s->pid > 0)
        tu_stop(s->pid, SIGKILL);
    if (s->helper > 0)
        tu_stop(s->helper, SIGKILL);
    if (!s->dir)
        return;
    db_close(s->app.db);
    config_free(s->app.cfg);
    tu_rmrf(s->dir);
    free(s->dir);
    if (s->pg)
        tu_pg_db_drop(s->db_path); /* and frees it */
    else
        free(s->db_path);
    free(s->mail_dir);
    free(s->log_path);
    free(s->admin_file);
    memset(s, 0, sizeof *s);
}

int wh_setup(void **state)
{
    *state = calloc(1, sizeof(struct wh_server));
    return *state ? 0 : -1;
}

int wh_teardown(void **state)
{
    wh_cleanup(*state);
    free(*state);
    return 0;
}

char *wh_workflow(const char *policy, const char *expiry, const char *reminder_every,
                  const char *escalate_to, int require_comment)
{
    json_t *params = json_pack(
        "{s:s, s:s, s:s, s:s, s:{s:s, s:[s, s, s], s:[s]}, s:{s:s, s:{s:b, s:b}}, s:b}",
        "approvers", "${input.approvers}", "policy", policy,
        "subject", "Disable legacy protocols for u@example.org",
        "message", "Turn off POP3 and IMAP.\nSecond line <b>not bold</b> & more.",
        "details", "user", "u@example.org", "protocols", "POP3", "IMAP", "SMTP",
        "used_last_30_days", "IMAP",
        "request", "identity", "u@example.org", "settings", "PopEnabled", 0, "ImapEnabled", 0,
        "require_comment_on_reject", require_comment);
    if (expiry)
        json_object_set_new(params, "expiry", json_string(expiry));
    if (reminder_every)
        json_object_set_new(params, "reminder_every", json_string(reminder_every));
    if (escalate_to)
        json_object_set_new(params, "escalate_to", json_string(escalate_to));
    json_t *wf = json_pack(
        "{s:s, s:s, s:{s:{s:s, s:b}}, s:s, s:{s:{s:s, s:o, s:{s:s, s:s, s:s}},"
        " s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}, s:{s:s, s:{s:s}}}}",
        "name", "web-test", "version", "1",
        "input", "approvers", "type", "array", "required", 1,
        "start", "ask",
        "steps",
        "ask", "type", "approval", "params", params, "next", "approved", "ok", "rejected", "no",
        "expired", "late",
        "ok", "type", "log", "params", "message", "approved by ${steps.ask.output.decided_by}",
        "no", "type", "log", "params", "message", "rejected by ${steps.ask.output.decided_by}",
        "late", "type", "log", "params", "message", "expired");
    assert_non_null(wf);
    char *text = json_dumps(wf, JSON_INDENT(2));
    json_decref(wf);
    return text;
}

int64_t wh_submit(struct wh_server *s, const char *workflow_json, const char *input_json)
{
    struct as_err err = {0};
    struct diag_list diags = {0};
    struct workflow *wf = NULL;
    if (wf_load_string(workflow_json, "test", &wf, &diags, &err) != AS_OK) {
        for (size_t i = 0; i < diags.n; i++)
            fprintf(stderr, "%s: %s\n", diags.items[i].path, diags.items[i].msg);
        fail_msg("workflow does not load: %s", err.msg);
    }
    diag_free(&diags);
    json_t *input = json_loads(input_json, 0, NULL);
    assert_non_null(input);
    int64_t run_id = 0;
    if (engine_submit_run(&s->app, wf, input, NULL, &run_id, &err) != AS_OK)
        fail_msg("submit: %s", err.msg);
    json_decref(input);
    wf_free(wf);
    return run_id;
}

void wh_run_status(struct wh_server *s, int64_t run_id, char *buf, size_t size)
{
    struct as_err err = {0};
    struct db_conn *c;
    buf[0] = '\0';
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    enum as_code rc = db_run_status(c, run_id, buf, size, &err);
    db_read_end(s->app.db, c);
    assert_int_equal(rc, AS_OK);
}

int wh_wait_run(struct wh_server *s, int64_t run_id, const char *status, int timeout_ms)
{
    char st[32];
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        wh_run_status(s, run_id, st, sizeof st);
        if (strcmp(st, status) == 0)
            return 0;
        tu_sleep_ms(50);
    }
    fprintf(stderr, "run %lld is %s, not %s\n", (long long)run_id, st, status);
    return -1;
}

struct outcome_ud {
    const char *step;
    char *buf;
    size_t size;
    int want_status;
};

static int outcome_cb(void *ud, const struct db_exec_info *e)
{
    struct outcome_ud *o = ud;
    if (strcmp(e->step, o->step) == 0)
        snprintf(o->buf, o->size, "%s", o->want_status ? e->status : e->outcome);
    return 0;
}

/* The status (want_status) or outcome of the last execution of step into buf. */
static void step_field(struct wh_server *s, int64_t run_id, const char *step, char *buf,
                       size_t size, int want_status)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct outcome_ud o = {step, buf, size, want_status};
    buf[0] = '\0';
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    enum as_code rc = db_run_execs(c, run_id, outcome_cb, &o, &err);
    db_read_end(s->app.db, c);
    assert_int_equal(rc, AS_OK);
}

void wh_step_status(struct wh_server *s, int64_t run_id, const char *step, char *buf,
                    size_t size)
{
    step_field(s, run_id, step, buf, size, 1);
}

void wh_step_outcome(struct wh_server *s, int64_t run_id, const char *step, char *buf,
                     size_t size)
{
    step_field(s, run_id, step, buf, size, 0);
}

/* Undo quoted-printable: soft line breaks and =XX escapes (in place). */
static void qp_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=' && p[1] == '\n') {
            p += 2;
        } else if (p[0] == '=' && p[1] && p[2] && strchr("0123456789ABCDEF", p[1]) &&
                   strchr("0123456789ABCDEF", p[2])) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static int header_is(const char *msg, const char *name, const char *prefix)
{
    size_t nl = strlen(name);
    for (const char *p = msg; p && *p;) {
        if (p[0] == '\r' || p[0] == '\n')
            return 0; /* end of headers */
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            if (strncmp(v, prefix, strlen(prefix)) == 0)
                return 1;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return 0;
}

static int scan_mail(struct wh_server *s, const char *to, const char *subject_prefix,
                     char **link)
{
    DIR *d = opendir(s->mail_dir);
    int found = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".eml") != 0)
            continue;
        char *path = tu_path(s->mail_dir, e->d_name);
        char *msg = tu_read_file(path);
        free(path);
        if (!msg)
            continue;
        if (header_is(msg, "To", to) && (!subject_prefix || header_is(msg, "Subject", subject_prefix))) {
            found++;
            qp_decode(msg);
            char needle[96];
            snprintf(needle, sizeof needle, "%s/a/", s->url);
            const char *l = strstr(msg, needle);
            if (link && l) {
                size_t len = strlen(needle) + 43;
                char *copy = strndup(l, len);
                /* The newest one wins only by order of discovery; callers
                 * that need one specific link ask for n == 1. */
                free(*link);
                *link = copy;
            }
        }
        free(msg);
    }
    closedir(d);
    return found;
}

int wh_wait_mail(struct wh_server *s, const char *to, const char *subject_prefix, int n,
                 int timeout_ms, char **link)
{
    int found = 0;
    if (link)
        *link = NULL;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (link) {
            free(*link);
            *link = NULL;
        }
        found = scan_mail(s, to, subject_prefix, link);
        if (found >= n)
            return found;
        tu_sleep_ms(50);
    }
    return found;
}

/* The first string in headers.<name> of a received message, or "". */
static const char *smtp_header(const json_t *msg, const char *name)
{
    const char *v = json_string_value(json_array_get(json_object_get(json_object_get(msg, "headers"), name), 0));
    return v ? v : "";
}

static int scan_smtp(struct wh_server *s, const char *dir, const char *to,
                     const char *subject_prefix, char **link)
{
    DIR *d = opendir(dir);
    int found = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0)
            continue;
        char *path = tu_path(dir, e->d_name);
        json_t *msg = json_load_file(path, 0, NULL);
        free(path);
        if (!msg)
            continue;
        int to_match = 0;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(msg, "rcpt_tos"), i, r)
            to_match |= json_is_string(r) && strcmp(json_string_value(r), to) == 0;
        if (to_match && (!subject_prefix ||
                         strncmp(smtp_header(msg, "subject"), subject_prefix, strlen(subject_prefix)) == 0)) {
            found++;
            char needle[96];
            snprintf(needle, sizeof needle, "%s/a/", s->url);
            json_t *part;
            json_array_foreach(json_object_get(msg, "parts"), i, part)
            {
                const char *content = json_string_value(json_object_get(part, "content"));
                const char *l = content ? strstr(content, needle) : NULL;
                if (link && l && strcmp(json_string_value(json_object_get(part, "content_type")), "text/plain") == 0) {
                    free(*link);
                    *link = strndup(l, strlen(needle) + 43);
                }
            }
        }
        json_decref(msg);
    }
    closedir(d);
    return found;
}

int wh_wait_smtp(struct wh_server *s, const char *smtp_dir, const char *to,
                 const char *subject_prefix, int n, int timeout_ms, char **link)
{
    int found = 0;
    if (link)
        *link = NULL;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (link) {
            free(*link);
            *link = NULL;
        }
        found = scan_smtp(s, smtp_dir, to, subject_prefix, link);
        if (found >= n)
            return found;
        tu_sleep_ms(50);
    }
    return found;
}

int wh_count_mail(struct wh_server *s, const char *to)
{
    return scan_mail(s, to, NULL, NULL);
}

char *wh_csrf(const char *page)
{
    const char *p = page ? strstr(page, "name=\"csrf\" value=\"") : NULL;
    if (!p)
        return NULL;
    p += strlen("name=\"csrf\" value=\"");
    const char *end = strchr(p, '"');
    return end ? strndup(p, (size_t)(end - p)) : NULL;
}

char *wh_db_fingerprint(struct wh_server *s)
{
    struct as_err err = {0};
    char digest[DB_TESTING_DIGEST_SIZE];
    if (db_testing_state_digest(s->app.db, digest, &err) != AS_OK)
        fail_msg("db_testing_state_digest: %s", err.msg);
    return strdup(digest);
}

long wh_post(const char *url, const char *body, char *const extra_headers[], char **page)
{
    struct tu_http_resp r;
    char *headers[8];
    int n = 0;
    headers[n++] = "Content-Type: application/x-www-form-urlencoded";
    for (int i = 0; extra_headers && extra_headers[i] && n < 7; i++)
        headers[n++] = extra_headers[i];
    headers[n] = NULL;
    if (tu_http("POST", url, headers, body, &r) != 0) {
        tu_http_free(&r);
        return -1;
    }
    long status = r.status;
    if (page)
        *page = strdup(r.body);
    tu_http_free(&r);
    return status;
}

long wh_get(const char *method, const char *url, char **page, char **headers)
{
    struct tu_http_resp r;
    if (tu_http(method, url, NULL, NULL, &r) != 0) {
        tu_http_free(&r);
        return -1;
    }
    long status = r.status;
    if (page)
        *page = strdup(r.body);
    if (headers)
        *headers = strdup(r.headers);
    tu_http_free(&r);
    return status;
}

char *wh_log(struct wh_server *s)
{
    return tu_read_file(s->log_path);
}
