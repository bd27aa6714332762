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

#include "base/json_locate.h"
#include "engine/workflow.h"
#include "engine/step.h"
#include "cli/cli.h"

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
    assert_string_not_equal(wa->hash, wc->hash);
    /* the stored text is compact, keeps the author's key order (so pages
     * show details as written), names the effective first step, and loads
     * to the same hash; the hash is of the sorted form, so key order and
     * whitespace do not make a new version */
    assert_string_equal(wa->canonical, "{\"name\":\"h\",\"version\":\"1\",\"steps\":{\"s\":{\"type\":\"t_task\","
                                       "\"params\":{\"text\":\"x\",\"count\":1}}},\"start\":\"s\"}");
    assert_string_equal(wb->canonical, "{\"steps\":{\"s\":{\"params\":{\"count\":1,\"text\":\"x\"},\"type\":\"t_task\"}},"
                                       "\"version\":\"1\",\"name\":\"h\",\"start\":\"s\"}");
    struct workflow *wd = NULL;
    assert_int_equal(wf_load_string(wa->canonical, "db", &wd, NULL, &err), AS_OK);
    assert_string_equal(wd->hash, wa->hash);
    {
        /* Same steps in another order: another first step, so another hash,
         * and the stored canonical text keeps the first step. */
        const char *o1 = "{\"name\":\"o\",\"version\":\"1\",\"steps\":{"
                         "\"p\":{\"type\":\"t_task\",\"params\":{\"text\":\"x\"},\"next\":\"q\"},"
                         "\"q\":{\"type\":\"t_task\",\"params\":{\"text\":\"x\"}}}}";
        const char *o2 = "{\"name\":\"o\",\"version\":\"1\",\"steps\":{"
                         "\"q\":{\"type\":\"t_task\",\"params\":{\"text\":\"x\"},\"next\":\"p\"},"
                         "\"p\":{\"type\":\"t_task\",\"params\":{\"text\":\"x\"}}}}";
        struct workflow *w1 = NULL, *w2 = NULL, *w1b = NULL;
        assert_int_equal(wf_load_string(o1, "o1", &w1, NULL, &err), AS_OK);
        assert_int_equal(wf_load_string(o2, "o2", &w2, NULL, &err), AS_OK);
        assert_string_not_equal(w1->hash, w2->hash);
        assert_int_equal(wf_load_string(w1->canonical, "db", &w1b, NULL, &err), AS_OK);
        assert_string_equal(w1b->start, "p");
        assert_string_equal(w1b->hash, w1->hash);
        wf_free(w1);
        wf_free(w2);
        wf_free(w1b);
    }
    /* known SHA-256 of the sorted text {"name":"h","start":"s","steps":{"s":{"params":
     * {"count":1,"text":"x"},"type":"t_task"}},"version":"1"} (computed
     * independently with sha256sum) */
    assert_string_equal(wa->hash, "ba0c3e11715b26b520ff1e9162a43557774418343d1536346c72be9e5b790338");
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

/* ---------- table of broken workflows ---------- */

static char *read_expected(const char *path)
{
    char *raw = tu_read_file(path);
    assert_non_null(raw);
    char *out = malloc(strlen(raw) + 1);
    size_t n = 0;
    assert_non_null(out);
    for (char *line = raw; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0 && line[0] != '#') {
            memcpy(out + n, line, len);
            n += len;
            out[n++] = '\n';
        }
        line += len + (end ? 1 : 0);
    }
    out[n] = '\0';
    free(raw);
    return out;
}

