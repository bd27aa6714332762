/*
 * mail.c - the PostgreSQL store's mail bookkeeping: one mail_sends row per
 * idempotency key of an email (contract in db/db_mail.h; the protocol is
 * steps/mail.c's, the SQLite dialect db/sqlite/db_mail.c).
 *
 * Two nodes may claim one key at once (a step run again elsewhere after its
 * claim was lost).  The first claim inserts the row with ON CONFLICT DO
 * NOTHING, so of two first claims one inserts and the other, after waiting
 * for it, inserts nothing; every later claim reads the row FOR UPDATE, so
 * the decision it takes (send again, resend, busy, give up) is taken on the
 * row as the previous claim left it, and no two claims both send.
 */
#include "db/postgres/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/* SQL_RETRY and SQL_RESEND share $1..$5 (see update_args). */
static const char SQL_RETRY[] =
    "UPDATE mail_sends SET state = 'sending', attempts = attempts + 1, transport = $2,"
    " owner = $3, lease_until = $4, date_ms = $6, error = NULL, updated_at = $5"
    " WHERE idempotency_key = $1";

static const char SQL_RESEND[] =
    "UPDATE mail_sends SET attempts = attempts + 1, resends = resends + 1, transport = $2,"
    " owner = $3, lease_until = $4, updated_at = $5 WHERE idempotency_key = $1";

static void update_args(struct pg_args *a, const char *key, const char *transport,
                        const char *owner, int64_t lease_until, int64_t now_ms)
{
    pg_arg_text(a, key);
    pg_arg_text(a, transport);
    pg_arg_text(a, owner);
    pg_arg_i64(a, lease_until);
    pg_arg_i64(a, now_ms);
}

/* Decide on the stored row r (locked) as db_mail_claim says. */
static enum as_code claim_existing(struct db_conn *c, const PGresult *r, const char *key,
                                   const char *transport, int64_t date_ms, const char *owner,
                                   int64_t now_ms, int64_t lease_until, int max_resends,
                                   int (*owner_alive)(const char *owner, void *ud), void *ud,
                                   struct db_mail_claim *out, struct as_err *err)
{
    const char *state = pg_text(r, 0, 1);
    const char *stored_owner = pg_text(r, 0, 4);
    int attempts = (int)pg_i64(r, 0, 2), resends = (int)pg_i64(r, 0, 3);
    int64_t stored_lease = pg_i64(r, 0, 5);
    out->message_id = strdup(pg_text(r, 0, 0));
    if (!out->message_id)
        return oom(err);
    out->date_ms = pg_i64(r, 0, 6);
    out->attempts = attempts;
    out->resends = resends;
    if (strcmp(state, "sent") == 0) {
        out->action = DB_MAIL_DONE;
        json_error_t jerr;
        out->result = json_loads(pg_text(r, 0, 7), 0, &jerr);
        if (!out->result)
            return as_errf(err, AS_EDB, "mail_sends %s: stored result is not JSON", key);
        return AS_OK;
    }
    if (strcmp(state, "failed") == 0) {
        struct pg_args a = {0};
        update_args(&a, key, transport, owner, lease_until, now_ms);
        pg_arg_i64(&a, date_ms);
        enum as_code rc = pg_do(c, SQL_RETRY, &a, "mail_sends retry", NULL, err);
        if (rc)
            return rc;
        out->action = DB_MAIL_SEND;
        out->date_ms = date_ms;
        out->attempts = attempts + 1;
        return AS_OK;
    }
    if (now_ms < stored_lease && owner_alive && owner_alive(stored_owner, ud)) {
        out->action = DB_MAIL_BUSY;
        out->lease_until = stored_lease;
        return AS_OK;
    }
    if (resends >= max_resends) {
        out->action = DB_MAIL_GIVEUP;
        return AS_OK;
    }
    struct pg_args a = {0};
    update_args(&a, key, transport, owner, lease_until, now_ms);
    enum as_code rc = pg_do(c, SQL_RESEND, &a, "mail_sends resend", NULL, err);
    if (rc)
        return rc;
    out->action = DB_MAIL_RESEND;
    out->attempts = attempts + 1;
    out->resends = resends + 1;
    return AS_OK;
}

