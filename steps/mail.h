/*
 * mail.h - send one email: build the message (steps/mail_mime.h), pick the
 * transport from configuration, and make the send idempotent.
 *
 * Transports (config mail_transport):
 *   file  - write <mail_dir>/<id>.eml atomically (the default: a fresh
 *           install needs no mail server); see steps/mail_file.h
 *   smtp  - libesmtp to smtp_url (smtp://, smtp+starttls://, smtps://),
 *           optional AUTH with smtp_user + smtp_password_file; see
 *           steps/mail_smtp.h
 *   graph - Microsoft Graph sendMail through the M365 client (steps/mail_graph.h)
 *
 * Idempotency.  With an idempotency key the Message-ID is derived from the
 * key ("<" + hex(SHA-256(key))[:32] + "@assent." + sender domain + ">") and
 * the send is bracketed by two short write transactions in db/db_mail.c:
 * 'sending' before the transport is called, 'sent' (with the answer) or
 * 'failed' after.  A later call with the same key
 *   - after 'sent': sends nothing and returns the stored result with
 *     "deduplicated": true;
 *   - after 'failed': sends again (nothing was accepted the last time);
 *   - finding 'sending' whose owner process is gone (a crash between the
 *     two transactions) or whose lease ran out: sends the very same message
 *     again (same Message-ID and Date) once, and records that re-send;
 *   - finding 'sending' still owned by a live sender: AS_ETRANSIENT
 *     ("in progress"), so the caller retries later instead of doubling it.
 * A crash therefore re-sends at most once per crash, with the same
 * Message-ID, which receiving clients use to drop duplicates.  After three
 * crash re-sends of one key mail_send refuses (AS_EPERMANENT) rather than
 * feed a crash loop.  Without a key nothing is recorded and the Message-ID
 * is random.
 */
#ifndef ASSENT_MAIL_H
#define ASSENT_MAIL_H

#include <jansson.h>

#include "base/error.h"

struct app;

struct mail_msg {
    const char *from;            /* "Name <a@b>" or "a@b"; NULL = config mail_from */
    const char *const *to;       /* NULL-terminated, at least one */
    const char *const *cc;       /* NULL-terminated, or NULL */
    const char *subject;         /* UTF-8 */
    const char *text;            /* UTF-8 text body, or NULL */
    const char *html;            /* UTF-8 HTML body, or NULL (one of text/html required) */
    const char *idempotency_key; /* or NULL: no dedupe, random Message-ID */
    const char *reply_to;        /* or NULL */
};

/*
 * Send msg.  On AS_OK *result is a new JSON object (caller decrefs):
 *   {"message_id": "<...>", "transport": "smtp"|"file"|"graph",
 *    "recipients": [{"address": "a@b", "status": "accepted"|"rejected",
 *                    "code": 250, "reply": "250 2.0.0 Ok"}, ...],
 *    "deduplicated": false}
 * (file transport: code 250 and the file name as reply; graph: code 202).
 * Some recipients may be rejected while others were accepted: that is
 * success, reported per recipient.
 *
 * Errors (err->msg has the server's reply where there is one):
 *   AS_EINVAL     bad message or configuration (addresses, UTF-8, smtp_url)
 *   AS_ETRANSIENT retry later: connection refused or dropped, timeout, 4xx
 *                 reply, every recipient rejected with a 4xx, send in progress
 *   AS_EPERMANENT do not retry: 5xx for the message, every recipient rejected
 *                 (at least one with 5xx), TLS certificate refused, AUTH refused
 *   AS_EDB, AS_EIO, AS_ENOMEM
 * On failure *result is NULL unless the server answered per recipient, in
 * which case *result (caller decrefs) still lists them.
 *
 * app->cfg is required, app->db too when msg->idempotency_key is set.
 * Thread-safe: each call uses its own SMTP session on the caller's thread
 * and blocks for at most a few smtp_timeout_seconds.  Never logs secrets;
 * logs one line per message (id, transport, outcome).
 */
enum as_code mail_send(struct app *app, const struct mail_msg *msg, json_t **result,
                       struct as_err *err) AS_WUR;

