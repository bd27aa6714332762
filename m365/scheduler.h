/*
 * scheduler.h - fires KPI schedules inside `assent serve`.
 *
 * A KPI with a schedule ({"cron": ..., "timezone": ...}, base/cron.h) is
 * evaluated at each fire time; its value is appended to the KPI's history,
 * and when it has a trigger the workflow is started for each row
 * (m365/trigger.h, trigger "schedule:<kpi>").
 *
 * Downtime.  The database remembers, per KPI, the latest fire time handled.
 * When the scheduler starts after downtime and several fire times have
 * passed, the KPI fires ONCE (no burst), standing for the latest of them;
 * the schedule run records how many earlier ones it folded in ("missed").
 * A schedule that never existed before `now` never catches up.
 *
 * Crash safety.  Claiming a fire time and recording its schedule run happen
 * in one transaction that moves the KPI's "latest handled" mark, so two
 * schedulers on one database never fire the same time twice.  A schedule
 * run left "running" by a process that died is run again on the next start
 * (triggering is idempotent: dedupe keys keep users from getting a second
 * run) and then closed.
 */
#ifndef ASSENT_SCHEDULER_H
#define ASSENT_SCHEDULER_H

#include <stdint.h>

#include "base/error.h"

struct app;

/*
 * Start the scheduler thread for app (one per process): it first resumes
 * interrupted schedule runs, then fires due schedules (catch-up included)
 * and sleeps until the next fire time, waking at least every 30 s to notice
 * KPIs created or changed by other processes.  AS_ECONFLICT if already
 * started.  Block SIGINT/SIGTERM before calling if the caller handles them.
 */
enum as_code scheduler_start(struct app *app, struct as_err *err) AS_WUR;

/* Stop the thread and wait for it (a trigger in progress finishes first).
 * Safe to call when not started. */
void scheduler_stop(void);

/* Make the running scheduler look at the schedules now (e.g. after a KPI changed). */
void scheduler_wake(void);

/*
 * One pass, synchronously, on the calling thread (the thread calls this
 * too; exposed for tests and `assent kpi schedule-run`): resume interrupted
 * schedule runs, then fire every schedule due at `now`.  *n_fired (may be
 * NULL) counts schedule runs made; *next_due (may be NULL) is the earliest
 * future fire time (INT64_MAX when none).  Errors of one KPI are recorded on
 * its schedule run and logged; they do not stop the pass.
 */
enum as_code scheduler_run_due(struct app *app, int64_t now, int *n_fired, int64_t *next_due,
                               struct as_err *err) AS_WUR;

#endif
