/* run_list.c - a page of runs as JSON (see run_list.h). */
#include "engine/run_list.h"

#include <string.h>

#include "db/db.h"
#include "engine/run_title.h"

struct list_ctx {
    json_t *items;
    int limit;
    int64_t next_before; /* set when a run beyond the page was seen */
    struct run_titles *titles;
    struct db_conn *conn;
    enum as_code rc;
    struct as_err *err;
};

static int list_cb(void *ud, const struct db_run_info *r)
{
    struct list_ctx *lc = ud;
    if ((int)json_array_size(lc->items) >= lc->limit) {
        /* One more than asked for: there is a next page, after the last one kept. */
        json_t *last = json_array_get(lc->items, json_array_size(lc->items) - 1);
        lc->next_before = json_integer_value(json_object_get(last, "id"));
        return 1;
    }
    json_t *user = NULL, *title = NULL;
    lc->rc = run_titles_get(lc->titles, lc->conn, r->hash, r->input, &user, &title, lc->err);
    if (lc->rc)
        return 1;
    json_t *item = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:I, s:I, s:o, s:o, s:o}", "id",
        (json_int_t)r->id, "workflow", r->workflow, "version", r->version, "status", r->status,
        "step", r->current_step, "error", r->error, "trigger", r->trigger, "dedupe_key",
        r->dedupe_key[0] ? json_string(r->dedupe_key) : json_null(), "dry_run", r->dry_run,
        "created_at", (json_int_t)r->created_at, "updated_at", (json_int_t)r->updated_at,
        "finished_at", r->finished_at ? json_integer(r->finished_at) : json_null(), "user", user,
        "title", title);
    if (!item || json_array_append_new(lc->items, item)) {
        lc->rc = as_errf(lc->err, AS_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

enum as_code run_list_json(struct db *db, const struct db_run_filter *f, json_t **items,
                           int64_t *next_before, struct as_err *err)
{
    struct db_run_filter page = *f;
    struct list_ctx lc = {.items = json_array(), .titles = run_titles_new(), .err = err};
    *items = NULL;
    if (next_before)
        *next_before = 0;
    lc.limit = f->limit > 0 ? f->limit : 50;
    page.limit = lc.limit + 1; /* one more tells whether there is a next page */
    enum as_code rc = !lc.items || !lc.titles ? as_errf(err, AS_ENOMEM, "out of memory")
                                              : db_read_begin(db, &lc.conn, err);
    if (!rc) {
        rc = db_runs_list(lc.conn, &page, list_cb, &lc, err);
        if (!rc)
            rc = lc.rc;
        db_read_end(db, lc.conn);
    }
    run_titles_free(lc.titles);
    if (rc) {
        json_decref(lc.items);
        return rc;
    }
    *items = lc.items;
    if (next_before)
        *next_before = lc.next_before;
    return AS_OK;
}

int run_status_known(const char *s)
{
    static const char *const ok[] = {"running", "waiting", "succeeded",
                                     "failed", "cancelled", "superseded"};
    for (size_t i = 0; s && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(s, ok[i]) == 0)
            return 1;
    return 0;
}
