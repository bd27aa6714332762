/* console_chart.c - a KPI's history as an inline SVG line chart (see console_chart.h). */
#include "web/console_chart.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/html.h"

#define MARGIN_L 52
#define MARGIN_R 16
#define MARGIN_T 14
#define MARGIN_B 30
#define DAY_MS (24 * 3600 * 1000LL)

static void day_text(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d", &tm))
        snprintf(buf, size, "?");
}

struct scale {
    int64_t t0, t1, vmax;
    double x0, x1, y0, y1; /* plot area */
};

static double sx(const struct scale *s, int64_t t)
{
    return s->x0 + (s->x1 - s->x0) * (double)(t - s->t0) / (double)(s->t1 - s->t0);
}

static double sy(const struct scale *s, int64_t v)
{
    return s->y1 - (s->y1 - s->y0) * (double)v / (double)s->vmax;
}

void console_chart_svg(struct html_buf *b, const struct console_chart *ch)
{
    int w = ch->width ? ch->width : 480, h = ch->height ? ch->height : 180;
    size_t n = json_array_size(ch->values);
    html_rawf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 %d %d\" "
                 "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"",
              w, h, w, h);
    html_text(b, ch->label ? ch->label : "KPI history");
    html_raw(b, "\"><title>");
    html_text(b, ch->label ? ch->label : "KPI history");
    html_raw(b, "</title>\n");
    html_rawf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    if (n == 0) {
        html_rawf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#4a4a4a\" "
                     "text-anchor=\"middle\">No value yet: evaluate the KPI.</text></svg>\n",
                  w / 2, h / 2);
        return;
    }
    struct scale s = {.x0 = MARGIN_L, .x1 = w - MARGIN_R, .y0 = MARGIN_T, .y1 = h - MARGIN_B};
    int64_t first_value = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(ch->values, i);
        int64_t t = json_integer_value(json_object_get(p, "ts"));
        int64_t v = json_integer_value(json_object_get(p, "value"));
        if (i == 0) {
            s.t0 = s.t1 = t;
            first_value = v;
        }
        if (t < s.t0)
            s.t0 = t;
        if (t > s.t1)
            s.t1 = t;
        if (v > s.vmax)
            s.vmax = v;
    }
    if (ch->has_deadline) {
        if (ch->deadline_at > s.t1)
            s.t1 = ch->deadline_at;
        if (ch->deadline_at < s.t0)
            s.t0 = ch->deadline_at;
        if (ch->target > s.vmax)
            s.vmax = ch->target;
    }
    if (s.t1 - s.t0 < DAY_MS) { /* one point, or all on one day: a day around them */
        s.t0 -= DAY_MS / 2;
        s.t1 += DAY_MS / 2;
    }
    s.vmax = s.vmax + s.vmax / 10 + 1;

    /* Axes and labels: 0 and the top value, the first and last day. */
    char a[32], z[32];
    html_rawf(b, "<g stroke=\"#6b7280\" stroke-width=\"1\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                 "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
              s.x0, s.y0, s.x0, s.y1, s.x0, s.y1, s.x1, s.y1);
    html_rawf(b, "<g font-size=\"11\" fill=\"#333333\"><text x=\"%.1f\" y=\"%.1f\" "
                 "text-anchor=\"end\">0</text><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld"
                 "</text>",
              s.x0 - 4, s.y1 + 4, s.x0 - 4, s.y0 + 8, (long long)s.vmax);
    day_text(s.t0, a, sizeof a);
    day_text(s.t1, z, sizeof z);
    html_rawf(b, "<text x=\"%.1f\" y=\"%d\">%s</text><text x=\"%.1f\" y=\"%d\" "
                 "text-anchor=\"end\">%s</text></g>\n",
              s.x0, h - 8, a, s.x1, h - 8, z);

    if (ch->has_deadline) {
        double dx = sx(&s, ch->deadline_at), ty = sy(&s, ch->target);
        day_text(ch->deadline_at, a, sizeof a);
        /* The schedule: from the first value straight to the target at the deadline. */
        const json_t *p0 = json_array_get(ch->values, 0);
        html_rawf(b, "<line class=\"plan\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#9ca3af\" stroke-width=\"1.5\" stroke-dasharray=\"4 4\"/>\n",
                  sx(&s, json_integer_value(json_object_get(p0, "ts"))), sy(&s, first_value), dx,
                  ty);
        html_rawf(b, "<line class=\"target\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#0b6e2e\" stroke-width=\"1\" stroke-dasharray=\"2 3\"/>\n",
                  s.x0, ty, s.x1, ty);
        html_rawf(b, "<line class=\"deadline\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#8a1c1c\" stroke-width=\"2\"><title>deadline %s: %lld</title></line>\n"
                     "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#8a1c1c\" "
                     "text-anchor=\"end\">deadline %s (target %lld)</text>\n",
                  dx, s.y0, dx, s.y1, a, (long long)ch->target, dx - 3, s.y0 + 10, a,
                  (long long)ch->target);
    }

    /* The values. */
    html_raw(b, "<polyline class=\"values\" fill=\"none\" stroke=\"#0b5394\" stroke-width=\"2\" "
                "points=\"");
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(ch->values, i);
        html_rawf(b, "%s%.1f,%.1f", i ? " " : "", sx(&s, json_integer_value(json_object_get(p, "ts"))),
                  sy(&s, json_integer_value(json_object_get(p, "value"))));
    }
    html_raw(b, "\"/>\n<g fill=\"#0b5394\">");
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(ch->values, i);
        int64_t t = json_integer_value(json_object_get(p, "ts"));
        day_text(t, a, sizeof a);
        html_rawf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"><title>%s: %lld</title></circle>",
                  sx(&s, t), sy(&s, json_integer_value(json_object_get(p, "value"))), a,
                  (long long)json_integer_value(json_object_get(p, "value")));
    }
    html_raw(b, "</g></svg>\n");
}
