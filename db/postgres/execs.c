/*
 * execs.c - the PostgreSQL store's step executions: inserts, claims
 * (db_exec_due + db_exec_take), results, releases, resumes, leases
 * (contract in db/db_execs.h; db/sqlite/db_execs.c is the SQLite dialect).
 *
 * Claims between nodes.  db_exec_due selects due rows FOR UPDATE SKIP
 * LOCKED: the rows it returns stay locked by the caller's transaction until
 * it ends, and another node's db_exec_due passes over them instead of
 * waiting, so two nodes never claim one execution and neither blocks the
 * other.  db_exec_take then updates each row under that lock, still
 * checking that it is as it was found.  Transactions are READ COMMITTED.
 *
 * Leases by the database's clock.  The engine computes a lease as its own
 * `now` plus a duration; here the duration is added to the database's
 * clock instead (PG_NOW_MS) when the lease is written, and a lease has
 * ended when the database's clock has passed it.  Nodes whose clocks
 * disagree by minutes therefore still agree on when a claim may be taken
 * over.  Due times (retries, waits) stay in the engine's clock, as on
 * SQLite: each is acted on by whichever node finds it due.
 *
 * Dead nodes.  Every engine beats in the nodes table (db_node_heartbeat,
 * 010_nodes.sql).  A claim of a node whose last beat is older than its
 * node_timeout may be taken over at once: its effective end is the
 * earlier of its lease and its node's expiry.  A node that never beat
 * (none does on SQLite) is judged by its leases alone.
 */
#include "db/postgres/pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

static enum as_code oom(struct as_err *err)
{
    return as_errf(err, AS_ENOMEM, "out of memory");
}

/*
 * The next visit of step in a run (or visit_hint when > 0: the caller knows)
 * and its idempotency key "<instance>/run-<run_id>/<step>/<visit>" (*key
 * malloc'd).
 */
static enum as_code next_visit(struct db_conn *conn, int64_t run_id, const char *step,
                               int visit_hint, int *visit, char **key, struct as_err *err)
{
    static const char sql[] =
        "SELECT COALESCE(max(visit), 0) + 1 FROM step_execs WHERE run_id = $1 AND step = $2";
    char inst[40];
    *key = NULL;
    enum as_code rc = pg_instance_id(conn, inst, sizeof inst, err);
    if (rc)
        return rc;
    if (visit_hint > 0) {
        *visit = visit_hint;
    } else {
        struct pg_args a = {0};
        pg_arg_i64(&a, run_id);
        pg_arg_text(&a, step);
        PGresult *r = pg_run(conn, sql, &a, "next visit of a step", err);
        if (!r)
            return AS_EDB;
        *visit = (int)pg_i64(r, 0, 0);
        PQclear(r);
    }
    size_t len = strlen(inst) + strlen(step) + 64;
    *key = malloc(len);
    if (!*key)
        return oom(err);
    snprintf(*key, len, "%s/run-%" PRId64 "/%s/%d", inst, run_id, step, *visit);
    return AS_OK;
}

