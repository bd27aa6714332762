/*
 * step_email.c - the `email` step: render a subject, a text and/or an HTML
 * body from ${...} templates and send them with mail_send() (steps/mail.h).
 *
 * Templates.  The executor resolves ${...} in every parameter before a
 * step runs, which for HTML would splice values in unescaped.  So this step
 * renders subject, text and html itself from the templates as written in
 * the workflow version the run started with (db_mail_step_source): the
 * subject and text with values as they are, the HTML with & < > " '
 * escaped in substituted values (TMPL_HTML), so a display name cannot
 * inject markup.  Addresses (to, cc, from, reply_to) are taken as the
 * executor resolved them, so "${input.approvers}" can be a whole array.
 * text_file / html_file name template files next to the workflow file
 * (relative, no "..", no ${...}: a run's input must never choose which
 * file gets mailed).
 *
 * Idempotency.  The step's idempotency key is the mail's key: every
 * attempt and every re-claim after a crash sends the same Message-ID, and
 * a send that is already recorded as sent is not repeated.
 *
 * Outcome: mail_send's result is the output.  Connection problems and 4xx
 * answers retry; a 5xx for the message, or every recipient refused, fails
 * the step with the server's reply.  Some recipients refused is success,
 * with their status in output.recipients.  A dry run renders and records
 * the message (output and an email.dry_run event) and sends nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db/db_mail.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/expr.h"
#include "steps/mail.h"
#include "steps/mail_mime.h"
#include "engine/step.h"

#define MAX_TEMPLATE_FILE (1024 * 1024)
#define MAX_RECORDED_BODY (64 * 1024)
#define MAX_ADDRS 500

static const struct step_param params[] = {
    {"to", SP_ANY, 1, "recipient address or array of addresses (\"Name <a@b>\" or \"a@b\")"},
    {"cc", SP_ANY, 0, "copy recipients: an address or an array of addresses"},
    {"subject", SP_STRING, 1, "subject template (values inserted as they are)"},
    {"text", SP_STRING, 0, "plain-text body template"},
    {"html", SP_STRING, 0, "HTML body template (inserted values are HTML-escaped)"},
    {"text_file", SP_STRING, 0, "file next to the workflow holding the text template"},
    {"html_file", SP_STRING, 0, "file next to the workflow holding the HTML template"},
    {"from", SP_STRING, 0, "sender address (default: configuration mail_from)"},
    {"reply_to", SP_STRING, 0, "Reply-To address"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static int has_template(const char *s)
{
    return s && strstr(s, "${") != NULL;
}

/* A template file name must stay inside the workflow's directory. */
static const char *bad_file_name(const char *name)
{
    if (!*name)
        return "is empty";
    if (has_template(name))
        return "must be a literal file name, not a ${...} template";
    if (name[0] == '/')
        return "must be relative to the workflow file";
    for (const char *p = name; *p; p++) {
        if ((p == name || p[-1] == '/') && p[0] == '.' && p[1] == '.' &&
            (p[2] == '/' || p[2] == '\0'))
            return "must not contain \"..\"";
        if ((unsigned char)*p < 0x20)
            return "contains a control character";
    }
    return NULL;
}

static void check_address_value(const json_t *v, const char *path, int required,
                                struct diag_list *out)
{
    if (!v) {
        if (required)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "an address is required");
        return;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        struct mail_addr a;
        struct as_err err = {0};
        if (tmpl_is_whole(s) || has_template(s))
            return;
        if (mail_addr_parse(s, &a, &err) != AS_OK)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "%s", err.msg);
        mail_addr_clear(&a);
        return;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        char ip[600];
        if (json_array_size(v) == 0 && required)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "at least one address is required");
        json_array_foreach(v, i, item)
        {
            snprintf(ip, sizeof ip, "%s[%zu]", path, i);
            if (!json_is_string(item))
                diag_add(out, DIAG_ERROR, "BAD_VALUE", ip, "an address must be a string");
            else
                check_address_value(item, ip, 0, out);
        }
        return;
    }
    diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "must be an address or an array of addresses");
}

