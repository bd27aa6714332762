/*
 * backend.h - private to db/: how the store's interface (db/db*.h) reaches a
 * backend.  Nothing outside db/ includes it.
 *
 * A backend is a table of functions, one per operation of db/db*.h, named as
 * the operation without its "db_" prefix (db_exec_due -> exec_due).
 * db_open() picks the table from the database string it is given
 * (db_backend_for) and the backend's open() makes the handle.  Every public
 * db_* function then makes one indirect call through the table of the
 * handle it is given (db/dispatch.c): no allocation, no lock, no lookup.
 *
 * Handles.  struct db, struct db_conn and struct db_checkpointer are each
 * defined privately by every backend (db/sqlite/db.c, db/postgres/...), and
 * every such definition begins with a struct db_head: that first member is
 * all the dispatch reads.  A handle is only ever given back to the backend
 * that made it.
 *
 * Operations that need no backend (db_claim_clear, db_event_digest,
 * db_audit_verify over db_run_events, ...) are written once, in db/common.c
 * and db/events.c, on top of the table.
 */
#ifndef ASSENT_DB_BACKEND_H
#define ASSENT_DB_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "db/db.h"
#include "db/db_approvals.h"
#include "db/db_evidence.h"
#include "db/db_ca.h"
#include "db/db_plans.h"
#include "db/db_kpi.h"
#include "db/db_mail.h"
#include "db/db_nodes.h"
#include "db/db_runs.h"
#include "db/db_sessions.h"
#include "db/db_signin.h"
#include "db/db_tenant.h"
#include "db/db_testing.h"
#include "db/db_tokens.h"
#include "db/db_wal.h"

/* What every backend's struct db, struct db_conn, struct db_checkpointer
 * and struct db_wakeups begin with. */
struct db_head {
    const struct db_backend *backend;
};

