/*
 * step.h - the contract between the executor and a step type.
 *
 * A step type is one file in steps/ or m365/ (or approvals/ for the
 * approval step) exporting `const struct step_type step_type_<name>`, listed
 * once in its layer's register function (steps_register, m365_register,
 * approvals_register), which a program calls at start.  It declares its parameters (checked by
 * `assent validate` before any run starts) and an execute function.
 *
 * Execution model.  The executor claims a step with a lease, resolves its
 * `${...}` references into ctx->params, and calls execute() on a worker
 * thread.  execute() must not write to the database itself except through
 * the db_* functions its own feature owns (e.g. approvals); the step's
 * result and the scheduling of its successors are committed by the executor
 * in one transaction.  Because a crash can happen after a side effect and
 * before that commit, a claim may be executed again with the SAME
 * ctx->idempotency_key: a step with side effects must use that key to avoid
 * repeating them (Idempotency-Key header, Message-ID, read-before-write).
 *
 * Waiting.  A step that waits for the outside world (approval, delay)
 * returns STEP_WAIT with a deadline and an optional state object.  No thread
 * or memory is held while it waits: the wait is a row in SQLite.  The step is
 * executed again when the deadline passes (ctx->deadline_reached = 1) or
 * when something resumes it (ctx->resume = the payload), with ctx->wait_state
 * = the state it saved.  Every wait has a deadline.
 */
#ifndef ASSENT_STEP_H
#define ASSENT_STEP_H

#include <jansson.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/error.h"

struct app;

enum step_param_type {
    SP_STRING,
    SP_INT,
    SP_BOOL,
    SP_NUMBER,
    SP_OBJECT,
    SP_ARRAY,
    SP_STRING_ARRAY,
    SP_DURATION, /* string: ISO 8601 duration or 500ms/2s/5m/3h/7d */
    SP_EXPR,     /* string in the expression language (engine/expr.h) */
    SP_ANY,
};

struct step_param {
    const char *name;
    enum step_param_type type;
    int required;
    const char *doc;
};

enum step_status {
    STEP_OK,     /* done; follow next[outcome] (or the default next) */
    STEP_WAIT,   /* park until wait_until_ms or a resume */
    STEP_RETRY,  /* transient failure: retry per the step's policy */
    STEP_FAILED, /* permanent failure: follow next.error if given, else fail the run */
};

struct step_ctx {
    struct app *app;
    int64_t run_id;
    int64_t exec_id;
    const char *workflow;        /* workflow name */
    const char *step_name;
    const char *idempotency_key; /* stable across attempts and re-claims of this step */
    int attempt;                 /* 1-based */
    int max_attempts;
    int64_t timeout_ms;          /* the step's timeout; honour it in blocking calls */
    int64_t now_ms;
    int dry_run;                 /* run started with --dry-run: record, don't act */
    const json_t *params;        /* resolved parameters (borrowed) */
    const json_t *input;         /* the run's input (borrowed) */
    const json_t *steps;         /* {"name": {"output":..., "outcome":...}} of earlier steps (borrowed) */
    const json_t *resume;        /* payload that woke a waiting step, or NULL */
    const json_t *wait_state;    /* state saved by the last STEP_WAIT, or NULL */
    int deadline_reached;        /* woke because wait_until passed */
    json_t *events;              /* array: append {"type":..,"data":..} to add to the run's event log */
    int events_lost;             /* events step_event() could not append (out of memory): the
                                  * engine fails the step rather than record it without them */
};

struct step_result {
    enum step_status status;
    char outcome[32];      /* "" = default next; e.g. "approved", "true" */
    json_t *output;        /* new reference or NULL; becomes steps.<name>.output */
    json_t *wait_state;    /* STEP_WAIT: new reference or NULL */
    int64_t wait_until_ms; /* STEP_WAIT: deadline; STEP_RETRY: earliest retry (0 = policy) */
    char error[1024];      /* STEP_RETRY/STEP_FAILED: human message (no secrets) */
};

struct step_type {
    const char *name;
    const char *doc;
    const struct step_param *params; /* terminated by {NULL} */
    const char *const *outcomes;     /* outcomes it may produce, NULL-terminated; "error" is implicit */
    int waits;                       /* may return STEP_WAIT (so needs an expiry) */
    /*
     * Optional extra checks at validate time (e.g. manage_cas refuses to
     * disable OWA without allow_lockout).  `params` are unresolved; `path`
     * is the JSON path of the params object.  Add diagnostics to `out`.
     */
    void (*validate)(const json_t *params, const char *path, struct diag_list *out);
    /* Run the step.  Must fill res; must not keep pointers into ctx. */
    void (*execute)(struct step_ctx *ctx, struct step_result *res);
};

/*
 * Register the NULL-terminated table `types` (borrowed for the process
 * lifetime).  The engine knows no step type of its own: each layer above it
 * registers its types (steps_register, approvals_register, m365_register)
 * once at start, before a workflow is loaded; not thread-safe.  A name
 * already registered is skipped.  step_types() lists them in registration
 * order.
 */
void step_types_register(const struct step_type *const *types);

/* The registered type called `name`, or NULL. */
const struct step_type *step_type_find(const char *name);

/* All registered types, NULL-terminated (for docs and the schema test). */
const struct step_type *const *step_types(void);

/* Tests only: make step_type_find() also find `types` (NULL-terminated,
 * borrowed for the process lifetime; NULL removes them).  Not thread-safe:
 * call before any lookup.  step_types() does not list them. */
void step_type_register_extra(const struct step_type *const *types);

/* Result helpers. `output` is stolen. */
void step_ok(struct step_result *res, const char *outcome, json_t *output);
void step_fail(struct step_result *res, const char *fmt, ...) AS_PRINTF(2, 3);
void step_retry(struct step_result *res, int64_t not_before_ms, const char *fmt, ...) AS_PRINTF(3, 4);
void step_wait(struct step_result *res, int64_t until_ms, json_t *state);

/* Append an event to ctx->events; data is stolen.  When the event cannot be
 * built or appended (out of memory; data NULL after a failed json_pack counts
 * too), ctx->events_lost is incremented.  Without ctx->events (a step run
 * outside the engine) the event is dropped. */
void step_event(struct step_ctx *ctx, const char *type, json_t *data);

#endif
