/* test_console_chart.c - the console's SVG chart of a KPI's history (web/console_chart.c). */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/html.h"
#include "web/console_chart.h"

static char *render(const struct console_chart *ch)
{
    struct html_buf b = {0};
    console_chart_svg(&b, ch);
    size_t len;
    char *text = html_buf_take(&b, &len);
    assert_non_null(text);
    return text;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    json_t *values = json_array();
    struct console_chart ch = {.values = values, .label = "k <1>"};
    char *svg = render(&ch);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "No value yet"));
    assert_non_null(strstr(svg, "k &lt;1&gt;")); /* the label is escaped */
    assert_null(strstr(svg, "<polyline"));
    free(svg);
    json_decref(values);
}

static void test_values_and_deadline(void **state)
{
    (void)state;
    const int64_t day = 86400000LL, t0 = 1790000000000LL;
    json_t *values = json_pack("[{s:I, s:I}, {s:I, s:I}, {s:I, s:I}]", "ts", (json_int_t)t0,
                               "value", (json_int_t)800, "ts", (json_int_t)(t0 + day), "value",
                               (json_int_t)650, "ts", (json_int_t)(t0 + 2 * day), "value",
                               (json_int_t)400);
    struct console_chart ch = {.values = values, .label = "legacy-enabled"};
    char *svg = render(&ch);
    assert_int_equal(count(svg, "<circle"), 3);
    assert_int_equal(count(svg, "<polyline"), 1);
    assert_null(strstr(svg, "deadline"));
    assert_null(strstr(svg, "style=")); /* presentation attributes only (CSP) */
    assert_null(strstr(svg, "<script"));
    free(svg);

    ch.has_deadline = 1;
    ch.deadline_at = t0 + 30 * day;
    ch.target = 0;
    svg = render(&ch);
    assert_non_null(strstr(svg, "class=\"deadline\""));
    assert_non_null(strstr(svg, "class=\"target\""));
    assert_non_null(strstr(svg, "class=\"plan\""));
    /* The time axis reaches the deadline: its label is the deadline's day. */
    assert_non_null(strstr(svg, "deadline 2026-10-21"));
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    free(svg);
    json_decref(values);
}

static void test_one_point(void **state)
{
    (void)state;
    json_t *values = json_pack("[{s:I, s:I}]", "ts", (json_int_t)1790000000000LL, "value",
                               (json_int_t)0);
    struct console_chart ch = {.values = values};
    char *svg = render(&ch);
    /* A single zero value: no division by zero, the point inside the box. */
    assert_int_equal(count(svg, "<circle"), 1);
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    free(svg);
    json_decref(values);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_values_and_deadline),
        cmocka_unit_test(test_one_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
