/*
 * db_approvals.c - approvals, approvers, link hashes, decisions (see
 * db_approvals.h).  Every exported function is one short transaction.
 */
#include "db/db_approvals.h"
#include "db/sqlite/sqlite.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_runs.h"
#include "base/log.h"

#define USER_AGENT_MAX 512

/* ---- small helpers ----------------------------------------------------- */

static void bind_text_max(sqlite3_stmt *st, int i, const char *s, size_t max)
{
    if (!s) {
        sqlite3_bind_null(st, i);
        return;
    }
    size_t n = strnlen(s, max);
    /* Do not cut a UTF-8 sequence in half. */
    while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    sqlite3_bind_text(st, i, s, (int)n, SQLITE_TRANSIENT);
}

static json_t *parse_or(const char *text, json_t *fallback)
{
    json_t *v = text && *text ? json_loads(text, 0, NULL) : NULL;
    if (!v)
        return fallback;
    json_decref(fallback);
    return v;
}

/* ---- reading an approval ------------------------------------------------- */

static const char SQL_GET[] =
    "SELECT a.id, a.run_id, a.exec_id, a.workflow, a.step, a.policy, a.status, a.subject,"
    " a.message, a.requested_by, a.details, a.request, a.request_hash,"
    " a.require_comment_on_reject, a.escalate_to, a.reminder_every_ms, a.next_reminder_at,"
    " a.reminders_sent, a.expires_at, a.created_at, a.decided_at, a.decided_by, a.decided_via,"
    " a.comment, a.escalated_at, COALESCE(r.end_status, r.status), a.current_settings, a.cmdlet,"
    " a.require_sign_in"
    " FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = ?";

static const char SQL_APPROVERS[] =
    "SELECT id, position, email, status, sent_at, n_links, decided_at, decided_via, actor,"
    " comment FROM approval_approvers WHERE approval_id = ? ORDER BY position";

/* Set key (a literal) to v, stolen; -1 when v is NULL or out of memory. */
static int put(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new_nocheck(o, key, v) : -1;
}

static int put_i(json_t *o, const char *key, sqlite3_stmt *st, int col)
{
    return put(o, key, json_integer((json_int_t)sqlite3_column_int64(st, col)));
}

static int put_s(json_t *o, const char *key, sqlite3_stmt *st, int col)
{
    return put(o, key, json_string(db_col_text(st, col)));
}

/* The approval's JSON (see db_approvals.h, without "approvers") from the
 * columns of SQL_GET at st; NULL when out of memory.  Built key by key (no
 * format string to parse), in the order the API has always shown (|| keeps
 * that order and stops at the first failure). */
