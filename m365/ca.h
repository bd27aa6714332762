/*
 * ca.h - Conditional Access through Microsoft Graph v1.0: the policy and
 * group calls Assent makes (/identity/conditionalAccess/policies, /groups,
 * /groups/{id}/members/$ref), and the pure logic the `ca_plan` and
 * `ca_policy` steps and the sync share: which policies concern legacy
 * authentication, which are Microsoft-managed, the policy Assent wants, and
 * how a policy read from Graph is compared with it.
 *
 * Comparing policies.  Graph answers a policy with every property, most of
 * them null or empty.  ca_policy_normalize() keeps what carries meaning:
 * read-only properties (id, createdDateTime, modifiedDateTime, templateId)
 * and annotations (keys with '@') go, and so do nulls, empty arrays and
 * objects left empty.  Two normalized policies are equal when they do the
 * same thing.  Assent records the normalized policy it last wrote (read back
 * after the write) and its SHA-256 (db/db_ca.h); a policy whose normalized
 * form differs from that record was edited outside Assent.
 *
 * Errors.  A Graph 403 names the least-privileged application permission the
 * call needs (CA_PERM_* below), e.g. "... HTTP 403 Authorization_RequestDenied:
 * ... (needs the Microsoft Graph application permission
 * Policy.ReadWrite.ConditionalAccess, with admin consent; see docs/m365.md)".
 */
#ifndef ASSENT_M365_CA_H
#define ASSENT_M365_CA_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct app;
struct m365;

/* The least-privileged Graph application permission of each call (docs/m365.md). */
#define CA_PERM_POLICY_READ "Policy.Read.All"
#define CA_PERM_POLICY_WRITE "Policy.ReadWrite.ConditionalAccess"
#define CA_PERM_GROUP_READ "GroupMember.Read.All"
#define CA_PERM_GROUP_CREATE "Group.Create"
#define CA_PERM_GROUP_DELETE "Group.ReadWrite.All"
#define CA_PERM_MEMBER_WRITE "GroupMember.ReadWrite.All"
#define CA_PERM_USER_READ "User.Read.All"

/* ---- Graph calls (each retries as m365.h says; a 403 names its permission) ---- */

/* GET /v1.0/identity/conditionalAccess/policies, every page; cb per policy
 * (annotations left in), NULL at page ends as m365_graph_list. */
enum as_code ca_policies_list(struct m365 *m,
                              enum as_code (*cb)(const json_t *p, void *ud, struct as_err *err),
                              void *ud, struct as_err *err) AS_WUR;

/* GET .../policies/{id}; AS_ENOTFOUND when there is none.  *out new reference. */
enum as_code ca_policy_get(struct m365 *m, const char *id, json_t **out,
                           struct as_err *err) AS_WUR;

/*
 * The policies whose displayName is name (exact), as a new array (listing
 * every policy: Graph documents no $filter on this collection).
 */
enum as_code ca_policies_named(struct m365 *m, const char *name, json_t **out,
                               struct as_err *err) AS_WUR;

/* POST .../policies (201 with the new policy: *out, new reference).  Not
 * repeated after an ambiguous failure (AS_ETRANSIENT): the caller looks the
 * policy up by name before creating again. */
enum as_code ca_policy_create(struct m365 *m, const json_t *body, json_t **out,
                              struct as_err *err) AS_WUR;

/* PATCH .../policies/{id} with patch (204).  PATCH is idempotent: retried. */
enum as_code ca_policy_update(struct m365 *m, const char *id, const json_t *patch,
                              struct as_err *err) AS_WUR;

/*
 * The security groups whose displayName is name: GET /v1.0/groups?$filter=
 * displayName eq '<name>'&$select=id,displayName,mailEnabled,securityEnabled.
 * *out new array.
 */
enum as_code ca_groups_named(struct m365 *m, const char *name, json_t **out,
                             struct as_err *err) AS_WUR;

/* GET /v1.0/groups/{id}?$select=...; AS_ENOTFOUND when gone. */
enum as_code ca_group_get(struct m365 *m, const char *id, json_t **out,
                          struct as_err *err) AS_WUR;

