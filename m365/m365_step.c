/* m365_step.c - shared plumbing of the Microsoft 365 step types (see m365_step.h). */
#include "m365/m365_step.h"

#include "db/db_evidence.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>

#include "engine/app.h"
#include "m365/kpi.h"
#include "base/timeutil.h"

struct m365 *m365_step_client(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    struct m365 *m = NULL;
    if (!ctx->app || !ctx->app->cfg) {
        step_fail(res, "no configuration for Microsoft 365");
        return NULL;
    }
    if (m365_thread_get(ctx->app->cfg, &m, &err) != AS_OK) {
        step_fail(res, "Microsoft 365 client: %s", err.msg);
        return NULL;
    }
    /* A wait before another attempt is the engine's durable retry of the
     * step (at m365_retry_hint_ms), never a sleep of this worker. */
    m365_set_durable_retry(m, 1);
    /* Leave a second of the step's time for recording the result. */
    if (ctx->timeout_ms > 0)
        m365_set_deadline(m, time_mono_ms() + (ctx->timeout_ms > 2000 ? ctx->timeout_ms - 1000
                                                                      : ctx->timeout_ms));
    return m;
}

void m365_step_error(struct step_ctx *ctx, struct step_result *res, struct m365 *m,
                     enum as_code rc, const char *what, const struct as_err *err)
{
    if (rc == AS_ETRANSIENT || rc == AS_ETIMEOUT || rc == AS_EDB || rc == AS_ENOMEM) {
        int64_t hint = m ? m365_retry_hint_ms(m) : 0;
        step_retry(res, hint > 0 ? time_now_ms() + hint : 0, "%s: %s", what, err->msg);
        return;
    }
    step_fail(res, "%s: %s", what, err->msg);
}

void m365_step_path(char *out, size_t size, const char *base, const char *key)
{
    int plain = *key && !isdigit((unsigned char)*key);
    for (const char *p = key; *p && plain; p++)
        plain = isalnum((unsigned char)*p) || *p == '_';
    if (plain)
        snprintf(out, size, "%s.%s", base, key);
    else
        snprintf(out, size, "%s[\"%s\"]", base, key);
}

json_t *m365_step_pick(const json_t *obj, const char *const *names)
{
    json_t *out = json_object();
    for (size_t i = 0; out && names[i]; i++) {
        json_t *v = json_object_get(obj, names[i]);
        if (v)
            json_object_set(out, names[i], v);
    }
    return out;
}

/* "true", "false", "null" or JSON text of v, for messages. */
static void show(char *out, size_t size, const json_t *v)
{
    char *t = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, size, "%s", t ? t : "?");
    free(t);
}

static enum as_code read_object(struct m365 *m, const char *identity, json_t **out,
                                struct as_err *err)
{
    return identity ? m365_cas_get(m, identity, out, err) : m365_transport_get(m, out, err);
}

/*
 * The settings of a that turn off a protocol the mailbox's user is exempt
 * from now: *skip (new object: property -> true) and *skipped (new array of
 * protocol names; *skipped_text the same for people, "SMTP AUTH").  Logs an
 * "m365.skipped_exempt" event when there are any.
 * Returns 0, or -1 with res filled (a retry: the database could not be read).
 */
static int exempt_settings(struct step_ctx *ctx, struct step_result *res, struct m365 *m,
                           const struct m365_apply *a, json_t **skip, json_t **skipped,
                           json_t **skipped_text)
{
    struct as_err err = {0};
    unsigned mask = 0;
    json_t *reasons = NULL;
    char text[256] = "";
    size_t n_text = 0;
    *skip = json_object();
    *skipped = json_array();
    if (!*skip || !*skipped) {
        step_retry(res, 0, "out of memory");
        return -1;
    }
    if (!a->honour_exceptions || !a->identity)
        return 0;
    if (kpi_exemption_now(ctx->app, a->identity, ctx->now_ms ? ctx->now_ms : time_now_ms(), &mask,
                          &reasons, &err) != AS_OK) {
        step_retry(res, 0, "reading the exceptions in force: %s", err.msg);
        return -1;
    }
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)a->settings, key, want)
    {
        unsigned bit = kpi_cas_protocol(key);
        if (!(mask & bit))
            continue;
        int turns_off = kpi_cas_turns_off(key, want);
        if (!turns_off && bit == KPI_P_SMTP && json_is_null(want)) {
            /* Following the organisation turns SMTP AUTH off when the
             * organisation has it off: an exempt user keeps the explicit
             * setting then. */
            json_t *org = NULL;
            enum as_code rc = m365_transport_get(m, &org, &err);
            if (rc) {
                m365_step_error(ctx, res, m, rc, "Get-TransportConfig", &err);
                json_decref(reasons);
                return -1;
            }
            turns_off = json_is_true(json_object_get(org, "SmtpClientAuthenticationDisabled"));
            json_decref(org);
        }
        if (!turns_off)
            continue;
        json_object_set_new(*skip, key, json_true());
        const char *display = NULL;
        kpi_protocol_cas(bit, &display);
        n_text += (size_t)snprintf(text + n_text, n_text < sizeof text ? sizeof text - n_text : 0,
                                   "%s%s", n_text ? ", " : "", display ? display : key);
        json_t *names = kpi_protocols_json(bit);
        json_array_extend(*skipped, names);
        json_decref(names);
    }
    *skipped_text = json_string(text);
    if (json_array_size(*skipped))
        step_event(ctx, "m365.skipped_exempt",
                   json_pack("{s:s, s:O, s:O}", "identity", a->identity, "protocols", *skipped,
                             "exceptions", reasons ? reasons : json_null()));
    json_decref(reasons);
    return 0;
}

