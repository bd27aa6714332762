/*
 * api.h - the first, read-only REST API (GET /api/runs, /api/runs/{id},
 * /api/approvals), kept as aliases of /api/v1 for clients written against
 * it (same bodies as before; errors in the v1 shape), /metrics, and
 * /healthz.  The REST API v1 is web/api_v1.c (docs/api.md).
 *
 * Access.  /healthz is public (it says only "ok" or "unavailable").  The
 * API and /metrics need a viewer's credential (web/auth.h): a stored API
 * token or the admin_token_file token, as `Authorization: Bearer TOKEN`.
 */
#ifndef ASSENT_WEB_API_H
#define ASSENT_WEB_API_H

#include "web/auth.h"
#include "web/server.h"

#endif
