/* config.c - table-driven configuration: defaults, JSON file, ASSENT_* env. */
#include "base/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/timeutil.h"

/* CT_DURATION: an ISO 8601 duration of at least a second.  CT_LIST: a
 * comma-separated list (a JSON array of strings in a file). */
enum cfg_type { CT_STR, CT_INT, CT_BOOL, CT_DURATION, CT_LIST };

struct cfg_key {
    const char *name;
    enum cfg_type type;
    const char *def;
    int secret;
    const char *choices; /* "a|b|c" or NULL */
    long long min, max;  /* for CT_INT */
    const char *doc;
};

/* The one list of configuration keys.  ASSENT_<NAME upper-cased> overrides each. */
static const struct cfg_key keys[] = {
    {"db", CT_STR, "var/assent.db", 0, NULL, 0, 0,
     "SQLite database file, or a PostgreSQL URI (postgresql://user@host:port/dbname) or libpq "
     "connection string (docs/postgresql.md)"},
    {"db_password_file", CT_STR, "", 0, NULL, 0, 0,
     "PostgreSQL: file holding the role's password (else libpq's PGPASSFILE or ~/.pgpass)"},
    {"synchronous", CT_STR, "NORMAL", 0, "NORMAL|FULL", 0, 0,
     "SQLite synchronous mode: NORMAL survives a process crash, FULL also a power loss"},
    {"log_level", CT_STR, "info", 0, "debug|info|warn|error", 0, 0, "log threshold"},
    {"log_format", CT_STR, "text", 0, "text|json", 0, 0, "log line format"},
    {"workers", CT_INT, "2", 0, NULL, 1, 256, "step worker threads; steps that wait on the network or the disk (emails, Microsoft 365 calls) go faster with more: 16 workers create approvals 2.3 times as fast as 2"},
    {"lease_seconds", CT_INT, "60", 0, NULL, 1, 86400, "claim lease; a claim older than this is re-run"},
    {"node_timeout", CT_DURATION, "PT30S", 0, NULL, 0, 0,
     "PostgreSQL: a node silent this long is dead and its claims are run elsewhere (ISO 8601, >= PT1S)"},
    {"shutdown_grace_seconds", CT_INT, "10", 0, NULL, 0, 3600, "how long running steps may finish on SIGTERM"},
    {"default_wait", CT_STR, "P7D", 0, NULL, 0, 0, "expiry of a wait that names none (ISO 8601)"},
    {"listen", CT_STR, "127.0.0.1:8080", 0, NULL, 0, 0, "web server address:port"},
    {"public_url", CT_STR, "http://127.0.0.1:8080", 0, NULL, 0, 0, "base of every link Assent sends"},
    {"tls_cert_file", CT_STR, "", 0, NULL, 0, 0, "PEM certificate for HTTPS (optional)"},
    {"tls_key_file", CT_STR, "", 0, NULL, 0, 0, "PEM key for HTTPS (optional)"},
    {"web_threads", CT_INT, "2", 0, NULL, 1, 64, "web server thread pool"},
    {"web_max_connections", CT_INT, "512", 0, NULL, 1, 100000, "concurrent connections; at the limit the one waiting longest without a request is closed for a new one"},
    {"web_per_ip_connections", CT_INT, "32", 0, NULL, 1, 100000, "concurrent connections per client address"},
    {"web_timeout_seconds", CT_INT, "30", 0, NULL, 1, 3600, "absolute per-request deadline"},
    {"web_bad_token_limit", CT_INT, "20", 0, NULL, 1, 100000, "failed link/CSRF/admin-token attempts per client address per window before 429"},
    {"web_bad_token_window_seconds", CT_INT, "600", 0, NULL, 1, 86400, "window of web_bad_token_limit"},
    {"admin_token_file", CT_STR, "", 0, NULL, 0, 0, "file holding the bearer token for the REST API and admin UI"},
    {"api_workflow_dir", CT_STR, "workflows", 0, NULL, 0, 0,
     "directory whose .json workflows POST /api/v1/runs may start by path (empty: by stored name only)"},
    {"console_session_hours", CT_INT, "8", 0, NULL, 1, 720,
     "how long an admin console session lasts after its login (never past its token's expiry)"},
    {"sign_in", CT_STR, "none", 0, "none|entra", 0, 0,
     "people sign in to the console and approval links with API tokens only (none) or also with "
     "Microsoft Entra ID (entra: OpenID Connect with tenant_id, client_id and the app's credential)"},
    {"sign_in_roles", CT_STR, "", 0, NULL, 0, 0,
     "JSON object mapping a UPN or a group object id to viewer|operator|admin for console sign-in "
     "with Entra ID (besides the app roles Assent.Viewer/Operator/Admin)"},
    {"approval_require_sign_in", CT_BOOL, "false", 0, NULL, 0, 0,
     "approval steps without require_sign_in ask the approver to sign in with Entra ID before "
     "showing the decision form"},
    {"mail_transport", CT_STR, "file", 0, "smtp|graph|file", 0, 0, "how email leaves"},
    {"mail_dir", CT_STR, "var/mail", 0, NULL, 0, 0, "directory of .eml files for the file transport"},
    {"mail_from", CT_STR, "assent@localhost", 0, NULL, 0, 0, "sender address"},
    {"smtp_url", CT_STR, "smtp://127.0.0.1:25", 0, NULL, 0, 0,
     "smtp://host:port, smtp+starttls://host:port or smtps://host:port"},
    {"smtp_user", CT_STR, "", 0, NULL, 0, 0, "SMTP AUTH user name"},
    {"smtp_password_file", CT_STR, "", 0, NULL, 0, 0, "file holding the SMTP AUTH password"},
    {"teams_webhook_url_file", CT_STR, "", 0, NULL, 0, 0,
     "file holding the Teams Workflows webhook URL (a secret) that approval steps with teams "
     "set to true post their request cards to"},
    {"smtp_ca_file", CT_STR, "", 0, NULL, 0, 0, "extra CA bundle for the SMTP server's certificate"},
    {"smtp_timeout_seconds", CT_INT, "30", 0, NULL, 1, 3600, "SMTP per-command timeout"},
    {"tenant_id", CT_STR, "", 0, NULL, 0, 0, "Entra tenant id or domain"},
    {"client_id", CT_STR, "", 0, NULL, 0, 0, "application (client) id"},
    {"client_secret", CT_STR, "", 1, NULL, 0, 0, "client secret (config file only; prefer a file or certificate)"},
    {"client_secret_file", CT_STR, "", 0, NULL, 0, 0, "file holding the client secret"},
    {"client_cert_file", CT_STR, "", 0, NULL, 0, 0, "PEM certificate registered on the app (recommended)"},
    {"client_key_file", CT_STR, "", 0, NULL, 0, 0, "PEM private key of that certificate"},
    {"client_assertion_alg", CT_STR, "PS256", 0, "PS256|RS256", 0, 0, "signature of the certificate client assertion"},
    {"login_url", CT_STR, "https://login.microsoftonline.com", 0, NULL, 0, 0, "identity platform root"},
    {"graph_url", CT_STR, "https://graph.microsoft.com", 0, NULL, 0, 0, "Microsoft Graph root"},
    {"exchange_url", CT_STR, "https://outlook.office365.com", 0, NULL, 0, 0, "Exchange Online root"},
    {"http_connect_timeout_seconds", CT_INT, "10", 0, NULL, 1, 600, "outbound connect timeout"},
    {"http_timeout_seconds", CT_INT, "60", 0, NULL, 1, 3600, "outbound total timeout"},
    {"m365_max_attempts", CT_INT, "10", 0, NULL, 1, 100, "attempts per Microsoft 365 call"},
    {"m365_backoff_initial_ms", CT_INT, "3000", 0, NULL, 0, 3600000, "first backoff"},
    {"m365_backoff_max_ms", CT_INT, "180000", 0, NULL, 0, 86400000, "backoff cap"},
    {"scheduler", CT_BOOL, "true", 0, NULL, 0, 0, "run KPI schedules inside assent serve"},
    {"timezone", CT_STR, "UTC", 0, NULL, 0, 0, "default time zone of cron schedules"},
    {"max_sync_age", CT_DURATION, "PT24H", 0, NULL, 0, 0,
     "triggers refuse to start runs from a tenant sync older than this (ISO 8601, >= PT1S)"},
    {"default_approvers", CT_LIST, "", 0, NULL, 0, 0,
     "approvers (comma-separated addresses) of shipped workflows when a run gives none"},
    {"trusted_proxies", CT_LIST, "", 0, NULL, 0, 0,
     "reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For / Forwarded / "
     "X-Forwarded-Proto are believed; nobody else's"},
};

