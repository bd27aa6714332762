/* wf_store.c - workflows stored by name (see wf_store.h). */
#include "engine/wf_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "db/db.h"
#include "db/db_runs.h"
#include "engine/workflow.h"

struct latest {
    char hash[65];
    char *source_path;
    int found;
};

static int take_latest(void *ud, const struct db_workflow_info *w)
{
    struct latest *l = ud;
    snprintf(l->hash, sizeof l->hash, "%s", w->hash);
    l->source_path = strdup(w->source_path);
    l->found = 1;
    return 1;
}

enum as_code wf_store_latest(struct db *db, const char *name, struct workflow **out,
                             char **source_path, struct diag_list *diags, struct as_err *err)
{
    struct db_conn *c;
    struct latest l = {0};
    char *definition = NULL;
    *out = NULL;
    if (source_path)
        *source_path = NULL;
    enum as_code rc = db_read_begin(db, &c, err);
    if (rc)
        return rc;
    rc = db_workflows_list(c, name, NULL, 1, take_latest, &l, err);
    if (!rc && !l.found)
        rc = as_errf(err, AS_ENOTFOUND, "no workflow named \"%s\" is stored", name);
    if (!rc && !l.source_path)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (!rc)
        rc = db_workflow_get(c, l.hash, &definition, err);
    db_read_end(db, c);
    if (!rc) {
        char origin[80];
        snprintf(origin, sizeof origin, "db:%.64s", l.hash);
        rc = wf_load_string(definition, origin, out, diags, err);
    }
    free(definition);
    if (!rc && source_path) {
        *source_path = l.source_path;
        l.source_path = NULL;
    }
    free(l.source_path);
    return rc;
}

enum as_code wf_store_put(struct db *db, const struct workflow *wf, const char *actor,
                          struct as_err *err)
{
    struct db_conn *c;
    int64_t id = 0;
    struct db_workflow_rec rec = {
        .name = wf->name,
        .version = wf->version,
        .hash = wf->hash,
        .definition = wf->canonical,
    };
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s?}", "name", wf->name, "version", wf->version,
                           "hash", wf->hash, "actor", actor);
    if (!ev)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_write_begin(db, &c, err);
    if (!rc) {
        rc = db_workflow_put(c, &rec, time_now_ms(), &id, err);
        if (!rc)
            rc = db_event_append(c, 0, 0, "workflow.stored", ev, err);
        rc = db_write_end(db, rc, err);
    }
    json_decref(ev);
    return rc;
}

struct list_ctx {
    json_t *items;
    int limit;
    int more;
    enum as_code rc;
    struct as_err *err;
};

static int list_one(void *ud, const struct db_workflow_info *w)
{
    struct list_ctx *lc = ud;
    if ((int)json_array_size(lc->items) >= lc->limit) {
        lc->more = 1;
        return 1;
    }
    json_t *item = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "name", w->name, "version",
                             w->version, "hash", w->hash, "source_path",
                             w->source_path[0] ? json_string(w->source_path) : json_null(),
                             "created_at", (json_int_t)w->created_at, "versions",
                             (json_int_t)w->n_versions);
    if (!item || json_array_append_new(lc->items, item)) {
        lc->rc = as_errf(lc->err, AS_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

enum as_code wf_store_list(struct db *db, const char *after, int limit, json_t **items,
                           char **next, struct as_err *err)
{
    struct db_conn *c;
    struct list_ctx lc = {.items = json_array(), .limit = limit > 0 ? limit : 50, .err = err};
    *items = NULL;
    if (next)
        *next = NULL;
    if (!lc.items)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_read_begin(db, &c, err);
    if (!rc) {
        rc = db_workflows_list(c, NULL, after, lc.limit + 1, list_one, &lc, err);
        if (!rc)
            rc = lc.rc;
        db_read_end(db, c);
    }
    if (!rc && lc.more && next) {
        const json_t *last = json_array_get(lc.items, json_array_size(lc.items) - 1);
        *next = strdup(json_string_value(json_object_get(last, "name")));
        if (!*next)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    if (rc) {
        json_decref(lc.items);
        return rc;
    }
    *items = lc.items;
    return AS_OK;
}
