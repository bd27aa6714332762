/* timeutil.c - clocks, ISO 8601 durations and timestamps (see timeutil.h). */
#include "base/timeutil.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t time_fake_offset(const char *hooks, const char *offset)
{
    if (!hooks || strcmp(hooks, "1") != 0 || !offset || !*offset)
        return 0;
    int64_t v = 0;
    for (const char *p = offset; *p; p++) {
        if (!isdigit((unsigned char)*p) || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int64_t fake_offset_ms;
static pthread_once_t fake_offset_once = PTHREAD_ONCE_INIT;

static void fake_offset_init(void)
{
    /* Read once: the offset is a test hook, fixed for the process. */
    fake_offset_ms = time_fake_offset(getenv("ASSENT_TEST_HOOKS"),
                                      getenv("ASSENT_FAKE_NOW_OFFSET_MS"));
}

int64_t time_now_ms(void)
{
    pthread_once(&fake_offset_once, fake_offset_init);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + fake_offset_ms;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Plain decimal "12" or "1.5" (no sign, exponent, hex, nan or inf, which
 * strtod would take).  Returns the end, or NULL when there is no number. */
static const char *parse_decimal(const char *p, double *out)
{
    double v = 0, scale = 1;
    int digits = 0;
    for (; isdigit((unsigned char)*p); p++, digits++)
        v = v * 10 + (*p - '0');
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, digits++) {
            scale /= 10;
            v += (*p - '0') * scale;
        }
    }
    if (!digits)
        return NULL;
    *out = v;
    return p;
}

static enum as_code parse_short(const char *s, int64_t *out, struct as_err *err)
{
    double v;
    const char *end = parse_decimal(s, &v);
    if (!end)
        return as_errf(err, AS_EINVAL, "invalid duration \"%s\"", s);
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return as_errf(err, AS_EINVAL,
                       "invalid duration \"%s\" (use ISO 8601 like PT30S or P7D, or 500ms/2s/5m/3h/7d)", s);
    if (v * mult > 9.2e18)
        return as_errf(err, AS_EINVAL, "duration \"%s\" too large", s);
    *out = (int64_t)(v * mult);
    return AS_OK;
}

enum as_code time_parse_duration(const char *s, int64_t *out_ms, struct as_err *err)
{
    if (!s || !*s)
        return as_errf(err, AS_EINVAL, "empty duration");
    if (s[0] != 'P')
        return parse_short(s, out_ms, err);
    const char *p = s + 1;
    int in_time = 0, any = 0;
    double total = 0;
    while (*p) {
        if (*p == 'T') {
            if (in_time)
                goto bad;
            in_time = 1;
            p++;
            continue;
        }
        double v;
        const char *end = parse_decimal(p, &v);
        if (!end)
            goto bad;
        double mult = 0;
        switch (*end) {
        case 'W': mult = in_time ? 0 : 7 * 86400000.0; break;
        case 'D': mult = in_time ? 0 : 86400000.0; break;
        case 'H': mult = in_time ? 3600000.0 : 0; break;
        case 'M': mult = in_time ? 60000.0 : -1; break;
        case 'S': mult = in_time ? 1000.0 : 0; break;
        case 'Y': mult = -1; break;
        default: goto bad;
        }
        if (mult < 0)
            return as_errf(err, AS_EINVAL,
                           "duration \"%s\": years and months are ambiguous, use days or weeks", s);
        if (mult == 0)
            goto bad;
        total += v * mult;
        any = 1;
        p = end + 1;
    }
    if (!any || total > 9.2e18)
        goto bad;
    *out_ms = (int64_t)total;
    return AS_OK;
bad:
    return as_errf(err, AS_EINVAL, "invalid ISO 8601 duration \"%s\" (e.g. PT30S, PT2H, P7D)", s);
}

void time_format_iso(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (k)
        snprintf(buf + k, size - k, ".%03dZ", (int)(ms % 1000));
}

enum as_code time_parse_iso(const char *s, int64_t *out_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) {
        p = strptime(s, "%Y-%m-%d", &tm);
        if (!p || *p)
            return AS_EINVAL;
        *out_ms = (int64_t)timegm(&tm) * 1000;
        return AS_OK;
    }
    double frac = 0;
    if (*p == '.') {
        char *end;
        frac = strtod(p, &end);
        p = end;
    }
    int64_t off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return AS_EINVAL;
        off = (int64_t)(hh * 60 + mm) * 60000 * (*p == '+' ? 1 : -1);
        p += 6;
    }
    if (*p)
        return AS_EINVAL;
    *out_ms = (int64_t)timegm(&tm) * 1000 + (int64_t)(frac * 1000) - off;
    return AS_OK;
}

enum as_code time_parse_expiry(const char *s, int64_t now, int64_t *out_ms, struct as_err *err)
{
    int64_t until = 0;
    if (s[0] == 'P' || (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-'))) {
        int64_t d = 0;
        if (time_parse_duration(s, &d, err) != AS_OK)
            return AS_EINVAL;
        until = now + d;
    } else if (time_parse_iso(s, &until) != AS_OK) {
        return as_errf(err, AS_EINVAL, "\"%s\": give a duration (P90D) or a date (2026-03-31)", s);
    }
    if (until <= now)
        return as_errf(err, AS_EINVAL, "\"%s\" lies in the past", s);
    *out_ms = until;
    return AS_OK;
}
