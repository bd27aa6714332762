/*
 * step_ca_plan.c - the `ca_plan` step: what blocking legacy authentication
 * with a Conditional Access policy would change, read from the tenant now
 * and written nowhere, for an approver to see:
 *
 *   {"type": "ca_plan", "params": {"policy_name": "...", "exclusion_group":
 *     "...", "exclude_users": [], "enforce": false}}
 *
 * Output: "policy" (the policy Assent would write, as JSON), "policy_id",
 * "found_by" (id / name / null), "policy_change" (create, update, none),
 * "patch", "current", "edited_outside" and "outside_changes" (edits made
 * outside Assent since it last wrote the policy, or how a policy Assent
 * never wrote differs: an approval must show them before they are
 * overwritten), "group_id", "members" (the UPNs the group should hold:
 * users with an exception in force now), "members_now", "members_add",
 * "members_remove", "unresolved", "would_block" ([{upn, client_apps,
 * sign_ins, last}] from the synced legacy sign-ins of the last 30 days of
 * users the policy would not exclude), "would_block_text", "request" and
 * "request_hash" (what the approval freezes and `ca_policy` checks).
 * Outcome "changes", or "nothing_to_do" when the policy and the group are
 * as wanted.  A Microsoft-managed policy of that name fails the step.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "engine/step.h"
#include "m365/ca.h"
#include "m365/ca_view.h"
#include "m365/m365_step.h"

#define DAY_MS 86400000LL

static const struct step_param params[] = {
    {"policy_name", SP_STRING, 1, "display name of the Conditional Access policy"},
    {"exclusion_group", SP_STRING, 1,
     "display name of the security group of users with an exception (excluded from the policy)"},
    {"exclude_users", SP_ARRAY, 0, "user principal names or object ids always excluded (break-glass)"},
    {"enforce", SP_BOOL, 0, "true: state enabled; false (default): report-only"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"changes", "nothing_to_do", NULL};

/* ---- sign-ins the policy would have blocked ---- */

struct blocked {
    const struct ca_view *v;
    const json_t *exclude;  /* the exclude_users as given (UPNs or ids) */
    json_t *by_upn;         /* upn -> {"upn","client_apps":[],"sign_ins","last"} */
    json_t *order;          /* UPNs, newest sign-in first */
};

static int excluded(const struct blocked *b, const char *upn, const char *user_id)
{
    const json_t *lists[] = {b->v->wanted, NULL};
    for (int l = 0; lists[l]; l++) {
        size_t i;
        json_t *m;
        json_array_foreach(lists[l], i, m)
        {
            const char *id = json_string_value(json_object_get(m, "id"));
            const char *u = json_string_value(json_object_get(m, "userPrincipalName"));
            if ((user_id && id && strcasecmp(id, user_id) == 0) ||
                (upn && u && strcasecmp(u, upn) == 0))
                return 1;
        }
    }
    size_t i;
    json_t *x;
    json_array_foreach(b->exclude, i, x)
    {
        const char *s = json_string_value(x);
        if (s && ((upn && strcasecmp(s, upn) == 0) || (user_id && strcasecmp(s, user_id) == 0)))
            return 1;
    }
    json_array_foreach(b->v->exclude_ids, i, x)
    {
        const char *s = json_string_value(x);
        if (s && user_id && strcasecmp(s, user_id) == 0)
            return 1;
    }
    return 0;
}

static int blocked_row(const json_t *row, void *ud)
{
    struct blocked *b = ud;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    const char *uid = json_string_value(json_object_get(row, "user_id"));
    const char *app = json_string_value(json_object_get(row, "client_app"));
    if (!upn || !*upn || excluded(b, upn, uid))
        return 0;
    /* The policy's clientAppTypes exchangeActiveSync + other cover every
     * legacy client, which is all the synced sign-ins are. */
    json_t *e = json_object_get(b->by_upn, upn);
    if (!e) {
        e = json_pack("{s:s, s:[], s:i, s:o}", "upn", upn, "client_apps", "sign_ins", 0, "last",
                      json_incref(json_object_get(row, "created_at")));
        if (!e)
            return 1;
        json_object_set_new(b->by_upn, upn, e);
        json_array_append_new(b->order, json_string(upn));
    }
    json_t *apps = json_object_get(e, "client_apps");
    int seen = 0;
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a) seen |= app && strcasecmp(json_string_value(a), app) == 0;
    if (app && !seen)
        json_array_append_new(apps, json_string(app));
    json_object_set_new(e, "sign_ins",
                        json_integer(json_integer_value(json_object_get(e, "sign_ins")) + 1));
    return 0;
}

