/*
 * test_kpi.c - KPI storage and history, exceptions (expiry, removal,
 * per-protocol exemption), evaluation over injected report rows, triggers
 * (one run per row, dedupe, max_open, preview, input mapping), the
 * exception step, and the scheduler's catch-up after downtime.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_kpi.h"
#include "db/db_runs.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "base/config.h"
#include "m365/kpi.h"
#include "m365/scheduler.h"
#include "base/timeutil.h"
#include "m365/trigger.h"
#include "engine/step.h"
#include "cli/cli.h"

#define DAY_MS 86400000LL

/* test_kpi_pg.c runs these cases on PostgreSQL: it defines KPI_APP_FIXTURE
 * and includes this file. */
#ifndef KPI_APP_FIXTURE
#define KPI_APP_FIXTURE tu_app_fixture_new
#endif

static int setup(void **state)
{
    *state = KPI_APP_FIXTURE("kpi");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tu_app_fixture_free(*state);
    return 0;
}

/* ---- an injected report: a JSON array of rows ---- */

static json_t *g_rows;

static enum as_code rows_source(struct app *app, const char *report, kpi_row_cb cb, void *ud,
                                struct as_err *err)
{
    size_t i;
    json_t *row;
    json_array_foreach(g_rows, i, row)
    {
        if (cb(ud, row))
            break;
    }
    return AS_OK;
}

static json_t *user(const char *upn, int pop, int imap, int smtp_disabled, int pop30, int imap30)
{
    return json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:i}", "upn", upn,
                     "display_name", upn, "pop_enabled", pop, "imap_enabled", imap,
                     "smtp_client_auth_disabled", smtp_disabled, "activesync_enabled", 1,
                     "ews_enabled", 1, "pop3_30d", pop30, "imap4_30d", imap30, "smtp_30d", 0,
                     "account_enabled", 1, "legacy_signins_30d", 0);
}

static struct kpi *compile(const char *json_text)
{
    struct as_err err = {0};
    json_t *in = json_loads(json_text, 0, NULL);
    assert_non_null(in);
    json_t *def = NULL;
    if (kpi_def_normalize(in, &def, &err) != AS_OK)
        fail_msg("normalize: %s", err.msg);
    struct kpi *k = NULL;
    assert_int_equal(kpi_compile(def, &k, &err), AS_OK);
    json_decref(def);
    json_decref(in);
    return k;
}

static void add_exception(struct app *app, const char *upn, const char *protocols, int64_t expires,
                          int64_t *id)
{
    struct as_err err = {0};
    struct db_exception ex = {.upn = upn, .protocols = protocols, .reason = "needs it",
                              .granted_by = "boss@example.com", .created_at = time_now_ms(),
                              .expires_at = expires};
    assert_int_equal(db_exception_add(app->db, &ex, id, NULL, &err), AS_OK);
}

struct collected {
    json_t *upns;
    json_t *rows; /* upn -> row as handed on */
};

static int collect(void *ud, json_t *row)
{
    struct collected *c = ud;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    json_array_append_new(c->upns, json_string(upn));
    if (c->rows)
        json_object_set(c->rows, upn, row);
    return 0;
}

static int has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* ---- tests ---- */

