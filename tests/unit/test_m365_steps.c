/*
 * test_m365_steps.c - the Microsoft 365 step types called directly (as the
 * executor does) against the tenant simulator: manage_cas (diff, verify,
 * dry run, expected-state and approval-hash refusals, run-time lockout
 * refusal, retry hint on throttling), manage_transport, cas_lookup
 * (not_found outcome), graph_users (bounded), and the validate hooks.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_kpi.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/diag.h"
#include "base/timeutil.h"
#include "m365/m365.h"
#include "engine/step.h"
#include "tests/m365_testutil.h"
#include "cli/cli.h"

extern const struct step_type step_type_manage_cas, step_type_manage_transport,
    step_type_cas_lookup, step_type_graph_users;

static char *g_dir;
static struct mt_sim g_sim;
static struct config *g_cfg;
static struct app g_app;

static int setup(void **state)
{
    (void)state;
    struct as_err err = {0};
    g_dir = tu_tmpdir("m365s");
    if (mt_sim_start(&g_sim, g_dir, "t", 300, 9, NULL, NULL, NULL) != 0)
        return -1;
    g_cfg = config_defaults();
    const char *kv[][2] = {
        {"tenant_id", g_sim.tenant},       {"client_id", g_sim.client_id},
        {"login_url", g_sim.url},          {"graph_url", g_sim.url},
        {"exchange_url", g_sim.url},       {"client_secret_file", g_sim.secret_path},
        {"m365_max_attempts", "3"},        {"m365_backoff_initial_ms", "10"},
        {"m365_backoff_max_ms", "5000"},   {"http_timeout_seconds", "5"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (config_set(g_cfg, kv[i][0], kv[i][1], &err) != AS_OK)
            return -1;
    g_app.cfg = g_cfg;
    g_app.db = tu_db_open(g_dir, "steps.db");
    return g_app.db ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    m365_thread_release();
    mt_sim_stop(&g_sim);
    config_free(g_cfg);
    db_close(g_app.db);
    tu_rmrf(g_dir);
    free(g_dir);
    return 0;
}

struct run {
    struct step_ctx ctx;
    struct step_result res;
    json_t *params;
};

static void run_step(struct run *r, const struct step_type *t, const char *params_json, int dry)
{
    memset(r, 0, sizeof *r);
    r->params = json_loads(params_json, 0, NULL);
    assert_non_null(r->params);
    r->ctx.app = &g_app;
    r->ctx.step_name = "s";
    r->ctx.workflow = "w";
    r->ctx.attempt = 1;
    r->ctx.max_attempts = 3;
    r->ctx.timeout_ms = 30000;
    r->ctx.now_ms = time_now_ms();
    r->ctx.dry_run = dry;
    r->ctx.params = r->params;
    r->ctx.events = json_array();
    t->execute(&r->ctx, &r->res);
}

static void run_free(struct run *r)
{
    json_decref(r->params);
    json_decref(r->ctx.events);
    json_decref(r->res.output);
    json_decref(r->res.wait_state);
}

static const char *user_with(json_t *st, const char *prop, int value)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mb = json_object_get(u, "mailbox");
        if (json_is_object(mb) && json_is_boolean(json_object_get(mb, prop)) &&
            json_is_true(json_object_get(mb, prop)) == value &&
            !json_is_true(json_object_get(mb, "SmtpClientAuthenticationDisabled")))
            return json_string_value(json_object_get(u, "userPrincipalName"));
    }
    return NULL;
}

static void test_manage_cas(void **state)
{
    (void)state;
    json_t *st = mt_sim_state(&g_sim);
    char upn[256], params[1024];
    snprintf(upn, sizeof upn, "%s", user_with(st, "PopEnabled", 1));
    json_decref(st);
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"PopEnabled\": false, "
             "\"SmtpClientAuthenticationDisabled\": true}}", upn);
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);
    struct run r;

    /* Dry run: the command and an event, no write. */
    run_step(&r, &step_type_manage_cas, params, 1);
    assert_int_equal(r.res.status, STEP_OK);
    json_t *cmd = json_object_get(r.res.output, "command");
    assert_non_null(strstr(json_string_value(cmd), "Set-CASMailbox -Identity '"));
    assert_non_null(strstr(json_string_value(cmd), "-PopEnabled $false -SmtpClientAuthenticationDisabled $true"));
    assert_true(json_is_true(json_object_get(r.res.output, "dry_run")));
    json_t *ev = json_array_get(r.ctx.events, 0);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "m365.dry_run");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "data"), "cmdlet")),
                        "Set-CASMailbox");
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets);
    run_free(&r);

    /* For real: before/after/changed, one write. */
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    json_t *out = r.res.output;
    assert_true(json_is_true(json_object_get(json_object_get(out, "before"), "PopEnabled")));
    assert_true(json_is_false(json_object_get(json_object_get(out, "after"), "PopEnabled")));
    assert_true(json_is_true(json_object_get(json_object_get(out, "after"), "SmtpClientAuthenticationDisabled")));
    assert_int_equal(json_array_size(json_object_get(out, "changed")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.ctx.events, 0), "type")), "m365.write");
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);
    run_free(&r);

    /* A retry (same request again) is a no-op. */
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_int_equal(json_array_size(json_object_get(r.res.output, "changed")), 0);
    assert_true(json_is_null(json_object_get(r.res.output, "command")));
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);
    run_free(&r);

    /* expect: the mailbox no longer has the value the request was based on,
     * and not the requested one either: the change would mean something else. */
    st = mt_sim_state(&g_sim);
    char upn2[256];
    snprintf(upn2, sizeof upn2, "%s", user_with(st, "ImapEnabled", 1));
    json_decref(st);
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"SmtpClientAuthenticationDisabled\": true},"
             " \"expect\": {\"SmtpClientAuthenticationDisabled\": \"not-what-it-is\"}}", upn2);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, "changed since the request was made"));
    assert_non_null(strstr(r.res.error, "nothing was changed"));
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);
    run_free(&r);

    /* approved_hash of another request. */
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"ImapEnabled\": false}, \"approved_hash\": \"%064d\"}",
             upn2, 7);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, "not the one that was approved"));
    run_free(&r);

    /* Lockout refused at run time too (a resolved template could hide it). */
    snprintf(params, sizeof params, "{\"identity\": \"%s\", \"settings\": {\"OWAEnabled\": false}}", upn2);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, "allow_lockout"));
    run_free(&r);

    /* Unknown mailbox: a permanent failure with the service's words. */
    run_step(&r, &step_type_manage_cas,
             "{\"identity\": \"ghost@contoso.com\", \"settings\": {\"PopEnabled\": false}}", 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, "ManagementObjectNotFoundException"));
    run_free(&r);

    /* Throttled past the step's time: STEP_RETRY at the time the service asked. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"cmdlet\":\"Get-CASMailbox\",\"retry_after\":\"4\"}]");
    snprintf(params, sizeof params, "{\"identity\": \"%s\", \"settings\": {\"ImapEnabled\": false}}", upn2);
    memset(&r, 0, sizeof r);
    r.params = json_loads(params, 0, NULL);
    r.ctx.app = &g_app;
    r.ctx.timeout_ms = 2500;
    r.ctx.params = r.params;
    r.ctx.events = json_array();
    int64_t t0 = time_now_ms();
    step_type_manage_cas.execute(&r.ctx, &r.res);
    assert_int_equal(r.res.status, STEP_RETRY);
    assert_true(r.res.wait_until_ms >= t0 + 4000);
    assert_non_null(strstr(r.res.error, "429"));
    run_free(&r);

    /* Throttled once, with all the time in the world: still no sleep in the
     * worker.  The step returns at once for the engine to retry it durably
     * at the time asked (a sleeping client would have waited 2 s and then
     * succeeded, the fault being for one request only). */
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"cmdlet\":\"Get-CASMailbox\",\"count\":1,"
                          "\"retry_after\":\"2\"}]");
    memset(&r, 0, sizeof r);
    r.params = json_loads(params, 0, NULL);
    r.ctx.app = &g_app;
    r.ctx.timeout_ms = 600000;
    r.ctx.params = r.params;
    r.ctx.events = json_array();
    t0 = time_now_ms();
    step_type_manage_cas.execute(&r.ctx, &r.res);
    assert_int_equal(r.res.status, STEP_RETRY);
    assert_true(r.res.wait_until_ms >= t0 + 2000);
    assert_non_null(strstr(r.res.error, "the step is tried again in 2000 ms"));
    run_free(&r);
    mt_sim_faults(&g_sim, "[]");
}

