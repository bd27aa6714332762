/*
 * cmd_demo.h - what the files of `assent demo` share (cli/cmd_demo.c runs
 * the demo; cli/cmd_demo_console.c is its admin console part).
 */
#ifndef ASSENT_CLI_CMD_DEMO_H
#define ASSENT_CLI_CMD_DEMO_H

#include <stddef.h>

struct cli;

/* Revoke the demo's previous console token and make a new admin one into
 * token (size >= API_TOKEN_LEN + 1).  0, or -1 after a message. */
int demo_console_token(struct cli *cli, char *token, size_t size);

/* Print where the console is and the token to sign in with. */
void demo_console_banner(const char *public_url, const char *token);

#endif
