/*
 * cli.h - what every `assent` command shares: the parsed common options, the
 * app context, exit codes, and the command table.
 *
 * main() removes the common options (--config, --db, --log-level,
 * --log-format, --json) from anywhere in argv before dispatching, so each
 * command parses only its own.  A command opens the database only when it
 * needs it (cli_open_db), so `assent validate` and `assent config` work
 * without one.
 */
#ifndef ASSENT_CLI_H
#define ASSENT_CLI_H

#include <jansson.h>

#include "engine/app.h"
#include "base/error.h"

/* Exit codes (documented in the README). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,     /* the operation failed: invalid workflow, failed run, step error */
    EXIT_USAGE = 2,    /* bad command line */
    EXIT_CONFIG = 3,   /* bad configuration or environment */
    EXIT_NOTFOUND = 4, /* no such run / approval / KPI */
    EXIT_DB = 5,       /* database could not be opened or written */
    EXIT_PARTIAL = 6,  /* done in part: `assent sync` could not read every section */
    EXIT_INTERRUPTED = 130,
};

struct cli {
    struct app app;
    int json;          /* --json: machine-readable output */
    const char *prog;  /* "assent" */
};

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(struct cli *cli, int argc, char **argv); /* argv[0] is the command name */
};

/* Open app.db from the configuration if not open yet.  Prints the error and
 * returns nonzero (an exit code) on failure. */
int cli_open_db(struct cli *cli);

/*
 * Register every step type and mail transport of the layers below (generic
 * steps, the approval step, Microsoft 365) in the order `assent validate
 * --print-schema` lists them.  Once, at start, before a workflow is loaded.
 */
void cli_register_types(void);

/* Print "assent CMD: message" to stderr; returns code for `return cli_error(...)`. */
int cli_error(int code, const char *cmd, const char *fmt, ...) AS_PRINTF(3, 4);

/*
 * Print v as every command's --json output is printed: indented by 2, keys
 * sorted, one trailing newline.  Returns EXIT_OK, or EXIT_FAIL (with a
 * message) when it cannot be serialised (out of memory).
 */
int cli_print_json(const char *cmd, const json_t *v);

/* The exit code for an error from the engine, the database or a check:
 * not found 4, database 5, bad input 2, stale tenant data (max_sync_age) 3,
 * anything else 1. */
int cli_exit_for(enum as_code rc);

/* The name of the OS user running the command (or "uid N") into buf: who
 * is recorded as having made a change from the terminal. */
void cli_os_user(char *buf, size_t size);

/* True when argv holds -h or --help (commands print their usage then). */
int cli_wants_help(int argc, char **argv);

/* The commands, each in its own file in cli/. */
int cmd_validate(struct cli *cli, int argc, char **argv);
int cmd_run(struct cli *cli, int argc, char **argv);
int cmd_worker(struct cli *cli, int argc, char **argv);
int cmd_runs(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_cancel(struct cli *cli, int argc, char **argv);
int cmd_retry(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv);
int cmd_plan(struct cli *cli, int argc, char **argv);
int cmd_serve(struct cli *cli, int argc, char **argv);
int cmd_approvals(struct cli *cli, int argc, char **argv);
int cmd_decide(struct cli *cli, int argc, char **argv);
int cmd_kpi(struct cli *cli, int argc, char **argv);
int cmd_exception(struct cli *cli, int argc, char **argv);
int cmd_trigger(struct cli *cli, int argc, char **argv);
int cmd_demo(struct cli *cli, int argc, char **argv);
int cmd_token(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv);

#endif