struct db_backend {
    const char *name; /* "SQLite", "PostgreSQL": for messages */
    /* db.h: opening, closing, transactions */
    enum as_code (*open)(const char *path, const struct db_options *opts, struct db **out,
                         struct as_err *err);
    void (*close)(struct db *db);
    const char *(*path)(const struct db *db);
    int (*schema_version)(struct db *db);
    enum as_code (*write_begin)(struct db *db, struct db_conn **conn, struct as_err *err);
    enum as_code (*read_begin)(struct db *db, struct db_conn **conn, struct as_err *err);
    void (*read_end)(struct db *db, struct db_conn *conn);
    enum as_code (*write_end)(struct db *db, enum as_code rc, struct as_err *err);
    enum as_code (*savepoint_begin)(struct db_conn *conn, struct as_err *err);
    enum as_code (*savepoint_end)(struct db_conn *conn, enum as_code rc, struct as_err *err);
    enum as_code (*ping)(struct db *db, struct as_err *err);
    /* db_runs.h */
    enum as_code (*workflow_put)(struct db_conn *conn, const struct db_workflow_rec *w, int64_t now,
                                 int64_t *id, struct as_err *err);
    enum as_code (*workflow_get)(struct db_conn *conn, const char *hash, char **definition,
                                 struct as_err *err);
    enum as_code (*run_insert)(struct db_conn *conn, const struct db_run_new *r, int64_t now,
                               int64_t *run_id, struct as_err *err);
    enum as_code (*run_set_status)(struct db_conn *conn, int64_t run_id, const char *status,
                                   const char *error, int64_t now, struct as_err *err);
    enum as_code (*run_cancel)(struct db_conn *conn, int64_t run_id, int64_t now,
                               struct as_err *err);
    enum as_code (*run_supersede)(struct db_conn *conn, int64_t run_id, const char *reason,
                                  int64_t now, struct as_err *err);
    enum as_code (*runs_open_of_kpi)(struct db_conn *conn, const char *kpi, const char *workflow,
                                     db_run_open_cb cb, void *ud, struct as_err *err);
    enum as_code (*run_retry)(struct db_conn *conn, int64_t run_id, int64_t now, int64_t *exec_id,
                              struct as_err *err);
    enum as_code (*run_status)(struct db_conn *conn, int64_t run_id, char *buf, size_t size,
                               struct as_err *err);
    enum as_code (*runs_count_open)(struct db_conn *conn, int64_t *n, struct as_err *err);
    enum as_code (*runs_list)(struct db_conn *conn, const struct db_run_filter *f, db_run_cb cb,
                              void *ud, struct as_err *err);
    enum as_code (*run_get)(struct db_conn *conn, int64_t run_id, db_run_cb cb, void *ud,
                            struct as_err *err);
    /* db_execs.h */
    enum as_code (*exec_insert)(struct db_conn *conn, int64_t run_id, const char *step,
                                int64_t due_at, int64_t now, int64_t *exec_id, struct as_err *err);
    enum as_code (*exec_insert_claimed)(struct db_conn *conn, int64_t run_id, const char *step,
                                        int visit_hint, int64_t now, const char *owner,
                                        int64_t lease_until, int queued, struct db_claim *out,
                                        struct as_err *err);
    enum as_code (*exec_due)(struct db_conn *conn, int64_t now, const char *owner, size_t max,
                             struct db_claim *out, size_t *n, struct as_err *err);
    enum as_code (*exec_take)(struct db_conn *conn, struct db_claim *c, const char *owner,
                              int64_t now, int64_t lease_until, struct as_err *err);
    enum as_code (*exec_record_held)(struct db_conn *conn, const struct db_exec_result *r,
                                     char **held, struct as_err *err);
    enum as_code (*exec_release)(struct db_conn *conn, int64_t exec_id, const char *owner,
                                 int attempt, struct as_err *err);
    enum as_code (*exec_resume)(struct db_conn *conn, int64_t exec_id, const json_t *payload,
                                struct as_err *err);
    enum as_code (*exec_end_waiting)(struct db_conn *conn, const struct db_exec_end *end,
                                     struct db_claim *out, struct as_err *err);
    enum as_code (*exec_next_due)(struct db_conn *conn, const char *owner, int64_t *due,
                                  struct as_err *err);
    enum as_code (*exec_lease_owners)(struct db_conn *conn, int (*cb)(void *ud, const char *owner),
                                      void *ud, struct as_err *err);
    enum as_code (*exec_expire_owner)(struct db_conn *conn, const char *owner, int64_t *n,
                                      struct as_err *err);
    /* db_nodes.h */
    enum as_code (*node_heartbeat)(struct db *db, const char *owner, int64_t timeout_ms,
                                   int64_t *clock_ms, struct as_err *err);
    enum as_code (*wakeups_start)(struct db *db, void (*wake)(void *ud), void *ud,
                                  struct db_wakeups **out, struct as_err *err);
    void (*wakeups_stop)(struct db_wakeups *w);
    enum as_code (*leader_try)(struct db *db, struct db_leader **l, const char *role, int *leader,
                               struct as_err *err);
    void (*leader_release)(struct db_leader *l);
    enum as_code (*run_execs)(struct db_conn *conn, int64_t run_id, db_exec_cb cb, void *ud,
                              struct as_err *err);
    enum as_code (*run_scope)(struct db_conn *conn, int64_t run_id, char **input, db_exec_cb cb,
                              void *ud, struct as_err *err);
    /* db_events.h */
    enum as_code (*event_append_chained)(struct db_conn *conn, struct db_event_chain *chain,
                                         int64_t run_id, int64_t exec_id, const char *type,
                                         const char *data, const char *data_digest, int64_t now,
                                         struct as_err *err);
    enum as_code (*run_events)(struct db_conn *conn, int64_t run_id, db_event_cb cb, void *ud,
                               struct as_err *err);
    /* db_wal.h */
    enum as_code (*checkpointer_start)(struct db *db, struct db_checkpointer **out,
                                       struct as_err *err);
    void (*checkpointer_stop)(struct db_checkpointer *ck);
    /* db_testing.h */
    enum as_code (*testing_state_digest)(struct db *db, char digest[DB_TESTING_DIGEST_SIZE],
                                         struct as_err *err);
    enum as_code (*testing_approver_unsent)(struct db *db, int64_t approval_id, const char *email,
                                            struct as_err *err);
    /* db_approvals.h */
    enum as_code (*approvals_ensure)(struct db *db, const struct approval_new *a, int64_t *id,
                                     int *created, struct as_err *err);
    enum as_code (*approvals_get)(struct db *db, int64_t id, json_t **out, struct as_err *err);
    enum as_code (*approval_view)(struct db_conn *c, int64_t id, json_t **out, struct as_err *err);
    enum as_code (*approvals_by_token)(struct db *db, const char *token_hash, json_t **out,
                                       struct as_err *err);
    enum as_code (*approvals_add_link)(struct db *db, int64_t approver_id, const char *purpose,
                                       const char *token_hash, int64_t now, int *seq,
                                       struct as_err *err);
    enum as_code (*approvals_link_sent)(struct db *db, const char *token_hash, int64_t now,
                                        struct as_err *err);
    enum as_code (*approvals_set_reminded)(struct db *db, int64_t approval_id, int reminder_no,
                                           int64_t next_reminder_at, struct as_err *err);
    enum as_code (*approvals_expire)(struct db *db, int64_t approval_id, int64_t now, int *changed,
                                     struct as_err *err);
    enum as_code (*approvals_set_escalated)(struct db *db, int64_t approval_id, int64_t now,
                                            struct as_err *err);
    enum as_code (*approvals_clear_resume)(struct db *db, int64_t approval_id, struct as_err *err);
    enum as_code (*approval_load)(struct db_conn *c, const char *token_hash, int64_t approval_id,
                                  struct db_approval_state *s, struct as_err *err);
    enum as_code (*approval_answer)(struct db_conn *c, const struct db_approval_answer *a,
                                    struct as_err *err);
    enum as_code (*approval_unapproved)(struct db_conn *c, int64_t approval_id, int64_t *n,
                                        struct as_err *err);
    enum as_code (*approval_next_queued)(struct db_conn *c, int64_t approval_id,
                                         int64_t *approver_id, struct as_err *err);
    enum as_code (*approval_activate)(struct db_conn *c, int64_t approver_id, struct as_err *err);
    enum as_code (*approval_close)(struct db_conn *c, int64_t approval_id, const char *status,
                                   const struct db_approval_answer *a, int open_left,
                                   struct as_err *err);
    enum as_code (*approval_approvers)(struct db_conn *c, int64_t approval_id,
                                       int (*cb)(void *ud, const struct db_approver_row *r),
                                       void *ud, struct as_err *err);
    enum as_code (*approvals_list_where)(struct db *db, const struct db_approvals_filter *f,
                                         json_t **out, struct as_err *err);
    enum as_code (*approvals_stats)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*approvals_secret)(struct db *db, const char *name, unsigned char *out,
                                     size_t len, struct as_err *err);
    /* db_mail.h */
    enum as_code (*mail_claim)(struct db *db, const char *key, const char *message_id,
                               const char *transport, int64_t date_ms, const char *owner,
                               int64_t now_ms, int64_t lease_until, int max_resends,
                               int (*owner_alive)(const char *owner, void *ud), void *ud,
                               struct db_mail_claim *out, struct as_err *err);
    enum as_code (*mail_finish)(struct db *db, const char *key, const char *state,
                                const json_t *result, const char *error, int64_t now_ms,
                                struct as_err *err);
    enum as_code (*mail_get)(struct db *db, const char *key, json_t **row, struct as_err *err);
    enum as_code (*mail_step_source)(struct db *db, int64_t run_id, const char *step,
                                     json_t **params, char **source_path, struct as_err *err);
    /* db_kpi.h */
    enum as_code (*kpi_put)(struct db *db, const char *name, const char *report,
                            const char *definition, const char *schedule, const char *timezone,
                            int replace, int64_t now, int64_t *id, struct as_err *err);
    enum as_code (*kpi_get)(struct db *db, const char *name, json_t **out, struct as_err *err);
    enum as_code (*kpi_list)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*kpi_delete)(struct db *db, const char *name, struct as_err *err);
    enum as_code (*kpi_value_add)(struct db *db, int64_t kpi_id, int64_t ts, int64_t value,
                                  int64_t exempt, const json_t *breakdown, struct as_err *err);
    enum as_code (*kpi_values)(struct db *db, int64_t kpi_id, int limit, json_t **out,
                               struct as_err *err);
    enum as_code (*kpi_open_runs)(struct db *db, const char *workflow, int64_t *n,
                                  struct as_err *err);
    enum as_code (*exception_add)(struct db *db, const struct db_exception *ex, int64_t *id,
                                  int *created, struct as_err *err);
    enum as_code (*exception_list)(struct db *db, enum db_exception_filter filter, const char *upn,
                                   int64_t now, json_t **out, struct as_err *err);
    enum as_code (*exception_remove)(struct db *db, int64_t id, const char *by, const char *reason,
                                     int64_t now, struct as_err *err);
    enum as_code (*exception_foreach_active)(struct db *db, int64_t now, db_exception_cb cb,
                                             void *ud, struct as_err *err);
    enum as_code (*sched_list)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*sched_claim)(struct db *db, int64_t kpi_id, int64_t prev, int64_t scheduled_for,
                                int64_t missed, int64_t now, int64_t *run_id, struct as_err *err);
    enum as_code (*sched_finish)(struct db *db, int64_t run_id, int ok, const json_t *result,
                                 const char *error, int64_t now, struct as_err *err);
    enum as_code (*sched_interrupted)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*sched_runs)(struct db *db, int64_t kpi_id, int limit, json_t **out,
                               struct as_err *err);
    /* db_tenant.h */
    enum as_code (*tenant_sync_start)(struct db *db, int64_t now_ms, int64_t *sync_id,
                                      struct as_err *err);
    enum as_code (*tenant_sync_finish)(struct db *db, int64_t sync_id, int64_t now_ms,
                                       const char *status, const json_t *summary, const char *error,
                                       struct as_err *err);
    enum as_code (*tenant_user_put)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                    const json_t *user, struct as_err *err);
    enum as_code (*tenant_users_prune)(struct db_conn *c, int64_t sync_id, long *removed,
                                       struct as_err *err);
    enum as_code (*tenant_cas_put)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                   const json_t *mbx, int *matched, struct as_err *err);
    enum as_code (*tenant_cas_prune)(struct db_conn *c, int64_t sync_id, struct as_err *err);
    enum as_code (*tenant_usage_put)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                     const char *upn, int pop3, int imap4, int smtp,
                                     const char *last_activity, const char *report_date,
                                     struct as_err *err);
    enum as_code (*tenant_usage_done)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                      struct as_err *err);
    enum as_code (*tenant_org_put_transport)(struct db_conn *c, int64_t now_ms,
                                             const json_t *transport, struct as_err *err);
    enum as_code (*tenant_signin_put)(struct db_conn *c, int64_t sync_id, const json_t *signin,
                                      struct as_err *err);
    enum as_code (*tenant_signins_done)(struct db_conn *c, int64_t older_than_ms, int64_t now_ms,
                                        struct as_err *err);
    enum as_code (*tenant_users_foreach)(struct db *db, int (*cb)(const json_t *row, void *ud),
                                         void *ud, struct as_err *err);
    enum as_code (*tenant_users_foreach_after)(struct db *db, const char *after_lower, int limit,
                                               int (*cb)(const json_t *row, void *ud), void *ud,
                                               struct as_err *err);
    enum as_code (*tenant_users_foreach_sorted)(struct db *db, const char *sort_key, int desc,
                                                int (*cb)(const json_t *row, void *ud), void *ud,
                                                struct as_err *err);
    enum as_code (*tenant_org_transport)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*tenant_user_row)(struct db *db, const char *upn_or_id, json_t **out,
                                    struct as_err *err);
    enum as_code (*tenant_signins_foreach)(struct db *db, const struct db_tenant_signin_query *q,
                                           int (*cb)(const json_t *row, void *ud), void *ud,
                                           struct as_err *err);
    enum as_code (*tenant_last_completed_sync)(struct db *db, int64_t *finished_at, char *status,
                                               size_t status_size, struct as_err *err);
    enum as_code (*tenant_last_sync)(struct db *db, json_t **out, struct as_err *err);
    /* Evidence of Basic use and drift: db_evidence.h */
    enum as_code (*smtp_auth_replace)(struct db *db, const struct db_smtp_auth_row *rows,
                                      size_t n, int64_t now_ms, struct as_err *err);
    enum as_code (*disabled_record)(struct db *db, const char *upn, const char *const *protocols,
                                    int64_t run_id, int64_t now_ms, struct as_err *err);
    enum as_code (*drift_scan)(struct db_conn *c, int64_t now_ms, json_t **changes,
                               struct as_err *err);
    /* The REST API: db_tokens.h, and the listings of db_runs.h and db_approvals.h it pages */
    enum as_code (*api_token_add)(struct db *db, struct db_api_token *t, struct as_err *err);
    enum as_code (*api_token_find)(struct db *db, const char *token_hash,
                                   struct db_api_token *out, struct as_err *err);
    enum as_code (*api_token_list)(struct db *db, int include_revoked, json_t **out,
                                   struct as_err *err);
    enum as_code (*api_token_revoke)(struct db *db, const char *name, const char *by, int64_t now,
                                     struct db_api_token *out, struct as_err *err);
    enum as_code (*workflows_list)(struct db_conn *conn, const char *name, const char *after,
                                   int limit, db_workflow_cb cb, void *ud, struct as_err *err);
    enum as_code (*approvals_page)(struct db *db, const struct db_approvals_page_query *q,
                                   json_t **out, struct as_err *err);
    /* db_ca.h: Conditional Access */
    enum as_code (*ca_policy_put)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                                  const json_t *policy, int managed, struct as_err *err);
    enum as_code (*ca_policies_prune)(struct db_conn *c, int64_t sync_id, struct as_err *err);
    enum as_code (*ca_policies_foreach)(struct db *db, int (*cb)(const json_t *row, void *ud),
                                        void *ud, struct as_err *err);
    enum as_code (*ca_record_get)(struct db *db, const char *name, json_t **out,
                                  struct as_err *err);
    enum as_code (*ca_record_put)(struct db *db, const char *name, const char *policy_id,
                                  const char *group_id, const char *body_hash, const json_t *body,
                                  int64_t now_ms, struct as_err *err);
    /* The console's sessions: db_sessions.h */
    enum as_code (*console_session_add)(struct db *db, struct db_console_session *s,
                                        const char *via, struct as_err *err);
    enum as_code (*console_session_find)(struct db *db, const char *session_hash,
                                         struct db_console_session *out, struct as_err *err);
    enum as_code (*console_session_delete)(struct db *db, const char *session_hash,
                                           struct db_console_session *out, struct as_err *err);
    /* db_plans.h: mailbox plans and the organisation config */
    enum as_code (*plan_put)(struct db_conn *c, int64_t sync_id, int64_t now_ms,
                             const json_t *plan, struct as_err *err);
    enum as_code (*plans_prune)(struct db_conn *c, int64_t sync_id, struct as_err *err);
    enum as_code (*plans_foreach)(struct db *db, int (*cb)(const json_t *row, void *ud),
                                  void *ud, struct as_err *err);
    enum as_code (*org_config_put)(struct db_conn *c, int64_t now_ms, const json_t *config,
                                   struct as_err *err);
    enum as_code (*org_config_get)(struct db *db, json_t **out, struct as_err *err);
    enum as_code (*org_write_put)(struct db *db, const char *key, const char *setting,
                                  const json_t *value, int64_t run_id, int64_t now_ms,
                                  struct as_err *err);
    enum as_code (*org_write_get)(struct db *db, const char *key, json_t **out,
                                  struct as_err *err);
    enum as_code (*org_write_visible)(struct db *db, const char *key, int64_t now_ms,
                                      struct as_err *err);
    enum as_code (*org_writes_foreach)(struct db *db, int limit,
                                       int (*cb)(const json_t *row, void *ud), void *ud,
                                       struct as_err *err);
    /* Sign-in with Entra ID: db_signin.h */
    enum as_code (*signin_flow_add)(struct db *db, const struct db_signin_flow *f,
                                    struct as_err *err);
    enum as_code (*signin_flow_take)(struct db *db, const char *state_hash,
                                     struct db_signin_flow *out, struct as_err *err);
    enum as_code (*signin_session_add)(struct db *db, struct db_signin_session *s,
                                       struct as_err *err);
    enum as_code (*signin_session_find)(struct db *db, const char *session_hash,
                                        struct db_signin_session *out, struct as_err *err);
};

