/*
 * m365.h - Assent's client for Microsoft 365: app-only tokens from the
 * identity platform, Microsoft Graph, and the Exchange Online admin API
 * (InvokeCommand).  Wire formats: docs/m365.md and the M365 API reference.
 *
 * One struct m365 per thread: it owns one libcurl easy handle (connections
 * are kept alive between calls), the token cache (one token for Graph, one
 * for Exchange, each reused until shortly before it expires and refreshed
 * once on a 401), and retry state.  Steps take the calling thread's client
 * with m365_thread_get().
 *
 * Every call:
 *  - retries 429/503/504 honouring Retry-After (seconds, decimal seconds or
 *    an HTTP-date; clamped to m365_backoff_max_ms), other transient failures
 *    (connection refused or dropped, timeouts, 500/502, malformed bodies of a
 *    read) with exponential backoff and jitter (m365_backoff_initial_ms
 *    doubling up to m365_backoff_max_ms), at most m365_max_attempts times;
 *  - never sleeps past the deadline set by m365_set_deadline(): it returns
 *    AS_ETRANSIENT instead, with m365_retry_hint_ms() saying when to try again;
 *  - maps failures to a message carrying the HTTP status, the service's
 *    error code and its request id; codes: AS_EAUTH (401/403, token refused),
 *    AS_ENOTFOUND (404, unknown mailbox), AS_EPERMANENT (other 4xx, bad
 *    bodies), AS_ETRANSIENT (retries exhausted), AS_EUNSUPPORTED (sign-in
 *    logs without an Entra ID P1 licence), AS_EINVAL (configuration).
 *
 * Writes (Set-CASMailbox, Set-TransportConfig) that fail after the request
 * may have reached the service (timeout, dropped connection, 5xx) are never
 * blindly repeated: the client re-reads the object and repeats the write only
 * when the re-read shows it did not take effect.
 *
 * Secrets (client secret, private key, access tokens) are never logged and
 * never appear in error messages.
 */
#ifndef ASSENT_M365_H
#define ASSENT_M365_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct config;
struct m365;

/* Counters for progress lines, summaries and tests. */
struct m365_stats {
    long requests;            /* HTTP requests sent (all services, tokens included) */
    long token_requests;      /* token endpoint requests */
    long retries;             /* attempts repeated after a transient failure */
    long retry_after_honoured;/* waits that came from a Retry-After header */
    long long last_retry_after_ms; /* the last Retry-After parsed (before clamping), -1 = none */
    long write_rereads;       /* ambiguous writes resolved by re-reading */
    long long bytes_received;
};

/*
 * A new client configured from cfg (tenant_id, client_id, credentials, the
 * three service roots, timeouts and retry settings).  Credentials: a
 * certificate (client_cert_file + client_key_file, recommended) or a client
 * secret (client_secret_file, or client_secret in the configuration file).
 * Key and secret files readable by group or others are refused here.
 * cfg is borrowed and must outlive the client.  Free with m365_free().
 */
enum as_code m365_new(const struct config *cfg, struct m365 **out, struct as_err *err) AS_WUR;
void m365_free(struct m365 *m);

/*
 * The calling thread's client for cfg, created on first use and freed when
 * the thread exits (or by m365_thread_release()).  If cfg differs from the
 * one the thread's client was made with, a new client replaces it.
 * *out is borrowed: valid on this thread until the next m365_thread_get()
 * with another cfg or m365_thread_release().
 */
enum as_code m365_thread_get(const struct config *cfg, struct m365 **out, struct as_err *err) AS_WUR;
void m365_thread_release(void);

/*
 * Absolute deadline (time_mono_ms() clock) for the calls that follow; 0 = no
 * deadline.  A call never starts a wait or a request that would end past it.
 */
void m365_set_deadline(struct m365 *m, int64_t deadline_mono_ms);

/*
 * In a worker (on = 1): a wait before another attempt (Retry-After,
 * backoff) is not slept through; the call returns AS_ETRANSIENT at once and
 * m365_retry_hint_ms() says when, so the step is retried durably by the
 * engine at that time and no worker thread sleeps.  The M365 step types and
 * the Graph mail transport set it; `assent sync` does not.
 */
void m365_set_durable_retry(struct m365 *m, int on);

/* After AS_ETRANSIENT: the wait (ms) the service asked for or backoff suggests. */
int64_t m365_retry_hint_ms(const struct m365 *m);

