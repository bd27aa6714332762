/*
 * m365_calls.c - the Microsoft Graph and Exchange Online calls Assent makes
 * (see m365.h), on top of the transport in m365.c: users, CAS mailboxes,
 * transport config, the email-app usage report, legacy sign-ins, sendMail,
 * and the PowerShell rendering and request hash of CAS changes.
 */
#include <csv.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/encode.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "m365/m365.h"
#include "m365/m365_internal.h"
#include "m365/m365_parse.h"

#define EXO_ANCHOR "X-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
#define USAGE_MAX_BYTES ((size_t)1024 * 1024 * 1024)
#define CSV_FIELD_MAX (64 * 1024)
#define CSV_MAX_COLS 64

const char *const m365_cas_properties[] = {
    "ActiveSyncEnabled", "OWAEnabled", "PopEnabled", "ImapEnabled", "MAPIEnabled", "EwsEnabled",
    "SmtpClientAuthenticationDisabled", "ECPEnabled", "UniversalOutlookEnabled",
    "OutlookMobileEnabled", "OWAforDevicesEnabled", "MAPIBlockOutlookRpcHttp", NULL};

const char *const m365_transport_properties[] = {"SmtpClientAuthenticationDisabled",
                                                 "AllowLegacyTLSClients", NULL};

const char *const m365_legacy_client_apps[] = {
    "Authenticated SMTP", "Autodiscover", "Exchange ActiveSync", "Exchange Online PowerShell",
    "Exchange Web Services", "IMAP4", "MAPI over HTTP", "Offline Address Book",
    "Outlook Anywhere (RPC over HTTP)", "Outlook Service", "POP3", "Reporting Web Services",
    "Other clients", NULL};

const char m365_concealed_help[] =
    "the usage report shows concealed user names (hashes instead of user principal names), so it "
    "cannot be matched to users. Turn concealment off: Microsoft 365 admin center -> Settings -> "
    "Org settings -> Services -> Reports -> uncheck \"Display concealed user, group, and site "
    "names in all reports\" (or PATCH https://graph.microsoft.com/v1.0/admin/reportSettings with "
    "{\"displayConcealedNames\": false}, permission ReportSettings.ReadWrite.All), then sync again";

/* $select for the sync's CAS listing: identity plus the seven protocol switches. */
#define CAS_LIST_SELECT                                                                        \
    "Identity,Name,DisplayName,PrimarySmtpAddress,ExternalDirectoryObjectId,Guid,"             \
    "ActiveSyncEnabled,OWAEnabled,PopEnabled,ImapEnabled,MAPIEnabled,EwsEnabled,"              \
    "SmtpClientAuthenticationDisabled"

int m365_cas_property_known(const char *name)
{
    for (size_t i = 0; m365_cas_properties[i]; i++)
        if (strcmp(m365_cas_properties[i], name) == 0)
            return 1;
    return 0;
}

int m365_client_app_is_legacy(const char *app)
{
    if (!app || !*app)
        return 0;
    return strcasecmp(app, "Browser") != 0 &&
           strcasecmp(app, "Mobile Apps and Desktop clients") != 0;
}

/* "Graph GET /v1.0/users" from a path or URL, without the query. */
static void describe(char *out, size_t size, const char *prefix, const char *path_or_url)
{
    const char *p = path_or_url;
    const char *scheme = strstr(p, "://");
    if (scheme) {
        const char *slash = strchr(scheme + 3, '/');
        p = slash ? slash : "/";
    }
    snprintf(out, size, "%s %.*s", prefix, (int)strcspn(p, "?"), p);
}

/* ------------------------------------------------------------- Graph */

enum as_code m365_graph_get(struct m365 *m, const char *path, json_t **out, struct as_err *err)
{
    struct m365_resp resp = {0};
    char what[300];
    char *url = m365_url(m, M365_SVC_GRAPH, path);
    *out = NULL;
    if (!url)
        return as_errf(err, AS_ENOMEM, "out of memory");
    describe(what, sizeof what, "Graph GET", path);
    struct m365_req req = {.svc = M365_SVC_GRAPH, .what = what, .method = "GET", .url = url,
                           .parse_json = 1};
    enum as_code rc = m365_call(m, &req, &resp, out, err);
    if (!rc && !*out)
        rc = as_errf(err, AS_EPERMANENT, "%s: empty response", what);
    m365_resp_free(&resp);
    free(url);
    return rc;
}

