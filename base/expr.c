/*
 * expr.c - Assent's expression language and ${...} templates (see expr.h and
 * docs/expressions.md).
 *
 * A small recursive-descent parser builds a tree; evaluation walks it.  Both
 * recursions are bounded: the parser counts nesting (parentheses, brackets,
 * list elements, `!`) and refuses more than EXPR_MAX_DEPTH, and the tree is
 * built so that its depth follows that nesting (&&, || and lists are n-ary,
 * a path is one node with a list of segments, comparisons do not chain).
 * Sources longer than EXPR_MAX_LEN bytes are refused.
 *
 * Evaluation cannot fail except for lack of memory: a missing path is null,
 * and comparing values of different types is simply false.
 *
 * Templates (${...} inside strings) live in base/tmpl.c.
 */
#include "base/expr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/utf8.h"

enum node_kind { N_LIT, N_PATH, N_NOT, N_AND, N_OR, N_CMP, N_IN, N_LIST, N_COND };
enum cmp_op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
enum seg_kind { SEG_KEY, SEG_EXPR };

struct node;

struct seg {
    enum seg_kind kind;
    char *key;         /* SEG_KEY: a name or a literal index/key */
    int key_is_index;  /* SEG_KEY written as [number]: only indexes arrays */
    struct node *expr; /* SEG_EXPR: computed key or index */
};

struct node {
    enum node_kind kind;
    enum cmp_op op;     /* N_CMP */
    json_t *lit;        /* N_LIT (owned) */
    char *root;         /* N_PATH: first name, looked up in the scope; or NULL with base */
    struct node *base;  /* N_PATH: value the segments apply to when root is NULL */
    struct seg *segs;
    size_t n_segs;
    struct node **kids; /* N_NOT (1), N_AND/N_OR (n), N_CMP/N_IN (2), N_LIST (n),
                         * N_COND (3: condition, then, else) */
    size_t n_kids;
    size_t off;         /* byte offset in the source where the node starts */
};

struct expr {
    struct node *root;
};

/* ---------- tree helpers ---------- */

static void node_free(struct node *n)
{
    if (!n)
        return;
    json_decref(n->lit);
    free(n->root);
    node_free(n->base);
    for (size_t i = 0; i < n->n_segs; i++) {
        free(n->segs[i].key);
        node_free(n->segs[i].expr);
    }
    free(n->segs);
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n);
}

static struct node *node_new(enum node_kind kind)
{
    struct node *n = calloc(1, sizeof *n);
    if (n)
        n->kind = kind;
    return n;
}

static int node_add_kid(struct node *n, struct node *kid)
{
    struct node **k = realloc(n->kids, (n->n_kids + 1) * sizeof *k);
    if (!k)
        return -1;
    n->kids = k;
    n->kids[n->n_kids++] = kid;
    return 0;
}

static int node_add_seg(struct node *n, enum seg_kind kind, char *key, int is_index,
                        struct node *e)
{
    struct seg *s = realloc(n->segs, (n->n_segs + 1) * sizeof *s);
    if (!s)
        return -1;
    n->segs = s;
    n->segs[n->n_segs].kind = kind;
    n->segs[n->n_segs].key = key;
    n->segs[n->n_segs].key_is_index = is_index;
    n->segs[n->n_segs].expr = e;
    n->n_segs++;
    return 0;
}

/* ---------- parser ---------- */

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    int failed;
    size_t err_off;
    enum as_code code;
    char msg[256];
};

static void perr(struct parser *p, size_t off, const char *fmt, ...) AS_PRINTF(3, 4);
static void perr(struct parser *p, size_t off, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    p->err_off = off;
    if (p->code == AS_OK)
        p->code = AS_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
}

static void oom(struct parser *p)
{
    p->code = AS_ENOMEM;
    perr(p, p->pos, "out of memory");
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
            p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(struct parser *p)
{
    skip_ws(p);
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Consume operator `op` if it is next. */
static int accept(struct parser *p, const char *op)
{
    size_t n = strlen(op);
    skip_ws(p);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, op, n) == 0) {
        p->pos += n;
        return 1;
    }
    return 0;
}

/* Consume keyword `kw` if it is next as a whole word. */
static int accept_word(struct parser *p, const char *kw)
{
    size_t n = strlen(kw);
    skip_ws(p);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, kw, n) == 0 &&
        (p->pos + n == p->len || !is_name_char((unsigned char)p->s[p->pos + n]))) {
        p->pos += n;
        return 1;
    }
    return 0;
}

