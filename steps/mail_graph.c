/* mail_graph.c - Graph sendMail transport (see mail_graph.h). */
#include "steps/mail_graph.h"

enum as_code mail_graph_send(struct app *app, const char *from_addr, const struct mail_msg *msg,
                             const char *mime, size_t mime_len, const char *const *rcpts,
                             json_t **recipients, struct as_err *err)
{
    (void)app, (void)from_addr, (void)msg, (void)mime, (void)mime_len, (void)rcpts;
    *recipients = NULL;
    /* Waits for the M365 client's m365_send_mail (steps/m365.h). */
    return as_errf(err, AS_EUNSUPPORTED,
                   "mail_transport graph is not available in this build yet; use smtp or file");
}