enum as_code db_pg_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                               int64_t due_at, int64_t now, int64_t *exec_id, struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO step_execs (run_id, step, visit, status, attempt, due_at, idempotency_key, "
        "created_at) VALUES ($1, $2, $3, 'ready', 0, $4, $5, $6) RETURNING id";
    int visit = 0;
    char *key = NULL;
    enum as_code rc = next_visit(conn, run_id, step, 0, &visit, &key, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    pg_arg_text(&a, step);
    pg_arg_i64(&a, visit);
    pg_arg_i64(&a, due_at);
    pg_arg_text(&a, key);
    pg_arg_i64(&a, now);
    PGresult *r = pg_run(conn, sql, &a, "insert step execution", err);
    free(key);
    if (!r)
        return AS_EDB;
    conn->notify_due = 1; /* another node may be the one to run it */
    if (exec_id)
        *exec_id = pg_i64(r, 0, 0);
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                       int visit_hint, int64_t now, const char *owner,
                                       int64_t lease_until, int queued, struct db_claim *out,
                                       struct as_err *err)
{
    static const char sql[] =
        "INSERT INTO step_execs (run_id, step, visit, status, attempt, due_at, lease_until, "
        "lease_owner, queued, idempotency_key, created_at, started_at) "
        "VALUES ($1, $2, $3, 'running', 1, $4, " PG_NOW_MS " + ($5::bigint - $4::bigint), $6, $7, "
        "$8, $4, $4) RETURNING id";
    memset(out, 0, sizeof *out);
    enum as_code rc =
        next_visit(conn, run_id, step, visit_hint, &out->visit, &out->idempotency_key, err);
    if (rc)
        goto fail;
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    pg_arg_text(&a, step);
    pg_arg_i64(&a, out->visit);
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, lease_until);
    pg_arg_text(&a, owner);
    pg_arg_i64(&a, queued ? 1 : 0);
    pg_arg_text(&a, out->idempotency_key);
    PGresult *r = pg_run(conn, sql, &a, "insert claimed step execution", err);
    if (!r) {
        rc = AS_EDB;
        goto fail;
    }
    out->exec_id = pg_i64(r, 0, 0);
    PQclear(r);
    out->run_id = run_id;
    out->step = strdup(step);
    out->attempt = 1;
    out->lease_until = lease_until;
    out->queued = queued ? 1 : 0;
    snprintf(out->prev_status, sizeof out->prev_status, "ready");
    if (!out->step) {
        rc = oom(err);
        goto fail;
    }
    return AS_OK;
fail:
    db_claim_clear(out);
    return rc;
}

#define CLAIM_COLS                                                                                 \
    "SELECT e.id, e.run_id, e.step, e.visit, e.attempt, e.status, e.idempotency_key, "            \
    "e.resume, e.wait_state, e.deadline_reached, e.lease_owner, w.hash, r.dry_run, "               \
    "e.recoveries, e.queued "                                                                      \
    "FROM step_execs e JOIN runs r ON r.id = e.run_id JOIN workflows w ON w.id = r.workflow_id "

/* Append the rows of r to out[*n..max). */
static enum as_code claims_from(const PGresult *r, struct db_claim *out, size_t max, size_t *n,
                                struct as_err *err)
{
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        struct db_claim *c = &out[*n];
        memset(c, 0, sizeof *c);
        c->exec_id = pg_i64(r, i, 0);
        c->run_id = pg_i64(r, i, 1);
        c->step = pg_dup(r, i, 2);
        c->visit = (int)pg_i64(r, i, 3);
        c->attempt = (int)pg_i64(r, i, 4);
        snprintf(c->prev_status, sizeof c->prev_status, "%s", pg_text(r, i, 5));
        c->idempotency_key = pg_dup(r, i, 6);
        c->resume = pg_dup(r, i, 7);
        c->wait_state = pg_dup(r, i, 8);
        c->deadline_reached = (int)pg_i64(r, i, 9);
        c->recovered = strcmp(c->prev_status, "running") == 0;
        if (c->recovered)
            c->prev_owner = pg_dup(r, i, 10);
        snprintf(c->workflow_hash, sizeof c->workflow_hash, "%s", pg_text(r, i, 11));
        c->dry_run = (int)pg_i64(r, i, 12);
        c->recoveries = (int)pg_i64(r, i, 13);
        c->prev_queued = (int)pg_i64(r, i, 14);
        (*n)++;
        if (!c->step || !c->idempotency_key || (!pg_isnull(r, i, 7) && !c->resume) ||
            (!pg_isnull(r, i, 8) && !c->wait_state))
            return oom(err);
    }
    return AS_OK;
}

enum as_code db_pg_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                            struct db_claim *out, size_t *n, struct as_err *err)
{
    static const char due[] = CLAIM_COLS
        "WHERE (e.status = 'ready' OR e.status = 'waiting') AND e.due_at <= $1 "
        "ORDER BY e.due_at LIMIT $2 FOR UPDATE OF e SKIP LOCKED";
    /* Leases ended by the database's clock, or held by a dead node. */
    static const char expired[] = CLAIM_COLS
        "WHERE e.status = 'running' AND (e.lease_until <= " PG_NOW_MS " "
        "OR e.lease_owner IN (SELECT owner FROM nodes WHERE expires_at <= " PG_NOW_MS ")) "
        "AND e.lease_owner IS DISTINCT FROM $2::text "
        "ORDER BY e.lease_until LIMIT $1 FOR UPDATE OF e SKIP LOCKED";
    *n = 0;
    if (max == 0)
        return AS_OK;
    struct pg_args a = {0};
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, (int64_t)max);
    PGresult *r = pg_run(conn, due, &a, "find due steps", err);
    enum as_code rc = AS_EDB;
    if (!r)
        goto out;
    rc = claims_from(r, out, max, n, err);
    PQclear(r);
    if (rc || *n >= max)
        goto out;
    struct pg_args b = {0};
    pg_arg_i64(&b, (int64_t)(max - *n));
    pg_arg_text(&b, owner);
    r = pg_run(conn, expired, &b, "find expired claims", err);
    if (!r) {
        rc = AS_EDB;
        goto out;
    }
    rc = claims_from(r, out, max, n, err);
    PQclear(r);
