/* cmd_kpi.c - placeholder commands until their module lands. */
#include "cli/cli.h"

int cmd_kpi(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "kpi", "not available in this build yet");
}

int cmd_exception(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "exception", "not available in this build yet");
}

int cmd_trigger(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "trigger", "not available in this build yet");
}

int cmd_demo(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "demo", "not available in this build yet");
}

