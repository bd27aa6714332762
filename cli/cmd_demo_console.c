/*
 * cmd_demo_console.c - the admin console's part of `assent demo`: a ready
 * admin token, made with the token machinery (web/api_token.h) so that a
 * new user can sign in to /console/ at once and follow the campaign in the
 * browser.
 *
 * The token is named DEMO_TOKEN_NAME.  A token is shown only when it is
 * made, so every start of the demo revokes the previous one (in the audit
 * chain) and makes a new one, valid for DEMO_TOKEN_DAYS.
 */
#include <stdio.h>
#include <string.h>

#include "base/timeutil.h"
#include "cli/cli.h"
#include "cli/cmd_demo.h"
#include "db/db_tokens.h"
#include "web/api_token.h"

#define DEMO_TOKEN_NAME "demo-admin"
#define DEMO_TOKEN_DAYS 30

int demo_console_token(struct cli *cli, char *token, size_t size)
{
    struct as_err err = {0};
    int64_t now = time_now_ms();
    enum as_code rc = db_api_token_revoke(cli->app.db, DEMO_TOKEN_NAME, "assent demo", now, NULL, &err);
    if (rc && rc != AS_ENOTFOUND) {
        fprintf(stderr, "assent demo: cannot revoke the previous console token: %s\n", err.msg);
        return -1;
    }
    rc = api_token_create(cli->app.db, DEMO_TOKEN_NAME, API_ROLE_ADMIN,
                          now + DEMO_TOKEN_DAYS * 24LL * 3600 * 1000, "assent demo", now, token,
                          size, NULL, &err);
    if (rc) {
        fprintf(stderr, "assent demo: cannot make a console token: %s\n", err.msg);
        return -1;
    }
    return 0;
}

void demo_console_banner(const char *public_url, const char *token)
{
    printf("\n"
           "  The admin console: %s/console/\n"
           "  Sign in with this admin token (named %s, valid %d days; a new one is made\n"
           "  at every start of the demo, and the old one revoked):\n"
           "\n"
           "    %s\n"
           "\n"
           "  It shows the KPIs with their trend, the users with their protocols (select\n"
           "  some and turn their protocols off with approval), runs, approvals and\n"
           "  exceptions.  More tokens: `assent --config <dir>/assent.json token create`.\n",
           public_url, DEMO_TOKEN_NAME, DEMO_TOKEN_DAYS, token);
}
