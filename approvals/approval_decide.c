/* approval_decide.c - a decision and the approval policy (see approval_decide.h). */
#include "approvals/approval_decide.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "db/db_approvals.h"
#include "db/db_events.h"
#include "db/db_execs.h"
#include "m365/oidc.h"

enum approval_effect approval_policy(const char *policy, int by_admin, int approve,
                                     int64_t unapproved, int queued)
{
    if (by_admin || !approve || strcmp(policy, "any") == 0)
        return APPROVAL_DECIDED;
    if (strcmp(policy, "all") == 0)
        return unapproved == 0 ? APPROVAL_DECIDED : APPROVAL_STAYS_PENDING;
    return queued ? APPROVAL_ASK_NEXT : APPROVAL_DECIDED; /* sequential */
}

static int blank(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

static int run_open(const char *status)
{
    return strcmp(status, "running") == 0 || strcmp(status, "waiting") == 0;
}

/*
 * Whether the decision may be taken, in this order: decisions first (they
 * stand whatever happened to the run since), then expiry, then a used link,
 * then a run that ended without a decision, then a missing comment.
 */
static enum as_code admissible(const struct db_approval_state *s, const struct approval_decision *d,
                               int approve, struct approval_decision_result *res,
                               struct as_err *err)
{
    if (s->approver_id && (strcmp(s->approver_status, "approved") == 0 ||
                           strcmp(s->approver_status, "rejected") == 0)) {
        /* This approver answered already (policy all: the approval goes on). */
        snprintf(res->decided_by, sizeof res->decided_by, "%s", s->approver_decided_by);
        res->decided_at = s->approver_decided_at;
        snprintf(res->decided_what, sizeof res->decided_what, "%s", s->approver_status);
    }
    if (strcmp(s->status, "approved") == 0 || strcmp(s->status, "rejected") == 0) {
        snprintf(res->decided_what, sizeof res->decided_what, "%s", s->status);
        return as_errf(err, AS_ECONFLICT, "already %s by %s", s->status, res->decided_by);
    }
    if (strcmp(s->status, "expired") == 0) {
        snprintf(res->decided_what, sizeof res->decided_what, "expired");
        return as_errf(err, AS_EEXPIRED, "this approval expired");
    }
    if (s->approver_id && strcmp(s->approver_status, "pending") != 0) {
        if (!res->decided_what[0])
            snprintf(res->decided_what, sizeof res->decided_what, "%s", s->approver_status);
        return as_errf(err, AS_ECONFLICT, "this link was already used (%s)", s->approver_status);
    }
    if (!run_open(s->run_status))
        return as_errf(err, AS_ECANCELLED, "the run of this approval has ended (%s)",
                       s->run_status);
    if (d->now >= s->expires_at) {
        snprintf(res->decided_what, sizeof res->decided_what, "expired");
        return as_errf(err, AS_EEXPIRED, "this approval expired");
    }
    /* A link (not an administrator's decision by id) of an approval that
     * asks for sign-in: only its approver, signed in. */
    if (s->approver_id && s->require_sign_in && !(d->identity && d->identity_oid))
        return as_errf(err, AS_EAUTH, "this request needs its approver signed in");
    if (s->approver_id && d->identity_oid &&
        !oidc_identity_is(s->approver, d->identity, d->identity_oid))
        return as_errf(err, AS_EAUTH, "signed in as %s; this request is for %s", d->identity,
                       s->approver);
    if (!approve && s->require_comment && blank(d->comment))
        return as_errf(err, AS_EINVAL, "a comment is required to reject");
    return AS_OK;
}

/* Apply the policy to the answer just recorded: *effect says what it did. */
static enum as_code apply_policy(struct db_conn *c, const struct db_approval_state *s,
                                 int approve, const struct db_approval_answer *a,
                                 enum approval_effect *effect, struct as_err *err)
{
    enum as_code rc;
    int64_t unapproved = 0, next = 0;
    int by_admin = s->approver_id == 0;
    if (!by_admin && approve && strcmp(s->policy, "all") == 0 &&
        (rc = db_approval_unapproved(c, s->approval_id, &unapproved, err)))
        return rc;
    if (!by_admin && approve && strcmp(s->policy, "sequential") == 0 &&
        (rc = db_approval_next_queued(c, s->approval_id, &next, err)))
        return rc;
    *effect = approval_policy(s->policy, by_admin, approve, unapproved, next != 0);
    switch (*effect) {
    case APPROVAL_DECIDED:
        return db_approval_close(c, s->approval_id, a->decided, a, err);
    case APPROVAL_ASK_NEXT:
        return db_approval_activate(c, next, err);
    case APPROVAL_STAYS_PENDING:
        break;
    }
    return AS_OK;
}

/* The audit event of the decision, and the step's resume when it changed something for it. */
static enum as_code record(struct db_conn *c, const struct db_approval_state *s,
                           const struct approval_decision *d, const struct db_approval_answer *a,
                           enum approval_effect effect, struct approval_decision_result *res,
                           struct as_err *err)
{
    const char *final = effect == APPROVAL_DECIDED ? a->decided : NULL;
    json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:s}",
                           "approval_id", (json_int_t)s->approval_id,
                           "approver", res->approver[0] ? res->approver : "(administrator)",
                           "decision", a->decided, "comment", d->comment ? d->comment : "",
                           "via", d->via ? d->via : "", "actor", a->actor,
                           "client_addr", d->client_addr, "user_agent", d->user_agent,
                           "request_hash", s->request_hash,
                           "approval_status", final ? final : "pending");
    if (ev && d->identity_oid &&
        (json_object_set_new(ev, "identity", json_string(d->identity ? d->identity : "")) ||
         json_object_set_new(ev, "oid", json_string(d->identity_oid)) ||
         json_object_set_new(ev, "tid", json_string(d->identity_tid ? d->identity_tid : "")) ||
         json_object_set_new(ev, "signed_in", json_true()))) {
        json_decref(ev);
        ev = NULL;
    }
    if (!ev)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_event_append(c, s->run_id, s->exec_id, "approval.decision", ev, err);
    json_decref(ev);
    if (rc || effect == APPROVAL_STAYS_PENDING)
        return rc;

    json_t *payload = json_pack("{s:I, s:s}", "approval_id", (json_int_t)s->approval_id,
                                "decision", final ? final : "next");
    if (!payload)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct as_err rerr = {0};
    enum as_code rr = db_exec_resume(c, s->exec_id, payload, &rerr);
    json_decref(payload);
    if (rr == AS_OK)
        /* Woken, or held by the engine until the step (still mailing,
         * say) waits: either way it sees the decision. */
        res->resumed = 1;
    else if (rr != AS_ECONFLICT) /* AS_ECONFLICT: the step has ended; nobody is left to wake. */
        return as_errf(err, rr, "%s", rerr.msg);
    return AS_OK;
}

