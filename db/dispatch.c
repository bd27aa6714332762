/*
 * dispatch.c - every operation of db/db*.h that a backend implements, passed
 * to the backend of the handle it is given (db/backend.h): one indirect
 * call, nothing else.  db_open() is in db/common.c.
 */
#include "db/backend.h"

void db_close(struct db *db)
{
    if (db)
        db_ops(db)->close(db);
}

const char *db_path(const struct db *db)
{
    return db_ops(db)->path(db);
}

int db_schema_version(struct db *db)
{
    return db_ops(db)->schema_version(db);
}

enum as_code db_write_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    return db_ops(db)->write_begin(db, conn, err);
}

enum as_code db_read_begin(struct db *db, struct db_conn **conn, struct as_err *err)
{
    return db_ops(db)->read_begin(db, conn, err);
}

void db_read_end(struct db *db, struct db_conn *conn)
{
    db_ops(db)->read_end(db, conn);
}

enum as_code db_write_end(struct db *db, enum as_code rc, struct as_err *err)
{
    return db_ops(db)->write_end(db, rc, err);
}

enum as_code db_savepoint_begin(struct db_conn *conn, struct as_err *err)
{
    return db_ops(conn)->savepoint_begin(conn, err);
}

enum as_code db_savepoint_end(struct db_conn *conn, enum as_code rc, struct as_err *err)
{
    return db_ops(conn)->savepoint_end(conn, rc, err);
}

const char *db_backend_name(const struct db *db)
{
    return db_ops(db)->name;
}

enum as_code db_ping(struct db *db, struct as_err *err)
{
    return db_ops(db)->ping(db, err);
}

enum as_code db_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w, int64_t now,
                             int64_t *id, struct as_err *err)
{
    return db_ops(conn)->workflow_put(conn, w, now, id, err);
}

enum as_code db_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                             struct as_err *err)
{
    return db_ops(conn)->workflow_get(conn, hash, definition, err);
}

enum as_code db_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                           int64_t *run_id, struct as_err *err)
{
    return db_ops(conn)->run_insert(conn, r, now, run_id, err);
}

enum as_code db_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                               const char *error, int64_t now, struct as_err *err)
{
    return db_ops(conn)->run_set_status(conn, run_id, status, error, now, err);
}

enum as_code db_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now, struct as_err *err)
{
    return db_ops(conn)->run_cancel(conn, run_id, now, err);
}

enum as_code db_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason, int64_t now,
                              struct as_err *err)
{
    return db_ops(conn)->run_supersede(conn, run_id, reason, now, err);
}

enum as_code db_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                 db_run_open_cb cb, void *ud, struct as_err *err)
{
    return db_ops(conn)->runs_open_of_kpi(conn, kpi, workflow, cb, ud, err);
}

enum as_code db_run_retry(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                          struct as_err *err)
{
    return db_ops(conn)->run_retry(conn, run_id, now, exec_id, err);
}

enum as_code db_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                           struct as_err *err)
{
    return db_ops(conn)->run_status(conn, run_id, buf, size, err);
}

enum as_code db_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err)
{
    return db_ops(conn)->runs_count_open(conn, n, err);
}

enum as_code db_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                          void *ud, struct as_err *err)
{
    return db_ops(conn)->runs_list(conn, f, cb, ud, err);
}

enum as_code db_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                        struct as_err *err)
{
    return db_ops(conn)->run_get(conn, run_id, cb, ud, err);
}

enum as_code db_exec_insert(struct db_conn *conn, int64_t run_id, const char *step, int64_t due_at,
                            int64_t now, int64_t *exec_id, struct as_err *err)
{
    return db_ops(conn)->exec_insert(conn, run_id, step, due_at, now, exec_id, err);
}

enum as_code db_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                    int visit_hint, int64_t now, const char *owner,
                                    int64_t lease_until, int queued, struct db_claim *out,
                                    struct as_err *err)
{
    return db_ops(conn)->exec_insert_claimed(conn, run_id, step, visit_hint, now, owner,
                                             lease_until, queued, out, err);
}

