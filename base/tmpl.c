/*
 * tmpl.c - ${...} templates (declared in expr.h, see docs/expressions.md):
 * resolve every reference inside a JSON value, render one string with
 * optional HTML escaping of the substituted values, and check templates at
 * validate time.  Expressions themselves are compiled and evaluated by
 * base/expr.c; this file only finds them ("${" to the first "}" outside a
 * quoted string, "$${" being a literal "${") and splices their values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/expr.h"
#include "base/strbuf.h"
#include "base/utf8.h"

/* Growable text with a hard cap. */
/* The output: base/strbuf.h, capped at TMPL_MAX_OUTPUT. */
#define TMPL_BUF {.max = TMPL_MAX_OUTPUT}

static int buf_add(struct strbuf *b, const char *s, size_t n)
{
    strbuf_addn(b, s, n);
    return b->failed ? -1 : 0;
}

static int buf_add_escaped(struct strbuf *b, const char *s, size_t n, enum tmpl_escape esc)
{
    if (esc == TMPL_RAW)
        return buf_add(b, s, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        if (buf_add(b, s + run, i - run) != 0 || buf_add(b, rep, strlen(rep)) != 0)
            return -1;
        run = i + 1;
    }
    return buf_add(b, s + run, n - run);
}

/* Append the text form of v: strings as is, null as "", numbers and booleans
 * as in JSON, arrays and objects as compact JSON. */
static int buf_add_value(struct strbuf *b, const json_t *v, enum tmpl_escape esc)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return buf_add_escaped(b, json_string_value(v), json_string_length(v), esc);
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
        return buf_add(b, "true", 4);
    case JSON_FALSE:
        return buf_add(b, "false", 5);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf_add(b, num, strlen(num));
    case JSON_REAL: {
        /* Shortest of %.15g / %.17g that reads back exactly. */
        double d = json_real_value(v);
        snprintf(num, sizeof num, "%.15g", d);
        if (strtod(num, NULL) != d)
            snprintf(num, sizeof num, "%.17g", d);
        return buf_add(b, num, strlen(num));
    }
    case JSON_ARRAY:
    case JSON_OBJECT: {
        char *s = json_dumps(v, JSON_COMPACT);
        if (!s) {
            b->failed = STRBUF_OOM;
            return -1;
        }
        int rc = buf_add_escaped(b, s, strlen(s), esc);
        free(s);
        return rc;
    }
    }
    return 0;
}

/*
 * Find the end of the expression that starts at s[from] (just after "${"):
 * the first '}' outside a quoted string.  Returns its offset or (size_t)-1.
 */
static size_t tmpl_expr_end(const char *s, size_t len, size_t from)
{
    char quote = 0;
    for (size_t i = from; i < len; i++) {
        char c = s[i];
        if (quote) {
            if (c == '\\')
                i++;
            else if (c == quote)
                quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '}') {
            return i;
        }
    }
    return (size_t)-1;
}

/*
 * Walk template s: call lit(ud, text, n) for literal text and
 * ex(ud, expr_src, n, offset) for each ${...}.  Stops at the first callback
 * that returns nonzero (its code) or at a syntax error (AS_EINVAL, *err_off).
 */
struct tmpl_walk {
    int (*lit)(void *ud, const char *s, size_t n);
    enum as_code (*ex)(void *ud, const char *src, size_t n, size_t off);
    void *ud;
};

static enum as_code tmpl_walk(const char *s, size_t len, const struct tmpl_walk *w,
                              size_t *err_off, struct as_err *err)
{
    size_t i = 0, run = 0;
    while (i < len) {
        if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            if (w->lit(w->ud, s + run, i - run) != 0 || w->lit(w->ud, "${", 2) != 0)
                return as_errf(err, AS_ELIMIT, "template result too large");
            i += 3;
            run = i;
            continue;
        }
        if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            size_t end = tmpl_expr_end(s, len, i + 2);
            if (end == (size_t)-1) {
                if (err_off)
                    *err_off = i;
                return as_errf(err, AS_EINVAL,
                               "unterminated ${ at column %zu (write $${ for a literal ${)",
                               utf8_column(s, i));
            }
            if (w->lit(w->ud, s + run, i - run) != 0)
                return as_errf(err, AS_ELIMIT, "template result too large");
            enum as_code rc = w->ex(w->ud, s + i + 2, end - (i + 2), i + 2);
            if (rc != AS_OK)
                return rc;
            i = end + 1;
            run = i;
            continue;
        }
        i++;
    }
    if (w->lit(w->ud, s + run, len - run) != 0)
        return as_errf(err, AS_ELIMIT, "template result too large");
    return AS_OK;
}

