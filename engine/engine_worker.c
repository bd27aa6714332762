/*
 * engine_worker.c - the executor's worker threads (see engine_internal.h).
 *
 * A worker takes a claimed step execution from the queue, reads what the
 * step may refer to (the run's input and earlier steps' outputs, unless the
 * dispatcher handed over the predecessor's scope), resolves its ${...}
 * parameters, calls the step type's execute(), and turns the result into
 * what the dispatcher will write: status, due time (retry backoff with full
 * jitter, wait deadline), output and events as JSON text with their audit
 * digests.  Workers never write to the database.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "engine/engine_internal.h"
#include "base/expr.h"
#include "base/jsonbuf.h"
#include "base/log.h"
#include "base/retry.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "engine/step.h"

/*
 * Backoff before attempt `attempt`+1: full jitter over
 * min(max_backoff, backoff * factor^(attempt-1)), at least 1 ms.
 */
static int64_t backoff_ms(const struct wf_retry *r, int attempt)
{
    return retry_backoff_full(r->backoff_ms, r->factor, attempt, r->max_backoff_ms);
}

struct scope_build {
    json_t *steps;
};

json_t *engine_parse_text(const char *text)
{
    if (!text || !*text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

static int scope_add_step(void *ud, const struct db_exec_info *ex)
{
    struct scope_build *sb = ud;
    json_t *o = json_object();
    if (!o)
        return 1;
    int failed = strcmp(ex->status, "failed") == 0;
    json_object_set_new(o, "output", engine_parse_text(ex->output));
    json_object_set_new(o, "outcome", json_string(failed ? "error" : ex->outcome));
    json_object_set_new(o, "status", json_string(ex->status));
    if (failed)
        json_object_set_new(o, "error", json_string(ex->error));
    json_object_set_new(sb->steps, ex->step, o); /* a later visit replaces an earlier one */
    return 0;
}

/* Build the scope of ${...} references: {"input", "steps", "run"}. */
static enum as_code load_scope(struct engine *e, struct work *w, json_t **scope,
                               struct as_err *err)
{
    struct db_conn *conn;
    char *input_text = NULL;
    struct scope_build sb = {.steps = json_object()};
    *scope = NULL;
    if (!sb.steps)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = db_read_begin(e->app->db, &conn, err);
    if (rc)
        goto out;
    rc = db_run_scope(conn, w->c.run_id, &input_text, scope_add_step, &sb, err);
    db_read_end(e->app->db, conn);
    if (rc)
        goto out;
    json_t *input = json_loads(input_text, 0, NULL);
    if (!input)
        input = json_object();
    *scope = json_pack("{s:o, s:O, s:{s:I, s:s, s:s, s:b}}", "input", input, "steps",
                       sb.steps, "run", "id", (json_int_t)w->c.run_id, "workflow", w->wf->name,
                       "version", w->wf->version, "dry_run", w->c.dry_run);
    if (!*scope)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    json_decref(sb.steps);
    free(input_text);
    return rc;
}

void engine_work_set_error(struct work *w, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(w->error);
    w->error = strdup(buf);
}

/*
 * The step's events as text for the dispatcher, at most MAX_STEP_EVENTS.
 * Returns how many could not be turned into text (out of memory, or data
 * that json_dumps refuses): those are not recorded, and settle() fails the
 * step instead of letting them disappear.
 */
static size_t take_events(struct work *w, const json_t *events)
{
    size_t n = json_array_size(events), lost = 0;
    if (n > MAX_STEP_EVENTS) {
        LOG_WARN("engine", "run %" PRId64 " step %s appended %zu events; keeping %d",
                 w->c.run_id, w->c.step, n, MAX_STEP_EVENTS);
        n = MAX_STEP_EVENTS;
    }
    if (!n)
        return 0;
    w->events = calloc(n, sizeof *w->events);
    if (!w->events)
        return n;
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(events, i);
        const char *t = json_string_value(json_object_get(item, "type"));
        const json_t *data = json_object_get(item, "data");
        struct step_event_text *ev = &w->events[w->n_events];
        ev->type = strdup(t ? t : "step.event");
        ev->data = data ? engine_dump(data) : strdup("{}");
        if (!ev->type || !ev->data) {
            free(ev->type);
            free(ev->data);
            ev->type = ev->data = NULL;
            lost++;
            continue;
        }
        if (db_event_digest(ev->data, ev->digest))
            ev->digest[0] = '\0';
        w->n_events++;
    }
    return lost;
}

int engine_work_event(struct work *w)
{
    static const char *const types[] = {"", "step.succeeded", "step.waiting", "step.retry",
                                        "step.failed"};
    free(w->event_type);
    free(w->event_data);
    w->event_type = w->event_data = NULL;
    w->event_digest[0] = '\0';
    /* The event's JSON is written directly: a step's cost is mostly JSON work. */
    struct jsonbuf b = {0};
    jsonbuf_add(&b, "{\"step\":");
    jsonbuf_add_str(&b, w->c.step);
    jsonbuf_add(&b, ",\"attempt\":");
    jsonbuf_add_i64(&b, w->c.attempt);
    jsonbuf_add(&b, ",\"started_at\":");
    jsonbuf_add_i64(&b, w->started_ms);
    jsonbuf_add(&b, ",\"duration_ms\":");
    jsonbuf_add_i64(&b, w->finished_ms - w->started_ms);
    if (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED) {
        jsonbuf_add(&b, ",\"outcome\":");
        jsonbuf_add_str(&b, w->outcome);
    }
    if (w->error) {
        jsonbuf_add(&b, ",\"error\":");
        jsonbuf_add_str(&b, w->error);
    }
    if (w->kind == WK_WAITING || w->kind == WK_RETRY) {
        jsonbuf_add(&b, w->kind == WK_WAITING ? ",\"until\":" : ",\"next_at\":");
        jsonbuf_add_i64(&b, w->due_at);
    }
    if (w->c.deadline_reached)
        jsonbuf_add(&b, ",\"deadline_reached\":true");
    if (w->c.dry_run)
        jsonbuf_add(&b, ",\"dry_run\":true");
    jsonbuf_add(&b, "}");
    w->event_data = jsonbuf_take(&b);
    w->event_type = strdup(types[w->kind]);
    if (!w->event_type || !w->event_data) {
        free(w->event_type);
        free(w->event_data);
        w->event_type = w->event_data = NULL;
        return -1;
    }
    if (db_event_digest(w->event_data, w->event_digest))
        w->event_digest[0] = '\0';
    return 0;
}

/* Turn the step's result into the record the dispatcher writes. */
static void settle(struct engine *e, struct work *w, struct step_result *res, json_t *events,
                   int events_lost)
{
    const struct wf_retry *retry = w->step ? &w->step->retry : NULL;
    int max_attempts = retry ? retry->attempts : 1;
    int64_t now = w->finished_ms;
    size_t lost = (size_t)events_lost + take_events(w, events);

    switch (res->status) {
    case STEP_OK:
        w->kind = WK_SUCCEEDED;
        snprintf(w->outcome, sizeof w->outcome, "%s", res->outcome[0] ? res->outcome : "success");
        if (res->output) {
            w->output = engine_dump(res->output);
            if (!w->output) {
                /* Out of memory, or text json_dumps refuses: never a success
                 * that silently lost its output. */
                w->kind = WK_FAILED;
                engine_work_set_error(w, "the step's output could not be recorded "
                                         "(out of memory, or not valid JSON text)");
            } else if (strlen(w->output) > MAX_OUTPUT_BYTES) {
                free(w->output);
                w->output = NULL;
                w->kind = WK_FAILED;
                engine_work_set_error(w, "the step's output is larger than %d bytes", MAX_OUTPUT_BYTES);
            }
        }
        break;
    case STEP_WAIT:
        w->kind = WK_WAITING;
        w->due_at = res->wait_until_ms > 0 ? res->wait_until_ms : now + e->default_wait_ms;
        w->wait_state = res->wait_state ? engine_dump(res->wait_state) : NULL;
        if (res->wait_state && !w->wait_state) {
            w->kind = WK_FAILED;
            engine_work_set_error(w, "the step's wait state could not be recorded "
                                     "(out of memory, or not valid JSON text)");
        }
        break;
    case STEP_RETRY:
        engine_work_set_error(w, "%s", res->error[0] ? res->error : "transient failure");
        if (w->c.attempt < max_attempts) {
            w->kind = WK_RETRY;
            w->due_at = now + backoff_ms(retry, w->c.attempt);
            if (res->wait_until_ms > w->due_at)
                w->due_at = res->wait_until_ms;
        } else {
            w->kind = WK_FAILED;
            engine_work_set_error(w, "gave up after %d attempt%s: %s", w->c.attempt,
                      w->c.attempt == 1 ? "" : "s", res->error[0] ? res->error : "transient failure");
        }
        break;
    case STEP_FAILED:
    default:
        w->kind = WK_FAILED;
        engine_work_set_error(w, "%s", res->error[0] ? res->error : "failed");
        break;
    }
    if (lost) {
        /* An event the step reported (a write it made, a mail it sent) that
         * cannot be recorded makes the step fail visibly, whatever it
         * returned: the run's log must not be silently incomplete. */
        char was[1100];
        snprintf(was, sizeof was, "%s", w->kind == WK_FAILED && w->error ? w->error : "");
        w->kind = WK_FAILED;
        free(w->wait_state);
        w->wait_state = NULL;
        engine_work_set_error(w, "%zu event%s of this step could not be recorded (out of memory, "
                              "or not valid JSON text); the step is failed rather than left "
                              "without %s%s%s",
                              lost, lost == 1 ? "" : "s", lost == 1 ? "it" : "them",
                              was[0] ? "; it had failed: " : "", was);
        LOG_ERROR("engine", "run %" PRId64 " step %s: %s", w->c.run_id, w->c.step, w->error);
    }
    if (w->kind == WK_FAILED) {
        snprintf(w->outcome, sizeof w->outcome, "error");
        /* A failed step's output (e.g. http's {status, headers, body} of a 404)
         * is kept, so an `error` branch can look at it; a retry's is not. */
        if (res->output && res->status != STEP_OK) {
            w->output = engine_dump(res->output);
            if (w->output && strlen(w->output) > MAX_OUTPUT_BYTES) {
                free(w->output);
                w->output = NULL;
            }
        }
    }
    /* On failure the dispatcher builds the event again before it writes,
     * and fails the transaction (to be retried) if it still cannot. */
    (void)engine_work_event(w);
}

/*
 * Add the finished step to its scope for the run's next step: exactly what
 * load_scope() would read back once the result is committed.  A step that
 * does not end (retry, wait) gives its scope up.
 */
static void keep_scope(struct work *w, struct step_result *res)
{
    json_t *steps = json_object_get(w->scope, "steps");
    json_t *o = NULL;
    /* A step after which the run ends needs no scope: free it here rather
     * than in the dispatcher (the one writer), which would otherwise spend
     * a few hundred free() calls per run on it. */
    const char *outcome = w->kind == WK_FAILED ? "error" : w->outcome;
    if ((w->kind == WK_SUCCEEDED || w->kind == WK_FAILED) && w->wf && w->step && outcome &&
        !wf_next(w->wf, w->step, outcome))
        steps = NULL;
    if (steps && (w->kind == WK_SUCCEEDED || w->kind == WK_FAILED)) {
        int failed = w->kind == WK_FAILED;
        o = json_pack("{s:O, s:s, s:s}", "output",
                      w->output && res->output ? res->output : json_null(), "outcome",
                      w->outcome, "status", failed ? "failed" : "succeeded");
        if (o && failed)
            json_object_set_new(o, "error", json_string(w->error ? w->error : ""));
    }
    if (!o || json_object_set_new(steps, w->c.step, o) != 0) {
        json_decref(w->scope);
        w->scope = NULL;
    }
}

static void run_work(struct engine *e, struct work *w)
{
    struct step_result res;
    struct as_err err = {0};
    json_t *params = NULL, *resume = NULL, *wait_state = NULL;
    json_t *events = json_array();
    int events_lost = 0;
    memset(&res, 0, sizeof res);

    w->started_ms = time_now_ms();
    if (!events) {
        step_fail(&res, "out of memory before the step started");
        goto done;
    }
    if (!w->wf || !w->step) {
        step_fail(&res, "%s", w->load_error ? w->load_error : "step not found in its workflow");
        goto done;
    }
    if (w->c.recoveries > MAX_RECOVERIES) {
        step_fail(&res, "the engine stopped %d times while running this step; not trying again "
                  "(`assent retry` re-queues it)", w->c.recoveries);
        goto done;
    }
    enum as_code rc = w->scope ? AS_OK : load_scope(e, w, &w->scope, &err);
    if (rc) {
        step_retry(&res, 0, "could not read the run's state: %s", err.msg);
        goto done;
    }
    json_t *scope = w->scope;
    rc = tmpl_resolve(w->step->params, scope, &params, &err);
    if (rc) {
        /* Same scope, same answer: a parameter that does not resolve never will. */
        step_fail(&res, "parameters: %s", err.msg);
        goto done;
    }
    w->params = engine_dump(params);
    resume = w->c.resume ? engine_parse_text(w->c.resume) : NULL;
    wait_state = w->c.wait_state ? engine_parse_text(w->c.wait_state) : NULL;

    struct step_ctx ctx = {
        .app = e->app,
        .run_id = w->c.run_id,
        .exec_id = w->c.exec_id,
        .workflow = w->wf->name,
        .step_name = w->c.step,
        .idempotency_key = w->c.idempotency_key,
        .attempt = w->c.attempt,
        .max_attempts = w->step->retry.attempts,
        .timeout_ms = w->step->timeout_ms,
        .now_ms = w->started_ms,
        .dry_run = w->c.dry_run,
        .params = params,
        .input = json_object_get(scope, "input"),
        .steps = json_object_get(scope, "steps"),
        .resume = resume,
        .wait_state = wait_state,
        .deadline_reached = w->c.deadline_reached,
        .events = events,
    };
    w->step->type->execute(&ctx, &res);
    events_lost = ctx.events_lost;

done:
    w->finished_ms = time_now_ms();
    if (w->step && w->finished_ms - w->started_ms > w->step->timeout_ms)
        LOG_WARN("engine", "run %" PRId64 " step %s ran %" PRId64 " ms, past its timeout of %" PRId64
                 " ms; its result is kept",
                 w->c.run_id, w->c.step, w->finished_ms - w->started_ms, w->step->timeout_ms);
    settle(e, w, &res, events, events_lost);
    keep_scope(w, &res);
    json_decref(res.output);
    json_decref(res.wait_state);
    json_decref(events);
    json_decref(resume);
    json_decref(wait_state);
    json_decref(params);
}

void *engine_worker_main(void *arg)
{
    struct engine *e = arg;
    pthread_setname_np(pthread_self(), "assent-worker");
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->todo_head && !e->quit_workers)
            pthread_cond_wait(&e->work_cond, &e->lock);
        if (!e->todo_head)
            break;
        struct work *w = e->todo_head;
        e->todo_head = w->next;
        if (!e->todo_head)
            e->todo_tail = NULL;
        w->next = NULL;
        e->n_todo--;
        e->n_busy++;
        int stopping = e->stopping;
        pthread_mutex_unlock(&e->lock);

        int64_t need = (w->step ? w->step->timeout_ms : 0) + LEASE_SAFETY_MS;
        if (stopping || w->c.lease_until - time_now_ms() < need)
            w->kind = WK_RELEASE;
        else
            run_work(e, w);

        pthread_mutex_lock(&e->lock);
        if (e->done_tail)
            e->done_tail->next = w;
        else
            e->done_head = w;
        e->done_tail = w;
        e->n_busy--;
        e->stats.steps += w->kind != WK_RELEASE;
        pthread_cond_signal(&e->disp_cond);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}
