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
