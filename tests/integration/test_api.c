/*
 * test_api.c - the REST API v1 and its tokens over real HTTP (libcurl and
 * raw sockets) against a running `assent serve` with a temporary database:
 * `assent token create|list|revoke`; every route of docs/api.md with each
 * role; missing, wrong, expired and revoked credentials and the rate
 * limiter; the bad inputs (bad JSON with its line and column, unknown
 * fields, wrong types, 404, 405, 409, 413 before the body is read, 415);
 * and every change in the audit chain with the token's name as the actor.
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "base/encode.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "db/db.h"
#include "db/db_events.h"
#include "db/db_tenant.h"
#include "db/db_tokens.h"
#include "tests/integration/web_harness.h"
#include "web/api_token.h"

#define WAIT_MS 30000
#define ADMIN_FILE_TOKEN "test-admin-token-0123456789"

/* The tokens of a test, one per role (made in the server's database). */
struct tokens {
    char viewer[API_TOKEN_LEN + 1];
    char operator[API_TOKEN_LEN + 1];
    char admin[API_TOKEN_LEN + 1];
};

/* ---- helpers ------------------------------------------------------------------ */

static char *fmt(const char *f, ...) AS_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

/* Start the server of an initialised s with a generous failure budget
 * (tests make many bad requests). */
static void serve(struct wh_server *s)
{
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_WEB_BAD_TOKEN_LIMIT=100000");
    wh_start(s, 0);
}

static void start(struct wh_server *s, const char *tag, int admin_file)
{
    wh_init(s, tag, admin_file);
    serve(s);
}

/* Make a token in the server's database through the same call as the CLI. */
static void make_token(struct wh_server *s, const char *name, enum api_role role, char *out)
{
    struct as_err err = {0};
    if (api_token_create(s->app.db, name, role, 0, "test", time_now_ms(), out, API_TOKEN_LEN + 1,
                         NULL, &err) != AS_OK)
        fail_msg("api_token_create %s: %s", name, err.msg);
}

static void make_tokens(struct wh_server *s, struct tokens *t)
{
    make_token(s, "ann-viewer", API_ROLE_VIEWER, t->viewer);
    make_token(s, "otto-operator", API_ROLE_OPERATOR, t->operator);
    make_token(s, "ada-admin", API_ROLE_ADMIN, t->admin);
}

struct resp {
    long status;
    json_t *json; /* the body parsed, or NULL */
    char *body;
    char *headers;
};

static void resp_free(struct resp *r)
{
    json_decref(r->json);
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/*
 * One request: method, path (below the server's URL), bearer token (NULL:
 * none), body (NULL: none; sent as application/json unless content_type
 * says otherwise).
 */
static struct resp call_ct(struct wh_server *s, const char *method, const char *path,
                           const char *token, const char *body, const char *content_type)
{
    char url[1024], auth[256], ct[128];
    char *headers[4];
    int n = 0;
    snprintf(url, sizeof url, "%s%s", s->url, path);
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers[n++] = auth;
    }
    if (body) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
        headers[n++] = ct;
    }
    headers[n] = NULL;
    struct tu_http_resp r;
    if (tu_http(method, url, headers, body, &r) != 0)
        fail_msg("%s %s: no answer", method, path);
    struct resp out = {.status = r.status, .body = r.body, .headers = r.headers};
    out.json = json_loads(r.body, 0, NULL);
    return out;
}

static struct resp call(struct wh_server *s, const char *method, const char *path,
                        const char *token, const char *body)
{
    return call_ct(s, method, path, token, body, NULL);
}

/* A request that must answer want; its JSON body (caller decrefs, may be NULL for HEAD/CSV). */
static json_t *expect(struct wh_server *s, const char *method, const char *path, const char *token,
                      const char *body, long want)
{
    struct resp r = call(s, method, path, token, body);
    if (r.status != want)
        fail_msg("%s %s: %ld, expected %ld:\n%s", method, path, r.status, want, r.body);
    json_t *j = r.json;
    r.json = NULL;
    resp_free(&r);
    return j;
}

/* The error code of an error body ({"error": {"code", "message"}}), checked for shape. */
static const char *error_code(const json_t *j)
{
    const json_t *e = json_object_get(j, "error");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")) ||
        !json_is_string(json_object_get(e, "message")))
        fail_msg("not an error body: %s", j ? "wrong shape" : "no JSON");
    return json_string_value(json_object_get(e, "code"));
}

