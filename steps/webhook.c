/* webhook.c - post a JSON message to a webhook once (see webhook.h). */
#include "steps/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "engine/app.h"
#include "steps/http_client.h"
#include "steps/mail.h"

struct post {
    struct app *app;
    const char *url;
    const char *body;
    const char *key;
};

/* The URL's scheme and host only: the rest is its secret. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(out, size, "%.*s", (int)n, p);
}

static enum as_code post(void *ud, json_t **answer, struct as_err *err)
{
    struct post *pp = ud;
    char host[256];
    url_host(pp->url, host, sizeof host);
    long long t = config_int(pp->app->cfg, "http_timeout_seconds");
    struct http_request req = {
        .method = "POST",
        .url = pp->url,
        .body = pp->body,
        .body_len = strlen(pp->body),
        .content_type = "application/json",
        .idempotency_key = pp->key,
        .connect_timeout_ms = 10000,
        .timeout_ms = (t > 0 ? t : 30) * 1000,
        .max_response = 64 * 1024,
        .no_redirects = 1,
        .fresh_connect = 1,
    };
    struct http_response resp = {0};
    struct as_err herr = {0};
    enum as_code rc = http_client_perform(&req, &resp, &herr);
    if (rc) {
        /* The URL is a secret: name the host only. */
        rc = as_errf(err, rc == AS_ETIMEOUT || rc == AS_ETRANSIENT ? AS_ETRANSIENT : rc,
                     "posting to %s: %s", host, resp.reason[0] ? resp.reason : "failed");
    } else if (resp.status >= 200 && resp.status < 300) {
        *answer = json_pack("{s:i}", "status", (int)resp.status);
    } else if (resp.status == 429 || resp.status >= 500) {
        rc = as_errf(err, AS_ETRANSIENT, "posting to %s: HTTP %ld%s%.200s", host, resp.status,
                     resp.body_len ? ": " : "", resp.body ? resp.body : "");
    } else {
        rc = as_errf(err, AS_EPERMANENT, "posting to %s: HTTP %ld%s%.200s", host, resp.status,
                     resp.body_len ? ": " : "", resp.body ? resp.body : "");
    }
    http_response_free(&resp);
    return rc;
}

enum as_code webhook_post_once(struct app *app, const char *url, const json_t *body,
                               const char *key, json_t **result, struct as_err *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        return as_errf(err, AS_ENOMEM, "out of memory");
    struct post pp = {app, url, text, key};
    enum as_code rc = mail_once(app, key, "webhook", post, &pp, result, err);
    free(text);
    return rc;
}
