/* test_mail_db.c - the idempotency record of emails (db/db_mail.c): the
 * sending -> sent|failed state machine, crash re-sends, live senders, the
 * re-send limit. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_mail.h"

static int alive_answer;

static int fake_alive(const char *owner, void *ud)
{
    (void)ud;
    assert_non_null(owner);
    return alive_answer;
}

/* test_mail_db_pg.c runs these cases on PostgreSQL: it defines
 * MAIL_DB_SETUP and includes this file. */
#ifndef MAIL_DB_SETUP
#define MAIL_DB_SETUP tu_db_setup
#endif

static int setup(void **state)
{
    return MAIL_DB_SETUP(state, "maildb");
}

static int teardown(void **state)
{
    return tu_db_teardown(state);
}

static enum db_mail_action claim(struct db *db, const char *key, const char *id, int64_t now,
                                 struct db_mail_claim *c)
{
    struct as_err err = {0};
    assert_int_equal(db_mail_claim(db, key, id, "smtp", now, "host:1:aa", now, now + 1000, 2,
                                   fake_alive, NULL, c, &err),
                     AS_OK);
    return c->action;
}

static void test_state_machine(void **state)
{
    struct tu_db_fixture *f = *state;
    struct db_mail_claim c;
    struct as_err err = {0};
    json_t *row = NULL;

    /* First claim: send, recorded as sending. */
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 1000, &c), DB_MAIL_SEND);
    assert_string_equal(c.message_id, "<id1@x>");
    assert_int_equal(c.date_ms, 1000);
    assert_int_equal(c.attempts, 1);
    db_mail_claim_clear(&c);
    assert_int_equal(db_mail_get(f->db, "k1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sending");
    assert_string_equal(json_string_value(json_object_get(row, "owner")), "host:1:aa");
    json_decref(row);

    /* A failure is recorded; the next claim sends again with a new Date. */
    assert_int_equal(db_mail_finish(f->db, "k1", "failed", NULL, "421 try later", 1100, &err), AS_OK);
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 2000, &c), DB_MAIL_SEND);
    assert_int_equal(c.attempts, 2);
    assert_int_equal(c.date_ms, 2000);
    db_mail_claim_clear(&c);

    /* While a live owner holds the lease: busy. */
    alive_answer = 1;
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 2500, &c), DB_MAIL_BUSY);
    assert_int_equal(c.lease_until, 3000);
    db_mail_claim_clear(&c);

    /* Owner gone: re-send the same message (stored id and Date), once per crash. */
    alive_answer = 0;
    assert_int_equal(claim(f->db, "k1", "<other@x>", 2600, &c), DB_MAIL_RESEND);
    assert_string_equal(c.message_id, "<id1@x>");
    assert_int_equal(c.date_ms, 2000);
    assert_int_equal(c.resends, 1);
    assert_int_equal(c.attempts, 3);
    db_mail_claim_clear(&c);

    /* A live owner whose lease ran out is treated as gone too. */
    alive_answer = 1;
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 1000000, &c), DB_MAIL_RESEND);
    assert_int_equal(c.resends, 2);
    db_mail_claim_clear(&c);

    /* After max_resends (2) crash re-sends: give up rather than loop. */
    alive_answer = 0;
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 2000000, &c), DB_MAIL_GIVEUP);
    db_mail_claim_clear(&c);

    /* Sent: every later claim returns the stored result and sends nothing. */
    json_t *res = json_pack("{s:s, s:[{s:s, s:i}]}", "message_id", "<id1@x>", "recipients",
                            "address", "a@x", "code", 250);
    assert_int_equal(db_mail_finish(f->db, "k1", "sent", res, NULL, 2000001, &err), AS_OK);
    assert_int_equal(claim(f->db, "k1", "<id1@x>", 3000000, &c), DB_MAIL_DONE);
    assert_true(json_equal(c.result, res));
    db_mail_claim_clear(&c);
    json_decref(res);
    assert_int_equal(db_mail_get(f->db, "k1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sent");
    assert_true(json_is_null(json_object_get(row, "owner")));
    assert_int_equal(json_integer_value(json_object_get(row, "resends")), 2);
    json_decref(row);

    /* Unknown keys. */
    assert_int_equal(db_mail_finish(f->db, "nope", "sent", NULL, NULL, 1, &err), AS_ENOTFOUND);
    assert_int_equal(db_mail_get(f->db, "nope", &row, &err), AS_ENOTFOUND);
    assert_int_equal(db_mail_step_source(f->db, 42, "x", &row, &(char *){NULL}, &err), AS_ENOTFOUND);
}

#define MAIL_DB_CASES cmocka_unit_test_setup_teardown(test_state_machine, setup, teardown)

#ifndef MAIL_DB_NO_MAIN
int main(void)
{
    const struct CMUnitTest tests[] = {MAIL_DB_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
