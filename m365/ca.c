/*
 * ca.c - Conditional Access through Microsoft Graph (see ca.h): the policy,
 * group and member calls on top of the transport in m365.c, and the policy
 * logic the steps and the sync share.
 */
#include "m365/ca.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/encode.h"
#include "db/db_kpi.h"
#include "engine/app.h"
#include "m365/m365.h"
#include "m365/m365_internal.h"

#define CA_POLICIES "/v1.0/identity/conditionalAccess/policies"
#define GROUP_SELECT "id,displayName,mailEnabled,securityEnabled,description"

/* ------------------------------------------------------------- helpers */

/* After a failed call: a 403 gets the permission the call needs. */
static enum as_code need(enum as_code rc, const char *perm, struct as_err *err)
{
    if (rc == AS_EAUTH && err && strstr(err->msg, "HTTP 403")) {
        /* The generic hint (m365.c) gives way to the permission by name. */
        char *generic = strstr(err->msg, " (grant the application permission this call needs");
        if (generic)
            *generic = '\0';
        size_t l = strlen(err->msg);
        if (l + 1 < sizeof err->msg)
            snprintf(err->msg + l, sizeof err->msg - l,
                     " (needs the Microsoft Graph application permission %s, with admin "
                     "consent; see docs/m365.md)",
                     perm);
    }
    return rc;
}

/* One Graph request: method path [body] -> status; *out the JSON answer
 * (may be NULL).  write: not repeated after an ambiguous failure. */
