/*
 * sim_ca.c - Conditional Access and groups in the simulator (Microsoft
 * Graph v1.0):
 *   GET|POST          /v1.0/identity/conditionalAccess/policies
 *   GET|PATCH|DELETE  /v1.0/identity/conditionalAccess/policies/{id}
 *   GET|POST          /v1.0/groups            ($filter=displayName eq '...', $select)
 *   GET|DELETE        /v1.0/groups/{id}
 *   GET               /v1.0/groups/{id}/members ($select)
 *   POST              /v1.0/groups/{id}/members/$ref   {"@odata.id": ".../directoryObjects/{id}"}
 *   DELETE            /v1.0/groups/{id}/members/{id}/$ref
 * and the admin helpers /_sim/conditional_access (GET the section; POST
 * .../policies adds a policy as given, e.g. a Microsoft-managed one; PATCH
 * .../policies/{id} edits one by hand, as an admin in the portal would) and
 * PUT /_sim/apps/{client_id}/graph_permissions (the application permissions
 * an app holds: a JSON array, or null for all).
 *
 * Policies are kept in Graph's full shape: a POST or PATCH is merged over
 * the documented property set with its nulls and empty collections, so a
 * client sees what Graph answers (and must compare policies with that in
 * mind).  Permissions, when the app has a list, are checked per call and a
 * missing one answers 403 Authorization_RequestDenied.  What is assumed
 * rather than documented is listed in docs/simulator.md.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CA_PATH "/v1.0/identity/conditionalAccess/policies"

/* ---- permissions --------------------------------------------------------------- */

/* 1 when the calling app may: no list = every permission; else one of `any`. */
static int allowed(struct sim *s, struct sim_req *r, const char *const *any)
{
    char client[64];
    if (sim_token_client(s, r, client, sizeof client) != 0)
        return 1; /* checked by sim_token_check already */
    int ok = 1;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->st.n_apps; i++) {
        const struct sim_app *a = &s->st.apps[i];
        if (strcasecmp(a->client_id, client) != 0 || !a->graph_permissions)
            continue;
        ok = 0;
        size_t k;
        json_t *p;
        json_array_foreach(a->graph_permissions, k, p)
        {
            for (size_t j = 0; any[j]; j++)
                ok |= strcasecmp(json_string_value(p), any[j]) == 0;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    return ok;
}

static int check(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *const *any)
{
    if (allowed(s, r, any))
        return 0;
    sim_resp_graph_error(o, r, 403, "Authorization_RequestDenied",
                         "Insufficient privileges to complete the operation.");
    return -1;
}

static const char *const P_POLICY_READ[] = {"Policy.Read.All", NULL};
static const char *const P_POLICY_WRITE[] = {"Policy.ReadWrite.ConditionalAccess", NULL};
static const char *const P_GROUP_READ[] = {"GroupMember.Read.All", "Group.Read.All",
                                           "GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                                           "Directory.Read.All", "Directory.ReadWrite.All", NULL};
static const char *const P_GROUP_CREATE[] = {"Group.Create", "Group.ReadWrite.All",
                                             "Directory.ReadWrite.All", NULL};
static const char *const P_GROUP_DELETE[] = {"Group.ReadWrite.All", NULL};
static const char *const P_MEMBER_WRITE[] = {"GroupMember.ReadWrite.All", "Group.ReadWrite.All",
                                             "Directory.ReadWrite.All", NULL};

/* ---- helpers ------------------------------------------------------------------- */

static void json_answer(struct sim_resp *o, int status, json_t *doc /* stolen */)
{
    char *t = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    sim_resp_text(o, t ? status : 500, "application/json;odata.metadata=minimal;"
                                       "odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
                  t ? t : "{}");
    free(t);
}

static void no_content(struct sim_resp *o)
{
    strbuf_free(&o->body);
    o->status = 204;
    o->content_type[0] = '\0';
}

static json_t *body_json(struct sim_req *r)
{
    return json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, NULL);
}

static json_t *find_by_id(json_t *arr, const char *id, size_t *index)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *x = json_string_value(json_object_get(v, "id"));
        if (x && strcasecmp(x, id) == 0) {
            if (index)
                *index = i;
            return v;
        }
    }
    return NULL;
}

