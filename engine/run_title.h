/*
 * run_title.h - how listings name a run: the user it is about (its input's
 * "user") and its workflow's optional "title" template (docs/workflow-
 * format.md) resolved against {"input": <run input>}.  `assent runs`,
 * `assent approvals`, /api/runs and /api/approvals show them.
 *
 * A struct run_titles caches each workflow version's title template by its
 * hash, so a listing loads every definition once; it belongs to one thread.
 */
#ifndef ASSENT_RUN_TITLE_H
#define ASSENT_RUN_TITLE_H

#include <jansson.h>

#include "db/db.h"
#include "base/error.h"

/* Longest title shown, in bytes (cut at a character boundary). */
#define RUN_TITLE_MAX 300

struct run_titles;

/* NULL on allocation failure. */
struct run_titles *run_titles_new(void);
void run_titles_free(struct run_titles *t);

/*
 * The user and title of a run of workflow version wf_hash with input
 * input_json (text).  *user: input.user when it is a string, else JSON
 * null; *title: the resolved title (one line, control characters turned
 * into spaces, at most RUN_TITLE_MAX bytes) when the workflow has one and
 * it resolves, else null.  Both are new references.  conn is any open
 * connection (read or write); the definition is read through it the first
 * time a hash is seen.  A definition that is missing or unreadable gives
 * no title, not an error; errors are AS_EDB/AS_ENOMEM only.
 */
enum as_code run_titles_get(struct run_titles *t, struct db_conn *conn, const char *wf_hash,
                            const char *input_json, json_t **user, json_t **title,
                            struct as_err *err) AS_WUR;

/*
 * Add "user" and "title" (as run_titles_get) to every object of rows that
 * has a "run_id", reading the runs in one read transaction of db.  Rows of
 * runs that no longer exist get nulls.
 */
enum as_code run_titles_annotate(struct db *db, json_t *rows, struct as_err *err) AS_WUR;

#endif
