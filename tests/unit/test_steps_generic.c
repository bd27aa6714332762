/*
 * test_steps_generic.c - the generic step types (log, condition, delay,
 * fail, http), each called directly through execute() with a context built
 * here; the http step talks to a real HTTP server on 127.0.0.1
 * (tests/integration/http_echo_server.c) running inside this program.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/expr.h"
#include "base/timeutil.h"
#include "steps/http_client.h"
#include "engine/step.h"
#include "tests/integration/http_echo_server.h"
#include "cli/cli.h"

/* A step context with its own params object and event array. */
struct fixture {
    struct step_ctx ctx;
    struct step_result res;
    json_t *params;
    json_t *input;
    json_t *steps;
    json_t *events;
    json_t *wait_state;
};

static void fx_init(struct fixture *f, const char *params_json)
{
    memset(f, 0, sizeof *f);
    f->params = json_loads(params_json, 0, NULL);
    assert_non_null(f->params);
    f->input = json_pack("{s:s, s:i}", "url", "http://example.invalid/", "n", 3);
    f->steps = json_pack("{s:{s:{s:i, s:{s:b}}, s:s}}", "post", "output", "status", 200, "body",
                         "ok", 1, "outcome", "success");
    f->events = json_array();
    f->ctx.run_id = 42;
    f->ctx.exec_id = 7;
    f->ctx.workflow = "wf";
    f->ctx.step_name = "step";
    f->ctx.idempotency_key = "run42-step-1";
    f->ctx.attempt = 1;
    f->ctx.max_attempts = 3;
    f->ctx.timeout_ms = 10000;
    f->ctx.now_ms = time_now_ms();
    f->ctx.params = f->params;
    f->ctx.input = f->input;
    f->ctx.steps = f->steps;
    f->ctx.events = f->events;
}

/* Execute with a clean result (keeps the previous wait_state in ctx, as the executor would). */
static void fx_run(struct fixture *f, const struct step_type *t)
{
    json_decref(f->res.output);
    json_decref(f->res.wait_state);
    memset(&f->res, 0, sizeof f->res);
    t->execute(&f->ctx, &f->res);
}

static void fx_free(struct fixture *f)
{
    json_decref(f->res.output);
    json_decref(f->res.wait_state);
    json_decref(f->params);
    json_decref(f->input);
    json_decref(f->steps);
    json_decref(f->events);
    json_decref(f->wait_state);
}

static const char *out_str(const struct fixture *f, const char *key)
{
    return json_string_value(json_object_get(f->res.output, key));
}

/* ---- log ---- */

