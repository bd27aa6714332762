/*
 * wf_check.c - the checks of a parsed workflow definition (see
 * docs/workflow-format.md#diagnostics): every defect becomes a diagnostic
 * with a stable code and the JSON path of the offending value, never
 * stopping at the first.  A first pass checks keys, types, steps and their
 * parameters (including every ${...} template and condition), a second the
 * step graph: reachability from the start, cycles, and references to steps
 * that cannot have run before.  engine/workflow.c then gives each
 * diagnostic its line and column.
 */
#include "engine/wf_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/expr.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "engine/step.h"

#define PATH_MAX_LEN JL_MAX_PATH
#define MAX_CYCLES_REPORTED 10
#define WALK_MAX_DEPTH 128

void wf_check_add(struct wf_check *v, enum diag_severity sev, const char *code, const char *path,
                 const char *fmt, ...)
{
    char msg[sizeof ((struct diag *)0)->msg];
    size_t before = v->diags->n;
    va_list ap;
    /* A hostile file could make millions: keep the first WF_MAX_DIAGS. */
    if (before - v->first >= WF_MAX_DIAGS) {
        v->dropped++;
        v->dropped_errors += sev == DIAG_ERROR;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_add(v->diags, sev, code, path, "%s", msg);
    if (v->diags->n == before)
        v->oom = 1;
}

static size_t find_step(const struct wf_check *v, const char *name)
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
void wf_join_names(char *buf, size_t size, const char *const *names, size_t n)
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

const char *wf_json_type_name(const json_t *j)
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

static void path_key(struct wf_check *v, char *buf, const char *parent, const char *key)
{
    if (jl_path_key(buf, PATH_MAX_LEN + 1, parent, key) != 0)
        snprintf(buf, PATH_MAX_LEN + 1, "%s", parent); /* too long: point at the parent */
}

/* Check that every key of obj is in known[0..n); UNKNOWN_KEY for others. */
static void check_keys(struct wf_check *v, const json_t *obj, const char *path, const char *what,
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
        wf_join_names(list, sizeof list, known, n);
        wf_check_add(v, DIAG_ERROR, "UNKNOWN_KEY", kp, "unknown key \"%s\" in %s%s (allowed: %s)", k, what,
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
static void position_in_string(struct wf_check *v, const char *path, size_t off)
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

static void add_expr_diag(struct wf_check *v, const char *path, size_t off, const char *what,
                          const char *msg)
{
    wf_check_add(v, DIAG_ERROR, "EXPR_SYNTAX", path, "%s: %s", what, msg);
    position_in_string(v, path, off);
}

static void add_ref(struct wf_check *v, struct vstep *s, const char *ref, const char *path,
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

static void add_refs(struct wf_check *v, struct vstep *s, json_t *refs, const char *path)
{
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r) {
        add_ref(v, s, json_string_value(json_object_get(r, "ref")), path,
                (size_t)json_integer_value(json_object_get(r, "offset")));
    }
}

/* Check every ${...} in the strings of value (recursively), collecting refs. */
static void walk_templates(struct wf_check *v, struct vstep *s, const json_t *value, const char *path,
                           int depth)
{
    if (depth > WALK_MAX_DEPTH) {
        wf_check_add(v, DIAG_ERROR, "LIMIT", path, "value nested deeper than %d levels", WALK_MAX_DEPTH);
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

static void check_duration_value(struct wf_check *v, const json_t *val, const char *path,
                                 const char *what, int64_t *out, int allow_zero)
{
    struct as_err err = {0};
    int64_t ms = 0;
    if (!json_is_string(val)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", path, "%s must be a duration string such as \"30s\" or \"PT30S\", not %s",
             what, wf_json_type_name(val));
        return;
    }
    if (!duration_syntax_ok(json_string_value(val))) {
        wf_check_add(v, DIAG_ERROR, "BAD_DURATION", path,
             "%s: invalid duration \"%.80s\" (use ISO 8601 like PT30S or P7D, or 500ms/2s/5m/3h/7d)", what,
             json_string_value(val));
        return;
    }
    if (time_parse_duration(json_string_value(val), &ms, &err) != AS_OK) {
        wf_check_add(v, DIAG_ERROR, "BAD_DURATION", path, "%s: %s", what, err.msg);
        return;
    }
    if (ms < 0 || (!allow_zero && ms == 0)) {
        wf_check_add(v, DIAG_ERROR, "BAD_DURATION", path, "%s must be longer than zero", what);
        return;
    }
    if (out)
        *out = ms;
}

static void check_params(struct wf_check *v, struct vstep *s, const char *step_path)
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
                wf_check_add(v, DIAG_ERROR, "MISSING_PARAM", kp, "step \"%s\" (%s) needs parameter \"%s\" (%s)",
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
                        wf_check_add(v, DIAG_ERROR, "PARAM_TYPE", ep,
                             "parameter \"%s\" of step \"%s\" must be an array of strings; item %zu is %s",
                             p->name, s->name, i, wf_json_type_name(e));
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
            wf_check_add(v, DIAG_ERROR, "PARAM_TYPE", kp, "parameter \"%s\" of step \"%s\" must be %s, not %s",
                 p->name, s->name, param_type_name(p->type), wf_json_type_name(val));
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
            wf_join_names(list, sizeof list, names, n);
            wf_check_add(v, DIAG_ERROR, "UNKNOWN_PARAM", kp, "step type %s has no parameter \"%s\"%s (parameters: %s)",
                 t->name, k, hint, n ? list : "none");
            walk_templates(v, s, val, kp, 0);
        }
    }

    if (t->waits && !json_object_get(params, "expiry") && !json_object_get(params, "duration"))
        wf_check_add(v, DIAG_WARNING, "DEFAULT_EXPIRY", ppath,
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

static void add_edge(struct wf_check *v, struct vstep *s, size_t to, const char *path)
{
    /* one edge per target: keeps the graph passes O(steps^2) at worst */
    for (size_t i = 0; i < s->n_edges; i++)
        if (s->edges[i].to == to)
            return;
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

static void check_target(struct wf_check *v, struct vstep *s, const json_t *val, const char *path,
                         const char *outcome)
{
    if (!json_is_string(val)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", path, "next of step \"%s\"%s%s must be a step name, not %s",
             s->name, outcome ? " for " : "", outcome ? outcome : "", wf_json_type_name(val));
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
        wf_check_add(v, DIAG_ERROR, "DANGLING_NEXT", path, "step \"%s\" goes to \"%s\", which does not exist%s",
             s->name, json_string_value(val), hint);
        return;
    }
    add_edge(v, s, to, path);
}

static void check_next(struct wf_check *v, struct vstep *s, const char *step_path)
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
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", np,
             "next of step \"%s\" must be a step name or an object of outcome -> step, not %s", s->name,
             wf_json_type_name(next));
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
            wf_join_names(list, sizeof list, outs, n);
            char hint[96];
            const char *cands[34];
            size_t nc = 0;
            for (; nc < n && nc < 32; nc++)
                cands[nc] = outs[nc];
            cands[nc++] = "error";
            suggest(hint, sizeof hint, k, cands, nc);
            wf_check_add(v, DIAG_ERROR, "UNKNOWN_OUTCOME", kp,
                 "step type %s never ends with outcome \"%s\"%s (its outcomes: %s%serror)",
                 s->type->name, k, hint, list, n ? ", " : "");
        }
        check_target(v, s, val, kp, k);
    }
    if (s->type && s->type->outcomes) {
        for (const char *const *o = s->type->outcomes; *o; o++) {
            if (!json_object_get(next, *o))
                wf_check_add(v, DIAG_WARNING, "UNHANDLED_OUTCOME", np,
                     "step \"%s\" has no next for outcome \"%s\": the run ends there", s->name, *o);
        }
    }
}

