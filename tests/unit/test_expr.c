/* test_expr.c - the expression language and ${...} templates (base/expr.c). */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/expr.h"

static json_t *scope_new(void)
{
    json_error_t jerr;
    json_t *s = json_loads(
        "{\"input\": {\"user\": {\"upn\": \"ann@contoso.com\", \"name\": \"Ann <&> 'O\\\"K'\"},"
        "             \"n\": 3, \"r\": 2.5, \"list\": [1, 2, \"x\"], \"empty\": \"\", \"zero\": 0,"
        "             \"flags\": {\"pop\": true, \"imap\": false}, \"key\": \"pop\","
        "             \"weird key\": 7},"
        " \"steps\": {\"post\": {\"output\": {\"status\": 200, \"items\": [{\"id\": \"a\"}, {\"id\": \"b\"}]},"
        "                       \"outcome\": \"success\"}}}",
        0, &jerr);
    assert_non_null(s);
    return s;
}

/* Evaluate src against scope and return its compact JSON (caller frees). */
static char *eval_str(const char *src, const json_t *scope)
{
    struct expr *e = NULL;
    struct as_err err = {0};
    json_t *v = NULL;
    if (expr_compile(src, &e, &err) != AS_OK) {
        fprintf(stderr, "compile %s: %s\n", src, err.msg);
        fail();
    }
    assert_int_equal(expr_eval(e, scope, &v, &err), AS_OK);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    expr_free(e);
    return s;
}

#define EXPECT(src, want)                                                                     \
    do {                                                                                      \
        char *got_ = eval_str(src, scope);                                                    \
        if (strcmp(got_, want) != 0) {                                                        \
            fprintf(stderr, "%s: got %s, want %s\n", src, got_, want);                        \
            free(got_);                                                                       \
            fail();                                                                           \
        }                                                                                     \
        free(got_);                                                                           \
    } while (0)

static void test_literals_paths(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    EXPECT("42", "42");
    EXPECT("-7", "-7");
    EXPECT("2.5", "2.5");
    EXPECT("1e3", "1000.0");
    EXPECT("0.5e-1", "0.050000000000000003");
    EXPECT("9223372036854775807", "9223372036854775807");
    EXPECT("99999999999999999999", "1e20");
    json_decref(scope);
}

static void test_paths(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    EXPECT("true", "true");
    EXPECT("null", "null");
    EXPECT("'a\\'b'", "\"a'b\"");
    EXPECT("\"\\u00e9\\n\"", "\"\xc3\xa9\\n\"");
    EXPECT("input.user.upn", "\"ann@contoso.com\"");
    EXPECT("input[\"user\"]['upn']", "\"ann@contoso.com\"");
    EXPECT("input[\"weird key\"]", "7");
    EXPECT("input.list[1]", "2");
    EXPECT("input.list.2", "\"x\"");
    EXPECT("input.list[9]", "null");
    EXPECT("input.nope.deeper", "null");
    EXPECT("steps.post.output.items[1].id", "\"b\"");
    EXPECT("input.flags[input.key]", "true");
    EXPECT("input.user.upn.x", "null");
    EXPECT("nothing", "null");
    EXPECT("[1, 'a', input.n]", "[1,\"a\",3]");
    EXPECT("[10, 20][1]", "20");
    EXPECT("(input).n", "3");
    json_decref(scope);
}

