/*
 * expr.h - Assent's expression language and ${...} templates.  Grammar:
 * docs/expressions.md.
 *
 * Expressions are side-effect free: literals (numbers, 'strings' or
 * "strings", true, false, null, [lists]), paths (input.user.upn,
 * steps.post.output.status, a["key"], list[0]), comparison (== != < <= > >=),
 * && || !, `x in list` / `"sub" in "string"`, parentheses.  No calls, no
 * assignment, no way to run code.  Evaluation is bounded (depth, length).
 *
 * Names resolve against a scope object: for a workflow step the scope is
 * {"input": ..., "steps": {"name": {"output":..., "outcome":...}}, "run": {...}};
 * for a report row (KPIs, `report --where`) the scope is the row itself.
 * A missing path evaluates to null (not an error), so `x == null` tests absence.
 *
 * A compiled struct expr is immutable and thread-safe.
 * Implementation: base/expr.c (expressions), base/tmpl.c (templates).
 */
#ifndef ASSENT_EXPR_H
#define ASSENT_EXPR_H

#include <jansson.h>

#include "base/error.h"

#define EXPR_MAX_LEN 4096     /* bytes of source per expression */
#define EXPR_MAX_DEPTH 64     /* nesting of ( [ ! */
#define TMPL_MAX_DEPTH 128    /* nesting of arrays/objects walked by tmpl_resolve/tmpl_check */
#define TMPL_MAX_OUTPUT (16 * 1024 * 1024) /* bytes of one rendered template string */

struct expr;

/* Compile src.  On error err->msg says what and at which 1-based column.
 * Returns AS_EINVAL for a syntax error, AS_ELIMIT past the length/depth caps. */
enum as_code expr_compile(const char *src, struct expr **out, struct as_err *err) AS_WUR;

/* The same for src[0..len); on error *err_off (may be NULL) is the byte
 * offset in src where the problem was found. */
enum as_code expr_compile_n(const char *src, size_t len, struct expr **out, size_t *err_off,
                            struct as_err *err) AS_WUR;

/* Evaluate against scope (borrowed).  *out is a new reference. */
enum as_code expr_eval(const struct expr *e, const json_t *scope, json_t **out,
                       struct as_err *err) AS_WUR;

/* Evaluate and take truthiness: false, null, 0, "", [] and {} are false. */
enum as_code expr_eval_bool(const struct expr *e, const json_t *scope, int *out,
                            struct as_err *err) AS_WUR;

int expr_truthy(const json_t *v);

/*
 * The first path segments an expression reads, e.g. for
 * `steps.post.output.status == 200 && input.x` -> ["steps.post", "input"]
 * (for "steps" the step name is kept).  New reference to an array of strings.
 * Used by validate to check references to steps that cannot have run before.
 */
json_t *expr_refs(const struct expr *e);

/* Append e's refs (as expr_refs) to the array refs, skipping names already there.
 * 0, or -1 out of memory. */
int expr_refs_append(const struct expr *e, json_t *refs);

void expr_free(struct expr *e);

enum tmpl_escape { TMPL_RAW, TMPL_HTML };

/*
 * Resolve every ${expr} inside a JSON value (recursively through objects and
 * arrays).  A string that is exactly one "${expr}" keeps the JSON type of the
 * result; otherwise results are converted to text and spliced in.  "$${" is
 * a literal "${".  *out is a new reference.
 */
enum as_code tmpl_resolve(const json_t *value, const json_t *scope, json_t **out,
                          struct as_err *err) AS_WUR;

/*
 * Render one template string to text, escaping each substituted value per
 * `esc` (the template's own text is left as written).  *out is malloc'd.
 */
enum as_code tmpl_render(const char *tmpl, const json_t *scope, enum tmpl_escape esc, char **out,
                         struct as_err *err) AS_WUR;

/* Check one template string s[0..len): like tmpl_check, and on error
 * *err_off (may be NULL) is the byte offset in s of the problem. */
enum as_code tmpl_check_string(const char *s, size_t len, json_t *refs_out, size_t *err_off,
                               struct as_err *err) AS_WUR;

/* Like tmpl_check_string, but appends {"ref": "steps.x", "offset": n} objects
 * to refs_out (required), n being the byte offset in s where the first use of
 * that name starts (for precise diagnostics). */
enum as_code tmpl_check_located(const char *s, size_t len, json_t *refs_out, size_t *err_off,
                                struct as_err *err) AS_WUR;

/* Like expr_refs, appending {"ref", "offset": base + offset in the source} objects
 * to refs (names already present are skipped).  0, or -1 out of memory. */
int expr_refs_located(const struct expr *e, json_t *refs, size_t base);

/* True when s is exactly one "${expr}" (its value keeps its JSON type). */
int tmpl_is_whole(const char *s);

/* Check the syntax of every ${...} in value and collect their refs (as expr_refs) into refs_out
 * (an array, appended to; may be NULL).  err->msg names the bad expression. */
enum as_code tmpl_check(const json_t *value, json_t *refs_out, struct as_err *err) AS_WUR;

#endif
