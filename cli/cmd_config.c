/* cmd_config.c - `assent config`: the effective configuration, secrets redacted. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "db/db.h"
#include "base/config.h"

int cmd_config(struct cli *cli, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: assent config [--json]\n\n"
               "Print the effective configuration (defaults < config file < ASSENT_* environment\n"
               "< command-line flags) with where each value came from.  Secrets print as ***.\n");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_error(EXIT_USAGE, "config", "unexpected argument \"%s\"", argv[1]);
    json_t *dump = config_dump(cli->app.cfg);
    if (!dump)
        return cli_error(EXIT_FAIL, "config", "out of memory");
    /* A PostgreSQL connection string may (wrongly) carry a password. */
    char shown[1024];
    db_display_name(config_str(cli->app.cfg, "db"), shown, sizeof shown);
    json_object_set_new(dump, "db", json_string(shown));
    if (cli->json) {
        cli_print_json("config", dump);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(dump, key, v)
        {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            printf("%-30s %-40s (%s)\n", key, s ? s : "?", config_source(cli->app.cfg, key));
            free(s);
        }
    }
    json_decref(dump);
    return EXIT_OK;
}
