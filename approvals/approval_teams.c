/* approval_teams.c - the approval's Adaptive Card for Teams (see approval_teams.h). */
#include "approvals/approval_teams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/secret_file.h"
#include "engine/app.h"
#include "steps/webhook.h"

#define TEXT_MAX 1500 /* characters of the message shown; the page has it all */
#define FACT_MAX 300
#define MAX_FACTS 12

/* s cut to at most max bytes on a UTF-8 boundary, with "…" when cut (new reference). */
static json_t *cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return json_string(s);
    while (max && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    char *t = malloc(max + 4);
    if (!t)
        return NULL;
    memcpy(t, s, max);
    memcpy(t + max, "\xE2\x80\xA6", 4);
    json_t *j = json_string(t);
    free(t);
    return j;
}

static void fact(json_t *facts, const char *title, const char *value)
{
    if (value && *value && json_array_size(facts) < MAX_FACTS)
        json_array_append_new(facts, json_pack("{s:s, s:o}", "title", title, "value",
                                               cut(value, FACT_MAX)));
}

json_t *approval_teams_card(const json_t *view, const char *approver, const char *link,
                            const char *decide_by, int reminder)
{
    const char *subject = json_string_value(json_object_get(view, "subject"));
    const char *message = json_string_value(json_object_get(view, "message"));
    const char *by = json_string_value(json_object_get(view, "requested_by"));
    const char *hash = json_string_value(json_object_get(view, "request_hash"));
    json_t *facts = json_array(), *body = json_array();
    if (!facts || !body)
        goto oom;
    fact(facts, "Asked of", approver);
    fact(facts, "Decide by", decide_by);
    fact(facts, "Requested by", by);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(view, "details"), key, v)
    {
        char *text = json_is_string(v) ? strdup(json_string_value(v))
                                       : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        fact(facts, key, text);
        free(text);
    }
    if (hash) {
        char short_hash[20];
        snprintf(short_hash, sizeof short_hash, "%.16s", hash);
        fact(facts, "Request", short_hash);
    }
    json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "TextBlock",
                                          "text",
                                          reminder ? "Reminder: your decision is still needed"
                                                   : "Your decision is requested",
                                          "weight", "Bolder", "size", "Medium", "wrap", 1));
    json_array_append_new(body, json_pack("{s:s, s:o, s:b}", "type", "TextBlock", "text",
                                          cut(subject ? subject : "", 300), "wrap", 1));
    if (message && *message)
        json_array_append_new(body, json_pack("{s:s, s:o, s:b, s:b}", "type", "TextBlock",
                                              "text", cut(message, TEXT_MAX), "wrap", 1,
                                              "isSubtle", 1));
    json_array_append_new(body, json_pack("{s:s, s:o}", "type", "FactSet", "facts", facts));
    facts = NULL;
    json_array_append_new(body, json_pack("{s:s, s:s, s:b, s:b}", "type", "TextBlock", "text",
                                          "Opening the page decides nothing; you decide there.",
                                          "wrap", 1, "isSubtle", 1));
    json_t *card = json_pack(
        "{s:s, s:s, s:s, s:o, s:[{s:s, s:s, s:s}]}", "$schema",
        "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard", "version",
        "1.4", "body", body, "actions", "type", "Action.OpenUrl", "title", "Review and decide",
        "url", link);
    body = NULL;
    if (!card)
        goto oom;
    return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments",
                     "contentType", "application/vnd.microsoft.card.adaptive", "contentUrl",
                     "content", card);
oom:
    json_decref(facts);
    json_decref(body);
    return NULL;
}

enum as_code approval_teams_post(struct step_ctx *ctx, const json_t *card, const char *key,
                                 struct as_err *err)
{
    const char *file = config_str(ctx->app->cfg, "teams_webhook_url_file");
    char *url = NULL;
    size_t len = 0;
    json_t *result = NULL;
    if (!file || !*file)
        return as_errf(err, AS_EINVAL,
                       "the approval step asks for Teams (\"teams\": true) but the configuration "
                       "has no teams_webhook_url_file");
    enum as_code rc = secret_file_read(file, 8192, 1, &url, &len, err);
    if (rc)
        return rc;
    /* The file holds the URL, perhaps with a final newline. */
    while (len && (url[len - 1] == '\n' || url[len - 1] == '\r' || url[len - 1] == ' '))
        url[--len] = '\0';
    rc = webhook_post_once(ctx->app, url, card, key, &result, err);
    json_decref(result);
    secret_free(url);
    return rc;
}
