/*
 * org_sync.c - the organisation section of `assent sync` (called from
 * tenant_sync.c): the CAS mailbox plans (Get-CASMailboxPlan) and the
 * organisation config with its EWS settings (Get-OrganizationConfig
 * -RetrieveEwsOperationAccessPolicy), stored through db/db_plans.h.  A tenant
 * has a handful of plans, so they are collected and written in one
 * transaction after the reads, with no request in flight.
 */
#include "m365/org.h"
#include "m365/tenant_sync.h"

#include "db/db_plans.h"
#include "engine/app.h"

static enum as_code keep_plan(const json_t *p, void *ud, struct as_err *err)
{
    if (p && json_array_append((json_t *)ud, (json_t *)p) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

enum as_code tenant_sync_org(struct app *app, struct m365 *m, int64_t sync_id, int64_t now,
                             long *plans, int *org_synced, json_t *warnings, struct as_err *err)
{
    struct as_err le = {0};
    char text[1200];
    json_t *found = json_array(), *org = NULL;
    *plans = -1;
    *org_synced = 0;
    if (!found)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = m365_plans_list(m, keep_plan, found, &le);
    if (rc == AS_ENOMEM)
        goto out_err;
    if (rc) {
        snprintf(text, sizeof text, "mailbox plans not synced (`assent report plans` keeps the "
                                    "previous ones): %s", le.msg);
        json_array_append_new(warnings, json_string(text));
        json_array_clear(found);
    }
    int plans_ok = rc == AS_OK;
    rc = m365_org_get(m, &org, &le);
    if (rc == AS_ENOMEM)
        goto out_err;
    if (rc) {
        snprintf(text, sizeof text, "organisation config not synced (`assent report org` keeps "
                                    "the previous one): %s", le.msg);
        json_array_append_new(warnings, json_string(text));
    }
    if (!plans_ok && !org) {
        json_decref(found);
        return AS_OK;
    }
    struct db_conn *c;
    rc = db_write_begin(app->db, &c, err);
    if (rc)
        goto out;
    long stored = 0;
    size_t i;
    json_t *p;
    json_array_foreach(found, i, p)
    {
        rc = db_plan_put(c, sync_id, now, p, err);
        if (rc == AS_EINVAL) {
            rc = AS_OK; /* a plan without a name: nothing to show */
            continue;
        }
        if (rc)
            break;
        stored++;
    }
    if (!rc && plans_ok)
        rc = db_plans_prune(c, sync_id, err);
    if (!rc && org)
        rc = db_org_config_put(c, now, org, err);
    rc = db_write_end(app->db, rc, err);
    if (!rc) {
        if (plans_ok)
            *plans = stored;
        *org_synced = org != NULL;
    }
out:
    json_decref(found);
    json_decref(org);
    return rc;
out_err:
    json_decref(found);
    json_decref(org);
    return as_errf(err, AS_ENOMEM, "%s", le.msg);
}
