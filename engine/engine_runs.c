/*
 * engine_runs.c - starting and steering runs (contract in engine.h): submit
 * (one or a batch, with input checks and dedupe), cancel, retry, and waiting
 * for a run to end.  Each is one write transaction through db/db_runs.h;
 * an in-process engine is woken afterwards.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "base/config.h"
#include "engine/engine.h"
#include "base/encode.h"
#include <ctype.h>

#include "engine/engine_internal.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "engine/workflow.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* fetched once: an implicit fetch per digest is slow */

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int sha256_hex(const char *s, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(s, strlen(s), md, &len, sha256_md, NULL) || len != 32)
        return -1;
    encode_hex(md, 32, out);
    return 0;
}

static enum as_code submit_locked(struct db_conn *conn, struct db_event_chain *chain,
                                  const struct workflow *wf, int64_t wf_id,
                                  const json_t *input, const char *dedupe_key,
                                  const struct engine_run_opts *opts, int64_t now, int64_t *run_id,
                                  struct as_err *err)
{
    char *text = engine_dump(input);
    json_t *data = NULL;
    enum as_code rc;
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct db_run_new r = {
        .workflow_id = wf_id,
        .workflow = wf->name,
        .input = text,
        .dedupe_key = dedupe_key,
        .trigger = opts ? opts->trigger : NULL,
        .kpi = opts ? opts->kpi : NULL,
        .dry_run = opts ? opts->dry_run : 0,
    };
    rc = db_run_insert(conn, &r, now, run_id, err);
    if (rc)
        goto out;
    rc = db_exec_insert(conn, *run_id, wf->start, now, now, NULL, err);
    if (rc)
        goto out;
    /* The event carries the input's digest, so the audit trail attests what the run
     * started with without copying every input into the log. */
    char digest[65];
    if (sha256_hex(text, digest)) {
        rc = as_errf(err, AS_ENOMEM, "cannot compute SHA-256");
        goto out;
    }
    data = json_pack("{s:s, s:s, s:s, s:b}", "workflow", wf->name, "version", wf->version,
                     "hash", wf->hash, "dry_run", r.dry_run);
    if (!data) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (r.trigger)
        json_object_set_new(data, "trigger", json_string(r.trigger));
    if (dedupe_key)
        json_object_set_new(data, "dedupe_key", json_string(dedupe_key));
    if (r.kpi)
        json_object_set_new(data, "kpi", json_string(r.kpi));
    if (opts && opts->actor)
        json_object_set_new(data, "actor", json_string(opts->actor));
    json_object_set_new(data, "input_sha256", json_string(digest));
    rc = engine_event_json(conn, chain, *run_id, 0, "run.created", data, now, err);
    data = NULL;
out:
    json_decref(data);
    free(text);
    return rc;
}

/* Store wf's version if new; *id is its row.  The stored text is the
 * canonical JSON, which carries the effective "start" (see wf_load). */
static enum as_code put_workflow(struct db_conn *conn, const struct workflow *wf,
                                 const char *source_path, int64_t now, int64_t *id,
                                 struct as_err *err)
{
    struct db_workflow_rec rec = {
        .name = wf->name,
        .version = wf->version,
        .hash = wf->hash,
        .definition = wf->canonical,
        .source_path = source_path,
    };
    return db_workflow_put(conn, &rec, now, id, err);
}

enum as_code engine_submit_run(struct app *app, const struct workflow *wf, const json_t *input,
                               const struct engine_run_opts *opts, int64_t *run_id,
                               struct as_err *err)
{
    struct engine_run_req req = {.input = input, .dedupe_key = opts ? opts->dedupe_key : NULL};
    int created = 0;
    *run_id = 0;
    enum as_code rc = engine_submit_runs(app, wf, &req, 1, opts, run_id, &created, NULL, err);
    if (!rc && !created)
        rc = as_errf(err, AS_ECONFLICT, "run %" PRId64 " of %s with dedupe key \"%s\" is still open",
                     *run_id, wf->name, req.dedupe_key ? req.dedupe_key : "");
    return rc;
}

