/* cmd_demo.c - `assent demo`: placeholder until the whole chain is in place. */
#include "cli/cli.h"

int cmd_demo(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "demo", "not available in this build yet");
}
