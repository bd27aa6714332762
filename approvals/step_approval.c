/*
 * step_approval.c - the `approval` step: ask people by email, wait durably,
 * continue with outcome approved, rejected or expired.
 *
 * Each execution reconciles the database with the step's goal and then
 * waits again; it never holds a thread while people think:
 *
 *   1. find or create the approval of this step execution (keyed by the
 *      step's idempotency key), freezing the request by its SHA-256;
 *   2. decided -> outcome approved / rejected;  expired (or past expiry)
 *      -> mark expired, email escalate_to, outcome expired;
 *   3. every approver who should have a link and has not been mailed (all
 *      of them at first; under `sequential` the current one) gets a new
 *      token and an email (idempotency key <step key>/<address>), then is
 *      marked sent, so a re-run after a crash mails nobody twice;
 *   4. at a reminder time, pending approvers get a reminder with a fresh
 *      link (key <step key>/<address>/reminder-<n>);
 *   5. wait until the next reminder or the expiry.
 * Decisions arrive through the web page or `assent decide`
 * (approvals/approval_decide.h), which wake the step with db_exec_resume().
 *
 * Output: {"decision", "decided_by", "comment", "decided_at",
 * "request_hash", "approval_id", "approvers": [{"email", "status",
 * "decided_at", "comment"}]}.  request_hash = SHA-256 hex of
 * json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS): a later step (e.g.
 * manage_cas's approved_hash) checks what it executes against it.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/db_approvals.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "base/config.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "steps/mail.h"
#include "engine/step.h"
#include "approvals/approval_render.h"
#include "approvals/approval_teams.h"
#include "approvals/approvals.h"
#include "base/html.h"
#include "approvals/token.h"

#define MAX_APPROVERS 50
#define MIN_REMINDER_MS 1000LL
#define MAX_EXPIRY_MS (366LL * 86400 * 1000)

static const struct step_param params[] = {
    {"approvers", SP_STRING_ARRAY, 1, "email addresses of the people asked (at most 50, distinct)"},
    {"policy", SP_STRING, 0, "any (first answer decides, default) | all | sequential"},
    {"subject", SP_STRING, 1, "what is asked, one line (templated)"},
    {"message", SP_STRING, 0, "what is asked, in full (templated)"},
    {"details", SP_OBJECT, 0, "shown as a table, e.g. user, protocols, used_last_30_days"},
    {"request", SP_OBJECT, 0, "the exact change being approved; frozen by its SHA-256 (default: subject and details)"},
    {"requested_by", SP_STRING, 0, "who asks (default: the workflow and run)"},
    {"expiry", SP_DURATION, 0, "how long the links stay valid (default: config default_wait)"},
    {"reminder_every", SP_DURATION, 0, "remind pending approvers this often until expiry"},
    {"escalate_to", SP_ANY, 0, "address or array of addresses emailed when the approval expires"},
    {"require_comment_on_reject", SP_BOOL, 0, "a rejection must carry a comment (default false)"},
    {"current", SP_OBJECT, 0, "the values now of the settings in request.settings, shown as current -> new (not part of the hash)"},
    {"require_sign_in", SP_BOOL, 0, "the link shows the decision form only to its approver signed in with Entra ID (config sign_in: entra; default: config approval_require_sign_in)"},
    {"cmdlet", SP_STRING, 0, "the cmdlet of the PowerShell line shown for request.settings (default: Set-CASMailbox with request.identity, else Set-TransportConfig; not part of the hash)"},
    {"teams", SP_BOOL, 0, "also post each approver's request to the Teams channel of config teams_webhook_url_file: a card whose one button opens the approval page (default false)"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"approved", "rejected", "expired", NULL};

/* ---- parameters --------------------------------------------------------------- */

struct approval_spec {
    const json_t *approvers; /* borrowed from params */
    const char *policy;
    const char *subject;
    const char *message;
    const json_t *details;
    json_t *request;         /* owned */
    char *request_json;      /* owned, canonical */
    char request_hash[TOKEN_HASH_LEN + 1];
    char requested_by[300];
    int64_t expiry_ms;
    int64_t reminder_every_ms;
    json_t *escalate_to;     /* owned array */
    int require_comment;
    int require_sign_in;
    const json_t *current;   /* borrowed from params; NULL when not given */
    const char *cmdlet;      /* borrowed or static; NULL when none */
};

static void spec_free(struct approval_spec *s)
{
    json_decref(s->request);
    free(s->request_json);
    json_decref(s->escalate_to);
}

/* A plausible single address: local@domain, no spaces, controls or brackets. */
static int address_ok(const char *a)
{
    size_t n = strlen(a);
    const char *at = strchr(a, '@');
    if (n < 3 || n > 254 || !at || at == a || !at[1] || strchr(at + 1, '@'))
        return 0;
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p <= ' ' || strchr("<>()[],;:\"\\", *p))
            return 0;
    return 1;
}

static int check_addresses(const json_t *list, const char *what, int unique, struct as_err *err)
{
    if (!json_is_array(list))
        return as_errf(err, AS_EINVAL, "%s must be an array of email addresses", what), -1;
    size_t i, j;
    json_t *a;
    json_array_foreach((json_t *)list, i, a)
    {
        if (!json_is_string(a) || !address_ok(json_string_value(a)))
            return as_errf(err, AS_EINVAL, "%s[%zu] is not an email address", what, i), -1;
        for (j = 0; unique && j < i; j++)
            if (strcasecmp(json_string_value(json_array_get(list, j)), json_string_value(a)) == 0)
                return as_errf(err, AS_EINVAL, "%s lists %s twice", what, json_string_value(a)), -1;
    }
    return 0;
}

