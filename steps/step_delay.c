/*
 * step_delay.c - the `delay` step: wait for a duration without holding a
 * thread.  The first execution parks the step (STEP_WAIT) with the wake-up
 * time as its deadline; the executor keeps that as a due_at row in SQLite,
 * so the delay survives restarts.  Woken at the deadline it succeeds.
 */
#include <stdio.h>
#include <string.h>

#include "base/timeutil.h"
#include "engine/step.h"

/* A delay longer than this is a mistake in the workflow, not a plan. */
#define DELAY_MAX_MS (366LL * 86400 * 1000)

static const struct step_param params[] = {
    {"duration", SP_DURATION, 1, "how long to wait: ISO 8601 (PT2S, P1D) or 500ms, 2s, 5m, 3h, 7d"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static int parse(const json_t *v, int64_t *ms, struct as_err *err)
{
    if (!json_is_string(v)) {
        as_errf(err, AS_EINVAL, "duration must be a string such as \"2s\" or \"PT2S\"");
        return -1;
    }
    if (time_parse_duration(json_string_value(v), ms, err) != AS_OK)
        return -1;
    if (*ms < 0 || *ms > DELAY_MAX_MS) {
        as_errf(err, AS_EINVAL, "duration must be between 0 and 366 days");
        return -1;
    }
    return 0;
}

static void validate(const json_t *p, const char *params_path, struct diag_list *out)
{
    char path[600];
    snprintf(path, sizeof path, "%s.duration", params_path);
    const json_t *d = json_object_get(p, "duration");
    struct as_err err = {0};
    int64_t ms;
    /* The loader reports malformed durations (BAD_DURATION); this adds the upper bound. */
    if (json_is_string(d) && !strstr(json_string_value(d), "${") &&
        time_parse_duration(json_string_value(d), &ms, &err) == AS_OK && ms > DELAY_MAX_MS)
        diag_add(out, DIAG_ERROR, "BAD_VALUE", path, "duration must be at most 366 days");
}

static json_t *done_output(int64_t ms, int64_t until)
{
    char iso[40];
    time_format_iso(until, iso, sizeof iso);
    return json_pack("{s:I, s:s}", "delay_ms", (json_int_t)ms, "until", iso);
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    int64_t ms;
    if (parse(json_object_get(ctx->params, "duration"), &ms, &err)) {
        step_fail(res, "%s", err.msg);
        return;
    }
    /* The deadline chosen on the first execution is kept in the wait state, so a re-run
     * (after a crash or an early wake-up) neither restarts nor shortens the delay. */
    const json_t *saved = json_object_get(ctx->wait_state, "until");
    if (!json_is_integer(saved)) {
        int64_t until = ctx->now_ms + ms;
        if (ms == 0) {
            step_ok(res, NULL, done_output(ms, until));
            return;
        }
        step_wait(res, until, json_pack("{s:I}", "until", (json_int_t)until));
        return;
    }
    int64_t until = json_integer_value(saved);
    if (ctx->deadline_reached || ctx->now_ms >= until || ctx->resume) {
        step_ok(res, NULL, done_output(ms, until));
        return;
    }
    step_wait(res, until, json_pack("{s:I}", "until", (json_int_t)until));
}

const struct step_type step_type_delay = {
    .name = "delay",
    .doc = "Wait for a duration (durable: a timer row, no thread is held).",
    .params = params,
    .outcomes = outcomes,
    .waits = 1,
    .validate = validate,
    .execute = execute,
};