out:
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            db_claim_clear(&out[i]);
        *n = 0;
    }
    return rc;
}

enum as_code db_pg_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
                             int64_t now, int64_t lease_until, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'running', "
        "attempt = attempt + (status <> 'running')::int, "
        "recoveries = recoveries + (status = 'running' AND queued = 0)::int, queued = $7, "
        "lease_until = " PG_NOW_MS " + ($1::bigint - $3::bigint), lease_owner = $2, "
        "started_at = $3, "
        "deadline_reached = CASE WHEN status = 'waiting' THEN 1 ELSE deadline_reached END "
        "WHERE id = $4 AND status = $5 AND attempt = $6";
    struct pg_args a = {0};
    pg_arg_i64(&a, lease_until);
    pg_arg_text(&a, owner);
    pg_arg_i64(&a, now);
    pg_arg_i64(&a, c->exec_id);
    pg_arg_text(&a, c->prev_status);
    pg_arg_i64(&a, c->attempt);
    pg_arg_i64(&a, c->queued ? 1 : 0);
    int64_t changed = 0;
    enum as_code rc = pg_do(conn, sql, &a, "claim step", &changed, err);
    if (rc)
        return rc;
    if (changed != 1)
        return as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " changed while claiming",
                       c->exec_id);
    if (!c->recovered)
        c->attempt++;
    else if (!c->prev_queued)
        c->recoveries++;
    if (strcmp(c->prev_status, "waiting") == 0)
        c->deadline_reached = 1;
    c->lease_until = lease_until;
    return AS_OK;
}

/* A wait recorded just now ends at once when a resume was held meanwhile. */
static enum as_code take_held_resume(struct db_conn *conn, const struct db_exec_result *r,
                                     char **held, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'ready', due_at = $2, resume = resume_held, "
        "resume_held = NULL WHERE id = $1 AND status = 'waiting' AND resume_held IS NOT NULL "
        "RETURNING resume";
    struct pg_args a = {0};
    pg_arg_i64(&a, r->exec_id);
    pg_arg_i64(&a, r->finished_at);
    PGresult *res = pg_run(conn, sql, &a, "deliver held resume", err);
    if (!res)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(res) == 1) {
        *held = pg_dup(res, 0, 0);
        if (!*held)
            rc = oom(err);
    }
    PQclear(res);
    return rc;
}

