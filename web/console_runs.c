/*
 * console_runs.c - the console's runs and approvals (see console.h): runs
 * with the filters of GET /api/v1/runs (run_list_json), a run's step
 * timeline and events (run_history_load, as `assent show`), cancelling and
 * retrying (operator); approvals pending or decided (web_ops_approvals_page),
 * one approval with what it changes and the audit of its decisions (who,
 * when, from which address and agent, the comment, the request's hash), and
 * an operator's decision of the whole approval (approval_decide, as `assent
 * decide ID` and POST /api/v1/approvals/{id}/decide).
 */
#include "web/console.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approval_decide.h"
#include "approvals/approval_render.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "db/db_approvals.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "engine/run_history.h"
#include "engine/run_list.h"
#include "web/web_ops.h"

#define COMMENT_MAX_BYTES 4000

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = s && *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : 0;
    if (!v || errno || *end)
        return 0;
    *out = v;
    return 1;
}

/* ---- runs ---- */

void console_runs(struct console_call *c)
{
    struct as_err err = {0};
    struct db_run_filter f = {0};
    int64_t limit, before = 0;
    char when[48];
    const char *since = console_param(c, "since"), *cursor = console_param(c, "cursor");
    f.status = console_param(c, "status");
    f.workflow = console_param(c, "workflow");
    f.user = console_param(c, "user");
    if (!console_int_param(c, "limit", CONSOLE_PAGE_DEFAULT, CONSOLE_PAGE_MAX, &limit) ||
        (cursor && !parse_id(cursor, &before)) || (f.status && !run_status_known(f.status))) {
        console_message(c, 400, "Bad request",
                        "status is running, waiting, succeeded, failed, cancelled or superseded; "
                        "limit 1 to 1000.");
        return;
    }
    if (since) {
        int64_t d = 0;
        if (since[0] == 'P' && time_parse_duration(since, &d, &err) == AS_OK) {
            f.since = c->req->now_ms - d;
        } else if (since[0] == 'P' || time_parse_iso(since, &f.since) != AS_OK) {
            console_message(c, 400, "Bad request",
                            "since is a date or time (2026-03-01) or a duration back from now (P7D).");
            return;
        }
    }
    f.limit = (int)limit;
    f.before_id = before;
    json_t *items = NULL;
    int64_t next = 0;
    if (run_list_json(c->req->app->db, &f, &items, &next, &err) != AS_OK) {
        console_message(c, 500, "Runs", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Runs", "runs");
    html_raw(&b, "<form method=\"get\" action=\"/console/runs\" class=\"filters\"><div><label "
                 "for=\"status\">Status</label><select id=\"status\" name=\"status\">"
                 "<option value=\"\">any</option>");
    static const char *const statuses[] = {"running", "waiting", "succeeded", "failed",
                                           "cancelled", "superseded"};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        html_rawf(&b, "<option%s>%s</option>",
                  f.status && strcmp(f.status, statuses[i]) == 0 ? " selected" : "", statuses[i]);
    html_raw(&b, "</select></div>");
    static const struct {
        const char *name, *label, *hint;
    } inputs[] = {{"workflow", "Workflow", "legacy-protocols"},
                  {"user", "User", "ada@contoso.com"},
                  {"since", "Since", "P7D or 2026-03-01"}};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        const char *v = console_param(c, inputs[i].name);
        html_rawf(&b, "<div><label for=\"%s\">%s</label><input type=\"text\" id=\"%s\" name=\"%s\" "
                      "placeholder=\"%s\" value=\"",
                  inputs[i].name, inputs[i].label, inputs[i].name, inputs[i].name, inputs[i].hint);
        html_text(&b, v ? v : "");
        html_raw(&b, "\"></div>");
    }
    html_raw(&b, "<div><button type=\"submit\">Apply</button></div></form>\n");
    html_raw(&b, "<div class=\"scroll\"><table class=\"runs\"><tr><th>run</th><th>workflow</th>"
                 "<th>user</th><th>status</th><th>step</th><th>error</th><th>trigger</th>"
                 "<th>started</th><th>updated</th></tr>\n");
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r)
    {
        html_rawf(&b, "<tr><td><a href=\"/console/runs/%lld\">#%lld</a></td>", num(r, "id"),
                  num(r, "id"));
        console_td(&b, str(r, "workflow"));
        console_td(&b, *str(r, "title") ? str(r, "title") : str(r, "user"));
        console_td(&b, str(r, "status"));
        console_td(&b, str(r, "step"));
        console_td(&b, str(r, "error"));
        console_td(&b, str(r, "trigger"));
        console_time(num(r, "created_at"), when, sizeof when);
        console_td(&b, when);
        console_time(num(r, "updated_at"), when, sizeof when);
        console_td(&b, when);
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n");
    if (!json_array_size(items))
        html_raw(&b, "<p>No run matches.</p>\n");
    if (next) {
        html_raw(&b, "<p class=\"pager\"><a rel=\"next\" href=\"/console/runs?");
        for (size_t k = 0; k < 4; k++) {
            static const char *const keep[] = {"status", "workflow", "user", "since"};
            const char *v = console_param(c, keep[k]);
            if (!v)
                continue;
            html_rawf(&b, "%s=", keep[k]);
            console_url_value(&b, v);
            html_raw(&b, "&amp;");
        }
        html_rawf(&b, "limit=%lld&amp;cursor=%lld\">Older runs</a></p>\n", (long long)limit,
                  (long long)next);
    }
    json_decref(items);
    console_page_end(c, &b, 200);
}

/* The data of an event, short: its JSON, cut at 300 bytes. */
static void event_data(struct html_buf *b, const json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (text && strlen(text) > 300)
        memcpy(text + 296, "...", 4);
    console_td(b, text ? text : "");
    free(text);
}

void console_run(struct console_call *c)
{
    struct as_err err = {0};
    int64_t id;
    json_t *h = NULL;
    char when[48], took[32];
    if (!parse_id(c->arg, &id)) {
        console_message(c, 404, "Not found", "There is no such run.");
        return;
    }
    enum as_code rc = run_history_load(c->req->app->db, id, 1, &h, &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : 500, "Run", err.msg);
        return;
    }
    const json_t *run = json_object_get(h, "run");
    char title[64];
    snprintf(title, sizeof title, "Run #%lld", (long long)id);
    struct html_buf b = {0};
    console_page_begin(c, &b, title, "runs");
    html_raw(&b, "<table class=\"run\">");
    static const char *const keys[] = {"workflow", "version", "status", "error", "trigger",
                                       "dedupe_key"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        html_raw(&b, "<tr><th scope=\"row\">");
        html_text(&b, keys[i]);
        html_raw(&b, "</th>");
        console_td(&b, str(run, keys[i]));
        html_raw(&b, "</tr>");
    }
    console_time(num(run, "created_at"), when, sizeof when);
    html_raw(&b, "<tr><th scope=\"row\">started</th>");
    console_td(&b, when);
    console_time(num(run, "finished_at"), when, sizeof when);
    html_raw(&b, "</tr><tr><th scope=\"row\">finished</th>");
    console_td(&b, when);
    html_raw(&b, "</tr></table>\n");
    const char *status = str(run, "status");
    int open = strcmp(status, "running") == 0 || strcmp(status, "waiting") == 0;
    if (c->who.role >= API_ROLE_OPERATOR && (open || strcmp(status, "failed") == 0)) {
        char action[64];
        snprintf(action, sizeof action, "/console/runs/%lld/%s", (long long)id,
                 open ? "cancel" : "retry");
        console_form_begin(c, &b, action);
        html_rawf(&b, "<div class=\"actions\"><button type=\"submit\"%s>%s</button></div></form>\n",
                  open ? " class=\"danger\"" : "", open ? "Cancel the run" : "Retry the failed step");
    }
    html_raw(&b, "<h2>Input</h2>\n<pre>");
    char *input = json_dumps(json_object_get(run, "input"), JSON_INDENT(2) | JSON_SORT_KEYS);
    html_text(&b, input ? input : "");
    free(input);
    html_raw(&b, "</pre>\n<h2>Steps</h2>\n<div class=\"scroll\"><table class=\"timeline\">"
                 "<tr><th>step</th><th>status</th><th>outcome</th><th>attempts</th>"
                 "<th>started</th><th>took</th><th>error</th></tr>\n");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(h, "steps"), i, s)
    {
        html_raw(&b, "<tr>");
        console_td(&b, str(s, "step"));
        console_td(&b, str(s, "status"));
        console_td(&b, str(s, "outcome"));
        html_rawf(&b, "<td class=\"num\">%lld</td>", num(s, "attempts"));
        console_time(num(s, "started_at"), when, sizeof when);
        console_td(&b, when);
        if (num(s, "finished_at") && num(s, "started_at"))
            run_history_duration(num(s, "finished_at") - num(s, "started_at"), took, sizeof took);
        else
            snprintf(took, sizeof took, "-");
        console_td(&b, took);
        console_td(&b, str(s, "error"));
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n<h2>Events (the audit chain)</h2>\n<div class=\"scroll\">"
                 "<table class=\"events\"><tr><th>#</th><th>when</th><th>type</th><th>data</th>"
                 "</tr>\n");
    json_t *e;
    json_array_foreach(json_object_get(h, "events"), i, e)
    {
        html_rawf(&b, "<tr><td>%lld</td>", num(e, "id"));
        console_time(num(e, "ts"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(e, "type"));
        event_data(&b, json_object_get(e, "data"));
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n");
    json_decref(h);
    console_page_end(c, &b, 200);
}

static void steer(struct console_call *c,
                  enum as_code (*op)(struct app *, int64_t, const char *, const char *,
                                     struct as_err *),
                  const char *done)
{
    struct as_err err = {0};
    int64_t id;
    if (!parse_id(c->arg, &id)) {
        console_message(c, 404, "Not found", "There is no such run.");
        return;
    }
    enum as_code rc = op(c->req->app, id, c->who.name, "console", &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : rc == AS_ECONFLICT ? 409 : 500,
                        "Not done", err.msg);
        return;
    }
    LOG_INFO("console", "run %lld %s by %s", (long long)id, done, c->who.name);
    char where[96];
    snprintf(where, sizeof where, "/console/runs/%lld?done=%s", (long long)id, done);
    console_redirect(c, where);
}

