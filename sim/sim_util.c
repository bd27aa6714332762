/* sim_util.c - buffers, PRNG, GUIDs, time, URL and base64 helpers, hash index (see sim_util.h). */
#include "sim/sim_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "base/encode.h"
#include "base/tz.h"

/* ---- growable buffer ---------------------------------------------------- */

void sbuf_json_str(struct strbuf *b, const char *s)
{
    if (!s) {
        strbuf_addn(b, "null", 4);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    strbuf_addc(b, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char u[7];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*p < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[*p >> 4]; u[5] = hex[*p & 15]; u[6] = '\0';
                esc = u;
            }
        }
        if (esc) {
            strbuf_addn(b, run, (size_t)((const char *)p - run));
            strbuf_add(b, esc);
            run = (const char *)p + 1;
        }
    }
    strbuf_add(b, run);
    strbuf_addc(b, '"');
}

void sbuf_json_key(struct strbuf *b, const char *key)
{
    sbuf_json_str(b, key);
    strbuf_addc(b, ':');
}

void sbuf_csv_field(struct strbuf *b, const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        strbuf_add(b, s);
        return;
    }
    strbuf_addc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            strbuf_addc(b, '"');
        strbuf_addc(b, *p);
    }
    strbuf_addc(b, '"');
}

void sbuf_url_encode(struct strbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            strbuf_addc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_addn(b, e, 3);
        }
    }
}

/* ---- PRNG ---------------------------------------------------------------- */

void rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed ^ 0x9e3779b97f4a7c15ULL;
}

uint64_t rng_next(struct sim_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_below(struct sim_rng *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}

double rng_unit(struct sim_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int rng_chance(struct sim_rng *r, double p)
{
    return rng_unit(r) < p;
}

static void guid_from_bytes(unsigned char b[16], char out[37])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

void rng_guid(struct sim_rng *r, char out[37])
{
    unsigned char b[16];
    uint64_t a = rng_next(r), c = rng_next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(a >> (8 * i));
        b[8 + i] = (unsigned char)(c >> (8 * i));
    }
    guid_from_bytes(b, out);
}

static void fill_random(unsigned char *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        /* Never expected; fall back to a time-seeded PRNG rather than fail a request. */
        static __thread struct sim_rng fb;
        if (!fb.s)
            rng_seed(&fb, (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)&fb);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)rng_next(&fb);
    }
}

void guid_random(char out[37])
{
    unsigned char b[16];
    fill_random(b, sizeof b);
    guid_from_bytes(b, out);
}

void random_b64url(size_t n_bytes, char *out, size_t out_size)
{
    unsigned char buf[96];
    if (n_bytes > sizeof buf)
        n_bytes = sizeof buf;
    fill_random(buf, n_bytes);
    encode_b64url(buf, n_bytes, out, out_size);
}

/* ---- time ------------------------------------------------------------------ */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void split_ms(int64_t ms, struct tm *tm, int *millis)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    *millis = (int)(ms - s * 1000);
    time_t t = (time_t)s;
    gmtime_r(&t, tm);
}

