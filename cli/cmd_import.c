/*
 * cmd_import.c - `assent import`: evidence from files an admin exports.
 *
 *   assent import smtp-auth-report FILE.csv [--json]
 *
 * loads the Exchange admin center's SMTP AUTH clients report (who submitted
 * mail over SMTP AUTH, with Basic or OAuth; m365/smtp_auth_report.h), which
 * replaces the previous import: the users report's smtp_basic_30d, the KPIs
 * and the approval pages then say who still sends with Basic.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db_events.h"
#include "base/timeutil.h"
#include "m365/smtp_auth_report.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: assent import smtp-auth-report FILE.csv [--json]\n\n"
               "Load the SMTP AUTH clients report exported from the Exchange admin center\n"
               "(Reports > Mail flow > SMTP AUTH clients; choose the last 30 days, export):\n"
               "per sender the messages submitted with Basic and with OAuth.  It replaces the\n"
               "previous import; the users report's column smtp_basic_30d comes from it.\n"
               "  --json   print the summary as JSON\n");
}

static int import_smtp_auth(struct cli *cli, const char *path, int json)
{
    struct as_err err = {0};
    struct smtp_auth_report r;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error(EXIT_USAGE, "import", "%s: %s", path, strerror(errno));
    enum as_code rc = smtp_auth_report_parse(f, path, &r, &err);
    fclose(f);
    if (rc)
        return cli_error(cli_exit_for(rc), "import", "%s", err.msg);
    int code = cli_open_db(cli);
    if (code) {
        smtp_auth_report_free(&r);
        return code;
    }
    char who[128];
    cli_os_user(who, sizeof who);
    rc = db_smtp_auth_replace(cli->app.db, r.rows, r.n, time_now_ms(), &err);
    json_t *summary = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "file", path, "records",
                                (json_int_t)r.records, "senders", (json_int_t)r.n,
                                "basic_senders", (json_int_t)r.basic_senders, "basic_messages",
                                (json_int_t)r.basic_messages, "oauth_messages",
                                (json_int_t)r.oauth_messages);
    smtp_auth_report_free(&r);
    if (!rc) {
        json_t *audit = json_deep_copy(summary);
        json_object_set_new(audit, "actor", json_string(who));
        rc = db_audit_append(cli->app.db, "m365.smtp_auth_imported", audit, &err);
        json_decref(audit);
    }
    if (rc) {
        json_decref(summary);
        return cli_error(cli_exit_for(rc), "import", "%s", err.msg);
    }
    if (json)
        code = cli_print_json("import", summary);
    else
        printf("imported %s: %lld senders, %lld of them with Basic authentication "
               "(%lld messages with Basic, %lld with OAuth)\n",
               path, (long long)json_integer_value(json_object_get(summary, "senders")),
               (long long)json_integer_value(json_object_get(summary, "basic_senders")),
               (long long)json_integer_value(json_object_get(summary, "basic_messages")),
               (long long)json_integer_value(json_object_get(summary, "oauth_messages")));
    json_decref(summary);
    return code;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
    const char *what = NULL, *file = NULL;
    int json = cli->json; /* --json is taken from anywhere in argv by main */
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1])
            return cli_error(EXIT_USAGE, "import", "unknown option \"%s\"", argv[i]);
        else if (!what)
            what = argv[i];
        else if (!file)
            file = argv[i];
        else
            return cli_error(EXIT_USAGE, "import", "unexpected argument \"%s\"", argv[i]);
    }
    if (!what || strcmp(what, "smtp-auth-report") != 0) {
        usage(stderr);
        return cli_error(EXIT_USAGE, "import", "%s%s%s", what ? "unknown kind \"" : "what to import? ",
                         what ? what : "smtp-auth-report", what ? "\" (known: smtp-auth-report)" : "");
    }
    if (!file)
        return cli_error(EXIT_USAGE, "import", "smtp-auth-report needs the exported CSV file");
    return import_smtp_auth(cli, file, json);
}
