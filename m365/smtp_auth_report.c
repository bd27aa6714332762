/*
 * smtp_auth_report.c - parse the SMTP AUTH clients report export (see
 * smtp_auth_report.h) with libcsv.
 */
#include "m365/smtp_auth_report.h"

#include <csv.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_COLS 64
#define FIELD_MAX (64 * 1024)

struct parse {
    const char *name;
    struct smtp_auth_report *out;
    char *f[MAX_COLS];
    size_t nf;
    long record; /* 1-based CSV record number, the header included */
    int header_done;
    int c_sender, c_count, c_auth;
    enum as_code rc;
    struct as_err *err;
};

static const char *const sender_names[] = {"Sender address", "SenderAddress", "Sender",
                                           "User principal name", "UserPrincipalName", NULL};
static const char *const count_names[] = {"Messages sent", "MessagesSent", "Message count",
                                          "MessageCount", "Messages", "Count", NULL};

static void *capped_realloc(void *p, size_t size)
{
    return size > FIELD_MAX ? NULL : realloc(p, size);
}

static void on_field(void *s, size_t len, void *data)
{
    struct parse *P = data;
    if (P->nf < MAX_COLS)
        P->f[P->nf] = strndup(s ? s : "", s ? len : 0);
    P->nf++;
}

static const char *cell(const struct parse *P, int col)
{
    if (col < 0 || (size_t)col >= P->nf || col >= MAX_COLS || !P->f[col])
        return "";
    return P->f[col];
}

/* Index of the first header equal to one of names (case-insensitive, spaces
 * around ignored), or -1. */
static int find_col(const struct parse *P, const char *const *names)
{
    for (size_t n = 0; names[n]; n++)
        for (size_t i = 0; i < P->nf && i < MAX_COLS; i++) {
            const char *h = P->f[i] ? P->f[i] : "";
            size_t len = strlen(names[n]);
            while (*h == ' ')
                h++;
            if (!strncasecmp(h, names[n], len) && (!h[len] || h[len] == ' '))
                return (int)i;
        }
    return -1;
}

static int find_auth_col(const struct parse *P)
{
    for (size_t i = 0; i < P->nf && i < MAX_COLS; i++)
        if (P->f[i] && strcasestr(P->f[i], "auth") && !strcasestr(P->f[i], "smtp auth"))
            return (int)i;
    return -1;
}

static void header(struct parse *P)
{
    P->c_sender = find_col(P, sender_names);
    P->c_count = find_col(P, count_names);
    P->c_auth = find_auth_col(P);
    if (P->c_sender >= 0 && P->c_count >= 0 && P->c_auth >= 0) {
        P->header_done = 1;
        return;
    }
    char found[512];
    size_t o = 0;
    for (size_t i = 0; i < P->nf && i < MAX_COLS && o < sizeof found; i++)
        o += (size_t)snprintf(found + o, sizeof found - o, "%s\"%s\"", i ? ", " : "", cell(P, (int)i));
    P->rc = as_errf(P->err, AS_EINVAL,
                    "%s: row 1: not an SMTP AUTH clients report export: need the columns "
                    "\"Sender address\", \"Messages sent\" and an authentication protocol column "
                    "(Basic or OAuth; export the report from the current Exchange admin center); "
                    "found %s",
                    P->name, o ? found : "no columns");
}

/* "1,234" or "1 234" -> 1234; -1 when it is not a count. */
static int64_t parse_count(const char *s)
{
    int64_t v = 0;
    int digits = 0;
    for (; *s; s++) {
        if (isdigit((unsigned char)*s)) {
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*s - '0');
            digits++;
        } else if (*s != ',' && *s != ' ' && *s != '\xa0') {
            return -1;
        }
    }
    return digits ? v : -1;
}

static struct db_smtp_auth_row *row_for(struct smtp_auth_report *r, const char *upn)
{
    for (size_t i = 0; i < r->n; i++) /* reports hold hundreds of senders, not millions */
        if (!strcasecmp(r->rows[i].upn, upn))
            return &r->rows[i];
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        struct db_smtp_auth_row *p = realloc(r->rows, cap * sizeof *p);
        if (!p)
            return NULL;
        r->rows = p;
        r->cap = cap;
    }
    char *copy = strdup(upn);
    if (!copy)
        return NULL;
    r->rows[r->n] = (struct db_smtp_auth_row){.upn = copy};
    return &r->rows[r->n++];
}

