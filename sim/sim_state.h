/*
 * sim_state.h - the simulated tenant: directory users, their Exchange
 * mailboxes (CAS settings), 30-day email-app usage, sign-in events, the
 * org-wide transport config, registered apps and the mails sent through
 * Graph.  Held in C structures (a 100,000-user tenant must page quickly), and
 * loaded from / saved to one JSON file whose format docs/simulator.md
 * describes.  Saving writes a temporary file in the same folder and renames
 * it over the old one, so a reader sees the old or the new state, never half.
 *
 * Thread-safety: none here; sim_server.c guards a state with a rwlock.
 * Implemented in sim_state.c (model, index), sim_state_load.c (reading)
 * and sim_state_save.c (writing).
 */
#ifndef SIM_STATE_H
#define SIM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "sim/sim_util.h"

#define SIM_STATE_FORMAT "assent-tenant-sim/1"
#define SIM_CAS_MAX 32

enum sim_cas_type {
    SIM_CAS_BOOL,  /* true/false */
    SIM_CAS_NBOOL, /* true/false/null (null = follow the org or protocol default) */
    SIM_CAS_STR,   /* a string, e.g. a policy name */
};

/* One CAS mailbox property: its exact Exchange name, type and default. */
struct sim_cas_prop {
    const char *name;
    enum sim_cas_type type;
    signed char def_bool; /* -1 = null */
    const char *def_str;
};

extern const struct sim_cas_prop sim_cas_props[];
extern const size_t sim_n_cas_props;
/* Index of the property named `name` (case-insensitive, as PowerShell), or -1. */
int sim_cas_prop_find(const char *name);

/* The email-app usage report's app columns, in the report's order. */
#define SIM_N_USAGE_APPS 9
extern const char *const sim_usage_apps[SIM_N_USAGE_APPS];

struct sim_mailbox {
    char *name;              /* alias, shown as Name and Identity */
    char exchange_guid[37];
    signed char b[SIM_CAS_MAX]; /* bool props: -1 null, 0 false, 1 true */
    const char *s[SIM_CAS_MAX]; /* string props (interned, may be NULL) */
    int64_t when_changed_ms;
};

struct sim_usage {
    char last_activity[11];                 /* YYYY-MM-DD or "" */
    const char *apps[SIM_N_USAGE_APPS];     /* cell text (interned), NULL = not used */
};

struct sim_user {
    char *id, *upn, *display_name, *given_name, *surname, *mail, *mobile_phone, *business_phone;
    const char *job_title, *office_location, *preferred_language, *user_type; /* interned */
    const char **skus; /* interned sku GUIDs */
    size_t n_skus;
    int account_enabled;
    struct sim_mailbox *mbx; /* NULL: the user has no mailbox */
    struct sim_usage *usage; /* NULL: no row in the usage report */
};

struct sim_signin {
    char *id, *correlation_id, *created; /* created: the createdDateTime text */
    int64_t created_ms;
    const char *user_display_name, *upn, *user_id, *app_id, *app_display_name, *ip,
        *client_app, *ca_status, *resource_display_name, *failure_reason, *os, *browser, *city,
        *region, *country; /* interned */
    int is_interactive;
    int non_interactive_stream; /* signInEventTypes ["nonInteractiveUser"]: only the beta
                                 * endpoint with that filter lists it */
    int error_code;
};

struct sim_key {
    char *pem;          /* as given in the state (certificate or public key) */
    EVP_PKEY *pkey;
    int has_cert;
    unsigned char sha1[20], sha256[32]; /* certificate DER thumbprints */
};

struct sim_app {
    char *client_id, *display_name;
    char **secrets;
    size_t n_secrets;
    struct sim_key *keys;
    size_t n_keys;
    json_t *graph_permissions; /* Graph application permissions granted (array), NULL = all */
};

struct sim_state {
    char *tenant_id, *tenant_name, *initial_domain;
    char **domains;
    size_t n_domains;
    int premium;            /* Entra ID P1: sign-in logs available */
    int conceal_names;      /* admin/reportSettings displayConcealedNames */
    int token_lifetime_s;
    int exo_page_size;      /* Get-CASMailbox page size when no Prefer header */
    int exo_rate_limit;     /* Rate-Limit-Limit per minute */
    char report_refresh_date[11]; /* "" = the day before today */
    signed char smtp_auth_disabled_org, allow_legacy_tls;
    int64_t transport_when_changed_ms;

