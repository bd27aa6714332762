/*
 * sim.h - the tenant simulator's shared context: the running simulator
 * (struct sim: state + lock, tokens, faults, stats), one HTTP request as the
 * handlers see it (struct sim_req) and the response they build (struct
 * sim_resp).  sim_server.c owns the HTTP plumbing (libmicrohttpd) and the
 * routing; sim_token.c, sim_graph.c and sim_exo.c implement the endpoints.
 *
 * Locking: `lock` (a rwlock) guards `st`.  Handlers that only read take it
 * shared; Set-* cmdlets, sendMail and PATCH take it exclusive, bump `gen`,
 * release it, then call sim_persist() so the state file holds the change
 * before the response goes out.
 */
#ifndef SIM_H
#define SIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/sim_faults.h"
#include "sim/sim_state.h"
#include "sim/sim_util.h"

#define SIM_MAX_BODY (4u * 1024u * 1024u) /* request body cap */
#define SIM_MAX_TOKENS 1024
#define SIM_MAX_DOWNLOADS 64
#define SIM_MAX_CODES 64
#define SIM_OIDC_TEST_PASSWORD "Assent-test-1" /* sign-in password when the state names none */

enum sim_resource {
    SIM_RES_NONE = 0,
    SIM_RES_GRAPH = 1, /* https://graph.microsoft.com */
    SIM_RES_EXO = 2,   /* https://outlook.office365.com */
};

struct sim_token {
    char value[64];
    char client_id[64];
    enum sim_resource res;
    int64_t expires_ms;
};

struct sim_download {
    char value[48];
    int64_t expires_ms;
    int period_days;
};

/* An authorization code of the OpenID provider (sim_oidc.c). */
struct sim_code {
    char value[64];
    char client_id[64];
    char redirect_uri[512];
    char nonce[160];
    char challenge[64]; /* PKCE S256; "" when none was sent */
    char user_id[64];
    int64_t expires_ms;
    int used;
};

struct sim {
    struct sim_state st;
    pthread_rwlock_t lock;
    char *state_path; /* NULL: nothing is saved */
    char *mail_dir;   /* NULL: sent mails only in the state */

    pthread_mutex_t save_lock;
    uint64_t gen;       /* bumped under the write lock on every change */
    uint64_t saved_gen; /* guarded by save_lock */
    uint64_t n_saves;

    int token_lifetime_override; /* > 0: overrides st.token_lifetime_s */
    pthread_mutex_t tok_lock;
    struct sim_token tokens[SIM_MAX_TOKENS];
    struct sim_download downloads[SIM_MAX_DOWNLOADS];

    struct sim_faults faults;

    pthread_mutex_t stats_lock;
    json_t *stats_requests; /* label -> count */
    json_t *stats_faults;   /* kind -> count */
    json_t *stats_status;   /* "200" -> count */
    uint64_t n_requests;

    pthread_mutex_t rl_lock; /* Exchange Rate-Limit-* bookkeeping */
    int64_t rl_window_start_ms;
    int rl_used;

    pthread_mutex_t oidc_lock; /* the OpenID provider's keys and codes (sim_oidc.c) */
    EVP_PKEY *oidc_key, *oidc_prev;
    char oidc_kid[32], oidc_prev_kid[32];
    struct sim_code codes[SIM_MAX_CODES];

    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;
    int stopping;
};

struct sim_hdr {
    char name[48];
    char value[512];
};

struct sim_resp {
    int status;
    struct strbuf body;
    char content_type[128];
    struct sim_hdr hdr[16];
    int n_hdr;
    int drop; /* close the connection without an answer */
};

struct sim_req {
    void *conn; /* struct MHD_Connection * */
    const char *method;
    const char *path; /* URL path, percent-decoded */
    const char *body;
    size_t body_len;
    char base_url[300]; /* "http://<Host header>" for absolute links */
    char request_id[37];
    const char *label; /* stats label, set by the router */
    char cmdlet[64];   /* Exchange cmdlet name when known */
};

/* A query argument (decoded), or NULL. Borrowed for the request. */
const char *sim_req_query(const struct sim_req *r, const char *key);
/* A request header, or NULL. Borrowed for the request. */
const char *sim_req_header(const struct sim_req *r, const char *name);
/* Call cb for every query argument, in order. */
void sim_req_query_each(const struct sim_req *r,
                        void (*cb)(void *ud, const char *key, const char *value), void *ud);

