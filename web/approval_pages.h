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

struct form;

/*
 * The checks of a POST to an approval link made before its form is read:
 * same-origin (sec_fetch_site and origin are the request's headers, NULL
 * when absent; public_origin is public_url's origin, see same_origin in
 * approval_pages.c) and a urlencoded form content_type.  Returns 0, 403
 * (from another site) or 415.  Pure; exposed for tests and
 * tests/fuzz/fuzz_approval_http.c.
 */
/* The same-origin part of approval_post_check alone: 1 when the POST comes
 * from a page of ours (the console's forms use it too). */
int approval_same_origin(const char *sec_fetch_site, const char *origin,
                         const char *public_origin);

int approval_post_check(const char *sec_fetch_site, const char *origin,
                        const char *public_origin, const char *content_type);

/*
 * The answer in a decoded form, checked after its CSRF token: *decision
 * and *comment point into form (NULL when absent).  Returns 0 when the
 * decision is approve or reject and the comment at most 4000 bytes; 1 for
 * a missing or other decision, 2 for a comment too long.
 */
int approval_answer_check(const struct form *form, const char **decision, const char **comment);

#endif