enum as_code db_pg_exec_record_held(struct db_conn *conn, const struct db_exec_result *r,
                                    char **held, struct as_err *err)
{
    *held = NULL;
    /* One statement per kind of end, as on SQLite. */
    static const char ended[] =
        "UPDATE step_execs SET status = $1, lease_until = NULL, lease_owner = NULL, "
        "params = $2, output = $3, outcome = $4, error = $5, finished_at = $6 "
        "WHERE id = $7 AND status = 'running' AND lease_owner = $8 AND attempt = $9";
    static const char retry[] =
        "UPDATE step_execs SET status = 'ready', due_at = $1, lease_until = NULL, "
        "lease_owner = NULL, params = $2, output = $3, outcome = $4, error = $5, finished_at = $6 "
        "WHERE id = $7 AND status = 'running' AND lease_owner = $8 AND attempt = $9";
    static const char wait[] =
        "UPDATE step_execs SET status = 'waiting', due_at = $1, lease_until = NULL, "
        "lease_owner = NULL, params = $2, output = $3, outcome = $4, error = $5, finished_at = $6, "
        "wait_state = $10, resume = NULL, deadline_reached = 0, attempt = 0 "
        "WHERE id = $7 AND status = 'running' AND lease_owner = $8 AND attempt = $9";
    int waiting = strcmp(r->status, "waiting") == 0;
    int retrying = strcmp(r->status, "ready") == 0;
    struct pg_args a = {0};
    if (waiting || retrying)
        pg_arg_i64(&a, r->due_at);
    else
        pg_arg_text(&a, r->status);
    pg_arg_text(&a, r->params);
    pg_arg_text(&a, r->output);
    pg_arg_text(&a, r->outcome);
    pg_arg_text(&a, r->error);
    pg_arg_i64(&a, r->finished_at);
    pg_arg_i64(&a, r->exec_id);
    pg_arg_text(&a, r->owner);
    pg_arg_i64(&a, r->attempt);
    if (waiting)
        pg_arg_text(&a, r->wait_state);
    int64_t changed = 0;
    enum as_code rc = pg_do(conn, waiting ? wait : retrying ? retry : ended, &a,
                            "record step result", &changed, err);
    if (rc)
        return rc;
    if (changed != 1)
        return as_errf(err, AS_ECONFLICT,
                       "step execution %" PRId64 " is no longer held by this claim "
                       "(cancelled, or its lease expired and it was claimed again)",
                       r->exec_id);
    return waiting ? take_held_resume(conn, r, held, err) : AS_OK;
}

enum as_code db_pg_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                                int attempt, struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET status = 'ready', attempt = attempt - 1, lease_until = NULL, "
        "lease_owner = NULL WHERE id = $1 AND status = 'running' AND lease_owner = $2 "
        "AND attempt = $3";
    struct pg_args a = {0};
    pg_arg_i64(&a, exec_id);
    pg_arg_text(&a, owner);
    pg_arg_i64(&a, attempt);
    int64_t changed = 0;
    enum as_code rc = pg_do(conn, sql, &a, "release step", &changed, err);
    if (!rc && changed != 1)
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " is no longer held", exec_id);
    if (!rc)
        conn->notify_due = 1; /* handed back: another node may take it now */
    return rc;
}

enum as_code db_pg_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                               struct as_err *err)
{
    /* FOR UPDATE: the status read decides between waking and holding, so
     * no other node may change it before this transaction ends. */
    static const char sel[] = "SELECT run_id, status FROM step_execs WHERE id = $1 FOR UPDATE";
    static const char upd[] = "UPDATE step_execs SET status = 'ready', due_at = $2, resume = $3 "
                              "WHERE id = $1 AND status = 'waiting'";
    static const char hold[] = "UPDATE step_execs SET resume_held = $2 WHERE id = $1 "
                               "AND (status = 'running' OR status = 'ready')";
    enum as_code rc = AS_OK;
    char *text = NULL;
    json_t *data = NULL;
    int64_t run_id = 0, now = time_now_ms();
    char status[16] = "";

    struct pg_args a = {0};
    pg_arg_i64(&a, exec_id);
    PGresult *r = pg_run(conn, sel, &a, "find step execution", err);
    if (!r)
        return AS_EDB;
    if (PQntuples(r) == 1) {
        run_id = pg_i64(r, 0, 0);
        snprintf(status, sizeof status, "%s", pg_text(r, 0, 1));
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no step execution %" PRId64, exec_id);
    }
    PQclear(r);
    if (rc)
        return rc;
    /* Not waiting yet (still running, or resumed and not yet claimed): hold
     * the payload until the attempt ends with a wait (db_exec_record). */
    int held = strcmp(status, "running") == 0 || strcmp(status, "ready") == 0;
    if (!held && strcmp(status, "waiting"))
        return as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " has ended (%s)", exec_id,
                       status);

    text = json_dumps(payload ? payload : json_null(),
                      JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return oom(err);
    struct pg_args b = {0};
    pg_arg_i64(&b, exec_id);
    if (!held)
        pg_arg_i64(&b, now);
    pg_arg_text(&b, text);
    int64_t changed = 0;
    rc = pg_do(conn, held ? hold : upd, &b, "resume step", &changed, err);
    if (rc)
        goto out;
    if (changed != 1) {
        rc = as_errf(err, AS_ECONFLICT, "step execution %" PRId64 " changed while resuming",
                     exec_id);
        goto out;
    }
    if (!held) {
        conn->notify_due = 1; /* woken: due now, on whichever node claims it */
        rc = db_pg_run_set_status(conn, run_id, "running", NULL, now, err);
        if (rc)
            goto out;
    }
    data = held ? json_pack("{s:O, s:s}", "payload", payload ? (json_t *)payload : json_null(),
                            "status", status)
                : json_pack("{s:O}", "payload", payload ? (json_t *)payload : json_null());
    if (!data) {
        rc = oom(err);
        goto out;
    }
    rc = db_event_append(conn, run_id, exec_id, held ? "step.resume_held" : "step.resumed", data,
                         err);
out:
    json_decref(data);
    free(text);
    return rc;
}