static void test_definitions(void **state)
{
    (void)state;
    struct as_err err = {0};
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"filter\": \"true\"}", "name is required"},
        {"{\"name\": \"a b\", \"filter\": \"true\"}", "name is required"},
        {"{\"name\": \"x\"}", "filter is required"},
        {"{\"name\": \"x\", \"filter\": \"pop_enabled ||\"}", "filter"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"colour\": 1}", "unknown key \"colour\""},
        {"{\"name\": \"x\", \"filter\": \"true\", \"report\": \"mailboxes\"}", "report must be"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"protocols\": [\"pop\", \"fax\"]}", "unknown protocol \"fax\""},
        {"{\"name\": \"x\", \"filter\": \"true\", \"schedule\": {\"cron\": \"61 * * * *\"}}", "minute: 61"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"schedule\": {\"cron\": \"0 * * * *\", \"timezone\": \"Mars/Base\"}}", "unknown time zone"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"trigger\": {\"input\": {}}}", "trigger.workflow"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"trigger\": {\"workflow\": \"w.json\", \"max_open\": -1}}", "max_open"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"trigger\": {\"workflow\": \"w.json\", \"input\": {\"a\": \"${row.\"}}}", "trigger.input"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"deadline\": \"soon\"}", "deadline.date"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"deadline\": {\"date\": \"2026-09-30\", \"target\": -1}}", "deadline.target"},
        {"{\"name\": \"x\", \"filter\": \"true\", \"deadline\": {\"date\": \"2026-09-30\", \"by\": 1}}", "unknown key \"by\""},
        {"{\"name\": \"x\", \"filter\": \"true\", \"deadline\": 3}", "deadline must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_loads(bad[i].json, 0, NULL), *out = NULL;
        assert_non_null(in);
        assert_int_not_equal(kpi_def_normalize(in, &out, &err), AS_OK);
        if (!strstr(err.msg, bad[i].needle))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].needle);
        assert_null(out);
        json_decref(in);
    }
    /* Defaults are filled in. */
    json_t *in = json_loads("{\"name\": \"x\", \"filter\": \"pop_enabled\", \"schedule\": \"@daily\"}", 0, NULL);
    json_t *out = NULL;
    assert_int_equal(kpi_def_normalize(in, &out, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(out, "report")), "users");
    assert_int_equal(json_array_size(json_object_get(out, "protocols")), 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "schedule"), "timezone")), "UTC");
    json_decref(in);
    json_decref(out);
    /* A deadline: a bare date becomes {"date", "target": 0, "at"}, due at the
     * end of that day (UTC); normalizing
     * the result again gives the same. */
    in = json_loads("{\"name\": \"x\", \"filter\": \"true\", \"deadline\": \"2026-09-30\"}", 0, NULL);
    assert_int_equal(kpi_def_normalize(in, &out, &err), AS_OK);
    const json_t *dl = json_object_get(out, "deadline");
    assert_string_equal(json_string_value(json_object_get(dl, "date")), "2026-09-30");
    assert_int_equal(json_integer_value(json_object_get(dl, "target")), 0);
    assert_int_equal(json_integer_value(json_object_get(dl, "at")), 1790812800000LL); /* the end of that day */
    json_t *again = NULL;
    assert_int_equal(kpi_def_normalize(out, &again, &err), AS_OK);
    assert_true(json_equal(out, again));
    json_decref(again);
    json_decref(in);
    json_decref(out);
}

static void test_storage_and_history(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    int64_t id = 0, id2 = 0;
    assert_int_equal(db_kpi_put(f->app.db, "k1", "users", "{\"name\":\"k1\",\"filter\":\"true\"}",
                                NULL, NULL, 0, 1000, &id, &err), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "k1", "users", "{}", NULL, NULL, 0, 1000, &id2, &err),
                     AS_ECONFLICT);
    for (int i = 0; i < 5; i++)
        assert_int_equal(db_kpi_value_add(f->app.db, id, 2000 + i, 10 - i, i, NULL, &err), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "k1", "users", "{\"name\":\"k1\",\"filter\":\"false\"}",
                                "0 * * * *", "UTC", 1, 3000, &id2, &err), AS_OK);
    assert_int_equal(id2, id); /* replaced in place: history kept */
    json_t *vals = NULL;
    assert_int_equal(db_kpi_values(f->app.db, id, 3, &vals, &err), AS_OK);
    assert_int_equal(json_array_size(vals), 3);
    /* Oldest first among the last three. */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vals, 0), "value")), 8);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vals, 2), "value")), 6);
    json_decref(vals);
    json_t *list = NULL;
    assert_int_equal(db_kpi_list(f->app.db, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *k = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(k, "last_value")), 6);
    assert_string_equal(json_string_value(json_object_get(k, "schedule")), "0 * * * *");
    /* A new schedule counts as handled up to its creation. */
    assert_int_equal(json_integer_value(json_object_get(k, "sched_last_for")), 3000);
    json_decref(list);
    assert_int_equal(db_kpi_delete(f->app.db, "k1", &err), AS_OK);
    assert_int_equal(db_kpi_delete(f->app.db, "k1", &err), AS_ENOTFOUND);
    assert_int_equal(db_kpi_values(f->app.db, id, 0, &vals, &err), AS_OK);
    assert_int_equal(json_array_size(vals), 0); /* history went with it */
    json_decref(vals);
    char spark[64];
    int64_t series[] = {1, 2, 3, 4, 5, 6, 7, 8};
    kpi_sparkline(series, 8, spark, sizeof spark);
    assert_string_equal(spark, "▁▂▃▄▅▆▇█");
    int64_t down[] = {40, 30, 20, 10, 0};
    kpi_sparkline(down, 5, spark, sizeof spark);
    assert_string_equal(spark, "█▆▄▂▁");
}

struct audit_seen {
    int added, removed;
    char last_removed[512];
};

static int audit_collect(void *ud, const struct db_event_info *ev)
{
    struct audit_seen *s = ud;
    if (strcmp(ev->type, "exception.added") == 0)
        s->added++;
    if (strcmp(ev->type, "exception.removed") == 0) {
        s->removed++;
        snprintf(s->last_removed, sizeof s->last_removed, "%s", ev->data);
    }
    return 0;
}

