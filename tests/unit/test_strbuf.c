/* test_strbuf.c - the growable byte string (base/strbuf.h) and the JSON
 * builder on top of it (base/jsonbuf.h). */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/jsonbuf.h"
#include "base/strbuf.h"

static void test_grow_and_take(void **state)
{
    (void)state;
    struct strbuf b = {0};
    char *empty = strbuf_take(&b);
    assert_string_equal(empty, "");
    free(empty);

    for (int i = 0; i < 1000; i++)
        strbuf_add(&b, "abc");
    strbuf_addn(&b, "x\0y", 3);
    strbuf_addc(&b, '!');
    assert_int_equal(b.len, 3004);
    assert_memory_equal(b.p + 3000, "x\0y!", 5);
    char *s = strbuf_take(&b);
    assert_non_null(s);
    assert_null(b.p); /* spent */
    free(s);
}

static void test_cap_latches(void **state)
{
    (void)state;
    struct strbuf b = {.max = 8};
    strbuf_add(&b, "1234567"); /* 7 bytes + NUL = 8: fits */
    assert_false(b.failed);
    strbuf_addc(&b, '8');
    assert_int_equal(b.failed, STRBUF_OVER); /* told apart from out of memory */
    strbuf_add(&b, ""); /* still failed */
    assert_null(strbuf_take(&b));
}

static void test_addf(void **state)
{
    (void)state;
    struct strbuf b = {0};
    strbuf_addf(&b, "%s=%d;", "n", 42);
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_addf(&b, "[%s]", big); /* longer than the stack buffer it tries first */
    assert_int_equal(b.len, 5 + 1 + 599 + 1);
    assert_memory_equal(b.p, "n=42;[zz", 8);
    assert_int_equal(b.p[b.len - 1], ']');
    strbuf_free(&b);
    assert_null(b.p);
    struct strbuf capped = {.max = 4};
    strbuf_addf(&capped, "%d", 12345);
    assert_int_equal(capped.failed, STRBUF_OVER);
    assert_null(strbuf_take(&capped));
}

static void test_jsonbuf(void **state)
{
    (void)state;
    struct jsonbuf j = {0};
    jsonbuf_add(&j, "{\"n\":");
    jsonbuf_add_i64(&j, -42);
    jsonbuf_add(&j, ",\"s\":");
    jsonbuf_add_str(&j, "a\"\n\x01\xf5\x80\x80\x80\xc3\xa9");
    jsonbuf_add(&j, "}");
    char *text = jsonbuf_take(&j);
    /* Invalid UTF-8 (here a lead byte past U+10FFFF) becomes U+FFFD per byte. */
    assert_string_equal(text, "{\"n\":-42,\"s\":\"a\\\"\\n\\u0001\\ufffd\\ufffd\\ufffd\\ufffd\xc3\xa9\"}");
    free(text);

    /* Valid UTF-8 comes out as jansson's json_dumps writes it: events built
     * either way hash the same. */
    char all[160];
    size_t n = 0;
    for (int c = 1; c < 0x80; c++)
        all[n++] = (char)c;
    snprintf(all + n, sizeof all - n, "%s", "\xc3\xa9\xe2\x80\xa8/\xf0\x9f\x98\x80");
    struct jsonbuf k = {0};
    jsonbuf_add_str(&k, all);
    text = jsonbuf_take(&k);
    json_t *s = json_string(all);
    char *want = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    assert_string_equal(text, want);
    free(want);
    json_decref(s);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_and_take),
        cmocka_unit_test(test_cap_latches),
        cmocka_unit_test(test_addf),
        cmocka_unit_test(test_jsonbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
