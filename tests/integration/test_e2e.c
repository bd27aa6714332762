/*
 * test_e2e.c - the whole chain over real HTTP and real SMTP.
 *
 *   tenant simulator (generated tenant) -> `assent sync` -> exceptions ->
 *   KPI legacy-enabled finds exactly the right users (computed here,
 *   independently, from the simulator's state file) -> `assent trigger`
 *   starts one legacy-protocols run each (a second trigger starts none) ->
 *   `assent serve` emails users and the owner through an SMTP server
 *   (aiosmtpd, tests/integration/smtp_test_server.py) -> approval links
 *   taken from the owner's emails -> approve one (and kill -9 `assent
 *   serve` right after; the restarted one finishes the job), reject one
 *   (exception recorded with the comment), let the rest expire (clock moved
 *   forward; escalation emails) -> the simulator's state shows exactly the
 *   approved user's protocols off and nothing else changed.
 *
 * Waits are bounded polls; nothing asserts on timing.
 */
#include "tests/testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "tests/integration/sim_harness.h"

#define USERS 40
#define SEED 11
#define WAIT_MS 90000
#define OWNER "exchange-owner@contoso.com"
#define SECURITY "security@contoso.com"
#define REJECT_COMMENT "The warehouse scanner mails by POP until it is replaced in March"

struct e2e {
    struct sim_harness sim;
    char *dir, *db, *smtp_dir, *smtp_log, *serve_log, *cli_log;
    int smtp_port, web_port;
    pid_t smtp_pid, serve_pid;
    char url[64];
    char env[24][600];
    char *envp[25];
    int n_env;
};

static void env_add(struct e2e *t, const char *name, const char *v)
{
    snprintf(t->env[t->n_env], sizeof t->env[0], "%s=%s", name, v);
    t->envp[t->n_env] = t->env[t->n_env];
    t->n_env++;
    t->envp[t->n_env] = NULL;
}

/* Run `assent ARGS...`; returns the exit code; *out gets stdout (caller frees). */
static int assent(struct e2e *t, char **out, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tu_assent_bin();
    va_list ap;
    va_start(ap, out);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char *o = NULL, *e = NULL;
    int rc = tu_run(argv, t->envp, 120000, &o, &e);
    if (t->cli_log && e) {
        /* Keep every command's log for the secrets check at the end. */
        FILE *f = fopen(t->cli_log, "a");
        if (f) {
            fputs(e, f);
            fclose(f);
        }
    }
    if (rc != 0)
        fprintf(stderr, "assent %s exited %d\nstdout: %s\nstderr: %s\n", argv[1], rc, o ? o : "",
                e ? e : "");
    free(e);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

/* 1 when text holds a simulator access token ("sim." + 43 base64url characters). */
static int access_token_in(const char *text)
{
    for (const char *p = strstr(text, "sim."); p; p = strstr(p + 1, "sim.")) {
        size_t n = strspn(p + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
        if (n >= 40)
            return 1;
    }
    return 0;
}

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text ? text : "", 0, &jerr);
    if (!v)
        fail_msg("not JSON (%s): %.400s", jerr.text, text ? text : "(null)");
    return v;
}

/* ---- the SMTP server's mailbox (one JSON file per message) ---- */

static json_t *smtp_messages(struct e2e *t)
{
    json_t *all = json_array();
    DIR *d = opendir(t->smtp_dir);
    if (!d)
        return all;
    struct dirent *e;
    char *names[4096];
    size_t n = 0;
    while ((e = readdir(d)) != NULL && n < 4096) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        char *path = tu_path(t->smtp_dir, names[i]);
        json_t *m = json_load_file(path, 0, NULL);
        if (m)
            json_array_append_new(all, m);
        free(path);
        free(names[i]);
    }
    return all;
}

static const char *subject_of(const json_t *m)
{
    const char *s = json_string_value(json_array_get(json_object_get(json_object_get(m, "headers"), "subject"), 0));
    return s ? s : "";
}

static int rcpt_has(const json_t *m, const char *addr)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(m, "rcpt_tos"), i, r)
    {
        if (strcasecmp(json_string_value(r), addr) == 0)
            return 1;
    }
    return 0;
}

/* The text/plain content of a message. */
static const char *text_of(const json_t *m)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(m, "parts"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "content_type")) ?: "", "text/plain") == 0)
            return json_string_value(json_object_get(p, "content"));
    }
    return "";
}

/* Messages to `to` whose subject contains `needle`. */
/* Messages to `to` whose subject (in_body: text) holds needle. */
static int count_mail_in(struct e2e *t, const char *to, const char *needle, int in_body)
{
    json_t *all = smtp_messages(t);
    int n = 0;
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m)
    {
        if (rcpt_has(m, to) && strstr(in_body ? text_of(m) : subject_of(m), needle))
            n++;
    }
    json_decref(all);
    return n;
}

static int count_mail(struct e2e *t, const char *to, const char *needle)
{
    return count_mail_in(t, to, needle, 0);
}

static int wait_mail(struct e2e *t, const char *to, const char *needle, int n)
{
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        if (count_mail(t, to, needle) >= n)
            return 0;
        tu_sleep_ms(200);
    }
    return -1;
}