static void test_exceptions(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    int64_t now = time_now_ms(), a, b, c, again;
    add_exception(&f->app, "Alice@Example.com", "[\"pop\"]", now + DAY_MS, &a);
    add_exception(&f->app, "bob@example.com", "[\"all\"]", now - 1, &b); /* expired already */
    add_exception(&f->app, "carol@example.com", "[\"imap\"]", now + DAY_MS, &c);
    json_t *list = NULL;
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ACTIVE, NULL, now, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_EXPIRED, NULL, now, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")), "expired");
    json_decref(list);
    /* Case-insensitive by user. */
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ALL, "alice@EXAMPLE.com", now, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    /* Time passes: Alice's expires by itself. */
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ACTIVE, NULL, now + 2 * DAY_MS, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(db_exception_remove(f->app.db, c, "admin", NULL, now, &err), AS_OK);
    assert_int_equal(db_exception_remove(f->app.db, c, "admin", NULL, now, &err), AS_ENOTFOUND);
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_REMOVED, NULL, now, &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "removed_by")), "admin");
    json_decref(list);
    /* Every add and the removal are in the audit chain, naming the user. */
    struct audit_seen seen = {0};
    struct db_conn *rc_conn;
    assert_int_equal(db_read_begin(f->app.db, &rc_conn, &err), AS_OK);
    assert_int_equal(db_run_events(rc_conn, 0, audit_collect, &seen, &err), AS_OK);
    db_read_end(f->app.db, rc_conn);
    assert_int_equal(seen.added, 3);
    assert_int_equal(seen.removed, 1);
    assert_non_null(strstr(seen.last_removed, "\"user\":\"carol@example.com\""));
    /* Idempotent by source key. */
    struct db_exception ex = {.upn = "dave@example.com", .protocols = "[\"smtp\"]", .reason = "r",
                              .granted_by = "g", .created_at = now, .expires_at = now + DAY_MS,
                              .source = "run:7", .source_key = "inst/run-7/reject/1"};
    int created = -1;
    assert_int_equal(db_exception_add(f->app.db, &ex, &a, &created, &err), AS_OK);
    assert_int_equal(created, 1);
    assert_int_equal(db_exception_add(f->app.db, &ex, &again, &created, &err), AS_OK);
    assert_int_equal(created, 0);
    assert_int_equal(again, a);
    /* Reason and granted_by are required. */
    ex.source_key = NULL;
    ex.reason = "";
    assert_int_equal(db_exception_add(f->app.db, &ex, &a, NULL, &err), AS_EINVAL);
}

