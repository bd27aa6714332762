/*
 * metrics.h - Prometheus text exposition at GET /metrics: runs by status,
 * step executions by status, approvals by status (pending ones counted
 * separately), and HTTP requests by route and status code served by this
 * process.  Access follows the REST API's rule (see api.h).
 *
 * The HTTP counters live in memory (per process, reset on restart, as
 * Prometheus counters may be); the rest is read from SQLite per scrape.
 * Thread-safe.
 */
#ifndef ASSENT_WEB_METRICS_H
#define ASSENT_WEB_METRICS_H

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

/* Append the HTTP counters in Prometheus text format. */
void metrics_http_render(struct web_metrics *m, struct html_buf *out);

#endif