enum as_code db_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                         struct db_claim *out, size_t *n, struct as_err *err)
{
    return db_ops(conn)->exec_due(conn, now, owner, max, out, n, err);
}

enum as_code db_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner, int64_t now,
                          int64_t lease_until, struct as_err *err)
{
    return db_ops(conn)->exec_take(conn, c, owner, now, lease_until, err);
}

enum as_code db_exec_record_held(struct db_conn *conn, const struct db_exec_result *r, char **held,
                                 struct as_err *err)
{
    return db_ops(conn)->exec_record_held(conn, r, held, err);
}

enum as_code db_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner, int attempt,
                             struct as_err *err)
{
    return db_ops(conn)->exec_release(conn, exec_id, owner, attempt, err);
}

enum as_code db_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                            struct as_err *err)
{
    return db_ops(conn)->exec_resume(conn, exec_id, payload, err);
}

enum as_code db_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                 struct db_claim *out, struct as_err *err)
{
    return db_ops(conn)->exec_end_waiting(conn, end, out, err);
}

enum as_code db_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                              struct as_err *err)
{
    return db_ops(conn)->exec_next_due(conn, owner, due, err);
}

enum as_code db_exec_lease_owners(struct db_conn *conn, int (*cb)(void *ud, const char *owner),
                                  void *ud, struct as_err *err)
{
    return db_ops(conn)->exec_lease_owners(conn, cb, ud, err);
}

enum as_code db_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                  struct as_err *err)
{
    return db_ops(conn)->exec_expire_owner(conn, owner, n, err);
}

enum as_code db_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                               int64_t *clock_ms, struct as_err *err)
{
    return db_ops(db)->node_heartbeat(db, owner, timeout_ms, clock_ms, err);
}

enum as_code db_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                              struct db_wakeups **out, struct as_err *err)
{
    return db_ops(db)->wakeups_start(db, wake, ud, out, err);
}

void db_wakeups_stop(struct db_wakeups *w)
{
    if (w)
        db_ops(w)->wakeups_stop(w);
}

enum as_code db_leader_try(struct db *db, struct db_leader **l, const char *role, int *leader,
                           struct as_err *err)
{
    return db_ops(db)->leader_try(db, l, role, leader, err);
}

void db_leader_release(struct db_leader *l)
{
    if (l)
        db_ops(l)->leader_release(l);
}

enum as_code db_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                          struct as_err *err)
{
    return db_ops(conn)->run_execs(conn, run_id, cb, ud, err);
}

enum as_code db_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                          void *ud, struct as_err *err)
{
    return db_ops(conn)->run_scope(conn, run_id, input, cb, ud, err);
}

enum as_code db_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                     int64_t run_id, int64_t exec_id, const char *type,
                                     const char *data, const char *data_digest, int64_t now,
                                     struct as_err *err)
{
    if (!chain) /* inside a joined transaction: its chain cache (db_join) */
        chain = db_joined_chain(conn);
    return db_ops(conn)->event_append_chained(conn, chain, run_id, exec_id, type, data, data_digest,
                                              now, err);
}

enum as_code db_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                           struct as_err *err)
{
    return db_ops(conn)->run_events(conn, run_id, cb, ud, err);
}

enum as_code db_checkpointer_start(struct db *db, struct db_checkpointer **out, struct as_err *err)
{
    return db_ops(db)->checkpointer_start(db, out, err);
}

void db_checkpointer_stop(struct db_checkpointer *ck)
{
    if (ck)
        db_ops(ck)->checkpointer_stop(ck);
}

enum as_code db_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                     struct as_err *err)
{
    return db_ops(db)->testing_state_digest(db, digest, err);
}

enum as_code db_testing_approver_unsent(struct db *db, int64_t approval_id, const char *email,
                                        struct as_err *err)
{
    return db_ops(db)->testing_approver_unsent(db, approval_id, email, err);
}

enum as_code db_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                 int *created, struct as_err *err)
{
    return db_ops(db)->approvals_ensure(db, a, id, created, err);
}

enum as_code db_approval_view(struct db_conn *c, int64_t id, json_t **out, struct as_err *err)
{
    return db_ops(c)->approval_view(c, id, out, err);
}

