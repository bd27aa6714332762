/*
 * console_users.c - the console's users report and its bulk action (see
 * console.h).
 *
 * The report is GET /api/v1/reports/users as a page: the same rows,
 * columns, `where` language and sort (web_ops_report_page, m365/report.h),
 * with a CSV export of the same rows.  In the store's order (by user
 * principal name) a page continues after the last UPN of the one before
 * (a keyset cursor: `after`), so the last of 1,000 pages costs what the
 * first does; sorted by another column it takes the API's offset cursor.
 *
 * The bulk action is CoreView's "select users, Manage CAS, complete": the
 * rows are checkboxes of one form (or the whole filter is taken); a POST
 * previews the exact Set-CASMailbox line of each user for the chosen
 * protocols, then starts them as recorded runs of the shipped workflow
 * workflows/legacy-protocols.json (in config api_workflow_dir) with its
 * approval step asking the approvers given, or grants exceptions to the
 * same users.  The runs are started as a KPI trigger starts them
 * (m365/trigger.h): a KPI made for the request selects the users (the
 * chosen protocols on and not exempt, and the selection or the filter), so
 * the input of each run is what a trigger would give it, each user's run is
 * deduplicated ("legacy-protocols:<upn>"), and every run records the
 * session's name as its actor.
 */
#include "web/console.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "engine/app.h"
#include "m365/kpi.h"
#include "m365/m365.h"
#include "m365/report.h"
#include "m365/trigger.h"
#include "web/web_ops.h"

#define BULK_MAX_USERS 2000 /* users one bulk action takes */
#define BULK_WORKFLOW "legacy-protocols.json"
#define UPN_MAX 256

static const struct {
    const char *name, *label, *on_expr;
} protocols[] = {
    {"pop", "POP", "pop_enabled"},
    {"imap", "IMAP", "imap_enabled"},
    {"smtp", "SMTP AUTH", "smtp_client_auth_disabled == false"},
    {"activesync", "ActiveSync", "activesync_enabled"},
    {"ews", "EWS", "ews_enabled"},
};
#define N_PROTOCOLS (sizeof protocols / sizeof protocols[0])

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* ---- the report ---- */

struct users_page {
    struct html_buf *b;
    const struct report_col *cols;
    size_t n_cols;
    int64_t index; /* of the row on the page */
    char last[UPN_MAX + 1]; /* the UPN of the last row */
};

static int user_row(void *ud, const json_t *row)
{
    struct users_page *p = ud;
    char cell[512];
    const char *upn = str(row, "upn");
    html_raw(p->b, "<tr><td><input type=\"checkbox\" name=\"u.");
    html_rawf(p->b, "%lld\" value=\"", (long long)p->index);
    html_text(p->b, upn);
    html_raw(p->b, "\" aria-label=\"select ");
    html_text(p->b, upn);
    html_raw(p->b, "\"></td>");
    for (size_t i = 0; i < p->n_cols; i++) {
        report_cell_text(&p->cols[i], row, cell, sizeof cell);
        if (strcmp(cell, "on") == 0 || strcmp(cell, "off") == 0)
            html_rawf(p->b, "<td class=\"p-%s\">%s</td>", cell, cell);
        else
            console_td(p->b, cell);
    }
    html_raw(p->b, "</tr>\n");
    p->index++;
    snprintf(p->last, sizeof p->last, "%s", upn);
    return 0;
}

/* "where=...&sort=..." of the current filter (markup-escaped query values). */
static void filter_query(struct html_buf *b, const char *where, const char *sort)
{
    html_raw(b, "where=");
    console_url_value(b, where ? where : "");
    if (sort) {
        html_raw(b, "&amp;sort=");
        console_url_value(b, sort);
    }
}

