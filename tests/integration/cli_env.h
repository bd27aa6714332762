/*
 * cli_env.h - the fixture of the integration tests that drive the real
 * `assent` binary against a database in a temporary folder, with a local
 * HTTP echo server for the http step (it_engine_cli.c, sqlite_tamper.c).
 */
#ifndef ASSENT_TEST_CLI_ENV_H
#define ASSENT_TEST_CLI_ENV_H

struct echo_server;

struct cli_env {
    char *dir;         /* the temporary folder */
    char *db;          /* dir/assent.db */
    char *env_db;      /* "ASSENT_DB=<db>" */
    struct echo_server *srv;
};

/* cmocka setup: *state becomes a new cli_env in a folder named after `name`. */
int cli_env_setup(void **state, const char *name);

/* cmocka teardown: stop the echo server, remove the folder, free. */
int cli_env_teardown(void **state);

/*
 * Run assent with ASSENT_DB set to e->db and up to 10 arguments
 * (NULL-terminated), warnings only in its log; stdout and stderr in
 * *out / *err when not NULL (caller frees).  Returns the exit code.
 */
int cli_env_assent(struct cli_env *e, char **out, char **err, ...);

/* A workflow file in e->dir that POSTs once (no retry) to the echo
 * server's /hook and then logs; its path (caller frees). */
char *cli_env_post_wf(struct cli_env *e);

#endif
