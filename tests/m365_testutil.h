/*
 * m365_testutil.h - helpers for the Microsoft 365 client tests (header-only,
 * included by tests/unit/test_m365_*.c and tests/integration/m365_*.c after
 * tests/testutil.h): a self-signed certificate made with libcrypto, and
 * base64url decoding to look inside JWTs.
 */
#ifndef ASSENT_M365_TESTUTIL_H
#define ASSENT_M365_TESTUTIL_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/encode.h"

/*
 * Write a new RSA-2048 key (mode key_mode) and a self-signed certificate for
 * it into dir as cert.pem / key.pem; *cert_path and *key_path are malloc'd.
 * Returns 0 on success.
 */
static inline int mt_make_cert(const char *dir, mode_t key_mode, char **cert_path,
                               char **key_path)
{
    int rc = -1;
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    FILE *f = NULL;
    *cert_path = *key_path = NULL;
    if (!pkey || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"assent-test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, pkey, EVP_sha256()))
        goto out;
    size_t n = strlen(dir) + 16;
    *cert_path = malloc(n);
    *key_path = malloc(n);
    snprintf(*cert_path, n, "%s/cert.pem", dir);
    snprintf(*key_path, n, "%s/key.pem", dir);
    f = fopen(*cert_path, "w");
    if (!f || !PEM_write_X509(f, x))
        goto out;
    fclose(f);
    f = fopen(*key_path, "w");
    if (!f || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
        goto out;
    fclose(f);
    f = NULL;
    chmod(*key_path, key_mode);
    rc = 0;
out:
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Decode base64url (no padding) into a malloc'd buffer; *len its size. */
static inline unsigned char *mt_b64url_decode(const char *in, size_t in_len, size_t *len)
{
    unsigned char *out = malloc(in_len / 4 * 3 + 2);
    long n = out ? encode_b64_decode(in, in_len, ENCODE_B64_URL, out, in_len / 4 * 3 + 2) : -1;
    if (n < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

/* The PEM text of a file (for registering a certificate in the simulator state). */
static inline char *mt_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

/* ------------------------------------------------------ the simulator */

#include <jansson.h>
#include <unistd.h>

struct mt_sim {
    pid_t pid;
    int port;
    char *dir;         /* borrowed from the caller */
    char *state;       /* state file path */
    char *secret_path; /* apps[0].secrets[0], mode 0600 */
    char url[64];      /* http://127.0.0.1:PORT */
    char tenant[64];
    char client_id[64];
};

static inline char *mt_sim_bin(void)
{
    return tu_path(tu_build_dir(), "sim/assent-tenant-sim");
}

/*
 * Generate a tenant of n_users (seed) into dir/<name>.json, optionally with a
 * registered certificate, let edit() change the state JSON, then serve it.
 * extra: more simulator options (NULL-terminated) or NULL.  0 on success.
 */
static inline int mt_sim_start(struct mt_sim *s, const char *dir, const char *name, int n_users,
                               int seed, const char *cert_pem, void (*edit)(json_t *state),
                               const char *const *extra)
{
    char *bin = mt_sim_bin();
    char users[16], seeds[16], file[128];
    memset(s, 0, sizeof *s);
    snprintf(users, sizeof users, "%d", n_users);
    snprintf(seeds, sizeof seeds, "%d", seed);
    snprintf(file, sizeof file, "%s.json", name);
    s->state = tu_path(dir, file);
    char *gen[16] = {bin, "generate", "--users", users, "--seed", seeds, "--out", s->state};
    int g = 8;
    if (cert_pem) {
        gen[g++] = "--app-cert";
        gen[g++] = (char *)cert_pem;
    }
    gen[g] = NULL;
    char *out = NULL, *errout = NULL;
    int rc = tu_run(gen, NULL, 60000, &out, &errout);
    if (rc != 0) {
        fprintf(stderr, "generate failed (%d): %s\n", rc, errout ? errout : "");
        free(out);
        free(errout);
        free(bin);
        return -1;
    }
    free(out);
    free(errout);
    json_t *st = json_load_file(s->state, 0, NULL);
    if (!st) {
        free(bin);
        return -1;
    }
    snprintf(s->tenant, sizeof s->tenant, "%s",
             json_string_value(json_object_get(json_object_get(st, "tenant"), "id")));
    json_t *app = json_array_get(json_object_get(st, "apps"), 0);
    snprintf(s->client_id, sizeof s->client_id, "%s",
             json_string_value(json_object_get(app, "client_id")));
    char secret_name[128];
    snprintf(secret_name, sizeof secret_name, "%s.secret", name);
    s->secret_path = tu_path(dir, secret_name);
    tu_write_file(s->secret_path,
                  json_string_value(json_array_get(json_object_get(app, "secrets"), 0)));
    chmod(s->secret_path, 0600);
    if (edit) {
        edit(st);
        json_dump_file(st, s->state, JSON_COMPACT);
    }
    json_decref(st);

    char portname[128];
    snprintf(portname, sizeof portname, "%s.port", name);
    char *portfile = tu_path(dir, portname);
    char logname[128];
    snprintf(logname, sizeof logname, "%s.log", name);
    char *log = tu_path(dir, logname);
    char *argv[32] = {bin, "--listen", "127.0.0.1:0", "--state", s->state, "--port-file", portfile,
                      "--threads", "4"};
    int a = 9;
    for (size_t i = 0; extra && extra[i] && a < 30; i++)
        argv[a++] = (char *)extra[i];
    argv[a] = NULL;
    s->pid = tu_spawn(argv, NULL, log);
    for (int i = 0; i < 200 && s->port == 0; i++) {
        char *p = tu_read_file(portfile);
        if (p) {
            s->port = (int)strtol(p, NULL, 10);
            free(p);
        }
        if (!s->port)
            tu_sleep_ms(50);
    }
    free(portfile);
    free(log);
    free(bin);
    if (!s->port || tu_wait_port(s->port, 10000) != 0)
        return -1;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return 0;
}

static inline void mt_sim_stop(struct mt_sim *s)
{
    if (s->pid > 0)
        tu_stop(s->pid, SIGTERM);
    s->pid = 0;
    free(s->state);
    free(s->secret_path);
    s->state = s->secret_path = NULL;
}

/* GET/POST/DELETE an admin path; returns the parsed JSON body (new reference) or NULL. */
static inline json_t *mt_sim_admin(const struct mt_sim *s, const char *method, const char *path,
                                   const char *body)
{
    char url[256];
    struct tu_http_resp r = {0};
    snprintf(url, sizeof url, "%s%s", s->url, path);
    if (tu_http(method, url, NULL, body, &r) != 0)
        return NULL;
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    tu_http_free(&r);
    return j;
}

/* A counter from /_sim/stats: requests[label], or faults_injected[kind] with faults=1. */
static inline long mt_sim_count(const struct mt_sim *s, const char *label, int faults)
{
    json_t *st = mt_sim_admin(s, "GET", "/_sim/stats", NULL);
    long n = (long)json_integer_value(
        json_object_get(json_object_get(st, faults ? "faults_injected" : "requests"), label));
    json_decref(st);
    return n;
}

/* Replace the fault rules with the JSON array text `rules`. */
static inline void mt_sim_faults(const struct mt_sim *s, const char *rules)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"faults\": %s}", rules);
    json_t *j = mt_sim_admin(s, "POST", "/_sim/faults", body);
    json_decref(j);
}

/* The state file as JSON (new reference). */
static inline json_t *mt_sim_state(const struct mt_sim *s)
{
    return json_load_file(s->state, 0, NULL);
}

/* The user object of upn in a state (borrowed), or NULL. */
static inline json_t *mt_state_user(json_t *state, const char *upn)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(state, "users"), i, u)
    {
        if (strcasecmp(json_string_value(json_object_get(u, "userPrincipalName")), upn) == 0)
            return u;
    }
    return NULL;
}

/* ---- running the assent binary against a simulator ---- */

/* The environment of an `assent` pointed at simulator s and store db: the
 * Microsoft 365 URLs and credential, quick backoff, warn-level logs, plus
 * the "K=V" entries of extra (NULL-terminated, may be NULL). */
struct mt_env {
    char *v[24];
    char buf[24][640];
};

static inline void mt_env_set(struct mt_env *e, const struct mt_sim *s, const char *db,
                              const char *const *extra)
{
    const char *kv[][2] = {
        {"ASSENT_LOGIN_URL", s->url},          {"ASSENT_GRAPH_URL", s->url},
        {"ASSENT_EXCHANGE_URL", s->url},       {"ASSENT_TENANT_ID", s->tenant},
        {"ASSENT_CLIENT_ID", s->client_id},    {"ASSENT_CLIENT_SECRET_FILE", s->secret_path},
        {"ASSENT_DB", db},                     {"ASSENT_M365_BACKOFF_INITIAL_MS", "10"},
        {"ASSENT_M365_BACKOFF_MAX_MS", "500"}, {"ASSENT_LOG_LEVEL", "warn"},
    };
    size_t n = 0;
    for (; n < sizeof kv / sizeof kv[0]; n++) {
        snprintf(e->buf[n], sizeof e->buf[n], "%s=%s", kv[n][0], kv[n][1]);
        e->v[n] = e->buf[n];
    }
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof e->v / sizeof e->v[0]; i++, n++) {
        snprintf(e->buf[n], sizeof e->buf[n], "%s", extra[i]);
        e->v[n] = e->buf[n];
    }
    e->v[n] = NULL;
}

/* Run the assent binary with args (NULL-terminated) in environment e;
 * out/err malloc'd (may be NULL).  Its exit code. */
static inline int mt_assent(const struct mt_env *e, char **out, char **err, const char *a1, ...)
{
    char *argv[24] = {(char *)tu_assent_bin(), (char *)a1};
    va_list ap;
    va_start(ap, a1);
    int n = 2;
    const char *a;
    while (n < 23 && (a = va_arg(ap, const char *)))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, (char **)e->v, 120000, out, err);
}

#endif