static void test_log(void **state)
{
    (void)state;
    struct fixture f;
    const struct step_type *t = step_type_find("log");
    assert_non_null(t);

    fx_init(&f, "{\"message\": \"hello\\r\\nforged line\", \"level\": \"warn\"}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_OK);
    assert_string_equal(f.res.outcome, "");
    assert_string_equal(out_str(&f, "message"), "hello\r\nforged line");
    assert_int_equal(json_array_size(f.events), 1);
    json_t *ev = json_array_get(f.events, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "log");
    json_t *data = json_object_get(ev, "data");
    assert_string_equal(json_string_value(json_object_get(data, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(data, "message")), "hello\r\nforged line");
    fx_free(&f);

    /* A whole-string reference that resolved to an object is logged as JSON text. */
    fx_init(&f, "{\"message\": {\"a\": [1, 2]}}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_OK);
    assert_string_equal(out_str(&f, "message"), "{\"a\":[1,2]}");
    fx_free(&f);

    fx_init(&f, "{\"message\": \"x\", \"level\": \"loud\"}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "info, warn or error"));
    fx_free(&f);

    /* Validation catches the bad level before any run. */
    struct diag_list d = {0};
    json_t *p = json_pack("{s:s, s:s}", "message", "x", "level", "loud");
    t->validate(p, "$.steps.l.params", &d);
    assert_int_equal(diag_errors(&d), 1);
    json_decref(p);
    diag_free(&d);

    /* A long message is cut (with a mark), never overflowing. */
    char *longmsg = malloc(10001);
    memset(longmsg, 'a', 10000);
    longmsg[10000] = '\0';
    fx_init(&f, "{}");
    json_object_set_new(f.params, "message", json_string(longmsg));
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_OK);
    assert_true(strlen(out_str(&f, "message")) < 10000);
    free(longmsg);
    fx_free(&f);
}

/* ---- fail ---- */

static void test_fail(void **state)
{
    (void)state;
    struct fixture f;
    const struct step_type *t = step_type_find("fail");
    assert_non_null(t);
    fx_init(&f, "{\"message\": \"giving up on user@example.com\"}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_string_equal(f.res.error, "giving up on user@example.com");
    fx_free(&f);

    fx_init(&f, "{}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "step"));
    fx_free(&f);
}

/* ---- delay ---- */

static void test_delay(void **state)
{
    (void)state;
    struct fixture f;
    const struct step_type *t = step_type_find("delay");
    assert_non_null(t);
    assert_true(t->waits);

    fx_init(&f, "{\"duration\": \"PT2S\"}");
    int64_t now = f.ctx.now_ms;
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_WAIT);
    assert_int_equal(f.res.wait_until_ms, now + 2000);
    assert_non_null(f.res.wait_state);

    /* Re-executed before the deadline (a re-claim after a crash): the same deadline. */
    f.wait_state = json_incref(f.res.wait_state);
    f.ctx.wait_state = f.wait_state;
    f.ctx.now_ms = now + 500;
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_WAIT);
    assert_int_equal(f.res.wait_until_ms, now + 2000);

    /* Woken at the deadline: done. */
    f.ctx.now_ms = now + 2001;
    f.ctx.deadline_reached = 1;
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_OK);
    assert_int_equal(json_integer_value(json_object_get(f.res.output, "delay_ms")), 2000);
    fx_free(&f);

    fx_init(&f, "{\"duration\": \"500ms\"}");
    now = f.ctx.now_ms;
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_WAIT);
    assert_int_equal(f.res.wait_until_ms, now + 500);
    fx_free(&f);

    fx_init(&f, "{\"duration\": \"P1M\"}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_FAILED);
    fx_free(&f);

    fx_init(&f, "{\"duration\": 5}");
    fx_run(&f, t);
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "duration"));
    fx_free(&f);

    struct diag_list d = {0};
    json_t *p = json_pack("{s:s}", "duration", "P400D");
    t->validate(p, "$.steps.d.params", &d);
    assert_int_equal(diag_errors(&d), 1);
    assert_string_equal(d.items[0].path, "$.steps.d.params.duration");
    json_decref(p);
    diag_free(&d);
}

/* ---- condition ---- */

static void cond_case(const char *expr, enum step_status want, const char *outcome)
{
    struct fixture f;
    const struct step_type *t = step_type_find("condition");
    json_t *p = json_pack("{s:s}", "expr", expr);
    char *text = json_dumps(p, 0);
    json_decref(p);
    fx_init(&f, text);
    free(text);
    fx_run(&f, t);
    if (f.res.status != want)
        fail_msg("expr %s: status %d (%s), want %d", expr, f.res.status, f.res.error, want);
    if (outcome) {
        assert_string_equal(f.res.outcome, outcome);
        assert_int_equal(json_is_true(json_object_get(f.res.output, "value")),
                         strcmp(outcome, "true") == 0);
    }
    fx_free(&f);
}