static void test_invalid_table(void **state)
{
    char *dir = tu_path(tu_source_dir(), "tests/data/invalid");
    DIR *d = opendir(dir);
    int n_cases = 0, n_failed = 0;
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strchr(de->d_name, '.'))
            continue;
        char *cdir = tu_path(dir, de->d_name);
        char *wfp = tu_path(cdir, "workflow.json");
        char *exp = tu_path(cdir, "expected.txt");
        char *want = read_expected(exp);
        struct workflow *wf = NULL;
        struct diag_list dl = {0};
        struct as_err err = {0};
        enum as_code rc = wf_load_file(wfp, &wf, &dl, &err);
        size_t cap = 64 + dl.n * 80, used = 0;
        char *got = malloc(cap);
        assert_non_null(got);
        got[0] = '\0';
        for (size_t i = 0; i < dl.n; i++)
            used += (size_t)snprintf(got + used, cap - used, "%s %s %d:%d\n",
                                     dl.items[i].severity == DIAG_ERROR ? "error" : "warning",
                                     dl.items[i].code, dl.items[i].line, dl.items[i].column);
        int want_ok = strstr(want, "error ") == NULL;
        if (strcmp(got, want) != 0 || (rc == AS_OK) != want_ok || (wf != NULL) != want_ok) {
            fprintf(stderr, "case %s: rc %d\n--- got:\n%s--- want:\n%s", de->d_name, rc, got, want);
            wf_diags_print(&dl, wfp, 0, stderr);
            n_failed++;
        }
        n_cases++;
        free(got);
        free(want);
        wf_free(wf);
        diag_free(&dl);
        free(exp);
        free(wfp);
        free(cdir);
    }
    closedir(d);
    free(dir);
    assert_true(n_cases >= 20);
    assert_int_equal(n_failed, 0);
}

/* ---------- targeted checks with the test-only types ---------- */

static void test_param_types(void **state)
{
    /* every param kind: right values load, wrong values are PARAM_TYPE; whole templates pass */
    EXPECT_DIAGS("{\"name\": \"p\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", \"params\": {\n"
                 "\"text\": \"t\", \"count\": 2, \"flag\": false, \"ratio\": 0.5, \"obj\": {}, \"arr\": [1],\n"
                 "\"names\": [\"x\", \"y\"], \"wait\": \"PT5M\", \"cond\": \"input.a in ['x']\", \"any\": null}}}}",
                 AS_OK, "");
    EXPECT_DIAGS("{\"name\": \"p\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", \"params\": {\n"
                 "\"text\": \"${input.t}\", \"count\": \"${input.n}\", \"flag\": \"${input.f}\", \"ratio\": \"${input.r}\",\n"
                 "\"obj\": \"${input.o}\", \"arr\": \"${input.a}\", \"names\": \"${input.names}\", \"wait\": \"${input.w}\"}}}}",
                 AS_OK, "");
    EXPECT_DIAGS("{\"name\": \"p\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", \"params\": {\n"
                 "\"text\": 1, \"count\": 1.5, \"flag\": \"yes\", \"ratio\": \"1\", \"obj\": [], \"arr\": {},\n"
                 "\"names\": [\"x\", 2], \"wait\": 5, \"cond\": true, \"any\": [], \"count2\": 1}}}}",
                 AS_EINVAL,
                 "PARAM_TYPE 2:9\nPARAM_TYPE 2:21\nPARAM_TYPE 2:34\nPARAM_TYPE 2:50\nPARAM_TYPE 2:62\n"
                 "PARAM_TYPE 2:73\nPARAM_TYPE 3:16\nPARAM_TYPE 3:28\nPARAM_TYPE 3:39\nUNKNOWN_PARAM 3:56\n");
    /* a mixed template is still a string: not an integer */
    EXPECT_DIAGS("{\"name\": \"p\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", \"params\": {"
                 "\"text\": \"x\", \"count\": \"n=${input.n}\"}}}}",
                 AS_EINVAL, "PARAM_TYPE 1:98\n");
    /* templates inside objects and arrays are checked, with the column inside the string */
    EXPECT_DIAGS("{\"name\": \"p\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", \"params\": {"
                 "\"text\": \"x\", \"obj\": {\"k\": [\"ok\", \"${a b}\"]}}}}}",
                 AS_EINVAL, "EXPR_SYNTAX 1:114\n");
}

