/* form.c - size-capped application/x-www-form-urlencoded parser (see form.h). */
#include "web/form.h"

#include <stdlib.h>
#include <string.h>

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