static enum as_code graph(struct m365 *m, const char *method, const char *path,
                          const json_t *body, int write, json_t **out, long *status,
                          const char *perm, struct as_err *err)
{
    struct m365_resp resp = {0};
    char what[400];
    char *text = NULL, *url = m365_url(m, M365_SVC_GRAPH, path);
    enum as_code rc;
    if (out)
        *out = NULL;
    if (!url)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (body && !(text = json_dumps(body, JSON_COMPACT))) {
        free(url);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    snprintf(what, sizeof what, "Graph %s %.*s", method, (int)strcspn(path, "?"), path);
    struct m365_req req = {.svc = M365_SVC_GRAPH, .what = what, .method = method, .url = url,
                           .body = text, .body_len = text ? strlen(text) : 0,
                           .content_type = text ? "application/json" : NULL, .write = write,
                           .parse_json = 1};
    rc = m365_call(m, &req, &resp, out, err);
    if (status)
        *status = resp.status;
    m365_resp_free(&resp);
    free(url);
    free(text);
    return need(rc, perm, err);
}

/* head + the URL-encoded seg + tail, malloc'd. */
static char *path_with3(struct m365 *m, const char *head, const char *seg, const char *tail)
{
    char *e = m365_escape(m, seg);
    if (!e)
        return NULL;
    size_t n = strlen(head) + strlen(e) + strlen(tail) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", head, e, tail);
    curl_free(e);
    return p;
}

/* ------------------------------------------------------------- policies */

enum as_code ca_policies_list(struct m365 *m,
                              enum as_code (*cb)(const json_t *p, void *ud, struct as_err *err),
                              void *ud, struct as_err *err)
{
    return need(m365_graph_list(m, CA_POLICIES, NULL, cb, ud, err), CA_PERM_POLICY_READ, err);
}

enum as_code ca_policy_get(struct m365 *m, const char *id, json_t **out, struct as_err *err)
{
    char *path = path_with3(m, CA_POLICIES "/", id, "");
    if (!path)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = graph(m, "GET", path, NULL, 0, out, NULL, CA_PERM_POLICY_READ, err);
    free(path);
    return rc;
}

struct named {
    const char *name;
    json_t *found;
};

static enum as_code keep_named(const json_t *p, void *ud, struct as_err *err)
{
    struct named *n = ud;
    const char *dn = json_string_value(json_object_get(p, "displayName"));
    if (p && dn && strcmp(dn, n->name) == 0 && json_array_append(n->found, (json_t *)p) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

enum as_code ca_policies_named(struct m365 *m, const char *name, json_t **out, struct as_err *err)
{
    struct named n = {name, json_array()};
    *out = NULL;
    if (!n.found)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = ca_policies_list(m, keep_named, &n, err);
    if (rc) {
        json_decref(n.found);
        return rc;
    }
    *out = n.found;
    return AS_OK;
}

enum as_code ca_policy_create(struct m365 *m, const json_t *body, json_t **out, struct as_err *err)
{
    long status = 0;
    enum as_code rc = graph(m, "POST", CA_POLICIES, body, 1, out, &status, CA_PERM_POLICY_WRITE, err);
    if (!rc && (!*out || !json_is_string(json_object_get(*out, "id")))) {
        json_decref(*out);
        *out = NULL;
        rc = as_errf(err, AS_EPERMANENT, "Graph POST %s: HTTP %ld without the new policy",
                     CA_POLICIES, status);
    }
    return rc;
}

enum as_code ca_policy_update(struct m365 *m, const char *id, const json_t *patch,
                              struct as_err *err)
{
    char *path = path_with3(m, CA_POLICIES "/", id, "");
    if (!path)
        return as_errf(err, AS_ENOMEM, "out of memory");
    /* A PATCH sets the same values again when repeated: not a blind
     * duplicate, so it is retried like a read. */
    enum as_code rc = graph(m, "PATCH", path, patch, 0, NULL, NULL, CA_PERM_POLICY_WRITE, err);
    free(path);
    return rc;
}

/* --------------------------------------------------------------- groups */

/* OData string literal: quotes doubled.  malloc'd. */
static char *odata_string(const char *s)
{
    size_t n = strlen(s);
    char *q = malloc(2 * n + 3);
    size_t o = 0;
    if (!q)
        return NULL;
    q[o++] = '\'';
    for (; *s; s++) {
        if (*s == '\'')
            q[o++] = '\'';
        q[o++] = *s;
    }
    q[o++] = '\'';
    q[o] = '\0';
    return q;
}

static enum as_code collect(const json_t *item, void *ud, struct as_err *err)
{
    if (item && json_array_append((json_t *)ud, (json_t *)item) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

enum as_code ca_groups_named(struct m365 *m, const char *name, json_t **out, struct as_err *err)
{
    enum as_code rc;
    char *lit = odata_string(name), *filter = NULL, *path = NULL;
    json_t *all = json_array();
    *out = NULL;
    if (lit) {
        size_t n = strlen(lit) + 32;
        if ((filter = malloc(n)))
            snprintf(filter, n, "displayName eq %s", lit);
    }
    char *ef = filter ? m365_escape(m, filter) : NULL;
    if (ef) {
        size_t n = strlen(ef) + 128;
        if ((path = malloc(n)))
            snprintf(path, n, "/v1.0/groups?$filter=%s&$select=" GROUP_SELECT, ef);
    }
    if (!path || !all) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    rc = need(m365_graph_list(m, path, NULL, collect, all, err), CA_PERM_GROUP_READ, err);
    if (!rc) {
        *out = all;
        all = NULL;
    }
out:
    json_decref(all);
    free(lit);
    free(filter);
    curl_free(ef);
    free(path);
    return rc;
}

enum as_code ca_group_get(struct m365 *m, const char *id, json_t **out, struct as_err *err)
{
    char *path = path_with3(m, "/v1.0/groups/", id, "?$select=" GROUP_SELECT);
    if (!path)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = graph(m, "GET", path, NULL, 0, out, NULL, CA_PERM_GROUP_READ, err);
    free(path);
    return rc;
}

enum as_code ca_group_create(struct m365 *m, const char *name, const char *description,
                             json_t **out, struct as_err *err)
{
    /* mailNickname is required even for a group without mail: ASCII letters
     * and digits of the name, at most 64. */
    char nick[65];
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < sizeof nick; p++)
        if (isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80))
            nick[o++] = *p;
    nick[o] = '\0';
    if (!o)
        snprintf(nick, sizeof nick, "assentgroup");
    json_t *body = json_pack("{s:s, s:s, s:b, s:s, s:b}", "displayName", name, "description",
                             description ? description : "", "mailEnabled", 0, "mailNickname",
                             nick, "securityEnabled", 1);
    if (!body)
        return as_errf(err, AS_ENOMEM, "out of memory");
    long status = 0;
    enum as_code rc = graph(m, "POST", "/v1.0/groups", body, 1, out, &status,
                            CA_PERM_GROUP_CREATE, err);
    json_decref(body);
    if (!rc && (!*out || !json_is_string(json_object_get(*out, "id")))) {
        json_decref(*out);
        *out = NULL;
        rc = as_errf(err, AS_EPERMANENT, "Graph POST /v1.0/groups: HTTP %ld without the new group",
                     status);
    }
    return rc;
}

enum as_code ca_group_delete(struct m365 *m, const char *id, struct as_err *err)
{
    char *path = path_with3(m, "/v1.0/groups/", id, "");
    if (!path)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = graph(m, "DELETE", path, NULL, 0, NULL, NULL, CA_PERM_GROUP_DELETE, err);
    free(path);
    return rc == AS_ENOTFOUND ? AS_OK : rc;
}

enum as_code ca_group_members(struct m365 *m, const char *id, json_t **out, struct as_err *err)
{
    json_t *all = json_array();
    char *path = path_with3(m, "/v1.0/groups/", id, "/members?$select=id,userPrincipalName");
    enum as_code rc;
    *out = NULL;
    if (!all || !path)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    else
        rc = need(m365_graph_list(m, path, NULL, collect, all, err), CA_PERM_GROUP_READ, err);
    free(path);
    if (rc) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return AS_OK;
}

enum as_code ca_group_member_add(struct m365 *m, const char *group_id, const char *member_id,
                                 struct as_err *err)
{
    char ref[300];
    char *path = path_with3(m, "/v1.0/groups/", group_id, "/members/$ref");
    /* The reference names Graph's own address, whatever graph_url is. */
    snprintf(ref, sizeof ref, "https://graph.microsoft.com/v1.0/directoryObjects/%s", member_id);
    json_t *body = json_pack("{s:s}", "@odata.id", ref);
    if (!path || !body) {
        free(path);
        json_decref(body);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    /* Adding a member twice is refused (400), not duplicated: safe to retry. */
    enum as_code rc = graph(m, "POST", path, body, 0, NULL, NULL, CA_PERM_MEMBER_WRITE, err);
    if (rc == AS_EPERMANENT && err && strstr(err->msg, "already exist"))
        rc = AS_OK;
    free(path);
    json_decref(body);
    return rc;
}

enum as_code ca_group_member_remove(struct m365 *m, const char *group_id, const char *member_id,
                                    struct as_err *err)
{
    char *e = m365_escape(m, member_id);
    char *path = e ? path_with3(m, "/v1.0/groups/", group_id, "/members/") : NULL;
    char *full = NULL;
    if (path) {
        size_t n = strlen(path) + strlen(e) + 8;
        if ((full = malloc(n)))
            snprintf(full, n, "%s%s/$ref", path, e);
    }
    enum as_code rc = full ? graph(m, "DELETE", full, NULL, 0, NULL, NULL, CA_PERM_MEMBER_WRITE, err)
                           : as_errf(err, AS_ENOMEM, "out of memory");
    curl_free(e);
    free(path);
    free(full);
    return rc == AS_ENOTFOUND ? AS_OK : rc;
}

enum as_code ca_user_get(struct m365 *m, const char *upn_or_id, json_t **out, struct as_err *err)
{
    char *path = path_with3(m, "/v1.0/users/", upn_or_id, "?$select=id,userPrincipalName");
    if (!path)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = graph(m, "GET", path, NULL, 0, out, NULL, CA_PERM_USER_READ, err);
    free(path);
    return rc;
}

/* --------------------------------------------------------- policy logic */

static int array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

int ca_policy_is_legacy_block(const json_t *policy)
{
    const json_t *apps = json_object_get(json_object_get(policy, "conditions"), "clientAppTypes");
    const json_t *grant = json_object_get(json_object_get(policy, "grantControls"),
                                          "builtInControls");
    return (array_has(apps, "exchangeActiveSync") || array_has(apps, "other")) &&
           array_has(grant, "block");
}

int ca_policy_is_managed(const json_t *policy)
{
    static const char prefix[] = "Microsoft-managed:";
    const char *dn = json_string_value(json_object_get(policy, "displayName"));
    return dn && strncasecmp(dn, prefix, sizeof prefix - 1) == 0;
}

json_t *ca_policy_desired(const char *name, const char *group, const json_t *exclude_ids,
                          int enforce)
{
    json_t *users = json_pack("{s:[s]}", "includeUsers", "All");
    if (users && group)
        json_object_set_new(users, "excludeGroups", json_pack("[s]", group));
    if (users && json_is_array(exclude_ids) && json_array_size(exclude_ids))
        json_object_set_new(users, "excludeUsers", json_deep_copy(exclude_ids));
    if (!users)
        return NULL;
    return json_pack("{s:s, s:s, s:{s:[s,s], s:{s:[s]}, s:o}, s:{s:s, s:[s]}}", "displayName",
                     name, "state", enforce ? "enabled" : "enabledForReportingButNotEnforced",
                     "conditions", "clientAppTypes", "exchangeActiveSync", "other",
                     "applications", "includeApplications", "All", "users", users,
                     "grantControls", "operator", "OR", "builtInControls", "block");
}

static int read_only_key(const char *k, int top)
{
    if (strchr(k, '@'))
        return 1;
    return top && (!strcmp(k, "id") || !strcmp(k, "createdDateTime") ||
                   !strcmp(k, "modifiedDateTime") || !strcmp(k, "templateId"));
}

/* Normalized copy of v, or NULL when nothing of meaning is left. */
static json_t *normalize(const json_t *v, int top)
{
    if (json_is_null(v))
        return NULL;
    if (json_is_array(v))
        return json_array_size(v) ? json_deep_copy(v) : NULL;
    if (!json_is_object(v))
        return json_deep_copy(v);
    json_t *out = json_object();
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (read_only_key(k, top))
            continue;
        json_t *n = normalize(x, 0);
        if (n)
            json_object_set_new(out, k, n);
    }
    if (!top && out && json_object_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *ca_policy_normalize(const json_t *policy)
{
    json_t *n = normalize(policy, 1);
    return n ? n : json_object();
}

int ca_json_subset(const json_t *want, const json_t *have)
{
    if (!json_is_object(want) || !json_is_object(have))
        return json_equal(want, have);
    const char *k;
    json_t *w;
    json_object_foreach((json_t *)want, k, w)
    {
        json_t *h = json_object_get(have, k);
        if (!h || !ca_json_subset(w, h))
            return 0;
    }
    return 1;
}

static void diff_into(json_t *out, const char *path, const json_t *was, const json_t *now)
{
    char p[512];
    if (json_is_object(was) && json_is_object(now)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)was, k, v)
        {
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            diff_into(out, p, v, json_object_get(now, k));
        }
        json_object_foreach((json_t *)now, k, v)
        {
            if (json_object_get(was, k))
                continue;
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            diff_into(out, p, NULL, v);
        }
        return;
    }
    if (was && now && json_equal(was, now))
        return;
    if (!was && !now)
        return;
    json_array_append_new(out, json_pack("{s:s, s:O, s:O}", "path", path,
                                         "was", was ? was : json_null(),
                                         "now", now ? now : json_null()));
}

static int by_path(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "path")),
                  json_string_value(json_object_get(y, "path")));
}

