/*
 * ca_sync.c - the Conditional Access section of `assent sync` (called from
 * tenant_sync.c): every policy is listed, and the ones that concern legacy
 * authentication (ca_policy_is_legacy_block), Microsoft-managed ones
 * included, are stored with their state (db/db_ca.h).  A tenant has few
 * policies, so they are collected and written in one transaction after the
 * listing, with no request in flight.
 */
#include "m365/ca.h"
#include "m365/tenant_sync.h"

#include "db/db_ca.h"
#include "engine/app.h"

static enum as_code keep_legacy(const json_t *p, void *ud, struct as_err *err)
{
    if (p && ca_policy_is_legacy_block(p) && json_array_append((json_t *)ud, (json_t *)p) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

enum as_code tenant_sync_ca(struct app *app, struct m365 *m, int64_t sync_id, int64_t now,
                            long *stored, struct as_err *list_err, struct as_err *err)
{
    json_t *found = json_array();
    *stored = 0;
    if (!found)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = ca_policies_list(m, keep_legacy, found, list_err);
    if (rc) {
        json_decref(found);
        return rc == AS_ENOMEM ? as_errf(err, rc, "%s", list_err->msg) : AS_EUNSUPPORTED;
    }
    struct db_conn *c;
    rc = db_write_begin(app->db, &c, err);
    if (!rc) {
        size_t i;
        json_t *p;
        json_array_foreach(found, i, p)
        {
            rc = db_ca_policy_put(c, sync_id, now, p, ca_policy_is_managed(p), err);
            if (rc == AS_EINVAL) {
                rc = AS_OK; /* a policy without id/name: nothing to show */
                continue;
            }
            if (rc)
                break;
            (*stored)++;
        }
        if (!rc)
            rc = db_ca_policies_prune(c, sync_id, err);
        rc = db_write_end(app->db, rc, err);
    }
    json_decref(found);
    return rc;
}