static void check_retry(struct wf_check *v, struct vstep *s, const char *step_path)
{
    static const char *const keys[] = {"attempts", "backoff", "max_backoff", "factor"};
    char rp[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
    const json_t *r = json_object_get(s->def, "retry");
    int64_t backoff = -1, max_backoff = -1;
    if (!r)
        return;
    path_key(v, rp, step_path, "retry");
    if (!json_is_object(r)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", rp, "retry of step \"%s\" must be an object, not %s", s->name,
             wf_json_type_name(r));
        return;
    }
    check_keys(v, r, rp, "retry", keys, 4);
    const json_t *a = json_object_get(r, "attempts");
    if (a) {
        path_key(v, kp, rp, "attempts");
        if (!json_is_integer(a))
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "retry.attempts must be an integer, not %s",
                 wf_json_type_name(a));
        else if (json_integer_value(a) < 1 || json_integer_value(a) > WF_MAX_ATTEMPTS)
            wf_check_add(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.attempts must be between 1 and %d (it counts the first attempt)",
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
            wf_check_add(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.max_backoff is shorter than retry.backoff");
    }
    const json_t *f = json_object_get(r, "factor");
    if (f) {
        path_key(v, kp, rp, "factor");
        if (!json_is_number(f))
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "retry.factor must be a number, not %s", wf_json_type_name(f));
        else if (json_number_value(f) < 1.0 || json_number_value(f) > 100.0)
            wf_check_add(v, DIAG_ERROR, "BAD_VALUE", kp, "retry.factor must be between 1 and 100");
    }
}

