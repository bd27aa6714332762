/*
 * test_tenant_pg.c - the synced tenant in the PostgreSQL store, checked
 * against the SQLite store: the same sync (users with and without
 * mailboxes, mixed-case UPNs, NULLs, usage rows, legacy sign-ins, the
 * transport config) is written into both through db_tenant.h, and every
 * read must give the same rows in the same order: all users, sorted by
 * each key up and down, after a UPN (the keyset cursor: the rest of the
 * listing in order), one user by UPN (any case) or id, sign-ins with
 * each filter, the last sync.  A second sync that drops users, mailboxes
 * and old sign-ins is compared the same way.
 */
#include "tests/testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "db/db.h"
#include "db/db_tenant.h"

#define N_USERS 150
#define DAY_MS 86400000LL

struct stores {
    char *dir, *uri;
    struct db *lite, *pg;
    int64_t now;
};

static int setup(void **state)
{
    struct stores *s = calloc(1, sizeof *s);
    struct as_err err = {0};
    s->dir = tu_tmpdir("tenantpg");
    s->lite = tu_db_open(s->dir, "assent.db");
    s->uri = tu_pg_db_new("tenantpg");
    if (db_open(s->uri, "NORMAL", &s->pg, &err) != AS_OK)
        fail_msg("db_open: %s", err.msg);
    s->now = time_now_ms();
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct stores *s = *state;
    db_close(s->lite);
    db_close(s->pg);
    tu_pg_db_drop(s->uri);
    tu_rmrf(s->dir);
    free(s->dir);
    free(s);
    return 0;
}

/* A small deterministic generator (the same tenant on both stores). */
static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* A JSON boolean, or nothing (the key left out) one time in five. */
static void maybe_bool(json_t *o, const char *key, uint32_t *x)
{
    uint32_t r = next_rand(x) % 5;
    if (r)
        json_object_set_new(o, key, json_boolean(r % 2));
}

static const char *const apps[] = {"IMAP4", "POP3", "Authenticated SMTP", "Exchange ActiveSync",
                                   "imap4"};

/* Write one sync into db: users [first, last), every third without a
 * mailbox, usage for every second, sign-ins for some (one of them too old
 * to count, one without a user id). */
