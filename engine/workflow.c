/*
 * workflow.c - load, validate and walk workflow definitions (see workflow.h
 * and docs/workflow-format.md).
 *
 * Loading is one pass of checks over the parsed JSON that collects every
 * defect as a diagnostic with a JSON path (never stopping at the first),
 * followed by a graph pass (reachability, cycles, references to earlier
 * steps).  Line and column come from engine/json_locate.c, which maps each
 * path back to the source text.  Only a definition without errors becomes
 * a struct workflow, which is immutable from then on.
 */
#include "engine/workflow.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr.h"
#include "engine/json_locate.h"
#include "engine/timeutil.h"
#include "steps/step.h"

#define PATH_MAX_LEN JL_MAX_PATH
#define MAX_CYCLES_REPORTED 10
#define WALK_MAX_DEPTH 128

/* ---------- validation context ---------- */

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

struct vctx {
    const char *text;
    size_t len;
    struct json_locmap *loc;
    struct diag_list *diags;
    json_t *root;
    struct vstep *steps;
    size_t n_steps;
    size_t start; /* index, or (size_t)-1 */
    int oom;
};

static void vadd(struct vctx *v, enum diag_severity sev, const char *code, const char *path,
                 const char *fmt, ...) AS_PRINTF(5, 6);
static void vadd(struct vctx *v, enum diag_severity sev, const char *code, const char *path,
                 const char *fmt, ...)
{
    char msg[sizeof ((struct diag *)0)->msg];
    size_t before = v->diags->n;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_add(v->diags, sev, code, path, "%s", msg);
    if (v->diags->n == before)
        v->oom = 1;
}

static size_t find_step(const struct vctx *v, const char *name)
{
    for (size_t i = 0; i < v->n_steps; i++)
        if (strcmp(v->steps[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

/* Edit distance (bounded inputs), for "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* " (did you mean \"x\"?)" into hint when a candidate is close, else "". */
static void suggest(char *hint, size_t size, const char *word, const char *const *cands, size_t n)
{
    size_t best = (size_t)-1;
    const char *pick = NULL;
    hint[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t d = edit_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    if (pick && best <= 2 && best < strlen(word))
        snprintf(hint, size, " (did you mean \"%s\"?)", pick);
}

/* "a, b, c" of a NULL-terminated list into buf. */
static void join_names(char *buf, size_t size, const char *const *names, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && names[i]; i++) {
        int k = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
        if (k < 0 || (size_t)k >= size - used)
            break;
        used += (size_t)k;
    }
}

static const char *json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static void path_key(struct vctx *v, char *buf, const char *parent, const char *key)
{
    if (jl_path_key(buf, PATH_MAX_LEN + 1, parent, key) != 0)
        snprintf(buf, PATH_MAX_LEN + 1, "%s", parent); /* too long: point at the parent */
}

/* Check that every key of obj is in known[0..n); UNKNOWN_KEY for others. */
static void check_keys(struct vctx *v, const json_t *obj, const char *path, const char *what,
                       const char *const *known, size_t n)
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        int ok = 0;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (ok)
            continue;
        char kp[PATH_MAX_LEN + 1], hint[96], list[256];
        path_key(v, kp, path, k);
        suggest(hint, sizeof hint, k, known, n);
        join_names(list, sizeof list, known, n);
        vadd(v, DIAG_ERROR, "UNKNOWN_KEY", kp, "unknown key \"%s\" in %s%s (allowed: %s)", k, what,
             hint, list);
    }
}

/* Name rule for workflows and steps: [A-Za-z_][A-Za-z0-9_-]{0,63}. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Give the last diagnostic the position of byte `off` inside the string value at path. */
static void position_in_string(struct vctx *v, const char *path, size_t off)
{
    if (v->oom || v->diags->n == 0)
        return;
    const struct jl_entry *e = jl_find(v->loc, path);
    if (e && e->value.offset < v->len && v->text[e->value.offset] == '"') {
        struct jl_pos p = jl_string_pos(v->text, v->len, e->value, off);
        struct diag *d = &v->diags->items[v->diags->n - 1];
        d->line = p.line;
        d->column = p.column;
    }
}

static void add_expr_diag(struct vctx *v, const char *path, size_t off, const char *what,
                          const char *msg)
{
    vadd(v, DIAG_ERROR, "EXPR_SYNTAX", path, "%s: %s", what, msg);
    position_in_string(v, path, off);
}

static void add_ref(struct vctx *v, struct vstep *s, const char *ref, const char *path,
                    size_t offset)
{
    struct vref *r = realloc(s->refs, (s->n_refs + 1) * sizeof *r);
    if (!r) {
        v->oom = 1;
        return;
    }
    s->refs = r;
    r[s->n_refs].ref = strdup(ref);
    r[s->n_refs].path = strdup(path);
    r[s->n_refs].offset = offset;
    if (!r[s->n_refs].ref || !r[s->n_refs].path) {
        free(r[s->n_refs].ref);
        free(r[s->n_refs].path);
        v->oom = 1;
        return;
    }
    s->n_refs++;
}

static void add_refs(struct vctx *v, struct vstep *s, json_t *refs, const char *path)
{
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        add_ref(v, s, json_string_value(json_object_get(r, "ref")), path,
                (size_t)json_integer_value(json_object_get(r, "offset")));
    }
}

/* Check every ${...} in the strings of value (recursively), collecting refs. */
static void walk_templates(struct vctx *v, struct vstep *s, const json_t *value, const char *path,
                           int depth)
{
    if (depth > WALK_MAX_DEPTH) {
        vadd(v, DIAG_ERROR, "LIMIT", path, "value nested deeper than %d levels", WALK_MAX_DEPTH);
        return;
    }
    if (json_is_string(value)) {
        json_t *refs = json_array();
        struct as_err err = {0};
        size_t off = 0;
        if (!refs) {
            v->oom = 1;
            return;
        }
        enum as_code rc = tmpl_check_located(json_string_value(value), json_string_length(value),
                                             refs, &off, &err);
        if (rc == AS_ENOMEM)
            v->oom = 1;
        else if (rc != AS_OK)
            add_expr_diag(v, path, off, "bad ${...}", err.msg);
        else
            add_refs(v, s, refs, path);
        json_decref(refs);
        return;
    }
    if (json_is_array(value)) {
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e) {
            char p[PATH_MAX_LEN + 1];
            if (jl_path_index(p, sizeof p, path, i) != 0)
                snprintf(p, sizeof p, "%s", path);
            walk_templates(v, s, e, p, depth + 1);
        }
    } else if (json_is_object(value)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)value, k, e) {
            char p[PATH_MAX_LEN + 1];
            path_key(v, p, path, k);
            walk_templates(v, s, e, p, depth + 1);
        }
    }
}