void m365_get_stats(const struct m365 *m, struct m365_stats *out);

/*
 * Item callbacks: return AS_OK to go on; any other code stops the listing
 * and is returned by the listing function (the callback fills err).  After
 * the items of each page the callback is called once with item == NULL: a
 * page boundary, when no request is in flight (a good moment to write what
 * was collected without holding a transaction across the next request).
 */

/*
 * Graph GET of `path` ("/v1.0/..." appended to graph_url, or an absolute URL
 * under graph_url), following @odata.nextLink, calling cb for each element
 * of "value".  extra_header (e.g. "ConsistencyLevel: eventual") may be NULL.
 */
enum as_code m365_graph_list(struct m365 *m, const char *path, const char *extra_header,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, struct as_err *err) AS_WUR;

/* Graph GET of one resource; *out is a new reference. */
enum as_code m365_graph_get(struct m365 *m, const char *path, json_t **out,
                            struct as_err *err) AS_WUR;

/*
 * Users: GET /v1.0/users?$select=id,userPrincipalName,displayName,mail,
 * accountEnabled,assignedLicenses&$top=999, every page.  filter (OData
 * $filter, may be NULL) is URL-encoded; with a filter the request carries
 * ConsistencyLevel: eventual and $count=true (needed for advanced queries).
 */
enum as_code m365_users_list(struct m365 *m, const char *filter,
                             enum as_code (*cb)(const json_t *user, void *ud, struct as_err *err),
                             void *ud, struct as_err *err) AS_WUR;

/* The number of users: GET /v1.0/users?$count=true&$top=1 with ConsistencyLevel:
 * eventual, reading @odata.count.  *out = -1 when the answer has none. */
enum as_code m365_users_count(struct m365 *m, long long *out, struct as_err *err) AS_WUR;

/*
 * Exchange: POST {exchange_url}/adminapi/beta/{tenant}/InvokeCommand with
 * {"CmdletInput":{"CmdletName":cmdlet,"Parameters":parameters}}, re-POSTing
 * the same body to @odata.nextLink until it is absent.  select (comma list,
 * may be NULL) becomes $select.  cb gets each element of "value" with every
 * key containing '@' (type annotations) removed.  warnings (may be NULL)
 * receives a new reference to the @adminapi.warnings array.  A write cmdlet
 * must not use this function directly: use m365_cas_set/m365_transport_set.
 */
enum as_code m365_exo_invoke(struct m365 *m, const char *cmdlet, const json_t *parameters,
                             const char *select,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, json_t **warnings, struct as_err *err) AS_WUR;

/* The CAS mailbox properties Assent reads and may set, NULL-terminated. */
extern const char *const m365_cas_properties[];

/* Nonzero when name is one of m365_cas_properties (exact case). */
int m365_cas_property_known(const char *name);

/* Get-CASMailbox -Identity identity (with $select of m365_cas_properties).
 * *out is a new reference.  AS_ENOTFOUND when there is no such mailbox. */
enum as_code m365_cas_get(struct m365 *m, const char *identity, json_t **out,
                          struct as_err *err) AS_WUR;

/* Get-CASMailbox -ResultSize Unlimited, every page. */
enum as_code m365_cas_list(struct m365 *m,
                           enum as_code (*cb)(const json_t *mbx, void *ud, struct as_err *err),
                           void *ud, struct as_err *err) AS_WUR;

/*
 * Set-CASMailbox -Identity identity with settings (object of property ->
 * true/false/null).  On an ambiguous failure the mailbox is re-read and the
 * write repeated only if the settings are not in place.  *warnings (may be
 * NULL) gets the service's warnings (new reference).
 */
enum as_code m365_cas_set(struct m365 *m, const char *identity, const json_t *settings,
                          json_t **warnings, struct as_err *err) AS_WUR;

/* Get-TransportConfig: the org-wide object (SmtpClientAuthenticationDisabled,
 * AllowLegacyTLSClients, ...).  *out is a new reference. */
enum as_code m365_transport_get(struct m365 *m, json_t **out, struct as_err *err) AS_WUR;

/* Set-TransportConfig with settings; the same re-read rule as m365_cas_set. */
enum as_code m365_transport_set(struct m365 *m, const json_t *settings, json_t **warnings,
                                struct as_err *err) AS_WUR;

/* The settings Set-TransportConfig may change through Assent, NULL-terminated. */
extern const char *const m365_transport_properties[];