enum as_code approval_decide(struct db *db, const struct approval_decision *d,
                             struct approval_decision_result *res, struct as_err *err)
{
    struct db_conn *c;
    struct db_approval_state s;
    enum approval_effect effect = APPROVAL_STAYS_PENDING;

    memset(res, 0, sizeof *res);
    int approve = d->decision && strcmp(d->decision, "approve") == 0;
    if (!approve && !(d->decision && strcmp(d->decision, "reject") == 0))
        return as_errf(err, AS_EINVAL, "the decision must be approve or reject");
    if (d->comment && strlen(d->comment) > APPROVAL_COMMENT_MAX)
        return as_errf(err, AS_EINVAL, "the comment is longer than %d bytes",
                       APPROVAL_COMMENT_MAX);

    enum as_code rc = db_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = db_approval_load(c, d->token_hash, d->approval_id, &s, err);
    if (rc)
        goto out;
    res->approval_id = s.approval_id;
    res->run_id = s.run_id;
    res->exec_id = s.exec_id;
    snprintf(res->approver, sizeof res->approver, "%s", s.approver);
    snprintf(res->status, sizeof res->status, "%s", s.status);
    snprintf(res->decided_by, sizeof res->decided_by, "%s", s.decided_by);
    res->decided_at = s.decided_at;
    if ((rc = admissible(&s, d, approve, res, err)))
        goto out;

    struct db_approval_answer a = {
        .approver_id = s.approver_id,
        .decided = approve ? "approved" : "rejected",
        .via = d->via,
        .actor = d->actor && *d->actor ? d->actor
                 : d->identity && *d->identity ? d->identity
                                               : s.approver,
        .comment = d->comment,
        .client_addr = d->client_addr,
        .user_agent = d->user_agent,
        .now = d->now,
    };
    if (s.approver_id && (rc = db_approval_answer(c, &a, err)))
        goto out;
    if ((rc = apply_policy(c, &s, approve, &a, &effect, err)))
        goto out;
    if (effect == APPROVAL_DECIDED) {
        snprintf(res->status, sizeof res->status, "%s", a.decided);
        snprintf(res->decided_by, sizeof res->decided_by, "%s", a.actor);
        res->decided_at = d->now;
    }
    rc = record(c, &s, d, &a, effect, res, err);
out:
    return db_write_end(db, rc, err);
}