enum as_code m365_graph_page(const json_t *page, const char *what, const char *base,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, char **next_url, struct as_err *err)
{
    *next_url = NULL;
    json_t *value = json_object_get(page, "value");
    if (!json_is_array(value))
        return as_errf(err, AS_EPERMANENT, "%s: the response has no \"value\" array", what);
    size_t i;
    json_t *item;
    enum as_code rc;
    json_array_foreach(value, i, item)
    {
        rc = cb(item, ud, err);
        if (rc)
            return rc;
    }
    rc = cb(NULL, ud, err);
    if (rc)
        return rc;
    const char *next = json_string_value(json_object_get(page, "@odata.nextLink"));
    return next ? m365_next_link_on(base, next, next_url, err) : AS_OK;
}

enum as_code m365_graph_list(struct m365 *m, const char *path, const char *extra_header,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365_resp resp = {0};
    json_t *page = NULL;
    char what[300];
    char *url = NULL;
    if (strncmp(path, "http", 4) == 0)
        rc = m365_next_link(m, M365_SVC_GRAPH, path, &url, err);
    else if (!(url = m365_url(m, M365_SVC_GRAPH, path)))
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    if (rc)
        return rc;
    describe(what, sizeof what, "Graph GET", path);
    while (url) {
        struct m365_req req = {.svc = M365_SVC_GRAPH, .what = what, .method = "GET", .url = url,
                               .parse_json = 1, .headers = {extra_header, NULL}};
        rc = m365_call(m, &req, &resp, &page, err);
        if (rc)
            goto out;
        free(url);
        url = NULL;
        rc = m365_graph_page(page, what, m->graph_url, cb, ud, &url, err);
        if (rc)
            goto out;
        json_decref(page);
        page = NULL;
    }
out:
    json_decref(page);
    m365_resp_free(&resp);
    free(url);
    return rc;
}

enum as_code m365_users_list(struct m365 *m, const char *filter,
                             enum as_code (*cb)(const json_t *user, void *ud, struct as_err *err),
                             void *ud, struct as_err *err)
{
    static const char base[] =
        "/v1.0/users?$select=id,userPrincipalName,displayName,mail,accountEnabled,"
        "assignedLicenses&$top=999";
    if (!filter || !*filter)
        return m365_graph_list(m, base, NULL, cb, ud, err);
    char *ef = m365_escape(m, filter);
    if (!ef)
        return as_errf(err, AS_ENOMEM, "out of memory");
    size_t n = sizeof base + strlen(ef) + 32;
    char *path = malloc(n);
    enum as_code rc;
    if (!path) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    } else {
        snprintf(path, n, "%s&$filter=%s&$count=true", base, ef);
        rc = m365_graph_list(m, path, "ConsistencyLevel: eventual", cb, ud, err);
    }
    free(path);
    curl_free(ef);
    return rc;
}

enum as_code m365_users_count(struct m365 *m, long long *out, struct as_err *err)
{
    struct m365_resp resp = {0};
    json_t *j = NULL;
    *out = -1;
    /* One tiny page with @odata.count (an advanced query: ConsistencyLevel). */
    char *url = m365_url(m, M365_SVC_GRAPH, "/v1.0/users?$count=true&$top=1&$select=id");
    if (!url)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct m365_req req = {.svc = M365_SVC_GRAPH, .what = "Graph GET /v1.0/users ($count)",
                           .method = "GET", .url = url, .parse_json = 1,
                           .headers = {"ConsistencyLevel: eventual", NULL}};
    enum as_code rc = m365_call(m, &req, &resp, &j, err);
    json_t *n = json_object_get(j, "@odata.count");
    if (!rc && json_is_integer(n) && json_integer_value(n) >= 0)
        *out = json_integer_value(n);
    json_decref(j);
    m365_resp_free(&resp);
    free(url);
    return rc;
}

enum as_code m365_report_settings(struct m365 *m, int *concealed, struct as_err *err)
{
    json_t *j = NULL;
    enum as_code rc = m365_graph_get(m, "/v1.0/admin/reportSettings", &j, err);
    if (rc)
        return rc;
    json_t *v = json_object_get(j, "displayConcealedNames");
    if (!json_is_boolean(v))
        rc = as_errf(err, AS_EPERMANENT,
                     "Graph GET /v1.0/admin/reportSettings: no displayConcealedNames in the response");
    else
        *concealed = json_is_true(v);
    json_decref(j);
    return rc;
}

/* ----------------------------------------------------------- Exchange */

/* Remove type annotations (keys containing '@') from an Exchange object. */
static void strip_annotations(json_t *obj)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, v)
    {
        if (strchr(key, '@'))
            json_object_del(obj, key);
    }
}