static const char *param_type_name(enum step_param_type t)
{
    switch (t) {
    case SP_STRING: return "a string";
    case SP_INT: return "an integer";
    case SP_BOOL: return "a boolean";
    case SP_NUMBER: return "a number";
    case SP_OBJECT: return "an object";
    case SP_ARRAY: return "an array";
    case SP_STRING_ARRAY: return "an array of strings";
    case SP_DURATION: return "a duration string (PT30S, 2s, 5m, P7D)";
    case SP_EXPR: return "an expression string";
    case SP_ANY: return "any value";
    }
    return "a value";
}

/*
 * Strict shape of a duration before it reaches time_parse_duration(), whose
 * strtod() would also take "nan", "inf", hex and signs: digits with an
 * optional fraction and a unit (500ms 2s 5m 3h 7d), or P... with only the
 * ISO 8601 designators.
 */
static int duration_syntax_ok(const char *s)
{
    size_t i = 0;
    if (s[0] == 'P') {
        for (i = 1; s[i]; i++)
            if (!strchr("0123456789.TWDHMSY", s[i]))
                return 0;
        return 1;
    }
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0)
        return 0;
    if (s[i] == '.') {
        size_t f = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    return strcmp(s + i, "ms") == 0 || strcmp(s + i, "s") == 0 || strcmp(s + i, "m") == 0 ||
           strcmp(s + i, "h") == 0 || strcmp(s + i, "d") == 0;
}

static void check_duration_value(struct vctx *v, const json_t *val, const char *path,
                                 const char *what, int64_t *out, int allow_zero)
{
    struct as_err err = {0};
    int64_t ms = 0;
    if (!json_is_string(val)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", path, "%s must be a duration string such as \"30s\" or \"PT30S\", not %s",
             what, json_type_name(val));
        return;
    }
    if (!duration_syntax_ok(json_string_value(val))) {
        vadd(v, DIAG_ERROR, "BAD_DURATION", path,
             "%s: invalid duration \"%.80s\" (use ISO 8601 like PT30S or P7D, or 500ms/2s/5m/3h/7d)", what,
             json_string_value(val));
        return;
    }
    if (time_parse_duration(json_string_value(val), &ms, &err) != AS_OK) {
        vadd(v, DIAG_ERROR, "BAD_DURATION", path, "%s: %s", what, err.msg);
        return;
    }
    if (ms < 0 || (!allow_zero && ms == 0)) {
        vadd(v, DIAG_ERROR, "BAD_DURATION", path, "%s must be longer than zero", what);
        return;
    }
    if (out)
        *out = ms;
}

static void check_params(struct vctx *v, struct vstep *s, const char *step_path)
{
    char ppath[PATH_MAX_LEN + 1];
    const json_t *params = json_object_get(s->def, "params");
    const struct step_type *t = s->type;
    json_t *empty = NULL;

    path_key(v, ppath, step_path, "params");
    if (params && !json_is_object(params))
        return; /* reported as WRONG_TYPE by the caller */
    if (!params)
        params = empty = json_object();
    if (!params) {
        v->oom = 1;
        return;
    }

    /* declared parameters: presence and type */
    for (const struct step_param *p = t->params; p && p->name; p++) {
        char kp[PATH_MAX_LEN + 1];
        const json_t *val = json_object_get(params, p->name);
        path_key(v, kp, ppath, p->name);
        if (!val) {
            if (p->required)
                vadd(v, DIAG_ERROR, "MISSING_PARAM", kp, "step \"%s\" (%s) needs parameter \"%s\" (%s)",
                     s->name, t->name, p->name, param_type_name(p->type));
            continue;
        }
        int whole = json_is_string(val) && tmpl_is_whole(json_string_value(val));
        int ok = 1;
        switch (p->type) {
        case SP_STRING: ok = json_is_string(val); break;
        case SP_INT: ok = json_is_integer(val) || whole; break;
        case SP_BOOL: ok = json_is_boolean(val) || whole; break;
        case SP_NUMBER: ok = json_is_number(val) || whole; break;
        case SP_OBJECT: ok = json_is_object(val) || whole; break;
        case SP_ARRAY: ok = json_is_array(val) || whole; break;
        case SP_STRING_ARRAY:
            if (json_is_array(val)) {
                size_t i;
                json_t *e;
                json_array_foreach(val, i, e) {
                    if (!json_is_string(e)) {
                        char ep[PATH_MAX_LEN + 1];
                        if (jl_path_index(ep, sizeof ep, kp, i) != 0)
                            snprintf(ep, sizeof ep, "%s", kp);
                        vadd(v, DIAG_ERROR, "PARAM_TYPE", ep,
                             "parameter \"%s\" of step \"%s\" must be an array of strings; item %zu is %s",
                             p->name, s->name, i, json_type_name(e));
                    }
                }
            } else {
                ok = whole;
            }
            break;
        case SP_DURATION:
            if (json_is_string(val) && strstr(json_string_value(val), "${"))
                break; /* resolved at run time */
            if (!json_is_string(val)) {
                ok = 0;
                break;
            }
            {
                char what[160];
                snprintf(what, sizeof what, "parameter \"%s\" of step \"%s\"", p->name, s->name);
                check_duration_value(v, val, kp, what, NULL, 1);
            }
            break;
        case SP_EXPR:
            if (!json_is_string(val)) {
                ok = 0;
                break;
            }
            {
                struct expr *e = NULL;
                struct as_err err = {0};
                size_t off = 0;
                enum as_code rc = expr_compile_n(json_string_value(val), json_string_length(val),
                                                 &e, &off, &err);
                if (rc == AS_ENOMEM) {
                    v->oom = 1;
                } else if (rc != AS_OK) {
                    char what[160];
                    snprintf(what, sizeof what, "expression in \"%s\" of step \"%s\"", p->name, s->name);
                    add_expr_diag(v, kp, off, what, err.msg);
                } else {
                    json_t *refs = json_array();
                    if (refs && expr_refs_located(e, refs, 0) == 0)
                        add_refs(v, s, refs, kp);
                    else
                        v->oom = 1;
                    json_decref(refs);
                }
                expr_free(e);
            }
            break;
        case SP_ANY:
            break;
        }
        if (!ok)
            vadd(v, DIAG_ERROR, "PARAM_TYPE", kp, "parameter \"%s\" of step \"%s\" must be %s, not %s",
                 p->name, s->name, param_type_name(p->type), json_type_name(val));
        if (p->type != SP_EXPR)
            walk_templates(v, s, val, kp, 0);
    }

    /* undeclared parameters */
    {
        const char *k;
        json_t *val;
        const char *names[64];
        size_t n = 0;
        for (const struct step_param *p = t->params; p && p->name && n < 64; p++)
            names[n++] = p->name;
        json_object_foreach((json_t *)params, k, val) {
            int known = 0;
            for (const struct step_param *p = t->params; p && p->name && !known; p++)
                known = strcmp(p->name, k) == 0;
            if (known)
                continue;
            char kp[PATH_MAX_LEN + 1], hint[96], list[300];
            path_key(v, kp, ppath, k);
            suggest(hint, sizeof hint, k, names, n);
            join_names(list, sizeof list, names, n);
            vadd(v, DIAG_ERROR, "UNKNOWN_PARAM", kp, "step type %s has no parameter \"%s\"%s (parameters: %s)",
                 t->name, k, hint, n ? list : "none");
            walk_templates(v, s, val, kp, 0);
        }
    }

    if (t->waits && !json_object_get(params, "expiry") && !json_object_get(params, "duration"))
        vadd(v, DIAG_WARNING, "DEFAULT_EXPIRY", ppath,
             "step \"%s\" (%s) waits with no \"expiry\": it expires after the configured default_wait",
             s->name, t->name);

    if (t->validate)
        t->validate(params, ppath, v->diags);
    json_decref(empty);
}

