/* step_manage_cas.c - placeholder until the manage_cas step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type manage_cas is not available in this build yet");
}

const struct step_type step_type_manage_cas = {
    .name = "manage_cas", .doc = "(in progress)", .params = params, .execute = execute,
};