/*
 * mail_send in its phases, for a caller that puts the bookkeeping in write
 * transactions of its own choosing (the approval step records a new
 * approval's links and their claims in one group commit, and their sends
 * in one more):
 *   mail_job_new     checks and builds the message; nothing is recorded;
 *   mail_job_claim   the 'sending' row (a store write; with a key only):
 *                    AS_OK to send, or the key was sent before (then
 *                    mail_job_send sends nothing and the result is the
 *                    stored one), or mail_send's errors for a send in
 *                    progress or given up;
 *   mail_job_send    calls the transport (no store access);
 *   mail_job_finish  records 'sent' or 'failed' (a store write) when the
 *                    job claimed the row; AS_OK otherwise.
 * mail_job_result takes the result mail_send would have returned (new
 * reference or NULL).  msg is borrowed until mail_job_free (NULL is fine).
 * mail_send is exactly new, claim, send, finish.
 */
struct mail_job;
enum as_code mail_job_new(struct app *app, const struct mail_msg *msg, struct mail_job **out,
                          struct as_err *err) AS_WUR;
enum as_code mail_job_claim(struct mail_job *j, struct as_err *err) AS_WUR;
enum as_code mail_job_send(struct mail_job *j, struct as_err *err) AS_WUR;
enum as_code mail_job_finish(struct mail_job *j, struct as_err *err) AS_WUR;
json_t *mail_job_result(struct mail_job *j);
const char *mail_job_message_id(const struct mail_job *j);
void mail_job_free(struct mail_job *j);

/*
 * Build the message exactly as mail_send would (for dry runs and previews)
 * without sending or recording anything.  *message_id receives the derived
 * Message-ID (malloc'd), *message the RFC 5322 text (malloc'd).  Date is now.
 */
enum as_code mail_render(struct app *app, const struct mail_msg *msg, char **message_id,
                         char **message, struct as_err *err) AS_WUR;

/*
 * Check the mail configuration without sending anything, so a process can
 * refuse to start with a clear message instead of failing its first email:
 * mail_from is an address; for smtp the smtp_url parses, smtp_user comes
 * with a readable 0600 smtp_password_file and a TLS URL (or a loopback
 * host), smtp_ca_file loads; for graph the M365 client can be configured;
 * for file mail_dir is set (a warning is logged when the existing folder is
 * open to group or others).  AS_EINVAL with the key named in err->msg.
 */
struct config;
enum as_code mail_config_check(const struct config *cfg, struct as_err *err) AS_WUR;

/*
 * A transport that a higher layer provides (the Microsoft 365 folder
 * registers "graph": m365/mail_graph.h).  "smtp" and "file" are built in.
 * send() gets the built message (mime, mime_len: RFC 5322 text) and the
 * envelope's addr-specs, and reports per recipient in *recipients as SMTP
 * does; check() validates the configuration without sending.
 */
struct mail_transport {
    const char *name;
    enum as_code (*send)(struct app *app, const char *from_addr, const struct mail_msg *msg,
                         const char *mime, size_t mime_len, const char *const *rcpts,
                         json_t **recipients, struct as_err *err);
    enum as_code (*check)(const struct config *cfg, struct as_err *err);
};

/* Make `t` (borrowed for the process lifetime) available as mail_transport
 * t->name.  Call from main before any send; not thread-safe.  Registering a
 * name twice keeps the first. */
void mail_transport_register(const struct mail_transport *t);

/*
 * The same at-most-once bookkeeping for another kind of message (a card
 * posted to a Teams channel, steps/webhook.h): claim `key` in the store with
 * `transport` naming the kind, call send(ud) unless it was sent before, and
 * record its answer.  On AS_OK *result is {"message_id", "transport",
 * "answer" (what send gave), "deduplicated"} (new reference); a key sent
 * before answers its stored result with "deduplicated": true and send is
 * not called.  send's error is returned as is (AS_ETRANSIENT: call again
 * later; the row is 'failed', so the next call sends).
 */
enum as_code mail_once(struct app *app, const char *key, const char *transport,
                       enum as_code (*send)(void *ud, json_t **answer, struct as_err *err),
                       void *ud, json_t **result, struct as_err *err) AS_WUR;

#endif
