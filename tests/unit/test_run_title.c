/*
 * test_run_title.c - whom listings say a run is about: the workflow's title
 * template resolved against the run's input (one line, capped), else the
 * input's user; nulls when neither; runs whose workflow version is missing
 * get no title; approval rows are annotated by their run.
 */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "db/db_runs.h"
#include "engine/run_title.h"

static int setup(void **state)
{
    return tu_db_setup(state, "run-title");
}

static int teardown(void **state)
{
    return tu_db_teardown(state);
}

static int64_t put_workflow(struct tu_db_fixture *f, const char *hash, const char *definition)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t id = 0;
    struct db_workflow_rec w = {.name = "wf", .version = "1", .hash = hash,
                                .definition = definition};
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_workflow_put(c, &w, 1000, &id, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    return id;
}

static int64_t put_run(struct tu_db_fixture *f, int64_t wf_id, const char *input)
{
    struct as_err err = {0};
    struct db_conn *c;
    int64_t id = 0;
    struct db_run_new r = {.workflow_id = wf_id, .workflow = "wf", .input = input};
    assert_int_equal(db_write_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(db_run_insert(c, &r, 1000, &id, &err), AS_OK);
    assert_int_equal(db_write_end(f->db, AS_OK, &err), AS_OK);
    return id;
}

/* user and title of (hash, input) as "user|title" ("-" for null) into buf. */
static void get(struct tu_db_fixture *f, struct run_titles *t, const char *hash, const char *input,
                char *buf, size_t size)
{
    struct as_err err = {0};
    struct db_conn *c;
    json_t *user = NULL, *title = NULL;
    assert_int_equal(db_read_begin(f->db, &c, &err), AS_OK);
    assert_int_equal(run_titles_get(t, c, hash, input, &user, &title, &err), AS_OK);
    db_read_end(f->db, c);
    snprintf(buf, size, "%s|%s", json_is_string(user) ? json_string_value(user) : "-",
             json_is_string(title) ? json_string_value(title) : "-");
    json_decref(user);
    json_decref(title);
}

static void test_titles(void **state)
{
    struct tu_db_fixture *f = *state;
    char got[1024];
    put_workflow(f, "h-titled", "{\"name\":\"wf\",\"title\":\"${input.user} (${input.display_name})\"}");
    put_workflow(f, "h-plain", "{\"name\":\"wf\"}");
    put_workflow(f, "h-broken", "{not json");
    struct run_titles *t = run_titles_new();
    assert_non_null(t);

    get(f, t, "h-titled", "{\"user\":\"ada@contoso.com\",\"display_name\":\"Ada Lovelace\"}", got,
        sizeof got);
    assert_string_equal(got, "ada@contoso.com|ada@contoso.com (Ada Lovelace)");
    /* A value missing from the input renders as nothing. */
    get(f, t, "h-titled", "{\"user\":\"bob@contoso.com\"}", got, sizeof got);
    assert_string_equal(got, "bob@contoso.com|bob@contoso.com ()");
    /* Line breaks and tabs from the input cannot break a listing's line. */
    get(f, t, "h-titled", "{\"user\":\"c@x.org\",\"display_name\":\"Eve\\nFAKE\\tLINE\"}", got,
        sizeof got);
    assert_string_equal(got, "c@x.org|c@x.org (Eve FAKE LINE)");
    /* Long titles are cut at a character boundary. */
    char input[2048], name[1200];
    size_t n = 0;
    while (n + 2 < 1000) {
        memcpy(name + n, "\xc3\xa9", 2); /* é */
        n += 2;
    }
    name[n] = '\0';
    snprintf(input, sizeof input, "{\"user\":\"d@x.org\",\"display_name\":\"%s\"}", name);
    get(f, t, "h-titled", input, got, sizeof got);
    const char *title = strchr(got, '|') + 1;
    assert_true(strlen(title) <= RUN_TITLE_MAX);
    assert_true(strlen(title) >= RUN_TITLE_MAX - 1);
    assert_int_equal(strncmp(title, "d@x.org (\xc3\xa9", 11), 0);
    assert_int_not_equal((unsigned char)title[strlen(title) - 1], 0xc3); /* no half character */

    /* No title: the user, when it is a string. */
    get(f, t, "h-plain", "{\"user\":\"e@x.org\"}", got, sizeof got);
    assert_string_equal(got, "e@x.org|-");
    get(f, t, "h-plain", "{\"user\":42}", got, sizeof got);
    assert_string_equal(got, "-|-");
    get(f, t, "h-plain", "{}", got, sizeof got);
    assert_string_equal(got, "-|-");
    /* An unreadable or unknown definition gives no title, not an error. */
    get(f, t, "h-broken", "{\"user\":\"g@x.org\"}", got, sizeof got);
    assert_string_equal(got, "g@x.org|-");
    get(f, t, "h-unknown", "{\"user\":\"h@x.org\"}", got, sizeof got);
    assert_string_equal(got, "h@x.org|-");
    run_titles_free(t);
}

static void test_annotate(void **state)
{
    struct tu_db_fixture *f = *state;
    struct as_err err = {0};
    int64_t wt = put_workflow(f, "h-titled", "{\"name\":\"wf\",\"title\":\"for ${input.user}\"}");
    int64_t wp = put_workflow(f, "h-plain", "{\"name\":\"wf\"}");
    int64_t r1 = put_run(f, wt, "{\"user\":\"ada@contoso.com\"}");
    int64_t r2 = put_run(f, wp, "{\"user\":\"bob@contoso.com\"}");
    json_t *rows = json_pack("[{s:I, s:s}, {s:I}, {s:I}, {s:I}, {s:s}]", "run_id", (json_int_t)r1,
                             "approver", "x@example.org", "run_id", (json_int_t)r2, "run_id",
                             (json_int_t)r1, "run_id", (json_int_t)999, "other", "row");
    assert_int_equal(run_titles_annotate(f->db, rows, &err), AS_OK);
    json_t *a = json_array_get(rows, 0), *b = json_array_get(rows, 1),
           *c = json_array_get(rows, 2), *gone = json_array_get(rows, 3),
           *other = json_array_get(rows, 4);
    assert_string_equal(json_string_value(json_object_get(a, "title")), "for ada@contoso.com");
    assert_string_equal(json_string_value(json_object_get(a, "user")), "ada@contoso.com");
    assert_string_equal(json_string_value(json_object_get(a, "approver")), "x@example.org");
    assert_true(json_is_null(json_object_get(b, "title")));
    assert_string_equal(json_string_value(json_object_get(b, "user")), "bob@contoso.com");
    assert_string_equal(json_string_value(json_object_get(c, "title")), "for ada@contoso.com");
    assert_true(json_is_null(json_object_get(gone, "user")));
    assert_true(json_is_null(json_object_get(gone, "title")));
    assert_null(json_object_get(other, "user"));
    json_decref(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_titles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_annotate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