enum as_code m365_exo_page(json_t *page, const char *what, const char *base,
                           enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                           void *ud, json_t *warnings, char **next_url, struct as_err *err)
{
    *next_url = NULL;
    json_t *w = json_object_get(page, "@adminapi.warnings");
    if (json_is_array(w) && warnings)
        json_array_extend(warnings, w);
    json_t *value = json_object_get(page, "value");
    if (value && !json_is_array(value) && !json_is_null(value))
        return as_errf(err, AS_EPERMANENT, "%s: \"value\" is not an array", what);
    size_t i;
    json_t *item;
    enum as_code rc;
    json_array_foreach(value, i, item)
    {
        if (!json_is_object(item))
            continue;
        strip_annotations(item);
        if (cb) {
            rc = cb(item, ud, err);
            if (rc)
                return rc;
        }
    }
    if (cb) {
        rc = cb(NULL, ud, err);
        if (rc)
            return rc;
    }
    const char *next = json_string_value(json_object_get(page, "@odata.nextLink"));
    return next ? m365_next_link_on(base, next, next_url, err) : AS_OK;
}

enum as_code m365_exo_invoke_ex(struct m365 *m, const char *cmdlet, const json_t *parameters,
                                const char *select, int write,
                                enum as_code (*cb)(const json_t *, void *, struct as_err *),
                                void *ud, json_t **warnings, int *ambiguous, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365_resp resp = {0};
    json_t *page = NULL, *env = NULL, *warn = NULL;
    char *body = NULL, *url = NULL;
    char what[200], anchor[400], cmdhdr[160];

    if (warnings)
        *warnings = NULL;
    if (ambiguous)
        *ambiguous = 0;
    snprintf(what, sizeof what, "Exchange %s", cmdlet);
    snprintf(anchor, sizeof anchor, "%s%s", EXO_ANCHOR, m->tenant);
    snprintf(cmdhdr, sizeof cmdhdr, "X-CmdletName: %s", cmdlet);
    json_t *params = parameters ? json_deep_copy(parameters) : json_object();
    env = json_pack("{s:{s:s, s:o}}", "CmdletInput", "CmdletName", cmdlet, "Parameters", params);
    warn = json_array();
    if (!env || !warn || !(body = json_dumps(env, JSON_COMPACT))) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = strlen(m->exo_url) + strlen(m->tenant) + (select ? strlen(select) : 0) + 64;
    url = malloc(n);
    if (!url) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, n, "%s/adminapi/beta/%s/InvokeCommand%s%s", m->exo_url, m->tenant,
             select ? "?$select=" : "", select ? select : "");
    while (url) {
        /* Every page re-POSTs the same body to the nextLink. */
        struct m365_req req = {.svc = M365_SVC_EXO, .what = what, .method = "POST", .url = url,
                               .body = body, .body_len = strlen(body),
                               .content_type = "application/json; charset=utf-8",
                               .headers = {anchor, "X-ResponseFormat: json",
                                           "Prefer: odata.maxpagesize=1000", cmdhdr, NULL},
                               .write = write, .parse_json = 1, .exo_errors = 1};
        rc = m365_call(m, &req, &resp, &page, err);
        if (rc) {
            if (ambiguous)
                *ambiguous = resp.ambiguous;
            goto out;
        }
        free(url);
        url = NULL;
        rc = m365_exo_page(page, what, m->exo_url, cb, ud, warn, &url, err);
        if (rc)
            goto out;
        json_decref(page);
        page = NULL;
    }
    if (warnings) {
        *warnings = warn;
        warn = NULL;
    }
out:
    json_decref(page);
    json_decref(env);
    json_decref(warn);
    m365_resp_free(&resp);
    free(body);
    free(url);
    return rc;
}

enum as_code m365_exo_invoke(struct m365 *m, const char *cmdlet, const json_t *parameters,
                             const char *select,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, json_t **warnings, struct as_err *err)
{
    return m365_exo_invoke_ex(m, cmdlet, parameters, select, 0, cb, ud, warnings, NULL, err);
}

static enum as_code keep_first(const json_t *item, void *ud, struct as_err *err)
{
    json_t **slot = ud;
    if (item && !*slot)
        *slot = json_incref((json_t *)item);
    return AS_OK;
}

static char *cas_select_all(void)
{
    static const char head[] = "Identity,Name,DisplayName,PrimarySmtpAddress,"
                               "ExternalDirectoryObjectId,Guid";
    size_t n = sizeof head;
    for (size_t i = 0; m365_cas_properties[i]; i++)
        n += strlen(m365_cas_properties[i]) + 1;
    char *s = malloc(n);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, n, "%s", head);
    for (size_t i = 0; m365_cas_properties[i] && o < n; i++)
        o += (size_t)snprintf(s + o, n - o, ",%s", m365_cas_properties[i]);
    return s;
}

