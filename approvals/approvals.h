/*
 * approvals.h - the approvals module: the approval step, its tokens
 * (approvals/token.h), the rendering of what an approver is asked
 * (approvals/approval_render.h) and the decision policy.  Both the approval
 * step and the web pages (web/approval_pages.c) build on it.
 */
#ifndef ASSENT_APPROVALS_H
#define ASSENT_APPROVALS_H

/* Register the approval step type with the engine (once, at start). */
void approvals_register(void);

#endif