static json_t *approval_from_row(sqlite3_stmt *st)
{
    json_t *a = json_object();
    if (!a)
        return NULL;
    int bad = put_i(a, "id", st, 0) || put_i(a, "run_id", st, 1) || put_i(a, "exec_id", st, 2) ||
              put_s(a, "workflow", st, 3) || put_s(a, "step", st, 4) || put_s(a, "policy", st, 5) ||
              put_s(a, "status", st, 6) || put_s(a, "subject", st, 7) ||
              put_s(a, "message", st, 8) || put_s(a, "requested_by", st, 9) ||
              put(a, "details", parse_or(db_col_text(st, 10), json_object())) ||
              put(a, "request", parse_or(db_col_text(st, 11), json_object())) ||
              put_s(a, "request_hash", st, 12) ||
              put(a, "require_comment_on_reject", json_boolean(sqlite3_column_int(st, 13))) ||
              put(a, "escalate_to", parse_or(db_col_text(st, 14), json_array())) ||
              put_i(a, "reminder_every_ms", st, 15) || put_i(a, "next_reminder_at", st, 16) ||
              put_i(a, "reminders_sent", st, 17) || put_i(a, "expires_at", st, 18) ||
              put_i(a, "created_at", st, 19) || put_i(a, "decided_at", st, 20) ||
              put_s(a, "decided_by", st, 21) || put_s(a, "decided_via", st, 22) ||
              put_s(a, "comment", st, 23) || put_i(a, "escalated_at", st, 24) ||
              put_s(a, "run_status", st, 25) ||
              put(a, "current", sqlite3_column_type(st, 26) == SQLITE_NULL
                                    ? json_null()
                                    : parse_or(db_col_text(st, 26), json_null())) ||
              put_s(a, "cmdlet", st, 27) ||
              put(a, "require_sign_in", json_boolean(sqlite3_column_int(st, 28)));
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* One approver's JSON from the columns of SQL_APPROVERS at st, from column c0. */
static json_t *approver_from_row(sqlite3_stmt *st, int c0)
{
    json_t *p = json_object();
    if (!p)
        return NULL;
    int bad = put_i(p, "id", st, c0) || put_i(p, "position", st, c0 + 1) ||
              put_s(p, "email", st, c0 + 2) || put_s(p, "status", st, c0 + 3) ||
              put_i(p, "sent_at", st, c0 + 4) || put_i(p, "n_links", st, c0 + 5) ||
              put_i(p, "decided_at", st, c0 + 6) || put_s(p, "decided_via", st, c0 + 7) ||
              put_s(p, "actor", st, c0 + 8) || put_s(p, "comment", st, c0 + 9);
    if (bad) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static enum as_code load_approval(struct db_conn *c, int64_t id, json_t **out,
                                  struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t *a = NULL, *list = NULL;
    *out = NULL;
    sqlite3_stmt *st = db_stmt(c, SQL_GET, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        db_stmt_done(st);
        return as_errf(err, AS_ENOTFOUND, "no approval %lld", (long long)id);
    }
    if (s != SQLITE_ROW) {
        rc = db_error(c, "read approval", err);
        db_stmt_done(st);
        return rc;
    }
    a = approval_from_row(st);
    db_stmt_done(st);
    if (!a)
        return as_errf(err, AS_ENOMEM, "out of memory");

    list = json_array();
    st = db_stmt(c, SQL_APPROVERS, err);
    if (!st || !list) {
        rc = st ? as_errf(err, AS_ENOMEM, "out of memory") : AS_EDB;
        goto fail;
    }
    sqlite3_bind_int64(st, 1, id);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *p = approver_from_row(st, 0);
        if (!p || json_array_append_new(list, p) != 0) {
            db_stmt_done(st);
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (s != SQLITE_DONE) {
        rc = db_error(c, "read approvers", err);
        db_stmt_done(st);
        goto fail;
    }
    db_stmt_done(st);
    json_object_set_new(a, "approvers", list);
    *out = a;
    return AS_OK;
fail:
    json_decref(list);
    json_decref(a);
    return rc;
}

enum as_code db_sqlite_approval_view(struct db_conn *c, int64_t id, json_t **out,
                                     struct as_err *err)
{
    return load_approval(c, id, out, err);
}

enum as_code db_sqlite_approvals_get(struct db *db, int64_t id, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = load_approval(c, id, out, err);
    db_sqlite_read_end(db, c);
    return rc;
}

static const char SQL_LINK[] =
    "SELECT l.token_hash, l.approver_id, p.approval_id, l.purpose, l.seq"
    " FROM approval_links l JOIN approval_approvers p ON p.id = l.approver_id"
    " WHERE l.token_hash = ?";

struct link_row {
    int64_t approver_id, approval_id;
    char purpose[16];
    int seq;
};

/* Find a link by hash, comparing the stored hash in constant time too. */
static enum as_code find_link(struct db_conn *c, const char *token_hash, struct link_row *out,
                              struct as_err *err)
{
    enum as_code rc = AS_OK;
    sqlite3_stmt *st = db_stmt(c, SQL_LINK, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, token_hash);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *stored = db_col_text(st, 0);
        size_t n = strlen(token_hash);
        if (strlen(stored) != n || CRYPTO_memcmp(stored, token_hash, n) != 0) {
            rc = as_errf(err, AS_ENOTFOUND, "unknown link");
        } else {
            out->approver_id = sqlite3_column_int64(st, 1);
            out->approval_id = sqlite3_column_int64(st, 2);
            snprintf(out->purpose, sizeof out->purpose, "%s", db_col_text(st, 3));
            out->seq = sqlite3_column_int(st, 4);
        }
    } else if (s == SQLITE_DONE) {
        rc = as_errf(err, AS_ENOTFOUND, "unknown link");
    } else {
        rc = db_error(c, "find link", err);
    }
    db_stmt_done(st);
    return rc;
}

/* An approval through one of its links, with every approver: one row per
 * approver (the approval's and the link's columns repeated), one statement. */
static const char SQL_BY_LINK[] =
    "SELECT a.id, a.run_id, a.exec_id, a.workflow, a.step, a.policy, a.status, a.subject,"
    " a.message, a.requested_by, a.details, a.request, a.request_hash,"
    " a.require_comment_on_reject, a.escalate_to, a.reminder_every_ms, a.next_reminder_at,"
    " a.reminders_sent, a.expires_at, a.created_at, a.decided_at, a.decided_by, a.decided_via,"
    " a.comment, a.escalated_at, COALESCE(r.end_status, r.status), a.current_settings, a.cmdlet,"
    " a.require_sign_in, l.token_hash, l.approver_id, l.purpose,"
    " p.id, p.position, p.email, p.status, p.sent_at, p.n_links, p.decided_at, p.decided_via,"
    " p.actor, p.comment"
    " FROM approval_links l JOIN approval_approvers me ON me.id = l.approver_id"
    " JOIN approvals a ON a.id = me.approval_id JOIN runs r ON r.id = a.run_id"
    " JOIN approval_approvers p ON p.approval_id = a.id"
    " WHERE l.token_hash = ? ORDER BY p.position";

enum as_code db_sqlite_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                          struct as_err *err)
{
    struct db_conn *c;
    json_t *a = NULL, *list = NULL;
    int64_t approver_id = 0;
    char purpose[16] = "";
    *out = NULL;
    enum as_code rc = db_sqlite_read_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, SQL_BY_LINK, err);
    if (!st) {
        db_sqlite_read_end(db, c);
        return AS_EDB;
    }
    db_bind_text_or_null(st, 1, token_hash);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (!a) {
            /* The stored hash compared again in constant time (see find_link). */
            const char *stored = db_col_text(st, 29);
            size_t n = strlen(token_hash);
            if (strlen(stored) != n || CRYPTO_memcmp(stored, token_hash, n) != 0) {
                s = SQLITE_DONE;
                break;
            }
            approver_id = sqlite3_column_int64(st, 30);
            snprintf(purpose, sizeof purpose, "%s", db_col_text(st, 31));
            a = approval_from_row(st);
            list = json_array();
            if (!a || !list) {
                rc = as_errf(err, AS_ENOMEM, "out of memory");
                break;
            }
        }
        json_t *p = approver_from_row(st, 32);
        if (!p || json_array_append_new(list, p) != 0) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = db_error(c, "read approval", err);
    db_stmt_done(st);
    db_sqlite_read_end(db, c);
    if (!rc && !a)
        rc = as_errf(err, AS_ENOTFOUND, "unknown link");
    if (!rc) {
        int bad = json_object_set_new(a, "approvers", list); /* list is a's, or freed */
        list = NULL;
        if (bad)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    if (rc) {
        json_decref(list);
        json_decref(a);
        return rc;
    }
    *out = a;
    return db_approval_mark_link(out, approver_id, purpose, err);
}

/* ---- creating an approval ------------------------------------------------ */

static const char SQL_FIND_BY_KEY[] = "SELECT id FROM approvals WHERE idempotency_key = ?";

static const char SQL_INSERT[] =
    "INSERT INTO approvals (run_id, exec_id, step, workflow, idempotency_key, policy, status,"
    " subject, message, requested_by, details, request, request_hash,"
    " require_comment_on_reject, escalate_to, reminder_every_ms, next_reminder_at,"
    " expires_at, created_at, current_settings, cmdlet, require_sign_in)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

static const char SQL_INSERT_APPROVER[] =
    "INSERT INTO approval_approvers (approval_id, position, email, status) VALUES (?, ?, ?, ?)";

enum as_code db_sqlite_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                        int *created, struct as_err *err)
{
    struct db_conn *c;
    char *details = NULL, *escalate = NULL, *current = NULL;
    json_t *ev = NULL;
    if (created)
        *created = 0;
    if (!json_is_array(a->approvers) || json_array_size(a->approvers) == 0)
        return as_errf(err, AS_EINVAL, "an approval needs at least one approver");
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;