/* The approval link in the owner's email about `upn` (malloc'd) or NULL. */
static char *approval_link(struct e2e *t, const char *upn)
{
    json_t *all = smtp_messages(t);
    char *link = NULL;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s/a/", t->url);
    size_t i;
    json_t *m;
    char about[300];
    snprintf(about, sizeof about, " for %s?", upn); /* "Turn off POP, IMAP for UPN?" */
    json_array_foreach(all, i, m)
    {
        if (!rcpt_has(m, OWNER) || strncmp(subject_of(m), "Approval requested", 18) != 0 ||
            !strstr(subject_of(m), about))
            continue;
        const char *p = strstr(text_of(m), prefix);
        if (p) {
            size_t n = strcspn(p, " \t\r\n<>\"");
            link = strndup(p, n);
            break;
        }
    }
    json_decref(all);
    return link;
}

/* approval_link, waiting for the email (bounded poll). */
static char *wait_link(struct e2e *t, const char *upn)
{
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        char *link = approval_link(t, upn);
        if (link)
            return link;
        tu_sleep_ms(200);
    }
    return NULL;
}

/* ---- HTTP ---- */

static char *csrf_of(const char *page)
{
    const char *p = strstr(page ? page : "", "name=\"csrf\" value=\"");
    if (!p)
        return NULL;
    p += strlen("name=\"csrf\" value=\"");
    return strndup(p, strcspn(p, "\""));
}

static long decide(struct e2e *t, const char *link, const char *decision, const char *comment)
{
    struct tu_http_resp r = {0};
    assert_int_equal(tu_http("GET", link, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char *csrf = csrf_of(r.body);
    assert_non_null(csrf);
    tu_http_free(&r);
    CURL *c = curl_easy_init();
    char *e_csrf = curl_easy_escape(c, csrf, 0), *e_comment = curl_easy_escape(c, comment, 0);
    char body[2048], origin[128];
    snprintf(body, sizeof body, "csrf=%s&decision=%s&comment=%s", e_csrf, decision, e_comment);
    snprintf(origin, sizeof origin, "Origin: %s", t->url);
    curl_free(e_csrf);
    curl_free(e_comment);
    curl_easy_cleanup(c);
    free(csrf);
    char *headers[] = {origin, "Content-Type: application/x-www-form-urlencoded", NULL};
    assert_int_equal(tu_http("POST", link, headers, body, &r), 0);
    long status = r.status;
    tu_http_free(&r);
    return status;
}

/* ---- processes ---- */

static void serve_start(struct e2e *t, long long fake_offset_ms)
{
    char offset[64];
    snprintf(offset, sizeof offset, "ASSENT_FAKE_NOW_OFFSET_MS=%lld", fake_offset_ms);
    char *env[26];
    int n = 0;
    for (; t->envp[n]; n++)
        env[n] = t->envp[n];
    env[n++] = offset;
    env[n++] = "ASSENT_TEST_HOOKS=1"; /* lets the offset apply */
    env[n] = NULL;
    char *argv[] = {(char *)tu_assent_bin(), "serve", NULL};
    t->serve_pid = tu_spawn(argv, env, t->serve_log);
    assert_true(t->serve_pid > 0);
    assert_int_equal(tu_wait_port(t->web_port, 30000), 0);
}

static void serve_stop(struct e2e *t, int sig)
{
    int status = tu_stop(t->serve_pid, sig);
    if (sig == SIGTERM && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *log = tu_read_file(t->serve_log);
        fail_msg("assent serve did not stop cleanly (status %d); log:\n%s", status, log ? log : "");
    }
    t->serve_pid = 0;
}

/* Runs by id -> status, from `assent runs --json`. */
static json_t *run_statuses(struct e2e *t)
{
    char *out = NULL;
    assert_int_equal(assent(t, &out, "runs", "--workflow", "legacy-protocols", "--limit", "1000",
                            "--json", NULL), 0);
    json_t *runs = parse_json(out);
    free(out);
    json_t *by_id = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(r, "id")));
        json_object_set(by_id, id, json_object_get(r, "status"));
    }
    json_decref(runs);
    return by_id;
}

static const char *status_of(const json_t *by_id, int64_t run_id)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)run_id);
    return json_string_value(json_object_get(by_id, id)) ?: "";
}

static int wait_run(struct e2e *t, int64_t run_id, const char *want)
{
    for (int waited = 0; waited < WAIT_MS; waited += 250) {
        json_t *s = run_statuses(t);
        int done = strcmp(status_of(s, run_id), want) == 0;
        json_decref(s);
        if (done)
            return 0;
        tu_sleep_ms(250);
    }
    return -1;
}

/* ---- the expected answer, from the simulator's state ---- */

static int effective_smtp_on(const json_t *mbx, const json_t *state)
{
    const json_t *v = json_object_get(mbx, "SmtpClientAuthenticationDisabled");
    if (!json_is_boolean(v))
        v = json_object_get(json_object_get(state, "transport_config"), "SmtpClientAuthenticationDisabled");
    return json_is_false(v);
}

