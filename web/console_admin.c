/*
 * console_admin.c - the console's exceptions and workflows (see console.h):
 * the exceptions in force (and removed or expired ones) as GET
 * /api/v1/exceptions lists them (web_ops_exceptions), those expiring soon,
 * granting one and removing one with a reason (operator; the calls of
 * POST and DELETE /api/v1/exceptions); the stored workflows (wf_store_list)
 * and a form that validates a workflow's text as POST
 * /api/v1/workflows/validate does (web_ops_workflow_check), showing each
 * diagnostic at its line; and, for admins, the API tokens (list, make one
 * and show it once, revoke), as `assent token` and /api/v1/tokens.
 */
#include "web/console.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "db/db_tokens.h"
#include "web/api_token.h"
#include "db/db_kpi.h"
#include "engine/app.h"
#include "engine/wf_store.h"
#include "engine/workflow.h"
#include "m365/kpi.h"
#include "web/web_ops.h"

#define EXPIRING_SOON_MS (14 * 24 * 3600 * 1000LL)
#define SOURCE_LINES_MAX 5000
#define WORKFLOW_ORIGIN "workflow"

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* A JSON array of strings as "a, b" (or the value's text). */
static void td_list(struct html_buf *b, const json_t *v)
{
    html_raw(b, "<td>");
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i)
                html_raw(b, ", ");
            html_text(b, json_string_value(e) ? json_string_value(e) : "");
        }
    } else if (json_is_string(v)) {
        html_text(b, json_string_value(v));
    }
    html_raw(b, "</td>");
}

/* ---- exceptions ---- */

static void exception_row(struct console_call *c, struct html_buf *b, const json_t *e)
{
    char when[48];
    html_rawf(b, "<tr><td>#%lld</td>", num(e, "id"));
    console_td(b, str(e, "upn"));
    td_list(b, json_object_get(e, "protocols"));
    console_td(b, str(e, "reason"));
    console_td(b, str(e, "granted_by"));
    console_time(num(e, "expires_at"), when, sizeof when);
    console_td(b, when);
    console_td(b, str(e, "state"));
    html_raw(b, "<td>");
    if (strcmp(str(e, "state"), "removed") == 0) {
        html_text(b, str(e, "removed_by"));
        html_raw(b, ": ");
        html_text(b, str(e, "removed_reason"));
    } else if (strcmp(str(e, "state"), "active") == 0 && c->who.role >= API_ROLE_OPERATOR) {
        char action[64];
        snprintf(action, sizeof action, "/console/exceptions/%lld/remove", num(e, "id"));
        console_form_begin(c, b, action);
        html_rawf(b, "<input type=\"text\" name=\"reason\" placeholder=\"why\" required "
                     "aria-label=\"reason to remove exception %lld\"> <button type=\"submit\" "
                     "class=\"danger\">Remove</button></form>",
                  num(e, "id"));
    }
    html_raw(b, "</td></tr>\n");
}

static void exceptions_table_head(struct html_buf *b, const char *cls)
{
    html_rawf(b, "<div class=\"scroll\"><table class=\"%s\"><tr><th>id</th><th>user</th>"
                 "<th>protocols</th><th>reason</th><th>granted by</th><th>expires</th>"
                 "<th>state</th><th></th></tr>\n",
              cls);
}

