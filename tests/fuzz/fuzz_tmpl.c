/* fuzz_tmpl.c - templates, text and HTML: check and render any template
 * string against a scope whose values hold markup.  In HTML mode a
 * substituted value never adds markup: every '<' in the output comes from
 * the template's own text. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>

#include "base/expr.h"

static json_t *scope(void)
{
    static json_t *s;
    if (!s) {
        s = json_loads("{\"input\": {\"user\": \"<script>alert(1)</script>\", \"n\": 3, "
                       "\"q\": \"\\\"'&<>\", \"list\": [\"<b>\", 1, null], \"obj\": {\"a\": \"<i>\"}},"
                       "\"steps\": {\"s\": {\"output\": {\"html\": \"<img src=x onerror=y>\"}}}}",
                       0, NULL);
        FUZZ_ASSERT(s);
    }
    return s;
}

static size_t count_lt(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '<';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = fuzz_strndup(data, size);
    struct as_err err = {0};
    json_t *refs = json_array();
    size_t off = 0;
    FUZZ_ASSERT(refs);
    enum as_code checked = tmpl_check_string(t, strlen(t), refs, &off, &err);
    json_decref(refs);
    char *out = NULL;
    if (tmpl_render(t, scope(), TMPL_RAW, &out, &err) == AS_OK) {
        FUZZ_ASSERT(out);
        free(out);
        out = NULL;
    }
    if (tmpl_render(t, scope(), TMPL_HTML, &out, &err) == AS_OK) {
        FUZZ_ASSERT(out);
        FUZZ_ASSERT(checked == AS_OK);
        FUZZ_ASSERT(count_lt(out) <= count_lt(t));
        free(out);
    }
    json_t *v = json_string_nocheck(t);
    json_t *r = NULL;
    if (v && tmpl_resolve(v, scope(), &r, &err) == AS_OK)
        json_decref(r);
    json_decref(v);
    free(t);
    return 0;
}
