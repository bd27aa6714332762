/*
 * trigger.h - start one workflow run per row of a KPI (fan-out).
 *
 * Each row the KPI finds (exempt users already left out, see kpi.h) becomes
 * the input of one run:
 *  - auto-mapping: "user" and "upn" get the row's user principal name, and
 *    every other row field whose name the workflow declares as an input is
 *    copied (null fields are skipped so the workflow's defaults apply; a
 *    workflow that declares no inputs gets every field);
 *  - then the KPI's trigger.input object (or opts->input_map) is merged
 *    over it, each value a ${...} template resolved against
 *    {"row": <the row>, "kpi": {"name": ...}}.
 * The run's dedupe key is "<workflow name>:<upn, lower case>", so a user
 * never has two open runs of the same workflow: triggering again skips
 * users whose run is still open (counted as duplicates).  With max_open
 * set, no more than that many runs of the workflow are open at once; rows
 * beyond it are deferred to the next trigger.
 *
 * Superseded runs.  Runs started by a trigger of a KPI record its name.  When
 * the KPI is triggered again, every open run of the workflow that an earlier
 * trigger of the same KPI started and whose user the KPI no longer finds
 * (protocols turned off elsewhere, exempted, user gone) is ended as
 * "superseded" (engine_supersede_run: its approval links answer 410), with
 * the reason in its timeline.  Only after an evaluation that read every row;
 * a preview reports them without ending them.  A KPI opts out with
 * "close_superseded": false.
 *
 * Rows stream from the KPI evaluation into batches submitted with
 * engine_submit_runs() (one transaction per batch), so memory stays flat for
 * any number of rows.
 */
#ifndef ASSENT_TRIGGER_H
#define ASSENT_TRIGGER_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "m365/kpi.h"

struct app;

/* What happened to a row (for on_row). */
enum trigger_what {
    TRIGGER_STARTED,     /* a new run */
    TRIGGER_DUPLICATE,   /* an open run of this workflow holds the user's key */
    TRIGGER_DEFERRED,    /* max_open reached */
    TRIGGER_WOULD_START, /* preview only */
    TRIGGER_INVALID,     /* the mapped input does not fit the workflow (message in `why`) */
    TRIGGER_SUPERSEDED,  /* an open run whose user the KPI no longer finds was ended (`why`) */
    TRIGGER_WOULD_SUPERSEDE, /* preview only */
};

const char *trigger_what_name(enum trigger_what w);

struct trigger_opts {
    const char *workflow_path; /* NULL: the KPI's trigger.workflow */
    const json_t *input_map;   /* NULL: the KPI's trigger.input (borrowed) */
    int64_t max_open;          /* < 0: the KPI's trigger.max_open; 0: no limit */
    int preview;               /* start nothing; report what would start */
    int dry_run;               /* start runs whose side-effecting steps only record */
    const char *trigger;       /* recorded on each run, e.g. "cli", "schedule:<kpi>" */
    const char *actor;         /* who triggered (an API token's name), recorded in each
                                * run's run.created event; NULL: not recorded */
    int record_value;          /* also append the KPI's value to its history */
    size_t batch;              /* runs per transaction; 0 = 500 */
    kpi_source_fn source;      /* NULL: the tenant database */
    int allow_stale;           /* start runs even from a sync older than max_sync_age */
    int keep_superseded;       /* 1: end no superseded run; 0: as the KPI's "close_superseded"
                                * says (default true) */
    /* Optional: called for each row.  run_id is 0 when no run is involved. */
    void (*on_row)(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                   int64_t run_id, const char *why);
    void *ud;
};

struct trigger_stats {
    int64_t rows;       /* rows the KPI found */
    int64_t started;
    int64_t duplicates;
    int64_t deferred;
    int64_t invalid;
    int64_t exempt;     /* rows left out by exceptions */
    int64_t open_before;/* open runs of the workflow before starting */
    int64_t superseded; /* open runs ended because the KPI no longer finds their user */
};

/*
 * Evaluate k at `now` and start (or preview) one run per row of it.  The
 * workflow file is loaded and validated first: an invalid one fails the
 * call before anything starts.  A database error mid-way returns it; runs
 * started before remain (and a repeat trigger deduplicates them).
 */
enum as_code trigger_kpi(struct app *app, const struct kpi *k, int64_t now,
                         const struct trigger_opts *opts, struct trigger_stats *stats,
                         struct as_err *err) AS_WUR;

/*
 * Freshness: the tenant data a trigger judges by must come from a sync that
 * completed (status ok or partial) at most `max_sync_age` (config, default
 * PT24H) before `now`.  AS_EEXPIRED with the sync's age in the message when
 * it is older or there is none.  trigger_kpi checks it itself unless
 * opts->allow_stale or opts->source is given.
 */
enum as_code trigger_check_fresh(struct app *app, int64_t now, struct as_err *err) AS_WUR;

/* Stats as a new JSON object. */
json_t *trigger_stats_json(const struct trigger_stats *s);

/*
 * One row of a trigger as reported by `assent trigger --json` and POST
 * /api/v1/kpis/{name}/trigger (on_row's arguments): {"upn", "result",
 * "run_id", "error" (when why), "input" (with_input)}.  New reference, NULL
 * out of memory.
 */
json_t *trigger_row_json(const char *upn, const json_t *input, enum trigger_what what,
                         int64_t run_id, const char *why, int with_input);

#endif