static void test_eval_exemptions(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    int64_t now = time_now_ms(), id;
    g_rows = json_array();
    json_array_append_new(g_rows, user("clean@example.com", 0, 0, 1, 0, 0));
    json_array_append_new(g_rows, user("pop-only@example.com", 1, 0, 1, 1, 0));
    json_array_append_new(g_rows, user("pop-imap@example.com", 1, 1, 1, 0, 1));
    json_array_append_new(g_rows, user("smtp@example.com", 0, 0, 0, 0, 0));
    json_array_append_new(g_rows, user("expired@example.com", 1, 0, 1, 0, 0));
    json_array_append_new(g_rows, user("removed@example.com", 0, 1, 1, 0, 0));
    json_array_append_new(g_rows, user("all@example.com", 1, 1, 0, 1, 1));
    add_exception(&f->app, "POP-ONLY@example.com", "[\"pop\"]", now + DAY_MS, &id);
    add_exception(&f->app, "pop-imap@example.com", "[\"pop\"]", now + DAY_MS, &id);
    add_exception(&f->app, "expired@example.com", "[\"pop\"]", now - 1000, &id);
    add_exception(&f->app, "removed@example.com", "[\"imap\"]", now + DAY_MS, &id);
    assert_int_equal(db_exception_remove(f->app.db, id, "x", "fixed the scanner", now, &err), AS_OK);
    add_exception(&f->app, "all@example.com", "[\"all\"]", now + DAY_MS, &id);

    struct kpi *k = compile("{\"name\": \"legacy\", \"filter\": "
                            "\"pop_enabled || imap_enabled || !smtp_client_auth_disabled\"}");
    struct kpi_result res;
    struct collected c = {json_array(), json_object()};
    assert_int_equal(kpi_eval(&f->app, k, now, rows_source, collect, &c, &res, &err), AS_OK);
    /* pop-only: exempt for its only protocol -> out.  pop-imap: still has IMAP -> in.
     * expired and removed exceptions do not apply.  all: out. */
    assert_int_equal(res.scanned, 7);
    assert_int_equal(res.value, 4);
    assert_int_equal(res.exempt, 2);
    assert_true(has(c.upns, "pop-imap@example.com"));
    assert_true(has(c.upns, "smtp@example.com"));
    assert_true(has(c.upns, "expired@example.com"));
    assert_true(has(c.upns, "removed@example.com"));
    assert_false(has(c.upns, "pop-only@example.com"));
    assert_false(has(c.upns, "all@example.com"));
    assert_false(has(c.upns, "clean@example.com"));
    /* What a workflow needs: pop-imap is exempt for POP, so only IMAP is to go. */
    json_t *r = json_object_get(c.rows, "pop-imap@example.com");
    char *t = json_dumps(json_object_get(r, "protocols_enabled"), JSON_COMPACT);
    assert_string_equal(t, "[\"imap\"]");
    free(t);
    t = json_dumps(json_object_get(r, "protocols_used_30d"), JSON_COMPACT);
    assert_string_equal(t, "[\"imap\"]");
    free(t);
    t = json_dumps(json_object_get(r, "cas_settings"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "{\"ImapEnabled\":false}");
    free(t);
    t = json_dumps(json_object_get(r, "exempt_protocols"), JSON_COMPACT);
    assert_string_equal(t, "[\"pop\"]");
    free(t);
    assert_non_null(strstr(json_string_value(json_object_get(r, "exempt_reason")), "needs it"));
    /* SMTP AUTH: set on the mailbox; the state it replaces is the mailbox value (none). */
    r = json_object_get(c.rows, "smtp@example.com");
    t = json_dumps(json_object_get(r, "cas_settings"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "{\"SmtpClientAuthenticationDisabled\":true}");
    free(t);
    t = json_dumps(json_object_get(r, "cas_expect"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(t, "{\"SmtpClientAuthenticationDisabled\":null}");
    free(t);
    json_decref(c.rows);
    json_decref(c.upns);
    kpi_result_clear(&res);
    kpi_free(k);

    /* A KPI that concerns IMAP only ignores POP exemptions... */
    k = compile("{\"name\": \"pop-used\", \"filter\": \"pop_enabled && pop3_30d\", \"protocols\": [\"imap\"]}");
    assert_int_equal(kpi_eval(&f->app, k, now, rows_source, NULL, NULL, &res, &err), AS_OK);
    assert_int_equal(res.value, 1); /* pop-only counts: its POP exemption is not this KPI's business */
    assert_int_equal(res.exempt, 1); /* all@ is exempt from everything */
    kpi_result_clear(&res);
    kpi_free(k);
    /* ...and once the clock passes the exceptions' expiry, nobody is exempt. */
    k = compile("{\"name\": \"legacy2\", \"filter\": \"pop_enabled || imap_enabled || !smtp_client_auth_disabled\"}");
    assert_int_equal(kpi_eval(&f->app, k, now + 2 * DAY_MS, rows_source, NULL, NULL, &res, &err), AS_OK);
    assert_int_equal(res.value, 6);
    assert_int_equal(res.exempt, 0);
    kpi_result_clear(&res);
    kpi_free(k);

    /* Grouping. */
    k = compile("{\"name\": \"by-pop\", \"filter\": \"true\", \"group_by\": \"pop_enabled\"}");
    assert_int_equal(kpi_eval(&f->app, k, now + 2 * DAY_MS, rows_source, NULL, NULL, &res, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(res.breakdown, "true")), 4);
    assert_int_equal(json_integer_value(json_object_get(res.breakdown, "false")), 3);
    kpi_result_clear(&res);
    kpi_free(k);
    json_decref(g_rows);

    /* Sign-ins: a row is left out when its client app's protocol is exempt. */
    g_rows = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "upn",
                       "pop-only@example.com", "client_app", "pop3", "upn", "pop-only@example.com",
                       "client_app", "IMAP4", "upn", "x@example.com", "client_app",
                       "Authenticated SMTP", "upn", "y@example.com", "client_app", "imap4");
    k = compile("{\"name\": \"signins\", \"report\": \"signins\", \"filter\": \"true\", "
                "\"group_by\": \"client_app\"}");
    assert_int_equal(kpi_eval(&f->app, k, now, rows_source, NULL, NULL, &res, &err), AS_OK);
    assert_int_equal(res.value, 3);
    assert_int_equal(res.exempt, 1);
    /* Client app names differ in case on the wire: counted together. */
    assert_int_equal(json_integer_value(json_object_get(res.breakdown, "IMAP4")), 2);
    assert_int_equal(json_object_size(res.breakdown), 2);
    assert_null(json_object_get(res.breakdown, "pop3"));
    kpi_result_clear(&res);
    kpi_free(k);
    json_decref(g_rows);
    g_rows = NULL;
}

static const char *workflow_text =
    "{\"name\": \"kpi-test\", \"version\": \"1\",\n"
    " \"input\": {\"user\": {\"type\": \"string\", \"required\": true},\n"
    "           \"pop_enabled\": {\"type\": \"boolean\"},\n"
    "           \"exempt_protocols\": {\"type\": \"array\"},\n"
    "           \"approvers\": {\"type\": \"array\", \"default\": []}},\n"
    " \"steps\": {\"hello\": {\"type\": \"log\", \"params\": {\"message\": \"hi ${input.user}\"}}}}\n";

struct trig_seen {
    int started, dup, deferred, would, invalid, superseded, would_supersede;
    int64_t superseded_run;
    char superseded_why[512];
    json_t *last_input;
};

static void seen_row(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                     int64_t run_id, const char *why)
{
    struct trig_seen *s = ud;
    switch (what) {
    case TRIGGER_STARTED: s->started++; assert_true(run_id > 0); break;
    case TRIGGER_DUPLICATE: s->dup++; assert_true(run_id > 0); break;
    case TRIGGER_DEFERRED: s->deferred++; break;
    case TRIGGER_WOULD_START: s->would++; break;
    case TRIGGER_INVALID: s->invalid++; break;
    case TRIGGER_SUPERSEDED:
    case TRIGGER_WOULD_SUPERSEDE:
        if (what == TRIGGER_SUPERSEDED)
            s->superseded++;
        else
            s->would_supersede++;
        s->superseded_run = run_id;
        snprintf(s->superseded_why, sizeof s->superseded_why, "%s", why ? why : "");
        assert_null(input);
        return;
    }
    json_decref(s->last_input);
    s->last_input = json_deep_copy(input);
}

static void test_trigger(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    char *wf = tu_path(f->dir, "wf.json");
    assert_int_equal(tu_write_file(wf, workflow_text), 0);
    g_rows = json_array();
    for (int i = 0; i < 25; i++) {
        char upn[64];
        snprintf(upn, sizeof upn, "User%02d@example.com", i);
        json_array_append_new(g_rows, user(upn, i % 2, 1, 1, 0, 0));
    }
    struct kpi *k = compile("{\"name\": \"t\", \"filter\": \"imap_enabled\"}");
    struct trigger_stats st;
    struct trig_seen seen = {0};
    json_t *map = json_loads("{\"approvers\": [\"owner@example.com\", \"${row.display_name}\"]}", 0, NULL);
    struct trigger_opts o = {.workflow_path = wf, .input_map = map, .max_open = -1, .preview = 1,
                             .trigger = "test", .batch = 7, .source = rows_source,
                             .on_row = seen_row, .ud = &seen};
    /* Preview: nothing starts. */
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(seen.would, 25);
    int64_t open = -1;
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 0);
    /* The input: declared row fields, user, and the mapping; undeclared fields left out. */
    assert_string_equal(json_string_value(json_object_get(seen.last_input, "user")), "User24@example.com");
    assert_true(json_is_boolean(json_object_get(seen.last_input, "pop_enabled")));
    assert_non_null(json_object_get(seen.last_input, "exempt_protocols"));
    assert_null(json_object_get(seen.last_input, "imap_enabled"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(seen.last_input, "approvers"), 1)),
                        "User24@example.com");
    /* With a limit of 10 open runs: 10 start, 15 wait. */
    json_decref(seen.last_input);
    memset(&seen, 0, sizeof seen);
    o.preview = 0;
    o.max_open = 10;
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.started, 10);
    assert_int_equal(st.deferred, 15);
    assert_int_equal(seen.started, 10);
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 10);
    /* Without a limit: the 10 open ones are duplicates, 15 start. */
    o.max_open = 0;
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.started, 15);
    assert_int_equal(st.duplicates, 10);
    /* Again: nothing new; dedupe keys are case-insensitive on the user. */
    json_t *first = json_array_get(g_rows, 0);
    json_object_set_new(first, "upn", json_string("USER00@EXAMPLE.COM"));
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.started, 0);
    assert_int_equal(st.duplicates, 25);
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 25);
    /* An exempt user is not triggered, and the run an earlier trigger of the
     * KPI opened for them is superseded: first previewed, then ended. */
    int64_t id;
    add_exception(&f->app, "user01@example.com", "[\"imap\"]", time_now_ms() + DAY_MS, &id);
    json_decref(seen.last_input);
    memset(&seen, 0, sizeof seen);
    o.preview = 1;
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.superseded, 1);
    assert_int_equal(seen.would_supersede, 1);
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 25);
    o.preview = 0;
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.rows, 24);
    assert_int_equal(st.exempt, 1);
    assert_int_equal(st.superseded, 1);
    assert_int_equal(seen.superseded, 1);
    assert_non_null(strstr(seen.superseded_why, "exempt now"));
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 24);
    {
        struct db_conn *conn;
        char status[16];
        assert_int_equal(db_read_begin(f->app.db, &conn, &err), AS_OK);
        assert_int_equal(db_run_status(conn, seen.superseded_run, status, sizeof status, &err), AS_OK);
        db_read_end(f->app.db, conn);
        assert_string_equal(status, "superseded");
    }
    /* Superseded once: the next trigger finds nothing more to end. */
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.superseded, 0);
    /* A KPI that opts out keeps the runs of users it no longer finds. */
    struct kpi *keep = compile("{\"name\": \"t\", \"filter\": \"imap_enabled\", "
                               "\"close_superseded\": false}");
    json_t *gone = json_incref(json_array_get(g_rows, 3));
    json_array_remove(g_rows, 3);
    assert_int_equal(trigger_kpi(&f->app, keep, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.superseded, 0);
    kpi_free(keep);
    json_array_insert_new(g_rows, 3, gone);
    /* A row whose mapped input does not fit is reported, not fatal. */
    json_object_set_new(json_array_get(g_rows, 2), "pop_enabled", json_string("yes"));
    json_decref(seen.last_input);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_OK);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(seen.invalid, 1);
    /* An invalid workflow fails before anything starts. */
    assert_int_equal(tu_write_file(wf, "{\"name\": \"broken\", \"steps\": {\"a\": {\"type\": \"nope\"}}}"), 0);
    assert_int_equal(trigger_kpi(&f->app, k, time_now_ms(), &o, &st, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "not valid"));
    json_decref(seen.last_input);
    json_decref(map);
    json_decref(g_rows);
    g_rows = NULL;
    kpi_free(k);
    free(wf);
}

