/* test_utf8.c - UTF-8 validation, lengths and encoding (base/utf8.h). */
#include "tests/testutil.h"

#include <string.h>

#include "base/utf8.h"

static void test_valid_len(void **state)
{
    (void)state;
    assert_int_equal(utf8_valid_len((const unsigned char *)"a"), 1);
    assert_int_equal(utf8_valid_len((const unsigned char *)""), 1); /* NUL is ASCII */
    assert_int_equal(utf8_valid_len((const unsigned char *)"\xc3\xa9"), 2);      /* é */
    assert_int_equal(utf8_valid_len((const unsigned char *)"\xe2\x82\xac"), 3);  /* € */
    assert_int_equal(utf8_valid_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
    /* Invalid: stray continuation, overlong, surrogate, past U+10FFFF, bad
     * leads, truncated at the NUL. */
    static const char *const bad[] = {"\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf",
                                      "\xed\xa0\x80", "\xf0\x80\x80\xaf", "\xf4\x90\x80\x80",
                                      "\xf5\x80\x80\x80", "\xff", "\xe2\x82", "\xc3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(utf8_valid_len((const unsigned char *)bad[i]), 0);
    assert_true(utf8_valid("plain, caf\xc3\xa9, \xe2\x82\xac"));
    assert_false(utf8_valid("caf\xc3"));
    assert_false(utf8_valid("a\xed\xbf\xbf"));
}

static void test_encode_and_lead(void **state)
{
    (void)state;
    static const unsigned cps[] = {0x24, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x20ac, 0xffff,
                                   0x10000, 0x1f600, 0x10ffff};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char buf[5] = {0};
        size_t n = utf8_encode(cps[i], buf);
        assert_int_equal(n, utf8_encoded_len(cps[i]));
        assert_int_equal(utf8_valid_len((const unsigned char *)buf), n);
        assert_int_equal(utf8_lead_len((unsigned char)buf[0]), n);
    }
    char buf[4];
    assert_int_equal(utf8_encode(0x20ac, buf), 3);
    assert_memory_equal(buf, "\xe2\x82\xac", 3);
    assert_int_equal(utf8_lead_len(0x80), 1); /* a stray continuation byte moves on by one */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_len),
        cmocka_unit_test(test_encode_and_lead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
