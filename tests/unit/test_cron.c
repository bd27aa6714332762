/* test_cron.c - cron parsing, next-fire times in IANA zones across DST, and errors. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cron.h"
#include "base/timeutil.h"
#include "base/tz.h"

static int64_t iso(const char *s)
{
    int64_t ms = 0;
    if (time_parse_iso(s, &ms) != AS_OK)
        fail_msg("bad timestamp in test: %s", s);
    return ms;
}

/* Assert that `spec` in `tz` fires first at `expect` after `after`. */
static void expect_next(const char *spec, const char *tz, const char *after, const char *expect)
{
    struct as_err err = {0};
    int64_t next = 0;
    enum as_code rc = cron_next_spec(spec, tz, iso(after), &next, &err);
    if (rc != AS_OK)
        fail_msg("cron \"%s\" in %s after %s: %s", spec, tz, after, err.msg);
    char got[40];
    time_format_iso(next, got, sizeof got);
    char want[40];
    time_format_iso(iso(expect), want, sizeof want);
    if (strcmp(got, want) != 0)
        fail_msg("cron \"%s\" in %s after %s: expected %s, got %s", spec, tz, after, want, got);
}

/* Follow a schedule n times from `after`, comparing with the list. */
static void expect_sequence(const char *spec, const char *tz, const char *after,
                            const char *const *expect)
{
    struct as_err err = {0};
    struct cron c;
    struct tz_zone *z = NULL;
    assert_int_equal(cron_parse(spec, &c, &err), AS_OK);
    assert_int_equal(tz_load(tz, &z, &err), AS_OK);
    int64_t t = iso(after);
    for (int i = 0; expect[i]; i++) {
        int64_t next = 0;
        assert_int_equal(cron_next(&c, z, t, &next, &err), AS_OK);
        char got[40], want[40];
        time_format_iso(next, got, sizeof got);
        time_format_iso(iso(expect[i]), want, sizeof want);
        if (strcmp(got, want) != 0) {
            tz_free(z);
            fail_msg("cron \"%s\" in %s step %d: expected %s, got %s", spec, tz, i, want, got);
        }
        t = next;
    }
    tz_free(z);
}

static void test_basic_utc(void **state)
{
    (void)state;
    expect_next("*/15 * * * *", "UTC", "2025-06-01T10:07:00Z", "2025-06-01T10:15:00Z");
    expect_next("*/15 * * * *", "UTC", "2025-06-01T10:15:00Z", "2025-06-01T10:30:00Z");
    expect_next("*/15 * * * *", "UTC", "2025-06-01T10:14:59.999Z", "2025-06-01T10:15:00Z");
    expect_next("0 0 * * *", "UTC", "2025-12-31T23:59:00Z", "2026-01-01T00:00:00Z");
    expect_next("30 7 * * mon-fri", "UTC", "2025-06-06T08:00:00Z", "2025-06-09T07:30:00Z"); /* Fri -> Mon */
    expect_next("0 12 29 feb *", "UTC", "2025-01-01T00:00:00Z", "2028-02-29T12:00:00Z");
    expect_next("@hourly", "UTC", "2025-06-01T10:07:00Z", "2025-06-01T11:00:00Z");
    expect_next("@weekly", "UTC", "2025-06-04T00:00:00Z", "2025-06-08T00:00:00Z"); /* Sunday */
    expect_next("@yearly", "UTC", "2025-06-04T00:00:00Z", "2026-01-01T00:00:00Z");
    expect_next("0 0 * * 7", "UTC", "2025-06-04T00:00:00Z", "2025-06-08T00:00:00Z"); /* 7 = Sunday */
    expect_next("5,10-12,50/5 * * * *", "UTC", "2025-06-01T10:12:00Z", "2025-06-01T10:50:00Z");
    expect_next("5,10-12,50/5 * * * *", "UTC", "2025-06-01T10:55:00Z", "2025-06-01T11:05:00Z");
    expect_next("0 8-18/5 * * *", "UTC", "2025-06-01T08:00:00Z", "2025-06-01T13:00:00Z");
    expect_next("0 0 1 JAN,jul *", "UTC", "2025-02-01T00:00:00Z", "2025-07-01T00:00:00Z");
    /* Both day fields restricted: either matches (13th, or any Friday). */
    expect_next("0 0 13 * fri", "UTC", "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z");
    expect_next("0 0 13 * fri", "UTC", "2025-01-10T00:00:00Z", "2025-01-13T00:00:00Z");
    /* Day-of-week given as a star with a step: both must match. */
    expect_next("0 0 13 * */5", "UTC", "2025-01-01T00:00:00Z", "2025-04-13T00:00:00Z"); /* a Sunday */
    expect_next("0 0 13 * */5", "UTC", "2025-04-14T00:00:00Z", "2025-06-13T00:00:00Z"); /* a Friday */
}

