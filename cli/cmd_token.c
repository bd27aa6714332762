/*
 * cmd_token.c - `assent token create|list|revoke`: the bearer tokens of the
 * REST API (web/api_token.h, docs/api.md).  A token is printed once, when
 * made, alone on stdout so a script can take it (`TOKEN=$(assent token
 * create ...)`); only its hash is stored.  Who made or revoked a token is
 * the OS user running the command, recorded in the audit chain.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "cli/cli.h"
#include "db/db_tokens.h"
#include "web/api_token.h"

static void token_usage(FILE *f)
{
    fprintf(f,
            "usage: assent token create --name NAME --role viewer|operator|admin [--expires P90D|DATE]\n"
            "       assent token list [--all]\n"
            "       assent token revoke NAME\n"
            "\n"
            "Tokens of the REST API (docs/api.md), sent as `Authorization: Bearer TOKEN`.\n"
            "A viewer reads; an operator also starts, cancels and retries runs, decides\n"
            "approvals as an administrator, evaluates and triggers KPIs and manages\n"
            "exceptions; an admin also manages workflows, KPIs and tokens.\n"
            "\n"
            "create prints the token once, alone on stdout (--json: {\"name\", \"role\",\n"
            "\"token\", \"expires_at\"}); only its SHA-256 is stored, so it cannot be shown\n"
            "again.  NAME is 1 to 64 letters, digits or . _ @ -, unique among tokens not\n"
            "revoked.  --expires takes a duration (P90D) or a date (default: never).\n"
            "list never shows a token (--all: revoked ones too).  revoke ends a token at\n"
            "once.  Creating and revoking go into the audit chain (token.created,\n"
            "token.revoked) with your OS user.\n"
            "\n"
            "exit status: 0, 1 a token of that name exists, 2 bad usage, 4 no such token,\n"
            "5 database error.\n");
}

/* Reset getopt for a subcommand's argv (argv[0] is the subcommand). */
static void getopt_reset(void)
{
    optind = 0;
    opterr = 1;
}

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    time_format_iso(ms, buf, size);
    char *dot = strchr(buf, '.');
    if (dot)
        snprintf(dot, size - (size_t)(dot - buf), "Z");
}

static int token_create(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, 0, 'n'},
        {"role", required_argument, 0, 'r'},
        {"expires", required_argument, 0, 'e'},
        {0, 0, 0, 0},
    };
    const char *name = NULL, *role_text = NULL, *expires = NULL;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'r': role_text = optarg; break;
        case 'e': expires = optarg; break;
        default: token_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_error(EXIT_USAGE, "token", "unexpected argument \"%s\"", argv[optind]);
    if (!name)
        return cli_error(EXIT_USAGE, "token", "create needs --name NAME");
    if (!api_token_name_ok(name))
        return cli_error(EXIT_USAGE, "token",
                         "--name \"%s\": give 1 to %d letters, digits or . _ @ - (not \"%s\")",
                         name, DB_TOKEN_NAME_MAX, API_ADMIN_FILE_NAME);
    enum api_role role = api_role_parse(role_text);
    if (role == API_ROLE_NONE)
        return cli_error(EXIT_USAGE, "token", "--role must be viewer, operator or admin");
    struct as_err err = {0};
    int64_t now = time_now_ms(), expires_at = 0;
    if (expires && time_parse_expiry(expires, now, &expires_at, &err) != AS_OK)
        return cli_error(EXIT_USAGE, "token", "--expires: %s", err.msg);
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    char who[64], token[API_TOKEN_LEN + 1];
    cli_os_user(who, sizeof who);
    enum as_code arc = api_token_create(cli->app.db, name, role, expires_at, who, now, token,
                                        sizeof token, NULL, &err);
    if (arc)
        return cli_error(arc == AS_ECONFLICT ? EXIT_FAIL : cli_exit_for(arc), "token", "%s",
                         err.msg);
    if (cli->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "role", api_role_name(role),
                              "token", token, "expires_at",
                              expires_at ? json_integer(expires_at) : json_null());
        rc = cli_print_json("token", o);
        json_decref(o);
    } else {
        char when[40];
        fmt_time(expires_at, when, sizeof when);
        printf("%s\n", token);
        fprintf(stderr, "token %s (%s) created, expires %s; it is shown this once\n", name,
                api_role_name(role), expires_at ? when : "never");
    }
    memset(token, 0, sizeof token);
    return rc;
}

static int token_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, 0, 'a'}, {0, 0, 0, 0}};
    int all = 0, c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'a') {
            token_usage(stderr);
            return EXIT_USAGE;
        }
        all = 1;
    }
    if (optind < argc)
        return cli_error(EXIT_USAGE, "token", "unexpected argument \"%s\"", argv[optind]);
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct as_err err = {0};
    json_t *list = NULL;
    enum as_code arc = db_api_token_list(cli->app.db, all, &list, &err);
    if (arc)
        return cli_error(cli_exit_for(arc), "token", "%s", err.msg);
    if (cli->json) {
        rc = cli_print_json("token", list);
        json_decref(list);
        return rc;
    }
    if (json_array_size(list) == 0) {
        printf("no tokens: `assent token create --name NAME --role viewer`\n");
        json_decref(list);
        return EXIT_OK;
    }
    int64_t now = time_now_ms();
    printf("%-24s %-9s %-8s %-21s %-21s %s\n", "NAME", "ROLE", "STATE", "CREATED", "EXPIRES",
           "CREATED BY");
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        char created[40], expires[40];
        json_int_t exp = json_integer_value(json_object_get(t, "expires_at"));
        fmt_time(json_integer_value(json_object_get(t, "created_at")), created, sizeof created);
        if (exp)
            fmt_time(exp, expires, sizeof expires);
        else
            snprintf(expires, sizeof expires, "never");
        const char *state = json_is_integer(json_object_get(t, "revoked_at")) ? "revoked"
                            : exp && exp <= now                                 ? "expired"
                                                                                : "active";
        printf("%-24s %-9s %-8s %-21s %-21s %s\n", json_string_value(json_object_get(t, "name")),
               json_string_value(json_object_get(t, "role")), state, created, expires,
               json_string_value(json_object_get(t, "created_by")));
    }
    json_decref(list);
    return EXIT_OK;
}

static int token_revoke(struct cli *cli, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_error(EXIT_USAGE, "token", "revoke needs exactly one NAME");
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct as_err err = {0};
    struct db_api_token t;
    char who[64];
    cli_os_user(who, sizeof who);
    enum as_code arc = db_api_token_revoke(cli->app.db, argv[1], who, time_now_ms(), &t, &err);
    if (arc)
        return cli_error(cli_exit_for(arc), "token", "%s", err.msg);
    if (cli->json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "name", t.name, "role", t.role,
                              "revoked_at", (json_int_t)t.revoked_at, "revoked_by", t.revoked_by);
        rc = cli_print_json("token", o);
        json_decref(o);
        return rc;
    }
    printf("token %s revoked\n", t.name);
    return EXIT_OK;
}

int cmd_token(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        token_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (cli_wants_help(argc, argv)) {
        token_usage(stdout);
        return EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create") == 0)
        return token_create(cli, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return token_list(cli, argc - 1, argv + 1);
    if (strcmp(sub, "revoke") == 0)
        return token_revoke(cli, argc - 1, argv + 1);
    fprintf(stderr, "assent token: unknown subcommand \"%s\"\n\n", sub);
    token_usage(stderr);
    return EXIT_USAGE;
}
