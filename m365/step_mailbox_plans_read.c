/*
 * step_mailbox_plans_read.c - the `mailbox_plans_read` step: which CAS
 * mailbox plans give new mailboxes POP or IMAP, read live
 * (Get-CASMailboxPlan), for the approval of workflows/mailbox-plans.json:
 *
 *   {"type": "mailbox_plans_read", "params": {}}
 *
 * It writes nothing.  Output:
 *   plans        every plan: {name, display_name, PopEnabled, ImapEnabled,
 *                legacy_on}
 *   to_change    the plans with POP or IMAP on: {name, display_name,
 *                settings (only what differs: PopEnabled/ImapEnabled
 *                false), command (the exact Set-CASMailboxPlan line)}
 *   commands     those lines, in plan order
 *   compliant    display names of the plans already off
 *   request      {"plans": {name: settings}}: what the approval freezes and
 *                manage_mailbox_plans carries out
 *   nothing_to_do  no plan has POP or IMAP on
 */
#include <stdlib.h>
#include <string.h>

#include "m365/m365_step.h"
#include "m365/org.h"

static const struct step_param params[] = {
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static json_t *or_null(json_t *v)
{
    return v ? v : json_null();
}

static enum as_code collect(const json_t *plan, void *ud, struct as_err *err)
{
    if (plan && json_array_append((json_t *)ud, (json_t *)plan))
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    json_t *found = json_array();
    json_t *plans = json_array(), *to_change = json_array(), *commands = json_array(),
           *compliant = json_array(), *request = json_object();
    if (!found || !plans || !to_change || !commands || !compliant || !request) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    enum as_code rc = m365_plans_list(m, collect, found, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-CASMailboxPlan", &err);
        goto out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(found, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "Name"));
        const char *display = json_string_value(json_object_get(p, "DisplayName"));
        if (!name || !*name)
            continue;
        if (!display)
            display = name;
        int on = m365_plan_legacy_on(p);
        json_array_append_new(plans, json_pack("{s:s, s:s, s:O, s:O, s:b}", "name", name,
                                               "display_name", display, "PopEnabled",
                                               or_null(json_object_get(p, "PopEnabled")),
                                               "ImapEnabled",
                                               or_null(json_object_get(p, "ImapEnabled")),
                                               "legacy_on", on));
        if (!on) {
            json_array_append_new(compliant, json_string(display));
            continue;
        }
        json_t *settings = json_object();
        for (size_t k = 0; m365_plan_legacy_settings[k]; k++)
            if (json_is_true(json_object_get(p, m365_plan_legacy_settings[k])))
                json_object_set_new(settings, m365_plan_legacy_settings[k], json_false());
        json_t *cmd_params = json_deep_copy(settings);
        json_object_set_new(cmd_params, "Identity", json_string(name));
        char *command = m365_powershell_command("Set-CASMailboxPlan", cmd_params);
        json_decref(cmd_params);
        if (!command) {
            json_decref(settings);
            step_retry(res, 0, "out of memory");
            goto out;
        }
        json_array_append_new(to_change, json_pack("{s:s, s:s, s:O, s:s}", "name", name,
                                                   "display_name", display, "settings",
                                                   settings, "command", command));
        json_array_append_new(commands, json_string(command));
        json_object_set_new(request, name, settings);
        free(command);
    }
    json_t *output = json_pack("{s:O, s:O, s:O, s:O, s:{s:O}, s:b}", "plans", plans, "to_change",
                               to_change, "commands", commands, "compliant", compliant,
                               "request", "plans", request, "nothing_to_do",
                               json_array_size(to_change) == 0);
    if (!output) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    step_ok(res, NULL, output);
out:
    json_decref(found);
    json_decref(plans);
    json_decref(to_change);
    json_decref(commands);
    json_decref(compliant);
    json_decref(request);
}

const struct step_type step_type_mailbox_plans_read = {
    .name = "mailbox_plans_read",
    .doc = "read the CAS mailbox plans live (Get-CASMailboxPlan): which give new mailboxes POP or "
           "IMAP, the exact Set-CASMailboxPlan lines that would turn them off, and the request "
           "an approval freezes; writes nothing",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
