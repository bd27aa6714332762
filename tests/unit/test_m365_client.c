/*
 * test_m365_client.c - the Microsoft 365 client against the tenant simulator
 * over real HTTP: token flows (secret, certificate PS256/RS256, refusals,
 * refresh on 401 and on expiry), Graph and Exchange calls with paging and
 * request shapes, the usage report (redirect, BOM, concealment), sign-ins
 * (filter, P1 licence), sendMail, and every injected fault.  Results are
 * compared with the simulator's state file, read independently here.
 */
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "base/timeutil.h"
#include "m365/m365.h"
#include "tests/m365_testutil.h"

#define N_USERS 2100 /* three Graph pages of 999, three Exchange pages of 1000 */

static char *g_dir;
static struct mt_sim g_sim;   /* the main tenant, certificate registered */
static struct mt_sim g_small; /* no P1 licence, concealed report names, 4 s tokens */
static char *g_cert, *g_key;

/* -------------------------------------------------------------- set-up */

static void edit_small(json_t *st)
{
    json_object_set_new(json_object_get(st, "tenant"), "premium", json_false());
    json_object_set_new(st, "report_settings", json_pack("{s:b}", "displayConcealedNames", 1));
}

static int setup(void **state)
{
    (void)state;
    g_dir = tu_tmpdir("m365c");
    if (mt_make_cert(g_dir, 0600, &g_cert, &g_key) != 0)
        return -1;
    if (mt_sim_start(&g_sim, g_dir, "main", N_USERS, 11, g_cert, NULL, NULL) != 0)
        return -1;
    static const char *const small_extra[] = {"--token-lifetime", "4", NULL};
    if (mt_sim_start(&g_small, g_dir, "small", 60, 5, NULL, edit_small, small_extra) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mt_sim_stop(&g_sim);
    mt_sim_stop(&g_small);
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_cert);
    free(g_key);
    return 0;
}

/* A configuration for sim s; secret (1) or certificate (0). */
static struct config *make_cfg(const struct mt_sim *s, int secret)
{
    struct config *cfg = config_defaults();
    struct as_err err = {0};
    const char *kv[][2] = {
        {"tenant_id", s->tenant},
        {"client_id", s->client_id},
        {"login_url", s->url},
        {"graph_url", s->url},
        {"exchange_url", s->url},
        {"http_timeout_seconds", "2"},
        {"http_connect_timeout_seconds", "2"},
        {"m365_max_attempts", "4"},
        {"m365_backoff_initial_ms", "10"},
        {"m365_backoff_max_ms", "2000"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        assert_int_equal(config_set(cfg, kv[i][0], kv[i][1], &err), AS_OK);
    if (secret) {
        assert_int_equal(config_set(cfg, "client_secret_file", s->secret_path, &err), AS_OK);
    } else {
        assert_int_equal(config_set(cfg, "client_cert_file", g_cert, &err), AS_OK);
        assert_int_equal(config_set(cfg, "client_key_file", g_key, &err), AS_OK);
    }
    return cfg;
}

static struct m365 *client(struct config *cfg)
{
    struct m365 *m = NULL;
    struct as_err err = {0};
    assert_int_equal(m365_new(cfg, &m, &err), AS_OK);
    return m;
}

/* ------------------------------------------------------- collectors */

struct ids {
    json_t *seen; /* key -> item */
    long pages;
    const char *key;
};

static enum as_code collect(const json_t *item, void *ud, struct as_err *err)
{
    struct ids *c = ud;
    if (!item) {
        c->pages++;
        return AS_OK;
    }
    const char *k = json_string_value(json_object_get(item, c->key));
    if (!k)
        return as_errf(err, AS_EINVAL, "item without %s", c->key);
    json_object_set(c->seen, k, (json_t *)item);
    return AS_OK;
}

static long state_mailboxes(json_t *st)
{
    long n = 0;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u) n += json_is_object(json_object_get(u, "mailbox"));
    return n;
}

/* --------------------------------------------------------------- tests */

static void test_users_secret_paging(void **state)
{
    (void)state;
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    struct as_err err = {0};
    struct ids c = {.seen = json_object(), .key = "id"};
    json_t *mt_stats0 = mt_sim_admin(&g_sim, "DELETE", "/_sim/stats", NULL);
    json_decref(mt_stats0);

    assert_int_equal(m365_users_list(m, NULL, collect, &c, &err), AS_OK);
    assert_int_equal(json_object_size(c.seen), N_USERS);
    assert_int_equal(c.pages, 3);
    assert_int_equal(mt_sim_count(&g_sim, "graph.users", 0), 3);
    /* Every user of the state file, with the selected properties. */
    json_t *st = mt_sim_state(&g_sim);
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *got = json_object_get(c.seen, json_string_value(json_object_get(u, "id")));
        assert_non_null(got);
        assert_true(json_equal(json_object_get(got, "userPrincipalName"),
                               json_object_get(u, "userPrincipalName")));
        assert_true(json_equal(json_object_get(got, "accountEnabled"),
                               json_object_get(u, "accountEnabled")));
        assert_non_null(json_object_get(got, "assignedLicenses"));
        assert_null(json_object_get(got, "jobTitle")); /* $select honoured */
    }
    long long n = 0;
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    assert_int_equal(n, N_USERS);