/* A PowerShell cmdlet name, Verb-Noun: letters, one hyphen, then letters
 * and digits (it is printed into a command line as it is). */
static int cmdlet_ok(const char *c)
{
    size_t n = strlen(c), i = 0;
    if (n < 3 || n > 64)
        return 0;
    while (i < n && ((c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= 'a' && c[i] <= 'z')))
        i++;
    if (i == 0 || i >= n - 1 || c[i] != '-')
        return 0;
    for (i++; i < n; i++)
        if (!((c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= 'a' && c[i] <= 'z') ||
              (c[i] >= '0' && c[i] <= '9')))
            return 0;
    return 1;
}

/* An optional parameter: absent and JSON null (e.g. a template that
 * resolved to null) are the same. */
static const json_t *opt(const json_t *p, const char *name)
{
    const json_t *v = json_object_get(p, name);
    return json_is_null(v) ? NULL : v;
}

static int parse_spec(struct step_ctx *ctx, struct approval_spec *s, struct as_err *err)
{
    const json_t *p = ctx->params;
    memset(s, 0, sizeof *s);
    s->approvers = json_object_get(p, "approvers");
    if (check_addresses(s->approvers, "approvers", 1, err))
        return -1;
    if (json_array_size(s->approvers) == 0 || json_array_size(s->approvers) > MAX_APPROVERS)
        return as_errf(err, AS_EINVAL, "approvers must list 1 to %d addresses", MAX_APPROVERS), -1;

    const json_t *v = opt(p, "policy");
    s->policy = v ? json_string_value(v) : "any";
    if (!s->policy || (strcmp(s->policy, "any") && strcmp(s->policy, "all") &&
                       strcmp(s->policy, "sequential")))
        return as_errf(err, AS_EINVAL, "policy must be any, all or sequential"), -1;

    s->subject = json_string_value(json_object_get(p, "subject"));
    if (!s->subject || !*s->subject || strpbrk(s->subject, "\r\n"))
        return as_errf(err, AS_EINVAL, "subject must be a non-empty single line"), -1;
    v = opt(p, "message");
    s->message = v ? json_string_value(v) : "";
    if (!s->message)
        return as_errf(err, AS_EINVAL, "message must be a string"), -1;
    s->details = opt(p, "details");
    if (s->details && !json_is_object(s->details))
        return as_errf(err, AS_EINVAL, "details must be an object"), -1;

    v = opt(p, "request");
    if (v && !json_is_object(v))
        return as_errf(err, AS_EINVAL, "request must be an object"), -1;
    if (v)
        s->request = json_incref((json_t *)v);
    else if (s->details)
        s->request = json_pack("{s:s, s:O}", "subject", s->subject, "details", s->details);
    else
        s->request = json_pack("{s:s, s:{}}", "subject", s->subject, "details");
    if (!s->request)
        return as_errf(err, AS_ENOMEM, "out of memory"), -1;
    if (token_request_hash(s->request, s->request_hash, &s->request_json, err) != AS_OK)
        return -1;

    v = opt(p, "requested_by");
    if (v && json_is_string(v))
        snprintf(s->requested_by, sizeof s->requested_by, "%s", json_string_value(v));
    else
        snprintf(s->requested_by, sizeof s->requested_by, "workflow %s, run %lld",
                 ctx->workflow ? ctx->workflow : "?", (long long)ctx->run_id);

    v = opt(p, "expiry");
    const char *expiry = v ? json_string_value(v) : config_str(ctx->app->cfg, "default_wait");
    if (!expiry || time_parse_duration(expiry, &s->expiry_ms, err) != AS_OK)
        return as_err_prefix(err, "expiry"), -1;
    if (s->expiry_ms <= 0 || s->expiry_ms > MAX_EXPIRY_MS)
        return as_errf(err, AS_EINVAL, "expiry must be between 1 ms and 366 days"), -1;

    v = opt(p, "reminder_every");
    if (v) {
        if (!json_is_string(v) ||
            time_parse_duration(json_string_value(v), &s->reminder_every_ms, err) != AS_OK)
            return as_err_prefix(err, "reminder_every"), -1;
        if (s->reminder_every_ms < MIN_REMINDER_MS)
            return as_errf(err, AS_EINVAL, "reminder_every must be at least 1s"), -1;
    }

    v = opt(p, "escalate_to");
    if (json_is_string(v))
        s->escalate_to = json_pack("[O]", v);
    else if (v)
        s->escalate_to = json_incref((json_t *)v);
    else
        s->escalate_to = json_array();
    if (!s->escalate_to || check_addresses(s->escalate_to, "escalate_to", 0, err))
        return s->escalate_to ? -1 : (as_errf(err, AS_ENOMEM, "out of memory"), -1);

    v = opt(p, "require_comment_on_reject");
    if (v && !json_is_boolean(v))
        return as_errf(err, AS_EINVAL, "require_comment_on_reject must be true or false"), -1;
    s->require_comment = json_is_true(v);

    v = opt(p, "require_sign_in");
    if (v && !json_is_boolean(v))
        return as_errf(err, AS_EINVAL, "require_sign_in must be true or false"), -1;
    s->require_sign_in = v ? json_is_true(v) : config_bool(ctx->app->cfg, "approval_require_sign_in");
    if (s->require_sign_in && strcmp(config_str(ctx->app->cfg, "sign_in"), "entra") != 0)
        return as_errf(err, AS_EINVAL, "require_sign_in needs config sign_in: entra (approvers "
                                       "sign in with Entra ID); see docs/approvals.md"), -1;

    /* What the page shows beside the request; neither enters the hash. */
    s->current = opt(p, "current");
    if (s->current && !json_is_object(s->current))
        return as_errf(err, AS_EINVAL, "current must be an object: the values now of the "
                                       "settings in request.settings"), -1;
    v = opt(p, "cmdlet");
    if (v) {
        s->cmdlet = json_string_value(v);
        if (!s->cmdlet || !cmdlet_ok(s->cmdlet))
            return as_errf(err, AS_EINVAL, "cmdlet must be a cmdlet name such as Set-CASMailbox"), -1;
    } else if (json_is_object(json_object_get(s->request, "settings"))) {
        const char *identity = json_string_value(json_object_get(s->request, "identity"));
        s->cmdlet = identity && *identity ? "Set-CASMailbox" : "Set-TransportConfig";
    }
    return 0;
}