static void test_operators(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    EXPECT("steps.post.output.status == 200", "true");
    EXPECT("steps.post.output.status == 200.0", "true");
    EXPECT("input.n != 3", "false");
    EXPECT("input.n < 4 && input.r >= 2.5", "true");
    EXPECT("input.n > input.r", "true");
    EXPECT("'abc' < 'abd'", "true");
    EXPECT("'b' <= 'a'", "false");
    /* different types: == is false, != is true, ordering is false */
    EXPECT("'3' == 3", "false");
    EXPECT("'3' != 3", "true");
    EXPECT("'3' < 4", "false");
    EXPECT("null < 1", "false");
    EXPECT("input.missing == null", "true");
    EXPECT("input.n == null", "false");
    EXPECT("[1, 2] == [1, 2]", "true");
    /* precedence: && binds tighter than || */
    EXPECT("true || false && false", "true");
    EXPECT("(true || false) && false", "false");
    EXPECT("!false && false", "false");
    EXPECT("!(false && false)", "true");
    EXPECT("!input.empty", "true");
    EXPECT("!input.zero", "true");
    EXPECT("!!input.n", "true");
    EXPECT("!input.flags", "false");
    EXPECT("![]", "true");
    EXPECT("1 == 1 && 2 == 2 && 3 == 3 && 4 == 5", "false");
    EXPECT("1 == 2 || 2 == 3 || 'x' in input.list", "true");
    /* in */
    EXPECT("2 in input.list", "true");
    EXPECT("2.0 in input.list", "true");
    EXPECT("'2' in input.list", "false");
    EXPECT("'contoso' in input.user.upn", "true");
    EXPECT("'fabrikam' in input.user.upn", "false");
    EXPECT("'pop' in input.flags", "true");
    EXPECT("'smtp' in input.flags", "false");
    EXPECT("1 in 'a1'", "false");
    EXPECT("'x' in null", "false");
    json_decref(scope);
}

static void test_short_circuit(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    /* Right operands are not needed: results are booleans of the first decisive operand. */
    EXPECT("input.n || nothing.at.all", "true");
    EXPECT("input.empty && input.n", "false");
    EXPECT("input.zero || input.empty || input.n", "true");
    json_decref(scope);
}

static void test_conditional(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    EXPECT("input.empty ? input.empty : input.user.upn", "\"ann@contoso.com\"");
    EXPECT("input.user.name ? 'Hello ' : 'Hello'", "\"Hello \"");
    EXPECT("input.n == 3 ? [1, 2] : nothing", "[1,2]");
    /* Right-associative, binds loosest; the branch not taken is not evaluated. */
    EXPECT("input.zero ? 1 : input.empty ? 2 : 3", "3");
    EXPECT("input.n ? input.flags.pop : missing.x", "true");
    EXPECT("(input.zero ? 'a' : 'b') == 'b'", "true");
    EXPECT("[input.zero ? 1 : 2][0]", "2");
    EXPECT("input.list[input.n > 1 ? 2 : 0]", "\"x\"");
    json_decref(scope);
}

/* Compile must fail, with the message naming column `col`. */
static void expect_error(const char *src, enum as_code code, const char *col_text)
{
    struct expr *e = NULL;
    struct as_err err = {0};
    enum as_code rc = expr_compile(src, &e, &err);
    if (rc != code || (col_text && !strstr(err.msg, col_text))) {
        fprintf(stderr, "%s: rc %d msg \"%s\" (want %d, \"%s\")\n", src, rc, err.msg, code,
                col_text ? col_text : "");
        expr_free(e);
        fail();
    }
    assert_null(e);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("", AS_EINVAL, "column 1");
    expect_error("a ==", AS_EINVAL, "column 5");
    expect_error("a = 1", AS_EINVAL, "use ==");
    expect_error("a & b", AS_EINVAL, "use &&");
    expect_error("(a == 1", AS_EINVAL, "column 8");
    expect_error("'unterminated", AS_EINVAL, "column 1");
    expect_error("a.", AS_EINVAL, "column 3");
    expect_error("a[1", AS_EINVAL, "column 4");
    expect_error("1 < 2 < 3", AS_EINVAL, "do not chain");
    expect_error("a b", AS_EINVAL, "column 3");
    expect_error("'x' 'y'", AS_EINVAL, "column 5");
    expect_error("${input.x}", AS_EINVAL, "without ${");
    expect_error("'\\q'", AS_EINVAL, "escape");
    expect_error("12abc", AS_EINVAL, "column 3");
    expect_error("[1, 2", AS_EINVAL, "column 6");
    expect_error("in", AS_EINVAL, "column 1");
    expect_error("f(1)", AS_EINVAL, "column 2");
    expect_error("a ? b", AS_EINVAL, "expected ':' at column 6");
    expect_error("a ? : c", AS_EINVAL, "column 5");
    expect_error("a ? b : ", AS_EINVAL, "column 9");
    /* columns count characters, not bytes */
    expect_error("'\xc3\xa9\xc3\xa9' ==", AS_EINVAL, "column 8");

    /* caps: depth and length */
    char deep[300];
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 70; i++)
        deep[n++] = ')';
    deep[n] = '\0';
    expect_error(deep, AS_ELIMIT, "nested too deeply");
    n = 0;
    for (int i = 0; i < 100; i++)
        deep[n++] = '!';
    deep[n++] = 'x';
    deep[n] = '\0';
    expect_error(deep, AS_ELIMIT, "nested too deeply");
    /* 60 levels are fine */
    n = 0;
    for (int i = 0; i < 60; i++)
        deep[n++] = '[';
    for (int i = 0; i < 60; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    struct expr *e = NULL;
    struct as_err err = {0};
    assert_int_equal(expr_compile(deep, &e, &err), AS_OK);
    expr_free(e);

    char *big = malloc(EXPR_MAX_LEN + 10);
    assert_non_null(big);
    memset(big, ' ', EXPR_MAX_LEN + 9);
    big[0] = '1';
    big[EXPR_MAX_LEN + 9] = '\0';
    expect_error(big, AS_ELIMIT, "too long");
    /* a long flat chain is within the depth cap: && is n-ary */
    n = 0;
    for (int i = 0; i < 1000 && n + 8 < EXPR_MAX_LEN; i++)
        n += (size_t)snprintf(big + n, EXPR_MAX_LEN - n, "%sa.b", i ? "&&" : "");
    big[n] = '\0';
    assert_int_equal(expr_compile(big, &e, &err), AS_OK);
    expr_free(e);
    free(big);

    size_t off = 99;
    assert_int_equal(expr_compile_n("a == == b", 9, &e, &off, &err), AS_EINVAL);
    assert_int_equal(off, 5);
}

