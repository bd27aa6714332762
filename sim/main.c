/*
 * main.c - assent-tenant-sim: a local Microsoft 365 tenant that speaks the
 * wire formats Assent's client uses (identity platform token endpoint,
 * Microsoft Graph, Exchange Online's admin InvokeCommand), for tests and the
 * demo.  See docs/simulator.md.
 *
 *   assent-tenant-sim --listen 127.0.0.1:PORT --state FILE.json [options]
 *   assent-tenant-sim generate --users N --seed S --out FILE.json [options]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>


#include "sim/sim.h"
#include "sim/sim_gen.h"
#include "sim/sim_server.h"

#define MAX_FAULT_SPECS 64

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  assent-tenant-sim [serve] --listen HOST:PORT --state FILE.json\n"
          "        [--faults FILE.json] [--fault SPEC]... [--fault-seed N]\n"
          "        [--generate N [--seed S] [--now ISO] [--domain D] [--app-id GUID]\n"
          "         [--app-secret-file F] [--app-cert PEM]]\n"
          "        [--token-lifetime SECONDS] [--threads N] [--port-file FILE]\n"
          "        [--mail-dir DIR] [--exit-with-parent]\n"
          "  assent-tenant-sim generate --users N --seed S --out FILE.json [--now ISO]\n"
          "        [--domain D] [--app-id GUID] [--app-secret-file F] [--app-cert PEM]\n"
          "\n"
          "PORT 0 picks a free port; the first stdout line is \"listening on HOST:PORT\".\n"
          "--state is loaded at start and rewritten (temp file + rename) after every change.\n"
          "Fault SPEC: KIND[,path=/prefix][,cmdlet=Name][,endpoint=label][,method=M]\n"
          "            [,count=K][,after=N][,prob=P][,delay_ms=MS][,retry_after=S|date|none]\n"
          "  KIND: 429 503 504 500 slow expired_token malformed drop nul403 write_timeout\n"
          "Admin: GET /_sim/stats, GET|POST|DELETE /_sim/faults, GET /_sim/sent_mail.\n",
          f);
}

struct opts {
    const char *listen, *state, *faults_file, *port_file, *mail_dir, *out;
    const char *fault_specs[MAX_FAULT_SPECS];
    int n_fault_specs;
    int64_t generate; /* -1: not asked */
    int64_t seed, fault_seed, token_lifetime, threads;
    const char *now, *domain, *app_id, *app_secret_file, *app_cert;
    int generate_cmd;
    int exit_with_parent;
};

static int need(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "assent-tenant-sim: %s needs a value\n", argv[i]);
        return -1;
    }
    return 0;
}

