/*
 * ca_view.c - the read half of the Conditional Access steps (see ca_view.h).
 */
#include "m365/ca_view.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db/db_ca.h"
#include "engine/app.h"
#include "m365/ca.h"

#define MAX_EXCLUDE_USERS 50

void ca_view_free(struct ca_view *v)
{
    json_decref(v->record);
    json_decref(v->policy);
    json_decref(v->policy_n);
    json_decref(v->group);
    json_decref(v->members_now);
    json_decref(v->wanted);
    json_decref(v->unresolved);
    json_decref(v->exclude_ids);
    json_decref(v->add);
    json_decref(v->remove);
    json_decref(v->desired);
    json_decref(v->desired_n);
    json_decref(v->outside_changes);
    json_decref(v->patch);
    memset(v, 0, sizeof *v);
}

json_t *ca_view_upns(const json_t *members)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        json_t *u = json_object_get(m, "userPrincipalName");
        json_array_append(out, u ? u : json_object_get(m, "id"));
    }
    return out;
}

int ca_params_from(const json_t *params, struct ca_params *p, char *msg, size_t size)
{
    memset(p, 0, sizeof *p);
    p->policy_name = json_string_value(json_object_get(params, "policy_name"));
    p->group_name = json_string_value(json_object_get(params, "exclusion_group"));
    p->exclude_users = json_object_get(params, "exclude_users");
    const json_t *enforce = json_object_get(params, "enforce");
    if (!p->policy_name || !*p->policy_name || strlen(p->policy_name) > 256) {
        snprintf(msg, size, "policy_name must be a non-empty string of at most 256 bytes");
        return -1;
    }
    if (!p->group_name || !*p->group_name || strlen(p->group_name) > 256) {
        snprintf(msg, size, "exclusion_group must be a non-empty string of at most 256 bytes");
        return -1;
    }
    if (enforce && !json_is_boolean(enforce) && !json_is_null(enforce)) {
        snprintf(msg, size, "enforce must be true or false");
        return -1;
    }
    p->enforce = json_is_true(enforce);
    if (p->exclude_users && json_is_null(p->exclude_users))
        p->exclude_users = NULL;
    if (p->exclude_users) {
        size_t i;
        json_t *u;
        if (!json_is_array(p->exclude_users) ||
            json_array_size(p->exclude_users) > MAX_EXCLUDE_USERS) {
            snprintf(msg, size, "exclude_users must be an array of at most %d user principal "
                                "names or object ids", MAX_EXCLUDE_USERS);
            return -1;
        }
        json_array_foreach(p->exclude_users, i, u)
        {
            const char *s = json_string_value(u);
            if (!s || !*s || strlen(s) > 300) {
                snprintf(msg, size, "exclude_users[%zu] must be a user principal name or an "
                                    "object id", i);
                return -1;
            }
        }
    }
    return 0;
}

/* The member of arr whose id or userPrincipalName is key (case-insensitive). */
static json_t *find_member(const json_t *arr, const char *key)
{
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        const char *upn = json_string_value(json_object_get(m, "userPrincipalName"));
        if ((id && strcasecmp(id, key) == 0) || (upn && strcasecmp(upn, key) == 0))
            return m;
    }
    return NULL;
}

/* Resolve UPNs to {"id","userPrincipalName"} through Graph; unknown ones go
 * to *missing (when not NULL). */
static enum as_code resolve(struct m365 *m, const json_t *upns, json_t *found, json_t *missing,
                            struct as_err *err)
{
    size_t i;
    json_t *u;
    json_array_foreach(upns, i, u)
    {
        json_t *user = NULL;
        enum as_code rc = ca_user_get(m, json_string_value(u), &user, err);
        if (rc == AS_ENOTFOUND) {
            if (missing)
                json_array_append(missing, u);
            continue;
        }
        if (rc)
            return rc;
        const char *id = json_string_value(json_object_get(user, "id"));
        const char *upn = json_string_value(json_object_get(user, "userPrincipalName"));
        if (id && !find_member(found, id))
            json_array_append_new(found, json_pack("{s:s, s:s}", "id", id, "userPrincipalName",
                                                   upn ? upn : json_string_value(u)));
        json_decref(user);
    }
    return AS_OK;
}

/* The policy: by the recorded id, else by display name (exactly one). */
static enum as_code find_policy(struct m365 *m, const struct ca_params *p, struct ca_view *v,
                                const char **what, struct as_err *err)
{
    const char *rid = json_string_value(json_object_get(v->record, "policy_id"));
    enum as_code rc;
    if (rid) {
        rc = ca_policy_get(m, rid, &v->policy, err);
        if (rc == AS_OK) {
            v->found_by = "id";
            v->assent_wrote = 1;
            return AS_OK;
        }
        if (rc != AS_ENOTFOUND) {
            *what = "reading the Conditional Access policy by its recorded id";
            return rc;
        }
        /* deleted since: look it up by name, as if never written */
    }
    json_t *named = NULL;
    rc = ca_policies_named(m, p->policy_name, &named, err);
    if (rc) {
        *what = "listing the Conditional Access policies";
        return rc;
    }
    if (json_array_size(named) > 1) {
        json_decref(named);
        *what = "finding the Conditional Access policy";
        return as_errf(err, AS_ECONFLICT, "%zu Conditional Access policies are called \"%s\"; "
                                          "rename or delete all but one (nothing was changed)",
                       json_array_size(named), p->policy_name);
    }
    if (json_array_size(named) == 1) {
        v->policy = json_incref(json_array_get(named, 0));
        v->found_by = "name";
        const char *id = json_string_value(json_object_get(v->policy, "id"));
        v->assent_wrote = rid && id && strcmp(rid, id) == 0;
    }
    json_decref(named);
    return AS_OK;
}

