/*
 * outbox_page.h - GET /outbox: the demo's outbox.  Lists the emails the file
 * mail transport delivered (newest first: when, to whom, subject, the links
 * in them, the text), and the client access protocols of every mailbox in
 * the tenant simulator's state file, so a person running `assent demo` can
 * open an approval link, approve, and watch POP/IMAP/SMTP AUTH go off.
 *
 * The page shows approval links, which are secrets, so it exists only when
 * outbox_page_configure() was called (by `assent demo`, which listens on
 * 127.0.0.1); otherwise /outbox answers 404.  GET and HEAD only; reading
 * the page changes nothing.
 */
#ifndef ASSENT_WEB_OUTBOX_PAGE_H
#define ASSENT_WEB_OUTBOX_PAGE_H

#include <stddef.h>

struct web_req;
struct web_resp;

/*
 * Enable the page: mail_dir holds the .eml files of the file transport;
 * sim_state (may be NULL) is the simulator's JSON state file.  The strings
 * are copied.  Call before the web server starts; not thread-safe against
 * a running server.  mail_dir NULL disables the page again.
 */
void outbox_page_configure(const char *mail_dir, const char *sim_state);

/* The handler (registered in web/routes.c). */
void web_outbox_page(struct web_req *req, struct web_resp *resp);

/*
 * Parse one .eml message (exposed for tests): *subject (RFC 2047 decoded),
 * *to, *date and *text (the text/plain part, transfer-decoded) are malloc'd
 * (caller frees; "" when absent).  Returns 0, or -1 when msg is not a
 * message or out of memory.
 */
int outbox_parse_message(const char *msg, size_t len, char **subject, char **to, char **date,
                         char **text);

#endif
