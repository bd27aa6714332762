/* step_cas_lookup.c - placeholder until the cas_lookup step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type cas_lookup is not available in this build yet");
}

const struct step_type step_type_cas_lookup = {
    .name = "cas_lookup", .doc = "(in progress)", .params = params, .execute = execute,
};
