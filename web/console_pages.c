/*
 * console_pages.c - the console's overview and KPI pages (see console.h):
 * each KPI's value and trend as an SVG chart with its deadline, open runs
 * by step, pending approvals, recent failures and the age of the last
 * sync; a KPI's history; evaluating a KPI (operator).  The same calls as
 * `assent kpi show` and GET /api/v1/kpis/{name} (kpi_show_json), the runs
 * and approvals listings of the REST API (run_list_json,
 * web_ops_approvals_page).
 */
#include "web/console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "db/db_approvals.h"
#include "db/db_kpi.h"
#include "db/db_runs.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "engine/run_list.h"
#include "m365/kpi.h"
#include "m365/trigger.h"
#include "web/console_chart.h"
#include "web/web_ops.h"

#define OVERVIEW_ROWS 10
#define OPEN_RUNS_COUNTED 20000 /* open runs read to count them by step */
#define HISTORY_POINTS 30
#define HISTORY_POINTS_MAX 1000

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* The chart of a KPI as kpi_show_json gives it ({"kpi", "values"}). */
static void kpi_chart(struct html_buf *b, const json_t *shown, int width, int height)
{
    const json_t *kpi = json_object_get(shown, "kpi");
    const json_t *dl = json_object_get(json_object_get(kpi, "definition"), "deadline");
    char label[160];
    snprintf(label, sizeof label, "%s: values over time%s", str(kpi, "name"),
             dl ? " and the deadline" : "");
    struct console_chart ch = {
        .values = json_object_get(shown, "values"),
        .has_deadline = dl != NULL,
        .deadline_at = json_integer_value(json_object_get(dl, "at")),
        .target = json_integer_value(json_object_get(dl, "target")),
        .width = width,
        .height = height,
        .label = label,
    };
    console_chart_svg(b, &ch);
}

/* The last value and what changed since the one before, as text. */
static void kpi_value_line(struct html_buf *b, const json_t *shown, int64_t now)
{
    const json_t *values = json_object_get(shown, "values");
    size_t n = json_array_size(values);
    if (!n) {
        html_raw(b, "<p class=\"value\">-</p>\n");
        return;
    }
    const json_t *last = json_array_get(values, n - 1);
    char ago[64];
    console_ago(now, num(last, "ts"), ago, sizeof ago);
    html_rawf(b, "<p><span class=\"value\">%lld</span> ", num(last, "value"));
    if (n > 1) {
        long long d = num(last, "value") - num(json_array_get(values, n - 2), "value");
        html_rawf(b, "(%+lld since the value before) ", d);
    }
    html_rawf(b, "<span class=\"note\">%lld exempt, evaluated ", num(last, "exempt"));
    html_text(b, ago);
    html_raw(b, "</span></p>\n");
    const json_t *dl = json_object_get(json_object_get(json_object_get(shown, "kpi"), "definition"),
                                       "deadline");
    if (dl) {
        char when[48], left[64];
        console_time(num(dl, "at"), when, sizeof when);
        console_ago(now, num(dl, "at"), left, sizeof left);
        html_raw(b, "<p class=\"note\">Deadline ");
        html_text(b, when);
        html_raw(b, " (");
        html_text(b, left);
        html_rawf(b, "): target %lld.</p>\n", num(dl, "target"));
    }
}

/* ---- overview ---- */

struct step_count {
    json_t *by_step; /* {"workflow / step": n} */
    int64_t seen, last_id;
};

static int count_step(void *ud, const struct db_run_info *run)
{
    struct step_count *sc = ud;
    char key[300];
    snprintf(key, sizeof key, "%s / %s (%s)", run->workflow,
             run->current_step[0] ? run->current_step : "-", run->status);
    json_object_set_new(sc->by_step, key,
                        json_integer(json_integer_value(json_object_get(sc->by_step, key)) + 1));
    sc->seen++;
    sc->last_id = run->id;
    return 0;
}