void console_users(struct console_call *c)
{
    struct as_err err = {0};
    int64_t limit, skip = 0;
    const char *where = console_param(c, "where"), *sort = console_param(c, "sort");
    const char *cursor = console_param(c, "cursor"), *after = console_param(c, "after");
    if (!console_int_param(c, "limit", CONSOLE_PAGE_DEFAULT, CONSOLE_PAGE_MAX, &limit) ||
        (cursor && !console_int_param(c, "cursor", 0, INT64_MAX / 2, &skip)) ||
        (after && (sort || cursor || strlen(after) > UPN_MAX))) {
        console_message(c, 400, "Bad request",
                        "limit is 1 to 1000; cursor and after come from the Next link (after "
                        "only in the order by user principal name).");
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Users", "users");
    html_raw(&b, "<form method=\"get\" action=\"/console/users\" class=\"filters\">"
                 "<div><label for=\"where\">Filter (the <code>where</code> language of "
                 "<code>assent report</code>)</label><input type=\"search\" class=\"wide\" "
                 "id=\"where\" name=\"where\" placeholder=\"pop_enabled || imap_enabled\" value=\"");
    html_text(&b, where ? where : "");
    html_raw(&b, "\"></div><div><label for=\"sort\">Sort</label><input type=\"text\" id=\"sort\" "
                 "name=\"sort\" placeholder=\"upn\" value=\"");
    html_text(&b, sort ? sort : "");
    html_rawf(&b, "\"></div><div><label for=\"limit\">Rows</label><input type=\"text\" "
                  "id=\"limit\" name=\"limit\" size=\"5\" value=\"%lld\"></div>"
                  "<div><button type=\"submit\">Apply</button></div></form>\n",
              (long long)limit);
    html_raw(&b, "<p><a class=\"csv\" href=\"/console/users.csv?");
    filter_query(&b, where, sort);
    html_raw(&b, "\">Export these users as CSV</a></p>\n");

    size_t n_cols = 0;
    const struct report_col *cols = report_columns(REPORT_USERS, &n_cols);
    struct html_buf rows = {0};
    struct users_page p = {.b = &rows, .cols = cols, .n_cols = n_cols};
    /* By UPN, always the keyset listing: "" is the first page. */
    struct report_query q = {.kind = REPORT_USERS, .where = where, .sort = sort,
                             .after = sort || cursor ? NULL : after ? after : ""};
    int more = 0, no_data = 0;
    enum as_code rc = web_ops_report_page(c->req->app, &q, c->req->now_ms, skip, limit, user_row,
                                          &p, &more, &no_data, &err);
    int status = 200;
    if (rc) {
        status = rc == AS_EINVAL ? 400 : 500;
        html_raw(&b, "<p class=\"error\" role=\"alert\">");
        html_text(&b, err.msg);
        html_raw(&b, "</p>\n");
    } else if (no_data) {
        html_raw(&b, "<p>No tenant data yet: run <code>assent sync</code> first.</p>\n");
    } else {
        console_form_begin(c, &b, "/console/users/bulk");
        html_raw(&b, "<input type=\"hidden\" name=\"where\" value=\"");
        html_text(&b, where ? where : "");
        html_rawf(&b, "\"><div class=\"box\"><strong>Bulk action</strong> on "
                      "<label><input type=\"radio\" name=\"scope\" value=\"selected\" checked> the "
                      "users ticked below</label> <label><input type=\"radio\" name=\"scope\" "
                      "value=\"filter\"> every user the filter finds (up to %d)</label> "
                      "<button type=\"submit\" name=\"action\" value=\"preview\">Manage protocols"
                      "&hellip;</button></div>\n",
                  BULK_MAX_USERS);
        html_raw(&b, "<div class=\"scroll\"><table class=\"users\"><tr><th>select</th>");
        for (size_t i = 0; i < n_cols; i++) {
            html_raw(&b, "<th>");
            html_text(&b, cols[i].header);
            html_raw(&b, "</th>");
        }
        html_raw(&b, "</tr>\n");
        size_t len;
        char *text = html_buf_take(&rows, &len);
        if (text)
            html_rawn(&b, text, len);
        else
            b.failed = 1;
        free(text);
        html_raw(&b, "</table></div></form>\n");
        html_raw(&b, "<p class=\"pager\">");
        if (after) {
            html_rawf(&b, "%lld rows after ", (long long)p.index);
            html_text(&b, after);
            html_raw(&b, ". ");
        } else {
            html_rawf(&b, "Rows %lld to %lld. ", (long long)skip + (p.index ? 1 : 0),
                      (long long)(skip + p.index));
        }
        if (skip || after) {
            html_raw(&b, "<a href=\"/console/users?");
            filter_query(&b, where, sort);
            html_rawf(&b, "&amp;limit=%lld\">First page</a> ", (long long)limit);
        }
        if (more) {
            html_raw(&b, "<a class=\"next\" rel=\"next\" href=\"/console/users?");
            filter_query(&b, where, sort);
            html_rawf(&b, "&amp;limit=%lld&amp;", (long long)limit);
            if (sort) {
                html_rawf(&b, "cursor=%lld", (long long)(skip + limit));
            } else {
                html_raw(&b, "after=");
                console_url_value(&b, p.last);
            }
            html_raw(&b, "\">Next page</a>");
        }
        html_raw(&b, "</p>\n");
    }
    html_buf_free(&rows);
    console_page_end(c, &b, status);
}

static int csv_row(void *ud, const json_t *row)
{
    report_csv_row(ud, REPORT_USERS, row);
    return 0;
}

void console_users_csv(struct console_call *c)
{
    struct as_err err = {0};
    struct strbuf text = {0};
    struct report_query q = {.kind = REPORT_USERS, .where = console_param(c, "where"),
                             .sort = console_param(c, "sort")};
    int more = 0, no_data = 0;
    report_csv_header(&text, REPORT_USERS);
    enum as_code rc = web_ops_report_page(c->req->app, &q, c->req->now_ms, 0, -1, csv_row, &text,
                                          &more, &no_data, &err);
    if (rc || no_data) {
        strbuf_free(&text);
        console_message(c, rc == AS_EINVAL ? 400 : no_data ? 409 : 500, "No export",
                        no_data ? "No tenant data yet: run `assent sync` first." : err.msg);
        return;
    }
    size_t len = text.len;
    char *body = strbuf_take(&text);
    if (!body) {
        console_message(c, 500, "No export", "out of memory");
        return;
    }
    web_resp_header(c->resp, "Content-Disposition", "attachment; filename=\"users.csv\"");
    web_resp_take(c->resp, 200, "text/csv; charset=utf-8", body, len);
}

/* ---- the bulk action ---- */

struct bulk_row {
    char upn[UPN_MAX + 1];
    json_t *input;         /* the run's input (preview: what it would be) */
    enum trigger_what what;
    int64_t run_id;
    char why[256];
};

struct bulk {
    json_t *users;        /* the selection: [upn] (scope "selected") */
    int scope_filter;     /* the whole filter instead */
    const char *where;
    unsigned mask;        /* the protocols chosen */
    json_t *approvers;    /* [email], may be empty */
    struct bulk_row *rows;
    size_t n_rows, cap_rows;
};

static void bulk_free(struct bulk *k)
{
    for (size_t i = 0; i < k->n_rows; i++)
        json_decref(k->rows[i].input);
    free(k->rows);
    json_decref(k->users);
    json_decref(k->approvers);
}

static int upn_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > UPN_MAX || !strchr(s, '@'))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* The form's selection, protocols and approvers into k; 0 with an error page when bad. */
static int bulk_read(struct console_call *c, struct bulk *k)
{
    k->users = json_array();
    k->approvers = json_array();
    if (!k->users || !k->approvers) {
        console_message(c, 500, "Bulk action", "out of memory");
        return 0;
    }
    const char *scope = console_param(c, "scope");
    k->scope_filter = scope && strcmp(scope, "filter") == 0;
    k->where = console_param(c, "where");
    int any_proto_field = 0;
    for (size_t i = 0; i < form_count(c->form); i++) {
        const char *name = form_name_at(c->form, i), *value = form_value_at(c->form, i);
        if (strncmp(name, "u.", 2) == 0 && !k->scope_filter) {
            if (!upn_ok(value)) {
                console_message(c, 400, "Bulk action", "A selected user is not a user principal name.");
                return 0;
            }
            if (json_array_size(k->users) >= BULK_MAX_USERS) {
                char msg[128];
                snprintf(msg, sizeof msg, "Select at most %d users at once.", BULK_MAX_USERS);
                console_message(c, 400, "Bulk action", msg);
                return 0;
            }
            json_array_append_new(k->users, json_string(value));
        } else if (strncmp(name, "p.", 2) == 0) {
            any_proto_field = 1;
            for (size_t j = 0; j < N_PROTOCOLS; j++)
                if (strcmp(name + 2, protocols[j].name) == 0)
                    k->mask |= 1u << j;
        }
    }
    /* First time from the report: the legacy protocols. */
    if (!any_proto_field && !console_param(c, "protocols_set"))
        k->mask = 1u << 0 | 1u << 1 | 1u << 2;
    const char *approvers = console_param(c, "approvers");
    for (const char *p = approvers; p && *p;) {
        size_t n = strcspn(p, ",; \t\r\n");
        if (n) {
            char email[UPN_MAX + 1];
            if (n > UPN_MAX) {
                console_message(c, 400, "Bulk action", "An approver's address is too long.");
                return 0;
            }
            memcpy(email, p, n);
            email[n] = '\0';
            if (!upn_ok(email)) {
                console_message(c, 400, "Bulk action", "Approvers are email addresses, one per line.");
                return 0;
            }
            json_array_append_new(k->approvers, json_string(email));
        }
        p += n;
        while (*p && strchr(",; \t\r\n", *p))
            p++;
    }
    if (!k->scope_filter && json_array_size(k->users) == 0) {
        console_message(c, 400, "Bulk action",
                        "No user is selected: tick users in the report, or choose every user the "
                        "filter finds.");
        return 0;
    }
    return 1;
}

