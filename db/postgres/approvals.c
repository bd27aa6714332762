/*
 * approvals.c - the PostgreSQL store's approvals: requests, approvers, link
 * hashes, the pieces of a decision, listings, statistics and the
 * per-installation secrets (contract in db/db_approvals.h; the SQLite
 * dialect is db/sqlite/db_approvals.c, whose behaviour this follows).
 *
 * Decided exactly once, across nodes.  Transactions are READ COMMITTED, and
 * two nodes may run the decision of one approval at the same moment
 * (approvals/approval_decide.c: load, answer, policy, close, event,
 * resume).  db_approval_load therefore locks the approval's row (SELECT
 * ... FOR UPDATE) before it reads anything: the second decision waits there
 * until the first has committed, and only then reads, in new statements
 * (new snapshots), what the first wrote; it then finds the approver or the
 * approval decided and is refused.  Without the lock two approvers of a
 * policy "all" approving at once would each count the other as not yet
 * approved, and the approval would stay pending for ever.  The writes
 * themselves stay conditional (UPDATE ... WHERE status = 'pending', with
 * the row count checked), so they are refused even without the lock.
 *
 * Lock order.  A decision takes the approval's row, then its approvers'
 * rows, then the event chain (its audit event), then the step execution
 * and the run (the resume).  db_approvals_expire takes them in the same
 * order; the other operations here lock one row each.  docs/postgresql.md
 * ("Lock order") says which transactions elsewhere can still meet a
 * decision in the opposite order.
 */
#include "db/postgres/pg.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_events.h"

#define USER_AGENT_MAX 512

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

static json_t *parse_or(const char *text, json_t *fallback)
{
    json_t *v = text && *text ? json_loads(text, 0, NULL) : NULL;
    if (!v)
        return fallback;
    json_decref(fallback);
    return v;
}

/* ---- reading an approval ----------------------------------------------------- */

static const char SQL_GET[] =
    "SELECT a.id, a.run_id, a.exec_id, a.workflow, a.step, a.policy, a.status, a.subject,"
    " a.message, a.requested_by, a.details, a.request, a.request_hash,"
    " a.require_comment_on_reject, a.escalate_to, a.reminder_every_ms, a.next_reminder_at,"
    " a.reminders_sent, a.expires_at, a.created_at, a.decided_at, a.decided_by, a.decided_via,"
    " a.comment, a.escalated_at, COALESCE(r.end_status, r.status), a.current_settings, a.cmdlet,"
    " a.require_sign_in"
    " FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = $1";

static const char SQL_APPROVERS[] =
    "SELECT id, position, email, status, sent_at, n_links, decided_at, decided_via, actor,"
    " comment FROM approval_approvers WHERE approval_id = $1 ORDER BY position";

/* The approval and its approvers as JSON (db_approvals.h), from c. */
static enum as_code load_approval(struct db_conn *c, int64_t id, json_t **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t *a = NULL, *list = NULL;
    *out = NULL;
    struct pg_args args = {0};
    pg_arg_i64(&args, id);
    PGresult *r = pg_run(c, SQL_GET, &args, "read approval", err);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return as_errf(err, AS_ENOTFOUND, "no approval %" PRId64, id);
    }
    a = json_pack(
        "{s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:o, s:I, s:I,"
        " s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:s}",
        "id", (json_int_t)pg_i64(r, 0, 0), "run_id", (json_int_t)pg_i64(r, 0, 1),
        "exec_id", (json_int_t)pg_i64(r, 0, 2), "workflow", pg_text(r, 0, 3),
        "step", pg_text(r, 0, 4), "policy", pg_text(r, 0, 5), "status", pg_text(r, 0, 6),
        "subject", pg_text(r, 0, 7), "message", pg_text(r, 0, 8),
        "requested_by", pg_text(r, 0, 9),
        "details", parse_or(pg_text(r, 0, 10), json_object()),
        "request", parse_or(pg_text(r, 0, 11), json_object()),
        "request_hash", pg_text(r, 0, 12),
        "require_comment_on_reject", (int)pg_i64(r, 0, 13),
        "escalate_to", parse_or(pg_text(r, 0, 14), json_array()),
        "reminder_every_ms", (json_int_t)pg_i64(r, 0, 15),
        "next_reminder_at", (json_int_t)pg_i64(r, 0, 16),
        "reminders_sent", (json_int_t)pg_i64(r, 0, 17),
        "expires_at", (json_int_t)pg_i64(r, 0, 18), "created_at", (json_int_t)pg_i64(r, 0, 19),
        "decided_at", (json_int_t)pg_i64(r, 0, 20), "decided_by", pg_text(r, 0, 21),
        "decided_via", pg_text(r, 0, 22), "comment", pg_text(r, 0, 23),
        "escalated_at", (json_int_t)pg_i64(r, 0, 24), "run_status", pg_text(r, 0, 25));
    if (a && (json_object_set_new(a, "current", pg_isnull(r, 0, 26)
                                                    ? json_null()
                                                    : parse_or(pg_text(r, 0, 26), json_null())) ||
              json_object_set_new(a, "cmdlet", json_string(pg_text(r, 0, 27))) ||
              json_object_set_new(a, "require_sign_in", json_boolean(pg_i64(r, 0, 28))))) {
        json_decref(a);
        a = NULL;
    }
    PQclear(r);
    if (!a)
        return oom(err);

    list = json_array();
    if (!list) {
        rc = oom(err);
        goto fail;
    }
    r = pg_run(c, SQL_APPROVERS, &args, "read approvers", err);
    if (!r) {
        rc = AS_EDB;
        goto fail;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *p = json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s}",
                              "id", (json_int_t)pg_i64(r, i, 0),
                              "position", (json_int_t)pg_i64(r, i, 1),
                              "email", pg_text(r, i, 2), "status", pg_text(r, i, 3),
                              "sent_at", (json_int_t)pg_i64(r, i, 4),
                              "n_links", (json_int_t)pg_i64(r, i, 5),
                              "decided_at", (json_int_t)pg_i64(r, i, 6),
                              "decided_via", pg_text(r, i, 7), "actor", pg_text(r, i, 8),
                              "comment", pg_text(r, i, 9));
        if (!p || json_array_append_new(list, p) != 0) {
            PQclear(r);
            rc = oom(err);
            goto fail;
        }
    }
    PQclear(r);
    json_object_set_new(a, "approvers", list);
    *out = a;
    return AS_OK;