static int num(const char *flag, const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (parse_i64(v, min, max, out) != 0) {
        fprintf(stderr, "assent-tenant-sim: %s: '%s' is not an integer in [%lld, %lld]\n", flag,
                v, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->generate = -1;
    o->seed = 1;
    o->fault_seed = 1;
    o->threads = 4;
    int i = 1;
    if (argc > 1 && !strcmp(argv[1], "generate")) {
        o->generate_cmd = 1;
        i = 2;
    } else if (argc > 1 && !strcmp(argv[1], "serve")) {
        i = 2;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--exit-with-parent")) {
            o->exit_with_parent = 1;
            continue;
        }
        if (need(argc, argv, i) != 0)
            return -1;
        const char *v = argv[++i];
        if (!strcmp(a, "--listen"))
            o->listen = v;
        else if (!strcmp(a, "--state"))
            o->state = v;
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--faults"))
            o->faults_file = v;
        else if (!strcmp(a, "--fault")) {
            if (o->n_fault_specs == MAX_FAULT_SPECS) {
                fprintf(stderr, "assent-tenant-sim: at most %d --fault flags\n", MAX_FAULT_SPECS);
                return -1;
            }
            o->fault_specs[o->n_fault_specs++] = v;
        } else if (!strcmp(a, "--fault-seed")) {
            if (num(a, v, 0, INT64_MAX, &o->fault_seed))
                return -1;
        } else if (!strcmp(a, "--generate") || !strcmp(a, "--users")) {
            if (num(a, v, 0, 5000000, &o->generate))
                return -1;
        } else if (!strcmp(a, "--seed")) {
            if (num(a, v, 0, INT64_MAX, &o->seed))
                return -1;
        } else if (!strcmp(a, "--now"))
            o->now = v;
        else if (!strcmp(a, "--domain"))
            o->domain = v;
        else if (!strcmp(a, "--app-id"))
            o->app_id = v;
        else if (!strcmp(a, "--app-secret-file"))
            o->app_secret_file = v;
        else if (!strcmp(a, "--app-cert"))
            o->app_cert = v;
        else if (!strcmp(a, "--token-lifetime")) {
            if (num(a, v, 1, 86400, &o->token_lifetime))
                return -1;
        } else if (!strcmp(a, "--threads")) {
            if (num(a, v, 1, 64, &o->threads))
                return -1;
        } else if (!strcmp(a, "--port-file"))
            o->port_file = v;
        else if (!strcmp(a, "--mail-dir"))
            o->mail_dir = v;
        else {
            fprintf(stderr, "assent-tenant-sim: unknown option %s (see --help)\n", a);
            return -1;
        }
    }
    return 0;
}

/* Read a small text file (secret, PEM) into a malloc'd string, trailing newlines dropped for secrets. */
static char *read_small(const char *path, int strip)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "assent-tenant-sim: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int too_big = buf && n == 65536 && fgetc(f) != EOF;
    fclose(f);
    if (!buf || too_big) {
        fprintf(stderr, "assent-tenant-sim: %s: %s\n", path, buf ? "over 64 KiB" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    while (strip && n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return buf;
}

static int generate(const struct opts *o, struct sim_state *st)
{
    struct sim_gen_opts g = {0};
    g.n_users = (size_t)o->generate;
    g.seed = (uint64_t)o->seed;
    if (o->now) {
        if (parse_iso(o->now, &g.now_ms, NULL) != 0) {
            fprintf(stderr, "assent-tenant-sim: --now: '%s' is not an ISO 8601 time\n", o->now);
            return -1;
        }
    } else {
        /* the start of today (UTC): the same seed gives the same tenant all day */
        g.now_ms = now_ms() / 86400000LL * 86400000LL;
    }
    g.domain = o->domain;
    g.app_id = o->app_id;
    char *secret = NULL, *cert = NULL;
    int rc = -1;
    if (o->app_secret_file && !(secret = read_small(o->app_secret_file, 1)))
        goto out;
    if (o->app_cert && !(cert = read_small(o->app_cert, 0)))
        goto out;
    g.app_secret = secret;
    g.app_cert_pem = cert;
    char err[300];
    if (sim_gen_build(st, &g, err, sizeof err) != 0) {
        fprintf(stderr, "assent-tenant-sim: %s\n", err);
        sim_state_free(st);
        goto out;
    }
    rc = 0;
out:
    free(secret);
    free(cert);
    return rc;
}

static void print_summary(const struct sim_state *st, const char *path)
{
    size_t mbx = 0;
    for (size_t i = 0; i < st->n_users; i++)
        mbx += st->users[i].mbx != NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "state", path, "tenant_id",
                          st->tenant_id, "initial_domain", st->initial_domain, "client_id",
                          st->n_apps ? st->apps[0].client_id : "", "users",
                          (json_int_t)st->n_users, "mailboxes", (json_int_t)mbx, "sign_ins",
                          (json_int_t)st->n_signins);
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (txt)
        printf("%s\n", txt);
    free(txt);
    json_decref(j);
}

static int write_port_file(const char *path, int port)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d\n", port) > 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static int split_listen(const char *listen, char *host, size_t hsize, int *port)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    int64_t p;
    if (!colon || (size_t)(colon - listen) >= hsize || parse_i64(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    *port = (int)p;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);

    if (o.generate_cmd) {
        if (o.generate < 0 || !o.out) {
            fprintf(stderr, "assent-tenant-sim generate: --users N and --out FILE are required\n");
            return 2;
        }
        struct sim_state st;
        if (generate(&o, &st) != 0)
            return 1;
        char err[600];
        int rc = sim_state_save(&st, o.out, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "assent-tenant-sim: %s\n", err);
        else
            print_summary(&st, o.out);
        sim_state_free(&st);
        return rc ? 1 : 0;
    }

    char host[64];
    int port;
    if (!o.listen || split_listen(o.listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "assent-tenant-sim: --listen HOST:PORT is required (e.g. 127.0.0.1:0)\n");
        usage(stderr);
        return 2;
    }
    if (!o.state) {
        fprintf(stderr, "assent-tenant-sim: --state FILE.json is required\n");
        return 2;
    }
    struct sim_state st;
    char err[700];
    if (o.generate >= 0) {
        if (generate(&o, &st) != 0)
            return 1;
        if (sim_state_save(&st, o.state, err, sizeof err) != 0) {
            fprintf(stderr, "assent-tenant-sim: %s\n", err);
            sim_state_free(&st);
            return 1;
        }
    } else if (sim_state_load(&st, o.state, err, sizeof err) != 0) {
        fprintf(stderr, "assent-tenant-sim: %s\n", err);
        sim_state_free(&st);
        return 1;
    }
    if (o.mail_dir && mkdir(o.mail_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "assent-tenant-sim: --mail-dir %s: %s\n", o.mail_dir, strerror(errno));
        sim_state_free(&st);
        return 1;
    }

    static struct sim s; /* large (token tables): not on the stack */
    sim_init(&s, &st, o.state, o.mail_dir, (uint64_t)o.fault_seed);
    s.token_lifetime_override = (int)o.token_lifetime;
    int rc = 1;
    struct sim_server *srv = NULL;
    if (o.faults_file && sim_faults_load_file(&s.faults, o.faults_file, err, sizeof err) != 0) {
        fprintf(stderr, "assent-tenant-sim: --faults %s\n", err);
        goto out;
    }
    for (int i = 0; i < o.n_fault_specs; i++) {
        if (sim_faults_add_spec(&s.faults, o.fault_specs[i], err, sizeof err) != 0) {
            fprintf(stderr, "assent-tenant-sim: --fault '%s': %s\n", o.fault_specs[i], err);
            goto out;
        }
    }

    /* Signals are taken by sigwait() in this thread; every other thread blocks them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (o.exit_with_parent) {
        /* a test that dies without stopping us must not leave us running */
        pid_t parent = getppid();
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent || parent == 1) {
            fprintf(stderr, "assent-tenant-sim: --exit-with-parent: the parent is gone\n");
            goto out;
        }
    }

    struct sim_server_opts so = {host, port, (int)o.threads};
    int bound = 0;
    if (sim_server_start(&s, &so, &srv, &bound, err, sizeof err) != 0) {
        fprintf(stderr, "assent-tenant-sim: %s\n", err);
        goto out;
    }
    if (o.port_file && write_port_file(o.port_file, bound) != 0) {
        fprintf(stderr, "assent-tenant-sim: cannot write --port-file %s\n", o.port_file);
        sim_server_stop(&s, srv);
        goto out;
    }
    printf("listening on %s:%d\n", host, bound);
    printf("tenant %s (%s), %zu users, %zu sign-ins, state %s\n", s.st.tenant_id,
           s.st.initial_domain, s.st.n_users, s.st.n_signins, o.state);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "assent-tenant-sim: signal %d, stopping\n", sig);
    sim_server_stop(&s, srv);
    rc = 0;
out:
    sim_free(&s);
    return rc;
}