static const char *error_message(const json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

/* A request that must fail with status and error code (and optionally a message part). */
static void expect_error(struct wh_server *s, const char *method, const char *path,
                         const char *token, const char *body, long status, const char *code,
                         const char *message_part)
{
    json_t *j = expect(s, method, path, token, body, status);
    if (strcmp(error_code(j), code) != 0)
        fail_msg("%s %s: error code %s, expected %s (%s)", method, path, error_code(j), code,
                 error_message(j));
    if (message_part && !strstr(error_message(j), message_part))
        fail_msg("%s %s: message \"%s\" lacks \"%s\"", method, path, error_message(j),
                 message_part);
    json_decref(j);
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static long long num(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* The items of a list answer (borrowed from j), checked for shape. */
static json_t *items_of(const json_t *j)
{
    json_t *items = json_object_get(j, "items");
    if (!json_is_array(items) || !json_object_get(j, "next_cursor"))
        fail_msg("not a list answer");
    return items;
}

/* Every event of the server's database, oldest first (new array). */
struct events_ctx {
    json_t *list;
};

static int event_cb(void *ud, const struct db_event_info *ev)
{
    struct events_ctx *e = ud;
    json_t *data = json_loads(ev->data, 0, NULL);
    json_array_append_new(e->list, json_pack("{s:I, s:I, s:s, s:o}", "id", (json_int_t)ev->id,
                                             "run_id", (json_int_t)ev->run_id, "type", ev->type,
                                             "data", data ? data : json_null()));
    return 0;
}

static json_t *all_events(struct wh_server *s)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct events_ctx e = {json_array()};
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    enum as_code rc = db_run_events(c, 0, event_cb, &e, &err);
    db_read_end(s->app.db, c);
    assert_int_equal(rc, AS_OK);
    return e.list;
}

/* The last event of `type` (borrowed from events) whose data.actor is actor; fails when none. */
static const json_t *event_by(const json_t *events, const char *type, const char *actor)
{
    const json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const json_t *data = json_object_get(e, "data");
        if (strcmp(str(e, "type"), type) == 0 && strcmp(str(data, "actor"), actor) == 0)
            found = e;
    }
    if (!found)
        fail_msg("no %s event with actor %s in the audit chain", type, actor);
    return found;
}

/* `assent audit verify` over the server's database: the chain is intact. */
static void audit_intact(struct wh_server *s)
{
    struct as_err err = {0};
    struct db_conn *c;
    struct db_audit_report rep;
    assert_int_equal(db_read_begin(s->app.db, &c, &err), AS_OK);
    enum as_code rc = db_audit_verify(c, 0, NULL, &rep, &err);
    db_read_end(s->app.db, c);
    assert_int_equal(rc, AS_OK);
    if (rep.bad_id)
        fail_msg("audit chain broken at %lld: %s", (long long)rep.bad_id, rep.problem);
}

/* Run assent against the server's database; stdout (and stderr) malloc'd. */
static int run_cli(struct wh_server *s, char **out, char **errout, char *const args[])
{
    char db_env[600];
    snprintf(db_env, sizeof db_env, "ASSENT_DB=%s", s->db_path);
    char *env[] = {db_env, "ASSENT_LOG_LEVEL=error", NULL};
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)tu_assent_bin();
    for (int i = 0; args[i] && n < 19; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return tu_run(argv, env, 60000, out, errout);
}

/* A workflow file in the test's directory; returns its path (malloc'd). */
static char *write_workflow(struct wh_server *s, const char *file, const char *text)
{
    char *path = tu_path(s->dir, file);
    assert_int_equal(tu_write_file(path, text), 0);
    return path;
}

static const char wf_hello[] =
    "{\"name\": \"hello\", \"version\": \"1\",\n"
    " \"input\": {\"user\": {\"type\": \"string\"}, \"fail\": {\"type\": \"boolean\", \"default\": false}},\n"
    " \"steps\": {\n"
    "  \"check\": {\"type\": \"condition\", \"params\": {\"expr\": \"input.fail\"},\n"
    "             \"next\": {\"true\": \"boom\", \"false\": \"say\"}},\n"
    "  \"boom\": {\"type\": \"fail\", \"params\": {\"message\": \"asked to fail\"}},\n"
    "  \"say\": {\"type\": \"log\", \"params\": {\"message\": \"hello ${input.user}\"}}}}\n";

/* ---- assent token ---------------------------------------------------------------- */

static void test_token_cli(void **state)
{
    struct wh_server *s = *state;
    wh_init(s, "api-token-cli", 0);
    char *out = NULL, *err = NULL;

    /* create: the token alone on stdout, once; what it is on stderr. */
    char *create[] = {"token", "create", "--name", "ci-bot", "--role", "operator", NULL};
    assert_int_equal(run_cli(s, &out, &err, create), 0);
    size_t len = strlen(out);
    assert_int_equal(len, API_TOKEN_LEN + 1);
    assert_int_equal(out[len - 1], '\n');
    assert_int_equal(strncmp(out, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX)), 0);
    assert_null(strchr(out, ' '));
    char token[API_TOKEN_LEN + 1];
    snprintf(token, sizeof token, "%.*s", (int)(len - 1), out);
    assert_non_null(strstr(err, "ci-bot (operator) created, expires never"));
    free(out);
    free(err);

    /* --json: name, role, token, expires_at. */
    char *create_json[] = {"--json", "token", "create", "--name", "dash", "--role", "viewer",
                           "--expires", "P90D", NULL};
    assert_int_equal(run_cli(s, &out, &err, create_json), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(str(j, "name"), "dash");
    assert_string_equal(str(j, "role"), "viewer");
    assert_int_equal(strlen(str(j, "token")), API_TOKEN_LEN);
    long long expires = num(j, "expires_at");
    long long want = time_now_ms() + 90LL * 86400000;
    assert_true(expires > want - 600000 && expires <= want);
    char viewer_token[API_TOKEN_LEN + 1];
    snprintf(viewer_token, sizeof viewer_token, "%s", str(j, "token"));
    json_decref(j);
    free(out);
    free(err);

    /* Refusals: a live name, a bad role, a bad name, a bad expiry. */
    assert_int_equal(run_cli(s, &out, &err, create), 1);
    assert_non_null(strstr(err, "exists"));
    assert_string_equal(out, "");
    free(out);
    free(err);
    char *bad_role[] = {"token", "create", "--name", "x", "--role", "root", NULL};
    assert_int_equal(run_cli(s, &out, &err, bad_role), 2);
    free(out);
    free(err);
    char *bad_name[] = {"token", "create", "--name", "a b", "--role", "viewer", NULL};
    assert_int_equal(run_cli(s, &out, &err, bad_name), 2);
    free(out);
    free(err);
    char *reserved[] = {"token", "create", "--name", "admin_token_file", "--role", "admin", NULL};
    assert_int_equal(run_cli(s, &out, &err, reserved), 2);
    free(out);
    free(err);
    char *past[] = {"token", "create", "--name", "old", "--role", "viewer", "--expires",
                    "2001-01-01", NULL};
    assert_int_equal(run_cli(s, &out, &err, past), 2);
    assert_non_null(strstr(err, "past"));
    free(out);
    free(err);
    char *no_role[] = {"token", "create", "--name", "x", NULL};
    assert_int_equal(run_cli(s, &out, &err, no_role), 2);
    free(out);
    free(err);

    /* list: never a token; --json names each with its role. */
    char *list[] = {"token", "list", NULL};
    assert_int_equal(run_cli(s, &out, &err, list), 0);
    assert_non_null(strstr(out, "ci-bot"));
    assert_non_null(strstr(out, "operator"));
    assert_non_null(strstr(out, "dash"));
    assert_null(strstr(out, API_TOKEN_PREFIX));
    free(out);
    free(err);
    char *list_json[] = {"token", "list", "--json", NULL};
    assert_int_equal(run_cli(s, &out, &err, list_json), 0);
    assert_null(strstr(out, API_TOKEN_PREFIX));
    assert_null(strstr(out, "hash"));
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(str(json_array_get(j, 0), "name"), "dash");
    assert_true(json_is_null(json_object_get(json_array_get(j, 1), "expires_at")));
    json_decref(j);
    free(out);
    free(err);

    /* Only the hash is stored: the database file never holds the token. */
    for (const char *f = "assent.db"; f; f = strcmp(f, "assent.db") == 0 ? "assent.db-wal" : NULL) {
        char *path = tu_path(s->dir, f);
        FILE *fp = fopen(path, "rb");
        free(path);
        if (!fp)
            continue;
        char *buf = malloc(8 << 20);
        size_t n = fread(buf, 1, (8 << 20) - 1, fp);
        fclose(fp);
        assert_null(memmem(buf, n, token, strlen(token)));
        assert_null(memmem(buf, n, viewer_token, strlen(viewer_token)));
        free(buf);
    }

    /* The token works on the API until revoked. */
    serve(s);
    json_decref(expect(s, "GET", "/api/v1/runs", token, NULL, 200));
    char *revoke[] = {"token", "revoke", "ci-bot", NULL};
    assert_int_equal(run_cli(s, &out, &err, revoke), 0);
    assert_non_null(strstr(out, "token ci-bot revoked"));
    free(out);
    free(err);
    expect_error(s, "GET", "/api/v1/runs", token, NULL, 401, "unauthorized", "revoked");
    assert_int_equal(run_cli(s, &out, &err, revoke), 4);
    free(out);
    free(err);
    char *revoke_none[] = {"token", "revoke", NULL};
    assert_int_equal(run_cli(s, &out, &err, revoke_none), 2);
    free(out);
    free(err);
    assert_int_equal(run_cli(s, &out, &err, list_json), 0);
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(j), 1); /* revoked ones only with --all */
    json_decref(j);
    free(out);
    free(err);
    char *list_all[] = {"token", "list", "--all", NULL};
    assert_int_equal(run_cli(s, &out, &err, list_all), 0);
    assert_non_null(strstr(out, "revoked"));
    free(out);
    free(err);
    /* The name is free again once revoked. */
    assert_int_equal(run_cli(s, &out, &err, create), 0);
    free(out);
    free(err);

    /* Creating and revoking are in the audit chain, by the OS user. */
    char os_user[64];
    cli_os_user(os_user, sizeof os_user);
    json_t *events = all_events(s);
    const json_t *created = event_by(events, "token.created", os_user);
    assert_non_null(created);
    const json_t *revoked = event_by(events, "token.revoked", os_user);
    assert_string_equal(str(json_object_get(revoked, "data"), "name"), "ci-bot");
    json_decref(events);
    audit_intact(s);
    char *usage[] = {"token", NULL};
    assert_int_equal(run_cli(s, &out, &err, usage), 2);
    free(out);
    free(err);
    wh_stop(s, SIGTERM);
}

/* ---- credentials and roles ---------------------------------------------------------- */

