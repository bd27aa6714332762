/*
 * api.h - the small read-only REST API (GET /api/runs, /api/runs/{id},
 * /api/approvals), /metrics, and /healthz.
 *
 * Access.  /healthz is public (it says only "ok" or "unavailable").  The API
 * and /metrics require `Authorization: Bearer <token>` where the token is
 * the content of config admin_token_file (at least 16 characters; the file
 * must not be group/other readable).  Without admin_token_file they are
 * DISABLED (403 with an explanation), not "open on localhost": behind a
 * reverse proxy every client looks local.  Wrong tokens count toward the
 * per-address rate limit shared with approval links (429 when exceeded).
 * The comparison hashes both sides and compares in constant time.
 */
#ifndef ASSENT_WEB_API_H
#define ASSENT_WEB_API_H

#include "web/server.h"

/* 1 when the request carries the admin bearer token; otherwise fills resp
 * (403 disabled, 401 missing/wrong, 429 rate-limited) and returns 0. */
int api_authorize(struct web_req *req, struct web_resp *resp);

#endif
