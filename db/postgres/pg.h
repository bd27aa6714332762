/*
 * pg.h - private to the PostgreSQL store (db/postgres/): its handles, the
 * helpers every file of it writes its SQL with, and its implementation of
 * the operations of db/db*.h (the entries of db_pg_backend, backend.c).
 * Nothing outside db/postgres/ includes it.
 *
 * Connections.  A pool of libpq connections per store, opened on demand (at
 * most PG_MAX_CONNS).  db_write_begin takes one for the calling thread and
 * BEGINs (READ COMMITTED, PostgreSQL's default); db_write_end finds it again
 * through a thread-specific key and COMMITs or ROLLBACKs; db_read_begin
 * lends one in autocommit, so each read statement sees the latest commits
 * (as a SQLite reader outside a transaction does).  Several writers of one
 * process, like several nodes, run at once: row locks, SKIP LOCKED and the
 * event chain's lock (events.c) keep them apart.  A connection that failed
 * is closed when it is given back, and the next one is opened afresh.
 *
 * Statements.  Each SQL text is prepared once per connection (PQprepare,
 * named s1, s2, ... in a per-connection cache keyed by the text) and run
 * with text parameters.  Types are left to PostgreSQL to infer; a parameter
 * whose type it cannot infer carries a cast in the SQL.
 */
#ifndef ASSENT_DB_PG_H
#define ASSENT_DB_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>

#include "db/backend.h"

#define PG_MAX_CONNS 64
#define PG_STMT_CACHE 512
#define PG_MAX_ARGS 24

struct pg_stmt {
    uint64_t hash; /* of the text; 0 = empty bucket */
    char *sql;     /* our copy: the key */
    char name[12]; /* s1, s2, ... */
};

struct db_conn {
    struct db_head head; /* first: the dispatch reads it (db/backend.h) */
    struct db *db;
    PGconn *pg;
    int broken;            /* the connection failed: closed when given back */
    int in_write;          /* between db_write_begin and db_write_end */
    int notify_due;        /* this write transaction made work due: NOTIFY at commit */
    int chain_locked;      /* this write transaction holds the event chain's lock, */
    int64_t chain_id;      /* ... and the chain's head is this event (events.c) */
    char chain_hash[65];
    /* The chain as it was at SAVEPOINT part: ROLLBACK TO it undoes the
     * events appended since, and the chain's lock when it was taken since. */
    int sp_chain_locked;
    int64_t sp_chain_id;
    char sp_chain_hash[65];
    char sqlstate[6];      /* of the last failed statement ("" when none) */
    int n_stmts;
    struct pg_stmt stmts[2 * PG_STMT_CACHE]; /* open addressing */
    struct db_conn *next_idle;
};

struct db {
    struct db_head head;     /* first: the dispatch reads it (db/backend.h) */
    char *conninfo;          /* as given to db_open: db_path() */
    char *password;          /* from db_password_file, or NULL (libpq's own files) */
    char where[320];         /* "host:port/dbname as user", for messages */
    pthread_mutex_t lock;    /* guards idle and n_conns */
    struct db_conn *idle;    /* connections not lent out, most recent first */
    int n_conns;             /* open connections, lent or idle */
    pthread_key_t writer;    /* the calling thread's write transaction (a db_conn) */
    pthread_mutex_t instance_lock;
    char instance_id[40];    /* meta.instance_id once read ("" before) */
};

/*
 * The database's clock in ms since the epoch, as SQL: what leases are
 * measured by (execs.c), so that nodes whose own clocks disagree still agree
 * on when a claim ends.  statement_timestamp(): one value per statement.
 */
#define PG_NOW_MS "(extract(epoch FROM statement_timestamp()) * 1000)::bigint"

/* Text parameters of a statement.  NULL values are SQL NULL. */
struct pg_args {
    int n;
    const char *v[PG_MAX_ARGS];
    char num[PG_MAX_ARGS][24];
};

/* Append a text (NULL: SQL NULL), a text where "" is NULL too, an integer. */
void pg_arg_text(struct pg_args *a, const char *s);
void pg_arg_nonempty(struct pg_args *a, const char *s);
void pg_arg_i64(struct pg_args *a, int64_t v);

