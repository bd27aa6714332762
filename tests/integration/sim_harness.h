/*
 * sim_harness.h - start and stop the real tenant simulator (assent-tenant-sim)
 * from a test: a temporary folder with a generated tenant, a free port, the
 * app's secret in a 0600 file, and the values a client needs
 * (ASSENT_LOGIN_URL/GRAPH_URL/EXCHANGE_URL = url, tenant and client ids).
 *
 * The binary is $ASSENT_SIM_BIN, else $ASSENT_BUILD_DIR/sim/assent-tenant-sim.
 * Any test program may compile this file in (it needs testutil and jansson).
 */
#ifndef ASSENT_SIM_HARNESS_H
#define ASSENT_SIM_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct sim_harness {
    char *dir;         /* temporary folder (removed by stop) */
    char *state_path;  /* dir/tenant.json */
    char *secret_path; /* dir/client_secret, mode 0600 */
    char *log_path;    /* dir/sim.log: the simulator's stdout and stderr */
    pid_t pid;
    int port;
    char url[64];       /* http://127.0.0.1:PORT */
    char tenant_id[64];
    char client_id[64];
    char initial_domain[128];
    char secret[128];
};

/* Path of the simulator binary (static). */
const char *sim_harness_bin(void);

/*
 * Generate a tenant of n_users (seed) and start the simulator on it.
 * extra_args: more command-line flags (NULL-terminated, may be NULL), e.g.
 * {"--fault", "429,count=1", NULL}.  Returns 0, or -1 (with a message on
 * stderr and the log kept) on failure.
 */
int sim_harness_start(struct sim_harness *h, size_t n_users, uint64_t seed,
                      char *const extra_args[]);

/* Start on a given state file (copied into the harness folder). */
int sim_harness_start_state(struct sim_harness *h, const char *state_text,
                            char *const extra_args[]);

/* The current state file, parsed (caller json_decref's), or NULL. */
json_t *sim_harness_state(const struct sim_harness *h);

/* Stop with SIGTERM; returns the exit code (0 = clean, leak-free under ASan) and frees h. */
int sim_harness_stop(struct sim_harness *h);

/* An access token for "graph" or "exo" (malloc'd), or NULL. */
char *sim_harness_token(const struct sim_harness *h, const char *which);

#endif
