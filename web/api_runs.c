/*
 * api_runs.c - the REST API's runs and approvals (see api_v1.h, docs/api.md):
 * the same engine and store calls as `assent runs`, `show --json`, `run`,
 * `cancel`, `retry`, `approvals` and `decide`.
 */
#include "web/api_v1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approval_decide.h"
#include "base/config.h"
#include "base/diag.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "db/db_approvals.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "engine/run_history.h"
#include "engine/run_list.h"
#include "engine/run_title.h"
#include "engine/wf_store.h"
#include "engine/workflow.h"
#include "web/web_ops.h"

/* "since": a time ("2026-03-01", RFC 3339) or a duration back from now ("P7D"). */
static int parse_since(struct api_call *c, const char *s, int64_t *out)
{
    int64_t d = 0;
    struct as_err err = {0};
    if (s[0] == 'P' && time_parse_duration(s, &d, &err) == AS_OK) {
        *out = c->req->now_ms - d;
        return 1;
    }
    if (s[0] != 'P' && time_parse_iso(s, out) == AS_OK)
        return 1;
    api_error(c, 400, "bad_request",
              "since must be a date or time (2026-03-01, 2026-03-01T08:00:00Z) or a duration "
              "back from now (P7D)");
    return 0;
}

/* ---- GET /api/v1/runs -------------------------------------------------------- */

