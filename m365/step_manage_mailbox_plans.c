/*
 * step_manage_mailbox_plans.c - the `manage_mailbox_plans` step: set CAS
 * mailbox plans (Set-CASMailboxPlan), e.g. POP and IMAP off so that new
 * mailboxes start without them:
 *
 *   {"type": "manage_mailbox_plans", "params": {
 *      "plans": "${steps.read.output.request.plans}",
 *      "approved_request": "${steps.read.output.request}",
 *      "approved_hash": "${steps.approve.output.request_hash}"}}
 *
 * plans maps a plan's Name to the settings it gets.  The step follows
 * manage_cas: with approved_request it acts only on exactly what was
 * approved; it reads EVERY plan first, and when one of them no longer exists
 * it fails naming it and writes nothing; it sends only the settings that
 * differ (a plan already compliant gets no write, a retry is a no-op),
 * re-reads each plan it wrote to verify, and outputs
 * {"results": [{plan, display_name, before, after, changed, command}],
 *  "changed": [names written], "unchanged": [names], "dry_run"}.
 * Turning OWA or MAPI off is refused (it would lock out every new mailbox).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "m365/m365_step.h"
#include "m365/org.h"

#define MAX_PLANS 200

static const struct step_param params[] = {
    {"plans", SP_OBJECT, 1,
     "plan Name -> settings, e.g. {\"ExchangeOnlineEnterprise-<guid>\": {\"PopEnabled\": false, "
     "\"ImapEnabled\": false}}"},
    {"approved_request", SP_OBJECT, 0, "the whole request an approval froze ({\"plans\": ...})"},
    {"approved_hash", SP_STRING, 0, "the approval's request_hash"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* The boolean plan settings this step may set. */
static const char *const settable[] = {"PopEnabled", "ImapEnabled", "ActiveSyncEnabled",
                                       "EwsEnabled", "ECPEnabled",  NULL};

static int check_plans(const json_t *plans, struct step_result *res)
{
    if (!json_is_object(plans) || json_object_size(plans) > MAX_PLANS) {
        step_fail(res, "plans must be an object of at most %d plans (Name -> settings)",
                  MAX_PLANS);
        return -1;
    }
    const char *name, *key;
    json_t *settings, *v;
    json_object_foreach((json_t *)plans, name, settings)
    {
        if (!*name || !json_is_object(settings) || !json_object_size(settings)) {
            step_fail(res, "plans[\"%s\"] must be a non-empty object of settings", name);
            return -1;
        }
        json_object_foreach(settings, key, v)
        {
            int known = 0;
            for (size_t i = 0; settable[i]; i++)
                known |= !strcmp(settable[i], key);
            if (!known) {
                step_fail(res, "plans[\"%s\"]: \"%s\" cannot be set by manage_mailbox_plans "
                               "(settable: PopEnabled, ImapEnabled, ActiveSyncEnabled, "
                               "EwsEnabled, ECPEnabled; OWA and MAPI off would lock out new "
                               "mailboxes)",
                          name, key);
                return -1;
            }
            if (!json_is_boolean(v)) {
                step_fail(res, "plans[\"%s\"].%s must be true or false", name, key);
                return -1;
            }
        }
    }
    return 0;
}

