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
 * Turning SMTP AUTH off for the organisation is checked against the
 * exceptions in force when it executes: users exempt for smtp whose mailbox
 * follows the organisation setting would lose it, so the step fails naming
 * them (nothing written) unless "allow_exempt_inheriting": true.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_kpi.h"
#include "engine/app.h"
#include "m365/kpi.h"
#include "base/timeutil.h"
#include "m365/m365_step.h"
#include "engine/step.h"

static const struct step_param params[] = {
    {"settings", SP_OBJECT, 1,
     "transport settings: SmtpClientAuthenticationDisabled and/or AllowLegacyTLSClients (bool)"},
    {"approved_hash", SP_STRING, 0, "SHA-256 of the approved request: refuse anything else"},
    {"approved_request", SP_OBJECT, 0,
     "the whole request an approval froze (its hash is approved_hash), when these settings are "
     "one part of it: its \"settings\" must equal settings"},
    {"expect", SP_OBJECT, 0, "state the request was based on: refuse if it changed"},
    {"allow_exempt_inheriting", SP_BOOL, 0,
     "turn SMTP AUTH off for the organisation even though users with an SMTP exception "
     "follow the organisation setting (they lose SMTP AUTH)"},
    {NULL, SP_ANY, 0, NULL},
};

/* Users with an exception for smtp in force now, as a new array of UPNs. */
static enum as_code smtp_exempt_users(struct step_ctx *ctx, json_t **out, struct as_err *err)
{
    json_t *list = NULL;
    *out = json_array();
    if (!*out)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_exception_list(ctx->app->db, DB_EXC_ACTIVE, NULL,
                                        ctx->now_ms ? ctx->now_ms : time_now_ms(), &list, err);
    if (rc)
        return rc;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        unsigned mask = 0;
        struct as_err perr = {0};
        if (kpi_protocols_parse(json_object_get(e, "protocols"), &mask, &perr) == AS_OK &&
            (mask & KPI_P_SMTP))
            json_array_append(*out, json_object_get(e, "upn"));
    }
    json_decref(list);
    return AS_OK;
}

/*
 * Re-check against the exceptions in force: turning SMTP AUTH off for the
 * organisation also turns it off for every mailbox that follows the
 * organisation setting, including users exempt for smtp.  Such users must be
 * set explicitly first (Set-CASMailbox -SmtpClientAuthenticationDisabled
 * $false), or the change allowed with allow_exempt_inheriting.  Returns 0 to
 * go on, -1 with res filled.
 */
static int check_exempt_inheriting(struct step_ctx *ctx, struct step_result *res,
                                   const json_t *settings)
{
    struct as_err err = {0};
    json_t *org = NULL, *users = NULL, *inheriting = NULL;
    int result = -1;
    if (!json_is_true(json_object_get(settings, "SmtpClientAuthenticationDisabled")) ||
        json_is_true(json_object_get(ctx->params, "allow_exempt_inheriting")))
        return 0;
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return -1;
    enum as_code rc = m365_transport_get(m, &org, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-TransportConfig", &err);
        goto out;
    }
    if (json_is_true(json_object_get(org, "SmtpClientAuthenticationDisabled"))) {
        result = 0; /* already off: the change adds nothing for anyone */
        goto out;
    }
    if (smtp_exempt_users(ctx, &users, &err) != AS_OK) {
        step_retry(res, 0, "reading the exceptions in force: %s", err.msg);
        goto out;
    }
    inheriting = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        json_t *mbx = NULL;
        rc = m365_cas_get(m, json_string_value(u), &mbx, &err);
        if (rc == AS_ENOTFOUND)
            continue;
        if (rc) {
            m365_step_error(ctx, res, m, rc, "Get-CASMailbox", &err);
            goto out;
        }
        const json_t *v = json_object_get(mbx, "SmtpClientAuthenticationDisabled");
        if (!v || json_is_null(v))
            json_array_append(inheriting, u);
        json_decref(mbx);
    }
    if (json_array_size(inheriting)) {
        char *names = json_dumps(inheriting, JSON_COMPACT);
        step_event(ctx, "m365.exempt_inheriting",
                   json_pack("{s:O}", "users", inheriting));
        step_fail(res, "%zu user(s) with an SMTP exception in force follow the organisation "
                       "setting and would lose SMTP AUTH: %.700s; set them explicitly first "
                       "(Set-CASMailbox -SmtpClientAuthenticationDisabled $false) or allow it "
                       "with allow_exempt_inheriting; nothing was changed",
                  json_array_size(inheriting), names ? names : "?");
        free(names);
        goto out;
    }
    result = 0;
out:
    json_decref(org);
    json_decref(users);
    json_decref(inheriting);
    return result;
}

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
    const char *hash = json_string_value(json_object_get(ctx->params, "approved_hash"));
    const json_t *whole = json_object_get(ctx->params, "approved_request");
    if (whole && !json_is_null(whole)) {
        if (m365_step_check_approved(res, whole, hash, "settings", settings))
            return;
        hash = NULL; /* checked over the whole request */
    }
    if (check_exempt_inheriting(ctx, res, settings))
        return;
    struct m365_apply a = {
        .set_cmdlet = "Set-TransportConfig",
        .identity = NULL,
        .settings = settings,
        .expect = json_is_object(expect) ? expect : NULL,
        .approved_hash = hash,
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