enum as_code db_pg_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                                 struct as_err *err)
{
    /* A lease ends by the database's clock (or when its node is found
     * dead): translated into the caller's clock ($2) as the time left. */
    static const char sql[] =
        "SELECT min(t) FROM ("
        "(SELECT due_at AS t FROM step_execs WHERE (status = 'ready' OR status = 'waiting') "
        "ORDER BY due_at LIMIT 1) UNION ALL "
        "(SELECT LEAST(e.lease_until, COALESCE(n.expires_at, e.lease_until)) - " PG_NOW_MS
        " + $2::bigint FROM step_execs e LEFT JOIN nodes n ON n.owner = e.lease_owner "
        "WHERE e.status = 'running' AND e.lease_owner IS DISTINCT FROM $1::text "
        "ORDER BY 1 LIMIT 1)) n";
    struct pg_args a = {0};
    pg_arg_text(&a, owner);
    pg_arg_i64(&a, time_now_ms());
    PGresult *r = pg_run(conn, sql, &a, "find next due step", err);
    if (!r)
        return AS_EDB;
    *due = pg_isnull(r, 0, 0) ? INT64_MAX : pg_i64(r, 0, 0);
    PQclear(r);
    return AS_OK;
}

enum as_code db_pg_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                                  int64_t *clock_ms, struct as_err *err)
{
    static const char beat[] =
        "INSERT INTO nodes (owner, started_at, heartbeat_at, expires_at) "
        "VALUES ($1, " PG_NOW_MS ", " PG_NOW_MS ", " PG_NOW_MS " + $2::bigint) "
        "ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, "
        "expires_at = excluded.expires_at RETURNING heartbeat_at";
    static const char leave[] = "DELETE FROM nodes WHERE owner = $1 RETURNING " PG_NOW_MS;
    /* Nodes dead for a day with no claim left: nobody needs their row. */
    static const char forget[] =
        "DELETE FROM nodes WHERE expires_at < " PG_NOW_MS " - 86400000 AND NOT EXISTS "
        "(SELECT 1 FROM step_execs e WHERE e.status = 'running' AND e.lease_owner = nodes.owner)";
    struct db_conn *c;
    enum as_code rc = db_pg_write_begin(db, &c, err);
    if (rc)
        return rc;
    struct pg_args a = {0};
    pg_arg_text(&a, owner);
    if (timeout_ms > 0)
        pg_arg_i64(&a, timeout_ms);
    PGresult *r = pg_run(c, timeout_ms > 0 ? beat : leave, &a, "node heartbeat", err);
    if (!r)
        return db_pg_write_end(db, AS_EDB, err);
    if (clock_ms)
        *clock_ms = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : time_now_ms();
    PQclear(r);
    if (timeout_ms > 0)
        rc = pg_do(c, forget, NULL, "forget dead nodes", NULL, err);
    return db_pg_write_end(db, rc, err);
}

struct owners {
    int (*cb)(void *ud, const char *owner);
    void *ud;
};

static int owner_row(void *ud, const PGresult *r, int i)
{
    struct owners *o = ud;
    return o->cb(o->ud, pg_text(r, i, 0));
}

enum as_code db_pg_exec_lease_owners(struct db_conn *conn, int (*cb)(void *ud, const char *owner),
                                     void *ud, struct as_err *err)
{
    static const char sql[] = "SELECT DISTINCT lease_owner FROM step_execs "
                              "WHERE status = 'running' AND lease_owner IS NOT NULL";
    struct owners o = {cb, ud};
    return pg_each(conn, sql, NULL, owner_row, &o, "list lease owners", err);
}

