/*
 * api_admin.c - the REST API's workflows and tokens (see api_v1.h,
 * docs/api.md): listing, storing and validating workflows (the checks of
 * `assent validate --json`), and the tokens of `assent token`.
 */
#include "web/api_v1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "db/db_tokens.h"
#include "engine/app.h"
#include "engine/wf_store.h"
#include "engine/workflow.h"
#include "web/api_token.h"
#include "web/web_ops.h"

/* The origin diagnostics name for a workflow sent in a request body. */
#define BODY_ORIGIN "request"

/* ---- workflows ------------------------------------------------------------------------ */

void api_workflows_list(struct api_call *c)
{
    static const char *const params[] = {"limit", "cursor", NULL};
    int limit;
    const char *cursor;
    struct as_err err = {0};
    json_t *items = NULL;
    char *next = NULL;
    if (!api_query_allowed(c, params) || !api_page(c, &limit, &cursor))
        return;
    enum as_code rc = wf_store_list(c->req->app->db, cursor, limit, &items, &next, &err);
    if (rc)
        api_fail(c, rc, &err);
    else
        api_reply_list(c, items, next);
    free(next);
}

void api_workflow_get(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct workflow *wf = NULL;
    struct diag_list diags = {0};
    char *source = NULL;
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc = wf_store_latest(c->req->app->db, c->arg, &wf, &source, &diags, &err);
    if (rc) {
        api_fail(c, rc, &err);
    } else {
        api_reply(c, 200,
                  json_pack("{s:s, s:s, s:s, s:o, s:O}", "name", wf->name, "version", wf->version,
                            "hash", wf->hash, "source_path",
                            *source ? json_string(source) : json_null(), "definition", wf->def));
    }
    free(source);
    diag_free(&diags);
    wf_free(wf);
}

/* Load the workflow in the request body (web_ops_workflow_check). */
static enum as_code load_body(struct api_call *c, struct workflow **wf, json_t **diag_json,
                              struct as_err *err)
{
    return web_ops_workflow_check(c->req->body, c->req->body_len, BODY_ORIGIN, wf, diag_json, err);
}

void api_workflow_validate(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct workflow *wf = NULL;
    json_t *diags = NULL;
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc = load_body(c, &wf, &diags, &err);
    if (rc && rc != AS_EINVAL) {
        json_decref(diags);
        api_fail(c, rc, &err);
        return;
    }
    json_t *body = json_pack("{s:b, s:o}", "valid", rc == AS_OK, "diagnostics", diags);
    if (body && wf)
        json_object_set_new(body, "workflow",
                            json_pack("{s:s, s:s, s:s, s:I}", "name", wf->name, "version",
                                      wf->version, "hash", wf->hash, "steps",
                                      (json_int_t)wf->n_steps));
    api_reply(c, 200, body);
    wf_free(wf);
}

void api_workflow_store(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct workflow *wf = NULL;
    json_t *diags = NULL;
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc = load_body(c, &wf, &diags, &err);
    if (rc == AS_EINVAL) {
        web_resp_json(c->resp, 400,
                      json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "invalid_workflow",
                                "message", "the workflow is not valid (see diagnostics)",
                                "diagnostics", diags));
        return;
    }
    json_decref(diags);
    if (!rc)
        rc = wf_store_put(c->req->app->db, wf, c->who.name, &err);
    if (rc) {
        api_fail(c, rc, &err);
    } else {
        LOG_INFO("api", "workflow %s v%s (%.12s) stored by %s", wf->name, wf->version, wf->hash,
                 c->who.name);
        api_reply(c, 201,
                  json_pack("{s:s, s:s, s:s, s:I}", "name", wf->name, "version", wf->version,
                            "hash", wf->hash, "steps", (json_int_t)wf->n_steps));
    }
    wf_free(wf);
}

/* ---- tokens ---------------------------------------------------------------------------- */

void api_tokens_list(struct api_call *c)
{
    static const char *const params[] = {"include", "limit", "cursor", NULL};
    int limit;
    const char *cursor;
    int64_t below;
    struct as_err err = {0};
    json_t *list = NULL;
    if (!api_query_allowed(c, params) || !api_page(c, &limit, &cursor) ||
        !api_cursor_int(c, cursor, &below))
        return;
    const char *include = api_query(c, "include");
    if (include && strcmp(include, "revoked") != 0) {
        api_error(c, 400, "bad_request", "include takes revoked");
        return;
    }
    enum as_code rc = db_api_token_list(c->req->app->db, include != NULL, &list, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    /* Newest first: the page starts below the cursor's id. */
    json_t *page = json_array();
    char next[32] = "";
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        json_int_t id = json_integer_value(json_object_get(t, "id"));
        if (below && id >= below)
            continue;
        if ((int)json_array_size(page) == limit) {
            snprintf(next, sizeof next, "%lld",
                     (long long)json_integer_value(
                         json_object_get(json_array_get(page, (size_t)limit - 1), "id")));
            break;
        }
        if (page)
            json_array_append(page, t);
    }
    json_decref(list);
    api_reply_list(c, page, next[0] ? next : NULL);
}

void api_token_add(struct api_call *c)
{
    static const struct api_field fields[] = {
        {"name", API_STRING, 1},
        {"role", API_STRING, 1},
        {"expires", API_STRING, 0},
        {NULL, 0, 0},
    };
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct db_api_token rec;
    char token[API_TOKEN_LEN + 1];
    int64_t expires_at = 0;
    if (!api_query_allowed(c, params) || !api_fields(c, fields))
        return;
    enum api_role role = api_role_parse(api_str(c, "role"));
    if (role == API_ROLE_NONE) {
        api_error(c, 400, "invalid", "role must be viewer, operator or admin");
        return;
    }
    const char *expires = api_str(c, "expires");
    if (expires && time_parse_expiry(expires, c->req->now_ms, &expires_at, &err) != AS_OK) {
        api_error(c, 400, "invalid", "expires: %s", err.msg);
        return;
    }
    enum as_code rc = api_token_create(c->req->app->db, api_str(c, "name"), role, expires_at,
                                       c->who.name, c->req->now_ms, token, sizeof token, &rec,
                                       &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "token %s (%s) created by %s", rec.name, rec.role, c->who.name);
    api_reply(c, 201,
              json_pack("{s:s, s:s, s:s, s:o}", "name", rec.name, "role", rec.role, "token", token,
                        "expires_at", expires_at ? json_integer(expires_at) : json_null()));
    /* The answer holds its own copy; this one is not needed any more. */
    memset(token, 0, sizeof token);
}

void api_token_revoke(struct api_call *c)
{
    static const char *const params[] = {NULL};
    struct as_err err = {0};
    struct db_api_token rec;
    if (!api_query_allowed(c, params))
        return;
    enum as_code rc =
        db_api_token_revoke(c->req->app->db, c->arg, c->who.name, c->req->now_ms, &rec, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "token %s revoked by %s", rec.name, c->who.name);
    api_reply(c, 200,
              json_pack("{s:s, s:s, s:I, s:s}", "name", rec.name, "role", rec.role, "revoked_at",
                        (json_int_t)rec.revoked_at, "revoked_by", rec.revoked_by));
}