static void test_transport_lookup_users(void **state)
{
    (void)state;
    struct run r;
    /* The generated org already has SMTP AUTH off: nothing to do. */
    run_step(&r, &step_type_manage_transport, "{\"settings\": {\"SmtpClientAuthenticationDisabled\": true}}", 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_int_equal(json_array_size(json_object_get(r.res.output, "changed")), 0);
    assert_true(json_is_null(json_object_get(r.res.output, "identity")));
    run_free(&r);
    run_step(&r, &step_type_manage_transport, "{\"settings\": {\"AllowLegacyTLSClients\": true}}", 1);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(json_string_value(json_object_get(r.res.output, "command")),
                        "Set-TransportConfig -AllowLegacyTLSClients $true");
    run_free(&r);

    run_step(&r, &step_type_cas_lookup, "{\"identity\": \"ghost@contoso.com\"}", 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "not_found");
    assert_true(json_is_false(json_object_get(r.res.output, "found")));
    run_free(&r);
    json_t *st = mt_sim_state(&g_sim);
    char params[512];
    snprintf(params, sizeof params, "{\"identity\": \"%s\"}", user_with(st, "PopEnabled", 0));
    json_decref(st);
    run_step(&r, &step_type_cas_lookup, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_string_equal(r.res.outcome, "");
    assert_true(json_is_false(json_object_get(json_object_get(r.res.output, "settings"), "PopEnabled")));
    run_free(&r);

    run_step(&r, &step_type_graph_users, "{\"max\": 50}", 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_int_equal(json_integer_value(json_object_get(r.res.output, "count")), 50);
    assert_true(json_is_true(json_object_get(r.res.output, "truncated")));
    assert_non_null(json_object_get(json_array_get(json_object_get(r.res.output, "users"), 0), "userPrincipalName"));
    run_free(&r);
    /* The simulator has no $filter on users: the service's error, permanent. */
    run_step(&r, &step_type_graph_users, "{\"filter\": \"accountEnabled eq true\"}", 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, "Request_UnsupportedQuery"));
    run_free(&r);
}

static void test_validate_hooks(void **state)
{
    (void)state;
    struct diag_list d = {0};
    json_t *p = json_loads("{\"identity\": \"x\", \"settings\": {\"OWAEnabled\": false, "
                           "\"MAPIEnabled\": \"${input.mapi}\", \"popenabled\": false, "
                           "\"PopEnabled\": 1, \"SmtpClientAuthenticationDisabled\": null}}",
                           0, NULL);
    step_type_manage_cas.validate(p, "$.steps.s.params", &d);
    int lockout = 0, warn = 0, unknown = 0, badval = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (!strcmp(d.items[i].code, "LOCKOUT_RISK") && d.items[i].severity == DIAG_ERROR) {
            lockout++;
            assert_string_equal(d.items[i].path, "$.steps.s.params.settings.OWAEnabled");
        }
        if (!strcmp(d.items[i].code, "LOCKOUT_RISK") && d.items[i].severity == DIAG_WARNING)
            warn++;
        if (!strcmp(d.items[i].code, "UNKNOWN_CAS_PROPERTY")) {
            unknown++;
            assert_non_null(strstr(d.items[i].msg, "did you mean \"PopEnabled\""));
        }
        if (!strcmp(d.items[i].code, "BAD_PARAM_VALUE"))
            badval++;
    }
    assert_int_equal(lockout, 1);
    assert_int_equal(warn, 1);
    assert_int_equal(unknown, 1);
    assert_int_equal(badval, 1);
    diag_free(&d);
    json_object_set_new(p, "allow_lockout", json_true());
    json_object_del(json_object_get(p, "settings"), "popenabled");
    json_object_set_new(json_object_get(p, "settings"), "PopEnabled", json_false());
    step_type_manage_cas.validate(p, "$.steps.s.params", &d);
    assert_int_equal(diag_errors(&d), 0);
    assert_int_equal(d.n, 0);
    diag_free(&d);
    json_decref(p);

    p = json_loads("{\"settings\": {\"SmtpAuth\": true}}", 0, NULL);
    step_type_manage_transport.validate(p, "$.steps.t.params", &d);
    assert_int_equal(diag_errors(&d), 1);
    assert_string_equal(d.items[0].code, "UNKNOWN_TRANSPORT_PROPERTY");
    diag_free(&d);
    json_decref(p);
}

static void add_exception(const char *upn, const char *protocols)
{
    struct as_err err = {0};
    int64_t now = time_now_ms(), id;
    struct db_exception ex = {.upn = upn, .protocols = protocols, .reason = "scanner",
                              .granted_by = "owner@example.com", .created_at = now,
                              .expires_at = now + 86400000};
    assert_int_equal(db_exception_add(g_app.db, &ex, &id, NULL, &err), AS_OK);
}

static int has_event(const json_t *events, const char *type)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) if (!strcmp(json_string_value(json_object_get(e, "type")), type))
        return 1;
    return 0;
}