enum as_code db_pg_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                     struct as_err *err)
{
    static const char sql[] =
        "UPDATE step_execs SET lease_until = 0 WHERE status = 'running' AND lease_owner = $1";
    struct pg_args a = {0};
    pg_arg_text(&a, owner);
    return pg_do(conn, sql, &a, "expire leases", n, err);
}

struct execs {
    db_exec_cb cb;
    void *ud;
};

static int exec_row(void *ud, const PGresult *r, int i)
{
    struct execs *x = ud;
    struct db_exec_info e = {
        .id = pg_i64(r, i, 0),
        .run_id = pg_i64(r, i, 1),
        .step = pg_text(r, i, 2),
        .status = pg_text(r, i, 3),
        .idempotency_key = pg_text(r, i, 4),
        .params = pg_text(r, i, 5),
        .output = pg_text(r, i, 6),
        .outcome = pg_text(r, i, 7),
        .error = pg_text(r, i, 8),
        .wait_state = pg_text(r, i, 9),
        .resume = pg_text(r, i, 10),
        .lease_owner = pg_text(r, i, 11),
        .visit = (int)pg_i64(r, i, 12),
        .attempt = (int)pg_i64(r, i, 13),
        .deadline_reached = (int)pg_i64(r, i, 14),
        .due_at = pg_i64(r, i, 15),
        .lease_until = pg_i64(r, i, 16),
        .created_at = pg_i64(r, i, 17),
        .started_at = pg_i64(r, i, 18),
        .finished_at = pg_i64(r, i, 19),
        .recoveries = (int)pg_i64(r, i, 20),
    };
    return x->cb(x->ud, &e);
}

enum as_code db_pg_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                             struct as_err *err)
{
    static const char sql[] =
        "SELECT id, run_id, step, status, idempotency_key, params, output, outcome, error, "
        "wait_state, resume, lease_owner, visit, attempt, deadline_reached, due_at, lease_until, "
        "created_at, started_at, finished_at, recoveries FROM step_execs WHERE run_id = $1 "
        "ORDER BY id";
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    struct execs x = {cb, ud};
    return pg_each(conn, sql, &a, exec_row, &x, "list step executions", err);
}

static int scope_row(void *ud, const PGresult *r, int i)
{
    struct execs *x = ud;
    struct db_exec_info e = {
        .step = pg_text(r, i, 0),
        .status = pg_text(r, i, 1),
        .output = pg_text(r, i, 2),
        .outcome = pg_text(r, i, 3),
        .error = pg_text(r, i, 4),
        .run_id = pg_i64(r, i, 5),
    };
    return x->cb(x->ud, &e);
}

enum as_code db_pg_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                             void *ud, struct as_err *err)
{
    static const char q_input[] = "SELECT input FROM runs WHERE id = $1";
    static const char q_steps[] =
        "SELECT step, status, output, outcome, error, run_id FROM step_execs "
        "WHERE run_id = $1 AND (status = 'succeeded' OR status = 'failed') ORDER BY id";
    *input = NULL;
    struct pg_args a = {0};
    pg_arg_i64(&a, run_id);
    PGresult *r = pg_run(conn, q_input, &a, "read run input", err);
    if (!r)
        return AS_EDB;
    enum as_code rc = AS_OK;
    if (PQntuples(r) == 1) {
        *input = strdup(pg_text(r, 0, 0));
        if (!*input)
            rc = oom(err);
    } else {
        rc = as_errf(err, AS_ENOTFOUND, "no run %" PRId64, run_id);
    }
    PQclear(r);
    if (rc)
        return rc;
    struct execs x = {cb, ud};
    rc = pg_each(conn, q_steps, &a, scope_row, &x, "read step outputs", err);
    if (rc) {
        free(*input);
        *input = NULL;
    }
    return rc;
}

enum as_code db_pg_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                    struct db_claim *out, struct as_err *err)
{
    (void)conn, (void)end;
    memset(out, 0, sizeof *out);
    /* Several nodes decide on PostgreSQL, each in a transaction of its own
     * (docs/postgresql.md): a resumed step runs again to read its result. */
    return as_errf(err, AS_EUNSUPPORTED, "ending a waiting step at its resume: SQLite only");
}