static void validate(const json_t *p, const char *params_path, struct diag_list *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s.to", params_path);
    check_address_value(json_object_get(p, "to"), path, 1, out);
    snprintf(path, sizeof path, "%s.cc", params_path);
    check_address_value(json_object_get(p, "cc"), path, 0, out);
    static const char *const single[] = {"from", "reply_to"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(p, single[i]);
        snprintf(path, sizeof path, "%s.%s", params_path, single[i]);
        if (json_is_string(v))
            check_address_value(v, path, 0, out);
    }
    static const char *const files[] = {"text_file", "html_file"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(p, files[i]);
        const char *why;
        snprintf(path, sizeof path, "%s.%s", params_path, files[i]);
        if (json_is_string(v) && (why = bad_file_name(json_string_value(v))))
            diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "%s %s", files[i], why);
    }
    int has_text = json_object_get(p, "text") != NULL, has_html = json_object_get(p, "html") != NULL;
    int has_tf = json_object_get(p, "text_file") != NULL, has_hf = json_object_get(p, "html_file") != NULL;
    if (!has_text && !has_html && !has_tf && !has_hf)
        diag_add(out, DIAG_ERROR, "BAD_VALUE", params_path,
                 "an email needs a body: text, html, text_file or html_file");
    if (has_text && has_tf) {
        snprintf(path, sizeof path, "%s.text_file", params_path);
        diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "give text or text_file, not both");
    }
    if (has_html && has_hf) {
        snprintf(path, sizeof path, "%s.html_file", params_path);
        diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "give html or html_file, not both");
    }
}

/* ---- execution ----------------------------------------------------------- */

/* Addresses of an executor-resolved to/cc value into list (borrowed strings). */
static int collect_addresses(const json_t *v, const char **list, size_t max, size_t *n,
                             char *why, size_t why_size)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        if (*n >= max) {
            snprintf(why, why_size, "more than %zu addresses", max);
            return -1;
        }
        list[(*n)++] = json_string_value(v);
        return 0;
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                snprintf(why, why_size, "an address is not a string (item %zu)", i);
                return -1;
            }
            if (collect_addresses(item, list, max, n, why, why_size) != 0)
                return -1;
        }
        return 0;
    }
    snprintf(why, why_size, "must be an address or an array of addresses");
    return -1;
}