static void sync_into(struct db *db, int64_t now, int first, int last, int with_old)
{
    struct as_err err = {0};
    int64_t sync_id = 0;
    assert_int_equal(db_tenant_sync_start(db, now, &sync_id, &err), AS_OK);
    struct db_conn *c;
    assert_int_equal(db_write_begin(db, &c, &err), AS_OK);
    uint32_t x = 2463534242u;
    for (int i = 0; i < N_USERS; i++) {
        char id[32], upn[64], name[64], mail[64];
        snprintf(id, sizeof id, "id-%04d", (i * 37) % 1000);
        /* Mixed case, and names whose byte order differs from a dictionary's. */
        snprintf(upn, sizeof upn, "%s%03d@Example.COM", i % 4 == 0 ? "Zed" : i % 4 == 1 ? "adam" : i % 4 == 2 ? "_x" : "Bob", i);
        snprintf(name, sizeof name, "%s %d", i % 3 ? "Ann" : "ann", N_USERS - i);
        snprintf(mail, sizeof mail, "m%d@example.com", i);
        json_t *u = json_pack("{s:s, s:s}", "id", id, "userPrincipalName", upn);
        if (i % 5)
            json_object_set_new(u, "displayName", json_string(name));
        if (i % 7)
            json_object_set_new(u, "mail", json_string(mail));
        maybe_bool(u, "accountEnabled", &x);
        if (i % 6)
            json_object_set_new(u, "assignedLicenses", i % 4 ? json_pack("[{}]") : json_array());
        int in = i >= first && i < last;
        if (in)
            assert_int_equal(db_tenant_user_put(c, sync_id, now, u, &err), AS_OK);
        json_decref(u);
        if (!in || i % 3 == 0)
            continue;
        json_t *m = json_pack("{s:s, s:s}", "Identity", name, "PrimarySmtpAddress", upn);
        if (i % 2)
            json_object_set_new(m, "ExternalDirectoryObjectId", json_string(id));
        static const char *const props[] = {"ActiveSyncEnabled", "OWAEnabled", "PopEnabled",
                                            "ImapEnabled", "MAPIEnabled", "EwsEnabled",
                                            "SmtpClientAuthenticationDisabled"};
        for (int p = 0; p < 7; p++)
            maybe_bool(m, props[p], &x);
        int matched = 0;
        assert_int_equal(db_tenant_cas_put(c, sync_id, now, m, &matched, &err), AS_OK);
        assert_int_equal(matched, 1);
        json_decref(m);
        if (i % 2 == 0)
            assert_int_equal(db_tenant_usage_put(c, sync_id, now, upn, i % 4 == 0, i % 8 == 2,
                                                 i % 3 == 1, i % 5 ? "2026-11-30" : NULL,
                                                 "2026-12-01", &err),
                             AS_OK);
        for (int k = 0; k < i % 4; k++) {
            char sid[32], when[40];
            snprintf(sid, sizeof sid, "s-%d-%d", i, k);
            /* Distinct times: the newest sign-in of a user is one row. */
            time_format_iso(now - (int64_t)(i * 7 + k * 3 + 1) * 3600000LL, when, sizeof when);
            json_t *si = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i}}", "id", sid,
                                   "createdDateTime", when, "userId", id, "userPrincipalName", upn,
                                   "clientAppUsed", apps[(i + k) % 5], "appDisplayName", "Mail",
                                   "ipAddress", "192.0.2.1", "status", "errorCode", k);
            assert_int_equal(db_tenant_signin_put(c, sync_id, si, &err), AS_OK);
            json_decref(si);
        }
    }
    if (with_old) {
        char when[40];
        time_format_iso(now - 40 * DAY_MS, when, sizeof when);
        json_t *old = json_pack("{s:s, s:s, s:s, s:s}", "id", "s-old", "createdDateTime", when,
                                "userId", "id-0037", "clientAppUsed", "POP3");
        json_t *anon = json_pack("{s:s, s:s, s:s}", "id", "s-anon", "createdDateTime", when,
                                 "clientAppUsed", "IMAP4");
        assert_int_equal(db_tenant_signin_put(c, sync_id, old, &err), AS_OK);
        assert_int_equal(db_tenant_signin_put(c, sync_id, anon, &err), AS_OK);
        json_decref(old);
        json_decref(anon);
    }
    long removed = 0;
    assert_int_equal(db_tenant_users_prune(c, sync_id, &removed, &err), AS_OK);
    assert_int_equal(db_tenant_cas_prune(c, sync_id, &err), AS_OK);
    assert_int_equal(db_tenant_usage_done(c, sync_id, now, &err), AS_OK);
    assert_int_equal(db_tenant_signins_done(c, with_old ? now - 60 * DAY_MS : now - 35 * DAY_MS,
                                            now, &err),
                     AS_OK);
    json_t *transport = json_pack("{s:b, s:b, s:s}", "SmtpClientAuthenticationDisabled", first,
                                  "AllowLegacyTLSClients", 1, "Identity", "Transport");
    assert_int_equal(db_tenant_org_put_transport(c, now, transport, &err), AS_OK);
    json_decref(transport);
    assert_int_equal(db_write_end(db, AS_OK, &err), AS_OK);
    json_t *summary = json_pack("{s:i}", "users", last - first);
    assert_int_equal(db_tenant_sync_finish(db, sync_id, now + 5, "ok", summary, NULL, &err), AS_OK);
    json_decref(summary);
}

static int collect(const json_t *row, void *ud)
{
    json_array_append(ud, (json_t *)row);
    return 0;
}

/* Fail, showing the first difference, unless a and b are equal arrays. */
static void same_rows(const char *what, json_t *a, json_t *b)
{
    if (json_equal(a, b))
        return;
    size_t n = json_array_size(a) < json_array_size(b) ? json_array_size(a) : json_array_size(b);
    for (size_t i = 0; i < n; i++) {
        if (!json_equal(json_array_get(a, i), json_array_get(b, i))) {
            char *x = json_dumps(json_array_get(a, i), JSON_SORT_KEYS | JSON_COMPACT);
            char *y = json_dumps(json_array_get(b, i), JSON_SORT_KEYS | JSON_COMPACT);
            fail_msg("%s: row %zu differs:\nSQLite:     %s\nPostgreSQL: %s", what, i, x, y);
        }
    }
    fail_msg("%s: %zu rows on SQLite, %zu on PostgreSQL", what, json_array_size(a),
             json_array_size(b));
}