fail:
    json_decref(list);
    json_decref(a);
    return rc;
}

enum as_code db_pg_approval_view(struct db_conn *c, int64_t id, json_t **out, struct as_err *err)
{
    return load_approval(c, id, out, err);
}

enum as_code db_pg_approvals_get(struct db *db, int64_t id, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = load_approval(c, id, out, err);
    db_pg_read_end(db, c);
    return rc;
}

struct link_row {
    int64_t approver_id, approval_id;
    char purpose[16];
    int seq;
};

/* Find a link by hash, comparing the stored hash in constant time too. */
static enum as_code find_link(struct db_conn *c, const char *token_hash, struct link_row *out,
                              struct as_err *err)
{
    static const char sql[] =
        "SELECT l.token_hash, l.approver_id, p.approval_id, l.purpose, l.seq"
        " FROM approval_links l JOIN approval_approvers p ON p.id = l.approver_id"
        " WHERE l.token_hash = $1";
    struct pg_args a = {0};
    pg_arg_text(&a, token_hash);
    PGresult *r = pg_run(c, sql, &a, "find link", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) != 1) {
        rc = as_errf(err, AS_ENOTFOUND, "unknown link");
    } else {
        const char *stored = pg_text(r, 0, 0);
        size_t n = strlen(token_hash);
        if (strlen(stored) != n || CRYPTO_memcmp(stored, token_hash, n) != 0) {
            rc = as_errf(err, AS_ENOTFOUND, "unknown link");
        } else {
            out->approver_id = pg_i64(r, 0, 1);
            out->approval_id = pg_i64(r, 0, 2);
            snprintf(out->purpose, sizeof out->purpose, "%s", pg_text(r, 0, 3));
            out->seq = (int)pg_i64(r, 0, 4);
        }
    }
    PQclear(r);
    return rc;
}

enum as_code db_pg_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                      struct as_err *err)
{
    struct db_conn *c;
    struct link_row link = {0};
    *out = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = find_link(c, token_hash, &link, err);
    if (!rc)
        rc = load_approval(c, link.approval_id, out, err);
    db_pg_read_end(db, c);
    if (rc)
        return rc;
    return db_approval_mark_link(out, link.approver_id, link.purpose, err);
}

/* ---- creating an approval ------------------------------------------------------ */

