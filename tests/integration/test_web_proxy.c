/*
 * test_web_proxy.c - a real `assent serve` behind a reverse proxy (config
 * trusted_proxies): the decision's audit record names the client a trusted
 * proxy forwards, a spoofed X-Forwarded-For from anyone else is ignored, and
 * the rate limiter counts the clients behind the proxy, never the proxy.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_events.h"
#include "cli/cli.h"
#include "tests/integration/web_harness.h"

#define WAIT_MS 30000

static char *form_body(const char *csrf, const char *decision)
{
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, csrf ? csrf : "", 0);
    size_t n = strlen(esc) + 64;
    char *body = malloc(n);
    snprintf(body, n, "csrf=%s&decision=%s&comment=", esc, decision);
    curl_free(esc);
    curl_easy_cleanup(c);
    return body;
}

struct find {
    char addr[64];
};

static int find_decided(void *ud, const struct db_event_info *ev)
{
    struct find *f = ud;
    if (strcmp(ev->type, "approval.decision") != 0)
        return 0;
    json_t *d = json_loads(ev->data, 0, NULL);
    snprintf(f->addr, sizeof f->addr, "%s",
             json_string_value(json_object_get(d, "client_addr"))
                 ? json_string_value(json_object_get(d, "client_addr"))
                 : "");
    json_decref(d);
    return 1;
}

/* The client address the decision of run was recorded with. */
static void decided_addr(struct wh_server *s, int64_t run, char *out, size_t size)
{
    struct find f = {""};
    struct db_conn *c = NULL;
    struct as_err err = {0};
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, run, find_decided, &f, &err), AS_OK);
    db_read_end(s->app.db, c);
    snprintf(out, size, "%s", f.addr);
}

/* Start a run with one approver, approve it through its page with the given
 * extra headers; returns the run id. */
static int64_t approve_with(struct wh_server *s, const char *approver, char *const headers[])
{
    char *wf = wh_workflow("any", "P1D", NULL, NULL, 0);
    char input[200];
    snprintf(input, sizeof input, "{\"approvers\": [\"%s\"]}", approver);
    int64_t run = wh_submit(s, wf, input);
    free(wf);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, approver, "Approval requested", 1, WAIT_MS, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);
    char *page = NULL;
    assert_int_equal(wh_get("GET", link, &page, NULL), 200);
    char *csrf = wh_csrf(page);
    char *body = form_body(csrf, "approve");
    assert_int_equal(wh_post(link, body, headers, NULL), 200);
    free(body);
    free(csrf);
    free(page);
    free(link);
    return run;
}

static void test_untrusted_forwarding_ignored(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-noproxy", 0);
    wh_start(s, 0);
    char *spoof[] = {"X-Forwarded-For: 198.51.100.77", "Forwarded: for=198.51.100.78", NULL};
    int64_t run = approve_with(s, "a@example.org", spoof);
    char addr[64];
    decided_addr(s, run, addr, sizeof addr);
    assert_string_equal(addr, "127.0.0.1");
}

static void test_trusted_proxy_forwards_client(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-proxy", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8");
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_WEB_BAD_TOKEN_LIMIT=3");
    wh_start(s, 0);
    /* The client put a spoofed address first; the proxies appended the
     * real one and themselves. */
    char *fwd[] = {"X-Forwarded-For: 6.6.6.6, 198.51.100.77, 10.1.1.1", NULL};
    int64_t run = approve_with(s, "b@example.org", fwd);
    char addr[64];
    decided_addr(s, run, addr, sizeof addr);
    assert_string_equal(addr, "198.51.100.77");

    /* Bad tokens: the client behind the proxy is blocked, not the proxy. */
    char bad[200];
    snprintf(bad, sizeof bad, "%s/a/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", s->url);
    char *mallory[] = {"X-Forwarded-For: 203.0.113.66", NULL};
    long st = 0;
    for (int i = 0; i < 6 && st != 429; i++) {
        struct tu_http_resp r = {0};
        assert_int_equal(tu_http("GET", bad, mallory, NULL, &r), 0);
        st = r.status;
        tu_http_free(&r);
    }
    assert_int_equal(st, 429);
    char *alice[] = {"X-Forwarded-For: 203.0.113.67", NULL};
    struct tu_http_resp r = {0};
    assert_int_equal(tu_http("GET", bad, alice, NULL, &r), 0);
    assert_int_equal(r.status, 404); /* another client behind the same proxy: not blocked */
    tu_http_free(&r);
    /* The proxy itself (no forwarding header) is never blocked. */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(tu_http("GET", bad, NULL, NULL, &r), 0);
        assert_int_equal(r.status, 404);
        tu_http_free(&r);
    }
}

static void test_bad_trusted_proxies_refused(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "web-badproxy", 0);
    char *argv[] = {(char *)tu_assent_bin(), "serve", NULL};
    char envdb[4200], *env[] = {envdb, "ASSENT_TRUSTED_PROXIES=10.0.0.0/8,proxy.example",
                                "ASSENT_LISTEN=127.0.0.1:0", NULL};
    snprintf(envdb, sizeof envdb, "ASSENT_DB=%s", s->db_path);
    char *out = NULL, *err = NULL;
    int code = tu_run(argv, env, 60000, &out, &err);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(err, "trusted_proxies"));
    assert_non_null(strstr(err, "proxy.example"));
    free(out);
    free(err);
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_untrusted_forwarding_ignored, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_trusted_proxy_forwards_client, wh_setup,
                                        wh_teardown),
        cmocka_unit_test_setup_teardown(test_bad_trusted_proxies_refused, wh_setup, wh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
