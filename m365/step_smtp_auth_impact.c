/*
 * step_smtp_auth_impact.c - the `smtp_auth_impact` step: what turning SMTP
 * AUTH off for the whole organisation (Set-TransportConfig
 * -SmtpClientAuthenticationDisabled $true) would do, for the approver of
 * workflows/tenant-smtp-auth.json:
 *
 *   {"type": "smtp_auth_impact", "params": {"reset_explicit": false}}
 *
 * The organisation's setting is read live (Get-TransportConfig); the
 * mailboxes, their use of SMTP and the exceptions come from the last sync
 * and the store.  Output:
 *   org_disabled        the organisation's setting now (true: already off)
 *   mailboxes           mailboxes synced
 *   inheriting          mailboxes that follow the organisation (null on the
 *                       mailbox): they lose SMTP AUTH when it goes off
 *   inheriting_used     those of them that used SMTP in the last 30 days
 *                       (usage report, Authenticated SMTP sign-ins or the
 *                       SMTP AUTH clients report), UPNs
 *   exempt_inheriting   inheriting users with an exception for smtp (or
 *                       all) in force: the workflow keeps SMTP AUTH on for
 *                       them explicitly before the switch, so the exception
 *                       holds
 *   explicit            mailboxes that enable SMTP AUTH explicitly (false on
 *                       the mailbox): [{"upn", "exception": bool}]
 *   reset               with reset_explicit: those of them without an
 *                       exception covering smtp, to be set back to follow
 *                       the organisation ($null); else []
 *   request             {"settings": {"SmtpClientAuthenticationDisabled":
 *                       true}, "keep": exempt_inheriting, "reset": reset},
 *                       what the approval freezes and the writes check
 *   nothing_to_do       the organisation is off already and nothing is
 *                       to be kept or reset
 * Lists are capped at max_list (default 500) entries; the counts are not.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_tenant.h"
#include "engine/app.h"
#include "m365/kpi.h"
#include "m365/m365_step.h"
#include "base/timeutil.h"

static const struct step_param params[] = {
    {"reset_explicit", SP_BOOL, 0,
     "also set mailboxes that enable SMTP AUTH explicitly, with no exception for smtp, back to "
     "follow the organisation"},
    {"max_list", SP_INT, 0, "most entries listed per list (default 500, at most 5000)"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

struct impact {
    struct kpi_exemptions *ex;
    int reset_explicit;
    size_t max_list;
    long mailboxes, inheriting, inheriting_used_n, explicit_n;
    json_t *inheriting_used, *exempt_inheriting, *explicit, *reset;
    int oom;
};

static int used_smtp(const json_t *row)
{
    return json_is_true(json_object_get(row, "smtp_30d")) ||
           json_integer_value(json_object_get(row, "smtp_signins_30d")) > 0 ||
           json_integer_value(json_object_get(row, "smtp_basic_30d")) > 0;
}

static void add(struct impact *im, json_t *list, json_t *v)
{
    if (!v || json_array_size(list) >= im->max_list) {
        im->oom |= !v;
        json_decref(v);
        return;
    }
    if (json_array_append_new(list, v))
        im->oom = 1;
}

static int on_row(const json_t *row, void *ud)
{
    struct impact *im = ud;
    if (!json_is_true(json_object_get(row, "has_mailbox")))
        return 0;
    im->mailboxes++;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    const json_t *own = json_object_get(row, "smtp_client_auth_disabled_mailbox");
    int exempt = (kpi_exemptions_mask(im->ex, upn, NULL) & KPI_P_SMTP) != 0;
    if (json_is_null(own) || !own) {
        im->inheriting++;
        if (used_smtp(row)) {
            im->inheriting_used_n++;
            add(im, im->inheriting_used, json_string(upn));
        }
        if (exempt)
            add(im, im->exempt_inheriting, json_string(upn));
    } else if (json_is_false(own)) {
        im->explicit_n++;
        add(im, im->explicit, json_pack("{s:s, s:b}", "upn", upn, "exception", exempt));
        if (im->reset_explicit && !exempt)
            add(im, im->reset, json_string(upn));
    }
    return im->oom;
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    struct impact im = {.reset_explicit = json_is_true(json_object_get(ctx->params,
                                                                        "reset_explicit")),
                        .max_list = 500};
    json_t *mlist = json_object_get(ctx->params, "max_list");
    if (json_is_integer(mlist)) {
        json_int_t v = json_integer_value(mlist);
        if (v < 1 || v > 5000) {
            step_fail(res, "max_list must be from 1 to 5000");
            return;
        }
        im.max_list = (size_t)v;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    json_t *org = NULL;
    enum as_code rc = m365_transport_get(m, &org, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-TransportConfig", &err);
        return;
    }
    int org_disabled = json_is_true(json_object_get(org, "SmtpClientAuthenticationDisabled"));
    json_decref(org);

    int64_t synced = 0;
    char status[16];
    if (db_tenant_last_completed_sync(ctx->app->db, &synced, status, sizeof status, &err) !=
        AS_OK) {
        step_retry(res, 0, "reading the last sync: %s", err.msg);
        return;
    }
    if (!synced) {
        step_fail(res, "no tenant sync yet: run `assent sync` first (the impact on mailboxes "
                       "comes from it)");
        return;
    }
    im.inheriting_used = json_array();
    im.exempt_inheriting = json_array();
    im.explicit = json_array();
    im.reset = json_array();
    rc = kpi_exemptions_load(ctx->app, ctx->now_ms ? ctx->now_ms : time_now_ms(), &im.ex, &err);
    if (!rc)
        rc = db_tenant_users_foreach(ctx->app->db, on_row, &im, &err);
    if (!rc && im.oom)
        rc = as_errf(&err, AS_ENOMEM, "out of memory");
    if (rc) {
        step_retry(res, 0, "reading the synced mailboxes: %s", err.msg);
        goto out;
    }
    char synced_at[40];
    time_format_iso(synced, synced_at, sizeof synced_at);
    int nothing = org_disabled && json_array_size(im.reset) == 0 &&
                  json_array_size(im.exempt_inheriting) == 0;
    json_t *request = json_pack("{s:{s:b}, s:O, s:O}", "settings",
                                "SmtpClientAuthenticationDisabled", 1, "keep",
                                im.exempt_inheriting, "reset", im.reset);
    json_t *out = json_pack(
        "{s:b, s:s, s:I, s:I, s:I, s:O, s:O, s:I, s:O, s:O, s:o, s:b}", "org_disabled",
        org_disabled, "synced_at", synced_at, "mailboxes", (json_int_t)im.mailboxes,
        "inheriting", (json_int_t)im.inheriting, "inheriting_used_count",
        (json_int_t)im.inheriting_used_n, "inheriting_used", im.inheriting_used,
        "exempt_inheriting", im.exempt_inheriting, "explicit_count", (json_int_t)im.explicit_n,
        "explicit", im.explicit, "reset", im.reset, "request", request, "nothing_to_do", nothing);
    if (!out) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    step_ok(res, NULL, out);
out:
    kpi_exemptions_free(im.ex);
    json_decref(im.inheriting_used);
    json_decref(im.exempt_inheriting);
    json_decref(im.explicit);
    json_decref(im.reset);
}

const struct step_type step_type_smtp_auth_impact = {
    .name = "smtp_auth_impact",
    .doc = "what turning SMTP AUTH off for the organisation would do: mailboxes following the "
           "organisation, which of them used SMTP, explicit enables with and without an "
           "exception (for the approval of workflows/tenant-smtp-auth.json)",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