    struct m365_stats ms;
    m365_get_stats(m, &ms);
    assert_int_equal(ms.token_requests, 1); /* one cached Graph token */
    json_decref(st);
    json_decref(c.seen);
    m365_free(m);
    config_free(cfg);
}

static void test_certificate_tokens(void **state)
{
    (void)state;
    struct as_err err = {0};
    for (int alg = 0; alg < 2; alg++) {
        struct config *cfg = make_cfg(&g_sim, 0);
        assert_int_equal(config_set(cfg, "client_assertion_alg", alg ? "RS256" : "PS256", &err),
                         AS_OK);
        struct m365 *m = client(cfg);
        long long n = 0;
        assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
        assert_int_equal(n, N_USERS);
        json_t *tc = NULL;
        assert_int_equal(m365_transport_get(m, &tc, &err), AS_OK); /* the Exchange token too */
        json_decref(tc);
        struct m365_stats ms;
        m365_get_stats(m, &ms);
        assert_int_equal(ms.token_requests, 2);
        m365_free(m);
        config_free(cfg);
    }
}

static void test_credentials_refused(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct m365 *m = NULL;

    /* A wrong secret: 401 invalid_client, and the secret is not in the message. */
    char *bad = tu_path(g_dir, "bad.secret");
    tu_write_file(bad, "not-the-secret-value-42");
    chmod(bad, 0600);
    struct config *cfg = make_cfg(&g_sim, 1);
    assert_int_equal(config_set(cfg, "client_secret_file", bad, &err), AS_OK);
    m = client(cfg);
    long long n;
    assert_int_equal(m365_users_count(m, &n, &err), AS_EAUTH);
    assert_non_null(strstr(err.msg, "invalid_client"));
    assert_non_null(strstr(err.msg, "AADSTS7000215"));
    assert_null(strstr(err.msg, "not-the-secret-value-42"));
    m365_free(m);

    /* A secret file others can read is refused before any request. */
    chmod(bad, 0644);
    assert_int_equal(m365_new(cfg, &m, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "bad.secret"));
    config_free(cfg);

    /* A certificate the app does not have. */
    char *other = tu_path(g_dir, "other");
    mkdir(other, 0700);
    char *c2, *k2;
    assert_int_equal(mt_make_cert(other, 0600, &c2, &k2), 0);
    cfg = make_cfg(&g_sim, 0);
    assert_int_equal(config_set(cfg, "client_cert_file", c2, &err), AS_OK);
    assert_int_equal(config_set(cfg, "client_key_file", k2, &err), AS_OK);
    m = client(cfg);
    assert_int_equal(m365_users_count(m, &n, &err), AS_EAUTH);
    assert_non_null(strstr(err.msg, "invalid_client"));
    m365_free(m);
    config_free(cfg);

    /* Nothing configured. */
    cfg = config_defaults();
    assert_int_equal(m365_new(cfg, &m, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "ASSENT_TENANT_ID"));
    config_free(cfg);
    free(c2);
    free(k2);
    free(other);
    free(bad);
}

static void test_token_refresh(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    long long n;
    json_t *tc = NULL;
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    assert_int_equal(m365_transport_get(m, &tc, &err), AS_OK);
    json_decref(tc);
    /* A 401 as for an expired token: one new token each, and the calls succeed. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"expired_token\",\"path\":\"/v1.0/users\",\"count\":1},"
                          "{\"kind\":\"expired_token\",\"cmdlet\":\"Get-TransportConfig\",\"count\":1}]");
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    assert_int_equal(m365_transport_get(m, &tc, &err), AS_OK);
    json_decref(tc);
    struct m365_stats ms;
    m365_get_stats(m, &ms);
    assert_int_equal(ms.token_requests, 4);
    /* A token refused again after the refresh is an error, not a loop. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"expired_token\",\"path\":\"/v1.0/users\"}]");
    assert_int_equal(m365_users_count(m, &n, &err), AS_EAUTH);
    assert_non_null(strstr(err.msg, "401"));
    mt_sim_faults(&g_sim, "[]");
    m365_free(m);
    config_free(cfg);

    /* Expiry by time: tokens of the small tenant live 4 s (refreshed after 3). */
    cfg = make_cfg(&g_small, 1);
    m = client(cfg);
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.token_requests, 1);
    tu_sleep_ms(3300);
    assert_int_equal(m365_users_count(m, &n, &err), AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.token_requests, 2);
    m365_free(m);
    config_free(cfg);
}