/* Open runs counted by workflow, step and status (the first OPEN_RUNS_COUNTED). */
static enum as_code open_runs_by_step(struct app *app, json_t **out, int64_t *counted,
                                      struct as_err *err)
{
    static const char *const open[] = {"running", "waiting"};
    struct step_count sc = {.by_step = json_object()};
    enum as_code rc = sc.by_step ? AS_OK : as_errf(err, AS_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < 2; i++) {
        struct db_run_filter f = {.status = open[i], .limit = 1000};
        for (;;) {
            struct db_conn *conn;
            int64_t before = sc.seen;
            rc = db_read_begin(app->db, &conn, err);
            if (rc)
                break;
            rc = db_runs_list(conn, &f, count_step, &sc, err);
            db_read_end(app->db, conn);
            if (rc || sc.seen - before < f.limit || sc.seen >= OPEN_RUNS_COUNTED)
                break;
            f.before_id = sc.last_id;
        }
    }
    *counted = sc.seen;
    if (rc)
        json_decref(sc.by_step);
    else
        *out = sc.by_step;
    return rc;
}

static void overview_sync(struct console_call *c, struct html_buf *b)
{
    struct as_err err = {0};
    int64_t finished = 0;
    char status[32] = "", ago[64];
    enum as_code rc = db_tenant_last_completed_sync(c->req->app->db, &finished, status,
                                                    sizeof status, &err);
    html_raw(b, "<p>Last tenant sync: ");
    if (rc) {
        html_text(b, err.msg);
    } else if (!finished) {
        html_raw(b, "<strong>none yet</strong> (run <code>assent sync</code>)");
    } else {
        console_ago(c->req->now_ms, finished, ago, sizeof ago);
        html_raw(b, "<strong class=\"sync-age\">");
        html_text(b, ago);
        html_raw(b, "</strong> (");
        html_text(b, status);
        html_raw(b, ")");
    }
    html_raw(b, "</p>\n");
}

static void overview_kpis(struct console_call *c, struct html_buf *b)
{
    struct as_err err = {0};
    json_t *list = NULL;
    html_raw(b, "<h2>KPIs</h2>\n");
    if (db_kpi_list(c->req->app->db, &list, &err) != AS_OK) {
        console_error_p(b, err.msg);
        return;
    }
    if (!json_array_size(list))
        html_raw(b, "<p>No KPI yet (<code>assent kpi create --from "
                    "workflows/kpis/legacy-enabled.json</code>).</p>\n");
    html_raw(b, "<div class=\"kpis\">\n");
    size_t i;
    json_t *k;
    json_array_foreach(list, i, k)
    {
        json_t *shown = NULL;
        if (kpi_show_json(c->req->app, str(k, "name"), HISTORY_POINTS, c->req->now_ms, &shown,
                          &err) != AS_OK)
            continue;
        html_raw(b, "<section class=\"box kpi\"><h3><a href=\"/console/kpis/");
        console_url_value(b, str(k, "name"));
        html_raw(b, "\">");
        html_text(b, str(k, "name"));
        html_raw(b, "</a></h3>\n<p class=\"note\">");
        html_text(b, str(json_object_get(k, "definition"), "description"));
        html_raw(b, "</p>\n");
        kpi_value_line(b, shown, c->req->now_ms);
        kpi_chart(b, shown, 0, 0);
        html_raw(b, "</section>\n");
        json_decref(shown);
    }
    html_raw(b, "</div>\n");
    json_decref(list);
}

static void overview_runs(struct console_call *c, struct html_buf *b)
{
    struct as_err err = {0};
    json_t *by_step = NULL;
    int64_t counted = 0;
    html_raw(b, "<h2>Open runs by step</h2>\n");
    if (open_runs_by_step(c->req->app, &by_step, &counted, &err) != AS_OK) {
        console_error_p(b, err.msg);
        return;
    }
    if (!counted) {
        html_raw(b, "<p>No open run.</p>\n");
    } else {
        html_raw(b, "<table class=\"open-runs\"><tr><th>workflow / step (status)</th>"
                    "<th class=\"num\">runs</th></tr>\n");
        const char *key;
        json_t *v;
        json_object_foreach(by_step, key, v)
        {
            html_raw(b, "<tr>");
            console_td(b, key);
            html_rawf(b, "<td class=\"num\">%lld</td></tr>\n", (long long)json_integer_value(v));
        }
        html_raw(b, "</table>\n");
        if (counted >= OPEN_RUNS_COUNTED)
            html_rawf(b, "<p class=\"note\">The first %d open runs are counted.</p>\n",
                      OPEN_RUNS_COUNTED);
    }
    json_decref(by_step);
}

