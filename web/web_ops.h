/*
 * web_ops.h - private to web/: what the REST API (web/api_*.c) and the
 * admin console (web/console*.c) both do, written once so that a page and
 * a JSON route show the same rows and record the same audit events:
 *
 *   - a page of a report (users, sign-ins) from the last sync, by offset
 *     cursor, with the `where` language of the CLI;
 *   - a page of approvals with their approvers and titles, newest first;
 *   - the exceptions in force (and removed or expired ones on request);
 *   - evaluating a KPI and recording its value;
 *   - checking a workflow sent as text (diagnostics at line and column);
 *   - an audit event of a change made outside a run, with its actor.
 *
 * Every function borrows its arguments for the call and is thread-safe as
 * the layers below are.
 */
#ifndef ASSENT_WEB_OPS_H
#define ASSENT_WEB_OPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "m365/kpi.h"
#include "m365/report.h"
#include "m365/trigger.h"

struct app;
struct db;
struct workflow;

/*
 * Call row(ud, r) for the rows of q at `now` after the first `skip`, at
 * most `limit` of them (limit < 0: all); *more is 1 when a row follows the
 * page.  *no_data is 1 (and nothing is called) before the first sync.
 * row returns nonzero to stop early.  AS_EINVAL for a bad where or sort
 * (the message names it), AS_EDB.
 */
enum as_code web_ops_report_page(struct app *app, const struct report_query *q, int64_t now,
                                 int64_t skip, int64_t limit,
                                 int (*row)(void *ud, const json_t *r), void *ud, int *more,
                                 int *no_data, struct as_err *err) AS_WUR;

/*
 * Approvals with shown status `status` (NULL: any; see db_approvals_page),
 * newest first, below id `before` (0: from the newest), at most limit;
 * each with its run's title (run_titles_annotate).  *items is a new array;
 * *next the id to pass as `before` for the next page (0: none).
 */
enum as_code web_ops_approvals_page(struct db *db, const char *status, int64_t before, int limit,
                                    json_t **items, int64_t *next, struct as_err *err) AS_WUR;

/*
 * The exceptions in force at now, newest first, with removed and/or
 * expired ones when asked; user (may be NULL) restricts to one user.
 * *out is a new array of db_exception_list's items.
 */
enum as_code web_ops_exceptions(struct app *app, int want_removed, int want_expired,
                                const char *user, int64_t now, json_t **out,
                                struct as_err *err) AS_WUR;

/*
 * Evaluate KPI `name` now, record the value, then append "kpi.evaluated"
 * with actor and via.  *out is {"name", "value", "exempt", "scanned", "ts",
 * "recorded": true, "breakdown"?} (new).  AS_ENOTFOUND for an unknown KPI.
 */
enum as_code web_ops_kpi_evaluate(struct app *app, const char *name, const char *actor,
                                  const char *via, int64_t now, json_t **out,
                                  struct as_err *err) AS_WUR;

/*
 * Trigger KPI `name` as `assent trigger` does: one run of its
 * trigger.workflow per row (trigger "via", actor recorded on each run), or
 * with preview nothing started and each row reported.  on_row (may be NULL)
 * gets each row (m365/trigger.h).  A real trigger appends "kpi.triggered"
 * (its stats, actor, via).  *kpi_name (size >= 65) receives the KPI's
 * name.  AS_ENOTFOUND for an unknown KPI, AS_ECONFLICT when it has no
 * trigger, AS_EEXPIRED when the last sync is older than max_sync_age
 * (unless allow_stale).
 */
enum as_code web_ops_kpi_trigger(struct app *app, const char *name, int preview, int allow_stale,
                                 const char *actor, const char *via, int64_t now,
                                 void (*on_row)(void *ud, const char *upn, const json_t *input,
                                                enum trigger_what what, int64_t run_id,
                                                const char *why),
                                 void *ud, struct trigger_stats *st, struct as_err *err) AS_WUR;

/*
 * Load and check the workflow in text[0..len) (origin names it in the
 * diagnostics, e.g. "request").  *diags receives the diagnostics as
 * `assent validate --json` gives them (new array, also when valid); *wf the
 * workflow when valid (caller frees with wf_free).  AS_OK when valid,
 * AS_EINVAL when not, AS_ENOMEM.
 */
enum as_code web_ops_workflow_check(const char *text, size_t len, const char *origin,
                                    struct workflow **wf, json_t **diags,
                                    struct as_err *err) AS_WUR;

/*
 * Append an audit event `type` of a change made outside a run: data (a new
 * reference, stolen; NULL is out of memory) with "actor" and "via" added.
 */
enum as_code web_ops_audit(struct db *db, const char *type, json_t *data, const char *actor,
                           const char *via, struct as_err *err) AS_WUR;

#endif
