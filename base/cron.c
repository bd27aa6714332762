/*
 * cron.c - five-field cron parsing and next-fire computation (see cron.h).
 *
 * Next-fire works in "local seconds" (the zone's wall clock counted as if it
 * were UTC): find the next wall-clock minute that matches the fields, then
 * map it to the UTC instants that show that wall-clock time (none in a
 * spring-forward gap, two in a fall-back overlap, one otherwise).  Because
 * the mapping is not monotonic around an overlap, candidates are scanned
 * from a margin before `after` until a margin past the best one found.
 */
#include "base/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tz.h"

/* Largest change of a zone's offset we plan for (fall-back overlaps are
 * one hour nearly everywhere; two hours have happened). */
#define OFFSET_MARGIN (3 * 3600)
/* A schedule that matches nothing in this many years never fires. */
#define SEARCH_YEARS 30

struct cron_field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value min+i, or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct cron_field fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, wday_names},
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Parse one value (number or name) of field f from [p, end). */
static int parse_value(const struct cron_field *f, const char *p, const char *end, int *out)
{
    if (p == end)
        return -1;
    if (isdigit((unsigned char)*p)) {
        long v = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p) || v > 1000)
                return -1;
            v = v * 10 + (*p - '0');
        }
        *out = (int)v;
        return 0;
    }
    if (!f->names || end - p != 3)
        return -1;
    for (int i = 0; f->names[i]; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0) {
            *out = f->min + i;
            return 0;
        }
    }
    return -1;
}

#define FIELD_ERR(...)                                                                           \
    do {                                                                                         \
        char detail_[256];                                                                       \
        snprintf(detail_, sizeof detail_, __VA_ARGS__);                                          \
        return as_errf(err, AS_EINVAL, "cron \"%s\": %s: %s", spec, f->name, detail_);          \
    } while (0)

/* Parse a field's comma list into bits; *star = the field starts with '*'. */
static enum as_code parse_field(const char *spec, const struct cron_field *f, const char *text,
                                size_t len, uint64_t *bits, int *star, struct as_err *err)
{
    *bits = 0;
    *star = len > 0 && text[0] == '*';
    const char *p = text, *end = text + len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        int item_len = (int)(item_end - p);
        if (item_len == 0)
            FIELD_ERR("empty list item in \"%.*s\"", (int)len, text);
        const char *slash = memchr(p, '/', (size_t)(item_end - p));
        const char *range_end = slash ? slash : item_end;
        int lo, hi, step = 1;
        if (slash) {
            if (parse_value(&fields[0], slash + 1, item_end, &step) || step < 1)
                FIELD_ERR("step in \"%.*s\" must be a positive number", item_len, p);
            if (step > f->max - f->min + 1)
                FIELD_ERR("step %d in \"%.*s\" is larger than the field's range %d-%d", step,
                          item_len, p, f->min, f->max);
        }
        if (range_end - p == 1 && *p == '*') {
            lo = f->min;
            hi = f->max;
        } else {
            const char *dash = memchr(p, '-', (size_t)(range_end - p));
            if (parse_value(f, p, dash ? dash : range_end, &lo))
                FIELD_ERR("\"%.*s\" is not a valid value", (int)((dash ? dash : range_end) - p), p);
            if (dash) {
                if (parse_value(f, dash + 1, range_end, &hi))
                    FIELD_ERR("\"%.*s\" is not a valid value", (int)(range_end - dash - 1), dash + 1);
            } else {
                hi = slash ? f->max : lo;
            }
            if (lo < f->min || lo > f->max)
                FIELD_ERR("%d is out of range %d-%d", lo, f->min, f->max);
            if (hi < f->min || hi > f->max)
                FIELD_ERR("%d is out of range %d-%d", hi, f->min, f->max);
            if (lo > hi)
                FIELD_ERR("range \"%.*s\" runs backwards", (int)(range_end - p), p);
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ULL << v;
        if (!comma)
            break;
        p = comma + 1;
        if (p == end)
            FIELD_ERR("trailing comma in \"%.*s\"", (int)len, text);
    }
    return AS_OK;
}

