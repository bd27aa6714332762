/*
 * run_list.h - a page of runs as JSON, newest first, each with whom it is
 * about: what `assent runs --json` prints and GET /api/v1/runs answers.
 *
 * An item is {"id", "workflow", "version", "status", "step" (of the latest
 * execution, "" before the first), "error" ("" when none), "trigger",
 * "dedupe_key" (null when none), "dry_run", "created_at", "updated_at",
 * "finished_at" (null while open), "user", "title"} ("user" and "title" as
 * engine/run_title.h resolves them, null when none).  Times are ms since
 * the epoch.
 */
#ifndef ASSENT_RUN_LIST_H
#define ASSENT_RUN_LIST_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"
#include "db/db_runs.h"

struct db;

/*
 * The runs matching f (f->limit of them at most; <= 0: 50), read in one
 * read transaction, into *items (a new array).  *next_before (may be NULL)
 * receives the id to pass as f->before_id for the next page, or 0 when no
 * run matching f is older than the last one given.
 */
enum as_code run_list_json(struct db *db, const struct db_run_filter *f, json_t **items,
                           int64_t *next_before, struct as_err *err) AS_WUR;

/* 1 when s is a status a run can have (running, waiting, succeeded, failed,
 * cancelled, superseded). */
int run_status_known(const char *s);

#endif