/* Name token at pos ([A-Za-z0-9_-]+ when any_start, else an identifier); malloc'd. */
static char *take_name(struct parser *p, int any_start)
{
    size_t start = p->pos;
    if (p->pos >= p->len)
        return NULL;
    int c = (unsigned char)p->s[p->pos];
    if (!(any_start ? is_name_char(c) : is_name_start(c)))
        return NULL;
    while (p->pos < p->len && is_name_char((unsigned char)p->s[p->pos]))
        p->pos++;
    char *name = strndup(p->s + start, p->pos - start);
    if (!name)
        oom(p);
    return name;
}

static int read_hex4(struct parser *p, size_t at, unsigned *out)
{
    unsigned v = 0;
    if (p->len - at < 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        int h = encode_hex_value((unsigned char)p->s[at + i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/* A quoted string literal at pos ('...' or "..."); returns a new JSON string. */
static json_t *parse_string(struct parser *p)
{
    size_t start = p->pos;
    char quote = p->s[p->pos++];
    /* Decoded text is never longer than the source. */
    char *buf = malloc(p->len - start + 1);
    size_t n = 0;
    json_t *v = NULL;
    if (!buf) {
        oom(p);
        return NULL;
    }
    for (;;) {
        if (p->pos >= p->len) {
            perr(p, start, "unterminated string starting at column %zu", utf8_column(p->s, start));
            goto out;
        }
        char c = p->s[p->pos];
        if (c == quote) {
            p->pos++;
            break;
        }
        if (c != '\\') {
            buf[n++] = c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        if (p->pos + 1 >= p->len) {
            perr(p, esc, "unterminated string starting at column %zu", utf8_column(p->s, start));
            goto out;
        }
        char e = p->s[p->pos + 1];
        p->pos += 2;
        switch (e) {
        case '\\': buf[n++] = '\\'; break;
        case '\'': buf[n++] = '\''; break;
        case '"': buf[n++] = '"'; break;
        case '/': buf[n++] = '/'; break;
        case 'n': buf[n++] = '\n'; break;
        case 't': buf[n++] = '\t'; break;
        case 'r': buf[n++] = '\r'; break;
        case 'u': {
            unsigned cp, lo;
            if (read_hex4(p, p->pos, &cp) != 0) {
                perr(p, esc, "bad \\u escape at column %zu (want 4 hex digits)", utf8_column(p->s, esc));
                goto out;
            }
            p->pos += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
                    read_hex4(p, p->pos + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    perr(p, esc, "unpaired surrogate in \\u escape at column %zu", utf8_column(p->s, esc));
                    goto out;
                }
                p->pos += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                perr(p, esc, "unpaired surrogate in \\u escape at column %zu", utf8_column(p->s, esc));
                goto out;
            } else if (cp == 0) {
                perr(p, esc, "\\u0000 is not allowed in a string (column %zu)", utf8_column(p->s, esc));
                goto out;
            }
            n += utf8_encode(cp, buf + n);
            break;
        }
        default:
            perr(p, esc, "unknown escape \\%c at column %zu", e, utf8_column(p->s, esc));
            goto out;
        }
    }
    v = json_stringn(buf, n);
    if (!v)
        perr(p, start, "string at column %zu is not valid UTF-8", utf8_column(p->s, start));
out:
    free(buf);
    return v;
}

static json_t *parse_number(struct parser *p)
{
    size_t start = p->pos;
    int real = 0;
    char tmp[64];
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos])) {
        perr(p, start, "expected a number at column %zu", utf8_column(p->s, start));
        return NULL;
    }
    while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        real = 1;
        p->pos++;
        if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos])) {
            perr(p, p->pos, "expected a digit after '.' at column %zu", utf8_column(p->s, p->pos));
            return NULL;
        }
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        real = 1;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos])) {
            perr(p, p->pos, "expected an exponent at column %zu", utf8_column(p->s, p->pos));
            return NULL;
        }
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && is_name_start((unsigned char)p->s[p->pos])) {
        perr(p, p->pos, "unexpected '%c' after a number at column %zu", p->s[p->pos],
             utf8_column(p->s, p->pos));
        return NULL;
    }
    size_t n = p->pos - start;
    if (n >= sizeof tmp) {
        perr(p, start, "number too long at column %zu", utf8_column(p->s, start));
        return NULL;
    }
    memcpy(tmp, p->s + start, n);
    tmp[n] = '\0';
    json_t *v;
    errno = 0;
    if (!real) {
        long long ll = strtoll(tmp, NULL, 10);
        if (errno == 0) {
            v = json_integer(ll);
            goto done;
        }
        errno = 0;
    }
    double d = strtod(tmp, NULL);
    if (errno == ERANGE && (d > 1.0 || d < -1.0)) {
        perr(p, start, "number out of range at column %zu", utf8_column(p->s, start));
        return NULL;
    }
    v = json_real(d);