/* Outcomes a type can produce besides "error": its list, or "success" when it declares none. */
static int type_has_outcome(const struct step_type *t, const char *o)
{
    if (!t->outcomes)
        return strcmp(o, "success") == 0;
    for (const char *const *p = t->outcomes; *p; p++)
        if (strcmp(*p, o) == 0)
            return 1;
    return 0;
}

static void add_edge(struct vctx *v, struct vstep *s, size_t to, const char *path)
{
    struct vedge *e = realloc(s->edges, (s->n_edges + 1) * sizeof *e);
    if (!e) {
        v->oom = 1;
        return;
    }
    s->edges = e;
    e[s->n_edges].to = to;
    e[s->n_edges].path = strdup(path);
    if (!e[s->n_edges].path) {
        v->oom = 1;
        return;
    }
    s->n_edges++;
}

static void check_target(struct vctx *v, struct vstep *s, const json_t *val, const char *path,
                         const char *outcome)
{
    if (!json_is_string(val)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", path, "next of step \"%s\"%s%s must be a step name, not %s",
             s->name, outcome ? " for " : "", outcome ? outcome : "", json_type_name(val));
        return;
    }
    size_t to = find_step(v, json_string_value(val));
    if (to == (size_t)-1) {
        const char *names[256];
        size_t n = 0;
        char hint[96];
        for (size_t i = 0; i < v->n_steps && n < 256; i++)
            names[n++] = v->steps[i].name;
        suggest(hint, sizeof hint, json_string_value(val), names, n);
        vadd(v, DIAG_ERROR, "DANGLING_NEXT", path, "step \"%s\" goes to \"%s\", which does not exist%s",
             s->name, json_string_value(val), hint);
        return;
    }
    add_edge(v, s, to, path);
}

static void check_next(struct vctx *v, struct vstep *s, const char *step_path)
{
    char np[PATH_MAX_LEN + 1];
    const json_t *next = json_object_get(s->def, "next");
    if (!next)
        return;
    path_key(v, np, step_path, "next");
    if (json_is_string(next)) {
        check_target(v, s, next, np, NULL);
        return;
    }
    if (!json_is_object(next)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", np,
             "next of step \"%s\" must be a step name or an object of outcome -> step, not %s", s->name,
             json_type_name(next));
        return;
    }
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)next, k, val) {
        char kp[PATH_MAX_LEN + 1];
        path_key(v, kp, np, k);
        if (s->type && strcmp(k, "error") != 0 && !type_has_outcome(s->type, k)) {
            char list[256];
            const char *def[] = {"success", NULL};
            const char *const *outs = s->type->outcomes ? s->type->outcomes : def;
            size_t n = 0;
            while (outs[n])
                n++;
            join_names(list, sizeof list, outs, n);
            char hint[96];
            const char *cands[34];
            size_t nc = 0;
            for (; nc < n && nc < 32; nc++)
                cands[nc] = outs[nc];
            cands[nc++] = "error";
            suggest(hint, sizeof hint, k, cands, nc);
            vadd(v, DIAG_ERROR, "UNKNOWN_OUTCOME", kp,
                 "step type %s never ends with outcome \"%s\"%s (its outcomes: %s%serror)",
                 s->type->name, k, hint, list, n ? ", " : "");
        }
        check_target(v, s, val, kp, k);
    }
    if (s->type && s->type->outcomes) {
        for (const char *const *o = s->type->outcomes; *o; o++) {
            if (!json_object_get(next, *o))
                vadd(v, DIAG_WARNING, "UNHANDLED_OUTCOME", np,
                     "step \"%s\" has no next for outcome \"%s\": the run ends there", s->name, *o);
        }
    }
}

static void check_retry(struct vctx *v, struct vstep *s, const char *step_path)
{
    static const char *const keys[] = {"attempts", "backoff", "max_backoff", "factor"};
    char rp[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
    const json_t *r = json_object_get(s->def, "retry");
    int64_t backoff = -1, max_backoff = -1;
    if (!r)
        return;
    path_key(v, rp, step_path, "retry");
    if (!json_is_object(r)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", rp, "retry of step \"%s\" must be an object, not %s", s->name,
             json_type_name(r));
        return;
    }
    check_keys(v, r, rp, "retry", keys, 4);
    const json_t *a = json_object_get(r, "attempts");
    if (a) {
        path_key(v, kp, rp, "attempts");
        if (!json_is_integer(a))
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "retry.attempts must be an integer, not %s",
                 json_type_name(a));
        else if (json_integer_value(a) < 1 || json_integer_value(a) > WF_MAX_ATTEMPTS)
            vadd(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.attempts must be between 1 and %d (it counts the first attempt)",
                 WF_MAX_ATTEMPTS);
    }
    const json_t *b = json_object_get(r, "backoff");
    if (b) {
        path_key(v, kp, rp, "backoff");
        check_duration_value(v, b, kp, "retry.backoff", &backoff, 1);
    }
    const json_t *m = json_object_get(r, "max_backoff");
    if (m) {
        path_key(v, kp, rp, "max_backoff");
        check_duration_value(v, m, kp, "retry.max_backoff", &max_backoff, 1);
        if (max_backoff >= 0 && max_backoff < (backoff >= 0 ? backoff : (b ? 0 : WF_DEFAULT_BACKOFF_MS)))
            vadd(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.max_backoff is shorter than retry.backoff");
    }
    const json_t *f = json_object_get(r, "factor");
    if (f) {
        path_key(v, kp, rp, "factor");
        if (!json_is_number(f))
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "retry.factor must be a number, not %s", json_type_name(f));
        else if (json_number_value(f) < 1.0 || json_number_value(f) > 100.0)
            vadd(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.factor must be between 1 and 100");
    }
}

