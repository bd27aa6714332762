/*
 * approval_decide.h - a person's decision on an approval, and the policy
 * that turns answers into an outcome.  Used by the web POST
 * (web/approval_pages.c) and `assent decide` (cli/cmd_web.c).
 */
#ifndef ASSENT_APPROVAL_DECIDE_H
#define ASSENT_APPROVAL_DECIDE_H

#include <stdint.h>

#include "base/error.h"

struct db;

#define APPROVAL_COMMENT_MAX 4000 /* bytes */

/* One decision from a person. */
struct approval_decision {
    const char *token_hash;  /* the link used (web, or `decide TOKEN`); or NULL and: */
    int64_t approval_id;     /* `decide ID`: an administrator decides the whole approval */
    const char *decision;    /* "approve" | "reject" */
    const char *comment;     /* may be NULL or "" */
    const char *via;         /* "web" | "cli" */
    const char *actor;       /* cli: OS user or --as NAME; web: NULL (the approver's address) */
    const char *client_addr; /* web: peer address; NULL otherwise */
    const char *user_agent;  /* web: User-Agent (truncated to 512 bytes); NULL otherwise */
    /* web, signed in with Entra ID (web/signin.c): the verified identity, else all NULL */
    const char *identity;    /* preferred_username / upn */
    const char *identity_oid;
    const char *identity_tid;
    int64_t now;
};

struct approval_decision_result {
    int64_t approval_id, run_id, exec_id;
    char approver[256];      /* the link's approver ("" for an admin decision) */
    char status[16];         /* the approval after: pending | approved | rejected (| expired) */
    char decided_by[256];    /* AS_ECONFLICT: who decided before */
    int64_t decided_at;      /* AS_ECONFLICT: when */
    char decided_what[16];   /* AS_ECONFLICT: approved | rejected | expired */
    int resumed;             /* the step was woken: call engine_wake() */
};

/*
 * Record a decision in ONE write transaction: find the link or approval;
 * refuse a decision already taken (AS_ECONFLICT, with who decided in res),
 * an expired approval (AS_EEXPIRED), a used link (AS_ECONFLICT), a run that
 * has ended (AS_ECANCELLED), a reject without a comment where one is
 * required (AS_EINVAL), a link of an approval with require_sign_in answered
 * without a signed-in identity, or by an identity that is not the link's
 * approver (oidc_identity_is: UPN case-insensitively, or the object id)
 * (AS_EAUTH).  Then record the answer (of two concurrent
 * decisions exactly one wins; the other gets AS_ECONFLICT), apply the
 * policy (approval_policy), append an "approval.decision" event with
 * approver, decision, comment, via, actor, client address, user agent and
 * the request hash (signed in: also "identity", "oid", "tid" and
 * "signed_in": true, and the identity is the actor), and resume the step when something changed for it (if
 * it is not waiting yet, e.g. still mailing, the engine holds the resume
 * until it waits).  AS_ENOTFOUND when the token or id is unknown.
 */
enum as_code approval_decide(struct db *db, const struct approval_decision *d,
                             struct approval_decision_result *res, struct as_err *err) AS_WUR;

/*
 * What approval_decide_submit reports, on the engine's dispatcher thread:
 * rc and err as approval_decide would return them (res borrowed for the
 * call).  AS_OK means the decision is durable.  Must not block.
 */
typedef void (*approval_decided_fn)(void *ud, enum as_code rc,
                                    const struct approval_decision_result *res,
                                    const struct as_err *err);

/*
 * approval_decide through engine e's group commit (engine/engine.h,
 * engine_write_submit): d is copied and recorded by the dispatcher in its
 * next write transaction, together with step results and other decisions,
 * and done(ud, ...) is called once that transaction has committed (or the
 * decision was refused).  When the decision decides the approval and the
 * step waits, the step ends in that same transaction with the outcome
 * approved or rejected and the output it would have returned
 * (approval_step_output), and the run's next step is scheduled: the step
 * does not run again.  Returns at once: AS_OK (done will be called exactly
 * once; if e stops before taking the decision, it is recorded on db with
 * approval_decide before done), AS_ECANCELLED when there is no engine or it
 * is stopping (done is never called: decide with approval_decide),
 * AS_ENOMEM.
 */
struct engine;
enum as_code approval_decide_submit(struct engine *e, struct db *db,
                                    const struct approval_decision *d, approval_decided_fn done,
                                    void *ud, struct as_err *err) AS_WUR;

/*
 * approval_decide for a caller that may wait (the REST API, the console):
 * with engine e running in this process on SQLite, through its group commit
 * (approval_decide_submit), waiting until the decision is durable or
 * refused, so that a decided approval ends its waiting step in the same
 * transaction instead of running it again; else (no engine, PostgreSQL, an
 * engine stopping) approval_decide.  The same results as approval_decide;
 * res->resumed is 1 when the step was woken or ended.  Blocks the calling
 * thread for one group commit; never call it on the dispatcher.
 */
enum as_code approval_decide_wait(struct engine *e, struct db *db,
                                  const struct approval_decision *d,
                                  struct approval_decision_result *res,
                                  struct as_err *err) AS_WUR;

/* What one answer does to an approval. */
enum approval_effect {
    APPROVAL_STAYS_PENDING, /* all: others must still approve */
    APPROVAL_ASK_NEXT,      /* sequential: the next queued approver is asked */
    APPROVAL_DECIDED,       /* the approval is decided (approved or rejected) */
};

/*
 * The policy.  An administrator's decision (by_admin) and a rejection
 * decide at once, and so does any answer under "any".  Under "all" an
 * approval decides when no approver is left who has not approved
 * (unapproved, counted after this answer); under "sequential" when no
 * approver is queued (queued: 1 when one is), else the next is asked.
 */
enum approval_effect approval_policy(const char *policy, int by_admin, int approve,
                                     int64_t unapproved, int queued);

#endif