void fmt_iso_ms(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    int millis;
    split_ms(ms, &tm, &millis);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

void fmt_iso_s(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    int millis;
    split_ms(ms, &tm, &millis);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void fmt_date(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    int millis;
    split_ms(ms, &tm, &millis);
    snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

void fmt_http_date(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    int millis;
    split_ms(ms, &tm, &millis);
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int parse_iso(const char *s, int64_t *ms, const char **end)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (take_digits(&p, 4, &y) || *p++ != '-' || take_digits(&p, 2, &mo) || *p++ != '-' ||
        take_digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    if (*p == 'T' || *p == 't') {
        p++;
        if (take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (take_digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                p++;
                int nd = 0, scale = 100;
                while (isdigit((unsigned char)*p)) {
                    if (nd < 3) {
                        frac_ms += (*p - '0') * scale;
                        scale /= 10;
                    }
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        int64_t off_min = 0;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (take_digits(&p, 2, &oh) || *p++ != ':' || take_digits(&p, 2, &om))
                return -1;
            off_min = sign * (oh * 60 + om);
        }
        int64_t days = tz_days_from_civil(y, mo, d);
        *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off_min * 60) * 1000 + frac_ms;
    } else {
        *ms = tz_days_from_civil(y, mo, d) * 86400 * 1000;
    }
    if (end)
        *end = p;
    return 0;
}

/* ---- strings -------------------------------------------------------------- */

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

size_t str_copy(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (size) {
        size_t c = n < size - 1 ? n : size - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

char *str_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int str_ieq(const char *a, const char *b)
{
    return a && b && strcasecmp(a, b) == 0;
}

int str_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

size_t url_decode(char *s, int plus)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && encode_hex_value(r[1]) >= 0 && encode_hex_value(r[2]) >= 0) {
            *w++ = (char)(encode_hex_value(r[1]) * 16 + encode_hex_value(r[2]));
            r += 2;
        } else if (*r == '+' && plus) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

unsigned char *b64_decode(const char *in, size_t len, int std, size_t *out_len)
{
    size_t size = len / 4 * 3 + 2;
    unsigned char *out = malloc(size);
    if (!out)
        return NULL;
    long n = encode_b64_decode(in, len, ENCODE_B64_PADDED | (std ? 0 : ENCODE_B64_URL), out, size);
    if (n < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)n;
    return out;
}

/* ---- hash index ------------------------------------------------------------ */

static uint64_t hash_ci(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

static int hidx_grow(struct hidx *h)
{
    size_t ncap = h->cap ? h->cap * 2 : 1024;
    struct hidx_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < h->cap; i++) {
        if (!h->slots[i].key)
            continue;
        size_t j = hash_ci(h->slots[i].key) & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = h->slots[i];
    }
    free(h->slots);
    h->slots = ns;
    h->cap = ncap;
    return 0;
}

static struct hidx_slot *hidx_find(const struct hidx *h, const char *key)
{
    if (!h->cap)
        return NULL;
    size_t j = hash_ci(key) & (h->cap - 1);
    while (h->slots[j].key) {
        if (strcasecmp(h->slots[j].key, key) == 0)
            return &h->slots[j];
        j = (j + 1) & (h->cap - 1);
    }
    return NULL;
}

int hidx_put(struct hidx *h, const char *key, int val)
{
    if (!key || !*key)
        return 0;
    struct hidx_slot *s = hidx_find(h, key);
    if (s) {
        if (s->val != val)
            s->val = HIDX_AMBIGUOUS;
        return 0;
    }
    if ((h->n + 1) * 2 > h->cap && hidx_grow(h) != 0)
        return -1;
    char *k = strdup(key);
    if (!k)
        return -1;
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t j = hash_ci(k) & (h->cap - 1);
    while (h->slots[j].key)
        j = (j + 1) & (h->cap - 1);
    h->slots[j].key = k;
    h->slots[j].val = val;
    h->n++;
    return 0;
}

int hidx_get(const struct hidx *h, const char *key)
{
    if (!key)
        return -1;
    struct hidx_slot *s = hidx_find(h, key);
    return s ? s->val : -1;
}

void hidx_del(struct hidx *h, const char *key)
{
    struct hidx_slot *s = hidx_find(h, key);
    if (!s)
        return;
    /* Backward-shift deletion keeps linear probing chains intact. */
    size_t i = (size_t)(s - h->slots);
    free(s->key);
    h->slots[i].key = NULL;
    h->n--;
    size_t j = i;
    for (;;) {
        j = (j + 1) & (h->cap - 1);
        if (!h->slots[j].key)
            break;
        size_t home = hash_ci(h->slots[j].key) & (h->cap - 1);
        /* move slot j to i when its home is not cyclically in (i, j] */
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            h->slots[i] = h->slots[j];
            h->slots[j].key = NULL;
            i = j;
        }
    }
}

void hidx_free(struct hidx *h)
{
    for (size_t i = 0; i < h->cap; i++)
        free(h->slots[i].key);
    free(h->slots);
    memset(h, 0, sizeof *h);
}

/* ---- interning ------------------------------------------------------------- */

static uint64_t hash_cs(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

const char *intern_str(struct intern *p, const char *s)
{
    if (!s)
        return NULL;
    if ((p->n + 1) * 2 > p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 256;
        char **ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return NULL;
        for (size_t i = 0; i < p->cap; i++) {
            if (!p->slots[i])
                continue;
            size_t j = hash_cs(p->slots[i]) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = p->slots[i];
        }
        free(p->slots);
        p->slots = ns;
        p->cap = ncap;
    }
    size_t j = hash_cs(s) & (p->cap - 1);
    while (p->slots[j]) {
        if (strcmp(p->slots[j], s) == 0)
            return p->slots[j];
        j = (j + 1) & (p->cap - 1);
    }
    p->slots[j] = strdup(s);
    if (!p->slots[j])
        return NULL;
    p->n++;
    return p->slots[j];
}

void intern_free(struct intern *p)
{
    for (size_t i = 0; i < p->cap; i++)
        free(p->slots[i]);
    free(p->slots);
    memset(p, 0, sizeof *p);
}
