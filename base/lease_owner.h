/*
 * lease_owner.h - who holds a claim.  Every engine process claims step
 * executions under an owner string "host/pid/start-time" (start-time: the
 * process's start in clock ticks since boot, from /proc), so that a later
 * process on the same host can tell a dead owner (or a recycled pid) from a
 * live one and take its claims over at once instead of waiting for their
 * leases to end.  Claims of other hosts are only ever judged by their lease.
 */
#ifndef ASSENT_LEASE_OWNER_H
#define ASSENT_LEASE_OWNER_H

#include <stddef.h>

/* This process's owner string into buf. */
void lease_owner_make(char *buf, size_t size);

/*
 * 1 when `owner` names a process of this host (same host part as `self`)
 * that no longer runs, or whose pid now belongs to another process; 0 when
 * it runs, belongs to another host, or cannot be judged.
 */
int lease_owner_is_dead(const char *self, const char *owner);

#endif
