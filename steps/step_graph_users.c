/* step_graph_users.c - placeholder until the graph_users step lands; it refuses to run. */
#include "steps/step.h"

static const struct step_param params[] = {{NULL, SP_ANY, 0, NULL}};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    (void)ctx;
    step_fail(res, "step type graph_users is not available in this build yet");
}

const struct step_type step_type_graph_users = {
    .name = "graph_users", .doc = "(in progress)", .params = params, .execute = execute,
};
