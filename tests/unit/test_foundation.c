/* test_foundation.c - config, logging escapes, time parsing, secret files, db open + migrations. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db.h"
#include "base/config.h"
#include "base/log.h"
#include "base/secret_file.h"
#include "base/timeutil.h"
#include "base/file.h"
#include "base/retry.h"
#include "base/netaddr.h"

/* Runs first, before anything reads the clock: the offset is read once. */
static void test_fake_now_needs_test_hooks(void **state)
{
    (void)state;
    /* A stray offset without ASSENT_TEST_HOOKS=1 does not move the clock. */
    unsetenv("ASSENT_TEST_HOOKS");
    setenv("ASSENT_FAKE_NOW_OFFSET_MS", "864000000000", 1); /* 10000 days */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t real = (int64_t)ts.tv_sec * 1000;
    int64_t now = time_now_ms();
    assert_true(now - real < 86400000LL);
    unsetenv("ASSENT_FAKE_NOW_OFFSET_MS");

    assert_int_equal(time_fake_offset("1", "5000"), 5000);
    assert_int_equal(time_fake_offset(NULL, "5000"), 0);
    assert_int_equal(time_fake_offset("0", "5000"), 0);
    assert_int_equal(time_fake_offset("true", "5000"), 0);
    assert_int_equal(time_fake_offset("1", NULL), 0);
    assert_int_equal(time_fake_offset("1", ""), 0);
    assert_int_equal(time_fake_offset("1", "-5000"), 0);
    assert_int_equal(time_fake_offset("1", "5s"), 0);
    assert_int_equal(time_fake_offset("1", "99999999999999999999999"), 0);
}

