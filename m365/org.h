/*
 * org.h - organisation-level Exchange settings: the CAS mailbox plans (the
 * protocol defaults a new mailbox gets when it is licensed) and the EWS
 * settings of the organisation config, with the pure helpers the steps,
 * the sync and the reports share.  Wire facts: docs/m365.md, section 6.
 *
 *   Get-CASMailboxPlan / Set-CASMailboxPlan -Identity <plan> -PopEnabled ...
 *   Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy
 *   Set-OrganizationConfig -EwsAllowedAppIDs "id1,id2"   (the WHOLE list)
 *
 * Calls follow m365.h (retries, deadlines, error mapping).  A change to the
 * organisation config is not visible at once (EwsAllowedAppIDs: "up to 24
 * hours"): m365_org_set_ews_allowed() only sends it; the caller re-reads
 * until the read shows it.
 */
#ifndef ASSENT_M365_ORG_H
#define ASSENT_M365_ORG_H

#include <jansson.h>

#include "base/error.h"
#include "m365/m365.h"

/* The plan properties Assent reads (and, but for the identity ones, may set), NULL-terminated. */
extern const char *const m365_plan_properties[];

/* The settings turned off to make a plan compliant: PopEnabled, ImapEnabled. */
extern const char *const m365_plan_legacy_settings[];

/*
 * Get-CASMailboxPlan -ResultSize Unlimited: cb gets each plan (annotations
 * removed; Name, DisplayName, Guid and m365_plan_properties), then NULL at
 * the page boundary.
 */
enum as_code m365_plans_list(struct m365 *m,
                             enum as_code (*cb)(const json_t *plan, void *ud, struct as_err *err),
                             void *ud, struct as_err *err) AS_WUR;

/* Get-CASMailboxPlan -Identity identity; AS_ENOTFOUND when there is no such plan.
 * *out is a new reference. */
enum as_code m365_plan_get(struct m365 *m, const char *identity, json_t **out,
                           struct as_err *err) AS_WUR;

/* Set-CASMailboxPlan -Identity identity with settings (property -> value), with
 * the re-read rule of m365_cas_set.  *warnings (may be NULL): new reference. */
enum as_code m365_plan_set(struct m365 *m, const char *identity, const json_t *settings,
                           json_t **warnings, struct as_err *err) AS_WUR;

/*
 * Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy (without the
 * switch the allow list reads empty).  *out (new reference) is the object
 * with EwsAllowedAppIDs normalized by m365_ews_ids_normalize().
 */
enum as_code m365_org_get(struct m365 *m, json_t **out, struct as_err *err) AS_WUR;

/*
 * Set-OrganizationConfig -EwsAllowedAppIDs with the whole list ids (an
 * array of application ids, borrowed) as one comma-separated string, or
 * $null when ids is empty.  Not verified here (the change propagates): a
 * failure after the request may have reached the service is AS_ETRANSIENT,
 * and repeating the same whole list is harmless.
 */
enum as_code m365_org_set_ews_allowed(struct m365 *m, const json_t *ids, json_t **warnings,
                                      struct as_err *err) AS_WUR;

/* Nonzero when s is an application (client) id: a GUID, 8-4-4-4-12 hex digits. */
int m365_app_id_valid(const char *s);

/*
 * The allow list as Exchange gives it (an array whose elements may each be a
 * comma-joined string, a string, or null) as a new array of lower-case ids,
 * sorted, without duplicates or empty elements.  Never NULL but on ENOMEM.
 */
json_t *m365_ews_ids_normalize(const json_t *value);

/* The allow list after adding add and removing remove (normalized; new array). */
json_t *m365_ews_ids_merge(const json_t *current, const json_t *add, const json_t *remove);

/* 1 when a plan has POP or IMAP on (what `legacy_on` means). */
int m365_plan_legacy_on(const json_t *plan);

/*
 * The text of the whole-list command for people:
 * "Set-OrganizationConfig -EwsAllowedAppIDs 'id1,id2'" (or $null).  malloc'd.
 */
char *m365_ews_allowlist_command(const json_t *ids);

#endif
