/*
 * run_history.h - a run's full history (run, each step execution with its
 * attempts, the event log) as one JSON document, and its rendering as a
 * timeline for people.  Used by `assent show`, `assent run --wait` and the
 * REST API.
 *
 * The document:
 *   {"run": {"id", "workflow", "version", "hash", "status", "error", "input",
 *            "dry_run", "trigger", "dedupe_key", "created_at", "finished_at",
 *            "duration_ms"},
 *    "steps": [{"id", "step", "visit", "status", "attempts", "outcome",
 *               "output", "error", "params", "idempotency_key", "created_at",
 *               "started_at", "finished_at", "due_at",
 *               "history": [{"event", "at", "attempt", "duration_ms",
 *                            "error", "next_at", "until", ...}]}],
 *    "events": [{"id", "ts", "type", "exec_id", "data"}]}   (with_events only)
 * Times are ms since the epoch; JSON columns are parsed back into JSON.
 */
#ifndef ASSENT_RUN_HISTORY_H
#define ASSENT_RUN_HISTORY_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

struct db;

/* Load the history of run_id; *out is a new reference.  AS_ENOTFOUND when unknown. */
enum as_code run_history_load(struct db *db, int64_t run_id, int with_events, json_t **out,
                              struct as_err *err) AS_WUR;

/* Print the timeline of a loaded history.  Long outputs are shortened unless verbose. */
void run_history_print(FILE *f, const json_t *history, int verbose);

/* "12ms", "1.204s", "2m03s", "5h02m", "3d04h" into buf. */
void run_history_duration(int64_t ms, char *buf, size_t size);

#endif
