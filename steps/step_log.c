/*
 * step_log.c - the `log` step: write a message to the log and the run's
 * event log.  The message is a template the executor has already resolved;
 * a whole-string reference to a non-string value is written as compact JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "engine/step.h"

/* Longest message kept in the log line and the event (the rest is cut, with a mark). */
#define LOG_STEP_MAX_MESSAGE 4000

static const struct step_param params[] = {
    {"message", SP_STRING, 1, "text to log; ${...} references are resolved"},
    {"level", SP_STRING, 0, "info (default), warn or error"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static int parse_level(const json_t *v, enum log_level *out)
{
    const char *s = json_string_value(v);
    if (!v) {
        *out = LOG_LVL_INFO;
        return 0;
    }
    if (!s)
        return -1;
    if (strcmp(s, "info") == 0)
        *out = LOG_LVL_INFO;
    else if (strcmp(s, "warn") == 0)
        *out = LOG_LVL_WARN;
    else if (strcmp(s, "error") == 0)
        *out = LOG_LVL_ERROR;
    else
        return -1;
    return 0;
}

static void validate(const json_t *p, const char *params_path, struct diag_list *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s.level", params_path);
    const json_t *lv = json_object_get(p, "level");
    enum log_level level;
    if (lv && !(json_is_string(lv) && strstr(json_string_value(lv), "${")) && parse_level(lv, &level))
        diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "level must be info, warn or error");
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *msg = json_object_get(ctx->params, "message");
    enum log_level level;
    char *dumped = NULL;
    const char *text;
    size_t len;

    if (parse_level(json_object_get(ctx->params, "level"), &level)) {
        step_fail(res, "level must be info, warn or error");
        return;
    }
    if (json_is_string(msg)) {
        text = json_string_value(msg);
        len = json_string_length(msg);
    } else {
        /* A whole-string reference kept its JSON type (or the message is missing: null). */
        dumped = json_dumps(msg ? msg : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
        if (!dumped) {
            step_retry(res, 0, "out of memory formatting the message");
            return;
        }
        text = dumped;
        len = strlen(dumped);
    }
    int cut = len > LOG_STEP_MAX_MESSAGE;
    if (cut) {
        len = LOG_STEP_MAX_MESSAGE;
        /* Do not split a UTF-8 sequence. */
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    /* log_msg escapes control characters, so a message cannot forge log lines. */
    log_msg(level, "workflow", "%s run %lld step %s: %.*s%s", ctx->workflow ? ctx->workflow : "",
            (long long)ctx->run_id, ctx->step_name ? ctx->step_name : "", (int)len, text,
            cut ? "..." : "");
    json_t *m = json_stringn(text, len);
    if (!m) {
        step_retry(res, 0, "out of memory recording the message");
        free(dumped);
        return;
    }
    static const char *const names[] = {"debug", "info", "warn", "error"};
    step_event(ctx, "log", json_pack("{s:s, s:O}", "level", names[level], "message", m));
    step_ok(res, NULL, json_pack("{s:o}", "message", m));
    free(dumped);
}

const struct step_type step_type_log = {
    .name = "log",
    .doc = "Write a message (a template) to the log and to the run's event log.",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
