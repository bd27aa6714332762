/*
 * step_ca_policy.c - the `ca_policy` step: block legacy authentication with
 * one Conditional Access policy whose exclusion group holds exactly the users
 * with an exception in force now (manage_cas's pattern: read, diff, write
 * only what differs, verify):
 *
 *   {"type": "ca_policy", "params": {"policy_name": "...", "exclusion_group":
 *     "...", "exclude_users": [], "enforce": false,
 *     "approved_hash": "${steps.approve.output.request_hash}",
 *     "overwrite": "${steps.plan.output.outside_changes}"}}
 *
 * When it executes it reads the policy (by the id Assent recorded, else by
 * display name), the group and the exceptions in force, then
 *  1. creates the security group if there is none, and adds and removes
 *     members until they are exactly the exception users;
 *  2. creates the policy, or PATCHes only what differs (nothing when nothing
 *     does): includeUsers All, excludeGroups the group, excludeUsers only
 *     with exclude_users, includeApplications All, clientAppTypes
 *     exchangeActiveSync + other, grant block, state report-only or enabled;
 *  3. re-reads both to verify, and records the policy's id, the group's id
 *     and the hash of the policy as written (db/db_ca.h).
 * A policy edited outside Assent since it last wrote it (or one Assent never
 * wrote that differs from what it wants) is overwritten only when exactly
 * those differences are in "overwrite", which the approval froze; otherwise
 * the step fails and writes nothing.  A Microsoft-managed policy is never
 * written.  The group goes first so that a policy never excludes a group
 * that is not ready; when the policy write is refused (a missing permission:
 * the message names it) a group this execution created is deleted again, so
 * nothing is left half-written.  A retry after an ambiguous create finds
 * the policy or group by name: nothing is created twice.  In a dry run only
 * reads happen; the output says what would be written.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"
#include "db/db_ca.h"
#include "engine/app.h"
#include "engine/step.h"
#include "m365/ca.h"
#include "m365/ca_view.h"
#include "m365/m365_step.h"

static const struct step_param params[] = {
    {"policy_name", SP_STRING, 1, "display name of the Conditional Access policy"},
    {"exclusion_group", SP_STRING, 1,
     "display name of the security group of users with an exception (excluded from the policy)"},
    {"exclude_users", SP_ARRAY, 0, "user principal names or object ids always excluded (break-glass)"},
    {"enforce", SP_BOOL, 0, "true: state enabled; false (default): report-only"},
    {"approved_hash", SP_STRING, 0,
     "SHA-256 of the approved request (ca_plan's request): refuse anything else"},
    {"overwrite", SP_ARRAY, 0,
     "the outside edits the approval showed (ca_plan's outside_changes): only those may be "
     "overwritten"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* Every member patch sets to null is gone from have (both normalized). */
static int nulls_gone(const json_t *patch, const json_t *have)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        json_t *h = json_object_get(have, k);
        if (json_is_null(v) && h)
            return 0;
        if (json_is_object(v) && json_is_object(h) && !nulls_gone(v, h))
            return 0;
    }
    return 1;
}