/* Europe/Berlin, 2025: clocks go forward at 2025-03-30 01:00Z (02:00 CET ->
 * 03:00 CEST) and back at 2025-10-26 01:00Z (03:00 CEST -> 02:00 CET). */
static void test_dst_berlin(void **state)
{
    (void)state;
    /* Ordinary days: 09:00 local is 08:00Z in winter, 07:00Z in summer. */
    static const char *const daily9[] = {"2025-03-29T08:00:00Z", "2025-03-30T07:00:00Z",
                                         "2025-03-31T07:00:00Z", NULL};
    expect_sequence("0 9 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z", daily9);
    /* 02:30 does not exist on 2025-03-30: fires once when the clocks jump. */
    static const char *const gap[] = {"2025-03-29T01:30:00Z", "2025-03-30T01:00:00Z",
                                      "2025-03-31T00:30:00Z", NULL};
    expect_sequence("30 2 * * *", "Europe/Berlin", "2025-03-28T12:00:00Z", gap);
    /* Every 15 minutes through the gap: 01:45 CET, then 03:00 CEST (once). */
    static const char *const gap15[] = {"2025-03-30T00:45:00Z", "2025-03-30T01:00:00Z",
                                        "2025-03-30T01:15:00Z", NULL};
    expect_sequence("*/15 * * * *", "Europe/Berlin", "2025-03-30T00:40:00Z", gap15);
    /* 02:30 happens twice on 2025-10-26: a fixed time fires only the first time. */
    static const char *const overlap[] = {"2025-10-25T00:30:00Z", "2025-10-26T00:30:00Z",
                                          "2025-10-27T01:30:00Z", NULL};
    expect_sequence("30 2 * * *", "Europe/Berlin", "2025-10-24T12:00:00Z", overlap);
    /* Interval-like schedules keep their rhythm through both occurrences. */
    static const char *const overlap30[] = {"2025-10-26T00:00:00Z", "2025-10-26T00:30:00Z",
                                            "2025-10-26T01:00:00Z", "2025-10-26T01:30:00Z",
                                            "2025-10-26T02:00:00Z", NULL};
    expect_sequence("*/30 * * * *", "Europe/Berlin", "2025-10-25T23:45:00Z", overlap30);
    /* Starting inside the second pass of the overlap. */
    expect_next("30 2 * * *", "Europe/Berlin", "2025-10-26T01:10:00Z", "2025-10-27T01:30:00Z");
    /* Beyond the table in the file: the POSIX rule in the footer applies. */
    expect_next("0 12 1 7 *", "Europe/Berlin", "2100-01-01T00:00:00Z", "2100-07-01T10:00:00Z");
    expect_next("0 12 1 12 *", "Europe/Berlin", "2100-01-01T00:00:00Z", "2100-12-01T11:00:00Z");
}

/* America/New_York, 2025: forward at 2025-03-09 07:00Z, back at 2025-11-02 06:00Z. */
static void test_dst_new_york(void **state)
{
    (void)state;
    static const char *const daily9[] = {"2025-03-08T14:00:00Z", "2025-03-09T13:00:00Z", NULL};
    expect_sequence("0 9 * * *", "America/New_York", "2025-03-08T00:00:00Z", daily9);
    expect_next("30 2 * * *", "America/New_York", "2025-03-09T05:00:00Z", "2025-03-09T07:00:00Z");
    static const char *const back[] = {"2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z", NULL};
    expect_sequence("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", back);
    static const char *const back_hourly[] = {"2025-11-02T05:30:00Z", "2025-11-02T06:30:00Z",
                                              "2025-11-02T07:30:00Z", NULL};
    expect_sequence("30 * * * *", "America/New_York", "2025-11-02T05:00:00Z", back_hourly);
}

/*
 * Independent oracle: glibc's localtime_r with TZ set, stepping one UTC
 * minute at a time.  For hours far from any DST switch the two must agree
 * for every day of the year, which checks the offsets of the whole table.
 */
