/*
 * m365_internal.h - what m365.c (transport: tokens, HTTP, retries, error
 * mapping) shares with m365_calls.c (the Graph and Exchange calls).  Not for
 * use outside steps/m365*.c.
 */
#ifndef ASSENT_M365_INTERNAL_H
#define ASSENT_M365_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "m365/m365.h"
#include "m365/m365_jwt.h"

enum m365_svc { M365_SVC_NONE, M365_SVC_GRAPH, M365_SVC_EXO, M365_SVC_N };

struct m365_token {
    char *access;          /* wiped on free */
    int64_t refresh_at_ms; /* time_mono_ms() after which a new token is fetched */
};

struct m365 {
    const struct config *cfg;
    char *tenant, *client_id;
    char *login_url, *graph_url, *exo_url; /* without trailing '/' */
    char graph_scope[160], exo_scope[160];
    char *secret;                          /* client secret, or NULL (wiped on free) */
    struct m365_cert *cert;                /* or NULL */
    enum m365_jwt_alg alg;
    long connect_timeout_ms, timeout_ms;
    int max_attempts;
    int64_t backoff_initial_ms, backoff_max_ms;
    struct m365_token tok[M365_SVC_N];
    int64_t deadline_ms;                   /* time_mono_ms(); 0 = none */
    int64_t retry_hint_ms;
    int durable_retry;                     /* a wait ends the call: m365_set_durable_retry */
    struct m365_stats stats;
};

struct m365_req {
    enum m365_svc svc;        /* whose token to attach; NONE = no Authorization */
    const char *what;         /* for messages: "Graph GET /v1.0/users", "Exchange Get-CASMailbox" */
    const char *method;       /* GET, POST, PATCH */
    const char *url;
    const char *body;         /* may be NULL */
    size_t body_len;
    const char *content_type; /* for the body */
    const char *headers[6];   /* extra "Name: value" lines, NULL-terminated */
    int write;                /* not idempotent: an ambiguous failure is not retried here */
    FILE *sink;               /* write the body here instead of memory (truncated on retry) */
    size_t max_body;          /* 0 = default cap */
    int parse_json;           /* parse a 2xx body as JSON (retry a malformed one on reads) */
    int exo_errors;           /* map errors with the Exchange extraction order */
};

struct m365_resp {
    long status;
    char *body;
    size_t len, cap, max;
    FILE *sink;
    int too_big;
    int ambiguous;            /* write failed after the request may have been processed */
    int sent, unsent;         /* of the last attempt (steps/http_client.h) */
    char reason[256];         /* the transport's reason when the attempt failed */
    char request_id[96];
    char retry_after[96];
    char location[2048];
    char content_type[128];
};

/*
 * One request with the retry policy of m365.h.  On AS_OK resp holds the final
 * response (2xx or 3xx) and, with req->parse_json and a non-empty body,
 * *json a new reference (json may be NULL).  On failure err says why; for a
 * write, resp->ambiguous tells whether the service may have acted.
 * Caller frees resp with m365_resp_free() in every case.
 */
enum as_code m365_call(struct m365 *m, const struct m365_req *req, struct m365_resp *resp,
                       json_t **json, struct as_err *err) AS_WUR;

void m365_resp_free(struct m365_resp *resp);

/* base URL of a service + path, malloc'd (path starts with '/'). */
char *m365_url(const struct m365 *m, enum m365_svc svc, const char *path);

/*
 * Check that an @odata.nextLink stays on the service's host (a bearer token
 * must not follow a link elsewhere) and return it as a malloc'd URL to call.
 */
enum as_code m365_next_link(const struct m365 *m, enum m365_svc svc, const char *link,
                            char **out, struct as_err *err) AS_WUR;

/* Sleep ms honouring the deadline; AS_ETRANSIENT (hint set) when it would pass it. */
enum as_code m365_backoff_sleep(struct m365 *m, int attempt, const char *why,
                                struct as_err *err) AS_WUR;

/* URL-encode s (malloc'd via curl; free with curl_free). */
char *m365_escape(struct m365 *m, const char *s);

/*
 * The InvokeCommand call under m365_exo_invoke (m365_calls.c); write = 1
 * for a Set-* cmdlet (never retried blindly: *ambiguous (may be NULL) says
 * whether the service may have acted when it fails).
 */
enum as_code m365_exo_invoke_ex(struct m365 *m, const char *cmdlet, const json_t *parameters,
                                const char *select, int write,
                                enum as_code (*cb)(const json_t *, void *, struct as_err *),
                                void *ud, json_t **warnings, int *ambiguous, struct as_err *err);

/* Reads the object a Set-* cmdlet changes (identity may be NULL). */
typedef enum as_code (*m365_exo_reader)(struct m365 *m, const char *identity, json_t **out,
                                        struct as_err *err);

/*
 * A Set-* cmdlet with the re-read rule: when the write fails in a way that
 * leaves it unknown whether the service acted, read the object back with
 * reread and repeat the write only if the settings are not in place.
 */
enum as_code m365_exo_set_verified(struct m365 *m, const char *cmdlet, const char *identity,
                                   const json_t *settings, m365_exo_reader reread,
                                   json_t **warnings, struct as_err *err);

#endif