/* s as a string literal of the expression language (docs/expressions.md). */
static void expr_string(struct strbuf *e, const char *s)
{
    strbuf_addc(e, '\'');
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            strbuf_addc(e, '\\');
        strbuf_addc(e, *s);
    }
    strbuf_addc(e, '\'');
}

/*
 * The KPI that selects the users of the request: one of the chosen
 * protocols on, and the selection (upn in [...]) or the filter.  Exempt
 * users are left out by kpi_eval as for any KPI.
 */
static enum as_code bulk_kpi(const struct bulk *k, struct kpi **out, struct as_err *err)
{
    struct strbuf e = {0};
    json_t *def = NULL, *norm = NULL, *protos = json_array();
    strbuf_add(&e, "(");
    int first = 1;
    for (size_t j = 0; j < N_PROTOCOLS; j++) {
        if (!(k->mask & (1u << j)))
            continue;
        strbuf_addf(&e, "%s%s", first ? "" : " || ", protocols[j].on_expr);
        json_array_append_new(protos, json_string(protocols[j].name));
        first = 0;
    }
    strbuf_add(&e, ") && (");
    if (k->scope_filter) {
        strbuf_add(&e, k->where ? k->where : "true");
    } else {
        strbuf_add(&e, "upn in [");
        for (size_t i = 0; i < json_array_size(k->users); i++) {
            if (i)
                strbuf_add(&e, ", ");
            expr_string(&e, json_string_value(json_array_get(k->users, i)));
        }
        strbuf_add(&e, "]");
    }
    strbuf_add(&e, ")");
    enum as_code rc = AS_OK;
    char *filter = strbuf_take(&e);
    if (!filter || !protos)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (!rc && !(def = json_pack("{s:s, s:s, s:s, s:s, s:O, s:b}", "name", "console-bulk",
                                 "description", "users chosen in the console", "report", "users",
                                 "filter", filter, "protocols", protos, "close_superseded", 0)))
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (!rc)
        rc = kpi_def_normalize(def, &norm, err);
    if (rc == AS_EINVAL)
        as_err_prefix(err, "where");
    if (!rc)
        rc = kpi_compile(norm, out, err);
    free(filter);
    json_decref(protos);
    json_decref(def);
    json_decref(norm);
    return rc;
}

