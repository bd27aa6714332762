/*
 * step_manage_cas_each.c - the `manage_cas_each` step: the same CAS settings
 * for a list of mailboxes, each exactly as `manage_cas` does it (read, leave
 * out what an exception in force now covers, send only what differs,
 * verify), e.g. set explicit SMTP AUTH back to follow the organisation:
 *
 *   {"type": "manage_cas_each", "params": {
 *      "identities": "${steps.impact.output.reset}",
 *      "settings": {"SmtpClientAuthenticationDisabled": null},
 *      "approved_request": "${steps.impact.output.request}", "approved_key": "reset",
 *      "approved_hash": "${steps.approve.output.request_hash}"}}
 *
 * With approved_request the list must be the approved request's member
 * approved_key (the approval froze it; see m365_step_check_approved).  A
 * retry or a re-claim after a crash walks the list again: mailboxes already
 * done read as done and get no second write.  A mailbox that no longer
 * exists is skipped and listed.  Output: {"results": [manage_cas output per
 * mailbox], "changed": [UPNs written], "unchanged", "skipped_exempt",
 * "not_found", "dry_run"}.
 */
#include <stdio.h>
#include <string.h>

#include "m365/m365_step.h"
#include "engine/step.h"

#define MAX_IDENTITIES 5000

static const struct step_param params[] = {
    {"identities", SP_ARRAY, 1, "mailboxes (UPN, address, alias or GUID), at most 5000"},
    {"settings", SP_OBJECT, 1,
     "CAS properties to set on each, e.g. {\"SmtpClientAuthenticationDisabled\": null}"},
    {"approved_request", SP_OBJECT, 0, "the whole request an approval froze"},
    {"approved_key", SP_STRING, 0,
     "the member of approved_request that must equal identities (default \"identities\")"},
    {"approved_hash", SP_STRING, 0, "the approval's request_hash"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* Lockout properties (OWA, MAPI) are refused here outright: a list is no
 * place for them. */
static int check_settings(const json_t *settings, struct step_result *res)
{
    const char *key;
    json_t *v;
    if (!json_is_object(settings) || json_object_size(settings) == 0) {
        step_fail(res, "settings must be a non-empty object of CAS properties");
        return -1;
    }
    json_object_foreach((json_t *)settings, key, v)
    {
        if (!m365_cas_property_known(key) || !strcmp(key, "OWAEnabled") ||
            !strcmp(key, "MAPIEnabled")) {
            step_fail(res, "\"%s\" cannot be set by manage_cas_each (unknown, or it locks users "
                           "out of Outlook)", key);
            return -1;
        }
        if (!json_is_boolean(v) &&
            !(json_is_null(v) && !strcmp(key, "SmtpClientAuthenticationDisabled"))) {
            step_fail(res, "%s must be true or false", key);
            return -1;
        }
    }
    return 0;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *ids = json_object_get(ctx->params, "identities");
    const json_t *settings = json_object_get(ctx->params, "settings");
    const json_t *whole = json_object_get(ctx->params, "approved_request");
    const char *key = json_string_value(json_object_get(ctx->params, "approved_key"));
    const char *hash = json_string_value(json_object_get(ctx->params, "approved_hash"));
    size_t i;
    json_t *id;
    if (!json_is_array(ids) || json_array_size(ids) > MAX_IDENTITIES) {
        step_fail(res, "identities must be an array of at most %d mailboxes", MAX_IDENTITIES);
        return;
    }
    json_array_foreach(ids, i, id) if (!json_is_string(id) || !json_string_length(id))
    {
        step_fail(res, "identities[%zu] must be a non-empty string", i);
        return;
    }
    if (check_settings(settings, res))
        return;
    if (whole && !json_is_null(whole)) {
        if (m365_step_check_approved(res, whole, hash, key ? key : "identities", ids))
            return;
    } else if (hash && *hash) {
        step_fail(res, "approved_hash needs approved_request (the request the approval froze); "
                       "nothing was changed");
        return;
    }
    json_t *results = json_array(), *changed = json_array(), *unchanged = json_array(),
           *skipped = json_array(), *not_found = json_array();
    json_array_foreach(ids, i, id)
    {
        struct step_result one = {0};
        int gone = 0;
        struct m365_apply a = {
            .not_found = &gone,
            .set_cmdlet = "Set-CASMailbox",
            .identity = json_string_value(id),
            .settings = settings,
            .props = m365_cas_properties,
            .honour_exceptions = 1,
        };
        m365_step_apply(ctx, &one, &a);
        if (gone) {
            json_array_append(not_found, id);
            continue;
        }
        if (one.status != STEP_OK) {
            /* Retry or fail the whole step; what was done stays done. */
            *res = one;
            snprintf(res->error, sizeof res->error, "%s: %s", json_string_value(id), one.error);
            goto out;
        }
        const json_t *out = one.output;
        json_array_append(json_array_size(json_object_get(out, "changed")) ? changed : unchanged,
                          id);
        if (json_array_size(json_object_get(out, "skipped_exempt")))
            json_array_append(skipped, id);
        json_array_append_new(results, one.output);
    }
    step_ok(res, NULL,
            json_pack("{s:O, s:O, s:O, s:O, s:O, s:b}", "results", results, "changed", changed,
                      "unchanged", unchanged, "skipped_exempt", skipped, "not_found", not_found,
                      "dry_run", ctx->dry_run ? 1 : 0));
out:
    json_decref(results);
    json_decref(changed);
    json_decref(unchanged);
    json_decref(skipped);
    json_decref(not_found);
}

const struct step_type step_type_manage_cas_each = {
    .name = "manage_cas_each",
    .doc = "set the same CAS properties on a list of mailboxes, each as manage_cas does "
           "(read, honour exceptions, write only what differs, verify)",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