static void compare_reads(struct stores *s)
{
    struct as_err err = {0};
    json_t *a = json_array(), *b = json_array();
    assert_int_equal(db_tenant_users_foreach(s->lite, collect, a, &err), AS_OK);
    assert_int_equal(db_tenant_users_foreach(s->pg, collect, b, &err), AS_OK);
    assert_true(json_array_size(a) > 0);
    same_rows("users", a, b);
    json_decref(a);
    json_decref(b);

    for (const char *const *key = db_tenant_user_keys(); *key; key++) {
        for (int desc = 0; desc < 2; desc++) {
            char what[80];
            snprintf(what, sizeof what, "users by %s%s", *key, desc ? " desc" : "");
            a = json_array();
            b = json_array();
            assert_int_equal(db_tenant_users_foreach_sorted(s->lite, *key, desc, collect, a, &err),
                             AS_OK);
            if (db_tenant_users_foreach_sorted(s->pg, *key, desc, collect, b, &err) != AS_OK)
                fail_msg("%s: %s", what, err.msg);
            same_rows(what, a, b);
            json_decref(a);
            json_decref(b);
        }
    }
    assert_int_equal(db_tenant_users_foreach_sorted(s->pg, "nope", 0, collect, NULL, &err),
                     AS_EINVAL);

    /* After a UPN: the listing's tail, the same on both; nothing after the last. */
    json_t *all = json_array();
    assert_int_equal(db_tenant_users_foreach(s->lite, collect, all, &err), AS_OK);
    size_t n_all = json_array_size(all);
    static const size_t cut[] = {0, 1, 37, 0 /* the last: set below */};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        size_t at = i == 3 ? n_all - 1 : cut[i];
        char lower[256];
        snprintf(lower, sizeof lower, "%s",
                 json_string_value(json_object_get(json_array_get(all, at), "upn")));
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        a = json_array();
        b = json_array();
        assert_int_equal(db_tenant_users_foreach_after(s->lite, lower, 0, collect, a, &err), AS_OK);
        assert_int_equal(db_tenant_users_foreach_after(s->pg, lower, 0, collect, b, &err), AS_OK);
        same_rows("users after a UPN", a, b);
        assert_int_equal(json_array_size(a), n_all - at - 1);
        for (size_t k = 0; k < json_array_size(a); k++)
            assert_true(json_equal(json_array_get(a, k), json_array_get(all, at + 1 + k)));
        json_decref(a);
        json_decref(b);
        /* At most 7 of them. */
        a = json_array();
        b = json_array();
        assert_int_equal(db_tenant_users_foreach_after(s->lite, lower, 7, collect, a, &err), AS_OK);
        assert_int_equal(db_tenant_users_foreach_after(s->pg, lower, 7, collect, b, &err), AS_OK);
        same_rows("7 users after a UPN", a, b);
        assert_int_equal(json_array_size(a), n_all - at - 1 < 7 ? n_all - at - 1 : 7);
        json_decref(a);
        json_decref(b);
    }
    /* From the first: "" */
    a = json_array();
    assert_int_equal(db_tenant_users_foreach_after(s->lite, "", 0, collect, a, &err), AS_OK);
    same_rows("users after \"\"", all, a);
    json_decref(a);
    json_decref(all);

    static const char *const who[] = {"ADAM001@example.com", "id-0037", "bob003@EXAMPLE.COM",
                                      "nobody@example.com"};
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
        json_t *x = NULL, *y = NULL;
        enum as_code ra = db_tenant_user_row(s->lite, who[i], &x, &err);
        enum as_code rb = db_tenant_user_row(s->pg, who[i], &y, &err);
        assert_int_equal(ra, rb);
        assert_true(ra == AS_OK ? json_equal(x, y) : ra == AS_ENOTFOUND);
        json_decref(x);
        json_decref(y);
    }

    struct db_tenant_signin_query queries[] = {
        {0, NULL, NULL},
        {s->now - 30 * DAY_MS, NULL, NULL},
        {0, "imap4", NULL},
        {0, NULL, "ZED004@example.com"},
        {s->now - 10 * DAY_MS, "Authenticated SMTP", "bob007@example.com"},
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char what[40];
        snprintf(what, sizeof what, "sign-ins, query %zu", i);
        a = json_array();
        b = json_array();
        assert_int_equal(db_tenant_signins_foreach(s->lite, &queries[i], collect, a, &err), AS_OK);
        assert_int_equal(db_tenant_signins_foreach(s->pg, &queries[i], collect, b, &err), AS_OK);
        same_rows(what, a, b);
        json_decref(a);
        json_decref(b);
    }

    json_t *x = NULL, *y = NULL;
    assert_int_equal(db_tenant_org_transport(s->lite, &x, &err), AS_OK);
    assert_int_equal(db_tenant_org_transport(s->pg, &y, &err), AS_OK);
    assert_true(json_equal(x, y));
    json_decref(x);
    json_decref(y);
    assert_int_equal(db_tenant_last_sync(s->lite, &x, &err), AS_OK);
    assert_int_equal(db_tenant_last_sync(s->pg, &y, &err), AS_OK);
    json_object_del(x, "id"); /* ids may differ: sequences are not rolled back */
    json_object_del(y, "id");
    assert_true(json_equal(x, y));
    json_decref(x);
    json_decref(y);
    int64_t ta = 0, tb = 0;
    char sa[16], sb[16];
    assert_int_equal(db_tenant_last_completed_sync(s->lite, &ta, sa, sizeof sa, &err), AS_OK);
    assert_int_equal(db_tenant_last_completed_sync(s->pg, &tb, sb, sizeof sb, &err), AS_OK);
    assert_int_equal(ta, tb);
    assert_string_equal(sa, sb);
}

