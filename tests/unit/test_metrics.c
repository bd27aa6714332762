/*
 * test_metrics.c - the tenant part of /metrics: the end of the last
 * completed sync (a running or failed sync does not count), each evaluated
 * KPI's last value and exempt count (never-evaluated KPIs have no sample),
 * and label values escaped per the Prometheus text format.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/html.h"
#include "web/metrics.h"

static int setup(void **state)
{
    *state = tu_app_fixture_new("metrics");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tu_app_fixture_free(*state);
    return 0;
}

/* The tenant gauges as text (malloc'd). */
static char *render(struct tu_app_fixture *f)
{
    struct html_buf b = {0};
    struct as_err err = {0};
    if (metrics_tenant_render(&f->app, &b, &err) != AS_OK)
        fail_msg("metrics_tenant_render: %s", err.msg);
    size_t len = 0;
    char *text = html_buf_take(&b, &len);
    assert_non_null(text);
    return text;
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_empty(void **state)
{
    struct tu_app_fixture *f = *state;
    char *text = render(f);
    expect_line(text, "assent_last_sync_timestamp_seconds 0.000");
    expect_line(text, "# TYPE assent_kpi_value gauge");
    assert_null(strstr(text, "assent_kpi_value{"));
    free(text);
}

static void test_sync_and_kpis(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    int64_t sync_id = 0, kpi_a = 0, kpi_b = 0, kpi_c = 0;
    json_t *summary = json_object();
    /* A completed sync, then a failed one and one still running: the
     * completed one's end is the timestamp. */
    assert_int_equal(db_tenant_sync_start(f->app.db, 1764489000000LL, &sync_id, &err), AS_OK);
    assert_int_equal(db_tenant_sync_finish(f->app.db, sync_id, 1764489164250LL, "ok", summary, NULL,
                                           &err), AS_OK);
    assert_int_equal(db_tenant_sync_start(f->app.db, 1764490000000LL, &sync_id, &err), AS_OK);
    assert_int_equal(db_tenant_sync_finish(f->app.db, sync_id, 1764490001000LL, "failed", summary,
                                           "token refused", &err), AS_OK);
    assert_int_equal(db_tenant_sync_start(f->app.db, 1764491000000LL, &sync_id, &err), AS_OK);
    json_decref(summary);

    /* db_kpi_put stores names as given: one that needs escaping shows the
     * exposition's escapes. */
    assert_int_equal(db_kpi_put(f->app.db, "legacy-enabled", "users", "{}", NULL, NULL, 0, 1, &kpi_a,
                                &err), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "odd\"name\\with\nbreak", "users", "{}", NULL, NULL, 0, 1,
                                &kpi_b, &err), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "never-evaluated", "users", "{}", NULL, NULL, 0, 1,
                                &kpi_c, &err), AS_OK);
    assert_int_equal(db_kpi_value_add(f->app.db, kpi_a, 1000, 50, 1, NULL, &err), AS_OK);
    assert_int_equal(db_kpi_value_add(f->app.db, kpi_a, 2000, 42, 3, NULL, &err), AS_OK);
    assert_int_equal(db_kpi_value_add(f->app.db, kpi_b, 2000, 7, 0, NULL, &err), AS_OK);

    char *text = render(f);
    expect_line(text, "assent_last_sync_timestamp_seconds 1764489164.250");
    expect_line(text, "assent_kpi_value{kpi=\"legacy-enabled\"} 42");
    expect_line(text, "assent_kpi_exempt{kpi=\"legacy-enabled\"} 3");
    expect_line(text, "assent_kpi_value{kpi=\"odd\\\"name\\\\with\\nbreak\"} 7");
    expect_line(text, "assent_kpi_exempt{kpi=\"odd\\\"name\\\\with\\nbreak\"} 0");
    assert_null(strstr(text, "never-evaluated"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_and_kpis, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