void sim_resp_header(struct sim_resp *o, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replace the body with text (copied) and set status and content type. */
void sim_resp_text(struct sim_resp *o, int status, const char *content_type, const char *text);
/* Graph error body {"error":{"code","message","innerError":{...}}}. */
void sim_resp_graph_error(struct sim_resp *o, const struct sim_req *r, int status,
                          const char *code, const char *message);

/* Sleep ms, returning early when the simulator stops. */
void sim_sleep_ms(struct sim *s, int64_t ms);

/*
 * Save the state file if generation `gen` (or later) is not saved yet.
 * Call with no state lock held.  Returns 0, or -1 (logged) when the write failed.
 */
int sim_persist(struct sim *s, uint64_t gen);

/* Count a request against a stats label / an injected fault. */
void sim_stats_count(struct sim *s, const char *label);
void sim_stats_fault(struct sim *s, const char *kind);

/* ---- sim_token.c ---- */
void sim_token_endpoint(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant);
/*
 * Check the request's bearer token for resource res.  Returns 0 when valid;
 * otherwise fills a 401 in o (the service's shape) and returns -1.
 */
int sim_token_check(struct sim *s, struct sim_req *r, struct sim_resp *o, enum sim_resource res);
/* Fill o with the 401 the Graph (JSON body) or Exchange (header only) service sends. */
void sim_token_unauthorized(struct sim_resp *o, struct sim_req *r, enum sim_resource res,
                            const char *message);
/* A new preauthenticated report download id (copied into out). */
void sim_download_new(struct sim *s, int period_days, char out[48]);
/* Period of a live download id, or -1 when unknown/expired. */
int sim_download_get(struct sim *s, const char *value);

/* ---- sim_graph.c ---- */
/* Opaque paging token "<kind>|pos|extra" (base64url) and its parser (0 ok, -1 malformed). */
void sim_skiptoken_make(const char *kind, int64_t pos, int64_t extra, char *out, size_t size);
int sim_skiptoken_parse(const char *tok, const char *kind, int64_t *pos, int64_t *extra);
void sim_graph_route(struct sim *s, struct sim_req *r, struct sim_resp *o);
void sim_graph_download(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *id);
/* The stats label of a Graph path (static string). */
const char *sim_graph_label(const char *method, const char *path);

/* The client id of the request's (valid) bearer token into out; 0, or -1 when none. */
int sim_token_client(struct sim *s, struct sim_req *r, char *out, size_t size);

/* ---- sim_oidc.c: the OpenID provider ---- */
/* Make the signing key (0, or -1 when libcrypto fails) / free it. */
int sim_oidc_init(struct sim *s);
void sim_oidc_free(struct sim *s);
/* Discovery ("discovery"), keys ("keys") or the authorization endpoint
 * ("authorize") of tenant; always answers (returns 1). */
int sim_oidc_route(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                   const char *what);
/* The authorization_code grant, the client already authenticated: 0 and
 * *out the ID token (malloc'd), or -1 with the AADSTS code and message. */
int sim_oidc_redeem(struct sim *s, struct sim_req *r, const char *client_id, const char *code,
                    const char *redirect_uri, const char *verifier, char **out, int *aadsts,
                    char *why, size_t why_size);
/* /_sim/openid (GET, PUT) and POST /_sim/openid/rotate_key. */
void sim_oidc_admin(struct sim *s, struct sim_req *r, struct sim_resp *o);

/* ---- sim_ca.c: Conditional Access policies and groups ---- */
/* Handle a Graph request for CA policies or groups; 1 when it was one (o filled), else 0. */
int sim_ca_route(struct sim *s, struct sim_req *r, struct sim_resp *o);
/* The stats label of such a path, or NULL. */
const char *sim_ca_label(const char *method, const char *path);
/* /_sim/conditional_access... and /_sim/apps/{client_id}/graph_permissions */
void sim_ca_admin(struct sim *s, struct sim_req *r, struct sim_resp *o);

/* ---- sim_exo.c ---- */
/* Parse the cmdlet name out of an InvokeCommand body (for labels and faults). */
void sim_exo_peek_cmdlet(const char *body, size_t len, char *out, size_t size);
void sim_exo_invoke(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant);
/* Set the CAS properties named in params (others ignored) on mailbox m, as
 * Set-CASMailbox does; 1 when something changed (WhenChanged moves). The
 * caller holds the state's write lock. */
int sim_mailbox_apply(struct sim_state *st, struct sim_mailbox *m, const json_t *params);
/* Set the organisation's transport settings (-1 leaves one as it is), as
 * Set-TransportConfig does; 1 when something changed.  Write lock held. */
int sim_transport_apply(struct sim_state *st, int smtp_disabled, int allow_legacy_tls);

/* ---- sim_exo_org.c: CAS mailbox plans and the organisation config ---- */
/* Set the plan properties named in params on plan (others ignored); 1 when
 * something changed (WhenChanged moves).  Write lock held. */
int sim_plan_apply(json_t *plan, const json_t *params);
/* Set organisation config properties (already checked): visible after
 * delay_ms (0: at once), as Set-OrganizationConfig does; 1 when the
 * effective value changes.  Write lock held. */
int sim_org_apply(struct sim_state *st, const json_t *changes, int64_t delay_ms);
/* /_sim/organization_config and /_sim/mailbox_plans[/{identity}] */
void sim_org_admin(struct sim *s, struct sim_req *r, struct sim_resp *o);

#endif