enum as_code db_approvals_get(struct db *db, int64_t id, json_t **out, struct as_err *err)
{
    return db_ops(db)->approvals_get(db, id, out, err);
}

enum as_code db_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                   struct as_err *err)
{
    return db_ops(db)->approvals_by_token(db, token_hash, out, err);
}

enum as_code db_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                   const char *token_hash, int64_t now, int *seq,
                                   struct as_err *err)
{
    return db_ops(db)->approvals_add_link(db, approver_id, purpose, token_hash, now, seq, err);
}

enum as_code db_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                    struct as_err *err)
{
    return db_ops(db)->approvals_link_sent(db, token_hash, now, err);
}

enum as_code db_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                       int64_t next_reminder_at, struct as_err *err)
{
    return db_ops(db)->approvals_set_reminded(db, approval_id, reminder_no, next_reminder_at, err);
}

enum as_code db_approvals_expire(struct db *db, int64_t approval_id, int64_t now, int *changed,
                                 struct as_err *err)
{
    return db_ops(db)->approvals_expire(db, approval_id, now, changed, err);
}

enum as_code db_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                        struct as_err *err)
{
    return db_ops(db)->approvals_set_escalated(db, approval_id, now, err);
}

enum as_code db_approvals_clear_resume(struct db *db, int64_t approval_id, struct as_err *err)
{
    return db_ops(db)->approvals_clear_resume(db, approval_id, err);
}

enum as_code db_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                              struct db_approval_state *s, struct as_err *err)
{
    return db_ops(c)->approval_load(c, token_hash, approval_id, s, err);
}

enum as_code db_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                struct as_err *err)
{
    return db_ops(c)->approval_answer(c, a, err);
}

enum as_code db_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                    struct as_err *err)
{
    return db_ops(c)->approval_unapproved(c, approval_id, n, err);
}

enum as_code db_approval_next_queued(struct db_conn *c, int64_t approval_id, int64_t *approver_id,
                                     struct as_err *err)
{
    return db_ops(c)->approval_next_queued(c, approval_id, approver_id, err);
}

enum as_code db_approval_activate(struct db_conn *c, int64_t approver_id, struct as_err *err)
{
    return db_ops(c)->approval_activate(c, approver_id, err);
}

enum as_code db_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                               const struct db_approval_answer *a, int open_left,
                               struct as_err *err)
{
    return db_ops(c)->approval_close(c, approval_id, status, a, open_left, err);
}

enum as_code db_approval_approvers(struct db_conn *c, int64_t approval_id,
                                   int (*cb)(void *ud, const struct db_approver_row *r), void *ud,
                                   struct as_err *err)
{
    return db_ops(c)->approval_approvers(c, approval_id, cb, ud, err);
}

enum as_code db_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
                                     json_t **out, struct as_err *err)
{
    return db_ops(db)->approvals_list_where(db, f, out, err);
}

enum as_code db_approvals_stats(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->approvals_stats(db, out, err);
}

enum as_code db_approvals_secret(struct db *db, const char *name, unsigned char *out, size_t len,
                                 struct as_err *err)
{
    return db_ops(db)->approvals_secret(db, name, out, len, err);
}

enum as_code db_mail_claim(struct db *db, const char *key, const char *message_id,
                           const char *transport, int64_t date_ms, const char *owner,
                           int64_t now_ms, int64_t lease_until, int max_resends,
                           int (*owner_alive)(const char *owner, void *ud), void *ud,
                           struct db_mail_claim *out, struct as_err *err)
{
    return db_ops(db)->mail_claim(db, key, message_id, transport, date_ms, owner, now_ms,
                                  lease_until, max_resends, owner_alive, ud, out, err);
}

enum as_code db_mail_finish(struct db *db, const char *key, const char *state, const json_t *result,
                            const char *error, int64_t now_ms, struct as_err *err)
{
    return db_ops(db)->mail_finish(db, key, state, result, error, now_ms, err);
}

enum as_code db_mail_get(struct db *db, const char *key, json_t **row, struct as_err *err)
{
    return db_ops(db)->mail_get(db, key, row, err);
}