/* The step's name out of the path of its params, "$.steps.NAME.params"
 * (step names are identifiers, so never quoted), else the path. */
static void step_name_of(const char *path, char *out, size_t size)
{
    static const char head[] = "$.steps.", tail[] = ".params";
    size_t n = strlen(path);
    if (strncmp(path, head, sizeof head - 1) == 0 && n > sizeof head - 1 + sizeof tail - 1 &&
        strcmp(path + n - (sizeof tail - 1), tail) == 0)
        snprintf(out, size, "%.*s", (int)(n - (sizeof head - 1) - (sizeof tail - 1)),
                 path + sizeof head - 1);
    else
        snprintf(out, size, "%s", path);
}

static void validate(const json_t *p, const char *path, struct diag_list *out)
{
    char where[700];
    struct as_err err = {0};
    const json_t *v = json_object_get(p, "policy");
    if (json_is_string(v) && !strstr(json_string_value(v), "${") &&
        strcmp(json_string_value(v), "any") && strcmp(json_string_value(v), "all") &&
        strcmp(json_string_value(v), "sequential")) {
        snprintf(where, sizeof where, "%s.policy", path);
        diag_add(out, DIAG_ERROR, "BAD_VALUE", where, "policy must be any, all or sequential");
    }
    v = json_object_get(p, "approvers");
    if (json_is_array(v)) {
        snprintf(where, sizeof where, "%s.approvers", path);
        size_t i;
        json_t *a;
        int templated = 0;
        json_array_foreach(v, i, a) templated |= json_is_string(a) && strstr(json_string_value(a), "${");
        if (json_array_size(v) == 0)
            diag_add(out, DIAG_ERROR, "BAD_VALUE", where, "approvers must not be empty");
        else if (!templated && check_addresses(v, "approvers", 1, &err))
            diag_add(out, DIAG_ERROR, "BAD_VALUE", where, "%s", err.msg);
    }
    static const char *const durations[] = {"expiry", "reminder_every", NULL};
    for (int i = 0; durations[i]; i++) {
        v = json_object_get(p, durations[i]);
        int64_t ms;
        if (json_is_string(v) && !strstr(json_string_value(v), "${") &&
            time_parse_duration(json_string_value(v), &ms, &err) == AS_OK &&
            (ms <= 0 || ms > MAX_EXPIRY_MS)) {
            snprintf(where, sizeof where, "%s.%s", path, durations[i]);
            diag_add(out, DIAG_ERROR, "BAD_VALUE", where, "%s must be between 1 ms and 366 days",
                     durations[i]);
        }
    }
    v = json_object_get(p, "request");
    if (v && !json_is_object(v) && !(json_is_string(v) && strstr(json_string_value(v), "${"))) {
        snprintf(where, sizeof where, "%s.request", path);
        diag_add(out, DIAG_ERROR, "BAD_VALUE", where, "request must be an object");
    }
    /* A details or request too large for the page is shown as a notice
     * with the request's fingerprint (approval_fit_parts): say so now. */
    static const char *const shown[] = {"details", "request", NULL};
    for (int i = 0; shown[i]; i++) {
        v = json_object_get(p, shown[i]);
        if (!json_is_object(v))
            continue;
        char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        size_t len = text ? strlen(text) : 0;
        free(text);
        if (len <= APPROVAL_WARN_JSON)
            continue;
        char step[200];
        step_name_of(path, step, sizeof step);
        snprintf(where, sizeof where, "%s.%s", path, shown[i]);
        diag_add(out, DIAG_WARNING, "TOO_LARGE_TO_SHOW", where,
                 "approval step \"%s\": %s is %zu bytes of JSON, over %d KiB: the approval page "
                 "and emails show a notice with the request's fingerprint instead of it",
                 step, shown[i], len, APPROVAL_WARN_JSON / 1024);
    }
    v = json_object_get(p, "cmdlet");
    if (json_is_string(v) && !strstr(json_string_value(v), "${") &&
        !cmdlet_ok(json_string_value(v))) {
        snprintf(where, sizeof where, "%s.cmdlet", path);
        diag_add(out, DIAG_ERROR, "BAD_VALUE", where,
                 "cmdlet must be a cmdlet name such as Set-CASMailbox");
    }
}

