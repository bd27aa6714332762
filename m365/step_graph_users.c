/*
 * step_graph_users.c - the `graph_users` step: list users from Microsoft
 * Graph, optionally filtered with an OData $filter, bounded by "max".
 *
 * Output: {"users": [{id, userPrincipalName, displayName, mail,
 * accountEnabled}, ...], "count": n, "truncated": bool}.
 */
#include "m365/m365_step.h"
#include "engine/step.h"

#define GRAPH_USERS_DEFAULT 100
#define GRAPH_USERS_LIMIT 1000

static const struct step_param params[] = {
    {"filter", SP_STRING, 0,
     "OData $filter, e.g. \"startswith(userPrincipalName,'a')\" or \"accountEnabled eq true\""},
    {"max", SP_INT, 0, "most users to return (default 100, at most 1000)"},
    {NULL, SP_ANY, 0, NULL},
};

static const char *const outcomes[] = {"success", NULL};

struct collect {
    json_t *users;
    long max;
    int truncated;
};

static enum as_code collect_user(const json_t *u, void *ud, struct as_err *err)
{
    static const char *const keep[] = {"id", "userPrincipalName", "displayName", "mail",
                                       "accountEnabled", NULL};
    struct collect *c = ud;
    if (!u)
        return AS_OK;
    if ((long)json_array_size(c->users) >= c->max) {
        c->truncated = 1;
        return AS_ECANCELLED; /* enough: stop paging */
    }
    if (json_array_append_new(c->users, m365_step_pick(u, keep)) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    return AS_OK;
}

static void validate(const json_t *p, const char *path, struct diag_list *out)
{
    const json_t *max = json_object_get(p, "max");
    if (json_is_integer(max) &&
        (json_integer_value(max) < 1 || json_integer_value(max) > GRAPH_USERS_LIMIT))
        diag_add(out, DIAG_ERROR, "BAD_PARAM_VALUE", path, "max must be from 1 to %d",
                 GRAPH_USERS_LIMIT);
}

static void execute(struct step_ctx *ctx, struct step_result *res)
{
    struct as_err err = {0};
    const json_t *jmax = json_object_get(ctx->params, "max");
    const char *filter = json_string_value(json_object_get(ctx->params, "filter"));
    struct collect c = {.users = json_array(), .max = GRAPH_USERS_DEFAULT};
    if (json_is_integer(jmax))
        c.max = (long)json_integer_value(jmax);
    if (c.max < 1 || c.max > GRAPH_USERS_LIMIT) {
        json_decref(c.users);
        step_fail(res, "max must be from 1 to %d", GRAPH_USERS_LIMIT);
        return;
    }
    struct m365 *m = m365_step_client(ctx, res);
    if (!m || !c.users) {
        if (m)
            step_retry(res, 0, "out of memory");
        json_decref(c.users);
        return;
    }
    enum as_code rc = m365_users_list(m, filter, collect_user, &c, &err);
    if (rc && rc != AS_ECANCELLED) {
        json_decref(c.users);
        m365_step_error(ctx, res, m, rc, "listing users", &err);
        return;
    }
    step_ok(res, NULL, json_pack("{s:I, s:b, s:o}", "count", (json_int_t)json_array_size(c.users),
                                 "truncated", c.truncated, "users", c.users));
}

const struct step_type step_type_graph_users = {
    .name = "graph_users",
    .doc = "list users from Microsoft Graph (optional $filter), at most max",
    .params = params,
    .outcomes = outcomes,
    .validate = validate,
    .execute = execute,
};