json_t *ca_policy_diff(const json_t *was, const json_t *now)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    diff_into(out, "", was, now);
    size_t n = json_array_size(out);
    if (n > 1) {
        json_t **items = malloc(n * sizeof *items);
        if (items) {
            for (size_t i = 0; i < n; i++)
                items[i] = json_incref(json_array_get(out, i));
            qsort(items, n, sizeof *items, by_path);
            json_array_clear(out);
            for (size_t i = 0; i < n; i++)
                json_array_append_new(out, items[i]);
            free(items);
        }
    }
    return out;
}

json_t *ca_policy_patch(const json_t *have, const json_t *want)
{
    json_t *patch = json_object();
    const char *k;
    json_t *w;
    if (!patch)
        return NULL;
    json_object_foreach((json_t *)want, k, w)
    {
        json_t *h = json_object_get(have, k);
        if (h && json_equal(h, w))
            continue;
        if (json_is_object(w) && json_is_object(h))
            json_object_set_new(patch, k, ca_policy_patch(h, w));
        else
            json_object_set(patch, k, w);
    }
    json_object_foreach((json_t *)have, k, w)
    {
        if (!json_object_get(want, k))
            json_object_set_new(patch, k, json_null());
    }
    return patch;
}

enum as_code ca_json_hash(const json_t *v, char out[65], struct as_err *err)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    int failed = encode_sha256_hex(text, strlen(text), out);
    free(text);
    return failed ? as_errf(err, AS_EIO, "SHA-256 failed") : AS_OK;
}