static void test_against_glibc(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Sydney",
                                        "Asia/Kolkata", NULL};
    for (int zi = 0; zones[zi]; zi++) {
        setenv("TZ", zones[zi], 1);
        tzset();
        struct as_err err = {0};
        struct cron c;
        struct tz_zone *z = NULL;
        assert_int_equal(cron_parse("17 6,13,20 * * *", &c, &err), AS_OK);
        assert_int_equal(tz_load(zones[zi], &z, &err), AS_OK);
        int64_t t = iso("2024-12-20T00:00:00Z");
        for (int i = 0; i < 3 * 400; i++) {
            int64_t next = 0;
            assert_int_equal(cron_next(&c, z, t, &next, &err), AS_OK);
            int64_t s = t / 1000 / 60 * 60 + 60;
            for (;; s += 60) {
                time_t tt = (time_t)s;
                struct tm tm;
                localtime_r(&tt, &tm);
                if (tm.tm_min == 17 && (tm.tm_hour == 6 || tm.tm_hour == 13 || tm.tm_hour == 20))
                    break;
            }
            if (s * 1000 != next) {
                char a[40], b[40];
                time_format_iso(s * 1000, a, sizeof a);
                time_format_iso(next, b, sizeof b);
                tz_free(z);
                fail_msg("%s: glibc says %s, cron says %s", zones[zi], a, b);
            }
            t = next;
        }
        tz_free(z);
    }
    unsetenv("TZ");
    tzset();
}

static void expect_error(const char *spec, const char *needle)
{
    struct as_err err = {0};
    struct cron c;
    assert_int_equal(cron_parse(spec, &c, &err), AS_EINVAL);
    if (!strstr(err.msg, needle))
        fail_msg("cron \"%s\": error \"%s\" lacks \"%s\"", spec, err.msg, needle);
}

static void test_invalid(void **state)
{
    (void)state;
    expect_error("61 * * * *", "minute: 61 is out of range 0-59");
    expect_error("* 24 * * *", "hour: 24 is out of range 0-23");
    expect_error("* * 0 * *", "day-of-month: 0 is out of range 1-31");
    expect_error("* * * 13 *", "month: 13 is out of range 1-12");
    expect_error("* * * * 8", "day-of-week: 8 is out of range 0-7");
    expect_error("* * * *", "expected 5 fields");
    expect_error("0 * * * * *", "seconds field is not supported");
    expect_error("", "expected 5 fields");
    expect_error("*/0 * * * *", "step");
    expect_error("5-1 * * * *", "runs backwards");
    expect_error("1,,2 * * * *", "empty list item");
    expect_error("1, * * * *", "trailing comma");
    expect_error("0 0 * * funday", "\"funday\" is not a valid value");
    expect_error("0 0 * foo *", "\"foo\" is not a valid value");
    expect_error("x * * * *", "minute");
    expect_error("0 0 30 2 *", "never occurs");
    expect_error("0 0 31 apr,jun,sep,nov *", "never occurs");
    expect_error("@reboot", "@reboot is not supported");
    expect_error("@often", "unknown macro");
    /* Names only where they mean something. */
    expect_error("mon * * * *", "minute");

    struct as_err err = {0};
    int64_t next;
    assert_int_equal(cron_next_spec("0 0 * * *", "Mars/Olympus_Mons", 0, &next, &err), AS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "unknown time zone"));
    assert_int_equal(cron_next_spec("0 0 * * *", "../../etc/passwd", 0, &next, &err), AS_EINVAL);
    assert_int_equal(cron_next_spec("0 0 * * *", "/etc/localtime", 0, &next, &err), AS_EINVAL);
    /* A file that is not TZif. */
    char *dir = tu_tmpdir("tz");
    char *path = tu_path(dir, "Bogus");
    assert_int_equal(tu_write_file(path, "not a zone file at all, not even close to one...."), 0);
    setenv("TZDIR", dir, 1);
    assert_int_equal(cron_next_spec("0 0 * * *", "Bogus", 0, &next, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "TZif"));
    unsetenv("TZDIR");
    tu_rmrf(dir);
    free(path);
    free(dir);
    /* Valid but rare: Feb 29 that is also a Sunday (either-match would be
     * too wide, so use a stepped weekday to force both to match). */
    assert_int_equal(cron_next_spec("0 0 29 2 */7", "UTC", iso("2025-01-01T00:00:00Z"), &next, &err),
                     AS_OK);
    char got[40];
    time_format_iso(next, got, sizeof got);
    assert_string_equal(got, "2032-02-29T00:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_utc),   cmocka_unit_test(test_dst_berlin),
        cmocka_unit_test(test_dst_new_york), cmocka_unit_test(test_against_glibc),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
