/*
 * db_evidence.h - evidence of Basic use and drift, beside the synced tenant
 * (migration 012_playbook.sql):
 *
 * - the Exchange admin center's SMTP AUTH clients report, imported whole by
 *   `assent import smtp-auth-report` (the users report's smtp_basic_30d);
 * - the protocols Assent turned off per mailbox, and drift: a later complete
 *   mailbox sync that finds one of them on again while no exception covers
 *   it (the users report's "drift" column, the drift KPI).
 */
#ifndef ASSENT_DB_EVIDENCE_H
#define ASSENT_DB_EVIDENCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/* One sender of the SMTP AUTH clients report, messages summed per protocol. */
struct db_smtp_auth_row {
    const char *upn;
    int64_t basic_messages, oauth_messages;
};

/*
 * (own transaction) Replace the imported report with rows (n of them; a UPN
 * given twice is summed) and stamp the import time: from now on users absent
 * from it count 0 messages with Basic, not unknown.
 */
enum as_code db_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows, size_t n,
                                  int64_t now_ms, struct as_err *err) AS_WUR;

/*
 * (own transaction) Record that Assent turned protocols off for the mailbox
 * upn (protocols: NULL-terminated names among pop, imap, smtp, activesync,
 * ews) in run run_id (0 = none).  Idempotent: a protocol recorded again
 * keeps its first time and loses any drift found before.
 */
enum as_code db_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                int64_t run_id, int64_t now_ms, struct as_err *err) AS_WUR;

/*
 * (in the caller's write transaction, after a COMPLETE mailbox listing)
 * Compare what Assent turned off with the synced mailboxes: a protocol on
 * again with no exception in force for it (or for "all") at now_ms is drift
 * from now on; one off again, or exempt now, is no longer drift.  *changes
 * (new reference) lists [{"upn", "protocol", "drift": true|false}] for each
 * protocol whose state changed, so the caller can audit them.  The effective
 * SMTP AUTH setting counts (a mailbox following an organisation that turns
 * it off is off).
 */
enum as_code db_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                           struct as_err *err) AS_WUR;

#endif
