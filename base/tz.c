/*
 * tz.c - TZif reader and POSIX TZ rules (see tz.h).
 *
 * A TZif file (RFC 8536) holds a table of transitions, each pointing to a
 * local time type {utoff, isdst}, and (version 2+) a footer with a POSIX TZ
 * string such as "CET-1CEST,M3.5.0,M10.5.0/3" that extends the table into
 * the future.  We read the 64-bit block when present, else the 32-bit one.
 */
#include "base/tz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TZ_FILE_MAX (512 * 1024)
#define TZ_MAX_TIMES 4096
#define TZ_MAX_TYPES 256

/* One end of a DST period in a POSIX rule: Jn, n or Mm.w.d, plus a time. */
struct tz_rule_date {
    char kind; /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' */
    int n;     /* J/D: day; M: month */
    int week;  /* M: 1..5 (5 = last) */
    int wday;  /* M: 0 = Sunday */
    int32_t secs; /* local time of day of the change; may be <0 or >24h */
};

struct tz_rule {
    int valid;
    int has_dst;
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    struct tz_rule_date start, end;
};

struct tz_zone {
    char name[128];
    size_t n_times;
    int64_t *times;    /* transition instants, ascending */
    uint8_t *idx;      /* type index per transition */
    size_t n_types;
    int32_t utoff[TZ_MAX_TYPES];
    struct tz_rule rule;
};

/* --- calendar arithmetic (H. Hinnant's days_from_civil) --- */

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int dd = (int)(doy - (153 * mp + 2) / 5 + 1);
    int mm = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (mm <= 2);
    *m = mm;
    *d = dd;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* --- POSIX TZ strings --- */

static const char *parse_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q && q - p >= 4 ? q + 1 : NULL;
    }
    const char *s = p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; returns the end or NULL. */
static const char *parse_hms(const char *p, int max_h, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    long parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        if (*p < '0' || *p > '9')
            return NULL;
        long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        parts[i] = v;
    }
    if (parts[0] > max_h || parts[1] > 59 || parts[2] > 59)
        return NULL;
    *out = (int32_t)(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]));
    return p;
}

static const char *parse_int(const char *p, int lo, int hi, int *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    long v = 0;
    while (*p >= '0' && *p <= '9' && v <= 10000)
        v = v * 10 + (*p++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = (int)v;
    return p;
}

static const char *parse_rule_date(const char *p, struct tz_rule_date *rd)
{
    if (*p == 'J') {
        rd->kind = 'J';
        p = parse_int(p + 1, 1, 365, &rd->n);
    } else if (*p == 'M') {
        rd->kind = 'M';
        p = parse_int(p + 1, 1, 12, &rd->n);
        if (!p || *p++ != '.')
            return NULL;
        p = parse_int(p, 1, 5, &rd->week);
        if (!p || *p++ != '.')
            return NULL;
        p = parse_int(p, 0, 6, &rd->wday);
    } else {
        rd->kind = 'D';
        p = parse_int(p, 0, 365, &rd->n);
    }
    if (!p)
        return NULL;
    rd->secs = 7200;
    if (*p == '/')
        p = parse_hms(p + 1, 167, &rd->secs); /* RFC 8536 allows -167..167 hours */
    return p;
}

/* Parse e.g. "CET-1CEST,M3.5.0,M10.5.0/3".  Returns 0 on success. */
static int rule_parse(const char *s, struct tz_rule *r)
{
    memset(r, 0, sizeof *r);
    const char *p = parse_name(s);
    int32_t off;
    if (!p || !(p = parse_hms(p, 24, &off)))
        return -1;
    r->std_off = -off; /* POSIX offsets are west-positive */
    if (!*p) {
        r->valid = 1;
        return 0;
    }
    p = parse_name(p);
    if (!p)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, 24, &off)))
            return -1;
        r->dst_off = -off;
    }
    if (!*p) {
        /* No rule given: POSIX leaves it to the implementation; use the
         * current US rule as glibc does. */
        r->start = (struct tz_rule_date){'M', 3, 2, 0, 7200};
        r->end = (struct tz_rule_date){'M', 11, 1, 0, 7200};
        r->valid = 1;
        return 0;
    }
    if (*p++ != ',' || !(p = parse_rule_date(p, &r->start)) || *p++ != ',' ||
        !(p = parse_rule_date(p, &r->end)) || *p)
        return -1;
    r->valid = 1;
    return 0;
}

