/* cli.c - helpers shared by the commands (see cli.h). */
#include "cli/cli.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "base/config.h"
#include "approvals/approvals.h"
#include "m365/m365_register.h"
#include "steps/steps.h"

int cli_open_db(struct cli *cli)
{
    if (cli->app.db)
        return EXIT_OK;
    struct as_err err = {0};
    const char *path = config_str(cli->app.cfg, "db");
    struct db_options opts = {.synchronous = config_str(cli->app.cfg, "synchronous"),
                              .password_file = config_str(cli->app.cfg, "db_password_file")};
    enum as_code rc = db_open_options(path, &opts, &cli->app.db, &err);
    if (rc != AS_OK) {
        char shown[1024];
        db_display_name(path, shown, sizeof shown);
        fprintf(stderr, "%s: cannot open database %s: %s\n", cli->prog, shown, err.msg);
        /* A database string or password file that cannot be used is a
         * configuration error; a database that cannot be reached or
         * written is a database error. */
        return rc == AS_EINVAL ? EXIT_CONFIG : EXIT_DB;
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

int cli_print_json(const char *cmd, const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        return cli_error(EXIT_FAIL, cmd, "out of memory");
    puts(s);
    free(s);
    return EXIT_OK;
}

int cli_exit_for(enum as_code rc)
{
    switch (rc) {
    case AS_OK: return EXIT_OK;
    case AS_ENOTFOUND: return EXIT_NOTFOUND;
    case AS_EDB: return EXIT_DB;
    case AS_EINVAL: return EXIT_USAGE;
    case AS_EEXPIRED: return EXIT_CONFIG;
    default: return EXIT_FAIL;
    }
}

void cli_os_user(char *buf, size_t size)
{
    struct passwd pw, *pwp = NULL;
    char pwbuf[1024];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp) == 0 && pwp)
        snprintf(buf, size, "%s", pw.pw_name);
    else
        snprintf(buf, size, "uid %u", (unsigned)geteuid());
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

void cli_register_types(void)
{
    steps_register();
    approvals_register();
    m365_register();
}