/* One row of the email-app usage report. */
struct m365_usage_row {
    const char *upn;           /* "User Principal Name" */
    const char *display_name;
    const char *last_activity; /* "Last Activity Date", may be "" */
    const char *refresh_date;  /* "Report Refresh Date" */
    int pop3, imap4, smtp;     /* non-empty POP3 App / IMAP4 App / SMTP App cell */
    int is_deleted;
};

/*
 * GET /v1.0/reports/getEmailAppUsageUserDetail(period='<period>') (D7, D30,
 * D90, D180): the 302 is followed by hand to the pre-authenticated download
 * URL WITHOUT the Authorization header; the CSV (UTF-8 BOM) is parsed with
 * libcsv as it streams in, and cb called per row.  When user names are
 * concealed (a UPN without '@') the call stops with AS_EPERMANENT and a
 * message saying how to turn concealment off; *concealed is then set
 * (concealed may be NULL).
 */
enum as_code m365_usage_report(struct m365 *m, const char *period,
                               enum as_code (*cb)(const struct m365_usage_row *row, void *ud,
                                                  struct as_err *err),
                               void *ud, int *concealed, struct as_err *err) AS_WUR;

/* GET /v1.0/admin/reportSettings -> displayConcealedNames (0/1). */
enum as_code m365_report_settings(struct m365 *m, int *concealed, struct as_err *err) AS_WUR;

/* The message telling an admin how to turn report name concealment off. */
extern const char m365_concealed_help[];

/*
 * Sign-in events since since_ms (createdDateTime ge) whose clientAppUsed is a
 * legacy client, interactive (v1.0) then non-interactive (beta, whose items
 * carry signInEventTypes): the server-side $filter names the documented legacy values
 * (or only client_app when given), and each event is checked again here,
 * case-insensitively.  Without an Entra ID P1 licence the service answers
 * 403 and this returns AS_EUNSUPPORTED with a message naming what is missing.
 */
enum as_code m365_signins_legacy(struct m365 *m, int64_t since_ms, const char *client_app,
                                 enum as_code (*cb)(const json_t *signin, void *ud,
                                                    struct as_err *err),
                                 void *ud, struct as_err *err) AS_WUR;

/* Nonzero when a clientAppUsed value is a legacy-authentication client
 * (anything but Browser and Mobile Apps and Desktop clients; case-insensitive). */
int m365_client_app_is_legacy(const char *client_app);

/* The documented legacy clientAppUsed values, NULL-terminated. */
extern const char *const m365_legacy_client_apps[];

/*
 * POST /v1.0/users/{sender_upn}/sendMail with {"message": message,
 * "saveToSentItems": save_to_sent}.  message is a Graph message object
 * (subject, body, toRecipients, ...; borrowed).  202 Accepted is success
 * (accepted, not delivered).  Not retried after an ambiguous failure (a
 * repeated send is a duplicate mail): AS_ETRANSIENT then, and the caller
 * decides.  429/503 (not accepted) are retried.
 */
enum as_code m365_send_mail(struct m365 *m, const char *sender_upn, const json_t *message,
                            int save_to_sent, struct as_err *err) AS_WUR;

/* SHA-256 hex of a request in the approval step's canonical form (compact
 * JSON, keys sorted): the "request_hash" an approval of `request` outputs. */
enum as_code m365_request_hash(const json_t *request, char out[65], struct as_err *err) AS_WUR;

/*
 * Hash of a manage_cas request as an approval freezes it: SHA-256 (lower-case
 * hex) of the canonical JSON {"identity":identity,"settings":settings}
 * (sorted keys, compact, jansson's encoding).  out must hold 65 bytes.
 */
enum as_code m365_cas_request_hash(const char *identity, const json_t *settings, char out[65],
                                   struct as_err *err) AS_WUR;

/*
 * The PowerShell command for a cmdlet and its parameters, e.g.
 * "Set-CASMailbox -Identity 'o''brien@x' -PopEnabled $false".  Strings are
 * single-quoted with quotes doubled; booleans $true/$false; null $null.
 * Identity comes first, the rest in sorted order.  malloc'd; NULL on ENOMEM.
 */
char *m365_powershell_command(const char *cmdlet, const json_t *parameters);

/* Single-quote s for PowerShell into a malloc'd string. */
char *m365_ps_quote(const char *s);

#endif
