/* cmd_validate.c - placeholder commands until their module lands. */
#include "cli/cli.h"

int cmd_validate(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "validate", "not available in this build yet");
}