/* The approval of idempotency key `key` into *id; 0 when there is none. */
static enum as_code find_by_key(struct db_conn *c, const char *key, int64_t *id,
                                struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    PGresult *r =
        pg_run(c, "SELECT id FROM approvals WHERE idempotency_key = $1", &a, "find approval", err);
    if (!r)
        return AS_EDB;
    *id = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                    int *created, struct as_err *err)
{
    /* ON CONFLICT DO NOTHING: a node that made the same approval meanwhile
     * (the step run again elsewhere after a lost claim) leaves this insert
     * with no row instead of an aborted transaction. */
    static const char ins[] =
        "INSERT INTO approvals (run_id, exec_id, step, workflow, idempotency_key, policy, status,"
        " subject, message, requested_by, details, request, request_hash,"
        " require_comment_on_reject, escalate_to, reminder_every_ms, next_reminder_at,"
        " expires_at, created_at, current_settings, cmdlet, require_sign_in)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $12, $13, $14, $15,"
        " $16, $17, $18, $19, $20, $21) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";
    static const char ins_approver[] =
        "INSERT INTO approval_approvers (approval_id, position, email, status)"
        " VALUES ($1, $2, $3, $4) RETURNING id";
    struct db_conn *c;
    char *details = NULL, *escalate = NULL, *current = NULL;
    json_t *ev = NULL;
    int made = 0;
    if (created)
        *created = 0;
    if (!json_is_array(a->approvers) || json_array_size(a->approvers) == 0)
        return as_errf(err, AS_EINVAL, "an approval needs at least one approver");
    /* Most calls find it: the step asks again on every attempt. */
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = find_by_key(c, a->idempotency_key, id, err);
    db_pg_read_end(db, c);
    if (rc || *id)
        return rc;

    /* Details keep the workflow's key order: the page shows them as written. */
    details = a->details ? json_dumps(a->details, JSON_COMPACT) : strdup("{}");
    escalate = a->escalate_to ? json_dumps(a->escalate_to, JSON_COMPACT) : strdup("[]");
    current = a->current ? json_dumps(a->current, JSON_COMPACT) : NULL;
    if (!details || !escalate || (a->current && !current)) {
        rc = oom(err);
        goto done;
    }
    rc = db_pg_write_begin(db, &c, err);
    if (rc)
        goto done;
    int64_t next_reminder = 0;
    if (a->reminder_every_ms > 0 && a->now + a->reminder_every_ms < a->expires_at)
        next_reminder = a->now + a->reminder_every_ms;
    struct pg_args args = {0};
    pg_arg_i64(&args, a->run_id);
    pg_arg_i64(&args, a->exec_id);
    pg_arg_text(&args, a->step);
    pg_arg_text(&args, a->workflow);
    pg_arg_text(&args, a->idempotency_key);
    pg_arg_text(&args, a->policy);
    pg_arg_text(&args, a->subject);
    pg_arg_text(&args, a->message ? a->message : "");
    pg_arg_text(&args, a->requested_by ? a->requested_by : "");
    pg_arg_text(&args, details);
    pg_arg_text(&args, a->request_json);
    pg_arg_text(&args, a->request_hash);
    pg_arg_i64(&args, a->require_comment_on_reject ? 1 : 0);
    pg_arg_text(&args, escalate);
    if (a->reminder_every_ms > 0)
        pg_arg_i64(&args, a->reminder_every_ms);
    else
        pg_arg_text(&args, NULL);
    if (next_reminder)
        pg_arg_i64(&args, next_reminder);
    else
        pg_arg_text(&args, NULL);
    pg_arg_i64(&args, a->expires_at);
    pg_arg_i64(&args, a->now);
    pg_arg_text(&args, current);
    pg_arg_nonempty(&args, a->cmdlet);
    pg_arg_i64(&args, a->require_sign_in ? 1 : 0);
    PGresult *r = pg_run(c, ins, &args, "insert approval", err);
    if (!r) {
        rc = AS_EDB;
        goto end;
    }
    made = PQntuples(r) == 1;
    if (made)
        *id = pg_i64(r, 0, 0);
    PQclear(r);
    if (!made) {
        rc = find_by_key(c, a->idempotency_key, id, err);
        if (!rc && !*id)
            rc = as_errf(err, AS_EDB, "approval %s vanished", a->idempotency_key);
        goto end;
    }

    int sequential = strcmp(a->policy, "sequential") == 0;
    size_t i;
    json_t *addr;
    json_array_foreach(a->approvers, i, addr)
    {
        struct pg_args p = {0};
        pg_arg_i64(&p, *id);
        pg_arg_i64(&p, (int64_t)i);
        pg_arg_text(&p, json_string_value(addr));
        pg_arg_text(&p, sequential && i > 0 ? "queued" : "pending");
        PGresult *ra = pg_run(c, ins_approver, &p, "insert approver", err);
        if (!ra) {
            rc = AS_EDB;
            goto end;
        }
        if (a->approver_ids && PQntuples(ra) == 1)
            a->approver_ids[i] = pg_i64(ra, 0, 0);
        PQclear(ra);
    }
    ev = json_pack("{s:I, s:s, s:O, s:s, s:I}", "approval_id", (json_int_t)*id, "policy",
                   a->policy, "approvers", a->approvers, "request_hash", a->request_hash,
                   "expires_at", (json_int_t)a->expires_at);
    rc = ev ? db_event_append(c, a->run_id, a->exec_id, "approval.requested", ev, err) : oom(err);
end:
    rc = db_pg_write_end(db, rc, err);
    if (!rc && created)
        *created = made;
done:
    json_decref(ev);
    free(details);
    free(escalate);
    free(current);
    return rc;
}

/* ---- links ------------------------------------------------------------------------ */

