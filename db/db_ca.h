/*
 * db_ca.h - Conditional Access in the store (migration 011_ca.sql): the
 * policies `assent sync` read that concern legacy authentication, and
 * Assent's own record of each policy it manages (the policy's id, its
 * exclusion group and the hash of the body Assent last wrote, so an edit
 * made outside Assent since then can be told apart from Assent's own).
 *
 * Synced policy rows (db_ca_policies_foreach) are JSON objects:
 *   id, display_name, state ("enabled", "disabled",
 *   "enabledForReportingButNotEnforced"), managed (bool: Microsoft-managed,
 *   see m365/ca.h), client_app_types (array), grant_controls (array of
 *   builtInControls), modified_at (ISO string or null), synced_at (ISO),
 *   assent (bool: a policy Assent wrote, by its recorded id), policy (the
 *   object as Graph returned it).
 * Records (db_ca_record_get / _put) are JSON objects:
 *   name (the policy's display name as the workflow gives it; the key),
 *   policy_id, group_id (may be null), body_hash (64 hex), body (object: the
 *   managed part of the policy as Assent last wrote it), written_at (ms).
 */
#ifndef ASSENT_DB_CA_H
#define ASSENT_DB_CA_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "db/db.h"

/*
 * Upsert one policy (a Graph conditionalAccessPolicy object, borrowed)
 * inside the caller's write transaction; managed says whether it is
 * Microsoft-managed.  AS_EINVAL for an object without id or displayName.
 */
enum as_code db_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                              const json_t *policy, int managed, struct as_err *err) AS_WUR;

/* Delete policy rows the sync `sync_id` did not store (after a complete listing). */
enum as_code db_ca_policies_prune(struct db_conn *c, int64_t sync_id, struct as_err *err) AS_WUR;

/*
 * Call cb with each synced policy row, ordered by display name then id;
 * the row is borrowed for the call; cb returns nonzero to stop (AS_OK then).
 */
enum as_code db_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                    void *ud, struct as_err *err) AS_WUR;

/* Assent's record of the policy called name; *out = NULL when there is none
 * (new reference otherwise). */
enum as_code db_ca_record_get(struct db *db, const char *name, json_t **out,
                              struct as_err *err) AS_WUR;

/*
 * Store (insert or replace) the record for name in a transaction of its own:
 * policy_id (required), group_id (may be NULL), body_hash (64 hex), body
 * (borrowed object), at now_ms.  AS_EINVAL for a missing id or bad hash.
 */
enum as_code db_ca_record_put(struct db *db, const char *name, const char *policy_id,
                              const char *group_id, const char *body_hash, const json_t *body,
                              int64_t now_ms, struct as_err *err) AS_WUR;

#endif
