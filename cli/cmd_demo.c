/*
 * cmd_demo.c - `assent demo`: the whole chain on a fresh machine with no
 * configuration, against a generated tenant in the simulator.
 *
 *   1. under var/demo/: generate a tenant (assent-tenant-sim generate) with
 *      a client secret only this user can read, unless one exists already;
 *   2. start assent-tenant-sim on a free 127.0.0.1 port as a child process
 *      and point the login, Graph and Exchange roots at it;
 *   3. write the effective configuration to var/demo/assent.json (0600), so
 *      `assent --config var/demo/assent.json sync|report|kpi ...` work
 *      against the demo while it runs; sync the tenant into
 *      var/demo/assent.db;
 *   4. create the shipped KPIs (workflows/kpis/), evaluate them;
 *   5. trigger workflows/legacy-protocols.json for every user the
 *      legacy-enabled KPI finds (emails go to var/demo/mail as .eml files),
 *      and start workflows/block-legacy-auth.json (the report-only
 *      Conditional Access policy) and workflows/tenant-smtp-auth.json (SMTP
 *      AUTH off for the organisation) once each, approved by the security
 *      address;
 *   6. make an admin token for the console (cli/cmd_demo_console.c);
 *   7. run engine + scheduler + web server in this process, with the outbox
 *      page (GET /outbox: the delivered emails with their links, and each
 *      mailbox's protocols as the simulator has them now), until Ctrl-C;
 *      then stop everything, the simulator last.
 *
 * Re-running reuses var/demo (the tenant keeps the changes approved before,
 * open runs and links stay valid, the trigger starts nothing twice);
 * `--reset` starts from a new tenant and an empty database.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cli/cli.h"
#include "cli/cmd_demo.h"
#include "db/db_kpi.h"
#include "base/config.h"
#include "engine/engine.h"
#include "engine/workflow.h"
#include "m365/kpi.h"
#include "base/log.h"
#include "m365/scheduler.h"
#include "base/timeutil.h"
#include "m365/trigger.h"
#include "web/api_token.h"
#include "web/outbox_page.h"
#include "web/server.h"

#define DEMO_USERS 50
#define SIM_START_MS 15000
#define DEMO_SCHEDULE "*/3 * * * *"

struct demo {
    char dir[PATH_MAX];
    char tenant[PATH_MAX + 32], secret[PATH_MAX + 32], port_file[PATH_MAX + 32];
    char sim_log[PATH_MAX + 32], mail_dir[PATH_MAX + 32], db[PATH_MAX + 32];
    char config[PATH_MAX + 32];
    char workflows[PATH_MAX];
    char sim_bin[PATH_MAX];
    char tenant_id[128], client_id[128], domain[256];
    pid_t sim_pid;
    int port;
};

static void demo_usage(FILE *f)
{
    fprintf(f,
            "usage: assent demo [--users N] [--seed S] [--reset] [--dir DIR] [--listen ADDR:PORT]\n"
            "\n"
            "Run the whole chain against a built-in demo tenant: generate a tenant of N users\n"
            "(default %d) in the tenant simulator, sync it, evaluate the legacy-protocol KPIs,\n"
            "start the legacy-protocols workflow for each user found, deliver its email to\n"
            "DIR/mail, and serve the approval pages plus an outbox page on\n"
            "http://127.0.0.1:8080/ (or --listen / ASSENT_LISTEN) until Ctrl-C.\n"
            "\n"
            "  --dir DIR     where the demo keeps its files (default var/demo)\n"
            "  --reset       start from a new tenant and an empty database\n"
            "  --users N     users in a new tenant (default %d)\n"
            "  --seed S      generator seed of a new tenant (default 7)\n"
            "\n"
            "It writes its configuration to DIR/assent.json (mode 0600): while the demo runs,\n"
            "`assent --config DIR/assent.json sync|report|kpi|runs ...` work against it.\n"
            "\n"
            "Re-running reuses DIR: the tenant keeps what was approved, waiting approvals\n"
            "and their links stay valid, and nobody gets a second run.\n"
            "The simulator binary is found next to this one (sim/assent-tenant-sim) or in\n"
            "$ASSENT_SIM_BIN.\n",
            DEMO_USERS, DEMO_USERS);
}

