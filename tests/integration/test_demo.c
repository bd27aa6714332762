/*
 * test_demo.c - `assent demo` as a person runs it: started on a free port
 * with a small generated tenant, it writes DIR/assent.json (mode 0600, the
 * simulator's URLs, the client id and secret file, the database, the mail
 * settings; never the secret itself) and prints how to use it; while it
 * runs, `assent --config DIR/assent.json sync | report | kpi` work against
 * the demo tenant; the outbox page's highlighting shows in headless
 * Chromium (tests/integration/outbox_browser.py; that part is skipped when
 * Chromium or Selenium is missing).  SIGTERM stops the demo with exit 0.
 *
 * Waits are bounded polls with generous limits; nothing asserts on timing.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define USERS 6
#define START_MS 300000

struct demo_fixture {
    char *dir, *demo_dir, *log, *config;
    int port;
    pid_t pid;
};

static int setup(void **state)
{
    struct demo_fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tmpdir("demo");
    f->demo_dir = tu_path(f->dir, "demo");
    f->log = tu_path(f->dir, "demo.log");
    f->config = tu_path(f->demo_dir, "assent.json");
    f->port = tu_free_port();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct demo_fixture *f = *state;
    if (f->pid > 0)
        tu_stop(f->pid, SIGKILL);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->demo_dir);
    free(f->log);
    free(f->config);
    free(f);
    return 0;
}

/* Run `assent --config CONFIG args...`; returns the exit code, *out stdout. */
static int run_with_config(struct demo_fixture *f, char **out, const char *a1, const char *a2,
                           const char *a3, const char *a4)
{
    char *argv[] = {(char *)tu_assent_bin(), "--config", f->config, (char *)a1, (char *)a2,
                    (char *)a3, (char *)a4, NULL};
    char *errout = NULL;
    int rc = tu_run(argv, NULL, 300000, out, &errout);
    if (rc != 0)
        fprintf(stderr, "assent --config ... %s: exit %d\n%s\n", a1, rc, errout ? errout : "");
    free(errout);
    return rc;
}