/* ---- emails ------------------------------------------------------------------- */

/* Details as "key: value" lines for the text part. */
static void details_text(struct html_buf *b, const json_t *details)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)details, key, v)
    {
        char when[48];
        if (json_is_string(v) && approval_format_timestamp(json_string_value(v), when, sizeof when)) {
            html_rawf(b, "  %s: %s\n", key, when);
            continue;
        }
        char *val = json_is_string(v) ? strdup(json_string_value(v))
                                      : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        html_rawf(b, "  %s: %s\n", key, val ? val : "");
        free(val);
    }
}

/*
 * The same link as a card in the Teams channel, once per email key.  A
 * channel that refuses the card for good (a deleted workflow, a bad URL)
 * does not hold up the approval, which the email already asked for: it is
 * logged and recorded as an approval.teams_failed event.  Anything that may
 * pass (throttling, the service down) is returned, and the step tries again
 * (the email is not sent twice).
 */
static enum as_code post_teams(struct step_ctx *ctx, const json_t *view, const char *email,
                               const char *link, const char *mail_key, const char *when,
                               int reminder, struct as_err *err)
{
    char key[1100];
    snprintf(key, sizeof key, "%s/teams", mail_key);
    json_t *card = approval_teams_card(view, email, link, when, reminder);
    if (!card)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = approval_teams_post(ctx, card, key, err);
    json_decref(card);
    if (rc == AS_EPERMANENT || rc == AS_EINVAL) {
        LOG_WARN("approval", "approval %lld: the Teams card for %s was not posted: %s",
                 (long long)json_integer_value(json_object_get(view, "id")), email, err->msg);
        step_event(ctx, "approval.teams_failed", json_pack("{s:s, s:s}", "approver", email,
                                                           "error", err->msg));
        memset(err, 0, sizeof *err);
        return AS_OK;
    }
    if (rc)
        as_err_prefix(err, "posting to Teams for %s", email);
    return rc;
}

/* One approver's email with a new link, composed and not yet sent. */
struct link_mail {
    const char *email;
    char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
    char link[1200], key[1024], when[48], subject[600];
    struct html_buf text, html;
    const char *to[2];
    struct mail_msg msg;
};

static void link_mail_free(struct link_mail *m)
{
    OPENSSL_cleanse(m->token, sizeof m->token);
    OPENSSL_cleanse(m->link, sizeof m->link);
    html_buf_free(&m->text);
    html_buf_free(&m->html);
}

/*
 * A new token for email and the email carrying its link (m->msg), from the
 * approval's view (subject, message, details, requested_by, expires_at,
 * request_hash, id).  purpose: "request" or "reminder" (reminder_no).
 * Nothing is recorded.
 */
static enum as_code link_mail_compose(struct step_ctx *ctx, const json_t *view, const char *email,
                                      int reminder, int reminder_no, struct link_mail *m,
                                      struct as_err *err)
{
    struct html_buf *text = &m->text, *html = &m->html;
    memset(m, 0, sizeof *m);
    m->email = email;
    enum as_code rc = token_new(m->token, sizeof m->token, m->hash, sizeof m->hash, err);
    if (rc)
        return rc;

    /* The link comes from configuration, never from a request's Host header. */
    const char *base = config_str(ctx->app->cfg, "public_url");
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    snprintf(m->link, sizeof m->link, "%.*s/a/%s", (int)bl, base, m->token);
    const char *link = m->link, *when = m->when;
    if (reminder)
        snprintf(m->key, sizeof m->key, "%s/%s/reminder-%d", ctx->idempotency_key, email,
                 reminder_no);
    else
        snprintf(m->key, sizeof m->key, "%s/%s", ctx->idempotency_key, email);
    const char *subj = json_string_value(json_object_get(view, "subject"));
    snprintf(m->subject, sizeof m->subject, "%s%s", reminder ? "Reminder: approval requested: "
                                                             : "Approval requested: ", subj);
    approval_format_time(json_integer_value(json_object_get(view, "expires_at")), m->when,
                         sizeof m->when);
    const char *message = json_string_value(json_object_get(view, "message"));
    const char *by = json_string_value(json_object_get(view, "requested_by"));
    const json_t *details = json_object_get(view, "details");
    const char *request_hash = json_string_value(json_object_get(view, "request_hash"));
    long long approval_id = (long long)json_integer_value(json_object_get(view, "id"));

    /* The message and details, rendered for each part of the email, within
     * the budget of an approval page (the request itself is on the page). */
    enum { P_MESSAGE, P_DETAILS, N_PARTS };
    struct approval_part tparts[N_PARTS] = {{.name = "message"}, {.name = "details"}};
    struct approval_part hparts[N_PARTS] = {{.name = "message"}, {.name = "details"}};
    if (message && *message) {
        html_raw(&tparts[P_MESSAGE].b, message);
        html_text(&hparts[P_MESSAGE].b, message);
    }
    if (json_object_size(details)) {
        details_text(&tparts[P_DETAILS].b, details);
        approval_render_details(&hparts[P_DETAILS].b, details);
    }
    approval_fit_parts(tparts, N_PARTS, APPROVAL_SHOW_MAX, approval_id);
    approval_fit_parts(hparts, N_PARTS, APPROVAL_SHOW_MAX, approval_id);

