/*
 * db_approvals.h - durable state of approvals: the request (frozen by its
 * hash), the approvers and their answers, the hashed link tokens, and the
 * pieces a decision is recorded with (the decision itself, with its
 * policy, is approvals/approval_decide.h).  Schema:
 * db/sqlite/migrations/003_approvals.sql.
 *
 * Functions taking `struct db *` open and end their own short transaction,
 * so callers never hold the writer across network I/O; those taking
 * `struct db_conn *` run inside the caller's (db/db.h).  JSON in and out is jansson; returned
 * objects are new references the caller decrefs.  Times are ms since the
 * epoch.
 *
 * Approval JSON (db_approvals_get, db_approvals_by_token):
 *   {"id", "run_id", "exec_id", "workflow", "step", "policy", "status",
 *    "subject", "message", "requested_by", "details" (object),
 *    "request" (object), "request_hash", "require_comment_on_reject" (bool),
 *    "require_sign_in" (bool),
 *    "escalate_to" (array), "reminder_every_ms", "next_reminder_at" (0 =
 *    none), "reminders_sent", "expires_at", "created_at", "decided_at" (0),
 *    "decided_by" (""), "decided_via" (""), "comment" (""), "escalated_at"
 *    (0), "run_status", "current" (object or null), "cmdlet" ("" when none),
 *    "approvers": [{"id", "position", "email", "status", "sent_at" (0),
 *                   "n_links", "decided_at" (0), "decided_via", "actor",
 *                   "comment"}, ...]}
 * by_token adds "me": the index into approvers of the link's approver.
 */
#ifndef ASSENT_DB_APPROVALS_H
#define ASSENT_DB_APPROVALS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "base/error.h"

/* A new approval, as the approval step asks for it.  All borrowed. */
struct approval_new {
    int64_t run_id, exec_id;
    const char *workflow, *step;
    const char *idempotency_key; /* the step's key: one approval per step execution */
    const char *policy;          /* any | all | sequential */
    const char *subject, *message, *requested_by;
    const json_t *details;       /* object or NULL */
    const char *request_json;    /* canonical JSON of the request */
    const char *request_hash;    /* its SHA-256 hex */
    const json_t *current;       /* the changed settings' values now (object) or NULL;
                                    shown on the page, not part of the hash */
    const char *cmdlet;          /* the cmdlet that makes the change, or NULL */
    int require_comment_on_reject;
    int require_sign_in;         /* the link shows the form only to its approver, signed in */
    const json_t *approvers;     /* array of distinct address strings, >= 1 */
    const json_t *escalate_to;   /* array or NULL */
    int64_t reminder_every_ms;   /* 0: no reminders */
    int64_t expires_at;
    int64_t now;
    int64_t *approver_ids;       /* out, or NULL: when the approval is made now, the ids of
                                    its approvers, in the order of approvers */
};

/*
 * Find the approval of a->idempotency_key, or create it with its approvers
 * (any/all: all pending; sequential: the first pending, the rest queued).
 * *id receives its id; *created (may be NULL) 1 when it was made now.
 */
enum as_code db_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                 int *created, struct as_err *err) AS_WUR;

/* The approval as JSON (see above), read inside the caller's transaction. */
enum as_code db_approval_view(struct db_conn *c, int64_t id, json_t **out,
                              struct as_err *err) AS_WUR;

/* The approval as JSON (see above).  AS_ENOTFOUND when unknown. */
enum as_code db_approvals_get(struct db *db, int64_t id, json_t **out, struct as_err *err) AS_WUR;

/*
 * The approval reached through a link: token_hash is the hex SHA-256 of the
 * token.  Compared again in constant time after the indexed lookup.
 * AS_ENOTFOUND when no link has that hash.
 */
enum as_code db_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                   struct as_err *err) AS_WUR;

/*
 * Record a new link (hash only) for an approver about to be mailed.
 * purpose "request" or "reminder".  *seq (may be NULL) receives its number
 * among the approver's links (1-based).
 */
enum as_code db_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                   const char *token_hash, int64_t now, int *seq,
                                   struct as_err *err) AS_WUR;

