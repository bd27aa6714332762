/*
 * step_condition.c - the `condition` step: evaluate an expression of the
 * expression language (engine/expr.h) and branch on it: outcome "true" or
 * "false".
 *
 * The expression is evaluated, not templated: `expr` holds plain expression
 * text such as `steps.post.output.status == 200`, compiled here and
 * evaluated against the step scope {"input", "steps", "run"} that the
 * executor passes in ctx.  A missing path is null, so a test on a field the
 * response lacks is false rather than an error.
 */
#include <string.h>

#include "base/expr.h"
#include "engine/step.h"

static const struct step_param params[] = {
    {"expr", SP_EXPR, 1, "expression, e.g. steps.post.output.status == 200 && input.x in ['a','b']"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"true", "false", NULL};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *e = json_object_get(ctx->params, "expr");
    struct expr *x = NULL;
    struct as_err err = {0};
    json_t *scope = NULL;
    int value = 0;

    if (!json_is_string(e)) {
        step_fail(res, "expr must be a string holding an expression");
        goto out;
    }
    if (expr_compile(json_string_value(e), &x, &err) != AS_OK) {
        step_fail(res, "expr: %s", err.msg);
        goto out;
    }
    /* The scope borrows the run's values; json_pack's "O" takes (atomic) references. */
    scope = json_pack("{s:O, s:O, s:{s:I, s:s, s:s}}",
                      "input", ctx->input ? (json_t *)ctx->input : json_null(),
                      "steps", ctx->steps ? (json_t *)ctx->steps : json_null(),
                      "run", "id", (json_int_t)ctx->run_id,
                      "workflow", ctx->workflow ? ctx->workflow : "",
                      "step", ctx->step_name ? ctx->step_name : "");
    if (!scope) {
        step_retry(res, 0, "out of memory building the expression scope");
        goto out;
    }
    if (expr_eval_bool(x, scope, &value, &err) != AS_OK) {
        step_fail(res, "expr: %s", err.msg);
        goto out;
    }
    step_ok(res, value ? "true" : "false", json_pack("{s:b}", "value", value));
out:
    json_decref(scope);
    expr_free(x);
}

const struct step_type step_type_condition = {
    .name = "condition",
    .doc = "Evaluate an expression; outcome \"true\" or \"false\".",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