#define N_KEYS (sizeof keys / sizeof keys[0])

struct config {
    char *value[N_KEYS];
    const char *source[N_KEYS];
};

static int key_index(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

static enum as_code check_value(const struct cfg_key *k, const char *v, const char *where,
                                struct as_err *err)
{
    if (k->type == CT_INT) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < k->min || n > k->max)
            return as_errf(err, AS_EINVAL, "%s: %s must be an integer from %lld to %lld, got \"%s\"",
                           where, k->name, k->min, k->max, v);
    } else if (k->type == CT_DURATION) {
        int64_t ms = 0;
        struct as_err derr = {0};
        if (time_parse_duration(v, &ms, &derr) != AS_OK || ms < 1000)
            return as_errf(err, AS_EINVAL,
                           "%s: %s must be an ISO 8601 duration of at least PT1S (e.g. PT24H), "
                           "got \"%s\"",
                           where, k->name, v);
    } else if (k->type == CT_LIST) {
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < 0x20)
                return as_errf(err, AS_EINVAL, "%s: %s must not hold control characters", where,
                               k->name);
    } else if (k->type == CT_BOOL) {
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
            return as_errf(err, AS_EINVAL, "%s: %s must be true or false, got \"%s\"", where,
                           k->name, v);
    } else if (k->choices) {
        size_t vl = strlen(v);
        const char *p = k->choices;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == vl && strncmp(p, v, len) == 0)
                return AS_OK;
            p += len + (bar ? 1 : 0);
        }
        return as_errf(err, AS_EINVAL, "%s: %s must be one of %s, got \"%s\"", where, k->name,
                       k->choices, v);
    }
    return AS_OK;
}