/* ---- files and processes ---- */

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The folder of the running executable into buf; 0 or -1. */
static int exe_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* The simulator: $ASSENT_SIM_BIN, else sim/assent-tenant-sim next to this binary. */
static int find_sim(struct demo *d)
{
    const char *env = getenv("ASSENT_SIM_BIN");
    if (env && *env) {
        snprintf(d->sim_bin, sizeof d->sim_bin, "%s", env);
        return access(d->sim_bin, X_OK) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    if (exe_dir(self, sizeof self) != 0)
        return -1;
    snprintf(d->sim_bin, sizeof d->sim_bin, "%s/sim/assent-tenant-sim", self);
    return access(d->sim_bin, X_OK) == 0 ? 0 : -1;
}

/* workflows/ of the source tree: the current directory's, else next to the build dir. */
static int find_workflows(struct demo *d)
{
    if (exists("workflows/legacy-protocols.json") && realpath("workflows", d->workflows))
        return 0;
    char self[PATH_MAX], cand[PATH_MAX + 64];
    if (exe_dir(self, sizeof self) != 0)
        return -1;
    snprintf(cand, sizeof cand, "%s/../workflows", self);
    char probe[PATH_MAX + 96];
    snprintf(probe, sizeof probe, "%s/legacy-protocols.json", cand);
    if (exists(probe) && realpath(cand, d->workflows))
        return 0;
    return -1;
}

/*
 * Start argv as a child with stdout+stderr to log_path (appended), in its
 * own process group (Ctrl-C reaches only us; we stop it last) and dying
 * with us if we are killed.  Signals unblocked in the child.
 */
static pid_t spawn(char *const argv[], const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd);
    return pid;
}

/* Wait up to ms for pid; its exit code, or -1 (still running). */
static int wait_exit(pid_t pid, int ms)
{
    for (int waited = 0;; waited += 50) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0 || waited >= ms)
            return -1;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void stop_sim(struct demo *d)
{
    if (d->sim_pid <= 0)
        return;
    kill(d->sim_pid, SIGTERM);
    if (wait_exit(d->sim_pid, 5000) < 0) {
        kill(d->sim_pid, SIGKILL);
        waitpid(d->sim_pid, NULL, 0);
    }
    d->sim_pid = 0;
}

static char *read_file(const char *path, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Remove the demo's mail folder: the .eml files in it, then the folder. */
static void remove_mail(const char *dir)
{
    DIR *md = opendir(dir);
    if (!md)
        return;
    struct dirent *e;
    while ((e = readdir(md)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            fprintf(stderr, "assent demo: cannot remove %s: %s\n", path, strerror(errno));
    }
    closedir(md);
    rmdir(dir);
}

/* ---- steps ---- */

/* A new tenant: a random client secret (0600) and the generator. */
static int generate_tenant(struct demo *d, long users, long seed)
{
    unsigned char raw[24];
    char secret[64] = "demo~";
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(secret + 5 + 2 * i, 3, "%02x", raw[i]);
    int fd = open(d->secret, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, secret, strlen(secret)) != (ssize_t)strlen(secret) || fchmod(fd, 0600)) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "assent demo: cannot write %s: %s\n", d->secret, strerror(errno));
        return -1;
    }
    close(fd);
    char n_users[32], n_seed[32], gen_log[PATH_MAX + 32];
    snprintf(n_users, sizeof n_users, "%ld", users);
    snprintf(n_seed, sizeof n_seed, "%ld", seed);
    snprintf(gen_log, sizeof gen_log, "%s/generate.json", d->dir);
    unlink(gen_log);
    char *argv[] = {d->sim_bin, "generate", "--users", n_users, "--seed", n_seed, "--out",
                    d->tenant, "--app-secret-file", d->secret, NULL};
    pid_t pid = spawn(argv, gen_log);
    int rc = pid > 0 ? wait_exit(pid, 120000) : -1;
    if (rc != 0) {
        if (pid > 0 && rc < 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        char *log = read_file(gen_log, 4000);
        fprintf(stderr, "assent demo: generating the tenant failed: %s\n", log ? log : "");
        free(log);
        return -1;
    }
    return 0;
}

