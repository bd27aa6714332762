/*
 * cron.h - five-field cron schedules in an IANA time zone.
 *
 *   minute hour day-of-month month day-of-week      e.g. "30 7 * * mon-fri"
 *
 * Each field is a list of items separated by commas; an item is `*`, a
 * value, a range `a-b`, optionally followed by a step `/n` (`*` + step or
 * `a-b/n`; `a/n` means a up to the field's maximum).  Months accept
 * jan..dec, days of week sun..sat (0 and 7 are both Sunday), case-
 * insensitive.  Macros: @yearly (@annually), @monthly, @weekly, @daily
 * (@midnight), @hourly.  As in Vixie cron, when both day-of-month and
 * day-of-week are restricted (neither starts with `*`) a day matches if
 * EITHER matches; otherwise both must.
 *
 * Time zones and daylight saving time (docs/kpis.md has examples): the
 * schedule is in the zone's wall-clock time.
 *  - A wall-clock time that does not exist (skipped when clocks go forward,
 *    e.g. 02:30 in Europe/Berlin on the last Sunday of March) fires once,
 *    at the instant the clocks jump (03:00 local).
 *  - A wall-clock time that occurs twice (when clocks go back) fires once,
 *    at its first occurrence, unless the hour field is `*`: such schedules
 *    are interval-like ("every 15 minutes") and keep firing through both
 *    occurrences, so they never pause for an hour.
 *
 * A parsed struct cron is a plain value; it may be copied and shared.
 */
#ifndef ASSENT_CRON_H
#define ASSENT_CRON_H

#include <stdint.h>

#include "base/error.h"

struct tz_zone;

struct cron {
    uint64_t minutes; /* bit n: minute n (0..59) */
    uint32_t hours;   /* bit n: hour n (0..23) */
    uint32_t mdays;   /* bit n: day n (1..31) */
    uint16_t months;  /* bit n: month n (1..12) */
    uint8_t wdays;    /* bit n: weekday n (0 = Sunday .. 6) */
    unsigned dom_star : 1, dow_star : 1, hour_star : 1;
};

/*
 * Parse a five-field spec or a macro.  On error returns AS_EINVAL with a
 * message naming the field and the offending text, e.g.
 * "cron \"61 * * * *\": minute: 61 is out of range 0-59".  Specs that can
 * never fire (e.g. "0 0 30 2 *") are refused too.
 */
enum as_code cron_parse(const char *spec, struct cron *out, struct as_err *err) AS_WUR;

/*
 * The first instant strictly after after_ms (ms since the epoch, UTC) at
 * which the schedule fires in `zone`, into *next_ms (whole minutes).
 * AS_ENOTFOUND if it does not fire within ten years.  Thread-safe.
 */
enum as_code cron_next(const struct cron *c, const struct tz_zone *zone, int64_t after_ms,
                       int64_t *next_ms, struct as_err *err) AS_WUR;

/*
 * Convenience: parse `spec`, load zone `tz` (NULL or "" = "UTC") and
 * compute the next fire time after after_ms.  Errors as above and as
 * tz_load().
 */
enum as_code cron_next_spec(const char *spec, const char *tz, int64_t after_ms, int64_t *next_ms,
                            struct as_err *err) AS_WUR;

#endif
