/* cmd_web.c - placeholder commands until their module lands. */
#include "cli/cli.h"

int cmd_serve(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "serve", "not available in this build yet");
}

int cmd_approvals(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "approvals", "not available in this build yet");
}

int cmd_decide(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "decide", "not available in this build yet");
}