/* Sign in to the console at listen with token: the login form, then 303 to the overview. */
static void console_sign_in(const char *listen, const char *token)
{
    char url[128], cookie[256], body[256];
    struct tu_http_resp r;
    snprintf(url, sizeof url, "http://%s/console/login", listen);
    assert_int_equal(tu_http("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char *set = tu_http_header(&r, "Set-Cookie");
    const char *csrf = strstr(r.body, "name=\"csrf\" value=\"");
    assert_non_null(set);
    assert_non_null(csrf);
    csrf += strlen("name=\"csrf\" value=\"");
    snprintf(cookie, sizeof cookie, "Cookie: %.*s", (int)strcspn(set, ";"), set);
    snprintf(body, sizeof body, "csrf=%.*s&token=%s", (int)strcspn(csrf, "\""), csrf, token);
    free(set);
    tu_http_free(&r);
    char *headers[] = {cookie, "Content-Type: application/x-www-form-urlencoded", NULL};
    assert_int_equal(tu_http("POST", url, headers, body, &r), 0);
    assert_int_equal(r.status, 303);
    char *loc = tu_http_header(&r, "Location");
    assert_string_equal(loc, "/console/overview");
    free(loc);
    tu_http_free(&r);
}

static void test_demo_config_and_outbox(void **state)
{
    struct demo_fixture *f = *state;
    char listen[64], users[16];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", f->port);
    snprintf(users, sizeof users, "%d", USERS);
    char *argv[] = {(char *)tu_assent_bin(), "demo", "--dir", f->demo_dir, "--users", users,
                    "--listen", listen, NULL};
    f->pid = tu_spawn(argv, NULL, f->log);
    assert_true(f->pid > 0);

    /* Ready when it has printed its instructions. */
    char *log = NULL;
    for (int waited = 0;; waited += 200) {
        free(log);
        log = tu_read_file(f->log);
        if (log && strstr(log, "Ctrl-C stops everything"))
            break;
        if (waited >= START_MS || tu_wait_exit(f->pid, 0) >= 0)
            fail_msg("the demo did not start:\n%s", log ? log : "");
        tu_sleep_ms(200);
    }
    char want[1200];
    snprintf(want, sizeof want, "assent --config %s/assent.json sync", f->demo_dir);
    if (!strstr(log, want))
        fail_msg("the demo does not print \"%s\":\n%s", want, log);
    /* The Conditional Access workflow is started too (once per demo folder). */
    if (!strstr(log, "of block-legacy-auth") && !strstr(log, "block-legacy-auth already has run"))
        fail_msg("the demo does not start block-legacy-auth:\n%s", log);
    /* The console's URL and a ready admin token, which signs in. */
    snprintf(want, sizeof want, "The admin console: http://%s/console/", listen);
    if (!strstr(log, want))
        fail_msg("the demo does not print \"%s\":\n%s", want, log);
    const char *tok = strstr(log, "\n    assent_");
    assert_non_null(tok);
    char token[128];
    snprintf(token, sizeof token, "%.*s", (int)strcspn(tok + 5, "\r\n"), tok + 5);
    assert_int_equal(strlen(token), 50);
    console_sign_in(listen, token);
    free(log);

    /* The file: 0600, the demo's settings, a reference to the secret only. */
    struct stat st;
    assert_int_equal(stat(f->config, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_error_t jerr;
    json_t *cfg = json_load_file(f->config, 0, &jerr);
    assert_non_null(cfg);
    char url[64], path[1200];
    snprintf(path, sizeof path, "%s/assent.db", f->demo_dir);
    char *real = realpath(path, NULL);
    assert_non_null(real);
    assert_string_equal(json_string_value(json_object_get(cfg, "db")), real);
    free(real);
    const char *login = json_string_value(json_object_get(cfg, "login_url"));
    assert_non_null(login);
    assert_int_equal(strncmp(login, "http://127.0.0.1:", 17), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "graph_url")), login);
    assert_string_equal(json_string_value(json_object_get(cfg, "exchange_url")), login);
    assert_true(json_string_length(json_object_get(cfg, "client_id")) > 0);
    assert_true(json_string_length(json_object_get(cfg, "tenant_id")) > 0);
    assert_non_null(strstr(json_string_value(json_object_get(cfg, "client_secret_file")),
                           "client-secret"));
    assert_null(json_object_get(cfg, "client_secret"));
    assert_string_equal(json_string_value(json_object_get(cfg, "mail_transport")), "file");
    assert_non_null(strstr(json_string_value(json_object_get(cfg, "mail_dir")), "/mail"));
    snprintf(url, sizeof url, "http://%s", listen);
    assert_string_equal(json_string_value(json_object_get(cfg, "public_url")), url);
    json_decref(cfg);

    /* Other commands against the running demo, by that file alone. */
    char *out = NULL;
    assert_int_equal(run_with_config(f, &out, "sync", NULL, NULL, NULL), 0);
    free(out);
    out = NULL;
    assert_int_equal(run_with_config(f, &out, "report", "users", "--format", "json"), 0);
    json_t *rows = json_loads(out, 0, &jerr);
    if (!json_is_array(rows) || json_array_size(rows) != USERS)
        fail_msg("report users gave %zu rows, not %d:\n%s", json_array_size(rows), USERS, out);
    json_decref(rows);
    free(out);
    out = NULL;
    assert_int_equal(run_with_config(f, &out, "kpi", "list", "--json", NULL), 0);
    assert_non_null(strstr(out, "\"legacy-enabled\""));
    free(out);

    /* The outbox's highlighting, as a browser shows it. */
    if (!tu_browser_missing()) {
        char script[1024], shot[1024], page[128];
        snprintf(script, sizeof script, "%s/tests/integration/outbox_browser.py", tu_source_dir());
        snprintf(shot, sizeof shot, "%s/demo-outbox.png", tu_build_dir());
        snprintf(page, sizeof page, "http://%s/outbox", listen);
        char *bargv[] = {"/usr/bin/python3", script, "--url", page, "--shot", shot, NULL};
        char *bout = NULL, *berr = NULL;
        int rc = tu_run(bargv, NULL, 300000, &bout, &berr);
        if (rc != 0)
            fail_msg("outbox_browser.py failed (%d):\n%s\n%s", rc, bout ? bout : "",
                     berr ? berr : "");
        assert_non_null(strstr(bout, "\"csp_violations\": []"));
        free(bout);
        free(berr);
    } else {
        fprintf(stderr, "browser check skipped: chromium, chromium-driver or selenium missing\n");
    }

    int status = tu_stop(f->pid, SIGTERM);
    f->pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_demo_config_and_outbox, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