static void test_exception_step(void **state)
{
    struct tu_app_fixture *f = *state;
    const struct step_type *t = step_type_find("exception");
    assert_non_null(t);
    json_t *params = json_pack("{s:s, s:[s,s], s:s, s:s, s:s}", "user", "eve@example.com",
                               "protocols", "pop", "imap", "reason", "Rejected: printer scans by IMAP",
                               "granted_by", "owner@example.com", "expires", "P30D");
    json_t *events = json_array();
    struct step_ctx ctx = {.app = &f->app, .run_id = 42, .idempotency_key = "i/run-42/except/1",
                           .now_ms = time_now_ms(), .params = params, .events = events};
    struct step_result res = {0};
    t->execute(&ctx, &res);
    assert_int_equal(res.status, STEP_OK);
    int64_t id = json_integer_value(json_object_get(res.output, "exception_id"));
    assert_true(id > 0);
    assert_true(json_is_true(json_object_get(res.output, "created")));
    json_decref(res.output);
    /* Executed again after a crash: the same record. */
    struct step_result res2 = {0};
    t->execute(&ctx, &res2);
    assert_int_equal(res2.status, STEP_OK);
    assert_int_equal(json_integer_value(json_object_get(res2.output, "exception_id")), id);
    assert_true(json_is_false(json_object_get(res2.output, "created")));
    json_decref(res2.output);
    struct as_err err = {0};
    json_t *list = NULL;
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ACTIVE, "eve@example.com", time_now_ms(), &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_t *e = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "Rejected: printer scans by IMAP");
    assert_string_equal(json_string_value(json_object_get(e, "source")), "run:42");
    int64_t days = (json_integer_value(json_object_get(e, "expires_at")) - json_integer_value(json_object_get(e, "created_at"))) / DAY_MS;
    assert_int_equal(days, 30);
    json_decref(list);
    /* An empty reason fails the step. */
    json_object_set_new(params, "reason", json_string(""));
    ctx.idempotency_key = "i/run-43/except/1";
    struct step_result res3 = {0};
    t->execute(&ctx, &res3);
    assert_int_equal(res3.status, STEP_FAILED);
    assert_non_null(strstr(res3.error, "reason"));
    /* Dry run records nothing. */
    json_object_set_new(params, "reason", json_string("r"));
    ctx.dry_run = 1;
    struct step_result res4 = {0};
    t->execute(&ctx, &res4);
    assert_int_equal(res4.status, STEP_OK);
    assert_true(json_is_true(json_object_get(res4.output, "dry_run")));
    json_decref(res4.output);
    assert_int_equal(db_exception_list(f->app.db, DB_EXC_ALL, "eve@example.com", time_now_ms(), &list, &err), AS_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    /* validate catches literal mistakes. */
    struct diag_list diags = {0};
    json_t *badp = json_pack("{s:s, s:s}", "protocols", "pop,fax", "expires", "soon");
    t->validate(badp, "$.steps.x.params", &diags);
    assert_int_equal(diag_errors(&diags), 2);
    diag_free(&diags);
    json_decref(badp);
    json_decref(params);
    json_decref(events);
}