done:
    if (!v)
        oom(p);
    return v;
}

static struct node *parse_or(struct parser *p);
static struct node *parse_cond(struct parser *p);

static struct node *lit_node(struct parser *p, json_t *v)
{
    struct node *n;
    if (!v)
        return NULL;
    n = node_new(N_LIT);
    if (!n) {
        json_decref(v);
        oom(p);
        return NULL;
    }
    n->lit = v;
    return n;
}

/* Enter one nesting level; fails past EXPR_MAX_DEPTH. */
static int enter(struct parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        p->code = AS_ELIMIT;
        perr(p, p->pos, "expression nested too deeply at column %zu (limit %d)",
             utf8_column(p->s, p->pos), EXPR_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static struct node *parse_primary(struct parser *p)
{
    int c = peek(p);
    size_t at = p->pos;
    struct node *n = NULL;

    if (c < 0) {
        perr(p, at, "expected a value at column %zu but the expression ended",
             utf8_column(p->s, at));
        return NULL;
    }
    if (c == '(') {
        p->pos++;
        if (enter(p) != 0)
            return NULL;
        n = parse_cond(p);
        p->depth--;
        if (!n)
            return NULL;
        if (!accept(p, ")")) {
            perr(p, p->pos, "expected ')' at column %zu (to close '(' at column %zu)",
                 utf8_column(p->s, p->pos), utf8_column(p->s, at));
            node_free(n);
            return NULL;
        }
        return n;
    }
    if (c == '[') {
        p->pos++;
        if (enter(p) != 0)
            return NULL;
        n = node_new(N_LIST);
        if (!n) {
            oom(p);
            return NULL;
        }
        if (!accept(p, "]")) {
            for (;;) {
                struct node *item = parse_cond(p);
                if (!item || node_add_kid(n, item) != 0) {
                    if (item) {
                        node_free(item);
                        oom(p);
                    }
                    node_free(n);
                    return NULL;
                }
                if (accept(p, ","))
                    continue;
                if (accept(p, "]"))
                    break;
                perr(p, p->pos, "expected ',' or ']' at column %zu (list opened at column %zu)",
                     utf8_column(p->s, p->pos), utf8_column(p->s, at));
                node_free(n);
                return NULL;
            }
        }
        p->depth--;
        return n;
    }
    if (c == '\'' || c == '"')
        return lit_node(p, parse_string(p));
    if (c == '-' || is_digit(c))
        return lit_node(p, parse_number(p));
    if (is_name_start(c)) {
        if (accept_word(p, "true"))
            return lit_node(p, json_true());
        if (accept_word(p, "false"))
            return lit_node(p, json_false());
        if (accept_word(p, "null"))
            return lit_node(p, json_null());
        if (accept_word(p, "in")) {
            perr(p, at, "unexpected 'in' at column %zu", utf8_column(p->s, at));
            return NULL;
        }
        char *name = take_name(p, 0);
        if (!name)
            return NULL;
        n = node_new(N_PATH);
        if (!n) {
            free(name);
            oom(p);
            return NULL;
        }
        n->root = name;
        n->off = at;
        return n;
    }
    if (c == '$' && at + 1 < p->len && p->s[at + 1] == '{')
        perr(p, at, "unexpected '${' at column %zu: a condition is an expression, write it without ${ }",
             utf8_column(p->s, at));
    else if (c == '=' )
        perr(p, at, "unexpected '=' at column %zu (use == to compare)", utf8_column(p->s, at));
    else if (c < 0x80 && c >= 0x20)
        perr(p, at, "unexpected '%c' at column %zu", c, utf8_column(p->s, at));
    else
        perr(p, at, "unexpected character at column %zu", utf8_column(p->s, at));
    return NULL;
}

/* primary { "." name | "[" expr "]" } */
static struct node *parse_postfix(struct parser *p)
{
    struct node *n = parse_primary(p);
    struct node *path = NULL;
    if (!n)
        return NULL;
    for (;;) {
        int c = peek(p);
        if (c != '.' && c != '[')
            break;
        if (!path) {
            if (n->kind == N_PATH) {
                path = n;
            } else {
                path = node_new(N_PATH);
                if (!path) {
                    node_free(n);
                    oom(p);
                    return NULL;
                }
                path->base = n;
            }
            n = NULL;
        }
        size_t at = p->pos;
        p->pos++;
        if (c == '.') {
            char *name = take_name(p, 1);
            if (!name) {
                if (!p->failed)
                    perr(p, p->pos, "expected a name after '.' at column %zu",
                         utf8_column(p->s, p->pos));
                goto fail;
            }
            if (node_add_seg(path, SEG_KEY, name, 0, NULL) != 0) {
                free(name);
                oom(p);
                goto fail;
            }
            continue;
        }
        if (enter(p) != 0)
            goto fail;
        struct node *idx = parse_cond(p);
        p->depth--;
        if (!idx)
            goto fail;
        if (!accept(p, "]")) {
            node_free(idx);
            perr(p, p->pos, "expected ']' at column %zu (to close '[' at column %zu)",
                 utf8_column(p->s, p->pos), utf8_column(p->s, at));
            goto fail;
        }
        /* Constant keys and indexes are resolved now: they keep expr_refs precise. */
        if (idx->kind == N_LIT && (json_is_string(idx->lit) || json_is_integer(idx->lit))) {
            char buf[32];
            char *key;
            int is_index = json_is_integer(idx->lit);
            if (is_index) {
                snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(idx->lit));
                key = strdup(buf);
            } else {
                key = strndup(json_string_value(idx->lit), json_string_length(idx->lit));
            }
            node_free(idx);
            if (!key || node_add_seg(path, SEG_KEY, key, is_index, NULL) != 0) {
                free(key);
                oom(p);
                goto fail;
            }
        } else if (node_add_seg(path, SEG_EXPR, NULL, 0, idx) != 0) {
            node_free(idx);
            oom(p);
            goto fail;
        }
    }
    return path ? path : n;
fail:
    node_free(path);
    node_free(n);
    return NULL;
}

static struct node *parse_unary(struct parser *p)
{
    if (peek(p) == '!' && !(p->pos + 1 < p->len && p->s[p->pos + 1] == '=')) {
        p->pos++;
        if (enter(p) != 0)
            return NULL;
        struct node *kid = parse_unary(p);
        p->depth--;
        if (!kid)
            return NULL;
        struct node *n = node_new(N_NOT);
        if (!n || node_add_kid(n, kid) != 0) {
            node_free(n);
            node_free(kid);
            oom(p);
            return NULL;
        }
        return n;
    }
    return parse_postfix(p);
}

/* Which comparison operator is next (consumed), -1 for none, -2 for `in`. */
static int take_cmp_op(struct parser *p)
{
    if (accept(p, "=="))
        return OP_EQ;
    if (accept(p, "!="))
        return OP_NE;
    if (accept(p, "<="))
        return OP_LE;
    if (accept(p, ">="))
        return OP_GE;
    if (accept(p, "<"))
        return OP_LT;
    if (accept(p, ">"))
        return OP_GT;
    if (accept_word(p, "in"))
        return -2;
    return -1;
}

static struct node *parse_cmp(struct parser *p)
{
    struct node *left = parse_unary(p);
    if (!left)
        return NULL;
    skip_ws(p);
    size_t at = p->pos;
    int op = take_cmp_op(p);
    if (op == -1) {
        if (peek(p) == '=' && !p->failed) {
            perr(p, p->pos, "unexpected '=' at column %zu (use == to compare)",
                 utf8_column(p->s, p->pos));
            node_free(left);
            return NULL;
        }
        return left;
    }
    struct node *right = parse_unary(p);
    if (!right) {
        node_free(left);
        return NULL;
    }
    struct node *n = node_new(op == -2 ? N_IN : N_CMP);
    if (!n || node_add_kid(n, left) != 0) {
        node_free(n);
        node_free(left);
        node_free(right);
        oom(p);
        return NULL;
    }
    if (node_add_kid(n, right) != 0) {
        node_free(n);
        node_free(right);
        oom(p);
        return NULL;
    }
    if (op >= 0)
        n->op = (enum cmp_op)op;
    skip_ws(p);
    size_t at2 = p->pos;
    if (take_cmp_op(p) != -1) {
        perr(p, at2, "comparisons do not chain (column %zu after the one at column %zu): use && or parentheses",
             utf8_column(p->s, at2), utf8_column(p->s, at));
        node_free(n);
        return NULL;
    }
    return n;
}

/* and/or: n-ary so that long chains do not deepen the tree. */
static struct node *parse_chain(struct parser *p, enum node_kind kind, const char *op,
                                struct node *(*sub)(struct parser *))
{
    struct node *first = sub(p);
    struct node *n = NULL;
    if (!first)
        return NULL;
    while (accept(p, op)) {
        if (!n) {
            n = node_new(kind);
            if (!n || node_add_kid(n, first) != 0) {
                node_free(n);
                node_free(first);
                oom(p);
                return NULL;
            }
        }
        struct node *k = sub(p);
        if (!k) {
            node_free(n);
            return NULL;
        }
        if (node_add_kid(n, k) != 0) {
            node_free(k);
            node_free(n);
            oom(p);
            return NULL;
        }
    }
    return n ? n : first;
}

static struct node *parse_and(struct parser *p)
{
    return parse_chain(p, N_AND, "&&", parse_cmp);
}

static struct node *parse_or(struct parser *p)
{
    return parse_chain(p, N_OR, "||", parse_and);
}

/* Parse a conditional and add it to n's kids; 0, or -1 (the parser has failed). */
static int add_cond_kid(struct parser *p, struct node *n)
{
    struct node *k = parse_cond(p);
    if (!k)
        return -1;
    if (node_add_kid(n, k) != 0) {
        node_free(k);
        oom(p);
        return -1;
    }
    return 0;
}

/* cond ? then : else, right-associative: a ? b : c ? d : e is a ? b : (c ? d : e). */
static struct node *parse_cond(struct parser *p)
{
    struct node *c = parse_or(p), *n = NULL;
    if (!c || !accept(p, "?"))
        return c;
    if (enter(p) != 0) {
        node_free(c);
        return NULL;
    }
    n = node_new(N_COND);
    if (!n || node_add_kid(n, c) != 0) {
        node_free(n);
        node_free(c);
        oom(p);
        goto out;
    }
    c = NULL;
    if (add_cond_kid(p, n) != 0)
        goto fail;
    if (!accept(p, ":")) {
        skip_ws(p);
        perr(p, p->pos, "expected ':' at column %zu (a ? b : c)", utf8_column(p->s, p->pos));
        goto fail;
    }
    if (add_cond_kid(p, n) != 0)
        goto fail;
    goto out;
fail:
    node_free(n);
    n = NULL;
out:
    p->depth--;
    return n;
}

enum as_code expr_compile_n(const char *src, size_t len, struct expr **out, size_t *err_off,
                            struct as_err *err)
{
    struct parser p = {.s = src, .len = len};
    struct node *root = NULL;
    *out = NULL;
    if (err_off)
        *err_off = 0;
    if (len > EXPR_MAX_LEN) {
        return as_errf(err, AS_ELIMIT, "expression too long (%zu bytes, limit %d)", len,
                       EXPR_MAX_LEN);
    }
    if (memchr(src, '\0', len))
        return as_errf(err, AS_EINVAL, "expression contains a NUL byte");
    root = parse_cond(&p);
    if (root && !p.failed && peek(&p) >= 0) {
        size_t at = p.pos;
        int c = (unsigned char)p.s[at];
        if (c == '=')
            perr(&p, at, "unexpected '=' at column %zu (use == to compare)", utf8_column(p.s, at));
        else if (c == '&' || c == '|')
            perr(&p, at, "unexpected '%c' at column %zu (use %s)", c, utf8_column(p.s, at),
                 c == '&' ? "&&" : "||");
        else if (c >= 0x20 && c < 0x7f)
            perr(&p, at, "unexpected '%c' at column %zu", c, utf8_column(p.s, at));
        else
            perr(&p, at, "unexpected character at column %zu", utf8_column(p.s, at));
    }
    if (p.failed) {
        node_free(root);
        if (err_off)
            *err_off = p.err_off;
        return as_errf(err, p.code, "%s", p.msg);
    }
    struct expr *e = malloc(sizeof *e);
    if (!e) {
        node_free(root);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    e->root = root;
    *out = e;
    return AS_OK;
}

enum as_code expr_compile(const char *src, struct expr **out, struct as_err *err)
{
    return expr_compile_n(src, strlen(src), out, NULL, err);
}

void expr_free(struct expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e);
}

/* ---------- evaluation ---------- */

int expr_truthy(const json_t *v)
{
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_TRUE:
        return 1;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_STRING:
        return json_string_length(v) != 0;
    case JSON_ARRAY:
        return json_array_size(v) != 0;
    case JSON_OBJECT:
        return json_object_size(v) != 0;
    }
    return 0;
}