enum as_code m365_cas_get(struct m365 *m, const char *identity, json_t **out, struct as_err *err)
{
    json_t *first = NULL;
    *out = NULL;
    char *select = cas_select_all();
    json_t *params = json_pack("{s:s}", "Identity", identity);
    if (!select || !params) {
        free(select);
        json_decref(params);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    enum as_code rc = m365_exo_invoke(m, "Get-CASMailbox", params, select, keep_first, &first,
                                      NULL, err);
    free(select);
    json_decref(params);
    if (rc) {
        json_decref(first);
        return rc;
    }
    if (!first)
        return as_errf(err, AS_ENOTFOUND, "Exchange Get-CASMailbox: no mailbox '%s'", identity);
    *out = first;
    return AS_OK;
}

enum as_code m365_cas_list(struct m365 *m,
                           enum as_code (*cb)(const json_t *mbx, void *ud, struct as_err *err),
                           void *ud, struct as_err *err)
{
    json_t *params = json_pack("{s:s}", "ResultSize", "Unlimited");
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    enum as_code rc = m365_exo_invoke(m, "Get-CASMailbox", params, CAS_LIST_SELECT, cb, ud, NULL,
                                      err);
    json_decref(params);
    return rc;
}

/* Every key of want has the same value in have (a missing key counts as null). */
static int settings_in_place(const json_t *have, const json_t *want)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        json_t *h = json_object_get(have, k);
        if (!h)
            h = json_null();
        if (!json_equal(h, v))
            return 0;
    }
    return 1;
}

/*
 * A Set-* cmdlet with the re-read rule: when the write fails in a way that
 * leaves it unknown whether the service acted, read the object back and
 * repeat the write only if the settings are not in place.
 */
static enum as_code read_cas_or_transport(struct m365 *m, const char *identity, json_t **out,
                                          struct as_err *err)
{
    return identity ? m365_cas_get(m, identity, out, err) : m365_transport_get(m, out, err);
}

enum as_code m365_exo_set_verified(struct m365 *m, const char *cmdlet, const char *identity,
                                   const json_t *settings, m365_exo_reader reread,
                                   json_t **warnings, struct as_err *err)
{
    enum as_code rc = AS_OK;
    json_t *params = json_deep_copy(settings);
    if (!params)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (identity)
        json_object_set_new(params, "Identity", json_string(identity));
    for (int attempt = 1;; attempt++) {
        int ambiguous = 0;
        rc = m365_exo_invoke_ex(m, cmdlet, params, NULL, 1, NULL, NULL, warnings, &ambiguous, err);
        if (rc == AS_OK || !ambiguous)
            break;
        m->stats.write_rereads++;
        LOG_WARN("m365", "%s%s%s: outcome unknown (%s); re-reading before deciding to repeat it",
                 cmdlet, identity ? " " : "", identity ? identity : "", err ? err->msg : "");
        struct as_err e2 = {0};
        if (m365_backoff_sleep(m, attempt, err ? err->msg : cmdlet, &e2) != AS_OK) {
            /* Past the deadline: the caller retries later, and re-reads first. */
            break;
        }
        json_t *now = NULL;
        enum as_code rr = reread(m, identity, &now, &e2);
        if (rr) {
            json_decref(params);
            return as_errf(err, rr, "%s outcome unknown and the re-read failed: %s", cmdlet,
                           e2.msg);
        }
        int done = settings_in_place(now, settings);
        json_decref(now);
        if (done) {
            LOG_INFO("m365", "%s: the re-read shows the change in place; not repeating it", cmdlet);
            rc = AS_OK;
            break;
        }
        if (attempt >= m->max_attempts)
            break;
    }
    json_decref(params);
    return rc;
}

enum as_code m365_cas_set(struct m365 *m, const char *identity, const json_t *settings,
                          json_t **warnings, struct as_err *err)
{
    if (!identity || !*identity)
        return as_errf(err, AS_EINVAL, "Set-CASMailbox needs an identity");
    return m365_exo_set_verified(m, "Set-CASMailbox", identity, settings, read_cas_or_transport,
                                 warnings, err);
}

enum as_code m365_transport_get(struct m365 *m, json_t **out, struct as_err *err)
{
    json_t *first = NULL;
    *out = NULL;
    enum as_code rc = m365_exo_invoke(m, "Get-TransportConfig", NULL, NULL, keep_first, &first,
                                      NULL, err);
    if (rc) {
        json_decref(first);
        return rc;
    }
    if (!first)
        return as_errf(err, AS_EPERMANENT, "Exchange Get-TransportConfig: empty response");
    *out = first;
    return AS_OK;
}

enum as_code m365_transport_set(struct m365 *m, const json_t *settings, json_t **warnings,
                                struct as_err *err)
{
    return m365_exo_set_verified(m, "Set-TransportConfig", NULL, settings, read_cas_or_transport,
                                 warnings, err);
}

/* ---------------------------------------------------------- usage CSV */

/* libcsv grows its field buffer through this: a hard cap on one field. */
static void *csv_capped_realloc(void *p, size_t size)
{
    if (size > CSV_FIELD_MAX)
        return NULL;
    return realloc(p, size);
}