/* Save after a change made under the write lock (gen from ++s->gen). */
static int save(struct sim *s, struct sim_req *r, struct sim_resp *o, uint64_t gen)
{
    if (sim_persist(s, gen) == 0)
        return 0;
    sim_resp_graph_error(o, r, 500, "generalException", "The simulator could not save its state.");
    return -1;
}

/* ---- policies ------------------------------------------------------------------ */

/* The documented property set with its empty values [conditionalAccessPolicy,
 * conditionalAccessConditionSet, ...GrantControls]; what a client sent is
 * merged over it. */
static json_t *policy_defaults(void)
{
    return json_pack(
        "{s:n, s:n, s:n, s:n, s:n, s:s,"
        " s:{s:[], s:[], s:[], s:[], s:n, s:n, s:n, s:n,"
        "    s:{s:[], s:[], s:[], s:[], s:n},"
        "    s:{s:[], s:[], s:[], s:[], s:[], s:[], s:n, s:n}},"
        " s:n, s:n}",
        "id", "templateId", "displayName", "createdDateTime", "modifiedDateTime", "state",
        "disabled", "conditions", "userRiskLevels", "signInRiskLevels", "clientAppTypes",
        "servicePrincipalRiskLevels", "platforms", "locations", "devices", "clientApplications",
        "applications", "includeApplications", "excludeApplications", "includeUserActions",
        "includeAuthenticationContextClassReferences", "applicationFilter", "users",
        "includeUsers", "excludeUsers", "includeGroups", "excludeGroups", "includeRoles",
        "excludeRoles", "includeGuestsOrExternalUsers", "excludeGuestsOrExternalUsers",
        "grantControls", "sessionControls");
}

static json_t *grant_defaults(void)
{
    return json_pack("{s:s, s:[], s:[], s:[], s:n}", "operator", "OR", "builtInControls",
                     "customAuthenticationFactors", "termsOfUse", "authenticationStrength");
}

/* Merge patch into dst (JSON merge: objects recursively; null resets the
 * member to its default when dflt has one, else removes it). */
static void merge(json_t *dst, const json_t *patch, const json_t *dflt)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        json_t *d = json_object_get(dflt, k);
        json_t *cur = json_object_get(dst, k);
        if (json_is_null(v)) {
            if (d && !json_is_object(d))
                json_object_set_new(dst, k, json_deep_copy(d));
            else if (json_object_get(dflt, k))
                json_object_set_new(dst, k, json_null());
            else
                json_object_del(dst, k);
        } else if (json_is_object(v) && json_is_object(cur)) {
            merge(cur, v, json_is_object(d) ? d : NULL);
        } else if (json_is_object(v) && json_is_object(d)) {
            json_t *n = json_deep_copy(d);
            merge(n, v, d);
            json_object_set_new(dst, k, n);
        } else {
            json_object_set(dst, k, v);
        }
    }
}

static int in_list(const char *v, const char *const *list)
{
    for (size_t i = 0; v && list[i]; i++)
        if (!strcmp(v, list[i]))
            return 1;
    return 0;
}