static void bulk_on_row(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                        int64_t run_id, const char *why)
{
    struct bulk *k = ud;
    if (k->n_rows == k->cap_rows) {
        size_t cap = k->cap_rows ? k->cap_rows * 2 : 64;
        if (cap > BULK_MAX_USERS)
            cap = BULK_MAX_USERS;
        if (k->n_rows >= cap)
            return;
        struct bulk_row *nr = realloc(k->rows, cap * sizeof *nr);
        if (!nr)
            return;
        k->rows = nr;
        k->cap_rows = cap;
    }
    struct bulk_row *r = &k->rows[k->n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->upn, sizeof r->upn, "%s", upn ? upn : "");
    r->input = input ? json_incref((json_t *)input) : NULL;
    r->what = what;
    r->run_id = run_id;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "");
}

/* The workflow file the bulk action starts: api_workflow_dir/legacy-protocols.json. */
static int bulk_workflow(struct console_call *c, char *path, size_t size)
{
    const char *dir = config_str(c->req->app->cfg, "api_workflow_dir");
    if (!dir || !*dir) {
        console_message(c, 403, "Bulk action",
                        "Starting workflows by file is off (config api_workflow_dir).");
        return 0;
    }
    snprintf(path, size, "%s/%s", dir, BULK_WORKFLOW);
    return 1;
}