/*
 * The email carrying link token_hash went out: the link and, for a request
 * link, the approver are marked sent (a re-run of the step then skips that
 * approver).
 *
 * Token rotation after a crash: a re-run makes a NEW token for an approver
 * not marked sent, and the earlier token is NOT revoked.  The crash may
 * have come after the mail server accepted the earlier email; the re-send
 * carries the same Message-ID, and a mail client that drops duplicates by
 * Message-ID may keep the earlier copy, so revoking its link could leave
 * the approver with only a dead one.  The earlier token's plaintext never
 * existed anywhere but in that email and the crashed process.
 */
enum as_code db_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                    struct as_err *err) AS_WUR;

/* Reminder number `reminder_no` went to everyone due; next_reminder_at 0 = none. */
enum as_code db_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                       int64_t next_reminder_at, struct as_err *err) AS_WUR;

/*
 * Expire a pending approval: status expired, decided_via "expiry", open
 * approvers closed, an "approval.expired" event.  *changed (may be NULL) is 1
 * when this call expired it, 0 when it was no longer pending (decided just
 * before: read it again).
 */
enum as_code db_approvals_expire(struct db *db, int64_t approval_id, int64_t now, int *changed,
                                 struct as_err *err) AS_WUR;

/* The escalation email of an expired approval went out. */
enum as_code db_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                        struct as_err *err) AS_WUR;

/* Clear the approval's resume_pending flag.  Nothing sets that flag any
 * more (the engine holds a resume that arrives while the step runs: see
 * db_exec_resume), so this is a no-op kept for the approval step. */
enum as_code db_approvals_clear_resume(struct db *db, int64_t approval_id,
                                       struct as_err *err) AS_WUR;

/* ---- the pieces of a decision --------------------------------------------------
 * A decision is one write transaction of these (db_write_begin ..
 * db_write_end); which pieces run, and the policy (any, all, sequential),
 * belong to the approvals module (approvals/approval_decide.h).
 */

/* An approval as a decision finds it. */
struct db_approval_state {
    int64_t approval_id, run_id, exec_id;
    char status[16];          /* pending | approved | rejected | expired */
    char policy[16];          /* any | all | sequential */
    char run_status[16];      /* the run's shown status (running, waiting, ...) */
    char request_hash[80];
    int64_t expires_at;
    int require_comment;      /* require_comment_on_reject */
    int require_sign_in;      /* the approver must be signed in (web/signin.c) */
    char decided_by[256];     /* of the approval, when decided */
    int64_t decided_at;
    int64_t approver_id;      /* the link's approver; 0 when found by id */
    char approver[256];       /* ... its address */
    char approver_status[16]; /* pending | queued | approved | rejected | closed */
    char approver_decided_by[256];
    int64_t approver_decided_at;
};

/*
 * Read the approval of link token_hash (hex SHA-256 of the token, compared
 * again in constant time after the indexed lookup), or, when token_hash is
 * NULL, approval approval_id.  AS_ENOTFOUND when unknown.
 */
enum as_code db_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                              struct db_approval_state *s, struct as_err *err) AS_WUR;

/* One answer, as it is recorded.  All borrowed. */
struct db_approval_answer {
    int64_t approver_id;     /* the approver answering (db_approval_answer) */
    const char *decided;     /* approved | rejected */
    const char *via, *actor, *comment, *client_addr, *user_agent; /* user agent cut to 512 bytes */
    int64_t now;
};

/* Record the answer of approver a->approver_id if still pending; AS_ECONFLICT
 * otherwise (of two concurrent answers exactly one wins). */
enum as_code db_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                struct as_err *err) AS_WUR;

/* How many approvers of the approval have not approved. */
enum as_code db_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                    struct as_err *err) AS_WUR;

/* The first queued approver of the approval (by position); 0 when none. */
enum as_code db_approval_next_queued(struct db_conn *c, int64_t approval_id, int64_t *approver_id,
                                    struct as_err *err) AS_WUR;

/* Make queued approver approver_id pending (asked next). */
enum as_code db_approval_activate(struct db_conn *c, int64_t approver_id,
                                  struct as_err *err) AS_WUR;