enum as_code db_pg_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                      const char *token_hash, int64_t now, int *seq,
                                      struct as_err *err)
{
    /* The counter's row lock orders two links made at once for one approver. */
    static const char count[] =
        "UPDATE approval_approvers SET n_links = n_links + 1 WHERE id = $1 RETURNING n_links";
    static const char ins[] =
        "INSERT INTO approval_links (token_hash, approver_id, seq, purpose, created_at)"
        " VALUES ($1, $2, $3, $4, $5)";
    struct db_conn *c;
    int n = 0;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, approver_id);
    PGresult *r = pg_run(c, count, &a, "count links", err);
    if (!r) {
        rc = AS_EDB;
        goto out;
    }
    if (PQntuples(r) == 1)
        n = (int)pg_i64(r, 0, 0);
    PQclear(r);
    if (n == 0) {
        rc = as_errf(err, AS_ENOTFOUND, "no approver %" PRId64, approver_id);
        goto out;
    }
    struct pg_args b = {0};
    pg_arg_text(&b, token_hash);
    pg_arg_i64(&b, approver_id);
    pg_arg_i64(&b, n);
    pg_arg_text(&b, purpose);
    pg_arg_i64(&b, now);
    rc = pg_do(c, ins, &b, "insert link", NULL, err);
out:
    rc = db_pg_write_end(db, rc, err);
    if (!rc && seq)
        *seq = n;
    return rc;
}

enum as_code db_pg_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                       struct as_err *err)
{
    struct db_conn *c;
    struct link_row link = {0};
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = find_link(c, token_hash, &link, err);
    if (rc)
        goto out;
    struct pg_args a = {0};
    pg_arg_i64(&a, now);
    pg_arg_text(&a, token_hash);
    rc = pg_do(c, "UPDATE approval_links SET sent_at = $1 WHERE token_hash = $2", &a,
               "mark link sent", NULL, err);
    if (rc || strcmp(link.purpose, "request") != 0)
        goto out;
    struct pg_args b = {0};
    pg_arg_i64(&b, now);
    pg_arg_i64(&b, link.approver_id);
    rc = pg_do(c, "UPDATE approval_approvers SET sent_at = COALESCE(sent_at, $1) WHERE id = $2",
               &b, "mark approver sent", NULL, err);
out:
    return db_pg_write_end(db, rc, err);
}

/* One statement with parameters a, in its own write transaction. */
static enum as_code write_one(struct db *db, const char *sql, const struct pg_args *a,
                              const char *what, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = pg_do(c, sql, a, what, NULL, err);
    return db_pg_write_end(db, rc, err);
}

enum as_code db_pg_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                          int64_t next_reminder_at, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, reminder_no);
    if (next_reminder_at)
        pg_arg_i64(&a, next_reminder_at);
    else
        pg_arg_text(&a, NULL);
    pg_arg_i64(&a, approval_id);
    return write_one(db,
                     "UPDATE approvals SET reminders_sent = $1, next_reminder_at = $2 WHERE id = $3",
                     &a, "update approval", err);
}

enum as_code db_pg_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                           struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, approval_id);
    return write_one(db, "UPDATE approvals SET escalated_at = $1 WHERE id = $2", &a,
                     "update approval", err);
}

enum as_code db_pg_approvals_clear_resume(struct db *db, int64_t approval_id, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, approval_id);
    return write_one(db,
                     "UPDATE approvals SET resume_pending = 0 WHERE id = $1 AND resume_pending = 1",
                     &a, "update approval", err);
}

static enum as_code close_open_approvers(struct db_conn *c, int64_t approval_id,
                                         struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, approval_id);
    return pg_do(c,
                 "UPDATE approval_approvers SET status = 'closed'"
                 " WHERE approval_id = $1 AND status IN ('pending','queued')",
                 &a, "close approvers", NULL, err);
}

enum as_code db_pg_approvals_expire(struct db *db, int64_t approval_id, int64_t now, int *changed,
                                    struct as_err *err)
{
    /* Conditional: a decision committed first leaves no pending row to
     * expire (the UPDATE waits for its lock, then finds the row decided). */
    static const char sql[] =
        "UPDATE approvals SET status = 'expired', decided_at = $1, decided_via = 'expiry'"
        " WHERE id = $2 AND status = 'pending' RETURNING run_id, exec_id";
    struct db_conn *c;
    json_t *ev = NULL;
    int did = 0;
    if (changed)
        *changed = 0;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, approval_id);
    PGresult *r = pg_run(c, sql, &a, "expire approval", err);
    if (!r) {
        rc = AS_EDB;
        goto out;
    }
    int64_t run_id = 0, exec_id = 0;
    did = PQntuples(r) == 1;
    if (did) {
        run_id = pg_i64(r, 0, 0);
        exec_id = pg_i64(r, 0, 1);
    }
    PQclear(r);
    if (did) {
        rc = close_open_approvers(c, approval_id, err);
        if (rc)
            goto out;
        ev = json_pack("{s:I}", "approval_id", (json_int_t)approval_id);
        rc = ev ? db_event_append(c, run_id, exec_id, "approval.expired", ev, err) : oom(err);
    }
out:
    rc = db_pg_write_end(db, rc, err);
    if (!rc && changed)
        *changed = did;
    json_decref(ev);
    return rc;
}

/* ---- deciding ------------------------------------------------------------------------ */

static const char SQL_DECIDE_LOAD[] =
    "SELECT a.status, a.policy, a.expires_at, a.run_id, a.exec_id, a.require_comment_on_reject,"
    " a.decided_by, a.decided_at, a.request_hash, COALESCE(r.end_status, r.status),"
    " a.require_sign_in"
    " FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = $1";

