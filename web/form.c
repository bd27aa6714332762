/* form.c - size-capped application/x-www-form-urlencoded and multipart/form-data
 * parsers (see form.h). */
#include "web/form.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/encode.h"
#include "base/utf8.h"

struct form_field {
    char name[FORM_MAX_NAME + 1];
    char *value;
};

struct form {
    size_t n, cap;
    struct form_field *fields;
};

/* Decode s[0..n) into out (at least n+1 bytes).  Returns the decoded
 * length, or -1 on a bad escape or an embedded NUL. */
static long decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = encode_hex_value(s[i + 1]), lo = encode_hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            int v = hi << 4 | lo;
            if (v == 0)
                return -1;
            out[o++] = (char)v;
            i += 2;
        } else if (c == '\0') {
            return -1;
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return (long)o;
}


static int name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

enum as_code form_parse(const char *body, size_t len, struct form **out, struct as_err *err)
{
    return form_parse_max(body, len, FORM_MAX_BODY, FORM_MAX_FIELDS, out, err);
}

enum as_code form_parse_max(const char *body, size_t len, size_t max_body, size_t max_fields,
                            struct form **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    *out = NULL;
    if (len > max_body)
        return as_errf(err, AS_ELIMIT, "form body larger than %zu bytes", max_body);
    struct form *f = calloc(1, sizeof *f);
    if (!f)
        return as_errf(err, AS_ENOMEM, "out of memory");
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && body[end] != '&')
            end++;
        if (end == pos) { /* empty pair ("a=1&&b=2", trailing '&'): skip */
            pos = end + 1;
            continue;
        }
        size_t eq = pos;
        while (eq < end && body[eq] != '=')
            eq++;
        size_t name_len = eq - pos;
        if (name_len == 0 || name_len > 3 * FORM_MAX_NAME) {
            rc = as_errf(err, AS_EINVAL, "form field with an empty or overlong name");
            goto fail;
        }
        char name[3 * FORM_MAX_NAME + 1];
        long nl = decode(body + pos, name_len, name);
        if (nl < 0 || nl > FORM_MAX_NAME || !name_ok(name)) {
            rc = as_errf(err, AS_EINVAL, "form field with an invalid name");
            goto fail;
        }
        if (f->n >= max_fields) {
            rc = as_errf(err, AS_ELIMIT, "more than %zu form fields", max_fields);
            goto fail;
        }
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 16;
            struct form_field *nf = realloc(f->fields, cap * sizeof *nf);
            if (!nf) {
                rc = as_errf(err, AS_ENOMEM, "out of memory");
                goto fail;
            }
            f->fields = nf;
            f->cap = cap;
        }
        if (form_get(f, name)) {
            rc = as_errf(err, AS_EINVAL, "form field \"%s\" given more than once", name);
            goto fail;
        }
        size_t vstart = eq < end ? eq + 1 : end;
        size_t vlen = end - vstart;
        char *value = malloc(vlen + 1);
        if (!value) {
            rc = as_errf(err, AS_ENOMEM, "out of memory");
            goto fail;
        }
        if (decode(body + vstart, vlen, value) < 0) {
            free(value);
            rc = as_errf(err, AS_EINVAL, "form field \"%s\" has a bad %%-escape", name);
            goto fail;
        }
        if (!utf8_valid(value)) {
            free(value);
            rc = as_errf(err, AS_EINVAL, "form field \"%s\" is not valid UTF-8", name);
            goto fail;
        }
        memcpy(f->fields[f->n].name, name, (size_t)nl + 1);
        f->fields[f->n].value = value;
        f->n++;
        pos = end + 1;
    }
    *out = f;
    return AS_OK;
fail:
    form_free(f);
    return rc;
}

/* Add name = value[0..vlen) to f (checked as form_parse checks a field). */
static enum as_code form_add(struct form *f, const char *name, size_t name_len, const char *value,
                             size_t vlen, size_t max_fields, struct as_err *err)
{
    char n[FORM_MAX_NAME + 1];
    if (name_len == 0 || name_len > FORM_MAX_NAME)
        return as_errf(err, AS_EINVAL, "form field with an empty or overlong name");
    memcpy(n, name, name_len);
    n[name_len] = '\0';
    if (!name_ok(n))
        return as_errf(err, AS_EINVAL, "form field with an invalid name");
    if (f->n >= max_fields)
        return as_errf(err, AS_ELIMIT, "more than %zu form fields", max_fields);
    if (form_get(f, n))
        return as_errf(err, AS_EINVAL, "form field \"%s\" given more than once", n);
    if (memchr(value, '\0', vlen))
        return as_errf(err, AS_EINVAL, "form field \"%s\" holds a NUL byte", n);
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct form_field *nf = realloc(f->fields, cap * sizeof *nf);
        if (!nf)
            return as_errf(err, AS_ENOMEM, "out of memory");
        f->fields = nf;
        f->cap = cap;
    }
    char *v = malloc(vlen + 1);
    if (!v)
        return as_errf(err, AS_ENOMEM, "out of memory");
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    if (!utf8_valid(v)) {
        free(v);
        return as_errf(err, AS_EINVAL, "form field \"%s\" is not valid UTF-8 text", n);
    }
    memcpy(f->fields[f->n].name, n, name_len + 1);
    f->fields[f->n].value = v;
    f->n++;
    return AS_OK;
}