static void check_step(struct wf_check *v, struct vstep *s)
{
    static const char *const keys[] = {"type", "description", "params", "next", "retry", "timeout"};
    char sp[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
    char steps_path[] = "$.steps";
    path_key(v, sp, steps_path, s->name);

    if (!name_ok(s->name))
        wf_check_add(v, DIAG_ERROR, "BAD_NAME", sp,
             "step name \"%s\" must start with a letter or _ and hold only letters, digits, _ and - (at most 64)",
             s->name);
    if (!json_is_object(s->def)) {
        wf_check_add(v, DIAG_ERROR, "NOT_OBJECT", sp, "step \"%s\" must be an object, not %s", s->name,
             wf_json_type_name(s->def));
        s->def = NULL;
        return;
    }
    check_keys(v, s->def, sp, "a step", keys, 6);

    const json_t *type = json_object_get(s->def, "type");
    path_key(v, kp, sp, "type");
    if (!type) {
        wf_check_add(v, DIAG_ERROR, "MISSING_FIELD", kp, "step \"%s\" has no \"type\"", s->name);
    } else if (!json_is_string(type)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "type of step \"%s\" must be a string, not %s", s->name,
             wf_json_type_name(type));
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
            wf_join_names(list, sizeof list, names, n);
            wf_check_add(v, DIAG_ERROR, "UNKNOWN_STEP_TYPE", kp, "unknown step type \"%s\"%s (types: %s)",
                 json_string_value(type), hint, list);
        }
    }

    const json_t *d = json_object_get(s->def, "description");
    if (d && !json_is_string(d)) {
        path_key(v, kp, sp, "description");
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "description must be a string, not %s", wf_json_type_name(d));
    }

    const json_t *params = json_object_get(s->def, "params");
    if (params && !json_is_object(params)) {
        path_key(v, kp, sp, "params");
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "params of step \"%s\" must be an object, not %s", s->name,
             wf_json_type_name(params));
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

