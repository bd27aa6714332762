/*
 * main.c - the `assent` command: global set-up (signals, libcurl, jansson,
 * configuration, logging), common options, and dispatch to cli/cmd_*.c.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"
#include "base/config.h"
#include "base/log.h"

static const struct cli_command commands[] = {
    {"validate", "check workflow files; every defect with file:line:column and JSON path", cmd_validate},
    {"run", "start a run of a workflow (--wait: run it to the end and print the timeline)", cmd_run},
    {"worker", "run the engine's workers until stopped", cmd_worker},
    {"runs", "list runs (filter by status or workflow)", cmd_runs},
    {"show", "print a run's timeline: steps, attempts, outputs, errors", cmd_show},
    {"cancel", "cancel a run", cmd_cancel},
    {"retry", "retry a failed run from its failed step", cmd_retry},
    {"audit", "verify the event log's hash chain (audit verify)", cmd_audit},
    {"config", "print the effective configuration, secrets redacted", cmd_config},
    {"sync", "pull users, CAS settings, usage and legacy sign-ins from the tenant", cmd_sync},
    {"report", "report users or sign-ins from the last sync", cmd_report},
    {"plan", "print the changes a workflow would make, as a PowerShell script", cmd_plan},
    {"serve", "run workers, scheduler and the web server (approval pages, API)", cmd_serve},
    {"approvals", "list pending approvals", cmd_approvals},
    {"decide", "approve or reject from the terminal", cmd_decide},
    {"kpi", "create, list, show, evaluate and delete KPIs", cmd_kpi},
    {"exception", "add, list and remove protocol exceptions", cmd_exception},
    {"trigger", "start a workflow for each row of a KPI", cmd_trigger},
    {"demo", "run the whole chain against a built-in demo tenant", cmd_demo},
    {"token", "create, list and revoke tokens of the REST API", cmd_token},
    {"import", "load evidence exported from Microsoft 365 (the SMTP AUTH clients report)",
     cmd_import},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: assent COMMAND [options]\n\n"
               "Assent: durable workflows with human approval steps.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\ncommon options (any command):\n"
               "  --config FILE      JSON configuration (default $ASSENT_CONFIG)\n"
               "  --db PATH          SQLite database (default $ASSENT_DB or var/assent.db)\n"
               "  --log-level LEVEL  debug|info|warn|error\n"
               "  --log-format FMT   text|json\n"
               "  --json             machine-readable output\n"
               "\n`assent COMMAND --help` describes a command.\n");
}

/* Take option `name` (with a value) out of argv; returns the value or NULL. */
static const char *take_opt(int *argc, char **argv, const char *name, int *bad)
{
    size_t nl = strlen(name);
    const char *val = NULL;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        int consumed = 0;
        if (strcmp(argv[i], name) == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "assent: %s needs a value\n", name);
                *bad = 1;
                return NULL;
            }
            val = argv[i + 1];
            consumed = 2;
        } else if (strncmp(argv[i], name, nl) == 0 && argv[i][nl] == '=') {
            val = argv[i] + nl + 1;
            consumed = 1;
        }
        if (consumed) {
            memmove(&argv[i], &argv[i + consumed], (size_t)(*argc - i - consumed + 1) * sizeof *argv);
            *argc -= consumed;
            i--;
        }
    }
    return val;
}

static int take_flag(int *argc, char **argv, const char *name)
{
    int found = 0;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], name) == 0) {
            memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
            (*argc)--;
            i--;
            found = 1;
        }
    }
    return found;
}

int main(int argc, char **argv)
{
    int rc = EXIT_OK;
    struct cli cli = {.prog = "assent"};
    struct as_err err = {0};

    /* libcurl with NOSIGNAL and libesmtp both need SIGPIPE ignored process-wide. */
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "assent: libcurl initialisation failed\n");
        return EXIT_FAIL;
    }
    json_object_seed(0);
    cli_register_types();

    int bad = 0;
    const char *config_path = take_opt(&argc, argv, "--config", &bad);
    const char *db_path = take_opt(&argc, argv, "--db", &bad);
    const char *log_level = take_opt(&argc, argv, "--log-level", &bad);
    const char *log_format = take_opt(&argc, argv, "--log-format", &bad);
    cli.json = take_flag(&argc, argv, "--json");
    if (bad) {
        rc = EXIT_USAGE;
        goto out;
    }
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        rc = argc < 2 ? EXIT_USAGE : EXIT_OK;
        goto out;
    }

    if (config_load(config_path, &cli.app.cfg, &err) != AS_OK ||
        (db_path && config_set(cli.app.cfg, "db", db_path, &err) != AS_OK) ||
        (log_level && config_set(cli.app.cfg, "log_level", log_level, &err) != AS_OK) ||
        (log_format && config_set(cli.app.cfg, "log_format", log_format, &err) != AS_OK)) {
        fprintf(stderr, "assent: configuration: %s\n", err.msg);
        rc = EXIT_CONFIG;
        goto out;
    }
    log_init((enum log_level)log_level_parse(config_str(cli.app.cfg, "log_level")),
             (enum log_format)log_format_parse(config_str(cli.app.cfg, "log_format")));

    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            rc = commands[i].run(&cli, argc - 1, argv + 1);
            goto out;
        }
    }
    fprintf(stderr, "assent: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    rc = EXIT_USAGE;
out:
    db_close(cli.app.db);
    config_free(cli.app.cfg);
    curl_global_cleanup();
    return rc;
}