static enum as_code load_approver(struct db_conn *c, struct db_approval_state *s,
                                  struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, s->approver_id);
    PGresult *r =
        pg_run(c, "SELECT email, status, actor, decided_at FROM approval_approvers WHERE id = $1",
               &a, "read approver", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) == 1) {
        snprintf(s->approver, sizeof s->approver, "%s", pg_text(r, 0, 0));
        snprintf(s->approver_status, sizeof s->approver_status, "%s", pg_text(r, 0, 1));
        snprintf(s->approver_decided_by, sizeof s->approver_decided_by, "%s", pg_text(r, 0, 2));
        s->approver_decided_at = pg_i64(r, 0, 3);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no approver %" PRId64, s->approver_id);
    }
    PQclear(r);
    return rc;
}

enum as_code db_pg_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                                 struct db_approval_state *s, struct as_err *err)
{
    enum as_code rc;
    struct link_row link = {0};
    memset(s, 0, sizeof *s);
    if (token_hash) {
        if ((rc = find_link(c, token_hash, &link, err)))
            return rc;
        approval_id = link.approval_id;
    }
    /* The lock first, alone: a decision that waited here reads below, in
     * statements that start after the one before it committed. */
    struct pg_args a = {0};
    pg_arg_i64(&a, approval_id);
    PGresult *r = pg_run(c, "SELECT id FROM approvals WHERE id = $1 FOR UPDATE", &a,
                         "lock approval", err);
    if (!r)
        return AS_EDB;
    int found = PQntuples(r) == 1;
    PQclear(r);
    if (!found)
        return as_errf(err, AS_ENOTFOUND, "no approval %" PRId64, approval_id);
    r = pg_run(c, SQL_DECIDE_LOAD, &a, "read approval", err);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return as_errf(err, AS_ENOTFOUND, "no approval %" PRId64, approval_id);
    }
    s->approval_id = approval_id;
    snprintf(s->status, sizeof s->status, "%s", pg_text(r, 0, 0));
    snprintf(s->policy, sizeof s->policy, "%s", pg_text(r, 0, 1));
    s->expires_at = pg_i64(r, 0, 2);
    s->run_id = pg_i64(r, 0, 3);
    s->exec_id = pg_i64(r, 0, 4);
    s->require_comment = (int)pg_i64(r, 0, 5);
    snprintf(s->decided_by, sizeof s->decided_by, "%s", pg_text(r, 0, 6));
    s->decided_at = pg_i64(r, 0, 7);
    snprintf(s->request_hash, sizeof s->request_hash, "%s", pg_text(r, 0, 8));
    snprintf(s->run_status, sizeof s->run_status, "%s", pg_text(r, 0, 9));
    s->require_sign_in = (int)pg_i64(r, 0, 10);
    PQclear(r);
    s->approver_id = link.approver_id;
    return s->approver_id ? load_approver(c, s, err) : AS_OK;
}

/* s cut to at most max bytes, not inside a UTF-8 sequence, into buf (max + 1 bytes). */
static const char *cut_utf8(const char *s, char *buf, size_t max)
{
    if (!s)
        return NULL;
    size_t n = strnlen(s, max);
    while (n > 0 && s[n] != '\0' && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

enum as_code db_pg_approval_answer(struct db_conn *c, const struct db_approval_answer *ans,
                                   struct as_err *err)
{
    static const char sql[] =
        "UPDATE approval_approvers SET status = $1, decided_at = $2, decided_via = $3, actor = $4,"
        " comment = $5, client_addr = $6, user_agent = $7 WHERE id = $8 AND status = 'pending'";
    char agent[USER_AGENT_MAX + 1];
    struct pg_args a = {0};
    pg_arg_text(&a, ans->decided);
    pg_arg_i64(&a, ans->now);
    pg_arg_text(&a, ans->via);
    pg_arg_text(&a, ans->actor);
    pg_arg_text(&a, ans->comment ? ans->comment : "");
    pg_arg_text(&a, ans->client_addr);
    pg_arg_text(&a, cut_utf8(ans->user_agent, agent, USER_AGENT_MAX));
    pg_arg_i64(&a, ans->approver_id);
    int64_t changed = 0;
    enum as_code rc = pg_do(c, sql, &a, "record decision", &changed, err);
    if (!rc && changed != 1)
        rc = as_errf(err, AS_ECONFLICT, "this link was already used");
    return rc;
}

/* The integer of the first row of sql with one bound id (0 when no row). */
static enum as_code int_query(struct db_conn *c, const char *sql, int64_t id, int64_t *n,
                              const char *what, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, id);
    PGresult *r = pg_run(c, sql, &a, what, err);
    if (!r)
        return AS_EDB;
    *n = PQntuples(r) > 0 ? pg_i64(r, 0, 0) : 0;
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                       struct as_err *err)
{
    return int_query(c,
                     "SELECT count(*) FROM approval_approvers WHERE approval_id = $1"
                     " AND status <> 'approved'",
                     approval_id, n, "count approvers", err);
}

enum as_code db_pg_approval_next_queued(struct db_conn *c, int64_t approval_id,
                                        int64_t *approver_id, struct as_err *err)
{
    return int_query(c,
                     "SELECT id FROM approval_approvers WHERE approval_id = $1"
                     " AND status = 'queued' ORDER BY position LIMIT 1",
                     approval_id, approver_id, "find next approver", err);
}

enum as_code db_pg_approval_activate(struct db_conn *c, int64_t approver_id, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, approver_id);
    return pg_do(c, "UPDATE approval_approvers SET status = 'pending' WHERE id = $1", &a,
                 "activate next approver", NULL, err);
}

