/*
 * workflow.c - load, validate and walk workflow definitions (see workflow.h
 * and docs/workflow-format.md).
 *
 * Loading parses the text (jansson, duplicate keys rejected), runs every
 * check of engine/wf_check.c, which collects each defect as a diagnostic with
 * a JSON path, and gives each diagnostic its line and column through
 * engine/json_locate.c.  Only a definition without errors becomes a struct
 * workflow, which is immutable from then on.
 */
#include "engine/workflow.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/encode.h"
#include "base/expr.h"
#include "base/json_locate.h"
#include "base/log.h"
#include "engine/wf_check.h"
#include "base/timeutil.h"
#include "base/utf8.h"
#include "engine/step.h"

/* ---------- building the model ---------- */

static int64_t duration_or(const json_t *obj, const char *key, int64_t dflt)
{
    int64_t ms;
    const json_t *j = json_object_get(obj, key);
    if (!json_is_string(j) || time_parse_duration(json_string_value(j), &ms, NULL) != AS_OK)
        return dflt;
    return ms;
}

static enum as_code build(struct wf_check *v, struct workflow **out, struct as_err *err)
{
    struct workflow *wf = calloc(1, sizeof *wf);
    const json_t *version = json_object_get(v->root, "version");
    char vbuf[32];

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
    /* The hash is taken of the canonical JSON (keys sorted), so key order
     * and whitespace never make a new version; the text stored is the same
     * document compact in the author's key order, so what people see later
     * (an approval's details) keeps the order they wrote.  Sorting loses the
     * step order that picks the default first step: the effective "start"
     * is written into both, so the stored text reloads to the same graph
     * and two orders with different first steps never share a hash. */
    json_t *doc = json_incref(v->root);
    char *sorted = NULL;
    if (!json_object_get(v->root, "start") && v->start != (size_t)-1) {
        json_decref(doc);
        doc = json_copy(v->root);
        if (doc && json_object_set_new(doc, "start", json_string(v->steps[v->start].name)) != 0) {
            json_decref(doc);
            doc = NULL;
        }
    }
    if (doc) {
        wf->canonical = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
        sorted = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        json_decref(doc);
    }
    wf->empty_params = json_object();
    wf->steps = calloc(v->n_steps, sizeof *wf->steps);
    if (!wf->name || !wf->version || !wf->canonical || !sorted || !wf->empty_params ||
        !wf->steps) {
        free(sorted);
        goto oom;
    }
    int hash_failed = encode_sha256_hex(sorted, strlen(sorted), wf->hash);
    free(sorted);
    if (hash_failed) {
        wf_free(wf);
        return as_errf(err, AS_ENOMEM, "SHA-256 of the workflow failed");
    }

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

enum as_code wf_load_string(const char *text, const char *origin, struct workflow **out,
                            struct diag_list *diags, struct as_err *err)
{
    return wf_load_buffer(text, strlen(text), origin, out, diags, err);
}

enum as_code wf_load_buffer(const char *text, size_t len, const char *origin,
                            struct workflow **out, struct diag_list *diags, struct as_err *err)
{
    struct diag_list local = {0};
    struct wf_check v = {.text = text, .len = len};
    json_error_t jerr;
    enum as_code rc = AS_OK;
    size_t first;
    (void)origin;

    *out = NULL;
    v.diags = diags ? diags : &local;
    first = v.first = v.diags->n;

