/*
 * step_ews_allowlist_read.c - the `ews_allowlist_read` step: the
 * organisation's EWS settings read live (Get-OrganizationConfig
 * -RetrieveEwsOperationAccessPolicy) and what adding and removing
 * application ids would make of the allow list, for the approval of
 * workflows/ews-allowlist.json:
 *
 *   {"type": "ews_allowlist_read", "params": {"add": ["<app id>"], "remove": []}}
 *
 * It writes nothing.  An id that is not an application (client) id (a GUID)
 * fails the step, naming it.  Output:
 *   ews_enabled   true, false or null (unset: treated as false from
 *                 1 October 2026; the allow list only counts with true)
 *   current       the allow list now (lower-case, sorted)
 *   merged        the list after the change: the WHOLE list that
 *                 Set-OrganizationConfig -EwsAllowedAppIDs would write
 *   added, removed  ids the change actually adds / removes
 *   command       the exact Set-OrganizationConfig line
 *   note          what EWSEnabled means for the list
 *   request       {"add": [...], "remove": [...]} (normalized): what the
 *                 approval freezes and manage_ews_allowlist carries out
 *   nothing_to_do the list already is the merged list
 */
#include <stdlib.h>
#include <string.h>

#include "m365/m365_step.h"
#include "m365/org.h"

#define MAX_IDS 500

static const struct step_param params[] = {
    {"add", SP_ARRAY, 1, "application (client) ids to allow, GUIDs"},
    {"remove", SP_ARRAY, 0, "application ids to take off the list (default [])"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* Declared in m365_step.h; shared with manage_ews_allowlist. */
int m365_ews_ids_check(const json_t *ids, const char *what, struct step_result *res)
{
    size_t i;
    json_t *v;
    if (ids && !json_is_array(ids) && !json_is_null(ids)) {
        step_fail(res, "%s must be an array of application ids", what);
        return -1;
    }
    if (json_array_size(ids) > MAX_IDS) {
        step_fail(res, "%s holds more than %d application ids", what, MAX_IDS);
        return -1;
    }
    json_array_foreach(ids, i, v) if (!m365_app_id_valid(json_string_value(v)))
    {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        step_fail(res, "%s[%zu] = %.100s is not an application (client) id: give the app's GUID "
                       "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) as Microsoft Entra shows it; "
                       "nothing was changed",
                  what, i, t ? t : "?");
        free(t);
        return -1;
    }
    return 0;
}

/* ids in a but not in b (both normalized), new array. */
static json_t *minus(const json_t *a, const json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x)
    {
        int found = 0;
        json_array_foreach(b, j, y) found |= json_equal(x, y);
        if (!found)
            json_array_append(out, x);
    }
    return out;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    const json_t *add = json_object_get(ctx->params, "add");
    const json_t *remove = json_object_get(ctx->params, "remove");
    if (m365_ews_ids_check(add, "add", res) || m365_ews_ids_check(remove, "remove", res))
        return;
    json_t *add_n = m365_ews_ids_normalize(add), *remove_n = m365_ews_ids_normalize(remove);
    json_t *org = NULL, *merged = NULL;
    char *command = NULL;
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        goto out;
    enum as_code rc = m365_org_get(m, &org, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-OrganizationConfig", &err);
        goto out;
    }
    json_t *current = json_object_get(org, "EwsAllowedAppIDs");
    merged = m365_ews_ids_merge(current, add_n, remove_n);
    command = merged ? m365_ews_allowlist_command(merged) : NULL;
    if (!add_n || !remove_n || !merged || !command) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    json_t *enabled = json_object_get(org, "EwsEnabled");
    const char *note =
        json_is_true(enabled)
            ? "EWSEnabled is true: only the applications on the list can use EWS"
        : json_is_false(enabled)
            ? "EWSEnabled is false: EWS is off for every application, the list has no effect "
              "until EWSEnabled is true"
            : "EWSEnabled is unset: Microsoft treats it as false from 1 October 2026, and the "
              "list only counts once EWSEnabled is true; EWS ends for good on 1 April 2027";
    json_t *output = json_pack(
        "{s:O, s:O, s:O, s:o, s:o, s:s, s:s, s:{s:O, s:O}, s:b}", "ews_enabled",
        json_is_boolean(enabled) ? enabled : json_null(), "current", current, "merged", merged,
        "added", minus(merged, current), "removed", minus(current, merged), "command", command,
        "note", note, "request", "add", add_n, "remove", remove_n, "nothing_to_do",
        json_equal(merged, current));
    if (!output) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    step_ok(res, NULL, output);
out:
    json_decref(add_n);
    json_decref(remove_n);
    json_decref(org);
    json_decref(merged);
    free(command);
}

const struct step_type step_type_ews_allowlist_read = {
    .name = "ews_allowlist_read",
    .doc = "read the organisation's EWS settings live (Get-OrganizationConfig) and the allow list "
           "EwsAllowedAppIDs after adding and removing application ids, with the exact "
           "Set-OrganizationConfig line; writes nothing",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
