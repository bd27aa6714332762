/* test_encode.c - hex, base64, base64url and SHA-256 hex (base/encode.h):
 * RFC 4648 and FIPS 180-2 vectors, buffer limits and each decoding flag. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/encode.h"

static void test_hex_and_sha256(void **state)
{
    (void)state;
    char hex[16];
    const unsigned char bytes[] = {0x00, 0x7f, 0xa5, 0xff};
    encode_hex(bytes, sizeof bytes, hex);
    assert_string_equal(hex, "007fa5ff");
    encode_hex(bytes, 0, hex);
    assert_string_equal(hex, "");

    char sha[ENCODE_SHA256_HEX_SIZE];
    assert_int_equal(encode_sha256_hex("abc", 3, sha), 0);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(encode_sha256_hex("", 0, sha), 0);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[16];
    unsigned char back[16];
    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        assert_int_equal(encode_base64(plain[i], n, out, sizeof out), strlen(std[i]));
        assert_string_equal(out, std[i]);
        assert_int_equal(encode_b64_decode(out, strlen(out), ENCODE_B64_PADDED, back, sizeof back),
                         (long)n);
        assert_memory_equal(back, plain[i], n);
        assert_int_equal(encode_b64url(plain[i], n, out, sizeof out), strlen(url[i]));
        assert_string_equal(out, url[i]);
        assert_int_equal(encode_b64_decode(out, strlen(out), ENCODE_B64_URL, back, sizeof back),
                         (long)n);
        assert_memory_equal(back, plain[i], n);
    }
    /* The two alphabets differ in two characters. */
    const unsigned char bin[] = {0xfb, 0xff, 0xfe};
    encode_b64url(bin, 3, out, sizeof out);
    assert_string_equal(out, "-__-");
    encode_base64(bin, 3, out, sizeof out);
    assert_string_equal(out, "+//+");
    assert_int_equal(encode_b64_decode("-__-", 4, 0, back, sizeof back), -1);
    assert_int_equal(encode_b64_decode("+//+", 4, ENCODE_B64_URL, back, sizeof back), -1);
}

static void test_b64url_round_trip_and_limits(void **state)
{
    (void)state;
    const unsigned char in[] = {0xfb, 0xff, 0x00, 0x10, 0x83};
    const int flags = ENCODE_B64_URL | ENCODE_B64_CANONICAL;
    char out[16];
    unsigned char back[8];
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t len = encode_b64url(in, n, out, sizeof out);
        assert_int_equal(len, (n * 4 + 2) / 3);
        assert_null(strchr(out, '+'));
        assert_null(strchr(out, '/'));
        assert_null(strchr(out, '='));
        assert_int_equal(encode_b64_decode(out, len, flags, back, sizeof back), (long)n);
        assert_memory_equal(back, in, n);
    }
    assert_int_equal(encode_b64url(in, 3, out, 4), 0); /* no room for the NUL */
    assert_int_equal(encode_base64(in, 1, out, 4), 0);
    assert_int_equal(encode_b64_decode("a", 1, flags, back, sizeof back), -1);
    assert_int_equal(encode_b64_decode("a+bc", 4, flags, back, sizeof back), -1);
    assert_int_equal(encode_b64_decode("AB", 2, flags, back, sizeof back), -1); /* non-zero pad bits */
    assert_int_equal(encode_b64_decode("AB", 2, ENCODE_B64_URL, back, sizeof back), 1);
    assert_int_equal(encode_b64_decode("Zm9vYmFy", 8, flags, back, 5), -1); /* out too small */
    /* Padding only where allowed, and only at the end. */
    assert_int_equal(encode_b64_decode("Zg==", 4, ENCODE_B64_URL, back, sizeof back), -1);
    assert_int_equal(encode_b64_decode("Zg==", 4, ENCODE_B64_URL | ENCODE_B64_PADDED, back,
                                       sizeof back),
                     1);
    assert_int_equal(encode_b64_decode("Zg=g", 4, ENCODE_B64_PADDED, back, sizeof back), -1);
}

static void test_mime_skip(void **state)
{
    (void)state;
    const char *body = "Zm9v\r\nYmFy\r\nYg==\r\n";
    unsigned char back[16];
    long n = encode_b64_decode(body, strlen(body), ENCODE_B64_SKIP, back, sizeof back);
    assert_int_equal(n, 7);
    assert_memory_equal(back, "foobarb", 7);
    /* Without SKIP the line breaks are errors. */
    assert_int_equal(encode_b64_decode(body, strlen(body), ENCODE_B64_PADDED, back, sizeof back),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_and_sha256),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_b64url_round_trip_and_limits),
        cmocka_unit_test(test_mime_skip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