/* Mailbox of upn in a state document, or NULL. */
static const json_t *mailbox_of(const json_t *state, const char *upn)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(state, "users"), i, u)
    {
        if (strcasecmp(json_string_value(json_object_get(u, "userPrincipalName")), upn) == 0)
            return json_object_get(u, "mailbox");
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whatever is still running when a check fails is stopped by teardown(). */
static struct e2e g_e2e;

static int teardown(void **state)
{
    (void)state;
    if (g_e2e.serve_pid > 0)
        tu_stop(g_e2e.serve_pid, SIGKILL);
    if (g_e2e.smtp_pid > 0)
        tu_stop(g_e2e.smtp_pid, SIGTERM);
    if (g_e2e.sim.pid > 0)
        sim_harness_stop(&g_e2e.sim);
    g_e2e.serve_pid = g_e2e.smtp_pid = 0;
    return 0;
}

/* Start the tenant simulator and the SMTP server and set the environment
 * every `assent` command of the test runs with. */
static void e2e_start(struct e2e *e)
{
    memset(e, 0, sizeof *e);
    e->dir = tu_tmpdir("e2e");
    e->db = tu_path(e->dir, "assent.db");
    e->smtp_dir = tu_path(e->dir, "smtp");
    e->smtp_log = tu_path(e->dir, "smtp.log");
    e->serve_log = tu_path(e->dir, "serve.log");
    e->cli_log = tu_path(e->dir, "cli.log");
    mkdir(e->smtp_dir, 0700);

    /* The tenant and the SMTP server. */
    assert_int_equal(sim_harness_start(&e->sim, USERS, SEED, NULL), 0);
    e->smtp_port = tu_free_port();
    char port_text[16], smtp_url[64];
    snprintf(port_text, sizeof port_text, "%d", e->smtp_port);
    char *server_py = tu_path(tu_source_dir(), "tests/integration/smtp_test_server.py");
    char *smtp_argv[] = {"/usr/bin/python3", server_py, "--port", port_text, "--dir", e->smtp_dir, NULL};
    e->smtp_pid = tu_spawn(smtp_argv, NULL, e->smtp_log);
    free(server_py);
    assert_true(e->smtp_pid > 0);
    assert_int_equal(tu_wait_port(e->smtp_port, 30000), 0);
    snprintf(smtp_url, sizeof smtp_url, "smtp://127.0.0.1:%d", e->smtp_port);
    e->web_port = tu_free_port();
    snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", e->web_port);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", e->web_port);

    env_add(e, "ASSENT_DB", e->db);
    env_add(e, "ASSENT_LOGIN_URL", e->sim.url);
    env_add(e, "ASSENT_GRAPH_URL", e->sim.url);
    env_add(e, "ASSENT_EXCHANGE_URL", e->sim.url);
    env_add(e, "ASSENT_TENANT_ID", e->sim.tenant_id);
    env_add(e, "ASSENT_CLIENT_ID", e->sim.client_id);
    env_add(e, "ASSENT_CLIENT_SECRET_FILE", e->sim.secret_path);
    env_add(e, "ASSENT_MAIL_TRANSPORT", "smtp");
    env_add(e, "ASSENT_SMTP_URL", smtp_url);
    env_add(e, "ASSENT_MAIL_FROM", "assent@contoso.com");
    env_add(e, "ASSENT_LISTEN", listen);
    env_add(e, "ASSENT_PUBLIC_URL", e->url);
    env_add(e, "ASSENT_M365_BACKOFF_INITIAL_MS", "200");
    env_add(e, "ASSENT_LEASE_SECONDS", "5");
    /* Debug level: the most the logs ever say, checked for secrets at the end. */
    env_add(e, "ASSENT_LOG_LEVEL", "debug");

}

/* Stop what e2e_start started and remove the test's directory. */
static void e2e_finish(struct e2e *e)
{
    tu_stop(e->smtp_pid, SIGTERM);
    e->smtp_pid = 0;
    assert_int_equal(sim_harness_stop(&e->sim), 0);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e->db);
    free(e->smtp_dir);
    free(e->smtp_log);
    free(e->serve_log);
    free(e->cli_log);
    e->dir = NULL;
}