/* The documented checks of a policy; NULL when fine, else the message. */
static const char *policy_invalid(const json_t *p)
{
    static const char *const states[] = {"enabled", "disabled",
                                         "enabledForReportingButNotEnforced", NULL};
    static const char *const apps[] = {"all", "browser", "mobileAppsAndDesktopClients",
                                       "exchangeActiveSync", "easSupported", "other", NULL};
    static const char *const grants[] = {"block", "mfa", "compliantDevice",
                                         "domainJoinedDevice", "approvedApplication",
                                         "compliantApplication", "passwordChange", NULL};
    if (!json_is_string(json_object_get(p, "displayName")) ||
        !*json_string_value(json_object_get(p, "displayName")))
        return "displayName is required.";
    if (!in_list(json_string_value(json_object_get(p, "state")), states))
        return "state must be enabled, disabled or enabledForReportingButNotEnforced.";
    json_t *c = json_object_get(p, "conditions");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "clientAppTypes"), i, v) if (!in_list(json_string_value(v), apps))
        return "Invalid value in conditions.clientAppTypes.";
    if (!json_array_size(json_object_get(json_object_get(c, "applications"), "includeApplications")))
        return "conditions.applications must include applications.";
    json_t *u = json_object_get(c, "users");
    if (!json_array_size(json_object_get(u, "includeUsers")) &&
        !json_array_size(json_object_get(u, "includeGroups")) &&
        !json_array_size(json_object_get(u, "includeRoles")))
        return "conditions.users must include users, groups or roles.";
    json_t *g = json_object_get(p, "grantControls");
    if (json_is_null(g) && json_is_null(json_object_get(p, "sessionControls")))
        return "A policy needs grantControls or sessionControls.";
    json_array_foreach(json_object_get(g, "builtInControls"), i, v) if (!in_list(json_string_value(v), grants))
        return "Invalid value in grantControls.builtInControls.";
    return NULL;
}

/* The policy as it is posted: defaults, then the client's members. */
static json_t *policy_build(const json_t *posted)
{
    json_t *p = policy_defaults();
    json_t *d = policy_defaults();
    json_t *g = json_object_get(posted, "grantControls");
    if (!p || !d)
        goto fail;
    if (json_is_object(g)) {
        json_t *gd = grant_defaults();
        json_object_set_new(p, "grantControls", gd);
        json_object_set_new(d, "grantControls", grant_defaults());
    }
    merge(p, posted, d);
    json_decref(d);
    return p;
fail:
    json_decref(p);
    json_decref(d);
    return NULL;
}

static void with_context(json_t *p, struct sim_req *r, const char *what)
{
    char ctx[400];
    snprintf(ctx, sizeof ctx, "%s/v1.0/$metadata#%s", r->base_url, what);
    json_object_set_new(p, "@odata.context", json_string(ctx));
}

