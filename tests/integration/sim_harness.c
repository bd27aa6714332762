/* sim_harness.c - start/stop the tenant simulator for tests (see sim_harness.h). */
#include "tests/integration/sim_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testutil.h"

const char *sim_harness_bin(void)
{
    static char path[1024];
    const char *env = getenv("ASSENT_SIM_BIN");
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/sim/assent-tenant-sim", tu_build_dir());
    return path;
}

static void copy_str(char *dst, size_t size, json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int launch(struct sim_harness *h, char *const extra_args[])
{
    char *port_path = tu_path(h->dir, "sim.port");
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)sim_harness_bin();
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--state";
    argv[n++] = h->state_path;
    argv[n++] = "--port-file";
    argv[n++] = port_path;
    argv[n++] = "--exit-with-parent"; /* no orphan when a failed assertion skips the stop */
    for (size_t i = 0; extra_args && extra_args[i] && n < 62; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    h->pid = tu_spawn(argv, NULL, h->log_path);
    int rc = -1;
    /* generous: the simulator may run under valgrind or ASan */
    for (int waited = 0; h->pid > 0 && waited < 60000; waited += 20) {
        char *txt = tu_read_file(port_path);
        if (txt) {
            long p = strtol(txt, NULL, 10);
            free(txt);
            if (p > 0 && p < 65536) {
                h->port = (int)p;
                rc = 0;
                break;
            }
        }
        int st;
        if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
            h->pid = -1;
            break;
        }
        tu_sleep_ms(20);
    }
    free(port_path);
    if (rc != 0) {
        char *log = tu_read_file(h->log_path);
        fprintf(stderr, "sim_harness: the simulator did not start:\n%s\n", log ? log : "");
        free(log);
        return -1;
    }
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", h->port);
    json_t *st = sim_harness_state(h);
    json_t *app = json_array_get(json_object_get(st, "apps"), 0);
    copy_str(h->tenant_id, sizeof h->tenant_id, json_object_get(json_object_get(st, "tenant"), "id"));
    copy_str(h->initial_domain, sizeof h->initial_domain,
             json_object_get(json_object_get(st, "tenant"), "initial_domain"));
    copy_str(h->client_id, sizeof h->client_id, json_object_get(app, "client_id"));
    copy_str(h->secret, sizeof h->secret, json_array_get(json_object_get(app, "secrets"), 0));
    json_decref(st);
    FILE *f = fopen(h->secret_path, "w");
    if (f) {
        fchmod(fileno(f), 0600);
        fputs(h->secret, f);
        fclose(f);
    }
    return 0;
}

static int prepare(struct sim_harness *h)
{
    memset(h, 0, sizeof *h);
    h->pid = -1;
    h->dir = tu_tmpdir("sim");
    if (!h->dir)
        return -1;
    h->state_path = tu_path(h->dir, "tenant.json");
    h->secret_path = tu_path(h->dir, "client_secret");
    h->log_path = tu_path(h->dir, "sim.log");
    return 0;
}

int sim_harness_start(struct sim_harness *h, size_t n_users, uint64_t seed,
                      char *const extra_args[])
{
    if (prepare(h) != 0)
        return -1;
    char users[32], sd[32];
    snprintf(users, sizeof users, "%zu", n_users);
    snprintf(sd, sizeof sd, "%llu", (unsigned long long)seed);
    char *argv[] = {(char *)sim_harness_bin(), "generate", "--users", users, "--seed", sd,
                    "--out", h->state_path, NULL};
    char *out = NULL, *errout = NULL;
    int rc = tu_run(argv, NULL, 120000, &out, &errout);
    if (rc != 0)
        fprintf(stderr, "sim_harness: generate failed (%d): %s\n", rc, errout ? errout : "");
    free(out);
    free(errout);
    if (rc != 0)
        return -1;
    return launch(h, extra_args);
}

int sim_harness_start_state(struct sim_harness *h, const char *state_text,
                            char *const extra_args[])
{
    if (prepare(h) != 0 || tu_write_file(h->state_path, state_text) != 0)
        return -1;
    return launch(h, extra_args);
}

json_t *sim_harness_state(const struct sim_harness *h)
{
    json_error_t je;
    json_t *st = json_load_file(h->state_path, 0, &je);
    if (!st)
        fprintf(stderr, "sim_harness: %s: %s\n", h->state_path, je.text);
    return st;
}

int sim_harness_stop(struct sim_harness *h)
{
    int code = -1;
    if (h->pid > 0) {
        int st = tu_stop(h->pid, SIGTERM);
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code != 0) {
            char *log = tu_read_file(h->log_path);
            fprintf(stderr, "sim_harness: simulator exit %d:\n%s\n", code, log ? log : "");
            free(log);
        }
    }
    if (h->dir)
        tu_rmrf(h->dir);
    free(h->dir);
    free(h->state_path);
    free(h->secret_path);
    free(h->log_path);
    memset(h, 0, sizeof *h);
    h->pid = -1;
    return code;
}

char *sim_harness_token(const struct sim_harness *h, const char *which)
{
    char url[256], body[512];
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", h->url, h->tenant_id);
    snprintf(body, sizeof body,
             "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", h->client_id,
             h->secret,
             !strcmp(which, "exo") ? "https%3A%2F%2Foutlook.office365.com%2F.default"
                                   : "https%3A%2F%2Fgraph.microsoft.com%2F.default");
    char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct tu_http_resp r;
    char *tok = NULL;
    if (tu_http("POST", url, hdrs, body, &r) == 0 && r.status == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "access_token"));
        tok = t ? strdup(t) : NULL;
        json_decref(j);
    }
    tu_http_free(&r);
    return tok;
}