static void check_step(struct vctx *v, struct vstep *s)
{
    static const char *const keys[] = {"type", "description", "params", "next", "retry", "timeout"};
    char sp[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
    char steps_path[] = "$.steps";
    path_key(v, sp, steps_path, s->name);

    if (!name_ok(s->name))
        vadd(v, DIAG_ERROR, "BAD_NAME", sp,
             "step name \"%s\" must start with a letter or _ and hold only letters, digits, _ and - (at most 64)",
             s->name);
    if (!json_is_object(s->def)) {
        vadd(v, DIAG_ERROR, "NOT_OBJECT", sp, "step \"%s\" must be an object, not %s", s->name,
             json_type_name(s->def));
        s->def = NULL;
        return;
    }
    check_keys(v, s->def, sp, "a step", keys, 6);

    const json_t *type = json_object_get(s->def, "type");
    path_key(v, kp, sp, "type");
    if (!type) {
        vadd(v, DIAG_ERROR, "MISSING_FIELD", kp, "step \"%s\" has no \"type\"", s->name);
    } else if (!json_is_string(type)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "type of step \"%s\" must be a string, not %s", s->name,
             json_type_name(type));
    } else {
        s->type = step_type_find(json_string_value(type));
        if (!s->type) {
            const struct step_type *const *all = step_types();
            const char *names[64];
            size_t n = 0;
            char hint[96], list[512];
            for (; all[n] && n < 64; n++)
                names[n] = all[n]->name;
            suggest(hint, sizeof hint, json_string_value(type), names, n);
            join_names(list, sizeof list, names, n);
            vadd(v, DIAG_ERROR, "UNKNOWN_STEP_TYPE", kp, "unknown step type \"%s\"%s (types: %s)",
                 json_string_value(type), hint, list);
        }
    }

    const json_t *d = json_object_get(s->def, "description");
    if (d && !json_is_string(d)) {
        path_key(v, kp, sp, "description");
        vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "description must be a string, not %s", json_type_name(d));
    }

    const json_t *params = json_object_get(s->def, "params");
    if (params && !json_is_object(params)) {
        path_key(v, kp, sp, "params");
        vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "params of step \"%s\" must be an object, not %s", s->name,
             json_type_name(params));
    }
    if (s->type)
        check_params(v, s, sp);
    else if (params && json_is_object(params)) {
        path_key(v, kp, sp, "params");
        walk_templates(v, s, params, kp, 0);
    }

    check_retry(v, s, sp);
    const json_t *t = json_object_get(s->def, "timeout");
    if (t) {
        char what[160];
        path_key(v, kp, sp, "timeout");
        snprintf(what, sizeof what, "timeout of step \"%s\"", s->name);
        check_duration_value(v, t, kp, what, NULL, 0);
    }
}

static void check_input_spec(struct vctx *v, const json_t *input)
{
    static const char *const keys[] = {"type", "required", "description", "default"};
    static const char *const types[] = {"string", "number", "integer", "boolean",
                                        "object", "array", "any"};
    const char *k;
    json_t *spec;
    if (!json_is_object(input)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.input",
             "input must be an object describing each input, e.g. {\"url\": {\"type\": \"string\", \"required\": true}}, not %s",
             json_type_name(input));
        return;
    }
    json_object_foreach((json_t *)input, k, spec) {
        char ip[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
        path_key(v, ip, "$.input", k);
        if (!json_is_object(spec)) {
            vadd(v, DIAG_ERROR, "NOT_OBJECT", ip, "input \"%s\" must be an object like {\"type\": \"string\"}, not %s",
                 k, json_type_name(spec));
            continue;
        }
        check_keys(v, spec, ip, "an input", keys, 4);
        const json_t *t = json_object_get(spec, "type");
        path_key(v, kp, ip, "type");
        const char *tname = NULL;
        if (t && !json_is_string(t)) {
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "input type must be a string, not %s", json_type_name(t));
        } else if (t) {
            for (size_t i = 0; i < 7; i++)
                if (strcmp(json_string_value(t), types[i]) == 0)
                    tname = types[i];
            if (!tname) {
                char hint[96];
                suggest(hint, sizeof hint, json_string_value(t), types, 7);
                vadd(v, DIAG_ERROR, "BAD_VALUE", kp,
                     "input type \"%s\" is not one of string, number, integer, boolean, object, array, any%s",
                     json_string_value(t), hint);
            }
        }
        const json_t *r = json_object_get(spec, "required");
        if (r && !json_is_boolean(r)) {
            path_key(v, kp, ip, "required");
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "required must be true or false, not %s", json_type_name(r));
        }
        const json_t *d = json_object_get(spec, "description");
        if (d && !json_is_string(d)) {
            path_key(v, kp, ip, "description");
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "description must be a string, not %s", json_type_name(d));
        }
        const json_t *def = json_object_get(spec, "default");
        if (def && tname && !wf_value_has_type(def, tname)) {
            path_key(v, kp, ip, "default");
            vadd(v, DIAG_ERROR, "WRONG_TYPE", kp, "default of input \"%s\" must be of type %s, not %s", k,
                 tname, json_type_name(def));
        }
    }
}

/* ---------- graph checks ---------- */