static void test_credentials_and_roles(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    start(s, "api-auth", 1);
    make_tokens(s, &t);

    /* No credential: 401, JSON, with WWW-Authenticate; on every route. */
    struct resp r = call(s, "GET", "/api/v1/runs", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(error_code(r.json), "unauthorized");
    char *www = NULL;
    struct tu_http_resp raw = {.headers = r.headers};
    www = tu_http_header(&raw, "WWW-Authenticate");
    assert_non_null(www);
    assert_non_null(strstr(www, "Bearer"));
    free(www);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    resp_free(&r);
    static const char *const routes[][2] = {
        {"GET", "/api/v1/runs"},           {"POST", "/api/v1/runs"},
        {"GET", "/api/v1/runs/1"},         {"POST", "/api/v1/runs/1/cancel"},
        {"POST", "/api/v1/runs/1/retry"},  {"GET", "/api/v1/approvals"},
        {"POST", "/api/v1/approvals/1/decide"}, {"GET", "/api/v1/kpis"},
        {"GET", "/api/v1/kpis/k"},         {"POST", "/api/v1/kpis/k/evaluate"},
        {"POST", "/api/v1/kpis/k/trigger"}, {"GET", "/api/v1/exceptions"},
        {"POST", "/api/v1/exceptions"},    {"DELETE", "/api/v1/exceptions/1"},
        {"GET", "/api/v1/reports/users"},  {"GET", "/api/v1/reports/signins"},
        {"GET", "/api/v1/reports/policies"}, {"GET", "/api/v1/reports/plans"},
        {"GET", "/api/v1/reports/org"},
        {"GET", "/api/v1/workflows"},      {"POST", "/api/v1/workflows/validate"},
        {"GET", "/api/v1/tokens"},         {"POST", "/api/v1/tokens"},
        {"GET", "/api/runs"},              {"GET", "/api/approvals"},
        {"GET", "/metrics"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        expect_error(s, routes[i][0], routes[i][1], NULL, NULL, 401, "unauthorized", NULL);

    /* Wrong, malformed, other schemes: 401. */
    expect_error(s, "GET", "/api/v1/runs", "assent_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                 NULL, 401, "unauthorized", "unknown token");
    expect_error(s, "GET", "/api/v1/runs", "x", NULL, 401, "unauthorized", NULL);
    char url[256];
    snprintf(url, sizeof url, "%s/api/v1/runs", s->url);
    char *basic[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    struct tu_http_resp hr;
    assert_int_equal(tu_http("GET", url, basic, NULL, &hr), 0);
    assert_int_equal(hr.status, 401);
    tu_http_free(&hr);

    /* Expired and revoked tokens: 401 saying so. */
    struct as_err err = {0};
    struct db_api_token old = {.created_at = time_now_ms() - 7200000,
                               .expires_at = time_now_ms() - 3600000};
    const char *old_token = "assent_expiredexpiredexpiredexpiredexpiredexp";
    snprintf(old.name, sizeof old.name, "old");
    snprintf(old.role, sizeof old.role, "admin");
    snprintf(old.created_by, sizeof old.created_by, "test");
    assert_int_equal(encode_sha256_hex(old_token, strlen(old_token), old.token_hash), 0);
    assert_int_equal(db_api_token_add(s->app.db, &old, &err), AS_OK);
    expect_error(s, "GET", "/api/v1/runs", old_token, NULL, 401, "unauthorized", "expired");
    char gone[API_TOKEN_LEN + 1];
    make_token(s, "gone", API_ROLE_ADMIN, gone);
    json_decref(expect(s, "GET", "/api/v1/tokens", gone, NULL, 200));
    assert_int_equal(db_api_token_revoke(s->app.db, "gone", "test", time_now_ms(), NULL, &err),
                     AS_OK);
    expect_error(s, "GET", "/api/v1/tokens", gone, NULL, 401, "unauthorized", "revoked");

    /* Roles: a viewer reads, and is refused every change (403, JSON). */
    json_decref(expect(s, "GET", "/api/v1/runs", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/v1/approvals", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/v1/kpis", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/v1/exceptions", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/v1/workflows", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/runs", t.viewer, NULL, 200));
    json_decref(expect(s, "GET", "/api/approvals", t.viewer, NULL, 200));
    r = call(s, "GET", "/metrics", t.viewer, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    static const char *const operator_routes[][3] = {
        {"POST", "/api/v1/runs", "{\"workflow\": \"hello\"}"},
        {"POST", "/api/v1/runs/1/cancel", NULL},
        {"POST", "/api/v1/runs/1/retry", NULL},
        {"POST", "/api/v1/approvals/1/decide", "{\"decision\": \"approve\"}"},
        {"POST", "/api/v1/kpis/k/evaluate", NULL},
        {"POST", "/api/v1/kpis/k/trigger", NULL},
        {"POST", "/api/v1/exceptions", "{}"},
        {"DELETE", "/api/v1/exceptions/1", "{\"reason\": \"x\"}"},
    };
    static const char *const admin_routes[][3] = {
        {"GET", "/api/v1/tokens", NULL},
        {"POST", "/api/v1/tokens", "{\"name\": \"n\", \"role\": \"viewer\"}"},
        {"DELETE", "/api/v1/tokens/ann-viewer", NULL},
        {"POST", "/api/v1/kpis", "{\"name\": \"k\"}"},
        {"DELETE", "/api/v1/kpis/k", NULL},
        {"POST", "/api/v1/workflows", wf_hello},
    };
    for (size_t i = 0; i < sizeof operator_routes / sizeof operator_routes[0]; i++)
        expect_error(s, operator_routes[i][0], operator_routes[i][1], t.viewer,
                     operator_routes[i][2], 403, "forbidden", "needs operator");
    /* An operator does those (here: 404s of things that do not exist) ... */
    expect_error(s, "POST", "/api/v1/runs/999/cancel", t.operator, NULL, 404, "not_found", NULL);
    expect_error(s, "POST", "/api/v1/kpis/k/evaluate", t.operator, NULL, 404, "not_found", NULL);
    /* ... and is refused what only an admin does. */
    for (size_t i = 0; i < sizeof admin_routes / sizeof admin_routes[0]; i++) {
        expect_error(s, admin_routes[i][0], admin_routes[i][1], t.operator, admin_routes[i][2],
                     403, "forbidden", "needs admin");
        expect_error(s, admin_routes[i][0], admin_routes[i][1], t.viewer, admin_routes[i][2], 403,
                     "forbidden", "needs admin");
    }
    /* An admin does everything; admin_token_file is an admin. */
    json_t *list = expect(s, "GET", "/api/v1/tokens", t.admin, NULL, 200);
    assert_int_equal(json_array_size(items_of(list)), 4); /* viewer, operator, admin, old */
    json_decref(list);
    list = expect(s, "GET", "/api/v1/tokens?include=revoked", ADMIN_FILE_TOKEN, NULL, 200);
    assert_int_equal(json_array_size(items_of(list)), 5);
    /* Never a token or its hash. */
    char *text = json_dumps(list, 0);
    assert_null(strstr(text, API_TOKEN_PREFIX));
    assert_null(strstr(text, "hash"));
    free(text);
    json_decref(list);
    json_decref(expect(s, "POST", "/api/v1/workflows", ADMIN_FILE_TOKEN, wf_hello, 201));

    /* The legacy aliases keep their shape. */
    json_t *legacy = expect(s, "GET", "/api/runs", t.viewer, NULL, 200);
    assert_true(json_is_array(json_object_get(legacy, "runs")));
    json_decref(legacy);
    legacy = expect(s, "GET", "/api/approvals", t.operator, NULL, 200);
    assert_true(json_is_array(json_object_get(legacy, "approvals")));
    json_decref(legacy);
    expect_error(s, "GET", "/api/runs/abc", t.viewer, NULL, 404, "not_found", NULL);

    /* The access log names who asked, never the token. */
    wh_stop(s, SIGTERM);
    char *log = wh_log(s);
    assert_non_null(strstr(log, "by=ann-viewer"));
    assert_null(strstr(log, t.viewer));
    assert_null(strstr(log, ADMIN_FILE_TOKEN));
    free(log);
}

/* ---- failed credentials count toward the rate limiter --------------------------------- */

static void test_rate_limit(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    wh_init(s, "api-rate", 0);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_WEB_BAD_TOKEN_LIMIT=3");
    wh_start(s, 0);
    make_tokens(s, &t);
    /* Requests without a credential are not attempts. */
    for (int i = 0; i < 5; i++)
        expect_error(s, "GET", "/api/v1/runs", NULL, NULL, 401, "unauthorized", NULL);
    json_decref(expect(s, "GET", "/api/v1/runs", t.viewer, NULL, 200));
    for (int i = 0; i < 3; i++)
        expect_error(s, "GET", "/api/v1/runs", "assent_wrong", NULL, 401, "unauthorized", NULL);
    /* Blocked now, even with a good token, with Retry-After. */
    struct resp r = call(s, "GET", "/api/v1/runs", t.viewer, NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(error_code(r.json), "rate_limited");
    struct tu_http_resp raw = {.headers = r.headers};
    char *ra = tu_http_header(&raw, "Retry-After");
    assert_non_null(ra);
    assert_true(strtol(ra, NULL, 10) > 0);
    free(ra);
    resp_free(&r);
    /* Approval links of the same address are blocked too (one budget). */
    char path[96];
    snprintf(path, sizeof path, "/a/%043d", 1);
    r = call(s, "GET", path, NULL, NULL);
    assert_int_equal(r.status, 429);
    resp_free(&r);
    wh_stop(s, SIGTERM);
}

/* ---- runs ---------------------------------------------------------------------------- */

/* Wait until run id has status; fails after WAIT_MS. */
static void wait_run(struct wh_server *s, long long id, const char *status)
{
    assert_int_equal(wh_wait_run(s, id, status, WAIT_MS), 0);
}

static void test_runs(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    wh_init(s, "api-runs", 0);
    /* Files to start by path are in the test's directory. */
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0], "ASSENT_API_WORKFLOW_DIR=%s",
             s->dir);
    serve(s);
    make_tokens(s, &t);
    char *file = write_workflow(s, "hello.json", wf_hello);

    /* Start by file; then store (admin) and start by name (operator). */
    char *body = fmt("{\"workflow\": \"%s\", \"input\": {\"user\": \"ada@contoso.com\"}}", file);
    struct resp r = call(s, "POST", "/api/v1/runs", t.operator, body);
    free(body);
    assert_int_equal(r.status, 201);
    long long run1 = num(r.json, "run_id");
    assert_true(run1 > 0);
    assert_string_equal(str(r.json, "workflow"), "hello");
    struct tu_http_resp raw = {.headers = r.headers};
    char *loc = tu_http_header(&raw, "Location");
    char *want_loc = fmt("/api/v1/runs/%lld", run1);
    assert_string_equal(loc, want_loc);
    free(loc);
    free(want_loc);
    resp_free(&r);
    wait_run(s, run1, "succeeded");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"hello-unknown\"}", 404,
                 "not_found", "no workflow named");
    json_t *stored = expect(s, "POST", "/api/v1/workflows", t.admin, wf_hello, 201);
    assert_string_equal(str(stored, "name"), "hello");
    json_decref(stored);
    json_t *j = expect(s, "POST", "/api/v1/runs", t.operator,
                       "{\"workflow\": \"hello\", \"input\": {\"user\": \"bob@contoso.com\", "
                       "\"fail\": true}}",
                       201);
    long long run2 = num(j, "run_id");
    json_decref(j);
    wait_run(s, run2, "failed");
    j = expect(s, "POST", "/api/v1/runs", t.admin,
               "{\"workflow\": \"hello\", \"input\": {\"user\": \"cy@contoso.com\"}, "
               "\"dedupe_key\": \"cy\"}",
               201);
    long long run3 = num(j, "run_id");
    json_decref(j);
    wait_run(s, run3, "succeeded");

    /* Bad starts. */
    expect_error(s, "POST", "/api/v1/runs", t.operator,
                 "{\"workflow\": \"hello\", \"input\": {\"nope\": 1}}", 400, "invalid", "nope");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"hello\", \"input\": []}",
                 400, "wrong_type", "input");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"input\": {}}", 400, "missing_field",
                 "workflow");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"\"}", 400, "invalid",
                 NULL);
    char *bad_file = write_workflow(s, "bad.json", "{\"name\": \"bad\", \"steps\": {\"a\": "
                                                   "{\"type\": \"no-such-type\"}}}");
    body = fmt("{\"workflow\": \"%s\"}", bad_file);
    j = expect(s, "POST", "/api/v1/runs", t.operator, body, 400);
    free(body);
    assert_string_equal(error_code(j), "invalid_workflow");
    const json_t *diag = json_array_get(json_object_get(json_object_get(j, "error"), "diagnostics"), 0);
    assert_true(num(diag, "line") > 0);
    assert_true(strlen(str(diag, "code")) > 0);
    json_decref(j);
    body = fmt("{\"workflow\": \"%s/missing.json\"}", s->dir);
    expect_error(s, "POST", "/api/v1/runs", t.operator, body, 404, "not_found", NULL);
    free(body);
    /* Only files inside api_workflow_dir: not the shipped ones, not by "..". */
    body = fmt("{\"workflow\": \"%s/workflows/legacy-protocols.json\"}", tu_source_dir());
    expect_error(s, "POST", "/api/v1/runs", t.operator, body, 403, "forbidden",
                 "outside api_workflow_dir");
    free(body);
    body = fmt("{\"workflow\": \"%s/hello.txt\"}", s->dir);
    expect_error(s, "POST", "/api/v1/runs", t.operator, body, 400, "invalid", ".json");
    free(body);

    /* Dedupe: a second open run with the key is a conflict naming the first. */
    char *wf_wait = wh_workflow("any", "P1D", NULL, NULL, 0);
    char *wait_file = write_workflow(s, "wait.json", wf_wait);
    body = fmt("{\"workflow\": \"%s\", \"input\": {\"approvers\": [\"x@example.org\"]}, "
               "\"dedupe_key\": \"k1\"}", wait_file);
    j = expect(s, "POST", "/api/v1/runs", t.operator, body, 201);
    long long waiting = num(j, "run_id");
    json_decref(j);
    j = expect(s, "POST", "/api/v1/runs", t.operator, body, 409);
    assert_string_equal(error_code(j), "conflict");
    assert_int_equal(num(json_object_get(j, "error"), "run_id"), waiting);
    json_decref(j);
    free(body);
    wait_run(s, waiting, "waiting");

    /* The list: newest first, each with its user; filters; pages. */
    j = expect(s, "GET", "/api/v1/runs", t.viewer, NULL, 200);
    json_t *items = items_of(j);
    assert_int_equal(json_array_size(items), 4);
    assert_int_equal(num(json_array_get(items, 0), "id"), waiting);
    assert_string_equal(str(json_array_get(items, 3), "user"), "ada@contoso.com");
    assert_string_equal(str(json_array_get(items, 3), "trigger"), "api");
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?status=failed", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    assert_int_equal(num(json_array_get(items_of(j), 0), "id"), run2);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?user=bob@contoso.com", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?workflow=web-test&status=waiting", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?since=P1D", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 4);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?since=2999-01-01", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 0);
    json_decref(j);
    /* Paging one at a time visits every run once, newest first. */
    long long seen[8];
    int n_seen = 0;
    char *path = strdup("/api/v1/runs?limit=1");
    for (;;) {
        j = expect(s, "GET", path, t.viewer, NULL, 200);
        free(path);
        assert_int_equal(json_array_size(items_of(j)), 1);
        assert_true(n_seen < 8);
        seen[n_seen++] = num(json_array_get(items_of(j), 0), "id");
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (!next) {
            json_decref(j);
            break;
        }
        path = fmt("/api/v1/runs?limit=1&cursor=%s", next);
        json_decref(j);
    }
    assert_int_equal(n_seen, 4);
    for (int i = 1; i < n_seen; i++)
        assert_true(seen[i] < seen[i - 1]);
    expect_error(s, "GET", "/api/v1/runs?status=lost", t.viewer, NULL, 400, "bad_request", NULL);
    expect_error(s, "GET", "/api/v1/runs?since=yesterday", t.viewer, NULL, 400, "bad_request", NULL);
    expect_error(s, "GET", "/api/v1/runs?limit=0", t.viewer, NULL, 400, "bad_request", "limit");
    expect_error(s, "GET", "/api/v1/runs?limit=1001", t.viewer, NULL, 400, "bad_request", NULL);
    expect_error(s, "GET", "/api/v1/runs?cursor=abc", t.viewer, NULL, 400, "bad_cursor", NULL);
    expect_error(s, "GET", "/api/v1/runs?stauts=failed", t.viewer, NULL, 400, "unknown_parameter",
                 "stauts");

    /* One run: the timeline as `assent show --json`. */
    char *show_path = fmt("/api/v1/runs/%lld", run1);
    j = expect(s, "GET", show_path, t.viewer, NULL, 200);
    free(show_path);
    assert_int_equal(num(json_object_get(j, "run"), "id"), run1);
    assert_true(json_array_size(json_object_get(j, "steps")) >= 2);
    const json_t *created = json_array_get(json_object_get(j, "events"), 0);
    assert_string_equal(str(created, "type"), "run.created");
    assert_string_equal(str(json_object_get(created, "data"), "actor"), "otto-operator");
    char id_text[32];
    snprintf(id_text, sizeof id_text, "%lld", run1);
    char *show[] = {"--json", "show", id_text, NULL};
    char *out = NULL, *err = NULL;
    assert_int_equal(run_cli(s, &out, &err, show), 0);
    json_t *cli_show = json_loads(out, 0, NULL);
    assert_true(json_equal(cli_show, j));
    json_decref(cli_show);
    free(out);
    free(err);
    json_decref(j);
    expect_error(s, "GET", "/api/v1/runs/999999", t.viewer, NULL, 404, "not_found", NULL);
    expect_error(s, "GET", "/api/v1/runs/x1", t.viewer, NULL, 404, "not_found", NULL);

    /* Cancel an open run (twice: 409), retry a failed one (a succeeded one: 409). */
    char *cancel = fmt("/api/v1/runs/%lld/cancel", waiting);
    j = expect(s, "POST", cancel, t.operator, NULL, 200);
    assert_string_equal(str(j, "status"), "cancelled");
    json_decref(j);
    wait_run(s, waiting, "cancelled");
    expect_error(s, "POST", cancel, t.operator, NULL, 409, "conflict", NULL);
    /* POST with an empty JSON object is fine; a field is not. */
    expect_error(s, "POST", cancel, t.operator, "{\"force\": true}", 400, "unknown_field", "force");
    free(cancel);
    char *retry = fmt("/api/v1/runs/%lld/retry", run2);
    j = expect(s, "POST", retry, t.operator, "{}", 200);
    json_decref(j);
    wait_run(s, run2, "failed"); /* it fails again, as asked */
    free(retry);
    retry = fmt("/api/v1/runs/%lld/retry", run1);
    expect_error(s, "POST", retry, t.operator, NULL, 409, "conflict", NULL);
    free(retry);
    expect_error(s, "POST", "/api/v1/runs/424242/retry", t.operator, NULL, 404, "not_found", NULL);

    /* A path that leaves the directory and comes back is inside. */
    body = fmt("{\"workflow\": \"%s/../%s/hello.json\"}", s->dir, strrchr(s->dir, '/') + 1);
    json_decref(expect(s, "POST", "/api/v1/runs", t.operator, body, 201));
    free(body);

    /* Every change in the audit chain with the token's name. */
    json_t *events = all_events(s);
    assert_int_equal(json_integer_value(json_object_get(event_by(events, "run.cancelled",
                                                                  "otto-operator"), "run_id")),
                     waiting);
    assert_int_equal(
        json_integer_value(json_object_get(event_by(events, "run.retried", "otto-operator"), "run_id")),
        run2);
    assert_string_equal(str(json_object_get(event_by(events, "workflow.stored", "ada-admin"), "data"),
                            "name"),
                        "hello");
    event_by(events, "run.created", "ada-admin");
    json_decref(events);
    audit_intact(s);
    wh_stop(s, SIGTERM);
    free(wf_wait);
    free(wait_file);
    free(bad_file);
    free(file);
}

/* ---- approvals ---------------------------------------------------------------------- */

static void test_approvals(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    start(s, "api-approvals", 0);
    make_tokens(s, &t);
    char *wf = wh_workflow("all", "P1D", NULL, NULL, 0);
    json_t *def = json_loads(wf, 0, NULL);
    json_object_set_new(json_object_get(def, "input"), "user", json_pack("{s:s}", "type", "string"));
    free(wf);
    wf = json_dumps(def, 0);
    json_decref(def);
    int64_t run_a = wh_submit(s, wf, "{\"approvers\": [\"a@example.org\", \"b@example.org\"], "
                                     "\"user\": \"ada@contoso.com\"}");
    int64_t run_b = wh_submit(s, wf, "{\"approvers\": [\"c@example.org\"]}");
    wait_run(s, run_a, "waiting");
    wait_run(s, run_b, "waiting");

    /* Pending approvals: one item per approval, its id, run, user, approvers. */
    json_t *j = expect(s, "GET", "/api/v1/approvals?status=pending", t.viewer, NULL, 200);
    json_t *items = items_of(j);
    assert_int_equal(json_array_size(items), 2);
    /* (The two runs' approval steps may run in either order.) */
    int ia = num(json_array_get(items, 0), "run_id") == run_a ? 0 : 1;
    const json_t *a = json_array_get(items, (size_t)ia);
    assert_int_equal(num(a, "run_id"), run_a);
    assert_int_equal(num(json_array_get(items, (size_t)(1 - ia)), "run_id"), run_b);
    assert_true(num(json_array_get(items, 0), "id") > num(json_array_get(items, 1), "id"));
    assert_string_equal(str(a, "user"), "ada@contoso.com");
    assert_string_equal(str(a, "status"), "pending");
    assert_int_equal(json_array_size(json_object_get(a, "approvers")), 2);
    assert_string_equal(str(json_array_get(json_object_get(a, "approvers"), 0), "email"),
                        "a@example.org");
    long long id_a = num(a, "id"), id_b = num(json_array_get(items, (size_t)(1 - ia)), "id");
    json_decref(j);
    /* The same id as `assent approvals --json`. */
    char *out = NULL, *err = NULL;
    char *cli_list[] = {"approvals", "--json", NULL};
    assert_int_equal(run_cli(s, &out, &err, cli_list), 0);
    json_t *cli = json_loads(out, 0, NULL);
    int found = 0;
    size_t i;
    json_t *row;
    json_array_foreach(cli, i, row) found += num(row, "approval_id") == id_a &&
                                             num(row, "run_id") == run_a;
    assert_int_equal(found, 2); /* one row per approver */
    json_decref(cli);
    free(out);
    free(err);
    /* Paging. */
    j = expect(s, "GET", "/api/v1/approvals?limit=1", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    char *next = fmt("/api/v1/approvals?limit=1&cursor=%s",
                     json_string_value(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = expect(s, "GET", next, t.viewer, NULL, 200);
    free(next);
    assert_int_equal(num(json_array_get(items_of(j), 0), "id"), id_a < id_b ? id_a : id_b);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    expect_error(s, "GET", "/api/v1/approvals?status=maybe", t.viewer, NULL, 400, "bad_request", NULL);

    /* Decide as an administrator: the whole approval, whatever its policy. */
    char *decide_a = fmt("/api/v1/approvals/%lld/decide", id_a);
    expect_error(s, "POST", decide_a, t.operator, "{\"decision\": \"perhaps\"}", 400, "invalid", NULL);
    expect_error(s, "POST", decide_a, t.operator, "{\"decision\": true}", 400, "wrong_type", NULL);
    expect_error(s, "POST", decide_a, t.operator, "{\"comment\": \"x\"}", 400, "missing_field",
                 "decision");
    expect_error(s, "POST", decide_a, t.operator, "{\"decision\": \"approve\", \"as\": \"x\"}", 400,
                 "unknown_field", NULL);
    expect_error(s, "POST", decide_a, t.operator, NULL, 400, "missing_body", NULL);
    j = expect(s, "POST", decide_a, t.operator,
               "{\"decision\": \"approve\", \"comment\": \"checked by phone\"}", 200);
    assert_string_equal(str(j, "status"), "approved");
    assert_string_equal(str(j, "decided_by"), "otto-operator");
    json_decref(j);
    wait_run(s, run_a, "succeeded");
    char outcome[32];
    wh_step_outcome(s, run_a, "ask", outcome, sizeof outcome);
    assert_string_equal(outcome, "approved");
    j = expect(s, "POST", decide_a, t.admin, "{\"decision\": \"reject\", \"comment\": \"no\"}", 409);
    assert_string_equal(error_code(j), "conflict");
    assert_string_equal(str(json_object_get(j, "error"), "decided_by"), "otto-operator");
    json_decref(j);
    free(decide_a);
    expect_error(s, "POST", "/api/v1/approvals/99999/decide", t.operator,
                 "{\"decision\": \"approve\"}", 404, "not_found", NULL);

    /* A decided approval lists as such, with who; the other is still pending. */
    j = expect(s, "GET", "/api/v1/approvals?status=decided", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    assert_string_equal(str(json_array_get(items_of(j), 0), "decided_by"), "otto-operator");
    assert_string_equal(str(json_array_get(items_of(j), 0), "decided_via"), "api");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/approvals?status=pending", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    assert_int_equal(num(json_array_get(items_of(j), 0), "id"), id_b);
    json_decref(j);
    /* Withdrawn: its run cancelled through the API. */
    char *cancel = fmt("/api/v1/runs/%lld/cancel", (long long)run_b);
    json_decref(expect(s, "POST", cancel, t.operator, NULL, 200));
    free(cancel);
    j = expect(s, "GET", "/api/v1/approvals?status=withdrawn", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    json_decref(j);
    char *decide_b = fmt("/api/v1/approvals/%lld/decide", id_b);
    expect_error(s, "POST", decide_b, t.operator, "{\"decision\": \"approve\"}", 409, "conflict",
                 NULL);
    free(decide_b);
    j = expect(s, "GET", "/api/v1/approvals?status=expired", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 0);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/approvals", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 2);
    json_decref(j);

    /* The decision in the audit chain: via api, by the token. */
    json_t *events = all_events(s);
    const json_t *ev = event_by(events, "approval.decision", "otto-operator");
    assert_string_equal(str(json_object_get(ev, "data"), "via"), "api");
    assert_string_equal(str(json_object_get(ev, "data"), "comment"), "checked by phone");
    json_decref(events);
    audit_intact(s);
    wh_stop(s, SIGTERM);
    free(wf);
}

/* ---- KPIs, exceptions, reports ---------------------------------------------------------- */

/* Users in the tenant tables as `assent sync` leaves them: POP on for even i,
 * and a legacy sign-in of u00. */
static void sync_users(struct wh_server *s, int n)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t sync_id = 0, now = time_now_ms();
    assert_int_equal(db_tenant_sync_start(s->app.db, now, &sync_id, &err), AS_OK);
    assert_int_equal(db_write_begin(s->app.db, &c, &err), AS_OK);
    for (int i = 0; i < n; i++) {
        char id[64], upn[64];
        snprintf(id, sizeof id, "00000000-0000-0000-0000-%012d", i);
        snprintf(upn, sizeof upn, "u%02d@contoso.com", i);
        json_t *u = json_pack("{s:s, s:s, s:s, s:b}", "id", id, "userPrincipalName", upn,
                              "displayName", upn, "accountEnabled", 1);
        json_t *m = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "ExternalDirectoryObjectId", id,
                              "PrimarySmtpAddress", upn, "PopEnabled", i % 2 == 0, "ImapEnabled", 0,
                              "EwsEnabled", 1, "ActiveSyncEnabled", 1,
                              "SmtpClientAuthenticationDisabled", 1);
        int matched = 0;
        assert_int_equal(db_tenant_user_put(c, sync_id, now, u, &err), AS_OK);
        assert_int_equal(db_tenant_cas_put(c, sync_id, now, m, &matched, &err), AS_OK);
        json_decref(u);
        json_decref(m);
    }
    char when[40];
    time_format_iso(now - 3600000, when, sizeof when);
    json_t *si = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:i}}", "id", "signin-1", "createdDateTime",
                           when, "userPrincipalName", "u00@contoso.com", "clientAppUsed", "POP3",
                           "ipAddress", "192.0.2.1", "status", "errorCode", 0);
    assert_int_equal(db_tenant_signin_put(c, sync_id, si, &err), AS_OK);
    json_decref(si);
    assert_int_equal(db_tenant_signins_done(c, now - 40LL * 86400000, now, &err), AS_OK);
    assert_int_equal(db_write_end(s->app.db, AS_OK, &err), AS_OK);
    json_t *summary = json_object();
    assert_int_equal(db_tenant_sync_finish(s->app.db, sync_id, now, "ok", summary, NULL, &err),
                     AS_OK);
    json_decref(summary);
}

static const char wf_fix[] =
    "{\"name\": \"fix-pop\", \"version\": \"1\",\n"
    " \"input\": {\"user\": {\"type\": \"string\", \"required\": true}},\n"
    " \"steps\": {\"note\": {\"type\": \"log\", \"params\": {\"message\": \"turn off POP for "
    "${input.user}\"}}}}\n";

static void test_kpis_exceptions_reports(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    start(s, "api-kpi", 0);
    make_tokens(s, &t);

    /* Before a sync: reports say there is nothing to report. */
    expect_error(s, "GET", "/api/v1/reports/users", t.viewer, NULL, 409, "no_tenant_data", NULL);
    sync_users(s, 10);

    /* KPIs: an admin saves one (with a trigger); everyone reads. */
    char *wf_path = write_workflow(s, "fix.json", wf_fix);
    char *kpi = fmt("{\"name\": \"pop\", \"report\": \"users\", \"filter\": \"pop_enabled\", "
                    "\"protocols\": [\"pop\"], \"trigger\": {\"workflow\": \"%s\"}}", wf_path);
    json_t *j = expect(s, "POST", "/api/v1/kpis", t.admin, kpi, 201);
    assert_string_equal(str(j, "name"), "pop");
    json_decref(j);
    expect_error(s, "POST", "/api/v1/kpis", t.admin, kpi, 409, "conflict", "replace");
    json_decref(expect(s, "POST", "/api/v1/kpis?replace=true", t.admin, kpi, 200));
    free(kpi);
    expect_error(s, "POST", "/api/v1/kpis", t.admin, "{\"name\": \"x\", \"filter\": \"(((\"}", 400,
                 "invalid", "filter");
    json_decref(expect(s, "POST", "/api/v1/kpis", t.admin,
                "{\"name\": \"plain\", \"filter\": \"imap_enabled\"}", 201));
    j = expect(s, "GET", "/api/v1/kpis", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 2);
    assert_string_equal(str(json_array_get(items_of(j), 0), "name"), "plain");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/kpis?limit=1", t.viewer, NULL, 200);
    assert_string_equal(str(j, "next_cursor"), "plain");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/kpis?limit=1&cursor=plain", t.viewer, NULL, 200);
    assert_string_equal(str(json_array_get(items_of(j), 0), "name"), "pop");
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);

    /* Evaluate: the value, recorded in the history. */
    j = expect(s, "POST", "/api/v1/kpis/pop/evaluate", t.operator, NULL, 200);
    assert_int_equal(num(j, "value"), 5);
    assert_int_equal(num(j, "exempt"), 0);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/kpis/pop", t.viewer, NULL, 200);
    assert_string_equal(str(json_object_get(j, "kpi"), "name"), "pop");
    assert_int_equal(json_array_size(json_object_get(j, "values")), 1);
    json_decref(j);
    /* The same document as `assent kpi show --json`. */
    char *out = NULL, *err = NULL;
    char *show[] = {"--json", "kpi", "show", "pop", NULL};
    assert_int_equal(run_cli(s, &out, &err, show), 0);
    json_t *cli = json_loads(out, 0, NULL);
    j = expect(s, "GET", "/api/v1/kpis/pop", t.viewer, NULL, 200);
    assert_true(json_equal(cli, j));
    json_decref(cli);
    json_decref(j);
    free(out);
    free(err);
    expect_error(s, "GET", "/api/v1/kpis/none", t.viewer, NULL, 404, "not_found", NULL);
    expect_error(s, "GET", "/api/v1/kpis/pop?history=0", t.viewer, NULL, 400, "bad_request", NULL);

    /* Trigger: a dry run starts nothing; a trigger starts one run per row. */
    j = expect(s, "POST", "/api/v1/kpis/pop/trigger", t.operator, "{\"dry_run\": true}", 200);
    assert_true(json_is_true(json_object_get(j, "preview")));
    assert_int_equal(num(j, "rows"), 5);
    assert_int_equal(num(j, "started"), 5); /* would start */
    const json_t *would = json_object_get(j, "rows_detail");
    assert_int_equal(json_array_size(would), 5);
    assert_string_equal(str(json_array_get(would, 0), "result"), "would start");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 0);
    json_decref(j);
    expect_error(s, "POST", "/api/v1/kpis/pop/trigger", t.operator, "{\"dry_run\": 1}", 400,
                 "wrong_type", NULL);
    expect_error(s, "POST", "/api/v1/kpis/plain/trigger", t.operator, NULL, 409, "conflict",
                 "no trigger");
    j = expect(s, "POST", "/api/v1/kpis/pop/trigger", t.operator, NULL, 200);
    assert_int_equal(num(j, "started"), 5);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/runs?workflow=fix-pop", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 5);
    assert_string_equal(str(json_array_get(items_of(j), 0), "trigger"), "api");
    json_decref(j);
    /* Again: every user has an open or finished run; open ones are not doubled. */
    j = expect(s, "POST", "/api/v1/kpis/pop/trigger", t.operator, "{}", 200);
    assert_int_equal(num(j, "started") + num(j, "duplicates"), 5);
    json_decref(j);

    /* Exceptions: granted by the token, in force until removed. */
    j = expect(s, "POST", "/api/v1/exceptions", t.operator,
               "{\"user\": \"u00@contoso.com\", \"protocols\": [\"pop\"], \"reason\": "
               "\"scanner\", \"expires\": \"P30D\"}",
               201);
    long long ex_id = num(j, "id");
    assert_string_equal(str(j, "granted_by"), "otto-operator");
    long long want = time_now_ms() + 30LL * 86400000;
    assert_true(num(j, "expires_at") > want - 600000 && num(j, "expires_at") <= want);
    json_decref(j);
    j = expect(s, "POST", "/api/v1/exceptions", t.operator,
               "{\"user\": \"u02@contoso.com\", \"protocols\": [\"all\"], \"reason\": \"ceo\", "
               "\"expires\": \"2999-12-31\"}",
               201);
    long long ex2 = num(j, "id");
    json_decref(j);
    expect_error(s, "POST", "/api/v1/exceptions", t.operator,
                 "{\"user\": \"u04@contoso.com\", \"protocols\": [\"gopher\"], \"reason\": \"x\"}",
                 400, "invalid", "protocols");
    expect_error(s, "POST", "/api/v1/exceptions", t.operator,
                 "{\"user\": \"u04@contoso.com\", \"protocols\": \"pop\", \"reason\": \"x\"}", 400,
                 "wrong_type", "protocols");
    expect_error(s, "POST", "/api/v1/exceptions", t.operator,
                 "{\"user\": \"u04@contoso.com\", \"protocols\": [\"pop\"]}", 400, "missing_field",
                 "reason");
    expect_error(s, "POST", "/api/v1/exceptions", t.operator,
                 "{\"user\": \"u04@contoso.com\", \"protocols\": [\"pop\"], \"reason\": \"x\", "
                 "\"expires\": \"2001-01-01\"}",
                 400, "invalid", "past");
    expect_error(s, "POST", "/api/v1/exceptions", t.operator,
                 "{\"user\": \"nobody\", \"protocols\": [\"pop\"], \"reason\": \"x\"}", 400,
                 "invalid", "user");
    j = expect(s, "GET", "/api/v1/exceptions", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 2);
    assert_int_equal(num(json_array_get(items_of(j), 0), "id"), ex2);
    json_decref(j);
    j = expect(s, "POST", "/api/v1/kpis/pop/evaluate", t.operator, NULL, 200);
    assert_int_equal(num(j, "value"), 3);
    assert_int_equal(num(j, "exempt"), 2);
    json_decref(j);
    /* Remove with a reason; then it shows only with include=removed. */
    char *del = fmt("/api/v1/exceptions/%lld", ex_id);
    expect_error(s, "DELETE", del, t.operator, NULL, 400, "missing_body", NULL);
    expect_error(s, "DELETE", del, t.operator, "{\"reason\": \"\"}", 400, "invalid", NULL);
    j = expect(s, "DELETE", del, t.operator, "{\"reason\": \"scanner replaced\"}", 200);
    assert_string_equal(str(j, "removed_by"), "otto-operator");
    json_decref(j);
    expect_error(s, "DELETE", del, t.operator, "{\"reason\": \"again\"}", 404, "not_found", NULL);
    free(del);
    expect_error(s, "DELETE", "/api/v1/exceptions/abc", t.operator, "{\"reason\": \"x\"}", 404,
                 "not_found", NULL);
    j = expect(s, "GET", "/api/v1/exceptions", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/exceptions?include=removed,expired", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 2);
    assert_string_equal(str(json_array_get(items_of(j), 1), "state"), "removed");
    assert_string_equal(str(json_array_get(items_of(j), 1), "removed_by"), "otto-operator");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/exceptions?include=removed&limit=1", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    char *next = fmt("/api/v1/exceptions?include=removed&limit=1&cursor=%s",
                     str(j, "next_cursor"));
    json_decref(j);
    j = expect(s, "GET", next, t.viewer, NULL, 200);
    free(next);
    assert_int_equal(num(json_array_get(items_of(j), 0), "id"), ex_id);
    json_decref(j);
    expect_error(s, "GET", "/api/v1/exceptions?include=gone", t.viewer, NULL, 400, "bad_request",
                 NULL);

    /* Reports: the CLI's columns and expression language; pages; CSV. */
    j = expect(s, "GET", "/api/v1/reports/users?where=pop_enabled&sort=upn,desc", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 5);
    assert_string_equal(str(json_array_get(items_of(j), 0), "upn"), "u08@contoso.com");
    /* Exceptions show on the rows. */
    assert_string_equal(str(json_array_get(items_of(j), 3), "upn"), "u02@contoso.com");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_array_get(items_of(j), 3), "exempt"), 0)),
        "all");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/reports/users?limit=4", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 4);
    next = fmt("/api/v1/reports/users?limit=4&cursor=%s", str(j, "next_cursor"));
    json_decref(j);
    j = expect(s, "GET", next, t.viewer, NULL, 200);
    free(next);
    assert_string_equal(str(json_array_get(items_of(j), 0), "upn"), "u04@contoso.com");
    json_decref(j);
    struct resp r = call(s, "GET", "/api/v1/reports/users?format=csv&where=pop_enabled", t.viewer,
                         NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/csv"));
    assert_true(strncmp(r.body, "upn,ActiveSync,OWA,POP,IMAP,MAPI,EWS,SMTP client auth,", 52) == 0);
    int lines = 0;
    for (char *p = r.body; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    /* The same CSV as `assent report users --format csv`. */
    char *csv_args[] = {"report", "users", "--format", "csv", "--where", "pop_enabled", NULL};
    assert_int_equal(run_cli(s, &out, &err, csv_args), 0);
    assert_string_equal(out, r.body);
    free(out);
    free(err);
    resp_free(&r);
    j = expect(s, "GET", "/api/v1/reports/signins?client_app=pop3", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 1);
    assert_string_equal(str(json_array_get(items_of(j), 0), "upn"), "u00@contoso.com");
    json_decref(j);
    j = expect(s, "GET", "/api/v1/reports/signins?since=PT1M", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 0);
    json_decref(j);
    expect_error(s, "GET", "/api/v1/reports/users?where=pop_enabled%20%3D%3D%3D", t.viewer, NULL,
                 400, "invalid", "where");
    expect_error(s, "GET", "/api/v1/reports/users?sort=nope", t.viewer, NULL, 400, "invalid",
                 "cannot sort by");
    expect_error(s, "GET", "/api/v1/reports/signins?sort=upn", t.viewer, NULL, 400,
                 "unknown_parameter", NULL);
    expect_error(s, "GET", "/api/v1/reports/users?format=xml", t.viewer, NULL, 400, "bad_request",
                 NULL);
    /* The other reports of the CLI: nothing synced of them here, so empty lists;
     * their parameters are checked like the others'. */
    static const char *const more_reports[] = {"policies", "plans", "org"};
    for (size_t i = 0; i < 3; i++) {
        char *path = fmt("/api/v1/reports/%s", more_reports[i]);
        j = expect(s, "GET", path, t.viewer, NULL, 200);
        assert_int_equal(json_array_size(items_of(j)), 0);
        json_decref(j);
        free(path);
        path = fmt("/api/v1/reports/%s?sort=name", more_reports[i]);
        expect_error(s, "GET", path, t.viewer, NULL, 400, "unknown_parameter", NULL);
        free(path);
    }
    r = call(s, "GET", "/api/v1/reports/plans?format=csv", t.viewer, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "filename=\"plans.csv\""));
    resp_free(&r);

    /* An admin deletes a KPI. */
    expect_error(s, "DELETE", "/api/v1/kpis/plain", t.operator, NULL, 403, "forbidden", NULL);
    json_decref(expect(s, "DELETE", "/api/v1/kpis/plain", t.admin, NULL, 200));
    expect_error(s, "DELETE", "/api/v1/kpis/plain", t.admin, NULL, 404, "not_found", NULL);

    /* The changes in the audit chain, by the tokens' names. */
    json_t *events = all_events(s);
    event_by(events, "kpi.saved", "ada-admin");
    event_by(events, "kpi.deleted", "ada-admin");
    const json_t *ev = event_by(events, "kpi.evaluated", "otto-operator");
    assert_int_equal(num(json_object_get(ev, "data"), "value"), 3);
    ev = event_by(events, "kpi.triggered", "otto-operator");
    assert_string_equal(str(json_object_get(ev, "data"), "name"), "pop");
    event_by(events, "run.created", "otto-operator");
    size_t i;
    json_t *e;
    int added = 0, removed = 0;
    json_array_foreach(events, i, e)
    {
        const json_t *data = json_object_get(e, "data");
        added += strcmp(str(e, "type"), "exception.added") == 0 &&
                 strcmp(str(data, "granted_by"), "otto-operator") == 0;
        removed += strcmp(str(e, "type"), "exception.removed") == 0 &&
                   strcmp(str(data, "removed_by"), "otto-operator") == 0;
    }
    assert_int_equal(added, 2);
    assert_int_equal(removed, 1);
    json_decref(events);
    audit_intact(s);
    wh_stop(s, SIGTERM);
    free(wf_path);
}

