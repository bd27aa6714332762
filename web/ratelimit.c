/* ratelimit.c - failures per client address in a fixed window (see ratelimit.h). */
#include "web/ratelimit.h"

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
};

struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms)
{
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
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

/* The slot of addr, or NULL.  Probes 16 slots from the address's hash; a
 * new entry takes the first free or stale slot, else the one whose window
 * is oldest. */
static struct rl_slot *find(struct ratelimit *rl, const char *addr, int create, int64_t now)
{
    uint32_t h = hash_addr(addr) % RATELIMIT_SLOTS;
    struct rl_slot *free_slot = NULL, *oldest = NULL;
    for (uint32_t i = 0; i < 16; i++) {
        struct rl_slot *s = &rl->slots[(h + i) % RATELIMIT_SLOTS];
        if (s->addr[0] && strcmp(s->addr, addr) == 0)
            return s;
        if (!free_slot && (!s->addr[0] || now - s->window_start >= rl->window_ms))
            free_slot = s;
        if (!oldest || s->window_start < oldest->window_start)
            oldest = s;
    }
    if (!create)
        return NULL;
    struct rl_slot *victim = free_slot ? free_slot : oldest;
    snprintf(victim->addr, sizeof victim->addr, "%s", addr);
    victim->window_start = now;
    victim->failures = 0;
    return victim;
}

int ratelimit_blocked(struct ratelimit *rl, const char *addr, int64_t now_ms, int *retry_after_s)
{
    int blocked = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_slot *s = find(rl, addr, 0, now_ms);
    if (s && now_ms - s->window_start < rl->window_ms && s->failures >= rl->max_failures) {
        blocked = 1;
        if (retry_after_s)
            *retry_after_s = (int)((s->window_start + rl->window_ms - now_ms + 999) / 1000);
    }
    pthread_mutex_unlock(&rl->lock);
    return blocked;
}

void ratelimit_fail(struct ratelimit *rl, const char *addr, int64_t now_ms)
{
    pthread_mutex_lock(&rl->lock);
    struct rl_slot *s = find(rl, addr, 1, now_ms);
    if (now_ms - s->window_start >= rl->window_ms) {
        s->window_start = now_ms;
        s->failures = 0;
    }
    s->failures++;
    pthread_mutex_unlock(&rl->lock);
}
