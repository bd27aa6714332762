/*
 * api_v1.c - the REST API v1: its route table, the checks every route gets
 * before its handler (route, method, role, media type, JSON body), and the
 * helpers of api_v1.h.  docs/api.md lists the routes with examples.
 */
#include "web/api_v1.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/routes.h"

/* What a route takes as its body. */
enum api_body {
    BODY_NONE,     /* nothing, or an empty JSON object */
    BODY_OPTIONAL, /* a JSON object, or nothing (then {}) */
    BODY_REQUIRED, /* a JSON object */
    BODY_RAW,      /* JSON text handed over unparsed (workflows: the diagnostics say
                      where it is wrong) */
};

struct api_route {
    unsigned method;    /* WEB_GET (HEAD too), WEB_POST or WEB_DELETE */
    const char *path;   /* below /api/v1/; "{}" matches one segment */
    enum api_role role; /* the least role that may call it */
    enum api_body body;
    api_handler handler;
};

/*
 * The routes.  A path is matched segment by segment; of the routes whose
 * path matches, the first with the request's method is taken (so a literal
 * segment such as "validate" is listed before "{}").
 */
static const struct api_route api_routes[] = {
    {WEB_GET, "runs", API_ROLE_VIEWER, BODY_NONE, api_runs_list},
    {WEB_POST, "runs", API_ROLE_OPERATOR, BODY_REQUIRED, api_run_start},
    {WEB_GET, "runs/{}", API_ROLE_VIEWER, BODY_NONE, api_run_get},
    {WEB_POST, "runs/{}/cancel", API_ROLE_OPERATOR, BODY_NONE, api_run_cancel},
    {WEB_POST, "runs/{}/retry", API_ROLE_OPERATOR, BODY_NONE, api_run_retry},
    {WEB_GET, "approvals", API_ROLE_VIEWER, BODY_NONE, api_approvals_list},
    {WEB_POST, "approvals/{}/decide", API_ROLE_OPERATOR, BODY_REQUIRED, api_approval_decide},
    {WEB_GET, "kpis", API_ROLE_VIEWER, BODY_NONE, api_kpis_list},
    {WEB_POST, "kpis", API_ROLE_ADMIN, BODY_REQUIRED, api_kpi_save},
    {WEB_GET, "kpis/{}", API_ROLE_VIEWER, BODY_NONE, api_kpi_get},
    {WEB_DELETE, "kpis/{}", API_ROLE_ADMIN, BODY_NONE, api_kpi_delete},
    {WEB_POST, "kpis/{}/evaluate", API_ROLE_OPERATOR, BODY_NONE, api_kpi_evaluate},
    {WEB_POST, "kpis/{}/trigger", API_ROLE_OPERATOR, BODY_OPTIONAL, api_kpi_trigger},
    {WEB_GET, "exceptions", API_ROLE_VIEWER, BODY_NONE, api_exceptions_list},
    {WEB_POST, "exceptions", API_ROLE_OPERATOR, BODY_REQUIRED, api_exception_add},
    {WEB_DELETE, "exceptions/{}", API_ROLE_OPERATOR, BODY_REQUIRED, api_exception_remove},
    {WEB_GET, "reports/users", API_ROLE_VIEWER, BODY_NONE, api_report_users},
    {WEB_GET, "reports/signins", API_ROLE_VIEWER, BODY_NONE, api_report_signins},
    {WEB_GET, "reports/policies", API_ROLE_VIEWER, BODY_NONE, api_report_policies},
    {WEB_GET, "reports/plans", API_ROLE_VIEWER, BODY_NONE, api_report_plans},
    {WEB_GET, "reports/org", API_ROLE_VIEWER, BODY_NONE, api_report_org},
    {WEB_GET, "workflows", API_ROLE_VIEWER, BODY_NONE, api_workflows_list},
    {WEB_POST, "workflows", API_ROLE_ADMIN, BODY_RAW, api_workflow_store},
    {WEB_POST, "workflows/validate", API_ROLE_VIEWER, BODY_RAW, api_workflow_validate},
    {WEB_GET, "workflows/{}", API_ROLE_VIEWER, BODY_NONE, api_workflow_get},
    {WEB_GET, "tokens", API_ROLE_ADMIN, BODY_NONE, api_tokens_list},
    {WEB_POST, "tokens", API_ROLE_ADMIN, BODY_REQUIRED, api_token_add},
    {WEB_DELETE, "tokens/{}", API_ROLE_ADMIN, BODY_NONE, api_token_revoke},
};

#define N_ROUTES (sizeof api_routes / sizeof api_routes[0])
#define ARG_MAX 256 /* bytes of a {} segment */

