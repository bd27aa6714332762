/*
 * step_manage_transport.c - the `manage_transport` step: the organisation-wide
 * transport settings (Set-TransportConfig), e.g. turn SMTP AUTH off for the
 * whole tenant:
 *
 *   {"type": "manage_transport", "params": {"settings":
 *     {"SmtpClientAuthenticationDisabled": true}}}
 *
 * Same pattern as manage_cas: read, change only what differs, verify, output
 * before/after; "approved_hash" is the SHA-256 of
 * {"identity":"","settings":{...}} (the organisation has no identity).
 */
#include <string.h>

#include "steps/m365_step.h"
#include "steps/step.h"

static const struct step_param params[] = {
    {"settings", SP_OBJECT, 1,
     "transport settings: SmtpClientAuthenticationDisabled and/or AllowLegacyTLSClients (bool)"},
    {"approved_hash", SP_STRING, 0, "SHA-256 of the approved request: refuse anything else"},
    {"expect", SP_OBJECT, 0, "state the request was based on: refuse if it changed"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static int known(const char *name)
{
    for (size_t i = 0; m365_transport_properties[i]; i++)
        if (strcmp(m365_transport_properties[i], name) == 0)
            return 1;
    return 0;
}

static void validate(const json_t *p, const char *path, struct diag_list *out)
{
    char spath[600], base[560];
    const json_t *settings = json_object_get(p, "settings");
    if (!json_is_object(settings))
        return;
    snprintf(base, sizeof base, "%s.settings", path);
    if (json_object_size(settings) == 0)
        diag_add(out, DIAG_ERROR, "BAD_PARAM_VALUE", base, "settings is empty: nothing to set");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)settings, key, v)
    {
        m365_step_path(spath, sizeof spath, base, key);
        if (!known(key))
            diag_add(out, DIAG_ERROR, "UNKNOWN_TRANSPORT_PROPERTY", spath,
                     "unknown transport setting \"%s\" (known: SmtpClientAuthenticationDisabled, "
                     "AllowLegacyTLSClients)", key);
        else if (!json_is_boolean(v) &&
                 !(json_is_string(v) && strstr(json_string_value(v), "${")))
            diag_add(out, DIAG_ERROR, "BAD_PARAM_VALUE", spath, "%s must be true or false", key);
    }
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const json_t *settings = json_object_get(ctx->params, "settings");
    const json_t *expect = json_object_get(ctx->params, "expect");
    const char *key;
    json_t *v;
    if (!json_is_object(settings) || json_object_size(settings) == 0) {
        step_fail(res, "settings must be a non-empty object");
        return;
    }
    json_object_foreach((json_t *)settings, key, v)
    {
        if (!known(key) || !json_is_boolean(v)) {
            step_fail(res, "transport setting \"%s\" must be SmtpClientAuthenticationDisabled or "
                           "AllowLegacyTLSClients with a true/false value", key);
            return;
        }
    }
    struct m365_apply a = {
        .set_cmdlet = "Set-TransportConfig",
        .identity = NULL,
        .settings = settings,
        .expect = json_is_object(expect) ? expect : NULL,
        .approved_hash = json_string_value(json_object_get(ctx->params, "approved_hash")),
        .props = m365_transport_properties,
    };
    m365_step_apply(ctx, res, &a);
}

const struct step_type step_type_manage_transport = {
    .name = "manage_transport",
    .doc = "set organisation-wide transport settings (Set-TransportConfig): SMTP AUTH, legacy TLS",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
