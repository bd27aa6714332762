/*
 * approval_render.h - what an approver is shown: the details table, the
 * change (current -> new and the PowerShell line) and the times, escaped
 * for HTML.  The approval step uses it for the emails, the web pages for
 * /a/{token}.
 */
#ifndef ASSENT_APPROVAL_RENDER_H
#define ASSENT_APPROVAL_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "base/html.h"

/*
 * What a page or an email shows of one approval (message, details, the
 * change, the request), rendered, in bytes: over this the largest parts
 * are replaced by a notice naming the request's fingerprint, so an
 * approval page stays under 64 KiB whatever a workflow put in it.
 */
#define APPROVAL_SHOW_MAX (56 * 1024)

/* `assent validate` warns about an approval's details or request whose
 * JSON text is longer than this: it cannot be shown. */
#define APPROVAL_WARN_JSON (64 * 1024)

/* One part of what is shown: fill b, then approval_fit_parts(). */
struct approval_part {
    const char *name; /* "details", "request", ...: for the notice and the log */
    struct html_buf b;
    int dropped;      /* set by approval_fit_parts: b was freed, show the notice */
};

/*
 * While the parts' rendered sizes add up to more than budget, replace the
 * largest part still shown (one that failed to render, e.g. past
 * HTML_BUF_MAX, counts as the largest): its buffer is freed and `dropped`
 * set, and a warning naming approval_id, the part, its size and the budget
 * is logged.  Returns the number of parts dropped.
 */
int approval_fit_parts(struct approval_part *parts, size_t n, size_t budget,
                       long long approval_id);

/*
 * The notice shown instead of a dropped part: as HTML (html = 1) or plain
 * text, with the request's fingerprint (request_hash, hex SHA-256).
 */
void approval_render_too_large(struct html_buf *b, const char *name, const char *request_hash,
                               int html);

/*
 * Render the `details` object of an approval as a table into b (escaped).
 * Nested objects become nested tables, arrays lists; a "protocols" array is
 * shown as chips with those also named in "used_last_30_days" (array of
 * names, or object name -> true) highlighted as used in the last 30 days.
 * Exposed for tests.
 */
void approval_render_details(struct html_buf *b, const json_t *details);

/* "2026-11-22 19:11 UTC" into buf (>= 32 bytes). */
void approval_format_time(long long ms, char *buf, size_t size);

/*
 * When s is an ISO 8601 date and time with seconds and a zone (Z or
 * +hh:mm), e.g. a tenant's "2026-11-30T08:12:44.1234567Z", write it as
 * approval_format_time does ("2026-11-30 08:12 UTC") and return 1;
 * otherwise leave buf alone and return 0.  Values shown on the page and in
 * the emails go through this, so 7-digit fractions never reach a person.
 */
int approval_format_timestamp(const char *s, char *buf, size_t size);

/*
 * Render the configuration change of an approval (its JSON as
 * db_approvals_get gives it) into b when its request has a "settings"
 * object: a table Setting | Current | New (current from the approval's
 * "current", "unknown" where it has none) and the exact PowerShell line,
 * m365_powershell_command() of its "cmdlet" with -Identity from
 * request.identity (when a non-empty string) and the settings.  Nothing
 * otherwise.  Exposed for tests.
 */
void approval_render_change(struct html_buf *b, const json_t *view);

#endif
