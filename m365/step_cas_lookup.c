/*
 * step_cas_lookup.c - the `cas_lookup` step: read a mailbox's current client
 * access settings (Get-CASMailbox -Identity) live from Exchange Online.
 *
 * Output: {"identity", "found": true, "primary_smtp", "external_id",
 * "settings": {PopEnabled: ..., ...}}.  A mailbox that does not exist ends
 * with outcome "not_found" (output found = false), so a workflow can branch.
 *
 * With "protocols" (e.g. the KPI row's protocols_enabled) it is the re-check
 * before asking anyone: it also reads the user's exceptions in force now and
 * adds "still_on" (those protocols still on and not exempt now), its text
 * "still_on_text" ("POP, SMTP AUTH"), "cas_settings" (the Set-CASMailbox
 * settings that turn them off), "current" (the mailbox's values of those
 * settings now), "already_off", "exempt_now", "exempt_protocols",
 * "exceptions" and "nothing_left" (true when nothing is still on).  SMTP AUTH
 * on a mailbox that follows the organisation (null) is judged by
 * Get-TransportConfig.
 */
#include <stdio.h>

#include "m365/kpi.h"
#include "base/timeutil.h"
#include "m365/m365_step.h"
#include "engine/step.h"

static const struct step_param params[] = {
    {"identity", SP_STRING, 1, "mailbox: UPN, primary SMTP address, alias or GUID"},
    {"protocols", SP_ANY, 0,
     "re-check these legacy protocols (pop, imap, smtp, activesync, ews) against the mailbox "
     "and the exceptions in force now; adds still_on, cas_settings, current, ..."},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", "not_found", NULL};

/*
 * The re-check: which of `want` are still on for the mailbox now and not
 * exempt now, and the Set-CASMailbox settings that turn them off, added to
 * out.  Returns 0, or -1 with res filled.
 */
static int recheck(struct step_ctx *ctx, struct step_result *res, struct m365 *m,
                   const char *identity, unsigned want, const json_t *mbx, json_t *out)
{
    struct as_err err = {0};
    json_t *org = NULL, *reasons = NULL;
    unsigned exempt = 0, still = 0, off = 0, exempt_hit = 0;
    int result = -1;
    if (kpi_exemption_now(ctx->app, identity, ctx->now_ms ? ctx->now_ms : time_now_ms(), &exempt,
                          &reasons, &err) != AS_OK) {
        step_retry(res, 0, "reading the exceptions in force: %s", err.msg);
        return -1;
    }
    const json_t *smtp = json_object_get(mbx, "SmtpClientAuthenticationDisabled");
    if ((want & KPI_P_SMTP) && !(exempt & KPI_P_SMTP) && (!smtp || json_is_null(smtp))) {
        /* The mailbox follows the organisation: its setting decides. */
        enum as_code rc = m365_transport_get(m, &org, &err);
        if (rc) {
            m365_step_error(ctx, res, m, rc, "Get-TransportConfig", &err);
            goto out;
        }
    }
    json_t *settings = json_object(), *current = json_object();
    char text[256] = "";
    size_t n_text = 0;
    json_object_set_new(out, "cas_settings", settings);
    json_object_set_new(out, "current", current);
    for (unsigned bit = 1; bit < KPI_P_ALL; bit <<= 1) {
        if (!(want & bit))
            continue;
        if (exempt & bit) {
            exempt_hit |= bit;
            continue;
        }
        if (kpi_protocol_on(bit, mbx, org) == 0) {
            off |= bit;
            continue;
        }
        /* On, or unknown (property missing): ask, and manage_cas reads again. */
        still |= bit;
        const char *display = NULL;
        const char *cas = kpi_protocol_cas(bit, &display);
        json_object_set_new(settings, cas, json_boolean(bit == KPI_P_SMTP));
        const json_t *cur = json_object_get(mbx, cas);
        json_object_set(current, cas, cur ? (json_t *)cur : json_null());
        n_text += (size_t)snprintf(text + n_text, n_text < sizeof text ? sizeof text - n_text : 0,
                                   "%s%s", n_text ? ", " : "", display);
    }
    json_object_set_new(out, "still_on", still ? kpi_protocols_json(still) : json_array());
    json_object_set_new(out, "still_on_text", json_string(text));
    json_object_set_new(out, "already_off", off ? kpi_protocols_json(off) : json_array());
    json_object_set_new(out, "exempt_now", exempt_hit ? kpi_protocols_json(exempt_hit) : json_array());
    json_object_set_new(out, "exempt_protocols", exempt ? kpi_protocols_json(exempt) : json_array());
    json_object_set_new(out, "exceptions", reasons ? json_incref(reasons) : json_array());
    json_object_set_new(out, "nothing_left", json_boolean(!still));
    result = 0;
out:
    json_decref(org);
    json_decref(reasons);
    return result;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    json_t *mbx = NULL;
    unsigned want = 0;
    const char *identity = json_string_value(json_object_get(ctx->params, "identity"));
    const json_t *protocols = json_object_get(ctx->params, "protocols");
    if (!identity || !*identity) {
        step_fail(res, "identity must be a non-empty string");
        return;
    }
    if (protocols && !json_is_null(protocols) &&
        !(json_is_array(protocols) && json_array_size(protocols) == 0) &&
        kpi_protocols_parse(protocols, &want, &err) != AS_OK) {
        step_fail(res, "protocols: %s", err.msg);
        return;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    enum as_code rc = m365_cas_get(m, identity, &mbx, &err);
    if (rc == AS_ENOTFOUND) {
        step_ok(res, "not_found", json_pack("{s:s, s:b, s:b, s:[], s:s}", "identity", identity,
                                            "found", 0, "nothing_left", 1, "still_on",
                                            "still_on_text", ""));
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
    if (!out) {
        json_decref(mbx);
        step_retry(res, 0, "out of memory");
        return;
    }
    if (protocols && !json_is_null(protocols) &&
        recheck(ctx, res, m, identity, want, mbx, out)) {
        json_decref(mbx);
        json_decref(out);
        return;
    }
    json_decref(mbx);
    step_ok(res, NULL, out);
}

const struct step_type step_type_cas_lookup = {
    .name = "cas_lookup",
    .doc = "read a mailbox's client access settings (Get-CASMailbox); outcome not_found when "
           "there is no such mailbox; with protocols, re-check which are still on and not exempt",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
