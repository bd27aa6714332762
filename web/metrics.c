/* metrics.c - Prometheus text at /metrics (see metrics.h). */
#include "web/metrics.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_approvals.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "web/api.h"
#include "base/html.h"
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
    uint64_t evicted;
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

void metrics_evicted(struct web_metrics *m, int n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&m->lock);
    m->evicted += (uint64_t)n;
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
              "assent_http_deadline_closed_total %llu\n"
              "# HELP assent_http_evicted_total Connections without a request closed at the "
              "connection limit to serve new ones.\n"
              "# TYPE assent_http_evicted_total counter\n"
              "assent_http_evicted_total %llu\n",
              (unsigned long long)m->deadline_kills, (unsigned long long)m->evicted);
    pthread_mutex_unlock(&m->lock);
}

/* A label value in the Prometheus text format: backslash, double quote and
 * line feed escaped as \\, \" and \n. */
static void label_value(struct html_buf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            html_rawn(out, "\\", 1);
        if (*p == '\n')
            html_raw(out, "\\n");
        else
            html_rawn(out, p, 1);
    }
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
        label_value(out, key);
        html_rawf(out, "\"} %lld\n", (long long)json_integer_value(v));
    }
}

enum as_code metrics_tenant_render(struct app *app, struct html_buf *out, struct as_err *err)
{
    int64_t sync_end = 0;
    json_t *kpis = NULL;
    char sync_status[16];
    enum as_code rc = db_tenant_last_completed_sync(app->db, &sync_end, sync_status,
                                                    sizeof sync_status, err);
    if (!rc)
        rc = db_kpi_list(app->db, &kpis, err);
    if (rc)
        return rc;
    html_rawf(out,
              "# HELP assent_last_sync_timestamp_seconds End of the last completed tenant sync "
              "(Unix time; 0 = none).\n"
              "# TYPE assent_last_sync_timestamp_seconds gauge\n"
              "assent_last_sync_timestamp_seconds %lld.%03lld\n",
              (long long)(sync_end / 1000), (long long)(sync_end % 1000));
    static const struct {
        const char *name, *help, *key;
    } families[] = {
        {"assent_kpi_value", "Last evaluated value of each KPI.", "last_value"},
        {"assent_kpi_exempt", "Users left out of each KPI's last value by exceptions.",
         "last_exempt"},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        html_rawf(out, "# HELP %s %s\n# TYPE %s gauge\n", families[f].name, families[f].help,
                  families[f].name);
        size_t i;
        json_t *k;
        json_array_foreach(kpis, i, k)
        {
            const json_t *v = json_object_get(k, families[f].key);
            const char *name = json_string_value(json_object_get(k, "name"));
            if (!json_is_integer(v) || !name)
                continue;
            html_rawf(out, "%s{kpi=\"", families[f].name);
            label_value(out, name);
            html_rawf(out, "\"} %lld\n", (long long)json_integer_value(v));
        }
    }
    json_decref(kpis);
    return AS_OK;
}

void web_metrics_page(struct web_req *req, struct web_resp *resp)
{
    if (!web_auth_require(req, resp, API_ROLE_VIEWER, NULL))
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
    if (metrics_tenant_render(req->app, &b, &err) != AS_OK) {
        html_buf_free(&b);
        web_resp_textf(resp, 500, "cannot read the tenant's statistics: %s\n", err.msg);
        return;
    }
    metrics_http_render(web_server_metrics(req->server), &b);
    size_t len = 0;
    char *text = html_buf_take(&b, &len);
    if (!text) {
        web_resp_textf(resp, 500, "out of memory\n");
        return;
    }
    web_resp_take(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