static void test_exchange_cas(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    json_t *st = mt_sim_state(&g_sim);
    json_t *z = mt_sim_admin(&g_sim, "DELETE", "/_sim/stats", NULL);
    json_decref(z);

    struct ids c = {.seen = json_object(), .key = "ExternalDirectoryObjectId"};
    assert_int_equal(m365_cas_list(m, collect, &c, &err), AS_OK);
    assert_int_equal((long)json_object_size(c.seen), state_mailboxes(st));
    assert_int_equal(c.pages, 3);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Get-CASMailbox", 0), 3);
    const char *k;
    json_t *v, *mbx;
    json_object_foreach(c.seen, k, mbx)
    {
        const char *key;
        json_object_foreach(mbx, key, v) assert_null(strchr(key, '@')); /* annotations gone */
    }
    /* The values match the state, user by user. */
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *sm = json_object_get(u, "mailbox");
        if (!json_is_object(sm))
            continue;
        json_t *got = json_object_get(c.seen, json_string_value(json_object_get(u, "id")));
        assert_non_null(got);
        static const char *const props[] = {"PopEnabled", "ImapEnabled", "ActiveSyncEnabled",
                                            "EwsEnabled", "SmtpClientAuthenticationDisabled"};
        for (int p = 0; p < 5; p++)
            assert_true(json_equal(json_object_get(got, props[p]), json_object_get(sm, props[p])));
    }

    /* One mailbox by UPN; an unknown one maps to AS_ENOTFOUND with the service's words. */
    json_t *first = json_array_get(json_object_get(st, "users"), 0);
    const char *upn = json_string_value(json_object_get(first, "userPrincipalName"));
    json_t *one = NULL;
    if (json_is_object(json_object_get(first, "mailbox"))) {
        assert_int_equal(m365_cas_get(m, upn, &one, &err), AS_OK);
        assert_true(json_equal(json_object_get(one, "PopEnabled"),
                               json_object_get(json_object_get(first, "mailbox"), "PopEnabled")));
        json_decref(one);
    }
    assert_int_equal(m365_cas_get(m, "nobody@contoso.com", &one, &err), AS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "ManagementObjectNotFoundException"));
    assert_non_null(strstr(err.msg, "request-id"));
    assert_non_null(strstr(err.msg, "nobody@contoso.com"));
    json_decref(st);
    json_decref(c.seen);
    m365_free(m);
    config_free(cfg);
}

/* First user of the state with a mailbox where prop is `value`. */
static const char *pick_user(json_t *st, const char *prop, int value)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        json_t *mb = json_object_get(u, "mailbox");
        if (json_is_object(mb) && json_is_boolean(json_object_get(mb, prop)) &&
            json_is_true(json_object_get(mb, prop)) == value)
            return json_string_value(json_object_get(u, "userPrincipalName"));
    }
    return NULL;
}

static void test_cas_set_and_transport(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    json_t *st = mt_sim_state(&g_sim);
    char upn[256];
    snprintf(upn, sizeof upn, "%s", pick_user(st, "PopEnabled", 1));
    json_decref(st);

    long sets0 = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);
    json_t *settings = json_pack("{s:b, s:b, s:b}", "PopEnabled", 0, "ImapEnabled", 0,
                                 "SmtpClientAuthenticationDisabled", 1);
    json_t *warnings = NULL;
    assert_int_equal(m365_cas_set(m, upn, settings, &warnings, &err), AS_OK);
    json_decref(warnings);
    st = mt_sim_state(&g_sim);
    json_t *mb = json_object_get(mt_state_user(st, upn), "mailbox");
    assert_true(json_is_false(json_object_get(mb, "PopEnabled")));
    assert_true(json_is_false(json_object_get(mb, "ImapEnabled")));
    assert_true(json_is_true(json_object_get(mb, "SmtpClientAuthenticationDisabled")));
    json_decref(st);
    /* The same again: the service says nothing changed. */
    assert_int_equal(m365_cas_set(m, upn, settings, &warnings, &err), AS_OK);
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)), "no settings"));
    json_decref(warnings);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets0 + 2);
    /* null resets SMTP AUTH to the organisation's setting. */
    json_t *reset = json_pack("{s:n}", "SmtpClientAuthenticationDisabled");
    assert_int_equal(m365_cas_set(m, upn, reset, NULL, &err), AS_OK);
    st = mt_sim_state(&g_sim);
    mb = json_object_get(mt_state_user(st, upn), "mailbox");
    assert_true(json_is_null(json_object_get(mb, "SmtpClientAuthenticationDisabled")));
    json_decref(st);
    /* A bad value is the service's 400 with its exception name. */
    json_t *bad = json_pack("{s:s}", "PopEnabled", "maybe");
    assert_int_equal(m365_cas_set(m, upn, bad, NULL, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "Exception"));
    json_decref(bad);

    /* Transport config. */
    json_t *tc = NULL;
    assert_int_equal(m365_transport_get(m, &tc, &err), AS_OK);
    assert_true(json_is_true(json_object_get(tc, "SmtpClientAuthenticationDisabled")));
    json_t *was = json_incref(json_object_get(tc, "AllowLegacyTLSClients"));
    json_decref(tc);
    json_t *t = json_pack("{s:b}", "AllowLegacyTLSClients", 1);
    assert_int_equal(m365_transport_set(m, t, NULL, &err), AS_OK);
    st = mt_sim_state(&g_sim);
    assert_true(json_is_true(
        json_object_get(json_object_get(st, "transport_config"), "AllowLegacyTLSClients")));
    json_decref(st);
    json_object_set(t, "AllowLegacyTLSClients", was);
    assert_int_equal(m365_transport_set(m, t, NULL, &err), AS_OK);
    json_decref(was);
    json_decref(t);
    json_decref(reset);
    json_decref(settings);
    m365_free(m);
    config_free(cfg);
}

