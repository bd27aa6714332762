/*
 * step_cas_lookup.c - the `cas_lookup` step: read a mailbox's current client
 * access settings (Get-CASMailbox -Identity) live from Exchange Online.
 *
 * Output: {"identity", "found": true, "primary_smtp", "external_id",
 * "settings": {PopEnabled: ..., ...}}.  A mailbox that does not exist ends
 * with outcome "not_found" (output found = false), so a workflow can branch.
 */
#include "steps/m365_step.h"
#include "steps/step.h"

static const struct step_param params[] = {
    {"identity", SP_STRING, 1, "mailbox: UPN, primary SMTP address, alias or GUID"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", "not_found", NULL};

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    json_t *mbx = NULL;
    const char *identity = json_string_value(json_object_get(ctx->params, "identity"));
    if (!identity || !*identity) {
        step_fail(res, "identity must be a non-empty string");
        return;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    enum as_code rc = m365_cas_get(m, identity, &mbx, &err);
    if (rc == AS_ENOTFOUND) {
        step_ok(res, "not_found", json_pack("{s:s, s:b}", "identity", identity, "found", 0));
        return;
    }
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-CASMailbox", &err);
        return;
    }
    json_t *pse = json_object_get(mbx, "PrimarySmtpAddress");
    json_t *eid = json_object_get(mbx, "ExternalDirectoryObjectId");
    json_t *out = json_pack("{s:s, s:b, s:O, s:O, s:o}", "identity", identity, "found", 1,
                            "primary_smtp", pse ? pse : json_null(), "external_id",
                            eid ? eid : json_null(), "settings",
                            m365_step_pick(mbx, m365_cas_properties));
    json_decref(mbx);
    if (!out) {
        step_retry(res, 0, "out of memory");
        return;
    }
    step_ok(res, NULL, out);
}

const struct step_type step_type_cas_lookup = {
    .name = "cas_lookup",
    .doc = "read a mailbox's client access settings (Get-CASMailbox); outcome not_found when "
           "there is no such mailbox",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
