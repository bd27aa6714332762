/* approval_render.c - what an approver is shown, for the page and the emails (see approval_render.h). */
#include "approvals/approval_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/timeutil.h"
#include "m365/m365.h"

void approval_format_time(long long ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(buf, size, "%lld", ms);
}

int approval_format_timestamp(const char *s, char *buf, size_t size)
{
    /* YYYY-MM-DDThh:mm:ss, an optional fraction, then Z or +hh:mm / -hh:mm. */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t n = strlen(s), i;
    if (n < sizeof shape || n > 40)
        return 0;
    for (i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return 0;
    if (s[i] == '.') {
        size_t f = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    if (!(s[i] == 'Z' && s[i + 1] == '\0') && !((s[i] == '+' || s[i] == '-') && n - i == 6))
        return 0;
    int64_t ms;
    if (time_parse_iso(s, &ms) != AS_OK)
        return 0;
    approval_format_time(ms, buf, size);
    return 1;
}

/* ---- rendering helpers -------------------------------------------------------- */

static void render_value(struct html_buf *b, const json_t *v);

/* A string, a tenant timestamp shown as a person reads it. */
static void render_string(struct html_buf *b, const char *s)
{
    char when[48];
    html_text(b, approval_format_timestamp(s, when, sizeof when) ? when : s);
}

static void render_scalar(struct html_buf *b, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: render_string(b, json_string_value(v)); break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        html_raw(b, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof num, "%g", json_real_value(v));
        html_raw(b, num);
        break;
    case JSON_TRUE: html_raw(b, "yes"); break;
    case JSON_FALSE: html_raw(b, "no"); break;
    case JSON_NULL: html_raw(b, "&mdash;"); break;
    default: break;
    }
}

static void render_table(struct html_buf *b, const json_t *obj, int depth)
{
    html_raw(b, "<table>\n");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        html_raw(b, "<tr><th scope=\"row\">");
        html_text(b, key);
        html_raw(b, "</th><td>");
        if (json_is_object(v) && depth < 4)
            render_table(b, v, depth + 1);
        else
            render_value(b, v);
        html_raw(b, "</td></tr>\n");
    }
    html_raw(b, "</table>\n");
}

static void render_value(struct html_buf *b, const json_t *v)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e)
        {
            if (i)
                html_raw(b, ", ");
            render_value(b, e);
        }
        if (json_array_size(v) == 0)
            html_raw(b, "&mdash;");
    } else if (json_is_object(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        html_text(b, text ? text : "");
        free(text);
    } else {
        render_scalar(b, v);
    }
}

static int protocol_used(const json_t *used, const char *name)
{
    if (json_is_object(used)) {
        const json_t *v = json_object_get(used, name);
        return v && json_is_true(v);
    }
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)used, i, e)
    {
        if (json_is_string(e) && strcasecmp(json_string_value(e), name) == 0)
            return 1;
    }
    return 0;
}

void approval_render_details(struct html_buf *b, const json_t *details)
{
    if (!json_is_object(details) || json_object_size(details) == 0)
        return;
    const json_t *protocols = json_object_get(details, "protocols");
    const json_t *used = json_object_get(details, "used_last_30_days");
    html_raw(b, "<table>\n");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)details, key, v)
    {
        if (strcmp(key, "used_last_30_days") == 0 && json_is_array(protocols))
            continue; /* shown on the protocols row */
        html_raw(b, "<tr><th scope=\"row\">");
        html_text(b, key);
        html_raw(b, "</th><td>");
        if (strcmp(key, "protocols") == 0 && json_is_array(v)) {
            size_t i;
            json_t *p;
            json_array_foreach(v, i, p)
            {
                const char *name = json_is_string(p) ? json_string_value(p) : "";
                if (used && protocol_used(used, name)) {
                    html_raw(b, "<span class=\"chip used\">");
                    html_text(b, name);
                    html_raw(b, " &ndash; used in the last 30 days</span>");
                } else {
                    html_raw(b, "<span class=\"chip\">");
                    html_text(b, name);
                    html_raw(b, "</span>");
                }
            }
            if (json_array_size(v) == 0)
                html_raw(b, "&mdash;");
        } else if (json_is_object(v)) {
            render_table(b, v, 1);
        } else {
            render_value(b, v);
        }
        html_raw(b, "</td></tr>\n");
    }
    html_raw(b, "</table>\n");
}

/* A setting's value as PowerShell and Exchange show it: $true, $false,
 * $null, numbers, text. */