/*
 * Remember the protocols this mailbox now has off because Assent turned them
 * off (every setting that turns one off and reads as wanted, changed now or
 * by an earlier attempt), so that a later sync can find drift.  -1 (res
 * set to retry) when the store fails.
 */
static int record_disabled(struct step_ctx *ctx, struct step_result *res,
                           const struct m365_apply *a, const json_t *skip, const json_t *after)
{
    const char *names[8];
    size_t n = 0;
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)a->settings, key, want)
    {
        unsigned bit = kpi_cas_protocol(key);
        json_t *cur = json_object_get(after, key);
        if (!bit || json_object_get(skip, key) || !kpi_cas_turns_off(key, want) ||
            !json_equal(cur ? cur : json_null(), want) || n + 1 >= sizeof names / sizeof *names)
            continue;
        if ((names[n] = kpi_protocol_name(bit)) != NULL)
            n++;
    }
    names[n] = NULL;
    if (!n)
        return 0;
    struct as_err err = {0};
    if (db_disabled_record(ctx->app->db, a->identity, names, ctx->run_id,
                           ctx->now_ms ? ctx->now_ms : time_now_ms(), &err) != AS_OK) {
        step_retry(res, 0, "recording what was turned off: %s", err.msg);
        return -1;
    }
    return 0;
}