static json_t *pick(const json_t *plan)
{
    return m365_step_pick(plan, m365_plan_properties);
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    const json_t *plans = json_object_get(ctx->params, "plans");
    const json_t *whole = json_object_get(ctx->params, "approved_request");
    const char *hash = json_string_value(json_object_get(ctx->params, "approved_hash"));
    if (check_plans(plans, res))
        return;
    if (whole && !json_is_null(whole)) {
        if (m365_step_check_approved(res, whole, hash, "plans", plans))
            return;
    } else if (hash && *hash) {
        step_fail(res, "approved_hash needs approved_request (the request the approval froze); "
                       "nothing was changed");
        return;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    json_t *before = json_object(), *results = json_array(), *changed = json_array(),
           *unchanged = json_array();
    if (!before || !results || !changed || !unchanged) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    /* Read every plan before writing any: a plan that is gone stops the
     * whole change before anything is written. */
    const char *name;
    json_t *settings;
    json_object_foreach((json_t *)plans, name, settings)
    {
        json_t *now = NULL;
        enum as_code rc = m365_plan_get(m, name, &now, &err);
        if (rc == AS_ENOTFOUND) {
            step_fail(res, "mailbox plan '%s' no longer exists (Get-CASMailboxPlan finds no such "
                           "plan); nothing was changed: review the plans and request again",
                      name);
            goto out;
        }
        if (rc) {
            m365_step_error(ctx, res, m, rc, "Get-CASMailboxPlan", &err);
            goto out;
        }
        json_object_set_new(before, name, now);
    }
    json_object_foreach((json_t *)plans, name, settings)
    {
        json_t *cur = json_object_get(before, name);
        json_t *diff = json_object();
        const char *key;
        json_t *want;
        json_object_foreach(settings, key, want)
        {
            json_t *have = json_object_get(cur, key);
            if (!json_equal(have ? have : json_null(), want))
                json_object_set(diff, key, want);
        }
        json_t *after = pick(cur);
        char *command = NULL;
        json_t *warnings = NULL;
        if (json_object_size(diff)) {
            json_t *cp = json_deep_copy(diff);
            json_object_set_new(cp, "Identity", json_string(name));
            command = m365_powershell_command("Set-CASMailboxPlan", cp);
            if (ctx->dry_run) {
                step_event(ctx, "m365.dry_run",
                           json_pack("{s:s, s:O, s:s?}", "cmdlet", "Set-CASMailboxPlan",
                                     "parameters", cp, "command", command));
                json_object_update(after, diff);
            } else {
                enum as_code rc = m365_plan_set(m, name, diff, &warnings, &err);
                if (rc) {
                    json_decref(cp);
                    json_decref(diff);
                    json_decref(after);
                    free(command);
                    /* A retry reads again and sends only what is still missing. */
                    m365_step_error(ctx, res, m, rc, "Set-CASMailboxPlan", &err);
                    goto out;
                }
                step_event(ctx, "m365.write",
                           json_pack("{s:s, s:O, s:s?, s:o}", "cmdlet", "Set-CASMailboxPlan",
                                     "parameters", cp, "command", command, "warnings",
                                     warnings ? json_incref(warnings) : json_array()));
                json_t *now = NULL;
                rc = m365_plan_get(m, name, &now, &err);
                if (rc) {
                    json_decref(cp);
                    json_decref(diff);
                    json_decref(after);
                    json_decref(warnings);
                    free(command);
                    m365_step_error(ctx, res, m, rc, "verifying the change", &err);
                    goto out;
                }
                json_decref(after);
                after = pick(now);
                json_decref(now);
                json_object_foreach(settings, key, want)
                {
                    json_t *have = json_object_get(after, key);
                    if (!json_equal(have ? have : json_null(), want)) {
                        step_retry(res, 0, "Set-CASMailboxPlan was sent but plan '%s' reads %s "
                                           "%s; will re-check",
                                   name, key, json_is_true(have) ? "true" : "not as set");
                        json_decref(cp);
                        json_decref(diff);
                        json_decref(after);
                        json_decref(warnings);
                        free(command);
                        goto out;
                    }
                }
            }
            json_decref(cp);
        }
        const char *display = json_string_value(json_object_get(cur, "DisplayName"));
        json_array_append_new(json_object_size(diff) ? changed : unchanged, json_string(name));
        json_t *one = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "plan", name, "display_name",
                                display ? display : name, "before", pick(cur), "after", after,
                                "changed", json_object_size(diff) ? json_incref(diff)
                                                                  : json_object(),
                                "command", command ? json_string(command) : json_null());
        if (one && warnings && json_array_size(warnings))
            json_object_set(one, "warnings", warnings);
        json_array_append_new(results, one);
        json_decref(warnings);
        json_decref(diff);
        free(command);
    }
    step_ok(res, NULL,
            json_pack("{s:O, s:O, s:O, s:b}", "results", results, "changed", changed,
                      "unchanged", unchanged, "dry_run", ctx->dry_run ? 1 : 0));
out:
    json_decref(before);
    json_decref(results);
    json_decref(changed);
    json_decref(unchanged);
}

const struct step_type step_type_manage_mailbox_plans = {
    .name = "manage_mailbox_plans",
    .doc = "set CAS mailbox plans (Set-CASMailboxPlan), e.g. POP and IMAP off for new mailboxes: "
           "reads every plan first (a plan gone: nothing written), writes only what differs, "
           "verifies; approved_request/approved_hash hold it to the approved change",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