    sqlite3_stmt *st = db_stmt(c, SQL_FIND_BY_KEY, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    db_bind_text_or_null(st, 1, a->idempotency_key);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        db_stmt_done(st);
        db_write_rollback(db); /* nothing written */
        return AS_OK;
    }
    db_stmt_done(st);
    if (s != SQLITE_DONE) {
        rc = db_error(c, "find approval", err);
        goto out;
    }

    /* Details keep the workflow's key order: the page shows them as written. */
    details = a->details ? json_dumps(a->details, JSON_COMPACT) : strdup("{}");
    escalate = a->escalate_to ? json_dumps(a->escalate_to, JSON_COMPACT) : strdup("[]");
    current = a->current ? json_dumps(a->current, JSON_COMPACT) : NULL;
    if (!details || !escalate || (a->current && !current)) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    st = db_stmt(c, SQL_INSERT, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    int64_t next_reminder = 0;
    if (a->reminder_every_ms > 0 && a->now + a->reminder_every_ms < a->expires_at)
        next_reminder = a->now + a->reminder_every_ms;
    sqlite3_bind_int64(st, 1, a->run_id);
    sqlite3_bind_int64(st, 2, a->exec_id);
    db_bind_text_or_null(st, 3, a->step);
    db_bind_text_or_null(st, 4, a->workflow);
    db_bind_text_or_null(st, 5, a->idempotency_key);
    db_bind_text_or_null(st, 6, a->policy);
    db_bind_text_or_null(st, 7, a->subject);
    db_bind_text_or_null(st, 8, a->message ? a->message : "");
    db_bind_text_or_null(st, 9, a->requested_by ? a->requested_by : "");
    db_bind_text_or_null(st, 10, details);
    db_bind_text_or_null(st, 11, a->request_json);
    db_bind_text_or_null(st, 12, a->request_hash);
    sqlite3_bind_int(st, 13, a->require_comment_on_reject ? 1 : 0);
    db_bind_text_or_null(st, 14, escalate);
    if (a->reminder_every_ms > 0)
        sqlite3_bind_int64(st, 15, a->reminder_every_ms);
    else
        sqlite3_bind_null(st, 15);
    if (next_reminder)
        sqlite3_bind_int64(st, 16, next_reminder);
    else
        sqlite3_bind_null(st, 16);
    sqlite3_bind_int64(st, 17, a->expires_at);
    sqlite3_bind_int64(st, 18, a->now);
    db_bind_text_or_null(st, 19, current);
    db_bind_text_or_null(st, 20, a->cmdlet && *a->cmdlet ? a->cmdlet : NULL);
    sqlite3_bind_int(st, 21, a->require_sign_in ? 1 : 0);
    rc = db_step_done(c, st, "insert approval", err);
    if (rc)
        goto out;
    *id = sqlite3_last_insert_rowid(db_conn_handle(c));

    int sequential = strcmp(a->policy, "sequential") == 0;
    size_t i;
    json_t *addr;
    json_array_foreach(a->approvers, i, addr)
    {
        st = db_stmt(c, SQL_INSERT_APPROVER, err);
        if (!st) {
            rc = AS_EDB;
            goto out;
        }
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        db_bind_text_or_null(st, 3, json_string_value(addr));
        db_bind_text_or_null(st, 4, sequential && i > 0 ? "queued" : "pending");
        rc = db_step_done(c, st, "insert approver", err);
        if (rc)
            goto out;
        if (a->approver_ids)
            a->approver_ids[i] = sqlite3_last_insert_rowid(db_conn_handle(c));
    }
    ev = json_pack("{s:I, s:s, s:O, s:s, s:I}", "approval_id", (json_int_t)*id, "policy",
                   a->policy, "approvers", a->approvers, "request_hash", a->request_hash,
                   "expires_at", (json_int_t)a->expires_at);
    rc = db_event_append(c, a->run_id, a->exec_id, "approval.requested", ev, err);
out:
    rc = db_sqlite_write_end(db, rc, err);
    if (!rc && created)
        *created = 1;
    json_decref(ev);
    free(details);
    free(escalate);
    free(current);
    return rc;
}

/* ---- links ------------------------------------------------------------------ */

enum as_code db_sqlite_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                          const char *token_hash, int64_t now, int *seq,
                                          struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    int n = 0;
    /* Not UPDATE ... RETURNING: SQLite gathers RETURNING rows in a
     * temporary table, more work than reading the row again. */
    sqlite3_stmt *st = db_stmt(c, "UPDATE approval_approvers SET n_links = n_links + 1 WHERE id = ?",
                               err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, approver_id);
    if ((rc = db_step_done(c, st, "count links", err)))
        goto out;
    if (sqlite3_changes(db_conn_handle(c)) == 1) {
        st = db_stmt(c, "SELECT n_links FROM approval_approvers WHERE id = ?", err);
        if (!st) {
            rc = AS_EDB;
            goto out;
        }
        sqlite3_bind_int64(st, 1, approver_id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        else if (s != SQLITE_DONE)
            rc = db_error(c, "count links", err);
        db_stmt_done(st);
        if (rc)
            goto out;
    }
    if (n == 0) {
        rc = as_errf(err, AS_ENOTFOUND, "no approver %lld", (long long)approver_id);
        goto out;
    }
    st = db_stmt(c,
                 "INSERT INTO approval_links (token_hash, approver_id, seq, purpose, created_at)"
                 " VALUES (?, ?, ?, ?, ?)",
                 err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    db_bind_text_or_null(st, 1, token_hash);
    sqlite3_bind_int64(st, 2, approver_id);
    sqlite3_bind_int(st, 3, n);
    db_bind_text_or_null(st, 4, purpose);
    sqlite3_bind_int64(st, 5, now);
    rc = db_step_done(c, st, "insert link", err);
out:
    rc = db_sqlite_write_end(db, rc, err);
    if (!rc && seq)
        *seq = n;
    return rc;
}

enum as_code db_sqlite_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                           struct as_err *err)
{
    struct db_conn *c;
    struct link_row link = {0};
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    rc = find_link(c, token_hash, &link, err);
    if (rc)
        goto out;
    sqlite3_stmt *st = db_stmt(c, "UPDATE approval_links SET sent_at = ? WHERE token_hash = ?", err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    db_bind_text_or_null(st, 2, token_hash);
    rc = db_step_done(c, st, "mark link sent", err);
    if (rc)
        goto out;
    if (strcmp(link.purpose, "request") == 0) {
        st = db_stmt(c, "UPDATE approval_approvers SET sent_at = COALESCE(sent_at, ?) WHERE id = ?",
                     err);
        if (!st) {
            rc = AS_EDB;
            goto out;
        }
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, link.approver_id);
        rc = db_step_done(c, st, "mark approver sent", err);
    }
out:
    return db_sqlite_write_end(db, rc, err);
}

/* One UPDATE of an approval column set in its own transaction. */
static enum as_code update_one(struct db *db, const char *sql, int64_t v1, int64_t v2,
                               int64_t approval_id, int n_values, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, sql, err);
    if (!st) {
        db_write_rollback(db);
        return AS_EDB;
    }
    int i = 1;
    if (n_values >= 1)
        sqlite3_bind_int64(st, i++, v1);
    if (n_values >= 2) {
        if (v2)
            sqlite3_bind_int64(st, i++, v2);
        else
            sqlite3_bind_null(st, i++);
    }
    sqlite3_bind_int64(st, i, approval_id);
    rc = db_step_done(c, st, "update approval", err);
    return db_sqlite_write_end(db, rc, err);
}