struct usage_rows {
    json_t *rows; /* upn -> [pop3, imap4, smtp] */
};

static enum as_code usage_cb(const struct m365_usage_row *row, void *ud, struct as_err *err)
{
    struct usage_rows *u = ud;
    json_object_set_new(u->rows, row->upn, json_pack("[b,b,b]", row->pop3, row->imap4, row->smtp));
    return AS_OK;
}

static int cell_used(json_t *usage, const char *col)
{
    const char *s = json_string_value(json_object_get(usage, col));
    return s && *s;
}

static void test_usage_report(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    struct usage_rows u = {.rows = json_object()};
    int concealed = -1;
    assert_int_equal(m365_report_settings(m, &concealed, &err), AS_OK);
    assert_int_equal(concealed, 0);
    assert_int_equal(m365_usage_report(m, "D30", usage_cb, &u, &concealed, &err), AS_OK);
    assert_int_equal(concealed, 0);
    json_t *st = mt_sim_state(&g_sim);
    long n = 0, used = 0;
    size_t i;
    json_t *usr;
    json_array_foreach(json_object_get(st, "users"), i, usr)
    {
        json_t *usage = json_object_get(usr, "usage");
        if (!json_is_object(usage))
            continue;
        n++;
        json_t *got = json_object_get(u.rows, json_string_value(json_object_get(usr, "userPrincipalName")));
        assert_non_null(got);
        assert_int_equal(json_is_true(json_array_get(got, 0)), cell_used(usage, "POP3 App"));
        assert_int_equal(json_is_true(json_array_get(got, 1)), cell_used(usage, "IMAP4 App"));
        assert_int_equal(json_is_true(json_array_get(got, 2)), cell_used(usage, "SMTP App"));
        used += cell_used(usage, "POP3 App");
    }
    assert_int_equal((long)json_object_size(u.rows), n);
    assert_true(used > 0); /* the generated tenant has POP3 users: the test can fail */
    json_decref(st);
    json_decref(u.rows);
    m365_free(m);
    config_free(cfg);

    /* Concealed names: the settings say so, and the report itself is refused. */
    cfg = make_cfg(&g_small, 1);
    m = client(cfg);
    u.rows = json_object();
    assert_int_equal(m365_report_settings(m, &concealed, &err), AS_OK);
    assert_int_equal(concealed, 1);
    assert_int_equal(m365_usage_report(m, "D30", usage_cb, &u, &concealed, &err), AS_EPERMANENT);
    assert_int_equal(concealed, 1);
    assert_int_equal(json_object_size(u.rows), 0); /* nothing joined */
    assert_non_null(strstr(err.msg, "Display concealed user, group, and site names"));
    assert_non_null(strstr(err.msg, "admin/reportSettings"));
    json_decref(u.rows);
    m365_free(m);
    config_free(cfg);
}

static enum as_code signin_cb(const json_t *item, void *ud, struct as_err *err)
{
    if (item)
        json_object_set((json_t *)ud, json_string_value(json_object_get(item, "id")), (json_t *)item);
    return AS_OK;
}