enum as_code db_mail_step_source(struct db *db, int64_t run_id, const char *step, json_t **params,
                                 char **source_path, struct as_err *err)
{
    return db_ops(db)->mail_step_source(db, run_id, step, params, source_path, err);
}

enum as_code db_kpi_put(struct db *db, const char *name, const char *report, const char *definition,
                        const char *schedule, const char *timezone, int replace, int64_t now,
                        int64_t *id, struct as_err *err)
{
    return db_ops(db)->kpi_put(db, name, report, definition, schedule, timezone, replace, now, id,
                               err);
}

enum as_code db_kpi_get(struct db *db, const char *name, json_t **out, struct as_err *err)
{
    return db_ops(db)->kpi_get(db, name, out, err);
}

enum as_code db_kpi_list(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->kpi_list(db, out, err);
}

enum as_code db_kpi_delete(struct db *db, const char *name, struct as_err *err)
{
    return db_ops(db)->kpi_delete(db, name, err);
}

enum as_code db_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                              int64_t exempt, const json_t *breakdown, struct as_err *err)
{
    return db_ops(db)->kpi_value_add(db, kpi_id, ts, value, exempt, breakdown, err);
}

enum as_code db_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                           struct as_err *err)
{
    return db_ops(db)->kpi_values(db, kpi_id, limit, out, err);
}

enum as_code db_kpi_open_runs(struct db *db, const char *workflow, int64_t *n, struct as_err *err)
{
    return db_ops(db)->kpi_open_runs(db, workflow, n, err);
}

enum as_code db_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                              int *created, struct as_err *err)
{
    return db_ops(db)->exception_add(db, ex, id, created, err);
}

enum as_code db_exception_list(struct db *db, enum db_exception_filter filter, const char *upn,
                               int64_t now, json_t **out, struct as_err *err)
{
    return db_ops(db)->exception_list(db, filter, upn, now, out, err);
}

enum as_code db_exception_remove(struct db *db, int64_t id, const char *by, const char *reason,
                                 int64_t now, struct as_err *err)
{
    return db_ops(db)->exception_remove(db, id, by, reason, now, err);
}

enum as_code db_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb, void *ud,
                                         struct as_err *err)
{
    return db_ops(db)->exception_foreach_active(db, now, cb, ud, err);
}

enum as_code db_sched_list(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->sched_list(db, out, err);
}

enum as_code db_sched_claim(struct db *db, int64_t kpi_id, int64_t prev, int64_t scheduled_for,
                            int64_t missed, int64_t now, int64_t *run_id, struct as_err *err)
{
    return db_ops(db)->sched_claim(db, kpi_id, prev, scheduled_for, missed, now, run_id, err);
}

enum as_code db_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                             const char *error, int64_t now, struct as_err *err)
{
    return db_ops(db)->sched_finish(db, run_id, ok, result, error, now, err);
}

enum as_code db_sched_interrupted(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->sched_interrupted(db, out, err);
}

enum as_code db_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                           struct as_err *err)
{
    return db_ops(db)->sched_runs(db, kpi_id, limit, out, err);
}

enum as_code db_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                  struct as_err *err)
{
    return db_ops(db)->tenant_sync_start(db, now_ms, sync_id, err);
}

enum as_code db_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                   const char *status, const json_t *summary, const char *error,
                                   struct as_err *err)
{
    return db_ops(db)->tenant_sync_finish(db, sync_id, now_ms, status, summary, error, err);
}

enum as_code db_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                const json_t *user, struct as_err *err)
{
    return db_ops(c)->tenant_user_put(c, sync_id, now_ms, user, err);
}

enum as_code db_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                   struct as_err *err)
{
    return db_ops(c)->tenant_users_prune(c, sync_id, removed, err);
}

enum as_code db_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                               const json_t *mbx, int *matched, struct as_err *err)
{
    return db_ops(c)->tenant_cas_put(c, sync_id, now_ms, mbx, matched, err);
}

enum as_code db_tenant_cas_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    return db_ops(c)->tenant_cas_prune(c, sync_id, err);
}