enum as_code db_sqlite_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                              int64_t next_reminder_at, struct as_err *err)
{
    return update_one(db,
                      "UPDATE approvals SET reminders_sent = ?, next_reminder_at = ? WHERE id = ?",
                      reminder_no, next_reminder_at, approval_id, 2, err);
}

enum as_code db_sqlite_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                               struct as_err *err)
{
    return update_one(db, "UPDATE approvals SET escalated_at = ? WHERE id = ?", now, 0,
                      approval_id, 1, err);
}

enum as_code db_sqlite_approvals_clear_resume(struct db *db, int64_t approval_id,
                                              struct as_err *err)
{
    return update_one(db, "UPDATE approvals SET resume_pending = 0 WHERE id = ? AND resume_pending = 1",
                      0, 0, approval_id, 0, err);
}

static enum as_code close_open_approvers(struct db_conn *c, int64_t approval_id,
                                         struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE approval_approvers SET status = 'closed'"
                               " WHERE approval_id = ? AND status IN ('pending','queued')",
                               err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, approval_id);
    return db_step_done(c, st, "close approvers", err);
}

enum as_code db_sqlite_approvals_expire(struct db *db, int64_t approval_id, int64_t now,
                                        int *changed, struct as_err *err)
{
    struct db_conn *c;
    json_t *ev = NULL;
    int did = 0;
    if (changed)
        *changed = 0;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c,
                               "UPDATE approvals SET status = 'expired', decided_at = ?,"
                               " decided_via = 'expiry' WHERE id = ? AND status = 'pending'"
                               " RETURNING run_id, exec_id",
                               err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, approval_id);
    int64_t run_id = 0, exec_id = 0;
    int s = sqlite3_step(st);
    did = s == SQLITE_ROW;
    if (did) {
        run_id = sqlite3_column_int64(st, 0);
        exec_id = sqlite3_column_int64(st, 1);
        s = sqlite3_step(st);
    }
    if (s != SQLITE_DONE) {
        rc = db_error(c, "expire approval", err);
        db_stmt_done(st);
        goto out;
    }
    db_stmt_done(st);
    if (did) {
        rc = close_open_approvers(c, approval_id, err);
        if (rc)
            goto out;
        ev = json_pack("{s:I}", "approval_id", (json_int_t)approval_id);
        rc = db_event_append(c, run_id, exec_id, "approval.expired", ev, err);
    }