static void test_signins(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    int64_t since = time_now_ms() - 30LL * 86400000;
    json_t *got = json_object();
    assert_int_equal(m365_signins_legacy(m, since, NULL, signin_cb, got, &err), AS_OK);
    /* Independently from the state: legacy client (any casing), in the window. */
    json_t *st = mt_sim_state(&g_sim);
    long want = 0, want_imap = 0;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(st, "sign_ins"), i, s)
    {
        const char *app = json_string_value(json_object_get(s, "clientAppUsed"));
        int64_t t;
        assert_int_equal(time_parse_iso(json_string_value(json_object_get(s, "createdDateTime")), &t), AS_OK);
        if (t < since || !strcasecmp(app, "Browser") || !strcasecmp(app, "Mobile Apps and Desktop clients"))
            continue;
        /* Values outside the documented list are legacy too but cannot be asked for by name. */
        int documented = 0;
        for (size_t k = 0; m365_legacy_client_apps[k]; k++)
            documented |= !strcasecmp(app, m365_legacy_client_apps[k]);
        if (!documented)
            continue;
        want++;
        want_imap += !strcasecmp(app, "IMAP4");
        assert_non_null(json_object_get(got, json_string_value(json_object_get(s, "id"))));
    }
    assert_int_equal((long)json_object_size(got), want);
    assert_true(want_imap > 0);
    json_decref(got);
    got = json_object();
    assert_int_equal(m365_signins_legacy(m, since, "imap4", signin_cb, got, &err), AS_OK);
    assert_int_equal((long)json_object_size(got), want_imap);
    json_decref(got);
    json_decref(st);
    m365_free(m);
    config_free(cfg);

    /* No Entra ID P1: a clear AS_EUNSUPPORTED. */
    cfg = make_cfg(&g_small, 1);
    m = client(cfg);
    got = json_object();
    assert_int_equal(m365_signins_legacy(m, since, NULL, signin_cb, got, &err), AS_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "P1"));
    assert_non_null(strstr(err.msg, "Authentication_RequestFromNonPremiumTenantOrB2CTenant"));
    json_decref(got);
    m365_free(m);
    config_free(cfg);
}

static void test_send_mail(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    json_t *st = mt_sim_state(&g_sim);
    char sender[256];
    snprintf(sender, sizeof sender, "%s", pick_user(st, "OWAEnabled", 1));
    json_decref(st);
    json_t *msg = json_pack("{s:s, s:{s:s, s:s}, s:[{s:{s:s}}]}", "subject", "Legacy protocol report",
                            "body", "contentType", "Text", "content", "hello", "toRecipients",
                            "emailAddress", "address", "admin@contoso.com");
    assert_int_equal(m365_send_mail(m, sender, msg, 0, &err), AS_OK);
    json_t *sent = mt_sim_admin(&g_sim, "GET", "/_sim/sent_mail", NULL);
    json_t *last = json_array_get(sent, json_array_size(sent) - 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "message"), "subject")),
                        "Legacy protocol report");
    assert_true(json_is_false(json_object_get(last, "saveToSentItems")));
    json_decref(sent);
    assert_int_equal(m365_send_mail(m, "nobody@contoso.com", msg, 0, &err), AS_ENOTFOUND);
    assert_non_null(strstr(err.msg, "ErrorInvalidUser"));
    json_decref(msg);
    m365_free(m);
    config_free(cfg);
}

/* ---------------------------------------------------------------- faults */

static void count_users(struct m365 *m, enum as_code want)
{
    long long n = 0;
    struct as_err err = {0};
    enum as_code rc = m365_users_count(m, &n, &err);
    if (rc != want)
        fail_msg("users count: %s (%s)", as_strerror(rc), err.msg);
    if (!rc)
        assert_int_equal(n, N_USERS);
}