static unsigned method_of(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return WEB_GET;
    if (strcmp(m, "POST") == 0)
        return WEB_POST;
    if (strcmp(m, "DELETE") == 0)
        return WEB_DELETE;
    return 0;
}

/* 1 when the request's Content-Type is JSON: application/json, any parameters. */
static int content_is_json(struct web_req *req)
{
    const char *ct = web_req_header(req, "Content-Type");
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* 1 when the body is nothing but JSON whitespace. */
static int body_blank(const struct web_req *req)
{
    for (size_t i = 0; i < req->body_len; i++)
        if (!strchr(" \t\r\n", req->body[i]))
            return 0;
    return 1;
}

/* Parse the body as the route says into c->body; 0 with the answer given on error. */
static int take_body(struct api_call *c, const struct api_route *r)
{
    struct web_req *req = c->req;
    int blank = body_blank(req);
    if (r->body == BODY_RAW || !blank) {
        if (!content_is_json(req)) {
            api_error(c, 415, "unsupported_media_type",
                      "the body must be JSON, sent with Content-Type: application/json");
            return 0;
        }
    }
    if (r->body == BODY_RAW)
        return 1;
    if (blank) {
        if (r->body == BODY_REQUIRED) {
            api_error(c, 400, "missing_body", "this route needs a JSON object as its body");
            return 0;
        }
        c->body = json_object();
        if (!c->body) {
            api_error(c, 500, "internal", "out of memory");
            return 0;
        }
        return 1;
    }
    if (r->method == WEB_GET) {
        api_error(c, 400, "bad_request", "a GET takes no body");
        return 0;
    }
    json_error_t jerr;
    c->body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->body) {
        api_error(c, 400, "bad_json", "the body is not valid JSON: line %d column %d: %s",
                  jerr.line, jerr.column, jerr.text);
        return 0;
    }
    if (!json_is_object(c->body)) {
        api_error(c, 400, "wrong_type", "the body must be a JSON object");
        return 0;
    }
    if (r->body == BODY_NONE && json_object_size(c->body) > 0) {
        const char *key = json_object_iter_key(json_object_iter(c->body));
        api_error(c, 400, "unknown_field", "unknown field \"%s\": this route takes no fields",
                  key);
        return 0;
    }
    return 1;
}

void web_api_v1(struct web_req *req, struct web_resp *resp)
{
    const char *path = req->param;
    char arg[ARG_MAX] = "", allow[64] = "";
    const struct api_route *route = NULL;
    unsigned allowed = 0, method = method_of(req->method);
    for (size_t i = 0; i < N_ROUTES; i++) {
        char a[ARG_MAX] = "";
        if (!web_route_match(api_routes[i].path, path, a, sizeof a))
            continue;
        allowed |= api_routes[i].method;
        if (!route && api_routes[i].method == method) {
            route = &api_routes[i];
            memcpy(arg, a, sizeof arg);
        }
    }
    if (!allowed) {
        web_resp_error(resp, 404, "not_found", "no route /api/v1/%.200s (see docs/api.md)", path);
        return;
    }
    if (!route) {
        snprintf(allow, sizeof allow, "%s%s%s", allowed & WEB_GET ? "GET, HEAD, " : "",
                 allowed & WEB_POST ? "POST, " : "", allowed & WEB_DELETE ? "DELETE, " : "");
        size_t al = strlen(allow);
        if (al >= 2)
            allow[al - 2] = '\0';
        web_resp_header(resp, "Allow", allow);
        web_resp_error(resp, 405, "method_not_allowed", "/api/v1/%.200s takes %s", path, allow);
        return;
    }
    struct api_call c = {.req = req, .resp = resp, .arg = arg};
    if (!web_auth_require(req, resp, route->role, &c.who))
        return;
    if (take_body(&c, route))
        route->handler(&c);
    json_decref(c.body);
}

/* ---- answers ---- */

void api_reply(struct api_call *c, int status, json_t *body)
{
    web_resp_json(c->resp, status, body);
}

void api_reply_list(struct api_call *c, json_t *items, const char *next_cursor)
{
    if (!items) {
        api_error(c, 500, "internal", "out of memory");
        return;
    }
    web_resp_json(c->resp, 200,
                  json_pack("{s:o, s:o}", "items", items, "next_cursor",
                            next_cursor ? json_string(next_cursor) : json_null()));
}

void api_error(struct api_call *c, int status, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    web_resp_error(c->resp, status, code, "%s", message);
}

