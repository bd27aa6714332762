/* sim_filter.c - OData $filter subset for sign-in events: tokenizer, recursive-descent parser, evaluator. */
#include "sim/sim_filter.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 32
#define MAX_NODES 256

enum node_kind { N_AND, N_OR, N_NOT, N_CMP, N_STARTSWITH, N_EVENT_TYPE };
enum op { OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE };
enum field {
    F_CREATED, F_CLIENT_APP, F_UPN, F_USER_ID, F_USER_DISPLAY, F_APP_ID, F_APP_DISPLAY, F_IP,
    F_CA_STATUS, F_RESOURCE, F_ID, F_CITY, F_COUNTRY, F_ERROR_CODE, F_INTERACTIVE,
};
enum ftype { T_TIME, T_STR, T_INT, T_BOOL };

static const struct {
    const char *name;
    enum field f;
    enum ftype t;
} fields[] = {
    {"createdDateTime", F_CREATED, T_TIME},
    {"clientAppUsed", F_CLIENT_APP, T_STR},
    {"userPrincipalName", F_UPN, T_STR},
    {"userId", F_USER_ID, T_STR},
    {"userDisplayName", F_USER_DISPLAY, T_STR},
    {"appId", F_APP_ID, T_STR},
    {"appDisplayName", F_APP_DISPLAY, T_STR},
    {"ipAddress", F_IP, T_STR},
    {"conditionalAccessStatus", F_CA_STATUS, T_STR},
    {"resourceDisplayName", F_RESOURCE, T_STR},
    {"id", F_ID, T_STR},
    {"location/city", F_CITY, T_STR},
    {"location/countryOrRegion", F_COUNTRY, T_STR},
    {"status/errorCode", F_ERROR_CODE, T_INT},
    {"isInteractive", F_INTERACTIVE, T_BOOL},
};

struct node {
    enum node_kind kind;
    struct node *a, *b;
    enum field field;
    enum ftype type;
    enum op op;
    char *str;
    int64_t num;
};

struct sim_filter {
    struct node *root;
};

struct parser {
    const char *p;
    char *err;
    size_t err_size;
    int failed;
    int n_nodes;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    free(n->str);
    free(n);
}

static void perr(struct parser *P, const char *what)
{
    if (!P->failed)
        snprintf(P->err, P->err_size, "Invalid filter clause: %s near '%.40s'", what, P->p);
    P->failed = 1;
}

static void skip_ws(struct parser *P)
{
    while (*P->p == ' ' || *P->p == '\t')
        P->p++;
}

/* Match a keyword followed by a non-identifier char. */
static int keyword(struct parser *P, const char *kw)
{
    skip_ws(P);
    size_t n = strlen(kw);
    if (strncasecmp(P->p, kw, n) == 0 && !isalnum((unsigned char)P->p[n]) && P->p[n] != '_' &&
        P->p[n] != '/') {
        P->p += n;
        return 1;
    }
    return 0;
}

static struct node *new_node(struct parser *P, enum node_kind k)
{
    if (++P->n_nodes > MAX_NODES) {
        perr(P, "too many terms");
        return NULL;
    }
    struct node *n = calloc(1, sizeof *n);
    if (!n)
        perr(P, "out of memory");
    else
        n->kind = k;
    return n;
}

static struct node *parse_or(struct parser *P, int depth);

static int parse_field(struct parser *P, enum field *f, enum ftype *t)
{
    skip_ws(P);
    const char *start = P->p;
    while (isalnum((unsigned char)*P->p) || *P->p == '/' || *P->p == '_')
        P->p++;
    size_t n = (size_t)(P->p - start);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strlen(fields[i].name) == n && strncmp(fields[i].name, start, n) == 0) {
            *f = fields[i].f;
            *t = fields[i].t;
            return 0;
        }
    }
    P->p = start;
    perr(P, n ? "unsupported property" : "expected a property name");
    return -1;
}

static char *parse_quoted(struct parser *P)
{
    skip_ws(P);
    if (*P->p != '\'') {
        perr(P, "expected a 'quoted' string");
        return NULL;
    }
    P->p++;
    struct strbuf b = {0};
    for (;;) {
        if (!*P->p) {
            strbuf_free(&b);
            perr(P, "unterminated string");
            return NULL;
        }
        if (*P->p == '\'') {
            if (P->p[1] == '\'') {
                strbuf_addc(&b, '\'');
                P->p += 2;
                continue;
            }
            P->p++;
            break;
        }
        strbuf_addc(&b, *P->p++);
    }
    char *s = strbuf_take(&b);
    if (!s)
        perr(P, "out of memory");
    return s;
}