static void test_waits_and_hooks(void **state)
{
    /* a waiting type without an expiry gets DEFAULT_EXPIRY; the type's hook adds its own code */
    EXPECT_DIAGS("{\"name\": \"w\", \"version\": \"1\", \"steps\": {\n"
                 " \"ask\": {\"type\": \"t_wait\", \"params\": {\"to\": \"nobody\"},\n"
                 "         \"next\": {\"approved\": \"x\", \"rejected\": \"x\", \"expired\": \"x\"}},\n"
                 " \"x\": {\"type\": \"t_task\", \"params\": {\"text\": \"${steps.ask.outcome}\"}}}}",
                 AS_EINVAL, "DEFAULT_EXPIRY 2:38\nT_BAD_ADDRESS 2:45\n");
    EXPECT_DIAGS("{\"name\": \"w\", \"version\": \"1\", \"steps\": {\n"
                 " \"ask\": {\"type\": \"t_wait\", \"params\": {\"expiry\": \"P2D\"}, \"next\": {\"approved\": \"x\"}},\n"
                 " \"x\": {\"type\": \"t_task\", \"params\": {\"text\": \"t\"}}}}",
                 AS_OK, "UNHANDLED_OUTCOME 2:65\nUNHANDLED_OUTCOME 2:65\n");
}

static void test_graph(void **state)
{
    /* a diamond: the join may read both branches only with MAYBE_NOT_RUN, and the branch point cleanly */
    EXPECT_DIAGS("{\"name\": \"g\", \"version\": \"1\", \"steps\": {\n"
                 "\"b\": {\"type\": \"t_branch\", \"params\": {\"cond\": \"input.x\"}, \"next\": {\"yes\": \"l\", \"no\": \"r\"}},\n"
                 "\"l\": {\"type\": \"t_task\", \"params\": {\"text\": \"${steps.b.outcome}\"}, \"next\": \"j\"},\n"
                 "\"r\": {\"type\": \"t_task\", \"params\": {\"text\": \"r\"}, \"next\": \"j\"},\n"
                 "\"j\": {\"type\": \"t_task\", \"params\": {\"text\": \"${steps.b.outcome}\", \"cond\": \"steps.l.output || steps.r.output\"}}}}",
                 AS_OK, "MAYBE_NOT_RUN 5:75\nMAYBE_NOT_RUN 5:93\n");
    /* refs through the error branch count as "ran before" */
    EXPECT_DIAGS("{\"name\": \"g\", \"version\": \"1\", \"steps\": {\n"
                 "\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"a\"}, \"next\": {\"error\": \"e\"}},\n"
                 "\"e\": {\"type\": \"t_task\", \"params\": {\"text\": \"${steps.a.output}\"}}}}",
                 AS_OK, "");
    /* start elsewhere: the first step is then unreachable; the cycle is named in run order */
    EXPECT_DIAGS("{\"name\": \"g\", \"version\": \"1\", \"start\": \"c\", \"steps\": {\n"
                 "\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"a\"}},\n"
                 "\"c\": {\"type\": \"t_task\", \"params\": {\"text\": \"c\"}, \"next\": \"d\"},\n"
                 "\"d\": {\"type\": \"t_task\", \"params\": {\"text\": \"d\"}, \"next\": \"c\"}}}",
                 AS_EINVAL, "UNREACHABLE_STEP 2:1\nCYCLE 4:58\n");
    /* a bad start does not hide a cycle */
    EXPECT_DIAGS("{\"name\": \"g\", \"version\": \"1\", \"start\": \"zz\", \"steps\": {\n"
                 "\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"a\"}, \"next\": \"b\"},\n"
                 "\"b\": {\"type\": \"t_task\", \"params\": {\"text\": \"b\"}, \"next\": \"a\"}}}",
                 AS_EINVAL, "BAD_START 1:40\nCYCLE 3:58\n");
}

static void test_cycle_message(void **state)
{
    struct workflow *wf = NULL;
    struct diag_list dl = {0};
    struct as_err err = {0};
    const char *text = "{\"name\": \"g\", \"version\": \"1\", \"steps\": {"
                       "\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"a\"}, \"next\": \"b\"},"
                       "\"b\": {\"type\": \"t_task\", \"params\": {\"text\": \"b\"}, \"next\": \"c\"},"
                       "\"c\": {\"type\": \"t_task\", \"params\": {\"text\": \"c\"}, \"next\": \"a\"}}}";
    assert_int_equal(wf_load_string(text, "t", &wf, &dl, &err), AS_EINVAL);
    assert_int_equal(dl.n, 1);
    assert_string_equal(dl.items[0].code, "CYCLE");
    assert_string_equal(dl.items[0].path, "$.steps.c.next");
    assert_non_null(strstr(dl.items[0].msg, "a -> b -> c -> a"));
    assert_non_null(strstr(err.msg, "1 error"));
    diag_free(&dl);
}