/* The Set-CASMailbox line of a run's input (its cas_settings), malloc'd. */
static char *cas_line(const char *upn, const json_t *input)
{
    const json_t *settings = json_object_get(input, "cas_settings");
    json_t *params = json_is_object(settings) ? json_deep_copy(settings) : json_object();
    if (!params)
        return NULL;
    json_object_set_new(params, "Identity", json_string(upn));
    char *line = m365_powershell_command("Set-CASMailbox", params);
    json_decref(params);
    return line;
}

/* The hidden fields that carry the request to the next step. */
static void bulk_carry(struct html_buf *b, const struct bulk *k)
{
    html_rawf(b, "<input type=\"hidden\" name=\"scope\" value=\"%s\">"
                 "<input type=\"hidden\" name=\"protocols_set\" value=\"1\">",
              k->scope_filter ? "filter" : "selected");
    html_raw(b, "<input type=\"hidden\" name=\"where\" value=\"");
    html_text(b, k->where ? k->where : "");
    html_raw(b, "\">\n");
    for (size_t i = 0; i < json_array_size(k->users); i++) {
        html_rawf(b, "<input type=\"hidden\" name=\"u.%zu\" value=\"", i);
        html_text(b, json_string_value(json_array_get(k->users, i)));
        html_raw(b, "\">\n");
    }
}

