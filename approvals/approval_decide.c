/* approval_decide.c - a decision and the approval policy (see approval_decide.h). */
#include "approvals/approval_decide.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approvals/approvals.h"
#include "base/jsonbuf.h"
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

/* ---- the approvers, read once ---------------------------------------------------- */

/* An approver as read after the answer (db_approval_approvers). */
struct approver_item {
    char *email, *comment;
    char status[16];
    int64_t id, decided_at;
};

struct approver_list {
    struct approver_item *v;
    size_t n, cap;
    int oom;
};

static int collect_approver(void *ud, const struct db_approver_row *r)
{
    struct approver_list *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct approver_item *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return l->oom = 1;
        l->v = v;
        l->cap = cap;
    }
    struct approver_item *it = &l->v[l->n];
    it->email = strdup(r->email);
    it->comment = strdup(r->comment);
    if (!it->email || !it->comment) {
        free(it->email);
        free(it->comment);
        return l->oom = 1;
    }
    snprintf(it->status, sizeof it->status, "%s", r->status);
    it->id = r->id;
    it->decided_at = r->decided_at;
    l->n++;
    return 0;
}

static void approver_list_free(struct approver_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].email);
        free(l->v[i].comment);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int still_open(const char *status)
{
    return strcmp(status, "pending") == 0 || strcmp(status, "queued") == 0;
}

/*
 * Apply the policy to the answer just recorded: *effect says what it did.
 * list (NULL: not needed) receives every approver as the decision leaves
 * them, read in one statement: it tells the policy who has not approved and
 * who is queued next, spares closing approvers when none is left open, and
 * gives the step's output its list.
 */
static enum as_code apply_policy(struct db_conn *c, const struct db_approval_state *s,
                                 int approve, const struct db_approval_answer *a,
                                 struct approver_list *list, enum approval_effect *effect,
                                 struct as_err *err)
{
    enum as_code rc;
    int64_t unapproved = 0, next = 0;
    int open_left = 1;
    int by_admin = s->approver_id == 0;
    if (list) {
        if ((rc = db_approval_approvers(c, s->approval_id, collect_approver, list, err)))
            return rc;
        if (list->oom)
            return as_errf(err, AS_ENOMEM, "out of memory");
        open_left = 0;
        for (size_t i = 0; i < list->n; i++) {
            const char *st = list->v[i].status;
            unapproved += strcmp(st, "approved") != 0;
            if (!next && strcmp(st, "queued") == 0)
                next = list->v[i].id;
            open_left |= still_open(st);
        }
    }
    *effect = approval_policy(s->policy, by_admin, approve, unapproved, next != 0);
    switch (*effect) {
    case APPROVAL_DECIDED:
        if ((rc = db_approval_close(c, s->approval_id, a->decided, a, open_left, err)))
            return rc;
        if (list) /* as db_approval_close left them */
            for (size_t i = 0; i < list->n; i++)
                if (still_open(list->v[i].status))
                    snprintf(list->v[i].status, sizeof list->v[i].status, "closed");
        return AS_OK;
    case APPROVAL_ASK_NEXT:
        return db_approval_activate(c, next, err);
    case APPROVAL_STAYS_PENDING:
        break;
    }
    return AS_OK;
}

/* time_format_iso of t as a JSON string, "" for 0 (as approval_step_output). */
static void add_time(struct jsonbuf *b, int64_t t)
{
    char when[40] = "";
    if (t)
        time_format_iso(t, when, sizeof when);
    jsonbuf_add_str(b, when);
}

/*
 * The output the approval step returns once decided (approval_step_output,
 * from the approval read back), built from what the decision wrote and the
 * approvers it read: the same text engine_dump would store.
 */