void console_run_cancel(struct console_call *c)
{
    steer(c, engine_cancel_run_as, "cancelled");
}

void console_run_retry(struct console_call *c)
{
    steer(c, engine_retry_run_as, "retried");
}

/* ---- approvals ---- */

void console_approvals(struct console_call *c)
{
    static const char *const statuses[] = {"pending", "decided", "approved", "rejected",
                                           "expired", "withdrawn"};
    struct as_err err = {0};
    int64_t limit, before = 0, next = 0;
    char when[48];
    const char *status = console_param(c, "status"), *cursor = console_param(c, "cursor");
    int known = !status;
    for (size_t i = 0; status && i < sizeof statuses / sizeof statuses[0]; i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known || !console_int_param(c, "limit", CONSOLE_PAGE_DEFAULT, CONSOLE_PAGE_MAX, &limit) ||
        (cursor && !parse_id(cursor, &before))) {
        console_message(c, 400, "Bad request", "status is pending, decided, approved, rejected, "
                        "expired or withdrawn.");
        return;
    }
    json_t *items = NULL;
    if (web_ops_approvals_page(c->req->app->db, status, before, (int)limit, &items, &next,
                               &err) != AS_OK) {
        console_message(c, 500, "Approvals", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Approvals", "approvals");
    html_raw(&b, "<p>Show: <a href=\"/console/approvals?status=pending\">pending</a> &middot; "
                 "<a href=\"/console/approvals?status=decided\">decided</a> &middot; "
                 "<a href=\"/console/approvals?status=expired\">expired</a> &middot; "
                 "<a href=\"/console/approvals?status=withdrawn\">withdrawn</a> &middot; "
                 "<a href=\"/console/approvals\">all</a></p>\n");
    html_raw(&b, "<div class=\"scroll\"><table class=\"approvals\"><tr><th>approval</th>"
                 "<th>subject</th><th>status</th><th>approvers</th><th>asked</th>"
                 "<th>decided by</th><th>decided</th><th>run</th></tr>\n");
    size_t i;
    json_t *a;
    json_array_foreach(items, i, a)
    {
        html_rawf(&b, "<tr><td><a href=\"/console/approvals/%lld\">#%lld</a></td>", num(a, "id"),
                  num(a, "id"));
        console_td(&b, str(a, "subject"));
        console_td(&b, str(a, "status"));
        html_raw(&b, "<td>");
        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(a, "approvers"), j, p)
        {
            html_text(&b, str(p, "email"));
            html_raw(&b, " (");
            html_text(&b, str(p, "status"));
            html_raw(&b, ")<br>");
        }
        html_raw(&b, "</td>");
        console_time(num(a, "created_at"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(a, "decided_by"));
        console_time(num(a, "decided_at"), when, sizeof when);
        console_td(&b, when);
        html_rawf(&b, "<td><a href=\"/console/runs/%lld\">#%lld</a></td></tr>\n", num(a, "run_id"),
                  num(a, "run_id"));
    }
    html_raw(&b, "</table></div>\n");
    if (!json_array_size(items))
        html_raw(&b, "<p>None.</p>\n");
    if (next) {
        html_raw(&b, "<p class=\"pager\"><a rel=\"next\" href=\"/console/approvals?");
        if (status)
            html_rawf(&b, "status=%s&amp;", status);
        html_rawf(&b, "limit=%lld&amp;cursor=%lld\">Older approvals</a></p>\n", (long long)limit,
                  (long long)next);
    }
    json_decref(items);
    console_page_end(c, &b, 200);
}

/* The decisions of approval id in its run's events: who, when, address, agent, comment, hash. */
static void decision_audit(struct console_call *c, struct html_buf *b, const json_t *ap)
{
    struct as_err err = {0};
    json_t *h = NULL;
    char when[48];
    html_raw(b, "<h2>Decisions (from the audit chain)</h2>\n");
    if (run_history_load(c->req->app->db, num(ap, "run_id"), 1, &h, &err) != AS_OK) {
        console_error_p(b, err.msg);
        return;
    }
    html_raw(b, "<div class=\"scroll\"><table class=\"decisions\"><tr><th>who</th><th>via</th>"
                "<th>decision</th><th>when</th><th>address</th><th>agent</th><th>comment</th>"
                "<th>request hash</th></tr>\n");
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(json_object_get(h, "events"), i, e)
    {
        const json_t *d = json_object_get(e, "data");
        if (strcmp(str(e, "type"), "approval.decision") != 0 ||
            num(d, "approval_id") != num(ap, "id"))
            continue;
        n++;
        char who[400];
        snprintf(who, sizeof who, "%s%s%s%s", str(d, "approver"), *str(d, "actor") ? " (" : "",
                 str(d, "actor"), *str(d, "actor") ? ")" : "");
        html_raw(b, "<tr>");
        console_td(b, who);
        console_td(b, str(d, "via"));
        console_td(b, str(d, "decision"));
        console_time(num(e, "ts"), when, sizeof when);
        console_td(b, when);
        console_td(b, *str(d, "client_addr") ? str(d, "client_addr") : "-");
        console_td(b, *str(d, "user_agent") ? str(d, "user_agent") : "-");
        console_td(b, str(d, "comment"));
        html_raw(b, "<td><code>");
        html_text(b, str(d, "request_hash"));
        html_raw(b, "</code></td></tr>\n");
    }
    html_raw(b, "</table></div>\n");
    if (!n)
        html_raw(b, "<p>No decision yet.</p>\n");
    json_decref(h);
}

void console_approval(struct console_call *c)
{
    struct as_err err = {0};
    int64_t id;
    json_t *ap = NULL;
    char when[48];
    if (!parse_id(c->arg, &id)) {
        console_message(c, 404, "Not found", "There is no such approval.");
        return;
    }
    enum as_code rc = db_approvals_get(c->req->app->db, id, &ap, &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : 500, "Approval", err.msg);
        return;
    }
    char title[64];
    snprintf(title, sizeof title, "Approval #%lld", (long long)id);
    struct html_buf b = {0};
    console_page_begin(c, &b, title, "approvals");
    html_raw(&b, "<p><strong>");
    html_text(&b, str(ap, "subject"));
    html_raw(&b, "</strong></p>\n<table>");
    static const char *const keys[] = {"status", "policy", "workflow", "step", "decided_by",
                                       "decided_via", "comment"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        html_raw(&b, "<tr><th scope=\"row\">");
        html_text(&b, keys[i]);
        html_raw(&b, "</th>");
        console_td(&b, str(ap, keys[i]));
        html_raw(&b, "</tr>");
    }
    html_rawf(&b, "<tr><th scope=\"row\">run</th><td><a href=\"/console/runs/%lld\">#%lld</a> (",
              num(ap, "run_id"), num(ap, "run_id"));
    html_text(&b, str(ap, "run_status"));
    html_raw(&b, ")</td></tr>");
    console_time(num(ap, "created_at"), when, sizeof when);
    html_raw(&b, "<tr><th scope=\"row\">asked</th>");
    console_td(&b, when);
    console_time(num(ap, "expires_at"), when, sizeof when);
    html_raw(&b, "</tr><tr><th scope=\"row\">expires</th>");
    console_td(&b, when);
    html_raw(&b, "</tr><tr><th scope=\"row\">request hash</th><td><code>");
    html_text(&b, str(ap, "request_hash"));
    html_raw(&b, "</code></td></tr></table>\n<h2>Approvers</h2>\n<table><tr><th>approver</th>"
                 "<th>status</th><th>decided</th><th>comment</th></tr>\n");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ap, "approvers"), i, p)
    {
        html_raw(&b, "<tr>");
        console_td(&b, str(p, "email"));
        console_td(&b, str(p, "status"));
        console_time(num(p, "decided_at"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(p, "comment"));
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table>\n<h2>What it changes</h2>\n");
    approval_render_change(&b, ap);
    decision_audit(c, &b, ap);
    int open = strcmp(str(ap, "status"), "pending") == 0 &&
               (strcmp(str(ap, "run_status"), "running") == 0 ||
                strcmp(str(ap, "run_status"), "waiting") == 0);
    if (open && c->who.role >= API_ROLE_OPERATOR) {
        char action[64];
        snprintf(action, sizeof action, "/console/approvals/%lld/decide", (long long)id);
        html_raw(&b, "<h2>Decide as an administrator</h2>\n<p>Decides the whole approval, "
                     "whatever its policy, recorded with your name.</p>\n");
        console_form_begin(c, &b, action);
        html_rawf(&b, "<p><label for=\"comment\">Comment</label><br><textarea id=\"comment\" "
                      "name=\"comment\" maxlength=\"%d\" rows=\"3\"></textarea></p>"
                      "<div class=\"actions\"><button type=\"submit\" name=\"decision\" "
                      "value=\"approve\" class=\"ok\">Approve</button><button type=\"submit\" "
                      "name=\"decision\" value=\"reject\" class=\"danger\">Reject</button></div>"
                      "</form>\n",
                  COMMENT_MAX_BYTES);
    }
    json_decref(ap);
    console_page_end(c, &b, 200);
}

void console_approval_decide(struct console_call *c)
{
    struct as_err err = {0};
    int64_t id;
    if (!parse_id(c->arg, &id)) {
        console_message(c, 404, "Not found", "There is no such approval.");
        return;
    }
    const char *decision = console_param(c, "decision"), *comment = console_param(c, "comment");
    if (!decision || (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0)) {
        console_message(c, 400, "Bad request", "Press Approve or Reject.");
        return;
    }
    if (comment && strlen(comment) > COMMENT_MAX_BYTES) {
        console_message(c, 400, "Bad request", "The comment is too long.");
        return;
    }
    struct approval_decision d = {
        .approval_id = id,
        .decision = decision,
        .comment = comment,
        .via = "console",
        .actor = c->who.name,
        .client_addr = c->req->client_addr,
        .user_agent = web_req_header(c->req, "User-Agent"),
        .now = c->req->now_ms,
    };
    struct approval_decision_result res;
    enum as_code rc = approval_decide_wait(c->req->app->engine, c->req->app->db, &d, &res, &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : rc == AS_EINVAL ? 400 : 409, "Not decided",
                        err.msg);
        return;
    }
    if (res.resumed)
        engine_wake(c->req->app->engine);
    LOG_INFO("approval", "approval %lld: %s chose %s in the console (now %s)", (long long)id,
             c->who.name, decision, res.status);
    char where[96];
    snprintf(where, sizeof where, "/console/approvals/%lld?done=decided", (long long)id);
    console_redirect(c, where);
}