static void policies(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *id)
{
    const char *m = r->method;
    int get = !strcmp(m, "GET");
    if (check(s, r, o, get ? P_POLICY_READ : P_POLICY_WRITE))
        return;
    if (!id && get) {
        pthread_mutex_lock(&s->save_lock);
        pthread_rwlock_rdlock(&s->lock);
        json_t *doc = json_pack("{s:O}", "value", s->st.ca_policies);
        json_t *copy = json_deep_copy(doc);
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(&s->save_lock);
        json_decref(doc);
        with_context(copy, r, "identity/conditionalAccess/policies");
        json_answer(o, 200, copy);
        return;
    }
    if (!id && !strcmp(m, "POST")) {
        json_t *posted = body_json(r);
        if (!json_is_object(posted) || json_object_get(posted, "id")) {
            json_decref(posted);
            sim_resp_graph_error(o, r, 400, "BadRequest",
                                 json_is_object(posted) ? "id is read-only."
                                                        : "The request body is not a JSON object.");
            return;
        }
        json_t *p = policy_build(posted);
        json_decref(posted);
        const char *bad = p ? policy_invalid(p) : "out of memory";
        if (bad) {
            json_decref(p);
            sim_resp_graph_error(o, r, 400, "BadRequest", bad);
            return;
        }
        char gid[37], when[40];
        guid_random(gid);
        fmt_iso_ms(now_ms(), when, sizeof when);
        json_object_set_new(p, "id", json_string(gid));
        json_object_set_new(p, "createdDateTime", json_string(when));
        pthread_rwlock_wrlock(&s->lock);
        json_array_append(s->st.ca_policies, p);
        uint64_t gen = ++s->gen;
        pthread_rwlock_unlock(&s->lock);
        if (save(s, r, o, gen)) {
            json_decref(p);
            return;
        }
        json_t *copy = json_deep_copy(p);
        json_decref(p);
        with_context(copy, r, "identity/conditionalAccess/policies/$entity");
        json_answer(o, 201, copy);
        return;
    }
    if (!id) {
        sim_resp_graph_error(o, r, 405, "Request_BadRequest",
                             "The HTTP method is not allowed on this resource.");
        return;
    }
    if (get) {
        pthread_mutex_lock(&s->save_lock);
        pthread_rwlock_rdlock(&s->lock);
        json_t *p = find_by_id(s->st.ca_policies, id, NULL);
        json_t *copy = p ? json_deep_copy(p) : NULL;
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(&s->save_lock);
        if (!copy) {
            sim_resp_graph_error(o, r, 404, "Request_ResourceNotFound",
                                 "The requested Conditional Access policy was not found.");
            return;
        }
        with_context(copy, r, "identity/conditionalAccess/policies/$entity");
        json_answer(o, 200, copy);
        return;
    }
    if (!strcmp(m, "PATCH") || !strcmp(m, "DELETE")) {
        int del = !strcmp(m, "DELETE");
        json_t *patch = del ? NULL : body_json(r);
        if (!del && (!json_is_object(patch) || json_object_get(patch, "id"))) {
            json_decref(patch);
            sim_resp_graph_error(o, r, 400, "BadRequest", "The request body must be a JSON "
                                                          "object without id.");
            return;
        }
        const char *bad = NULL;
        int found = 0;
        uint64_t gen = 0;
        pthread_rwlock_wrlock(&s->lock);
        size_t idx = 0;
        json_t *p = find_by_id(s->st.ca_policies, id, &idx);
        if (p) {
            found = 1;
            if (del) {
                json_array_remove(s->st.ca_policies, idx);
                gen = ++s->gen;
            } else {
                json_t *next = json_deep_copy(p);
                json_t *d = policy_defaults();
                json_t *gc = json_object_get(patch, "grantControls");
                if (json_is_object(gc) && !json_is_object(json_object_get(next, "grantControls")))
                    json_object_set_new(next, "grantControls", grant_defaults());
                json_object_set_new(d, "grantControls", grant_defaults());
                merge(next, patch, d);
                json_decref(d);
                bad = policy_invalid(next);
                if (!bad) {
                    char when[40];
                    fmt_iso_ms(now_ms(), when, sizeof when);
                    json_object_set_new(next, "modifiedDateTime", json_string(when));
                    json_array_set(s->st.ca_policies, idx, next);
                    gen = ++s->gen;
                }
                json_decref(next);
            }
        }
        pthread_rwlock_unlock(&s->lock);
        json_decref(patch);
        if (!found) {
            sim_resp_graph_error(o, r, 404, "Request_ResourceNotFound",
                                 "The requested Conditional Access policy was not found.");
            return;
        }
        if (bad) {
            sim_resp_graph_error(o, r, 400, "BadRequest", bad);
            return;
        }
        if (save(s, r, o, gen))
            return;
        no_content(o);
        return;
    }
    sim_resp_graph_error(o, r, 405, "Request_BadRequest",
                         "The HTTP method is not allowed on this resource.");
}

/* ---- groups -------------------------------------------------------------------- */

static json_t *group_view(const json_t *g)
{
    json_t *v = json_deep_copy(g);
    json_object_del(v, "members");
    return v;
}

/* displayName of a "displayName eq '...'" filter (quotes doubled), or NULL. */
static char *filter_name(const char *f)
{
    static const char head[] = "displayName eq '";
    size_t n = strlen(f);
    if (strncasecmp(f, head, sizeof head - 1) != 0 || n < sizeof head || f[n - 1] != '\'')
        return NULL;
    char *out = malloc(n);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = sizeof head - 1; i + 1 < n; i++) {
        if (f[i] == '\'') {
            if (f[i + 1] != '\'' || i + 2 >= n) {
                free(out);
                return NULL;
            }
            i++;
        }
        out[o++] = f[i];
    }
    out[o] = '\0';
    return out;
}