/*
 * The rows of db_plans.h built from the stored columns, the same for both
 * backends (db/common.c): a plan from its body text and sync time, the
 * organisation from its body text and sync time, a write from its columns
 * (visible_at 0 = not visible yet).  New references; NULL on ENOMEM.
 */
json_t *db_plan_row(const char *body, int64_t synced_at);
json_t *db_org_config_row(const char *body, int64_t synced_at);
json_t *db_org_write_row(const char *key, const char *setting, const char *value,
                         int64_t run_id, int64_t written_at, int64_t visible_at);

/* The two backends. */
extern const struct db_backend db_sqlite_backend;
extern const struct db_backend db_pg_backend;

/*
 * The backend a database string selects: PostgreSQL for a URI
 * ("postgresql://...", "postgres://...") or a libpq key=value connection
 * string (one that starts with a libpq keyword and '=', e.g. "host=db1
 * dbname=assent"); SQLite, a file path, for anything else.
 */
const struct db_backend *db_backend_for(const char *path);

/* The table of a handle (struct db, db_conn or db_checkpointer; not NULL). */
/*
 * The key of a backend's prepared-statement cache: a hash of the whole SQL
 * text, eight bytes at a time (a byte-wise hash of the long statements cost
 * more than the lookup's other work), never 0; a match is still confirmed
 * with strcmp.
 */