enum as_code db_pg_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                                  const struct db_approval_answer *ans, int open_left,
                                  struct as_err *err)
{
    static const char sql[] =
        "UPDATE approvals SET status = $1, decided_at = $2, decided_by = $3, decided_via = $4,"
        " comment = $5 WHERE id = $6 AND status = 'pending'";
    struct pg_args a = {0};
    pg_arg_text(&a, status);
    pg_arg_i64(&a, ans->now);
    pg_arg_text(&a, ans->actor);
    pg_arg_text(&a, ans->via);
    pg_arg_text(&a, ans->comment ? ans->comment : "");
    pg_arg_i64(&a, approval_id);
    int64_t changed = 0;
    enum as_code rc = pg_do(c, sql, &a, "decide approval", &changed, err);
    if (!rc && changed != 1)
        rc = as_errf(err, AS_ECONFLICT, "already decided");
    return rc || !open_left ? rc : close_open_approvers(c, approval_id, err);
}

enum as_code db_pg_approval_approvers(struct db_conn *c, int64_t approval_id,
                                      int (*cb)(void *ud, const struct db_approver_row *r),
                                      void *ud, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_i64(&a, approval_id);
    PGresult *r = pg_run(c,
                         "SELECT id, email, status, decided_at, comment"
                         " FROM approval_approvers WHERE approval_id = $1 ORDER BY position",
                         &a, "read approvers", err);
    if (!r)
        return AS_EDB;
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        struct db_approver_row row = {
            .id = pg_i64(r, i, 0), .email = pg_text(r, i, 1), .status = pg_text(r, i, 2),
            .decided_at = pg_i64(r, i, 3), .comment = pg_text(r, i, 4),
        };
        if (cb(ud, &row))
            break;
    }
    PQclear(r);
    return AS_OK;
}

/* ---- listing and statistics --------------------------------------------------------- */

static const char SQL_LIST_PENDING[] =
    "SELECT a.id, a.run_id, a.workflow, a.step, a.subject, p.email, p.status, a.status, a.policy,"
    " p.sent_at, a.expires_at, a.decided_at, a.decided_by, COALESCE(r.end_status, r.status)"
    " FROM approval_approvers p JOIN approvals a ON a.id = p.approval_id"
    " JOIN runs r ON r.id = a.run_id"
    " WHERE a.status = 'pending' AND p.status = 'pending' AND r.status IN ('running','waiting')"
    " AND ($2::text IS NULL OR $2::text = 'pending')"
    " ORDER BY a.id DESC, p.position LIMIT $1";

/* As on SQLite: an approval still pending when its run ended shows as
 * "withdrawn", and so do its approvers still asked or queued. */
#define RUN_ENDED "(r.status <> 'running' AND r.status <> 'waiting')"
#define SHOWN_APPROVAL_STATUS                                                                     \
    "(CASE WHEN a.status = 'pending' AND " RUN_ENDED " THEN 'withdrawn' ELSE a.status END)"
#define SHOWN_APPROVER_STATUS                                                                     \
    "(CASE WHEN a.status = 'pending' AND (p.status = 'pending' OR p.status = 'queued') AND "      \
    RUN_ENDED " THEN 'withdrawn' ELSE p.status END)"

static const char SQL_LIST_ALL[] =
    "SELECT a.id, a.run_id, a.workflow, a.step, a.subject, p.email, " SHOWN_APPROVER_STATUS ", "
    SHOWN_APPROVAL_STATUS ", a.policy, p.sent_at, a.expires_at, a.decided_at, a.decided_by, r.status"
    " FROM approval_approvers p JOIN approvals a ON a.id = p.approval_id"
    " JOIN runs r ON r.id = a.run_id"
    " WHERE $2::text IS NULL OR " SHOWN_APPROVAL_STATUS " = $2::text"
    " ORDER BY a.id DESC, p.position LIMIT $1";

