/*
 * db_testing.h - store operations that exist for Assent's tests, so that
 * tests outside db/ check the store through its interface instead of SQL
 * and run unchanged against any backend.  Assent itself never calls them.
 *
 *  - db_testing_state_digest: "did anything change?" in one value, for
 *    checks that a request (a GET of an approval page) writes nothing.
 *  - db_testing_approver_unsent: the state a crash leaves between two store
 *    operations, which no test can otherwise stop a process at exactly.
 *
 * Conventions as in db/db.h: each opens and ends its own transaction.
 */
#ifndef ASSENT_DB_TESTING_H
#define ASSENT_DB_TESTING_H

#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

#define DB_TESTING_DIGEST_SIZE 65 /* hex SHA-256 and its NUL */

/*
 * A digest (hex SHA-256) of the workflow state, read in one snapshot: for
 * each run its id, status and updated_at; for each step execution its id,
 * status, due_at and attempt; the number of events; for each approval its
 * id, status, decided_at, decided_by, reminders_sent, next_reminder_at and
 * resume flag; for each approver its id, status, sent_at, number of links
 * and decided_at; for each link its token hash and sent_at.  Two digests
 * are equal when none of these changed in between.  Other tables (mail
 * bookkeeping, secrets, the tenant) are not part of it.
 */
enum as_code db_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                     struct as_err *err) AS_WUR;

/*
 * Forget that the request email of approver `email` (exact address) of
 * approval approval_id went out: the approver is left as a crash leaves it
 * after the mail server took the email and before db_approvals_link_sent
 * recorded it (its links are kept).  AS_ENOTFOUND when there is no such
 * approver.
 */
enum as_code db_testing_approver_unsent(struct db *db, int64_t approval_id, const char *email,
                                        struct as_err *err) AS_WUR;

#endif