/* POST /v1.0/groups: a security group (mailEnabled false, securityEnabled
 * true, mailNickname from the name); *out the new group.  Not repeated after
 * an ambiguous failure (the caller looks it up by name first). */
enum as_code ca_group_create(struct m365 *m, const char *name, const char *description,
                             json_t **out, struct as_err *err) AS_WUR;

/* DELETE /v1.0/groups/{id} (204; 404 counts as done). */
enum as_code ca_group_delete(struct m365 *m, const char *id, struct as_err *err) AS_WUR;

/* GET /v1.0/groups/{id}/members?$select=id,userPrincipalName, every page:
 * *out a new array of {"id","userPrincipalName"}. */
enum as_code ca_group_members(struct m365 *m, const char *id, json_t **out,
                              struct as_err *err) AS_WUR;

/* POST /v1.0/groups/{id}/members/$ref {"@odata.id": ".../directoryObjects/{member}"}
 * (204; a 400 saying the member is already there counts as done). */
enum as_code ca_group_member_add(struct m365 *m, const char *group_id, const char *member_id,
                                 struct as_err *err) AS_WUR;

/* DELETE /v1.0/groups/{id}/members/{member}/$ref (204; 404 counts as done). */
enum as_code ca_group_member_remove(struct m365 *m, const char *group_id, const char *member_id,
                                    struct as_err *err) AS_WUR;

/* GET /v1.0/users/{upn or id}?$select=id,userPrincipalName; AS_ENOTFOUND. */
enum as_code ca_user_get(struct m365 *m, const char *upn_or_id, json_t **out,
                         struct as_err *err) AS_WUR;

/* ---- policy logic (pure) ---- */

/* Nonzero for a policy that concerns legacy authentication: clientAppTypes
 * holding exchangeActiveSync or other, and builtInControls holding block. */
int ca_policy_is_legacy_block(const json_t *policy);

/*
 * Nonzero for a Microsoft-managed policy [assumed, docs/m365.md]: a
 * displayName starting "Microsoft-managed:" (case-insensitive), as the
 * Entra admin center names them; Graph v1.0 documents no property for it.
 */
int ca_policy_is_managed(const json_t *policy);

/*
 * The policy Assent wants (new reference): name, state report-only or
 * enabled (enforce), conditions.clientAppTypes [exchangeActiveSync, other],
 * applications.includeApplications [All], users.includeUsers [All],
 * users.excludeGroups [group] (when group is not NULL), users.excludeUsers
 * (exclude_ids, only when it is a non-empty array), grantControls OR block.
 */
json_t *ca_policy_desired(const char *name, const char *group, const json_t *exclude_ids,
                          int enforce);

/* The normalized copy of a policy (see above), new reference. */
json_t *ca_policy_normalize(const json_t *policy);

/* Nonzero when every member of want is in have with an equal value
 * (objects recursively, anything else exactly). */
int ca_json_subset(const json_t *want, const json_t *have);

/*
 * Where `now` differs from `was` (both normalized), as a new array of
 * {"path": "conditions.locations", "was": .., "now": ..} (absent = null),
 * sorted by path.
 */
json_t *ca_policy_diff(const json_t *was, const json_t *now);

/* The PATCH body turning normalized `have` into normalized `want`: want's
 * values where they differ, null for what have holds and want does not. */
json_t *ca_policy_patch(const json_t *have, const json_t *want);

/* SHA-256 (hex) of the compact, key-sorted JSON of v.  out: 65 bytes. */
enum as_code ca_json_hash(const json_t *v, char out[65], struct as_err *err) AS_WUR;

/*
 * The request an approval freezes for a policy change: {"policy_name",
 * "exclusion_group", "exclude_users", "enforce", "overwrite"} (new
 * reference; exclude_users [] and overwrite [] when NULL).
 */
json_t *ca_request(const char *policy_name, const char *group_name, const json_t *exclude_users,
                   int enforce, const json_t *overwrite);

/* The users with an exception in force now for any protocol, as a new
 * sorted array of lower-cased UPNs (db/db_kpi.h). */
enum as_code ca_exception_upns(struct app *app, int64_t now, json_t **out,
                               struct as_err *err) AS_WUR;

#endif