/* Issue "act on the tenant as it is now": exceptions granted after the
 * approval are honoured at the moment of the change, and the re-check
 * before asking sees what is still on. */
static void test_recheck_exceptions(void **state)
{
    (void)state;
    json_t *st = mt_sim_state(&g_sim);
    char a[256], b[256], params[1024];
    snprintf(a, sizeof a, "%s", user_with(st, "PopEnabled", 1));
    json_decref(st);
    struct run r;
    /* SMTP AUTH explicitly on for a (turning a protocol on is never skipped). */
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"SmtpClientAuthenticationDisabled\": false}}", a);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    run_free(&r);
    add_exception(a, "[\"smtp\"]");

    /* Before asking: POP is still on and not exempt; SMTP is exempt now. */
    snprintf(params, sizeof params, "{\"identity\": \"%s\", \"protocols\": [\"pop\", \"smtp\"]}", a);
    run_step(&r, &step_type_cas_lookup, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    json_t *out = r.res.output;
    assert_int_equal(json_array_size(json_object_get(out, "still_on")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "still_on"), 0)), "pop");
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "exempt_now"), 0)), "smtp");
    assert_string_equal(json_string_value(json_object_get(out, "still_on_text")), "POP");
    assert_true(json_is_false(json_object_get(json_object_get(out, "cas_settings"), "PopEnabled")));
    assert_null(json_object_get(json_object_get(out, "cas_settings"), "SmtpClientAuthenticationDisabled"));
    assert_true(json_is_true(json_object_get(json_object_get(out, "current"), "PopEnabled")));
    assert_true(json_is_false(json_object_get(out, "nothing_left")));
    run_free(&r);

    /* At the change: the approved request still names SMTP; it is left out. */
    long sets = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"PopEnabled\": false, "
             "\"SmtpClientAuthenticationDisabled\": true}}", a);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    out = r.res.output;
    assert_int_equal(json_array_size(json_object_get(out, "skipped_exempt")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "skipped_exempt"), 0)), "smtp");
    assert_int_equal(json_array_size(json_object_get(out, "changed")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "changed"), 0)), "PopEnabled");
    assert_null(strstr(json_string_value(json_object_get(out, "command")), "Smtp"));
    assert_true(json_is_false(json_object_get(json_object_get(out, "after"), "SmtpClientAuthenticationDisabled")));
    assert_true(has_event(r.ctx.events, "m365.skipped_exempt"));
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);
    run_free(&r);

    /* Nothing left to check or change for a now. */
    snprintf(params, sizeof params, "{\"identity\": \"%s\", \"protocols\": \"pop,smtp\"}", a);
    run_step(&r, &step_type_cas_lookup, params, 0);
    assert_true(json_is_true(json_object_get(r.res.output, "nothing_left")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.res.output, "already_off"), 0)), "pop");
    run_free(&r);

    /* Exempt from everything: the step succeeds with changed [] and writes nothing. */
    st = mt_sim_state(&g_sim);
    snprintf(b, sizeof b, "%s", user_with(st, "ImapEnabled", 1));
    json_decref(st);
    add_exception(b, "[\"all\"]");
    snprintf(params, sizeof params, "{\"identity\": \"%s\", \"settings\": {\"ImapEnabled\": false}}", b);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_int_equal(json_array_size(json_object_get(r.res.output, "changed")), 0);
    assert_true(json_is_null(json_object_get(r.res.output, "command")));
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets + 1);
    run_free(&r);

    /* The organisation switch: a (exempt for smtp) follows the organisation. */
    run_step(&r, &step_type_manage_transport, "{\"settings\": {\"SmtpClientAuthenticationDisabled\": false}}", 0);
    assert_int_equal(r.res.status, STEP_OK);
    run_free(&r);
    snprintf(params, sizeof params,
             "{\"identity\": \"%s\", \"settings\": {\"SmtpClientAuthenticationDisabled\": null}}", a);
    run_step(&r, &step_type_manage_cas, params, 0);
    assert_int_equal(r.res.status, STEP_OK);
    run_free(&r);
    long tsets = mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0);
    run_step(&r, &step_type_manage_transport, "{\"settings\": {\"SmtpClientAuthenticationDisabled\": true}}", 0);
    assert_int_equal(r.res.status, STEP_FAILED);
    assert_non_null(strstr(r.res.error, a));
    assert_non_null(strstr(r.res.error, "nothing was changed"));
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0), tsets);
    run_free(&r);
    run_step(&r, &step_type_manage_transport,
             "{\"settings\": {\"SmtpClientAuthenticationDisabled\": true}, \"allow_exempt_inheriting\": true}", 0);
    assert_int_equal(r.res.status, STEP_OK);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-TransportConfig", 0), tsets + 1);
    run_free(&r);
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manage_cas),
        cmocka_unit_test(test_transport_lookup_users),
        cmocka_unit_test(test_validate_hooks),
        cmocka_unit_test(test_recheck_exceptions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
