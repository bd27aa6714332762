/*
 * db_mail.h - the bookkeeping that makes mail_send() idempotent: one row
 * per idempotency key in mail_sends (migration 004_mail.sql), moved
 * 'sending' -> 'sent' | 'failed' in short write transactions around the
 * actual send.  See steps/mail.h for the protocol.
 */
#ifndef ASSENT_DB_MAIL_H
#define ASSENT_DB_MAIL_H

#include <jansson.h>
#include <stdint.h>

#include "db/db.h"

enum db_mail_action {
    DB_MAIL_SEND,   /* first attempt, or again after 'failed': send */
    DB_MAIL_RESEND, /* a crash left 'sending': send the same message once more */
    DB_MAIL_DONE,   /* already 'sent': result holds the stored answer */
    DB_MAIL_BUSY,   /* another live sender holds it until lease_until */
    DB_MAIL_GIVEUP, /* 'sending' again after max_resends crash re-sends */
};

struct db_mail_claim {
    enum db_mail_action action;
    char *message_id;    /* the Message-ID to use (the stored one on RESEND/DONE), malloc'd */
    int64_t date_ms;     /* the Date to use (the stored one on RESEND) */
    int attempts;        /* sends started, this one included */
    int resends;         /* crash re-sends, this one included */
    int64_t lease_until; /* BUSY: when the other sender's lease ends */
    json_t *result;      /* DONE: the stored result (new reference), else NULL */
};

/*
 * Decide and record, in one write transaction, what to do with `key`:
 *  - no row: insert it 'sending' with message_id, date_ms -> SEND
 *  - 'failed': 'sending' again, attempts+1, date_ms updated -> SEND
 *  - 'sent': -> DONE (result = stored JSON)
 *  - 'sending' with owner_alive(owner) true and now_ms < lease_until -> BUSY
 *  - 'sending' otherwise: if resends >= max_resends -> GIVEUP, else
 *    resends+1, attempts+1 -> RESEND with the stored message_id and date
 * owner and lease_until are recorded for SEND/RESEND.  owner_alive is
 * called inside the transaction with the stored owner string; keep it cheap.
 * Caller clears *out with db_mail_claim_clear().
 */
enum as_code db_mail_claim(struct db *db, const char *key, const char *message_id,
                           const char *transport, int64_t date_ms, const char *owner,
                           int64_t now_ms, int64_t lease_until, int max_resends,
                           int (*owner_alive)(const char *owner, void *ud), void *ud,
                           struct db_mail_claim *out, struct as_err *err) AS_WUR;

void db_mail_claim_clear(struct db_mail_claim *c);

/*
 * Record the answer: state "sent" or "failed", the result (borrowed; may be
 * NULL) and an error text (may be NULL).  AS_ENOTFOUND when the row is gone.
 */
enum as_code db_mail_finish(struct db *db, const char *key, const char *state,
                            const json_t *result, const char *error, int64_t now_ms,
                            struct as_err *err) AS_WUR;

/*
 * The row for key as a new JSON object {idempotency_key, message_id,
 * transport, state, attempts, resends, owner, lease_until, date_ms, result
 * (parsed), error, created_at, updated_at}, or AS_ENOTFOUND.
 */
enum as_code db_mail_get(struct db *db, const char *key, json_t **row, struct as_err *err) AS_WUR;

/*
 * The unresolved parameters of step `step` in the workflow version run
 * `run_id` started with, and the path of the file that version was loaded
 * from.  The executor hands steps their parameters with ${...} already
 * resolved; the email step renders its subject and bodies itself (HTML
 * escaping substituted values), so it reads the templates as written.
 * Reads the runs and workflows tables of 001_engine.sql, nothing else.
 * *params: new reference (an object; {} when the step has none);
 * *source_path: malloc'd, or NULL when the version was not loaded from a
 * file.  AS_ENOTFOUND when the run or the step is unknown.
 */
enum as_code db_mail_step_source(struct db *db, int64_t run_id, const char *step, json_t **params,
                                 char **source_path, struct as_err *err) AS_WUR;

#endif