void api_runs_list(struct api_call *c)
{
    static const char *const params[] = {"status", "workflow", "user", "since",
                                         "limit",  "cursor",   NULL};
    struct db_run_filter f = {0};
    const char *cursor, *since;
    struct as_err err = {0};
    if (!api_query_allowed(c, params) || !api_page(c, &f.limit, &cursor) ||
        !api_cursor_int(c, cursor, &f.before_id))
        return;
    f.status = api_query(c, "status");
    f.workflow = api_query(c, "workflow");
    f.user = api_query(c, "user");
    if (f.status && !run_status_known(f.status)) {
        api_error(c, 400, "bad_request", "status must be running, waiting, succeeded, failed, "
                  "cancelled or superseded");
        return;
    }
    if ((since = api_query(c, "since")) && !parse_since(c, since, &f.since))
        return;
    json_t *items = NULL;
    int64_t next = 0;
    enum as_code rc = run_list_json(c->req->app->db, &f, &items, &next, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    char next_text[24];
    snprintf(next_text, sizeof next_text, "%lld", (long long)next);
    api_reply_list(c, items, next ? next_text : NULL);
}

/* ---- GET /api/v1/runs/{id} ----------------------------------------------------- */

void api_run_get(struct api_call *c)
{
    static const char *const params[] = {NULL};
    int64_t id;
    struct as_err err = {0};
    json_t *h = NULL;
    if (!api_query_allowed(c, params) || !api_arg_id(c, "run", &id))
        return;
    enum as_code rc = run_history_load(c->req->app->db, id, 1, &h, &err);
    if (rc)
        api_fail(c, rc, &err);
    else
        api_reply(c, 200, h);
}

/* ---- POST /api/v1/runs ----------------------------------------------------------- */

/* A workflow named by its file rather than its stored name. */
static int names_a_file(const char *w)
{
    size_t n = strlen(w);
    return strchr(w, '/') || (n > 5 && strcmp(w + n - 5, ".json") == 0);
}

/*
 * Whether the workflow file `path` may be started through the API: a .json
 * file inside config api_workflow_dir (both resolved, so ".." and links
 * cannot leave it).  Anything else on the server (its configuration, say)
 * stays out of reach of an operator's token.  Answers and returns 0 when not.
 */
static int file_allowed(struct api_call *c, const char *path)
{
    const char *dir = config_str(c->req->app->cfg, "api_workflow_dir");
    size_t n = strlen(path);
    if (n < 6 || strcmp(path + n - 5, ".json") != 0) {
        api_error(c, 400, "invalid", "a workflow file must be a .json file");
        return 0;
    }
    if (!dir || !*dir) {
        api_error(c, 403, "forbidden", "starting a workflow by its file is off (config "
                  "api_workflow_dir): give the name of a stored workflow");
        return 0;
    }
    char *real_dir = realpath(dir, NULL), *real = realpath(path, NULL);
    int ok = 0;
    if (!real) {
        api_error(c, 404, "not_found", "no workflow file %.300s", path);
    } else if (!real_dir) {
        api_error(c, 403, "forbidden", "api_workflow_dir %.300s does not exist", dir);
    } else {
        size_t dl = strlen(real_dir);
        ok = strncmp(real, real_dir, dl) == 0 && (real[dl] == '/' || real_dir[dl - 1] == '/');
        if (!ok)
            api_error(c, 403, "forbidden", "%.300s is outside api_workflow_dir (%.300s)", path,
                      dir);
    }
    free(real);
    free(real_dir);
    return ok;
}

/* 400 with the workflow's diagnostics (as `assent validate --json` gives them). */
static void invalid_workflow(struct api_call *c, const char *what, const struct diag_list *diags,
                             const struct as_err *err)
{
    json_t *list = json_array();
    if (list && diags)
        wf_diags_append_json(list, diags, what);
    web_resp_json(c->resp, 400,
                  json_pack("{s:{s:s, s:s, s:o}}", "error", "code", "invalid_workflow", "message",
                            err->msg[0] ? err->msg : "the workflow is not valid", "diagnostics",
                            list ? list : json_array()));
}

void api_run_start(struct api_call *c)
{
    static const struct api_field fields[] = {
        {"workflow", API_STRING, 1},
        {"input", API_OBJECT, 0},
        {"dedupe_key", API_STRING, 0},
        {NULL, 0, 0},
    };
    static const char *const params[] = {NULL};
    struct workflow *wf = NULL;
    struct diag_list diags = {0};
    struct as_err err = {0};
    char *source = NULL;
    enum as_code rc;
    if (!api_query_allowed(c, params) || !api_fields(c, fields))
        return;
    const char *name = api_str(c, "workflow"), *dedupe = api_str(c, "dedupe_key");
    if (!*name || (dedupe && !*dedupe)) {
        api_error(c, 400, "invalid", "%s must not be empty", !*name ? "workflow" : "dedupe_key");
        return;
    }
    if (names_a_file(name)) {
        if (!file_allowed(c, name))
            return;
        rc = wf_load_file(name, &wf, &diags, &err);
        if (rc == AS_EIO || (rc && diags.n == 0)) {
            api_error(c, 404, "not_found", "%s", err.msg);
            goto out;
        }
    } else {
        rc = wf_store_latest(c->req->app->db, name, &wf, &source, &diags, &err);
        if (rc == AS_ENOTFOUND) {
            api_error(c, 404, "not_found",
                      "no workflow named \"%s\" is stored (store it with POST /api/v1/workflows, "
                      "or give its file)", name);
            goto out;
        }
    }
    if (rc == AS_EINVAL) {
        invalid_workflow(c, name, &diags, &err);
        goto out;
    }
    if (rc) {
        api_fail(c, rc, &err);
        goto out;
    }
    struct engine_run_opts opts = {
        .dedupe_key = dedupe,
        .trigger = "api",
        .source_path = names_a_file(name) ? name : source && *source ? source : NULL,
        .actor = c->who.name,
    };
    int64_t run_id = 0;
    rc = engine_submit_run(c->req->app, wf, json_object_get(c->body, "input"), &opts, &run_id,
                           &err);
    if (rc == AS_ECONFLICT) {
        web_resp_json(c->resp, 409,
                      json_pack("{s:{s:s, s:s, s:I}}", "error", "code", "conflict", "message",
                                err.msg, "run_id", (json_int_t)run_id));
        goto out;
    }
    if (rc) {
        api_fail(c, rc, &err);
        goto out;
    }
    LOG_INFO("api", "run %lld of %s v%s started by %s", (long long)run_id, wf->name, wf->version,
             c->who.name);
    char location[64];
    snprintf(location, sizeof location, "/api/v1/runs/%lld", (long long)run_id);
    web_resp_header(c->resp, "Location", location);
    api_reply(c, 201,
              json_pack("{s:I, s:s, s:s, s:s, s:s}", "run_id", (json_int_t)run_id, "workflow",
                        wf->name, "version", wf->version, "hash", wf->hash, "status", "running"));
out:
    free(source);
    diag_free(&diags);
    wf_free(wf);
}

/* ---- POST /api/v1/runs/{id}/cancel, /retry ------------------------------------------ */

static void steer(struct api_call *c,
                  enum as_code (*op)(struct app *, int64_t, const char *, const char *,
                                     struct as_err *),
                  const char *status)
{
    static const char *const params[] = {NULL};
    int64_t id;
    struct as_err err = {0};
    if (!api_query_allowed(c, params) || !api_arg_id(c, "run", &id))
        return;
    enum as_code rc = op(c->req->app, id, c->who.name, "api", &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    LOG_INFO("api", "run %lld %s by %s", (long long)id, status, c->who.name);
    api_reply(c, 200, json_pack("{s:I, s:s}", "run_id", (json_int_t)id, "status", status));
}

void api_run_cancel(struct api_call *c)
{
    steer(c, engine_cancel_run_as, "cancelled");
}

void api_run_retry(struct api_call *c)
{
    steer(c, engine_retry_run_as, "running");
}

/* ---- GET /api/v1/approvals ------------------------------------------------------------ */

void api_approvals_list(struct api_call *c)
{
    static const char *const params[] = {"status", "limit", "cursor", NULL};
    static const char *const statuses[] = {"pending", "decided", "approved", "rejected",
                                           "expired", "withdrawn", NULL};
    struct db_approvals_page_query q = {0};
    const char *cursor;
    struct as_err err = {0};
    int64_t before = 0;
    if (!api_query_allowed(c, params) || !api_page(c, &q.limit, &cursor) ||
        !api_cursor_int(c, cursor, &before))
        return;
    q.status = api_query(c, "status");
    if (q.status) {
        const char *const *s = statuses;
        while (*s && strcmp(*s, q.status) != 0)
            s++;
        if (!*s) {
            api_error(c, 400, "bad_request", "status must be pending, decided, approved, "
                      "rejected, expired or withdrawn");
            return;
        }
    }
    json_t *items = NULL;
    int64_t next_id = 0;
    enum as_code rc =
        web_ops_approvals_page(c->req->app->db, q.status, before, q.limit, &items, &next_id, &err);
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    char next[24] = "";
    if (next_id)
        snprintf(next, sizeof next, "%lld", (long long)next_id);
    api_reply_list(c, items, next[0] ? next : NULL);
}

/* ---- POST /api/v1/approvals/{id}/decide -------------------------------------------------- */

void api_approval_decide(struct api_call *c)
{
    static const struct api_field fields[] = {
        {"decision", API_STRING, 1},
        {"comment", API_STRING, 0},
        {NULL, 0, 0},
    };
    static const char *const params[] = {NULL};
    int64_t id;
    struct as_err err = {0};
    if (!api_query_allowed(c, params) || !api_arg_id(c, "approval", &id) ||
        !api_fields(c, fields))
        return;
    const char *decision = api_str(c, "decision");
    if (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0) {
        api_error(c, 400, "invalid", "decision must be \"approve\" or \"reject\"");
        return;
    }
    /* An administrator's decision of the whole approval, whatever its
     * policy, recorded with the token's name (as `assent decide ID`). */
    struct approval_decision d = {
        .approval_id = id,
        .decision = decision,
        .comment = api_str(c, "comment"),
        .via = "api",
        .actor = c->who.name,
        .client_addr = c->req->client_addr,
        .user_agent = web_req_header(c->req, "User-Agent"),
        .now = c->req->now_ms,
    };
    struct approval_decision_result res;
    enum as_code rc = approval_decide_wait(c->req->app->engine, c->req->app->db, &d, &res, &err);
    if (rc == AS_ECONFLICT && res.decided_what[0]) {
        web_resp_json(c->resp, 409,
                      json_pack("{s:{s:s, s:s, s:s, s:s, s:I}}", "error", "code", "conflict",
                                "message", err.msg, "decided", res.decided_what, "decided_by",
                                res.decided_by, "decided_at", (json_int_t)res.decided_at));
        return;
    }
    if (rc) {
        api_fail(c, rc, &err);
        return;
    }
    if (res.resumed)
        engine_wake(c->req->app->engine);
    LOG_INFO("approval", "approval %lld: %s chose %s through the API (now %s)", (long long)id,
             c->who.name, decision, res.status);
    api_reply(c, 200,
              json_pack("{s:I, s:I, s:s, s:s, s:s, s:b}", "approval_id",
                        (json_int_t)res.approval_id, "run_id", (json_int_t)res.run_id, "decision",
                        decision, "status", res.status, "decided_by", c->who.name, "resumed",
                        res.resumed));
}