/* mark[i] = 1 for every step reachable from `from` without passing `avoid`. */
static int reach(const struct vctx *v, size_t from, size_t avoid, unsigned char *mark)
{
    size_t *queue = malloc(v->n_steps * sizeof *queue);
    size_t head = 0, tail = 0;
    if (!queue)
        return -1;
    memset(mark, 0, v->n_steps);
    if (from == avoid)
        goto out;
    mark[from] = 1;
    queue[tail++] = from;
    while (head < tail) {
        const struct vstep *s = &v->steps[queue[head++]];
        for (size_t i = 0; i < s->n_edges; i++) {
            size_t to = s->edges[i].to;
            if (to == avoid || mark[to])
                continue;
            mark[to] = 1;
            queue[tail++] = to;
        }
    }
out:
    free(queue);
    return 0;
}

static void check_cycles(struct vctx *v)
{
    /* Iterative DFS; color 0 white, 1 on the stack, 2 done. */
    unsigned char *color = calloc(v->n_steps, 1);
    size_t *stack = malloc(v->n_steps * sizeof *stack);
    size_t *edge_at = calloc(v->n_steps, sizeof *edge_at);
    int reported = 0;
    if (!color || !stack || !edge_at) {
        v->oom = 1;
        goto out;
    }
    for (size_t root = 0; root < v->n_steps; root++) {
        /* Start from the start step first, so the path reads in run order. */
        size_t r = root == 0 && v->start != (size_t)-1 ? v->start
                   : (v->start != (size_t)-1 && root == v->start) ? 0 : root;
        if (color[r])
            continue;
        size_t sp = 0;
        stack[sp++] = r;
        color[r] = 1;
        edge_at[r] = 0;
        while (sp > 0) {
            size_t u = stack[sp - 1];
            const struct vstep *s = &v->steps[u];
            if (edge_at[u] >= s->n_edges) {
                color[u] = 2;
                sp--;
                continue;
            }
            const struct vedge *e = &s->edges[edge_at[u]++];
            if (color[e->to] == 0) {
                color[e->to] = 1;
                edge_at[e->to] = 0;
                stack[sp++] = e->to;
            } else if (color[e->to] == 1 && reported < MAX_CYCLES_REPORTED) {
                char cyc[600];
                size_t used = 0, k = sp;
                while (k > 0 && stack[k - 1] != e->to)
                    k--;
                for (size_t j = k - 1; j < sp && used < sizeof cyc; j++) {
                    int w = snprintf(cyc + used, sizeof cyc - used, "%s -> ", v->steps[stack[j]].name);
                    if (w < 0)
                        break;
                    used += (size_t)w;
                }
                if (used < sizeof cyc)
                    snprintf(cyc + used, sizeof cyc - used, "%s", v->steps[e->to].name);
                vadd(v, DIAG_ERROR, "CYCLE", e->path, "cycle: %s (a step cannot run twice in a run; use retry for repeats)",
                     cyc);
                reported++;
            }
        }
    }
out:
    free(color);
    free(stack);
    free(edge_at);
}

static void check_graph(struct vctx *v)
{
    unsigned char *from_start = NULL, *from_x = NULL, *avoid_x = NULL;
    if (v->start == (size_t)-1)
        return;
    from_start = malloc(v->n_steps);
    from_x = malloc(v->n_steps);
    avoid_x = malloc(v->n_steps);
    if (!from_start || !from_x || !avoid_x || reach(v, v->start, (size_t)-1, from_start) != 0) {
        v->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < v->n_steps; i++) {
        if (!from_start[i]) {
            char sp[PATH_MAX_LEN + 1];
            path_key(v, sp, "$.steps", v->steps[i].name);
            vadd(v, DIAG_ERROR, "UNREACHABLE_STEP", sp,
                 "step \"%s\" can never run: no next leads to it from the start step \"%s\"",
                 v->steps[i].name, v->steps[v->start].name);
        }
    }
    check_cycles(v);

    /* References to other steps' results. */
    for (size_t si = 0; si < v->n_steps; si++) {
        struct vstep *s = &v->steps[si];
        if (!from_start[si])
            continue;
        for (size_t r = 0; r < s->n_refs; r++) {
            const char *ref = s->refs[r].ref;
            const char *path = s->refs[r].path;
            size_t before = v->diags->n;
            if (strncmp(ref, "steps.", 6) != 0) {
                if (strcmp(ref, "input") != 0 && strcmp(ref, "steps") != 0 && strcmp(ref, "run") != 0)
                    vadd(v, DIAG_WARNING, "UNKNOWN_REF", path,
                         "\"%s\" is not a name a step can read (input, steps, run): it is always null",
                         ref);
                goto positioned;
            }
            const char *x = ref + 6;
            size_t xi = find_step(v, x);
            if (xi == (size_t)-1) {
                vadd(v, DIAG_ERROR, "UNKNOWN_STEP_REF", path,
                     "step \"%s\" refers to steps.%s, but there is no step \"%s\"", s->name, x, x);
                goto positioned;
            }
            if (xi == si) {
                vadd(v, DIAG_ERROR, "STEP_NOT_BEFORE", path,
                     "step \"%s\" refers to its own result (steps.%s), which does not exist before it runs",
                     s->name, x);
                goto positioned;
            }
            if (reach(v, xi, (size_t)-1, from_x) != 0 || reach(v, v->start, xi, avoid_x) != 0) {
                v->oom = 1;
                goto out;
            }
            if (!from_start[xi] || !from_x[si]) {
                vadd(v, DIAG_ERROR, "STEP_NOT_BEFORE", path,
                     "step \"%s\" refers to steps.%s, but \"%s\" can never have run before \"%s\"",
                     s->name, x, x, s->name);
            } else if (avoid_x[si]) {
                vadd(v, DIAG_WARNING, "MAYBE_NOT_RUN", path,
                     "step \"%s\" refers to steps.%s, but some paths reach \"%s\" without running \"%s\" (the value is null then)",
                     s->name, x, s->name, x);
            }
        positioned:
            if (v->diags->n > before)
                position_in_string(v, path, s->refs[r].offset);
        }
    }
out:
    free(from_start);
    free(from_x);
    free(avoid_x);
}

/* ---------- diagnostics positions ---------- */

