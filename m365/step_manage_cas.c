/*
 * step_manage_cas.c - the `manage_cas` step: set a mailbox's client access
 * protocols (Set-CASMailbox), e.g. disable POP, IMAP and SMTP AUTH:
 *
 *   {"type": "manage_cas", "params": {"identity": "${input.upn}",
 *     "settings": {"PopEnabled": false, "ImapEnabled": false,
 *                  "SmtpClientAuthenticationDisabled": true}}}
 *
 * It reads the mailbox first and sends only the settings that differ, so a
 * retry (or a re-claim after a crash) is a no-op; it re-reads to verify and
 * outputs the before and after states.  Turning off OWA or MAPI locks users
 * out of Outlook: validate refuses it unless "allow_lockout": true.  With
 * "approved_hash" (the request hash an approval froze) the step refuses to
 * act on anything but the approved request; with "expect" (the state the
 * request was based on) it refuses when the mailbox has changed since.
 * Just before writing it reads the user's exceptions in force again: a
 * setting that would turn off an exempt protocol is left out and reported in
 * "skipped_exempt" (see m365_step.h).
 */
#include <string.h>
#include <strings.h>

#include "m365/m365_step.h"
#include "engine/step.h"

static const struct step_param params[] = {
    {"identity", SP_STRING, 1, "mailbox: UPN, primary SMTP address, alias or GUID"},
    {"settings", SP_OBJECT, 1,
     "CAS properties to set, e.g. {\"PopEnabled\": false, \"SmtpClientAuthenticationDisabled\": true}"},
    {"allow_lockout", SP_BOOL, 0, "must be true to disable OWAEnabled or MAPIEnabled"},
    {"approved_hash", SP_STRING, 0,
     "SHA-256 of the approved request {identity, settings}: refuse anything else"},
    {"expect", SP_OBJECT, 0, "mailbox state the request was based on: refuse if it changed"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

/* Settings that lock users out of Outlook when false. */
static int lockout_property(const char *name)
{
    return strcmp(name, "OWAEnabled") == 0 || strcmp(name, "MAPIEnabled") == 0;
}

static int is_template(const json_t *v)
{
    return json_is_string(v) && strstr(json_string_value(v), "${") != NULL;
}

static const char *suggest(const char *name)
{
    for (size_t i = 0; m365_cas_properties[i]; i++)
        if (strcasecmp(m365_cas_properties[i], name) == 0)
            return m365_cas_properties[i];
    return NULL;
}

static void validate(const json_t *p, const char *path, struct diag_list *out)
{
    char spath[600], base[560];
    const json_t *settings = json_object_get(p, "settings");
    const json_t *allow = json_object_get(p, "allow_lockout");
    int allowed = json_is_true(allow);
    if (!json_is_object(settings))
        return; /* missing or a template: the generic parameter check reports it */
    snprintf(base, sizeof base, "%s.settings", path);
    if (json_object_size(settings) == 0)
        diag_add(out, DIAG_ERROR, "BAD_PARAM_VALUE", base, "settings is empty: nothing to set");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)settings, key, v)
    {
        m365_step_path(spath, sizeof spath, base, key);
        if (!m365_cas_property_known(key)) {
            const char *s = suggest(key);
            if (s)
                diag_add(out, DIAG_ERROR, "UNKNOWN_CAS_PROPERTY", spath,
                         "unknown CAS property \"%s\"; did you mean \"%s\"?", key, s);
            else
                diag_add(out, DIAG_ERROR, "UNKNOWN_CAS_PROPERTY", spath,
                         "unknown CAS property \"%s\"", key);
            continue;
        }
        if (!json_is_boolean(v) && !is_template(v) &&
            !(json_is_null(v) && strcmp(key, "SmtpClientAuthenticationDisabled") == 0)) {
            diag_add(out, DIAG_ERROR, "BAD_PARAM_VALUE", spath,
                     "%s must be true or false%s", key,
                     strcmp(key, "SmtpClientAuthenticationDisabled") == 0
                         ? " (or null: follow the organisation setting)"
                         : "");
            continue;
        }
        if (lockout_property(key) && !allowed) {
            if (json_is_false(v))
                diag_add(out, DIAG_ERROR, "LOCKOUT_RISK", spath,
                         "setting %s to false locks the user out of Outlook; add "
                         "\"allow_lockout\": true to the step's params if that is intended",
                         key);
            else if (is_template(v))
                diag_add(out, DIAG_WARNING, "LOCKOUT_RISK", spath,
                         "%s comes from an expression and may be false, which locks the user out "
                         "of Outlook; the step refuses that at run time unless \"allow_lockout\": "
                         "true",
                         key);
        }
    }
}

/* The run-time twin of validate: settings are resolved now. */
static int check_settings(const json_t *settings, int allowed, struct step_result *res)
{
    const char *key;
    json_t *v;
    if (!json_is_object(settings) || json_object_size(settings) == 0) {
        step_fail(res, "settings must be a non-empty object of CAS properties");
        return -1;
    }
    json_object_foreach((json_t *)settings, key, v)
    {
        if (!m365_cas_property_known(key)) {
            step_fail(res, "unknown CAS property \"%s\"", key);
            return -1;
        }
        if (!json_is_boolean(v) &&
            !(json_is_null(v) && strcmp(key, "SmtpClientAuthenticationDisabled") == 0)) {
            step_fail(res, "%s must be true or false", key);
            return -1;
        }
        if (lockout_property(key) && json_is_false(v) && !allowed) {
            step_fail(res, "refusing to set %s to false without \"allow_lockout\": true (it locks "
                           "the user out of Outlook)",
                      key);
            return -1;
        }
    }
    return 0;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    const char *identity = json_string_value(json_object_get(ctx->params, "identity"));
    const json_t *settings = json_object_get(ctx->params, "settings");
    const json_t *expect = json_object_get(ctx->params, "expect");
    const json_t *hash = json_object_get(ctx->params, "approved_hash");
    if (!identity || !*identity) {
        step_fail(res, "identity must be a non-empty string");
        return;
    }
    if (check_settings(settings, json_is_true(json_object_get(ctx->params, "allow_lockout")), res))
        return;
    if (expect && !json_is_object(expect) && !json_is_null(expect)) {
        step_fail(res, "expect must be an object");
        return;
    }
    if (hash && !json_is_string(hash) && !json_is_null(hash)) {
        step_fail(res, "approved_hash must be a string");
        return;
    }
    struct m365_apply a = {
        .set_cmdlet = "Set-CASMailbox",
        .identity = identity,
        .settings = settings,
        .expect = json_is_object(expect) ? expect : NULL,
        .approved_hash = json_string_value(hash),
        .props = m365_cas_properties,
        .honour_exceptions = 1,
    };
    m365_step_apply(ctx, res, &a);
}

const struct step_type step_type_manage_cas = {
    .name = "manage_cas",
    .doc = "set a mailbox's client access protocols (Set-CASMailbox): reads first, changes only "
           "what differs, verifies, outputs before/after; dry-run records the exact command",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
