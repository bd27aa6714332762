/*
 * smtp_auth_report.h - the Exchange admin center's SMTP AUTH clients report
 * (Reports > Mail flow > SMTP AUTH clients, exported as CSV): which senders
 * submitted mail over SMTP AUTH, how many messages, and with which
 * authentication protocol (Basic or OAuth).  `assent import
 * smtp-auth-report FILE.csv` loads it into the store (db/db_evidence.h), so
 * the users report's smtp_basic_30d says who still sends with Basic.
 *
 * The columns are found by their header, case-insensitively (docs/m365.md
 * lists the names accepted and marks the format assumed): a sender ("Sender
 * address"), a message count ("Messages sent") and an authentication
 * protocol ("Authentication protocol", any header naming "auth").  Rows of
 * one sender are summed per protocol.
 */
#ifndef ASSENT_M365_SMTP_AUTH_REPORT_H
#define ASSENT_M365_SMTP_AUTH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "base/error.h"
#include "db/db_evidence.h"

struct smtp_auth_report {
    struct db_smtp_auth_row *rows; /* one per sender; upn strings owned */
    size_t n, cap;
    long records;                  /* data rows read */
    int64_t basic_messages, oauth_messages;
    size_t basic_senders;          /* senders with at least one Basic message */
};

/*
 * Parse the export in f (named `name` in messages).  AS_EINVAL naming the
 * row and column for a bad header, count or protocol; nothing is kept then.
 */
enum as_code smtp_auth_report_parse(FILE *f, const char *name, struct smtp_auth_report *out,
                                    struct as_err *err) AS_WUR;

void smtp_auth_report_free(struct smtp_auth_report *r);

#endif