/* The member ids of arr ({"id",...}) as a sorted-insensitive comparison set. */
static int same_ids(const json_t *a, const json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return 0;
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x)
    {
        int found = 0;
        json_array_foreach(b, j, y) found |= strcasecmp(json_string_value(json_object_get(x, "id")),
                                                        json_string_value(json_object_get(y, "id"))) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

struct run {
    struct step_ctx *ctx;
    struct step_result *res;
    struct m365 *m;
    struct ca_params p;
    struct ca_view v;
    json_t *group;          /* the group after step 1 (new reference) */
    const char *group_id;
    int group_created;
    json_t *added, *removed;
};

/* After a refused write (policy or member): a group this execution created goes again. */
static void undo_group(struct run *r, enum as_code why)
{
    struct as_err err = {0};
    if (!r->group_created || why == AS_ETRANSIENT || why == AS_ETIMEOUT)
        return; /* a retry finds the group by name and carries on */
    if (ca_group_delete(r->m, r->group_id, &err) == AS_OK)
        step_event(r->ctx, "m365.ca.group_removed",
                   json_pack("{s:s, s:s}", "id", r->group_id, "why",
                             "the policy write was refused"));
    else
        step_event(r->ctx, "m365.ca.group_left",
                   json_pack("{s:s, s:s}", "id", r->group_id, "error", err.msg));
}

/* 1. The group and its members.  0, or -1 with res filled. */
static int apply_group(struct run *r)
{
    struct as_err err = {0};
    enum as_code rc;
    r->added = json_array();
    r->removed = json_array();
    if (r->v.group) {
        r->group = json_incref(r->v.group);
    } else {
        char desc[400];
        snprintf(desc, sizeof desc,
                 "Users with a legacy-protocol exception in force; excluded from the Conditional "
                 "Access policy \"%.200s\". Kept by Assent: do not edit by hand.",
                 r->p.policy_name);
        rc = ca_group_create(r->m, r->p.group_name, desc, &r->group, &err);
        if (rc) {
            m365_step_error(r->ctx, r->res, r->m, rc, "creating the exclusion group", &err);
            return -1;
        }
        r->group_created = 1;
        step_event(r->ctx, "m365.ca.group_created",
                   json_pack("{s:s, s:O}", "group", r->p.group_name, "id",
                             json_object_get(r->group, "id")));
    }
    r->group_id = json_string_value(json_object_get(r->group, "id"));
    size_t i;
    json_t *x;
    json_array_foreach(r->v.add, i, x)
    {
        rc = ca_group_member_add(r->m, r->group_id, json_string_value(json_object_get(x, "id")),
                                 &err);
        if (rc) {
            undo_group(r, rc);
            m365_step_error(r->ctx, r->res, r->m, rc, "adding a member to the exclusion group",
                            &err);
            return -1;
        }
        json_array_append(r->added, json_object_get(x, "userPrincipalName"));
    }
    json_array_foreach(r->v.remove, i, x)
    {
        rc = ca_group_member_remove(r->m, r->group_id,
                                    json_string_value(json_object_get(x, "id")), &err);
        if (rc) {
            undo_group(r, rc);
            m365_step_error(r->ctx, r->res, r->m, rc,
                            "removing a member from the exclusion group", &err);
            return -1;
        }
        json_array_append(r->removed, json_object_get(x, "userPrincipalName"));
    }
    if (json_array_size(r->added) || json_array_size(r->removed))
        step_event(r->ctx, "m365.ca.members",
                   json_pack("{s:s, s:O, s:O}", "group", r->group_id, "added", r->added,
                             "removed", r->removed));
    /* Verify: exactly the exception users. */
    json_t *now = NULL;
    rc = ca_group_members(r->m, r->group_id, &now, &err);
    if (rc) {
        m365_step_error(r->ctx, r->res, r->m, rc, "verifying the exclusion group", &err);
        return -1;
    }
    int ok = same_ids(now, r->v.wanted);
    json_decref(now);
    if (!ok) {
        step_retry(r->res, 0, "the exclusion group's members are not yet the exception users "
                              "(directory replication); will re-check");
        return -1;
    }
    return 0;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct run r = {.ctx = ctx, .res = res};
    struct as_err err = {0};
    char msg[300];
    const char *what = "";
    json_t *request = NULL, *desired = NULL, *desired_n = NULL, *patch = NULL;
    json_t *written = NULL, *after = NULL, *after_n = NULL;
    int created = 0, changed_policy = 0;
    int64_t now = ctx->now_ms ? ctx->now_ms : time_now_ms();

    if (ca_params_from(ctx->params, &r.p, msg, sizeof msg)) {
        step_fail(res, "%s", msg);
        return;
    }
    const json_t *overwrite = json_object_get(ctx->params, "overwrite");
    const json_t *approved = json_object_get(ctx->params, "approved_hash");
    if (overwrite && !json_is_array(overwrite) && !json_is_null(overwrite)) {
        step_fail(res, "overwrite must be an array (ca_plan's outside_changes)");
        return;
    }
    request = ca_request(r.p.policy_name, r.p.group_name, r.p.exclude_users, r.p.enforce,
                         overwrite);
    char hash[65];
    if (!request || ca_json_hash(request, hash, &err) != AS_OK) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if (json_string_value(approved) && *json_string_value(approved) &&
        strcasecmp(json_string_value(approved), hash) != 0) {
        step_fail(res, "this request is not the one that was approved (approved request hash "
                       "%.64s, this request %s); nothing was changed",
                  json_string_value(approved), hash);
        goto out;
    }
    if (!(r.m = m365_step_client(ctx, res)))
        goto out;
    enum as_code rc = ca_view_read(ctx->app, r.m, &r.p, now, &r.v, &what, &err);
    if (rc) {
        m365_step_error(ctx, res, r.m, rc, what, &err);
        goto out;
    }
    if (r.v.managed) {
        step_fail(res, "the Conditional Access policy \"%s\" is Microsoft-managed; Assent never "
                       "writes those; nothing was changed",
                  r.p.policy_name);
        goto out;
    }
    json_t *approved_changes = json_is_array(overwrite) ? (json_t *)overwrite : NULL;
    if (json_array_size(r.v.outside_changes) &&
        !(approved_changes && json_equal(approved_changes, r.v.outside_changes))) {
        char *diff = json_dumps(r.v.outside_changes, JSON_COMPACT);
        step_event(ctx, "m365.ca.edited_outside",
                   json_pack("{s:s, s:O, s:O}", "policy", r.p.policy_name, "changes",
                             r.v.outside_changes, "approved",
                             approved_changes ? approved_changes : json_null()));
        step_fail(res, "the Conditional Access policy \"%s\" %s: %.600s; it is not overwritten "
                       "unless exactly these differences are shown in an approval and approved "
                       "(run the workflow again); nothing was changed",
                  r.p.policy_name,
                  r.v.assent_wrote ? "was changed outside Assent since Assent last wrote it"
                                   : "exists but was not written by Assent and differs",
                  diff ? diff : "?");
        free(diff);
        goto out;
    }

    if (ctx->dry_run) {
        json_t *o = json_pack("{s:s, s:o, s:O, s:o, s:o, s:o, s:b}", "policy_change",
                              !r.v.policy ? "create" : r.v.policy_needs_write ? "update" : "none",
                              "patch", r.v.patch ? json_incref(r.v.patch) : json_null(),
                              "policy", r.v.desired, "group_create", json_boolean(!r.v.group),
                              "members_add", ca_view_upns(r.v.add), "members_remove",
                              ca_view_upns(r.v.remove), "dry_run", 1);
        step_event(ctx, "m365.dry_run", json_incref(o));
        step_ok(res, NULL, o);
        goto out;
    }

    /* 1. the group */
    if (apply_group(&r))
        goto out;

    /* 2. the policy, now that the group's id is known */
    desired = ca_policy_desired(r.p.policy_name, r.group_id, r.v.exclude_ids, r.p.enforce);
    desired_n = desired ? ca_policy_normalize(desired) : NULL;
    if (!desired_n) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    const char *policy_id = json_string_value(json_object_get(r.v.policy, "id"));
    if (!r.v.policy) {
        rc = ca_policy_create(r.m, desired, &written, &err);
        if (rc) {
            undo_group(&r, rc);
            m365_step_error(ctx, res, r.m, rc, "creating the Conditional Access policy", &err);
            goto out;
        }
        policy_id = json_string_value(json_object_get(written, "id"));
        created = 1;
        step_event(ctx, "m365.ca.policy_created",
                   json_pack("{s:s, s:O}", "id", policy_id, "policy", desired));
    } else if (json_array_size(r.v.outside_changes) || !ca_json_subset(desired_n, r.v.policy_n)) {
        patch = ca_policy_patch(r.v.policy_n, desired_n);
        rc = patch ? ca_policy_update(r.m, policy_id, patch, &err)
                   : as_errf(&err, AS_ENOMEM, "out of memory");
        if (rc) {
            undo_group(&r, rc);
            m365_step_error(ctx, res, r.m, rc, "updating the Conditional Access policy", &err);
            goto out;
        }
        changed_policy = 1;
        step_event(ctx, "m365.ca.policy_updated",
                   json_pack("{s:s, s:O, s:O}", "id", policy_id, "patch", patch, "overwritten",
                             r.v.outside_changes));
    }

    /* 3. verify and record */
    rc = ca_policy_get(r.m, policy_id, &after, &err);
    if (rc) {
        m365_step_error(ctx, res, r.m, rc, "verifying the Conditional Access policy", &err);
        goto out;
    }
    after_n = ca_policy_normalize(after);
    if (!ca_json_subset(desired_n, after_n) || (patch && !nulls_gone(patch, after_n))) {
        step_retry(res, 0, "the Conditional Access policy was written but does not read back "
                           "as written yet; will re-check");
        goto out;
    }
    char body_hash[65];
    if (ca_json_hash(after_n, body_hash, &err) != AS_OK ||
        (rc = db_ca_record_put(ctx->app->db, r.p.policy_name, policy_id, r.group_id, body_hash,
                               after_n, time_now_ms(), &err)) != AS_OK) {
        step_retry(res, 0, "recording the policy Assent wrote: %s", err.msg);
        goto out;
    }
    int changed = created || changed_policy || r.group_created || json_array_size(r.added) ||
                  json_array_size(r.removed);
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:b, s:O, s:o, s:s, s:b, s:o, s:O, s:O, s:o, s:b, s:b, s:O}",
        "policy_id", policy_id, "state",
        json_string_value(json_object_get(after_n, "state"))
            ? json_string_value(json_object_get(after_n, "state"))
            : "",
        "policy_created", created, "policy_changed", changed_policy, "policy", after_n, "patch",
        patch ? json_incref(patch) : json_null(), "group_id", r.group_id, "group_created",
        r.group_created, "members", ca_view_upns(r.v.wanted), "added", r.added, "removed",
        r.removed, "overwritten", changed_policy ? json_incref(r.v.outside_changes) : json_array(), "changed",
        changed, "dry_run", 0, "unresolved", r.v.unresolved);
    if (!o) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    step_ok(res, NULL, o);
out:
    json_decref(request);
    json_decref(desired);
    json_decref(desired_n);
    json_decref(patch);
    json_decref(written);
    json_decref(after);
    json_decref(after_n);
    json_decref(r.group);
    json_decref(r.added);
    json_decref(r.removed);
    ca_view_free(&r.v);
}

const struct step_type step_type_ca_policy = {
    .name = "ca_policy",
    .doc = "create or update one Conditional Access policy blocking legacy authentication and "
           "keep its exclusion group equal to the users with an exception in force; writes only "
           "what differs, verifies, never overwrites outside edits without approval",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
