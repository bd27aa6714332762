/* metrics.c - Prometheus text at /metrics (see metrics.h). */
#include "web/metrics.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_approvals.h"
#include "engine/app.h"
#include "web/api.h"
#include "web/html.h"
#include "web/routes.h"
#include "web/server.h"

#define METRIC_SLOTS 128

struct http_counter {
    const char *route; /* static label */
    int status;
    uint64_t count;
};

struct web_metrics {
    pthread_mutex_t lock;
    int n;
    struct http_counter counters[METRIC_SLOTS];
    uint64_t overflow;        /* requests whose (route, status) found no slot */
    uint64_t deadline_kills;
};

struct web_metrics *metrics_new(void)
{
    struct web_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(struct web_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_http(struct web_metrics *m, const char *route, int status)
{
    pthread_mutex_lock(&m->lock);
    int i;
    for (i = 0; i < m->n; i++)
        if (m->counters[i].status == status && strcmp(m->counters[i].route, route) == 0)
            break;
    if (i == m->n) {
        if (m->n < METRIC_SLOTS) {
            m->counters[m->n].route = route;
            m->counters[m->n].status = status;
            m->counters[m->n].count = 0;
            m->n++;
        } else {
            m->overflow++;
            pthread_mutex_unlock(&m->lock);
            return;
        }
    }
    m->counters[i].count++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_deadline_kill(struct web_metrics *m)
{
    pthread_mutex_lock(&m->lock);
    m->deadline_kills++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_http_render(struct web_metrics *m, struct html_buf *out)
{
    html_raw(out, "# HELP assent_http_requests_total HTTP requests answered by this process.\n"
                  "# TYPE assent_http_requests_total counter\n");
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->n; i++)
        html_rawf(out, "assent_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                  m->counters[i].route, m->counters[i].status,
                  (unsigned long long)m->counters[i].count);
    if (m->overflow)
        html_rawf(out, "assent_http_requests_total{route=\"other\",code=\"other\"} %llu\n",
                  (unsigned long long)m->overflow);
    html_rawf(out,
              "# HELP assent_http_deadline_closed_total Connections closed by the per-request deadline.\n"
              "# TYPE assent_http_deadline_closed_total counter\n"
              "assent_http_deadline_closed_total %llu\n",
              (unsigned long long)m->deadline_kills);
    pthread_mutex_unlock(&m->lock);
}

/* One gauge family from a {"label value": count} object. */
static void render_gauges(struct html_buf *out, const char *name, const char *help,
                          const char *label, const json_t *counts)
{
    html_rawf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)counts, key, v)
    {
        /* Label values come from CHECK-constrained status columns; escape anyway. */
        html_rawf(out, "%s{%s=\"", name, label);
        for (const char *p = key; *p; p++) {
            if (*p == '"' || *p == '\\')
                html_rawn(out, "\\", 1);
            if (*p == '\n')
                html_raw(out, "\\n");
            else
                html_rawn(out, p, 1);
        }
        html_rawf(out, "\"} %lld\n", (long long)json_integer_value(v));
    }
}

void web_metrics_page(struct web_req *req, struct web_resp *resp)
{
    if (!api_authorize(req, resp))
        return;
    struct as_err err = {0};
    json_t *stats = NULL;
    if (db_approvals_stats(req->app->db, &stats, &err) != AS_OK) {
        web_resp_textf(resp, 500, "cannot read statistics: %s\n", err.msg);
        return;
    }
    struct html_buf b = {0};
    render_gauges(&b, "assent_runs", "Runs by status.", "status", json_object_get(stats, "runs"));
    render_gauges(&b, "assent_steps", "Step executions by status.", "status",
                  json_object_get(stats, "steps"));
    render_gauges(&b, "assent_approvals", "Approvals by status.", "status",
                  json_object_get(stats, "approvals"));
    html_rawf(&b,
              "# HELP assent_approvals_pending Approvals waiting for a decision in open runs.\n"
              "# TYPE assent_approvals_pending gauge\nassent_approvals_pending %lld\n",
              (long long)json_integer_value(json_object_get(stats, "approvals_pending")));
    json_decref(stats);
    metrics_http_render(web_server_metrics(req->server), &b);
    size_t len = 0;
    char *text = html_buf_take(&b, &len);
    if (!text) {
        web_resp_textf(resp, 500, "out of memory\n");
        return;
    }
    web_resp_take(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