static void test_same_as_sqlite(void **state)
{
    struct stores *s = *state;
    struct as_err err = {0};
    /* Before any sync: nothing, on both. */
    json_t *none = NULL;
    assert_int_equal(db_tenant_last_sync(s->pg, &none, &err), AS_OK);
    assert_null(none);
    assert_int_equal(db_tenant_org_transport(s->pg, &none, &err), AS_OK);
    assert_null(none);

    sync_into(s->lite, s->now, 0, N_USERS, 1);
    sync_into(s->pg, s->now, 0, N_USERS, 1);
    compare_reads(s);
    /* A later sync without the first 20 and the last 10 users: they, their
     * mailboxes and the sign-ins older than 35 days are gone. */
    sync_into(s->lite, s->now + 1000, 20, N_USERS - 10, 0);
    sync_into(s->pg, s->now + 1000, 20, N_USERS - 10, 0);
    compare_reads(s);
    char *n = tu_pg_query(s->uri, "SELECT count(*) FROM tenant_users");
    assert_string_equal(n, "120");
    free(n);
    n = tu_pg_query(s->uri, "SELECT count(*) FROM tenant_signins WHERE id = 's-old'");
    assert_string_equal(n, "0");
    free(n);
}

/* Invalid rows are refused the same way. */
static void test_bad_rows(void **state)
{
    struct stores *s = *state;
    struct as_err err = {0};
    struct db_conn *c;
    assert_int_equal(db_write_begin(s->pg, &c, &err), AS_OK);
    json_t *u = json_pack("{s:s}", "id", "x");
    assert_int_equal(db_tenant_user_put(c, 1, s->now, u, &err), AS_EINVAL);
    json_decref(u);
    json_t *si = json_pack("{s:s, s:s}", "id", "x", "createdDateTime", "yesterday");
    assert_int_equal(db_tenant_signin_put(c, 1, si, &err), AS_EINVAL);
    json_decref(si);
    /* A mailbox of nobody synced: not stored, no error. */
    json_t *m = json_pack("{s:s}", "PrimarySmtpAddress", "ghost@example.com");
    int matched = 1;
    assert_int_equal(db_tenant_cas_put(c, 1, s->now, m, &matched, &err), AS_OK);
    assert_int_equal(matched, 0);
    json_decref(m);
    assert_int_equal(db_write_end(s->pg, AS_OK, &err), AS_OK);
    json_t *row = NULL;
    assert_int_equal(db_tenant_user_row(s->pg, "ghost@example.com", &row, &err), AS_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_as_sqlite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
