/* approval_decide.c - a decision and the approval policy (see approval_decide.h). */
#include "approvals/approval_decide.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approvals.h"
#include "base/timeutil.h"
#include "db/db.h"
#include "db/db_approvals.h"
#include "db/db_events.h"
#include "db/db_execs.h"
#include "m365/oidc.h"
#include "engine/engine.h"

/* Where a decision is written: a transaction of its own (both NULL), or
 * the engine's group commit (approval_decide_submit). */
struct decide_target {
    struct db_event_chain *chain; /* the transaction's event chain cache */
    struct engine_write *w;       /* the step's resume goes to the engine */
};

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

/*
 * The step's resume, left to the engine: with the approval decided, the
 * step would only read it and return its output, so the engine is given
 * that output to end the waiting step at once (approval_step_output, the
 * step's own); else (the next approver to mail) the step runs again.
 */
static enum as_code resume_through_engine(struct db_conn *c, struct engine_write *w,
                                          const struct db_approval_state *s, const char *final,
                                          const json_t *payload, struct as_err *err)
{
    char *payload_text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *output_text = NULL;
    json_t *view = NULL, *output = NULL;
    enum as_code rc = AS_OK;
    if (!payload_text) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (final) {
        rc = db_approval_view(c, s->approval_id, &view, err);
        if (rc)
            goto out;
        output = approval_step_output(view);
        /* As the engine stores a step's output (engine_dump). */
        output_text = output ? json_dumps(output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (!output_text) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
    }
    rc = engine_write_resume(w, s->exec_id, payload_text, final, output_text, err);
out:
    free(payload_text);
    free(output_text);
    json_decref(output);
    json_decref(view);
    return rc;
}

/* The audit event of the decision, and the step's resume when it changed something for it. */
static enum as_code record(struct db_conn *c, const struct decide_target *t,
                           const struct db_approval_state *s, const struct approval_decision *d,
                           const struct db_approval_answer *a, enum approval_effect effect,
                           struct approval_decision_result *res, struct as_err *err)
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
    enum as_code rc;
    if (t->chain) {
        /* The text db_event_append would store, through the chain cache. */
        char *text = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        rc = text ? db_event_append_chained(c, t->chain, s->run_id, s->exec_id,
                                            "approval.decision", text, NULL, time_now_ms(), err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        free(text);
    } else {
        rc = db_event_append(c, s->run_id, s->exec_id, "approval.decision", ev, err);
    }
    json_decref(ev);
    if (rc || effect == APPROVAL_STAYS_PENDING)
        return rc;

    json_t *payload = json_pack("{s:I, s:s}", "approval_id", (json_int_t)s->approval_id,
                                "decision", final ? final : "next");
    if (!payload)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (t->w) {
        rc = resume_through_engine(c, t->w, s, final, payload, err);
        json_decref(payload);
        if (!rc)
            res->resumed = 1;
        return rc;
    }
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

/* The decision inside a write transaction the caller ends (t: where to). */
static enum as_code decide_in(struct db_conn *c, const struct decide_target *t,
                              const struct approval_decision *d,
                              struct approval_decision_result *res, struct as_err *err)
{
    struct db_approval_state s;
    enum approval_effect effect = APPROVAL_STAYS_PENDING;

    int approve = d->decision && strcmp(d->decision, "approve") == 0;
    if (!approve && !(d->decision && strcmp(d->decision, "reject") == 0))
        return as_errf(err, AS_EINVAL, "the decision must be approve or reject");
    if (d->comment && strlen(d->comment) > APPROVAL_COMMENT_MAX)
        return as_errf(err, AS_EINVAL, "the comment is longer than %d bytes",
                       APPROVAL_COMMENT_MAX);

    enum as_code rc = db_approval_load(c, d->token_hash, d->approval_id, &s, err);
    if (rc)
        return rc;
    res->approval_id = s.approval_id;
    res->run_id = s.run_id;
    res->exec_id = s.exec_id;
    snprintf(res->approver, sizeof res->approver, "%s", s.approver);
    snprintf(res->status, sizeof res->status, "%s", s.status);
    snprintf(res->decided_by, sizeof res->decided_by, "%s", s.decided_by);
    res->decided_at = s.decided_at;
    if ((rc = admissible(&s, d, approve, res, err)))
        return rc;

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
        return rc;
    if ((rc = apply_policy(c, &s, approve, &a, &effect, err)))
        return rc;
    if (effect == APPROVAL_DECIDED) {
        snprintf(res->status, sizeof res->status, "%s", a.decided);
        snprintf(res->decided_by, sizeof res->decided_by, "%s", a.actor);
        res->decided_at = d->now;
    }
    return record(c, t, &s, d, &a, effect, res, err);
}

enum as_code approval_decide(struct db *db, const struct approval_decision *d,
                             struct approval_decision_result *res, struct as_err *err)
{
    struct db_conn *c;
    static const struct decide_target own = {NULL, NULL};
    memset(res, 0, sizeof *res);
    enum as_code rc = db_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = decide_in(c, &own, d, res, err);
    return db_write_end(db, rc, err);
}

/* ---- through the engine's group commit ------------------------------------------ */

struct decide_job {
    struct engine_write w; /* first: the engine hands it back */
    struct approval_decision d;
    struct approval_decision_result res;
    approval_decided_fn done;
    void *ud;
    struct db *db; /* to decide on its own when the engine stopped first */
    int ran;       /* apply ran (in some transaction) */
    char *strings[10]; /* the copies d points at */
};

static enum as_code job_apply(struct engine_write *w, struct db_conn *conn,
                              struct db_event_chain *chain, struct as_err *err)
{
    struct decide_job *j = (struct decide_job *)w;
    struct decide_target t = {chain, w};
    memset(&j->res, 0, sizeof j->res);
    j->ran = 1;
    return decide_in(conn, &t, &j->d, &j->res, err);
}

static void job_free(struct decide_job *j)
{
    for (size_t i = 0; i < sizeof j->strings / sizeof j->strings[0]; i++)
        free(j->strings[i]);
    free(j);
}

static void job_done(struct engine_write *w, enum as_code rc, const struct as_err *err)
{
    struct decide_job *j = (struct decide_job *)w;
    struct as_err own = {0};
    if (rc == AS_ECANCELLED && !j->ran) {
        /* The engine stopped before it took the decision: a decision
         * always works, so it is recorded in a transaction of its own. */
        rc = approval_decide(j->db, &j->d, &j->res, &own);
        err = &own;
    }
    j->done(j->ud, rc, &j->res, err);
    job_free(j);
}

/* A copy of s into j->strings[i] (NULL stays NULL); -1 out of memory. */
static int keep(struct decide_job *j, int i, const char *s, const char **into)
{
    *into = NULL;
    if (!s)
        return 0;
    if (!(j->strings[i] = strdup(s)))
        return -1;
    *into = j->strings[i];
    return 0;
}

enum as_code approval_decide_submit(struct engine *e, struct db *db,
                                    const struct approval_decision *d, approval_decided_fn done,
                                    void *ud, struct as_err *err)
{
    struct decide_job *j = calloc(1, sizeof *j);
    if (!j)
        return as_errf(err, AS_ENOMEM, "out of memory");
    j->d = *d;
    j->done = done;
    j->ud = ud;
    j->db = db;
    j->w.apply = job_apply;
    j->w.done = job_done;
    if (keep(j, 0, d->token_hash, &j->d.token_hash) || keep(j, 1, d->decision, &j->d.decision) ||
        keep(j, 2, d->comment, &j->d.comment) || keep(j, 3, d->client_addr, &j->d.client_addr) ||
        keep(j, 4, d->user_agent, &j->d.user_agent) || keep(j, 5, d->via, &j->d.via) ||
        keep(j, 6, d->actor, &j->d.actor) || keep(j, 7, d->identity, &j->d.identity) ||
        keep(j, 8, d->identity_oid, &j->d.identity_oid) ||
        keep(j, 9, d->identity_tid, &j->d.identity_tid)) {
        job_free(j);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    enum as_code rc = engine_write_submit(e, &j->w, err);
    if (rc)
        job_free(j);
    return rc;
}
