/*
 * approval_teams.h - an approval request posted to a Microsoft Teams channel
 * (step parameter "teams": true, config teams_webhook_url_file): one
 * Adaptive Card per approver link, with the summary and ONE button,
 * Action.OpenUrl to the approval page.  Nothing is decided inside Teams: the
 * button opens the page, where the approver decides as from the email (so
 * an unfurling bot or a link scanner decides nothing either).  A channel is
 * seen by many: use "require_sign_in" with it, so only the approver can
 * decide from the link.
 */
#ifndef ASSENT_APPROVAL_TEAMS_H
#define ASSENT_APPROVAL_TEAMS_H

#include <jansson.h>

#include "base/error.h"
#include "engine/step.h"

/*
 * The Workflows webhook message for one link: {"type": "message",
 * "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
 * "content": {AdaptiveCard 1.4}}]}.  view is the approval as the step sees
 * it (subject, message, details, requested_by, request_hash).  New reference.
 */
json_t *approval_teams_card(const json_t *view, const char *approver, const char *link,
                            const char *decide_by, int reminder);

/*
 * Post that card once per key (steps/webhook.h) to the URL in
 * teams_webhook_url_file.  AS_EINVAL when the step asks for Teams and the
 * configuration has no webhook; the poster's errors otherwise.
 */
enum as_code approval_teams_post(struct step_ctx *ctx, const json_t *card, const char *key,
                                 struct as_err *err) AS_WUR;

#endif