/*
 * Run sql (prepared once per connection) with a's parameters (a may be
 * NULL: none).  Returns the result (PGRES_COMMAND_OK or PGRES_TUPLES_OK),
 * which the caller PQclear()s, or NULL with err set to AS_EDB "what:
 * message" and c->sqlstate to the error's SQLSTATE.
 */
PGresult *pg_run(struct db_conn *c, const char *sql, const struct pg_args *a, const char *what,
                 struct as_err *err);

/* pg_run for a statement whose result is only its effect; *changed (may be
 * NULL) receives the number of rows it changed. */
enum as_code pg_do(struct db_conn *c, const char *sql, const struct pg_args *a, const char *what,
                   int64_t *changed, struct as_err *err) AS_WUR;

/*
 * Run sql and call row(ud, res, i) for each row i of its result, in order;
 * row returns nonzero to stop.  The whole result is read first, so row may
 * run statements on the same connection (as SQLite allows a callback to);
 * a listing that may grow without bound pages instead (events.c).
 */
enum as_code pg_each(struct db_conn *c, const char *sql, const struct pg_args *a,
                     int (*row)(void *ud, const PGresult *res, int i), void *ud, const char *what,
                     struct as_err *err) AS_WUR;

/*
 * pg_each for a listing that may be long (a tenant's users): the rows come
 * one at a time (libpq's single-row mode), so memory stays flat.  row must
 * not run statements on c (the statement is still running).  Once row
 * returns nonzero the remaining rows are read and dropped.
 */
enum as_code pg_each_stream(struct db_conn *c, const char *sql, const struct pg_args *a,
                            int (*row)(void *ud, const PGresult *res, int i), void *ud,
                            const char *what, struct as_err *err) AS_WUR;

/*
 * Run sql (parameters a) on a read connection and call cb with each row as
 * make_row builds it, until cb returns nonzero.  One statement, so one
 * snapshot; the rows stream (pg_each_stream), so a large listing keeps
 * memory flat, as SQLite's stepping does.  cb may use the store (on other
 * connections).  Written once (tenant.c) for every listing of rows as JSON.
 */
enum as_code pg_rows_each(struct db *db, const char *sql, const struct pg_args *a,
                          json_t *(*make_row)(const PGresult *r, int i),
                          int (*cb)(const json_t *row, void *ud), void *ud, const char *what,
                          struct as_err *err) AS_WUR;

/* Run sql text without parameters or preparation (BEGIN, SAVEPOINT, ...). */
enum as_code pg_exec(struct db_conn *c, const char *sql, const char *what,
                     struct as_err *err) AS_WUR;

/* Cell helpers: an integer (0 for NULL), text ("" for NULL), a malloc'd
 * copy (NULL for NULL or when out of memory: check pg_isnull). */
int64_t pg_i64(const PGresult *r, int row, int col);
const char *pg_text(const PGresult *r, int row, int col);
char *pg_dup(const PGresult *r, int row, int col);
int pg_isnull(const PGresult *r, int row, int col);

/* 1 when the last failed statement of c broke a unique constraint. */
int pg_unique_violation(const struct db_conn *c);

/* A new libpq connection to the store's database, as the pool opens them
 * (its timeout, password, encoding; notices to the debug log).  Caller
 * PQfinish()es *out. */
enum as_code pg_connect(struct db *db, PGconn **out, struct as_err *err) AS_WUR;

/* The channel of wake-ups between nodes (wakeups.c): a write transaction
 * that made work due NOTIFYs it at commit (db_conn.notify_due). */
#define PG_WAKEUP_CHANNEL "assent_due"

/* The database's instance id (meta.instance_id), read once per store. */
enum as_code pg_instance_id(struct db_conn *c, char *out, size_t size, struct as_err *err) AS_WUR;

/* ---- the operations (db/db*.h) ------------------------------------------- */

enum as_code db_pg_open(const char *path, const struct db_options *opts, struct db **out,
                        struct as_err *err) AS_WUR;
