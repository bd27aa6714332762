/* step_delay.c - placeholder until the delay step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type delay is not available in this build yet");
}

const struct step_type step_type_delay = {
    .name = "delay", .doc = "(in progress)", .params = params, .execute = execute,
};