static void test_faults_survived(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    struct m365_stats ms;
    count_users(m, AS_OK); /* token cached */

    /* 429 with Retry-After in seconds, decimal seconds and as an HTTP-date. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"path\":\"/v1.0/users\",\"count\":1,\"retry_after\":\"1\"}]");
    count_users(m, AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.retry_after_honoured, 1);
    assert_int_equal(ms.last_retry_after_ms, 1000);
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"path\":\"/v1.0/users\",\"count\":1,\"retry_after\":\"0.25\"}]");
    count_users(m, AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.last_retry_after_ms, 250);
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"path\":\"/v1.0/users\",\"count\":1,\"retry_after\":\"date\",\"retry_after_s\":1}]");
    count_users(m, AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.retry_after_honoured, 3);
    assert_true(ms.last_retry_after_ms > 0 && ms.last_retry_after_ms <= 3000);

    /* 503, 504, 500, a dropped connection, a slow answer (past the 2 s timeout),
     * a truncated body: each once, each survived by a retry. */
    static const char *const once[] = {
        "[{\"kind\":\"503\",\"path\":\"/v1.0/users\",\"count\":1,\"retry_after\":\"none\"}]",
        "[{\"kind\":\"504\",\"path\":\"/v1.0/users\",\"count\":1}]",
        "[{\"kind\":\"500\",\"path\":\"/v1.0/users\",\"count\":1}]",
        "[{\"kind\":\"drop\",\"path\":\"/v1.0/users\",\"count\":1}]",
        "[{\"kind\":\"slow\",\"path\":\"/v1.0/users\",\"count\":1,\"delay_ms\":3500}]",
        "[{\"kind\":\"malformed\",\"path\":\"/v1.0/users\",\"count\":1}]",
    };
    static const char *const kinds[] = {"503", "504", "500", "drop", "slow", "malformed"};
    for (size_t i = 0; i < sizeof once / sizeof once[0]; i++) {
        long before, fired = mt_sim_count(&g_sim, kinds[i], 1);
        m365_get_stats(m, &ms);
        before = ms.retries;
        mt_sim_faults(&g_sim, once[i]);
        count_users(m, AS_OK);
        m365_get_stats(m, &ms);
        assert_int_equal(mt_sim_count(&g_sim, kinds[i], 1), fired + 1);
        /* A dropped kept-alive connection is re-sent by libcurl itself (a read:
         * safe); everything else is one retry of ours. */
        if (ms.retries != before + (strcmp(kinds[i], "drop") ? 1 : 0) &&
            !(strcmp(kinds[i], "drop") == 0 && ms.retries == before + 1))
            fail_msg("fault %s: %ld retries", once[i], ms.retries - before);
    }
    /* The same on Exchange: a slow page of Get-CASMailbox, a dropped Get-TransportConfig. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"drop\",\"cmdlet\":\"Get-TransportConfig\",\"count\":1},"
                          "{\"kind\":\"503\",\"cmdlet\":\"Get-CASMailbox\",\"count\":1,\"after\":1}]");
    json_t *tc = NULL;
    assert_int_equal(m365_transport_get(m, &tc, &err), AS_OK);
    json_decref(tc);
    struct ids c = {.seen = json_object(), .key = "ExternalDirectoryObjectId"};
    assert_int_equal(m365_cas_list(m, collect, &c, &err), AS_OK);
    json_t *st = mt_sim_state(&g_sim);
    assert_int_equal((long)json_object_size(c.seen), state_mailboxes(st)); /* no page lost */
    json_decref(st);
    json_decref(c.seen);
    mt_sim_faults(&g_sim, "[]");
    m365_free(m);
    config_free(cfg);
}

static void test_faults_reported(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    assert_int_equal(config_set(cfg, "m365_max_attempts", "3", &err), AS_OK);
    struct m365 *m = client(cfg);
    int concealed;
    json_t *tc = NULL;

    /* Always malformed: a clear error after the attempts. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"malformed\",\"path\":\"/v1.0/admin/reportSettings\"}]");
    assert_int_equal(m365_report_settings(m, &concealed, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "malformed JSON"));
    assert_non_null(strstr(err.msg, "3 attempts"));
    /* Always 503. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"503\",\"path\":\"/v1.0/users\",\"retry_after\":\"none\"}]");
    long long n;
    assert_int_equal(m365_users_count(m, &n, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "503"));
    assert_non_null(strstr(err.msg, "serviceNotAvailable"));
    assert_non_null(strstr(err.msg, "request-id"));
    /* Exchange's 403 of NUL bytes. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"nul403\",\"cmdlet\":\"Get-TransportConfig\",\"body_len\":512}]");
    assert_int_equal(m365_transport_get(m, &tc, &err), AS_EAUTH);
    assert_non_null(strstr(err.msg, "512 NUL bytes"));
    assert_non_null(strstr(err.msg, "Exchange Administrator"));
    /* A deadline: a long Retry-After is not slept through; the hint says when. */
    mt_sim_faults(&g_sim, "[{\"kind\":\"429\",\"path\":\"/v1.0/users\",\"retry_after\":\"2\"}]");
    m365_set_deadline(m, time_mono_ms() + 500);
    int64_t t0 = time_mono_ms();
    assert_int_equal(m365_users_count(m, &n, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "deadline"));
    assert_int_equal(m365_retry_hint_ms(m), 2000);
    assert_true(time_mono_ms() - t0 < 2000); /* did not sleep the 2 s (bounded, not a benchmark) */
    m365_set_deadline(m, 0);
    mt_sim_faults(&g_sim, "[]");
    m365_free(m);
    config_free(cfg);
}

