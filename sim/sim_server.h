/*
 * sim_server.h - the simulator's HTTP server (libmicrohttpd, a thread pool):
 * request accumulation with a body cap, routing to the token, Graph and
 * Exchange handlers, fault injection, statistics, the /_sim admin endpoints,
 * and saving the state file after changes.
 */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H

#include <stdint.h>

#include "sim/sim.h"

struct sim_server;

struct sim_server_opts {
    const char *listen_host; /* numeric IPv4, e.g. 127.0.0.1 */
    int port;                /* 0 = any free port */
    int threads;             /* pool size, >= 1 */
};

/*
 * Initialise s around an already loaded state (taken over: freed by
 * sim_free).  state_path may be NULL (nothing saved); mail_dir may be NULL.
 */
void sim_init(struct sim *s, struct sim_state *st_taken, const char *state_path,
              const char *mail_dir, uint64_t fault_seed);
void sim_free(struct sim *s);

/* Start listening; *port_out gets the bound port.  0, or -1 with a message in err. */
int sim_server_start(struct sim *s, const struct sim_server_opts *o, struct sim_server **out,
                     int *port_out, char *err, size_t err_size);

/* Stop: wake sleeping handlers, stop the daemon, save any unsaved change. */
void sim_server_stop(struct sim *s, struct sim_server *srv);

#endif
