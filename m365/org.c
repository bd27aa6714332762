/*
 * org.c - CAS mailbox plans and the organisation's EWS settings over the
 * Exchange admin API (see org.h).
 */
#include "m365/org.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "m365/m365_internal.h"

const char *const m365_plan_properties[] = {
    "PopEnabled", "ImapEnabled", "ActiveSyncEnabled", "OWAEnabled", "MAPIEnabled",
    "ECPEnabled", "EwsEnabled",  "OwaMailboxPolicy",  NULL};

const char *const m365_plan_legacy_settings[] = {"PopEnabled", "ImapEnabled", NULL};

#define PLAN_SELECT                                                                            \
    "Identity,Name,DisplayName,Guid,PopEnabled,ImapEnabled,ActiveSyncEnabled,OWAEnabled,"      \
    "MAPIEnabled,ECPEnabled,EwsEnabled,OwaMailboxPolicy,WhenChanged"


enum as_code m365_plans_list(struct m365 *m,
                             enum as_code (*cb)(const json_t *plan, void *ud, struct as_err *err),
                             void *ud, struct as_err *err)
{
    json_t *params = json_pack("{s:s}", "ResultSize", "Unlimited");
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = m365_exo_invoke(m, "Get-CASMailboxPlan", params, PLAN_SELECT, cb, ud, NULL,
                                      err);
    json_decref(params);
    return rc;
}

static enum as_code keep_first(const json_t *item, void *ud, struct as_err *err)
{
    (void)err;
    json_t **slot = ud;
    if (item && !*slot)
        *slot = json_incref((json_t *)item);
    return AS_OK;
}

enum as_code m365_plan_get(struct m365 *m, const char *identity, json_t **out,
                           struct as_err *err)
{
    json_t *first = NULL;
    *out = NULL;
    json_t *params = json_pack("{s:s}", "Identity", identity);
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = m365_exo_invoke(m, "Get-CASMailboxPlan", params, PLAN_SELECT, keep_first,
                                      &first, NULL, err);
    json_decref(params);
    if (rc) {
        json_decref(first);
        return rc;
    }
    if (!first)
        return as_errf(err, AS_ENOTFOUND, "Exchange Get-CASMailboxPlan: no mailbox plan '%s'",
                       identity);
    *out = first;
    return AS_OK;
}

static enum as_code reread_plan(struct m365 *m, const char *identity, json_t **out,
                                struct as_err *err)
{
    return m365_plan_get(m, identity, out, err);
}

enum as_code m365_plan_set(struct m365 *m, const char *identity, const json_t *settings,
                           json_t **warnings, struct as_err *err)
{
    if (!identity || !*identity)
        return as_errf(err, AS_EINVAL, "Set-CASMailboxPlan needs an identity");
    return m365_exo_set_verified(m, "Set-CASMailboxPlan", identity, settings, reread_plan,
                                 warnings, err);
}