/* Tenant id, client id and domain from the state file. */
static int read_tenant(struct demo *d)
{
    json_error_t jerr;
    json_t *doc = json_load_file(d->tenant, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "assent demo: %s: %s\n", d->tenant, jerr.text);
        return -1;
    }
    const json_t *t = json_object_get(doc, "tenant");
    const json_t *app = json_array_get(json_object_get(doc, "apps"), 0);
    const char *tid = json_string_value(json_object_get(t, "id"));
    const char *cid = json_string_value(json_object_get(app, "client_id"));
    const char *dom = json_string_value(json_array_get(json_object_get(t, "domains"), 0));
    if (!tid || !cid) {
        json_decref(doc);
        fprintf(stderr, "assent demo: %s has no tenant id or app\n", d->tenant);
        return -1;
    }
    snprintf(d->tenant_id, sizeof d->tenant_id, "%s", tid);
    snprintf(d->client_id, sizeof d->client_id, "%s", cid);
    snprintf(d->domain, sizeof d->domain, "%s", dom ? dom : "contoso.com");
    json_decref(doc);
    return 0;
}

static int start_sim(struct demo *d)
{
    unlink(d->port_file);
    char *argv[] = {d->sim_bin, "--listen", "127.0.0.1:0", "--state", d->tenant, "--port-file",
                    d->port_file, NULL};
    d->sim_pid = spawn(argv, d->sim_log);
    if (d->sim_pid <= 0) {
        fprintf(stderr, "assent demo: cannot start %s\n", d->sim_bin);
        return -1;
    }
    for (int waited = 0; waited < SIM_START_MS; waited += 50) {
        char *text = read_file(d->port_file, 32);
        if (text) {
            d->port = (int)strtol(text, NULL, 10);
            free(text);
            if (d->port > 0)
                return 0;
        }
        if (wait_exit(d->sim_pid, 0) >= 0) {
            d->sim_pid = 0;
            break;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    char *log = read_file(d->sim_log, 4000);
    fprintf(stderr, "assent demo: the tenant simulator did not start (log %s):\n%s\n", d->sim_log,
            log ? log : "");
    free(log);
    stop_sim(d);
    return -1;
}

static int configure(struct cli *cli, struct demo *d)
{
    struct as_err err = {0};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", d->port);
    const char *kv[][2] = {
        {"db", d->db},
        {"login_url", url},
        {"graph_url", url},
        {"exchange_url", url},
        {"tenant_id", d->tenant_id},
        {"client_id", d->client_id},
        {"client_secret_file", d->secret},
        {"client_cert_file", ""},
        {"client_key_file", ""},
        {"mail_transport", "file"},
        {"mail_dir", d->mail_dir},
        /* The console's bulk action starts workflows/legacy-protocols.json. */
        {"api_workflow_dir", d->workflows},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (config_set(cli->app.cfg, kv[i][0], kv[i][1], &err) != AS_OK) {
            fprintf(stderr, "assent demo: %s\n", err.msg);
            return -1;
        }
    }
    char from[300];
    snprintf(from, sizeof from, "assent@%s", d->domain);
    if (strcmp(config_source(cli->app.cfg, "mail_from"), "default") == 0 &&
        config_set(cli->app.cfg, "mail_from", from, &err) != AS_OK)
        return -1;
    /* Links must point where we listen. */
    if (strcmp(config_source(cli->app.cfg, "public_url"), "default") == 0) {
        char pub[300];
        snprintf(pub, sizeof pub, "http://%s", config_str(cli->app.cfg, "listen"));
        if (config_set(cli->app.cfg, "public_url", pub, &err) != AS_OK) {
            fprintf(stderr, "assent demo: %s\n", err.msg);
            return -1;
        }
    }
    return 0;
}

/*
 * Write the demo's effective configuration to DIR/assent.json (mode 0600,
 * replaced atomically), so that `assent --config DIR/assent.json sync |
 * report | kpi ...` reach the demo tenant and database while the demo runs
 * (the simulator's port changes with every start).  It names the client
 * secret's file, never the secret.
 */
static int write_config(struct cli *cli, struct demo *d)
{
    static const char *const keys[] = {
        "db", "login_url", "graph_url", "exchange_url", "tenant_id", "client_id",
        "client_secret_file", "client_cert_file", "client_key_file", "mail_transport",
        "mail_dir", "mail_from", "public_url",
    };
    char tmp[PATH_MAX + 48];
    json_t *doc = json_object();
    for (size_t i = 0; doc && i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_set_new(doc, keys[i], json_string(config_str(cli->app.cfg, keys[i]))))
            break;
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!text) {
        fprintf(stderr, "assent demo: out of memory\n");
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", d->config);
    size_t len = strlen(text);
    int ok = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len &&
             write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        ok = ok && rename(tmp, d->config) == 0;
    }
    if (!ok) {
        fprintf(stderr, "assent demo: cannot write %s: %s\n", d->config, strerror(errno));
        unlink(tmp);
    }
    free(text);
    return ok ? 0 : -1;
}

/* Create (or replace) one shipped KPI, with demo trigger input for legacy-enabled. */
static int create_kpi(struct cli *cli, struct demo *d, const char *file)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/kpis/%s", d->workflows, file);
    json_error_t jerr;
    json_t *in = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *def = NULL;
    if (!in) {
        fprintf(stderr, "assent demo: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    json_t *trig = json_object_get(in, "trigger");
    if (trig) {
        char wf[PATH_MAX + 64], owner[300], security[300], desk[300];
        snprintf(wf, sizeof wf, "%s/legacy-protocols.json", d->workflows);
        snprintf(owner, sizeof owner, "exchange-owner@%s", d->domain);
        snprintf(security, sizeof security, "security@%s", d->domain);
        snprintf(desk, sizeof desk, "the IT service desk (helpdesk@%s)", d->domain);
        json_object_set_new(trig, "workflow", json_string(wf));
        json_object_set_new(trig, "input", json_pack("{s:[s], s:[s], s:s}", "approvers", owner,
                                                     "escalate_to", security, "contact", desk));
        /* Show the scheduler too: re-sync and re-evaluate every few minutes,
         * so the trend goes down as changes are approved. */
        json_object_set_new(in, "schedule", json_pack("{s:s, s:s, s:b}", "cron", DEMO_SCHEDULE,
                                                      "timezone", "UTC", "sync", 1));
    }
    struct as_err err = {0};
    int rc = -1;
    char *text = NULL;
    if (kpi_def_normalize(in, &def, &err) != AS_OK) {
        fprintf(stderr, "assent demo: %s: %s\n", path, err.msg);
        goto out;
    }
    text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    const json_t *sched = json_object_get(def, "schedule");
    int64_t id;
    if (!text || db_kpi_put(cli->app.db, json_string_value(json_object_get(def, "name")),
                            json_string_value(json_object_get(def, "report")), text,
                            json_string_value(json_object_get(sched, "cron")),
                            json_string_value(json_object_get(sched, "timezone")), 1, time_now_ms(),
                            &id, &err) != AS_OK) {
        fprintf(stderr, "assent demo: %s: %s\n", path, err.msg);
        goto out;
    }
    rc = 0;
out:
    free(text);
    json_decref(def);
    json_decref(in);
    return rc;
}

static int eval_kpi(struct cli *cli, const char *name, int64_t *value)
{
    struct as_err err = {0};
    struct kpi *k = NULL;
    struct kpi_result res = {0};
    int rc = -1;
    if (kpi_load(&cli->app, name, &k, &err) != AS_OK ||
        kpi_eval(&cli->app, k, time_now_ms(), NULL, NULL, NULL, &res, &err) != AS_OK ||
        kpi_record(&cli->app, k, &res, &err) != AS_OK) {
        fprintf(stderr, "assent demo: KPI %s: %s\n", name, err.msg);
        goto out;
    }
    printf("  %-20s = %lld", name, (long long)res.value);
    if (res.exempt)
        printf(" (%lld exempt)", (long long)res.exempt);
    if (res.breakdown) {
        const char *key;
        json_t *v;
        int first = 1;
        printf("  by client app:");
        json_object_foreach(res.breakdown, key, v)
        {
            printf("%s %s %lld", first ? "" : ",", key, (long long)json_integer_value(v));
            first = 0;
        }
    }
    printf("\n");
    if (value)
        *value = res.value;
    rc = 0;
out:
    kpi_result_clear(&res);
    kpi_free(k);
    return rc;
}

static int trigger(struct cli *cli)
{
    struct as_err err = {0};
    struct kpi *k = NULL;
    struct trigger_stats st;
    struct trigger_opts o = {.max_open = -1, .trigger = "demo"};
    int rc = -1;
    if (kpi_load(&cli->app, "legacy-enabled", &k, &err) != AS_OK ||
        trigger_kpi(&cli->app, k, time_now_ms(), &o, &st, &err) != AS_OK) {
        fprintf(stderr, "assent demo: trigger: %s\n", err.msg);
        goto out;
    }
    printf("  started %lld run(s) of legacy-protocols", (long long)st.started);
    if (st.duplicates)
        printf(", %lld user(s) already have one open", (long long)st.duplicates);
    printf("\n");
    rc = st.invalid ? -1 : 0;
    if (st.invalid)
        fprintf(stderr, "assent demo: %lld row(s) did not fit the workflow's input\n",
                (long long)st.invalid);
out:
    kpi_free(k);
    return rc;
}

/* Start one shipped workflow once (deduplicated across demo runs by
 * "demo-NAME"), asked of security@: the organisation-wide moves. */
static int start_once(struct cli *cli, struct demo *d, const char *name)
{
    struct as_err err = {0};
    struct diag_list diags = {0};
    struct workflow *wf = NULL;
    char path[PATH_MAX + 64], security[300], key[128];
    int rc = -1;
    snprintf(path, sizeof path, "%s/%s.json", d->workflows, name);
    snprintf(security, sizeof security, "security@%s", d->domain);
    snprintf(key, sizeof key, "demo-%s", name);
    json_t *input = json_pack("{s:[s], s:[s]}", "approvers", security, "escalate_to", security);
    if (!input || wf_load_file(path, &wf, &diags, &err) != AS_OK) {
        fprintf(stderr, "assent demo: %s: %s\n", path, err.msg[0] ? err.msg : "invalid workflow");
        goto out;
    }
    struct engine_run_opts opts = {.dedupe_key = key, .trigger = "demo", .source_path = path};
    int64_t run_id = 0;
    enum as_code arc = engine_submit_run(&cli->app, wf, input, &opts, &run_id, &err);
    if (arc == AS_ECONFLICT)
        printf("  %s already has run %lld open\n", name, (long long)run_id);
    else if (arc)
        fprintf(stderr, "assent demo: %s: %s\n", name, err.msg);
    else
        printf("  started run %lld of %s (approval to %s)\n", (long long)run_id, name, security);
    rc = arc && arc != AS_ECONFLICT ? -1 : 0;
out:
    json_decref(input);
    wf_free(wf);
    diag_free(&diags);
    return rc;
}

/* The options of `assent demo`. */
struct demo_opts {
    const char *dir;
    long users, seed;
    int reset;
};

/* Parse argv into o; EXIT_OK, or the exit code after a message. */
static int demo_args(struct cli *cli, int argc, char **argv, struct demo_opts *o)
{
    struct as_err err = {0};
    for (int i = 1; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--reset") == 0) {
            o->reset = 1;
        } else if (i + 1 < argc && strcmp(argv[i], "--dir") == 0) {
            o->dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--listen") == 0) {
            if (config_set(cli->app.cfg, "listen", argv[++i], &err) != AS_OK)
                return cli_error(EXIT_USAGE, "demo", "%s", err.msg);
        } else if (i + 1 < argc && strcmp(argv[i], "--users") == 0) {
            o->users = strtol(argv[++i], &end, 10);
            if (*end || o->users < 1 || o->users > 100000)
                return cli_error(EXIT_USAGE, "demo", "--users must be from 1 to 100000");
        } else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0) {
            o->seed = strtol(argv[++i], &end, 10);
            if (*end || o->seed < 0)
                return cli_error(EXIT_USAGE, "demo", "--seed must be a number >= 0");
        } else {
            demo_usage(stderr);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

/* The demo's folder and file names, the simulator and the workflows; with
 * --reset, the files of an earlier demo removed.  EXIT_OK or an exit code. */
static int demo_files(struct demo *d, const struct demo_opts *o)
{
    if (mkdirs(o->dir) != 0 || !realpath(o->dir, d->dir))
        return cli_error(EXIT_FAIL, "demo", "cannot create %s: %s", o->dir, strerror(errno));
    snprintf(d->tenant, sizeof d->tenant, "%s/tenant.json", d->dir);
    snprintf(d->secret, sizeof d->secret, "%s/client-secret", d->dir);
    snprintf(d->port_file, sizeof d->port_file, "%s/sim.port", d->dir);
    snprintf(d->sim_log, sizeof d->sim_log, "%s/sim.log", d->dir);
    snprintf(d->mail_dir, sizeof d->mail_dir, "%s/mail", d->dir);
    snprintf(d->db, sizeof d->db, "%s/assent.db", d->dir);
    snprintf(d->config, sizeof d->config, "%s/assent.json", d->dir);
    if (find_sim(d) != 0)
        return cli_error(EXIT_CONFIG, "demo",
                         "the tenant simulator is not at %s: build it (cmake --build build) or set "
                         "ASSENT_SIM_BIN", d->sim_bin[0] ? d->sim_bin : "sim/assent-tenant-sim");
    if (find_workflows(d) != 0)
        return cli_error(EXIT_CONFIG, "demo",
                         "workflows/legacy-protocols.json not found: run the demo from the source "
                         "tree (scripts/demo.sh does)");
    if (o->reset) {
        char path[PATH_MAX + 64];
        const char *files[] = {"tenant.json", "client-secret", "assent.db", "assent.db-wal",
                               "assent.db-shm", "sim.port", "sim.log", "generate.json",
                               "assent.json"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", d->dir, files[i]);
            unlink(path);
        }
        remove_mail(d->mail_dir);
    }
    return EXIT_OK;
}

/* The tenant (generated or reused) and its simulator running; 0 or -1. */
static int demo_tenant(struct demo *d, const struct demo_opts *o)
{
    if (!exists(d->tenant) || !exists(d->secret)) {
        printf("- generating a tenant of %ld users (seed %ld)\n", o->users, o->seed);
        fflush(stdout);
        if (generate_tenant(d, o->users, o->seed) != 0)
            return -1;
    } else {
        printf("- reusing the tenant in %s (--reset for a new one)\n", d->tenant);
    }
    if (read_tenant(d) != 0 || start_sim(d) != 0)
        return -1;
    printf("- tenant simulator listening on 127.0.0.1:%d (pid %d, log %s)\n", d->port,
           (int)d->sim_pid, d->sim_log);
    return 0;
}

/* The chain up to the approvals: configuration, database, sync, KPIs,
 * trigger.  EXIT_OK or an exit code. */
static int demo_chain(struct cli *cli, struct demo *d)
{
    if (configure(cli, d) != 0 || write_config(cli, d) != 0)
        return EXIT_FAIL;
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    printf("- syncing the tenant\n");
    fflush(stdout);
    char *sync_argv[] = {"sync", NULL};
    if (cmd_sync(cli, 1, sync_argv) != EXIT_OK)
        return EXIT_FAIL;
    printf("- KPIs (workflows/kpis/):\n");
    static const char *const kpis[] = {"legacy-enabled.json", "legacy-used-30d.json",
                                       "legacy-signins-30d.json", "smtp-basic.json",
                                       "drift.json"};
    for (size_t i = 0; i < sizeof kpis / sizeof kpis[0]; i++)
        if (create_kpi(cli, d, kpis[i]) != 0)
            return EXIT_FAIL;
    if (eval_kpi(cli, "legacy-enabled", NULL) || eval_kpi(cli, "legacy-used-30d", NULL) ||
        eval_kpi(cli, "legacy-signins-30d", NULL) || eval_kpi(cli, "smtp-basic", NULL) ||
        eval_kpi(cli, "drift", NULL))
        return EXIT_FAIL;
    printf("- triggering workflows/legacy-protocols.json for each user of legacy-enabled\n");
    if (trigger(cli) != 0)
        return EXIT_FAIL;
    printf("- workflows/block-legacy-auth.json: a report-only Conditional Access policy "
           "blocking legacy authentication, excluding the users with an exception\n");
    if (start_once(cli, d, "block-legacy-auth") != 0)
        return EXIT_FAIL;
    printf("- workflows/tenant-smtp-auth.json: SMTP AUTH off for the whole organisation "
           "before Microsoft's end-of-December switch (who follows the organisation, who "
           "still uses it, explicit enables and exceptions in the approval)\n");
    return start_once(cli, d, "tenant-smtp-auth") != 0 ? EXIT_FAIL : EXIT_OK;
}

static void demo_banner(struct cli *cli, const struct demo *d, const char *dir,
                        const char *token)
{
    const char *pub = config_str(cli->app.cfg, "public_url");
    printf("\n"
           "Assent is running: workers, scheduler and web server on %s\n"
           "\n"
           "  Open %s/outbox\n"
           "\n"
           "  It lists the emails Assent sent (each user was told what will change; the\n"
           "  owner got an approval link per user) and every mailbox's protocols as the\n"
           "  simulator has them now.  Open an approval link, Approve (or Reject with a\n"
           "  comment), then reload the outbox: the approved user's POP, IMAP and SMTP AUTH\n"
           "  are off.  A rejection records an exception (`assent exception list --db %s`).\n"
           "  The approval sent to security@ asks for the report-only Conditional Access\n"
           "  policy that blocks legacy authentication; once approved, `assent report\n"
           "  policies` (after a sync) shows it, excluding the users with an exception.\n"
           "\n"
           "  Emails are also files in %s.\n"
           "  Every 3 minutes the scheduler syncs the tenant again and re-evaluates\n"
           "  legacy-enabled (nobody gets a second run).\n"
           "\n"
           "  While the demo runs, any command reaches its tenant and database with\n"
           "  its configuration (%s), e.g.\n"
           "\n"
           "    assent --config %s/assent.json sync\n"
           "    assent --config %s/assent.json report users\n"
           "    assent --config %s/assent.json kpi show legacy-enabled\n"
           "    assent --config %s/assent.json runs\n",
           config_str(cli->app.cfg, "listen"), pub, d->db, d->mail_dir, d->config, dir, dir, dir,
           dir);
    demo_console_banner(pub, token);
    printf("\n  Ctrl-C stops everything.\n");
    fflush(stdout);
}

/* What runs until Ctrl-C, so it can be stopped whatever got started. */
struct demo_serving {
    struct engine *engine;
    struct web_server *ws;
    int scheduler_on;
};

/* Engine, scheduler and web server in this process until Ctrl-C.  Threads
 * inherit the signal mask: block first, then wait in sigwait.  EXIT_OK after
 * the signal, EXIT_FAIL when something did not start. */
static int demo_serve(struct cli *cli, const struct demo *d, const char *dir,
                      struct demo_serving *sv)
{
    struct as_err err = {0};
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    outbox_page_configure(d->mail_dir, d->tenant);
    if (engine_start(&cli->app, (int)config_int(cli->app.cfg, "workers"), &sv->engine, &err) !=
        AS_OK) {
        fprintf(stderr, "assent demo: cannot start the engine: %s\n", err.msg);
        return EXIT_FAIL;
    }
    if (config_bool(cli->app.cfg, "scheduler")) {
        if (scheduler_start(&cli->app, &err) != AS_OK) {
            fprintf(stderr, "assent demo: cannot start the scheduler: %s\n", err.msg);
            return EXIT_FAIL;
        }
        sv->scheduler_on = 1;
    }
    if (web_server_start(&cli->app, &sv->ws, &err) != AS_OK) {
        fprintf(stderr, "assent demo: cannot start the web server on %s: %s (another port: "
                        "assent demo --listen 127.0.0.1:8081)\n",
                config_str(cli->app.cfg, "listen"), err.msg);
        return EXIT_FAIL;
    }
    char token[API_TOKEN_LEN + 1];
    if (demo_console_token(cli, token, sizeof token) != 0)
        return EXIT_FAIL;
    demo_banner(cli, d, dir, token);
    memset(token, 0, sizeof token);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    printf("\nstopping (signal %d)...\n", sig);
    return EXIT_OK;
}

static void demo_stop(struct cli *cli, struct demo *d, struct demo_serving *sv)
{
    int64_t grace = config_int(cli->app.cfg, "shutdown_grace_seconds") * 1000;
    web_server_stop(sv->ws, (int)(grace < 5000 ? grace : 5000));
    outbox_page_configure(NULL, NULL);
    if (sv->scheduler_on)
        scheduler_stop();
    if (sv->engine && engine_stop(sv->engine, grace) == AS_ETIMEOUT)
        LOG_WARN("demo", "steps still running keep their lease and run again on the next start");
    stop_sim(d);
}

int cmd_demo(struct cli *cli, int argc, char **argv)
{
    struct demo d = {0};
    struct demo_opts o = {.dir = "var/demo", .users = DEMO_USERS, .seed = 7};
    struct demo_serving sv = {0};
    int rc;

    if (cli_wants_help(argc, argv)) {
        demo_usage(stdout);
        return EXIT_OK;
    }
    /* Progress lines and log lines (stderr) interleave in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = demo_args(cli, argc, argv, &o)) || (rc = demo_files(&d, &o)))
        return rc;
    printf("Assent demo in %s\n", d.dir);
    if (demo_tenant(&d, &o) != 0)
        return EXIT_FAIL;
    rc = demo_chain(cli, &d);
    if (rc == EXIT_OK)
        rc = demo_serve(cli, &d, o.dir, &sv);
    demo_stop(cli, &d, &sv);
    if (rc == EXIT_OK)
        printf("stopped; run `assent demo` again to continue where you left off\n");
    return rc;
}