enum as_code engine_submit_runs(struct app *app, const struct workflow *wf,
                                const struct engine_run_req *reqs, size_t n,
                                const struct engine_run_opts *opts, int64_t *run_ids,
                                int *created, size_t *n_created, struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t **inputs = NULL;
    size_t n_new = 0;
    struct db_conn *conn = NULL;
    char *abs_source = NULL;

    if (n_created)
        *n_created = 0;
    if (n == 0)
        return AS_OK;
    inputs = calloc(n, sizeof *inputs);
    if (!inputs)
        return as_errf(err, AS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *given = engine_input_with_config(app, wf, reqs[i].input);
        if (!given) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        rc = wf_input_prepare(wf, given, &inputs[i], err);
        json_decref(given);
        if (rc) {
            if (n > 1)
                as_err_prefix(err, "run %zu of %zu", i + 1, n);
            goto out;
        }
    }
    /* Files next to the workflow (email templates) are found through its
     * path, by workers that may run anywhere: store it absolute, resolved
     * here where it was opened.  A path that no longer resolves is kept. */
    if (opts && opts->source_path) {
        abs_source = realpath(opts->source_path, NULL);
        if (!abs_source)
            LOG_WARN("engine", "%s: %s; storing the path as given", opts->source_path,
                     strerror(errno));
    }
    int64_t now = time_now_ms(), wf_id = 0;
    struct db_event_chain chain = {0};
    rc = db_write_begin(app->db, &conn, err);
    if (rc)
        goto out;
    rc = put_workflow(conn, wf, abs_source ? abs_source : opts ? opts->source_path : NULL, now,
                      &wf_id, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const char *key = reqs[i].dedupe_key;
        rc = submit_locked(conn, &chain, wf, wf_id, inputs[i], key, opts, now, &run_ids[i], err);
        if (rc == AS_ECONFLICT) {
            if (created)
                created[i] = 0;
            rc = AS_OK;
            continue;
        }
        if (rc)
            break;
        if (created)
            created[i] = 1;
        n_new++;
    }
    rc = db_write_end(app->db, rc, err);
    if (rc)
        goto out;
    if (n_created)
        *n_created = n_new;
    if (n_new) {
        LOG_DEBUG("engine", "started %zu run(s) of %s v%s", n_new, wf->name, wf->version);
        engine_wake(app->engine);
    }
out:
    for (size_t i = 0; i < n; i++)
        json_decref(inputs[i]);
    free(inputs);
    free(abs_source);
    return rc;
}

/* "a@x, b@y" as ["a@x", "b@y"] (empty items left out). */
static json_t *split_list(const char *s)
{
    json_t *arr = json_array();
    while (arr && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *a = s, *b = s + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a && json_array_append_new(arr, json_stringn(a, (size_t)(b - a)))) {
            json_decref(arr);
            return NULL;
        }
        s += len + (end ? 1 : 0);
    }
    return arr;
}