/* *list: [{upn, client_apps, sign_ins, last}]; *text "a@x (POP3, IMAP4), ..." (capped). */
static enum as_code would_block(struct app *app, const struct ca_view *v, const json_t *exclude,
                                int64_t now, json_t **list, json_t **text, struct as_err *err)
{
    struct blocked b = {v, exclude, json_object(), json_array()};
    struct db_tenant_signin_query q = {.since_ms = now - 30 * DAY_MS};
    enum as_code rc = b.by_upn && b.order
                          ? db_tenant_signins_foreach(app->db, &q, blocked_row, &b, err)
                          : as_errf(err, AS_ENOMEM, "out of memory");
    *list = json_array();
    char buf[2000] = "";
    size_t o = 0, i, shown = 0;
    json_t *u;
    json_array_foreach(b.order, i, u)
    {
        json_t *e = json_object_get(b.by_upn, json_string_value(u));
        json_array_append(*list, e);
        if (o + 200 >= sizeof buf)
            continue;
        char apps[160] = "";
        size_t ao = 0, j;
        json_t *a;
        json_array_foreach(json_object_get(e, "client_apps"), j, a)
        {
            int n = snprintf(apps + ao, sizeof apps - ao, "%s%s", j ? ", " : "",
                             json_string_value(a));
            if (n < 0 || (size_t)n >= sizeof apps - ao)
                break;
            ao += (size_t)n;
        }
        int n = snprintf(buf + o, sizeof buf - o, "%s%s (%s)", o ? "; " : "",
                         json_string_value(u), apps);
        if (n > 0 && (size_t)n < sizeof buf - o) {
            o += (size_t)n;
            shown++;
        }
    }
    if (shown < json_array_size(b.order) && o + 40 < sizeof buf)
        snprintf(buf + o, sizeof buf - o, "; and %zu more", json_array_size(b.order) - shown);
    *text = json_string(o ? buf : "none");
    json_decref(b.by_upn);
    json_decref(b.order);
    return rc;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct ca_params p;
    struct ca_view v = {0};
    struct as_err err = {0};
    char msg[300];
    const char *what = "";
    json_t *blocked = NULL, *blocked_text = NULL, *request = NULL;
    int64_t now = ctx->now_ms ? ctx->now_ms : time_now_ms();

    if (ca_params_from(ctx->params, &p, msg, sizeof msg)) {
        step_fail(res, "%s", msg);
        return;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    enum as_code rc = ca_view_read(ctx->app, m, &p, now, &v, &what, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, what, &err);
        goto out;
    }
    if (v.managed) {
        step_fail(res, "the Conditional Access policy \"%s\" is Microsoft-managed; Assent never "
                       "writes those: give policy_name another name",
                  p.policy_name);
        goto out;
    }
    if ((rc = would_block(ctx->app, &v, p.exclude_users, now, &blocked, &blocked_text, &err))) {
        step_retry(res, 0, "reading the synced sign-ins: %s", err.msg);
        goto out;
    }
    request = ca_request(p.policy_name, p.group_name, p.exclude_users, p.enforce,
                         v.outside_changes);
    char hash[65];
    if (!request || ca_json_hash(request, hash, &err) != AS_OK) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    int members_change = json_array_size(v.add) || json_array_size(v.remove) || !v.group_id;
    int nothing = !v.policy_needs_write && !members_change;
    const char *change = !v.policy ? "create" : v.policy_needs_write ? "update" : "none";
    json_t *out = json_pack(
        "{s:s, s:s, s:O, s:o, s:o, s:s, s:O, s:O, s:b, s:O, s:b, s:o, s:o, s:o, s:o, s:o, s:o,"
        " s:O, s:O, s:O, s:o, s:b}",
        "policy_name", p.policy_name, "exclusion_group", p.group_name, "policy", v.desired,
        "policy_id",
        v.policy ? json_incref(json_object_get(v.policy, "id")) : json_null(), "found_by",
        v.found_by ? json_string(v.found_by) : json_null(), "policy_change", change, "patch",
        v.patch ? v.patch : json_null(), "current", v.policy_n ? v.policy_n : json_null(),
        "edited_outside", json_array_size(v.outside_changes) > 0, "outside_changes",
        v.outside_changes, "not_written_by_assent", v.policy && !v.assent_wrote, "group_id",
        v.group_id ? json_string(v.group_id) : json_null(), "members", ca_view_upns(v.wanted),
        "members_now", ca_view_upns(v.members_now), "members_add", ca_view_upns(v.add),
        "members_remove", ca_view_upns(v.remove), "unresolved", json_incref(v.unresolved),
        "would_block", blocked, "would_block_text", blocked_text, "request", request,
        "request_hash", json_string(hash), "nothing_to_do", nothing);
    if (!out) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    json_object_set_new(out, "would_block_count", json_integer((json_int_t)json_array_size(blocked)));
    step_ok(res, nothing ? "nothing_to_do" : "changes", out);
out:
    json_decref(blocked);
    json_decref(blocked_text);
    json_decref(request);
    ca_view_free(&v);
}

const struct step_type step_type_ca_plan = {
    .name = "ca_plan",
    .doc = "read what a Conditional Access policy blocking legacy authentication would change "
           "(policy, exclusion group, sign-ins it would block); writes nothing",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