static int values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* -1/0/1, or 2 when a and b are not both numbers or both strings. */
static int values_order(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return x < y ? -1 : x > y;
        }
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        if (c != 0)
            return c < 0 ? -1 : 1;
        return la < lb ? -1 : la > lb;
    }
    return 2;
}

static int value_in(const json_t *needle, const json_t *hay)
{
    if (json_is_array(hay)) {
        size_t i;
        json_t *v;
        json_array_foreach(hay, i, v) {
            if (values_equal(needle, v))
                return 1;
        }
        return 0;
    }
    if (json_is_string(hay) && json_is_string(needle))
        return memmem(json_string_value(hay), json_string_length(hay), json_string_value(needle),
                      json_string_length(needle)) != NULL;
    if (json_is_object(hay) && json_is_string(needle))
        return json_object_get(hay, json_string_value(needle)) != NULL;
    return 0;
}

/* Member `key` of v: object key, or array index when key is a decimal number. */
static const json_t *lookup_key(const json_t *v, const char *key, int only_index)
{
    if (!v)
        return NULL;
    if (json_is_object(v) && !only_index)
        return json_object_get(v, key);
    if (json_is_array(v)) {
        size_t idx = 0;
        if (!*key)
            return NULL;
        for (const char *c = key; *c; c++) {
            if (!is_digit((unsigned char)*c) || idx > SIZE_MAX / 10 - 10)
                return NULL;
            idx = idx * 10 + (size_t)(*c - '0');
        }
        return json_array_get(v, idx);
    }
    return NULL;
}