static void overview_approvals(struct console_call *c, struct html_buf *b)
{
    struct as_err err = {0};
    json_t *items = NULL, *stats = NULL;
    int64_t next = 0;
    char when[48];
    long long pending = 0;
    if (db_approvals_stats(c->req->app->db, &stats, &err) == AS_OK)
        pending = num(stats, "approvals_pending");
    json_decref(stats);
    html_rawf(b, "<h2>Pending approvals (%lld)</h2>\n", pending);
    if (web_ops_approvals_page(c->req->app->db, "pending", 0, OVERVIEW_ROWS, &items, &next,
                               &err) != AS_OK) {
        console_error_p(b, err.msg);
        return;
    }
    if (!json_array_size(items)) {
        html_raw(b, "<p>None.</p>\n");
    } else {
        html_raw(b, "<div class=\"scroll\"><table><tr><th>approval</th><th>subject</th>"
                    "<th>asked</th><th>expires</th></tr>\n");
        size_t i;
        json_t *a;
        json_array_foreach(items, i, a)
        {
            html_rawf(b, "<tr><td><a href=\"/console/approvals/%lld\">#%lld</a></td>", num(a, "id"),
                      num(a, "id"));
            console_td(b, str(a, "subject"));
            console_time(num(a, "created_at"), when, sizeof when);
            console_td(b, when);
            console_time(num(a, "expires_at"), when, sizeof when);
            console_td(b, when);
            html_raw(b, "</tr>\n");
        }
        html_raw(b, "</table></div>\n");
        if (next)
            html_raw(b, "<p><a href=\"/console/approvals?status=pending\">All pending "
                        "approvals</a></p>\n");
    }
    json_decref(items);
}

static void overview_failures(struct console_call *c, struct html_buf *b)
{
    struct as_err err = {0};
    json_t *items = NULL;
    struct db_run_filter f = {.status = "failed", .limit = OVERVIEW_ROWS};
    char when[48];
    html_raw(b, "<h2>Recent failures</h2>\n");
    if (run_list_json(c->req->app->db, &f, &items, NULL, &err) != AS_OK) {
        console_error_p(b, err.msg);
        return;
    }
    if (!json_array_size(items)) {
        html_raw(b, "<p>None.</p>\n");
    } else {
        html_raw(b, "<div class=\"scroll\"><table><tr><th>run</th><th>workflow</th><th>user</th>"
                    "<th>step</th><th>error</th><th>when</th></tr>\n");
        size_t i;
        json_t *r;
        json_array_foreach(items, i, r)
        {
            html_rawf(b, "<tr><td><a href=\"/console/runs/%lld\">#%lld</a></td>", num(r, "id"),
                      num(r, "id"));
            console_td(b, str(r, "workflow"));
            console_td(b, str(r, "user"));
            console_td(b, str(r, "step"));
            console_td(b, str(r, "error"));
            console_time(num(r, "updated_at"), when, sizeof when);
            console_td(b, when);
            html_raw(b, "</tr>\n");
        }
        html_raw(b, "</table></div>\n<p><a href=\"/console/runs?status=failed\">All failed "
                    "runs</a></p>\n");
    }
    json_decref(items);
}

void console_overview(struct console_call *c)
{
    struct html_buf b = {0};
    console_page_begin(c, &b, "Overview", "overview");
    overview_sync(c, &b);
    overview_kpis(c, &b);
    overview_runs(c, &b);
    overview_approvals(c, &b);
    overview_failures(c, &b);
    console_page_end(c, &b, 200);
}

/* ---- KPIs ---- */

