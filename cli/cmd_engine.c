/*
 * cmd_engine.c - the commands around runs: `assent run`, `worker`, `runs`,
 * `show`, `cancel`, `retry` and `audit verify`.  They parse their options,
 * then call engine/engine.h (starting and steering runs, the executor),
 * engine/run_history.h (timelines) and db/db_runs.h (listing, audit).
 *
 * Signals: `run --wait` and `worker` block SIGINT and SIGTERM before the
 * engine's threads start (so the threads inherit the mask) and wait for
 * them with sigtimedwait() on the main thread; on one they stop claiming,
 * let running steps finish for shutdown_grace_seconds and exit.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "db/db_runs.h"
#include "base/config.h"
#include "base/file.h"
#include "engine/engine.h"
#include "base/log.h"
#include "engine/run_history.h"
#include "engine/run_list.h"
#include "engine/run_title.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "steps/mail.h"

#define MAX_INPUT_BYTES (16 * 1024 * 1024)

/* ---- shared helpers ------------------------------------------------------- */

/* The value after option argv[*i] (advancing *i), or NULL with a message. */
static const char *opt_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "assent %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Read the whole file at path (at most MAX_INPUT_BYTES); malloc'd text or NULL with err. */
static char *read_text_file(const char *path, struct as_err *err)
{
    char *buf = NULL;
    return file_read(path, MAX_INPUT_BYTES, &buf, NULL, err) == AS_OK ? buf : NULL;
}

/* --input JSON or @FILE into a new object. */
static json_t *parse_input(const char *arg, struct as_err *err)
{
    char *file_text = NULL;
    const char *text = arg;
    if (arg[0] == '@') {
        file_text = read_text_file(arg + 1, err);
        if (!file_text)
            return NULL;
        text = file_text;
    }
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        as_errf(err, AS_EINVAL, "%s:%d:%d: %s", file_text ? arg + 1 : "--input", jerr.line,
                jerr.column, jerr.text);
    else if (!json_is_object(v)) {
        as_errf(err, AS_EINVAL, "the input must be a JSON object, e.g. '{\"url\": \"http://...\"}'");
        json_decref(v);
        v = NULL;
    }
    free(file_text);
    return v;
}

static void block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* A pending SIGINT/SIGTERM within wait_ms, or 0. */
static int wait_signal(const sigset_t *set, int wait_ms)
{
    struct timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (long)(wait_ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static int workers_from(struct cli *cli, int override)
{
    return override > 0 ? override : (int)config_int(cli->app.cfg, "workers");
}

/*
 * Stop the engine gracefully.  When a step outlives the grace period its
 * thread still uses the process's state, so the process ends here (the
 * step keeps its lease and runs again on the next start).
 */
static void stop_engine(struct cli *cli, struct engine *e, int exit_code)
{
    int64_t grace = config_int(cli->app.cfg, "shutdown_grace_seconds") * 1000;
    if (engine_stop(e, grace) == AS_ETIMEOUT) {
        fflush(stdout);
        fflush(stderr);
        _exit(exit_code);
    }
}

static int show_history(struct cli *cli, const char *cmd, int64_t run_id, int verbose)
{
    struct as_err err = {0};
    json_t *h = NULL;
    enum as_code rc = run_history_load(cli->app.db, run_id, cli->json, &h, &err);
    if (rc)
        return cli_error(cli_exit_for(rc), cmd, "%s", err.msg);
    if (cli->json)
        cli_print_json("engine", h);
    else
        run_history_print(stdout, h, verbose);
    json_decref(h);
    return EXIT_OK;
}

/*
 * Refuse to start an engine whose email would fail (exit 3 with the key
 * named): a clear error at start beats a failed step hours later.
 */
static int check_mail_config(struct cli *cli, const char *cmd)
{
    struct as_err err = {0};
    if (mail_config_check(cli->app.cfg, &err) != AS_OK)
        return cli_error(EXIT_CONFIG, cmd, "bad mail configuration: %s", err.msg);
    return EXIT_OK;
}

/* ---- assent run ------------------------------------------------------------ */

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: assent run FILE [--input JSON|@FILE] [--wait] [--dry-run]\n"
            "                  [--dedupe-key KEY] [--workers N] [--json]\n"
            "\n"
            "Start a run of the workflow in FILE (checked like `assent validate`).\n"
            "The definition is stored by content hash; the run keeps that version.\n"
            "\n"
            "  --input JSON|@FILE  the run's input object (default {})\n"
            "  --wait              run the engine in this process until the run ends,\n"
            "                      then print its timeline (Ctrl-C stops; the run\n"
            "                      continues with the next `assent worker`)\n"
            "  --dry-run           steps record what they would do and do nothing\n"
            "  --dedupe-key KEY    refuse to start while a run of this workflow with KEY\n"
            "                      is open (prints that run)\n"
            "  --workers N         worker threads with --wait (default: config workers)\n"
            "  --json              print {\"run_id\": N, ...}; with --wait the history\n"
            "\n"
            "exit status: 0 started (with --wait: the run succeeded), 1 invalid workflow,\n"
            "run failed or cancelled, or duplicate key, 2 bad usage or input, 3 bad\n"
            "configuration (with --wait: mail, checked before the run starts), 5 database\n"
            "error, 130 interrupted.\n");
}