static json_t *eval_node(const struct node *n, const json_t *scope);

static json_t *eval_path(const struct node *n, const json_t *scope)
{
    json_t *owner = NULL;
    const json_t *cur;
    json_t *res = NULL;
    if (n->base) {
        owner = eval_node(n->base, scope);
        if (!owner)
            return NULL;
        cur = owner;
    } else {
        cur = json_is_object(scope) ? json_object_get(scope, n->root) : NULL;
    }
    for (size_t i = 0; i < n->n_segs && cur; i++) {
        const struct seg *s = &n->segs[i];
        if (s->kind == SEG_KEY) {
            cur = lookup_key(cur, s->key, s->key_is_index);
            continue;
        }
        json_t *k = eval_node(s->expr, scope);
        if (!k)
            goto out;
        if (json_is_string(k))
            cur = json_is_object(cur) ? json_object_get(cur, json_string_value(k)) : NULL;
        else if (json_is_integer(k) && json_is_array(cur) && json_integer_value(k) >= 0)
            cur = json_array_get(cur, (size_t)json_integer_value(k));
        else
            cur = NULL;
        json_decref(k);
    }
    res = cur ? json_incref((json_t *)cur) : json_null();
out:
    json_decref(owner);
    return res;
}

/* New reference, or NULL when memory ran out. */
static json_t *eval_node(const struct node *n, const json_t *scope)
{
    json_t *a, *b, *r;
    switch (n->kind) {
    case N_LIT:
        return json_incref(n->lit);
    case N_PATH:
        return eval_path(n, scope);
    case N_NOT:
        a = eval_node(n->kids[0], scope);
        if (!a)
            return NULL;
        r = json_boolean(!expr_truthy(a));
        json_decref(a);
        return r;
    case N_AND:
    case N_OR:
        for (size_t i = 0; i < n->n_kids; i++) {
            a = eval_node(n->kids[i], scope);
            if (!a)
                return NULL;
            int t = expr_truthy(a);
            json_decref(a);
            if (n->kind == N_AND && !t)
                return json_false();
            if (n->kind == N_OR && t)
                return json_true();
        }
        return json_boolean(n->kind == N_AND);
    case N_CMP:
    case N_IN:
        a = eval_node(n->kids[0], scope);
        if (!a)
            return NULL;
        b = eval_node(n->kids[1], scope);
        if (!b) {
            json_decref(a);
            return NULL;
        }
        int res = 0;
        if (n->kind == N_IN) {
            res = value_in(a, b);
        } else if (n->op == OP_EQ || n->op == OP_NE) {
            res = values_equal(a, b) == (n->op == OP_EQ);
        } else {
            int o = values_order(a, b);
            if (o != 2)
                res = (n->op == OP_LT && o < 0) || (n->op == OP_LE && o <= 0) ||
                      (n->op == OP_GT && o > 0) || (n->op == OP_GE && o >= 0);
        }
        json_decref(a);
        json_decref(b);
        return json_boolean(res);
    case N_COND:
        a = eval_node(n->kids[0], scope);
        if (!a)
            return NULL;
        r = eval_node(n->kids[expr_truthy(a) ? 1 : 2], scope);
        json_decref(a);
        return r;
    case N_LIST:
        r = json_array();
        if (!r)
            return NULL;
        for (size_t i = 0; i < n->n_kids; i++) {
            a = eval_node(n->kids[i], scope);
            if (!a || json_array_append_new(r, a) != 0) {
                json_decref(r);
                return NULL;
            }
        }
        return r;
    }
    return NULL;
}