static void test_refs(void **state)
{
    (void)state;
    struct expr *e = NULL;
    struct as_err err = {0};
    assert_int_equal(expr_compile("steps.post.output.status == 200 && input.x || steps['check'].outcome"
                                  " || steps.post.output.y || run.id || steps[input.k]",
                                  &e, &err),
                     AS_OK);
    json_t *refs = expr_refs(e);
    char *s = json_dumps(refs, JSON_COMPACT);
    assert_string_equal(s, "[\"steps.post\",\"input\",\"steps.check\",\"run\",\"steps\"]");
    free(s);
    json_decref(refs);
    expr_free(e);
}

static void test_truthy(void **state)
{
    (void)state;
    json_t *v[] = {json_null(), json_false(), json_integer(0), json_real(0.0), json_string(""),
                   json_array(), json_object()};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_false(expr_truthy(v[i]));
        json_decref(v[i]);
    }
    json_t *t[] = {json_true(), json_integer(-1), json_real(0.1), json_string("0"),
                   json_pack("[i]", 0), json_pack("{s:n}", "a")};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_true(expr_truthy(t[i]));
        json_decref(t[i]);
    }
    struct expr *e = NULL;
    struct as_err err = {0};
    int b = -1;
    json_t *scope = scope_new();
    assert_int_equal(expr_compile("input.list", &e, &err), AS_OK);
    assert_int_equal(expr_eval_bool(e, scope, &b, &err), AS_OK);
    assert_int_equal(b, 1);
    expr_free(e);
    json_decref(scope);
}

