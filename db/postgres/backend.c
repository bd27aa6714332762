/*
 * backend.c - the PostgreSQL store's table of operations (db/backend.h).
 *
 * Ported so far: opening (connections, migrations), transactions, and the
 * engine's operations of db_runs.h, db_execs.h and db_events.h (runs.c,
 * execs.c, events.c).  Every other entry answers AS_EINVAL "not supported
 * on PostgreSQL yet: <operation>" until it is ported: never a crash.
 * docs/postgresql.md says what works.
 */
#include "db/postgres/pg.h"

static enum as_code unported(struct as_err *err, const char *operation)
{
    return as_errf(err, AS_EINVAL, "not supported on PostgreSQL yet: %s", operation);
}

static enum as_code unported_testing_state_digest(struct db *db,
                                                  char digest[DB_TESTING_DIGEST_SIZE],
                                                  struct as_err *err)
{
    return unported(err, "db_testing_state_digest");
}

static enum as_code unported_testing_approver_unsent(struct db *db, int64_t approval_id,
                                                     const char *email, struct as_err *err)
{
    return unported(err, "db_testing_approver_unsent");
}

static enum as_code unported_approvals_ensure(struct db *db, const struct approval_new *a,
                                              int64_t *id, int *created, struct as_err *err)
{
    return unported(err, "db_approvals_ensure");
}

static enum as_code unported_approvals_get(struct db *db, int64_t id, json_t **out,
                                           struct as_err *err)
{
    return unported(err, "db_approvals_get");
}

static enum as_code unported_approvals_by_token(struct db *db, const char *token_hash, json_t **out,
                                                struct as_err *err)
{
    return unported(err, "db_approvals_by_token");
}

static enum as_code unported_approvals_add_link(struct db *db, int64_t approver_id,
                                                const char *purpose, const char *token_hash,
                                                int64_t now, int *seq, struct as_err *err)
{
    return unported(err, "db_approvals_add_link");
}

static enum as_code unported_approvals_link_sent(struct db *db, const char *token_hash, int64_t now,
                                                 struct as_err *err)
{
    return unported(err, "db_approvals_link_sent");
}

static enum as_code unported_approvals_set_reminded(struct db *db, int64_t approval_id,
                                                    int reminder_no, int64_t next_reminder_at,
                                                    struct as_err *err)
{
    return unported(err, "db_approvals_set_reminded");
}

static enum as_code unported_approvals_expire(struct db *db, int64_t approval_id, int64_t now,
                                              int *changed, struct as_err *err)
{
    return unported(err, "db_approvals_expire");
}

static enum as_code unported_approvals_set_escalated(struct db *db, int64_t approval_id,
                                                     int64_t now, struct as_err *err)
{
    return unported(err, "db_approvals_set_escalated");
}

static enum as_code unported_approvals_clear_resume(struct db *db, int64_t approval_id,
                                                    struct as_err *err)
{
    return unported(err, "db_approvals_clear_resume");
}

static enum as_code unported_approval_load(struct db_conn *c, const char *token_hash,
                                           int64_t approval_id, struct db_approval_state *s,
                                           struct as_err *err)
{
    return unported(err, "db_approval_load");
}

static enum as_code unported_approval_answer(struct db_conn *c, const struct db_approval_answer *a,
                                             struct as_err *err)
{
    return unported(err, "db_approval_answer");
}

static enum as_code unported_approval_unapproved(struct db_conn *c, int64_t approval_id, int64_t *n,
                                                 struct as_err *err)
{
    return unported(err, "db_approval_unapproved");
}

static enum as_code unported_approval_next_queued(struct db_conn *c, int64_t approval_id,
                                                  int64_t *approver_id, struct as_err *err)
{
    return unported(err, "db_approval_next_queued");
}

static enum as_code unported_approval_activate(struct db_conn *c, int64_t approver_id,
                                               struct as_err *err)
{
    return unported(err, "db_approval_activate");
}

static enum as_code unported_approval_close(struct db_conn *c, int64_t approval_id,
                                            const char *status, const struct db_approval_answer *a,
                                            struct as_err *err)
{
    return unported(err, "db_approval_close");
}

static enum as_code unported_approvals_list_where(struct db *db,
                                                  const struct db_approvals_filter *f, json_t **out,
                                                  struct as_err *err)
{
    return unported(err, "db_approvals_list_where");
}

static enum as_code unported_approvals_stats(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_approvals_stats");
}

static enum as_code unported_approvals_secret(struct db *db, const char *name, unsigned char *out,
                                              size_t len, struct as_err *err)
{
    return unported(err, "db_approvals_secret");
}