static void test_scheduler_catch_up(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    /* Created at 10:20 with an hourly schedule; Assent is then down until 15:01. */
    int64_t created = 0, id = 0;
    assert_int_equal(time_parse_iso("2026-01-05T10:20:00Z", &created), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "hourly", "users",
                                "{\"name\":\"hourly\",\"report\":\"users\",\"filter\":\"true\","
                                "\"protocols\":[\"pop\"],\"schedule\":{\"cron\":\"0 * * * *\",\"timezone\":\"UTC\"}}",
                                "0 * * * *", "UTC", 0, created, &id, &err), AS_OK);
    int64_t now = created + (4 * 60 + 41) * 60000LL; /* 15:01 */
    int fired = -1;
    int64_t next = 0;
    /* Before the first fire time nothing happens. */
    assert_int_equal(scheduler_run_due(&f->app, created + 60000, &fired, &next, &err), AS_OK);
    assert_int_equal(fired, 0);
    assert_int_equal(next, created + 40 * 60000LL); /* 11:00 */
    /* After downtime: fires ONCE for 15:00, folding 11:00..14:00. */
    assert_int_equal(scheduler_run_due(&f->app, now, &fired, &next, &err), AS_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(next, now + 59 * 60000LL); /* 16:00 */
    json_t *runs = NULL;
    assert_int_equal(db_sched_runs(f->app.db, id, 0, &runs, &err), AS_OK);
    assert_int_equal(json_array_size(runs), 1);
    json_t *r = json_array_get(runs, 0);
    assert_int_equal(json_integer_value(json_object_get(r, "missed")), 4);
    assert_int_equal(json_integer_value(json_object_get(r, "scheduled_for")), now - 60000);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "done");
    json_decref(runs);
    json_t *vals = NULL;
    assert_int_equal(db_kpi_values(f->app.db, id, 0, &vals, &err), AS_OK);
    assert_int_equal(json_array_size(vals), 1);
    json_decref(vals);
    /* The same moment again: nothing (no burst, no repeat). */
    assert_int_equal(scheduler_run_due(&f->app, now + 30000, &fired, NULL, &err), AS_OK);
    assert_int_equal(fired, 0);
    /* The next hour: once, nothing missed. */
    assert_int_equal(scheduler_run_due(&f->app, now + 60 * 60000LL, &fired, NULL, &err), AS_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(db_sched_runs(f->app.db, id, 1, &runs, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "missed")), 0);
    json_decref(runs);
    /* A claim already taken is refused (two schedulers, one database). */
    int64_t run_id = 0;
    assert_int_equal(db_sched_claim(f->app.db, id, -1, now, 0, now, &run_id, &err), AS_ECONFLICT);
    /* A schedule run left "running" by a dead process is run again and closed. */
    int64_t last = now + 60 * 60000LL - 60000;
    int64_t later = last + 60 * 60000LL;
    assert_int_equal(db_sched_claim(f->app.db, id, last, later, 0, created, &run_id, &err), AS_OK);
    assert_int_equal(db_sched_interrupted(f->app.db, &runs, &err), AS_OK);
    assert_int_equal(json_array_size(runs), 1);
    json_decref(runs);
    assert_int_equal(scheduler_run_due(&f->app, later + 1000, &fired, NULL, &err), AS_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(db_sched_interrupted(f->app.db, &runs, &err), AS_OK);
    assert_int_equal(json_array_size(runs), 0);
    json_decref(runs);
    /* The thread starts and stops cleanly. */
    assert_int_equal(scheduler_start(&f->app, &err), AS_OK);
    assert_int_equal(scheduler_start(&f->app, &err), AS_ECONFLICT);
    scheduler_wake();
    scheduler_stop();
    scheduler_stop();
}