static void test_condition(void **state)
{
    (void)state;
    const struct step_type *t = step_type_find("condition");
    assert_non_null(t);
    cond_case("steps.post.output.status == 200", STEP_OK, "true");
    cond_case("steps.post.output.status == 201", STEP_OK, "false");
    cond_case("steps.post.output.body.ok && input.n > 2", STEP_OK, "true");
    cond_case("steps.post.output.body.missing == null", STEP_OK, "true");
    cond_case("steps.nope.output.status == 200", STEP_OK, "false");
    cond_case("input.url == 'http://example.invalid/' || false", STEP_OK, "true");
    cond_case("run.id == 42", STEP_OK, "true");
    cond_case("steps.post.output.status ==", STEP_FAILED, NULL);
    cond_case("'a' in steps.post.outcome", STEP_OK, "false");
}

/* ---- http ---- */

static struct echo_server *srv;

static int http_setup(void **state)
{
    (void)state;
    srv = echo_start();
    return srv ? 0 : -1;
}

static int http_teardown(void **state)
{
    (void)state;
    echo_stop(srv);
    srv = NULL;
    http_client_thread_cleanup();
    return 0;
}

/* Run the http step with params (a json_pack'd object, stolen). */
static void http_run(struct fixture *f, json_t *params)
{
    fx_init(f, "{}");
    json_decref(f->params);
    f->params = params;
    f->ctx.params = params;
    fx_run(f, step_type_find("http"));
}

static json_t *last_request(void)
{
    json_t *all = echo_requests(srv);
    json_t *last = json_incref(json_array_get(all, json_array_size(all) - 1));
    json_decref(all);
    return last;
}

static void test_http_success(void **state)
{
    (void)state;
    struct fixture f;
    char *url = echo_url(srv, "/hook?token=abc");

    /* POST with a JSON body: parsed response, Idempotency-Key and Content-Type sent. */
    http_run(&f, json_pack("{s:s, s:s, s:{s:s, s:i}, s:{s:s}}", "method", "POST", "url", url,
                           "body", "user", "a@example.com", "n", 5, "headers", "X-Trace", "t1"));
    assert_int_equal(f.res.status, STEP_OK);
    assert_int_equal(json_integer_value(json_object_get(f.res.output, "status")), 200);
    json_t *body = json_object_get(f.res.output, "body");
    assert_true(json_is_true(json_object_get(body, "ok")));
    assert_string_equal(json_string_value(json_object_get(body, "idempotency_key")), "run42-step-1");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(f.res.output, "headers"), "x-request-id")),
                        "echo-1");
    json_t *req = last_request();
    assert_string_equal(json_string_value(json_object_get(req, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(req, "content_type")), "application/json");
    assert_string_equal(json_string_value(json_object_get(req, "idempotency_key")), "run42-step-1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(req, "body"), "user")),
                        "a@example.com");
    json_decref(req);
    fx_free(&f);

    /* GET is the default method; a string body with PUT is sent as is. */
    http_run(&f, json_pack("{s:s}", "url", url));
    assert_int_equal(f.res.status, STEP_OK);
    req = last_request();
    assert_string_equal(json_string_value(json_object_get(req, "method")), "GET");
    json_decref(req);
    fx_free(&f);

    http_run(&f, json_pack("{s:s, s:s, s:s, s:{s:s}}", "method", "PUT", "url", url, "body",
                           "plain text", "headers", "Authorization", "Bearer s3cret"));
    assert_int_equal(f.res.status, STEP_OK);
    req = last_request();
    assert_string_equal(json_string_value(json_object_get(req, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(req, "body")), "plain text");
    assert_string_equal(json_string_value(json_object_get(req, "content_type")),
                        "text/plain; charset=utf-8");
    assert_string_equal(json_string_value(json_object_get(req, "authorization")), "Bearer s3cret");
    json_decref(req);
    fx_free(&f);

    /* A non-JSON answer: a string by default, refused when JSON is required,
     * a string when text is asked for; a JSON answer is parsed by default. */
    echo_push(srv, &(struct echo_fault){.body = "<html>hi</html>", .content_type = "text/html"});
    http_run(&f, json_pack("{s:s}", "url", url));
    assert_int_equal(f.res.status, STEP_OK);
    assert_string_equal(out_str(&f, "body"), "<html>hi</html>");
    fx_free(&f);
    echo_push(srv, &(struct echo_fault){.body = "{\"ok\": true}", .content_type = "text/plain"});
    http_run(&f, json_pack("{s:s}", "url", url));
    assert_int_equal(f.res.status, STEP_OK);
    assert_true(json_is_true(json_object_get(json_object_get(f.res.output, "body"), "ok")));
    fx_free(&f);
    echo_push(srv, &(struct echo_fault){.body = "<html>hi</html>", .content_type = "text/html"});
    http_run(&f, json_pack("{s:s, s:b}", "url", url, "expect_json", 1));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "not JSON"));
    assert_null(strstr(f.res.error, "token=abc"));
    fx_free(&f);
    echo_push(srv, &(struct echo_fault){.body = "<html>hi</html>", .content_type = "text/html"});
    http_run(&f, json_pack("{s:s, s:b}", "url", url, "expect_json", 0));
    assert_int_equal(f.res.status, STEP_OK);
    assert_string_equal(out_str(&f, "body"), "<html>hi</html>");
    fx_free(&f);

    /* 204: empty body is null. */
    echo_push(srv, &(struct echo_fault){.status = 204, .body = ""});
    http_run(&f, json_pack("{s:s, s:s}", "method", "DELETE", "url", url));
    assert_int_equal(f.res.status, STEP_OK);
    assert_int_equal(json_integer_value(json_object_get(f.res.output, "status")), 204);
    assert_true(json_is_null(json_object_get(f.res.output, "body")));
    fx_free(&f);
    free(url);
}