struct render_ctx {
    struct strbuf out;
    const json_t *scope;
    enum tmpl_escape esc;
    json_t *refs; /* check mode: collect refs, do not evaluate */
    int located;  /* refs as {"ref","offset"} objects */
    const char *tmpl;
    size_t *err_off;
    struct as_err *err;
};

static int render_lit(void *ud, const char *s, size_t n)
{
    struct render_ctx *c = ud;
    if (c->refs || !n)
        return 0;
    return buf_add(&c->out, s, n);
}

static enum as_code render_expr(void *ud, const char *src, size_t n, size_t off)
{
    struct render_ctx *c = ud;
    struct expr *e = NULL;
    size_t eoff = 0;
    enum as_code rc = expr_compile_n(src, n, &e, &eoff, c->err);
    if (rc != AS_OK) {
        if (c->err_off)
            *c->err_off = off + eoff;
        as_err_prefix(c->err, "in ${%.*s}", (int)(n > 80 ? 80 : n), src);
        return rc;
    }
    if (c->refs) {
        if ((c->located ? expr_refs_located(e, c->refs, off) : expr_refs_append(e, c->refs)) != 0)
            rc = as_errf(c->err, AS_ENOMEM, "out of memory");
        expr_free(e);
        return rc;
    }
    json_t *v = NULL;
    rc = expr_eval(e, c->scope, &v, c->err);
    expr_free(e);
    if (rc != AS_OK)
        return rc;
    if (buf_add_value(&c->out, v, c->esc) != 0)
        rc = c->out.failed == STRBUF_OOM ? as_errf(c->err, AS_ENOMEM, "out of memory")
                        : as_errf(c->err, AS_ELIMIT, "template result larger than %d bytes",
                                  TMPL_MAX_OUTPUT);
    json_decref(v);
    return rc;
}

static enum as_code render_n(const char *tmpl, size_t len, const json_t *scope,
                             enum tmpl_escape esc, json_t *refs, int located, struct strbuf *out,
                             size_t *err_off, struct as_err *err)
{
    struct render_ctx c = {.out = TMPL_BUF, .scope = scope, .esc = esc, .refs = refs,
                           .located = located, .tmpl = tmpl, .err_off = err_off, .err = err};
    struct tmpl_walk w = {render_lit, render_expr, &c};
    enum as_code rc = tmpl_walk(tmpl, len, &w, err_off, err);
    if (rc == AS_OK && !refs && !c.out.p && buf_add(&c.out, "", 0) != 0)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (rc == AS_OK && c.out.failed == STRBUF_OOM)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (rc != AS_OK) {
        free(c.out.p);
        return rc;
    }
    if (out)
        *out = c.out;
    else
        free(c.out.p);
    return AS_OK;
}

enum as_code tmpl_render(const char *tmpl, const json_t *scope, enum tmpl_escape esc, char **out,
                         struct as_err *err)
{
    struct strbuf b = {0};
    *out = NULL;
    enum as_code rc = render_n(tmpl, strlen(tmpl), scope, esc, NULL, 0, &b, NULL, err);
    if (rc == AS_OK)
        *out = b.p;
    return rc;
}

/* When s is exactly one "${expr}", the offset of its '}' (else 0). */
static size_t whole_template_end(const char *s, size_t len)
{
    if (len < 3 || s[0] != '$' || s[1] != '{')
        return 0;
    size_t end = tmpl_expr_end(s, len, 2);
    return end == len - 1 ? end : 0;
}

