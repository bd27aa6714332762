/* run_history.c - a run's history as JSON, and its timeline (see run_history.h). */
#include "engine/run_history.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "base/timeutil.h"

#define SHORT_OUTPUT 240

static json_t *parse_text(const char *text)
{
    if (!text || !*text)
        return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(text);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

static int run_cb(void *ud, const struct db_run_info *r)
{
    json_t **out = ud;
    *out = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:o, s:o, s:I, s:o, s:o}", "id",
                     (json_int_t)r->id, "workflow", r->workflow, "version", r->version, "hash",
                     r->hash, "status", r->status, "error", str_or_null(r->error), "input",
                     parse_text(r->input), "dry_run", r->dry_run, "trigger",
                     str_or_null(r->trigger), "dedupe_key", str_or_null(r->dedupe_key),
                     "created_at", (json_int_t)r->created_at, "finished_at",
                     time_or_null(r->finished_at), "duration_ms",
                     r->finished_at ? json_integer(r->finished_at - r->created_at) : json_null());
    return 0;
}

static int exec_cb(void *ud, const struct db_exec_info *e)
{
    json_t *steps = ud;
    int open = !strcmp(e->status, "ready") || !strcmp(e->status, "waiting");
    json_t *s = json_pack(
        "{s:I, s:s, s:i, s:s, s:i, s:o, s:o, s:o, s:o, s:s, s:I, s:o, s:o, s:o, s:[]}", "id",
        (json_int_t)e->id, "step", e->step, "visit", e->visit, "status", e->status, "attempts",
        e->attempt, "outcome", str_or_null(e->outcome), "output", parse_text(e->output), "error",
        str_or_null(e->error), "params", parse_text(e->params), "idempotency_key",
        e->idempotency_key, "created_at", (json_int_t)e->created_at, "started_at",
        time_or_null(e->started_at), "finished_at", time_or_null(e->finished_at), "due_at",
        open ? json_integer(e->due_at) : json_null(), "history");
    if (s)
        json_array_append_new(steps, s);
    return 0;
}

struct ev_ctx {
    json_t *steps;
    json_t *events; /* NULL unless with_events */
};

static int event_cb(void *ud, const struct db_event_info *ev)
{
    struct ev_ctx *c = ud;
    json_t *data = parse_text(ev->data);
    if (c->events)
        json_array_append_new(c->events,
                              json_pack("{s:I, s:I, s:s, s:o, s:O}", "id", (json_int_t)ev->id, "ts",
                                        (json_int_t)ev->ts, "type", ev->type, "exec_id",
                                        ev->exec_id ? json_integer(ev->exec_id) : json_null(),
                                        "data", data));
    if (ev->exec_id) {
        size_t i;
        json_t *s;
        json_array_foreach(c->steps, i, s) {
            if (json_integer_value(json_object_get(s, "id")) != ev->exec_id)
                continue;
            json_t *h = json_is_object(data) ? json_copy(data) : json_object();
            if (h) {
                json_object_del(h, "step");
                json_object_set_new(h, "event", json_string(ev->type));
                json_object_set_new(h, "at", json_integer(ev->ts));
                json_array_append_new(json_object_get(s, "history"), h);
            }
            break;
        }
    }
    json_decref(data);
    return 0;
}

enum as_code run_history_load(struct db *db, int64_t run_id, int with_events, json_t **out,
                              struct as_err *err)
{
    struct db_conn *conn;
    json_t *run = NULL, *steps = json_array(), *events = with_events ? json_array() : NULL;
    *out = NULL;
    if (!steps || (with_events && !events)) {
        json_decref(steps);
        json_decref(events);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    enum as_code rc = db_read_begin(db, &conn, err);
    if (rc)
        goto out;
    rc = db_run_get(conn, run_id, run_cb, &run, err);
    if (!rc)
        rc = db_run_execs(conn, run_id, exec_cb, steps, err);
    struct ev_ctx ec = {.steps = steps, .events = events};
    if (!rc)
        rc = db_run_events(conn, run_id, event_cb, &ec, err);
    db_read_end(db, conn);
    if (rc)
        goto out;
    if (!run) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    *out = json_pack("{s:O, s:O}", "run", run, "steps", steps);
    if (*out && events)
        json_object_set(*out, "events", events);
    if (!*out)
        rc = as_errf(err, AS_ENOMEM, "out of memory");
out:
    json_decref(run);
    json_decref(steps);
    json_decref(events);
    return rc;
}

void run_history_duration(int64_t ms, char *buf, size_t size)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, size, "%" PRId64 "ms", ms);
    else if (ms < 60000)
        snprintf(buf, size, "%" PRId64 ".%03" PRId64 "s", ms / 1000, ms % 1000);
    else if (ms < 3600000)
        snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", ms / 60000, (ms / 1000) % 60);
    else if (ms < 86400000)
        snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", ms / 3600000, (ms / 60000) % 60);
    else
        snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h", ms / 86400000, (ms / 3600000) % 24);
}

static int64_t iget(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* "19:11:08.123" (UTC) of a timestamp. */
static void clock_time(int64_t ms, char *buf, size_t size)
{
    char iso[40];
    time_format_iso(ms, iso, sizeof iso);
    snprintf(buf, size, "%.12s", strlen(iso) > 11 ? iso + 11 : iso);
}

/* JSON value on one line, shortened to max bytes unless max is 0. */
static void print_json_line(FILE *f, const char *label, const json_t *v, size_t max)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return;
    size_t len = strlen(s);
    if (max && len > max)
        fprintf(f, "      %s %.*s... (%zu bytes)\n", label, (int)max, s, len);
    else
        fprintf(f, "      %s %s\n", label, s);
    free(s);
}