static void test_http_retry(void **state)
{
    (void)state;
    struct fixture f;
    char *url = echo_url(srv, "/r");

    /* 503 with Retry-After in seconds: retry not before then. */
    echo_push(srv, &(struct echo_fault){.status = 503, .retry_after = "7", .body = "busy"});
    int64_t before = time_now_ms();
    http_run(&f, json_pack("{s:s, s:s}", "method", "POST", "url", url));
    int64_t after = time_now_ms();
    assert_int_equal(f.res.status, STEP_RETRY);
    assert_in_range(f.res.wait_until_ms, before + 7000, after + 7000);
    assert_non_null(strstr(f.res.error, "503"));
    assert_non_null(strstr(f.res.error, "busy"));
    fx_free(&f);

    /* 429 with an HTTP-date two minutes ahead. */
    char date[64];
    time_t when = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    echo_push(srv, &(struct echo_fault){.status = 429, .retry_after = date});
    before = time_now_ms();
    http_run(&f, json_pack("{s:s}", "url", url));
    after = time_now_ms();
    assert_int_equal(f.res.status, STEP_RETRY);
    assert_in_range(f.res.wait_until_ms, before + 118000, after + 121000);
    fx_free(&f);

    /* A huge Retry-After is clamped. */
    echo_push(srv, &(struct echo_fault){.status = 503, .retry_after = "99999999999"});
    before = time_now_ms();
    http_run(&f, json_pack("{s:s}", "url", url));
    after = time_now_ms();
    assert_int_equal(f.res.status, STEP_RETRY);
    assert_in_range(f.res.wait_until_ms, before + HTTP_RETRY_AFTER_MAX_MS,
                    after + HTTP_RETRY_AFTER_MAX_MS);
    fx_free(&f);

    /* 500, 408 and 429 without Retry-After: retry per policy (0). */
    int statuses[] = {500, 502, 408, 429, 503};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        echo_push(srv, &(struct echo_fault){.status = statuses[i]});
        http_run(&f, json_pack("{s:s}", "url", url));
        assert_int_equal(f.res.status, STEP_RETRY);
        assert_int_equal(f.res.wait_until_ms, 0);
        assert_int_equal(json_integer_value(json_object_get(f.res.output, "status")), statuses[i]);
        fx_free(&f);
    }

    /* A dropped connection and a refused one are transient. */
    char *drop = echo_url(srv, "/drop");
    http_run(&f, json_pack("{s:s}", "url", drop));
    free(drop);
    assert_int_equal(f.res.status, STEP_RETRY);
    fx_free(&f);
    int port = tu_free_port();
    char refused[64];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/", port);
    http_run(&f, json_pack("{s:s}", "url", refused));
    assert_int_equal(f.res.status, STEP_RETRY);
    fx_free(&f);

    /* Slower than the step's timeout: retry. */
    echo_push(srv, &(struct echo_fault){.delay_ms = 1500});
    fx_init(&f, "{}");
    json_object_set_new(f.params, "url", json_string(url));
    f.ctx.timeout_ms = 200;
    fx_run(&f, step_type_find("http"));
    assert_int_equal(f.res.status, STEP_RETRY);
    assert_non_null(strstr(f.res.error, "imeout") ? strstr(f.res.error, "imeout")
                                                  : strstr(f.res.error, "timed out"));
    fx_free(&f);

    /* Every attempt above carried the step's key. */
    json_t *all = echo_requests(srv);
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
        assert_string_equal(json_string_value(json_object_get(r, "idempotency_key")), "run42-step-1");
    json_decref(all);
    free(url);
}

