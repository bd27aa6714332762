/* cli_env.c - the `assent` binary in a temporary folder (see cli_env.h). */
#include "tests/integration/cli_env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/http_echo_server.h"
#include "tests/testutil.h"

#define T_MS 60000

int cli_env_setup(void **state, const char *name)
{
    struct cli_env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->dir = tu_tmpdir(name);
    e->db = tu_path(e->dir, "assent.db");
    size_t n = strlen(e->db) + 16;
    e->env_db = malloc(n);
    if (e->env_db)
        snprintf(e->env_db, n, "ASSENT_DB=%s", e->db);
    e->srv = echo_start();
    *state = e;
    return e->srv && e->env_db ? 0 : -1;
}

int cli_env_teardown(void **state)
{
    struct cli_env *e = *state;
    echo_stop(e->srv);
    tu_rmrf(e->dir);
    free(e->dir);
    free(e->db);
    free(e->env_db);
    free(e);
    return 0;
}

int cli_env_assent(struct cli_env *e, char **out, char **err, ...)
{
    char *argv[12] = {(char *)tu_assent_bin()};
    va_list ap;
    va_start(ap, err);
    int n = 1;
    const char *a;
    while (n < 11 && (a = va_arg(ap, const char *)))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char *env[] = {e->env_db, "ASSENT_LOG_LEVEL=warn", NULL};
    return tu_run(argv, env, T_MS, out, err);
}

char *cli_env_post_wf(struct cli_env *e)
{
    static const char fmt[] =
        "{\"name\": \"post-once\", \"version\": \"1\", \"steps\": {\n"
        "  \"post\": {\"type\": \"http\", \"params\": {\"method\": \"POST\", \"url\": \"%s\"},\n"
        "            \"retry\": {\"attempts\": 1}, \"timeout\": \"10s\", \"next\": \"after\"},\n"
        "  \"after\": {\"type\": \"log\", \"params\": {\"message\": \"posted\"}}}}\n";
    char *url = echo_url(e->srv, "/hook"), text[1024];
    snprintf(text, sizeof text, fmt, url);
    free(url);
    char *p = tu_path(e->dir, "post.json");
    if (tu_write_file(p, text) != 0) {
        free(p);
        return NULL;
    }
    return p;
}