static void test_templates(void **state)
{
    (void)state;
    json_t *scope = scope_new();
    struct as_err err = {0};
    json_error_t jerr;
    json_t *params = json_loads(
        "{\"whole\": \"${steps.post.output.status}\", \"obj\": \"${input.flags}\","
        " \"missing\": \"${input.nope}\", \"mixed\": \"status=${steps.post.output.status} of ${input.user.upn}\","
        " \"esc\": \"cost: $${not} $$ ${input.n}$\", \"nested\": [{\"u\": \"${input.user.upn}\"}, 5, true],"
        " \"real\": \"r=${input.r} l=${input.list} n=${input.nope}!\", \"brace\": \"${'}' in '{}'}\","
        " \"plain\": \"no refs\"}",
        0, &jerr);
    assert_non_null(params);
    json_t *out = NULL;
    assert_int_equal(tmpl_resolve(params, scope, &out, &err), AS_OK);
    char *s = json_dumps(out, JSON_COMPACT);
    assert_string_equal(s, "{\"whole\":200,\"obj\":{\"pop\":true,\"imap\":false},\"missing\":null,"
                           "\"mixed\":\"status=200 of ann@contoso.com\",\"esc\":\"cost: ${not} $$ 3$\","
                           "\"nested\":[{\"u\":\"ann@contoso.com\"},5,true],"
                           "\"real\":\"r=2.5 l=[1,2,\\\"x\\\"] n=!\",\"brace\":true,\"plain\":\"no refs\"}");
    free(s);
    json_decref(out);

    /* HTML escaping applies to substituted values only */
    char *text = NULL;
    assert_int_equal(tmpl_render("<b>${input.user.name}</b> & ${input.n}", scope, TMPL_HTML, &text, &err),
                     AS_OK);
    assert_string_equal(text, "<b>Ann &lt;&amp;&gt; &#39;O&quot;K&#39;</b> & 3");
    free(text);
    assert_int_equal(tmpl_render("<b>${input.user.name}</b>", scope, TMPL_RAW, &text, &err), AS_OK);
    assert_string_equal(text, "<b>Ann <&> 'O\"K'</b>");
    free(text);
    assert_int_equal(tmpl_render("", scope, TMPL_RAW, &text, &err), AS_OK);
    assert_string_equal(text, "");
    free(text);

    /* errors name the column inside the template */
    assert_int_equal(tmpl_render("abc ${input.n ==}", scope, TMPL_RAW, &text, &err), AS_EINVAL);
    assert_null(text);
    assert_non_null(strstr(err.msg, "in ${input.n ==}: expected a value at column 11"));
    assert_int_equal(tmpl_render("x ${input.n", scope, TMPL_RAW, &text, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "unterminated"));
    size_t off = 0;
    assert_int_equal(tmpl_check_string("ab ${a.}", 8, NULL, &off, &err), AS_EINVAL);
    assert_int_equal(off, 7);

    /* tmpl_check collects refs */
    json_t *refs = json_array();
    assert_int_equal(tmpl_check(params, refs, &err), AS_OK);
    s = json_dumps(refs, JSON_COMPACT);
    assert_string_equal(s, "[\"steps.post\",\"input\"]");
    free(s);
    json_decref(refs);

    assert_true(tmpl_is_whole("${a}"));
    assert_false(tmpl_is_whole("${a} "));
    assert_false(tmpl_is_whole("${a}${b}"));
    assert_false(tmpl_is_whole("$${a}"));
    json_decref(params);
    json_decref(scope);
}

/* Deterministic random inputs from the grammar's alphabet: compile, evaluate and
 * render must never crash or leak, whatever the text (run under ASan/valgrind). */
static void test_random_inputs(void **state)
{
    (void)state;
    static const char alphabet[] = "ab.[]()'\"\\!=<>&|, 0129-_$${}intrufalsenul\t\xc3\xa9";
    json_t *scope = scope_new();
    unsigned seed = 12345;
    char src[64];
    int compiled = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(iter % 40) + 1;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            src[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        src[len] = '\0';
        struct expr *e = NULL;
        struct as_err err = {0};
        size_t off = 0;
        enum as_code rc = expr_compile_n(src, len, &e, &off, &err);
        if (rc == AS_OK) {
            json_t *v = NULL;
            assert_int_equal(expr_eval(e, scope, &v, &err), AS_OK);
            json_decref(v);
            json_t *refs = expr_refs(e);
            assert_non_null(refs);
            json_decref(refs);
            expr_free(e);
            compiled++;
        } else {
            assert_null(e);
            assert_true(off <= len);
            assert_true(err.msg[0] != '\0');
        }
        char *text = NULL;
        if (tmpl_render(src, scope, TMPL_HTML, &text, &err) == AS_OK)
            free(text);
        else
            assert_null(text);
    }
    /* the alphabet makes some valid expressions: the test exercises both paths */
    assert_true(compiled > 100);
    json_decref(scope);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_paths),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_short_circuit),
        cmocka_unit_test(test_conditional),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_truthy),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
