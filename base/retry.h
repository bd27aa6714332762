/*
 * retry.h - when to try again.  One parser of the Retry-After header and one
 * jitter source for every client that retries: the http step
 * (steps/http_client.c), the Microsoft 365 client (m365/m365.c) and the
 * executor's step retries (engine/engine_worker.c).
 */
#ifndef ASSENT_RETRY_H
#define ASSENT_RETRY_H

#include <stdint.h>

/*
 * The delay a Retry-After value asks for, in ms from now_ms (ms since the
 * epoch): delay-seconds (RFC 9110 10.2.3; a fraction such as "0.25" is
 * accepted too, as some Microsoft Graph documentation shows) or an
 * HTTP-date (a date in the past is 0).  Surrounding blanks are ignored.
 * -1 when v is NULL, empty or neither form.  Never negative otherwise; a
 * huge delay saturates at RETRY_AFTER_SATURATE_MS: callers clamp to their
 * own maximum.
 */
#define RETRY_AFTER_SATURATE_MS (1000000000LL * 1000)
int64_t retry_after_parse(const char *v, int64_t now_ms);

/*
 * A uniformly distributed number in [0, 1) to spread retries (not for
 * security): a per-thread xorshift64* seeded from the kernel's random
 * source on first use.
 */
double retry_jitter(void);

/*
 * Exponential backoff before retry number `attempt` (1 = the first):
 * base_ms * factor^(attempt-1), capped at max_ms, with "full jitter" (a
 * uniform delay in [1, cap]).  A factor <= 0 counts as 1.
 */
int64_t retry_backoff_full(int64_t base_ms, double factor, int attempt, int64_t max_ms);

/* The same with "equal jitter": half the capped delay plus a uniform [0, half]. */
int64_t retry_backoff_equal(int64_t base_ms, double factor, int attempt, int64_t max_ms);

#endif
