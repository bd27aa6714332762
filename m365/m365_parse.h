/*
 * m365_parse.h - the parts of the Microsoft 365 client that read what the
 * services answer, with no network and no client object: Retry-After
 * values, response header lines, error bodies, Graph and Exchange
 * (InvokeCommand) result pages with their @odata.nextLink, and the email
 * app usage report CSV.  m365.c and m365_calls.c call these on every
 * response; they are exposed here for the unit tests and the fuzz target
 * tests/fuzz/fuzz_m365.c.  Wire formats: docs/m365.md.
 *
 * Like m365_internal.h, not for use by steps: they go through m365.h.
 */
#ifndef ASSENT_M365_PARSE_H
#define ASSENT_M365_PARSE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "m365/m365.h"
#include "m365/m365_internal.h"

/*
 * The error of a non-2xx response (resp->status, resp->body/len,
 * resp->request_id): the code by status (AS_EAUTH 401/403, AS_ENOTFOUND
 * 404 or an Exchange *NotFound* exception, AS_ETRANSIENT 429/5xx,
 * AS_EPERMANENT otherwise) and a message in err naming `what`, the status,
 * the service's error code, its message and request id.  exo_errors: the
 * Exchange admin API's order for the message (details[].message, then
 * innererror.internalexception.message, then error.message).  Returns the
 * code (never AS_OK).
 */
enum as_code m365_http_error(const char *what, int exo_errors, const struct m365_resp *resp,
                             struct as_err *err);

/*
 * An @odata.nextLink checked against the service root `base` (a bearer
 * token must not follow a link to another host): a relative link is
 * completed with base's origin, an absolute one must have base's origin.
 * *out: the URL to call next (malloc'd), NULL on error.
 */
enum as_code m365_next_link_on(const char *base, const char *link, char **out,
                               struct as_err *err) AS_WUR;

/*
 * One Graph list page (parsed JSON; may be NULL): cb for each element of
 * its "value" array (which must exist), then cb(NULL) for the page
 * boundary, then *next_url = the checked @odata.nextLink (malloc'd) or
 * NULL at the last page.  A code from cb stops and is returned.
 */
enum as_code m365_graph_page(const json_t *page, const char *what, const char *base,
                             enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                             void *ud, char **next_url, struct as_err *err) AS_WUR;

/*
 * One Exchange InvokeCommand result page (may be NULL: an empty body):
 * "@adminapi.warnings" appended to warnings (an array; may be NULL); each
 * object of "value" (absent or null: none; another type: AS_EPERMANENT)
 * has its "@odata..." annotations removed (page is modified) and goes to
 * cb (may be NULL), then cb(NULL); *next_url as for m365_graph_page.
 */
enum as_code m365_exo_page(json_t *page, const char *what, const char *base,
                           enum as_code (*cb)(const json_t *item, void *ud, struct as_err *err),
                           void *ud, json_t *warnings, char **next_url, struct as_err *err) AS_WUR;

/*
 * The email app usage report (getEmailAppUsageUserDetail CSV, UTF-8 BOM
 * optional) read from csv from its start, twice: first the header and
 * every row are checked (a row whose User Principal Name has no '@' means
 * the tenant conceals names: AS_EPERMANENT with *concealed = 1 and no
 * row delivered), then each row goes to cb.  A field past 64 KiB, a
 * header without the needed columns or an empty file is AS_EPERMANENT.
 * concealed may be NULL.
 */
enum as_code m365_usage_parse(FILE *csv,
                              enum as_code (*cb)(const struct m365_usage_row *row, void *ud,
                                                 struct as_err *err),
                              void *ud, int *concealed, struct as_err *err) AS_WUR;

#endif