static enum as_code put(struct config *cfg, int i, const char *v, const char *source,
                        const char *where, struct as_err *err)
{
    enum as_code rc = check_value(&keys[i], v, where, err);
    if (rc)
        return rc;
    char *copy = strdup(v);
    if (!copy)
        return as_errf(err, AS_ENOMEM, "out of memory");
    free(cfg->value[i]);
    cfg->value[i] = copy;
    cfg->source[i] = source;
    return AS_OK;
}

struct config *config_defaults(void)
{
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        cfg->value[i] = strdup(keys[i].def);
        cfg->source[i] = "default";
        if (!cfg->value[i]) {
            config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

/* A JSON array of strings as one comma-separated string (*out malloc'd). */
static enum as_code join_list(const json_t *arr, const char *where, char **out, struct as_err *err)
{
    size_t len = 1, i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v) || strchr(json_string_value(v), ','))
            return as_errf(err, AS_EINVAL, "%s[%zu]: must be a string without commas", where, i);
        len += json_string_length(v) + 1;
    }
    char *s = malloc(len), *p = s;
    if (!s)
        return as_errf(err, AS_ENOMEM, "out of memory");
    *p = '\0';
    json_array_foreach(arr, i, v)
    {
        size_t n = json_string_length(v);
        if (i)
            *p++ = ',';
        memcpy(p, json_string_value(v), n);
        p += n;
        *p = '\0';
    }
    *out = s;
    return AS_OK;
}

/*
 * A configuration file may hold client_secret inline: such a file is a
 * secret file and is refused, like secret_file_read() refuses one, when
 * group or others can access it.  The mode is read from the descriptor the
 * JSON is parsed from, so it is the same file.
 */
