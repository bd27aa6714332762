/*
 * step_http.c - the `http` step: one HTTP request per attempt.
 *
 * Every attempt (and every re-run of a claim after a crash) sends the same
 * `Idempotency-Key: <ctx->idempotency_key>` header (the IETF draft
 * convention), so a receiving service can drop repeats.  Outcome of an
 * attempt:
 *   2xx                           success: output {"status", "headers", "body"}
 *   429/503 with Retry-After      retry, not before the time the server asked
 *   408, 429, 5xx, network error  retry per the step's retry policy
 *   other (3xx left, 4xx)         permanent failure with status and a body snippet
 * The body of an answer becomes JSON when it parses as JSON (an empty body is
 * null) and a string otherwise, since the services a workflow posts to
 * answer "OK" as often as {"ok":true}.  With "expect_json": true a 2xx body
 * that is not JSON fails the step; with false it is always kept as a string.
 * A dry run sends nothing: it records the request it would have made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/app.h"
#include "base/config.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "steps/http_client.h"
#include "engine/step.h"

#define SNIPPET_LEN 200

static const struct step_param params[] = {
    {"method", SP_STRING, 0, "GET (default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS"},
    {"url", SP_STRING, 1, "http:// or https:// URL"},
    {"headers", SP_OBJECT, 0, "request headers: {\"Name\": \"value\"}"},
    {"body", SP_ANY, 0, "request body: a string is sent as is, any other JSON as application/json"},
    {"expect_json", SP_BOOL, 0,
     "true: a 2xx body must be JSON; false: keep the body as text; default: JSON when it parses"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static int has_template(const char *s)
{
    return s && strstr(s, "${") != NULL;
}

static void validate(const json_t *p, const char *params_path, struct diag_list *out)
{
    char path[600];
    const json_t *m = json_object_get(p, "method");
    if (json_is_string(m) && !has_template(json_string_value(m))) {
        struct http_request req = {.method = json_string_value(m), .url = "http://x/"};
        struct as_err err = {0};
        snprintf(path, sizeof path, "%s.method", params_path);
        if (http_request_check(&req, &err) != AS_OK)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "%s", err.msg);
    }
    const json_t *u = json_object_get(p, "url");
    if (json_is_string(u) && !has_template(json_string_value(u))) {
        struct http_request req = {.method = "GET", .url = json_string_value(u)};
        struct as_err err = {0};
        snprintf(path, sizeof path, "%s.url", params_path);
        if (http_request_check(&req, &err) != AS_OK)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "%s", err.msg);
    }
    const json_t *h = json_object_get(p, "headers");
    if (json_is_object(h)) {
        struct http_request req = {.method = "GET", .url = "http://x/", .headers = h};
        struct as_err err = {0};
        snprintf(path, sizeof path, "%s.headers", params_path);
        if (http_request_check(&req, &err) != AS_OK)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "%s", err.msg);
    }
}

/* A short, single-line, ASCII-only excerpt of a response body for error messages. */
static void body_snippet(const char *body, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size && i < SNIPPET_LEN; i++) {
        unsigned char c = (unsigned char)body[i];
        out[n++] = (c < 0x20 || c >= 0x7f) ? (c == '\n' || c == '\r' || c == '\t' ? ' ' : '?')
                                           : (char)c;
    }
    if (len > SNIPPET_LEN && n + 4 < size) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* The response body as JSON.  expect_json 1: must parse; -1: parsed when it
 * parses, else a string; 0: always a string (bytes that are not UTF-8 become
 * '?').  Returns a new reference, or NULL with err set when JSON was required
 * but the body is not JSON. */