void console_exceptions(struct console_call *c)
{
    struct as_err err = {0};
    json_t *list = NULL;
    int64_t limit, below = 0;
    const char *include = console_param(c, "include"), *user = console_param(c, "user");
    int all = include && strcmp(include, "all") == 0;
    if (!console_int_param(c, "limit", CONSOLE_PAGE_DEFAULT, CONSOLE_PAGE_MAX, &limit) ||
        !console_int_param(c, "cursor", 0, INT64_MAX / 2, &below)) {
        console_message(c, 400, "Bad request", "limit is 1 to 1000.");
        return;
    }
    if (web_ops_exceptions(c->req->app, all, all, user, c->req->now_ms, &list, &err) != AS_OK) {
        console_message(c, 500, "Exceptions", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Exceptions", "exceptions");
    html_raw(&b, "<form method=\"get\" action=\"/console/exceptions\" class=\"filters\"><div>"
                 "<label for=\"user\">User</label><input type=\"text\" id=\"user\" name=\"user\" "
                 "value=\"");
    html_text(&b, user ? user : "");
    html_rawf(&b, "\"></div><div><label><input type=\"checkbox\" name=\"include\" value=\"all\"%s> "
                  "with removed and expired ones</label></div><div><button type=\"submit\">Apply"
                  "</button></div></form>\n",
              all ? " checked" : "");

    /* Expiring soon: in force, ending within 14 days, soonest first. */
    html_raw(&b, "<h2>Expiring soon (14 days)</h2>\n");
    exceptions_table_head(&b, "expiring");
    size_t n_soon = 0;
    {
        json_t *soon = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            long long at = num(e, "expires_at");
            if (strcmp(str(e, "state"), "active") == 0 && at &&
                at - c->req->now_ms <= EXPIRING_SOON_MS && soon)
                json_array_append(soon, e);
        }
        /* Soonest first (a small list: insertion order reversed by expiry). */
        for (size_t a = 0; soon && a < json_array_size(soon); a++) {
            size_t best = a;
            for (size_t z = a + 1; z < json_array_size(soon); z++)
                if (num(json_array_get(soon, z), "expires_at") <
                    num(json_array_get(soon, best), "expires_at"))
                    best = z;
            exception_row(c, &b, json_array_get(soon, best));
            if (best != a) {
                json_t *x = json_incref(json_array_get(soon, a));
                json_array_set(soon, a, json_array_get(soon, best));
                json_array_set_new(soon, best, x);
            }
            n_soon++;
            if (n_soon >= 200)
                break;
        }
        json_decref(soon);
    }
    html_raw(&b, "</table></div>\n");
    if (!n_soon)
        html_raw(&b, "<p>None.</p>\n");

    html_raw(&b, all ? "<h2>All exceptions</h2>\n" : "<h2>In force</h2>\n");
    exceptions_table_head(&b, "exceptions");
    size_t shown = 0, i;
    long long last_id = 0;
    int more = 0;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (below && num(e, "id") >= below)
            continue;
        if ((int64_t)shown == limit) {
            more = 1;
            break;
        }
        exception_row(c, &b, e);
        last_id = num(e, "id");
        shown++;
    }
    html_raw(&b, "</table></div>\n");
    if (!shown)
        html_raw(&b, "<p>None.</p>\n");
    if (more) {
        html_raw(&b, "<p class=\"pager\"><a rel=\"next\" href=\"/console/exceptions?");
        if (all)
            html_raw(&b, "include=all&amp;");
        if (user) {
            html_raw(&b, "user=");
            console_url_value(&b, user);
            html_raw(&b, "&amp;");
        }
        html_rawf(&b, "limit=%lld&amp;cursor=%lld\">Older exceptions</a></p>\n", (long long)limit,
                  last_id);
    }
    json_decref(list);

    if (c->who.role >= API_ROLE_OPERATOR) {
        html_raw(&b, "<h2>Grant an exception</h2>\n");
        console_form_begin(c, &b, "/console/exceptions");
        html_raw(&b, "<div class=\"filters\"><div><label for=\"ex-user\">User</label><input "
                     "type=\"text\" id=\"ex-user\" name=\"user\" placeholder=\"ada@contoso.com\" "
                     "required></div><div><label>Protocols</label><span>");
        static const char *const protos[] = {"pop", "imap", "smtp", "activesync", "ews", "all"};
        for (size_t p = 0; p < sizeof protos / sizeof protos[0]; p++)
            html_rawf(&b, "<label><input type=\"checkbox\" name=\"p.%s\" value=\"1\"> %s</label> ",
                      protos[p], protos[p]);
        html_raw(&b, "</span></div><div><label for=\"ex-reason\">Reason</label><input type=\"text\" "
                     "class=\"wide\" id=\"ex-reason\" name=\"reason\" required></div><div><label "
                     "for=\"ex-expires\">Expires</label><input type=\"text\" id=\"ex-expires\" "
                     "name=\"expires\" value=\"P90D\" size=\"12\"></div><div><button "
                     "type=\"submit\">Grant</button></div></div></form>\n");
    }
    console_page_end(c, &b, 200);
}

void console_exception_add(struct console_call *c)
{
    struct as_err err = {0};
    json_t *protos = json_array(), *ex = NULL;
    for (size_t i = 0; protos && i < form_count(c->form); i++) {
        const char *name = form_name_at(c->form, i);
        if (strncmp(name, "p.", 2) == 0)
            json_array_append_new(protos, json_string(name + 2));
    }
    const char *user = console_param(c, "user"), *reason = console_param(c, "reason");
    enum as_code rc;
    if (!protos)
        rc = as_errf(&err, AS_ENOMEM, "out of memory");
    else if (!user || !reason)
        rc = as_errf(&err, AS_EINVAL, "an exception needs a user and a reason");
    else if (!json_array_size(protos))
        rc = as_errf(&err, AS_EINVAL, "protocols: choose at least one");
    else
        rc = kpi_exception_grant(c->req->app, user, protos, reason, c->who.name,
                                 console_param(c, "expires"), "console", c->req->now_ms, &ex, &err);
    json_decref(protos);
    if (rc) {
        console_message(c, rc == AS_EINVAL ? 400 : 500, "Not granted", err.msg);
        return;
    }
    LOG_INFO("console", "exception %lld for %s granted by %s", num(ex, "id"), user, c->who.name);
    json_decref(ex);
    console_redirect(c, "/console/exceptions?done=exception_added");
}

