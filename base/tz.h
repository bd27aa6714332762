/*
 * tz.h - IANA time zones read from the system's TZ database (TZif files in
 * /usr/share/zoneinfo, or $TZDIR), without touching the process-wide TZ
 * variable, so any thread may ask about any zone at any time.
 *
 * Cron schedules (base/cron.h) are written in a zone's wall-clock time;
 * this module answers the two questions they need: "what is the UTC offset
 * at instant t" and "when does the offset next change after t".  Instants
 * past the last transition in the file follow the POSIX TZ rule in the
 * file's footer (TZif version 2 and later, RFC 8536), so 2100 works too.
 *
 * All instants here are in SECONDS since the Unix epoch.
 * A loaded struct tz_zone is immutable and may be shared by threads.
 */
#ifndef ASSENT_TZ_H
#define ASSENT_TZ_H

#include <stdint.h>

#include "base/error.h"

struct tz_zone;

/*
 * Load zone `name` ("Europe/Berlin", "America/New_York", "UTC").  "UTC",
 * "Etc/UTC", "GMT" and "Z" always work, even without a TZ database.  Names
 * with "..", a leading '/', or characters outside [A-Za-z0-9/_+-] are
 * refused (AS_EINVAL); an unknown zone is AS_ENOTFOUND, a malformed file
 * AS_EINVAL.  Caller frees *out with tz_free().
 */
enum as_code tz_load(const char *name, struct tz_zone **out, struct as_err *err) AS_WUR;

void tz_free(struct tz_zone *z);

/* The name the zone was loaded with (borrowed). */
const char *tz_name(const struct tz_zone *z);

/* Offset of local time from UTC at instant t, in seconds (east positive:
 * +3600 for Berlin in winter).  Never fails. */
int32_t tz_offset_at(const struct tz_zone *z, int64_t t);

/*
 * The first instant strictly after t at which the zone's offset changes,
 * into *at.  Returns 1 when there is one, 0 when the offset never changes
 * again (fixed zones).
 */
int tz_next_transition(const struct tz_zone *z, int64_t t, int64_t *at);

/* Civil-date helpers on a proleptic Gregorian calendar (exposed for cron). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