static void test_limits(void **state)
{
    struct workflow *wf = NULL;
    struct diag_list dl = {0};
    struct as_err err = {0};

    /* deep nesting inside params: bounded, reported, no crash */
    size_t cap = 8192, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)snprintf(text + n, cap - n, "{\"name\": \"d\", \"version\": \"1\", \"steps\": {\"a\": "
                                             "{\"type\": \"t_task\", \"params\": {\"text\": \"t\", \"any\": ");
    for (int i = 0; i < 1000; i++)
        text[n++] = '[';
    for (int i = 0; i < 1000; i++)
        text[n++] = ']';
    n += (size_t)snprintf(text + n, cap - n, "}}}}");
    assert_int_equal(wf_load_string(text, "t", &wf, &dl, &err), AS_EINVAL);
    assert_int_equal(dl.n, 1);
    assert_string_equal(dl.items[0].code, "LIMIT");
    assert_true(dl.items[0].line == 1 && dl.items[0].column > 0);
    diag_free(&dl);
    free(text);

    /* too many steps */
    cap = 64 * (WF_MAX_STEPS + 10);
    text = malloc(cap);
    assert_non_null(text);
    n = (size_t)snprintf(text, cap, "{\"name\": \"d\", \"version\": \"1\", \"steps\": {");
    for (int i = 0; i <= WF_MAX_STEPS; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"s%d\": {\"type\": \"t_task\"}", i ? "," : "", i);
    snprintf(text + n, cap - n, "}}");
    assert_int_equal(wf_load_string(text, "t", &wf, &dl, &err), AS_EINVAL);
    assert_int_equal(dl.n, 1);
    assert_string_equal(dl.items[0].code, "LIMIT");
    diag_free(&dl);
    free(text);

    /* a flood of defects: the first WF_MAX_DIAGS, sorted, then one LIMIT that counts the rest */
    cap = 64 * 1600;
    text = malloc(cap);
    assert_non_null(text);
    n = (size_t)snprintf(text, cap, "{\"name\": \"d\", \"version\": \"1\", \"steps\": "
                                    "{\"a\": {\"type\": \"t_task\", \"params\": {\"text\": \"x\"}}}");
    for (int i = 0; i < WF_MAX_DIAGS + 500; i++)
        n += (size_t)snprintf(text + n, cap - n, ",\n\"junk%d\": %d", i, i);
    snprintf(text + n, cap - n, "}");
    assert_int_equal(wf_load_string(text, "t", &wf, &dl, &err), AS_EINVAL);
    assert_int_equal(dl.n, WF_MAX_DIAGS + 1);
    assert_string_equal(dl.items[0].code, "UNKNOWN_KEY");
    assert_int_equal(dl.items[0].line, 2);
    assert_int_equal(dl.items[WF_MAX_DIAGS - 1].line, WF_MAX_DIAGS + 1);
    assert_string_equal(dl.items[WF_MAX_DIAGS].code, "LIMIT");
    assert_non_null(strstr(dl.items[WF_MAX_DIAGS].msg, "500 more"));
    diag_free(&dl);
    free(text);

    /* a file too large is refused before parsing */
    char *dir = tu_tmpdir("wf");
    char *path = tu_path(dir, "big.json");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < WF_MAX_FILE_SIZE / 1000 + 2; i++)
        fprintf(f, "%1000s", "");
    fclose(f);
    assert_int_equal(wf_load_file(path, &wf, &dl, &err), AS_ELIMIT);
    assert_null(wf);
    assert_int_equal(dl.n, 1);
    assert_string_equal(dl.items[0].code, "LIMIT");
    diag_free(&dl);
    /* a missing file is AS_EIO with the reason */
    assert_int_equal(wf_load_file("/nonexistent/x.json", &wf, &dl, &err), AS_EIO);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(dl.n, 0);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_locator(void **state)
{
    const char *text = "{\"a\": {\"b c\": [1, {\"\\u00e9\\\"\": \"x\"}], \"d\": \"\\ud83d\\ude00\\n${y}\"},\n"
                       "\t\"\xc3\xa9\": true, \"a\": 2}";
    struct json_locmap *m = NULL;
    struct as_err err = {0};
    char buf[JL_MAX_PATH + 1];
    assert_int_equal(jl_build(text, strlen(text), &m, &err), AS_OK);
    const struct jl_entry *e = jl_find(m, "$[\"b c\"]");
    assert_null(e);
    /* "a" is repeated: the last one is found, and the repeat is listed */
    e = jl_find(m, "$.a");
    assert_non_null(e);
    assert_int_equal(e->value.line, 2);
    assert_int_equal(e->key.column, 13);
    assert_int_equal(e->value.column, 18);
    assert_int_equal(m->n_dups, 1);
    assert_string_equal(m->entries[m->dups[0]].path, "$.a");
    /* the first "a" still has its children */
    e = jl_find(m, "$.a[\"b c\"][1][\"\xc3\xa9\\\"\"]");
    assert_non_null(e);
    assert_int_equal(e->value.line, 1);
    assert_int_equal(e->value.column, 32);
    e = jl_find(m, "$[\"\xc3\xa9\"]");
    assert_non_null(e);
    assert_int_equal(e->key.column, 2);
    assert_int_equal(e->value.column, 7);
    /* a column inside a string: after a surrogate pair escape (12 columns, 4 bytes) and \n */
    e = jl_find(m, "$.a.d");
    assert_non_null(e);
    struct jl_pos p = jl_string_pos(text, strlen(text), e->value, 5);
    assert_int_equal(p.column, e->value.column + 1 + 12 + 2);
    /* nearest ancestor */
    e = jl_find_nearest(m, "$.a.d.nothing[3]");
    assert_non_null(e);
    assert_string_equal(e->path, "$.a.d");
    jl_free(m);

    assert_int_equal(jl_path_key(buf, sizeof buf, "$", "ok_name-1"), 0);
    assert_string_equal(buf, "$.ok_name-1");
    assert_int_equal(jl_path_key(buf, sizeof buf, "$", "a.b\"c\n"), 0);
    assert_string_equal(buf, "$[\"a.b\\\"c\\u000a\"]");
    assert_int_equal(jl_path_parent_len("$.a[\"x.]y\"][3]"), 11);
    assert_int_equal(jl_path_parent_len("$.a[\"x.]y\"]"), 3);
    assert_int_equal(jl_path_parent_len("$.a"), 1);
    assert_int_equal(jl_path_parent_len("$"), 0);
    char small[8];
    assert_int_equal(jl_path_key(small, sizeof small, "$.abc", "defgh"), -1);

    /* garbage never crashes the scanner: it records what it can */
    const char *junk[] = {"", "{", "{\"a\"", "{\"a\":", "[1,", "\"\\u12", "{\"a\":[}]}", "}}}"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_int_equal(jl_build(junk[i], strlen(junk[i]), &m, &err), AS_OK);
        jl_free(m);
    }
}

