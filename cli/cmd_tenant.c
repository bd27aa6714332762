/* cmd_tenant.c - placeholder commands until their module lands. */
#include "cli/cli.h"

int cmd_sync(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "sync", "not available in this build yet");
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "report", "not available in this build yet");
}

int cmd_plan(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "plan", "not available in this build yet");
}