enum as_code db_pg_mail_claim(struct db *db, const char *key, const char *message_id,
                              const char *transport, int64_t date_ms, const char *owner,
                              int64_t now_ms, int64_t lease_until, int max_resends,
                              int (*owner_alive)(const char *owner, void *ud), void *ud,
                              struct db_mail_claim *out, struct as_err *err)
{
    static const char ins[] =
        "INSERT INTO mail_sends (idempotency_key, message_id, transport, state, attempts, resends,"
        " owner, lease_until, date_ms, created_at, updated_at)"
        " VALUES ($1, $2, $3, 'sending', 1, 0, $4, $5, $6, $7, $7)"
        " ON CONFLICT (idempotency_key) DO NOTHING";
    static const char sel[] =
        "SELECT message_id, state, attempts, resends, owner, lease_until, date_ms, result"
        " FROM mail_sends WHERE idempotency_key = $1 FOR UPDATE";
    struct db_conn *c = NULL;
    memset(out, 0, sizeof *out);
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    pg_arg_text(&a, message_id);
    pg_arg_text(&a, transport);
    pg_arg_text(&a, owner);
    pg_arg_i64(&a, lease_until);
    pg_arg_i64(&a, date_ms);
    pg_arg_i64(&a, now_ms);
    int64_t inserted = 0;
    rc = pg_do(c, ins, &a, "mail_sends insert", &inserted, err);
    if (rc)
        goto out;
    if (inserted == 1) {
        out->action = DB_MAIL_SEND;
        out->message_id = strdup(message_id);
        out->date_ms = date_ms;
        out->attempts = 1;
        if (!out->message_id)
            rc = oom(err);
        goto out;
    }
    struct pg_args b = {0};
    pg_arg_text(&b, key);
    PGresult *r = pg_run(c, sel, &b, "mail_sends lookup", err);
    if (!r) {
        rc = AS_EDB;
        goto out;
    }
    if (PQntuples(r) == 1)
        rc = claim_existing(c, r, key, transport, date_ms, owner, now_ms, lease_until, max_resends,
                            owner_alive, ud, out, err);
    else
        rc = as_errf(err, AS_EDB, "mail_sends %s: the row vanished", key);
    PQclear(r);
out:
    rc = db_pg_write_end(db, rc, err);
    if (rc)
        db_mail_claim_clear(out);
    return rc;
}

enum as_code db_pg_mail_finish(struct db *db, const char *key, const char *state,
                               const json_t *result, const char *error, int64_t now_ms,
                               struct as_err *err)
{
    static const char sql[] =
        "UPDATE mail_sends SET state = $2, result = $3, error = $4, owner = NULL,"
        " lease_until = NULL, updated_at = $5 WHERE idempotency_key = $1";
    struct db_conn *c = NULL;
    char *text = NULL;
    if (result) {
        text = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            return oom(err);
    }
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        goto done;
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    pg_arg_text(&a, state);
    pg_arg_text(&a, text);
    pg_arg_text(&a, error);
    pg_arg_i64(&a, now_ms);
    int64_t changed = 0;
    rc = pg_do(c, sql, &a, "mail_sends finish", &changed, err);
    if (!rc && changed == 0)
        rc = as_errf(err, AS_ENOTFOUND, "no mail_sends row for this key");
    rc = db_pg_write_end(db, rc, err);
done:
    free(text);
    return rc;
}

enum as_code db_pg_mail_get(struct db *db, const char *key, json_t **row, struct as_err *err)
{
    static const char sql[] =
        "SELECT idempotency_key, message_id, transport, state, attempts, resends, owner,"
        " lease_until, date_ms, result, error, created_at, updated_at"
        " FROM mail_sends WHERE idempotency_key = $1";
    /* How each column becomes JSON: text, integer, or parsed JSON. */
    static const char kinds[] = "ttttiitiijtii";
    static const char *const names[] = {"idempotency_key", "message_id", "transport", "state",
                                        "attempts", "resends", "owner", "lease_until",
                                        "date_ms", "result", "error", "created_at",
                                        "updated_at"};
    struct db_conn *c = NULL;
    *row = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, key);
    PGresult *r = pg_run(c, sql, &a, "mail_sends get", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return as_errf(err, AS_ENOTFOUND, "no mail_sends row for this key");
    }
    json_t *o = json_object();
    for (int i = 0; o && i < 13; i++) {
        json_t *v;
        if (pg_isnull(r, 0, i))
            v = json_null();
        else if (kinds[i] == 'i')
            v = json_integer(pg_i64(r, 0, i));
        else if (kinds[i] == 'j')
            v = json_loads(pg_text(r, 0, i), 0, NULL);
        else
            v = json_string(pg_text(r, 0, i));
        json_object_set_new(o, names[i], v ? v : json_null());
    }
    PQclear(r);
    if (!o)
        return oom(err);
    *row = o;
    return AS_OK;
}

enum as_code db_pg_mail_step_source(struct db *db, int64_t run_id, const char *step,
                                    json_t **params, char **source_path, struct as_err *err)
{
    static const char sql[] =
        "SELECT w.definition, w.source_path FROM runs r JOIN workflows w ON w.id = r.workflow_id"
        " WHERE r.id = $1";
    struct db_conn *c = NULL;
    json_t *def = NULL;
    *params = NULL;
    *source_path = NULL;
    enum as_code rc = db_pg_read_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    PGresult *r = pg_run(c, sql, &a, "workflow of run", err);
    db_pg_read_end(db, c);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        json_error_t jerr;
        def = json_loads(pg_text(r, 0, 0), 0, &jerr);
        if (*pg_text(r, 0, 1))
            *source_path = strdup(pg_text(r, 0, 1));
        if (!def)
            rc = as_errf(err, AS_EDB, "run %lld: stored workflow definition is not JSON",
                         (long long)run_id);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "run %lld not found", (long long)run_id);
    }
    PQclear(r);
    if (rc)
        goto out;
    json_t *s = json_object_get(json_object_get(def, "steps"), step);
    if (!json_is_object(s)) {
        rc = as_errf(err, AS_ENOTFOUND, "run %lld: no step \"%s\" in its workflow",
                     (long long)run_id, step);
        goto out;
    }
    json_t *p = json_object_get(s, "params");
    *params = json_is_object(p) ? json_incref(p) : json_object();
    if (!*params)
        rc = oom(err);
out:
    if (rc) {
        free(*source_path);
        *source_path = NULL;
    }
    json_decref(def);
    return rc;
}