void db_pg_close(struct db *db);
const char *db_pg_path(const struct db *db);
int db_pg_schema_version(struct db *db);
enum as_code db_pg_write_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
enum as_code db_pg_read_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
void db_pg_read_end(struct db *db, struct db_conn *conn);
enum as_code db_pg_write_end(struct db *db, enum as_code rc, struct as_err *err) AS_WUR;
enum as_code db_pg_savepoint_begin(struct db_conn *conn, struct as_err *err) AS_WUR;
enum as_code db_pg_savepoint_end(struct db_conn *conn, enum as_code rc, struct as_err *err) AS_WUR;
enum as_code db_pg_ping(struct db *db, struct as_err *err) AS_WUR;
enum as_code db_pg_checkpointer_start(struct db *db, struct db_checkpointer **out,
                                      struct as_err *err) AS_WUR;
void db_pg_checkpointer_stop(struct db_checkpointer *ck);

/* runs.c */
enum as_code db_pg_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w,
                                int64_t now, int64_t *id, struct as_err *err) AS_WUR;
enum as_code db_pg_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                                struct as_err *err) AS_WUR;
enum as_code db_pg_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                              int64_t *run_id, struct as_err *err) AS_WUR;
enum as_code db_pg_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                                  const char *error, int64_t now, struct as_err *err) AS_WUR;
enum as_code db_pg_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now,
                              struct as_err *err) AS_WUR;
enum as_code db_pg_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason,
                                 int64_t now, struct as_err *err) AS_WUR;
enum as_code db_pg_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                    db_run_open_cb cb, void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                             struct as_err *err) AS_WUR;
enum as_code db_pg_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                              struct as_err *err) AS_WUR;
enum as_code db_pg_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err) AS_WUR;
enum as_code db_pg_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                             void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                           struct as_err *err) AS_WUR;
enum as_code db_pg_workflows_list(struct db_conn *conn, const char *name, const char *after,
                                  int limit, db_workflow_cb cb, void *ud,
                                  struct as_err *err) AS_WUR;

/* execs.c */
enum as_code db_pg_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                               int64_t due_at, int64_t now, int64_t *exec_id,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                       int visit_hint, int64_t now, const char *owner,
                                       int64_t lease_until, int queued, struct db_claim *out,
                                       struct as_err *err) AS_WUR;
enum as_code db_pg_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                            struct db_claim *out, size_t *n, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
                             int64_t now, int64_t lease_until, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_record_held(struct db_conn *conn, const struct db_exec_result *r,
                                    char **held, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                                int attempt, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                    struct db_claim *out, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                                 struct as_err *err) AS_WUR;
enum as_code db_pg_exec_lease_owners(struct db_conn *conn, int (*cb)(void *ud, const char *owner),
                                     void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                                  int64_t *clock_ms, struct as_err *err) AS_WUR;
enum as_code db_pg_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                             struct as_err *err) AS_WUR;
enum as_code db_pg_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                             void *ud, struct as_err *err) AS_WUR;

/* events.c */
enum as_code db_pg_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                        int64_t run_id, int64_t exec_id, const char *type,
                                        const char *data, const char *data_digest, int64_t now,
                                        struct as_err *err) AS_WUR;
enum as_code db_pg_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                              struct as_err *err) AS_WUR;

/* approvals.c */
enum as_code db_pg_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                    int *created, struct as_err *err) AS_WUR;
enum as_code db_pg_approval_view(struct db_conn *c, int64_t id, json_t **out,
                                 struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_get(struct db *db, int64_t id, json_t **out,
                                 struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                      struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                      const char *token_hash, int64_t now, int *seq,
                                      struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                       struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                          int64_t next_reminder_at, struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_expire(struct db *db, int64_t approval_id, int64_t now, int *changed,
                                    struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                           struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_clear_resume(struct db *db, int64_t approval_id,
                                          struct as_err *err) AS_WUR;
enum as_code db_pg_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                                 struct db_approval_state *s, struct as_err *err) AS_WUR;
enum as_code db_pg_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                   struct as_err *err) AS_WUR;
enum as_code db_pg_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                       struct as_err *err) AS_WUR;
enum as_code db_pg_approval_next_queued(struct db_conn *c, int64_t approval_id,
                                        int64_t *approver_id, struct as_err *err) AS_WUR;