static void test_e2e(void **state)
{
    (void)state;
    struct e2e *e = &g_e2e;
    e2e_start(e);
    json_t *before = sim_harness_state(&e->sim);
    assert_non_null(before);

    /* 1. Sync. */
    assert_int_equal(assent(e, NULL, "sync", NULL), 0);

    /* 2. Who the KPI must find, computed from the state file: a mailbox with
     * POP or IMAP on, or SMTP AUTH effectively on - minus exemptions. */
    char *legacy[USERS];
    int n_legacy = 0;
    const char *pop_only = NULL, *pop_and_imap = NULL, *other = NULL;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(before, "users"), i, u)
    {
        const json_t *m = json_object_get(u, "mailbox");
        if (!json_is_object(m))
            continue;
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        int pop = json_is_true(json_object_get(m, "PopEnabled"));
        int imap = json_is_true(json_object_get(m, "ImapEnabled"));
        int smtp = effective_smtp_on(m, before);
        if (!(pop || imap || smtp))
            continue;
        if (pop && !imap && !smtp && !pop_only)
            pop_only = upn;
        else if (pop && imap && !pop_and_imap)
            pop_and_imap = upn;
        else if (!other)
            other = upn;
        legacy[n_legacy++] = (char *)upn;
    }
    assert_non_null(pop_only);
    assert_non_null(pop_and_imap);
    assert_non_null(other);
    /* Exempt for POP: the POP-only user drops out, the POP+IMAP one stays
     * (for IMAP); an exception that has expired changes nothing. */
    assert_int_equal(assent(e, NULL, "exception", "add", "--user", pop_only, "--protocols", "pop",
                            "--reason", "Old handheld", "--granted-by", "cio@contoso.com", NULL), 0);
    assert_int_equal(assent(e, NULL, "exception", "add", "--user", pop_and_imap, "--protocols", "pop",
                            "--reason", "Phone", "--granted-by", "cio@contoso.com", NULL), 0);
    assert_int_equal(assent(e, NULL, "exception", "add", "--user", other, "--protocols", "all",
                            "--reason", "Short", "--granted-by", "cio@contoso.com", "--expires",
                            "PT1S", NULL), 0);
    int expired = 0;
    for (int waited = 0; waited < 20000 && !expired; waited += 250) {
        char *out = NULL;
        assert_int_equal(assent(e, &out, "exception", "list", "--expired", "--json", NULL), 0);
        json_t *l = parse_json(out);
        expired = json_array_size(l) == 1;
        json_decref(l);
        free(out);
        if (!expired)
            tu_sleep_ms(250);
    }
    assert_true(expired);
    char *expect[USERS];
    int n_expect = 0;
    for (int k = 0; k < n_legacy; k++)
        if (strcmp(legacy[k], pop_only) != 0)
            expect[n_expect++] = legacy[k];
    qsort(expect, (size_t)n_expect, sizeof *expect, cmp_str);
    assert_true(n_expect >= 4);

    /* 3. The shipped KPI finds exactly them. */
    char *kpi_file = tu_path(tu_source_dir(), "workflows/kpis/legacy-enabled.json");
    char *wf_file = tu_path(tu_source_dir(), "workflows/legacy-protocols.json");
    assert_int_equal(assent(e, NULL, "kpi", "create", "--from", kpi_file, NULL), 0);
    char *out = NULL;
    assert_int_equal(assent(e, &out, "kpi", "eval", "legacy-enabled", "--rows", "--json", NULL), 0);
    json_t *ev = parse_json(out);
    free(out);
    json_t *rows = json_object_get(ev, "rows");
    assert_int_equal(json_integer_value(json_object_get(ev, "value")), n_expect);
    assert_int_equal(json_integer_value(json_object_get(ev, "exempt")), 1);
    char *found[USERS];
    int n_found = 0;
    json_array_foreach(rows, i, u)
    {
        found[n_found++] = (char *)json_string_value(json_object_get(u, "upn"));
        if (strcmp(json_string_value(json_object_get(u, "upn")), pop_and_imap) == 0)
            assert_null(json_object_get(json_object_get(u, "cas_settings"), "PopEnabled"));
    }
    qsort(found, (size_t)n_found, sizeof *found, cmp_str);
    assert_int_equal(n_found, n_expect);
    for (int k = 0; k < n_expect; k++)
        assert_string_equal(found[k], expect[k]);

    /* 4. Trigger: one run each; a second trigger starts none. */
    const char *input = "{\"approvers\": [\"" OWNER "\"], \"escalate_to\": [\"" SECURITY "\"],"
                        " \"approval_expiry\": \"P1D\", \"reminder_every\": \"PT12H\"}";
    assert_int_equal(assent(e, &out, "trigger", wf_file, "--kpi", "legacy-enabled", "--input",
                            input, "--json", NULL), 0);
    json_t *tr = parse_json(out);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(tr, "started")), n_expect);
    json_t *run_of = json_object(); /* upn -> run id */
    json_array_foreach(json_object_get(tr, "rows_detail"), i, u)
    {
        json_object_set(run_of, json_string_value(json_object_get(u, "upn")),
                        json_object_get(u, "run_id"));
    }
    json_decref(tr);
    assert_int_equal(assent(e, &out, "trigger", wf_file, "--kpi", "legacy-enabled", "--input",
                            input, "--json", NULL), 0);
    tr = parse_json(out);
    free(out);
    assert_int_equal(json_integer_value(json_object_get(tr, "started")), 0);
    assert_int_equal(json_integer_value(json_object_get(tr, "duplicates")), n_expect);
    json_decref(tr);

    /* 5. Serve: every user is told, the owner is asked about each. */
    serve_start(e, 0);
    for (int k = 0; k < n_expect; k++) {
        if (wait_mail(e, expect[k], "Action needed", 1) != 0)
            fail_msg("no notice email for %s", expect[k]);
    }
    assert_int_equal(wait_mail(e, OWNER, "Approval requested", n_expect), 0);
    const char *approve_upn = expect[0] == pop_and_imap ? expect[1] : expect[0];
    const char *reject_upn = NULL;
    for (int k = 0; k < n_expect && !reject_upn; k++)
        if (expect[k] != approve_upn)
            reject_upn = expect[k];
    char *approve_link = approval_link(e, approve_upn);
    char *reject_link = approval_link(e, reject_upn);
    assert_non_null(approve_link);
    assert_non_null(reject_link);
    int64_t approve_run = json_integer_value(json_object_get(run_of, approve_upn));
    int64_t reject_run = json_integer_value(json_object_get(run_of, reject_upn));
    assert_true(approve_run > 0 && reject_run > 0);

    /* 6. Approve one, and kill -9 the server right after: nothing is lost. */
    long st = decide(e, approve_link, "approve", "OK, go ahead");
    assert_true(st >= 200 && st < 400);
    serve_stop(e, SIGKILL);
    serve_start(e, 0);
    if (wait_run(e, approve_run, "succeeded") != 0) {
        char *log = tu_read_file(e->serve_log);
        fail_msg("approved run %lld did not succeed; serve log:\n%s", (long long)approve_run, log);
    }
    assert_int_equal(wait_mail(e, approve_upn, "Done:", 1), 0);

    /* 7. Reject one: an exception with the comment as its reason. */
    st = decide(e, reject_link, "reject", REJECT_COMMENT);
    assert_true(st >= 200 && st < 400);
    assert_int_equal(wait_run(e, reject_run, "succeeded"), 0);
    assert_int_equal(assent(e, &out, "exception", "list", "--user", reject_upn, "--json", NULL), 0);
    json_t *exc = parse_json(out);
    free(out);
    assert_int_equal(json_array_size(exc), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(exc, 0), "reason")), REJECT_COMMENT);
    assert_string_equal(json_string_value(json_object_get(json_array_get(exc, 0), "granted_by")), OWNER);
    json_decref(exc);
    /* The user is told: nothing changes until the exception expires, with the
     * approver's comment verbatim. */
    assert_int_equal(wait_mail(e, reject_upn, "No change:", 1), 0);
    assert_int_equal(count_mail_in(e, reject_upn, REJECT_COMMENT, 1), 1);
    assert_int_equal(count_mail_in(e, reject_upn, "stay on until", 1), 1);

    /* 8. Let the others expire: two days later, escalation emails. */
    serve_stop(e, SIGTERM);
    serve_start(e, 2LL * 86400 * 1000);
    int n_expired = n_expect - 2;
    assert_int_equal(wait_mail(e, SECURITY, "Approval expired", n_expired), 0);
    json_t *statuses = NULL;
    int all_ended = 0;
    for (int waited = 0; waited < WAIT_MS && !all_ended; waited += 250) {
        json_decref(statuses);
        statuses = run_statuses(e);
        all_ended = 1;
        const char *upn;
        json_t *id;
        json_object_foreach(run_of, upn, id)
        {
            if (strcmp(status_of(statuses, json_integer_value(id)), "succeeded") != 0)
                all_ended = 0;
        }
        if (!all_ended)
            tu_sleep_ms(250);
    }
    assert_true(all_ended);
    /* Those whose approval expired are told that nothing changes for now. */
    for (int k = 0; k < n_expect; k++)
        if (expect[k] != approve_upn && expect[k] != reject_upn &&
            wait_mail(e, expect[k], "No change for now", 1) != 0)
            fail_msg("no expiry notice for %s", expect[k]);
    /* One run per user, none lost, none doubled. */
    assert_int_equal(json_object_size(statuses), n_expect);
    json_decref(statuses);
    serve_stop(e, SIGTERM);

    /* 9. The tenant: exactly the approved user's legacy protocols are off. */
    json_t *after = sim_harness_state(&e->sim);
    assert_non_null(after);
    json_array_foreach(json_object_get(before, "users"), i, u)
    {
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        const json_t *m0 = json_object_get(u, "mailbox");
        const json_t *m1 = mailbox_of(after, upn);
        if (!json_is_object(m0)) {
            assert_true(m1 == NULL || json_is_null(m1));
            continue;
        }
        json_t *want = json_deep_copy(m0), *got = json_deep_copy(m1);
        json_object_del(want, "WhenChanged");
        json_object_del(got, "WhenChanged");
        if (strcmp(upn, approve_upn) == 0) {
            if (json_is_true(json_object_get(m0, "PopEnabled")))
                json_object_set_new(want, "PopEnabled", json_false());
            if (json_is_true(json_object_get(m0, "ImapEnabled")))
                json_object_set_new(want, "ImapEnabled", json_false());
            if (effective_smtp_on(m0, before))
                json_object_set_new(want, "SmtpClientAuthenticationDisabled", json_true());
            assert_false(json_equal(m0, m1)); /* something did change */
        }
        if (!json_equal(want, got)) {
            char *a = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
            char *b = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
            fail_msg("mailbox %s:\nexpected %s\n     got %s", upn, a, b);
        }
        json_decref(want);
        json_decref(got);
    }
    assert_true(json_equal(json_object_get(before, "transport_config"),
                           json_object_get(after, "transport_config")));
    json_decref(after);
    printf("e2e: %d users found (1 exempt), %d runs, approved %s (killed serve -9 after), "
           "rejected %s, %d expired and escalated\n",
           n_expect, n_expect, approve_upn, reject_upn, n_expired);
    /* The KPI's history: evaluated by `kpi eval` and by each trigger. */
    assert_int_equal(assent(e, &out, "kpi", "show", "legacy-enabled", NULL), 0);
    assert_non_null(strstr(out, "trend:"));
    assert_non_null(strstr(out, "\xe2\x96")); /* a block of the sparkline */
    assert_non_null(strstr(out, "over 3 evaluations"));
    free(out);
    /* Bad input gets a clear error and changes nothing. */
    char *err_out = NULL;
    char *bad[] = {(char *)tu_assent_bin(), "exception", "add", "--user", (char *)approve_upn,
                   "--protocols", "pop", "--granted-by", "x@contoso.com", NULL};
    assert_int_equal(tu_run(bad, e->envp, 60000, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "--reason is required"));
    free(err_out);
    char *bad2[] = {(char *)tu_assent_bin(), "kpi", "create", "x", "--filter", "pop_enabled ||", NULL};
    assert_int_equal(tu_run(bad2, e->envp, 60000, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "filter"));
    free(err_out);
    /* The audit trail is intact after the crash. */
    assert_int_equal(assent(e, NULL, "audit", "verify", NULL), 0);
    /* No secret reached a log, even at debug level. */
    char *client_secret = tu_read_file(e->sim.secret_path);
    assert_non_null(client_secret);
    client_secret[strcspn(client_secret, "\r\n")] = '\0';
    assert_true(strlen(client_secret) >= 16);
    const char *logs[] = {e->serve_log, e->cli_log};
    for (size_t k = 0; k < 2; k++) {
        char *log = tu_read_file(logs[k]);
        assert_non_null(log);
        if (!strstr(log, " debug m365: new "))
            fail_msg("%s has no debug line about a new token:\n%s", logs[k], log);
        if (strstr(log, client_secret))
            fail_msg("%s holds the client secret", logs[k]);
        const char *links[] = {approve_link, reject_link};
        for (size_t l = 0; l < 2; l++) {
            const char *tok = strrchr(links[l], '/') + 1;
            assert_int_equal(strlen(tok), 43);
            if (strstr(log, tok))
                fail_msg("%s holds an approval link token", logs[k]);
        }
        if (strcasestr(log, "Bearer") || access_token_in(log))
            fail_msg("%s holds an access token", logs[k]);
        free(log);
    }
    free(client_secret);

    free(approve_link);
    free(reject_link);
    json_decref(run_of);
    json_decref(ev);
    json_decref(before);
    free(kpi_file);
    free(wf_file);
    e2e_finish(e);
}

