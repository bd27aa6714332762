/*
 * step_exception.c - the `exception` step: record that a user is exempt from
 * some legacy protocols, with a reason, who granted it and until when.
 *
 *   {"type": "exception", "params": {
 *      "user": "${input.upn}", "protocols": ["pop", "imap", "smtp"],
 *      "reason": "${steps.approve.output.comment}",
 *      "granted_by": "${steps.approve.output.decided_by}", "expires": "P90D"}}
 *
 * The shipped legacy-protocols workflow uses it when an owner rejects the
 * change: the approver's comment becomes the reason.  KPIs and triggers then
 * leave the user out for those protocols until the exception expires
 * (m365/kpi.h).  The record carries the step's idempotency key, so a step
 * executed again after a crash records it once.  In a dry run nothing is
 * recorded; the output says what would have been.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_kpi.h"
#include "engine/app.h"
#include "m365/kpi.h"
#include "base/timeutil.h"
#include "engine/step.h"

#define DEFAULT_EXPIRY_MS (90LL * 86400000)

static const struct step_param params[] = {
    {"user", SP_STRING, 1, "user principal name of the exempted user"},
    {"protocols", SP_ANY, 1, "list of protocols (pop, imap, smtp, activesync, ews) or \"all\""},
    {"reason", SP_STRING, 1, "why (e.g. the approver's comment); must not be empty"},
    {"granted_by", SP_STRING, 1, "who granted it (e.g. the approver)"},
    {"expires", SP_STRING, 0, "ISO 8601 duration from now (default P90D) or a date/time"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* Expiry from a duration ("P90D", "30d") or an absolute date/time. */
static enum as_code parse_expires(const char *s, int64_t now, int64_t *out, struct as_err *err)
{
    if (!s || !*s) {
        *out = now + DEFAULT_EXPIRY_MS;
        return AS_OK;
    }
    int64_t ms;
    if (s[0] == 'P' || (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-'))) {
        enum as_code rc = time_parse_duration(s, &ms, err);
        if (rc)
            return rc;
        *out = now + ms;
    } else if (time_parse_iso(s, &ms) == AS_OK) {
        *out = ms;
    } else {
        return as_errf(err, AS_EINVAL,
                       "expires \"%s\" is neither a duration (P90D) nor a date (2026-03-31)", s);
    }
    if (*out <= now)
        return as_errf(err, AS_EINVAL, "expires \"%s\" lies in the past", s);
    return AS_OK;
}

static int is_template(const json_t *v)
{
    return json_is_string(v) && strstr(json_string_value(v), "${") != NULL;
}

static void validate(const json_t *p, const char *path, struct diag_list *out)
{
    const json_t *protocols = json_object_get(p, "protocols");
    unsigned mask;
    struct as_err err = {0};
    if (protocols && !is_template(protocols) &&
        !(json_is_array(protocols) && json_array_size(protocols) > 0 &&
          is_template(json_array_get(protocols, 0))) &&
        kpi_protocols_parse(protocols, &mask, &err) != AS_OK)
        diag_add(out, DIAG_ERROR, "BAD_PARAM", path, "protocols: %s", err.msg);
    const json_t *expires = json_object_get(p, "expires");
    int64_t until;
    if (expires && json_is_string(expires) && !is_template(expires) &&
        parse_expires(json_string_value(expires), 0, &until, &err) != AS_OK)
        diag_add(out, DIAG_ERROR, "BAD_PARAM", path, "expires: %s", err.msg);
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    const char *user = json_string_value(json_object_get(ctx->params, "user"));
    const char *reason = json_string_value(json_object_get(ctx->params, "reason"));
    const char *granted_by = json_string_value(json_object_get(ctx->params, "granted_by"));
    const char *expires = json_string_value(json_object_get(ctx->params, "expires"));
    unsigned mask = 0;
    if (!user || !*user) {
        step_fail(res, "exception: user is empty");
        return;
    }
    if (!reason || !*reason) {
        step_fail(res, "exception: a reason is required (got an empty one)");
        return;
    }
    if (!granted_by || !*granted_by) {
        step_fail(res, "exception: granted_by is required (got an empty one)");
        return;
    }
    if (kpi_protocols_parse(json_object_get(ctx->params, "protocols"), &mask, &err) != AS_OK) {
        step_fail(res, "exception: protocols: %s", err.msg);
        return;
    }
    int64_t expires_at;
    if (parse_expires(expires, ctx->now_ms, &expires_at, &err) != AS_OK) {
        step_fail(res, "exception: %s", err.msg);
        return;
    }
    json_t *protocols = kpi_protocols_json(mask);
    char *ptext = json_dumps(protocols, JSON_COMPACT);
    char until[40];
    time_format_iso(expires_at, until, sizeof until);
    if (!ptext) {
        json_decref(protocols);
        step_retry(res, 0, "exception: out of memory");
        return;
    }
    if (ctx->dry_run) {
        step_ok(res, NULL,
                json_pack("{s:b, s:s, s:o, s:s, s:s, s:s}", "dry_run", 1, "user", user, "protocols",
                          protocols, "reason", reason, "granted_by", granted_by, "expires_at",
                          until));
        free(ptext);
        return;
    }
    char source[64];
    snprintf(source, sizeof source, "run:%lld", (long long)ctx->run_id);
    struct db_exception ex = {
        .upn = user,
        .protocols = ptext,
        .reason = reason,
        .granted_by = granted_by,
        .created_at = ctx->now_ms,
        .expires_at = expires_at,
        .source = source,
        .source_key = ctx->idempotency_key,
    };
    int64_t id = 0;
    int created = 0;
    enum as_code rc = db_exception_add(ctx->app->db, &ex, &id, &created, &err);
    free(ptext);
    if (rc) {
        json_decref(protocols);
        if (rc == AS_EDB)
            step_retry(res, 0, "exception: %s", err.msg);
        else
            step_fail(res, "exception: %s", err.msg);
        return;
    }
    step_event(ctx, "exception.recorded",
               json_pack("{s:I, s:s, s:O, s:s, s:s}", "exception_id", (json_int_t)id, "user", user,
                         "protocols", protocols, "granted_by", granted_by, "expires_at", until));
    step_ok(res, NULL,
            json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:b}", "exception_id", (json_int_t)id, "user",
                      user, "protocols", protocols, "reason", reason, "granted_by", granted_by,
                      "expires_at", until, "created", created));
}

const struct step_type step_type_exception = {
    .name = "exception",
    .doc = "record a protocol exception for a user (reason, granted by, expiry; default 90 days)",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