static void bulk_preview(struct console_call *c, struct bulk *k, const struct trigger_stats *st,
                         int fresh, const char *fresh_msg)
{
    struct html_buf b = {0};
    console_page_begin(c, &b, "Manage protocols", "users");
    html_rawf(&b, "<p>%s. ", k->scope_filter ? "Every user the filter finds" : "The selected users");
    if (k->scope_filter) {
        html_raw(&b, "Filter: <code>");
        html_text(&b, k->where ? k->where : "(none: every user)");
        html_raw(&b, "</code>. ");
    } else {
        html_rawf(&b, "%zu selected. ", json_array_size(k->users));
    }
    html_rawf(&b, "%lld have a chosen protocol on and no exception for it; %lld are left out by "
                  "their exceptions.</p>\n",
              (long long)st->rows, (long long)st->exempt);
    if (!fresh) {
        html_raw(&b, "<p class=\"error\">");
        html_text(&b, fresh_msg);
        html_raw(&b, " Starting runs waits for a fresh sync.</p>\n");
    }
    console_form_begin(c, &b, "/console/users/bulk");
    bulk_carry(&b, k);
    html_raw(&b, "<fieldset class=\"box\"><legend>Turn off</legend>");
    for (size_t j = 0; j < N_PROTOCOLS; j++)
        html_rawf(&b, "<label><input type=\"checkbox\" name=\"p.%s\" value=\"1\"%s> %s</label> ",
                  protocols[j].name, k->mask & (1u << j) ? " checked" : "", protocols[j].label);
    html_raw(&b, "<button type=\"submit\" name=\"action\" value=\"preview\">Update the preview"
                 "</button></fieldset>\n");

    html_rawf(&b, "<h2>The exact commands (%zu)</h2>\n", k->n_rows);
    html_raw(&b, "<p class=\"note\">From the last sync. Each run looks at the mailbox again when "
                 "it starts and asks the approvers before it changes anything.</p>\n"
                 "<pre class=\"commands\">");
    for (size_t i = 0; i < k->n_rows; i++) {
        char *line = cas_line(k->rows[i].upn, k->rows[i].input);
        html_raw(&b, "<code>");
        html_text(&b, line ? line : k->rows[i].upn);
        html_raw(&b, "</code>\n");
        free(line);
    }
    html_raw(&b, "</pre>\n");
    if (k->n_rows < (size_t)st->rows)
        html_rawf(&b, "<p class=\"note\">The first %zu of %lld are shown.</p>\n", k->n_rows,
                  (long long)st->rows);
    /* Selected users the request leaves out: nothing on, or exempt. */
    if (!k->scope_filter) {
        html_raw(&b, "<ul class=\"left-out\">");
        for (size_t i = 0; i < json_array_size(k->users); i++) {
            const char *u = json_string_value(json_array_get(k->users, i));
            size_t j = 0;
            while (j < k->n_rows && strcmp(k->rows[j].upn, u) != 0)
                j++;
            if (j == k->n_rows) {
                html_raw(&b, "<li>");
                html_text(&b, u);
                html_raw(&b, ": nothing to turn off (the chosen protocols are off or exempt)</li>");
            }
        }
        html_raw(&b, "</ul>\n");
    }
    if (c->who.role >= API_ROLE_OPERATOR) {
        html_raw(&b, "<h2>Start the change</h2>\n<p>One run of <code>legacy-protocols</code> per "
                     "user, recorded with your name; each asks the approvers below (a link by "
                     "email) before it runs <code>Set-CASMailbox</code>.</p>\n<p><label "
                     "for=\"approvers\">Approvers</label> (email addresses, one per line; empty: "
                     "config <code>default_approvers</code>)<br><textarea id=\"approvers\" "
                     "name=\"approvers\" rows=\"3\">");
        for (size_t i = 0; i < json_array_size(k->approvers); i++) {
            html_text(&b, json_string_value(json_array_get(k->approvers, i)));
            html_raw(&b, "\n");
        }
        html_rawf(&b, "</textarea></p><div class=\"actions\"><button type=\"submit\" "
                      "name=\"action\" value=\"start\" class=\"ok\">Start %lld run%s</button></div>\n",
                  (long long)st->rows, st->rows == 1 ? "" : "s");
        html_raw(&b, "<h2>Or grant exceptions</h2>\n<p>Leave the chosen protocols on for these "
                     "users until the exception expires.</p><p><label for=\"reason\">Reason"
                     "</label><input type=\"text\" class=\"wide\" id=\"reason\" name=\"reason\"> "
                     "<label for=\"expires\">Expires</label><input type=\"text\" id=\"expires\" "
                     "name=\"expires\" value=\"P90D\" size=\"12\"></p><div class=\"actions\">"
                     "<button type=\"submit\" name=\"action\" value=\"exceptions\">Grant "
                     "exceptions</button></div>\n");
    } else {
        html_raw(&b, "<p class=\"note\">Starting runs or granting exceptions needs the operator "
                     "role.</p>\n");
    }
    html_raw(&b, "</form>\n");
    console_page_end(c, &b, 200);
}