static void test_print(void **state)
{
    struct workflow *wf = NULL;
    struct diag_list dl = {0};
    struct as_err err = {0};
    assert_int_equal(wf_load_string("{\"name\": \"x\", \"version\": \"1\", \"steps\": {\"a\": {\"type\": \"t_task\", "
                                    "\"params\": {\"text\": \"t\"}, \"next\": \"zz\"}}}",
                                    "wf.json", &wf, &dl, &err),
                     AS_EINVAL);
    char line[1024];
    wf_diag_format(&dl.items[0], "wf.json", line, sizeof line);
    assert_string_equal(line, "wf.json:1:98: error DANGLING_NEXT: step \"a\" goes to \"zz\", which does not exist "
                              "(at $.steps.a.next)");
    json_t *arr = json_array();
    assert_int_equal(wf_diags_append_json(arr, &dl, "wf.json"), 0);
    json_t *o = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(o, "file")), "wf.json");
    assert_int_equal(json_integer_value(json_object_get(o, "line")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "column")), 98);
    assert_string_equal(json_string_value(json_object_get(o, "path")), "$.steps.a.next");
    assert_string_equal(json_string_value(json_object_get(o, "code")), "DANGLING_NEXT");
    assert_string_equal(json_string_value(json_object_get(o, "severity")), "error");
    assert_non_null(strstr(json_string_value(json_object_get(o, "message")), "\"zz\""));
    json_decref(arr);
    diag_free(&dl);
}