/* Users in the tenant tables as `assent sync` leaves them: POP on for even i. */
static void sync_users(struct app *app, int n)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t sync_id = 0, now = time_now_ms();
    assert_int_equal(db_tenant_sync_start(app->db, now, &sync_id, &err), AS_OK);
    assert_int_equal(db_write_begin(app->db, &c, &err), AS_OK);
    for (int i = 0; i < n; i++) {
        char id[64], upn[64];
        snprintf(id, sizeof id, "00000000-0000-0000-0000-%012d", i);
        snprintf(upn, sizeof upn, "u%02d@example.com", i);
        json_t *u = json_pack("{s:s, s:s, s:s, s:b}", "id", id, "userPrincipalName", upn,
                              "displayName", upn, "accountEnabled", 1);
        json_t *m = json_pack("{s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "ExternalDirectoryObjectId", id,
                              "PrimarySmtpAddress", upn, "PopEnabled", i % 2 == 0, "ImapEnabled", 0,
                              "EwsEnabled", 1, "ActiveSyncEnabled", 1,
                              "SmtpClientAuthenticationDisabled", 1);
        int matched = 0;
        assert_int_equal(db_tenant_user_put(c, sync_id, now, u, &err), AS_OK);
        assert_int_equal(db_tenant_cas_put(c, sync_id, now, m, &matched, &err), AS_OK);
        assert_int_equal(matched, 1);
        json_decref(u);
        json_decref(m);
    }
    assert_int_equal(db_write_end(app->db, AS_OK, &err), AS_OK);
    json_t *summary = json_object(); /* (NULL leaks in db_tenant_sync_finish) */
    assert_int_equal(db_tenant_sync_finish(app->db, sync_id, now, "ok", summary, NULL, &err), AS_OK);
    json_decref(summary);
}

