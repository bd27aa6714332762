/*
 * db_tenant.h - the synced Microsoft 365 tenant in SQLite (migration
 * 002_tenant.sql): the writes `assent sync` makes, and the report rows that
 * `assent report`, `assent plan` and the KPIs read.
 *
 * Writing.  The *_put and *_prune functions run inside a write transaction
 * the caller holds (db_write_begin(), which gives the connection); the sync
 * batches a few thousand rows per transaction.  Every row is stamped with the
 * sync id, so after a complete listing the rows that were not touched are the
 * ones the tenant no longer has (*_prune).
 *
 * Reading.  Report rows are JSON objects built in ONE place (the column
 * table in db_tenant.c): add a column there and every consumer (report, plan,
 * KPIs, web) gets it.  User row keys:
 *   id, upn, display_name, mail, account_enabled, has_mailbox,
 *   activesync_enabled, owa_enabled, pop_enabled, imap_enabled, mapi_enabled,
 *   ews_enabled (bool or null without a mailbox),
 *   smtp_client_auth_disabled (effective: the mailbox value when set, else
 *   the organisation's transport setting; null without a mailbox),
 *   smtp_client_auth_disabled_mailbox (true/false/null),
 *   pop3_30d, imap4_30d, smtp_30d (bool; null when no usage report was ever
 *   synced), legacy_signins_30d (int; null when sign-ins were never synced),
 *   last_legacy_signin (ISO string or null), last_legacy_client_app,
 *   synced_at (ISO string).
 * Sign-in row keys: id, created_at, upn, user_id, client_app, app_name,
 *   ip_address, error_code.
 */
#ifndef ASSENT_DB_TENANT_H
#define ASSENT_DB_TENANT_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/* ------------------------------------------------------------ sync writes */

/* Record the start of a sync (own transaction); *sync_id is its id. */
enum as_code db_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                  struct as_err *err) AS_WUR;

/*
 * Record the end of a sync (own transaction): status "ok", "partial" or
 * "failed", summary (borrowed JSON object: counts, warnings, duration_ms),
 * error (may be NULL).
 */
enum as_code db_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                   const char *status, const json_t *summary, const char *error,
                                   struct as_err *err) AS_WUR;

/* Upsert one Graph user object (id, userPrincipalName, displayName, mail,
 * accountEnabled, assignedLicenses).  AS_EINVAL for an object without id/UPN. */
enum as_code db_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                const json_t *user, struct as_err *err) AS_WUR;

/* Delete users (and their mailbox rows) the sync did not see; *removed = count. */
enum as_code db_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                   struct as_err *err) AS_WUR;

/*
 * Upsert one CAS mailbox (Get-CASMailbox object, annotations removed).  It is
 * matched to a user by ExternalDirectoryObjectId, else by PrimarySmtpAddress
 * = UPN; *matched = 0 (and nothing stored) when no synced user matches.
 */
enum as_code db_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                               const json_t *mbx, int *matched, struct as_err *err) AS_WUR;

/* Delete mailbox rows the sync did not see. */
enum as_code db_tenant_cas_prune(struct db_conn *c, int64_t sync_id, struct as_err *err) AS_WUR;

/* Upsert one usage report row. */
enum as_code db_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                 const char *upn, int pop3, int imap4, int smtp,
                                 const char *last_activity, const char *report_date,
                                 struct as_err *err) AS_WUR;

/* Delete usage rows the sync did not see and mark the usage section synced. */
enum as_code db_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                  struct as_err *err) AS_WUR;

/* Store the Get-TransportConfig object (borrowed). */
enum as_code db_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                         const json_t *transport, struct as_err *err) AS_WUR;

/* Upsert one Graph signIn event (id, createdDateTime, userId, userPrincipalName,
 * clientAppUsed, appDisplayName, ipAddress, status.errorCode). */
enum as_code db_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                  struct as_err *err) AS_WUR;

/* Delete sign-ins older than older_than_ms and mark the sign-in section synced. */
enum as_code db_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                    struct as_err *err) AS_WUR;

/* ---------------------------------------------------------------- reads */

/*
 * Call cb with each user row (ordered by UPN); the row is borrowed for the
 * call.  cb returns 0 to go on, nonzero to stop early (the function then
 * returns AS_OK).  Runs in one read transaction on a pooled reader, so rows
 * are a consistent snapshot.
 */
enum as_code db_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                     void *ud, struct as_err *err) AS_WUR;

/*
 * The same, ordered by the row key sort_key (any key of the user row),
 * descending when desc; ties by UPN.  AS_EINVAL naming the valid keys when
 * sort_key is not one.  Sorting happens in SQLite: memory stays flat.
 */
enum as_code db_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                            int (*cb)(const json_t *row, void *ud), void *ud,
                                            struct as_err *err) AS_WUR;

/*
 * The same as db_tenant_users_foreach, only the users whose lower-cased
 * UPN sorts after after_lower (bytewise, as the listing's order; "" from
 * the first), at most limit of them (<= 0: all): a keyset cursor.  The
 * sign-ins are aggregated for those users only, so a page costs the same
 * wherever it is in the listing and does not grow with the tenant.
 */
enum as_code db_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                           int (*cb)(const json_t *row, void *ud), void *ud,
                                           struct as_err *err) AS_WUR;

/* The organisation's synced transport config ({"SmtpClientAuthenticationDisabled":..,
 * ...}, as Get-TransportConfig returned it), or *out = NULL when never synced. */
enum as_code db_tenant_org_transport(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/* The row of one user by UPN (case-insensitive) or id; AS_ENOTFOUND if none.
 * *out is a new reference. */
enum as_code db_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                struct as_err *err) AS_WUR;

/* The user-row keys in report order, NULL-terminated (for tables and CSV). */
const char *const *db_tenant_user_keys(void);

struct db_tenant_signin_query {
    int64_t since_ms;       /* 0 = all stored */
    const char *client_app; /* NULL = any; case-insensitive */
    const char *upn;        /* NULL = any; case-insensitive */
};

/* Call cb with each stored legacy sign-in matching q, newest first (as above). */
enum as_code db_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                       int (*cb)(const json_t *row, void *ud), void *ud,
                                       struct as_err *err) AS_WUR;

/* End time (ms) and status ("ok" or "partial") of the last sync that
 * completed; *finished_at = 0 when none has. */
enum as_code db_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                           size_t status_size, struct as_err *err) AS_WUR;

/* The latest sync record {id, started_at, finished_at, status, summary, error},
 * or *out = NULL when there was none.  New reference. */
enum as_code db_tenant_last_sync(struct db *db, json_t **out, struct as_err *err) AS_WUR;

#endif