static void test_write_reread(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct config *cfg = make_cfg(&g_sim, 1);
    struct m365 *m = client(cfg);
    json_t *st = mt_sim_state(&g_sim);
    char upn[256], upn2[256];
    snprintf(upn, sizeof upn, "%s", pick_user(st, "ImapEnabled", 1));
    json_decref(st);
    struct m365_stats ms;

    /* The write is applied but its answer comes after the client's timeout:
     * the re-read shows it in place, so it is not sent again. */
    long sets0 = mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0);
    mt_sim_faults(&g_sim, "[{\"kind\":\"write_timeout\",\"cmdlet\":\"Set-CASMailbox\",\"count\":1,\"delay_ms\":4000}]");
    json_t *settings = json_pack("{s:b}", "ImapEnabled", 0);
    assert_int_equal(m365_cas_set(m, upn, settings, NULL, &err), AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.write_rereads, 1);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets0 + 1); /* no double write */
    st = mt_sim_state(&g_sim);
    assert_true(json_is_false(json_object_get(json_object_get(mt_state_user(st, upn), "mailbox"), "ImapEnabled")));

    /* The connection drops before anything is done: the re-read shows the
     * change missing, so the write is sent again. */
    snprintf(upn2, sizeof upn2, "%s", pick_user(st, "ImapEnabled", 1));
    json_decref(st);
    mt_sim_faults(&g_sim, "[{\"kind\":\"drop\",\"cmdlet\":\"Set-CASMailbox\",\"count\":1}]");
    assert_int_equal(m365_cas_set(m, upn2, settings, NULL, &err), AS_OK);
    m365_get_stats(m, &ms);
    assert_int_equal(ms.write_rereads, 2);
    assert_int_equal(mt_sim_count(&g_sim, "exo.Set-CASMailbox", 0), sets0 + 3);
    st = mt_sim_state(&g_sim);
    assert_true(json_is_false(json_object_get(json_object_get(mt_state_user(st, upn2), "mailbox"), "ImapEnabled")));
    json_decref(st);

    /* sendMail is never repeated after an ambiguous failure. */
    long mails0 = mt_sim_count(&g_sim, "graph.sendMail", 0);
    mt_sim_faults(&g_sim, "[{\"kind\":\"write_timeout\",\"endpoint\":\"graph.sendMail\",\"count\":1,\"delay_ms\":4000}]");
    json_t *msg = json_pack("{s:s, s:{s:s, s:s}, s:[{s:{s:s}}]}", "subject", "once", "body",
                            "contentType", "Text", "content", "x", "toRecipients", "emailAddress",
                            "address", "a@contoso.com");
    assert_int_equal(m365_send_mail(m, upn, msg, 0, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "may have acted"));
    assert_int_equal(mt_sim_count(&g_sim, "graph.sendMail", 0), mails0 + 1);
    mt_sim_faults(&g_sim, "[]");
    json_decref(msg);
    json_decref(settings);
    m365_free(m);
    config_free(cfg);
}

/* ------------------------------------------------ request-shape capture */

struct capture {
    int fd, port, n;
    const char *responses[4];
    char *requests[4];
    pthread_t th;
};

static void *capture_main(void *arg)
{
    struct capture *c = arg;
    for (int i = 0; i < c->n; i++) {
        int s = accept(c->fd, NULL, NULL);
        if (s < 0)
            break;
        size_t cap = 65536, len = 0;
        char *buf = calloc(1, cap);
        long want = -1;
        for (;;) {
            ssize_t r = recv(s, buf + len, cap - len - 1, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            char *end = strstr(buf, "\r\n\r\n");
            if (end && want < 0) {
                char *cl = strcasestr(buf, "\r\nContent-Length:");
                want = (long)(end + 4 - buf) + (cl && cl < end ? strtol(cl + 17, NULL, 10) : 0);
            }
            if (want >= 0 && (long)len >= want)
                break;
        }
        c->requests[i] = buf;
        ssize_t w = send(s, c->responses[i], strlen(c->responses[i]), MSG_NOSIGNAL);
        (void)w;
        close(s);
    }
    return NULL;
}

static void capture_start(struct capture *c)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(c->fd, 4), 0);
    getsockname(c->fd, (struct sockaddr *)&a, &al);
    c->port = ntohs(a.sin_port);
    pthread_create(&c->th, NULL, capture_main, c);
}

static void capture_stop(struct capture *c)
{
    pthread_join(c->th, NULL);
    close(c->fd);
}

static void capture_free(struct capture *c)
{
    for (int i = 0; i < 4; i++)
        free(c->requests[i]);
}