/* Read a template file named relative to the workflow file's directory. */
static enum as_code read_template_file(const char *source_path, const char *name, char **out,
                                       struct as_err *err)
{
    const char *why = bad_file_name(name);
    *out = NULL;
    if (why)
        return as_errf(err, AS_EINVAL, "template file \"%s\" %s", name, why);
    if (!source_path)
        return as_errf(err, AS_EINVAL,
                       "template file \"%s\": the run's workflow was not loaded from a file",
                       name);
    char path[PATH_MAX];
    const char *slash = strrchr(source_path, '/');
    int n = slash ? snprintf(path, sizeof path, "%.*s/%s", (int)(slash - source_path),
                             source_path, name)
                  : snprintf(path, sizeof path, "%s", name);
    if (n < 0 || (size_t)n >= sizeof path)
        return as_errf(err, AS_EINVAL, "template file path too long");
    FILE *f = fopen(path, "rb");
    if (!f)
        return as_errf(err, AS_EIO, "template file %s: %s", path, strerror(errno));
    struct stat st;
    enum as_code rc = AS_OK;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = as_errf(err, AS_EINVAL, "template file %s is not a regular file", path);
        goto out;
    }
    if (st.st_size > MAX_TEMPLATE_FILE) {
        rc = as_errf(err, AS_ELIMIT, "template file %s is larger than %d bytes", path,
                     MAX_TEMPLATE_FILE);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t got = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f) || got != (size_t)st.st_size) {
        rc = as_errf(err, AS_EIO, "template file %s: read error", path);
        goto out;
    }
    buf[got] = '\0';
    if (memchr(buf, '\0', got) || !mail_mime_utf8_valid(buf, got)) {
        rc = as_errf(err, AS_EINVAL, "template file %s is not UTF-8 text", path);
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Render raw[name] (a template string) or the file raw[name_file]; *out NULL when neither. */
static enum as_code render_part(const json_t *raw, const char *name, const char *file_param,
                                const char *source_path, const json_t *scope,
                                enum tmpl_escape esc, char **out, struct as_err *err)
{
    const json_t *v = json_object_get(raw, name);
    const json_t *f = file_param ? json_object_get(raw, file_param) : NULL;
    char *tmpl = NULL;
    enum as_code rc;
    *out = NULL;
    if (v && !json_is_string(v))
        return as_errf(err, AS_EINVAL, "%s must be a string", name);
    if (f && !json_is_string(f))
        return as_errf(err, AS_EINVAL, "%s must be a string", file_param);
    if (!v && !f)
        return AS_OK;
    if (f) {
        if ((rc = read_template_file(source_path, json_string_value(f), &tmpl, err)))
            return rc;
    }
    rc = tmpl_render(v ? json_string_value(v) : tmpl, scope, esc, out, err);
    if (rc)
        as_err_prefix(err, "%s", f && !v ? file_param : name);
    free(tmpl);
    return rc;
}

static json_t *capped(const char *s)
{
    if (!s)
        return json_null();
    size_t n = strlen(s);
    if (n <= MAX_RECORDED_BODY)
        return json_string(s);
    /* Cut on a character boundary and say so. */
    static const char mark[] = "\n[... truncated]";
    while (n > MAX_RECORDED_BODY || ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    char *buf = malloc(n + sizeof mark);
    if (!buf)
        return NULL;
    memcpy(buf, s, n);
    memcpy(buf + n, mark, sizeof mark);
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

static json_t *address_array(const char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; a && list && list[i]; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    json_t *raw = NULL, *scope = NULL, *result = NULL;
    char *source_path = NULL, *subject = NULL, *text = NULL, *html = NULL;
    char *message_id = NULL, *message = NULL;
    const char *to[MAX_ADDRS + 1], *cc[MAX_ADDRS + 1];
    size_t n_to = 0, n_cc = 0;
    char why[200];
    enum as_code rc;

    rc = db_mail_step_source(ctx->app->db, ctx->run_id, ctx->step_name, &raw, &source_path, &err);
    if (rc == AS_EDB || rc == AS_ENOMEM) {
        step_retry(res, 0, "reading the step's templates: %s", err.msg);
        goto out;
    } else if (rc) {
        step_fail(res, "reading the step's templates: %s", err.msg);
        goto out;
    }
    if (collect_addresses(json_object_get(ctx->params, "to"), to, MAX_ADDRS, &n_to, why,
                          sizeof why) != 0) {
        step_fail(res, "to: %s", why);
        goto out;
    }
    if (collect_addresses(json_object_get(ctx->params, "cc"), cc, MAX_ADDRS, &n_cc, why,
                          sizeof why) != 0) {
        step_fail(res, "cc: %s", why);
        goto out;
    }
    to[n_to] = NULL;
    cc[n_cc] = NULL;
    if (n_to == 0) {
        step_fail(res, "to: no recipient (the value resolved to nothing)");
        goto out;
    }
    const json_t *from = json_object_get(ctx->params, "from");
    const json_t *reply_to = json_object_get(ctx->params, "reply_to");
    if ((from && !json_is_string(from)) || (reply_to && !json_is_string(reply_to))) {
        step_fail(res, "from and reply_to must be single addresses");
        goto out;
    }

    scope = json_pack("{s:O, s:O}", "input", ctx->input ? ctx->input : json_null(), "steps",
                      ctx->steps ? ctx->steps : json_null());
    if (!scope) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if ((rc = render_part(raw, "subject", NULL, source_path, scope, TMPL_RAW, &subject, &err)) ||
        (rc = render_part(raw, "text", "text_file", source_path, scope, TMPL_RAW, &text, &err)) ||
        (rc = render_part(raw, "html", "html_file", source_path, scope, TMPL_HTML, &html, &err))) {
        if (rc == AS_ENOMEM)
            step_retry(res, 0, "%s", err.msg);
        else
            step_fail(res, "%s", err.msg);
        goto out;
    }
    if (!subject) {
        step_fail(res, "subject is required");
        goto out;
    }
    if (!text && !html) {
        step_fail(res, "an email needs a body: text, html, text_file or html_file");
        goto out;
    }

    struct mail_msg msg = {
        .from = from ? json_string_value(from) : NULL,
        .to = to,
        .cc = n_cc ? cc : NULL,
        .subject = subject,
        .text = text,
        .html = html,
        .idempotency_key = ctx->idempotency_key,
        .reply_to = reply_to ? json_string_value(reply_to) : NULL,
    };

    if (ctx->dry_run) {
        rc = mail_render(ctx->app, &msg, &message_id, &message, &err);
        if (rc) {
            step_fail(res, "%s", err.msg);
            goto out;
        }
        json_t *rec = json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o}", "message_id", message_id,
                                "transport", config_str(ctx->app->cfg, "mail_transport"), "to",
                                address_array(to), "cc", address_array(n_cc ? cc : NULL),
                                "subject", subject, "text", capped(text), "html", capped(html));
        if (!rec) {
            step_retry(res, 0, "out of memory");
            goto out;
        }
        step_event(ctx, "email.dry_run", json_incref(rec));
        json_object_set_new(rec, "dry_run", json_true());
        step_ok(res, NULL, rec);
        goto out;
    }

    rc = mail_send(ctx->app, &msg, &result, &err);
    switch (rc) {
    case AS_OK:
        step_ok(res, NULL, result);
        result = NULL;
        break;
    case AS_ETRANSIENT:
    case AS_EDB:
    case AS_EIO:
    case AS_ENOMEM:
    case AS_ETIMEOUT:
        step_retry(res, 0, "%s", err.msg);
        break;
    default:
        step_fail(res, "%s", err.msg);
        break;
    }
out:
    json_decref(result);
    json_decref(raw);
    json_decref(scope);
    free(source_path);
    free(subject);
    free(text);
    free(html);
    free(message_id);
    free(message);
}

const struct step_type step_type_email = {
    .name = "email",
    .doc = "Send an email (text and/or HTML from ${...} templates; SMTP, Graph or .eml files "
           "as configured). Output: message_id, transport, recipients [{address, status, code, "
           "reply}], deduplicated.",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