/* ---- workflows and tokens over the API ----------------------------------------------------- */

static void test_workflows_and_tokens(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    start(s, "api-admin", 0);
    make_tokens(s, &t);

    /* Validate: 200 with the diagnostics of `assent validate --json`. */
    json_t *j = expect(s, "POST", "/api/v1/workflows/validate", t.viewer, wf_hello, 200);
    assert_true(json_is_true(json_object_get(j, "valid")));
    assert_int_equal(json_array_size(json_object_get(j, "diagnostics")), 0);
    assert_string_equal(str(json_object_get(j, "workflow"), "name"), "hello");
    json_decref(j);
    static const char broken[] = "{\"name\": \"b\",\n \"steps\": {\n  \"a\": {\"type\": \"log\",, }}}";
    j = expect(s, "POST", "/api/v1/workflows/validate", t.viewer, broken, 200);
    assert_true(json_is_false(json_object_get(j, "valid")));
    const json_t *d = json_array_get(json_object_get(j, "diagnostics"), 0);
    assert_int_equal(num(d, "line"), 3);
    assert_true(num(d, "column") > 0);
    json_decref(j);
    char *bad_path = tu_path(s->dir, "bad.json");
    static const char unknown_type[] =
        "{\"name\": \"b\", \"version\": \"1\",\n \"steps\": {\"a\": {\"type\": \"nope\"}}}";
    assert_int_equal(tu_write_file(bad_path, unknown_type), 0);
    j = expect(s, "POST", "/api/v1/workflows/validate", t.viewer, unknown_type, 200);
    assert_true(json_is_false(json_object_get(j, "valid")));
    /* The diagnostics are `assent validate --json`'s, but for the file name. */
    char *out = NULL, *err = NULL;
    char *validate[] = {"validate", "--json", bad_path, NULL};
    assert_int_equal(run_cli(s, &out, &err, validate), 1);
    json_t *cli = json_loads(out, 0, NULL);
    assert_int_equal(json_array_size(cli), json_array_size(json_object_get(j, "diagnostics")));
    size_t i;
    json_t *cd;
    json_array_foreach(cli, i, cd)
    {
        const json_t *ad = json_array_get(json_object_get(j, "diagnostics"), i);
        assert_string_equal(str(ad, "file"), "request");
        json_object_del(cd, "file");
        json_object_del((json_t *)ad, "file");
        assert_true(json_equal(cd, ad));
    }
    json_decref(cli);
    free(out);
    free(err);
    json_decref(j);
    free(bad_path);
    j = expect(s, "POST", "/api/v1/workflows/validate", t.viewer, "", 200);
    assert_true(json_is_false(json_object_get(j, "valid")));
    json_decref(j);
    struct resp r = call_ct(s, "POST", "/api/v1/workflows/validate", t.viewer, wf_hello,
                            "text/plain");
    assert_int_equal(r.status, 415);
    assert_string_equal(error_code(r.json), "unsupported_media_type");
    resp_free(&r);

    /* Store (admin), list and read (viewer). */
    j = expect(s, "POST", "/api/v1/workflows", t.admin, unknown_type, 400);
    assert_string_equal(error_code(j), "invalid_workflow");
    assert_true(json_array_size(json_object_get(json_object_get(j, "error"), "diagnostics")) > 0);
    json_decref(j);
    json_decref(expect(s, "POST", "/api/v1/workflows", t.admin, wf_hello, 201));
    json_decref(expect(s, "POST", "/api/v1/workflows", t.admin, wf_fix, 201));
    j = expect(s, "GET", "/api/v1/workflows", t.viewer, NULL, 200);
    assert_int_equal(json_array_size(items_of(j)), 2);
    assert_string_equal(str(json_array_get(items_of(j), 0), "name"), "fix-pop");
    assert_int_equal(num(json_array_get(items_of(j), 1), "versions"), 1);
    json_decref(j);
    j = expect(s, "GET", "/api/v1/workflows?limit=1", t.viewer, NULL, 200);
    char *next = fmt("/api/v1/workflows?limit=1&cursor=%s", str(j, "next_cursor"));
    json_decref(j);
    j = expect(s, "GET", next, t.viewer, NULL, 200);
    free(next);
    assert_string_equal(str(json_array_get(items_of(j), 0), "name"), "hello");
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    j = expect(s, "GET", "/api/v1/workflows/hello", t.viewer, NULL, 200);
    assert_string_equal(str(json_object_get(j, "definition"), "name"), "hello");
    json_decref(j);
    expect_error(s, "GET", "/api/v1/workflows/none", t.viewer, NULL, 404, "not_found", NULL);

    /* Tokens: an admin makes one, it works, it is revoked, it stops working. */
    j = expect(s, "POST", "/api/v1/tokens", t.admin,
               "{\"name\": \"report-bot\", \"role\": \"viewer\", \"expires\": \"P7D\"}", 201);
    assert_string_equal(str(j, "role"), "viewer");
    char bot[API_TOKEN_LEN + 1];
    snprintf(bot, sizeof bot, "%s", str(j, "token"));
    assert_int_equal(strlen(bot), API_TOKEN_LEN);
    assert_true(num(j, "expires_at") > time_now_ms());
    json_decref(j);
    json_decref(expect(s, "GET", "/api/v1/runs", bot, NULL, 200));
    expect_error(s, "POST", "/api/v1/tokens", t.admin,
                 "{\"name\": \"report-bot\", \"role\": \"viewer\"}", 409, "conflict", NULL);
    expect_error(s, "POST", "/api/v1/tokens", t.admin, "{\"name\": \"x\", \"role\": \"god\"}", 400,
                 "invalid", "role");
    expect_error(s, "POST", "/api/v1/tokens", t.admin, "{\"name\": \"a/b\", \"role\": \"viewer\"}",
                 400, "invalid", NULL);
    expect_error(s, "POST", "/api/v1/tokens", t.admin,
                 "{\"name\": \"x\", \"role\": \"viewer\", \"expires\": \"later\"}", 400, "invalid",
                 "expires");
    j = expect(s, "DELETE", "/api/v1/tokens/report-bot", t.admin, NULL, 200);
    assert_string_equal(str(j, "revoked_by"), "ada-admin");
    json_decref(j);
    expect_error(s, "GET", "/api/v1/runs", bot, NULL, 401, "unauthorized", "revoked");
    expect_error(s, "DELETE", "/api/v1/tokens/report-bot", t.admin, NULL, 404, "not_found", NULL);

    json_t *events = all_events(s);
    const json_t *ev = event_by(events, "token.created", "ada-admin");
    assert_string_equal(str(json_object_get(ev, "data"), "name"), "report-bot");
    event_by(events, "token.revoked", "ada-admin");
    json_decref(events);
    audit_intact(s);
    wh_stop(s, SIGTERM);
}