static void bulk_started(struct console_call *c, struct bulk *k, const struct trigger_stats *st)
{
    struct html_buf b = {0};
    console_page_begin(c, &b, "Runs started", "users");
    html_rawf(&b, "<p class=\"notice\" role=\"status\">Started %lld run%s; %lld user%s already had "
                  "one open; %lld did not fit the workflow.</p>\n",
              (long long)st->started, st->started == 1 ? "" : "s", (long long)st->duplicates,
              st->duplicates == 1 ? "" : "s", (long long)st->invalid);
    html_raw(&b, "<div class=\"scroll\"><table class=\"started\"><tr><th>user</th><th>result</th>"
                 "<th>run</th></tr>\n");
    for (size_t i = 0; i < k->n_rows; i++) {
        html_raw(&b, "<tr>");
        console_td(&b, k->rows[i].upn);
        console_td(&b, k->rows[i].why[0] ? k->rows[i].why : trigger_what_name(k->rows[i].what));
        if (k->rows[i].run_id)
            html_rawf(&b, "<td><a href=\"/console/runs/%lld\">#%lld</a></td>",
                      (long long)k->rows[i].run_id, (long long)k->rows[i].run_id);
        else
            console_td(&b, "-");
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n<p><a href=\"/console/approvals?status=pending\">Pending "
                 "approvals</a> &middot; <a href=\"/console/runs\">Runs</a></p>\n");
    console_page_end(c, &b, 200);
}

/* The users of the request by name: the selection, or the filter's (up to the cap). */
static int collect_upn(void *ud, const json_t *row)
{
    json_t *users = ud;
    json_array_append_new(users, json_string(str(row, "upn")));
    return json_array_size(users) >= BULK_MAX_USERS;
}

