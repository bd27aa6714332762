/* step.c - the registry of step types and the step result helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/step.h"

/* Types registered by the layers above (step_types_register), in order. */
#define MAX_TYPES 64
static const struct step_type *registry[MAX_TYPES + 1];
static size_t n_registered;

/* Test-only types (step_type_register_extra); searched after the registered ones. */
static const struct step_type *const *extra;

void step_types_register(const struct step_type *const *types)
{
    for (size_t i = 0; types[i]; i++) {
        if (step_type_find(types[i]->name))
            continue;
        if (n_registered == MAX_TYPES)
            abort(); /* a programming error: raise MAX_TYPES */
        registry[n_registered++] = types[i];
    }
}

void step_type_register_extra(const struct step_type *const *types)
{
    extra = types;
}

const struct step_type *step_type_find(const char *name)
{
    for (size_t i = 0; i < n_registered; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(extra[i]->name, name) == 0)
            return extra[i];
    return NULL;
}

const struct step_type *const *step_types(void)
{
    return registry;
}

void step_ok(struct step_result *res, const char *outcome, json_t *output)
{
    res->status = STEP_OK;
    snprintf(res->outcome, sizeof res->outcome, "%s", outcome ? outcome : "");
    json_decref(res->output);
    res->output = output;
}

void step_fail(struct step_result *res, const char *fmt, ...)
{
    va_list ap;
    res->status = STEP_FAILED;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

void step_retry(struct step_result *res, int64_t not_before_ms, const char *fmt, ...)
{
    va_list ap;
    res->status = STEP_RETRY;
    res->wait_until_ms = not_before_ms;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

void step_wait(struct step_result *res, int64_t until_ms, json_t *state)
{
    res->status = STEP_WAIT;
    res->wait_until_ms = until_ms;
    json_decref(res->wait_state);
    res->wait_state = state;
}

void step_event(struct step_ctx *ctx, const char *type, json_t *data)
{
    if (!ctx->events) {
        json_decref(data);
        return;
    }
    if (!data) {
        /* The caller's json_pack failed: the event is lost, not empty. */
        ctx->events_lost++;
        return;
    }
    /* json_pack steals data even when it fails; json_array_append_new
     * takes a NULL without effect and says so. */
    if (json_array_append_new(ctx->events, json_pack("{s:s, s:o}", "type", type, "data", data)) != 0)
        ctx->events_lost++;
}
