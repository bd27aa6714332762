/*
 * sim_util.h - small helpers of the tenant simulator: a growable byte buffer
 * with JSON/CSV writers, a seeded PRNG, GUIDs, time formatting, URL
 * encoding/decoding, base64url, a string-keyed hash index and an interning
 * pool.  None of this is Assent's engine code: the simulator is a separate
 * program and links nothing from assent_core.
 */
#ifndef SIM_UTIL_H
#define SIM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

/* ---- growable buffer ---------------------------------------------------- */

/* The buffer is base/strbuf.h's struct strbuf; these append to it. */
/* Append s as a quoted JSON string, or `null` when s is NULL. */
void sbuf_json_str(struct strbuf *b, const char *s);
/* Append `"key":` (key must not need escaping beyond what this does). */
void sbuf_json_key(struct strbuf *b, const char *key);
/* Append s as one CSV field (quoted when it holds , " CR or LF). */
void sbuf_csv_field(struct strbuf *b, const char *s);
/* Append s percent-encoded for a URL query value (RFC 3986 unreserved kept). */
void sbuf_url_encode(struct strbuf *b, const char *s);

/* ---- deterministic PRNG (splitmix64) ------------------------------------ */

struct sim_rng {
    uint64_t s;
};

void rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t rng_next(struct sim_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(struct sim_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rng_unit(struct sim_rng *r);
/* 1 with probability p. */
int rng_chance(struct sim_rng *r, double p);

/* A version-4-shaped GUID (lower-case, 36 chars + NUL) from the PRNG. */
void rng_guid(struct sim_rng *r, char out[37]);
/* A GUID from the system's cryptographic RNG (request ids, token ids). */
void guid_random(char out[37]);
/* len random bytes from the cryptographic RNG, base64url encoded into out. */
void random_b64url(size_t n_bytes, char *out, size_t out_size);

/* ---- time --------------------------------------------------------------- */

int64_t now_ms(void);
/* "2024-05-22T16:52:26.365Z" style (millis) or without millis when ms==0 flag. */
void fmt_iso_ms(int64_t ms, char *out, size_t size);
void fmt_iso_s(int64_t ms, char *out, size_t size);
/* "YYYY-MM-DD" of the UTC day containing ms. */
void fmt_date(int64_t ms, char *out, size_t size);
/* RFC 7231 IMF-fixdate. */
void fmt_http_date(int64_t ms, char *out, size_t size);
/*
 * Parse an ISO 8601 UTC timestamp: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.fff...]]
 * followed by Z or +HH:MM/-HH:MM (or nothing: UTC).  Returns 0 and sets *ms,
 * -1 on malformed input.  *end (optional) gets the first unparsed char.
 */
int parse_iso(const char *s, int64_t *ms, const char **end);

/* ---- strings ------------------------------------------------------------ */

/* Decimal integer with range check; 0 on success. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Copy at most size-1 bytes and NUL-terminate; returns strlen(src). */
size_t str_copy(char *dst, size_t size, const char *src);
/* strdup that returns NULL for NULL. */
char *str_dup(const char *s);
int str_ieq(const char *a, const char *b);
int str_starts(const char *s, const char *prefix);
/* Decode %XX and (when plus) '+' in place; returns the new length. */
size_t url_decode(char *s, int plus);
/*
 * base64url (or standard base64 when std) decode of in[0..len) into a
 * malloc'd buffer; padding optional.  Returns NULL on malformed input.
 * (Encoding: base/encode.h, compiled into the simulator.)
 */
unsigned char *b64_decode(const char *in, size_t len, int std, size_t *out_len);

/* ---- hash index: lower-cased string key -> int ---------------------------- */

#define HIDX_AMBIGUOUS (-2)

struct hidx_slot {
    char *key; /* owned, lower-case */
    int val;
};

struct hidx {
    struct hidx_slot *slots;
    size_t cap;
    size_t n;
};

/* Insert key (case-folded copy); a second different value marks it ambiguous. 0 ok, -1 OOM. */
int hidx_put(struct hidx *h, const char *key, int val);
/* Value for key (case-insensitive), -1 when absent, HIDX_AMBIGUOUS when shared. */
int hidx_get(const struct hidx *h, const char *key);
/* Remove key; no-op when absent. */
void hidx_del(struct hidx *h, const char *key);
void hidx_free(struct hidx *h);

/* ---- interning pool: equal strings share one allocation ------------------ */

struct intern {
    char **slots;
    size_t cap;
    size_t n;
};

/* The pool's copy of s (NULL for NULL); NULL on OOM. Borrowed until intern_free. */
const char *intern_str(struct intern *p, const char *s);
void intern_free(struct intern *p);

#endif
