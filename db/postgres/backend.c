/*
 * backend.c - the PostgreSQL store's table of operations (db/backend.h).
 *
 * Ported: opening (connections, migrations) and transactions (db.c), the
 * engine's operations of db_runs.h, db_execs.h and db_events.h (runs.c,
 * execs.c, events.c), approvals (approvals.c), mail bookkeeping (mail.c),
 * KPIs, exceptions and schedules (kpi.c), the tenant (tenant.c),
 * db_testing.h (testing.c), and db_nodes.h: heartbeats (execs.c) and
 * wake-ups (wakeups.c).  Not yet: the REST API's operations (db_tokens.h
 * and the listings it pages), below.  docs/postgresql.md says how.
 *
 * An operation added to the interface before its PostgreSQL version is
 * written gets an entry that answers with unported(): AS_EINVAL "not
 * supported on PostgreSQL yet: <operation>", never a crash.
 */
#include "db/postgres/pg.h"

__attribute__((unused)) static enum as_code unported(struct as_err *err, const char *operation)
{
    return as_errf(err, AS_EINVAL, "not supported on PostgreSQL yet: %s", operation);
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
    .node_heartbeat = db_pg_node_heartbeat,
    .wakeups_start = db_pg_wakeups_start,
    .wakeups_stop = db_pg_wakeups_stop,
    .run_execs = db_pg_run_execs,
    .run_scope = db_pg_run_scope,
    .event_append_chained = db_pg_event_append_chained,
    .run_events = db_pg_run_events,
    .checkpointer_start = db_pg_checkpointer_start,
    .checkpointer_stop = db_pg_checkpointer_stop,
    .testing_state_digest = db_pg_testing_state_digest,
    .testing_approver_unsent = db_pg_testing_approver_unsent,
    .approvals_ensure = db_pg_approvals_ensure,
    .approvals_get = db_pg_approvals_get,
    .approvals_by_token = db_pg_approvals_by_token,
    .approvals_add_link = db_pg_approvals_add_link,
    .approvals_link_sent = db_pg_approvals_link_sent,
    .approvals_set_reminded = db_pg_approvals_set_reminded,
    .approvals_expire = db_pg_approvals_expire,
    .approvals_set_escalated = db_pg_approvals_set_escalated,
    .approvals_clear_resume = db_pg_approvals_clear_resume,
    .approval_load = db_pg_approval_load,
    .approval_answer = db_pg_approval_answer,
    .approval_unapproved = db_pg_approval_unapproved,
    .approval_next_queued = db_pg_approval_next_queued,
    .approval_activate = db_pg_approval_activate,
    .approval_close = db_pg_approval_close,
    .approvals_list_where = db_pg_approvals_list_where,
    .approvals_stats = db_pg_approvals_stats,
    .approvals_secret = db_pg_approvals_secret,
    .mail_claim = db_pg_mail_claim,
    .mail_finish = db_pg_mail_finish,
    .mail_get = db_pg_mail_get,
    .mail_step_source = db_pg_mail_step_source,
    .kpi_put = db_pg_kpi_put,
    .kpi_get = db_pg_kpi_get,
    .kpi_list = db_pg_kpi_list,
    .kpi_delete = db_pg_kpi_delete,
    .kpi_value_add = db_pg_kpi_value_add,
    .kpi_values = db_pg_kpi_values,
    .kpi_open_runs = db_pg_kpi_open_runs,
    .exception_add = db_pg_exception_add,
    .exception_list = db_pg_exception_list,
    .exception_remove = db_pg_exception_remove,
    .exception_foreach_active = db_pg_exception_foreach_active,
    .sched_list = db_pg_sched_list,
    .sched_claim = db_pg_sched_claim,
    .sched_finish = db_pg_sched_finish,
    .sched_interrupted = db_pg_sched_interrupted,
    .sched_runs = db_pg_sched_runs,
    .tenant_sync_start = db_pg_tenant_sync_start,
    .tenant_sync_finish = db_pg_tenant_sync_finish,
    .tenant_user_put = db_pg_tenant_user_put,
    .tenant_users_prune = db_pg_tenant_users_prune,
    .tenant_cas_put = db_pg_tenant_cas_put,
    .tenant_cas_prune = db_pg_tenant_cas_prune,
    .tenant_usage_put = db_pg_tenant_usage_put,
    .tenant_usage_done = db_pg_tenant_usage_done,
    .tenant_org_put_transport = db_pg_tenant_org_put_transport,
    .tenant_signin_put = db_pg_tenant_signin_put,
    .tenant_signins_done = db_pg_tenant_signins_done,
    .tenant_users_foreach = db_pg_tenant_users_foreach,
    .tenant_users_foreach_sorted = db_pg_tenant_users_foreach_sorted,
    .tenant_org_transport = db_pg_tenant_org_transport,
    .tenant_user_row = db_pg_tenant_user_row,
    .tenant_signins_foreach = db_pg_tenant_signins_foreach,
    .tenant_last_completed_sync = db_pg_tenant_last_completed_sync,
    .tenant_last_sync = db_pg_tenant_last_sync,
    /* The REST API */
    .api_token_add = unported_api_token_add,
    .api_token_find = unported_api_token_find,
    .api_token_list = unported_api_token_list,
    .api_token_revoke = unported_api_token_revoke,
    .workflows_list = unported_workflows_list,
    .approvals_page = unported_approvals_page,
};