/* A parser message quoting a newline of the input stays on one line
 * (found by tests/fuzz/fuzz_workflow.c). */
static void test_print_one_line(void **state)
{
    (void)state;
    struct workflow *wf = NULL;
    struct diag_list dl = {0};
    struct as_err err = {0};
    assert_int_equal(wf_load_string("{\"name\": \"x\\\n\", \"version\": \"1\"}", "wf.json", &wf, &dl, &err),
                     AS_EINVAL);
    assert_true(dl.n >= 1);
    assert_non_null(strchr(dl.items[0].msg, '\n')); /* the raw message holds it */
    char line[1024];
    wf_diag_format(&dl.items[0], "wf.json", line, sizeof line);
    assert_null(strchr(line, '\n'));
    assert_non_null(strstr(line, "\\n"));
    diag_free(&dl);

    /* A message quoting a cut UTF-8 sequence still makes JSON. */
    dl = (struct diag_list){0};
    assert_int_equal(wf_load_string("{\"name\": \"\\\xc3\x94\"}", "wf.json", &wf, &dl, &err), AS_EINVAL);
    json_t *arr = json_array();
    assert_int_equal(wf_diags_append_json(arr, &dl, "wf.json"), 0);
    assert_int_equal(json_array_size(arr), dl.n);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(arr, 0), "message")), "?"));
    json_decref(arr);
    diag_free(&dl);
}

static void test_schema_matches_registry(void **state)
{
    /* workflows/schema.json must be exactly what the registry generates */
    char *path = tu_path(tu_source_dir(), "workflows/schema.json");
    json_error_t jerr;
    json_t *file = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    json_t *gen = wf_schema();
    assert_non_null(file);
    assert_non_null(gen);
    if (!json_equal(file, gen))
        fprintf(stderr, "workflows/schema.json is out of date with the step registry: regenerate it with\n"
                        "  assent validate --print-schema > workflows/schema.json\n");
    assert_true(json_equal(file, gen));
    /* every registered type is in the enum and has its if/then clause */
    json_t *step = json_object_get(json_object_get(file, "$defs"), "step");
    json_t *names = json_object_get(json_object_get(json_object_get(step, "properties"), "type"), "enum");
    json_t *clauses = json_object_get(step, "allOf");
    const struct step_type *const *types = step_types();
    size_t n = 0;
    for (; types[n]; n++) {
        int found = 0;
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v) {
            found |= strcmp(json_string_value(v), types[n]->name) == 0;
        }
        assert_true(found);
        json_t *c = json_array_get(clauses, n);
        const char *cname = json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(c, "if"), "properties"), "type"), "const"));
        assert_string_equal(cname, types[n]->name);
        json_t *props = json_object_get(
            json_object_get(json_object_get(json_object_get(c, "then"), "properties"), "params"), "properties");
        for (const struct step_param *p = types[n]->params; p && p->name; p++)
            assert_non_null(json_object_get(props, p->name));
    }
    assert_int_equal(json_array_size(names), n);
    assert_true(n >= 5);
    json_decref(gen);
    json_decref(file);
    free(path);
}

/* Mutate a good workflow at random (deterministically): loading must never
 * crash or leak, and every diagnostic of a parsed document must be located. */
static void test_random_mutations(void **state)
{
    static const char alphabet[] = "{}[]\":,. \n\\$ax1-_";
    size_t len = strlen(GOOD);
    char *text = malloc(len + 1);
    unsigned seed = 777;
    int parsed = 0;
    assert_non_null(text);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(text, GOOD, len + 1);
        for (int k = 0; k < 1 + iter % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            text[at] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        struct workflow *wf = NULL;
        struct diag_list dl = {0};
        struct as_err err = {0};
        enum as_code rc = wf_load_string(text, "m", &wf, &dl, &err);
        assert_true(rc == AS_OK || rc == AS_EINVAL);
        assert_true((rc == AS_OK) == (wf != NULL));
        int syntax = dl.n > 0 && strcmp(dl.items[0].code, "JSON_SYNTAX") == 0;
        parsed += !syntax;
        for (size_t i = 0; i < dl.n; i++) {
            if (dl.items[i].line <= 0 || dl.items[i].column <= 0) {
                fprintf(stderr, "unlocated %s at %s in:\n%s\n", dl.items[i].code, dl.items[i].path, text);
                fail();
            }
        }
        wf_free(wf);
        diag_free(&dl);
    }
    assert_true(parsed > 300);
    free(text);
}