static void data_row(struct parse *P)
{
    const char *sender = cell(P, P->c_sender);
    while (*sender == ' ')
        sender++;
    if (!*sender)
        return;
    const char *count = cell(P, P->c_count), *auth = cell(P, P->c_auth);
    int64_t n = parse_count(count);
    if (n < 0) {
        P->rc = as_errf(P->err, AS_EINVAL, "%s: row %ld: \"%s\" is not a message count",
                        P->name, P->record, count);
        return;
    }
    int basic = strcasestr(auth, "basic") != NULL;
    if (!basic && !strcasestr(auth, "oauth") && !strcasestr(auth, "modern")) {
        P->rc = as_errf(P->err, AS_EINVAL,
                        "%s: row %ld: authentication protocol \"%s\" is neither Basic nor OAuth",
                        P->name, P->record, auth);
        return;
    }
    if (!strchr(sender, '@')) {
        P->rc = as_errf(P->err, AS_EINVAL,
                        "%s: row %ld: sender \"%s\" is not an address (concealed names? turn "
                        "concealment off in the Microsoft 365 admin center and export again)",
                        P->name, P->record, sender);
        return;
    }
    struct db_smtp_auth_row *row = row_for(P->out, sender);
    if (!row) {
        P->rc = as_errf(P->err, AS_ENOMEM, "out of memory");
        return;
    }
    P->out->records++;
    if (basic) {
        if (n && !row->basic_messages)
            P->out->basic_senders++;
        row->basic_messages += n;
        P->out->basic_messages += n;
    } else {
        row->oauth_messages += n;
        P->out->oauth_messages += n;
    }
}

static void on_record(int c, void *data)
{
    (void)c;
    struct parse *P = data;
    P->record++;
    if (!P->rc && !(P->nf == 1 && !*cell(P, 0))) {
        if (!P->header_done)
            header(P);
        else
            data_row(P);
    }
    for (size_t i = 0; i < P->nf && i < MAX_COLS; i++) {
        free(P->f[i]);
        P->f[i] = NULL;
    }
    P->nf = 0;
}

enum as_code smtp_auth_report_parse(FILE *f, const char *name, struct smtp_auth_report *out,
                                    struct as_err *err)
{
    struct parse P = {.name = name, .out = out, .err = err};
    struct csv_parser p;
    char buf[65536];
    size_t n;
    int first = 1;
    memset(out, 0, sizeof *out);
    if (csv_init(&p, CSV_APPEND_NULL) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    csv_set_realloc_func(&p, capped_realloc);
    while (!P.rc && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        const char *s = buf;
        if (first && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) { /* the export's BOM */
            s += 3;
            n -= 3;
        }
        first = 0;
        if (csv_parse(&p, s, n, on_field, on_record, &P) != n && !P.rc)
            P.rc = as_errf(err, AS_EINVAL, "%s: after row %ld: CSV error: %s", name, P.record,
                           csv_error(&p) == CSV_ENOMEM ? "a field is longer than 64 KiB"
                                                       : csv_strerror(csv_error(&p)));
    }
    if (!P.rc && ferror(f))
        P.rc = as_errf(err, AS_EIO, "%s: read error", name);
    if (!P.rc)
        csv_fini(&p, on_field, on_record, &P);
    csv_free(&p);
    for (size_t i = 0; i < P.nf && i < MAX_COLS; i++)
        free(P.f[i]);
    if (!P.rc && !P.header_done)
        P.rc = as_errf(err, AS_EINVAL, "%s: empty file (no header row)", name);
    if (P.rc)
        smtp_auth_report_free(out);
    return P.rc;
}

void smtp_auth_report_free(struct smtp_auth_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        free((char *)r->rows[i].upn);
    free(r->rows);
    memset(r, 0, sizeof *r);
}