static enum as_code unported_mail_claim(struct db *db, const char *key, const char *message_id,
                                        const char *transport, int64_t date_ms, const char *owner,
                                        int64_t now_ms, int64_t lease_until, int max_resends,
                                        int (*owner_alive)(const char *owner, void *ud), void *ud,
                                        struct db_mail_claim *out, struct as_err *err)
{
    return unported(err, "db_mail_claim");
}

static enum as_code unported_mail_finish(struct db *db, const char *key, const char *state,
                                         const json_t *result, const char *error, int64_t now_ms,
                                         struct as_err *err)
{
    return unported(err, "db_mail_finish");
}

static enum as_code unported_mail_get(struct db *db, const char *key, json_t **row,
                                      struct as_err *err)
{
    return unported(err, "db_mail_get");
}

static enum as_code unported_mail_step_source(struct db *db, int64_t run_id, const char *step,
                                              json_t **params, char **source_path,
                                              struct as_err *err)
{
    return unported(err, "db_mail_step_source");
}

static enum as_code unported_kpi_put(struct db *db, const char *name, const char *report,
                                     const char *definition, const char *schedule,
                                     const char *tz, int replace, int64_t now, int64_t *id,
                                     struct as_err *err)
{
    return unported(err, "db_kpi_put");
}

static enum as_code unported_kpi_get(struct db *db, const char *name, json_t **out,
                                     struct as_err *err)
{
    return unported(err, "db_kpi_get");
}

static enum as_code unported_kpi_list(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_kpi_list");
}

static enum as_code unported_kpi_delete(struct db *db, const char *name, struct as_err *err)
{
    return unported(err, "db_kpi_delete");
}

static enum as_code unported_kpi_value_add(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                           int64_t exempt, const json_t *breakdown,
                                           struct as_err *err)
{
    return unported(err, "db_kpi_value_add");
}

static enum as_code unported_kpi_values(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                        struct as_err *err)
{
    return unported(err, "db_kpi_values");
}

static enum as_code unported_kpi_open_runs(struct db *db, const char *workflow, int64_t *n,
                                           struct as_err *err)
{
    return unported(err, "db_kpi_open_runs");
}

static enum as_code unported_exception_add(struct db *db, const struct db_exception *ex,
                                           int64_t *id, int *created, struct as_err *err)
{
    return unported(err, "db_exception_add");
}

static enum as_code unported_exception_list(struct db *db, enum db_exception_filter filter,
                                            const char *upn, int64_t now, json_t **out,
                                            struct as_err *err)
{
    return unported(err, "db_exception_list");
}

static enum as_code unported_exception_remove(struct db *db, int64_t id, const char *by,
                                              const char *reason, int64_t now, struct as_err *err)
{
    return unported(err, "db_exception_remove");
}

static enum as_code unported_exception_foreach_active(struct db *db, int64_t now,
                                                      db_exception_cb cb, void *ud,
                                                      struct as_err *err)
{
    return unported(err, "db_exception_foreach_active");
}

static enum as_code unported_sched_list(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_sched_list");
}

static enum as_code unported_sched_claim(struct db *db, int64_t kpi_id, int64_t prev,
                                         int64_t scheduled_for, int64_t missed, int64_t now,
                                         int64_t *run_id, struct as_err *err)
{
    return unported(err, "db_sched_claim");
}

static enum as_code unported_sched_finish(struct db *db, int64_t run_id, int ok,
                                          const json_t *result, const char *error, int64_t now,
                                          struct as_err *err)
{
    return unported(err, "db_sched_finish");
}

static enum as_code unported_sched_interrupted(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_sched_interrupted");
}

static enum as_code unported_sched_runs(struct db *db, int64_t kpi_id, int limit, json_t **out,
                                        struct as_err *err)
{
    return unported(err, "db_sched_runs");
}

static enum as_code unported_tenant_sync_start(struct db *db, int64_t now_ms, int64_t *sync_id,
                                               struct as_err *err)
{
    return unported(err, "db_tenant_sync_start");
}

static enum as_code unported_tenant_sync_finish(struct db *db, int64_t sync_id, int64_t now_ms,
                                                const char *status, const json_t *summary,
                                                const char *error, struct as_err *err)
{
    return unported(err, "db_tenant_sync_finish");
}

static enum as_code unported_tenant_user_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                             const json_t *user, struct as_err *err)
{
    return unported(err, "db_tenant_user_put");
}

static enum as_code unported_tenant_users_prune(struct db_conn *c, int64_t sync_id, long *removed,
                                                struct as_err *err)
{
    return unported(err, "db_tenant_users_prune");
}

static enum as_code unported_tenant_cas_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                            const json_t *mbx, int *matched, struct as_err *err)
{
    return unported(err, "db_tenant_cas_put");
}