static json_t *body_value(const struct http_response *r, int expect_json, struct as_err *err)
{
    if (expect_json) {
        if (r->body_len == 0)
            return json_null();
        json_error_t jerr;
        json_t *v = json_loadb(r->body, r->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (v)
            return v;
        if (expect_json > 0) {
            as_errf(err, AS_EINVAL, "response body is not JSON (line %d, column %d: %s)",
                    jerr.line, jerr.column, jerr.text);
            return NULL;
        }
    }
    json_t *s = json_stringn(r->body, r->body_len);
    if (s)
        return s;
    char *copy = malloc(r->body_len + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < r->body_len; i++) {
        unsigned char c = (unsigned char)r->body[i];
        copy[i] = (c >= 0x80 || c == 0) ? '?' : (char)c;
    }
    s = json_stringn(copy, r->body_len);
    free(copy);
    return s;
}

/* Headers as they may be recorded: values of credential-carrying headers masked. */
static json_t *masked_headers(const json_t *headers)
{
    json_t *o = json_object();
    const char *k;
    json_t *v;
    if (!headers || !o)
        return o;
    json_object_foreach((json_t *)headers, k, v)
        json_object_set_new(o, k, http_header_is_sensitive(k) ? json_string("***") : json_copy(v));
    return o;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *p = ctx->params;
    const json_t *jm = json_object_get(p, "method");
    const json_t *ju = json_object_get(p, "url");
    const json_t *jh = json_object_get(p, "headers");
    const json_t *jb = json_object_get(p, "body");
    const json_t *jx = json_object_get(p, "expect_json");
    struct as_err err = {0};
    struct http_response resp = {0};
    char *body_text = NULL;
    char where[512];

    if (jm && !json_is_string(jm)) {
        step_fail(res, "method must be a string");
        goto out;
    }
    if (!json_is_string(ju)) {
        step_fail(res, "url must be a string");
        goto out;
    }
    if (jh && !json_is_null(jh) && !json_is_object(jh)) {
        step_fail(res, "headers must be an object of strings");
        goto out;
    }
    if (jx && !json_is_boolean(jx)) {
        step_fail(res, "expect_json must be true or false");
        goto out;
    }
    int expect_json = jx ? json_is_true(jx) : -1;

    struct http_request req = {
        .method = jm ? json_string_value(jm) : "GET",
        .url = json_string_value(ju),
        .headers = json_is_object(jh) ? jh : NULL,
        .idempotency_key = ctx->idempotency_key,
    };
    if (jb && !json_is_null(jb)) {
        if (json_is_string(jb)) {
            req.body = json_string_value(jb);
            req.body_len = json_string_length(jb);
            req.content_type = "text/plain; charset=utf-8";
        } else {
            body_text = json_dumps(jb, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!body_text) {
                step_retry(res, 0, "out of memory encoding the request body");
                goto out;
            }
            req.body = body_text;
            req.body_len = strlen(body_text);
            req.content_type = "application/json";
        }
    }
    if (http_request_check(&req, &err) != AS_OK) {
        step_fail(res, "%s", err.msg);
        goto out;
    }
    http_url_redact(req.url, where, sizeof where);

    if (ctx->dry_run) {
        json_t *rec = json_pack("{s:s, s:s, s:o}", "method", req.method, "url", where, "headers",
                                masked_headers(req.headers));
        if (rec && jb && !json_is_null(jb))
            json_object_set_new(rec, "body", json_deep_copy(jb));
        step_event(ctx, "http.dry_run", json_incref(rec));
        step_ok(res, NULL, json_pack("{s:b, s:o?}", "dry_run", 1, "request", rec));
        goto out;
    }

    long long connect_s = 10, total_s = 60;
    if (ctx->app && ctx->app->cfg) {
        connect_s = config_int(ctx->app->cfg, "http_connect_timeout_seconds");
        total_s = config_int(ctx->app->cfg, "http_timeout_seconds");
    }
    req.connect_timeout_ms = connect_s * 1000;
    req.timeout_ms = total_s * 1000;
    if (ctx->timeout_ms > 0 && ctx->timeout_ms < req.timeout_ms)
        req.timeout_ms = ctx->timeout_ms;
    if (req.connect_timeout_ms > req.timeout_ms)
        req.connect_timeout_ms = req.timeout_ms;

    int64_t t0 = time_mono_ms();
    enum as_code rc = http_client_perform(&req, &resp, &err);
    int64_t took = time_mono_ms() - t0;
    if (rc == AS_ETIMEOUT || rc == AS_ETRANSIENT || rc == AS_ENOMEM) {
        LOG_INFO("http", "run %lld step %s attempt %d: %s", (long long)ctx->run_id, ctx->step_name,
                 ctx->attempt, err.msg);
        step_retry(res, 0, "%s", err.msg);
        goto out;
    }
    if (rc != AS_OK) {
        step_fail(res, "%s", err.msg);
        goto out;
    }
    LOG_DEBUG("http", "run %lld step %s attempt %d: %s %s -> %ld in %lld ms",
              (long long)ctx->run_id, ctx->step_name, ctx->attempt, req.method, where, resp.status,
              (long long)took);

    long st = resp.status;
    if (st >= 200 && st <= 299) {
        json_t *body = body_value(&resp, expect_json, &err);
        if (!body) {
            step_fail(res, "%s %s: HTTP %ld: %s", req.method, where, st,
                      err.msg[0] ? err.msg : "out of memory");
            goto out;
        }
        step_ok(res, NULL, json_pack("{s:i, s:O, s:o}", "status", (json_int_t)st, "headers",
                                     resp.headers, "body", body));
        goto out;
    }

    char snippet[SNIPPET_LEN + 8];
    body_snippet(resp.body, resp.body_len, snippet, sizeof snippet);
    /* The response also goes into res->output; the error message alone carries status and
     * snippet, since the executor records the error (not the output) of a failed attempt. */
    json_t *body = body_value(&resp, 0, &err);
    json_decref(res->output);
    res->output = json_pack("{s:i, s:O, s:o*}", "status", (json_int_t)st, "headers", resp.headers,
                            "body", body);
    if (st == 408 || st == 429 || (st >= 500 && st <= 599)) {
        int64_t not_before = 0;
        if ((st == 429 || st == 503) && resp.retry_after_ms >= 0)
            not_before = time_now_ms() + resp.retry_after_ms;
        LOG_INFO("http", "run %lld step %s attempt %d: %s %s -> HTTP %ld%s", (long long)ctx->run_id,
                 ctx->step_name, ctx->attempt, req.method, where, st,
                 not_before ? " (Retry-After honoured)" : "");
        step_retry(res, not_before, "%s %s: HTTP %ld: %s", req.method, where, st, snippet);
        goto out;
    }
    step_fail(res, "%s %s: HTTP %ld: %s", req.method, where, st, snippet);
out:
    http_response_free(&resp);
    free(body_text);
}

const struct step_type step_type_http = {
    .name = "http",
    .doc = "Send an HTTP request with the step's Idempotency-Key; 2xx succeeds, 408/429/5xx and "
           "network errors retry (honouring Retry-After), other statuses fail.",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
