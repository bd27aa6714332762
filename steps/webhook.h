/*
 * webhook.h - post a JSON message to a webhook once: a card to a Microsoft
 * Teams channel through a Workflows webhook ("Send webhook alerts to a
 * channel"), with the at-most-once bookkeeping of email (mail_once): a
 * retry after success posts nothing, a crash between posting and recording
 * re-posts at most once.
 *
 * The webhook URL is a secret (it carries its own signature): it is read
 * from a file others cannot read (secret_file), never logged; messages name
 * only its host.
 */
#ifndef ASSENT_STEPS_WEBHOOK_H
#define ASSENT_STEPS_WEBHOOK_H

#include <jansson.h>

#include "base/error.h"

struct app;

/*
 * POST body (borrowed, sent as compact JSON) to url, once per key.  2xx is
 * success (*result as mail_once: "answer" {"status"}); 429, 5xx and
 * connection failures are AS_ETRANSIENT (err says when to try again); any
 * other status is AS_EPERMANENT with the service's reply.
 */
enum as_code webhook_post_once(struct app *app, const char *url, const json_t *body,
                               const char *key, json_t **result, struct as_err *err) AS_WUR;

#endif