static void check_input_spec(struct wf_check *v, const json_t *input)
{
    static const char *const keys[] = {"type", "required", "description", "default",
                                       "config_default"};
    static const char *const types[] = {"string", "number", "integer", "boolean",
                                        "object", "array", "any"};
    const char *k;
    json_t *spec;
    if (!json_is_object(input)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.input",
             "input must be an object describing each input, e.g. {\"url\": {\"type\": \"string\", \"required\": true}}, not %s",
             wf_json_type_name(input));
        return;
    }
    json_object_foreach((json_t *)input, k, spec) {
        char ip[PATH_MAX_LEN + 1], kp[PATH_MAX_LEN + 1];
        path_key(v, ip, "$.input", k);
        if (!json_is_object(spec)) {
            wf_check_add(v, DIAG_ERROR, "NOT_OBJECT", ip, "input \"%s\" must be an object like {\"type\": \"string\"}, not %s",
                 k, wf_json_type_name(spec));
            continue;
        }
        check_keys(v, spec, ip, "an input", keys, 5);
        const json_t *t = json_object_get(spec, "type");
        path_key(v, kp, ip, "type");
        const char *tname = NULL;
        if (t && !json_is_string(t)) {
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "input type must be a string, not %s", wf_json_type_name(t));
        } else if (t) {
            for (size_t i = 0; i < 7; i++)
                if (strcmp(json_string_value(t), types[i]) == 0)
                    tname = types[i];
            if (!tname) {
                char hint[96];
                suggest(hint, sizeof hint, json_string_value(t), types, 7);
                wf_check_add(v, DIAG_ERROR, "BAD_VALUE", kp,
                     "input type \"%s\" is not one of string, number, integer, boolean, object, array, any%s",
                     json_string_value(t), hint);
            }
        }
        const json_t *r = json_object_get(spec, "required");
        if (r && !json_is_boolean(r)) {
            path_key(v, kp, ip, "required");
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "required must be true or false, not %s", wf_json_type_name(r));
        }
        const json_t *d = json_object_get(spec, "description");
        if (d && !json_is_string(d)) {
            path_key(v, kp, ip, "description");
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "description must be a string, not %s", wf_json_type_name(d));
        }
        const json_t *cd = json_object_get(spec, "config_default");
        if (cd && (!json_is_string(cd) || !json_string_length(cd))) {
            path_key(v, kp, ip, "config_default");
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp,
                         "config_default must name a configuration key, e.g. \"default_approvers\"");
        }
        const json_t *def = json_object_get(spec, "default");
        if (def && tname && !wf_value_has_type(def, tname)) {
            path_key(v, kp, ip, "default");
            wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", kp, "default of input \"%s\" must be of type %s, not %s", k,
                 tname, wf_json_type_name(def));
        }
    }
}

/* ---------- graph checks ---------- */

/* mark[i] = 1 for every step reachable from `from` without passing `avoid`. */
static int reach(const struct wf_check *v, size_t from, size_t avoid, unsigned char *mark)
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