void api_fail(struct api_call *c, enum as_code rc, const struct as_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : as_strerror(rc);
    switch (rc) {
    case AS_EINVAL:
        api_error(c, 400, "invalid", "%s", msg);
        return;
    case AS_ENOTFOUND:
        api_error(c, 404, "not_found", "%s", msg);
        return;
    case AS_ECONFLICT:
    case AS_ECANCELLED:
        api_error(c, 409, "conflict", "%s", msg);
        return;
    case AS_EEXPIRED:
        api_error(c, 409, "expired", "%s", msg);
        return;
    case AS_EUNSUPPORTED:
        api_error(c, 501, "not_implemented", "%s", msg);
        return;
    default:
        api_error(c, 500, "internal", "%s", msg);
        return;
    }
}

/* ---- query parameters ---- */

struct allowed_ctx {
    const char *const *allowed;
    const char *unknown;
};

static int check_param(void *ud, const char *name, const char *value)
{
    struct allowed_ctx *a = ud;
    for (const char *const *p = a->allowed; *p; p++)
        if (strcmp(*p, name) == 0)
            return 0;
    a->unknown = name;
    return 1;
}

int api_query_allowed(struct api_call *c, const char *const allowed[])
{
    struct allowed_ctx a = {allowed, NULL};
    web_req_query_each(c->req, check_param, &a);
    if (!a.unknown)
        return 1;
    char list[256] = "";
    size_t used = 0;
    for (const char *const *p = allowed; *p; p++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *p);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    api_error(c, 400, "unknown_parameter", "unknown query parameter \"%.100s\"%s%s", a.unknown,
              used ? "; this route takes " : "; this route takes none", list);
    return 0;
}

const char *api_query(struct api_call *c, const char *name)
{
    const char *v = web_req_query(c->req, name);
    return v && *v ? v : NULL;
}

int api_page(struct api_call *c, int *limit, const char **cursor)
{
    const char *l = api_query(c, "limit");
    *limit = API_LIMIT_DEFAULT;
    *cursor = api_query(c, "cursor");
    if (l) {
        char *end;
        errno = 0;
        long v = strtol(l, &end, 10);
        if (errno || end == l || *end || v < 1 || v > API_LIMIT_MAX) {
            api_error(c, 400, "bad_request", "limit must be an integer from 1 to %d",
                      API_LIMIT_MAX);
            return 0;
        }
        *limit = (int)v;
    }
    return 1;
}

static int parse_positive(const char *s, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

int api_cursor_int(struct api_call *c, const char *cursor, int64_t *out)
{
    *out = 0;
    if (!cursor)
        return 1;
    if (parse_positive(cursor, out) == 0)
        return 1;
    api_error(c, 400, "bad_cursor", "cursor: give the next_cursor of the previous page");
    return 0;
}

int api_arg_id(struct api_call *c, const char *what, int64_t *id)
{
    if (parse_positive(c->arg, id) == 0)
        return 1;
    api_error(c, 404, "not_found", "no %s \"%.100s\"", what, c->arg);
    return 0;
}

/* ---- body fields ---- */

static const char *type_name(enum api_type t)
{
    switch (t) {
    case API_STRING: return "a string";
    case API_OBJECT: return "an object";
    case API_ARRAY: return "an array";
    case API_BOOL: return "true or false";
    case API_INTEGER: return "an integer";
    }
    return "?";
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static int type_ok(enum api_type t, const json_t *v)
{
    switch (t) {
    case API_STRING: return json_is_string(v);
    case API_OBJECT: return json_is_object(v);
    case API_ARRAY: return json_is_array(v);
    case API_BOOL: return json_is_boolean(v);
    case API_INTEGER: return json_is_integer(v);
    }
    return 0;
}

int api_fields(struct api_call *c, const struct api_field *fields)
{
    const char *key;
    json_t *v;
    json_object_foreach(c->body, key, v)
    {
        const struct api_field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name) {
            api_error(c, 400, "unknown_field", "unknown field \"%.100s\"", key);
            return 0;
        }
        if (!type_ok(f->type, v)) {
            api_error(c, 400, "wrong_type", "field \"%s\" must be %s, not %s", f->name,
                      type_name(f->type), json_kind(v));
            return 0;
        }
    }
    for (const struct api_field *f = fields; f->name; f++) {
        if (f->required && !json_object_get(c->body, f->name)) {
            api_error(c, 400, "missing_field", "field \"%s\" (%s) is required", f->name,
                      type_name(f->type));
            return 0;
        }
    }
    return 1;
}

const char *api_str(struct api_call *c, const char *name)
{
    return json_string_value(json_object_get(c->body, name));
}