out:
    rc = db_sqlite_write_end(db, rc, err);
    if (!rc && changed)
        *changed = did;
    json_decref(ev);
    return rc;
}

/* ---- deciding ----------------------------------------------------------------- */

static const char SQL_DECIDE_LOAD[] =
    "SELECT a.status, a.policy, a.expires_at, a.run_id, a.exec_id, a.require_comment_on_reject,"
    " a.decided_by, a.decided_at, a.request_hash, COALESCE(r.end_status, r.status),"
    " a.require_sign_in"
    " FROM approvals a JOIN runs r ON r.id = a.run_id WHERE a.id = ?";

/* The same through a link, with the link's approver: one statement. */
static const char SQL_DECIDE_LOAD_LINK[] =
    "SELECT a.status, a.policy, a.expires_at, a.run_id, a.exec_id, a.require_comment_on_reject,"
    " a.decided_by, a.decided_at, a.request_hash, COALESCE(r.end_status, r.status),"
    " a.require_sign_in, l.token_hash, p.id, a.id, p.email, p.status, p.actor, p.decided_at"
    " FROM approval_links l JOIN approval_approvers p ON p.id = l.approver_id"
    " JOIN approvals a ON a.id = p.approval_id JOIN runs r ON r.id = a.run_id"
    " WHERE l.token_hash = ?";

static const char SQL_APPROVER_DECIDE[] =
    "UPDATE approval_approvers SET status = ?, decided_at = ?, decided_via = ?, actor = ?,"
    " comment = ?, client_addr = ?, user_agent = ? WHERE id = ? AND status = 'pending'";

static const char SQL_APPROVAL_DECIDE[] =
    "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, decided_via = ?,"
    " comment = ? WHERE id = ? AND status = 'pending'";

/* The integer in the first column of the first row of sql (0 when no
 * row), with one bound id. */
static enum as_code int_query(struct db_conn *c, const char *sql, int64_t id, int64_t *n,
                                struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, sql, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    enum as_code rc = AS_OK;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE)
        *n = 0;
    else
        rc = db_error(c, "count", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                                     struct db_approval_state *s, struct as_err *err)
{
    enum as_code rc;
    memset(s, 0, sizeof *s);
    sqlite3_stmt *st = db_stmt(c, token_hash ? SQL_DECIDE_LOAD_LINK : SQL_DECIDE_LOAD, err);
    if (!st)
        return AS_EDB;
    if (token_hash)
        db_bind_text_or_null(st, 1, token_hash);
    else
        sqlite3_bind_int64(st, 1, approval_id);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        rc = r != SQLITE_DONE ? db_error(c, "read approval", err)
             : token_hash     ? as_errf(err, AS_ENOTFOUND, "unknown link")
                              : as_errf(err, AS_ENOTFOUND, "no approval %lld", (long long)approval_id);
        db_stmt_done(st);
        return rc;
    }
    if (token_hash) {
        /* The stored hash compared again in constant time (see find_link). */
        const char *stored = db_col_text(st, 11);
        size_t n = strlen(token_hash);
        if (strlen(stored) != n || CRYPTO_memcmp(stored, token_hash, n) != 0) {
            db_stmt_done(st);
            return as_errf(err, AS_ENOTFOUND, "unknown link");
        }
        s->approver_id = sqlite3_column_int64(st, 12);
        approval_id = sqlite3_column_int64(st, 13);
        snprintf(s->approver, sizeof s->approver, "%s", db_col_text(st, 14));
        snprintf(s->approver_status, sizeof s->approver_status, "%s", db_col_text(st, 15));
        snprintf(s->approver_decided_by, sizeof s->approver_decided_by, "%s", db_col_text(st, 16));
        s->approver_decided_at = sqlite3_column_int64(st, 17);
    }
    s->approval_id = approval_id;
    snprintf(s->status, sizeof s->status, "%s", db_col_text(st, 0));
    snprintf(s->policy, sizeof s->policy, "%s", db_col_text(st, 1));
    s->expires_at = sqlite3_column_int64(st, 2);
    s->run_id = sqlite3_column_int64(st, 3);
    s->exec_id = sqlite3_column_int64(st, 4);
    s->require_comment = sqlite3_column_int(st, 5);
    snprintf(s->decided_by, sizeof s->decided_by, "%s", db_col_text(st, 6));
    s->decided_at = sqlite3_column_int64(st, 7);
    snprintf(s->request_hash, sizeof s->request_hash, "%s", db_col_text(st, 8));
    snprintf(s->run_status, sizeof s->run_status, "%s", db_col_text(st, 9));
    s->require_sign_in = sqlite3_column_int(st, 10);
    db_stmt_done(st);
    return AS_OK;
}