    if (len > WF_MAX_FILE_SIZE) {
        wf_check_add(&v, DIAG_ERROR, "LIMIT", "$", "the workflow is %zu bytes (limit %d)", len, WF_MAX_FILE_SIZE);
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
        wf_check_add(&v, DIAG_ERROR, "JSON_SYNTAX", "$", "%s", jerr.text);
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
            wf_check_add(&v, DIAG_ERROR, "DUPLICATE_KEY", e->path,
                 "duplicate key \"%s\" (first at line %d, column %d); only the last one counts", key + 1,
                 prev->key.line, prev->key.column);
        else
            wf_check_add(&v, DIAG_ERROR, "DUPLICATE_KEY", e->path,
                 "duplicate key %s (first at line %d, column %d); only the last one counts", key,
                 prev->key.line, prev->key.column);
        if (!v.oom) {
            v.diags->items[v.diags->n - 1].line = e->key.line;
            v.diags->items[v.diags->n - 1].column = e->key.column;
        }
    }
    wf_check_document(&v);
    wf_check_locate(v.diags, first, v.loc);
    wf_check_sort(v.diags, first);
    if (v.dropped) {
        v.first = v.diags->n; /* let this one through */
        wf_check_add(&v, v.dropped_errors ? DIAG_ERROR : DIAG_WARNING, "LIMIT", "$",
                     "%zu more diagnostics (%zu errors) not shown: only the first %d are kept",
                     v.dropped, v.dropped_errors, WF_MAX_DIAGS);
        if (!v.oom)
            v.diags->items[v.diags->n - 1].line = v.diags->items[v.diags->n - 1].column = 1;
    }
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
    wf_check_free(&v);
    jl_free(v.loc);
    json_decref(v.root);
    diag_free(&local);
    return rc;
}

enum as_code wf_load_file(const char *path, struct workflow **out, struct diag_list *diags,
                          struct as_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    enum as_code rc = file_read(path, WF_MAX_FILE_SIZE, &buf, &len, err);
    if (rc == AS_ELIMIT && diags)
        diag_add(diags, DIAG_ERROR, "LIMIT", "$", "the file is larger than %d bytes",
                 WF_MAX_FILE_SIZE);
    if (!rc)
        rc = wf_load_buffer(buf, len, path, out, diags, err);
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
            wf_join_names(list, sizeof list, names, n);
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
                    wf->name, type, wf_json_type_name(given));
            json_decref(res);
            return AS_EINVAL;
        }
    }
    *out = res;
    return AS_OK;
}

/* ---------- printing ---------- */

/* s as a JSON string with every byte that does not start a valid UTF-8
 * sequence replaced by '?': a message may quote a cut sequence of the input
 * (a parser's "near '\xC3'", or a message cut at its buffer's end), and
 * jansson takes only valid UTF-8 (found by tests/fuzz/fuzz_workflow.c). */
static json_t *json_text_lossy(const char *s)
{
    if (utf8_valid(s))
        return json_string(s);
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_valid_len((const unsigned char *)s + i);
        if (k == 0) {
            copy[i++] = '?';
            continue;
        }
        memcpy(copy + i, s + i, k);
        i += k;
    }
    copy[n] = '\0';
    json_t *j = json_string(copy);
    free(copy);
    return j;
}

int wf_diags_append_json(json_t *arr, const struct diag_list *diags, const char *origin)
{
    for (size_t i = 0; diags && i < diags->n; i++) {
        const struct diag *d = &diags->items[i];
        json_t *o = json_pack("{s:o, s:i, s:i, s:o, s:s, s:s, s:o}", "file",
                              json_text_lossy(origin ? origin : ""), "line", d->line, "column",
                              d->column, "path", json_text_lossy(d->path), "code", d->code,
                              "severity", d->severity == DIAG_ERROR ? "error" : "warning",
                              "message", json_text_lossy(d->msg));
        /* json_pack steals the "o" values, also when it fails. */
        if (!o || json_array_append_new(arr, o) != 0)
            return -1;
    }
    return 0;
}

void wf_diag_format(const struct diag *d, const char *origin, char *buf, size_t size)
{
    /* Messages quote the input (a parser's "near '...'", a step name in the
     * path): control characters are escaped so one diagnostic stays one
     * line (found by tests/fuzz/fuzz_workflow.c). */
    char line[2 * sizeof d->msg];
    const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
    if (d->line > 0)
        snprintf(line, sizeof line, "%s:%d:%d: %s %s: %s (at %s)", origin ? origin : "", d->line,
                 d->column, sev, d->code, d->msg, d->path);
    else
        snprintf(line, sizeof line, "%s: %s %s: %s (at %s)", origin ? origin : "", sev, d->code,
                 d->msg, d->path);
    log_escape(buf, size, line, 0);
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
