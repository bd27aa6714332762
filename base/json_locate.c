/*
 * json_locate.c - a second, position-recording pass over JSON text that
 * jansson has already accepted (see json_locate.h).
 *
 * The scanner is iterative (an explicit stack of at most JL_MAX_DEPTH
 * frames), reads each byte at most once, checks every index against the
 * length, and simply stops recording when the text is not what it expects:
 * the map is a best effort that never makes the loader fail.
 */
#include "base/json_locate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "base/utf8.h"

#define JL_MAX_KEY 1024

struct scan {
    const char *t;
    size_t len;
    size_t pos;
    int line, col;
    int oom;
};

static void adv(struct scan *s)
{
    unsigned char c = (unsigned char)s->t[s->pos++];
    if (c == '\n') {
        s->line++;
        s->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        s->col++;
    }
}

static void skip_ws(struct scan *s)
{
    while (s->pos < s->len) {
        char c = s->t[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        adv(s);
    }
}

static struct jl_pos here(const struct scan *s)
{
    struct jl_pos p = {s->line, s->col, s->pos};
    return p;
}

static int hex4(const char *t, size_t len, size_t at, unsigned *out)
{
    unsigned v = 0;
    if (at > len || len - at < 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        int h = encode_hex_value((unsigned char)t[at + i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/*
 * Decode one escape at t[at] ('\\'): the code point (or byte) it stands for,
 * its source length in bytes (*src_len) and decoded UTF-8 length (*dec_len).
 * Returns -1 on a malformed escape.
 */
static int decode_escape(const char *t, size_t len, size_t at, unsigned *cp, size_t *src_len,
                         size_t *dec_len)
{
    if (at + 1 >= len)
        return -1;
    char e = t[at + 1];
    switch (e) {
    case '"': *cp = '"'; break;
    case '\\': *cp = '\\'; break;
    case '/': *cp = '/'; break;
    case 'b': *cp = '\b'; break;
    case 'f': *cp = '\f'; break;
    case 'n': *cp = '\n'; break;
    case 'r': *cp = '\r'; break;
    case 't': *cp = '\t'; break;
    case 'u': {
        unsigned hi, lo;
        if (hex4(t, len, at + 2, &hi) != 0)
            return -1;
        if (hi >= 0xD800 && hi <= 0xDBFF && at + 12 <= len && t[at + 6] == '\\' &&
            t[at + 7] == 'u' && hex4(t, len, at + 8, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            *src_len = 12;
            *dec_len = 4;
            return 0;
        }
        *cp = hi;
        *src_len = 6;
        *dec_len = utf8_encoded_len(hi);
        return 0;
    }
    default:
        return -1;
    }
    *src_len = 2;
    *dec_len = 1;
    return 0;
}

/*
 * Skip the string literal at s->pos (on its '"'), decoding it into key (size
 * JL_MAX_KEY) when key is not NULL.  Returns 0, 1 when the decoded text did
 * not fit (or held a NUL), -1 when the text is not a string literal.
 */
static int scan_string(struct scan *s, char *key, size_t *key_len)
{
    size_t n = 0;
    int too_long = 0;
    if (s->pos >= s->len || s->t[s->pos] != '"')
        return -1;
    adv(s);
    for (;;) {
        if (s->pos >= s->len)
            return -1;
        char c = s->t[s->pos];
        if (c == '"') {
            adv(s);
            break;
        }
        if (c == '\\') {
            unsigned cp;
            size_t src_len, dec_len;
            if (decode_escape(s->t, s->len, s->pos, &cp, &src_len, &dec_len) != 0)
                return -1;
            if (key) {
                if (cp == 0 || n + dec_len >= JL_MAX_KEY)
                    too_long = 1;
                else
                    utf8_encode(cp, key + n);
                n += dec_len;
            }
            /* escapes are ASCII: one column per byte */
            for (size_t i = 0; i < src_len; i++)
                adv(s);
            continue;
        }
        if (key) {
            if (n + 1 >= JL_MAX_KEY)
                too_long = 1;
            else
                key[n] = c;
            n++;
        }
        adv(s);
    }
    if (key) {
        if (too_long)
            n = 0;
        key[n] = '\0';
        *key_len = n;
    }
    return too_long;
}

static int is_ident(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
        return 0;
    for (k++; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_' || *k == '-' ||
              (*k >= '0' && *k <= '9')))
            return 0;
    return 1;
}

int jl_path_key(char *buf, size_t size, const char *parent, const char *key)
{
    size_t n = (size_t)snprintf(buf, size, "%s", parent);
    if (n >= size)
        return -1;
    if (is_ident(key)) {
        size_t m = (size_t)snprintf(buf + n, size - n, ".%s", key);
        return m >= size - n ? -1 : 0;
    }
    if (size - n < 3)
        return -1;
    buf[n++] = '[';
    buf[n++] = '"';
    for (const unsigned char *k = (const unsigned char *)key; *k; k++) {
        char esc[8];
        size_t el;
        if (*k == '"' || *k == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*k;
            el = 2;
        } else if (*k < 0x20) {
            el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *k);
        } else {
            esc[0] = (char)*k;
            el = 1;
        }
        if (size - n <= el + 2) {
            buf[n] = '\0';
            return -1;
        }
        memcpy(buf + n, esc, el);
        n += el;
    }
    if (size - n < 3) {
        buf[n < size ? n : size - 1] = '\0';
        return -1;
    }
    buf[n++] = '"';
    buf[n++] = ']';
    buf[n] = '\0';
    return 0;
}

int jl_path_index(char *buf, size_t size, const char *parent, size_t index)
{
    size_t n = (size_t)snprintf(buf, size, "%s[%zu]", parent, index);
    return n >= size ? -1 : 0;
}

size_t jl_path_parent_len(const char *path)
{
    size_t last = 0;
    size_t i = 1;
    if (path[0] != '$')
        return 0;
    while (path[i]) {
        last = i;
        if (path[i] == '.') {
            i++;
            while (path[i] && path[i] != '.' && path[i] != '[')
                i++;
        } else if (path[i] == '[') {
            i++;
            if (path[i] == '"') {
                i++;
                while (path[i] && path[i] != '"') {
                    if (path[i] == '\\' && path[i + 1])
                        i++;
                    i++;
                }
                if (path[i])
                    i++;
            }
            while (path[i] && path[i] != ']')
                i++;
            if (path[i])
                i++;
        } else {
            return 0;
        }
    }
    return last;
}

struct frame {
    char type;        /* '{' or '[' */
    size_t id;
    size_t count;
    size_t path_len;  /* length of this container's path in the buffer */
    int path_ok;
};

static int add_entry(struct json_locmap *m, const char *path, struct jl_pos value,
                     struct jl_pos key, size_t parent_id, int is_member)
{
    if (m->n >= JL_MAX_ENTRIES)
        return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct jl_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e)
            return -1;
        m->entries = e;
        m->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return -1;
    struct jl_entry *e = &m->entries[m->n++];
    e->path = p;
    e->value = value;
    e->key = key;
    e->parent_id = parent_id;
    e->is_member = is_member;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct jl_entry *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    if (x->parent_id != y->parent_id)
        return x->parent_id < y->parent_id ? -1 : 1;
    return x->value.offset < y->value.offset ? -1 : x->value.offset > y->value.offset;
}

struct dup_key {
    size_t offset;
    size_t index;
};

static int dup_cmp(const void *a, const void *b)
{
    const struct dup_key *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The scan proper.  Returns -1 only for lack of memory. */
static int scan_all(struct scan *s, struct json_locmap *m)
{
    char key[JL_MAX_KEY];
    struct frame *stack = NULL;
    size_t depth = 0, next_id = 1;
    int rc = 0;
    size_t plen;
    int ok;
    struct jl_pos kpos;
    char *pbuf = malloc(JL_MAX_PATH + 1);
    stack = malloc(JL_MAX_DEPTH * sizeof *stack);
    if (!pbuf || !stack) {
        rc = -1;
        goto out;
    }
    pbuf[0] = '$';
    pbuf[1] = '\0';
    plen = 1;
    ok = 1;
    skip_ws(s);
    kpos = here(s);

value:
    if (s->pos >= s->len)
        goto out;
    if (ok) {
        int member = depth > 0 && stack[depth - 1].type == '{';
        if (add_entry(m, pbuf, here(s), member ? kpos : here(s),
                      depth ? stack[depth - 1].id : 0, member) != 0) {
            rc = -1;
            goto out;
        }
    }
    {
        char c = s->t[s->pos];
        if (c == '{' || c == '[') {
            if (depth >= JL_MAX_DEPTH)
                goto out;
            stack[depth].type = c;
            stack[depth].id = next_id++;
            stack[depth].count = 0;
            stack[depth].path_len = plen;
            stack[depth].path_ok = ok;
            depth++;
            adv(s);
            skip_ws(s);
            if (s->pos >= s->len)
                goto out;
            if (s->t[s->pos] == (c == '{' ? '}' : ']')) {
                adv(s);
                depth--;
                goto after;
            }
            if (c == '{')
                goto key;
            goto element;
        }
        if (c == '"') {
            if (scan_string(s, NULL, NULL) < 0)
                goto out;
            goto after;
        }
        size_t start = s->pos;
        while (s->pos < s->len) {
            char d = s->t[s->pos];
            if (d == ',' || d == '}' || d == ']' || d == ' ' || d == '\t' || d == '\n' ||
                d == '\r')
                break;
            adv(s);
        }
        if (s->pos == start)
            goto out;
        goto after;
    }

key: {
    struct frame *f = &stack[depth - 1];
    size_t klen = 0;
    skip_ws(s);
    kpos = here(s);
    int kr = scan_string(s, key, &klen);
    if (kr < 0)
        goto out;
    skip_ws(s);
    if (s->pos >= s->len || s->t[s->pos] != ':')
        goto out;
    adv(s);
    skip_ws(s);
    pbuf[f->path_len] = '\0';
    ok = f->path_ok && kr == 0 && strlen(key) == klen;
    if (ok) {
        char parent[JL_MAX_PATH + 1];
        memcpy(parent, pbuf, f->path_len + 1);
        ok = jl_path_key(pbuf, JL_MAX_PATH + 1, parent, key) == 0;
    }
    plen = ok ? strlen(pbuf) : f->path_len;
    goto value;
}

element: {
    struct frame *f = &stack[depth - 1];
    skip_ws(s);
    pbuf[f->path_len] = '\0';
    ok = f->path_ok;
    if (ok) {
        char parent[JL_MAX_PATH + 1];
        memcpy(parent, pbuf, f->path_len + 1);
        ok = jl_path_index(pbuf, JL_MAX_PATH + 1, parent, f->count) == 0;
    }
    plen = ok ? strlen(pbuf) : f->path_len;
    kpos = here(s);
    goto value;
}

after:
    if (depth == 0)
        goto out;
    skip_ws(s);
    if (s->pos >= s->len)
        goto out;
    {
        struct frame *f = &stack[depth - 1];
        char c = s->t[s->pos];
        if (c == ',') {
            adv(s);
            f->count++;
            if (f->type == '{')
                goto key;
            goto element;
        }
        if (c == (f->type == '{' ? '}' : ']')) {
            adv(s);
            plen = f->path_len;
            pbuf[plen] = '\0';
            depth--;
            goto after;
        }
        goto out;
    }

out:
    free(stack);
    free(pbuf);
    return rc;
}

enum as_code jl_build(const char *text, size_t len, struct json_locmap **out, struct as_err *err)
{
    struct scan s = {.t = text, .len = len, .line = 1, .col = 1};
    struct json_locmap *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return as_errf(err, AS_ENOMEM, "out of memory");
    if (scan_all(&s, m) != 0)
        goto oom;
    if (m->n)
        qsort(m->entries, m->n, sizeof *m->entries, entry_cmp);
    for (size_t i = 1; i < m->n; i++) {
        const struct jl_entry *a = &m->entries[i - 1], *b = &m->entries[i];
        if (b->is_member && a->parent_id == b->parent_id && strcmp(a->path, b->path) == 0) {
            size_t *d = realloc(m->dups, (m->n_dups + 1) * sizeof *d);
            if (!d)
                goto oom;
            m->dups = d;
            m->dups[m->n_dups++] = i;
        }
    }
    if (m->n_dups > 1) {
        /* report order: by position in the text (no globals: loaders may run in parallel) */
        struct dup_key *keys = malloc(m->n_dups * sizeof *keys);
        if (!keys)
            goto oom;
        for (size_t i = 0; i < m->n_dups; i++) {
            keys[i].offset = m->entries[m->dups[i]].key.offset;
            keys[i].index = m->dups[i];
        }
        qsort(keys, m->n_dups, sizeof *keys, dup_cmp);
        for (size_t i = 0; i < m->n_dups; i++)
            m->dups[i] = keys[i].index;
        free(keys);
    }
    *out = m;
    return AS_OK;
oom:
    jl_free(m);
    return as_errf(err, AS_ENOMEM, "out of memory locating JSON paths");
}

const struct jl_entry *jl_find(const struct json_locmap *m, const char *path)
{
    size_t lo = 0, hi = m ? m->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->entries[mid].path, path) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!m || lo >= m->n || strcmp(m->entries[lo].path, path) != 0)
        return NULL;
    /* The last of equal paths: the definition jansson kept. */
    while (lo + 1 < m->n && strcmp(m->entries[lo + 1].path, path) == 0)
        lo++;
    return &m->entries[lo];
}

const struct jl_entry *jl_find_nearest(const struct json_locmap *m, const char *path)
{
    char buf[JL_MAX_PATH + 1];
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        const struct jl_entry *e = jl_find(m, buf);
        if (e)
            return e;
        size_t pl = jl_path_parent_len(buf);
        if (pl == 0)
            return NULL;
        buf[pl] = '\0';
    }
}

void jl_free(struct json_locmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->entries[i].path);
    free(m->entries);
    free(m->dups);
    free(m);
}

struct jl_pos jl_string_pos(const char *text, size_t len, struct jl_pos at, size_t decoded_off)
{
    struct jl_pos p = at;
    size_t i = at.offset, dec = 0;
    if (i >= len || text[i] != '"')
        return at;
    i++;
    p.column++;
    while (i < len && text[i] != '"' && dec < decoded_off) {
        if (text[i] == '\\') {
            unsigned cp;
            size_t src_len, dec_len;
            if (decode_escape(text, len, i, &cp, &src_len, &dec_len) != 0)
                break;
            i += src_len;
            dec += dec_len;
            p.column += (int)src_len;
            continue;
        }
        unsigned char c = (unsigned char)text[i];
        size_t n = utf8_lead_len(c);
        i += n;
        dec += n;
        p.column++;
    }
    p.offset = i < len ? i : len;
    return p;
}
