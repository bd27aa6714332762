/* cmd_engine.c - placeholder commands until their module lands. */
#include "cli/cli.h"

int cmd_run(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "run", "not available in this build yet");
}

int cmd_worker(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "worker", "not available in this build yet");
}

int cmd_runs(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "runs", "not available in this build yet");
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "show", "not available in this build yet");
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "cancel", "not available in this build yet");
}

int cmd_retry(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "retry", "not available in this build yet");
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
    (void)cli; (void)argc; (void)argv;
    return cli_error(EXIT_FAIL, "audit", "not available in this build yet");
}

