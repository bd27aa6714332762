/* fuzz_expr.c - the expression language: compile any text, collect its
 * refs, and evaluate it against a fixed scope (input, steps, strings,
 * numbers, arrays).  Evaluation must give a value or an error, never both. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>

#include "base/expr.h"

static json_t *scope(void)
{
    static json_t *s;
    if (!s) {
        s = json_loads("{\"input\": {\"user\": \"a@b.c\", \"n\": 3, \"x\": 2.5, \"ok\": true, "
                       "\"list\": [1, \"two\", null, {\"k\": [3]}], \"obj\": {\"a\": {\"b\": \"c\"}}, "
                       "\"big\": 9223372036854775807, \"neg\": -9223372036854775807},"
                       "\"steps\": {\"post\": {\"output\": {\"status\": 200, \"body\": \"\\u00e9t\\u00e9\"}, "
                       "\"outcome\": \"success\"}}}",
                       0, NULL);
        FUZZ_ASSERT(s);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct expr *e = NULL;
    size_t off = (size_t)-1;
    struct as_err err = {0};
    if (expr_compile_n((const char *)data, size, &e, &off, &err) != AS_OK) {
        FUZZ_ASSERT(!e);
        FUZZ_ASSERT(off == (size_t)-1 || off <= size);
        return 0;
    }
    FUZZ_ASSERT(e);
    json_t *refs = expr_refs(e);
    FUZZ_ASSERT(refs);
    json_decref(refs);
    json_t *out = NULL;
    if (expr_eval(e, scope(), &out, &err) == AS_OK) {
        FUZZ_ASSERT(out);
        json_decref(out);
    } else {
        FUZZ_ASSERT(!out);
    }
    int b = -1;
    if (expr_eval_bool(e, scope(), &b, &err) == AS_OK)
        FUZZ_ASSERT(b == 0 || b == 1);
    expr_free(e);
    return 0;
}