static enum as_code resolve_string(const json_t *value, const json_t *scope, json_t **out,
                                   struct as_err *err)
{
    const char *s = json_string_value(value);
    size_t len = json_string_length(value);
    size_t end = whole_template_end(s, len);
    enum as_code rc;
    if (end) {
        struct expr *e = NULL;
        rc = expr_compile_n(s + 2, end - 2, &e, NULL, err);
        if (rc != AS_OK) {
            as_err_prefix(err, "in %.*s", (int)(len > 80 ? 80 : len), s);
            return rc;
        }
        rc = expr_eval(e, scope, out, err);
        expr_free(e);
        return rc;
    }
    if (!memchr(s, '$', len)) {
        *out = json_incref((json_t *)value);
        return AS_OK;
    }
    struct strbuf b = {0};
    rc = render_n(s, len, scope, TMPL_RAW, NULL, 0, &b, NULL, err);
    if (rc != AS_OK)
        return rc;
    *out = json_stringn_nocheck(b.p, b.len);
    free(b.p);
    if (!*out)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

static enum as_code resolve_value(const json_t *value, const json_t *scope, json_t **out,
                                  int depth, struct as_err *err)
{
    enum as_code rc = AS_OK;
    *out = NULL;
    if (depth > TMPL_MAX_DEPTH)
        return as_errf(err, AS_ELIMIT, "value nested deeper than %d levels", TMPL_MAX_DEPTH);
    if (json_is_string(value))
        return resolve_string(value, scope, out, err);
    if (json_is_array(value)) {
        json_t *arr = json_array();
        size_t i;
        json_t *v;
        if (!arr)
            return as_errf(err, AS_ENOMEM, "out of memory");
        json_array_foreach(value, i, v) {
            json_t *r = NULL;
            rc = resolve_value(v, scope, &r, depth + 1, err);
            if (rc != AS_OK)
                break;
            if (json_array_append_new(arr, r) != 0) {
                rc = as_errf(err, AS_ENOMEM, "out of memory");
                break;
            }
        }
        if (rc != AS_OK) {
            json_decref(arr);
            return rc;
        }
        *out = arr;
        return AS_OK;
    }
    if (json_is_object(value)) {
        json_t *obj = json_object();
        const char *k;
        json_t *v;
        if (!obj)
            return as_errf(err, AS_ENOMEM, "out of memory");
        json_object_foreach((json_t *)value, k, v) {
            json_t *r = NULL;
            rc = resolve_value(v, scope, &r, depth + 1, err);
            if (rc != AS_OK) {
                as_err_prefix(err, "%s", k);
                break;
            }
            if (json_object_set_new(obj, k, r) != 0) {
                rc = as_errf(err, AS_ENOMEM, "out of memory");
                break;
            }
        }
        if (rc != AS_OK) {
            json_decref(obj);
            return rc;
        }
        *out = obj;
        return AS_OK;
    }
    *out = json_incref((json_t *)value);
    return AS_OK;
}

enum as_code tmpl_resolve(const json_t *value, const json_t *scope, json_t **out,
                          struct as_err *err)
{
    return resolve_value(value, scope, out, 0, err);
}

enum as_code tmpl_check_string(const char *s, size_t len, json_t *refs_out, size_t *err_off,
                               struct as_err *err)
{
    json_t *refs = refs_out ? json_incref(refs_out) : json_array();
    enum as_code rc;
    if (err_off)
        *err_off = 0;
    if (!refs)
        return as_errf(err, AS_ENOMEM, "out of memory");
    rc = render_n(s, len, NULL, TMPL_RAW, refs, 0, NULL, err_off, err);
    json_decref(refs);
    return rc;
}

static enum as_code check_value(const json_t *value, json_t *refs, int depth, struct as_err *err)
{
    enum as_code rc = AS_OK;
    if (depth > TMPL_MAX_DEPTH)
        return as_errf(err, AS_ELIMIT, "value nested deeper than %d levels", TMPL_MAX_DEPTH);
    if (json_is_string(value))
        return tmpl_check_string(json_string_value(value), json_string_length(value), refs, NULL,
                                 err);
    if (json_is_array(value)) {
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v) {
            if ((rc = check_value(v, refs, depth + 1, err)) != AS_OK)
                return rc;
        }
    } else if (json_is_object(value)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)value, k, v) {
            if ((rc = check_value(v, refs, depth + 1, err)) != AS_OK) {
                as_err_prefix(err, "%s", k);
                return rc;
            }
        }
    }
    return AS_OK;
}

enum as_code tmpl_check(const json_t *value, json_t *refs_out, struct as_err *err)
{
    json_t *refs = refs_out ? json_incref(refs_out) : json_array();
    if (!refs)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = check_value(value, refs, 0, err);
    json_decref(refs);
    return rc;
}

int tmpl_is_whole(const char *s)
{
    return whole_template_end(s, strlen(s)) != 0;
}

enum as_code tmpl_check_located(const char *s, size_t len, json_t *refs_out, size_t *err_off,
                                struct as_err *err)
{
    if (err_off)
        *err_off = 0;
    return render_n(s, len, NULL, TMPL_RAW, refs_out, 1, NULL, err_off, err);
}