enum as_code m365_org_get(struct m365 *m, json_t **out, struct as_err *err)
{
    json_t *first = NULL;
    *out = NULL;
    /* Without the switch the service leaves EwsAllowedAppIDs empty. */
    json_t *params = json_pack("{s:b}", "RetrieveEwsOperationAccessPolicy", 1);
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = m365_exo_invoke(m, "Get-OrganizationConfig", params, NULL, keep_first,
                                      &first, NULL, err);
    json_decref(params);
    if (rc) {
        json_decref(first);
        return rc;
    }
    if (!first)
        return as_errf(err, AS_EPERMANENT, "Exchange Get-OrganizationConfig: empty response");
    json_t *ids = m365_ews_ids_normalize(json_object_get(first, "EwsAllowedAppIDs"));
    if (!ids || json_object_set_new(first, "EwsAllowedAppIDs", ids)) {
        json_decref(first);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    *out = first;
    return AS_OK;
}

/* "a,b,c" of a normalized array (malloc'd), "" for none; NULL on ENOMEM. */
static char *join_ids(const json_t *ids)
{
    size_t n = 1, i;
    json_t *v;
    json_array_foreach(ids, i, v) n += json_string_length(v) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    size_t o = 0;
    s[0] = '\0';
    json_array_foreach(ids, i, v)
    {
        size_t len = json_string_length(v);
        if (i)
            s[o++] = ',';
        memcpy(s + o, json_string_value(v), len);
        o += len;
        s[o] = '\0';
    }
    return s;
}

enum as_code m365_org_set_ews_allowed(struct m365 *m, const json_t *ids, json_t **warnings,
                                      struct as_err *err)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) if (!m365_app_id_valid(json_string_value(v)))
    {
        return as_errf(err, AS_EINVAL, "EwsAllowedAppIDs: '%.80s' is not an application id",
                       json_string_value(v) ? json_string_value(v) : "(not a string)");
    }
    char *joined = join_ids(ids);
    json_t *params = joined ? json_pack("{s:o}", "EwsAllowedAppIDs",
                                        *joined ? json_string(joined) : json_null())
                            : NULL;
    free(joined);
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    int ambiguous = 0;
    enum as_code rc = m365_exo_invoke_ex(m, "Set-OrganizationConfig", params, NULL, 1, NULL, NULL,
                                         warnings, &ambiguous, err);
    json_decref(params);
    if (rc && ambiguous)
        rc = AS_ETRANSIENT; /* the whole list again is the same change: safe to repeat */
    return rc;
}

int m365_app_id_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add each comma-separated element of text (trimmed, lower-cased) to set. */
static int add_split(json_t *set, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *a = p;
        while (n && isspace((unsigned char)*a)) {
            a++;
            n--;
        }
        while (n && isspace((unsigned char)a[n - 1]))
            n--;
        if (n && n < 200) {
            char id[200];
            for (size_t i = 0; i < n; i++)
                id[i] = (char)tolower((unsigned char)a[i]);
            id[n] = '\0';
            if (json_object_set_new(set, id, json_true()))
                return -1;
        }
        p = e ? e + 1 : p + strlen(p);
    }
    return 0;
}

/* The keys of set (an object used as a set), sorted, as a new array. */
static json_t *set_sorted(json_t *set)
{
    size_t n = json_object_size(set), k = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    json_t *out = json_array();
    if (!keys || !out) {
        free(keys);
        json_decref(out);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v) keys[k++] = key;
    qsort(keys, k, sizeof *keys, cmp_str);
    for (size_t i = 0; i < k; i++)
        if (json_array_append_new(out, json_string(keys[i]))) {
            json_decref(out);
            out = NULL;
            break;
        }
    free(keys);
    return out;
}

static int add_value(json_t *set, const json_t *value)
{
    if (json_is_string(value))
        return add_split(set, json_string_value(value));
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v) if (json_is_string(v) && add_split(set, json_string_value(v)))
        return -1;
    return 0;
}

json_t *m365_ews_ids_normalize(const json_t *value)
{
    json_t *set = json_object();
    json_t *out = set && !add_value(set, value) ? set_sorted(set) : NULL;
    json_decref(set);
    return out;
}

json_t *m365_ews_ids_merge(const json_t *current, const json_t *add, const json_t *remove)
{
    json_t *set = json_object(), *gone = json_object(), *out = NULL;
    if (set && gone && !add_value(set, current) && !add_value(set, add) &&
        !add_value(gone, remove)) {
        const char *key;
        json_t *v;
        json_object_foreach(gone, key, v) json_object_del(set, key);
        out = set_sorted(set);
    }
    json_decref(set);
    json_decref(gone);
    return out;
}

int m365_plan_legacy_on(const json_t *plan)
{
    return json_is_true(json_object_get(plan, "PopEnabled")) ||
           json_is_true(json_object_get(plan, "ImapEnabled"));
}

char *m365_ews_allowlist_command(const json_t *ids)
{
    char *joined = join_ids(ids);
    if (!joined)
        return NULL;
    json_t *params = json_pack("{s:o}", "EwsAllowedAppIDs",
                               *joined ? json_string(joined) : json_null());
    free(joined);
    char *cmd = params ? m365_powershell_command("Set-OrganizationConfig", params) : NULL;
    json_decref(params);
    return cmd;
}
