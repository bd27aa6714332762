/*
 * ops.h - private to the SQLite store: its implementation of every
 * operation of db/db*.h, the entries of db_sqlite_backend (db/backend.h,
 * table in backend.c).  Each is the contract of the db_* function of the
 * same name after the prefix; callers above db/ reach them through that
 * function, and the SQLite store's own files call each other directly.
 */
#ifndef ASSENT_DB_SQLITE_OPS_H
#define ASSENT_DB_SQLITE_OPS_H

#include "db/backend.h"

enum as_code db_sqlite_open(const char *path, const struct db_options *opts, struct db **out,
                            struct as_err *err) AS_WUR;
void db_sqlite_close(struct db *db);
const char *db_sqlite_path(const struct db *db);
int db_sqlite_schema_version(struct db *db);
enum as_code db_sqlite_write_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
enum as_code db_sqlite_read_begin(struct db *db, struct db_conn **conn, struct as_err *err) AS_WUR;
void db_sqlite_read_end(struct db *db, struct db_conn *conn);
enum as_code db_sqlite_write_end(struct db *db, enum as_code rc, struct as_err *err) AS_WUR;
enum as_code db_sqlite_savepoint_begin(struct db_conn *conn, struct as_err *err) AS_WUR;
enum as_code db_sqlite_savepoint_end(struct db_conn *conn, enum as_code rc,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_ping(struct db *db, struct as_err *err) AS_WUR;
enum as_code db_sqlite_workflow_put(struct db_conn *conn, const struct db_workflow_rec *w,
                                    int64_t now, int64_t *id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_workflow_get(struct db_conn *conn, const char *hash, char **definition,
                                    struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_insert(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                                  int64_t *run_id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_set_status(struct db_conn *conn, int64_t run_id, const char *status,
                                      const char *error, int64_t now, struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_cancel(struct db_conn *conn, int64_t run_id, int64_t now,
                                  struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_supersede(struct db_conn *conn, int64_t run_id, const char *reason,
                                     int64_t now, struct as_err *err) AS_WUR;
enum as_code db_sqlite_runs_open_of_kpi(struct db_conn *conn, const char *kpi, const char *workflow,
                                        db_run_open_cb cb, void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_retry(struct db_conn *conn, int64_t run_id, int64_t now,
                                 int64_t *exec_id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_status(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                                  struct as_err *err) AS_WUR;
enum as_code db_sqlite_runs_count_open(struct db_conn *conn, int64_t *n, struct as_err *err) AS_WUR;
enum as_code db_sqlite_runs_list(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                                 void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_get(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_insert(struct db_conn *conn, int64_t run_id, const char *step,
                                   int64_t due_at, int64_t now, int64_t *exec_id,
                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_insert_claimed(struct db_conn *conn, int64_t run_id, const char *step,
                                           int visit_hint, int64_t now, const char *owner,
                                           int64_t lease_until, int queued, struct db_claim *out,
                                           struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_due(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                                struct db_claim *out, size_t *n, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_take(struct db_conn *conn, struct db_claim *c, const char *owner,
                                 int64_t now, int64_t lease_until, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_record_held(struct db_conn *conn, const struct db_exec_result *r,
                                        char **held, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_release(struct db_conn *conn, int64_t exec_id, const char *owner,
                                    int attempt, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_resume(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_end_waiting(struct db_conn *conn, const struct db_exec_end *end,
                                        struct db_claim *out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_next_due(struct db_conn *conn, const char *owner, int64_t *due,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_lease_owners(struct db_conn *conn,
                                         int (*cb)(void *ud, const char *owner), void *ud,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_exec_expire_owner(struct db_conn *conn, const char *owner, int64_t *n,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_node_heartbeat(struct db *db, const char *owner, int64_t timeout_ms,
                                      int64_t *clock_ms, struct as_err *err) AS_WUR;
enum as_code db_sqlite_wakeups_start(struct db *db, void (*wake)(void *ud), void *ud,
                                     struct db_wakeups **out, struct as_err *err) AS_WUR;
void db_sqlite_wakeups_stop(struct db_wakeups *w);
enum as_code db_sqlite_leader_try(struct db *db, struct db_leader **l, const char *role, int *leader,
                           struct as_err *err) AS_WUR;
void db_sqlite_leader_release(struct db_leader *l);
enum as_code db_sqlite_run_execs(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                                 struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_scope(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                                 void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_event_append_chained(struct db_conn *conn, struct db_event_chain *chain,
                                            int64_t run_id, int64_t exec_id, const char *type,
                                            const char *data, const char *data_digest, int64_t now,
                                            struct as_err *err) AS_WUR;
enum as_code db_sqlite_run_events(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                                  struct as_err *err) AS_WUR;
enum as_code db_sqlite_checkpointer_start(struct db *db, struct db_checkpointer **out,
                                          struct as_err *err) AS_WUR;
void db_sqlite_checkpointer_stop(struct db_checkpointer *ck);
enum as_code db_sqlite_testing_state_digest(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                            struct as_err *err) AS_WUR;
enum as_code db_sqlite_testing_approver_unsent(struct db *db, int64_t approval_id,
                                               const char *email, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_ensure(struct db *db, const struct approval_new *a, int64_t *id,
                                        int *created, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_view(struct db_conn *c, int64_t id, json_t **out,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_get(struct db *db, int64_t id, json_t **out,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                          struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_add_link(struct db *db, int64_t approver_id, const char *purpose,
                                          const char *token_hash, int64_t now, int *seq,
                                          struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                           struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_set_reminded(struct db *db, int64_t approval_id, int reminder_no,
                                              int64_t next_reminder_at, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_expire(struct db *db, int64_t approval_id, int64_t now,
                                        int *changed, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_set_escalated(struct db *db, int64_t approval_id, int64_t now,
                                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_clear_resume(struct db *db, int64_t approval_id,
                                              struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_load(struct db_conn *c, const char *token_hash, int64_t approval_id,
                                     struct db_approval_state *s, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                       struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                           struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_next_queued(struct db_conn *c, int64_t approval_id,
                                            int64_t *approver_id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_activate(struct db_conn *c, int64_t approver_id,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_close(struct db_conn *c, int64_t approval_id, const char *status,
                                      const struct db_approval_answer *a, int open_left,
                                      struct as_err *err) AS_WUR;
enum as_code db_sqlite_approval_approvers(struct db_conn *c, int64_t approval_id,
                                          int (*cb)(void *ud, const struct db_approver_row *r),
                                          void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_list_where(struct db *db, const struct db_approvals_filter *f,
                                            json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_stats(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_secret(struct db *db, const char *name, unsigned char *out,
                                        size_t len, struct as_err *err) AS_WUR;
enum as_code db_sqlite_mail_claim(struct db *db, const char *key, const char *message_id,
                                  const char *transport, int64_t date_ms, const char *owner,
                                  int64_t now_ms, int64_t lease_until, int max_resends,
                                  int (*owner_alive)(const char *owner, void *ud), void *ud,
                                  struct db_mail_claim *out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_mail_finish(struct db *db, const char *key, const char *state,
                                   const json_t *result, const char *error, int64_t now_ms,
                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_mail_get(struct db *db, const char *key, json_t **row,
                                struct as_err *err) AS_WUR;
enum as_code db_sqlite_mail_step_source(struct db *db, int64_t run_id, const char *step,
                                        json_t **params, char **source_path,
                                        struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_put(struct db *db, const char *name, const char *report,
                               const char *definition, const char *schedule, const char *timezone,
                               int replace, int64_t now, int64_t *id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_get(struct db *db, const char *name, json_t **out,
                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_delete(struct db *db, const char *name, struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                     int64_t exempt, const json_t *breakdown,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                  struct as_err *err) AS_WUR;
enum as_code db_sqlite_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_exception_add(struct db *db, const struct db_exception *ex, int64_t *id,
                                     int *created, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exception_list(struct db *db, enum db_exception_filter filter,
                                      const char *upn, int64_t now, json_t **out,
                                      struct as_err *err) AS_WUR;
enum as_code db_sqlite_exception_remove(struct db *db, int64_t id, const char *by,
                                        const char *reason, int64_t now, struct as_err *err) AS_WUR;
enum as_code db_sqlite_exception_foreach_active(struct db *db, int64_t now, db_exception_cb cb,
                                                void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_sched_list(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_sched_claim(struct db *db, int64_t kpi_id, int64_t prev,
                                   int64_t scheduled_for, int64_t missed, int64_t now,
                                   int64_t *run_id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_sched_finish(struct db *db, int64_t run_id, int ok, const json_t *result,
                                    const char *error, int64_t now, struct as_err *err) AS_WUR;
enum as_code db_sqlite_sched_interrupted(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                  struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                          const char *status, const json_t *summary,
                                          const char *error, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                       const json_t *user, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                          struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                      const json_t *mbx, int *matched, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_cas_prune(struct db_conn *c, int64_t sync_id,
                                        struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                        const char *upn, int pop3, int imap4, int smtp,
                                        const char *last_activity, const char *report_date,
                                        struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                                const json_t *transport, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_signin_put(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_signins_done(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                           struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_users_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                            void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_users_foreach_after(struct db *db, const char *after_lower, int limit,
                                                  int (*cb)(const json_t *row, void *ud),
                                                  void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_users_foreach_sorted(struct db *db, const char *sort_key, int desc,
                                                   int (*cb)(const json_t *row, void *ud), void *ud,
                                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_org_transport(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                       struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_signins_foreach(struct db *db, const struct db_tenant_signin_query *q,
                                              int (*cb)(const json_t *row, void *ud), void *ud,
                                              struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_last_completed_sync(struct db *db, int64_t *finished_at, char *status,
                                                  size_t status_size, struct as_err *err) AS_WUR;
enum as_code db_sqlite_tenant_last_sync(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_smtp_auth_replace(struct db *db, const struct db_smtp_auth_row *rows, size_t n,
                                  int64_t now_ms, struct as_err *err) AS_WUR;
enum as_code db_sqlite_disabled_record(struct db *db, const char *upn, const char *const *protocols,
                                int64_t run_id, int64_t now_ms, struct as_err *err) AS_WUR;
enum as_code db_sqlite_drift_scan(struct db_conn *c, int64_t now_ms, json_t **changes,
                           struct as_err *err) AS_WUR;
/* The REST API */
enum as_code db_sqlite_api_token_add(struct db *db, struct db_api_token *t,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_api_token_find(struct db *db, const char *token_hash,
                                      struct db_api_token *out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_api_token_list(struct db *db, int include_revoked, json_t **out,
                                      struct as_err *err) AS_WUR;
enum as_code db_sqlite_api_token_revoke(struct db *db, const char *name, const char *by,
                                        int64_t now, struct db_api_token *out,
                                        struct as_err *err) AS_WUR;
enum as_code db_sqlite_workflows_list(struct db_conn *conn, const char *name, const char *after,
                                      int limit, db_workflow_cb cb, void *ud,
                                      struct as_err *err) AS_WUR;
enum as_code db_sqlite_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                                      json_t **out, struct as_err *err) AS_WUR;
/* The console's sessions */
enum as_code db_sqlite_console_session_add(struct db *db, struct db_console_session *s,
                                           const char *via, struct as_err *err) AS_WUR;
enum as_code db_sqlite_console_session_find(struct db *db, const char *session_hash,
                                            struct db_console_session *out,
                                            struct as_err *err) AS_WUR;
enum as_code db_sqlite_console_session_delete(struct db *db, const char *session_hash,
                                              struct db_console_session *out,
                                              struct as_err *err) AS_WUR;

/* Conditional Access (db/db_ca.h) */
enum as_code db_sqlite_ca_policy_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     const json_t *policy, int managed, struct as_err *err) AS_WUR;
enum as_code db_sqlite_ca_policies_prune(struct db_conn *c, int64_t sync_id,
                                         struct as_err *err) AS_WUR;
enum as_code db_sqlite_ca_policies_foreach(struct db *db, int (*cb)(const json_t *row, void *ud),
                                           void *ud, struct as_err *err) AS_WUR;
enum as_code db_sqlite_ca_record_get(struct db *db, const char *name, json_t **out,
                                     struct as_err *err) AS_WUR;
enum as_code db_sqlite_ca_record_put(struct db *db, const char *name, const char *policy_id,
                                     const char *group_id, const char *body_hash,
                                     const json_t *body, int64_t now_ms,
                                     struct as_err *err) AS_WUR;

/* Mailbox plans and the organisation config (db/db_plans.h) */
enum as_code db_sqlite_plan_put(struct db_conn *c, int64_t sync_id, int64_t now_ms, const json_t *plan,
                          struct as_err *err) AS_WUR;
enum as_code db_sqlite_plans_prune(struct db_conn *c, int64_t sync_id, struct as_err *err) AS_WUR;
enum as_code db_sqlite_plans_foreach(struct db *db, int (*cb)(const json_t *row, void *ud), void *ud,
                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_config_put(struct db_conn *c, int64_t now_ms, const json_t *config,
                                struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_config_get(struct db *db, json_t **out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_write_put(struct db *db, const char *key, const char *setting,
                               const json_t *value, int64_t run_id, int64_t now_ms,
                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_write_get(struct db *db, const char *key, json_t **out,
                               struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_write_visible(struct db *db, const char *key, int64_t now_ms,
                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_org_writes_foreach(struct db *db, int limit,
                                    int (*cb)(const json_t *row, void *ud), void *ud,
                                    struct as_err *err) AS_WUR;

/* db_signin.c */
enum as_code db_sqlite_signin_flow_add(struct db *db, const struct db_signin_flow *f,
                                   struct as_err *err) AS_WUR;
enum as_code db_sqlite_signin_flow_take(struct db *db, const char *state_hash,
                                    struct db_signin_flow *out, struct as_err *err) AS_WUR;
enum as_code db_sqlite_signin_session_add(struct db *db, struct db_signin_session *s,
                                      struct as_err *err) AS_WUR;
enum as_code db_sqlite_signin_session_find(struct db *db, const char *session_hash,
                                       struct db_signin_session *out, struct as_err *err) AS_WUR;

#endif