enum as_code db_sqlite_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                       struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, SQL_APPROVER_DECIDE, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, a->decided);
    sqlite3_bind_int64(st, 2, a->now);
    db_bind_text_or_null(st, 3, a->via);
    db_bind_text_or_null(st, 4, a->actor);
    db_bind_text_or_null(st, 5, a->comment ? a->comment : "");
    db_bind_text_or_null(st, 6, a->client_addr);
    bind_text_max(st, 7, a->user_agent, USER_AGENT_MAX);
    sqlite3_bind_int64(st, 8, a->approver_id);
    enum as_code rc = db_step_done(c, st, "record decision", err);
    if (!rc && sqlite3_changes(db_conn_handle(c)) != 1)
        rc = as_errf(err, AS_ECONFLICT, "this link was already used");
    return rc;
}

enum as_code db_sqlite_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                           struct as_err *err)
{
    return int_query(c,
                     "SELECT COUNT(*) FROM approval_approvers WHERE approval_id = ?"
                     " AND status <> 'approved'",
                     approval_id, n, err);
}

enum as_code db_sqlite_approval_next_queued(struct db_conn *c, int64_t approval_id,
                                            int64_t *approver_id, struct as_err *err)
{
    return int_query(c,
                     "SELECT id FROM approval_approvers WHERE approval_id = ?"
                     " AND status = 'queued' ORDER BY position LIMIT 1",
                     approval_id, approver_id, err);
}

enum as_code db_sqlite_approval_activate(struct db_conn *c, int64_t approver_id, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, "UPDATE approval_approvers SET status = 'pending' WHERE id = ?", err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, approver_id);
    return db_step_done(c, st, "activate next approver", err);
}

enum as_code db_sqlite_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                                      const struct db_approval_answer *a, int open_left,
                                      struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, SQL_APPROVAL_DECIDE, err);
    if (!st)
        return AS_EDB;
    db_bind_text_or_null(st, 1, status);
    sqlite3_bind_int64(st, 2, a->now);
    db_bind_text_or_null(st, 3, a->actor);
    db_bind_text_or_null(st, 4, a->via);
    db_bind_text_or_null(st, 5, a->comment ? a->comment : "");
    sqlite3_bind_int64(st, 6, approval_id);
    enum as_code rc = db_step_done(c, st, "decide approval", err);
    if (!rc && sqlite3_changes(db_conn_handle(c)) != 1)
        rc = as_errf(err, AS_ECONFLICT, "already decided");
    return rc || !open_left ? rc : close_open_approvers(c, approval_id, err);
}

enum as_code db_sqlite_approval_approvers(struct db_conn *c, int64_t approval_id,
                                          int (*cb)(void *ud, const struct db_approver_row *r),
                                          void *ud, struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c,
                               "SELECT id, email, status, decided_at, comment FROM approval_approvers"
                               " WHERE approval_id = ? ORDER BY position",
                               err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, approval_id);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_approver_row row = {
            .id = sqlite3_column_int64(st, 0), .email = db_col_text(st, 1),
            .status = db_col_text(st, 2), .decided_at = sqlite3_column_int64(st, 3),
            .comment = db_col_text(st, 4),
        };
        if (cb(ud, &row)) {
            s = SQLITE_DONE;
            break;
        }
    }
    enum as_code rc = s == SQLITE_DONE ? AS_OK : db_error(c, "read approvers", err);
    db_stmt_done(st);
    return rc;
}

/* ---- listing and statistics ------------------------------------------------------ */

static const char SQL_LIST_PENDING[] =
    "SELECT a.id, a.run_id, a.workflow, a.step, a.subject, p.email, p.status, a.status, a.policy,"
    " p.sent_at, a.expires_at, a.decided_at, a.decided_by, COALESCE(r.end_status, r.status)"
    " FROM approval_approvers p JOIN approvals a ON a.id = p.approval_id"
    " JOIN runs r ON r.id = a.run_id"
    " WHERE a.status = 'pending' AND p.status = 'pending' AND r.status IN ('running','waiting')"
    " AND (?2 IS NULL OR ?2 = 'pending')"
    " ORDER BY a.id DESC, p.position LIMIT ?1";