    html_rawf(text, "%s\n\n", reminder ? "This is a reminder: your decision is still needed."
                                        : "Your decision is requested.");
    html_rawf(text, "%s\n\n", subj);
    if (message && *message) {
        if (tparts[P_MESSAGE].dropped)
            approval_render_too_large(text, "message", request_hash ? request_hash : "", 0);
        else if (tparts[P_MESSAGE].b.len)
            html_raw(text, tparts[P_MESSAGE].b.p);
        html_raw(text, "\n\n");
    }
    if (json_object_size(details)) {
        html_raw(text, "Details:\n");
        if (tparts[P_DETAILS].dropped)
            approval_render_too_large(text, "details", request_hash ? request_hash : "", 0);
        else if (tparts[P_DETAILS].b.len)
            html_raw(text, tparts[P_DETAILS].b.p);
        html_raw(text, "\n");
    }
    if (by && *by)
        html_rawf(text, "Requested by: %s\n", by);
    html_rawf(text, "Decide by: %s\n\n", when);
    html_rawf(text, "Review the request and approve or reject it here:\n%s\n\n", link);
    html_raw(text, "Opening the link decides nothing; you decide on the page.\n"
                    "This link is personal: please do not forward this email.\n");

    html_raw(html, "<!DOCTYPE html><html><body style=\"font-family:sans-serif;color:#1a1a1a\">\n");
    html_rawf(html, "<p>%s</p>\n<h2>",
              reminder ? "This is a reminder: your decision is still needed."
                       : "Your decision is requested.");
    html_text(html, subj);
    html_raw(html, "</h2>\n");
    if (message && *message) {
        if (hparts[P_MESSAGE].dropped) {
            approval_render_too_large(html, "message", request_hash ? request_hash : "", 1);
        } else {
            html_raw(html, "<p style=\"white-space:pre-wrap\">");
            if (hparts[P_MESSAGE].b.len)
                html_raw(html, hparts[P_MESSAGE].b.p);
            html_raw(html, "</p>\n");
        }
    }
    if (hparts[P_DETAILS].dropped)
        approval_render_too_large(html, "details", request_hash ? request_hash : "", 1);
    else if (hparts[P_DETAILS].b.len)
        html_raw(html, hparts[P_DETAILS].b.p);
    for (int i = 0; i < N_PARTS; i++) {
        html_buf_free(&tparts[i].b);
        html_buf_free(&hparts[i].b);
    }
    /* One block per line and a final line break: the part then goes as
     * 7bit and the link is never split by a soft line break. */
    html_raw(html, "<p>");
    if (by && *by) {
        html_raw(html, "Requested by: ");
        html_text(html, by);
        html_raw(html, "<br>");
    }
    html_raw(html, "Decide by: ");
    html_text(html, when);
    html_raw(html, "</p>\n<p><a href=\"");
    html_text(html, link);
    html_raw(html, "\">Review and decide</a></p>\n<p style=\"font-size:90%;color:#4a4a4a\">"
                    "Opening the link decides nothing; you decide on the page. "
                    "This link is personal: please do not forward this email.</p>\n</body></html>\n");
    if (!html_buf_ok(text) || !html_buf_ok(html))
        return as_errf(err, AS_ENOMEM, "out of memory");
    m->to[0] = email;
    m->msg = (struct mail_msg){
        .to = m->to, .subject = m->subject, .text = text->p, .html = html->p,
        .idempotency_key = m->key,
    };
    return AS_OK;
}

/* Send one approver an email with a new link.  purpose: "request" or "reminder". */
static enum as_code send_link(struct step_ctx *ctx, const json_t *view, const json_t *approver,
                              const char *purpose, int reminder_no, struct as_err *err)
{
    struct link_mail m;
    json_t *result = NULL;
    const char *email = json_string_value(json_object_get(approver, "email"));
    int64_t approver_id = json_integer_value(json_object_get(approver, "id"));
    int reminder = strcmp(purpose, "reminder") == 0;

    enum as_code rc = link_mail_compose(ctx, view, email, reminder, reminder_no, &m, err);
    if (!rc)
        rc = db_approvals_add_link(ctx->app->db, approver_id, purpose, m.hash, time_now_ms(),
                                   NULL, err);
    if (rc)
        goto out;
    rc = mail_send(ctx->app, &m.msg, &result, err);
    if (rc) {
        as_err_prefix(err, "emailing %s", email);
        goto out;
    }
    if (json_is_true(json_object_get(ctx->params, "teams")) &&
        (rc = post_teams(ctx, view, email, m.link, m.key, m.when, reminder, err)) != AS_OK)
        goto out;
    rc = db_approvals_link_sent(ctx->app->db, m.hash, time_now_ms(), err);
    if (!rc)
        LOG_INFO("approval", "approval %lld: %s link emailed to %s%s",
                 (long long)json_integer_value(json_object_get(view, "id")), purpose, email,
                 json_is_true(json_object_get(result, "deduplicated")) ? " (already sent before)"
                                                                        : "");
out:
    link_mail_free(&m);
    json_decref(result);
    return rc;
}

