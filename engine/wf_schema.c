/*
 * wf_schema.c - the JSON Schema (draft 2020-12) of the workflow format,
 * built from the step registry so that it can never disagree with what
 * `assent validate` accepts.  workflows/schema.json is its output
 * (`assent validate --print-schema`); a unit test checks the two are equal.
 *
 * The schema cannot express everything validate checks (references between
 * steps, reachability, cycles, expression syntax): it is for editors
 * (completion, types, unknown keys), validate is the authority.
 */
#include <stdio.h>
#include <string.h>

#include "engine/workflow.h"
#include "engine/step.h"

#define NAME_PATTERN "^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
/* 500ms 2s 5m 3h 7d, or ISO 8601 weeks/days/hours/minutes/seconds (no years or months). */
#define DURATION_PATTERN                                                                     \
    "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d)|P(?=[0-9]|T[0-9])([0-9]+(\\.[0-9]+)?W)?([0-9]+(\\.[0-9]+)?D)?" \
    "(T(?=[0-9])([0-9]+(\\.[0-9]+)?H)?([0-9]+(\\.[0-9]+)?M)?([0-9]+(\\.[0-9]+)?S)?)?)$"

static json_t *ref(const char *def)
{
    char buf[128];
    snprintf(buf, sizeof buf, "#/$defs/%s", def);
    return json_pack("{s:s}", "$ref", buf);
}

/* {"anyOf": [x, template]} */
static json_t *or_template(json_t *x)
{
    return json_pack("{s:[o,o]}", "anyOf", x, ref("template"));
}

static json_t *param_schema(const struct step_param *p)
{
    json_t *s = NULL;
    switch (p->type) {
    case SP_STRING:
        s = json_pack("{s:s}", "type", "string");
        break;
    case SP_INT:
        s = or_template(json_pack("{s:s}", "type", "integer"));
        break;
    case SP_BOOL:
        s = or_template(json_pack("{s:s}", "type", "boolean"));
        break;
    case SP_NUMBER:
        s = or_template(json_pack("{s:s}", "type", "number"));
        break;
    case SP_OBJECT:
        s = or_template(json_pack("{s:s}", "type", "object"));
        break;
    case SP_ARRAY:
        s = or_template(json_pack("{s:s}", "type", "array"));
        break;
    case SP_STRING_ARRAY:
        s = or_template(json_pack("{s:s, s:{s:s}}", "type", "array", "items", "type", "string"));
        break;
    case SP_DURATION:
        s = json_pack("{s:[o,o]}", "anyOf", ref("duration"), ref("template"));
        break;
    case SP_EXPR:
        s = json_pack("{s:s}", "type", "string");
        break;
    case SP_ANY:
        s = json_object();
        break;
    }
    if (s && p->doc)
        json_object_set_new(s, "description", json_string(p->doc));
    return s;
}

/* The if/then clause for one step type: its params and the outcomes next may name. */
static json_t *type_clause(const struct step_type *t)
{
    json_t *props = json_object(), *required = json_array(), *outcomes = json_array();
    for (const struct step_param *p = t->params; p && p->name; p++) {
        json_object_set_new(props, p->name, param_schema(p));
        if (p->required)
            json_array_append_new(required, json_string(p->name));
    }
    if (t->outcomes) {
        for (const char *const *o = t->outcomes; *o; o++)
            json_array_append_new(outcomes, json_string(*o));
    } else {
        json_array_append_new(outcomes, json_string("success"));
    }
    json_array_append_new(outcomes, json_string("error"));

    json_t *params = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props,
                               "additionalProperties", 0);
    if (json_array_size(required))
        json_object_set_new(params, "required", required);
    else
        json_decref(required);
    json_t *then_props = json_pack("{s:o, s:{s:[{s:s}, {s:s, s:{s:o}, s:{s:s}}]}}", "params", params,
                                   "next", "anyOf", "type", "string", "type", "object",
                                   "propertyNames", "enum", outcomes, "additionalProperties",
                                   "type", "string");
    json_t *then = json_pack("{s:o}", "properties", then_props);
    /* A type whose parameters are required needs "params" itself. */
    if (json_object_get(params, "required"))
        json_object_set_new(then, "required", json_pack("[s]", "params"));
    if (t->doc)
        json_object_set_new(then, "description", json_string(t->doc));
    return json_pack("{s:{s:{s:{s:s}}, s:[s]}, s:o}", "if", "properties", "type", "const", t->name,
                     "required", "type", "then", then);
}