struct usage_parse {
    int pass; /* 1: check header and concealment; 2: deliver rows */
    char *f[CSV_MAX_COLS];
    size_t nf;
    int header_done;
    int c_upn, c_name, c_deleted, c_last, c_refresh, c_pop, c_imap, c_smtp;
    long rows;
    long concealed_rows;
    enum as_code rc;
    struct as_err *err;
    enum as_code (*cb)(const struct m365_usage_row *, void *, struct as_err *);
    void *ud;
};

static void usage_field(void *s, size_t len, void *data)
{
    struct usage_parse *u = data;
    if (u->nf < CSV_MAX_COLS)
        u->f[u->nf] = strndup(s ? s : "", s ? len : 0);
    u->nf++;
}

static const char *cell(struct usage_parse *u, int col)
{
    if (col < 0 || (size_t)col >= u->nf || col >= CSV_MAX_COLS || !u->f[col])
        return "";
    return u->f[col];
}

static int find_col(struct usage_parse *u, const char *name)
{
    for (size_t i = 0; i < u->nf && i < CSV_MAX_COLS; i++)
        if (u->f[i] && strcasecmp(u->f[i], name) == 0)
            return (int)i;
    return -1;
}

static void usage_record(int c, void *data)
{
    struct usage_parse *u = data;
    if (u->rc)
        goto done;
    if (u->nf == 1 && !*cell(u, 0))
        goto done; /* blank line */
    if (!u->header_done) {
        u->c_upn = find_col(u, "User Principal Name");
        u->c_name = find_col(u, "Display Name");
        u->c_deleted = find_col(u, "Is Deleted");
        u->c_last = find_col(u, "Last Activity Date");
        u->c_refresh = find_col(u, "Report Refresh Date");
        u->c_pop = find_col(u, "POP3 App");
        u->c_imap = find_col(u, "IMAP4 App");
        u->c_smtp = find_col(u, "SMTP App");
        if (u->c_upn < 0 || u->c_pop < 0 || u->c_imap < 0 || u->c_smtp < 0) {
            u->rc = as_errf(u->err, AS_EPERMANENT,
                            "usage report: unexpected CSV header (need User Principal Name, "
                            "POP3 App, IMAP4 App, SMTP App)");
            goto done;
        }
        u->header_done = 1;
        goto done;
    }
    const char *upn = cell(u, u->c_upn);
    if (!*upn)
        goto done;
    u->rows++;
    if (u->pass == 1) {
        if (!strchr(upn, '@'))
            u->concealed_rows++;
        goto done;
    }
    struct m365_usage_row row = {
        .upn = upn,
        .display_name = cell(u, u->c_name),
        .last_activity = cell(u, u->c_last),
        .refresh_date = cell(u, u->c_refresh),
        .pop3 = *cell(u, u->c_pop) != '\0',
        .imap4 = *cell(u, u->c_imap) != '\0',
        .smtp = *cell(u, u->c_smtp) != '\0',
        .is_deleted = strcasecmp(cell(u, u->c_deleted), "true") == 0,
    };
    u->rc = u->cb(&row, u->ud, u->err);
done:
    for (size_t i = 0; i < u->nf && i < CSV_MAX_COLS; i++) {
        free(u->f[i]);
        u->f[i] = NULL;
    }
    u->nf = 0;
}

static enum as_code usage_parse_file(FILE *f, struct usage_parse *u)
{
    struct csv_parser p;
    char buf[65536];
    if (csv_init(&p, CSV_APPEND_NULL) != 0)
        return as_errf(u->err, AS_ENOMEM, "out of memory");
    csv_set_realloc_func(&p, csv_capped_realloc);
    rewind(f);
    int first = 1;
    size_t n;
    while (!u->rc && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        const char *s = buf;
        if (first) {
            first = 0;
            if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
                s += 3;
                n -= 3;
            }
        }
        if (csv_parse(&p, s, n, usage_field, usage_record, u) != n && !u->rc)
            u->rc = as_errf(u->err, AS_EPERMANENT, "usage report: CSV error: %s",
                            csv_error(&p) == CSV_ENOMEM ? "a field is longer than 64 KiB"
                                                        : csv_strerror(csv_error(&p)));
    }
    if (!u->rc)
        csv_fini(&p, usage_field, usage_record, u);
    csv_free(&p);
    for (size_t i = 0; i < u->nf && i < CSV_MAX_COLS; i++) {
        free(u->f[i]);
        u->f[i] = NULL;
    }
    u->nf = 0;
    if (!u->rc && !u->header_done)
        u->rc = as_errf(u->err, AS_EPERMANENT, "usage report: empty CSV (no header)");
    return u->rc;
}