static void groups_list(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *f = sim_req_query(r, "$filter");
    char *name = NULL;
    if (f && !(name = filter_name(f))) {
        sim_resp_graph_error(o, r, 400, "Request_UnsupportedQuery",
                             "The simulator supports only $filter=displayName eq '...' on groups.");
        return;
    }
    json_t *value = json_array();
    pthread_mutex_lock(&s->save_lock);
    pthread_rwlock_rdlock(&s->lock);
    size_t i;
    json_t *g;
    json_array_foreach(s->st.groups, i, g)
    {
        const char *dn = json_string_value(json_object_get(g, "displayName"));
        if (name && (!dn || strcasecmp(dn, name) != 0))
            continue;
        json_array_append_new(value, group_view(g));
    }
    pthread_rwlock_unlock(&s->lock);
    pthread_mutex_unlock(&s->save_lock);
    free(name);
    json_t *doc = json_pack("{s:o}", "value", value);
    with_context(doc, r, "groups");
    json_answer(o, 200, doc);
}

static void group_create(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    json_t *g = body_json(r);
    const char *bad = NULL;
    if (!json_is_object(g))
        bad = "The request body is not a JSON object.";
    else if (!json_is_string(json_object_get(g, "displayName")) ||
             !json_is_string(json_object_get(g, "mailNickname")) ||
             !json_is_boolean(json_object_get(g, "mailEnabled")) ||
             !json_is_boolean(json_object_get(g, "securityEnabled")))
        bad = "displayName, mailNickname, mailEnabled and securityEnabled are required.";
    else if (json_object_get(g, "id"))
        bad = "id is read-only.";
    if (bad) {
        json_decref(g);
        sim_resp_graph_error(o, r, 400, "Request_BadRequest", bad);
        return;
    }
    char gid[37], when[40];
    guid_random(gid);
    fmt_iso_s(now_ms(), when, sizeof when);
    json_object_set_new(g, "id", json_string(gid));
    json_object_set_new(g, "createdDateTime", json_string(when));
    if (!json_object_get(g, "description"))
        json_object_set_new(g, "description", json_null());
    json_object_set_new(g, "groupTypes", json_array());
    json_object_set_new(g, "members", json_array());
    pthread_rwlock_wrlock(&s->lock);
    json_array_append(s->st.groups, g);
    uint64_t gen = ++s->gen;
    pthread_rwlock_unlock(&s->lock);
    if (save(s, r, o, gen)) {
        json_decref(g);
        return;
    }
    json_t *v = group_view(g);
    json_decref(g);
    with_context(v, r, "groups/$entity");
    json_answer(o, 201, v);
}

static void not_found(struct sim_resp *o, struct sim_req *r, const char *id)
{
    char msg[300];
    snprintf(msg, sizeof msg, "Resource '%.200s' does not exist or one of its queried "
                              "reference-property objects are not present.", id);
    sim_resp_graph_error(o, r, 404, "Request_ResourceNotFound", msg);
}

static void members_list(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *gid)
{
    json_t *value = json_array();
    int found = 0;
    pthread_mutex_lock(&s->save_lock);
    pthread_rwlock_rdlock(&s->lock);
    json_t *g = find_by_id(s->st.groups, gid, NULL);
    if (g) {
        found = 1;
        size_t i;
        json_t *mid;
        json_array_foreach(json_object_get(g, "members"), i, mid)
        {
            int idx = sim_state_find_user(&s->st, json_string_value(mid));
            if (idx < 0)
                continue;
            const struct sim_user *u = &s->st.users[idx];
            json_array_append_new(value, json_pack("{s:s, s:s, s:s, s:s?}", "@odata.type",
                                                   "#microsoft.graph.user", "id", u->id,
                                                   "userPrincipalName", u->upn, "displayName",
                                                   u->display_name));
        }
    }
    pthread_rwlock_unlock(&s->lock);
    pthread_mutex_unlock(&s->save_lock);
    if (!found) {
        json_decref(value);
        not_found(o, r, gid);
        return;
    }
    json_t *doc = json_pack("{s:o}", "value", value);
    with_context(doc, r, "directoryObjects");
    json_answer(o, 200, doc);
}