/* Decide the approval itself (status approved or rejected, by a->actor via
 * a->via with a->comment at a->now) if still pending, AS_ECONFLICT
 * otherwise, and, when open_left (the caller read some approver still
 * pending or queued, or did not look), close its approvers still pending
 * or queued. */
enum as_code db_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                               const struct db_approval_answer *a, int open_left,
                               struct as_err *err) AS_WUR;

/* One approver of an approval as a decision reads it (db_approval_approvers).
 * Strings borrowed for the call ("" for NULL). */
struct db_approver_row {
    int64_t id;
    const char *email;
    const char *status;  /* pending | queued | approved | rejected | closed */
    int64_t decided_at;  /* 0 when not decided */
    const char *comment;
};

/*
 * Every approver of the approval, by position, inside the caller's
 * transaction: one statement that gives the policy what it counts (who has
 * not approved, who is queued next) and the step's output its list.  cb
 * returns non-zero to stop.
 */
enum as_code db_approval_approvers(struct db_conn *c, int64_t approval_id,
                                   int (*cb)(void *ud, const struct db_approver_row *r), void *ud,
                                   struct as_err *err) AS_WUR;

/*
 * Approvers asked and still pending (all = 0), or every approver row
 * (all = 1; approvals of ended runs that were still pending show as
 * "withdrawn", see db_approvals_list_where), newest approval first, at most limit (<= 0: 200) rows, as an
 * array of {"approval_id", "run_id", "workflow", "step", "subject",
 * "approver", "approver_status", "status", "policy", "asked_at" (0 = not
 * mailed yet), "expires_at", "decided_at", "decided_by", "run_status"}.
 * Pending (all = 0) means: approval pending, run open, approver pending.
 */
enum as_code db_approvals_list(struct db *db, int all, int limit, json_t **out,
                               struct as_err *err) AS_WUR;

struct db_approvals_filter {
    int all;            /* every approver row, not only those still asked */
    const char *status; /* NULL: any; else only approvals shown with this status
                           (every approver row of them) */
    int limit;          /* <= 0: 200 rows */
};

/*
 * The same with a filter.  In these listings an approval still pending when
 * its run has ended (any run status but running and waiting) shows status
 * "withdrawn", and so do its approvers still pending or queued; the filter
 * matches that shown status.  AS_EINVAL for a status that is none of
 * pending, approved, rejected, expired, withdrawn.
 */
enum as_code db_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
                                     json_t **out, struct as_err *err) AS_WUR;

struct db_approvals_page_query {
    const char *status; /* NULL: any; else the shown status: pending, approved, rejected,
                           expired, withdrawn, or decided (approved or rejected) */
    int64_t before_id;  /* 0: from the newest; else only approvals with smaller ids (paging) */
    int limit;          /* approvals, not rows; <= 0: 50 */
};

/*
 * Approvals, newest first, one object each with its approvers:
 * {"id", "run_id", "workflow", "step", "subject", "status", "policy",
 * "created_at", "expires_at", "decided_at" (0: not decided), "decided_by",
 * "decided_via", "comment", "run_status", "approvers": [{"email", "status",
 * "asked_at" (0: not asked yet), "decided_at", "decided_via", "actor",
 * "comment"}]}.  Statuses are shown as in db_approvals_list_where (an
 * approval still pending when its run has ended is "withdrawn").  AS_EINVAL
 * for an unknown status.  *out is a new array.
 */
enum as_code db_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                               json_t **out, struct as_err *err) AS_WUR;

/* 1 when status is one an approval can show (see db_approvals_list_where). */
int db_approvals_status_known(const char *status);

/*
 * Counts for /metrics: {"runs": {status: n}, "steps": {status: n},
 * "approvals": {status: n}, "approvals_pending": n (pending in open runs)}.
 */
enum as_code db_approvals_stats(struct db *db, json_t **out, struct as_err *err) AS_WUR;

/*
 * The per-installation secret `name` (len bytes): created from the CSPRNG
 * on first use, the same for every process sharing the database.
 */
enum as_code db_approvals_secret(struct db *db, const char *name, unsigned char *out, size_t len,
                                 struct as_err *err) AS_WUR;

#endif