enum as_code m365_usage_parse(FILE *csv,
                              enum as_code (*cb)(const struct m365_usage_row *row, void *ud,
                                                 struct as_err *err),
                              void *ud, int *concealed, struct as_err *err)
{
    if (concealed)
        *concealed = 0;
    /* Pass 1 checks the whole report before any row is used: a report with
     * concealed names must not be joined to users at all. */
    struct usage_parse u = {.pass = 1, .err = err, .cb = cb, .ud = ud};
    enum as_code rc = usage_parse_file(csv, &u);
    if (rc)
        return rc;
    if (u.concealed_rows > 0) {
        if (concealed)
            *concealed = 1;
        return as_errf(err, AS_EPERMANENT, "%ld of %ld usage report rows: %s", u.concealed_rows,
                       u.rows, m365_concealed_help);
    }
    struct usage_parse u2 = {.pass = 2, .err = err, .cb = cb, .ud = ud};
    return usage_parse_file(csv, &u2);
}

enum as_code m365_usage_report(struct m365 *m, const char *period,
                               enum as_code (*cb)(const struct m365_usage_row *row, void *ud,
                                                  struct as_err *err),
                               void *ud, int *concealed, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365_resp resp = {0};
    char path[128], what[160];
    char *url = NULL, *dl = NULL;
    FILE *tmp = NULL;

    if (concealed)
        *concealed = 0;
    if (!period || strlen(period) > 8)
        return as_errf(err, AS_EINVAL, "usage report: bad period");
    for (const char *p = period; *p; p++)
        if (!isalnum((unsigned char)*p))
            return as_errf(err, AS_EINVAL, "usage report: bad period \"%s\"", period);
    snprintf(path, sizeof path, "/v1.0/reports/getEmailAppUsageUserDetail(period='%s')", period);
    snprintf(what, sizeof what, "Graph GET %s", path);
    url = m365_url(m, M365_SVC_GRAPH, path);
    tmp = tmpfile();
    if (!url || !tmp) {
        rc = as_errf(err, url ? AS_EIO : AS_ENOMEM, "usage report: cannot create a temporary file");
        goto out;
    }
    /* The report answers 302 to a pre-authenticated download URL; some
     * gateways answer the CSV directly.  Either way the body lands in tmp. */
    struct m365_req req = {.svc = M365_SVC_GRAPH, .what = what, .method = "GET", .url = url,
                           .sink = tmp, .max_body = USAGE_MAX_BYTES};
    rc = m365_call(m, &req, &resp, NULL, err);
    if (rc)
        goto out;
    if (resp.status >= 300 && resp.status < 400) {
        if (!resp.location[0] || (strncmp(resp.location, "https://", 8) != 0 &&
                                  strncmp(resp.location, "http://", 7) != 0)) {
            rc = as_errf(err, AS_EPERMANENT, "%s: HTTP %ld without a usable Location", what,
                         resp.status);
            goto out;
        }
        dl = strdup(resp.location);
        if (!dl) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto out;
        }
        /* No Authorization on the download: the URL carries its own
         * authorisation, and the token must not go to another host. */
        struct m365_req get = {.svc = M365_SVC_NONE, .what = "usage report download",
                               .method = "GET", .url = dl, .sink = tmp,
                               .max_body = USAGE_MAX_BYTES};
        rc = m365_call(m, &get, &resp, NULL, err);
        if (rc)
            goto out;
        if (resp.status != 200) {
            rc = as_errf(err, AS_EPERMANENT, "usage report download: HTTP %ld", resp.status);
            goto out;
        }
    } else if (resp.status != 200) {
        rc = as_errf(err, AS_EPERMANENT, "%s: unexpected HTTP %ld", what, resp.status);
        goto out;
    }
    if (fflush(tmp) != 0) {
        rc = as_errf(err, AS_EIO, "usage report: cannot write the temporary file");
        goto out;
    }
    rc = m365_usage_parse(tmp, cb, ud, concealed, err);
out:
    m365_resp_free(&resp);
    if (tmp)
        fclose(tmp);
    free(url);
    free(dl);
    return rc;
}

/* ------------------------------------------------------------ sign-ins */

struct signin_filter {
    int64_t since_ms;
    const char *client_app;
    enum as_code (*cb)(const json_t *, void *, struct as_err *);
    void *ud;
};

static enum as_code signin_check(const json_t *item, void *ud, struct as_err *err)
{
    struct signin_filter *f = ud;
    if (!item)
        return f->cb(NULL, f->ud, err);
    const char *app = json_string_value(json_object_get(item, "clientAppUsed"));
    const char *when = json_string_value(json_object_get(item, "createdDateTime"));
    int64_t t;
    /* clientAppUsed casing varies on the wire: compare case-insensitively. */
    if (!m365_client_app_is_legacy(app))
        return AS_OK;
    if (f->client_app && strcasecmp(app, f->client_app) != 0)
        return AS_OK;
    if (!when || time_parse_iso(when, &t) != AS_OK || t < f->since_ms)
        return AS_OK;
    return f->cb(item, f->ud, err);
}

