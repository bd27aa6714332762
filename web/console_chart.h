/*
 * console_chart.h - a KPI's history as an inline SVG line chart for the
 * admin console: the values over time, the deadline (a vertical line) and
 * its target (a horizontal one) when the KPI has one, and the straight
 * line from the first value to the target at the deadline, so that a value
 * above it is behind schedule.
 *
 * Only presentation attributes, no style attribute and no script, so the
 * console's CSP (no inline styles but its hashed stylesheet) allows it.
 * Pure: no I/O, thread-safe.
 */
#ifndef ASSENT_WEB_CONSOLE_CHART_H
#define ASSENT_WEB_CONSOLE_CHART_H

#include <jansson.h>
#include <stdint.h>

struct html_buf;

struct console_chart {
    const json_t *values; /* [{"ts", "value"}, ...] oldest first (db_kpi_values) */
    int has_deadline;
    int64_t deadline_at;  /* ms since the epoch */
    int64_t target;       /* the value wanted by then */
    int width, height;    /* the viewBox; 0: 480 x 180 */
    const char *label;    /* the chart's accessible name (escaped) */
};

/* Append the <svg> of ch to b. */
void console_chart_svg(struct html_buf *b, const struct console_chart *ch);

#endif
