/*
 * routes.h - the route table of the web server and the handlers it names.
 *
 * Adding a page is two edits: a handler `void web_<name>(struct web_req *,
 * struct web_resp *)` in its own file web/<name>.c (declared below), and one
 * line in the table in web/routes.c.  The server does method checks (405),
 * body limits, security headers, access logging and metrics for every
 * route; a handler only fills the response.
 */
#ifndef ASSENT_WEB_ROUTES_H
#define ASSENT_WEB_ROUTES_H

#include "web/server.h"

enum web_method { WEB_GET = 1, WEB_HEAD = 2, WEB_POST = 4, WEB_DELETE = 8 };

typedef void (*web_handler)(struct web_req *req, struct web_resp *resp);

struct web_route {
    const char *path;   /* exact path, or a prefix (ending in '/') when prefix = 1 */
    int prefix;
    unsigned methods;   /* WEB_GET | WEB_HEAD | WEB_POST | WEB_DELETE */
    int takes_body;     /* accept a request body (<= max_body) */
    int secret_tail;    /* the rest of the path is a secret (link token): logged as a hash prefix */
    const char *name;   /* label in metrics and logs, e.g. "approval" */
    web_handler handler;
    size_t max_body;    /* largest body taken, in bytes; 0: WEB_MAX_BODY */
};

/* The largest body route r takes (0 when it takes none). */
size_t web_route_max_body(const struct web_route *r);

/* The table, terminated by an entry with path NULL. */
extern const struct web_route web_routes[];

/* The route for path, or NULL.  Exact routes win over prefixes; the longest
 * prefix wins among prefixes. */
const struct web_route *web_route_find(const char *path);

/*
 * 1 when path (no leading '/') matches pattern segment by segment; a "{}"
 * segment matches any one segment, copied into arg (arg_size bytes).  An
 * empty segment never matches, nor does a trailing '/'.  For the sub-routes
 * of the REST API and the console.
 */
int web_route_match(const char *pattern, const char *path, char *arg, size_t arg_size);

/* Handlers (one file each). */
void web_approval_page(struct web_req *req, struct web_resp *resp); /* approval_pages.c */
void web_healthz(struct web_req *req, struct web_resp *resp);       /* api.c */
void web_api_runs(struct web_req *req, struct web_resp *resp);      /* api.c */
void web_api_run(struct web_req *req, struct web_resp *resp);       /* api.c */
void web_api_approvals(struct web_req *req, struct web_resp *resp); /* api.c */
void web_api_v1(struct web_req *req, struct web_resp *resp);        /* api_v1.c */
void web_metrics_page(struct web_req *req, struct web_resp *resp);  /* metrics.c */
void web_index(struct web_req *req, struct web_resp *resp);         /* approval_pages.c */
void web_console(struct web_req *req, struct web_resp *resp);       /* console.c */

#endif