void console_exception_remove(struct console_call *c)
{
    struct as_err err = {0};
    char *end;
    errno = 0;
    long long id = strtoll(c->arg, &end, 10);
    const char *reason = console_param(c, "reason");
    if (errno || *end || id <= 0) {
        console_message(c, 404, "Not found", "There is no such exception.");
        return;
    }
    if (!reason) {
        console_message(c, 400, "Not removed", "Say why the exception is no longer needed.");
        return;
    }
    enum as_code rc = db_exception_remove(c->req->app->db, id, c->who.name, reason, c->req->now_ms,
                                          &err);
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : 500, "Not removed", err.msg);
        return;
    }
    LOG_INFO("console", "exception %lld removed by %s", id, c->who.name);
    console_redirect(c, "/console/exceptions?done=exception_removed");
}

/* ---- workflows ---- */

void console_workflows(struct console_call *c)
{
    struct as_err err = {0};
    json_t *items = NULL;
    char *next = NULL, when[48];
    int64_t limit;
    if (!console_int_param(c, "limit", CONSOLE_PAGE_DEFAULT, CONSOLE_PAGE_MAX, &limit)) {
        console_message(c, 400, "Bad request", "limit is 1 to 1000.");
        return;
    }
    const char *after = console_param(c, "after");
    if (wf_store_list(c->req->app->db, after, (int)limit, &items, &next, &err) != AS_OK) {
        console_message(c, 500, "Workflows", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Workflows", "workflows");
    html_raw(&b, "<p><a href=\"/console/workflows/validate\">Validate a workflow</a></p>\n"
                 "<div class=\"scroll\"><table class=\"workflows\"><tr><th>name</th><th>version"
                 "</th><th>hash</th><th>versions</th><th>stored</th><th>file</th></tr>\n");
    size_t i;
    json_t *w;
    json_array_foreach(items, i, w)
    {
        html_raw(&b, "<tr>");
        console_td(&b, str(w, "name"));
        console_td(&b, str(w, "version"));
        html_raw(&b, "<td><code>");
        html_rawn(&b, str(w, "hash"), strnlen(str(w, "hash"), 12));
        html_rawf(&b, "</code></td><td class=\"num\">%lld</td>", num(w, "versions"));
        console_time(num(w, "created_at"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(w, "source_path"));
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n");
    if (!json_array_size(items))
        html_raw(&b, "<p>No workflow is stored yet (a run stores its workflow).</p>\n");
    if (next) {
        html_raw(&b, "<p class=\"pager\"><a rel=\"next\" href=\"/console/workflows?after=");
        console_url_value(&b, next);
        html_rawf(&b, "&amp;limit=%lld\">More</a></p>\n", (long long)limit);
    }
    free(next);
    json_decref(items);
    console_page_end(c, &b, 200);
}

/* The text with line numbers, each line with diagnostics marked and followed by them. */
static void source_with_diags(struct html_buf *b, const char *text, const json_t *diags)
{
    html_raw(b, "<div class=\"scroll\"><table class=\"source\">\n");
    int line = 1;
    for (const char *p = text; *p && line <= SOURCE_LINES_MAX; line++) {
        size_t n = strcspn(p, "\n");
        int bad = 0;
        size_t i;
        json_t *d;
        json_array_foreach(diags, i, d) bad |= num(d, "line") == line;
        html_rawf(b, "<tr id=\"line-%d\"%s><td class=\"num\">%d</td><td><code>", line,
                  bad ? " class=\"line-bad\"" : "", line);
        char *copy = strndup(p, n);
        html_text(b, copy ? copy : "");
        free(copy);
        html_raw(b, "</code>");
        json_array_foreach(diags, i, d)
        {
            if (num(d, "line") != line)
                continue;
            html_rawf(b, "<br><strong class=\"diag\">line %d column %lld: ", line, num(d, "column"));
            html_text(b, str(d, "severity"));
            html_raw(b, " ");
            html_text(b, str(d, "code"));
            html_raw(b, ": ");
            html_text(b, str(d, "message"));
            html_raw(b, "</strong>");
        }
        html_raw(b, "</td></tr>\n");
        p += n + (p[n] == '\n');
    }
    html_raw(b, "</table></div>\n");
}

void console_workflow_validate(struct console_call *c)
{
    struct as_err err = {0};
    /* The pasted text, or the file sent with the form when one was chosen. */
    const char *text = c->form ? form_get(c->form, "workflow_file") : NULL;
    if (!text || !*text)
        text = c->form ? form_get(c->form, "workflow") : NULL;
    struct workflow *wf = NULL;
    json_t *diags = NULL;
    enum as_code rc = AS_OK;
    if (text) {
        rc = web_ops_workflow_check(text, strlen(text), WORKFLOW_ORIGIN, &wf, &diags, &err);
        if (rc && rc != AS_EINVAL) {
            console_message(c, 500, "Validate", err.msg);
            return;
        }
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "Validate a workflow", "workflows");
    html_raw(&b, "<p>Upload or paste a workflow (JSON, as a file holds it): it is checked as "
                 "<code>assent validate</code> checks a file, and stored nowhere.</p>\n");
    if (text && rc == AS_OK) {
        html_raw(&b, "<p class=\"notice\" role=\"status\">Valid: ");
        html_text(&b, wf->name);
        html_raw(&b, " version ");
        html_text(&b, wf->version);
        html_rawf(&b, ", %zu steps.</p>\n", (size_t)wf->n_steps);
    } else if (text) {
        html_rawf(&b, "<p class=\"error\" role=\"alert\">Not valid: %zu problem%s.</p>\n",
                  json_array_size(diags), json_array_size(diags) == 1 ? "" : "s");
    }
    if (text && json_array_size(diags)) {
        html_raw(&b, "<div class=\"scroll\"><table class=\"diagnostics\"><tr><th>line</th>"
                     "<th>column</th><th>severity</th><th>code</th><th>where</th><th>message</th>"
                     "</tr>\n");
        size_t i;
        json_t *d;
        json_array_foreach(diags, i, d)
        {
            html_rawf(&b, "<tr><td><a href=\"#line-%lld\">%lld</a></td><td>%lld</td>",
                      num(d, "line"), num(d, "line"), num(d, "column"));
            console_td(&b, str(d, "severity"));
            console_td(&b, str(d, "code"));
            console_td(&b, str(d, "path"));
            console_td(&b, str(d, "message"));
            html_raw(&b, "</tr>\n");
        }
        html_raw(&b, "</table></div>\n<h2>The workflow, line by line</h2>\n");
        source_with_diags(&b, text, diags);
    }
    html_raw(&b, "<form method=\"post\" action=\"/console/workflows/validate\" "
                 "enctype=\"multipart/form-data\"><input type=\"hidden\" name=\"csrf\" value=\"");
    html_text(&b, c->csrf);
    html_raw(&b, "\"><p><label for=\"workflow_file\">A file</label> <input type=\"file\" "
                 "id=\"workflow_file\" name=\"workflow_file\" accept=\".json,application/json\"> "
                 "or paste it:</p>"
                 "<p><label for=\"workflow\">Workflow</label><br><textarea id=\"workflow\" "
                 "name=\"workflow\" rows=\"20\" spellcheck=\"false\">");
    html_text(&b, text ? text : "");
    html_raw(&b, "</textarea></p><div class=\"actions\"><button type=\"submit\" id=\"validate\">Validate</button>"
                 "</div></form>\n");
    wf_free(wf);
    json_decref(diags);
    console_page_end(c, &b, 200);
}

/* ---- tokens (admin) ---- */

/* The tokens page; made (may be NULL): a token just made, shown this once. */
static void tokens_page(struct console_call *c, const char *made_name, const char *made)
{
    struct as_err err = {0};
    json_t *list = NULL;
    char when[48];
    int all = console_param(c, "include") != NULL;
    if (db_api_token_list(c->req->app->db, all, &list, &err) != AS_OK) {
        console_message(c, 500, "Tokens", err.msg);
        return;
    }
    struct html_buf b = {0};
    console_page_begin(c, &b, "API tokens", "tokens");
    if (made) {
        html_raw(&b, "<div class=\"notice\" role=\"status\"><p>The token <strong>");
        html_text(&b, made_name);
        html_raw(&b, "</strong> was made. Copy it now: it is shown this once and stored only as "
                     "its hash.</p><pre class=\"token\"><code>");
        html_text(&b, made);
        html_raw(&b, "</code></pre></div>\n");
    }
    html_rawf(&b, "<p><a href=\"/console/tokens%s\">%s</a></p>\n", all ? "" : "?include=revoked",
              all ? "Hide revoked tokens" : "Show revoked tokens too");
    html_raw(&b, "<div class=\"scroll\"><table class=\"tokens\"><tr><th>name</th><th>role</th>"
                 "<th>made</th><th>by</th><th>expires</th><th>revoked</th><th></th></tr>\n");
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        html_raw(&b, "<tr>");
        console_td(&b, str(t, "name"));
        console_td(&b, str(t, "role"));
        console_time(num(t, "created_at"), when, sizeof when);
        console_td(&b, when);
        console_td(&b, str(t, "created_by"));
        console_time(num(t, "expires_at"), when, sizeof when);
        console_td(&b, json_is_null(json_object_get(t, "expires_at")) ? "never" : when);
        if (json_is_null(json_object_get(t, "revoked_at"))) {
            console_td(&b, "-");
            html_raw(&b, "<td>");
            console_form_begin(c, &b, "/console/tokens/revoke");
            html_raw(&b, "<input type=\"hidden\" name=\"name\" value=\"");
            html_text(&b, str(t, "name"));
            html_raw(&b, "\"><button type=\"submit\" class=\"danger\">Revoke</button></form></td>");
        } else {
            console_time(num(t, "revoked_at"), when, sizeof when);
            char line[300];
            snprintf(line, sizeof line, "%s by %s", when, str(t, "revoked_by"));
            console_td(&b, line);
            console_td(&b, "");
        }
        html_raw(&b, "</tr>\n");
    }
    html_raw(&b, "</table></div>\n<h2>Make a token</h2>\n");
    console_form_begin(c, &b, "/console/tokens");
    html_raw(&b, "<div class=\"filters\"><div><label for=\"tk-name\">Name</label><input "
                 "type=\"text\" id=\"tk-name\" name=\"name\" required></div><div><label "
                 "for=\"tk-role\">Role</label><select id=\"tk-role\" name=\"role\"><option>viewer"
                 "</option><option>operator</option><option>admin</option></select></div><div>"
                 "<label for=\"tk-expires\">Expires</label><input type=\"text\" id=\"tk-expires\" "
                 "name=\"expires\" value=\"P90D\" size=\"12\"></div><div><button "
                 "type=\"submit\">Make</button></div></div></form>\n");
    json_decref(list);
    console_page_end(c, &b, 200);
}

void console_tokens(struct console_call *c)
{
    tokens_page(c, NULL, NULL);
}

void console_token_add(struct console_call *c)
{
    struct as_err err = {0};
    char token[API_TOKEN_LEN + 1];
    int64_t expires_at = 0;
    const char *name = console_param(c, "name"), *expires = console_param(c, "expires");
    enum api_role role = api_role_parse(console_param(c, "role"));
    enum as_code rc = AS_OK;
    if (!name || role == API_ROLE_NONE)
        rc = as_errf(&err, AS_EINVAL, "a token needs a name and a role");
    else if (expires && time_parse_expiry(expires, c->req->now_ms, &expires_at, &err) != AS_OK)
        rc = AS_EINVAL;
    if (!rc)
        rc = api_token_create(c->req->app->db, name, role, expires_at, c->who.name, c->req->now_ms,
                              token, sizeof token, NULL, &err);
    if (rc) {
        console_message(c, rc == AS_EINVAL ? 400 : rc == AS_ECONFLICT ? 409 : 500, "Not made",
                        err.msg);
        return;
    }
    LOG_INFO("console", "token %s (%s) created by %s", name, api_role_name(role), c->who.name);
    /* Shown in the answer to this POST only (no-store); never in a URL. */
    tokens_page(c, name, token);
    memset(token, 0, sizeof token);
}

void console_token_revoke(struct console_call *c)
{
    struct as_err err = {0};
    const char *name = console_param(c, "name");
    enum as_code rc = name ? db_api_token_revoke(c->req->app->db, name, c->who.name,
                                                 c->req->now_ms, NULL, &err)
                           : as_errf(&err, AS_EINVAL, "which token?");
    if (rc) {
        console_message(c, rc == AS_ENOTFOUND ? 404 : 400, "Not revoked", err.msg);
        return;
    }
    LOG_INFO("console", "token %s revoked by %s", name, c->who.name);
    console_redirect(c, "/console/tokens?done=token_revoked");
}