/* ---- a tenant that changes while the campaign runs ---- */

static const char outside_wf[] =
    "{\"name\": \"outside-change\", \"version\": \"1\",\n"
    " \"input\": {\"upn\": {\"type\": \"string\", \"required\": true},\n"
    "           \"settings\": {\"type\": \"object\", \"required\": true}},\n"
    " \"steps\": {\"set\": {\"type\": \"manage_cas\",\n"
    "   \"params\": {\"identity\": \"${input.upn}\", \"settings\": \"${input.settings}\"}}}}\n";

/* Someone changes a mailbox outside the campaign (as an admin would in the
 * Exchange admin center): a run of a one-step manage_cas workflow. */
static void change_outside(struct e2e *e, const char *wf, const char *upn, const char *settings)
{
    char input[512];
    snprintf(input, sizeof input, "{\"upn\": \"%s\", \"settings\": %s}", upn, settings);
    assert_int_equal(assent(e, NULL, "run", wf, "--input", input, "--wait", NULL), 0);
}

/* The legacy protocols (of pop, imap, smtp) on for a mailbox of the state. */
static int legacy_count(const json_t *m, const json_t *state)
{
    return json_is_true(json_object_get(m, "PopEnabled")) +
           json_is_true(json_object_get(m, "ImapEnabled")) + effective_smtp_on(m, state);
}

