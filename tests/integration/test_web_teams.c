/*
 * test_web_teams.c - an approval posted to a Teams channel: a real `assent
 * serve` and a local HTTP server standing in for the Workflows webhook.
 * The card arrives as a Workflows message holding an Adaptive Card (schema,
 * version, exactly one Action.OpenUrl to the approver's page, nothing that
 * decides inside Teams); a 503 is retried and, once accepted, the card is
 * never posted again (nor the email sent twice); the webhook URL, a secret,
 * appears in no log; a webhook that refuses for good does not hold up the
 * approval.
 */
#include "tests/testutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "tests/integration/http_echo_server.h"
#include "tests/integration/web_harness.h"

#define WAIT_MS 30000

/* The harness's approval workflow with "teams": true and quick retries. */
static char *teams_workflow(void)
{
    char *text = wh_workflow("any", "P1D", NULL, NULL, 0);
    json_t *wf = json_loads(text, 0, NULL);
    free(text);
    json_t *ask = json_object_get(json_object_get(wf, "steps"), "ask");
    json_object_set_new(json_object_get(ask, "params"), "teams", json_true());
    json_object_set_new(ask, "retry",
                        json_pack("{s:i, s:s, s:s}", "attempts", 6, "backoff", "100ms",
                                  "max_backoff", "200ms"));
    text = json_dumps(wf, JSON_INDENT(2));
    json_decref(wf);
    return text;
}

static char *form_body(const char *csrf)
{
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, csrf ? csrf : "", 0);
    size_t n = strlen(esc) + 64;
    char *body = malloc(n);
    snprintf(body, n, "csrf=%s&decision=approve&comment=", esc);
    curl_free(esc);
    curl_easy_cleanup(c);
    return body;
}

/* Start the server with the webhook URL (secret) of srv at path. */
static void start_with_webhook(struct wh_server *s, const char *tag, struct echo_server *srv,
                               const char *path)
{
    wh_init(s, tag, 0);
    char *url = echo_url(srv, path);
    char *file = tu_path(s->dir, "teams-webhook.url");
    char line[600];
    snprintf(line, sizeof line, "%s\n", url);
    assert_int_equal(tu_write_file(file, line), 0);
    chmod(file, 0600);
    snprintf(s->extra_env[s->n_extra_env++], sizeof s->extra_env[0],
             "ASSENT_TEAMS_WEBHOOK_URL_FILE=%s", file);
    free(file);
    free(url);
    wh_start(s, 0);
}

/* The posts the webhook accepted (answered 200). */
static size_t accepted(json_t *reqs, json_t **last)
{
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "method")), "POST") != 0)
            continue;
        n++;
        *last = r;
    }
    return n;
}