/* An approval still pending when its run ended (cancelled, failed,
 * succeeded, or any end state added later) is shown as "withdrawn", and so
 * are its approvers who were still asked or queued: nobody can answer it. */
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
    " WHERE ?2 IS NULL OR " SHOWN_APPROVAL_STATUS " = ?2"
    " ORDER BY a.id DESC, p.position LIMIT ?1";

enum as_code db_sqlite_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
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
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_sqlite_read_begin(db, &c, err);
    if (rc) {
        json_decref(list);
        return rc;
    }
    /* A status filter lists every approver row of the matching approvals. */
    sqlite3_stmt *st = db_stmt(c, f->all || f->status ? SQL_LIST_ALL : SQL_LIST_PENDING, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int(st, 1, f->limit > 0 ? f->limit : 200);
    db_bind_text_or_null(st, 2, f->status);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_pack(
            "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}",
            "approval_id", (json_int_t)sqlite3_column_int64(st, 0),
            "run_id", (json_int_t)sqlite3_column_int64(st, 1),
            "workflow", db_col_text(st, 2), "step", db_col_text(st, 3),
            "subject", db_col_text(st, 4), "approver", db_col_text(st, 5),
            "approver_status", db_col_text(st, 6), "status", db_col_text(st, 7),
            "policy", db_col_text(st, 8),
            "asked_at", (json_int_t)sqlite3_column_int64(st, 9),
            "expires_at", (json_int_t)sqlite3_column_int64(st, 10),
            "decided_at", (json_int_t)sqlite3_column_int64(st, 11),
            "decided_by", db_col_text(st, 12), "run_status", db_col_text(st, 13));
        if (!row || json_array_append_new(list, row) != 0) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = db_error(c, "list approvals", err);
    db_stmt_done(st);
out:
    db_sqlite_read_end(db, c);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

static enum as_code group_counts(struct db_conn *c, const char *sql, json_t *into,
                                 struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, sql, err);
    if (!st)
        return AS_EDB;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(into, db_col_text(st, 0),
                            json_integer((json_int_t)sqlite3_column_int64(st, 1)));
    enum as_code rc = s == SQLITE_DONE ? AS_OK : db_error(c, "count", err);
    db_stmt_done(st);
    return rc;
}

enum as_code db_sqlite_approvals_stats(struct db *db, json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    json_t *runs = json_object(), *steps = json_object(), *approvals = json_object();
    int64_t pending = 0;
    enum as_code rc = AS_OK;
    if (!runs || !steps || !approvals) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
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
    rc = db_sqlite_read_begin(db, &c, err);
    if (rc)
        goto out;
    rc = group_counts(c, "SELECT status, COUNT(*) FROM runs GROUP BY status", runs, err);
    if (!rc)
        rc = group_counts(c, "SELECT status, COUNT(*) FROM step_execs GROUP BY status", steps, err);
    if (!rc)
        rc = group_counts(c, "SELECT status, COUNT(*) FROM approvals GROUP BY status", approvals,
                          err);
    if (!rc)
        rc = int_query(c,
                         "SELECT COUNT(*) FROM approvals a JOIN runs r ON r.id = a.run_id"
                         " WHERE a.status = 'pending' AND r.status IN ('running','waiting')"
                         " AND a.id > ?",
                         0, &pending, err);
    db_sqlite_read_end(db, c);
    if (rc)
        goto out;
    *out = json_pack("{s:O, s:O, s:O, s:I}", "runs", runs, "steps", steps, "approvals",
                     approvals, "approvals_pending", (json_int_t)pending);
    if (!*out)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    json_decref(runs);
    json_decref(steps);
    json_decref(approvals);
    return rc;
}

/* ---- secrets --------------------------------------------------------------------- */

enum as_code db_sqlite_approvals_secret(struct db *db, const char *name, unsigned char *out,
                                        size_t len, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_sqlite_write_begin(db, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = db_stmt(c, "SELECT value FROM web_secrets WHERE name = ?", err);
    if (!st) {
        rc = AS_EDB;
        goto done;
    }
    db_bind_text_or_null(st, 1, name);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) == len) {
        memcpy(out, sqlite3_column_blob(st, 0), len);
        db_stmt_done(st);
        db_write_rollback(db);
        return AS_OK;
    }
    db_stmt_done(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE) {
        rc = db_error(c, "read secret", err);
        goto done;
    }
    if (RAND_bytes(out, (int)len) != 1) {
        rc = as_errf(err, AS_EIO, "the system's random number generator failed");
        goto done;
    }
    st = db_stmt(c,
                 "INSERT OR REPLACE INTO web_secrets (name, value, created_at)"
                 " VALUES (?, ?, CAST(strftime('%s','now') AS INTEGER) * 1000)",
                 err);
    if (!st) {
        rc = AS_EDB;
        goto done;
    }
    db_bind_text_or_null(st, 1, name);
    sqlite3_bind_blob(st, 2, out, (int)len, SQLITE_TRANSIENT);
    rc = db_step_done(c, st, "store secret", err);
