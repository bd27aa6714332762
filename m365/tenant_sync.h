/*
 * tenant_sync.h - `assent sync`: pull the tenant's users, CAS mailbox
 * settings, transport config, 30-day email-app usage, legacy sign-ins of
 * the last 30 days, Conditional Access policies, CAS mailbox plans and the
 * organisation's EWS settings into the store (db/db_tenant.h, db_ca.h,
 * db_plans.h).
 *
 * Pages stream from the service into the database: at most a few thousand
 * rows are held at once, and no write transaction is ever open while a
 * request is in flight (other processes keep writing).  Users are upserted
 * and the ones the tenant no longer has are deleted once the listing is
 * complete.  A section that fails for a reason the admin must fix
 * (concealed report names, no Entra ID P1 licence for sign-in logs, a
 * missing permission) is skipped with a warning; its previous data stays.
 */
#ifndef ASSENT_TENANT_SYNC_H
#define ASSENT_TENANT_SYNC_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

struct app;
struct m365;

struct tenant_sync_opts {
    FILE *progress;    /* progress output (stderr), NULL = quiet */
    int tty;           /* progress is a terminal: redraw one bar line */
    int batch_rows;    /* rows per write transaction (0 = 5000) */
    int signin_days;   /* sign-in window (0 = 30) */
};

struct tenant_sync_result {
    int64_t sync_id;
    char status[16];        /* "ok", "partial" or "failed" */
    long users, users_removed;
    long mailboxes, mailboxes_unmatched;
    long usage_rows;
    long signins;
    long drift;             /* protocols found on again that Assent had turned off */
    long ca_policies;       /* Conditional Access policies concerning legacy auth (-1: not read) */
    int transport_synced;
    long mailbox_plans;     /* CAS mailbox plans stored (-1: not read) */
    int org_config_synced;  /* the organisation config (EWS settings) was read */
    json_t *warnings;       /* array of strings (owned; free with tenant_sync_result_free) */
    int64_t duration_ms;
    long requests;          /* HTTP requests made */
};

/*
 * Run one sync with client m (borrowed) into app->db.  Returns AS_OK when
 * the sync completed, fully or partially (res->status, res->warnings say
 * which); an error when the users could not be synced (nothing else is
 * meaningful then), with the sync recorded as failed.  res is filled in
 * every case; free it with tenant_sync_result_free().
 */
enum as_code tenant_sync_run(struct app *app, struct m365 *m, const struct tenant_sync_opts *opts,
                             struct tenant_sync_result *res, struct as_err *err) AS_WUR;

/*
 * The Conditional Access section (m365/ca_sync.c): list the policies and
 * store those concerning legacy authentication.  AS_EUNSUPPORTED when the
 * listing failed (list_err says why: a warning, the previous rows stay);
 * another code when storing failed (err).
 */
enum as_code tenant_sync_ca(struct app *app, struct m365 *m, int64_t sync_id, int64_t now,
                            long *stored, struct as_err *list_err, struct as_err *err) AS_WUR;

/*
 * The organisation section (m365/org_sync.c): the CAS mailbox plans and the
 * organisation config.  A failed read adds a warning to warnings (an array)
 * and keeps the previous rows; *plans = -1 when the plans were not read,
 * *org_synced = 0 when the config was not.  Another code when storing failed.
 */
enum as_code tenant_sync_org(struct app *app, struct m365 *m, int64_t sync_id, int64_t now,
                             long *plans, int *org_synced, json_t *warnings,
                             struct as_err *err) AS_WUR;

/* The result as a JSON object (new reference). */
json_t *tenant_sync_result_json(const struct tenant_sync_result *res);

void tenant_sync_result_free(struct tenant_sync_result *res);

#endif
