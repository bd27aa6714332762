/* run_title.c - the user and title listings show for a run (see run_title.h). */
#include "engine/run_title.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_runs.h"
#include "base/expr.h"
#include "base/strbuf.h"

struct run_titles {
    json_t *templates; /* workflow hash -> title template string, or null (none) */
};

struct run_titles *run_titles_new(void)
{
    struct run_titles *t = calloc(1, sizeof *t);
    if (t && !(t->templates = json_object())) {
        free(t);
        t = NULL;
    }
    return t;
}

void run_titles_free(struct run_titles *t)
{
    if (!t)
        return;
    json_decref(t->templates);
    free(t);
}

/* The title template of workflow version hash (borrowed, NULL when none). */
static enum as_code template_of(struct run_titles *t, struct db_conn *conn, const char *hash,
                                const char **tmpl, struct as_err *err)
{
    *tmpl = NULL;
    const json_t *known = json_object_get(t->templates, hash);
    if (!known) {
        char *definition = NULL;
        struct as_err gerr = {0};
        enum as_code rc = db_workflow_get(conn, hash, &definition, &gerr);
        if (rc && rc != AS_ENOTFOUND) {
            *err = gerr;
            return rc;
        }
        json_t *def = definition ? json_loads(definition, 0, NULL) : NULL;
        const json_t *title = json_object_get(def, "title");
        json_t *entry = json_is_string(title) ? json_incref((json_t *)title) : json_null();
        json_decref(def);
        free(definition);
        if (!entry || json_object_set_new(t->templates, hash, entry) != 0)
            return as_errf(err, AS_ENOMEM, "out of memory");
        known = json_object_get(t->templates, hash);
    }
    *tmpl = json_string_value(known);
    return AS_OK;
}

/* s as one line of at most RUN_TITLE_MAX bytes: controls become spaces,
 * cut at a UTF-8 character boundary.  New reference, NULL on ENOMEM. */
static json_t *one_line(const char *s)
{
    struct strbuf b = {0};
    for (const char *p = s; *p; p++)
        strbuf_addc(&b, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    size_t len = b.len;
    if (len > RUN_TITLE_MAX) {
        len = RUN_TITLE_MAX;
        while (len && ((unsigned char)b.p[len] & 0xC0) == 0x80)
            len--;
    }
    json_t *out = json_stringn_nocheck(b.p ? b.p : "", len);
    free(b.p);
    return out;
}

enum as_code run_titles_get(struct run_titles *t, struct db_conn *conn, const char *wf_hash,
                            const char *input_json, json_t **user, json_t **title,
                            struct as_err *err)
{
    *user = *title = NULL;
    const char *tmpl = NULL;
    enum as_code rc = template_of(t, conn, wf_hash, &tmpl, err);
    if (rc)
        return rc;
    json_t *input = json_loads(input_json ? input_json : "{}", 0, NULL);
    const json_t *u = json_object_get(input, "user");
    *user = json_is_string(u) ? json_incref((json_t *)u) : json_null();
    if (tmpl) {
        json_t *scope = json_pack("{s:O}", "input", input ? input : json_null());
        char *text = NULL;
        struct as_err terr = {0};
        /* A template that does not resolve (it was validated, but the input
         * may be odd) gives no title rather than failing the listing. */
        if (scope && tmpl_render(tmpl, scope, TMPL_RAW, &text, &terr) == AS_OK)
            *title = one_line(text);
        free(text);
        json_decref(scope);
    }
    json_decref(input);
    if (!*title)
        *title = json_null();
    if (!*user || !*title) {
        json_decref(*user);
        json_decref(*title);
        *user = *title = NULL;
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    return AS_OK;
}

struct annotate_ctx {
    struct run_titles *t;
    struct db_conn *conn;
    json_t *pair; /* [user, title] of the run read */
    enum as_code rc;
    struct as_err *err;
};

static int take_run(void *ud, const struct db_run_info *r)
{
    struct annotate_ctx *a = ud;
    json_t *user, *title;
    a->rc = run_titles_get(a->t, a->conn, r->hash, r->input, &user, &title, a->err);
    if (!a->rc && !(a->pair = json_pack("[o, o]", user, title)))
        a->rc = as_errf(a->err, AS_ENOMEM, "out of memory");
    return 1;
}

enum as_code run_titles_annotate(struct db *db, json_t *rows, struct as_err *err)
{
    struct run_titles *t = run_titles_new();
    json_t *by_run = json_object();
    struct db_conn *conn = NULL;
    enum as_code rc = AS_OK;
    if (!t || !by_run) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    rc = db_read_begin(db, &conn, err);
    if (rc)
        goto out;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const json_t *id = json_object_get(row, "run_id");
        if (!json_is_integer(id))
            continue;
        char key[32];
        snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        json_t *pair = json_object_get(by_run, key);
        if (!pair) {
            struct annotate_ctx a = {.t = t, .conn = conn, .err = err};
            struct as_err gerr = {0};
            enum as_code grc = db_run_get(conn, json_integer_value(id), take_run, &a, &gerr);
            if (grc && grc != AS_ENOTFOUND) {
                *err = gerr;
                rc = grc;
                break;
            }
            if (a.rc) {
                rc = a.rc;
                break;
            }
            if (!a.pair)
                a.pair = json_pack("[n, n]");
            if (!a.pair || json_object_set_new(by_run, key, a.pair) != 0) {
                rc = as_errf(err, AS_ENOMEM, "out of memory");
                break;
            }
            pair = a.pair;
        }
        if (json_object_set(row, "user", json_array_get(pair, 0)) != 0 ||
            json_object_set(row, "title", json_array_get(pair, 1)) != 0) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            break;
        }
    }
    db_read_end(db, conn);
out:
    json_decref(by_run);
    run_titles_free(t);
    return rc;
}