/* OData string literal: single quotes doubled.  Returns 0 when the literal
 * does not fit (a cut literal would silently filter on something else). */
static size_t odata_quote(char *out, size_t size, const char *s)
{
    size_t o = 0;
    if (size < 3)
        return 0;
    out[o++] = '\'';
    for (; *s; s++) {
        if (o + 3 + (*s == '\'') >= size)
            return 0;
        if (*s == '\'')
            out[o++] = '\'';
        out[o++] = *s;
    }
    out[o++] = '\'';
    out[o] = '\0';
    return o;
}

/*
 * One stream of sign-ins: v1.0 lists the interactive ones; beta with
 * signInEventTypes/any(t: t eq 'nonInteractiveUser') the non-interactive
 * ones (docs/m365.md).  filter is the common clause (time and client apps).
 */
static enum as_code signins_stream(struct m365 *m, const char *filter, int non_interactive,
                                   struct signin_filter *f, struct as_err *err)
{
    char full[2300];
    snprintf(full, sizeof full, "%s%s", filter,
             non_interactive ? " and signInEventTypes/any(t: t eq 'nonInteractiveUser')" : "");
    char *ef = m365_escape(m, full);
    if (!ef)
        return as_errf(err, AS_ENOMEM, "out of memory");
    size_t n = strlen(ef) + 64;
    char *path = malloc(n);
    if (!path) {
        curl_free(ef);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    snprintf(path, n, "/%s/auditLogs/signIns?$filter=%s&$top=1000",
             non_interactive ? "beta" : "v1.0", ef);
    curl_free(ef);
    struct as_err e2 = {0};
    enum as_code rc = m365_graph_list(m, path, NULL, signin_check, f, &e2);
    free(path);
    if (rc == AS_EAUTH && (strstr(e2.msg, "NonPremium") || strcasestr(e2.msg, "premium")))
        return as_errf(err, AS_EUNSUPPORTED,
                       "sign-in logs need a Microsoft Entra ID P1 or P2 licence in the tenant "
                       "(%s); legacy sign-in data was not updated", e2.msg);
    if (rc && err)
        *err = e2;
    return rc;
}

enum as_code m365_signins_legacy(struct m365 *m, int64_t since_ms, const char *client_app,
                                 enum as_code (*cb)(const json_t *signin, void *ud,
                                                    struct as_err *err),
                                 void *ud, struct as_err *err)
{
    char filter[2048], when[40], q[300];
    time_t secs = (time_t)(since_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t o = (size_t)snprintf(filter, sizeof filter, "createdDateTime ge %s and (", when);
    if (client_app && *client_app) {
        if (!odata_quote(q, sizeof q, client_app))
            return as_errf(err, AS_EINVAL, "client app name too long (%zu bytes)", strlen(client_app));
        o += (size_t)snprintf(filter + o, sizeof filter - o, "clientAppUsed eq %s", q);
    } else {
        for (size_t i = 0; m365_legacy_client_apps[i] && o < sizeof filter; i++) {
            if (!odata_quote(q, sizeof q, m365_legacy_client_apps[i]))
                return as_errf(err, AS_EINVAL, "client app name too long");
            o += (size_t)snprintf(filter + o, sizeof filter - o, "%sclientAppUsed eq %s",
                                  i ? " or " : "", q);
        }
    }
    if (o + 2 >= sizeof filter)
        return as_errf(err, AS_EINVAL, "sign-in filter too long");
    snprintf(filter + o, sizeof filter - o, ")");

    struct signin_filter f = {.since_ms = since_ms,
                              .client_app = client_app && *client_app ? client_app : NULL,
                              .cb = cb, .ud = ud};
    enum as_code rc = signins_stream(m, filter, 0, &f, err);
    if (!rc)
        rc = signins_stream(m, filter, 1, &f, err);
    return rc;
}

/* ---------------------------------------------------------------- mail */

enum as_code m365_send_mail(struct m365 *m, const char *sender_upn, const json_t *message,
                            int save_to_sent, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct m365_resp resp = {0};
    char *esc = NULL, *url = NULL, *body = NULL;
    json_t *env = NULL;
    char what[300];
    if (!sender_upn || !*sender_upn || !json_is_object(message))
        return as_errf(err, AS_EINVAL, "sendMail needs a sender and a message object");
    esc = m365_escape(m, sender_upn);
    env = json_pack("{s:O, s:b}", "message", message, "saveToSentItems", save_to_sent ? 1 : 0);
    if (!esc || !env || !(body = json_dumps(env, JSON_COMPACT))) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = strlen(esc) + 64;
    char *p = malloc(n);
    if (!p) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(p, n, "/v1.0/users/%s/sendMail", esc);
    url = m365_url(m, M365_SVC_GRAPH, p);
    free(p);
    if (!url) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(what, sizeof what, "Graph POST /v1.0/users/%s/sendMail", sender_upn);
    struct m365_req req = {.svc = M365_SVC_GRAPH, .what = what, .method = "POST", .url = url,
                           .body = body, .body_len = strlen(body),
                           .content_type = "application/json", .write = 1};
    rc = m365_call(m, &req, &resp, NULL, err);
    if (!rc && resp.status != 202 && (resp.status < 200 || resp.status >= 300))
        rc = as_errf(err, AS_EPERMANENT, "%s: unexpected HTTP %ld", what, resp.status);
out:
    m365_resp_free(&resp);
    json_decref(env);
    free(body);
    free(url);
    curl_free(esc);
    return rc;
}

/* ------------------------------------------------ hashing and PowerShell */

enum as_code m365_request_hash(const json_t *request, char out[65], struct as_err *err)
{
    char *text = json_dumps(request, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    int failed = encode_sha256_hex(text, strlen(text), out);
    free(text);
    return failed ? as_errf(err, AS_EIO, "SHA-256 failed") : AS_OK;
}

enum as_code m365_cas_request_hash(const char *identity, const json_t *settings, char out[65],
                                   struct as_err *err)
{
    /* "o" steals the fresh {} and "O" only increfs the caller's object, so
     * neither branch leaks. */
    json_t *req = settings ? json_pack("{s:s, s:O}", "identity", identity ? identity : "",
                                       "settings", settings)
                           : json_pack("{s:s, s:o}", "identity", identity ? identity : "",
                                       "settings", json_object());
    char *text = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(req);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    int failed = encode_sha256_hex(text, strlen(text), out);
    free(text);
    if (failed)
        return as_errf(err, AS_EIO, "SHA-256 failed");
    return AS_OK;
}

char *m365_ps_quote(const char *s)
{
    /* PowerShell treats U+2018..U+201B as single quotes too: double them all. */
    size_t n = strlen(s);
    char *q = malloc(2 * n + 3);
    if (!q)
        return NULL;
    size_t o = 0;
    q[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        const unsigned char *u = (const unsigned char *)s + i;
        if (*u == '\'') {
            q[o++] = '\'';
            q[o++] = '\'';
        } else if (i + 2 < n && u[0] == 0xE2 && u[1] == 0x80 && u[2] >= 0x98 && u[2] <= 0x9B) {
            memcpy(q + o, u, 3);
            memcpy(q + o + 3, u, 3);
            o += 6;
            i += 2;
        } else {
            q[o++] = (char)*u;
        }
    }
    q[o++] = '\'';
    q[o] = '\0';
    return q;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
    return 0;
}

static int append_ps_value(char **buf, size_t *len, size_t *cap, const json_t *v)
{
    char num[64];
    if (json_is_true(v))
        return append(buf, len, cap, "$true");
    if (json_is_false(v))
        return append(buf, len, cap, "$false");
    if (json_is_null(v) || !v)
        return append(buf, len, cap, "$null");
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        return append(buf, len, cap, num);
    }
    char *text = json_is_string(v) ? strdup(json_string_value(v))
                                   : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *q = text ? m365_ps_quote(text) : NULL;
    int r = q ? append(buf, len, cap, q) : -1;
    free(q);
    free(text);
    return r;
}

char *m365_powershell_command(const char *cmdlet, const json_t *parameters)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (append(&buf, &len, &cap, cmdlet))
        goto fail;
    json_t *id = json_object_get(parameters, "Identity");
    if (id) {
        if (append(&buf, &len, &cap, " -Identity ") || append_ps_value(&buf, &len, &cap, id))
            goto fail;
    }
    /* Sorted for a stable, reviewable script. */
    size_t n = json_object_size(parameters);
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys)
        goto fail;
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)parameters, key, v)
    {
        if (strcmp(key, "Identity") != 0)
            keys[k++] = key;
    }
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; i < k; i++) {
        /* Parameter names come from a workflow: keep only name characters. */
        char name[80];
        size_t o = 0;
        for (const char *p = keys[i]; *p && o + 1 < sizeof name; p++)
            if (isalnum((unsigned char)*p))
                name[o++] = *p;
        name[o] = '\0';
        if (append(&buf, &len, &cap, " -") || append(&buf, &len, &cap, name) ||
            append(&buf, &len, &cap, " ") ||
            append_ps_value(&buf, &len, &cap, json_object_get(parameters, keys[i]))) {
            free(keys);
            goto fail;
        }
    }
    free(keys);
    return buf;
fail:
    free(buf);
    return NULL;
}