/* The object id at the end of an @odata.id ".../directoryObjects/{id}" or ".../users/{id}". */
static const char *ref_id(const char *ref)
{
    size_t skip = 18;
    const char *p = ref ? strstr(ref, "/directoryObjects/") : NULL;
    if (!p && ref) {
        p = strstr(ref, "/users/");
        skip = 7;
    }
    if (!p || !p[skip] || strchr(p + skip, '/'))
        return NULL;
    return p + skip;
}

static void member_add(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *gid)
{
    json_t *b = body_json(r);
    const char *mid = ref_id(json_string_value(json_object_get(b, "@odata.id")));
    if (!mid) {
        json_decref(b);
        sim_resp_graph_error(o, r, 400, "Request_BadRequest",
                             "Invalid object identifier: @odata.id must name "
                             "https://graph.microsoft.com/v1.0/directoryObjects/{id}.");
        return;
    }
    int status = 0;
    uint64_t gen = 0;
    char id[64] = "";
    pthread_rwlock_wrlock(&s->lock);
    json_t *g = find_by_id(s->st.groups, gid, NULL);
    int idx = sim_state_find_user(&s->st, mid);
    if (!g) {
        status = 404;
    } else if (idx < 0 || strcasecmp(s->st.users[idx].id, mid) != 0) {
        status = -404;
    } else {
        json_t *members = json_object_get(g, "members");
        snprintf(id, sizeof id, "%s", s->st.users[idx].id);
        size_t i;
        json_t *x;
        json_array_foreach(members, i, x) if (!strcasecmp(json_string_value(x), id)) status = 400;
        if (!status) {
            json_array_append_new(members, json_string(id));
            gen = ++s->gen;
            status = 204;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    if (status == 404)
        not_found(o, r, gid);
    else if (status == -404)
        not_found(o, r, mid);
    else if (status == 400)
        sim_resp_graph_error(o, r, 400, "Request_BadRequest",
                             "One or more added object references already exist for the "
                             "following modified properties: 'members'.");
    else if (!save(s, r, o, gen))
        no_content(o);
    json_decref(b);
}

static void member_remove(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *gid,
                          const char *mid)
{
    int status = 404;
    uint64_t gen = 0;
    pthread_rwlock_wrlock(&s->lock);
    json_t *g = find_by_id(s->st.groups, gid, NULL);
    json_t *members = json_object_get(g, "members");
    size_t i;
    json_t *x;
    json_array_foreach(members, i, x)
    {
        if (!strcasecmp(json_string_value(x), mid)) {
            json_array_remove(members, i);
            gen = ++s->gen;
            status = 204;
            break;
        }
    }
    pthread_rwlock_unlock(&s->lock);
    if (status == 404)
        not_found(o, r, g ? mid : gid);
    else if (!save(s, r, o, gen))
        no_content(o);
}

static void groups(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *rest)
{
    const char *m = r->method;
    int get = !strcmp(m, "GET");
    char gid[64], mid[64];
    if (!rest) {
        if (get) {
            if (!check(s, r, o, P_GROUP_READ))
                groups_list(s, r, o);
        } else if (!strcmp(m, "POST")) {
            if (!check(s, r, o, P_GROUP_CREATE))
                group_create(s, r, o);
        } else {
            sim_resp_graph_error(o, r, 405, "Request_BadRequest",
                                 "The HTTP method is not allowed on this resource.");
        }
        return;
    }
    size_t n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof gid) {
        sim_resp_graph_error(o, r, 400, "BadRequest", "Invalid group identifier.");
        return;
    }
    memcpy(gid, rest, n);
    gid[n] = '\0';
    const char *tail = rest + n;
    if (!*tail) {
        if (get) {
            if (check(s, r, o, P_GROUP_READ))
                return;
            pthread_mutex_lock(&s->save_lock);
            pthread_rwlock_rdlock(&s->lock);
            json_t *g = find_by_id(s->st.groups, gid, NULL);
            json_t *v = g ? group_view(g) : NULL;
            pthread_rwlock_unlock(&s->lock);
            pthread_mutex_unlock(&s->save_lock);
            if (!v) {
                not_found(o, r, gid);
                return;
            }
            with_context(v, r, "groups/$entity");
            json_answer(o, 200, v);
        } else if (!strcmp(m, "DELETE")) {
            if (check(s, r, o, P_GROUP_DELETE))
                return;
            uint64_t gen = 0;
            size_t idx;
            pthread_rwlock_wrlock(&s->lock);
            if (find_by_id(s->st.groups, gid, &idx)) {
                json_array_remove(s->st.groups, idx);
                gen = ++s->gen;
            }
            pthread_rwlock_unlock(&s->lock);
            if (!gen)
                not_found(o, r, gid);
            else if (!save(s, r, o, gen))
                no_content(o);
        } else {
            sim_resp_graph_error(o, r, 405, "Request_BadRequest",
                                 "The HTTP method is not allowed on this resource.");
        }
        return;
    }
    if (!strcmp(tail, "/members") && get) {
        if (!check(s, r, o, P_GROUP_READ))
            members_list(s, r, o, gid);
        return;
    }
    if (!strcmp(tail, "/members/$ref") && !strcmp(m, "POST")) {
        if (!check(s, r, o, P_MEMBER_WRITE))
            member_add(s, r, o, gid);
        return;
    }
    if (str_starts(tail, "/members/") && !strcmp(m, "DELETE")) {
        const char *p = tail + 9;
        size_t k = strcspn(p, "/");
        if (k && k < sizeof mid && !strcmp(p + k, "/$ref")) {
            memcpy(mid, p, k);
            mid[k] = '\0';
            if (!check(s, r, o, P_MEMBER_WRITE))
                member_remove(s, r, o, gid, mid);
            return;
        }
    }
    sim_resp_graph_error(o, r, 400, "BadRequest", "Unsupported segment on a group.");
}

/* ---- entry points (sim.h) ------------------------------------------------------ */

const char *sim_ca_label(const char *method, const char *path)
{
    if (str_starts(path, CA_PATH))
        return !strcmp(method, "GET") ? "graph.ca.policies" : "graph.ca.policies.write";
    if (!strcmp(path, "/v1.0/groups") || str_starts(path, "/v1.0/groups/")) {
        if (strstr(path, "/members/"))
            return "graph.groups.members.write";
        if (strstr(path, "/members"))
            return "graph.groups.members";
        return !strcmp(method, "GET") ? "graph.groups" : "graph.groups.write";
    }
    return NULL;
}

int sim_ca_route(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *path = r->path;
    if (!strcmp(path, CA_PATH)) {
        policies(s, r, o, NULL);
        return 1;
    }
    if (str_starts(path, CA_PATH "/") && path[sizeof CA_PATH] && !strchr(path + sizeof CA_PATH, '/')) {
        policies(s, r, o, path + sizeof CA_PATH);
        return 1;
    }
    if (!strcmp(path, "/v1.0/groups")) {
        groups(s, r, o, NULL);
        return 1;
    }
    if (str_starts(path, "/v1.0/groups/")) {
        groups(s, r, o, path + 13);
        return 1;
    }
    return 0;
}

void sim_ca_admin(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *m = r->method;
    if (str_starts(r->path, "/_sim/apps/")) {
        /* PUT /_sim/apps/{client_id}/graph_permissions  [..] or null */
        const char *p = r->path + 11;
        size_t n = strcspn(p, "/");
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len,
                                 JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
        int ok = 0;
        if (!strcmp(m, "PUT") && !strcmp(p + n, "/graph_permissions") &&
            (json_is_array(doc) || json_is_null(doc))) {
            uint64_t gen = 0;
            pthread_rwlock_wrlock(&s->lock);
            for (size_t i = 0; i < s->st.n_apps; i++) {
                struct sim_app *a = &s->st.apps[i];
                if (strlen(a->client_id) != n || strncasecmp(a->client_id, p, n) != 0)
                    continue;
                json_decref(a->graph_permissions);
                a->graph_permissions = json_is_array(doc) ? json_deep_copy(doc) : NULL;
                gen = ++s->gen;
                ok = 1;
            }
            pthread_rwlock_unlock(&s->lock);
            if (ok)
                (void)sim_persist(s, gen);
        }
        json_decref(doc);
        if (ok)
            no_content(o);
        else
            sim_resp_text(o, 400, "application/json",
                          "{\"error\":\"PUT /_sim/apps/{client_id}/graph_permissions with a JSON "
                          "array or null, for a known app\"}");
        return;
    }
    const char *rest = r->path + strlen("/_sim/conditional_access");
    if (!*rest && !strcmp(m, "GET")) {
        pthread_mutex_lock(&s->save_lock);
        pthread_rwlock_rdlock(&s->lock);
        json_t *doc = json_pack("{s:O, s:O}", "policies", s->st.ca_policies, "groups",
                                s->st.groups);
        json_t *copy = json_deep_copy(doc);
        pthread_rwlock_unlock(&s->lock);
        pthread_mutex_unlock(&s->save_lock);
        json_decref(doc);
        json_answer(o, 200, copy);
        return;
    }
    if (!strcmp(rest, "/policies") && !strcmp(m, "POST")) {
        /* a policy as given (e.g. Microsoft-managed), merged over the defaults */
        json_t *given = body_json(r);
        json_t *p = json_is_object(given) ? policy_build(given) : NULL;
        json_decref(given);
        if (!p) {
            sim_resp_text(o, 400, "application/json", "{\"error\":\"a policy object\"}");
            return;
        }
        if (!json_is_string(json_object_get(p, "id"))) {
            char gid[37];
            guid_random(gid);
            json_object_set_new(p, "id", json_string(gid));
        }
        pthread_rwlock_wrlock(&s->lock);
        json_array_append(s->st.ca_policies, p);
        uint64_t gen = ++s->gen;
        pthread_rwlock_unlock(&s->lock);
        (void)sim_persist(s, gen);
        json_t *copy = json_deep_copy(p);
        json_decref(p);
        json_answer(o, 201, copy);
        return;
    }
    if (str_starts(rest, "/policies/") && !strcmp(m, "PATCH")) {
        /* an edit by hand, as in the portal: merged, not validated */
        json_t *patch = body_json(r);
        int ok = 0;
        uint64_t gen = 0;
        if (json_is_object(patch)) {
            pthread_rwlock_wrlock(&s->lock);
            json_t *p = find_by_id(s->st.ca_policies, rest + 10, NULL);
            if (p) {
                json_t *d = policy_defaults();
                merge(p, patch, d);
                json_decref(d);
                char when[40];
                fmt_iso_ms(now_ms(), when, sizeof when);
                json_object_set_new(p, "modifiedDateTime", json_string(when));
                gen = ++s->gen;
                ok = 1;
            }
            pthread_rwlock_unlock(&s->lock);
        }
        json_decref(patch);
        if (ok) {
            (void)sim_persist(s, gen);
            no_content(o);
        } else {
            sim_resp_text(o, 404, "application/json", "{\"error\":\"no such policy\"}");
        }
        return;
    }
    sim_resp_text(o, 404, "application/json", "{\"error\":\"no such admin endpoint\"}");
}
