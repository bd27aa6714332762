/*
 * step_manage_ews_allowlist.c - the `manage_ews_allowlist` step: add and
 * remove application ids on the organisation's EWS allow list
 * (Set-OrganizationConfig -EwsAllowedAppIDs), and wait until the change is
 * visible:
 *
 *   {"type": "manage_ews_allowlist", "params": {
 *      "add": "${steps.read.output.request.add}",
 *      "remove": "${steps.read.output.request.remove}",
 *      "approved_request": "${steps.read.output.request}",
 *      "approved_hash": "${steps.approve.output.request_hash}"}}
 *
 * The parameter replaces the WHOLE list, so the step reads the list, merges
 * (current + add - remove) and writes the merged list; what others added
 * meanwhile stays.  The change propagates ("up to 24 hours" for the real
 * service): after writing, the step re-reads, and while the read does not
 * show the change it returns a retry with a not-before time (poll_every), so
 * no worker sleeps; the engine's retry policy spaces the reads out.  The
 * write is recorded in the store under the step's idempotency key
 * (db_org_write_put) before the step waits, so a later attempt knows it
 * wrote and does not write again; it succeeds once a read shows every id of
 * add and none of remove, and fails when that has not happened within
 * visible_within of the write.  Output: {before, after, added, removed,
 * written (the whole list sent, or null), command, changed, waited_ms,
 * dry_run}.
 */
#include <stdlib.h>
#include <string.h>

#include "db/db_plans.h"
#include "engine/app.h"
#include "m365/m365_step.h"
#include "m365/org.h"
#include "base/timeutil.h"

static const struct step_param params[] = {
    {"add", SP_ARRAY, 1, "application (client) ids to allow, GUIDs"},
    {"remove", SP_ARRAY, 0, "application ids to take off the list (default [])"},
    {"approved_request", SP_OBJECT, 0, "the whole request an approval froze ({add, remove})"},
    {"approved_hash", SP_STRING, 0, "the approval's request_hash"},
    {"poll_every", SP_DURATION, 0,
     "how soon to read again while the change is not visible (default 1s; the step's retry "
     "backoff grows the interval)"},
    {"visible_within", SP_DURATION, 0,
     "fail when the change is not visible this long after the write (default P2D)"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

static const char setting_name[] = "EwsAllowedAppIDs";

static int64_t duration_param(const struct step_ctx *ctx, const char *name, int64_t def,
                              struct step_result *res, int *bad)
{
    const char *s = json_string_value(json_object_get(ctx->params, name));
    int64_t ms = 0;
    struct as_err err = {0};
    if (!s)
        return def;
    if (time_parse_duration(s, &ms, &err) != AS_OK || ms <= 0) {
        step_fail(res, "%s: %s", name, err.msg[0] ? err.msg : "must be a positive duration");
        *bad = 1;
    }
    return ms;
}

/* 1 when list holds every id of add and none of remove (all normalized). */
static int in_place(const json_t *list, const json_t *add, const json_t *remove)
{
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(add, i, x)
    {
        int found = 0;
        json_array_foreach(list, j, y) found |= json_equal(x, y);
        if (!found)
            return 0;
    }
    json_array_foreach(remove, i, x) json_array_foreach(list, j, y) if (json_equal(x, y)) return 0;
    return 1;
}

static json_t *minus(const json_t *a, const json_t *b)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x)
    {
        int found = 0;
        json_array_foreach(b, j, y) found |= json_equal(x, y);
        if (!found)
            json_array_append(out, x);
    }
    return out;
}

