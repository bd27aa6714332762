/* step_http.c - placeholder until the http step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type http is not available in this build yet");
}

const struct step_type step_type_http = {
    .name = "http", .doc = "(in progress)", .params = params, .execute = execute,
};