static void test_card_posted_once(void **state)
{
    struct wh_server *s = *state;
    struct echo_server *srv = echo_start();
    assert_non_null(srv);
    start_with_webhook(s, "web-teams", srv, "/workflows/abc/triggers/manual?sig=SECRETSIG42");
    /* The first post meets a 503: retried, then accepted. */
    struct echo_fault f = {.status = 503, .retry_after = "0"};
    echo_push(srv, &f);
    char *wf = teams_workflow();
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"a@example.org\"]}");
    free(wf);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, "a@example.org", "Approval requested", 1, WAIT_MS, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);

    json_t *reqs = echo_requests(srv), *last = NULL;
    assert_int_equal(json_array_size(reqs), 2); /* the 503, then the card */
    assert_int_equal(accepted(reqs, &last), 2);
    const char *ct = json_string_value(json_object_get(last, "content_type"));
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    /* Both attempts carried the same idempotency key. */
    assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "idempotency_key")),
                        json_string_value(json_object_get(last, "idempotency_key")));

    /* The message: a Workflows message with one Adaptive Card. */
    json_t *msg = json_object_get(last, "body");
    assert_string_equal(json_string_value(json_object_get(msg, "type")), "message");
    json_t *atts = json_object_get(msg, "attachments");
    assert_int_equal(json_array_size(atts), 1);
    json_t *att = json_array_get(atts, 0);
    assert_string_equal(json_string_value(json_object_get(att, "contentType")),
                        "application/vnd.microsoft.card.adaptive");
    json_t *card = json_object_get(att, "content");
    assert_string_equal(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
    assert_string_equal(json_string_value(json_object_get(card, "$schema")),
                        "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_string_equal(json_string_value(json_object_get(card, "version")), "1.4");
    /* Every body element is a known element with its required keys. */
    size_t i;
    json_t *el;
    json_array_foreach(json_object_get(card, "body"), i, el)
    {
        const char *type = json_string_value(json_object_get(el, "type"));
        assert_non_null(type);
        if (!strcmp(type, "TextBlock")) {
            assert_true(json_is_string(json_object_get(el, "text")));
        } else {
            assert_string_equal(type, "FactSet");
            size_t k;
            json_t *fct;
            json_array_foreach(json_object_get(el, "facts"), k, fct)
            {
                assert_true(json_is_string(json_object_get(fct, "title")));
                assert_true(json_is_string(json_object_get(fct, "value")));
            }
        }
    }
    /* One button, which only opens the approver's page: nothing decides in Teams. */
    json_t *actions = json_object_get(card, "actions");
    assert_int_equal(json_array_size(actions), 1);
    json_t *a = json_array_get(actions, 0);
    assert_string_equal(json_string_value(json_object_get(a, "type")), "Action.OpenUrl");
    /* The approver's page (after a retry the card may carry a newer link of
     * the same approver than the email: both open the same request). */
    const char *card_link = json_string_value(json_object_get(a, "url"));
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/a/", s->url);
    assert_int_equal(strncmp(card_link, prefix, strlen(prefix)), 0);
    char *card_page = NULL;
    assert_int_equal(wh_get("GET", card_link, &card_page, NULL), 200);
    assert_non_null(strstr(card_page, "Disable legacy protocols for u@example.org"));
    assert_non_null(strstr(card_page, "a@example.org"));
    free(card_page);
    char *card_text = json_dumps(card, JSON_COMPACT);
    assert_null(strstr(card_text, "Action.Submit"));
    assert_null(strstr(card_text, "Action.Execute"));
    assert_non_null(strstr(card_text, "Disable legacy protocols for u@example.org"));
    assert_non_null(strstr(card_text, "a@example.org"));
    free(card_text);
    json_decref(reqs);

    /* Decide on the page: no further post, one email. */
    char *page = NULL;
    assert_int_equal(wh_get("GET", link, &page, NULL), 200);
    char *csrf = wh_csrf(page);
    char *body = form_body(csrf);
    assert_int_equal(wh_post(link, body, NULL, NULL), 200);
    assert_int_equal(wh_wait_run(s, run, "succeeded", WAIT_MS), 0);
    assert_int_equal(echo_count(srv), 2);
    assert_int_equal(wh_count_mail(s, "a@example.org"), 1);
    /* The webhook URL is a secret: in no log line. */
    char *log = wh_log(s);
    assert_null(strstr(log, "SECRETSIG42"));
    free(log);
    free(body);
    free(csrf);
    free(page);
    free(link);
    echo_stop(srv);
}

static void test_refused_card_does_not_block(void **state)
{
    struct wh_server *s = *state;
    struct echo_server *srv = echo_start();
    assert_non_null(srv);
    start_with_webhook(s, "web-teams-gone", srv, "/status/404?sig=SECRETSIG43");
    char *wf = teams_workflow();
    int64_t run = wh_submit(s, wf, "{\"approvers\": [\"b@example.org\"]}");
    free(wf);
    char *link = NULL;
    assert_int_equal(wh_wait_mail(s, "b@example.org", "Approval requested", 1, WAIT_MS, &link), 1);
    assert_int_equal(wh_wait_run(s, run, "waiting", WAIT_MS), 0);
    assert_int_equal(echo_count(srv), 1); /* refused for good: not retried */
    char *log = wh_log(s);
    assert_non_null(strstr(log, "Teams card for b@example.org was not posted"));
    assert_null(strstr(log, "SECRETSIG43"));
    free(log);
    free(link);
    echo_stop(srv);
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_card_posted_once, wh_setup, wh_teardown),
        cmocka_unit_test_setup_teardown(test_refused_card_does_not_block, wh_setup, wh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