json_t *wf_schema(void)
{
    const struct step_type *const *types = step_types();
    json_t *type_names = json_array(), *clauses = json_array();
    for (size_t i = 0; types[i]; i++) {
        json_array_append_new(type_names, json_string(types[i]->name));
        json_array_append_new(clauses, type_clause(types[i]));
    }

    json_t *defs = json_object();
    json_object_set_new(defs, "name",
                        json_pack("{s:s, s:s, s:s}", "type", "string", "pattern", NAME_PATTERN,
                                  "description",
                                  "letters, digits, _ and -, starting with a letter or _ (at most 64)"));
    json_object_set_new(defs, "duration",
                        json_pack("{s:s, s:s, s:s}", "type", "string", "pattern", DURATION_PATTERN,
                                  "description",
                                  "500ms, 2s, 5m, 3h, 7d, or ISO 8601 (PT30S, PT2H30M, P7D, P1W); no years or months"));
    json_object_set_new(defs, "template",
                        json_pack("{s:s, s:s, s:s}", "type", "string", "pattern", "^\\$\\{.*\\}$",
                                  "description",
                                  "exactly one ${expression}: the value keeps the JSON type of the result"));
    json_object_set_new(
        defs, "input",
        json_pack("{s:s, s:b, s:{s:{s:[s,s,s,s,s,s,s]}, s:{s:s}, s:{s:s}, s:{}, s:{s:s, s:s}}}",
                  "type", "object", "additionalProperties", 0, "properties", "type", "enum",
                  "string", "number", "integer", "boolean", "object", "array", "any", "required",
                  "type", "boolean", "description", "type", "string", "default",
                  "config_default", "type", "string", "description",
                  "configuration key whose value is used when the run gives none (a list key "
                  "gives an array)"));
    json_object_set_new(
        defs, "retry",
        json_pack("{s:s, s:b, s:{s:{s:s, s:i, s:i, s:s}, s:o, s:o, s:{s:s, s:i, s:i}}}", "type",
                  "object", "additionalProperties", 0, "properties", "attempts", "type", "integer",
                  "minimum", 1, "maximum", WF_MAX_ATTEMPTS, "description",
                  "attempts in all, the first included (default 3)", "backoff", ref("duration"),
                  "max_backoff", ref("duration"), "factor", "type", "number", "minimum", 1, "maximum",
                  100));
    json_object_set_new(
        defs, "next",
        json_pack("{s:[{s:s}, {s:s, s:{s:s}}], s:s}", "anyOf", "type", "string", "type", "object",
                  "additionalProperties", "type", "string", "description",
                  "a step name for every outcome but error, or {\"outcome\": \"step\"}; "
                  "no entry ends the run"));
    json_object_set_new(
        defs, "step",
        json_pack("{s:s, s:[s], s:b, s:{s:{s:o}, s:{s:s}, s:{s:s}, s:o, s:o, s:o}, s:o}", "type",
                  "object", "required", "type", "additionalProperties", 0, "properties", "type",
                  "enum", type_names, "description", "type", "string", "params", "type", "object",
                  "next", ref("next"), "retry", ref("retry"), "timeout", ref("duration"), "allOf",
                  clauses));

    json_t *root = json_object();
    json_object_set_new(root, "$schema", json_string("https://json-schema.org/draft/2020-12/schema"));
    json_object_set_new(root, "title", json_string("Assent workflow"));
    json_object_set_new(root, "description",
                        json_string("Generated by `assent validate --print-schema` from the step "
                                    "registry; see docs/workflow-format.md.  `assent validate` checks "
                                    "more (references, reachability, cycles, expressions)."));
    json_object_set_new(root, "type", json_string("object"));
    json_object_set_new(root, "required", json_pack("[s,s,s]", "name", "version", "steps"));
    json_object_set_new(root, "additionalProperties", json_false());
    json_object_set_new(
        root, "properties",
        json_pack("{s:{s:s}, s:o, s:{s:[{s:s, s:i, s:i}, {s:s, s:i}]}, s:{s:s}, s:{s:s, s:o}, "
                  "s:o, s:{s:s, s:i, s:i, s:{s:s}, s:o}}",
                  "$schema", "type", "string", "name", ref("name"), "version", "anyOf", "type",
                  "string", "minLength", 1, "maxLength", 64, "type", "integer", "minimum", 0,
                  "description", "type", "string", "input", "type", "object",
                  "additionalProperties", ref("input"), "start", ref("name"), "steps", "type",
                  "object", "minProperties", 1, "maxProperties", WF_MAX_STEPS, "propertyNames",
                  "pattern", NAME_PATTERN, "additionalProperties", ref("step")));
    json_object_set_new(json_object_get(root, "properties"), "title",
                        json_pack("{s:s, s:i, s:i, s:s}", "type", "string", "minLength", 1,
                                  "maxLength", 1000, "description",
                                  "how listings name a run: a ${...} template over input, e.g. "
                                  "\"${input.user} (${input.display_name})\""));
    json_object_set_new(root, "$defs", defs);
    return root;
}