static struct node *parse_cmp(struct parser *P)
{
    struct node *n = new_node(P, N_CMP);
    if (!n)
        return NULL;
    if (parse_field(P, &n->field, &n->type) != 0)
        goto fail;
    static const char *const ops[] = {"eq", "ne", "gt", "ge", "lt", "le"};
    int op = -1;
    for (int i = 0; i < 6 && op < 0; i++)
        if (keyword(P, ops[i]))
            op = i;
    if (op < 0) {
        perr(P, "expected eq, ne, gt, ge, lt or le");
        goto fail;
    }
    n->op = (enum op)op;
    skip_ws(P);
    switch (n->type) {
    case T_TIME: {
        const char *end;
        if (*P->p == '\'') {
            perr(P, "a DateTimeOffset literal is not quoted");
            goto fail;
        }
        if (parse_iso(P->p, &n->num, &end) != 0) {
            perr(P, "expected an ISO 8601 date-time");
            goto fail;
        }
        P->p = end;
        break;
    }
    case T_STR:
        if (n->op != OP_EQ && n->op != OP_NE) {
            perr(P, "only eq and ne compare strings");
            goto fail;
        }
        n->str = parse_quoted(P);
        if (!n->str)
            goto fail;
        break;
    case T_INT: {
        char *end;
        long long v = strtoll(P->p, &end, 10);
        if (end == P->p) {
            perr(P, "expected an integer");
            goto fail;
        }
        n->num = v;
        P->p = end;
        break;
    }
    case T_BOOL:
        if (n->op != OP_EQ && n->op != OP_NE) {
            perr(P, "only eq and ne compare booleans");
            goto fail;
        }
        if (keyword(P, "true"))
            n->num = 1;
        else if (keyword(P, "false"))
            n->num = 0;
        else {
            perr(P, "expected true or false");
            goto fail;
        }
        break;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

/* A lambda over the beta signIn's signInEventTypes collection, the one form
 * Graph documents for it: signInEventTypes/any(t: t eq 'nonInteractiveUser'). */
static struct node *parse_event_type(struct parser *P)
{
    P->p += 21;
    skip_ws(P);
    const char *var = P->p;
    while (isalnum((unsigned char)*P->p) || *P->p == '_')
        P->p++;
    size_t vlen = (size_t)(P->p - var);
    skip_ws(P);
    if (!vlen || *P->p != ':') {
        perr(P, "expected a lambda variable and ':'");
        return NULL;
    }
    P->p++;
    skip_ws(P);
    if (strncmp(P->p, var, vlen) != 0 || isalnum((unsigned char)P->p[vlen])) {
        perr(P, "expected the lambda variable");
        return NULL;
    }
    P->p += vlen;
    if (!keyword(P, "eq")) {
        perr(P, "expected eq");
        return NULL;
    }
    struct node *n = new_node(P, N_EVENT_TYPE);
    if (!n)
        return NULL;
    n->str = parse_quoted(P);
    skip_ws(P);
    if (!n->str || *P->p != ')') {
        perr(P, "expected ')'");
        node_free(n);
        return NULL;
    }
    P->p++;
    return n;
}

static struct node *parse_unary(struct parser *P, int depth)
{
    if (depth > MAX_DEPTH) {
        perr(P, "nested too deeply");
        return NULL;
    }
    skip_ws(P);
    if (keyword(P, "not")) {
        struct node *n = new_node(P, N_NOT);
        if (!n)
            return NULL;
        n->a = parse_unary(P, depth + 1);
        if (!n->a) {
            node_free(n);
            return NULL;
        }
        return n;
    }
    if (*P->p == '(') {
        P->p++;
        struct node *n = parse_or(P, depth + 1);
        skip_ws(P);
        if (n && *P->p != ')') {
            perr(P, "expected ')'");
            node_free(n);
            return NULL;
        }
        if (n)
            P->p++;
        return n;
    }
    if (strncasecmp(P->p, "signInEventTypes/any(", 21) == 0)
        return parse_event_type(P);
    if (strncasecmp(P->p, "startswith(", 11) == 0) {
        P->p += 11;
        struct node *n = new_node(P, N_STARTSWITH);
        if (!n)
            return NULL;
        if (parse_field(P, &n->field, &n->type) != 0)
            goto fail;
        if (n->type != T_STR) {
            perr(P, "startswith needs a string property");
            goto fail;
        }
        skip_ws(P);
        if (*P->p++ != ',') {
            perr(P, "expected ','");
            goto fail;
        }
        n->str = parse_quoted(P);
        skip_ws(P);
        if (!n->str || *P->p != ')') {
            perr(P, "expected ')'");
            goto fail;
        }
        P->p++;
        return n;
    fail:
        node_free(n);
        return NULL;
    }
    return parse_cmp(P);
}

static struct node *parse_and(struct parser *P, int depth)
{
    struct node *left = parse_unary(P, depth);
    while (left && keyword(P, "and")) {
        struct node *n = new_node(P, N_AND);
        struct node *right = n ? parse_unary(P, depth) : NULL;
        if (!n || !right) {
            node_free(n);
            node_free(left);
            return NULL;
        }
        n->a = left;
        n->b = right;
        left = n;
    }
    return left;
}

static struct node *parse_or(struct parser *P, int depth)
{
    struct node *left = parse_and(P, depth);
    while (left && keyword(P, "or")) {
        struct node *n = new_node(P, N_OR);
        struct node *right = n ? parse_and(P, depth) : NULL;
        if (!n || !right) {
            node_free(n);
            node_free(left);
            return NULL;
        }
        n->a = left;
        n->b = right;
        left = n;
    }
    return left;
}

int sim_filter_parse(const char *text, struct sim_filter **out, char *err, size_t err_size)
{
    struct parser P = {text, err, err_size, 0, 0};
    *out = NULL;
    struct node *root = parse_or(&P, 0);
    skip_ws(&P);
    if (root && *P.p) {
        perr(&P, "unexpected text");
        node_free(root);
        root = NULL;
    }
    if (!root) {
        if (!P.failed)
            perr(&P, "empty filter");
        return -1;
    }
    struct sim_filter *f = malloc(sizeof *f);
    if (!f) {
        node_free(root);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    f->root = root;
    *out = f;
    return 0;
}

static const char *str_field(const struct sim_signin *s, enum field f)
{
    switch (f) {
    case F_CLIENT_APP: return s->client_app;
    case F_UPN: return s->upn;
    case F_USER_ID: return s->user_id;
    case F_USER_DISPLAY: return s->user_display_name;
    case F_APP_ID: return s->app_id;
    case F_APP_DISPLAY: return s->app_display_name;
    case F_IP: return s->ip;
    case F_CA_STATUS: return s->ca_status;
    case F_RESOURCE: return s->resource_display_name;
    case F_ID: return s->id;
    case F_CITY: return s->city;
    case F_COUNTRY: return s->country;
    default: return NULL;
    }
}

static int cmp_num(int64_t a, enum op op, int64_t b)
{
    switch (op) {
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    }
    return 0;
}

static int eval(const struct node *n, const struct sim_signin *s)
{
    switch (n->kind) {
    case N_AND: return eval(n->a, s) && eval(n->b, s);
    case N_OR: return eval(n->a, s) || eval(n->b, s);
    case N_NOT: return !eval(n->a, s);
    case N_EVENT_TYPE:
        return !strcasecmp(n->str, s->non_interactive_stream ? "nonInteractiveUser"
                                                             : "interactiveUser");
    case N_STARTSWITH: {
        const char *v = str_field(s, n->field);
        return v && strncasecmp(v, n->str, strlen(n->str)) == 0;
    }
    case N_CMP:
        switch (n->type) {
        case T_TIME: return cmp_num(s->created_ms, n->op, n->num);
        case T_INT: return cmp_num(s->error_code, n->op, n->num);
        case T_BOOL: return cmp_num(s->is_interactive, n->op, n->num);
        case T_STR: {
            const char *v = str_field(s, n->field);
            int eq = v && strcasecmp(v, n->str) == 0;
            return n->op == OP_EQ ? eq : !eq;
        }
        }
    }
    return 0;
}

int sim_filter_match(const struct sim_filter *f, const struct sim_signin *s)
{
    return eval(f->root, s);
}

static int64_t floor_of(const struct node *n)
{
    if (n->kind == N_AND) {
        int64_t a = floor_of(n->a), b = floor_of(n->b);
        return a > b ? a : b;
    }
    if (n->kind == N_CMP && n->field == F_CREATED && (n->op == OP_GE || n->op == OP_GT))
        return n->num;
    return INT64_MIN;
}

static int names_event_types(const struct node *n)
{
    return n && (n->kind == N_EVENT_TYPE || names_event_types(n->a) || names_event_types(n->b));
}

int sim_filter_names_event_types(const struct sim_filter *f)
{
    return f && names_event_types(f->root);
}

int64_t sim_filter_time_floor(const struct sim_filter *f)
{
    return floor_of(f->root);
}

void sim_filter_free(struct sim_filter *f)
{
    if (!f)
        return;
    node_free(f->root);
    free(f);
}
