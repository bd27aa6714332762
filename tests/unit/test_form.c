/* test_form.c - the size-capped application/x-www-form-urlencoded parser (web/form.c). */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/form.h"

static struct form *parse_ok(const char *body)
{
    struct form *f = NULL;
    struct as_err err = {0};
    enum as_code rc = form_parse(body, strlen(body), &f, &err);
    if (rc != AS_OK)
        fail_msg("form_parse(\"%s\") failed: %s", body, err.msg);
    return f;
}

static enum as_code parse_err(const char *body, size_t len, char *msg, size_t msg_size)
{
    struct form *f = NULL;
    struct as_err err = {0};
    enum as_code rc = form_parse(body, len, &f, &err);
    assert_null(f);
    snprintf(msg, msg_size, "%s", err.msg);
    return rc;
}

static void test_basic_fields(void **state)
{
    (void)state;
    struct form *f = parse_ok("csrf=abc-_123&decision=approve&comment=looks+good%2C%20go%21");
    assert_int_equal(form_count(f), 3);
    assert_string_equal(form_get(f, "csrf"), "abc-_123");
    assert_string_equal(form_get(f, "decision"), "approve");
    assert_string_equal(form_get(f, "comment"), "looks good, go!");
    assert_null(form_get(f, "missing"));
    form_free(f);
}

static void test_empty_and_odd_shapes(void **state)
{
    (void)state;
    struct form *f = parse_ok("");
    assert_int_equal(form_count(f), 0);
    form_free(f);

    f = parse_ok("a=&b&&c=1&");
    assert_int_equal(form_count(f), 3);
    assert_string_equal(form_get(f, "a"), "");
    assert_string_equal(form_get(f, "b"), "");
    assert_string_equal(form_get(f, "c"), "1");
    form_free(f);

    /* '=' inside a value is data. */
    f = parse_ok("k=a=b");
    assert_string_equal(form_get(f, "k"), "a=b");
    form_free(f);
}

static void test_utf8_and_crlf(void **state)
{
    (void)state;
    /* "Grüße\r\nforged" survives as data (the logger escapes it later). */
    struct form *f = parse_ok("comment=Gr%C3%BC%C3%9Fe%0D%0Aforged");
    assert_string_equal(form_get(f, "comment"), "Gr\xc3\xbc\xc3\x9f" "e\r\nforged");
    form_free(f);
}

static void test_rejects(void **state)
{
    (void)state;
    char msg[1024];
    assert_int_equal(parse_err("a=%zz", 5, msg, sizeof msg), AS_EINVAL);
    assert_non_null(strstr(msg, "escape"));
    assert_int_equal(parse_err("a=%4", 4, msg, sizeof msg), AS_EINVAL);
    assert_int_equal(parse_err("a=%", 3, msg, sizeof msg), AS_EINVAL);
    assert_int_equal(parse_err("a=x%00y", 7, msg, sizeof msg), AS_EINVAL);
    /* Invalid UTF-8: a lone continuation byte, an overlong '/', a surrogate. */
    assert_int_equal(parse_err("a=%80", 5, msg, sizeof msg), AS_EINVAL);
    assert_non_null(strstr(msg, "UTF-8"));
    assert_int_equal(parse_err("a=%C0%AF", 8, msg, sizeof msg), AS_EINVAL);
    assert_int_equal(parse_err("a=%ED%A0%80", 11, msg, sizeof msg), AS_EINVAL);
    /* Duplicates are ambiguous: refused, whichever spelling. */
    assert_int_equal(parse_err("decision=approve&decision=reject", 32, msg, sizeof msg), AS_EINVAL);
    assert_non_null(strstr(msg, "more than once"));
    assert_int_equal(parse_err("decision=approve&decisio%6E=reject", 34, msg, sizeof msg), AS_EINVAL);
    /* Names: empty, odd characters, too long. */
    assert_int_equal(parse_err("=x", 2, msg, sizeof msg), AS_EINVAL);
    assert_int_equal(parse_err("a%20b=x", 7, msg, sizeof msg), AS_EINVAL);
    char longname[80];
    memset(longname, 'n', 40);
    memcpy(longname + 40, "=1", 3);
    assert_int_equal(parse_err(longname, strlen(longname), msg, sizeof msg), AS_EINVAL);
    /* An embedded NUL byte in the raw body. */
    assert_int_equal(parse_err("a=b\0c", 5, msg, sizeof msg), AS_EINVAL);
}

static void test_limits(void **state)
{
    (void)state;
    char msg[1024];
    /* Exactly at the cap is fine, one byte more is not. */
    char *big = malloc(FORM_MAX_BODY + 2);
    memcpy(big, "comment=", 8);
    memset(big + 8, 'x', FORM_MAX_BODY - 8);
    big[FORM_MAX_BODY] = '\0';
    struct form *f = parse_ok(big);
    assert_int_equal(strlen(form_get(f, "comment")), FORM_MAX_BODY - 8);
    form_free(f);
    big[FORM_MAX_BODY] = 'x';
    big[FORM_MAX_BODY + 1] = '\0';
    assert_int_equal(parse_err(big, FORM_MAX_BODY + 1, msg, sizeof msg), AS_ELIMIT);
    free(big);

    /* Too many fields. */
    char many[512] = "";
    size_t len = 0;
    for (int i = 0; i <= FORM_MAX_FIELDS; i++)
        len += (size_t)snprintf(many + len, sizeof many - len, "f%d=1&", i);
    assert_int_equal(parse_err(many, len, msg, sizeof msg), AS_ELIMIT);
    assert_non_null(strstr(msg, "fields"));
}