enum as_code db_pg_approval_activate(struct db_conn *c, int64_t approver_id,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                                  const struct db_approval_answer *a, int open_left,
                                  struct as_err *err) AS_WUR;
enum as_code db_pg_approval_approvers(struct db_conn *c, int64_t approval_id,
                                      int (*cb)(void *ud, const struct db_approver_row *r),
                                      void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
                                        json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_stats(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_secret(struct db *db, const char *name, unsigned char *out,
                                    size_t len, struct as_err *err) AS_WUR;
enum as_code db_pg_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                                  json_t **out, struct as_err *err) AS_WUR;

/* mail.c */
enum as_code db_pg_mail_claim(struct db *db, const char *key, const char *message_id,
                              const char *transport, int64_t date_ms, const char *owner,
                              int64_t now_ms, int64_t lease_until, int max_resends,
                              int (*owner_alive)(const char *owner, void *ud), void *ud,
                              struct db_mail_claim *out, struct as_err *err) AS_WUR;
enum as_code db_pg_mail_finish(struct db *db, const char *key, const char *state,
                               const json_t *result, const char *error, int64_t now_ms,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_mail_get(struct db *db, const char *key, json_t **row,
                            struct as_err *err) AS_WUR;
enum as_code db_pg_mail_step_source(struct db *db, int64_t run_id, const char *step,
                                    json_t **params, char **source_path,
                                    struct as_err *err) AS_WUR;

/* kpi.c */
enum as_code db_pg_kpi_put(struct db *db, const char *name, const char *report,
                           const char *definition, const char *schedule, const char *timezone,
                           int replace, int64_t now, int64_t *id, struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_get(struct db *db, const char *name, json_t **out,
                           struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_delete(struct db *db, const char *name, struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                 int64_t exempt, const json_t *breakdown,
                                 struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                              struct as_err *err) AS_WUR;
enum as_code db_pg_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                                 struct as_err *err) AS_WUR;
enum as_code db_pg_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                                 int *created, struct as_err *err) AS_WUR;
enum as_code db_pg_exception_list(struct db *db, enum db_exception_filter filter, const char *upn,
                                  int64_t now, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_exception_remove(struct db *db, int64_t id, const char *by, const char *reason,
                                    int64_t now, struct as_err *err) AS_WUR;
enum as_code db_pg_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb,
                                            void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_sched_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_sched_claim(struct db *db, int64_t kpi_id, int64_t prev, int64_t scheduled_for,
                               int64_t missed, int64_t now, int64_t *run_id,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                                const char *error, int64_t now, struct as_err *err) AS_WUR;
enum as_code db_pg_sched_interrupted(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                              struct as_err *err) AS_WUR;

/* wakeups.c */
enum as_code db_pg_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                                 struct db_wakeups **out, struct as_err *err) AS_WUR;
void db_pg_wakeups_stop(struct db_wakeups *w);
enum as_code db_pg_leader_try(struct db *db, struct db_leader **l, const char *role, int *leader,
                           struct as_err *err) AS_WUR;
void db_pg_leader_release(struct db_leader *l);

/* tenant.c */
enum as_code db_pg_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                      const char *status, const json_t *summary, const char *error,
                                      struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                   const json_t *user, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                      struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                  const json_t *mbx, int *matched, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_cas_prune(struct db_conn *c, int64_t sync_id,
                                    struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                    const char *upn, int pop3, int imap4, int smtp,
                                    const char *last_activity, const char *report_date,
                                    struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                            const json_t *transport, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                       struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                        void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                              int (*cb)(const json_t *row, void *ud), void *ud,
                                              struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                               int (*cb)(const json_t *row, void *ud), void *ud,
                                               struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_org_transport(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                   struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                          int (*cb)(const json_t *row, void *ud), void *ud,
                                          struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                              size_t status_size, struct as_err *err) AS_WUR;
enum as_code db_pg_tenant_last_sync(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows, size_t n,
                                  int64_t now_ms, struct as_err *err) AS_WUR;
enum as_code db_pg_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                int64_t run_id, int64_t now_ms, struct as_err *err) AS_WUR;
enum as_code db_pg_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                           struct as_err *err) AS_WUR;

/* tokens.c */
enum as_code db_pg_api_token_add(struct db *db, struct db_api_token *t, struct as_err *err) AS_WUR;
enum as_code db_pg_api_token_find(struct db *db, const char *token_hash,
                                  struct db_api_token *out, struct as_err *err) AS_WUR;
enum as_code db_pg_api_token_list(struct db *db, int include_revoked, json_t **out,
                                  struct as_err *err) AS_WUR;
enum as_code db_pg_api_token_revoke(struct db *db, const char *name, const char *by, int64_t now,
                                    struct db_api_token *out, struct as_err *err) AS_WUR;

/* sessions.c */
enum as_code db_pg_console_session_add(struct db *db, struct db_console_session *s,
                                       const char *via, struct as_err *err) AS_WUR;
enum as_code db_pg_console_session_find(struct db *db, const char *session_hash,
                                        struct db_console_session *out, struct as_err *err) AS_WUR;
enum as_code db_pg_console_session_delete(struct db *db, const char *session_hash,
                                          struct db_console_session *out,
                                          struct as_err *err) AS_WUR;

/* testing.c */
enum as_code db_pg_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                        struct as_err *err) AS_WUR;
enum as_code db_pg_testing_approver_unsent(struct db *db, int64_t approval_id, const char *email,
                                           struct as_err *err) AS_WUR;

