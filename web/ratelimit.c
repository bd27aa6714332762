/* ratelimit.c - failures per client address in a fixed window (see ratelimit.h). */
#include "web/ratelimit.h"

#include "base/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDR_MAX 64

struct rl_slot {
    char addr[ADDR_MAX]; /* "" = free */
    int64_t window_start;
    int failures;
};

struct ratelimit {
    pthread_mutex_t lock;
    int max_failures;
    int64_t window_ms;
    struct rl_slot slots[RATELIMIT_SLOTS];
    struct rl_slot overflow; /* clients that found all their slots blocked */
    const struct netaddr_list *exempt;
};

struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms,
                                const struct netaddr_list *exempt)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->exempt = exempt;
    pthread_mutex_init(&rl->lock, NULL);
    rl->max_failures = max_failures > 0 ? max_failures : 1;
    rl->window_ms = window_ms > 0 ? window_ms : 1;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static uint32_t hash_addr(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void ratelimit_key(const char *addr, char *out, size_t size)
{
    struct in6_addr a6;
    char buf[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, addr, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6) && inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof buf)) {
            snprintf(out, size, "%s", buf);
            return;
        }
        memset(&a6.s6_addr[8], 0, 8);
        if (inet_ntop(AF_INET6, &a6, buf, sizeof buf)) {
            snprintf(out, size, "%s/64", buf);
            return;
        }
    }
    snprintf(out, size, "%s", addr);
}

static int blocked_at(const struct ratelimit *rl, const struct rl_slot *s, int64_t now)
{
    return now - s->window_start < rl->window_ms && s->failures >= rl->max_failures;
}

/*
 * The slot of key: its own among the RATELIMIT_PROBES slots from its hash,
 * else (create) the first free or stale one, else the unblocked one with
 * the fewest failures (oldest window on ties), else the shared overflow
 * slot.  Without create, NULL when it has none: an untracked client is
 * judged by the overflow slot.
 */
static struct rl_slot *find(struct ratelimit *rl, const char *key, int create, int64_t now)
{
    uint32_t h = hash_addr(key) % RATELIMIT_SLOTS;
    struct rl_slot *free_slot = NULL, *victim = NULL;
    for (uint32_t i = 0; i < RATELIMIT_PROBES; i++) {
        struct rl_slot *s = &rl->slots[(h + i) % RATELIMIT_SLOTS];
        if (s->addr[0] && strcmp(s->addr, key) == 0)
            return s;
        if (!free_slot && (!s->addr[0] || now - s->window_start >= rl->window_ms))
            free_slot = s;
        if (blocked_at(rl, s, now))
            continue;
        if (!victim || s->failures < victim->failures ||
            (s->failures == victim->failures && s->window_start < victim->window_start))
            victim = s;
    }
    if (!create)
        return NULL;
    if (free_slot)
        victim = free_slot;
    if (!victim)
        return &rl->overflow;
    snprintf(victim->addr, sizeof victim->addr, "%s", key);
    victim->window_start = now;
    victim->failures = 0;
    return victim;
}

int ratelimit_blocked(struct ratelimit *rl, const char *addr, int64_t now_ms, int *retry_after_s)
{
    char key[ADDR_MAX];
    if (netaddr_list_match(rl->exempt, addr))
        return 0;
    ratelimit_key(addr, key, sizeof key);
    int blocked = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_slot *s = find(rl, key, 0, now_ms);
    if (!s)
        s = &rl->overflow;
    if (blocked_at(rl, s, now_ms)) {
        blocked = 1;
        if (retry_after_s)
            *retry_after_s = (int)((s->window_start + rl->window_ms - now_ms + 999) / 1000);
    }
    pthread_mutex_unlock(&rl->lock);
    return blocked;
}

void ratelimit_fail(struct ratelimit *rl, const char *addr, int64_t now_ms)
{
    char key[ADDR_MAX];
    if (netaddr_list_match(rl->exempt, addr))
        return;
    ratelimit_key(addr, key, sizeof key);
    pthread_mutex_lock(&rl->lock);
    struct rl_slot *s = find(rl, key, 1, now_ms);
    if (now_ms - s->window_start >= rl->window_ms) {
        s->window_start = now_ms;
        s->failures = 0;
    }
    s->failures++;
    pthread_mutex_unlock(&rl->lock);
}
