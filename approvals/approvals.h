/*
 * approvals.h - the approvals module: the approval step, its tokens
 * (approvals/token.h), the rendering of what an approver is asked
 * (approvals/approval_render.h) and the decision policy.  Both the approval
 * step and the web pages (web/approval_pages.c) build on it.
 */
#ifndef ASSENT_APPROVALS_H
#define ASSENT_APPROVALS_H

#include <jansson.h>

/* Register the approval step type with the engine (once, at start). */
void approvals_register(void);

/*
 * The approval step's output for an approval that has ended (view: the
 * approval as db_approvals_get gives it): {"decision", "decided_by",
 * "comment", "decided_at", "decided_via", "request_hash", "approval_id",
 * "approvers": [...]}.  The step returns it, and a decision that ends the
 * waiting step at once (approvals/approval_decide.h) records it, so the two
 * cannot differ.  New reference, NULL out of memory.
 */
json_t *approval_step_output(const json_t *view);

#endif