enum as_code expr_eval(const struct expr *e, const json_t *scope, json_t **out, struct as_err *err)
{
    *out = eval_node(e->root, scope);
    if (!*out)
        return as_errf(err, AS_ENOMEM, "out of memory evaluating an expression");
    return AS_OK;
}

enum as_code expr_eval_bool(const struct expr *e, const json_t *scope, int *out,
                            struct as_err *err)
{
    json_t *v = NULL;
    enum as_code rc = expr_eval(e, scope, &v, err);
    if (rc != AS_OK)
        return rc;
    *out = expr_truthy(v);
    json_decref(v);
    return AS_OK;
}

/* ---------- references ---------- */

/* Add ref to refs (strings), or, with located, {"ref": ref, "offset": off} objects. */
static int refs_add(json_t *refs, const char *ref, int located, size_t off)
{
    size_t i;
    json_t *v;
    json_array_foreach(refs, i, v) {
        const json_t *r = located ? json_object_get(v, "ref") : v;
        if (json_is_string(r) && strcmp(json_string_value(r), ref) == 0)
            return 0;
    }
    if (located)
        return json_array_append_new(refs, json_pack("{s:s, s:I}", "ref", ref, "offset",
                                                     (json_int_t)off));
    return json_array_append_new(refs, json_string(ref));
}