/* ---- bad requests ----------------------------------------------------------------------- */

/* Send raw bytes and read the answer's status line within ms (0 when none). */
static int raw_status(int port, const char *request, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t)strlen(request));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int status = 0;
    char buf[256];
    if (poll(&p, 1, ms) > 0) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n > 12) {
            buf[n] = '\0';
            status = (int)strtol(buf + 9, NULL, 10);
        }
    }
    close(fd);
    return status;
}

static void test_bad_requests(void **state)
{
    struct wh_server *s = *state;
    struct tokens t;
    start(s, "api-bad", 0);
    make_tokens(s, &t);

    /* Over 1 MiB: 413 from Content-Length, before the body (none is sent here). */
    char *req = fmt("POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                    t.operator, 1024 * 1024 + 1);
    assert_int_equal(raw_status(s->port, req, 5000), 413);
    free(req);
    /* Even without a credential: the size is checked first. */
    req = strdup("POST /api/v1/workflows/validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n");
    assert_int_equal(raw_status(s->port, req, 5000), 413);
    free(req);
    /* Over curl with the body: 413 in the API's shape. */
    size_t big = 1024 * 1024 + 10;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[0] = '{';
    body[big - 1] = '}';
    body[big] = '\0';
    expect_error(s, "POST", "/api/v1/runs", t.operator, body, 413, "too_large", "1048576 bytes");
    /* Just under 1 MiB is read and parsed (here: a field too many). */
    size_t ok = 1024 * 1024 - 100;
    body[ok - 1] = '}';
    body[ok] = '\0';
    memcpy(body, "{\"pad\": \"", 9);
    body[ok - 2] = '"';
    memset(body + 9, 'x', ok - 11);
    expect_error(s, "POST", "/api/v1/runs", t.operator, body, 400, "unknown_field", "pad");
    free(body);

    /* Bad JSON: 400 saying where. */
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\n  \"workflow\": \"x\",\n  oops\n}",
                 400, "bad_json", "line 3 column");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"x\"} trailing", 400,
                 "bad_json", "line 1");
    expect_error(s, "POST", "/api/v1/runs", t.operator,
                 "{\"workflow\": \"x\", \"workflow\": \"y\"}", 400, "bad_json", "duplicate");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "[1, 2]", 400, "wrong_type", "object");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "\"text\"", 400, "bad_json", NULL);
    /* Unknown fields and wrong types. */
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"x\", \"priority\": 1}",
                 400, "unknown_field", "priority");
    expect_error(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": [\"x\"]}", 400,
                 "wrong_type", "workflow");
    expect_error(s, "POST", "/api/v1/runs", t.operator,
                 "{\"workflow\": \"x\", \"dedupe_key\": 7}", 400, "wrong_type", "dedupe_key");
    /* Media type. */
    struct resp r = call_ct(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"x\"}",
                            "application/x-www-form-urlencoded");
    assert_int_equal(r.status, 415);
    assert_string_equal(error_code(r.json), "unsupported_media_type");
    resp_free(&r);
    r = call_ct(s, "POST", "/api/v1/runs", t.operator, "{\"workflow\": \"hello\"}",
                "application/json; charset=utf-8");
    assert_int_equal(r.status, 404); /* accepted; no such workflow */
    resp_free(&r);
    /* Routes and methods. */
    expect_error(s, "GET", "/api/v1/nothing", t.viewer, NULL, 404, "not_found", NULL);
    expect_error(s, "GET", "/api/v1/runs/1/2/3", t.viewer, NULL, 404, "not_found", NULL);
    expect_error(s, "GET", "/api/v1/runs/", t.viewer, NULL, 404, "not_found", NULL);
    r = call(s, "DELETE", "/api/v1/runs", t.admin, NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(error_code(r.json), "method_not_allowed");
    struct tu_http_resp raw = {.headers = r.headers};
    char *allow = tu_http_header(&raw, "Allow");
    assert_string_equal(allow, "GET, HEAD, POST");
    free(allow);
    resp_free(&r);
    r = call(s, "PUT", "/api/v1/runs", t.admin, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    expect_error(s, "GET", "/api/v1/runs/1/cancel", t.operator, NULL, 405, "method_not_allowed",
                 NULL);
    r = call(s, "HEAD", "/api/v1/runs", t.viewer, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* A GET with a body (curl would make it a POST: a raw request). */
    req = fmt("GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
              "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"x\": 1}",
              t.viewer);
    assert_int_equal(raw_status(s->port, req, 5000), 400);
    free(req);

    /* Nothing of that changed anything. */
    json_t *events = all_events(s);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) assert_true(strncmp(str(e, "type"), "run.", 4) != 0);
    json_decref(events);
    wh_stop(s, SIGTERM);
}

int main(int argc, char **argv)
{
    cli_register_types();
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_token_cli, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_credentials_and_roles, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_runs, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_approvals, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_kpis_exceptions_reports, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_workflows_and_tokens, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, wh_setup, wh_teardown),
    };
    if (tu_select_test("test_api", tests, sizeof tests / sizeof tests[0], argc, argv) != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
