/*
 * db_plans.h - organisation-level Exchange settings in the store
 * (migration 014_plans_org.sql): the CAS mailbox plans and the
 * organisation config as the last `assent sync` read them, and the
 * organisation-config writes Assent made that may not be visible yet
 * (a change to the organisation config propagates: the step that made it
 * re-reads until the read shows it, and must not write again meanwhile).
 *
 * Plan rows (db_plans_foreach) are JSON objects:
 *   name (Name, the plan's identity), display_name, guid, pop_enabled,
 *   imap_enabled, activesync_enabled, owa_enabled, mapi_enabled,
 *   ews_enabled (bool or null when the service gave none), owa_mailbox_policy,
 *   legacy_on (POP or IMAP on: new mailboxes of this plan get legacy
 *   protocols), synced_at (ISO), plan (the object as Exchange returned it).
 * The organisation row (db_org_config_get):
 *   ews_enabled (true, false, or null: unset, which Microsoft treats as false
 *   from 1 October 2026), ews_application_access_policy (string or null),
 *   ews_allowed_app_ids (array of application ids), ews_allow_list,
 *   ews_block_list (arrays or null), synced_at (ISO), config (the object).
 * Write rows (db_org_write_get, db_org_writes_foreach):
 *   key (the step's idempotency key), setting ("EwsAllowedAppIDs"), value
 *   (what was written), run_id, written_at, visible_at (ISO, or null while
 *   the read does not show it yet), pending (bool).
 */
#ifndef ASSENT_DB_PLANS_H
#define ASSENT_DB_PLANS_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "db/db.h"

/* Upsert one plan (a Get-CASMailboxPlan object, borrowed) inside the
 * caller's write transaction.  AS_EINVAL for an object without Name. */
enum as_code db_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms, const json_t *plan,
                         struct as_err *err) AS_WUR;

/* Delete plan rows the sync `sync_id` did not store (after a complete listing). */
enum as_code db_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err) AS_WUR;

/* Call cb with each plan row, ordered by display name then name; the row is
 * borrowed for the call; cb returns nonzero to stop (AS_OK then). */
enum as_code db_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud), void *ud,
                              struct as_err *err) AS_WUR;

/* Store the organisation config (a Get-OrganizationConfig object with
 * EwsAllowedAppIDs normalized, borrowed) inside the caller's write transaction. */
enum as_code db_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                               struct as_err *err) AS_WUR;

/* The organisation row, or *out = NULL when never synced (new reference otherwise). */
enum as_code db_org_config_get(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/*
 * Record (own transaction) that the step with idempotency key `key` wrote
 * value (borrowed) to setting at now_ms; a second record for the key
 * replaces the first and clears visible_at.
 */
enum as_code db_org_write_put(struct db *db, const char *key, const char *setting,
                              const json_t *value, int64_t run_id, int64_t now_ms,
                              struct as_err *err) AS_WUR;

/* The write recorded for key, or *out = NULL (new reference otherwise). */
enum as_code db_org_write_get(struct db *db, const char *key, json_t **out,
                              struct as_err *err) AS_WUR;

/* Mark the write of key visible at now_ms (own transaction; nothing when none). */
enum as_code db_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                  struct as_err *err) AS_WUR;

/* Call cb with the newest `limit` write rows, newest first (as db_plans_foreach). */
enum as_code db_org_writes_foreach(struct db *db, int limit,
                                   int (*cb)(const json_t *row, void *ud), void *ud,
                                   struct as_err *err) AS_WUR;

#endif