static void check_cycles(struct wf_check *v)
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
                wf_check_add(v, DIAG_ERROR, "CYCLE", e->path, "cycle: %s (a step cannot run twice in a run; use retry for repeats)",
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

static void check_graph(struct wf_check *v)
{
    unsigned char *from_start = NULL, *from_x = NULL, *avoid_x = NULL;
    /* per referenced step X: reach-from-X and reach-from-start-avoiding-X, computed once */
    unsigned char **cache_from = NULL, **cache_avoid = NULL;
    if (v->start == (size_t)-1) {
        /* no valid start (BAD_START already said so): cycles can still be found */
        check_cycles(v);
        return;
    }
    from_start = malloc(v->n_steps);
    cache_from = calloc(v->n_steps, sizeof *cache_from);
    cache_avoid = calloc(v->n_steps, sizeof *cache_avoid);
    if (!from_start || !cache_from || !cache_avoid ||
        reach(v, v->start, (size_t)-1, from_start) != 0) {
        v->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < v->n_steps; i++) {
        if (!from_start[i]) {
            char sp[PATH_MAX_LEN + 1];
            path_key(v, sp, "$.steps", v->steps[i].name);
            wf_check_add(v, DIAG_ERROR, "UNREACHABLE_STEP", sp,
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
                    wf_check_add(v, DIAG_WARNING, "UNKNOWN_REF", path,
                         "\"%s\" is not a name a step can read (input, steps, run): it is always null",
                         ref);
                goto positioned;
            }
            const char *x = ref + 6;
            size_t xi = find_step(v, x);
            if (xi == (size_t)-1) {
                wf_check_add(v, DIAG_ERROR, "UNKNOWN_STEP_REF", path,
                     "step \"%s\" refers to steps.%s, but there is no step \"%s\"", s->name, x, x);
                goto positioned;
            }
            if (xi == si) {
                wf_check_add(v, DIAG_ERROR, "STEP_NOT_BEFORE", path,
                     "step \"%s\" refers to its own result (steps.%s), which does not exist before it runs",
                     s->name, x);
                goto positioned;
            }
            if (!cache_from[xi]) {
                cache_from[xi] = malloc(v->n_steps);
                cache_avoid[xi] = malloc(v->n_steps);
                if (!cache_from[xi] || !cache_avoid[xi] ||
                    reach(v, xi, (size_t)-1, cache_from[xi]) != 0 ||
                    reach(v, v->start, xi, cache_avoid[xi]) != 0) {
                    v->oom = 1;
                    goto out;
                }
            }
            from_x = cache_from[xi];
            avoid_x = cache_avoid[xi];
            if (!from_start[xi] || !from_x[si]) {
                wf_check_add(v, DIAG_ERROR, "STEP_NOT_BEFORE", path,
                     "step \"%s\" refers to steps.%s, but \"%s\" can never have run before \"%s\"",
                     s->name, x, x, s->name);
            } else if (avoid_x[si]) {
                wf_check_add(v, DIAG_WARNING, "MAYBE_NOT_RUN", path,
                     "step \"%s\" refers to steps.%s, but some paths reach \"%s\" without running \"%s\" (the value is null then)",
                     s->name, x, s->name, x);
            }
        positioned:
            if (v->diags->n > before)
                position_in_string(v, path, s->refs[r].offset);
        }
    }
out:
    for (size_t i = 0; cache_from && i < v->n_steps; i++) {
        free(cache_from[i]);
        free(cache_avoid[i]);
    }
    free(cache_from);
    free(cache_avoid);
    free(from_start);
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

void wf_check_locate(struct diag_list *diags, size_t from, const struct json_locmap *loc)
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
struct sort_key {
    long line;
    int column;
    size_t index;
};

static int sort_key_cmp(const void *a, const void *b)
{
    const struct sort_key *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

void wf_check_sort(struct diag_list *diags, size_t from)
{
    size_t n = diags->n - from;
    if (n < 2)
        return;
    struct sort_key *keys = malloc(n * sizeof *keys);
    struct diag *copy = malloc(n * sizeof *copy);
    if (!keys || !copy) {
        free(keys);
        free(copy);
        return; /* unsorted but complete */
    }
    memcpy(copy, diags->items + from, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        keys[i].line = copy[i].line ? copy[i].line : 0x7fffffff; /* unlocated last */
        keys[i].column = copy[i].column;
        keys[i].index = i; /* equal positions keep the order the checks found them */
    }
    qsort(keys, n, sizeof *keys, sort_key_cmp);
    for (size_t i = 0; i < n; i++)
        diags->items[from + i] = copy[keys[i].index];
    free(keys);
    free(copy);
}

void wf_check_free(struct wf_check *v)
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

/*
 * The optional "title": how listings name a run, a ${...} template resolved
 * against {"input": <run input>} only.  Its expressions are checked like
 * every template's; a name other than input can never be set there.
 */
static void check_title(struct wf_check *v, const json_t *j)
{
    if (!json_is_string(j)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.title",
                     "title must be a string such as \"${input.user}\", not %s",
                     wf_json_type_name(j));
        return;
    }
    if (json_string_length(j) == 0 || json_string_length(j) > 1000) {
        wf_check_add(v, DIAG_ERROR, "BAD_VALUE", "$.title", "title must be 1 to 1000 bytes");
        return;
    }
    json_t *refs = json_array();
    struct as_err err = {0};
    size_t off = 0;
    if (!refs) {
        v->oom = 1;
        return;
    }
    enum as_code rc = tmpl_check_located(json_string_value(j), json_string_length(j), refs, &off,
                                         &err);
    if (rc == AS_ENOMEM) {
        v->oom = 1;
    } else if (rc != AS_OK) {
        add_expr_diag(v, "$.title", off, "bad ${...}", err.msg);
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(refs, i, r)
        {
            const char *ref = json_string_value(json_object_get(r, "ref"));
            if (ref && strcmp(ref, "input") != 0) {
                wf_check_add(v, DIAG_ERROR, "UNKNOWN_REF", "$.title",
                             "the title can read only input, not \"%s\"", ref);
                position_in_string(v, "$.title",
                                   (size_t)json_integer_value(json_object_get(r, "offset")));
            }
        }
    }
    json_decref(refs);
}

/* The checks proper, on a parsed document (see wf_check.h). */
void wf_check_document(struct wf_check *v)
{
    static const char *const keys[] = {"$schema", "name", "version", "description",
                                       "title", "input", "start", "steps"};
    json_t *root = v->root;
    const json_t *j;
    v->start = (size_t)-1;

    if (!json_is_object(root)) {
        wf_check_add(v, DIAG_ERROR, "NOT_OBJECT", "$", "a workflow must be a JSON object, not %s",
             wf_json_type_name(root));
        return;
    }
    check_keys(v, root, "$", "the workflow", keys, sizeof keys / sizeof keys[0]);

    j = json_object_get(root, "name");
    if (!j)
        wf_check_add(v, DIAG_ERROR, "MISSING_FIELD", "$.name", "the workflow has no \"name\"");
    else if (!json_is_string(j))
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.name", "name must be a string, not %s", wf_json_type_name(j));
    else if (!name_ok(json_string_value(j)))
        wf_check_add(v, DIAG_ERROR, "BAD_NAME", "$.name",
             "workflow name \"%s\" must start with a letter or _ and hold only letters, digits, _ and - (at most 64)",
             json_string_value(j));

    j = json_object_get(root, "version");
    if (!j)
        wf_check_add(v, DIAG_ERROR, "MISSING_FIELD", "$.version", "the workflow has no \"version\"");
    else if (json_is_string(j) && (json_string_length(j) == 0 || json_string_length(j) > 64))
        wf_check_add(v, DIAG_ERROR, "BAD_VALUE", "$.version", "version must be 1 to 64 characters");
    else if (json_is_integer(j) && json_integer_value(j) < 0)
        wf_check_add(v, DIAG_ERROR, "BAD_VALUE", "$.version", "version must not be negative");
    else if (!json_is_string(j) && !json_is_integer(j))
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.version", "version must be a string or an integer, not %s",
             wf_json_type_name(j));

    j = json_object_get(root, "description");
    if (j && !json_is_string(j))
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.description", "description must be a string, not %s",
             wf_json_type_name(j));

    j = json_object_get(root, "title");
    if (j)
        check_title(v, j);

    j = json_object_get(root, "input");
    if (j)
        check_input_spec(v, j);

    const json_t *steps = json_object_get(root, "steps");
    if (!steps) {
        wf_check_add(v, DIAG_ERROR, "MISSING_FIELD", "$.steps", "the workflow has no \"steps\"");
        return;
    }
    if (!json_is_object(steps)) {
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.steps", "steps must be an object of name -> step, not %s",
             wf_json_type_name(steps));
        return;
    }
    if (json_object_size(steps) == 0) {
        wf_check_add(v, DIAG_ERROR, "EMPTY_WORKFLOW", "$.steps", "the workflow has no steps");
        return;
    }
    if (json_object_size(steps) > WF_MAX_STEPS) {
        wf_check_add(v, DIAG_ERROR, "LIMIT", "$.steps", "the workflow has %zu steps (limit %d)",
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
        wf_check_add(v, DIAG_ERROR, "WRONG_TYPE", "$.start", "start must be a step name, not %s", wf_json_type_name(j));
    } else if (j) {
        v->start = find_step(v, json_string_value(j));
        if (v->start == (size_t)-1)
            wf_check_add(v, DIAG_ERROR, "BAD_START", "$.start", "start names \"%s\", which is not a step",
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