#define PART_HEADERS_MAX 1024

/* The boundary parameter of a multipart/form-data content type into out. */
static int multipart_boundary(const char *ct, char *out, size_t size)
{
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return -1;
    const char *p = strcasestr(ct, "boundary=");
    if (!p)
        return -1;
    p += 9;
    size_t n;
    if (*p == '"') {
        p++;
        n = strcspn(p, "\"");
    } else {
        n = strcspn(p, "; \t");
    }
    if (n == 0 || n > 70 || n + 1 > size)
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

enum as_code form_parse_multipart(const char *body, size_t len, const char *content_type,
                                  size_t max_body, size_t max_fields, struct form **out,
                                  struct as_err *err)
{
    char boundary[80], delim[90];
    enum as_code rc = AS_OK;
    *out = NULL;
    if (len > max_body)
        return as_errf(err, AS_ELIMIT, "form body larger than %zu bytes", max_body);
    if (multipart_boundary(content_type, boundary, sizeof boundary) != 0)
        return as_errf(err, AS_EINVAL, "multipart form without a valid boundary");
    /* Parts are separated by CRLF "--" boundary; the first has no CRLF before it. */
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    struct form *f = calloc(1, sizeof *f);
    if (!f)
        return as_errf(err, AS_ENOMEM, "out of memory");
    const char *end = body + len;
    if (len < (size_t)dl - 2 || memcmp(body, delim + 2, (size_t)dl - 2) != 0) {
        rc = as_errf(err, AS_EINVAL, "multipart form does not start with its boundary");
        goto fail;
    }
    const char *p = body + dl - 2;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            break; /* the closing boundary */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            rc = as_errf(err, AS_EINVAL, "malformed multipart boundary line");
            goto fail;
        }
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend || hend - p > PART_HEADERS_MAX) {
            rc = as_errf(err, AS_EINVAL, "multipart part without headers");
            goto fail;
        }
        /* name="..." of Content-Disposition: form-data. */
        const char *disp = NULL;
        for (const char *h = p; h < hend;) {
            const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
            if (!eol)
                eol = hend;
            if ((size_t)(eol - h) > 20 && strncasecmp(h, "Content-Disposition:", 20) == 0)
                disp = h;
            h = eol + 2;
        }
        const char *name = NULL;
        size_t name_len = 0;
        if (disp) {
            const char *eol = memmem(disp, (size_t)(hend - disp), "\r\n", 2);
            size_t dlen = (size_t)((eol ? eol : hend) - disp);
            for (size_t i = 0; i + 6 <= dlen; i++) {
                /* "name=" on its own, not the tail of "filename=" */
                if (strncmp(disp + i, "name=\"", 6) == 0 &&
                    (i == 0 || disp[i - 1] == ' ' || disp[i - 1] == ';')) {
                    name = disp + i + 6;
                    const char *q = memchr(name, '"', dlen - i - 6);
                    name_len = q ? (size_t)(q - name) : 0;
                    break;
                }
            }
        }
        if (!name || !name_len) {
            rc = as_errf(err, AS_EINVAL, "multipart part without a form-data name");
            goto fail;
        }
        const char *content = hend + 4;
        const char *next = memmem(content, (size_t)(end - content), delim, (size_t)dl);
        if (!next) {
            rc = as_errf(err, AS_EINVAL, "multipart form without its closing boundary");
            goto fail;
        }
        rc = form_add(f, name, name_len, content, (size_t)(next - content), max_fields, err);
        if (rc)
            goto fail;
        p = next + dl;
    }
    *out = f;
    return AS_OK;
fail:
    form_free(f);
    return rc;
}

const char *form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->fields[i].name, name) == 0)
            return f->fields[i].value;
    return NULL;
}

size_t form_count(const struct form *f)
{
    return f ? f->n : 0;
}

const char *form_name_at(const struct form *f, size_t i)
{
    return f && i < f->n ? f->fields[i].name : NULL;
}

const char *form_value_at(const struct form *f, size_t i)
{
    return f && i < f->n ? f->fields[i].value : NULL;
}

void form_free(struct form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->fields[i].value);
    free(f->fields);
    free(f);
}