#undef FIELD_ERR

static const struct {
    const char *name, *spec;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static const int month_max_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

enum as_code cron_parse(const char *spec, struct cron *out, struct as_err *err)
{
    memset(out, 0, sizeof *out);
    if (!spec)
        return as_errf(err, AS_EINVAL, "cron: empty schedule");
    const char *text = spec;
    while (isspace((unsigned char)*text))
        text++;
    if (*text == '@') {
        size_t n = strcspn(text, " \t\r\n");
        const char *rest = text + n;
        while (isspace((unsigned char)*rest))
            rest++;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            if (strlen(macros[i].name) == n && strncasecmp(text, macros[i].name, n) == 0 && !*rest)
                return cron_parse(macros[i].spec, out, err);
        }
        return as_errf(err, AS_EINVAL,
                       "cron \"%s\": unknown macro (use @yearly, @monthly, @weekly, @daily or @hourly; "
                       "@reboot is not supported)", spec);
    }
    const char *start[6];
    size_t len[6];
    int n = 0;
    const char *p = text;
    while (*p) {
        if (n == 6)
            break;
        start[n] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
        while (isspace((unsigned char)*p))
            p++;
    }
    if (n != 5 || *p)
        return as_errf(err, AS_EINVAL,
                       "cron \"%s\": expected 5 fields (minute hour day-of-month month day-of-week), "
                       "got %s%d%s", spec, *p ? "more than " : "", n,
                       n == 6 ? " (a seconds field is not supported)" : "");
    uint64_t bits[5];
    int star[5];
    for (int i = 0; i < 5; i++) {
        enum as_code rc = parse_field(spec, &fields[i], start[i], len[i], &bits[i], &star[i], err);
        if (rc)
            return rc;
    }
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    uint64_t w = bits[4];
    if (w & (1ULL << 7))
        w = (w | 1) & ~(1ULL << 7); /* 7 is Sunday too */
    out->wdays = (uint8_t)w;
    out->dom_star = (unsigned)star[2];
    out->dow_star = (unsigned)star[4];
    out->hour_star = (unsigned)star[1];
    /* Refuse what can never fire: with day-of-week unrestricted (or only
     * stepped), day-of-month must fit into at least one chosen month.  When
     * both are restricted either may match, so the weekdays always fire. */
    if (out->dow_star) {
        int lowest = 1;
        while (lowest <= 31 && !(out->mdays & (1U << lowest)))
            lowest++;
        int possible = 0;
        for (int m = 1; m <= 12; m++)
            if ((out->months & (1U << m)) && month_max_days[m] >= lowest)
                possible = 1;
        if (!possible)
            return as_errf(err, AS_EINVAL,
                           "cron \"%s\": day-of-month %d never occurs in the chosen month(s)", spec,
                           lowest);
    }
    return AS_OK;
}

static int day_matches(const struct cron *c, int64_t day)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(day, &y, &m, &d);
    if (!(c->months & (1U << m)))
        return 0;
    int wday = (int)(((day % 7) + 11) % 7);
    int dom_ok = (c->mdays >> d) & 1, dow_ok = (c->wdays >> wday) & 1;
    if (c->dom_star || c->dow_star)
        return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

/* Smallest matching wall-clock minute >= L (local seconds), or INT64_MIN. */
static int64_t next_local_match(const struct cron *c, int64_t L)
{
    int64_t minute = floor_div(L + 59, 60);
    int64_t day = floor_div(minute, 1440);
    int start_min = (int)(minute - day * 1440);
    for (int64_t d = day; d < day + 366LL * SEARCH_YEARS; d++, start_min = 0) {
        if (!day_matches(c, d))
            continue;
        for (int h = start_min / 60; h < 24; h++) {
            if (!((c->hours >> h) & 1))
                continue;
            int m0 = h == start_min / 60 ? start_min % 60 : 0;
            uint64_t rest = c->minutes >> m0;
            if (rest) {
                int m = m0 + __builtin_ctzll(rest);
                return d * 86400 + h * 3600 + m * 60;
            }
        }
    }
    return INT64_MIN;
}