void m365_step_apply(struct step_ctx *ctx, struct step_result *res, const struct m365_apply *a)
{
    struct as_err err = {0};
    json_t *before = NULL, *after = NULL, *changes = NULL, *changed = NULL, *params = NULL;
    json_t *warnings = NULL, *skip = NULL, *skipped = NULL, *skipped_text = NULL;
    char *command = NULL;
    const char *read_cmdlet = a->identity ? "Get-CASMailbox" : "Get-TransportConfig";
    enum as_code rc;

    if (a->approved_hash && *a->approved_hash) {
        char h[65];
        if (m365_cas_request_hash(a->identity ? a->identity : "", a->settings, h, &err) != AS_OK) {
            step_retry(res, 0, "hashing the request: %s", err.msg);
            return;
        }
        if (strcasecmp(h, a->approved_hash) != 0) {
            step_fail(res, "this request is not the one that was approved (approved request hash "
                           "%.64s, this request %s); nothing was changed",
                      a->approved_hash, h);
            return;
        }
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        return;
    rc = read_object(m, a->identity, &before, &err);
    if (rc) {
        if (rc == AS_ENOTFOUND && a->not_found)
            *a->not_found = 1;
        m365_step_error(ctx, res, m, rc, read_cmdlet, &err);
        return;
    }

    /* The exceptions are read after the mailbox, as close to the write as
     * the step can: one granted while the approval was pending counts. */
    if (exempt_settings(ctx, res, m, a, &skip, &skipped, &skipped_text))
        goto out;
    changes = json_object();
    changed = json_array();
    if (!changes || !changed) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)a->settings, key, want)
    {
        if (json_object_get(skip, key))
            continue; /* exempt now: not even re-sent at its current value */
        json_t *cur = json_object_get(before, key);
        if (!cur)
            cur = json_null();
        if (json_equal(cur, want))
            continue; /* already in place (also what a retry after success sees) */
        json_t *exp = a->expect ? json_object_get(a->expect, key) : NULL;
        if (exp && !json_equal(cur, exp)) {
            char c1[64], c2[64], c3[64];
            show(c1, sizeof c1, exp);
            show(c2, sizeof c2, cur);
            show(c3, sizeof c3, want);
            step_fail(res, "%s%s%s changed since the request was made: %s was %s, is now %s "
                           "(the request would set %s); nothing was changed, review and request "
                           "again",
                      a->identity ? "mailbox '" : "the organisation", a->identity ? a->identity : "",
                      a->identity ? "'" : "", key, c1, c2, c3);
            goto out;
        }
        json_object_set(changes, key, want);
        json_array_append_new(changed, json_string(key));
    }
    params = json_deep_copy(changes);
    if (params && a->identity)
        json_object_set_new(params, "Identity", json_string(a->identity));
    if (!params) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if (json_object_size(changes)) {
        command = m365_powershell_command(a->set_cmdlet, params);
        if (!command) {
            step_retry(res, 0, "out of memory");
            goto out;
        }
    }

    if (ctx->dry_run) {
        after = m365_step_pick(before, a->props);
        json_object_update(after, changes);
        if (command)
            step_event(ctx, "m365.dry_run",
                       json_pack("{s:s, s:O, s:s}", "cmdlet", a->set_cmdlet, "parameters", params,
                                 "command", command));
    } else {
        if (command) {
            rc = a->identity ? m365_cas_set(m, a->identity, changes, &warnings, &err)
                             : m365_transport_set(m, changes, &warnings, &err);
            if (rc) {
                /* A retry re-reads first and applies only what is still missing. */
                m365_step_error(ctx, res, m, rc, a->set_cmdlet, &err);
                goto out;
            }
            step_event(ctx, "m365.write",
                       json_pack("{s:s, s:O, s:s, s:o}", "cmdlet", a->set_cmdlet, "parameters",
                                 params, "command", command, "warnings",
                                 warnings ? json_incref(warnings) : json_array()));
            json_t *now = NULL;
            rc = read_object(m, a->identity, &now, &err);
            if (rc) {
                m365_step_error(ctx, res, m, rc, "verifying the change", &err);
                goto out;
            }
            after = m365_step_pick(now, a->props);
            json_decref(now);
            json_object_foreach((json_t *)a->settings, key, want)
            {
                if (json_object_get(skip, key))
                    continue;
                json_t *cur = json_object_get(after, key);
                if (!json_equal(cur ? cur : json_null(), want)) {
                    char c1[64], c2[64];
                    show(c1, sizeof c1, cur);
                    show(c2, sizeof c2, want);
                    step_retry(res, 0, "%s was sent but %s reads %s, not %s yet; will re-check",
                               a->set_cmdlet, key, c1, c2);
                    goto out;
                }
            }
        } else {
            after = m365_step_pick(before, a->props);
        }
    }

    if (!ctx->dry_run && a->honour_exceptions && a->identity &&
        record_disabled(ctx, res, a, skip, after))
        goto out;
    json_t *output = json_pack("{s:o, s:o, s:o, s:O, s:b, s:o}", "identity",
                               a->identity ? json_string(a->identity) : json_null(), "before",
                               m365_step_pick(before, a->props), "after", json_incref(after),
                               "changed", changed, "dry_run", ctx->dry_run ? 1 : 0, "command",
                               command ? json_string(command) : json_null());
    if (!output) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if (warnings && json_array_size(warnings))
        json_object_set(output, "warnings", warnings);
    if (a->honour_exceptions) {
        json_object_set(output, "skipped_exempt", skipped);
        json_object_set(output, "skipped_exempt_text", skipped_text);
    }
    step_ok(res, NULL, output);
out:
    free(command);
    json_decref(before);
    json_decref(after);
    json_decref(changes);
    json_decref(changed);
    json_decref(params);
    json_decref(warnings);
    json_decref(skip);
    json_decref(skipped);
    json_decref(skipped_text);
}

int m365_step_check_approved(struct step_result *res, const json_t *approved_request,
                             const char *approved_hash, const char *key, const json_t *mine)
{
    char h[65];
    struct as_err err = {0};
    if (!json_is_object(approved_request) || !approved_hash) {
        step_fail(res, "approved_request needs approved_hash (and is an object); nothing was "
                       "changed");
        return -1;
    }
    if (m365_request_hash(approved_request, h, &err) != AS_OK) {
        step_retry(res, 0, "hashing the approved request: %s", err.msg);
        return -1;
    }
    if (strcasecmp(h, approved_hash) != 0) {
        step_fail(res, "approved_request is not the request that was approved (approved request "
                       "hash %.64s, this one %s); nothing was changed",
                  approved_hash, h);
        return -1;
    }
    const json_t *part = json_object_get(approved_request, key);
    if (!part || !json_equal((json_t *)part, (json_t *)mine)) {
        step_fail(res, "the approved request's \"%s\" is not what this step was asked to do; "
                       "nothing was changed",
                  key);
        return -1;
    }
    return 0;
}