static void test_http_permanent(void **state)
{
    (void)state;
    struct fixture f;
    char url[256];
    snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/status/404?token=abc", echo_port(srv));

    http_run(&f, json_pack("{s:s, s:{s:s}}", "url", url, "headers", "Authorization", "Basic c2VjcmV0"));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "HTTP 404"));
    assert_non_null(strstr(f.res.error, "\"ok\":true")); /* a snippet of the body */
    assert_null(strstr(f.res.error, "token=abc"));
    assert_null(strstr(f.res.error, "pw@"));
    assert_null(strstr(f.res.error, "c2VjcmV0"));
    assert_int_equal(json_integer_value(json_object_get(f.res.output, "status")), 404);
    fx_free(&f);

    /* A body over the 4 MiB cap is refused, not truncated. */
    echo_push(srv, &(struct echo_fault){.big = 5u * 1024 * 1024});
    char *u2 = echo_url(srv, "/big");
    http_run(&f, json_pack("{s:s}", "url", u2));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "larger than"));
    fx_free(&f);

    /* Malformed requests fail before anything is sent. */
    size_t n = echo_count(srv);
    http_run(&f, json_pack("{s:s}", "url", "ftp://127.0.0.1/x"));
    assert_int_equal(f.res.status, STEP_FAILED);
    fx_free(&f);
    http_run(&f, json_pack("{s:s, s:s}", "method", "BREW", "url", u2));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "method"));
    fx_free(&f);
    http_run(&f, json_pack("{s:s, s:{s:s}}", "url", u2, "headers", "X-A", "v\r\nInjected: 1"));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "CR, LF"));
    fx_free(&f);
    http_run(&f, json_pack("{s:s, s:{s:i}}", "url", u2, "headers", "X-A", 1));
    assert_int_equal(f.res.status, STEP_FAILED);
    fx_free(&f);
    assert_int_equal(echo_count(srv), n);

    /* Validation checks literal values; templates are left to run time. */
    const struct step_type *t = step_type_find("http");
    struct diag_list d = {0};
    json_t *p = json_pack("{s:s, s:s}", "method", "get", "url", "gopher://x/");
    t->validate(p, "$.steps.h.params", &d);
    assert_int_equal(diag_errors(&d), 2);
    json_decref(p);
    diag_free(&d);
    p = json_pack("{s:s, s:s}", "method", "${input.m}", "url", "${input.url}");
    t->validate(p, "$.steps.h.params", &d);
    assert_int_equal(diag_errors(&d), 0);
    json_decref(p);
    diag_free(&d);
    free(u2);
}