done:
    return db_sqlite_write_end(db, rc, err);
}

/* ---- paging approvals (the REST API) ------------------------------------------- */

/* An approval's status filter: the shown status, or "decided" for either decision. */
#define SHOWN_MATCHES                                                                             \
    "(?2 IS NULL OR " SHOWN_APPROVAL_STATUS " = ?2 OR (?2 = 'decided' AND (a.status = 'approved'" \
    " OR a.status = 'rejected')))"

static const char SQL_PAGE[] =
    "SELECT a.id, a.run_id, a.workflow, a.step, a.subject, " SHOWN_APPROVAL_STATUS ", a.policy,"
    " a.created_at, a.expires_at, a.decided_at, a.decided_by, a.decided_via, a.comment,"
    " COALESCE(r.end_status, r.status)"
    " FROM approvals a JOIN runs r ON r.id = a.run_id"
    " WHERE " SHOWN_MATCHES " AND (?3 = 0 OR a.id < ?3)"
    " ORDER BY a.id DESC LIMIT ?1";

static const char SQL_PAGE_APPROVERS[] =
    "SELECT p.email, " SHOWN_APPROVER_STATUS ", p.sent_at, p.decided_at, p.decided_via, p.actor,"
    " p.comment"
    " FROM approval_approvers p JOIN approvals a ON a.id = p.approval_id"
    " JOIN runs r ON r.id = a.run_id WHERE p.approval_id = ?1 ORDER BY p.position";

static json_t *text_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? json_null()
                                                       : json_string(db_col_text(st, col));
}

/* The approvers of approval `id` as a new array into *out. */
static enum as_code page_approvers(struct db_conn *c, int64_t id, json_t **out,
                                   struct as_err *err)
{
    sqlite3_stmt *st = db_stmt(c, SQL_PAGE_APPROVERS, err);
    if (!st)
        return AS_EDB;
    sqlite3_bind_int64(st, 1, id);
    enum as_code rc = AS_OK;
    json_t *list = json_array();
    int s = SQLITE_DONE;
    if (!list)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o}", "email", db_col_text(st, 0),
                                "status", db_col_text(st, 1), "asked_at",
                                (json_int_t)sqlite3_column_int64(st, 2), "decided_at",
                                (json_int_t)sqlite3_column_int64(st, 3), "decided_via",
                                text_or_null(st, 4), "actor", text_or_null(st, 5), "comment",
                                text_or_null(st, 6));
        if (!row || json_array_append_new(list, row))
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    if (!rc && s != SQLITE_DONE)
        rc = db_error(c, "list approvers", err);
    db_stmt_done(st);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}

enum as_code db_sqlite_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                                      json_t **out, struct as_err *err)
{
    struct db_conn *c;
    *out = NULL;
    if (q->status && strcmp(q->status, "decided") != 0 && !db_approvals_status_known(q->status))
        return as_errf(err, AS_EINVAL, "status must be pending, decided, approved, rejected, "
                       "expired or withdrawn, not \"%s\"", q->status);
    json_t *list = json_array();
    if (!list)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_sqlite_read_begin(db, &c, err);
    if (rc) {
        json_decref(list);
        return rc;
    }
    /* The approvals first (one statement), then each one's approvers: the
     * same read transaction sees one snapshot for both. */
    sqlite3_stmt *st = db_stmt(c, SQL_PAGE, err);
    if (!st) {
        rc = AS_EDB;
        goto out;
    }
    sqlite3_bind_int(st, 1, q->limit > 0 ? q->limit : 50);
    db_bind_text_or_null(st, 2, q->status);
    sqlite3_bind_int64(st, 3, q->before_id > 0 ? q->before_id : 0);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *row = json_pack(
            "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:s}",
            "id", (json_int_t)sqlite3_column_int64(st, 0),
            "run_id", (json_int_t)sqlite3_column_int64(st, 1), "workflow", db_col_text(st, 2),
            "step", db_col_text(st, 3), "subject", db_col_text(st, 4), "status",
            db_col_text(st, 5), "policy", db_col_text(st, 6), "created_at",
            (json_int_t)sqlite3_column_int64(st, 7), "expires_at",
            (json_int_t)sqlite3_column_int64(st, 8), "decided_at",
            (json_int_t)sqlite3_column_int64(st, 9), "decided_by", text_or_null(st, 10),
            "decided_via", text_or_null(st, 11), "comment", text_or_null(st, 12), "run_status",
            db_col_text(st, 13));
        if (!row || json_array_append_new(list, row) != 0) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
    }
    if (!rc && s != SQLITE_DONE)
        rc = db_error(c, "list approvals", err);
    db_stmt_done(st);
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        if (rc)
            break;
        json_t *approvers = NULL;
        rc = page_approvers(c, json_integer_value(json_object_get(row, "id")), &approvers, err);
        if (!rc)
            json_object_set_new(row, "approvers", approvers);
    }
out:
    db_sqlite_read_end(db, c);
    if (rc)
        json_decref(list);
    else
        *out = list;
    return rc;
}
