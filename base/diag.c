/* diag.c - the diagnostic list (see diag.h). */
#include "base/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void diag_add(struct diag_list *list, enum diag_severity sev, const char *code, const char *path,
              const char *fmt, ...)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        struct diag *items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return;
        list->items = items;
        list->cap = cap;
    }
    struct diag *d = &list->items[list->n++];
    memset(d, 0, sizeof *d);
    d->severity = sev;
    snprintf(d->code, sizeof d->code, "%s", code);
    snprintf(d->path, sizeof d->path, "%s", path ? path : "$");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

size_t diag_errors(const struct diag_list *list)
{
    size_t n = 0;
    for (size_t i = 0; i < list->n; i++)
        n += list->items[i].severity == DIAG_ERROR;
    return n;
}

void diag_free(struct diag_list *list)
{
    free(list->items);
    list->items = NULL;
    list->n = list->cap = 0;
}