static void print_history_entry(FILE *f, const json_t *h)
{
    const char *ev = sget(h, "event");
    char at[16], dur[32], when[16];
    clock_time(iget(h, "at"), at, sizeof at);
    int attempt = (int)iget(h, "attempt");
    if (json_object_get(h, "started_at"))
        clock_time(iget(h, "started_at"), at, sizeof at);
    run_history_duration(iget(h, "duration_ms"), dur, sizeof dur);
    if (!strcmp(ev, "step.succeeded")) {
        fprintf(f, "      attempt %d  %s  %-8s ok", attempt, at, dur);
        if (json_object_get(h, "outcome") && strcmp(sget(h, "outcome"), "success"))
            fprintf(f, " -> %s", sget(h, "outcome"));
        fprintf(f, "%s\n", json_is_true(json_object_get(h, "deadline_reached")) ? " (deadline reached)" : "");
    } else if (!strcmp(ev, "step.retry")) {
        clock_time(iget(h, "next_at"), when, sizeof when);
        fprintf(f, "      attempt %d  %s  %-8s retry at %s: %s\n", attempt, at, dur, when,
                sget(h, "error"));
    } else if (!strcmp(ev, "step.failed")) {
        fprintf(f, "      attempt %d  %s  %-8s failed: %s\n", attempt, at, dur, sget(h, "error"));
    } else if (!strcmp(ev, "step.waiting")) {
        char until[40];
        time_format_iso(iget(h, "until"), until, sizeof until);
        fprintf(f, "      attempt %d  %s  %-8s waiting until %s\n", attempt, at, dur, until);
    } else if (!strcmp(ev, "step.resumed")) {
        fprintf(f, "      resumed    %s", at);
        json_t *p = json_object_get(h, "payload");
        char *s = p ? json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (s && strlen(s) <= 120)
            fprintf(f, "           %s", s);
        free(s);
        fputc('\n', f);
    } else if (!strcmp(ev, "step.recovered")) {
        fprintf(f, "      attempt %d  %s  re-run: the previous claim (%s) was lost\n", attempt, at,
                sget(h, "previous_owner"));
    } else {
        fprintf(f, "      %-10s %s\n", ev, at);
    }
}

void run_history_print(FILE *f, const json_t *history, int verbose)
{
    const json_t *run = json_object_get(history, "run");
    const json_t *steps = json_object_get(history, "steps");
    char created[40], dur[32];
    time_format_iso(iget(run, "created_at"), created, sizeof created);
    const char *status = sget(run, "status");
    fprintf(f, "run %" PRId64 "  %s v%s (%.12s)  %s", iget(run, "id"), sget(run, "workflow"),
            sget(run, "version"), sget(run, "hash"), status);
    if (json_is_integer(json_object_get(run, "duration_ms"))) {
        run_history_duration(iget(run, "duration_ms"), dur, sizeof dur);
        fprintf(f, " after %s", dur);
    }
    fprintf(f, "%s\n", json_is_true(json_object_get(run, "dry_run")) ? "  [dry run]" : "");
    fprintf(f, "  started %s", created);
    if (*sget(run, "trigger"))
        fprintf(f, " by %s", sget(run, "trigger"));
    if (*sget(run, "dedupe_key"))
        fprintf(f, ", key %s", sget(run, "dedupe_key"));
    fputc('\n', f);
    char *input = json_dumps(json_object_get(run, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
    if (input) {
        size_t len = strlen(input);
        if (!verbose && len > SHORT_OUTPUT)
            fprintf(f, "  input %.*s... (%zu bytes)\n", SHORT_OUTPUT, input, len);
        else
            fprintf(f, "  input %s\n", input);
        free(input);
    }
    if (*sget(run, "error"))
        fprintf(f, "  error %s\n", sget(run, "error"));
    fputc('\n', f);

    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) {
        const char *st = sget(s, "status");
        fprintf(f, "  %zu. %s", i + 1, sget(s, "step"));
        if (iget(s, "visit") > 1)
            fprintf(f, " (visit %" PRId64 ")", iget(s, "visit"));
        fprintf(f, "  %s", st);
        if (*sget(s, "outcome") && strcmp(sget(s, "outcome"), "success") &&
            strcmp(sget(s, "outcome"), "error"))
            fprintf(f, " -> %s", sget(s, "outcome"));
        if (json_is_integer(json_object_get(s, "finished_at")) && strcmp(st, "waiting") &&
            strcmp(st, "ready")) {
            run_history_duration(iget(s, "finished_at") - iget(s, "created_at"), dur, sizeof dur);
            fprintf(f, "  in %s", dur);
        }
        if (!strcmp(st, "waiting") || !strcmp(st, "ready")) {
            char due[40];
            time_format_iso(iget(s, "due_at"), due, sizeof due);
            fprintf(f, "  %s %s", !strcmp(st, "waiting") ? "until" : "due", due);
        }
        fputc('\n', f);
        size_t j;
        json_t *h;
        json_array_foreach(json_object_get(s, "history"), j, h)
            print_history_entry(f, h);
        if (!strcmp(st, "running"))
            fprintf(f, "      attempt %" PRId64 " running\n", iget(s, "attempts"));
        const json_t *out = json_object_get(s, "output");
        if (out && !json_is_null(out))
            print_json_line(f, "output", out, verbose ? 0 : SHORT_OUTPUT);
        if (*sget(s, "error") && strcmp(st, "ready"))
            fprintf(f, "      error  %s\n", sget(s, "error"));
        if (verbose) {
            print_json_line(f, "params", json_object_get(s, "params"), 0);
            fprintf(f, "      key    %s\n", sget(s, "idempotency_key"));
        }
    }
    if (json_array_size(steps) == 0)
        fprintf(f, "  (no steps yet)\n");
}
