/*
 * step_fail.c - the `fail` step: end this path with a permanent failure.
 * The run follows the step's `error` branch if it has one, else it fails
 * with the message as its error.
 */
#include <stdlib.h>

#include "engine/step.h"

static const struct step_param params[] = {
    {"message", SP_STRING, 0, "why the run fails; ${...} references are resolved"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {NULL};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *m = json_object_get(ctx->params, "message");
    if (!m || json_is_null(m)) {
        step_fail(res, "failed by step %s", ctx->step_name ? ctx->step_name : "");
        return;
    }
    if (json_is_string(m)) {
        step_fail(res, "%s", json_string_value(m));
        return;
    }
    char *text = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
    step_fail(res, "%s", text ? text : "failed (message could not be formatted)");
    free(text);
}

const struct step_type step_type_fail = {
    .name = "fail",
    .doc = "Fail permanently with a message (follows next.error if given, else fails the run).",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