json_t *ca_request(const char *policy_name, const char *group_name, const json_t *exclude_users,
                   int enforce, const json_t *overwrite)
{
    return json_pack("{s:s, s:s, s:o, s:b, s:o}", "policy_name", policy_name, "exclusion_group",
                     group_name,
                     "exclude_users",
                     json_is_array(exclude_users) ? json_deep_copy(exclude_users) : json_array(),
                     "enforce", enforce ? 1 : 0, "overwrite",
                     json_is_array(overwrite) ? json_deep_copy(overwrite) : json_array());
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

enum as_code ca_exception_upns(struct app *app, int64_t now, json_t **out, struct as_err *err)
{
    json_t *list = NULL;
    *out = NULL;
    enum as_code rc = db_exception_list(app->db, DB_EXC_ACTIVE, NULL, now, &list, err);
    if (rc)
        return rc;
    size_t n = json_array_size(list), k = 0, i;
    json_t **names = calloc(n ? n : 1, sizeof *names);
    json_t *res = json_array();
    json_t *e;
    if (!names || !res) {
        free(names);
        json_decref(res);
        json_decref(list);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    json_array_foreach(list, i, e)
    {
        const char *upn = json_string_value(json_object_get(e, "upn"));
        if (!upn || !*upn)
            continue;
        char low[320];
        size_t j;
        for (j = 0; upn[j] && j + 1 < sizeof low; j++)
            low[j] = (char)tolower((unsigned char)upn[j]);
        low[j] = '\0';
        names[k++] = json_string(low);
    }
    qsort(names, k, sizeof *names, str_cmp);
    for (i = 0; i < k; i++) {
        /* a user with exceptions for several protocols is one member */
        if (i && strcmp(json_string_value(names[i]), json_string_value(names[i - 1])) == 0)
            json_decref(names[i]);
        else
            json_array_append_new(res, names[i]);
    }
    free(names);
    json_decref(list);
    *out = res;
    return AS_OK;
}