static char *decided_output(const struct db_approval_state *s, const struct approval_decision *d,
                            const struct db_approval_answer *a, const struct approver_list *l)
{
    struct jsonbuf b = {0};
    jsonbuf_add(&b, "{\"decision\":");
    jsonbuf_add_str(&b, a->decided);
    jsonbuf_add(&b, ",\"decided_by\":");
    jsonbuf_add_str(&b, a->actor ? a->actor : "");
    jsonbuf_add(&b, ",\"comment\":");
    jsonbuf_add_str(&b, d->comment ? d->comment : "");
    jsonbuf_add(&b, ",\"decided_at\":");
    add_time(&b, d->now);
    jsonbuf_add(&b, ",\"decided_via\":");
    jsonbuf_add_str(&b, d->via ? d->via : "");
    jsonbuf_add(&b, ",\"request_hash\":");
    jsonbuf_add_str(&b, s->request_hash);
    jsonbuf_add(&b, ",\"approval_id\":");
    jsonbuf_add_i64(&b, s->approval_id);
    jsonbuf_add(&b, ",\"approvers\":[");
    for (size_t i = 0; i < l->n; i++) {
        jsonbuf_add(&b, i ? ",{\"email\":" : "{\"email\":");
        jsonbuf_add_str(&b, l->v[i].email);
        jsonbuf_add(&b, ",\"status\":");
        jsonbuf_add_str(&b, l->v[i].status);
        jsonbuf_add(&b, ",\"decided_at\":");
        add_time(&b, l->v[i].decided_at);
        jsonbuf_add(&b, ",\"comment\":");
        jsonbuf_add_str(&b, l->v[i].comment);
        jsonbuf_add(&b, "}");
    }
    jsonbuf_add(&b, "]}");
    return jsonbuf_take(&b);
}

/*
 * The "approval.decision" event's data, as json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) writes it (keys in strcmp order), without building a
 * json_t: approval_id, approver, decision, comment, via, actor, client_addr
 * and user_agent when known, request_hash, approval_status; signed in, also
 * identity, oid, tid and signed_in.
 */
static char *decision_event(const struct db_approval_state *s, const struct approval_decision *d,
                            const struct db_approval_answer *a, const char *approver,
                            const char *final)
{
    int signed_in = d->identity_oid != NULL;
    struct jsonbuf b = {0};
    jsonbuf_add(&b, "{\"actor\":");
    jsonbuf_add_str(&b, a->actor ? a->actor : "");
    jsonbuf_add(&b, ",\"approval_id\":");
    jsonbuf_add_i64(&b, s->approval_id);
    jsonbuf_add(&b, ",\"approval_status\":");
    jsonbuf_add_str(&b, final ? final : "pending");
    jsonbuf_add(&b, ",\"approver\":");
    jsonbuf_add_str(&b, approver);
    if (d->client_addr) {
        jsonbuf_add(&b, ",\"client_addr\":");
        jsonbuf_add_str(&b, d->client_addr);
    }
    jsonbuf_add(&b, ",\"comment\":");
    jsonbuf_add_str(&b, d->comment ? d->comment : "");
    jsonbuf_add(&b, ",\"decision\":");
    jsonbuf_add_str(&b, a->decided);
    if (signed_in) {
        jsonbuf_add(&b, ",\"identity\":");
        jsonbuf_add_str(&b, d->identity ? d->identity : "");
        jsonbuf_add(&b, ",\"oid\":");
        jsonbuf_add_str(&b, d->identity_oid);
    }
    jsonbuf_add(&b, ",\"request_hash\":");
    jsonbuf_add_str(&b, s->request_hash);
    if (signed_in) {
        jsonbuf_add(&b, ",\"signed_in\":true,\"tid\":");
        jsonbuf_add_str(&b, d->identity_tid ? d->identity_tid : "");
    }
    if (d->user_agent) {
        jsonbuf_add(&b, ",\"user_agent\":");
        jsonbuf_add_str(&b, d->user_agent);
    }
    jsonbuf_add(&b, ",\"via\":");
    jsonbuf_add_str(&b, d->via ? d->via : "");
    jsonbuf_add(&b, "}");
    return jsonbuf_take(&b);
}

