/*
 * api_v1.h - private to web/: what the handlers of the REST API v1 share.
 *
 * web/api_v1.c routes a request under /api/v1/ to its handler: it finds the
 * route (404, or 405 with Allow), asks web/auth.h for the route's role
 * (401, 403, 429), checks the body (415 unless application/json, 400 for
 * bad JSON with its line and column, or a body where none is taken), then
 * calls the handler with a struct api_call.  The handlers live by subject:
 * web/api_runs.c (runs, approvals), web/api_m365.c (KPIs, exceptions,
 * reports), web/api_admin.c (workflows, tokens).  Each checks its query
 * parameters and body fields with the helpers below, calls the layer below
 * (the same functions the CLI commands call) and answers JSON.  The list of
 * routes with examples is docs/api.md.
 *
 * Conventions: lists answer {"items": [...], "next_cursor": "..." | null}
 * and take `limit` (1 to API_LIMIT_MAX, default API_LIMIT_DEFAULT) and
 * `cursor` (a next_cursor, opaque to clients).  Errors answer {"error":
 * {"code", "message"}} (web_resp_error).  Every state change is recorded in
 * the audit chain with the caller's name (c->who.name) as the actor.
 */
#ifndef ASSENT_WEB_API_V1_H
#define ASSENT_WEB_API_V1_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "web/auth.h"
#include "web/server.h"

#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX 1000

/* One call of a handler.  Everything is borrowed for the call. */
struct api_call {
    struct web_req *req;
    struct web_resp *resp;
    struct web_principal who; /* the caller (web/auth.h) */
    json_t *body;             /* the body's JSON object (routes taking JSON), else NULL */
    const char *arg;          /* the {} segment of the route's path ("" when none) */
};

/* A handler: fills c->resp. */
typedef void (*api_handler)(struct api_call *c);

/* ---- answers ---- */

/* 200/201 with body (a new reference, stolen). */
void api_reply(struct api_call *c, int status, json_t *body);

/* A list page: {"items": items (stolen), "next_cursor": next_cursor or null}. */
void api_reply_list(struct api_call *c, json_t *items, const char *next_cursor);

/* An error: {"error": {"code", "message"}} with the status. */
void api_error(struct api_call *c, int status, const char *code, const char *fmt, ...)
    AS_PRINTF(4, 5);

/*
 * The error of a failed call below, by its code: AS_EINVAL 400 "invalid",
 * AS_ENOTFOUND 404, AS_ECONFLICT / AS_ECANCELLED 409 "conflict", AS_EEXPIRED
 * 409 "expired", AS_EUNSUPPORTED 501, others 500.  The message is err's.
 */
void api_fail(struct api_call *c, enum as_code rc, const struct as_err *err);

/* ---- query parameters ---- */

/*
 * 1 when every query parameter is one of `allowed` (NULL-terminated);
 * otherwise answers 400 "unknown_parameter" naming it and returns 0.
 */
int api_query_allowed(struct api_call *c, const char *const allowed[]);

/* The value of query parameter name, or NULL; "" counts as absent. */
const char *api_query(struct api_call *c, const char *name);

/*
 * `limit` into *limit (API_LIMIT_DEFAULT when absent) and `cursor` into
 * *cursor (NULL when absent).  0 with a 400 answered when limit is not an
 * integer from 1 to API_LIMIT_MAX.
 */
int api_page(struct api_call *c, int *limit, const char **cursor);

/* A cursor that is a positive integer (an id or an offset) into *out; 0
 * with a 400 "bad_cursor" answered otherwise.  NULL cursor: *out = 0. */
int api_cursor_int(struct api_call *c, const char *cursor, int64_t *out);

/* The route's {} segment as a positive id into *id; 0 with 404 otherwise. */
int api_arg_id(struct api_call *c, const char *what, int64_t *id);

/* ---- body fields ---- */

enum api_type { API_STRING, API_OBJECT, API_ARRAY, API_BOOL, API_INTEGER };

struct api_field {
    const char *name;
    enum api_type type;
    int required;
};

/*
 * Check c->body against fields (terminated by a NULL name): a field not in
 * the list is 400 "unknown_field", one of the wrong JSON type 400
 * "wrong_type", a required one missing 400 "missing_field" (each naming the
 * field).  A route whose body is optional has c->body = {} when none came.
 * 1 when all is well, else 0 with the answer given.
 */
int api_fields(struct api_call *c, const struct api_field *fields);

/* The string field name of the body, or NULL. */
const char *api_str(struct api_call *c, const char *name);

/* ---- the handlers (one table in api_v1.c) ---- */

void api_runs_list(struct api_call *c);
void api_run_get(struct api_call *c);
void api_run_start(struct api_call *c);
void api_run_cancel(struct api_call *c);
void api_run_retry(struct api_call *c);
void api_approvals_list(struct api_call *c);
void api_approval_decide(struct api_call *c);

void api_kpis_list(struct api_call *c);
void api_kpi_get(struct api_call *c);
void api_kpi_save(struct api_call *c);
void api_kpi_delete(struct api_call *c);
void api_kpi_evaluate(struct api_call *c);
void api_kpi_trigger(struct api_call *c);
void api_exceptions_list(struct api_call *c);
void api_exception_add(struct api_call *c);
void api_exception_remove(struct api_call *c);
void api_report_users(struct api_call *c);
void api_report_signins(struct api_call *c);
void api_report_policies(struct api_call *c);
void api_report_plans(struct api_call *c);
void api_report_org(struct api_call *c);

void api_workflows_list(struct api_call *c);
void api_workflow_get(struct api_call *c);
void api_workflow_store(struct api_call *c);
void api_workflow_validate(struct api_call *c);
void api_tokens_list(struct api_call *c);
void api_token_add(struct api_call *c);
void api_token_revoke(struct api_call *c);

#endif
