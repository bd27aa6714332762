/* retry.c - Retry-After and jittered backoff (see retry.h). */
#include "base/retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int64_t retry_after_parse(const char *v, int64_t now_ms)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v)
        return -1;
    if (isdigit((unsigned char)*v) || *v == '.') {
        char *end;
        errno = 0;
        double s = strtod(v, &end);
        if (end == v || (errno && errno != ERANGE) || !(s >= 0))
            return -1;
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (*end)
            return -1;
        if (s >= (double)RETRY_AFTER_SATURATE_MS / 1000)
            return RETRY_AFTER_SATURATE_MS;
        return (int64_t)(s * 1000.0);
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    /* Seconds first: a date centuries ahead must not overflow in ms. */
    int64_t s = (int64_t)t - now_ms / 1000;
    if (s >= RETRY_AFTER_SATURATE_MS / 1000)
        return RETRY_AFTER_SATURATE_MS;
    int64_t ms = (int64_t)t * 1000 - now_ms;
    return ms < 0 ? 0 : ms;
}

double retry_jitter(void)
{
    static __thread uint64_t s;
    if (!s) {
        if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s || !s)
            s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&s;
    }
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (double)((s * 2685821657736338717ULL) >> 11) / 9007199254740992.0; /* 2^53 */
}

/* base_ms * factor^(attempt-1), capped at max_ms, at least 1. */
static double capped(int64_t base_ms, double factor, int attempt, int64_t max_ms)
{
    double cap = (double)base_ms * pow(factor > 0 ? factor : 1.0, attempt > 1 ? attempt - 1 : 0);
    if (cap > (double)max_ms)
        cap = (double)max_ms;
    return cap < 1 ? 1 : cap;
}

int64_t retry_backoff_full(int64_t base_ms, double factor, int attempt, int64_t max_ms)
{
    int64_t d = (int64_t)(retry_jitter() * capped(base_ms, factor, attempt, max_ms));
    return d < 1 ? 1 : d;
}

int64_t retry_backoff_equal(int64_t base_ms, double factor, int attempt, int64_t max_ms)
{
    int64_t d = (int64_t)capped(base_ms, factor, attempt, max_ms);
    if (d <= 1)
        return d;
    int64_t half = d / 2;
    return half + (int64_t)(retry_jitter() * (double)(half + 1));
}