static void test_request_shapes(void **state)
{
    (void)state;
    struct as_err err = {0};
    char r302[256], url[64];
    struct capture c = {.n = 2};
    capture_start(&c);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", c.port);
    snprintf(r302, sizeof r302,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/data/download/abc?sig=1\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n", c.port);
    c.responses[0] = r302;
    c.responses[1] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        "\xEF\xBB\xBFReport Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,"
        "Last Activity Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For Mobile,"
        "Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report Period\r\n"
        "2026-11-21,a@contoso.com,\"Adams, A\",False,,2026-11-20,,,,,,,Undetermined,,,30\r\n"
        "2026-11-21,b@contoso.com,B,False,,,,,,,,,,,\"16.0, x\",30\r\n";
    struct config *cfg = make_cfg(&g_sim, 1);
    assert_int_equal(config_set(cfg, "graph_url", url, &err), AS_OK);
    struct m365 *m = client(cfg);
    struct usage_rows u = {.rows = json_object()};
    int concealed;
    assert_int_equal(m365_usage_report(m, "D30", usage_cb, &u, &concealed, &err), AS_OK);
    capture_stop(&c);
    assert_non_null(strstr(c.requests[0], "GET /v1.0/reports/getEmailAppUsageUserDetail(period='D30') HTTP/1.1\r\n"));
    assert_non_null(strcasestr(c.requests[0], "\r\nAuthorization: Bearer sim."));
    assert_non_null(strstr(c.requests[1], "GET /data/download/abc?sig=1 HTTP/1.1\r\n"));
    assert_null(strcasestr(c.requests[1], "Authorization")); /* never to the download host */
    assert_int_equal(json_object_size(u.rows), 2);
    json_t *a = json_object_get(u.rows, "a@contoso.com"); /* BOM stripped: header found */
    assert_true(json_is_true(json_array_get(a, 0)) && json_is_false(json_array_get(a, 2)));
    json_t *b = json_object_get(u.rows, "b@contoso.com");
    assert_true(json_is_false(json_array_get(b, 0)) && json_is_true(json_array_get(b, 2)));
    json_decref(u.rows);
    capture_free(&c);
    m365_free(m);
    config_free(cfg);

    /* Exchange: endpoint, headers, body; annotations removed; a nextLink to
     * another host is refused (the token must not follow it). */
    struct capture e = {.n = 1};
    capture_start(&e);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", e.port);
    e.responses[0] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        "{\"value\":[{\"Identity\":\"x\",\"PopEnabled@odata.type\":\"#Boolean\",\"PopEnabled\":true}],"
        "\"@odata.nextLink\":\"http://elsewhere.example/adminapi/beta/t/InvokeCommand?$skiptoken=1\"}";
    cfg = make_cfg(&g_sim, 1);
    assert_int_equal(config_set(cfg, "exchange_url", url, &err), AS_OK);
    m = client(cfg);
    struct ids ids = {.seen = json_object(), .key = "Identity"};
    json_t *params = json_pack("{s:s}", "Identity", "x@contoso.com");
    assert_int_equal(m365_exo_invoke(m, "Get-CASMailbox", params, "Identity,PopEnabled", collect,
                                     &ids, NULL, &err),
                     AS_EPERMANENT);
    capture_stop(&e);
    assert_non_null(strstr(err.msg, "refusing to follow @odata.nextLink"));
    char line[256];
    snprintf(line, sizeof line, "POST /adminapi/beta/%s/InvokeCommand?$select=Identity,PopEnabled HTTP/1.1\r\n",
             g_sim.tenant);
    assert_non_null(strstr(e.requests[0], line));
    assert_non_null(strcasestr(e.requests[0], "\r\nAuthorization: Bearer sim."));
    assert_non_null(strcasestr(e.requests[0], "\r\nContent-Type: application/json"));
    assert_non_null(strcasestr(e.requests[0], "\r\nX-ResponseFormat: json\r\n"));
    assert_non_null(strcasestr(e.requests[0], "\r\nPrefer: odata.maxpagesize=1000\r\n"));
    snprintf(line, sizeof line,
             "\r\nX-AnchorMailbox: APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@%s\r\n",
             g_sim.tenant);
    assert_non_null(strcasestr(e.requests[0], line));
    assert_non_null(strstr(e.requests[0], "\r\n\r\n{\"CmdletInput\":{\"CmdletName\":\"Get-CASMailbox\","
                                          "\"Parameters\":{\"Identity\":\"x@contoso.com\"}}}"));
    json_t *x = json_object_get(ids.seen, "x");
    assert_non_null(x);
    assert_true(json_is_true(json_object_get(x, "PopEnabled")));
    assert_null(json_object_get(x, "PopEnabled@odata.type"));
    json_decref(params);
    json_decref(ids.seen);
    capture_free(&e);
    m365_free(m);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_secret_paging), cmocka_unit_test(test_certificate_tokens),
        cmocka_unit_test(test_credentials_refused), cmocka_unit_test(test_token_refresh),
        cmocka_unit_test(test_exchange_cas),        cmocka_unit_test(test_cas_set_and_transport),
        cmocka_unit_test(test_usage_report),        cmocka_unit_test(test_signins),
        cmocka_unit_test(test_send_mail),           cmocka_unit_test(test_faults_survived),
        cmocka_unit_test(test_faults_reported),     cmocka_unit_test(test_write_reread),
        cmocka_unit_test(test_request_shapes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
