/*
 * report.h - the users and sign-ins reports of the last tenant sync: their
 * columns, each cell as text, CSV, and the rows a query selects.  One
 * definition for `assent report` (cli/cmd_tenant.c) and GET
 * /api/v1/reports/users|signins (web/api_m365.c), so both show the same
 * columns, filter with the same expression language (docs/expressions.md)
 * and sort the same way.
 *
 * Policies (REPORT_POLICIES) are the synced Conditional Access policies
 * that concern legacy authentication (db/db_ca.h rows).  Plans
 * (REPORT_PLANS) are the CAS mailbox plans, with legacy_on for a plan that
 * gives new mailboxes POP or IMAP; the organisation (REPORT_ORG) is one row:
 * its EWS settings (db/db_plans.h) plus pending_app_ids, the allow list of
 * the newest Assent write a read has not shown yet (null when none), and
 * pending_since.
 *
 * Rows come from db_tenant (one row builder for every consumer); users rows
 * get "exempt" (the protocols of the user's active exceptions, [] when none)
 * and "exempt_reason" (string or null) from m365/kpi.h.
 */
#ifndef ASSENT_REPORT_H
#define ASSENT_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct app;
struct strbuf;

enum report_kind { REPORT_USERS, REPORT_SIGNINS, REPORT_POLICIES, REPORT_PLANS, REPORT_ORG };

/* One column: its header (table and CSV) and the row key it shows. */
struct report_col {
    const char *header;
    const char *key;
    int fmt; /* private to report.c: how the cell is written */
};

/* The columns of a report, in order; *n receives their number. */
const struct report_col *report_columns(enum report_kind kind, size_t *n);

/* The text of one cell ("on"/"off", "yes"/"no", "-" for none, ...) into out. */
void report_cell_text(const struct report_col *c, const json_t *row, char *out, size_t size);

/* s as one CSV field (RFC 4180: quoted when it holds a comma, quote or line break). */
void report_csv_field(struct strbuf *b, const char *s);

/* The header line and the line of one row, as CSV with CRLF-free "\n" endings. */
void report_csv_header(struct strbuf *b, enum report_kind kind);
void report_csv_row(struct strbuf *b, enum report_kind kind, const json_t *row);

/* What to report.  Strings are borrowed for the life of the report. */
struct report_query {
    enum report_kind kind;
    const char *where;      /* expression over the row; NULL: every row */
    const char *sort;       /* users: COL, COL,asc or COL,desc (a row key or a column
                               header); NULL: by user principal name.  Sign-ins are
                               always newest first: a sort is refused for them. */
    const char *after;      /* users by user principal name only: a keyset cursor, the
                               rows after this UPN (case-insensitive; "": from the
                               first), read in chunks of users so that a page costs
                               what it shows wherever it is; NULL: one listing */
    /* sign-ins only */
    int64_t since_ms;       /* rows at or after this time; 0: the last 30 days */
    const char *client_app; /* NULL: any; case-insensitive */
    const char *upn;        /* NULL: any; case-insensitive */
};

struct report;

/*
 * Check q and prepare it at `now`: compile the where expression, read the
 * sort, load the active exceptions (users).  AS_EINVAL with a message that
 * starts with the parameter at fault ("where: ...", "sort: ..."); AS_EDB.
 * Free with report_free().
 */
enum as_code report_open(struct app *app, const struct report_query *q, int64_t now,
                         struct report **out, struct as_err *err) AS_WUR;

/*
 * Call cb with each row q selects, in order, until it returns nonzero.  A
 * row is borrowed for the call.  May be called more than once (a table is
 * measured, then printed).  AS_EINVAL for a sort column the store does not
 * know, or for a where expression that fails on a row ("where on UPN:
 * ..."; report_row_failed() then says so); AS_EDB.
 */
enum as_code report_foreach(struct report *r, int (*cb)(void *ud, const json_t *row), void *ud,
                            struct as_err *err) AS_WUR;

/* 1 when the last report_foreach failed because the where expression failed on a row. */
int report_row_failed(const struct report *r);

void report_free(struct report *r);

#endif
