/*
 * mail_graph.h - the Microsoft Graph transport: sendMail through the M365
 * client (m365/m365.h), for tenants that have turned SMTP AUTH off.  The
 * message is sent as the mailbox of the sender address.
 */
#ifndef ASSENT_MAIL_GRAPH_H
#define ASSENT_MAIL_GRAPH_H

#include <jansson.h>
#include <stddef.h>

#include "base/error.h"
#include "steps/mail.h"

struct app;

/*
 * Send the built message (mime, mime_len: RFC 5322 text as mail_mime_build
 * made it) from mailbox `from_addr` to the addr-specs in rcpts.  Graph
 * answers 202 for the whole message, so every recipient is reported
 * "accepted" with code 202.  AS_ETRANSIENT for throttling, 5xx and network
 * errors; AS_EPERMANENT for other 4xx (the Graph error code in err->msg).
 */
enum as_code mail_graph_send(struct app *app, const char *from_addr, const struct mail_msg *msg,
                             const char *mime, size_t mime_len, const char *const *rcpts,
                             json_t **recipients, struct as_err *err) AS_WUR;

/* Check that the M365 client can be configured (the transport's check). */
struct config;
enum as_code mail_graph_check(const struct config *cfg, struct as_err *err) AS_WUR;

/* The "graph" transport, registered by m365_register(). */
extern const struct mail_transport mail_transport_graph;

#endif
