/*
 * approval_pages.h - the pages behind an approval link, /a/{token}.
 *
 *   GET/HEAD  show only: what is asked, of whom, by whom, until when, the
 *             details and exactly what will change, with Approve / Reject
 *             buttons, a comment box and a CSRF token bound to this link.
 *             No script; nothing submits itself.  Fetching it any number of
 *             times changes nothing (scanners such as Safe Links do).
 *             After a decision: who decided and when (200); expired or
 *             withdrawn (run cancelled): 410; unknown: 404.
 *   POST      decides: same-origin only (403 otherwise): Sec-Fetch-Site, when
 *             sent, must be same-origin or none; Origin, when sent, must be
 *             public_url's origin, or "null" together with Sec-Fetch-Site:
 *             same-origin (Chromium's Origin under no-referrer);
 *             application/x-www-form-urlencoded via web/form.c, fields csrf,
 *             decision (approve|reject), comment; then approval_decide()
 *             in one transaction and engine_wake().  Replays and losers of a
 *             race get 409, forged or foreign CSRF tokens 403, expired 410.
 *
 * Wrong tokens and forged CSRF tokens count toward the per-address limit
 * (429 with Retry-After once exceeded).  Tokens never reach the log: the
 * server logs a hash prefix, this module the approval id.
 *
 * The handlers are declared in web/routes.h.
 */
#ifndef ASSENT_WEB_APPROVAL_PAGES_H
#define ASSENT_WEB_APPROVAL_PAGES_H

/* How long the CSRF token of a page stays valid. */
#define APPROVAL_CSRF_MAX_AGE_MS (2 * 60 * 60 * 1000LL)

#endif
