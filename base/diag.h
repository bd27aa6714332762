/*
 * diag.h - diagnostics produced by `assent validate` and the loader.
 *
 * Checks add a diagnostic with a stable code (e.g. "DANGLING_NEXT"), a
 * severity, and the JSON path of the offending value ("$.steps.notify.next");
 * the loader then fills in file, line and column from that path.  Codes are
 * a contract: tools match on them, so never rename one.
 */
#ifndef ASSENT_DIAG_H
#define ASSENT_DIAG_H

#include <stddef.h>

#include "base/error.h"

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag {
    enum diag_severity severity;
    char code[40];
    char path[512]; /* JSON path, "$" for the document */
    int line;       /* 1-based; 0 when unknown */
    int column;     /* 1-based character column; 0 when unknown */
    char msg[768];
};

struct diag_list {
    struct diag *items;
    size_t n, cap;
};

/* Append a diagnostic.  On allocation failure the diagnostic is dropped and
 * list->n stays; callers treat a list with an allocation failure as error. */
void diag_add(struct diag_list *list, enum diag_severity sev, const char *code, const char *path,
              const char *fmt, ...) AS_PRINTF(5, 6);

/* Number of DIAG_ERROR entries. */
size_t diag_errors(const struct diag_list *list);

void diag_free(struct diag_list *list);

#endif