static enum as_code load_file(struct config *cfg, const char *path, struct as_err *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    enum as_code rc = AS_OK;
    struct stat st;
    FILE *f = fopen(path, "re");
    if (!f)
        return as_errf(err, AS_EINVAL, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0) {
        rc = as_errf(err, AS_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = as_errf(err, AS_EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = as_errf(err, AS_EINVAL, "%s: the configuration must be a JSON object", path);
        goto out;
    }
    const char *name;
    json_t *val;
    json_object_foreach(root, name, val)
    {
        char where[512], buf[64], *joined = NULL;
        snprintf(where, sizeof where, "%s: $.%s", path, name);
        int i = key_index(name);
        if (i < 0) {
            rc = as_errf(err, AS_EINVAL, "%s: unknown configuration key", where);
            goto out;
        }
        if (keys[i].secret && (st.st_mode & (S_IRWXG | S_IRWXO)) &&
            !(json_is_string(val) && !*json_string_value(val))) {
            rc = as_errf(err, AS_EINVAL,
                         "%s: holds %s but group or others can access the file (mode %03o); "
                         "run: chmod 600 %s (or move the secret to %s_file)",
                         path, name, (unsigned)(st.st_mode & 0777), path, name);
            goto out;
        }
        const char *s;
        if (json_is_string(val)) {
            s = json_string_value(val);
        } else if (json_is_integer(val) && keys[i].type == CT_INT) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(val));
            s = buf;
        } else if (json_is_boolean(val) && keys[i].type == CT_BOOL) {
            s = json_is_true(val) ? "true" : "false";
        } else if (json_is_array(val) && keys[i].type == CT_LIST) {
            rc = join_list(val, where, &joined, err);
            if (rc)
                goto out;
            s = joined;
        } else {
            rc = as_errf(err, AS_EINVAL, "%s: wrong type (expected %s)", where,
                         keys[i].type == CT_INT    ? "integer"
                         : keys[i].type == CT_BOOL ? "boolean"
                         : keys[i].type == CT_LIST ? "string or array of strings"
                                                   : "string");
            goto out;
        }
        rc = put(cfg, i, s, "file", where, err);
        free(joined);
        joined = NULL;
        if (rc)
            goto out;
    }
out:
    json_decref(root);
    fclose(f);
    return rc;
}

enum as_code config_load(const char *path, struct config **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct config *cfg = config_defaults();
    *out = NULL;
    if (!cfg)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (!path || !*path)
        path = getenv("ASSENT_CONFIG");
    if (path && *path) {
        rc = load_file(cfg, path, err);
        if (rc)
            goto fail;
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        char env[128];
        size_t j = 0;
        j = (size_t)snprintf(env, sizeof env, "ASSENT_");
        for (const char *p = keys[i].name; *p && j + 1 < sizeof env; p++)
            env[j++] = (char)toupper((unsigned char)*p);
        env[j] = '\0';
        const char *v = getenv(env);
        if (v) {
            rc = put(cfg, (int)i, v, "env", env, err);
            if (rc)
                goto fail;
        }
    }
    *out = cfg;
    return AS_OK;
fail:
    config_free(cfg);
    return rc;
}

enum as_code config_set(struct config *cfg, const char *key, const char *value, struct as_err *err)
{
    int i = key_index(key);
    if (i < 0)
        return as_errf(err, AS_EINVAL, "unknown configuration key \"%s\"", key);
    char where[160];
    snprintf(where, sizeof where, "option --%s", key);
    return put(cfg, i, value, "flag", where, err);
}

static int must_index(const char *key)
{
    int i = key_index(key);
    if (i < 0) {
        LOG_ERROR("config", "unknown configuration key %s requested", key);
        assert(!"unknown configuration key");
        abort();
    }
    return i;
}

const char *config_str(const struct config *cfg, const char *key)
{
    return cfg->value[must_index(key)];
}

long long config_int(const struct config *cfg, const char *key)
{
    return strtoll(cfg->value[must_index(key)], NULL, 10);
}

int config_bool(const struct config *cfg, const char *key)
{
    const char *v = cfg->value[must_index(key)];
    return strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

const char *config_source(const struct config *cfg, const char *key)
{
    return cfg->source[must_index(key)];
}

json_t *config_dump(const struct config *cfg)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *v = cfg->value[i];
        json_t *jv;
        if (keys[i].secret && *v)
            jv = json_string("***");
        else if (keys[i].type == CT_INT)
            jv = json_integer(strtoll(v, NULL, 10));
        else if (keys[i].type == CT_BOOL)
            jv = json_boolean(strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
        else
            jv = json_string(v);
        json_object_set_new(o, keys[i].name, jv);
    }
    return o;
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        free(cfg->value[i]);
    free(cfg);
}
