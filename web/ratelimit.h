/*
 * ratelimit.h - counts failed attempts (unknown link tokens, forged CSRF
 * tokens, wrong admin tokens) per client address in a fixed window, so
 * nobody can enumerate tokens: after `max_failures` failures within
 * `window_ms` an address gets 429 until the window ends.
 *
 * Clients are counted by address; IPv6 clients by their /64 prefix (one
 * host usually owns a whole /64, so counting single IPv6 addresses would
 * give it 2^64 budgets).  IPv4-mapped IPv6 addresses count as IPv4.
 *
 * Memory is bounded: at most RATELIMIT_SLOTS clients are tracked, each in
 * one of RATELIMIT_PROBES slots chosen by its hash.  A blocked client is
 * never pushed out before its window ends, however many other clients fail
 * meanwhile: a new client takes a free or stale slot, else the unblocked
 * slot with the fewest failures; when all its slots hold blocked clients,
 * its failures go to one shared overflow counter (with the same limit), so
 * a spray from many addresses blocks the untracked ones together instead of
 * freeing anyone.
 *
 * Thread-safe (one mutex).
 */
#ifndef ASSENT_WEB_RATELIMIT_H
#define ASSENT_WEB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_PROBES 16

struct ratelimit;

struct netaddr_list;

/* NULL on allocation failure.  Addresses in exempt (borrowed, may be NULL:
 * the trusted reverse proxies) are never counted nor blocked: a proxy
 * speaks for many clients. */
struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms,
                                const struct netaddr_list *exempt);
void ratelimit_free(struct ratelimit *rl);

/* 1 when addr (its /64 for IPv6) has used up its failures in the current
 * window at now_ms; *retry_after_s then receives the seconds until the
 * window ends. */
int ratelimit_blocked(struct ratelimit *rl, const char *addr, int64_t now_ms, int *retry_after_s);

/* Record one failure of addr at now_ms. */
void ratelimit_fail(struct ratelimit *rl, const char *addr, int64_t now_ms);

/* The key addr is counted under into out (size >= 64): IPv4 as it is, IPv6
 * as "<prefix>::/64", anything else (not an address) as it is, cut to fit.
 * Exposed for tests. */
void ratelimit_key(const char *addr, char *out, size_t size);

#endif