int cmd_run(struct cli *cli, int argc, char **argv)
{
    const char *file = NULL, *input_arg = NULL, *dedupe = NULL;
    int wait = 0, dry_run = 0, workers = 0, rc = EXIT_OK;
    struct workflow *wf = NULL;
    struct diag_list diags = {0};
    json_t *input = NULL;
    struct as_err err = {0};
    struct engine *e = NULL;

    if (cli_wants_help(argc, argv)) {
        run_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--wait")) {
            wait = 1;
        } else if (!strcmp(a, "--dry-run")) {
            dry_run = 1;
        } else if (!strcmp(a, "--input")) {
            if (!(input_arg = opt_value("run", argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--dedupe-key")) {
            if (!(dedupe = opt_value("run", argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--workers")) {
            const char *v = opt_value("run", argc, argv, &i);
            if (!v || parse_int(v, 1, 256, &workers))
                return cli_error(EXIT_USAGE, "run", "--workers needs a number from 1 to 256");
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "assent run: unknown option %s\n\n", a);
            run_usage(stderr);
            return EXIT_USAGE;
        } else if (!file) {
            file = a;
        } else {
            return cli_error(EXIT_USAGE, "run", "one workflow file at a time (got %s and %s)",
                             file, a);
        }
    }
    if (!file) {
        fprintf(stderr, "assent run: no workflow file given\n\n");
        run_usage(stderr);
        return EXIT_USAGE;
    }

    if (wf_load_file(file, &wf, &diags, &err) != AS_OK) {
        wf_diags_print(&diags, file, 0, stderr);
        if (diags.n == 0)
            fprintf(stderr, "assent run: %s\n", err.msg);
        rc = EXIT_FAIL;
        goto out;
    }
    if (input_arg && !(input = parse_input(input_arg, &err))) {
        rc = cli_error(EXIT_USAGE, "run", "%s", err.msg);
        goto out;
    }
    if (wait && (rc = check_mail_config(cli, "run")) != EXIT_OK)
        goto out;
    if ((rc = cli_open_db(cli)) != EXIT_OK)
        goto out;

    sigset_t stop_set;
    if (wait)
        block_stop_signals(&stop_set);

    struct engine_run_opts opts = {
        .dedupe_key = dedupe, .trigger = "cli", .dry_run = dry_run, .source_path = file};
    int64_t run_id = 0;
    enum as_code arc = engine_submit_run(&cli->app, wf, input, &opts, &run_id, &err);
    if (arc == AS_ECONFLICT) {
        if (cli->json) {
            json_t *o = json_pack("{s:I, s:b, s:s}", "run_id", (json_int_t)run_id, "created", 0,
                                  "error", err.msg);
            cli_print_json("engine", o);
            json_decref(o);
        }
        rc = cli_error(EXIT_FAIL, "run", "%s", err.msg);
        goto out;
    }
    if (arc) {
        rc = cli_error(arc == AS_EINVAL ? EXIT_USAGE : cli_exit_for(arc), "run", "%s", err.msg);
        goto out;
    }
    if (!wait) {
        if (cli->json) {
            json_t *o = json_pack("{s:I, s:b, s:s, s:s, s:s, s:b}", "run_id", (json_int_t)run_id,
                                  "created", 1, "workflow", wf->name, "version", wf->version,
                                  "hash", wf->hash, "dry_run", dry_run);
            cli_print_json("engine", o);
            json_decref(o);
        } else {
            printf("run %" PRId64 " started: %s v%s%s\n", run_id, wf->name, wf->version,
                   dry_run ? " (dry run)" : "");
            printf("`assent worker` executes it; `assent show %" PRId64 "` prints its timeline\n",
                   run_id);
        }
        goto out;
    }

    arc = engine_start(&cli->app, workers_from(cli, workers), &e, &err);
    if (arc) {
        rc = cli_error(cli_exit_for(arc), "run", "cannot start the engine: %s", err.msg);
        goto out;
    }
    if (!cli->json)
        fprintf(stderr, "assent run: run %" PRId64 " of %s v%s started; waiting for it to end\n",
                run_id, wf->name, wf->version);
    char status[16] = "";
    for (;;) {
        arc = engine_wait_run(&cli->app, run_id, 200, status, sizeof status, &err);
        if (arc == AS_OK)
            break;
        if (arc != AS_ETIMEOUT) {
            stop_engine(cli, e, EXIT_DB);
            rc = cli_error(cli_exit_for(arc), "run", "%s", err.msg);
            goto out;
        }
        int sig = wait_signal(&stop_set, 0);
        if (sig) {
            fprintf(stderr, "assent run: %s: stopping; run %" PRId64 " continues with the next "
                    "`assent worker`\n", sig == SIGINT ? "interrupted" : "terminated", run_id);
            stop_engine(cli, e, EXIT_INTERRUPTED);
            rc = EXIT_INTERRUPTED;
            goto out;
        }
    }
    stop_engine(cli, e, EXIT_OK);
    e = NULL;
    rc = show_history(cli, "run", run_id, 0);
    if (rc == EXIT_OK && strcmp(status, "succeeded") != 0)
        rc = EXIT_FAIL;
out:
    json_decref(input);
    diag_free(&diags);
    wf_free(wf);
    return rc;
}

/* ---- assent worker --------------------------------------------------------- */

static void worker_usage(FILE *f)
{
    fprintf(f,
            "usage: assent worker [--workers N] [--until-done]\n"
            "\n"
            "Run the engine until stopped (SIGINT/SIGTERM): claim due steps, run them,\n"
            "record their results.  Several workers may share one database.  On start,\n"
            "steps left running by a dead process of this host run again at once (same\n"
            "idempotency key); another host's claims when their lease ends.  On stop,\n"
            "running steps may finish for shutdown_grace_seconds.\n"
            "\n"
            "  --workers N    worker threads (default: config workers)\n"
            "  --until-done   exit 0 once no run is running or waiting\n"
            "\n"
            "exit status: 0 stopped cleanly, 2 bad usage, 3 bad configuration (e.g. mail,\n"
            "checked at start), 5 database error.\n");
}

int cmd_worker(struct cli *cli, int argc, char **argv)
{
    int workers = 0, until_done = 0;
    struct as_err err = {0};
    struct engine *e = NULL;
    if (cli_wants_help(argc, argv)) {
        worker_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--until-done")) {
            until_done = 1;
        } else if (!strcmp(argv[i], "--workers")) {
            const char *v = opt_value("worker", argc, argv, &i);
            if (!v || parse_int(v, 1, 256, &workers))
                return cli_error(EXIT_USAGE, "worker", "--workers needs a number from 1 to 256");
        } else {
            fprintf(stderr, "assent worker: unknown argument %s\n\n", argv[i]);
            worker_usage(stderr);
            return EXIT_USAGE;
        }
    }
    int rc = check_mail_config(cli, "worker");
    if (rc)
        return rc;
    rc = cli_open_db(cli);
    if (rc)
        return rc;
    sigset_t stop_set;
    block_stop_signals(&stop_set);
    enum as_code arc = engine_start(&cli->app, workers_from(cli, workers), &e, &err);
    if (arc)
        return cli_error(arc == AS_EINVAL ? EXIT_CONFIG : cli_exit_for(arc), "worker", "%s", err.msg);
    for (;;) {
        int sig = wait_signal(&stop_set, 200);
        if (sig) {
            LOG_INFO("worker", "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (until_done) {
            struct db_conn *conn;
            int64_t open = 1;
            if (db_read_begin(cli->app.db, &conn, &err) == AS_OK) {
                if (db_runs_count_open(conn, &open, &err) != AS_OK)
                    open = 1;
                db_read_end(cli->app.db, conn);
            }
            if (open == 0) {
                LOG_INFO("worker", "no open runs left: stopping");
                break;
            }
        }
    }
    stop_engine(cli, e, EXIT_OK);
    return EXIT_OK;
}

/* ---- assent runs ----------------------------------------------------------- */

static void runs_usage(FILE *f)
{
    fprintf(f,
            "usage: assent runs [--status S] [--workflow NAME] [--limit N] [--before ID] [--json]\n"
            "\n"
            "List runs, newest first, each with whom it is about (the workflow's title,\n"
            "else the input's user; --json: \"title\" and \"user\", null when none).\n"
            "  --status S       running, waiting, succeeded, failed or cancelled\n"
            "  --workflow NAME  runs of this workflow (any version)\n"
            "  --limit N        at most N runs (default 50)\n"
            "  --before ID      runs older than ID (paging)\n"
            "\n"
            "exit status: 0, 2 bad usage, 5 database error.\n");
}

/* One run of a listing (an item of run_list_json) as [line, label, error]
 * for print_runs. */
static json_t *run_line(const json_t *r)
{
    char created[40], dur[32] = "";
    json_int_t created_at = json_integer_value(json_object_get(r, "created_at"));
    const json_t *finished = json_object_get(r, "finished_at");
    time_format_iso(created_at, created, sizeof created);
    created[19] = '\0'; /* to the second */
    if (json_is_integer(finished))
        run_history_duration(json_integer_value(finished) - created_at, dur, sizeof dur);
    char wfv[96], line[256], error[96];
    snprintf(wfv, sizeof wfv, "%s v%s", json_string_value(json_object_get(r, "workflow")),
             json_string_value(json_object_get(r, "version")));
    snprintf(line, sizeof line, "%-8lld %-10s %-28s %-20s %-10s %-16s",
             (long long)json_integer_value(json_object_get(r, "id")),
             json_string_value(json_object_get(r, "status")), wfv, created, dur,
             json_string_value(json_object_get(r, "step")));
    /* One line per run: a long error is cut (`assent show` has all of it). */
    const char *e = json_string_value(json_object_get(r, "error"));
    size_t elen = strlen(e);
    snprintf(error, sizeof error, "%.*s%s", elen > 80 ? 77 : (int)elen, e, elen > 80 ? "..." : "");
    /* Whom the run is about: the workflow's title, else the input's user. */
    const json_t *title = json_object_get(r, "title");
    const json_t *label = json_is_string(title) ? title : json_object_get(r, "user");
    return json_pack("[s, O, s]", line, label, error);
}

/* The text listing: a USER column (as wide as its longest entry, up to
 * RUN_TITLE_MAX) only when some run has a user or title. */
static void print_runs(const json_t *lines)
{
    int width = 0;
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        int n = (int)json_string_length(json_array_get(l, 1));
        if (n > width)
            width = n;
    }
    printf("%-8s %-10s %-28s %-20s %-10s %-16s", "RUN", "STATUS", "WORKFLOW", "CREATED", "TOOK",
           "STEP");
    if (width)
        printf(" %-*s", width, "USER");
    printf(" %s\n", "ERROR");
    json_array_foreach(lines, i, l)
    {
        const json_t *label = json_array_get(l, 1);
        printf("%s", json_string_value(json_array_get(l, 0)));
        if (width)
            printf(" %-*s", width, json_is_string(label) ? json_string_value(label) : "");
        printf(" %s\n", json_string_value(json_array_get(l, 2)));
    }
}

int cmd_runs(struct cli *cli, int argc, char **argv)
{
    struct db_run_filter f = {.limit = 50};
    struct as_err err = {0};
    if (cli_wants_help(argc, argv)) {
        runs_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--status")) {
            if (!(v = opt_value("runs", argc, argv, &i)))
                return EXIT_USAGE;
            if (!run_status_known(v))
                return cli_error(EXIT_USAGE, "runs", "--status must be running, waiting, "
                                 "succeeded, failed, cancelled or superseded, not \"%s\"", v);
            f.status = v;
        } else if (!strcmp(a, "--workflow")) {
            if (!(f.workflow = opt_value("runs", argc, argv, &i)))
                return EXIT_USAGE;
        } else if (!strcmp(a, "--limit")) {
            if (!(v = opt_value("runs", argc, argv, &i)) || parse_int(v, 1, 100000, &f.limit))
                return cli_error(EXIT_USAGE, "runs", "--limit needs a number from 1 to 100000");
        } else if (!strcmp(a, "--before")) {
            if (!(v = opt_value("runs", argc, argv, &i)) || parse_id(v, &f.before_id))
                return cli_error(EXIT_USAGE, "runs", "--before needs a run id");
        } else {
            fprintf(stderr, "assent runs: unknown argument %s\n\n", a);
            runs_usage(stderr);
            return EXIT_USAGE;
        }
    }
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    json_t *items = NULL;
    enum as_code arc = run_list_json(cli->app.db, &f, &items, NULL, &err);
    if (arc)
        return cli_error(cli_exit_for(arc), "runs", "%s", err.msg);
    if (cli->json) {
        cli_print_json("runs", items);
    } else {
        json_t *lines = json_array();
        size_t i;
        json_t *r;
        json_array_foreach(items, i, r)
        {
            json_t *l = run_line(r);
            if (!lines || !l || json_array_append_new(lines, l)) {
                json_decref(lines);
                json_decref(items);
                return cli_error(EXIT_FAIL, "runs", "out of memory");
            }
        }
        print_runs(lines);
        if (json_array_size(items) == 0)
            printf("(no runs)\n");
        json_decref(lines);
    }
    json_decref(items);
    return EXIT_OK;
}

/* ---- assent show / cancel / retry ------------------------------------------ */

/* Parse the one RUN_ID argument (plus flags in `flags`, set to 1 when present). */
static int one_run_arg(const char *cmd, int argc, char **argv, int64_t *run_id,
                       const char *flag, int *flag_set, void (*usage)(FILE *))
{
    int have = 0;
    for (int i = 1; i < argc; i++) {
        if (flag && !strcmp(argv[i], flag)) {
            *flag_set = 1;
        } else if (!have && argv[i][0] != '-' && parse_id(argv[i], run_id) == 0) {
            have = 1;
        } else {
            fprintf(stderr, "assent %s: unexpected argument %s\n\n", cmd, argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!have) {
        fprintf(stderr, "assent %s: which run? (a run id, see `assent runs`)\n\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static void show_usage(FILE *f)
{
    fprintf(f,
            "usage: assent show RUN_ID [--verbose] [--json]\n"
            "\n"
            "Print a run's timeline: each step with its attempts (start, duration,\n"
            "retries and their errors, waits, resumes), outcome and output.\n"
            "  --verbose  full outputs, resolved parameters and idempotency keys\n"
            "  --json     the whole history, with the run's events\n"
            "\n"
            "exit status: 0, 2 bad usage, 4 no such run, 5 database error.\n");
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
    int64_t run_id = 0;
    int verbose = 0;
    if (cli_wants_help(argc, argv)) {
        show_usage(stdout);
        return EXIT_OK;
    }
    int rc = one_run_arg("show", argc, argv, &run_id, "--verbose", &verbose, show_usage);
    if (rc)
        return rc;
    if ((rc = cli_open_db(cli)) != EXIT_OK)
        return rc;
    return show_history(cli, "show", run_id, verbose);
}

static void cancel_usage(FILE *f)
{
    fprintf(f,
            "usage: assent cancel RUN_ID [--json]\n"
            "\n"
            "Cancel an open run: its waiting or queued step is cancelled, and the result\n"
            "of a step running right now is discarded.\n"
            "\n"
            "exit status: 0 cancelled, 1 the run had already ended, 2 bad usage, 4 no\n"
            "such run, 5 database error.\n");
}

static void retry_usage(FILE *f)
{
    fprintf(f,
            "usage: assent retry RUN_ID [--json]\n"
            "\n"
            "Retry a failed run from its failed step: that step runs again with fresh\n"
            "attempts and the same idempotency key (a worker must be running, e.g.\n"
            "`assent worker`).\n"
            "\n"
            "exit status: 0 re-queued, 1 the run is not failed (or its dedupe key is held\n"
            "by another open run), 2 bad usage, 4 no such run, 5 database error.\n");
}

static int steer(struct cli *cli, int argc, char **argv, const char *cmd,
                 enum as_code (*op)(struct app *, int64_t, struct as_err *),
                 void (*usage)(FILE *), const char *done)
{
    int64_t run_id = 0;
    struct as_err err = {0};
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    int rc = one_run_arg(cmd, argc, argv, &run_id, NULL, NULL, usage);
    if (rc)
        return rc;
    if ((rc = cli_open_db(cli)) != EXIT_OK)
        return rc;
    enum as_code arc = op(&cli->app, run_id, &err);
    if (cli->json) {
        json_t *o = json_pack("{s:I, s:b}", "run_id", (json_int_t)run_id, "ok", arc == AS_OK);
        if (arc)
            json_object_set_new(o, "error", json_string(err.msg));
        cli_print_json("engine", o);
        json_decref(o);
    }
    if (arc)
        return cli_error(cli_exit_for(arc), cmd, "%s", err.msg);
    if (!cli->json)
        printf("run %" PRId64 " %s\n", run_id, done);
    return EXIT_OK;
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    return steer(cli, argc, argv, "cancel", engine_cancel_run, cancel_usage, "cancelled");
}

int cmd_retry(struct cli *cli, int argc, char **argv)
{
    return steer(cli, argc, argv, "retry", engine_retry_run, retry_usage,
                 "re-queued from its failed step");
}

/* ---- assent audit verify ---------------------------------------------------- */

static void audit_usage(FILE *f)
{
    fprintf(f,
            "usage: assent audit verify [--anchor ID:HASH] [--json]\n"
            "\n"
            "Recompute the event log's hash chain (each record carries the SHA-256 of\n"
            "the one before) and name the first record that was altered, deleted or\n"
            "inserted.  The chain's head (ID:HASH) is printed: keep it elsewhere and\n"
            "pass it as --anchor later to also detect deletion of the newest records.\n"
            "\n"
            "exit status: 0 intact, 1 tampered, 2 bad usage, 5 database error.\n");
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    int64_t anchor_id = 0;
    char anchor_hash[65] = "";
    struct as_err err = {0};
    if (cli_wants_help(argc, argv)) {
        audit_usage(stdout);
        return EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "verify") != 0) {
        fprintf(stderr, "assent audit: expected \"verify\"\n\n");
        audit_usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--anchor")) {
            const char *v = opt_value("audit", argc, argv, &i);
            const char *colon = v ? strchr(v, ':') : NULL;
            char idbuf[24];
            if (!colon || (size_t)(colon - v) >= sizeof idbuf || strlen(colon + 1) != 64)
                return cli_error(EXIT_USAGE, "audit", "--anchor needs ID:HASH (64 hex digits)");
            snprintf(idbuf, sizeof idbuf, "%.*s", (int)(colon - v), v);
            if (parse_id(idbuf, &anchor_id))
                return cli_error(EXIT_USAGE, "audit", "--anchor needs ID:HASH");
            snprintf(anchor_hash, sizeof anchor_hash, "%s", colon + 1);
        } else {
            fprintf(stderr, "assent audit: unknown argument %s\n\n", argv[i]);
            audit_usage(stderr);
            return EXIT_USAGE;
        }
    }
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct db_audit_report rep;
    struct db_conn *conn;
    enum as_code arc = db_read_begin(cli->app.db, &conn, &err);
    if (!arc) {
        arc = db_audit_verify(conn, anchor_id, anchor_id ? anchor_hash : NULL, &rep, &err);
        db_read_end(cli->app.db, conn);
    }
    if (arc)
        return cli_error(cli_exit_for(arc), "audit", "%s", err.msg);
    if (cli->json) {
        json_t *o = json_pack("{s:b, s:I, s:o, s:o, s:I, s:s}", "intact", rep.bad_id == 0,
                              "events", (json_int_t)rep.n_events, "bad_id",
                              rep.bad_id ? json_integer(rep.bad_id) : json_null(), "problem",
                              rep.bad_id ? json_string(rep.problem) : json_null(), "head_id",
                              (json_int_t)rep.head_id, "head_hash", rep.head_hash);
        cli_print_json("engine", o);
        json_decref(o);
    } else if (rep.bad_id) {
        printf("audit: TAMPERED at event %" PRId64 ": %s\n", rep.bad_id, rep.problem);
    } else {
        printf("audit: %" PRId64 " events, chain intact; head %" PRId64 ":%s\n", rep.n_events,
               rep.head_id, rep.head_id ? rep.head_hash : "-");
    }
    return rep.bad_id ? EXIT_FAIL : EXIT_OK;
}