/*
 * The UTC instants that show wall-clock time L in zone z: n = 0, 1 or 2
 * into inst[] (ascending).  For n = 0 (a gap), *gap_end is the instant the
 * clocks jumped over L.
 */
static int resolve_local(const struct tz_zone *z, int64_t L, int64_t inst[2], int64_t *gap_end)
{
    int32_t offs[16];
    int64_t trans[16];
    int n_offs = 0, n_trans = 0;
    int64_t t = L - 2 * 86400;
    offs[n_offs++] = tz_offset_at(z, t);
    int64_t at;
    while (n_trans < 15 && tz_next_transition(z, t, &at) && at <= L + 2 * 86400) {
        trans[n_trans++] = at;
        int32_t o = tz_offset_at(z, at);
        int seen = 0;
        for (int i = 0; i < n_offs; i++)
            seen |= offs[i] == o;
        if (!seen && n_offs < 16)
            offs[n_offs++] = o;
        t = at;
    }
    int n = 0;
    for (int i = 0; i < n_offs; i++) {
        int64_t u = L - offs[i];
        if (tz_offset_at(z, u) != offs[i])
            continue;
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= inst[j] == u;
        if (dup || n == 2)
            continue;
        inst[n++] = u;
    }
    if (n == 2 && inst[0] > inst[1]) {
        int64_t tmp = inst[0];
        inst[0] = inst[1];
        inst[1] = tmp;
    }
    if (n == 0) {
        *gap_end = INT64_MIN;
        for (int i = 0; i < n_trans; i++) {
            int32_t before = tz_offset_at(z, trans[i] - 1), after = tz_offset_at(z, trans[i]);
            if (after > before && trans[i] + before <= L && L < trans[i] + after) {
                *gap_end = trans[i];
                break;
            }
        }
    }
    return n;
}

enum as_code cron_next(const struct cron *c, const struct tz_zone *zone, int64_t after_ms,
                       int64_t *next_ms, struct as_err *err)
{
    int64_t after = floor_div(after_ms, 1000);
    int64_t L = after + tz_offset_at(zone, after) - OFFSET_MARGIN;
    int64_t best = INT64_MAX, best_L = 0, limit = L + 366LL * SEARCH_YEARS * 86400;
    for (;;) {
        L = next_local_match(c, L);
        if (L == INT64_MIN || L > limit)
            break;
        if (best != INT64_MAX && L > best_L + 2 * OFFSET_MARGIN)
            break;
        int64_t inst[2], gap_end = INT64_MIN;
        int n = resolve_local(zone, L, inst, &gap_end);
        int64_t cand[2];
        int n_cand = 0;
        if (n == 0 && gap_end != INT64_MIN)
            cand[n_cand++] = gap_end;
        else if (n >= 1)
            cand[n_cand++] = inst[0];
        if (n == 2 && c->hour_star)
            cand[n_cand++] = inst[1];
        for (int i = 0; i < n_cand; i++) {
            /* Fire strictly after `after_ms`; instants are whole seconds. */
            if (cand[i] * 1000 > after_ms && cand[i] < best) {
                best = cand[i];
                best_L = L;
            }
        }
        L += 60;
    }
    if (best == INT64_MAX)
        return as_errf(err, AS_ENOTFOUND, "the schedule does not fire within %d years", SEARCH_YEARS);
    *next_ms = best * 1000;
    return AS_OK;
}

enum as_code cron_next_spec(const char *spec, const char *tz, int64_t after_ms, int64_t *next_ms,
                            struct as_err *err)
{
    struct cron c;
    struct tz_zone *zone = NULL;
    enum as_code rc = cron_parse(spec, &c, err);
    if (rc)
        return rc;
    rc = tz_load(tz && *tz ? tz : "UTC", &zone, err);
    if (rc)
        return rc;
    rc = cron_next(&c, zone, after_ms, next_ms, err);
    tz_free(zone);
    return rc;
}