static int key_positioned(const char *code)
{
    static const char *const codes[] = {"UNKNOWN_KEY", "UNKNOWN_PARAM", "DUPLICATE_KEY",
                                        "UNREACHABLE_STEP", "UNKNOWN_OUTCOME", "BAD_NAME"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return 1;
    return 0;
}

static void locate_diags(struct diag_list *diags, size_t from, const struct json_locmap *loc)
{
    for (size_t i = from; i < diags->n; i++) {
        struct diag *d = &diags->items[i];
        if (d->line > 0)
            continue;
        const struct jl_entry *e = jl_find(loc, d->path);
        const struct jl_pos *p = NULL;
        if (e)
            p = key_positioned(d->code) && strcmp(d->path, "$.name") != 0 ? &e->key : &e->value;
        else if ((e = jl_find_nearest(loc, d->path)))
            p = &e->value;
        if (p) {
            d->line = p->line;
            d->column = p->column;
        }
    }
}

/* Sort items[from..n) by line and column, keeping the check order among equals. */
static void sort_diags(struct diag_list *diags, size_t from)
{
    size_t n = diags->n - from;
    if (n < 2)
        return;
    size_t *idx = malloc(n * sizeof *idx);
    struct diag *copy = malloc(n * sizeof *copy);
    if (!idx || !copy) {
        free(idx);
        free(copy);
        return;
    }
    memcpy(copy, diags->items + from, n * sizeof *copy);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    /* insertion sort on indexes: n is small (diagnostics of one file) */
    for (size_t i = 1; i < n; i++) {
        size_t k = idx[i], j = i;
        while (j > 0) {
            const struct diag *a = &copy[idx[j - 1]], *b = &copy[k];
            long la = a->line ? a->line : 0x7fffffff, lb = b->line ? b->line : 0x7fffffff;
            if (la < lb || (la == lb && a->column <= b->column))
                break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = k;
    }
    for (size_t i = 0; i < n; i++)
        diags->items[from + i] = copy[idx[i]];
    free(idx);
    free(copy);
}

/* ---------- building the model ---------- */

static void vctx_free(struct vctx *v)
{
    for (size_t i = 0; i < v->n_steps; i++) {
        for (size_t r = 0; r < v->steps[i].n_refs; r++) {
            free(v->steps[i].refs[r].ref);
            free(v->steps[i].refs[r].path);
        }
        free(v->steps[i].refs);
        for (size_t e = 0; e < v->steps[i].n_edges; e++)
            free(v->steps[i].edges[e].path);
        free(v->steps[i].edges);
    }
    free(v->steps);
}

static int64_t duration_or(const json_t *obj, const char *key, int64_t dflt)
{
    int64_t ms;
    const json_t *j = json_object_get(obj, key);
    if (!json_is_string(j) || time_parse_duration(json_string_value(j), &ms, NULL) != AS_OK)
        return dflt;
    return ms;
}

static enum as_code build(struct vctx *v, struct workflow **out, struct as_err *err)
{
    struct workflow *wf = calloc(1, sizeof *wf);
    const json_t *version = json_object_get(v->root, "version");
    char vbuf[32];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (!wf)
        goto oom;
    wf->def = json_incref(v->root);
    wf->name = strdup(json_string_value(json_object_get(v->root, "name")));
    if (json_is_integer(version))
        snprintf(vbuf, sizeof vbuf, "%" JSON_INTEGER_FORMAT, json_integer_value(version));
    else
        snprintf(vbuf, sizeof vbuf, "%s", "");
    wf->version = strdup(json_is_string(version) ? json_string_value(version) : vbuf);
    wf->description = json_string_value(json_object_get(v->root, "description"));
    wf->input = json_object_get(v->root, "input");
    wf->canonical = json_dumps(v->root, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    wf->empty_params = json_object();
    wf->steps = calloc(v->n_steps, sizeof *wf->steps);
    if (!wf->name || !wf->version || !wf->canonical || !wf->empty_params || !wf->steps)
        goto oom;
    if (EVP_Digest(wf->canonical, strlen(wf->canonical), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != 32) {
        wf_free(wf);
        return as_errf(err, AS_ENOMEM, "SHA-256 of the workflow failed");
    }
    for (unsigned i = 0; i < md_len; i++)
        snprintf(wf->hash + 2 * i, 3, "%02x", md[i]);

    wf->n_steps = v->n_steps;
    for (size_t i = 0; i < v->n_steps; i++) {
        struct wf_step *st = &wf->steps[i];
        const struct vstep *vs = &v->steps[i];
        const json_t *retry = json_object_get(vs->def, "retry");
        const json_t *params = json_object_get(vs->def, "params");
        st->name = vs->name;
        st->type = vs->type;
        st->params = params ? params : wf->empty_params;
        st->next = json_object_get(vs->def, "next");
        st->description = json_string_value(json_object_get(vs->def, "description"));
        st->index = i;
        st->retry.attempts = WF_DEFAULT_ATTEMPTS;
        st->retry.backoff_ms = WF_DEFAULT_BACKOFF_MS;
        st->retry.max_backoff_ms = WF_DEFAULT_MAX_BACKOFF_MS;
        st->retry.factor = WF_DEFAULT_FACTOR;
        if (retry) {
            const json_t *a = json_object_get(retry, "attempts");
            const json_t *f = json_object_get(retry, "factor");
            if (json_is_integer(a))
                st->retry.attempts = (int)json_integer_value(a);
            if (json_is_number(f))
                st->retry.factor = json_number_value(f);
            st->retry.backoff_ms = duration_or(retry, "backoff", st->retry.backoff_ms);
            st->retry.max_backoff_ms = duration_or(retry, "max_backoff", st->retry.max_backoff_ms);
            if (st->retry.max_backoff_ms < st->retry.backoff_ms)
                st->retry.max_backoff_ms = st->retry.backoff_ms;
        }
        st->timeout_ms = duration_or(vs->def, "timeout", WF_DEFAULT_TIMEOUT_MS);
    }
    wf->start = wf->steps[v->start].name;
    *out = wf;
    return AS_OK;
oom:
    wf_free(wf);
    return as_errf(err, AS_ENOMEM, "out of memory building the workflow");
}

/* The checks proper, on a parsed document.  Adds diagnostics to v->diags. */
static void validate(struct vctx *v)
{
    static const char *const keys[] = {"$schema", "name", "version", "description",
                                       "input", "start", "steps"};
    json_t *root = v->root;
    const json_t *j;
    v->start = (size_t)-1;

    if (!json_is_object(root)) {
        vadd(v, DIAG_ERROR, "NOT_OBJECT", "$", "a workflow must be a JSON object, not %s",
             json_type_name(root));
        return;
    }
    check_keys(v, root, "$", "the workflow", keys, 7);

    j = json_object_get(root, "name");
    if (!j)
        vadd(v, DIAG_ERROR, "MISSING_FIELD", "$.name", "the workflow has no \"name\"");
    else if (!json_is_string(j))
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.name", "name must be a string, not %s", json_type_name(j));
    else if (!name_ok(json_string_value(j)))
        vadd(v, DIAG_ERROR, "BAD_NAME", "$.name",
             "workflow name \"%s\" must start with a letter or _ and hold only letters, digits, _ and - (at most 64)",
             json_string_value(j));

    j = json_object_get(root, "version");
    if (!j)
        vadd(v, DIAG_ERROR, "MISSING_FIELD", "$.version", "the workflow has no \"version\"");
    else if (json_is_string(j) && (json_string_length(j) == 0 || json_string_length(j) > 64))
        vadd(v, DIAG_ERROR, "BAD_VALUE", "$.version", "version must be 1 to 64 characters");
    else if (json_is_integer(j) && json_integer_value(j) < 0)
        vadd(v, DIAG_ERROR, "BAD_VALUE", "$.version", "version must not be negative");
    else if (!json_is_string(j) && !json_is_integer(j))
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.version", "version must be a string or an integer, not %s",
             json_type_name(j));

    j = json_object_get(root, "description");
    if (j && !json_is_string(j))
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.description", "description must be a string, not %s",
             json_type_name(j));

    j = json_object_get(root, "input");
    if (j)
        check_input_spec(v, j);

    const json_t *steps = json_object_get(root, "steps");
    if (!steps) {
        vadd(v, DIAG_ERROR, "MISSING_FIELD", "$.steps", "the workflow has no \"steps\"");
        return;
    }
    if (!json_is_object(steps)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.steps", "steps must be an object of name -> step, not %s",
             json_type_name(steps));
        return;
    }
    if (json_object_size(steps) == 0) {
        vadd(v, DIAG_ERROR, "EMPTY_WORKFLOW", "$.steps", "the workflow has no steps");
        return;
    }
    if (json_object_size(steps) > WF_MAX_STEPS) {
        vadd(v, DIAG_ERROR, "LIMIT", "$.steps", "the workflow has %zu steps (limit %d)",
             json_object_size(steps), WF_MAX_STEPS);
        return;
    }
    v->steps = calloc(json_object_size(steps), sizeof *v->steps);
    if (!v->steps) {
        v->oom = 1;
        return;
    }
    {
        const char *k;
        json_t *s;
        json_object_foreach((json_t *)steps, k, s) {
            v->steps[v->n_steps].name = k;
            v->steps[v->n_steps].def = s;
            v->n_steps++;
        }
    }

    j = json_object_get(root, "start");
    if (j && !json_is_string(j)) {
        vadd(v, DIAG_ERROR, "WRONG_TYPE", "$.start", "start must be a step name, not %s", json_type_name(j));
    } else if (j) {
        v->start = find_step(v, json_string_value(j));
        if (v->start == (size_t)-1)
            vadd(v, DIAG_ERROR, "BAD_START", "$.start", "start names \"%s\", which is not a step",
                 json_string_value(j));
    } else {
        v->start = 0;
    }

    for (size_t i = 0; i < v->n_steps; i++)
        check_step(v, &v->steps[i]);
    for (size_t i = 0; i < v->n_steps; i++) {
        if (v->steps[i].def) {
            char sp[PATH_MAX_LEN + 1];
            path_key(v, sp, "$.steps", v->steps[i].name);
            check_next(v, &v->steps[i], sp);
        }
    }
    check_graph(v);
}

enum as_code wf_load_string(const char *text, const char *origin, struct workflow **out,
                            struct diag_list *diags, struct as_err *err)
{
    return wf_load_buffer(text, strlen(text), origin, out, diags, err);
}

enum as_code wf_load_buffer(const char *text, size_t len, const char *origin,
                            struct workflow **out, struct diag_list *diags, struct as_err *err)
{
    struct diag_list local = {0};
    struct vctx v = {.text = text, .len = len};
    json_error_t jerr;
    enum as_code rc = AS_OK;
    size_t first;
    (void)origin;

    *out = NULL;
    v.diags = diags ? diags : &local;
    first = v.diags->n;

    if (len > WF_MAX_FILE_SIZE) {
        vadd(&v, DIAG_ERROR, "LIMIT", "$", "the workflow is %zu bytes (limit %d)", len, WF_MAX_FILE_SIZE);
        rc = AS_EINVAL;
        goto out;
    }
    v.root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v.root && json_error_code(&jerr) == json_error_duplicate_key) {
        /* Report every duplicate (the locator finds them all), then keep
         * checking the document as jansson reads it without the flag. */
        v.root = json_loadb(text, len, 0, &jerr);
    }
    if (!v.root) {
        vadd(&v, DIAG_ERROR, "JSON_SYNTAX", "$", "%s", jerr.text);
        if (!v.oom) {
            v.diags->items[v.diags->n - 1].line = jerr.line > 0 ? jerr.line : 1;
            v.diags->items[v.diags->n - 1].column = jerr.column > 0 ? jerr.column : 1;
        }
        rc = AS_EINVAL;
        goto out;
    }
    rc = jl_build(text, len, &v.loc, err);
    if (rc != AS_OK)
        goto out;
    for (size_t i = 0; i < v.loc->n_dups; i++) {
        const struct jl_entry *e = &v.loc->entries[v.loc->dups[i]];
        const struct jl_entry *prev = e - 1;
        size_t pl = jl_path_parent_len(e->path);
        const char *key = e->path + pl;
        if (*key == '.')
            vadd(&v, DIAG_ERROR, "DUPLICATE_KEY", e->path,
                 "duplicate key \"%s\" (first at line %d, column %d); only the last one counts", key + 1,
                 prev->key.line, prev->key.column);
        else
            vadd(&v, DIAG_ERROR, "DUPLICATE_KEY", e->path,
                 "duplicate key %s (first at line %d, column %d); only the last one counts", key,
                 prev->key.line, prev->key.column);
        if (!v.oom) {
            v.diags->items[v.diags->n - 1].line = e->key.line;
            v.diags->items[v.diags->n - 1].column = e->key.column;
        }
    }
    validate(&v);
    locate_diags(v.diags, first, v.loc);
    sort_diags(v.diags, first);
    if (v.oom) {
        rc = as_errf(err, AS_ENOMEM, "out of memory validating the workflow");
        goto out;
    }
    if (diag_errors(v.diags) > 0) {
        size_t n_err = 0;
        for (size_t i = first; i < v.diags->n; i++)
            n_err += v.diags->items[i].severity == DIAG_ERROR;
        if (n_err > 0) {
            rc = as_errf(err, AS_EINVAL, "%s: %zu error%s in the workflow", origin ? origin : "workflow",
                         n_err, n_err == 1 ? "" : "s");
            goto out;
        }
    }
    rc = build(&v, out, err);
out:
    if (rc == AS_EINVAL && err && err->code != AS_EINVAL)
        as_errf(err, AS_EINVAL, "%s: invalid workflow", origin ? origin : "workflow");
    vctx_free(&v);
    jl_free(v.loc);
    json_decref(v.root);
    diag_free(&local);
    return rc;
}

