/* cli.c - helpers shared by the commands (see cli.h). */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db/db.h"
#include "engine/config.h"

int cli_open_db(struct cli *cli)
{
    if (cli->app.db)
        return EXIT_OK;
    struct as_err err = {0};
    const char *path = config_str(cli->app.cfg, "db");
    if (db_open(path, config_str(cli->app.cfg, "synchronous"), &cli->app.db, &err) != AS_OK) {
        fprintf(stderr, "%s: cannot open database %s: %s\n", cli->prog, path, err.msg);
        return EXIT_DB;
    }
    return EXIT_OK;
}

int cli_error(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "assent %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}
