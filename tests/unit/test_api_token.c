/*
 * test_api_token.c - the REST API's tokens (web/api_token.h) and their store
 * (db/db_tokens.h): the token's shape, only its hash stored, checking
 * (unknown, revoked, expired), names unique among live tokens, listing
 * without secrets, the audit events; and the console's sessions
 * (db/db_sessions.h): found by hash with their token's state, expired ones
 * cleared by the next login, deleted at logout, both audited.
 * test_api_token_pg.c runs these cases
 * on PostgreSQL.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/timeutil.h"
#include "db/db.h"
#include "db/db_events.h"
#include "db/db_sessions.h"
#include "db/db_tokens.h"
#include "web/api_token.h"

/* test_api_token_pg.c defines API_TOKEN_SETUP and includes this file. */
#ifndef API_TOKEN_SETUP
#define API_TOKEN_SETUP tu_db_setup
#endif

static int setup(void **state)
{
    return API_TOKEN_SETUP(state, "apitoken");
}

static int teardown(void **state)
{
    return tu_db_teardown(state);
}

static void test_roles_and_names(void **state)
{
    (void)state;
    assert_int_equal(api_role_parse("viewer"), API_ROLE_VIEWER);
    assert_int_equal(api_role_parse("operator"), API_ROLE_OPERATOR);
    assert_int_equal(api_role_parse("admin"), API_ROLE_ADMIN);
    assert_int_equal(api_role_parse("Admin"), API_ROLE_NONE);
    assert_int_equal(api_role_parse("none"), API_ROLE_NONE);
    assert_int_equal(api_role_parse(NULL), API_ROLE_NONE);
    assert_string_equal(api_role_name(API_ROLE_OPERATOR), "operator");
    assert_true(API_ROLE_VIEWER < API_ROLE_OPERATOR && API_ROLE_OPERATOR < API_ROLE_ADMIN);
    static const char *const good[] = {"ci", "ci-bot", "a.b_c@d", "X9"};
    static const char *const bad[] = {"", "a b", "a/b", "tab\t", "ümlaut", "admin_token_file",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(api_token_name_ok(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (api_token_name_ok(bad[i]))
            fail_msg("\"%s\" accepted as a token name", bad[i]);
}

static void test_create_and_check(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    char a[API_TOKEN_LEN + 1], b[API_TOKEN_LEN + 1];
    struct db_api_token rec, got;
    int64_t now = time_now_ms();
    assert_int_equal(api_token_create(f->db, "a", API_ROLE_OPERATOR, 0, "tester", now, a, sizeof a,
                                      &rec, &err),
                     AS_OK);
    /* "assent_" and 43 base64url characters; fresh randomness each time. */
    assert_int_equal(strlen(a), API_TOKEN_LEN);
    assert_int_equal(strncmp(a, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX)), 0);
    for (const char *p = a + strlen(API_TOKEN_PREFIX); *p; p++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    assert_int_equal(api_token_create(f->db, "b", API_ROLE_VIEWER, now + 1000, "tester", now, b,
                                      sizeof b, NULL, &err),
                     AS_OK);
    assert_string_not_equal(a, b);
    /* Only the hash is kept. */
    char hash[ENCODE_SHA256_HEX_SIZE];
    assert_int_equal(encode_sha256_hex(a, strlen(a), hash), 0);
    assert_string_equal(rec.token_hash, hash);
    assert_string_equal(rec.role, "operator");
    assert_string_equal(rec.created_by, "tester");
    assert_true(rec.id > 0);

    assert_int_equal(api_token_check(f->db, a, now, &got, &err), AS_OK);
    assert_string_equal(got.name, "a");
    assert_int_equal(got.id, rec.id);
    /* Unknown: a changed character, a prefix, nothing. */
    char wrong[API_TOKEN_LEN + 1];
    memcpy(wrong, a, sizeof wrong);
    wrong[API_TOKEN_LEN - 1] = wrong[API_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(api_token_check(f->db, wrong, now, &got, &err), AS_EAUTH);
    assert_int_equal(api_token_check(f->db, API_TOKEN_PREFIX, now, &got, &err), AS_EAUTH);
    assert_int_equal(api_token_check(f->db, "", now, &got, &err), AS_EAUTH);
    /* Expired: from its expiry on. */
    assert_int_equal(api_token_check(f->db, b, now + 999, &got, &err), AS_OK);
    assert_int_equal(api_token_check(f->db, b, now + 1000, &got, &err), AS_EEXPIRED);
    assert_non_null(strstr(err.msg, "expired"));
    /* Revoked. */
    struct db_api_token rev;
    assert_int_equal(db_api_token_revoke(f->db, "a", "boss", now, &rev, &err), AS_OK);
    assert_string_equal(rev.revoked_by, "boss");
    assert_int_equal(rev.revoked_at, now);
    assert_int_equal(api_token_check(f->db, a, now, &got, &err), AS_EAUTH);
    assert_non_null(strstr(err.msg, "revoked"));
    assert_int_equal(db_api_token_revoke(f->db, "a", "boss", now, NULL, &err), AS_ENOTFOUND);

    /* Refusals when making one. */
    char c[API_TOKEN_LEN + 1];
    assert_int_equal(api_token_create(f->db, "b", API_ROLE_ADMIN, 0, "t", now, c, sizeof c, NULL,
                                      &err),
                     AS_ECONFLICT);
    assert_int_equal(api_token_create(f->db, "a b", API_ROLE_ADMIN, 0, "t", now, c, sizeof c, NULL,
                                      &err),
                     AS_EINVAL);
    assert_int_equal(api_token_create(f->db, "c", API_ROLE_NONE, 0, "t", now, c, sizeof c, NULL,
                                      &err),
                     AS_EINVAL);
    assert_int_equal(api_token_create(f->db, "c", API_ROLE_ADMIN, 0, "t", now, c, 10, NULL, &err),
                     AS_EINVAL);
    /* A revoked name is free again; the old token stays revoked. */
    assert_int_equal(api_token_create(f->db, "a", API_ROLE_ADMIN, 0, "t", now, c, sizeof c, NULL,
                                      &err),
                     AS_OK);
    assert_int_equal(api_token_check(f->db, a, now, &got, &err), AS_EAUTH);
    assert_int_equal(api_token_check(f->db, c, now, &got, &err), AS_OK);
    assert_string_equal(got.role, "admin");
}

static int count_type(void *ud, const struct db_event_info *ev)
{
    int *n = ud;
    if (strncmp(ev->type, "token.", 6) == 0)
        (*n)++;
    return 0;
}

static void test_list_and_audit(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    char t1[API_TOKEN_LEN + 1], t2[API_TOKEN_LEN + 1];
    int64_t now = time_now_ms();
    assert_int_equal(api_token_create(f->db, "one", API_ROLE_VIEWER, 0, "me", now, t1, sizeof t1,
                                      NULL, &err),
                     AS_OK);
    assert_int_equal(api_token_create(f->db, "two", API_ROLE_ADMIN, now + 5000, "me", now, t2,
                                      sizeof t2, NULL, &err),
                     AS_OK);
    assert_int_equal(db_api_token_revoke(f->db, "one", "you", now, NULL, &err), AS_OK);
    json_t *list = NULL;
    assert_int_equal(db_api_token_list(f->db, 0, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "two");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "expires_at")),
                     now + 5000);
    json_decref(list);
    assert_int_equal(db_api_token_list(f->db, 1, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 2);
    const json_t *one = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(one, "revoked_by")), "you");
    assert_true(json_is_null(json_object_get(one, "expires_at")));
    char *text = json_dumps(list, 0);
    assert_null(strstr(text, "hash"));
    assert_null(strstr(text, t1 + strlen(API_TOKEN_PREFIX)));
    free(text);
    json_decref(list);

    /* Two made, one revoked: three events, the chain intact. */
    struct db_conn *c;
    int n = 0;
    struct db_audit_report rep;
    assert_int_equal(db_read_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_events(c, 0, count_type, &n, &err), AS_OK);
    assert_int_equal(db_audit_verify(c, 0, NULL, &rep, &err), AS_OK);
    db_read_end(f->db, c);
    assert_int_equal(n, 3);
    assert_int_equal(rep.bad_id, 0);

    /* The store refuses what the schema would. */
    struct db_api_token bad = {.created_at = now};
    snprintf(bad.name, sizeof bad.name, "x");
    snprintf(bad.role, sizeof bad.role, "root");
    snprintf(bad.created_by, sizeof bad.created_by, "me");
    memset(bad.token_hash, 'a', 64);
    assert_int_equal(db_api_token_add(f->db, &bad, &err), AS_EINVAL);
}

static int count_console(void *ud, const struct db_event_info *ev)
{
    int *n = ud;
    if (strncmp(ev->type, "console.", 8) == 0)
        (*n)++;
    return 0;
}

static struct db_console_session session_of(int64_t token_id, const char *name, const char *role,
                                            char fill, int64_t now, int64_t ttl)
{
    struct db_console_session s;
    memset(&s, 0, sizeof s);
    memset(s.session_hash, fill, 64);
    s.token_id = token_id;
    snprintf(s.name, sizeof s.name, "%s", name);
    snprintf(s.role, sizeof s.role, "%s", role);
    snprintf(s.client_addr, sizeof s.client_addr, "127.0.0.1");
    snprintf(s.user_agent, sizeof s.user_agent, "test");
    s.created_at = now;
    s.expires_at = now + ttl;
    return s;
}

static void test_console_sessions(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    char tok[API_TOKEN_LEN + 1];
    struct db_api_token rec;
    int64_t now = time_now_ms();
    assert_int_equal(api_token_create(f->db, "ops", API_ROLE_OPERATOR, 0, "me", now, tok,
                                      sizeof tok, &rec, &err),
                     AS_OK);
    struct db_console_session a = session_of(rec.id, "ops", "operator", 'a', now, 60000);
    struct db_console_session b = session_of(0, "admin_token_file", "admin", 'b', now, 1000);
    assert_int_equal(db_console_session_add(f->db, &a, "token", &err), AS_OK);
    assert_int_equal(db_console_session_add(f->db, &b, "admin_token_file", &err), AS_OK);
    assert_true(a.id > 0 && b.id > a.id);

    struct db_console_session got;
    assert_int_equal(db_console_session_find(f->db, a.session_hash, &got, &err), AS_OK);
    assert_int_equal(got.id, a.id);
    assert_int_equal(got.token_id, rec.id);
    assert_string_equal(got.name, "ops");
    assert_string_equal(got.role, "operator");
    assert_int_equal(got.expires_at, now + 60000);
    assert_int_equal(got.token_gone, 0);
    assert_int_equal(got.token_revoked_at, 0);
    assert_int_equal(db_console_session_find(f->db, b.session_hash, &got, &err), AS_OK);
    assert_int_equal(got.token_id, 0);
    assert_int_equal(got.token_gone, 0);

    /* Revoking the token shows in its sessions. */
    assert_int_equal(db_api_token_revoke(f->db, "ops", "me", now + 10, NULL, &err), AS_OK);
    assert_int_equal(db_console_session_find(f->db, a.session_hash, &got, &err), AS_OK);
    assert_int_equal(got.token_revoked_at, now + 10);

    /* A later login clears the sessions that expired by then (b), not others. */
    struct db_console_session c = session_of(0, "admin_token_file", "admin", 'c', now + 2000, 1000);
    assert_int_equal(db_console_session_add(f->db, &c, "admin_token_file", &err), AS_OK);
    assert_int_equal(db_console_session_find(f->db, b.session_hash, &got, &err), AS_ENOTFOUND);
    assert_int_equal(db_console_session_find(f->db, a.session_hash, &got, &err), AS_OK);

    /* Logout deletes; a second logout finds nothing. */
    assert_int_equal(db_console_session_delete(f->db, a.session_hash, &got, &err), AS_OK);
    assert_string_equal(got.name, "ops");
    assert_int_equal(db_console_session_delete(f->db, a.session_hash, NULL, &err), AS_ENOTFOUND);
    assert_int_equal(db_console_session_find(f->db, a.session_hash, &got, &err), AS_ENOTFOUND);

    /* What the schema refuses. */
    struct db_console_session bad = session_of(0, "x", "root", 'd', now, 1000);
    assert_int_equal(db_console_session_add(f->db, &bad, "token", &err), AS_EINVAL);
    bad = session_of(0, "x", "viewer", 'd', now, 0);
    assert_int_equal(db_console_session_add(f->db, &bad, "token", &err), AS_EINVAL);

    /* Three logins, one logout, in an intact chain. */
    struct db_conn *conn;
    int n = 0;
    struct db_audit_report rep;
    assert_int_equal(db_read_begin(f->db, &conn, &err), AS_OK);
    assert_int_equal(db_run_events(conn, 0, count_console, &n, &err), AS_OK);
    assert_int_equal(db_audit_verify(conn, 0, NULL, &rep, &err), AS_OK);
    db_read_end(f->db, conn);
    assert_int_equal(n, 4);
    assert_int_equal(rep.bad_id, 0);
}

#define API_TOKEN_CASES                                                                           \
    cmocka_unit_test(test_roles_and_names),                                                       \
        cmocka_unit_test_setup_teardown(test_create_and_check, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_list_and_audit, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_console_sessions, setup, teardown)

#ifndef API_TOKEN_NO_MAIN
int main(void)
{
    const struct CMUnitTest tests[] = {API_TOKEN_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