static enum as_code send_escalation(struct step_ctx *ctx, const json_t *view, struct as_err *err)
{
    const json_t *to_list = json_object_get(view, "escalate_to");
    size_t n = json_array_size(to_list);
    if (n == 0)
        return AS_OK;
    const char **to = calloc(n + 1, sizeof *to);
    char subject[600], key[1024], when[48];
    struct html_buf text = {0};
    json_t *result = NULL;
    if (!to)
        return as_errf(err, AS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        to[i] = json_string_value(json_array_get(to_list, i));
    snprintf(subject, sizeof subject, "Approval expired: %s",
             json_string_value(json_object_get(view, "subject")));
    snprintf(key, sizeof key, "%s/escalation", ctx->idempotency_key);
    approval_format_time(json_integer_value(json_object_get(view, "expires_at")), when, sizeof when);
    html_rawf(&text, "Nobody decided this request before it expired on %s:\n\n%s\n\n",
              when, json_string_value(json_object_get(view, "subject")));
    const char *message = json_string_value(json_object_get(view, "message"));
    if (message && *message)
        html_rawf(&text, "%s\n\n", message);
    html_raw(&text, "Approvers asked:\n");
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(view, "approvers"), i, a)
        html_rawf(&text, "  %s\n", json_string_value(json_object_get(a, "email")));
    html_rawf(&text, "\nWorkflow %s, run %lld, step %s. The workflow continued on its "
                     "\"expired\" branch.\n",
              json_string_value(json_object_get(view, "workflow")),
              (long long)json_integer_value(json_object_get(view, "run_id")),
              json_string_value(json_object_get(view, "step")));
    enum as_code rc = AS_OK;
    if (!html_buf_ok(&text)) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    struct mail_msg msg = {.to = to, .subject = subject, .text = text.p, .idempotency_key = key};
    rc = mail_send(ctx->app, &msg, &result, err);
    if (rc) {
        as_err_prefix(err, "escalation email");
        goto out;
    }
    rc = db_approvals_set_escalated(ctx->app->db,
                                    json_integer_value(json_object_get(view, "id")),
                                    time_now_ms(), err);
out:
    json_decref(result);
    html_buf_free(&text);
    free(to);
    return rc;
}

/* ---- outcome ------------------------------------------------------------------ */

json_t *approval_step_output(const json_t *view)
{
    char when[40] = "";
    int64_t decided_at = json_integer_value(json_object_get(view, "decided_at"));
    if (decided_at)
        time_format_iso(decided_at, when, sizeof when);
    json_t *approvers = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(view, "approvers"), i, a)
    {
        char at[40] = "";
        int64_t t = json_integer_value(json_object_get(a, "decided_at"));
        if (t)
            time_format_iso(t, at, sizeof at);
        json_array_append_new(approvers,
                              json_pack("{s:O, s:O, s:s, s:O}", "email", json_object_get(a, "email"),
                                        "status", json_object_get(a, "status"), "decided_at", at,
                                        "comment", json_object_get(a, "comment")));
    }
    return json_pack("{s:O, s:O, s:O, s:s, s:O, s:O, s:O, s:o}",
                     "decision", json_object_get(view, "status"),
                     "decided_by", json_object_get(view, "decided_by"),
                     "comment", json_object_get(view, "comment"),
                     "decided_at", when,
                     "decided_via", json_object_get(view, "decided_via"),
                     "request_hash", json_object_get(view, "request_hash"),
                     "approval_id", json_object_get(view, "id"),
                     "approvers", approvers);
}

static int64_t get_i(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *get_s(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Turn a transport/database error into the step's result. */
static void error_result(struct step_result *res, enum as_code rc, const struct as_err *err)
{
    if (rc == AS_EPERMANENT || rc == AS_EINVAL)
        step_fail(res, "%s", err->msg);
    else
        step_retry(res, 0, "%s", err->msg);
}

/* ---- a new approval ------------------------------------------------------------ */

/*
 * The first execution of the step creates the approval and mails its
 * links with two group commits (engine_group_write) instead of a write
 * transaction for each part: one holds the approval, its approvers, the
 * links to mail (hashes only) and the claims of their emails; the emails
 * are then sent, outside any transaction; the second records the sends
 * and marks the links sent.  A crash between the two leaves the state of
 * a crash during mail_send (a link not marked sent, its email claimed):
 * the next execution, on the general path, mails a new link under the same
 * idempotency key, re-sent at most once.  When the approval already exists
 * (a re-claimed execution) nothing is written and the general path runs.
 */
struct fresh {
    const struct approval_new *an;
    struct link_mail *links;
    struct mail_job **jobs;
    enum as_code *sent; /* each job's send */
    size_t n;
    int64_t id;
    int created;
};

static enum as_code fresh_open(struct db *db, void *ud, struct as_err *err)
{
    struct fresh *f = ud;
    enum as_code rc = db_approvals_ensure(db, f->an, &f->id, &f->created, err);
    if (rc || !f->created)
        return rc;
    /* Links for the first f->n approvers (all, or the first under sequential). */
    for (size_t i = 0; !rc && i < f->n; i++) {
        rc = db_approvals_add_link(db, f->an->approver_ids[i], "request", f->links[i].hash,
                                   time_now_ms(), NULL, err);
        if (!rc)
            rc = mail_job_claim(f->jobs[i], err);
    }
    return rc;
}

static enum as_code fresh_record(struct db *db, void *ud, struct as_err *err)
{
    struct fresh *f = ud;
    enum as_code rc = AS_OK;
    for (size_t i = 0; !rc && i < f->n; i++) {
        rc = mail_job_finish(f->jobs[i], err);
        if (!rc && f->sent[i] == AS_OK)
            rc = db_approvals_link_sent(db, f->links[i].hash, time_now_ms(), err);
    }
    return rc;
}

/* Send every claimed email (no store access); each send's result in
 * f->sent, the first failure returned. */
static enum as_code fresh_send(struct fresh *f, struct as_err *err)
{
    enum as_code first = AS_OK;
    for (size_t i = 0; i < f->n; i++) {
        struct as_err e1 = {0};
        f->sent[i] = mail_job_send(f->jobs[i], &e1);
        if (f->sent[i] && !first) {
            first = f->sent[i];
            *err = e1;
            as_err_prefix(err, "emailing %s", f->links[i].email);
        }
    }
    return first;
}

/* The view of a new approval as link_mail_compose reads it, from spec. */
static json_t *fresh_view(const struct approval_spec *spec, int64_t expires_at)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:O?, s:s, s:I}", "id", (json_int_t)0, "subject",
                     spec->subject, "message", spec->message, "requested_by", spec->requested_by,
                     "details", spec->details, "request_hash", spec->request_hash, "expires_at",
                     (json_int_t)expires_at);
}

