/*
 * sim_faults.h - fault injection rules of the tenant simulator.
 *
 * A rule matches requests by path prefix, Exchange cmdlet, stats endpoint
 * label and/or method, and fires for the next `count` matching requests
 * (after letting `after` of them pass) or with probability `prob`, drawn
 * from a PRNG seeded by `seed` so a run is reproducible.  Rules come from a
 * JSON file, from `--fault SPEC` flags, or at run time from the admin
 * endpoint POST /_sim/faults.  Syntax: docs/simulator.md.
 *
 * Thread-safe: every function takes the set's mutex.
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/sim_util.h"

enum sim_fault_kind {
    SIM_FAULT_429,           /* 429 + Retry-After (seconds, HTTP-date or none) */
    SIM_FAULT_503,           /* 503 (+ Retry-After when given) */
    SIM_FAULT_504,           /* 504 gateway timeout */
    SIM_FAULT_500,           /* 500 internal error */
    SIM_FAULT_SLOW,          /* wait delay_ms, then answer normally */
    SIM_FAULT_EXPIRED_TOKEN, /* 401 as for an expired token, even for a valid one */
    SIM_FAULT_MALFORMED,     /* answer normally but cut the body in half */
    SIM_FAULT_DROP,          /* close the connection without an answer, nothing done */
    SIM_FAULT_NUL403,        /* 403 whose body is body_len NUL bytes (as real EXO) */
    SIM_FAULT_WRITE_TIMEOUT, /* do the request (a write is saved), then wait delay_ms */
    SIM_FAULT_N
};

struct sim_fault {
    enum sim_fault_kind kind;
    char path[160];     /* URL path prefix; "" = any */
    char cmdlet[64];    /* Exchange cmdlet (case-insensitive); "" = any */
    char endpoint[64];  /* stats label, e.g. graph.users; "" = any */
    char method[12];    /* "" = any */
    int64_t remaining;  /* fires left; -1 = unlimited */
    int64_t after;      /* matching requests to let pass first */
    double prob;        /* 0 < prob <= 1 */
    int64_t delay_ms;   /* slow / write_timeout */
    char retry_after[40]; /* 429/503: "" none, "date" HTTP-date, else seconds text */
    int64_t retry_after_s; /* used with "date" */
    int64_t body_len;   /* nul403: number of NUL bytes */
    uint64_t fired;
};

struct sim_faults {
    pthread_mutex_t lock;
    struct sim_rng rng;
    struct sim_fault *rules;
    size_t n;
};

void sim_faults_init(struct sim_faults *f, uint64_t seed);
void sim_faults_free(struct sim_faults *f);

/* Static name of a kind ("429", "slow", ...). */
const char *sim_fault_kind_name(enum sim_fault_kind k);

/*
 * Add one rule from a CLI spec "KIND,key=value,..." or "kind=KIND,key=value".
 * Returns 0, or -1 with a message in err.
 */
int sim_faults_add_spec(struct sim_faults *f, const char *spec, char *err, size_t err_size);

/*
 * Replace (replace=1) or extend the rules from JSON: {"seed":N,"faults":[rule...]},
 * a bare array of rules, or one rule object.  All-or-nothing: on error the
 * set is unchanged.  Returns 0, or -1 with a message in err.
 */
int sim_faults_set_json(struct sim_faults *f, json_t *doc, int replace, char *err,
                        size_t err_size);

/* Load a JSON fault file (added to the current rules). */
int sim_faults_load_file(struct sim_faults *f, const char *path, char *err, size_t err_size);

void sim_faults_clear(struct sim_faults *f);

/* The rules with their remaining counts, as a new JSON array. */
json_t *sim_faults_to_json(struct sim_faults *f);

/*
 * Decide whether a fault fires for this request.  Returns 1 and copies the
 * rule to *out when one fires (the first matching rule that fires), else 0.
 */
int sim_faults_pick(struct sim_faults *f, const char *method, const char *path,
                    const char *endpoint, const char *cmdlet, struct sim_fault *out);

#endif