enum as_code db_pg_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
                                        json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    if (f->status && !db_approvals_status_known(f->status))
        return as_errf(err, AS_EINVAL,
                       "status must be pending, approved, rejected, expired or withdrawn, not \"%s\"",
                       f->status);
    json_t *list = json_array();
    if (!list)
        return oom(err);
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc) {
        json_decref(list);
        return rc;
    }
    struct pg_args a = {0};
    pg_arg_i64(&a, f->limit > 0 ? f->limit : 200);
    pg_arg_text(&a, f->status);
    /* A status filter lists every approver row of the matching approvals. */
    PGresult *r = pg_run(c, f->all || f->status ? SQL_LIST_ALL : SQL_LIST_PENDING, &a,
                         "list approvals", err);
    db_pg_read_end(db, c);
    if (!r) {
        json_decref(list);
        return AS_EDB;
    }
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        json_t *row = json_pack(
            "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}",
            "approval_id", (json_int_t)pg_i64(r, i, 0), "run_id", (json_int_t)pg_i64(r, i, 1),
            "workflow", pg_text(r, i, 2), "step", pg_text(r, i, 3), "subject", pg_text(r, i, 4),
            "approver", pg_text(r, i, 5), "approver_status", pg_text(r, i, 6),
            "status", pg_text(r, i, 7), "policy", pg_text(r, i, 8),
            "asked_at", (json_int_t)pg_i64(r, i, 9), "expires_at", (json_int_t)pg_i64(r, i, 10),
            "decided_at", (json_int_t)pg_i64(r, i, 11), "decided_by", pg_text(r, i, 12),
            "run_status", pg_text(r, i, 13));
        if (!row || json_array_append_new(list, row) != 0)
            rc = oom(err);
    }
    PQclear(r);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

static int count_row(void *ud, const PGresult *r, int i)
{
    json_object_set_new(ud, pg_text(r, i, 0), json_integer((json_int_t)pg_i64(r, i, 1)));
    return 0;
}

enum as_code db_pg_approvals_stats(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    json_t *runs = json_object(), *steps = json_object(), *approvals = json_object();
    int64_t pending = 0;
    enum as_code rc = AS_OK;
    if (!runs || !steps || !approvals) {
        rc = oom(err);
        goto out;
    }
    /* Every status appears, with 0 when absent, so dashboards see the series. */
    static const char *const run_states[] = {"running", "waiting", "succeeded", "failed",
                                             "cancelled", NULL};
    static const char *const step_states[] = {"ready", "running", "waiting", "succeeded",
                                              "failed", "cancelled", NULL};
    static const char *const approval_states[] = {"pending", "approved", "rejected", "expired",
                                                  NULL};
    for (int i = 0; run_states[i]; i++)
        json_object_set_new(runs, run_states[i], json_integer(0));
    for (int i = 0; step_states[i]; i++)
        json_object_set_new(steps, step_states[i], json_integer(0));
    for (int i = 0; approval_states[i]; i++)
        json_object_set_new(approvals, approval_states[i], json_integer(0));
    rc = db_pg_read_begin(db, &c, err);
    if (rc)
        goto out;
    rc = pg_each(c, "SELECT status, count(*) FROM runs GROUP BY status", NULL, count_row, runs,
                 "count runs", err);
    if (!rc)
        rc = pg_each(c, "SELECT status, count(*) FROM step_execs GROUP BY status", NULL, count_row,
                     steps, "count steps", err);
    if (!rc)
        rc = pg_each(c, "SELECT status, count(*) FROM approvals GROUP BY status", NULL, count_row,
                     approvals, "count approvals", err);
    if (!rc)
        rc = int_query(c,
                       "SELECT count(*) FROM approvals a JOIN runs r ON r.id = a.run_id"
                       " WHERE a.status = 'pending' AND r.status IN ('running','waiting')"
                       " AND a.id > $1",
                       0, &pending, "count pending approvals", err);
    db_pg_read_end(db, c);
    if (rc)
        goto out;
    *out = json_pack("{s:O, s:O, s:O, s:I}", "runs", runs, "steps", steps, "approvals",
                     approvals, "approvals_pending", (json_int_t)pending);
    if (!*out)
        rc = oom(err);
out:
    json_decref(runs);
    json_decref(steps);
    json_decref(approvals);
    return rc;
}

/* ---- secrets --------------------------------------------------------------------------- */

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The secret from the hex text of a row (encode(value, 'hex')); 0 when it
 * has exactly len bytes. */