/* The exclusion group: the recorded one if it still exists, else by name. */
static enum as_code find_group(struct m365 *m, const struct ca_params *p, struct ca_view *v,
                               const char **what, struct as_err *err)
{
    const char *gid = json_string_value(json_object_get(v->record, "group_id"));
    enum as_code rc;
    if (gid) {
        rc = ca_group_get(m, gid, &v->group, err);
        if (rc == AS_OK)
            return AS_OK;
        if (rc != AS_ENOTFOUND) {
            *what = "reading the exclusion group";
            return rc;
        }
    }
    json_t *named = NULL;
    rc = ca_groups_named(m, p->group_name, &named, err);
    if (rc) {
        *what = "finding the exclusion group";
        return rc;
    }
    if (json_array_size(named) > 1) {
        json_decref(named);
        *what = "finding the exclusion group";
        return as_errf(err, AS_ECONFLICT, "%zu groups are called \"%s\"; rename or delete all "
                                          "but one (nothing was changed)",
                       json_array_size(named), p->group_name);
    }
    if (json_array_size(named) == 1)
        v->group = json_incref(json_array_get(named, 0));
    json_decref(named);
    if (v->group && !json_is_true(json_object_get(v->group, "securityEnabled"))) {
        *what = "checking the exclusion group";
        return as_errf(err, AS_EPERMANENT, "the group \"%s\" is not a security group, so a "
                                           "Conditional Access policy cannot exclude it; rename "
                                           "it or choose another exclusion_group",
                       p->group_name);
    }
    return AS_OK;
}

enum as_code ca_view_read(struct app *app, struct m365 *m, const struct ca_params *p, int64_t now,
                          struct ca_view *v, const char **what, struct as_err *err)
{
    enum as_code rc;
    memset(v, 0, sizeof *v);
    *what = "";
    v->members_now = json_array();
    v->wanted = json_array();
    v->unresolved = json_array();
    v->exclude_ids = json_array();
    v->add = json_array();
    v->remove = json_array();
    if (!v->members_now || !v->wanted || !v->unresolved || !v->exclude_ids || !v->add ||
        !v->remove)
        return as_errf(err, AS_ENOMEM, "out of memory");

    *what = "reading Assent's record of the policy";
    if ((rc = db_ca_record_get(app->db, p->policy_name, &v->record, err)) != AS_OK)
        return rc;
    if ((rc = find_policy(m, p, v, what, err)) != AS_OK)
        return rc;
    v->managed = v->policy && ca_policy_is_managed(v->policy);
    if (v->policy)
        v->policy_n = ca_policy_normalize(v->policy);
    if ((rc = find_group(m, p, v, what, err)) != AS_OK)
        return rc;
    v->group_id = json_string_value(json_object_get(v->group, "id"));
    if (v->group_id) {
        json_decref(v->members_now);
        v->members_now = NULL;
        if ((rc = ca_group_members(m, v->group_id, &v->members_now, err)) != AS_OK) {
            *what = "listing the exclusion group's members";
            return rc;
        }
    }

    /* Who should be in the group: the users with an exception in force now. */
    json_t *upns = NULL;
    *what = "reading the exceptions in force";
    if ((rc = ca_exception_upns(app, now, &upns, err)) != AS_OK)
        return rc;
    *what = "looking up the users with an exception";
    rc = resolve(m, upns, v->wanted, v->unresolved, err);
    json_decref(upns);
    if (rc)
        return rc;
    if (p->exclude_users) {
        json_t *found = json_array(), *missing = json_array();
        *what = "looking up exclude_users";
        rc = resolve(m, p->exclude_users, found, missing, err);
        if (!rc && json_array_size(missing)) {
            char *names = json_dumps(missing, JSON_COMPACT);
            rc = as_errf(err, AS_EPERMANENT, "exclude_users names users the tenant does not have: "
                                             "%.400s (nothing was changed)",
                         names ? names : "?");
            free(names);
        }
        size_t i;
        json_t *u;
        json_array_foreach(found, i, u) json_array_append(v->exclude_ids, json_object_get(u, "id"));
        json_decref(found);
        json_decref(missing);
        if (rc)
            return rc;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v->wanted, i, x)
    {
        if (!find_member(v->members_now, json_string_value(json_object_get(x, "id"))))
            json_array_append(v->add, x);
    }
    json_array_foreach(v->members_now, i, x)
    {
        if (!find_member(v->wanted, json_string_value(json_object_get(x, "id"))))
            json_array_append(v->remove, x);
    }

    /* The policy Assent wants, and how the tenant's differs. */
    char placeholder[320];
    snprintf(placeholder, sizeof placeholder, "(the group \"%.256s\", created on approval)",
             p->group_name);
    v->desired = ca_policy_desired(p->policy_name, v->group_id ? v->group_id : placeholder,
                                   v->exclude_ids, p->enforce);
    v->desired_n = v->desired ? ca_policy_normalize(v->desired) : NULL;
    if (!v->desired_n)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (!v->policy) {
        v->outside_changes = json_array();
        v->policy_needs_write = 1;
    } else {
        /* Against what Assent last wrote when it is that policy; a policy
         * Assent never wrote is compared with what Assent wants. */
        const json_t *base = v->assent_wrote ? json_object_get(v->record, "body") : v->desired_n;
        v->outside_changes = ca_policy_diff(base, v->policy_n);
        v->policy_needs_write = json_array_size(v->outside_changes) > 0 ||
                                !ca_json_subset(v->desired_n, v->policy_n);
        if (v->policy_needs_write)
            v->patch = ca_policy_patch(v->policy_n, v->desired_n);
    }
    if (!v->outside_changes)
        return as_errf(err, AS_ENOMEM, "out of memory");
    *what = "";
    return AS_OK;
}