static void done(struct step_ctx *ctx, struct step_result *res, const json_t *before,
                 const json_t *after, const json_t *written, const char *command,
                 int64_t waited_ms)
{
    step_ok(res, NULL,
            json_pack("{s:O, s:O, s:o, s:o, s:O, s:s?, s:b, s:I, s:b}", "before", before, "after",
                      after, "added", minus(after, before), "removed", minus(before, after),
                      "written", written ? written : json_null(), "command", command, "changed",
                      written != NULL, "waited_ms", (json_int_t)waited_ms, "dry_run",
                      ctx->dry_run ? 1 : 0));
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    const json_t *add = json_object_get(ctx->params, "add");
    const json_t *remove = json_object_get(ctx->params, "remove");
    const json_t *whole = json_object_get(ctx->params, "approved_request");
    const char *hash = json_string_value(json_object_get(ctx->params, "approved_hash"));
    int bad = 0;
    int64_t poll = duration_param(ctx, "poll_every", 1000, res, &bad);
    int64_t within = bad ? 0 : duration_param(ctx, "visible_within", 2 * 86400000LL, res, &bad);
    if (bad)
        return;
    if (m365_ews_ids_check(add, "add", res) || m365_ews_ids_check(remove, "remove", res))
        return;
    json_t *add_n = m365_ews_ids_normalize(add), *remove_n = m365_ews_ids_normalize(remove);
    json_t *org = NULL, *rec = NULL, *merged = NULL, *value = NULL;
    char *command = NULL;
    int64_t now = ctx->now_ms ? ctx->now_ms : time_now_ms();
    if (!add_n || !remove_n) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if (whole && !json_is_null(whole)) {
        /* The approval froze the normalized lists; these must be them. */
        if (m365_step_check_approved(res, whole, hash, "add", add_n) ||
            m365_step_check_approved(res, whole, hash, "remove", remove_n))
            goto out;
    } else if (hash && *hash) {
        step_fail(res, "approved_hash needs approved_request (the request the approval froze); "
                       "nothing was changed");
        goto out;
    }
    if (!ctx->dry_run && ctx->app && ctx->app->db && ctx->idempotency_key &&
        db_org_write_get(ctx->app->db, ctx->idempotency_key, &rec, &err) != AS_OK) {
        step_retry(res, 0, "reading what this step wrote before: %s", err.msg);
        goto out;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m)
        goto out;
    enum as_code rc = m365_org_get(m, &org, &err);
    if (rc) {
        m365_step_error(ctx, res, m, rc, "Get-OrganizationConfig", &err);
        goto out;
    }
    const json_t *current = json_object_get(org, "EwsAllowedAppIDs");

    if (rec) {
        /* Written by an earlier attempt: wait for it, never write again. */
        value = json_object_get(rec, "value");
        const json_t *written = json_object_get(value, "written");
        const json_t *before = json_object_get(value, "before");
        int64_t at = json_integer_value(json_object_get(value, "written_at_ms"));
        char *cmd = m365_ews_allowlist_command(written);
        if (in_place(current, add_n, remove_n)) {
            if (db_org_write_visible(ctx->app->db, ctx->idempotency_key, now, &err) != AS_OK) {
                free(cmd);
                step_retry(res, 0, "recording that the change is visible: %s", err.msg);
                goto out;
            }
            step_event(ctx, "m365.visible",
                       json_pack("{s:s, s:O, s:I}", "setting", setting_name, "value", current,
                                 "waited_ms", (json_int_t)(now - at)));
            done(ctx, res, before ? before : json_array(), current, written, cmd, now - at);
        } else if (now - at > within) {
            char when[40];
            time_format_iso(at, when, sizeof when);
            step_fail(res, "Set-OrganizationConfig -EwsAllowedAppIDs was sent at %s but the allow "
                           "list still does not show it (%zu ids now); nothing more was written: "
                           "check the organisation config and run the workflow again",
                      when, json_array_size(current));
        } else {
            char when[40];
            time_format_iso(at, when, sizeof when);
            step_retry(res, now + poll,
                       "Set-OrganizationConfig -EwsAllowedAppIDs was sent at %s; the allow list "
                       "does not show it yet (%zu ids read); reading again, not writing again",
                       when, json_array_size(current));
        }
        free(cmd);
        goto out;
    }

    if (in_place(current, add_n, remove_n)) {
        /* Already as wanted: no write. */
        done(ctx, res, current, current, NULL, NULL, 0);
        goto out;
    }
    merged = m365_ews_ids_merge(current, add_n, remove_n);
    command = merged ? m365_ews_allowlist_command(merged) : NULL;
    if (!merged || !command) {
        step_retry(res, 0, "out of memory");
        goto out;
    }
    if (ctx->dry_run) {
        step_event(ctx, "m365.dry_run",
                   json_pack("{s:s, s:{s:O}, s:s}", "cmdlet", "Set-OrganizationConfig",
                             "parameters", setting_name, merged, "command", command));
        step_ok(res, NULL,
                json_pack("{s:O, s:O, s:o, s:o, s:O, s:s, s:b, s:I, s:b}", "before", current,
                          "after", merged, "added", minus(merged, current), "removed",
                          minus(current, merged), "written", json_null(), "command", command,
                          "changed", 0, "waited_ms", (json_int_t)0, "dry_run", 1));
        goto out;
    }
    json_t *warnings = NULL;
    rc = m365_org_set_ews_allowed(m, merged, &warnings, &err);
    if (rc) {
        /* A retry reads again and writes the merged whole list again: the
         * same list, so repeating it is harmless. */
        m365_step_error(ctx, res, m, rc, "Set-OrganizationConfig", &err);
        goto out;
    }
    step_event(ctx, "m365.write",
               json_pack("{s:s, s:{s:O}, s:s, s:o}", "cmdlet", "Set-OrganizationConfig",
                         "parameters", setting_name, merged, "command", command, "warnings",
                         warnings ? warnings : json_array()));
    json_t *memo = json_pack("{s:O, s:O, s:I}", "before", current, "written", merged,
                             "written_at_ms", (json_int_t)now);
    rc = memo ? db_org_write_put(ctx->app->db, ctx->idempotency_key, setting_name, memo,
                                 ctx->run_id, now, &err)
              : as_errf(&err, AS_ENOMEM, "out of memory");
    json_decref(memo);
    if (rc) {
        step_retry(res, 0, "recording the write (it was sent): %s", err.msg);
        goto out;
    }
    /* Most often not visible yet: come back after poll_every. */
    json_t *again = NULL;
    if (m365_org_get(m, &again, &err) == AS_OK &&
        in_place(json_object_get(again, "EwsAllowedAppIDs"), add_n, remove_n)) {
        if (db_org_write_visible(ctx->app->db, ctx->idempotency_key, now, &err) != AS_OK) {
            json_decref(again);
            step_retry(res, 0, "recording that the change is visible: %s", err.msg);
            goto out;
        }
        done(ctx, res, current, json_object_get(again, "EwsAllowedAppIDs"), merged, command, 0);
    } else {
        step_retry(res, now + poll,
                   "Set-OrganizationConfig -EwsAllowedAppIDs sent (%zu ids); waiting for the "
                   "change to become visible",
                   json_array_size(merged));
    }
    json_decref(again);
out:
    json_decref(add_n);
    json_decref(remove_n);
    json_decref(org);
    json_decref(rec);
    json_decref(merged);
    free(command);
}

const struct step_type step_type_manage_ews_allowlist = {
    .name = "manage_ews_allowlist",
    .doc = "add and remove application ids on the organisation's EWS allow list: reads the list, "
           "writes the WHOLE merged list once (Set-OrganizationConfig -EwsAllowedAppIDs), then "
           "re-reads with durable retries until the change is visible",
    .params = params,
    .outcomes = outcomes,
    .execute = execute,
};
