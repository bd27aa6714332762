/* api.c - the first, read-only API (the aliases of /api/v1) and /healthz (see api.h). */
#include "web/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db_approvals.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "base/log.h"
#include "engine/run_title.h"
#include "web/auth.h"
#include "web/routes.h"

static void json_error(struct web_resp *resp, int status, const char *code, const char *message)
{
    web_resp_error(resp, status, code, "%s", message);
}

void web_healthz(struct web_req *req, struct web_resp *resp)
{
    /* Constant time whatever the store holds: a trivial query, not a count. */
    struct as_err err = {0};
    if (db_ping(req->app->db, &err) != AS_OK) {
        LOG_WARN("web", "healthz: the store does not answer: %s", err.msg);
        web_resp_json(resp, 503, json_pack("{s:s}", "status", "unavailable"));
        return;
    }
    web_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *run_json(const struct db_run_info *r)
{
    json_t *input = json_loads(r->input, 0, NULL);
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}",
                     "id", (json_int_t)r->id, "workflow", r->workflow, "version", r->version,
                     "status", r->status, "input", input ? input : json_null(),
                     "error", r->error, "dedupe_key", r->dedupe_key, "trigger", r->trigger,
                     "current_step", r->current_step, "dry_run", r->dry_run,
                     "created_at", (json_int_t)r->created_at,
                     "updated_at", (json_int_t)r->updated_at,
                     "finished_at", (json_int_t)r->finished_at);
}

struct collect_ctx {
    json_t *runs;
    struct run_titles *titles;
    struct db_conn *conn;
    enum as_code rc;
    struct as_err *err;
};

/* A run of a listing, with whom it is about ("user", "title"; null when none). */
static int collect_run(void *ud, const struct db_run_info *r)
{
    struct collect_ctx *cc = ud;
    json_t *user = NULL, *title = NULL;
    cc->rc = run_titles_get(cc->titles, cc->conn, r->hash, r->input, &user, &title, cc->err);
    if (cc->rc)
        return 1;
    json_t *j = run_json(r);
    if (!j || json_object_set_new(j, "user", user) || json_object_set_new(j, "title", title) ||
        json_array_append_new(cc->runs, j)) {
        cc->rc = as_errf(cc->err, AS_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

static int parse_id(const char *s, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

void web_api_runs(struct web_req *req, struct web_resp *resp)
{
    if (!web_auth_require(req, resp, API_ROLE_VIEWER, NULL))
        return;
    struct db_run_filter f = {.status = web_req_query(req, "status"),
                              .workflow = web_req_query(req, "workflow")};
    long long v;
    const char *limit = web_req_query(req, "limit"), *before = web_req_query(req, "before");
    if (limit) {
        if (parse_id(limit, &v) != 0 || v > 1000) {
            json_error(resp, 400, "bad_request", "limit must be an integer from 1 to 1000");
            return;
        }
        f.limit = (int)v;
    }
    if (before) {
        if (parse_id(before, &v) != 0) {
            json_error(resp, 400, "bad_request", "before must be a run id");
            return;
        }
        f.before_id = v;
    }
    struct as_err err = {0};
    struct collect_ctx cc = {.runs = json_array(), .titles = run_titles_new(), .err = &err};
    enum as_code rc = !cc.runs || !cc.titles ? as_errf(&err, AS_ENOMEM, "out of memory")
                                             : db_read_begin(req->app->db, &cc.conn, &err);
    if (!rc) {
        rc = db_runs_list(cc.conn, &f, collect_run, &cc, &err);
        if (!rc)
            rc = cc.rc;
        db_read_end(req->app->db, cc.conn);
    }
    run_titles_free(cc.titles);
    if (rc) {
        json_decref(cc.runs);
        json_error(resp, 500, "internal", err.msg);
        return;
    }
    web_resp_json(resp, 200, json_pack("{s:o}", "runs", cc.runs));
}

static int collect_exec(void *ud, const struct db_exec_info *e)
{
    json_t *output = e->output[0] ? json_loads(e->output, 0, NULL) : NULL;
    json_t *j = json_pack("{s:I, s:s, s:i, s:s, s:i, s:s, s:s, s:o, s:I, s:I, s:I}",
                          "id", (json_int_t)e->id, "step", e->step, "visit", e->visit,
                          "status", e->status, "attempt", e->attempt, "outcome", e->outcome,
                          "error", e->error, "output", output ? output : json_null(),
                          "due_at", (json_int_t)e->due_at,
                          "started_at", (json_int_t)e->started_at,
                          "finished_at", (json_int_t)e->finished_at);
    if (!j)
        return 1;
    json_array_append_new(ud, j);
    return 0;
}

static int take_run(void *ud, const struct db_run_info *r)
{
    *(json_t **)ud = run_json(r);
    return 1;
}

void web_api_run(struct web_req *req, struct web_resp *resp)
{
    if (!web_auth_require(req, resp, API_ROLE_VIEWER, NULL))
        return;
    long long id;
    if (parse_id(req->param, &id) != 0) {
        json_error(resp, 404, "not_found", "no such run");
        return;
    }
    struct db_conn *c;
    struct as_err err = {0};
    json_t *run = NULL, *steps = json_array();
    enum as_code rc = db_read_begin(req->app->db, &c, &err);
    if (!rc) {
        rc = db_run_get(c, id, take_run, &run, &err);
        if (!rc)
            rc = db_run_execs(c, id, collect_exec, steps, &err);
        db_read_end(req->app->db, c);
    }
    if (rc == AS_OK && !run)
        rc = AS_ENOTFOUND;
    if (rc) {
        json_decref(run);
        json_decref(steps);
        if (rc == AS_ENOTFOUND)
            json_error(resp, 404, "not_found", "no such run");
        else
            json_error(resp, 500, "internal", err.msg);
        return;
    }
    json_object_set_new(run, "steps", steps);
    web_resp_json(resp, 200, run);
}

void web_api_approvals(struct web_req *req, struct web_resp *resp)
{
    if (!web_auth_require(req, resp, API_ROLE_VIEWER, NULL))
        return;
    const char *all = web_req_query(req, "all");
    struct db_approvals_filter f = {.all = all && strcmp(all, "0") != 0,
                                    .status = web_req_query(req, "status"), .limit = 500};
    struct as_err err = {0};
    json_t *list = NULL;
    if (f.status && !db_approvals_status_known(f.status)) {
        json_error(resp, 400, "bad_request",
                   "status must be pending, approved, rejected, expired or withdrawn");
        return;
    }
    if (db_approvals_list_where(req->app->db, &f, &list, &err) != AS_OK ||
        run_titles_annotate(req->app->db, list, &err) != AS_OK) {
        json_decref(list);
        json_error(resp, 500, "internal", err.msg);
        return;
    }
    web_resp_json(resp, 200, json_pack("{s:o}", "approvals", list));
}
