/*
 * console.h - private to web/: the admin console under /console/, and what
 * its pages share.
 *
 * web/console.c routes a request under /console/ to its page: it finds the
 * route (404 page, 405), identifies the session (web/auth.h: the cookie
 * WEB_AUTH_COOKIE; none, ended or expired: 303 to /console/login), checks
 * the route's role (403 page), and for a POST checks the origin
 * (Sec-Fetch-Site/Origin), the media type (a form) and the CSRF token bound
 * to the session before the page's handler runs.  It also holds the
 * sessions (login with a token, logout) and the layout every page shares:
 * one inline stylesheet allowed by its hash in the console's own CSP, no
 * script, no external asset.
 *
 * The pages live by subject and call the same functions as the REST API
 * (web/web_ops.h and the layers below), never their own queries:
 *   web/console_pages.c   overview, KPIs (charts: web/console_chart.h)
 *   web/console_users.c   the users report, its CSV, the bulk action
 *   web/console_runs.c    runs, a run's timeline, approvals and decisions
 *   web/console_admin.c   exceptions, workflows and the validate form
 * A GET never changes anything; every change is a POST of a form with the
 * CSRF token, recorded in the audit chain with the session's name.
 */
#ifndef ASSENT_WEB_CONSOLE_H
#define ASSENT_WEB_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/html.h"
#include "web/auth.h"
#include "web/form.h"
#include "web/server.h"

#define CONSOLE_MAX_BODY (1024 * 1024) /* a form: a selection of users, a workflow */
#define CONSOLE_MAX_FIELDS 2100        /* fields of a form (selections up to 2000) */
#define CONSOLE_PAGE_DEFAULT 100       /* rows of a listing */
#define CONSOLE_PAGE_MAX 1000

/* One call of a page.  Everything is borrowed for the call. */
struct console_call {
    struct web_req *req;
    struct web_resp *resp;
    struct web_principal who; /* the session's token name and role */
    struct form *form;        /* POST: the form; GET: NULL */
    const char *arg;          /* the {} segment of the route ("" when none) */
    char csrf[96];            /* the CSRF token of the forms on this page */
};

typedef void (*console_handler)(struct console_call *c);

/* ---- layout ---- */

/* The head, the navigation (current: the active section, e.g. "users") and
 * the heading h1 (escaped) of a console page. */
void console_page_begin(struct console_call *c, struct html_buf *b, const char *title,
                        const char *current);

/* End the page and answer it with status (taking b). */
void console_page_end(struct console_call *c, struct html_buf *b, int status);

/* <form method="post" action="action"> with the CSRF field (action: a path
 * written by Assent, escaped anyway).  End with html_raw(b, "</form>"). */
void console_form_begin(struct console_call *c, struct html_buf *b, const char *action);

/* A page with a heading and a message (both escaped), with status. */
void console_message(struct console_call *c, int status, const char *title, const char *message);

/* 303 See Other to a path of Assent's (no scheme or host). */
void console_redirect(struct console_call *c, const char *location);

/* 1 when the session's role is at least need; else a 403 page and 0. */
int console_need(struct console_call *c, enum api_role need);

/* ---- values ---- */

/* Query parameter or form field name (form first on a POST); "" counts as absent. */
const char *console_param(struct console_call *c, const char *name);

/* A positive integer parameter into *out (absent: dflt, 1 when ok; out of
 * [1, max]: 0). */
int console_int_param(struct console_call *c, const char *name, int64_t dflt, int64_t max,
                      int64_t *out);

/* Text as one query-string value (percent-encoded; then escaped as markup). */
void console_url_value(struct html_buf *b, const char *s);

/* "2026-03-01 08:00 UTC" ("-" for 0). */
void console_time(int64_t ms, char *buf, size_t size);

/* "3 h 12 min ago" for a past time (now - ms), "in 5 d" for a future one. */
void console_ago(int64_t now, int64_t ms, char *buf, size_t size);

/* A notice at the top of a page from the query's "done" (a code of the
 * console's own, looked up in a fixed table: never echoed). */
void console_notice(struct console_call *c, struct html_buf *b);

/* A <td> with the text (escaped). */
void console_td(struct html_buf *b, const char *text);

/* A paragraph saying what failed (class error), escaped: for a part of a
 * page whose data could not be read. */
void console_error_p(struct html_buf *b, const char *text);

/* ---- pages ---- */

void console_overview(struct console_call *c);   /* console_pages.c */
void console_kpis(struct console_call *c);
void console_kpi(struct console_call *c);
void console_kpi_evaluate(struct console_call *c);
void console_kpi_trigger(struct console_call *c);

void console_users(struct console_call *c);      /* console_users.c */
void console_users_csv(struct console_call *c);
void console_bulk(struct console_call *c);

void console_runs(struct console_call *c);       /* console_runs.c */
void console_run(struct console_call *c);
void console_run_cancel(struct console_call *c);
void console_run_retry(struct console_call *c);
void console_approvals(struct console_call *c);
void console_approval(struct console_call *c);
void console_approval_decide(struct console_call *c);

void console_exceptions(struct console_call *c); /* console_admin.c */
void console_exception_add(struct console_call *c);
void console_exception_remove(struct console_call *c);
void console_workflows(struct console_call *c);
void console_workflow_validate(struct console_call *c);
void console_tokens(struct console_call *c);
void console_token_add(struct console_call *c);
void console_token_revoke(struct console_call *c);

#endif