static void bulk_exceptions(struct console_call *c, struct bulk *k)
{
    struct as_err err = {0};
    const char *reason = console_param(c, "reason"), *expires = console_param(c, "expires");
    json_t *protos = json_array();
    for (size_t j = 0; protos && j < N_PROTOCOLS; j++)
        if (k->mask & (1u << j))
            json_array_append_new(protos, json_string(protocols[j].name));
    if (!reason) {
        json_decref(protos);
        console_message(c, 400, "Bulk action", "An exception needs a reason.");
        return;
    }
    if (k->scope_filter) {
        struct report_query q = {.kind = REPORT_USERS, .where = k->where};
        int more = 0, no_data = 0;
        enum as_code rc = web_ops_report_page(c->req->app, &q, c->req->now_ms, 0, BULK_MAX_USERS,
                                              collect_upn, k->users, &more, &no_data, &err);
        if (rc || no_data) {
            json_decref(protos);
            console_message(c, rc == AS_EINVAL ? 400 : 409, "Bulk action",
                            no_data ? "No tenant data yet." : err.msg);
            return;
        }
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Exceptions granted", "users");
    html_raw(&b, "<div class=\"scroll\"><table class=\"granted\"><tr><th>user</th><th>result</th>"
                 "</tr>\n");
    size_t ok = 0;
    for (size_t i = 0; i < json_array_size(k->users); i++) {
        const char *u = json_string_value(json_array_get(k->users, i));
        json_t *ex = NULL;
        struct as_err e = {0};
        enum as_code rc = kpi_exception_grant(c->req->app, u, protos, reason, c->who.name,
                                              expires, "console", c->req->now_ms, &ex, &e);
        char line[300];
        if (rc)
            snprintf(line, sizeof line, "refused: %s", e.msg);
        else
            snprintf(line, sizeof line, "exception #%lld",
                     (long long)json_integer_value(json_object_get(ex, "id")));
        ok += rc == AS_OK;
        html_raw(&b, "<tr>");
        console_td(&b, u);
        console_td(&b, line);
        html_raw(&b, "</tr>\n");
        json_decref(ex);
    }
    html_raw(&b, "</table></div>\n<p><a href=\"/console/exceptions\">Exceptions</a></p>\n");
    LOG_INFO("console", "%zu exception(s) granted by %s", ok, c->who.name);
    json_decref(protos);
    console_page_end(c, &b, 200);
}

void console_bulk(struct console_call *c)
{
    struct bulk k = {0};
    struct kpi *kpi = NULL;
    struct as_err err = {0}, ferr = {0};
    struct trigger_stats st;
    char path[PATH_MAX];
    const char *action = console_param(c, "action");
    if (!action || (strcmp(action, "preview") && strcmp(action, "start") &&
                    strcmp(action, "exceptions"))) {
        console_message(c, 400, "Bulk action", "Choose preview, start or exceptions.");
        return;
    }
    int start = strcmp(action, "start") == 0;
    if (strcmp(action, "preview") && !console_need(c, API_ROLE_OPERATOR))
        return;
    if (!bulk_read(c, &k))
        goto out;
    if (!k.mask) {
        console_message(c, 400, "Bulk action", "Choose at least one protocol.");
        goto out;
    }
    if (strcmp(action, "exceptions") == 0) {
        bulk_exceptions(c, &k);
        goto out;
    }
    if (!bulk_workflow(c, path, sizeof path))
        goto out;
    enum as_code rc = bulk_kpi(&k, &kpi, &err);
    int fresh = trigger_check_fresh(c->req->app, c->req->now_ms, &ferr) == AS_OK;
    json_t *input_map = json_array_size(k.approvers)
                            ? json_pack("{s:O}", "approvers", k.approvers)
                            : NULL;
    struct trigger_opts o = {
        .workflow_path = path,
        .input_map = input_map,
        .max_open = 0,
        .preview = !start,
        .trigger = "console",
        .actor = c->who.name,
        .allow_stale = !start,
        .keep_superseded = 1,
        .on_row = bulk_on_row,
        .ud = &k,
    };
    /* The whole filter is taken up to the cap: counted first, nothing started. */
    if (!rc && start && k.scope_filter) {
        struct trigger_opts count = o;
        count.preview = 1;
        count.allow_stale = 1;
        count.on_row = NULL;
        rc = trigger_kpi(c->req->app, kpi, c->req->now_ms, &count, &st, &err);
        if (!rc && st.rows > BULK_MAX_USERS)
            rc = as_errf(&err, AS_EINVAL,
                         "the filter finds %lld users with a chosen protocol on: narrow it to %d "
                         "or fewer", (long long)st.rows, BULK_MAX_USERS);
    }
    if (!rc)
        rc = trigger_kpi(c->req->app, kpi, c->req->now_ms, &o, &st, &err);
    if (!rc && start) {
        json_t *ev = trigger_stats_json(&st);
        if (ev)
            json_object_set_new(ev, "workflow", json_string(path));
        rc = web_ops_audit(c->req->app->db, "console.bulk_started", ev, c->who.name, "console",
                           &err);
    }
    json_decref(input_map);
    if (rc) {
        console_message(c, rc == AS_EINVAL ? 400 : rc == AS_EEXPIRED ? 409 : 500,
                        start ? "Nothing started" : "No preview", err.msg);
        goto out;
    }
    if (start) {
        LOG_INFO("console", "%lld run(s) of %s started by %s", (long long)st.started, path,
                 c->who.name);
        bulk_started(c, &k, &st);
    } else {
        bulk_preview(c, &k, &st, fresh, ferr.msg);
    }
out:
    kpi_free(kpi);
    bulk_free(&k);
}