static void test_config_precedence(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfg");
    char *path = tu_path(dir, "assent.json");
    assert_int_equal(tu_write_file(path, "{\"workers\": 4, \"listen\": \"0.0.0.0:9000\", \"client_secret\": \"s3cret\"}"), 0);
    assert_int_equal(chmod(path, 0600), 0);
    setenv("ASSENT_LISTEN", "127.0.0.1:9999", 1);
    struct config *cfg = NULL;
    struct as_err err = {0};
    assert_int_equal(config_load(path, &cfg, &err), AS_OK);
    assert_int_equal(config_int(cfg, "workers"), 4);
    assert_string_equal(config_str(cfg, "listen"), "127.0.0.1:9999");
    assert_string_equal(config_source(cfg, "listen"), "env");
    assert_string_equal(config_source(cfg, "workers"), "file");
    assert_string_equal(config_str(cfg, "db"), "var/assent.db");
    json_t *dump = config_dump(cfg);
    assert_string_equal(json_string_value(json_object_get(dump, "client_secret")), "***");
    json_decref(dump);
    assert_int_equal(config_set(cfg, "workers", "0", &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "workers"));
    config_free(cfg);
    unsetenv("ASSENT_LISTEN");

    assert_int_equal(tu_write_file(path, "{\"wokers\": 4}"), 0);
    assert_int_equal(config_load(path, &cfg, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "$.wokers"));
    assert_int_equal(tu_write_file(path, "{\"mail_transport\": \"pigeon\"}"), 0);
    assert_int_equal(config_load(path, &cfg, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "smtp|graph|file"));
    assert_int_equal(tu_write_file(path, "{\"workers\": 2,\n \"workers\": 3}"), 0);
    assert_int_equal(config_load(path, &cfg, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, ":2:"));
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_log_escape(void **state)
{
    (void)state;
    char out[128];
    log_escape(out, sizeof out, "evil\r\n2026 INFO forged", 0);
    assert_string_equal(out, "evil\\r\\n2026 INFO forged");
    log_escape(out, sizeof out, "q\"b\\\x01", 1);
    assert_string_equal(out, "q\\\"b\\\\\\u0001");
    log_escape(out, 6, "abcdefgh", 0);
    assert_string_equal(out, "abcde");
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    struct as_err err = {0};
    assert_int_equal(time_parse_duration("PT30S", &ms, &err), AS_OK);
    assert_int_equal(ms, 30000);
    assert_int_equal(time_parse_duration("P7D", &ms, &err), AS_OK);
    assert_int_equal(ms, 7LL * 86400000);
    assert_int_equal(time_parse_duration("P1DT2H30M", &ms, &err), AS_OK);
    assert_int_equal(ms, 86400000LL + 2 * 3600000 + 30 * 60000);
    assert_int_equal(time_parse_duration("PT0.5S", &ms, &err), AS_OK);
    assert_int_equal(ms, 500);
    assert_int_equal(time_parse_duration("250ms", &ms, &err), AS_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(time_parse_duration("P1M", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("PT", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("P5", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("soon", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("nans", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("infs", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("0x10s", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("-5s", &ms, &err), AS_EINVAL);
    assert_int_equal(time_parse_duration("PT1e3S", &ms, &err), AS_EINVAL);

    char buf[40];
    time_format_iso(1700000000123LL, buf, sizeof buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    assert_int_equal(time_parse_iso(buf, &ms), AS_OK);
    assert_int_equal(ms, 1700000000123LL);
    assert_int_equal(time_parse_iso("2023-11-14T23:13:20+01:00", &ms), AS_OK);
    assert_int_equal(ms, 1700000000000LL);
    assert_int_equal(time_parse_iso("yesterday", &ms), AS_EINVAL);
}

static void test_secret_file_mode(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("secret");
    char *path = tu_path(dir, "secret");
    assert_int_equal(tu_write_file(path, "hunter2\n"), 0);
    chmod(path, 0644);
    char *s = NULL;
    size_t len = 0;
    struct as_err err = {0};
    assert_int_equal(secret_file_read(path, 4096, 1, &s, &len, &err), AS_EINVAL);
    assert_null(strstr(err.msg, "hunter2"));
    assert_non_null(strstr(err.msg, "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(secret_file_read(path, 4096, 1, &s, &len, &err), AS_OK);
    assert_string_equal(s, "hunter2");
    assert_int_equal(len, 7);
    secret_free(s);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* A configuration file holding client_secret is a secret file. */
static void test_config_inline_secret_mode(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("cfgmode");
    char *path = tu_path(dir, "assent.json");
    struct config *cfg = NULL;
    struct as_err err = {0};
    assert_int_equal(tu_write_file(path, "{\"workers\": 3, \"client_secret\": \"s3cret-value\"}"), 0);
    const mode_t refused[] = {0644, 0640, 0604, 0620, 0660};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(chmod(path, refused[i]), 0);
        assert_int_equal(config_load(path, &cfg, &err), AS_EINVAL);
        assert_null(cfg);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, "client_secret"));
        assert_non_null(strstr(err.msg, "chmod 600"));
        assert_null(strstr(err.msg, "s3cret-value"));
    }
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(config_load(path, &cfg, &err), AS_OK);
    assert_string_equal(config_str(cfg, "client_secret"), "s3cret-value");
    config_free(cfg);
    /* Without a secret (or with an empty one) the mode does not matter. */
    assert_int_equal(tu_write_file(path, "{\"workers\": 3, \"client_secret\": \"\"}"), 0);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(config_load(path, &cfg, &err), AS_OK);
    assert_int_equal(config_int(cfg, "workers"), 3);
    config_free(cfg);
    /* A missing file is named. */
    tu_rmrf(path);
    assert_int_equal(config_load(path, &cfg, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, path));
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* One Retry-After parser and one jitter source for every client (base/retry.h). */
static void test_retry_after_and_jitter(void **state)
{
    (void)state;
    int64_t now = 1700000000000LL;
    assert_int_equal(retry_after_parse("7", now), 7000);
    assert_int_equal(retry_after_parse(" 0.25 ", now), 250);
    assert_int_equal(retry_after_parse("0", now), 0);
    assert_int_equal(retry_after_parse("99999999999999999999", now), RETRY_AFTER_SATURATE_MS);
    /* An HTTP-date: 1700000030 is 30 s after now; a past date is 0. */
    assert_int_equal(retry_after_parse("Tue, 14 Nov 2023 22:13:50 GMT", now), 30000);
    assert_int_equal(retry_after_parse("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    /* A date far ahead saturates instead of overflowing (found by fuzz_m365). */
    assert_int_equal(retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", now), RETRY_AFTER_SATURATE_MS);
    assert_int_equal(retry_after_parse(NULL, now), -1);
    assert_int_equal(retry_after_parse("", now), -1);
    assert_int_equal(retry_after_parse("soon", now), -1);
    assert_int_equal(retry_after_parse("5 s", now), -1);
    assert_int_equal(retry_after_parse("-3", now), -1);

    double lo = 1, hi = 0;
    for (int i = 0; i < 10000; i++) {
        double j = retry_jitter();
        assert_true(j >= 0 && j < 1);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
    }
    assert_true(lo < 0.01 && hi > 0.99); /* spread over the whole interval */
    for (int a = 1; a <= 12; a++) {
        int64_t cap = 100LL << (a - 1) < 5000 ? 100LL << (a - 1) : 5000;
        int64_t f = retry_backoff_full(100, 2, a, 5000), e = retry_backoff_equal(100, 2, a, 5000);
        assert_in_range(f, 1, cap);
        assert_in_range(e, cap / 2, cap);
    }
}

/* file_read: the whole file up to its cap, one byte more is refused, no file is EIO. */
static void test_file_read(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("fileread");
    char *path = tu_path(dir, "f.txt");
    assert_int_equal(tu_write_file(path, "0123456789"), 0);
    char *buf = NULL;
    size_t len = 0;
    struct as_err err = {0};
    assert_int_equal(file_read(path, 10, &buf, &len, &err), AS_OK);
    assert_int_equal(len, 10);
    assert_string_equal(buf, "0123456789");
    free(buf);
    buf = NULL;
    assert_int_equal(file_read(path, 9, &buf, &len, &err), AS_ELIMIT);
    assert_null(buf);
    assert_non_null(strstr(err.msg, "larger than 9 bytes"));
    char *none = tu_path(dir, "none.txt");
    assert_int_equal(file_read(none, 10, &buf, NULL, &err), AS_EIO);
    assert_non_null(strstr(err.msg, "cannot open"));
    /* Larger than the first buffer. */
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = '\0';
    assert_int_equal(tu_write_file(path, big), 0);
    assert_int_equal(file_read(path, 100000, &buf, &len, &err), AS_OK);
    assert_int_equal(len, 100000);
    assert_memory_equal(buf, big, 100000);
    free(buf);
    free(big);
    tu_rmrf(dir);
    free(none);
    free(path);
    free(dir);
}

/* Trusted proxies: who the client is, and that nobody else can say so. */
static void test_netaddr_client(void **state)
{
    (void)state;
    struct netaddr_list *l = NULL;
    struct as_err err = {0};
    char c[64];
    int https = -1;
    assert_int_equal(netaddr_list_parse("10.0.0.0/8, 192.0.2.7,2001:db8::/32", &l, &err), AS_OK);
    assert_int_equal(netaddr_list_count(l), 3);
    assert_true(netaddr_list_match(l, "10.1.2.3"));
    assert_true(netaddr_list_match(l, "::ffff:10.1.2.3")); /* IPv4-mapped */
    assert_true(netaddr_list_match(l, "192.0.2.7"));
    assert_false(netaddr_list_match(l, "192.0.2.8"));
    assert_true(netaddr_list_match(l, "2001:db8:1::5"));
    assert_false(netaddr_list_match(l, "2001:db9::1"));
    assert_false(netaddr_list_match(l, "not-an-address"));

    /* An untrusted peer: its headers are ignored, whatever they say. */
    netaddr_client(l, "203.0.113.5", "198.51.100.1", NULL, "https", c, sizeof c, &https);
    assert_string_equal(c, "203.0.113.5");
    assert_int_equal(https, 0);
    /* A trusted proxy: the right-most untrusted hop is the client; a spoofed
     * left-most entry the client sent itself is not believed. */
    netaddr_client(l, "10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.9", NULL, "https, http", c,
                   sizeof c, &https);
    assert_string_equal(c, "198.51.100.1");
    assert_int_equal(https, 1);
    /* Ports and brackets. */
    netaddr_client(l, "10.0.0.1", "[2001:db9::7]:4711", NULL, NULL, c, sizeof c, &https);
    assert_string_equal(c, "2001:db9::7");
    netaddr_client(l, "10.0.0.1", "198.51.100.2:5555", NULL, NULL, c, sizeof c, &https);
    assert_string_equal(c, "198.51.100.2");
    /* Forwarded (RFC 7239) wins over X-Forwarded-For; its proto counts. */
    netaddr_client(l, "192.0.2.7", "6.6.6.6",
                   "for=198.51.100.3;proto=https, for=\"[2001:db8::1]:80\";proto=http", NULL, c,
                   sizeof c, &https);
    assert_string_equal(c, "198.51.100.3");
    assert_int_equal(https, 1);
    /* "unknown" stops the walk: what lies left of it is not believed. */
    netaddr_client(l, "10.0.0.1", "198.51.100.4, unknown, 10.0.0.2", NULL, NULL, c, sizeof c,
                   &https);
    assert_string_equal(c, "10.0.0.2");
    /* All hops trusted: the left-most. */
    netaddr_client(l, "10.0.0.1", "10.0.0.3, 10.0.0.2", NULL, NULL, c, sizeof c, &https);
    assert_string_equal(c, "10.0.0.3");
    /* No header from a trusted proxy: the proxy itself. */
    netaddr_client(l, "10.0.0.1", NULL, NULL, NULL, c, sizeof c, &https);
    assert_string_equal(c, "10.0.0.1");
    netaddr_list_free(l);

    /* Bad entries are named. */
    assert_int_equal(netaddr_list_parse("10.0.0.0/33", &l, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "10.0.0.0/33"));
    assert_int_equal(netaddr_list_parse("10.0.0.1, proxy.example", &l, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "proxy.example"));
    /* Empty: nobody is trusted. */
    assert_int_equal(netaddr_list_parse("", &l, &err), AS_OK);
    netaddr_client(l, "10.0.0.1", "198.51.100.1", NULL, NULL, c, sizeof c, &https);
    assert_string_equal(c, "10.0.0.1");
    netaddr_list_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_now_needs_test_hooks),
        cmocka_unit_test(test_retry_after_and_jitter),
        cmocka_unit_test(test_file_read),
        cmocka_unit_test(test_config_precedence), cmocka_unit_test(test_log_escape),
        cmocka_unit_test(test_durations),         cmocka_unit_test(test_secret_file_mode),
        cmocka_unit_test(test_config_inline_secret_mode),
        cmocka_unit_test(test_netaddr_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