enum as_code wf_load_file(const char *path, struct workflow **out, struct diag_list *diags,
                          struct as_err *err)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    enum as_code rc;
    *out = NULL;

    f = fopen(path, "rb");
    if (!f)
        return as_errf(err, AS_EIO, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = as_errf(err, AS_ENOMEM, "out of memory reading %s", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len > WF_MAX_FILE_SIZE) {
            rc = as_errf(err, AS_ELIMIT, "%s is larger than %d bytes", path, WF_MAX_FILE_SIZE);
            if (diags)
                diag_add(diags, DIAG_ERROR, "LIMIT", "$", "the file is larger than %d bytes",
                         WF_MAX_FILE_SIZE);
            goto out;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = as_errf(err, AS_EIO, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    rc = wf_load_buffer(buf, len, path, out, diags, err);
out:
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

const struct wf_step *wf_step_find(const struct workflow *wf, const char *name)
{
    if (!wf || !name)
        return NULL;
    for (size_t i = 0; i < wf->n_steps; i++)
        if (strcmp(wf->steps[i].name, name) == 0)
            return &wf->steps[i];
    return NULL;
}

const struct wf_step *wf_next(const struct workflow *wf, const struct wf_step *step,
                              const char *outcome)
{
    const json_t *to;
    if (!outcome || !*outcome)
        outcome = "success";
    if (!step || !step->next)
        return NULL;
    if (json_is_string(step->next))
        to = strcmp(outcome, "error") == 0 ? NULL : step->next;
    else
        to = json_object_get(step->next, outcome);
    return json_is_string(to) ? wf_step_find(wf, json_string_value(to)) : NULL;
}

void wf_free(struct workflow *wf)
{
    if (!wf)
        return;
    free(wf->name);
    free(wf->version);
    free(wf->canonical);
    free(wf->steps);
    json_decref(wf->empty_params);
    json_decref(wf->def);
    free(wf);
}

int wf_value_has_type(const json_t *v, const char *type)
{
    if (strcmp(type, "any") == 0)
        return 1;
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    return 0;
}

enum as_code wf_input_prepare(const struct workflow *wf, const json_t *input, json_t **out,
                              struct as_err *err)
{
    json_t *res;
    const char *k;
    json_t *v;
    *out = NULL;
    if (input && !json_is_object(input))
        return as_errf(err, AS_EINVAL, "the input of workflow %s must be a JSON object", wf->name);
    res = input ? json_deep_copy(input) : json_object();
    if (!res)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (!json_is_object(wf->input)) {
        *out = res;
        return AS_OK;
    }
    json_object_foreach(res, k, v) {
        if (!json_object_get(wf->input, k)) {
            char list[512] = "";
            const char *names[64];
            size_t n = 0;
            const char *dk;
            json_t *dv;
            json_object_foreach((json_t *)wf->input, dk, dv) {
                if (n < 64)
                    names[n++] = dk;
            }
            join_names(list, sizeof list, names, n);
            as_errf(err, AS_EINVAL, "workflow %s has no input \"%s\" (inputs: %s)", wf->name, k,
                    n ? list : "none");
            json_decref(res);
            return AS_EINVAL;
        }
    }
    json_object_foreach((json_t *)wf->input, k, v) {
        const json_t *given = json_object_get(res, k);
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!given) {
            const json_t *def = json_object_get(v, "default");
            if (def) {
                if (json_object_set_new(res, k, json_deep_copy(def)) != 0) {
                    json_decref(res);
                    return as_errf(err, AS_ENOMEM, "out of memory");
                }
            } else if (json_is_true(json_object_get(v, "required"))) {
                json_decref(res);
                return as_errf(err, AS_EINVAL, "workflow %s needs input \"%s\"%s%s", wf->name, k,
                               type ? " of type " : "", type ? type : "");
            }
            continue;
        }
        if (type && !wf_value_has_type(given, type)) {
            as_errf(err, AS_EINVAL, "input \"%s\" of workflow %s must be of type %s, not %s", k,
                    wf->name, type, json_type_name(given));
            json_decref(res);
            return AS_EINVAL;
        }
    }
    *out = res;
    return AS_OK;
}

/* ---------- printing ---------- */

int wf_diags_append_json(json_t *arr, const struct diag_list *diags, const char *origin)
{
    for (size_t i = 0; diags && i < diags->n; i++) {
        const struct diag *d = &diags->items[i];
        json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:s}", "file", origin ? origin : "",
                              "line", d->line, "column", d->column, "path", d->path, "code", d->code,
                              "severity", d->severity == DIAG_ERROR ? "error" : "warning", "message",
                              d->msg);
        if (!o || json_array_append_new(arr, o) != 0)
            return -1;
    }
    return 0;
}

void wf_diag_format(const struct diag *d, const char *origin, char *buf, size_t size)
{
    const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
    if (d->line > 0)
        snprintf(buf, size, "%s:%d:%d: %s %s: %s (at %s)", origin ? origin : "", d->line, d->column,
                 sev, d->code, d->msg, d->path);
    else
        snprintf(buf, size, "%s: %s %s: %s (at %s)", origin ? origin : "", sev, d->code, d->msg,
                 d->path);
}

void wf_diags_print(const struct diag_list *diags, const char *origin, int json, void *file)
{
    FILE *f = file ? file : stdout;
    if (json) {
        json_t *arr = json_array();
        char *s = NULL;
        if (arr && wf_diags_append_json(arr, diags, origin) == 0)
            s = json_dumps(arr, JSON_INDENT(2));
        if (s) {
            fprintf(f, "%s\n", s);
            free(s);
        }
        json_decref(arr);
        return;
    }
    for (size_t i = 0; diags && i < diags->n; i++) {
        char line[2048];
        wf_diag_format(&diags->items[i], origin, line, sizeof line);
        fprintf(f, "%s\n", line);
    }
}