/* An approval step whose details are n_rows rows of 100 bytes; request too
 * when with_request.  Caller frees. */
static char *approval_wf(int n_rows, int with_request)
{
    json_t *rows = json_array();
    char row[128];
    for (int i = 0; i < n_rows; i++) {
        snprintf(row, sizeof row, "%0*d", 98, i);
        json_array_append_new(rows, json_string(row));
    }
    json_t *params = json_pack("{s:[s], s:s, s:s, s:{s:O}}", "approvers", "a@example.org",
                               "subject", "Disable POP", "expiry", "P1D", "details", "rows", rows);
    if (with_request)
        json_object_set_new(params, "request", json_pack("{s:O}", "rows", rows));
    json_t *wf = json_pack("{s:s, s:s, s:{s:{s:s, s:o, s:{s:s, s:s, s:s}}, s:{s:s, s:{s:s}}}}",
                           "name", "big", "version", "1", "steps", "big-ask", "type", "approval",
                           "params", params, "next", "approved", "done", "rejected", "done",
                           "expired", "done", "done", "type", "log", "params", "message", "x");
    char *text = json_dumps(wf, JSON_INDENT(1));
    json_decref(wf);
    json_decref(rows);
    assert_non_null(text);
    return text;
}

/* Details or a request whose JSON passes 64 KiB get a warning naming the
 * step and the parameter (it will be shown as a notice); the workflow
 * still loads.  Just under the limit: no warning. */
static void test_huge_approval_warns(void **state)
{
    (void)state;
    struct as_err err = {0};
    struct diag_list dl = {0};
    struct workflow *wf = NULL;
    char *text = approval_wf(700, 1); /* ~70 KB each */
    enum as_code rc = wf_load_string(text, "big.json", &wf, &dl, &err);
    if (rc != AS_OK)
        dump_diags(&dl);
    assert_int_equal(rc, AS_OK);
    assert_non_null(wf);
    int details = 0, request = 0;
    for (size_t i = 0; i < dl.n; i++) {
        if (strcmp(dl.items[i].code, "TOO_LARGE_TO_SHOW") != 0)
            continue;
        assert_int_equal(dl.items[i].severity, DIAG_WARNING);
        assert_non_null(strstr(dl.items[i].msg, "approval step \"big-ask\""));
        if (strstr(dl.items[i].path, ".details")) {
            details++;
            assert_non_null(strstr(dl.items[i].msg, ": details is "));
        } else if (strstr(dl.items[i].path, ".request")) {
            request++;
            assert_non_null(strstr(dl.items[i].msg, ": request is "));
        }
        assert_non_null(strstr(dl.items[i].msg, "over 64 KiB"));
    }
    assert_int_equal(details, 1);
    assert_int_equal(request, 1);
    wf_free(wf);
    diag_free(&dl);
    free(text);

    text = approval_wf(600, 1); /* ~60 KB each */
    wf = NULL;
    assert_int_equal(wf_load_string(text, "fits.json", &wf, &dl, &err), AS_OK);
    for (size_t i = 0; i < dl.n; i++)
        assert_string_not_equal(dl.items[i].code, "TOO_LARGE_TO_SHOW");
    wf_free(wf);
    diag_free(&dl);
    free(text);
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_next_string_and_start),
        cmocka_unit_test(test_hash_stability),
        cmocka_unit_test(test_basic_diags),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_param_types),
        cmocka_unit_test(test_waits_and_hooks),
        cmocka_unit_test(test_graph),
        cmocka_unit_test(test_cycle_message),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_locator),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_print_one_line),
        cmocka_unit_test(test_schema_matches_registry),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_huge_approval_warns),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
