/*
 * metrics.h - Prometheus text exposition at GET /metrics: runs by status,
 * step executions by status, approvals by status (pending ones counted
 * separately), the end of the last completed tenant sync, each KPI's last
 * value, and HTTP requests by route and status code served by this process.  Access follows the REST API's rule (see api.h).
 *
 * The HTTP counters live in memory (per process, reset on restart, as
 * Prometheus counters may be); the rest is read from SQLite per scrape.
 * Thread-safe.
 */
#ifndef ASSENT_WEB_METRICS_H
#define ASSENT_WEB_METRICS_H

#include "base/error.h"

struct app;
struct web_metrics;
struct html_buf;

/* NULL on allocation failure. */
struct web_metrics *metrics_new(void);
void metrics_free(struct web_metrics *m);

/* Count one finished request.  `route` is a static label ("approval",
 * "none" for unrouted paths). */
void metrics_http(struct web_metrics *m, const char *route, int status);

/* Count one connection shut down by the per-request deadline. */
void metrics_deadline_kill(struct web_metrics *m);

/* Count n connections closed at the connection limit to make room (n >= 0). */
void metrics_evicted(struct web_metrics *m, int n);

/* Append the HTTP counters in Prometheus text format. */
void metrics_http_render(struct web_metrics *m, struct html_buf *out);

/*
 * Append the tenant's gauges: assent_last_sync_timestamp_seconds (end of the
 * last completed sync, "ok" or "partial", as Unix seconds; 0 when none) and,
 * per KPI evaluated at least once, assent_kpi_value{kpi="NAME"} (its last
 * value) and assent_kpi_exempt{kpi="NAME"} (users its exceptions left out
 * of that value).  Label values are escaped per the Prometheus text format.
 * Reads app->db; AS_EDB (err set) when it cannot.
 */
enum as_code metrics_tenant_render(struct app *app, struct html_buf *out,
                                   struct as_err *err) AS_WUR;

#endif