/* 1 when the step's result is set; 0 when the approval existed already
 * (the general path runs). */
static int open_fresh(struct step_ctx *ctx, const struct approval_spec *spec,
                      const struct approval_new *an, struct step_result *res)
{
    struct as_err err = {0};
    size_t n = strcmp(spec->policy, "sequential") == 0 ? 1 : json_array_size(spec->approvers);
    struct fresh f = {.an = an, .n = n};
    json_t *view = fresh_view(spec, an->expires_at);
    f.links = calloc(n, sizeof *f.links);
    f.jobs = calloc(n, sizeof *f.jobs);
    f.sent = calloc(n, sizeof *f.sent);
    int64_t *ids = calloc(json_array_size(spec->approvers), sizeof *ids);
    struct approval_new with_ids = *an;
    with_ids.approver_ids = ids;
    f.an = &with_ids;
    enum as_code rc = view && ids && f.links && f.jobs && f.sent
                          ? AS_OK
                          : as_errf(&err, AS_ENOMEM, "out of memory");
    size_t made = 0;
    for (; !rc && made < n; made++) {
        const char *email = json_string_value(json_array_get(spec->approvers, made));
        rc = link_mail_compose(ctx, view, email, 0, 0, &f.links[made], &err);
        if (!rc)
            rc = mail_job_new(ctx->app, &f.links[made].msg, &f.jobs[made], &err);
    }
    if (!rc)
        rc = engine_group_write(ctx->app->engine, ctx->app->db, fresh_open, &f, &err);
    int done = rc != AS_OK || f.created;
    if (rc) {
        error_result(res, rc, &err);
        goto out;
    }
    if (!f.created)
        goto out;
    LOG_INFO("approval", "approval %lld created for run %lld step %s (%s, %zu approvers)",
             (long long)f.id, (long long)ctx->run_id, ctx->step_name, spec->policy,
             json_array_size(spec->approvers));
    struct as_err send_err = {0};
    enum as_code send_rc = fresh_send(&f, &send_err);
    rc = engine_group_write(ctx->app->engine, ctx->app->db, fresh_record, &f, &err);
    if (send_rc) {
        error_result(res, send_rc, &send_err);
        goto out;
    }
    if (rc) {
        error_result(res, rc, &err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        LOG_INFO("approval", "approval %lld: request link emailed to %s", (long long)f.id,
                 f.links[i].email);
    int64_t until = an->expires_at;
    int64_t next_reminder = an->reminder_every_ms > 0 ? an->now + an->reminder_every_ms : 0;
    if (next_reminder && next_reminder < until)
        until = next_reminder;
    step_wait(res, until, json_pack("{s:I}", "approval_id", (json_int_t)f.id));
out:
    for (size_t i = 0; i < made; i++) {
        mail_job_free(f.jobs[i]);
        link_mail_free(&f.links[i]);
    }
    free(f.links);
    free(f.jobs);
    free(f.sent);
    free(ids);
    json_decref(view);
    return done;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct approval_spec spec;
    struct as_err err = {0};
    json_t *view = NULL;
    enum as_code rc;
    if (parse_spec(ctx, &spec, &err)) {
        step_fail(res, "%s", err.msg);
        goto out;
    }
    if (ctx->dry_run) {
        step_ok(res, "approved",
                json_pack("{s:s, s:s, s:s, s:s, s:O, s:b}", "decision", "approved", "decided_by",
                          "(dry run)", "comment", "", "request_hash", spec.request_hash,
                          "approvers", spec.approvers, "dry_run", 1));
        goto out;
    }

    int64_t now = time_now_ms();
    struct approval_new an = {
        .run_id = ctx->run_id, .exec_id = ctx->exec_id, .workflow = ctx->workflow,
        .step = ctx->step_name, .idempotency_key = ctx->idempotency_key, .policy = spec.policy,
        .subject = spec.subject, .message = spec.message, .requested_by = spec.requested_by,
        .details = spec.details, .request_json = spec.request_json,
        .request_hash = spec.request_hash, .require_comment_on_reject = spec.require_comment,
        .require_sign_in = spec.require_sign_in,
        .approvers = spec.approvers, .escalate_to = spec.escalate_to,
        .reminder_every_ms = spec.reminder_every_ms, .expires_at = now + spec.expiry_ms,
        .now = now, .current = spec.current, .cmdlet = spec.cmdlet,
    };
    /* The first execution: the approval is new (unless re-claimed). */
    if (ctx->attempt == 1 && !ctx->wait_state && !ctx->resume &&
        !json_is_true(json_object_get(ctx->params, "teams")) && open_fresh(ctx, &spec, &an, res))
        goto out;

    int64_t id = 0;
    int created = 0;
    rc = db_approvals_ensure(ctx->app->db, &an, &id, &created, &err);
    if (rc) {
        error_result(res, rc, &err);
        goto out;
    }
    if (created)
        LOG_INFO("approval", "approval %lld created for run %lld step %s (%s, %zu approvers)",
                 (long long)id, (long long)ctx->run_id, ctx->step_name, spec.policy,
                 json_array_size(spec.approvers));

    /* Reconcile until nothing changes under us (at most a few rounds). */
    for (int round = 0; round < 4; round++) {
        json_decref(view);
        view = NULL;
        rc = db_approvals_get(ctx->app->db, id, &view, &err);
        if (rc) {
            error_result(res, rc, &err);
            goto out;
        }
        const char *status = get_s(view, "status");
        now = time_now_ms();
        if (strcmp(status, "approved") == 0 || strcmp(status, "rejected") == 0) {
            rc = db_approvals_clear_resume(ctx->app->db, id, &err);
            if (rc) {
                error_result(res, rc, &err);
                goto out;
            }
            step_ok(res, status, approval_step_output(view));
            goto out;
        }
        if (strcmp(status, "expired") == 0) {
            if (get_i(view, "escalated_at") == 0) {
                rc = send_escalation(ctx, view, &err);
                if (rc) {
                    error_result(res, rc, &err);
                    goto out;
                }
                if (json_array_size(json_object_get(view, "escalate_to")))
                    step_event(ctx, "approval.escalated",
                               json_pack("{s:I, s:O}", "approval_id", (json_int_t)id, "to",
                                         json_object_get(view, "escalate_to")));
            }
            step_ok(res, "expired", approval_step_output(view));
            goto out;
        }
        if (now >= get_i(view, "expires_at")) {
            rc = db_approvals_expire(ctx->app->db, id, now, NULL, &err);
            if (rc) {
                error_result(res, rc, &err);
                goto out;
            }
            continue; /* expired now, or decided just before: read again */
        }

        /* Links for everyone who should have one and has not been mailed. */
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(view, "approvers"), i, a)
        {
            if (strcmp(get_s(a, "status"), "pending") != 0 || get_i(a, "sent_at"))
                continue;
            rc = send_link(ctx, view, a, "request", 0, &err);
            if (rc) {
                error_result(res, rc, &err);
                goto out;
            }
        }

        /* A reminder that is due. */
        int64_t next_reminder = get_i(view, "next_reminder_at");
        int reminded = 0;
        if (next_reminder && now >= next_reminder) {
            int n = (int)get_i(view, "reminders_sent") + 1;
            json_array_foreach(json_object_get(view, "approvers"), i, a)
            {
                if (strcmp(get_s(a, "status"), "pending") != 0 || !get_i(a, "sent_at"))
                    continue;
                rc = send_link(ctx, view, a, "reminder", n, &err);
                if (rc) {
                    error_result(res, rc, &err);
                    goto out;
                }
            }
            int64_t every = get_i(view, "reminder_every_ms");
            int64_t next = next_reminder;
            while (every > 0 && next <= now)
                next += every; /* reminders missed while down are not sent in a burst */
            if (every <= 0 || next >= get_i(view, "expires_at"))
                next = 0;
            rc = db_approvals_set_reminded(ctx->app->db, id, n, next, &err);
            if (rc) {
                error_result(res, rc, &err);
                goto out;
            }
            step_event(ctx, "approval.reminded",
                       json_pack("{s:I, s:i}", "approval_id", (json_int_t)id, "reminder", n));
            reminded = 1;
        }
        if (reminded)
            continue; /* read again: the reminder times have moved */

        /* Links just mailed need no second look: a decision that arrives
         * while this step still runs is held for it and ends the wait at
         * once (db_exec_record). */
        int64_t until = get_i(view, "expires_at");
        if (next_reminder && next_reminder < until)
            until = next_reminder;
        step_wait(res, until, json_pack("{s:I}", "approval_id", (json_int_t)id));
        goto out;
    }
    /* Still changing after several rounds (e.g. sequential approvers
     * answering within milliseconds): wait briefly and look again. */
    step_wait(res, time_now_ms() + 1000, json_pack("{s:I}", "approval_id", (json_int_t)id));
out:
    json_decref(view);
    spec_free(&spec);
}

const struct step_type step_type_approval = {
    .name = "approval",
    .doc = "email approvers a personal link and wait for approved / rejected / expired",
    .params = params,
    .outcomes = outcomes,
    .waits = 1,
    .validate = validate,
    .execute = execute,
};

void approvals_register(void)
{
    static const struct step_type *const types[] = {&step_type_approval, NULL};
    step_types_register(types);
}
