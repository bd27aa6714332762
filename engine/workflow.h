/*
 * workflow.h - the workflow model: load a JSON definition, validate it, and
 * walk its step graph.  Format: docs/workflow-format.md, schema:
 * workflows/schema.json.
 *
 *   {"name": "resilient-http", "version": "1", "description": "...",
 *    "input": {"url": {"type": "string", "required": true}},
 *    "start": "post",                      (optional: default = first step)
 *    "steps": {
 *      "post": {"type": "http", "params": {...},
 *               "retry": {"attempts": 5, "backoff": "1s", "max_backoff": "30s", "factor": 2},
 *               "timeout": "10s",
 *               "next": {"success": "check", "error": "report"}},
 *      "check": {"type": "condition", "params": {"expr": "..."},
 *                "next": {"true": "wait", "false": "report"}},
 *      ...}}
 *
 * `next` is a step name (taken for every outcome but "error") or an object
 * mapping outcomes to step names; the step's default outcome is "success";
 * "error" is taken when the step fails for good.  An outcome with no entry
 * ends the run: successfully, or failed for "error".  A step type produces
 * the outcomes it lists in step_type.outcomes (or only "success" when that
 * is NULL), plus "error".  Steps may also carry a "description".  The graph
 * has no cycles and every step is reachable from the start (validate
 * refuses anything else), so a step runs at most once per run.
 *
 * A loaded struct workflow is immutable and may be shared by threads.
 */
#ifndef ASSENT_WORKFLOW_H
#define ASSENT_WORKFLOW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/error.h"

struct step_type;

#define WF_DEFAULT_ATTEMPTS 3
#define WF_DEFAULT_BACKOFF_MS 1000
#define WF_DEFAULT_MAX_BACKOFF_MS 60000
#define WF_DEFAULT_FACTOR 2.0
#define WF_DEFAULT_TIMEOUT_MS 300000
#define WF_MAX_ATTEMPTS 1000
#define WF_MAX_STEPS 1000
#define WF_MAX_FILE_SIZE (4 * 1024 * 1024)
#define WF_MAX_DIAGS 1000 /* per document; the rest are counted in one LIMIT diagnostic */

struct wf_retry {
    int attempts;          /* total attempts including the first; >= 1 (default 3) */
    int64_t backoff_ms;    /* first wait (default 1000) */
    int64_t max_backoff_ms;/* cap (default 60000) */
    double factor;         /* growth per attempt (default 2); full jitter is applied */
};

struct wf_step {
    const char *name;              /* borrowed from def */
    const struct step_type *type;
    const json_t *params;          /* borrowed from def; {} when absent */
    const json_t *next;            /* borrowed: string, object or NULL */
    const char *description;       /* borrowed; NULL when absent */
    struct wf_retry retry;
    int64_t timeout_ms;            /* default 300000 */
    size_t index;                  /* position in steps[] */
};

struct workflow {
    char *name;
    char *version;          /* as written; an integer version is turned into its decimal text */
    const char *description;/* borrowed from def; NULL when absent */
    const json_t *input;    /* borrowed: the input description object, or NULL */
    char hash[65];          /* hex SHA-256 of the canonical JSON (sorted keys, compact,
                               with the effective "start") */
    json_t *def;            /* the whole parsed definition (owned) */
    char *canonical;        /* the text stored for this version (owned): the same document
                               compact in the author's key order, so the hash of its
                               sorted form is `hash` and its order is the author's */
    const char *start;      /* name of the first step (borrowed) */
    struct wf_step *steps;
    size_t n_steps;
    json_t *empty_params;   /* the {} that steps without params point to (owned) */
};

/*
 * Load and validate the workflow in `path`.  Every defect is added to diags
 * with file, line, column and JSON path filled in.  Returns AS_OK and a new
 * workflow in *out when there are no error-level diagnostics (warnings are
 * allowed); otherwise AS_EINVAL and *out = NULL.  diags may be NULL.  Caller
 * frees *out with wf_free() and diags with diag_free().
 */
enum as_code wf_load_file(const char *path, struct workflow **out, struct diag_list *diags,
                          struct as_err *err) AS_WUR;

/* The same for JSON text; `origin` names it in diagnostics (e.g. a file name or "db:<hash>"). */
enum as_code wf_load_string(const char *text, const char *origin, struct workflow **out,
                            struct diag_list *diags, struct as_err *err) AS_WUR;

/* The same for text[0..len) (need not be NUL-terminated). */
enum as_code wf_load_buffer(const char *text, size_t len, const char *origin,
                            struct workflow **out, struct diag_list *diags,
                            struct as_err *err) AS_WUR;

/*
 * Check a run's input against the workflow's input description and fill in
 * defaults: required inputs must be present, types must match ("string",
 * "number", "integer", "boolean", "object", "array", "any"), and names that
 * are not declared are refused.  A workflow without "input" accepts any
 * object.  input may be NULL (= {}).  *out is a new object; AS_EINVAL with
 * a message naming the input otherwise.
 */
enum as_code wf_input_prepare(const struct workflow *wf, const json_t *input, json_t **out,
                              struct as_err *err) AS_WUR;

/* The JSON Schema (draft 2020-12) of the format, built from the step registry:
 * workflows/schema.json is its output.  New reference. */
json_t *wf_schema(void);

/* 1 when v is of input type `type` (the names above). */
int wf_value_has_type(const json_t *v, const char *type);

/* The step called name, or NULL. */
const struct wf_step *wf_step_find(const struct workflow *wf, const char *name);

/*
 * Where to go after `step` ends with `outcome` ("" means "success"; "error"
 * for a permanent failure).  Returns the next step, or NULL when the run ends.
 */
const struct wf_step *wf_next(const struct workflow *wf, const struct wf_step *step,
                              const char *outcome);

void wf_free(struct workflow *wf);

/* Path of the file a diagnostic belongs to is the diag list's origin; this prints
 * "file:line:col: severity CODE: message (at $.path)" lines, or a JSON array with --json,
 * to file (a FILE *; NULL = stdout). */
void wf_diags_print(const struct diag_list *diags, const char *origin, int json, void *file);

/* One diagnostic as the text line above (no newline) into buf. */
void wf_diag_format(const struct diag *d, const char *origin, char *buf, size_t size);

/* Append {file,line,column,path,code,severity,message} objects to arr.  0, or -1 out of memory. */
int wf_diags_append_json(json_t *arr, const struct diag_list *diags, const char *origin);

#endif