/* A redirect is followed, except for a request with a credential header:
 * libcurl would send e.g. X-Api-Key on to another host. */
static void test_http_redirect_credentials(void **state)
{
    (void)state;
    struct fixture f;
    char *u = echo_url(srv, "/redirect");
    size_t n = echo_count(srv);
    http_run(&f, json_pack("{s:s}", "url", u));
    assert_int_equal(f.res.status, STEP_OK);
    json_t *last = last_request();
    assert_string_equal(json_string_value(json_object_get(last, "path")), "/landed");
    json_decref(last);
    assert_int_equal(echo_count(srv), n + 2);
    fx_free(&f);

    n = echo_count(srv);
    http_run(&f, json_pack("{s:s, s:{s:s}}", "url", u, "headers", "X-Api-Key", "k-s3cret"));
    assert_int_equal(f.res.status, STEP_FAILED);
    assert_non_null(strstr(f.res.error, "HTTP 302 redirect not followed"));
    assert_non_null(strstr(f.res.error, "X-Api-Key"));
    assert_null(strstr(f.res.error, "k-s3cret"));
    assert_int_equal(echo_count(srv), n + 1); /* /landed was never asked */
    fx_free(&f);
    free(u);
}

static void test_http_dry_run(void **state)
{
    (void)state;
    struct fixture f;
    char *url = echo_url(srv, "/dry");
    size_t n = echo_count(srv);
    fx_init(&f, "{}");
    json_object_set_new(f.params, "url", json_string(url));
    json_object_set_new(f.params, "method", json_string("POST"));
    json_object_set_new(f.params, "body", json_pack("{s:i}", "x", 1));
    json_object_set_new(f.params, "headers", json_pack("{s:s, s:s}", "Authorization", "Bearer s3cret",
                                                       "X-Trace", "t"));
    f.ctx.dry_run = 1;
    fx_run(&f, step_type_find("http"));
    assert_int_equal(f.res.status, STEP_OK);
    assert_int_equal(echo_count(srv), n); /* nothing was sent */
    json_t *rq = json_object_get(f.res.output, "request");
    assert_string_equal(json_string_value(json_object_get(rq, "method")), "POST");
    json_t *h = json_object_get(rq, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "Authorization")), "***");
    assert_string_equal(json_string_value(json_object_get(h, "X-Trace")), "t");
    assert_int_equal(json_array_size(f.events), 1);
    char *dump = json_dumps(f.events, 0);
    assert_null(strstr(dump, "s3cret"));
    free(dump);
    fx_free(&f);
    free(url);
}

static void test_url_redact(void **state)
{
    (void)state;
    char out[256];
    http_url_redact("https://u:p@host:8443/a/b?token=x#frag", out, sizeof out);
    assert_string_equal(out, "https://host:8443/a/b");
    http_url_redact("http://host", out, sizeof out);
    assert_string_equal(out, "http://host");
    http_url_redact("http://host?q=1", out, sizeof out);
    assert_string_equal(out, "http://host");
    assert_true(http_header_is_sensitive("authorization"));
    assert_true(http_header_is_sensitive("X-Api-Key"));
    assert_true(http_header_is_sensitive("X-Auth-Token"));
    assert_false(http_header_is_sensitive("Idempotency-Key"));
    assert_false(http_header_is_sensitive("Content-Type"));
}

int main(void)
{
    cli_register_types();
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_condition),
        cmocka_unit_test(test_url_redact),
    };
    const struct CMUnitTest http[] = {
        cmocka_unit_test(test_http_success),
        cmocka_unit_test(test_http_retry),
        cmocka_unit_test(test_http_permanent),
        cmocka_unit_test(test_http_redirect_credentials),
        cmocka_unit_test(test_http_dry_run),
    };
    int failed = cmocka_run_group_tests_name("steps_generic", plain, NULL, NULL);
    failed += cmocka_run_group_tests_name("steps_http", http, http_setup, http_teardown);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