static enum as_code unported_tenant_cas_prune(struct db_conn *c, int64_t sync_id,
                                              struct as_err *err)
{
    return unported(err, "db_tenant_cas_prune");
}

static enum as_code unported_tenant_usage_put(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                              const char *upn, int pop3, int imap4, int smtp,
                                              const char *last_activity, const char *report_date,
                                              struct as_err *err)
{
    return unported(err, "db_tenant_usage_put");
}

static enum as_code unported_tenant_usage_done(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                               struct as_err *err)
{
    return unported(err, "db_tenant_usage_done");
}

static enum as_code unported_tenant_org_put_transport(struct db_conn *c, int64_t now_ms,
                                                      const json_t *transport, struct as_err *err)
{
    return unported(err, "db_tenant_org_put_transport");
}

static enum as_code unported_tenant_signin_put(struct db_conn *c, int64_t sync_id,
                                               const json_t *signin, struct as_err *err)
{
    return unported(err, "db_tenant_signin_put");
}

static enum as_code unported_tenant_signins_done(struct db_conn *c, int64_t older_than_ms,
                                                 int64_t now_ms, struct as_err *err)
{
    return unported(err, "db_tenant_signins_done");
}

static enum as_code unported_tenant_users_foreach(struct db *db,
                                                  int (*cb)(const json_t *row, void *ud), void *ud,
                                                  struct as_err *err)
{
    return unported(err, "db_tenant_users_foreach");
}

static enum as_code unported_tenant_users_foreach_sorted(struct db *db, const char *sort_key,
                                                         int desc,
                                                         int (*cb)(const json_t *row, void *ud),
                                                         void *ud, struct as_err *err)
{
    return unported(err, "db_tenant_users_foreach_sorted");
}

static enum as_code unported_tenant_org_transport(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_tenant_org_transport");
}

static enum as_code unported_tenant_user_row(struct db *db, const char *upn_or_id, json_t **out,
                                             struct as_err *err)
{
    return unported(err, "db_tenant_user_row");
}

static enum as_code unported_tenant_signins_foreach(struct db *db,
                                                    const struct db_tenant_signin_query *q,
                                                    int (*cb)(const json_t *row, void *ud),
                                                    void *ud, struct as_err *err)
{
    return unported(err, "db_tenant_signins_foreach");
}

static enum as_code unported_tenant_last_completed_sync(struct db *db, int64_t *finished_at,
                                                        char *status, size_t status_size,
                                                        struct as_err *err)
{
    return unported(err, "db_tenant_last_completed_sync");
}

static enum as_code unported_tenant_last_sync(struct db *db, json_t **out, struct as_err *err)
{
    return unported(err, "db_tenant_last_sync");
}

/* ---- the REST API (db/db_tokens.h; the listings it pages) ---------------------- */

static enum as_code unported_api_token_add(struct db *db, struct db_api_token *t,
                                           struct as_err *err)
{
    return unported(err, "db_api_token_add");
}

static enum as_code unported_api_token_find(struct db *db, const char *token_hash,
                                            struct db_api_token *out, struct as_err *err)
{
    return unported(err, "db_api_token_find");
}

static enum as_code unported_api_token_list(struct db *db, int include_revoked, json_t **out,
                                            struct as_err *err)
{
    return unported(err, "db_api_token_list");
}

static enum as_code unported_api_token_revoke(struct db *db, const char *name, const char *by,
                                              int64_t now, struct db_api_token *out,
                                              struct as_err *err)
{
    return unported(err, "db_api_token_revoke");
}

static enum as_code unported_workflows_list(struct db_conn *conn, const char *name,
                                            const char *after, int limit, db_workflow_cb cb,
                                            void *ud, struct as_err *err)
{
    return unported(err, "db_workflows_list");
}

static enum as_code unported_approvals_page(struct db *db, const struct db_approvals_page_query *q,
                                            json_t **out, struct as_err *err)
{
    return unported(err, "db_approvals_page");
}