/* The audit event of the decision, and the step's resume when it changed something for it. */
static enum as_code record(struct db_conn *c, const struct decide_target *t,
                           const struct db_approval_state *s, const struct approval_decision *d,
                           const struct db_approval_answer *a, const struct approver_list *list,
                           enum approval_effect effect, struct approval_decision_result *res,
                           struct as_err *err)
{
    const char *final = effect == APPROVAL_DECIDED ? a->decided : NULL;
    char *ev = decision_event(s, d, a, res->approver[0] ? res->approver : "(administrator)", final);
    if (!ev)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc =
        t->chain ? db_event_append_chained(c, t->chain, s->run_id, s->exec_id, "approval.decision",
                                           ev, NULL, time_now_ms(), err)
                 : db_event_append_text(c, s->run_id, s->exec_id, "approval.decision", ev,
                                        time_now_ms(), err);
    free(ev);
    if (rc || effect == APPROVAL_STAYS_PENDING)
        return rc;

    if (t->w) {
        /* The step's resume, left to the engine: with the approval decided,
         * the step would only read it back and return its output, so the
         * engine is given that output to end the waiting step at once; else
         * (the next approver to mail) the step runs again. */
        struct jsonbuf pb = {0};
        jsonbuf_add(&pb, "{\"approval_id\":");
        jsonbuf_add_i64(&pb, s->approval_id);
        jsonbuf_add(&pb, ",\"decision\":");
        jsonbuf_add_str(&pb, final ? final : "next");
        jsonbuf_add(&pb, "}");
        char *payload = jsonbuf_take(&pb);
        char *output = final && list ? decided_output(s, d, a, list) : NULL;
        if (!payload || (final && !output))
            rc = as_errf(err, AS_ENOMEM, "out of memory");
        else
            rc = engine_write_resume(t->w, s->exec_id, payload, final, output, err);
        free(payload);
        free(output);
        if (!rc)
            res->resumed = 1;
        return rc;
    }
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
    /* The approvers are read when the policy counts them, or when the
     * engine ends the step with its output (their list); under "any" on
     * its own the decision needs none of them. */
    struct approver_list list = {0};
    int need_list = t->w || strcmp(s.policy, "any") != 0;
    rc = apply_policy(c, &s, approve, &a, need_list ? &list : NULL, &effect, err);
    if (!rc && effect == APPROVAL_DECIDED) {
        snprintf(res->status, sizeof res->status, "%s", a.decided);
        snprintf(res->decided_by, sizeof res->decided_by, "%s", a.actor);
        res->decided_at = d->now;
    }
    if (!rc)
        rc = record(c, t, &s, d, &a, need_list ? &list : NULL, effect, res, err);
    approver_list_free(&list);
    return rc;
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

/* ---- waiting for the engine's commit ------------------------------------------------- */

struct wait_one {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    enum as_code rc;
    struct as_err err;
    struct approval_decision_result res;
};

static void wait_one_done(void *ud, enum as_code rc, const struct approval_decision_result *res,
                          const struct as_err *err)
{
    struct wait_one *w = ud;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->res = *res;
    if (err)
        w->err = *err;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

enum as_code approval_decide_wait(struct engine *e, struct db *db,
                                  const struct approval_decision *d,
                                  struct approval_decision_result *res, struct as_err *err)
{
    memset(res, 0, sizeof *res);
    if (!e || strcmp(db_backend_name(db), "SQLite") != 0)
        return approval_decide(db, d, res, err);
    struct wait_one w = {.done = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    struct as_err serr = {0};
    enum as_code rc = approval_decide_submit(e, db, d, wait_one_done, &w, &serr);
    if (rc == AS_OK) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = w.rc;
        *res = w.res;
        if (rc)
            *err = w.err;
    } else {
        /* No engine to take it (stopping): a transaction of its own. */
        rc = approval_decide(db, d, res, err);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return rc;
}