json_t *engine_input_with_config(const struct app *app, const struct workflow *wf,
                                 const json_t *input)
{
    json_t *out = input ? json_deep_copy(input) : json_object();
    const char *name;
    json_t *spec;
    if (!out || !app || !app->cfg || !json_is_object(wf->input) || !json_is_object(out))
        return out;
    json_object_foreach((json_t *)wf->input, name, spec)
    {
        const char *key = json_string_value(json_object_get(spec, "config_default"));
        const json_t *have = json_object_get(out, name);
        if (!key || (have && !json_is_null(have)))
            continue;
        const char *value = config_str(app->cfg, key);
        if (!value || !*value)
            continue;
        const char *type = json_string_value(json_object_get(spec, "type"));
        json_t *v = type && strcmp(type, "array") == 0 ? split_list(value) : json_string(value);
        if (!v || json_object_set_new(out, name, v)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Run op(conn, run_id) and log `type` (with who asked, when known) in one transaction. */
static enum as_code steer(struct app *app, int64_t run_id, const char *type,
                          enum as_code (*op)(struct db_conn *, int64_t, int64_t, struct as_err *),
                          const char *actor, const char *via, struct as_err *err)
{
    struct db_conn *conn;
    int64_t now = time_now_ms();
    json_t *data = json_pack("{s:s?, s:s?}", "actor", actor, "via", via);
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(data);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_write_begin(app->db, &conn, err);
    if (rc) {
        free(text);
        return rc;
    }
    rc = op(conn, run_id, now, err);
    if (!rc)
        rc = db_event_append_text(conn, run_id, 0, type, text, now, err);
    free(text);
    rc = db_write_end(app->db, rc, err);
    if (!rc)
        engine_wake(app->engine);
    return rc;
}

static enum as_code cancel_op(struct db_conn *conn, int64_t run_id, int64_t now,
                              struct as_err *err)
{
    return db_run_cancel(conn, run_id, now, err);
}

static enum as_code retry_op(struct db_conn *conn, int64_t run_id, int64_t now,
                             struct as_err *err)
{
    return db_run_retry(conn, run_id, now, NULL, err);
}

enum as_code engine_cancel_run(struct app *app, int64_t run_id, struct as_err *err)
{
    return engine_cancel_run_as(app, run_id, NULL, NULL, err);
}

enum as_code engine_cancel_run_as(struct app *app, int64_t run_id, const char *actor,
                                  const char *via, struct as_err *err)
{
    enum as_code rc = steer(app, run_id, "run.cancelled", cancel_op, actor, via, err);
    if (!rc && app->engine) {
        struct engine *e = app->engine;
        engine_note_ended(e);
    }
    return rc;
}

enum as_code engine_supersede_run(struct app *app, int64_t run_id, const char *kpi,
                                  const char *reason, struct as_err *err)
{
    struct db_conn *conn;
    int64_t now = time_now_ms();
    json_t *data = json_pack("{s:s, s:s?}", "reason", reason, "kpi", kpi);
    if (!data)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_write_begin(app->db, &conn, err);
    if (rc) {
        json_decref(data);
        return rc;
    }
    rc = db_run_supersede(conn, run_id, reason, now, err);
    if (!rc)
        rc = db_event_append(conn, run_id, 0, "run.superseded", data, err);
    json_decref(data);
    rc = db_write_end(app->db, rc, err);
    if (!rc) {
        engine_wake(app->engine);
        if (app->engine)
            engine_note_ended(app->engine);
    }
    return rc;
}

enum as_code engine_retry_run(struct app *app, int64_t run_id, struct as_err *err)
{
    return engine_retry_run_as(app, run_id, NULL, NULL, err);
}

enum as_code engine_retry_run_as(struct app *app, int64_t run_id, const char *actor,
                                 const char *via, struct as_err *err)
{
    return steer(app, run_id, "run.retried", retry_op, actor, via, err);
}

static int status_open(const char *s)
{
    return strcmp(s, "running") == 0 || strcmp(s, "waiting") == 0;
}

enum as_code engine_wait_run(struct app *app, int64_t run_id, int64_t timeout_ms, char *status,
                             size_t size, struct as_err *err)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : time_mono_ms() + timeout_ms;
    for (;;) {
        struct db_conn *conn;
        struct engine *e = app->engine;
        uint64_t gen = 0;
        if (e) {
            /* Read the generation before the status, so an end in between is not missed. */
            gen = engine_ended_gen(e);
        }
        enum as_code rc = db_read_begin(app->db, &conn, err);
        if (rc)
            return rc;
        rc = db_run_status(conn, run_id, status, size, err);
        db_read_end(app->db, conn);
        if (rc)
            return rc;
        if (!status_open(status))
            return AS_OK;
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return AS_ETIMEOUT;
        int64_t wait = left < POLL_MS ? left : POLL_MS;
        if (e) {
            engine_wait_ended(e, gen, wait);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                                  .tv_nsec = (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}
