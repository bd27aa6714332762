/*
 * sim_gen.h - a realistic synthetic tenant for the simulator: users with
 * names, GUIDs and licences, a few without a mailbox (guests, service
 * accounts), mailboxes whose CAS settings are mostly modern-only while a
 * realistic fraction keeps POP/IMAP/ActiveSync/EWS or SMTP AUTH, 30-day
 * email-app usage (some POP3/IMAP4/SMTP users), and sign-in events over the
 * last 29 days, legacy clients included with the casing variants seen in
 * the wild.  Deterministic: the same options give the same tenant, and user
 * k's draws depend only on the seed and k.
 */
#ifndef SIM_GEN_H
#define SIM_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim_state.h"

struct sim_gen_opts {
    size_t n_users;
    uint64_t seed;
    int64_t now_ms;           /* "now" of the tenant: sign-ins and usage end here */
    const char *domain;       /* e.g. contoso.com */
    const char *app_id;       /* NULL: derived from the seed */
    const char *app_secret;   /* NULL: derived from the seed */
    const char *app_cert_pem; /* NULL: no certificate registered */
};

/* Fill st (initialised here) with a generated tenant.  0, or -1 with a message. */
int sim_gen_build(struct sim_state *st, const struct sim_gen_opts *o, char *err, size_t err_size);

#endif