/* Conditional Access (db/db_ca.h) */
enum as_code db_pg_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     const json_t *policy, int managed, struct as_err *err) AS_WUR;
enum as_code db_pg_ca_policies_prune(struct db_conn *c, int64_t sync_id,
                                         struct as_err *err) AS_WUR;
enum as_code db_pg_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                           void *ud, struct as_err *err) AS_WUR;
enum as_code db_pg_ca_record_get(struct db *db, const char *name, json_t **out,
                                     struct as_err *err) AS_WUR;
enum as_code db_pg_ca_record_put(struct db *db, const char *name, const char *policy_id,
                                     const char *group_id, const char *body_hash,
                                     const json_t *body, int64_t now_ms,
                                     struct as_err *err) AS_WUR;

/* Mailbox plans and the organisation config (db/db_plans.h) */
enum as_code db_pg_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms, const json_t *plan,
                          struct as_err *err) AS_WUR;
enum as_code db_pg_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err) AS_WUR;
enum as_code db_pg_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud), void *ud,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                                struct as_err *err) AS_WUR;
enum as_code db_pg_org_config_get(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_pg_org_write_put(struct db *db, const char *key, const char *setting,
                               const json_t *value, int64_t run_id, int64_t now_ms,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_org_write_get(struct db *db, const char *key, json_t **out,
                               struct as_err *err) AS_WUR;
enum as_code db_pg_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                   struct as_err *err) AS_WUR;
enum as_code db_pg_org_writes_foreach(struct db *db, int limit,
                                    int (*cb)(const json_t *row, void *ud), void *ud,
                                    struct as_err *err) AS_WUR;

/* signin.c */
enum as_code db_pg_signin_flow_add(struct db *db, const struct db_signin_flow *f,
                                   struct as_err *err) AS_WUR;
enum as_code db_pg_signin_flow_take(struct db *db, const char *state_hash,
                                    struct db_signin_flow *out, struct as_err *err) AS_WUR;
enum as_code db_pg_signin_session_add(struct db *db, struct db_signin_session *s,
                                      struct as_err *err) AS_WUR;
enum as_code db_pg_signin_session_find(struct db *db, const char *session_hash,
                                       struct db_signin_session *out, struct as_err *err) AS_WUR;

#endif
