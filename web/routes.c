/* routes.c - the one route table of the web server (see routes.h). */
#include "web/routes.h"

#include <string.h>

#include "web/console.h"
#include "web/outbox_page.h"
#include "web/signin.h"

const struct web_route web_routes[] = {
    /* path           prefix methods                     body secret name         handler  max_body */
    {"/", 0, WEB_GET | WEB_HEAD, 0, 0, "index", web_index, 0},
    {"/a/", 1, WEB_GET | WEB_HEAD | WEB_POST, 1, 1, "approval", web_approval_page, 0},
    {"/healthz", 0, WEB_GET | WEB_HEAD, 0, 0, "healthz", web_healthz, 0},
    {"/metrics", 0, WEB_GET | WEB_HEAD, 0, 0, "metrics", web_metrics_page, 0},
    {"/api/runs", 0, WEB_GET | WEB_HEAD, 0, 0, "api_runs", web_api_runs, 0},
    {"/api/runs/", 1, WEB_GET | WEB_HEAD, 0, 0, "api_run", web_api_run, 0},
    {"/api/approvals", 0, WEB_GET | WEB_HEAD, 0, 0, "api_approvals", web_api_approvals, 0},
    /* REST API v1: one entry, routed further by web/api_v1.c (docs/api.md) */
    {"/api/v1/", 1, WEB_GET | WEB_HEAD | WEB_POST | WEB_DELETE, 1, 0, "api_v1", web_api_v1,
     WEB_API_MAX_BODY},
    /* the admin console: routed further by web/console.c (docs/api.md) */
    {"/console", 0, WEB_GET | WEB_HEAD, 0, 0, "console", web_console, 0},
    {"/console/", 1, WEB_GET | WEB_HEAD | WEB_POST, 1, 0, "console", web_console, CONSOLE_MAX_BODY},
    /* sign-in with Entra ID (web/signin.h) */
    {"/auth/login", 0, WEB_GET | WEB_HEAD | WEB_POST, 1, 0, "auth_login", web_auth_login, 0},
    {"/auth/callback", 0, WEB_GET, 0, 0, "auth_callback", web_auth_callback, 0},
    {"/outbox", 0, WEB_GET | WEB_HEAD, 0, 0, "outbox", web_outbox_page, 0}, /* demo only: web/outbox_page.h */
    {NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

size_t web_route_max_body(const struct web_route *r)
{
    if (!r->takes_body)
        return 0;
    return r->max_body ? r->max_body : WEB_MAX_BODY;
}

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

int web_route_match(const char *pattern, const char *path, char *arg, size_t arg_size)
{
    const char *p = pattern, *s = path;
    for (;;) {
        size_t pl = strcspn(p, "/"), sl = strcspn(s, "/");
        if (sl == 0)
            return 0;
        if (pl == 2 && strncmp(p, "{}", 2) == 0) {
            if (sl >= arg_size)
                return 0;
            memcpy(arg, s, sl);
            arg[sl] = '\0';
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
        if (!*p || !*s)
            return !*p && !*s;
        p++;
        s++;
    }
}