/* `assent show RUN --json` as text (caller frees). */
static char *show_run(struct e2e *e, int64_t run_id)
{
    char id[32], *out = NULL;
    snprintf(id, sizeof id, "%lld", (long long)run_id);
    assert_int_equal(assent(e, &out, "show", id, "--json", "--verbose", NULL), 0);
    return out;
}

/*
 * Issue "act on the tenant as it is now":
 *  - a user whose protocols were turned off after the sync: the triggered
 *    run re-checks, emails nobody and succeeds saying nothing was left;
 *  - an exception granted while the approval is pending: after approval the
 *    exempt protocol is untouched in the tenant, the others are off;
 *  - the KPI's schedule fires after the tenant changed (sync first): the
 *    open run of a user it no longer finds is superseded and its link
 *    answers 410; a run whose user is still found stays open.
 */
static void test_moving_tenant(void **state)
{
    (void)state;
    struct e2e *e = &g_e2e;
    e2e_start(e);
    char *wf_file = tu_path(tu_source_dir(), "workflows/legacy-protocols.json");
    char *outside = tu_path(e->dir, "outside-change.json");
    char *kpi_file = tu_path(e->dir, "moving.json");
    assert_int_equal(tu_write_file(outside, outside_wf), 0);
    char kpi_text[2048];
    snprintf(kpi_text, sizeof kpi_text,
             "{\"name\": \"moving\", \"report\": \"users\",\n"
             " \"filter\": \"pop_enabled || imap_enabled || smtp_client_auth_disabled == false\",\n"
             " \"protocols\": [\"pop\", \"imap\", \"smtp\"],\n"
             " \"schedule\": {\"cron\": \"* * * * *\", \"timezone\": \"UTC\", \"sync\": true},\n"
             " \"trigger\": {\"workflow\": \"%s\",\n"
             "   \"input\": {\"approvers\": [\"" OWNER "\"], \"escalate_to\": [\"" SECURITY "\"]}}}\n",
             wf_file);
    assert_int_equal(tu_write_file(kpi_file, kpi_text), 0);

    assert_int_equal(assent(e, NULL, "sync", NULL), 0);
    json_t *before = sim_harness_state(&e->sim);
    /* Four users with legacy protocols: a has two or more (one gets exempt
     * while its approval is pending), b is fixed outside Assent after the
     * sync, c leaves the KPI before the schedule fires, d stays. */
    const char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(before, "users"), i, u)
    {
        const json_t *m = json_object_get(u, "mailbox");
        const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));
        int n = json_is_object(m) ? legacy_count(m, before) : 0;
        if (n >= 2 && !a)
            a = upn;
        else if (n >= 1 && !b)
            b = upn;
        else if (n >= 1 && !c)
            c = upn;
        else if (n >= 1 && !d)
            d = upn;
    }
    assert_non_null(a);
    assert_non_null(d);
    const json_t *ma = mailbox_of(before, a);
    /* The protocol of a that gets exempt: SMTP when it is on, else IMAP. */
    int exempt_smtp = effective_smtp_on(ma, before);
    const char *exempt_proto = exempt_smtp ? "smtp" : "imap";

    /* b: fixed outside Assent after the sync. */
    change_outside(e, outside, b,
                   "{\"PopEnabled\": false, \"ImapEnabled\": false, "
                   "\"SmtpClientAuthenticationDisabled\": true}");
    assert_int_equal(assent(e, NULL, "kpi", "create", "--from", kpi_file, NULL), 0);

    /* --dry-run shows who would approve and the first email, starting nothing. */
    char *out = NULL;
    assert_int_equal(assent(e, &out, "trigger", wf_file, "--kpi", "moving", "--dry-run", NULL), 0);
    assert_non_null(strstr(out, "approvers: " OWNER));
    assert_non_null(strstr(out, "--- first email"));
    assert_non_null(strstr(out, "Subject: Action needed"));
    assert_null(strstr(out, "Hello ,"));
    free(out);

    /* A trigger on the stale sync starts a run for b too; b's run decides. */
    assert_int_equal(assent(e, &out, "trigger", wf_file, "--kpi", "moving", "--json", NULL), 0);
    json_t *tr = parse_json(out);
    free(out);
    json_t *run_of = json_object();
    json_array_foreach(json_object_get(tr, "rows_detail"), i, u)
        json_object_set(run_of, json_string_value(json_object_get(u, "upn")),
                        json_object_get(u, "run_id"));
    json_decref(tr);
    int64_t run_a = json_integer_value(json_object_get(run_of, a));
    int64_t run_b = json_integer_value(json_object_get(run_of, b));
    int64_t run_c = json_integer_value(json_object_get(run_of, c));
    int64_t run_d = json_integer_value(json_object_get(run_of, d));
    assert_true(run_a > 0 && run_b > 0 && run_c > 0 && run_d > 0);

    serve_start(e, 0);
    assert_int_equal(wait_run(e, run_b, "succeeded"), 0);
    char *timeline = show_run(e, run_b);
    assert_non_null(strstr(timeline, "nothing left to do"));
    assert_null(strstr(timeline, "\"notify_user\""));
    free(timeline);
    assert_int_equal(wait_mail(e, OWNER, "Approval requested", 3), 0);
    assert_int_equal(count_mail(e, b, ""), 0);
    char subject_b[300];
    snprintf(subject_b, sizeof subject_b, " for %s?", b);
    assert_int_equal(count_mail(e, OWNER, subject_b), 0);

    /* a: an exception is granted while the approval is pending; then approved. */
    char *link_a = wait_link(e, a), *link_c = wait_link(e, c);
    assert_non_null(link_a);
    assert_non_null(link_c);
    assert_int_equal(assent(e, NULL, "exception", "add", "--user", a, "--protocols", exempt_proto,
                            "--reason", "Scanner sends with SMTP AUTH", "--granted-by",
                            "cio@contoso.com", NULL), 0);
    long st = decide(e, link_a, "approve", "Go ahead");
    assert_true(st >= 200 && st < 400);
    if (wait_run(e, run_a, "succeeded") != 0) {
        char *log = tu_read_file(e->serve_log);
        fail_msg("run of %s did not succeed; serve log:\n%s", a, log);
    }
    timeline = show_run(e, run_a);
    assert_non_null(strstr(timeline, "skipped_exempt"));
    free(timeline);
    json_t *now_state = sim_harness_state(&e->sim);
    const json_t *ma2 = mailbox_of(now_state, a);
    assert_false(json_is_true(json_object_get(ma2, "PopEnabled")));
    if (exempt_smtp) {
        assert_true(json_equal(json_object_get(ma, "SmtpClientAuthenticationDisabled"),
                               json_object_get(ma2, "SmtpClientAuthenticationDisabled")));
        assert_false(json_is_true(json_object_get(ma2, "ImapEnabled")));
    } else {
        assert_true(json_is_true(json_object_get(ma2, "ImapEnabled")));
        assert_true(json_is_true(json_object_get(ma2, "SmtpClientAuthenticationDisabled")) ||
                    !effective_smtp_on(ma2, now_state));
    }
    json_decref(now_state);
    assert_int_equal(wait_mail(e, a, "Done:", 1), 0);
    assert_int_equal(count_mail_in(e, a, "which stays on under an exception", 1), 1);

    /* c leaves the KPI (fixed outside); the schedule fires (after a sync) and
     * supersedes c's run; d is still found, its run stays open. */
    change_outside(e, outside, c,
                   "{\"PopEnabled\": false, \"ImapEnabled\": false, "
                   "\"SmtpClientAuthenticationDisabled\": true}");
    serve_stop(e, SIGTERM);
    serve_start(e, 3LL * 60 * 1000); /* the minute schedule is due: one catch-up firing */
    if (wait_run(e, run_c, "superseded") != 0) {
        char *log = tu_read_file(e->serve_log);
        fail_msg("run of %s was not superseded; serve log:\n%s", c, log);
    }
    timeline = show_run(e, run_c);
    assert_non_null(strstr(timeline, "run.superseded"));
    assert_non_null(strstr(timeline, "no longer finds"));
    free(timeline);
    struct tu_http_resp r = {0};
    assert_int_equal(tu_http("GET", link_c, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 410);
    assert_non_null(strstr(r.body, "no longer needed"));
    tu_http_free(&r);
    json_t *statuses = run_statuses(e);
    assert_string_equal(status_of(statuses, run_d), "waiting");
    json_decref(statuses);
    assert_int_equal(assent(e, &out, "runs", "--status", "superseded", NULL), 0);
    assert_non_null(strstr(out, "superseded"));
    free(out);
    serve_stop(e, SIGTERM);

    /* Freshness: two days on, the last sync is older than max_sync_age. */
    char *err_out = NULL;
    env_add(e, "ASSENT_MAX_SYNC_AGE", "PT36H");
    env_add(e, "ASSENT_TEST_HOOKS", "1");
    env_add(e, "ASSENT_FAKE_NOW_OFFSET_MS", "172800000");
    char *stale[] = {(char *)tu_assent_bin(), "trigger", wf_file, "--kpi", "moving", NULL};
    assert_int_equal(tu_run(stale, e->envp, 60000, NULL, &err_out), 3);
    assert_non_null(strstr(err_out, "max_sync_age PT36H"));
    assert_non_null(strstr(err_out, "old"));
    free(err_out);
    char *stale_ok[] = {(char *)tu_assent_bin(), "trigger", wf_file, "--kpi", "moving",
                        "--allow-stale", NULL};
    assert_int_equal(tu_run(stale_ok, e->envp, 60000, NULL, &err_out), 0);
    free(err_out);
    e->n_env -= 3; /* back to now */
    e->envp[e->n_env] = NULL;

    /* The shipped workflow has no placeholder approvers: without any it
     * refuses to start; default_approvers gives them. */
    char input[512];
    snprintf(input, sizeof input,
             "{\"user\": \"%s\", \"protocols_enabled\": [\"pop\"], \"protocols_text\": \"POP\", "
             "\"cas_settings\": {\"PopEnabled\": false}}", d);
    char *noapp[] = {(char *)tu_assent_bin(), "run", wf_file, "--input", input,
                     "--dedupe-key", "manual", NULL};
    assert_int_equal(tu_run(noapp, e->envp, 60000, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "approvers"));
    free(err_out);
    env_add(e, "ASSENT_DEFAULT_APPROVERS", "owner-a@contoso.com, owner-b@contoso.com");
    assert_int_equal(assent(e, &out, "run", wf_file, "--input", input, "--json", NULL), 0);
    json_t *started = parse_json(out);
    free(out);
    timeline = show_run(e, json_integer_value(json_object_get(started, "run_id")));
    assert_non_null(strstr(timeline, "owner-b@contoso.com"));
    free(timeline);
    json_decref(started);

    /* Exceptions from the CLI: a granter must be an address, a removal needs
     * a reason, an unknown user is warned about; both go into the audit chain. */
    char *bad_granter[] = {(char *)tu_assent_bin(), "exception", "add", "--user", (char *)d, "--protocols",
                           "pop", "--reason", "r", "--granted-by", "Bob", NULL};
    assert_int_equal(tu_run(bad_granter, e->envp, 60000, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "not an address"));
    free(err_out);
    char *ghost[] = {(char *)tu_assent_bin(), "exception", "add", "--user", "ghost@contoso.com",
                     "--protocols", "pop", "--reason", "r", "--granted-by", "cio@contoso.com",
                     "--json", NULL};
    char *ghost_out = NULL;
    assert_int_equal(tu_run(ghost, e->envp, 60000, &ghost_out, &err_out), 0);
    assert_non_null(strstr(err_out, "not in the last tenant sync"));
    free(err_out);
    json_t *g = parse_json(ghost_out);
    free(ghost_out);
    char gid[32];
    snprintf(gid, sizeof gid, "%lld", (long long)json_integer_value(json_object_get(g, "id")));
    json_decref(g);
    char *rm_noreason[] = {(char *)tu_assent_bin(), "exception", "remove", gid, NULL};
    assert_int_equal(tu_run(rm_noreason, e->envp, 60000, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "--reason"));
    free(err_out);
    assert_int_equal(assent(e, NULL, "exception", "remove", gid, "--reason", "typo", NULL), 0);
    assert_int_equal(assent(e, NULL, "audit", "verify", NULL), 0);

    free(link_a);
    free(link_c);
    json_decref(run_of);
    json_decref(before);
    free(wf_file);
    free(outside);
    free(kpi_file);
    e2e_finish(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_e2e, teardown),
                                       cmocka_unit_test_teardown(test_moving_tenant, teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