enum as_code db_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                 const char *upn, int pop3, int imap4, int smtp,
                                 const char *last_activity, const char *report_date,
                                 struct as_err *err)
{
    return db_ops(c)->tenant_usage_put(c, sync_id, now_ms, upn, pop3, imap4, smtp, last_activity,
                                       report_date, err);
}

enum as_code db_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                  struct as_err *err)
{
    return db_ops(c)->tenant_usage_done(c, sync_id, now_ms, err);
}

enum as_code db_tenant_org_put_transport(struct db_conn *c, int64_t now_ms, const json_t *transport,
                                         struct as_err *err)
{
    return db_ops(c)->tenant_org_put_transport(c, now_ms, transport, err);
}

enum as_code db_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                  struct as_err *err)
{
    return db_ops(c)->tenant_signin_put(c, sync_id, signin, err);
}

enum as_code db_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                    struct as_err *err)
{
    return db_ops(c)->tenant_signins_done(c, older_than_ms, now_ms, err);
}

enum as_code db_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                     void *ud, struct as_err *err)
{
    return db_ops(db)->tenant_users_foreach(db, cb, ud, err);
}

enum as_code db_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                           int (*cb)(const json_t *row, void *ud), void *ud,
                                           struct as_err *err)
{
    return db_ops(db)->tenant_users_foreach_after(db, after_lower, limit, cb, ud, err);
}

enum as_code db_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                            int (*cb)(const json_t *row, void *ud), void *ud,
                                            struct as_err *err)
{
    return db_ops(db)->tenant_users_foreach_sorted(db, sort_key, desc, cb, ud, err);
}

enum as_code db_tenant_org_transport(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->tenant_org_transport(db, out, err);
}

enum as_code db_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                struct as_err *err)
{
    return db_ops(db)->tenant_user_row(db, upn_or_id, out, err);
}

enum as_code db_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                       int (*cb)(const json_t *row, void *ud), void *ud,
                                       struct as_err *err)
{
    return db_ops(db)->tenant_signins_foreach(db, q, cb, ud, err);
}

enum as_code db_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                           size_t status_size, struct as_err *err)
{
    return db_ops(db)->tenant_last_completed_sync(db, finished_at, status, status_size, err);
}

enum as_code db_tenant_last_sync(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->tenant_last_sync(db, out, err);
}

/* ---- evidence of Basic use and drift ------------------------------------------ */

enum as_code db_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows, size_t n,
                                  int64_t now_ms, struct as_err *err)
{
    return db_ops(db)->smtp_auth_replace(db, rows, n, now_ms, err);
}

enum as_code db_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                int64_t run_id, int64_t now_ms, struct as_err *err)
{
    return db_ops(db)->disabled_record(db, upn, protocols, run_id, now_ms, err);
}

enum as_code db_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                           struct as_err *err)
{
    return db_ops(c)->drift_scan(c, now_ms, changes, err);
}

/* ---- the REST API ------------------------------------------------------------- */

enum as_code db_api_token_add(struct db *db, struct db_api_token *t, struct as_err *err)
{
    return db_ops(db)->api_token_add(db, t, err);
}

enum as_code db_api_token_find(struct db *db, const char *token_hash, struct db_api_token *out,
                               struct as_err *err)
{
    return db_ops(db)->api_token_find(db, token_hash, out, err);
}

enum as_code db_api_token_list(struct db *db, int include_revoked, json_t **out,
                               struct as_err *err)
{
    return db_ops(db)->api_token_list(db, include_revoked, out, err);
}

enum as_code db_api_token_revoke(struct db *db, const char *name, const char *by, int64_t now,
                                 struct db_api_token *out, struct as_err *err)
{
    return db_ops(db)->api_token_revoke(db, name, by, now, out, err);
}

enum as_code db_workflows_list(struct db_conn *conn, const char *name, const char *after, int limit,
                               db_workflow_cb cb, void *ud, struct as_err *err)
{
    return db_ops(conn)->workflows_list(conn, name, after, limit, cb, ud, err);
}

enum as_code db_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                               json_t **out, struct as_err *err)
{
    return db_ops(db)->approvals_page(db, q, out, err);
}

/* ---- Conditional Access (db_ca.h) ------------------------------------------------ */

