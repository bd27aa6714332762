/*
 * sim_filter.h - the OData $filter subset the simulator's auditLogs/signIns
 * endpoint understands:
 *
 *   expr    := and_expr ("or" and_expr)*
 *   and_expr:= unary ("and" unary)*
 *   unary   := "not" unary | "(" expr ")" | cmp | "startswith(" field "," 'text' ")"
 *   cmp     := field ("eq"|"ne"|"gt"|"ge"|"lt"|"le") literal
 *
 * Fields: createdDateTime (an unquoted ISO 8601 literal), clientAppUsed,
 * userPrincipalName, userId, userDisplayName, appId, appDisplayName,
 * ipAddress, conditionalAccessStatus, resourceDisplayName, id,
 * location/city, location/countryOrRegion ('quoted' strings, '' escapes a
 * quote), status/errorCode (integer), isInteractive (true/false), and the beta
 * lambda signInEventTypes/any(t: t eq 'interactiveUser'|'nonInteractiveUser').
 * String comparisons ignore case (an assumption about the real service).
 */
#ifndef SIM_FILTER_H
#define SIM_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim_state.h"

struct sim_filter;

/* Compile text; returns 0 and *out (free with sim_filter_free), or -1 with a message. */
int sim_filter_parse(const char *text, struct sim_filter **out, char *err, size_t err_size);
int sim_filter_match(const struct sim_filter *f, const struct sim_signin *s);
/*
 * A lower bound on createdDateTime implied by the filter (a top-level
 * "createdDateTime ge|gt X" in an and-chain), or INT64_MIN when none.  The
 * sign-ins are sorted newest first, so a scan can stop below it.
 */
int64_t sim_filter_time_floor(const struct sim_filter *f);
/* 1 when the filter names signInEventTypes: without it a listing holds the
 * interactive sign-ins only, as the service's. */
int sim_filter_names_event_types(const struct sim_filter *f);
void sim_filter_free(struct sim_filter *f);

#endif
