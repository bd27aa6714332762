/*
 * mail_graph.c - Graph sendMail transport (see mail_graph.h).
 *
 * Graph's JSON message has one body, so an email with both parts goes as
 * HTML (Exchange derives the plain-text alternative itself).  The
 * Message-ID derived from the idempotency key is sent as
 * internetMessageId, so recipients' clients see the same id as with SMTP.
 * m365_send_mail never repeats a send whose fate is unknown (it answers
 * AS_ETRANSIENT); mail_send's bookkeeping decides about the retry.
 */
#include "m365/mail_graph.h"

#include <stdlib.h>
#include <string.h>

#include "engine/app.h"
#include "base/config.h"
#include "base/timeutil.h"
#include "m365/m365.h"
#include "steps/mail_mime.h"

/* [{"emailAddress": {"address": a, "name": n}}, ...] for an address list. */
static enum as_code recipients_json(const char *const *list, json_t **out, struct as_err *err)
{
    json_t *arr = json_array();
    *out = NULL;
    if (!arr)
        return as_errf(err, AS_ENOMEM, "out of memory");
    for (size_t i = 0; list && list[i]; i++) {
        struct mail_addr a;
        enum as_code rc = mail_addr_parse(list[i], &a, err);
        if (rc) {
            json_decref(arr);
            return rc;
        }
        json_t *ea = json_pack("{s:s}", "address", a.addr);
        if (ea && a.name)
            json_object_set_new(ea, "name", json_string(a.name));
        mail_addr_clear(&a);
        if (!ea || json_array_append_new(arr, json_pack("{s:o}", "emailAddress", ea)) != 0) {
            json_decref(arr);
            return as_errf(err, AS_ENOMEM, "out of memory");
        }
    }
    *out = arr;
    return AS_OK;
}

/* The Message-ID header of a built message (without the CRLF), copied into out. */
static void message_id_of(const char *mime, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    const char *end = mime + len;
    for (const char *p = mime; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n')
            p++;
        if (p[0] == '\r' && p[1] == '\n')
            return; /* end of the header block */
        if (strncmp(p, "Message-ID: ", 12) == 0) {
            size_t n = strcspn(p + 12, "\r\n");
            if (n < size) {
                memcpy(out, p + 12, n);
                out[n] = '\0';
            }
            return;
        }
    }
}

enum as_code mail_graph_send(struct app *app, const char *from_addr, const struct mail_msg *msg,
                             const char *mime, size_t mime_len, const char *const *rcpts,
                             json_t **recipients, struct as_err *err)
{
    enum as_code rc;
    json_t *to = NULL, *cc = NULL, *reply_to = NULL, *message = NULL, *list = NULL;
    struct m365 *m = NULL;
    char message_id[320];
    *recipients = NULL;

    if ((rc = recipients_json(msg->to, &to, err)) || (rc = recipients_json(msg->cc, &cc, err)))
        goto out;
    if (msg->reply_to && *msg->reply_to) {
        const char *rt[] = {msg->reply_to, NULL};
        if ((rc = recipients_json(rt, &reply_to, err)))
            goto out;
    }
    message_id_of(mime, mime_len, message_id, sizeof message_id);
    int html = msg->html != NULL;
    message = json_pack("{s:s, s:{s:s, s:s}, s:o, s:o}", "subject", msg->subject, "body",
                        "contentType", html ? "HTML" : "Text", "content",
                        html ? msg->html : msg->text, "toRecipients", to, "ccRecipients", cc);
    to = cc = NULL; /* stolen by json_pack, even on failure */
    if (!message) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (reply_to) {
        json_object_set_new(message, "replyTo", reply_to);
        reply_to = NULL;
    }
    if (message_id[0])
        json_object_set_new(message, "internetMessageId", json_string(message_id));

    if ((rc = m365_thread_get(app->cfg, &m, err)))
        goto out;
    /* Bounded like an SMTP send (mail.c's lease covers it); the client is
     * the thread's, shared with other steps, so the deadline is undone after. */
    m365_set_deadline(m, time_mono_ms() + 1000 * config_int(app->cfg, "http_timeout_seconds"));
    rc = m365_send_mail(m, from_addr, message, 0, err);
    m365_set_deadline(m, 0);
    switch (rc) {
    case AS_OK:
        break;
    case AS_EAUTH:
    case AS_ENOTFOUND:
        /* The app may not send as this mailbox, or it does not exist:
         * configuration, not luck - do not retry. */
        as_err_prefix(err, "Graph sendMail as %s", from_addr);
        rc = AS_EPERMANENT;
        goto out;
    default:
        as_err_prefix(err, "Graph sendMail as %s", from_addr);
        goto out;
    }
    list = json_array();
    for (size_t i = 0; list && rcpts[i]; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:s}", "address", rcpts[i],
                                              "status", "accepted", "code", 202, "reply",
                                              "202 Accepted"));
    if (!list) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    *recipients = list;
out:
    json_decref(to);
    json_decref(cc);
    json_decref(reply_to);
    json_decref(message);
    return rc;
}

enum as_code mail_graph_check(const struct config *cfg, struct as_err *err)
{
    struct m365 *m = NULL;
    enum as_code rc = m365_new(cfg, &m, err);
    m365_free(m);
    return rc;
}

const struct mail_transport mail_transport_graph = {"graph", mail_graph_send, mail_graph_check};
