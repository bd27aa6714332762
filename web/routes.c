/* routes.c - the one route table of the web server (see routes.h). */
#include "web/routes.h"

#include <string.h>

#include "web/outbox_page.h"

const struct web_route web_routes[] = {
    /* path           prefix methods                     body secret name         handler */
    {"/", 0, WEB_GET | WEB_HEAD, 0, 0, "index", web_index},
    {"/a/", 1, WEB_GET | WEB_HEAD | WEB_POST, 1, 1, "approval", web_approval_page},
    {"/healthz", 0, WEB_GET | WEB_HEAD, 0, 0, "healthz", web_healthz},
    {"/metrics", 0, WEB_GET | WEB_HEAD, 0, 0, "metrics", web_metrics_page},
    {"/api/runs", 0, WEB_GET | WEB_HEAD, 0, 0, "api_runs", web_api_runs},
    {"/api/runs/", 1, WEB_GET | WEB_HEAD, 0, 0, "api_run", web_api_run},
    {"/api/approvals", 0, WEB_GET | WEB_HEAD, 0, 0, "api_approvals", web_api_approvals},
    {"/outbox", 0, WEB_GET | WEB_HEAD, 0, 0, "outbox", web_outbox_page}, /* demo only: web/outbox_page.h */
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

const struct web_route *web_route_find(const char *path)
{
    const struct web_route *best = NULL;
    size_t best_len = 0;
    for (const struct web_route *r = web_routes; r->path; r++) {
        size_t n = strlen(r->path);
        if (!r->prefix) {
            if (strcmp(path, r->path) == 0)
                return r;
        } else if (strncmp(path, r->path, n) == 0 && n > best_len) {
            best = r;
            best_len = n;
        }
    }
    return best;
}
