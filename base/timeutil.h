/*
 * timeutil.h - clocks, ISO 8601 durations and timestamps.
 * All times in Assent are int64 milliseconds since the Unix epoch (UTC).
 */
#ifndef ASSENT_TIMEUTIL_H
#define ASSENT_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Wall clock in ms since the epoch.  Honours ASSENT_FAKE_NOW_OFFSET_MS (tests
 * that need time to pass, e.g. expiries, add an offset instead of sleeping),
 * but only when ASSENT_TEST_HOOKS=1 is set as well: a stray variable alone
 * cannot move a deployment's clock (approval expiry, CSRF age, schedules).
 * Both are read once per process.  Thread-safe. */
int64_t time_now_ms(void);

/* The offset time_now_ms() applies for these two environment values: the
 * decimal ms in `offset` when `hooks` is exactly "1", else 0 (also for NULL,
 * a sign, junk or overflow).  Pure; exposed for tests. */
int64_t time_fake_offset(const char *hooks, const char *offset);

/* Monotonic clock in ms, for measuring intervals. */
int64_t time_mono_ms(void);

/*
 * Parse an ISO 8601 duration ("P7D", "PT2H30M", "PT0.5S", "P1W") into ms.
 * Years and months are refused (their length is ambiguous).  Also accepts
 * the short forms "500ms", "2s", "5m", "3h", "7d" used in step parameters.
 */
enum as_code time_parse_duration(const char *s, int64_t *out_ms, struct as_err *err) AS_WUR;

/*
 * An expiry as people give it into *out_ms: an ISO 8601 duration from `now`
 * ("P90D", "PT12H", or the short forms above) or a date or time ("2026-03-31",
 * "2026-03-31T18:00:00Z").  AS_EINVAL when it is neither, or not after now;
 * the message says what was wrong (callers prefix the field's name).
 */
enum as_code time_parse_expiry(const char *s, int64_t now, int64_t *out_ms,
                               struct as_err *err) AS_WUR;

/* Format ms-since-epoch as "2026-11-22T19:11:08.123Z" into buf (>= 32 bytes). */
void time_format_iso(int64_t ms, char *buf, size_t size);

/* Parse an RFC 3339 UTC timestamp ("...Z" or "+00:00" offsets) into ms. */
enum as_code time_parse_iso(const char *s, int64_t *out_ms) AS_WUR;

#endif
