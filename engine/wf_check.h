/*
 * wf_check.h - internal to the workflow loader: the checks `assent validate`
 * runs on a parsed definition (engine/wf_check.c), shared with
 * engine/workflow.c, which parses, locates and builds the model.
 */
#ifndef ASSENT_WF_CHECK_H
#define ASSENT_WF_CHECK_H

#include <jansson.h>
#include <stddef.h>

#include "base/diag.h"
#include "base/json_locate.h"

struct step_type;

struct vref {
    char *ref;     /* "steps.x", "input", ... */
    char *path;    /* the string where it appears */
    size_t offset; /* byte offset of the reference in that string */
};

struct vedge {
    size_t to;
    char *path; /* of the next entry */
};

struct vstep {
    const char *name;
    json_t *def;                 /* borrowed; NULL when not an object */
    const struct step_type *type;
    struct vref *refs;
    size_t n_refs;
    struct vedge *edges;
    size_t n_edges;
};

struct wf_check {
    const char *text;
    size_t len;
    struct json_locmap *loc;
    struct diag_list *diags;
    json_t *root;
    struct vstep *steps;
    size_t n_steps;
    size_t start; /* index, or (size_t)-1 */
    int oom;
    size_t first;          /* diags->n before this document's checks */
    size_t dropped;        /* diagnostics past WF_MAX_DIAGS, not recorded */
    size_t dropped_errors; /* how many of them were errors */
};

/* Add a diagnostic (its position is filled later from its path); past
 * WF_MAX_DIAGS for this document it is only counted in v->dropped. */
void wf_check_add(struct wf_check *v, enum diag_severity sev, const char *code, const char *path,
                  const char *fmt, ...) AS_PRINTF(5, 6);

/* Every check on v->root: keys, types, steps, params, templates, next, graph, references.
 * Fills v->steps and v->start (when the document has steps). */
void wf_check_document(struct wf_check *v);

/* Give diags[from..] without a position the line:column of their path in loc. */
void wf_check_locate(struct diag_list *diags, size_t from, const struct json_locmap *loc);

/* Sort diags[from..] by line and column, keeping the check order among equals. */
void wf_check_sort(struct diag_list *diags, size_t from);

void wf_check_free(struct wf_check *v);

/* "an object", "a string", ... for messages. */
const char *wf_json_type_name(const json_t *j);

/* "a, b, c" of names[0..n) into buf. */
void wf_join_names(char *buf, size_t size, const char *const *names, size_t n);

#endif
