/*
 * wf_store.h - workflows stored in the database by name: the versions runs
 * started with (every run stores its version, engine_submit_runs) and those
 * an admin stores through the REST API.  A run can then be started by the
 * workflow's name, from the version stored last (POST /api/v1/runs).
 */
#ifndef ASSENT_WF_STORE_H
#define ASSENT_WF_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/error.h"

struct db;
struct workflow;

/*
 * Load the version of workflow `name` stored last.  *source_path (may be
 * NULL) receives the file it was loaded from when known (malloc'd, "" when
 * not; caller frees): files next to it, such as email templates, are found
 * through it.  AS_ENOTFOUND when no version has that name; AS_EINVAL with
 * diags when the stored text no longer loads (a step type this build does
 * not have).
 */
enum as_code wf_store_latest(struct db *db, const char *name, struct workflow **out,
                             char **source_path, struct diag_list *diags,
                             struct as_err *err) AS_WUR;

/*
 * Store wf's version (kept if its hash is known) and append
 * "workflow.stored" {name, version, hash, actor} to the audit chain, in one
 * transaction.
 */
enum as_code wf_store_put(struct db *db, const struct workflow *wf, const char *actor,
                          struct as_err *err) AS_WUR;

/*
 * A page of stored workflows by name: [{"name", "version", "hash",
 * "source_path" (null when none), "created_at", "versions"}] of the latest
 * version of each name after `after` (NULL: from the first), at most limit.
 * *next (may be NULL) receives the name to pass as `after` for the next
 * page (malloc'd), or NULL when this was the last.
 */
enum as_code wf_store_list(struct db *db, const char *after, int limit, json_t **items,
                           char **next, struct as_err *err) AS_WUR;

#endif
