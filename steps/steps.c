/* steps.c - registers the generic step types with the engine. */
#include "steps/steps.h"

#include "engine/step.h"

extern const struct step_type step_type_log, step_type_condition, step_type_delay,
    step_type_fail, step_type_http, step_type_email;

void steps_register(void)
{
    static const struct step_type *const types[] = {
        &step_type_log,  &step_type_condition, &step_type_delay,
        &step_type_fail, &step_type_http,      &step_type_email,
        NULL,
    };
    step_types_register(types);
}