static int secret_from_hex(const char *hex, unsigned char *out, size_t len)
{
    if (strlen(hex) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* The stored secret `name` of len bytes into out: *found 1 when there is one. */
static enum as_code read_secret(struct db_conn *c, const char *name, unsigned char *out,
                                size_t len, int *found, struct as_err *err)
{
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    PGresult *r = pg_run(c, "SELECT encode(value, 'hex') FROM web_secrets WHERE name = $1", &a,
                         "read secret", err);
    if (!r)
        return AS_EDB;
    *found = PQntuples(r) == 1 && secret_from_hex(pg_text(r, 0, 0), out, len) == 0;
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_approvals_secret(struct db *db, const char *name, unsigned char *out,
                                    size_t len, struct as_err *err)
{
    /* Two nodes making the secret at once: the first insert wins (the
     * second waits for it, then does nothing) and both read the winner's,
     * so every node signs with the same key.  A stored value of another
     * length is replaced, as on SQLite. */
    static const char put[] =
        "INSERT INTO web_secrets (name, value, created_at)"
        " VALUES ($1, decode($2, 'hex'), (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at"
        " WHERE octet_length(web_secrets.value) <> $3";
    struct db_conn *c;
    int found = 0;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = read_secret(c, name, out, len, &found, err);
    db_pg_read_end(db, c);
    if (rc || found)
        return rc;

    char *hex = malloc(2 * len + 1);
    unsigned char *fresh = malloc(len ? len : 1);
    if (!hex || !fresh) {
        free(hex);
        free(fresh);
        return oom(err);
    }
    if (RAND_bytes(fresh, (int)len) != 1) {
        rc = as_errf(err, AS_EIO, "the system's random number generator failed");
        goto done;
    }
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", fresh[i]);
    hex[2 * len] = '\0';
    rc = db_pg_write_begin(db, &c, err);
    if (rc)
        goto done;
    struct pg_args a = {0};
    pg_arg_text(&a, name);
    pg_arg_text(&a, hex);
    pg_arg_i64(&a, (int64_t)len);
    rc = pg_do(c, put, &a, "store secret", NULL, err);
    if (!rc)
        rc = read_secret(c, name, out, len, &found, err);
    if (!rc && !found)
        rc = as_errf(err, AS_EDB, "store secret: secret %s vanished", name);
    rc = db_pg_write_end(db, rc, err);
done:
    OPENSSL_cleanse(hex, 2 * len + 1);
    OPENSSL_cleanse(fresh, len);
    free(hex);
    free(fresh);
    return rc;
}

/* ---- paging approvals (the REST API) ------------------------------------------- */

/* An approval's status filter: the shown status, or "decided" for either decision. */
#define SHOWN_MATCHES                                                                             \
    "($2::text IS NULL OR " SHOWN_APPROVAL_STATUS " = $2::text OR ($2::text = 'decided' AND"      \
    " (a.status = 'approved' OR a.status = 'rejected')))"

/* One statement, so one snapshot: each approval with its approvers, which
 * come as a JSON array built by the server (keys in the SQLite store's
 * order). */
static const char SQL_PAGE[] =
    "SELECT a.id, a.run_id, a.workflow, a.step, a.subject, " SHOWN_APPROVAL_STATUS ", a.policy,"
    " a.created_at, a.expires_at, a.decided_at, a.decided_by, a.decided_via, a.comment,"
    " COALESCE(r.end_status, r.status),"
    " COALESCE((SELECT json_agg(json_build_object('email', p.email, 'status', "
    SHOWN_APPROVER_STATUS ", 'asked_at', COALESCE(p.sent_at, 0), 'decided_at',"
    " COALESCE(p.decided_at, 0), 'decided_via', p.decided_via, 'actor', p.actor, 'comment',"
    " p.comment) ORDER BY p.position) FROM approval_approvers p WHERE p.approval_id = a.id),"
    " '[]'::json)"
    " FROM approvals a JOIN runs r ON r.id = a.run_id"
    " WHERE " SHOWN_MATCHES " AND ($3::bigint = 0 OR a.id < $3::bigint)"
    " ORDER BY a.id DESC LIMIT $1";

static json_t *text_or_null(const PGresult *r, int i, int col)
{
    return pg_isnull(r, i, col) ? json_null() : json_string(pg_text(r, i, col));
}

enum as_code db_pg_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                                  json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    if (q->status && strcmp(q->status, "decided") != 0 && !db_approvals_status_known(q->status))
        return as_errf(err, AS_EINVAL, "status must be pending, decided, approved, rejected, "
                       "expired or withdrawn, not \"%s\"", q->status);
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, q->limit > 0 ? q->limit : 50);
    pg_arg_text(&a, q->status);
    pg_arg_i64(&a, q->before_id > 0 ? q->before_id : 0);
    PGresult *r = pg_run(c, SQL_PAGE, &a, "list approvals", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    json_t *list = json_array();
    if (!list)
        rc = oom(err);
    for (int i = 0; !rc && i < PQntuples(r); i++) {
        json_t *approvers = json_loads(pg_text(r, i, 14), 0, NULL);
        json_t *row = json_pack(
            "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:s, s:o}",
            "id", (json_int_t)pg_i64(r, i, 0), "run_id", (json_int_t)pg_i64(r, i, 1),
            "workflow", pg_text(r, i, 2), "step", pg_text(r, i, 3), "subject", pg_text(r, i, 4),
            "status", pg_text(r, i, 5), "policy", pg_text(r, i, 6),
            "created_at", (json_int_t)pg_i64(r, i, 7), "expires_at", (json_int_t)pg_i64(r, i, 8),
            "decided_at", (json_int_t)pg_i64(r, i, 9), "decided_by", text_or_null(r, i, 10),
            "decided_via", text_or_null(r, i, 11), "comment", text_or_null(r, i, 12),
            "run_status", pg_text(r, i, 13), "approvers", approvers ? approvers : json_array());
        if (!row || json_array_append_new(list, row) != 0)
            rc = oom(err);
    }
    PQclear(r);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}