static void render_setting(struct html_buf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_TRUE: html_raw(b, "$true"); break;
    case JSON_FALSE: html_raw(b, "$false"); break;
    case JSON_NULL: html_raw(b, "$null"); break;
    case JSON_STRING: render_string(b, json_string_value(v)); break;
    case JSON_INTEGER: case JSON_REAL: render_scalar(b, v); break;
    default: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        html_text(b, text ? text : "");
        free(text);
    }
    }
}

void approval_render_change(struct html_buf *b, const json_t *view)
{
    const json_t *request = json_object_get(view, "request");
    const json_t *settings = json_object_get(request, "settings");
    if (!json_is_object(settings) || json_object_size(settings) == 0)
        return;
    const json_t *current = json_object_get(view, "current");
    const char *identity = json_string_value(json_object_get(request, "identity"));
    const char *cmdlet = json_string_value(json_object_get(view, "cmdlet"));
    if (!cmdlet || !*cmdlet) /* approvals stored before the step named one */
        cmdlet = identity && *identity ? "Set-CASMailbox" : "Set-TransportConfig";

    html_raw(b, "<table class=\"change\">\n<tr><th scope=\"col\">Setting</th>"
                "<th scope=\"col\">Current</th><th scope=\"col\">New</th></tr>\n");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)settings, key, v)
    {
        const json_t *now = json_is_object(current) ? json_object_get(current, key) : NULL;
        html_raw(b, "<tr><th scope=\"row\">");
        html_text(b, key);
        html_raw(b, "</th><td>");
        if (now)
            render_setting(b, now);
        else
            html_raw(b, "unknown");
        html_raw(b, "</td><td>");
        render_setting(b, v);
        html_raw(b, "</td></tr>\n");
    }
    html_raw(b, "</table>\n");

    json_t *parameters = json_deep_copy(settings);
    if (parameters && identity && *identity)
        json_object_set_new(parameters, "Identity", json_string(identity));
    char *command = parameters ? m365_powershell_command(cmdlet, parameters) : NULL;
    json_decref(parameters);
    if (!command) {
        b->failed = 1;
        return;
    }
    html_raw(b, "<p>The exact command:</p>\n<pre class=\"command\"><code>");
    html_text(b, command);
    html_raw(b, "</code></pre>\n");
    free(command);
}

/* A part's size for the budget: one that failed counts as the largest. */
static size_t part_size(const struct approval_part *p)
{
    return p->b.failed ? (size_t)HTML_BUF_MAX + 1 : p->b.len;
}

int approval_fit_parts(struct approval_part *parts, size_t n, size_t budget,
                       long long approval_id)
{
    int dropped = 0;
    for (;;) {
        size_t total = 0, largest = n;
        for (size_t i = 0; i < n; i++) {
            if (parts[i].dropped)
                continue;
            total += part_size(&parts[i]);
            if (largest == n || part_size(&parts[i]) > part_size(&parts[largest]))
                largest = i;
        }
        if (total <= budget || largest == n)
            return dropped;
        struct approval_part *p = &parts[largest];
        if (p->b.failed)
            LOG_WARN("approval", "approval %lld: %s not shown: over %d bytes rendered; a notice "
                     "with the request's fingerprint stands in", approval_id, p->name, HTML_BUF_MAX);
        else
            LOG_WARN("approval", "approval %lld: %s not shown: %zu bytes rendered, past what a "
                     "page or email shows (%zu bytes in all); a notice with the request's "
                     "fingerprint stands in", approval_id, p->name, p->b.len, budget);
        html_buf_free(&p->b);
        p->dropped = 1;
        dropped++;
    }
}

void approval_render_too_large(struct html_buf *b, const char *name, const char *request_hash,
                               int html)
{
    int plural = strcmp(name, "details") == 0;
    const char *is = plural ? "are" : "is", *it = plural ? "They are" : "It is";
    static const char how[] =
        ". Ask whoever started the workflow for it, or an operator can read it with "
        "`assent show RUN --verbose`.";
    if (!html) {
        html_rawf(b, "The %s %s too large to show here. %s part of the request whose "
                     "fingerprint (SHA-256) is %s%s\n", name, is, it, request_hash, how);
        return;
    }
    html_raw(b, "<p class=\"status bad\">The ");
    html_text(b, name);
    html_rawf(b, " %s too large to show here. %s part of the request whose fingerprint (SHA-256) "
                 "is <code>", is, it);
    html_text(b, request_hash);
    html_raw(b, "</code>");
    html_text(b, how);
    html_raw(b, "</p>\n");
}