uint64_t db_sql_hash(const char *sql);

/* A Graph signIn object's stream: 0 non-interactive (beta signInEventTypes
 * ["nonInteractiveUser"]), else 1 (v1.0 lists interactive sign-ins only). */
int db_signin_interactive(const json_t *signin);

/*
 * approvals_by_token's last part, the same for every backend: mark in the
 * approval's JSON (*view) which approver the link belongs to ("me", its
 * index in "approvers") and the link's purpose; AS_ENOTFOUND (and *view
 * freed and NULL) when no approver has that id.
 */
enum as_code db_approval_mark_link(json_t **view, int64_t approver_id, const char *purpose,
                                   struct as_err *err);

/*
 * The audit data of a console session's login (login = 1: with via, the
 * client's address and agent and the expiry) or logout, the same for every
 * backend (db/db_sessions.h).  New object; NULL when out of memory.
 */
json_t *db_session_event_json(const struct db_console_session *s, const char *via, int login);

/* The audit data of an approver's sign-in session ("sign_in.login";
 * db/db_signin.h).  New object; NULL when out of memory. */
json_t *db_signin_event_json(const struct db_signin_session *s);

/* 1 when a sign-in flow's or session's fields fit their columns. */
int db_signin_flow_ok(const struct db_signin_flow *f);
int db_signin_session_ok(const struct db_signin_session *s);

static inline const struct db_backend *db_ops(const void *handle)
{
    return ((const struct db_head *)handle)->backend;
}

/* ---- shared by the backends (db/events.c) -------------------------------- */

/* 1 when type is an event type: [a-z0-9._-]{1,64}. */
int db_event_type_ok(const char *type);

/*
 * The chained hash of an event (db_events.h): hex SHA-256 over prev_hash
 * followed by "id|run_id|exec_id|ts|type|" (run_id/exec_id empty when 0) and
 * data_digest, into out.  0, or -1 when an input is malformed or hashing
 * failed.  Thread-safe.
 */
int db_event_hash(const char *prev_hash, int64_t id, int64_t run_id, int64_t exec_id, int64_t ts,
                  const char *type, const char *data_digest, char out[65]);

/* The prev_hash of the first event: 64 zeros. */
extern const char db_event_zero_hash[65];

/* The transaction this thread joined on db (db_join), or NULL: the
 * backends' write_begin returns it, and their commit and rollback leave
 * it open. */
struct db_conn *db_joined(const struct db *db);

/* The chain cache of the transaction joined on conn (db_join), or NULL:
 * the appends without a chain of their own use it. */
struct db_event_chain *db_joined_chain(const struct db_conn *conn);

#endif