enum as_code db_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                              const json_t *policy, int managed, struct as_err *err)
{
    return db_ops(c)->ca_policy_put(c, sync_id, now_ms, policy, managed, err);
}

enum as_code db_ca_policies_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    return db_ops(c)->ca_policies_prune(c, sync_id, err);
}

enum as_code db_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                    void *ud, struct as_err *err)
{
    return db_ops(db)->ca_policies_foreach(db, cb, ud, err);
}

enum as_code db_ca_record_get(struct db *db, const char *name, json_t **out, struct as_err *err)
{
    return db_ops(db)->ca_record_get(db, name, out, err);
}

enum as_code db_ca_record_put(struct db *db, const char *name, const char *policy_id,
                              const char *group_id, const char *body_hash, const json_t *body,
                              int64_t now_ms, struct as_err *err)
{
    return db_ops(db)->ca_record_put(db, name, policy_id, group_id, body_hash, body, now_ms, err);
}

/* ---- the console's sessions ---------------------------------------------------- */

enum as_code db_console_session_add(struct db *db, struct db_console_session *s, const char *via,
                                    struct as_err *err)
{
    return db_ops(db)->console_session_add(db, s, via, err);
}

enum as_code db_console_session_find(struct db *db, const char *session_hash,
                                     struct db_console_session *out, struct as_err *err)
{
    return db_ops(db)->console_session_find(db, session_hash, out, err);
}

enum as_code db_console_session_delete(struct db *db, const char *session_hash,
                                       struct db_console_session *out, struct as_err *err)
{
    return db_ops(db)->console_session_delete(db, session_hash, out, err);
}

/* ---- mailbox plans and the organisation config (db_plans.h) ---------------------- */

enum as_code db_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms, const json_t *plan,
                         struct as_err *err)
{
    return db_ops(c)->plan_put(c, sync_id, now_ms, plan, err);
}

enum as_code db_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err)
{
    return db_ops(c)->plans_prune(c, sync_id, err);
}

enum as_code db_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud), void *ud,
                              struct as_err *err)
{
    return db_ops(db)->plans_foreach(db, cb, ud, err);
}

enum as_code db_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                               struct as_err *err)
{
    return db_ops(c)->org_config_put(c, now_ms, config, err);
}

enum as_code db_org_config_get(struct db *db, json_t **out, struct as_err *err)
{
    return db_ops(db)->org_config_get(db, out, err);
}

enum as_code db_org_write_put(struct db *db, const char *key, const char *setting,
                              const json_t *value, int64_t run_id, int64_t now_ms,
                              struct as_err *err)
{
    return db_ops(db)->org_write_put(db, key, setting, value, run_id, now_ms, err);
}

enum as_code db_org_write_get(struct db *db, const char *key, json_t **out, struct as_err *err)
{
    return db_ops(db)->org_write_get(db, key, out, err);
}

enum as_code db_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                  struct as_err *err)
{
    return db_ops(db)->org_write_visible(db, key, now_ms, err);
}

enum as_code db_org_writes_foreach(struct db *db, int limit,
                                   int (*cb)(const json_t *row, void *ud), void *ud,
                                   struct as_err *err)
{
    return db_ops(db)->org_writes_foreach(db, limit, cb, ud, err);
}

/* ---- sign-in with Entra ID ------------------------------------------------------- */

enum as_code db_signin_flow_add(struct db *db, const struct db_signin_flow *f, struct as_err *err)
{
    return db_ops(db)->signin_flow_add(db, f, err);
}

enum as_code db_signin_flow_take(struct db *db, const char *state_hash,
                                 struct db_signin_flow *out, struct as_err *err)
{
    return db_ops(db)->signin_flow_take(db, state_hash, out, err);
}

enum as_code db_signin_session_add(struct db *db, struct db_signin_session *s, struct as_err *err)
{
    return db_ops(db)->signin_session_add(db, s, err);
}

enum as_code db_signin_session_find(struct db *db, const char *session_hash,
                                    struct db_signin_session *out, struct as_err *err)
{
    return db_ops(db)->signin_session_find(db, session_hash, out, err);
}