/* A scheduled KPI with a trigger starts the workflow for its rows from the
 * synced tenant, once per user, and records the value. */
static void test_scheduled_trigger(void **state)
{
    struct tu_app_fixture *f = *state;
    struct as_err err = {0};
    sync_users(&f->app, 10);
    char *wf = tu_path(f->dir, "wf.json");
    assert_int_equal(tu_write_file(wf, workflow_text), 0);
    char def[1024];
    snprintf(def, sizeof def,
             "{\"name\":\"pop\",\"report\":\"users\",\"filter\":\"pop_enabled\","
             "\"protocols\":[\"pop\"],\"schedule\":{\"cron\":\"*/10 * * * *\",\"timezone\":\"UTC\"},"
             "\"trigger\":{\"workflow\":\"%s\",\"input\":{\"approvers\":[\"o@example.com\"]}}}",
             wf);
    int64_t created = 0, id = 0;
    assert_int_equal(time_parse_iso("2026-03-01T08:05:00Z", &created), AS_OK);
    assert_int_equal(db_kpi_put(f->app.db, "pop", "users", def, "*/10 * * * *", "UTC", 0, created,
                                &id, &err), AS_OK);
    int fired = 0;
    assert_int_equal(scheduler_run_due(&f->app, created + 6 * 60000, &fired, NULL, &err), AS_OK);
    assert_int_equal(fired, 1);
    int64_t open = 0;
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 5);
    json_t *runs = NULL;
    assert_int_equal(db_sched_runs(f->app.db, id, 1, &runs, &err), AS_OK);
    json_t *result = json_object_get(json_array_get(runs, 0), "result");
    assert_int_equal(json_integer_value(json_object_get(result, "started")), 5);
    json_decref(runs);
    /* The next fire time starts nobody twice. */
    assert_int_equal(scheduler_run_due(&f->app, created + 16 * 60000, &fired, NULL, &err), AS_OK);
    assert_int_equal(fired, 1);
    assert_int_equal(db_kpi_open_runs(f->app.db, "kpi-test", &open, &err), AS_OK);
    assert_int_equal(open, 5);
    assert_int_equal(db_sched_runs(f->app.db, id, 1, &runs, &err), AS_OK);
    result = json_object_get(json_array_get(runs, 0), "result");
    assert_int_equal(json_integer_value(json_object_get(result, "duplicates")), 5);
    json_decref(runs);
    json_t *vals = NULL;
    assert_int_equal(db_kpi_values(f->app.db, id, 0, &vals, &err), AS_OK);
    assert_int_equal(json_array_size(vals), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(vals, 1), "value")), 5);
    json_decref(vals);
    /* A KPI whose workflow file went missing: the schedule run records why. */
    assert_int_equal(unlink(wf), 0);
    assert_int_equal(scheduler_run_due(&f->app, created + 26 * 60000, &fired, NULL, &err), AS_OK);
    assert_int_equal(db_sched_runs(f->app.db, id, 1, &runs, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(runs, 0), "status")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(runs, 0), "error")), "wf.json"));
    json_decref(runs);
    free(wf);
}

#define KPI_CASES                                                                                 \
    cmocka_unit_test(test_definitions),                                                           \
        cmocka_unit_test_setup_teardown(test_storage_and_history, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_exceptions, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_eval_exemptions, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(test_trigger, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(test_exception_step, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_scheduler_catch_up, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_scheduled_trigger, setup, teardown)

#ifndef KPI_NO_MAIN
int main(void)
{
    cli_register_types();
    json_object_seed(1);
    const struct CMUnitTest tests[] = {KPI_CASES};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