/* The console's caps: more fields (kept in order, by index), a bigger body. */
static void test_larger_caps(void **state)
{
    (void)state;
    size_t size = 64 * 1024, len = 0;
    char *body = malloc(size);
    assert_non_null(body);
    for (int i = 0; i < 1500; i++)
        len += (size_t)snprintf(body + len, size - len, "u.%d=user%d%%40contoso.com&", i, i);
    struct form *f = NULL;
    struct as_err err = {0};
    assert_int_equal(form_parse(body, len, &f, &err), AS_ELIMIT);
    assert_null(f);
    assert_int_equal(form_parse_max(body, len, 64 * 1024, 1500, &f, &err), AS_OK);
    assert_int_equal(form_count(f), 1500);
    assert_string_equal(form_name_at(f, 0), "u.0");
    assert_string_equal(form_value_at(f, 1499), "user1499@contoso.com");
    assert_null(form_name_at(f, 1500));
    assert_string_equal(form_get(f, "u.700"), "user700@contoso.com");
    form_free(f);
    assert_int_equal(form_parse_max(body, len, 64 * 1024, 1499, &f, &err), AS_ELIMIT);
    assert_int_equal(form_parse_max(body, len, len - 1, 5000, &f, &err), AS_ELIMIT);
    free(body);
}

/* A form with a file (multipart/form-data), as the console's validate form sends it. */
static void test_multipart(void **state)
{
    (void)state;
    static const char ct[] = "multipart/form-data; boundary=----XyZ";
    static const char good[] =
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"csrf\"\r\n\r\n"
        "tok\r\n"
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"workflow_file\"; filename=\"name=\\\"x\\\".json\"\r\n"
        "Content-Type: application/json\r\n\r\n"
        "{\"a\":\r\n 1}\r\n"
        "------XyZ\r\n"
        "Content-Disposition: form-data; name=\"workflow\"\r\n\r\n"
        "\r\n"
        "------XyZ--\r\n";
    struct form *f = NULL;
    struct as_err err = {0};
    assert_int_equal(form_parse_multipart(good, sizeof good - 1, ct, 4096, 10, &f, &err), AS_OK);
    assert_int_equal(form_count(f), 3);
    assert_string_equal(form_get(f, "csrf"), "tok");
    assert_string_equal(form_get(f, "workflow_file"), "{\"a\":\r\n 1}");
    assert_string_equal(form_get(f, "workflow"), "");
    form_free(f);
    /* A quoted boundary. */
    assert_int_equal(form_parse_multipart(good, sizeof good - 1,
                                          "multipart/form-data; boundary=\"----XyZ\"", 4096, 10, &f,
                                          &err),
                     AS_OK);
    form_free(f);
    static const struct {
        const char *ct, *body;
        enum as_code want;
    } bad[] = {
        {"multipart/form-data", "------XyZ--\r\n", AS_EINVAL},              /* no boundary */
        {"text/plain; boundary=----XyZ", "------XyZ--\r\n", AS_EINVAL},     /* not multipart */
        {ct, "junk", AS_EINVAL},                                           /* no first boundary */
        {ct, "------XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
         AS_EINVAL},                                                       /* no closing boundary */
        {ct, "------XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n------XyZ--", AS_EINVAL},
        {ct, "------XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n------XyZ--",
         AS_EINVAL},                                                       /* filename only */
        {ct, "------XyZ\r\nContent-Disposition: form-data; name=\"a b\"\r\n\r\nx\r\n------XyZ--",
         AS_EINVAL},                                                       /* bad name */
        {ct, "------XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n"
             "------XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ny\r\n------XyZ--",
         AS_EINVAL},                                                       /* twice */
        {ct, "------XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n------XyZ--",
         AS_EINVAL},                                                       /* not UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum as_code rc =
            form_parse_multipart(bad[i].body, strlen(bad[i].body), bad[i].ct, 4096, 10, &f, &err);
        if (rc != bad[i].want)
            fail_msg("case %zu: %d (%s)", i, (int)rc, err.msg);
        assert_null(f);
    }
    /* A NUL inside a part, and the caps. */
    static const char nul[] = "------XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\0y\r\n"
                              "------XyZ--";
    assert_int_equal(form_parse_multipart(nul, sizeof nul - 1, ct, 4096, 10, &f, &err), AS_EINVAL);
    assert_int_equal(form_parse_multipart(good, sizeof good - 1, ct, 100, 10, &f, &err), AS_ELIMIT);
    assert_int_equal(form_parse_multipart(good, sizeof good - 1, ct, 4096, 2, &f, &err), AS_ELIMIT);
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* The parser must honour len and never read past it. */
    char *buf = malloc(7);
    memcpy(buf, "a=1&b=2", 7); /* no NUL within len; malloc'd so ASan sees overreads */
    struct form *f = NULL;
    struct as_err err = {0};
    assert_int_equal(form_parse(buf, 7, &f, &err), AS_OK);
    assert_string_equal(form_get(f, "b"), "2");
    form_free(f);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_fields),
        cmocka_unit_test(test_empty_and_odd_shapes),
        cmocka_unit_test(test_utf8_and_crlf),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_larger_caps),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_not_nul_terminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
