/*
 * ratelimit.h - counts failed attempts (unknown link tokens, forged CSRF
 * tokens, wrong admin tokens) per client address in a fixed window, so
 * nobody can enumerate tokens: after `max_failures` failures within
 * `window_ms` an address gets 429 until the window ends.
 *
 * Memory is bounded: at most RATELIMIT_SLOTS addresses are tracked; when the
 * table is full the entry whose window is oldest is reused (an attacker
 * spraying from many addresses can push out entries, but each address still
 * gets at most max_failures tries per window while it stays in the table).
 *
 * Thread-safe (one mutex).
 */
#ifndef ASSENT_WEB_RATELIMIT_H
#define ASSENT_WEB_RATELIMIT_H

#include <stdint.h>

#define RATELIMIT_SLOTS 4096

struct ratelimit;

/* NULL on allocation failure. */
struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms);
void ratelimit_free(struct ratelimit *rl);

/* 1 when addr has used up its failures in the current window at now_ms;
 * *retry_after_s then receives the seconds until the window ends. */
int ratelimit_blocked(struct ratelimit *rl, const char *addr, int64_t now_ms, int *retry_after_s);

/* Record one failure of addr at now_ms. */
void ratelimit_fail(struct ratelimit *rl, const char *addr, int64_t now_ms);

#endif