const struct db_backend db_pg_backend = {
    .name = "PostgreSQL",
    .open = db_pg_open,
    .close = db_pg_close,
    .path = db_pg_path,
    .schema_version = db_pg_schema_version,
    .write_begin = db_pg_write_begin,
    .read_begin = db_pg_read_begin,
    .read_end = db_pg_read_end,
    .write_end = db_pg_write_end,
    .ping = db_pg_ping,
    .workflow_put = db_pg_workflow_put,
    .workflow_get = db_pg_workflow_get,
    .run_insert = db_pg_run_insert,
    .run_set_status = db_pg_run_set_status,
    .run_cancel = db_pg_run_cancel,
    .run_supersede = db_pg_run_supersede,
    .runs_open_of_kpi = db_pg_runs_open_of_kpi,
    .run_retry = db_pg_run_retry,
    .run_status = db_pg_run_status,
    .runs_count_open = db_pg_runs_count_open,
    .runs_list = db_pg_runs_list,
    .run_get = db_pg_run_get,
    .exec_insert = db_pg_exec_insert,
    .exec_insert_claimed = db_pg_exec_insert_claimed,
    .exec_due = db_pg_exec_due,
    .exec_take = db_pg_exec_take,
    .exec_record_held = db_pg_exec_record_held,
    .exec_release = db_pg_exec_release,
    .exec_resume = db_pg_exec_resume,
    .exec_next_due = db_pg_exec_next_due,
    .exec_lease_owners = db_pg_exec_lease_owners,
    .exec_expire_owner = db_pg_exec_expire_owner,
    .run_execs = db_pg_run_execs,
    .run_scope = db_pg_run_scope,
    .event_append_chained = db_pg_event_append_chained,
    .run_events = db_pg_run_events,
    .checkpointer_start = db_pg_checkpointer_start,
    .checkpointer_stop = db_pg_checkpointer_stop,
    .testing_state_digest = unported_testing_state_digest,
    .testing_approver_unsent = unported_testing_approver_unsent,
    .approvals_ensure = unported_approvals_ensure,
    .approvals_get = unported_approvals_get,
    .approvals_by_token = unported_approvals_by_token,
    .approvals_add_link = unported_approvals_add_link,
    .approvals_link_sent = unported_approvals_link_sent,
    .approvals_set_reminded = unported_approvals_set_reminded,
    .approvals_expire = unported_approvals_expire,
    .approvals_set_escalated = unported_approvals_set_escalated,
    .approvals_clear_resume = unported_approvals_clear_resume,
    .approval_load = unported_approval_load,
    .approval_answer = unported_approval_answer,
    .approval_unapproved = unported_approval_unapproved,
    .approval_next_queued = unported_approval_next_queued,
    .approval_activate = unported_approval_activate,
    .approval_close = unported_approval_close,
    .approvals_list_where = unported_approvals_list_where,
    .approvals_stats = unported_approvals_stats,
    .approvals_secret = unported_approvals_secret,
    .mail_claim = unported_mail_claim,
    .mail_finish = unported_mail_finish,
    .mail_get = unported_mail_get,
    .mail_step_source = unported_mail_step_source,
    .kpi_put = unported_kpi_put,
    .kpi_get = unported_kpi_get,
    .kpi_list = unported_kpi_list,
    .kpi_delete = unported_kpi_delete,
    .kpi_value_add = unported_kpi_value_add,
    .kpi_values = unported_kpi_values,
    .kpi_open_runs = unported_kpi_open_runs,
    .exception_add = unported_exception_add,
    .exception_list = unported_exception_list,
    .exception_remove = unported_exception_remove,
    .exception_foreach_active = unported_exception_foreach_active,
    .sched_list = unported_sched_list,
    .sched_claim = unported_sched_claim,
    .sched_finish = unported_sched_finish,
    .sched_interrupted = unported_sched_interrupted,
    .sched_runs = unported_sched_runs,
    .tenant_sync_start = unported_tenant_sync_start,
    .tenant_sync_finish = unported_tenant_sync_finish,
    .tenant_user_put = unported_tenant_user_put,
    .tenant_users_prune = unported_tenant_users_prune,
    .tenant_cas_put = unported_tenant_cas_put,
    .tenant_cas_prune = unported_tenant_cas_prune,
    .tenant_usage_put = unported_tenant_usage_put,
    .tenant_usage_done = unported_tenant_usage_done,
    .tenant_org_put_transport = unported_tenant_org_put_transport,
    .tenant_signin_put = unported_tenant_signin_put,
    .tenant_signins_done = unported_tenant_signins_done,
    .tenant_users_foreach = unported_tenant_users_foreach,
    .tenant_users_foreach_sorted = unported_tenant_users_foreach_sorted,
    .tenant_org_transport = unported_tenant_org_transport,
    .tenant_user_row = unported_tenant_user_row,
    .tenant_signins_foreach = unported_tenant_signins_foreach,
    .tenant_last_completed_sync = unported_tenant_last_completed_sync,
    .tenant_last_sync = unported_tenant_last_sync,
    /* The REST API */
    .api_token_add = unported_api_token_add,
    .api_token_find = unported_api_token_find,
    .api_token_list = unported_api_token_list,
    .api_token_revoke = unported_api_token_revoke,
    .workflows_list = unported_workflows_list,
    .approvals_page = unported_approvals_page,
};