void console_kpis(struct console_call *c)
{
    struct as_err err = {0};
    json_t *list = NULL;
    char when[48];
    if (db_kpi_list(c->req->app->db, &list, &err) != AS_OK) {
        console_message(c, 500, "KPIs", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "KPIs", "kpis");
    html_raw(&b, "<div class=\"scroll\"><table><tr><th>KPI</th><th>description</th>"
                 "<th class=\"num\">value</th><th class=\"num\">exempt</th><th>evaluated</th>"
                 "<th>schedule</th><th>deadline</th></tr>\n");
    size_t i;
    json_t *k;
    json_array_foreach(list, i, k)
    {
        const json_t *def = json_object_get(k, "definition");
        html_raw(&b, "<tr><td><a href=\"/console/kpis/");
        console_url_value(&b, str(k, "name"));
        html_raw(&b, "\">");
        html_text(&b, str(k, "name"));
        html_raw(&b, "</a></td>");
        console_td(&b, str(def, "description"));
        if (json_is_null(json_object_get(k, "last_value")) || !json_object_get(k, "last_value"))
            html_raw(&b, "<td class=\"num\">-</td><td class=\"num\">-</td>");
        else
            html_rawf(&b, "<td class=\"num\">%lld</td><td class=\"num\">%lld</td>",
                      num(k, "last_value"), num(k, "last_exempt"));
        console_time(num(k, "last_ts"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(k, "schedule"));
        const json_t *dl = json_object_get(def, "deadline");
        if (dl) {
            char t[80];
            console_time(num(dl, "at"), when, sizeof when);
            snprintf(t, sizeof t, "%s (target %lld)", when, num(dl, "target"));
            console_td(&b, t);
        } else {
            console_td(&b, "-");
        }
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n");
    if (!json_array_size(list))
        html_raw(&b, "<p>No KPI yet.</p>\n");
    json_decref(list);
    console_page_end(c, &b, 200);
}

void console_kpi(struct console_call *c)
{
    struct as_err err = {0};
    json_t *shown = NULL;
    int64_t points;
    char when[48];
    if (!console_int_param(c, "history", HISTORY_POINTS, HISTORY_POINTS_MAX, &points)) {
        console_message(c, 400, "Bad request", "history must be a number from 1 to 1000.");
        return;
    }
    enum as_code rc = kpi_show_json(c->req->app, c->arg, (int)points, c->req->now_ms, &shown, &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : 500, "KPI", err.msg);
        return;
    }
    const json_t *kpi = json_object_get(shown, "kpi"), *def = json_object_get(kpi, "definition");
    struct html_buf b = {0};
    console_page_begin(c, &b, str(kpi, "name"), "kpis");
    html_raw(&b, "<p>");
    html_text(&b, str(def, "description"));
    html_raw(&b, "</p>\n<p>Filter: <code>");
    html_text(&b, str(def, "filter"));
    html_raw(&b, "</code></p>\n");
    kpi_value_line(&b, shown, c->req->now_ms);
    kpi_chart(&b, shown, 900, 280);
    if (c->who.role >= API_ROLE_OPERATOR) {
        char action[160];
        snprintf(action, sizeof action, "/console/kpis/%s/evaluate", c->arg);
        console_form_begin(c, &b, action);
        html_raw(&b, "<div class=\"actions\"><button type=\"submit\">Evaluate now</button></div>"
                     "</form>\n");
        const json_t *trig = json_object_get(def, "trigger");
        if (trig) {
            html_raw(&b, "<h2>Trigger</h2>\n<p>One run of <code>");
            html_text(&b, str(trig, "workflow"));
            html_raw(&b, "</code> per user the KPI finds (a user with an open run is skipped), "
                         "as <code>assent trigger</code>.</p>\n");
            snprintf(action, sizeof action, "/console/kpis/%s/trigger", c->arg);
            console_form_begin(c, &b, action);
            html_raw(&b, "<p><label><input type=\"checkbox\" name=\"preview\" value=\"1\" "
                         "checked> preview only: start nothing</label> <label><input "
                         "type=\"checkbox\" name=\"allow_stale\" value=\"1\"> even from a sync "
                         "older than max_sync_age</label></p><div class=\"actions\"><button "
                         "type=\"submit\">Trigger</button></div></form>\n");
        }
    }
    html_rawf(&b, "<h2>History (the last %lld values)</h2>\n<div class=\"scroll\"><table>"
                  "<tr><th>when</th><th class=\"num\">value</th><th class=\"num\">exempt</th>"
                  "<th>breakdown</th></tr>\n",
              (long long)points);
    const json_t *values = json_object_get(shown, "values");
    for (size_t i = json_array_size(values); i-- > 0;) {
        const json_t *v = json_array_get(values, i);
        console_time(num(v, "ts"), when, sizeof when);
        html_raw(&b, "<tr>");
        console_td(&b, when);
        html_rawf(&b, "<td class=\"num\">%lld</td><td class=\"num\">%lld</td>", num(v, "value"),
                  num(v, "exempt"));
        char *bd = json_is_object(json_object_get(v, "breakdown"))
                       ? json_dumps(json_object_get(v, "breakdown"), JSON_COMPACT | JSON_SORT_KEYS)
                       : NULL;
        console_td(&b, bd ? bd : "");
        free(bd);
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n");
    json_decref(shown);
    console_page_end(c, &b, 200);
}

#define TRIGGER_ROWS_SHOWN 200

struct trigger_page {
    struct html_buf *rows;
    size_t n;
};

static void trigger_row(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                        int64_t run_id, const char *why)
{
    struct trigger_page *t = ud;
    (void)input;
    if (t->n++ >= TRIGGER_ROWS_SHOWN)
        return;
    html_raw(t->rows, "<tr>");
    console_td(t->rows, upn);
    console_td(t->rows, why && *why ? why : trigger_what_name(what));
    if (run_id)
        html_rawf(t->rows, "<td><a href=\"/console/runs/%lld\">#%lld</a></td>", (long long)run_id,
                  (long long)run_id);
    else
        console_td(t->rows, "-");
    html_raw(t->rows, "</tr>\n");
}

void console_kpi_trigger(struct console_call *c)
{
    struct as_err err = {0};
    struct trigger_stats st;
    struct html_buf rows = {0};
    struct trigger_page t = {.rows = &rows};
    int preview = console_param(c, "preview") != NULL;
    enum as_code rc = web_ops_kpi_trigger(c->req->app, c->arg, preview,
                                          console_param(c, "allow_stale") != NULL, c->who.name,
                                          "console", c->req->now_ms, trigger_row, &t, &st, &err);
    if (rc) {
        html_buf_free(&rows);
        console_message(c, rc == AS_ENOTFOUND ? 404 : rc == AS_EINVAL ? 400 : 409,
                        "Not triggered", err.msg);
        return;
    }
    LOG_INFO("console", "kpi %s triggered by %s%s", c->arg, c->who.name,
             preview ? " (preview)" : "");
    struct html_buf b = {0};
    console_page_begin(c, &b, preview ? "Trigger preview" : "Triggered", "kpis");
    html_rawf(&b, "<p class=\"notice\" role=\"status\">%lld rows: %lld %s, %lld already open, "
                  "%lld deferred, %lld invalid, %lld exempt, %lld superseded.</p>\n",
              (long long)st.rows, (long long)st.started, preview ? "would start" : "started",
              (long long)st.duplicates, (long long)st.deferred, (long long)st.invalid,
              (long long)st.exempt, (long long)st.superseded);
    html_raw(&b, "<div class=\"scroll\"><table class=\"triggered\"><tr><th>user</th>"
                 "<th>result</th><th>run</th></tr>\n");
    size_t len;
    char *text = html_buf_take(&rows, &len);
    if (text)
        html_rawn(&b, text, len);
    free(text);
    html_raw(&b, "</table></div>\n");
    if (t.n > TRIGGER_ROWS_SHOWN)
        html_rawf(&b, "<p class=\"note\">The first %d of %zu rows are shown.</p>\n",
                  TRIGGER_ROWS_SHOWN, t.n);
    html_raw(&b, "<p><a href=\"/console/kpis/");
    console_url_value(&b, c->arg);
    html_raw(&b, "\">Back to the KPI</a></p>\n");
    console_page_end(c, &b, 200);
}

void console_kpi_evaluate(struct console_call *c)
{
    struct as_err err = {0};
    json_t *out = NULL;
    enum as_code rc = web_ops_kpi_evaluate(c->req->app, c->arg, c->who.name, "console",
                                           c->req->now_ms, &out, &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : rc == AS_EINVAL ? 400 : 500,
                        "Evaluation failed", err.msg);
        return;
    }
    LOG_INFO("console", "kpi %s evaluated by %s: %lld", c->arg, c->who.name, num(out, "value"));
    json_decref(out);
    struct html_buf loc = {0};
    html_raw(&loc, "/console/kpis/");
    console_url_value(&loc, c->arg);
    html_raw(&loc, "?done=evaluated");
    size_t len;
    char *where = html_buf_take(&loc, &len);
    console_redirect(c, where ? where : "/console/kpis");
    free(where);
}