/* Local midnight (as days since epoch) of the rule date in year y. */
static int64_t rule_day(const struct tz_rule_date *rd, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (rd->kind == 'J') {
        int64_t day = jan1 + rd->n - 1;
        if (is_leap(y) && rd->n >= 60)
            day++; /* Jn never counts Feb 29 */
        return day;
    }
    if (rd->kind == 'D')
        return jan1 + rd->n;
    int64_t first = tz_days_from_civil(y, rd->n, 1);
    int first_wday = (int)(((first % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t day = first + ((rd->wday - first_wday + 7) % 7) + (int64_t)(rd->week - 1) * 7;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int len = mdays[rd->n - 1] + (rd->n == 2 && is_leap(y));
    while (day >= first + len)
        day -= 7; /* week 5 means "the last" */
    return day;
}

/* UTC instants where DST starts and ends in year y. */
static void rule_year(const struct tz_rule *r, int64_t y, int64_t *start, int64_t *end)
{
    /* The start is given in standard time, the end in daylight time. */
    *start = rule_day(&r->start, y) * 86400 + r->start.secs - r->std_off;
    *end = rule_day(&r->end, y) * 86400 + r->end.secs - r->dst_off;
}

static int32_t rule_offset(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y = year_of(t), s, e;
    rule_year(r, y, &s, &e);
    int dst = s < e ? (t >= s && t < e) : (t < e || t >= s);
    return dst ? r->dst_off : r->std_off;
}

static int rule_next(const struct tz_rule *r, int64_t t, int64_t *at)
{
    if (!r->has_dst)
        return 0;
    int64_t best = INT64_MAX, y = year_of(t);
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s, e;
        rule_year(r, yy, &s, &e);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    if (best == INT64_MAX)
        return 0;
    *at = best;
    return 1;
}

/* --- TZif --- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int read_counts(const unsigned char *p, size_t len, struct tzif_counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->time > TZ_MAX_TIMES || c->type == 0 || c->type > TZ_MAX_TYPES || c->leap > 1000 ||
        c->chars > 1000 || c->isut > TZ_MAX_TYPES || c->isstd > TZ_MAX_TYPES)
        return -1;
    return 0;
}

static size_t block_size(const struct tzif_counts *c, int tsize)
{
    return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chars +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static enum as_code parse_tzif(struct tz_zone *z, const unsigned char *buf, size_t len,
                               struct as_err *err)
{
    struct tzif_counts c;
    if (read_counts(buf, len, &c))
        goto bad;
    int version = buf[4] ? buf[4] - '0' : 1;
    const unsigned char *p = buf + 44;
    size_t v1 = block_size(&c, 4);
    if (v1 > len - 44)
        goto bad;
    int tsize = 4;
    const unsigned char *end = buf + len;
    if (version >= 2) {
        p += v1;
        if (read_counts(p, (size_t)(end - p), &c))
            goto bad;
        p += 44;
        tsize = 8;
        if (block_size(&c, 8) > (size_t)(end - p))
            goto bad;
    }
    z->n_times = c.time;
    z->times = calloc(c.time ? c.time : 1, sizeof *z->times);
    z->idx = calloc(c.time ? c.time : 1, 1);
    if (!z->times || !z->idx)
        return as_errf(err, AS_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < c.time; i++) {
        z->times[i] = tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
        p += tsize;
        if (i > 0 && z->times[i] <= z->times[i - 1])
            goto bad;
    }
    for (uint32_t i = 0; i < c.time; i++) {
        z->idx[i] = *p++;
        if (z->idx[i] >= c.type)
            goto bad;
    }
    z->n_types = c.type;
    for (uint32_t i = 0; i < c.type; i++) {
        z->utoff[i] = (int32_t)be32(p);
        p += 6;
    }
    p += c.chars + (size_t)c.leap * (tsize + 4) + c.isstd + c.isut;
    if (version >= 2 && p < end && *p == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
        if (!nl)
            goto bad;
        char footer[256];
        size_t flen = (size_t)(nl - p - 1);
        if (flen >= sizeof footer)
            goto bad;
        memcpy(footer, p + 1, flen);
        footer[flen] = '\0';
        if (flen && rule_parse(footer, &z->rule))
            return as_errf(err, AS_EINVAL, "time zone %s: unsupported TZ rule \"%s\"", z->name,
                           footer);
    }
    return AS_OK;
bad:
    return as_errf(err, AS_EINVAL, "time zone %s: malformed TZif file", z->name);
}

static int name_ok(const char *name)
{
    if (!*name || name[0] == '/' || strstr(name, "..") || strlen(name) >= 100)
        return 0;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '_' || ch == '+' || ch == '-'))
            return 0;
    }
    return 1;
}

enum as_code tz_load(const char *name, struct tz_zone **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    unsigned char *buf = NULL;
    FILE *f = NULL;
    *out = NULL;
    if (!name || !name_ok(name))
        return as_errf(err, AS_EINVAL, "invalid time zone name \"%s\" (use an IANA name such as Europe/Berlin)",
                       name ? name : "");
    struct tz_zone *z = calloc(1, sizeof *z);
    if (!z)
        return as_errf(err, AS_ENOMEM, "out of memory");
    snprintf(z->name, sizeof z->name, "%s", name);
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") || !strcmp(name, "GMT") ||
        !strcmp(name, "Z")) {
        z->n_types = 1;
        z->rule.valid = 1;
        goto done;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    f = fopen(path, "rb");
    if (!f) {
        rc = as_errf(err, errno == ENOENT || errno == ENOTDIR ? AS_ENOTFOUND : AS_EIO,
                     "unknown time zone \"%s\" (%s)", name, strerror(errno));
        goto fail;
    }
    buf = malloc(TZ_FILE_MAX);
    if (!buf) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    size_t len = fread(buf, 1, TZ_FILE_MAX, f);
    if (ferror(f) || len == TZ_FILE_MAX) {
        rc = as_errf(err, AS_EINVAL, "time zone %s: not a TZif file", name);
        goto fail;
    }
    rc = parse_tzif(z, buf, len, err);
    if (rc)
        goto fail;
done:
    free(buf);
    if (f)
        fclose(f);
    *out = z;
    return AS_OK;
fail:
    free(buf);
    if (f)
        fclose(f);
    tz_free(z);
    return rc;
}

void tz_free(struct tz_zone *z)
{
    if (!z)
        return;
    free(z->times);
    free(z->idx);
    free(z);
}

const char *tz_name(const struct tz_zone *z)
{
    return z->name;
}

/* Index of the last transition <= t, or -1. */
static long last_at_or_before(const struct tz_zone *z, int64_t t)
{
    long lo = 0, hi = (long)z->n_times - 1, found = -1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (z->times[mid] <= t) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

int32_t tz_offset_at(const struct tz_zone *z, int64_t t)
{
    if (z->n_times == 0)
        return z->rule.valid ? rule_offset(&z->rule, t) : z->utoff[0];
    long i = last_at_or_before(z, t);
    if (i < 0)
        return z->utoff[0];
    if (i == (long)z->n_times - 1 && z->rule.valid)
        return rule_offset(&z->rule, t);
    return z->utoff[z->idx[i]];
}

int tz_next_transition(const struct tz_zone *z, int64_t t, int64_t *at)
{
    long i = last_at_or_before(z, t);
    /* Table entries that do not change the offset are skipped: cron only
     * cares about the offset, not abbreviation changes. */
    for (long j = i + 1; j < (long)z->n_times; j++) {
        int32_t before = j == 0 ? z->utoff[0] : z->utoff[z->idx[j - 1]];
        if (z->utoff[z->idx[j]] != before) {
            *at = z->times[j];
            return 1;
        }
    }
    if (!z->rule.valid)
        return 0;
    int64_t from = t;
    if (z->n_times && z->times[z->n_times - 1] > from)
        from = z->times[z->n_times - 1];
    /* A rule transition that happens not to change the offset (e.g. the
     * table's last entry already matches) is harmless to report. */
    return rule_next(&z->rule, from, at);
}