    struct sim_app *apps;
    size_t n_apps;
    struct sim_user *users;
    size_t n_users, cap_users;
    struct hidx by_key; /* id, upn, mail, alias, ExchangeGuid -> user index */
    struct sim_signin *signins; /* newest first */
    size_t n_signins;
    json_t *sent_mail;          /* array of stored messages (owned) */
    json_t *ca_policies;        /* Conditional Access policies, Graph's full shape (sim_ca.c) */
    json_t *groups;             /* groups with "members": [object ids] (sim_ca.c) */
    json_t *mailbox_plans;      /* CAS mailbox plans, Get-CASMailboxPlan's properties (sim_exo_org.c) */
    json_t *org_config;         /* Get-OrganizationConfig's EWS properties; "pending": a change
                                 * not visible yet, with "visible_at" (sim_exo_org.c) */
    int org_config_delay_ms;    /* how long a Set-OrganizationConfig change stays invisible */
    json_t *openid;             /* the OpenID provider's users (sim_oidc.c): {"password",
                                 * "users": {upn: {"roles": [...], "password"}}} */
    struct intern pool;
};

/* Free what user u owns (not u itself). */
void sim_user_free(struct sim_user *u);

/* Initialise an empty state with defaults (no users, no apps). */
void sim_state_init(struct sim_state *st);
void sim_state_free(struct sim_state *st);

/*
 * Load the state file at path into st (initialised here).  Returns 0, or -1
 * with a message naming the file and the JSON path of the problem in err.
 */
int sim_state_load(struct sim_state *st, const char *path, char *err, size_t err_size);

/* Build st from an already parsed document (borrowed). Same contract as load. */
int sim_state_from_json(struct sim_state *st, json_t *doc, char *err, size_t err_size);

/*
 * Write st to path atomically (temp file + rename).  Returns 0, or -1 with
 * a message in err.  Sign-ins, users and mails are streamed, not built as a
 * JSON tree, so saving a large tenant stays fast.
 */
int sim_state_save(const struct sim_state *st, const char *path, char *err, size_t err_size);

/*
 * Add a user given in the state file's shape (borrowed).  Refuses an id,
 * UPN or mail that another user already has.  0, or -1 with a message.
 */
int sim_state_add_user_json(struct sim_state *st, json_t *ju, char *err, size_t err_size);
/* Remove user idx (and re-index); 0, or -1 when idx is out of range or on OOM. */
int sim_state_remove_user(struct sim_state *st, int idx);
/* Add one sign-in event in the Graph signIn shape (borrowed); 0 or -1 with a message. */
int sim_state_add_signin_json(struct sim_state *st, json_t *js, char *err, size_t err_size);

/* (Re)build the lookup index; 0 or -1 on OOM. */
int sim_state_reindex(struct sim_state *st);

/*
 * The user an Exchange Identity or Graph {id|userPrincipalName} names:
 * index >= 0, -1 not found, HIDX_AMBIGUOUS.  Accepts id, UPN, mail, alias,
 * ExchangeGuid and "smtp:" proxy forms, case-insensitive.
 */
int sim_state_find_user(const struct sim_state *st, const char *key);

/* 1 when name is the tenant id or one of its domains (case-insensitive). */
int sim_state_tenant_matches(const struct sim_state *st, const char *name);

/* Sort sign-ins newest first (after generation or load). */
void sim_state_sort_signins(struct sim_state *st);

/* Add a key (certificate or public key PEM) to an app; 0 or -1 with err. */
int sim_app_add_key(struct sim_app *app, const char *pem, char *err, size_t err_size);

/* Write one CAS property value of mailbox m as JSON (true/false/null/"str"). */
void sim_cas_value_json(struct strbuf *b, const struct sim_mailbox *m, int prop);

/* Append sign-in s in the Graph signIn JSON shape; beta adds signInEventTypes
 * (the v1.0 resource has no such property). */
void sim_signin_json(struct strbuf *b, const struct sim_signin *s, int beta);

/* Give the state the default CAS mailbox plans and organisation config when
 * it has none (after the tenant id is known; sim_exo_org.c). */
void sim_state_org_defaults(struct sim_state *st);

/* Set a default-initialised mailbox (every CAS prop at its default). */
void sim_mailbox_defaults(struct sim_mailbox *m);

#endif