static int refs_walk(const struct node *n, json_t *refs, int located, size_t base)
{
    if (!n)
        return 0;
    if (n->kind == N_PATH && n->root) {
        if (strcmp(n->root, "steps") == 0 && n->n_segs > 0 && n->segs[0].kind == SEG_KEY &&
            !n->segs[0].key_is_index) {
            size_t len = strlen(n->segs[0].key) + sizeof "steps.";
            char *ref = malloc(len);
            if (!ref)
                return -1;
            snprintf(ref, len, "steps.%s", n->segs[0].key);
            int rc = refs_add(refs, ref, located, base + n->off);
            free(ref);
            if (rc != 0)
                return -1;
        } else if (refs_add(refs, n->root, located, base + n->off) != 0) {
            return -1;
        }
    }
    if (refs_walk(n->base, refs, located, base) != 0)
        return -1;
    for (size_t i = 0; i < n->n_segs; i++)
        if (refs_walk(n->segs[i].expr, refs, located, base) != 0)
            return -1;
    for (size_t i = 0; i < n->n_kids; i++)
        if (refs_walk(n->kids[i], refs, located, base) != 0)
            return -1;
    return 0;
}

int expr_refs_append(const struct expr *e, json_t *refs)
{
    return refs_walk(e->root, refs, 0, 0);
}

int expr_refs_located(const struct expr *e, json_t *refs, size_t base)
{
    return refs_walk(e->root, refs, 1, base);
}

json_t *expr_refs(const struct expr *e)
{
    json_t *refs = json_array();
    if (!refs)
        return NULL;
    if (expr_refs_append(e, refs) != 0) {
        json_decref(refs);
        return NULL;
    }
    return refs;
}
