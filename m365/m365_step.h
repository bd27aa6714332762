/*
 * m365_step.h - what the Microsoft 365 step types (manage_cas,
 * manage_transport, cas_lookup, graph_users) share: taking the worker
 * thread's client with the step's deadline, and turning client errors into
 * step results (transient -> STEP_RETRY at the time the service asked for,
 * everything else -> STEP_FAILED with the service's message).
 */
#ifndef ASSENT_M365_STEP_H
#define ASSENT_M365_STEP_H

#include <jansson.h>

#include "m365/m365.h"
#include "engine/step.h"

/*
 * The calling thread's client (m365_thread_get) with a deadline a little
 * inside ctx->timeout_ms.  On failure fills res (STEP_FAILED: configuration)
 * and returns NULL.
 */
struct m365 *m365_step_client(struct step_ctx *ctx, struct step_result *res);

/* Fill res for a failed client call: what + err's message. */
void m365_step_error(struct step_ctx *ctx, struct step_result *res, struct m365 *m,
                     enum as_code rc, const char *what, const struct as_err *err);

/* A JSON path of key under base ("$.a.settings" + "PopEnabled"). */
void m365_step_path(char *out, size_t size, const char *base, const char *key);

/* Copy of obj with only the keys in names (NULL-terminated), new reference. */
json_t *m365_step_pick(const json_t *obj, const char *const *names);

/*
 * The shared body of manage_cas and manage_transport: read the object, check
 * the approval hash and the expected state, apply only what differs (so a
 * retry is a no-op), re-read to verify, and output
 * {"identity","before","after","changed","dry_run","command"}.  With
 * honour_exceptions the exceptions in force are read again just before the
 * write: a setting that would turn off a protocol the user is exempt from now
 * is left out (not even re-sent at its current value), listed in the output's
 * "skipped_exempt" (protocol names) and logged as an "m365.skipped_exempt"
 * event; when nothing is left the step succeeds with "changed": [] and
 * writes nothing.  The approved hash is checked over the settings as given,
 * so it still guards against anything added to them.  In a dry run
 * nothing is written: the output and an "m365.dry_run" event hold the exact
 * cmdlet and parameters that would be sent.
 */
struct m365_apply {
    const char *set_cmdlet;       /* "Set-CASMailbox" / "Set-TransportConfig" */
    const char *identity;         /* mailbox; NULL for the organisation */
    const json_t *settings;       /* property -> value (borrowed) */
    const json_t *expect;         /* state the request was based on, or NULL */
    const char *approved_hash;    /* frozen request hash, or NULL */
    const char *const *props;     /* properties reported in before/after */
    int honour_exceptions;        /* mailbox only: leave out settings that turn off a
                                   * protocol the user is exempt from now */
    int *not_found;               /* may be NULL: set to 1 when the object does not exist
                                   * (res is then a failure naming it) */
};

void m365_step_apply(struct step_ctx *ctx, struct step_result *res, const struct m365_apply *a);

/*
 * For a step that carries out one part of a compound approved request (the
 * object an approval step was given as "request", e.g. {"settings": ...,
 * "reset": [...]}): approved_request must hash to approved_hash (the
 * approval's request_hash) and its member `key` must equal mine.  0, or -1
 * with res failed and nothing done.
 */
int m365_step_check_approved(struct step_result *res, const json_t *approved_request,
                             const char *approved_hash, const char *key, const json_t *mine);

/*
 * Check a step parameter that lists application ids (EWS allow list): an
 * array (or null) of at most 500 GUIDs.  0, or -1 with res failed naming
 * the element at fault ("add[1] = ..."; what is the parameter's name).
 * Defined in step_ews_allowlist_read.c.
 */
int m365_ews_ids_check(const json_t *ids, const char *what, struct step_result *res);

#endif
