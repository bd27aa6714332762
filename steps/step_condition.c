/* step_condition.c - placeholder until the condition step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type condition is not available in this build yet");
}

const struct step_type step_type_condition = {
    .name = "condition", .doc = "(in progress)", .params = params, .execute = execute,
};
