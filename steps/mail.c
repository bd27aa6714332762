/*
 * mail.c - mail_send(): validate, build, record, send, record (see mail.h).
 *
 * Crash safety rests on the order of three steps, each its own short
 * write transaction or network exchange:
 *   1. db_mail_claim:  the key's row says 'sending' (owner, lease)
 *   2. the transport:  the server accepts or refuses
 *   3. db_mail_finish: the row says 'sent' or 'failed' with the answer
 * Dying between 1 and 3 leaves 'sending'; the next attempt sees that the
 * owner process is gone (or its lease passed) and re-sends the identical
 * message once.  Dying before 1 or after 3 repeats nothing.
 */
#include "steps/mail.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "db/db_mail.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/encode.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "steps/mail_file.h"
#include "steps/mail_mime.h"
#include "base/secret_file.h"
#include "steps/mail_smtp.h"
#include "steps/mail_tls_relay.h"

#define MAX_CRASH_RESENDS 3
#define MAX_ADDRESSES 500

/* ---- who is sending ------------------------------------------------------ */

static char owner_id[320];
static char owner_host[256];
static long owner_pid;
static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * "host:pid:nonce" of this process.  The nonce tells this process from an
 * earlier one that had the same pid (containers often run as the same pid
 * every time); a forked child gets its own.  Returns a copy in buf.
 */
static void owner_current(char *buf, size_t size)
{
    pthread_mutex_lock(&owner_lock);
    if (owner_pid != (long)getpid()) {
        unsigned char r[4] = {0};
        if (gethostname(owner_host, sizeof owner_host) != 0)
            snprintf(owner_host, sizeof owner_host, "unknown");
        owner_host[sizeof owner_host - 1] = '\0';
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            r[0] = (unsigned char)time_now_ms();
        owner_pid = (long)getpid();
        snprintf(owner_id, sizeof owner_id, "%s:%ld:%02x%02x%02x%02x", owner_host, owner_pid,
                 r[0], r[1], r[2], r[3]);
    }
    snprintf(buf, size, "%s", owner_id);
    pthread_mutex_unlock(&owner_lock);
}

/* Could the process named by `owner` still be sending?  Only a process on
 * this host that no longer exists is known dead; anything else is given
 * the benefit of its lease. */
static int owner_alive(const char *owner, void *ud)
{
    const char *self = ud;
    if (strcmp(owner, self) == 0)
        return 1; /* another thread of this very process */
    const char *last = strrchr(owner, ':');
    if (!last || last == owner)
        return 1;
    const char *pid_start = last - 1;
    while (pid_start > owner && pid_start[-1] != ':')
        pid_start--;
    if (pid_start == owner)
        return 1;
    size_t host_len = (size_t)(pid_start - 1 - owner);
    const char *self_pid = strchr(self, ':');
    if (!self_pid || host_len != (size_t)(self_pid - self) || strncmp(owner, self, host_len) != 0)
        return 1; /* another host: only its lease can tell */
    long pid = strtol(pid_start, NULL, 10);
    if (pid <= 0)
        return 1;
    if (pid == (long)getpid())
        return 0; /* our pid, but not our nonce: an earlier process */
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* ---- message preparation ------------------------------------------------- */

struct prepared {
    struct mail_addr from;
    char *envelope[MAX_ADDRESSES + 1]; /* addr-specs of to + cc, de-duplicated */
    size_t n_envelope;
    char message_id[320];
};

static void prepared_clear(struct prepared *p)
{
    mail_addr_clear(&p->from);
    for (size_t i = 0; i < p->n_envelope; i++)
        free(p->envelope[i]);
    p->n_envelope = 0;
}

static enum as_code add_envelope(struct prepared *p, const char *const *list, const char *what,
                                 struct as_err *err)
{
    for (size_t i = 0; list && list[i]; i++) {
        struct mail_addr a;
        enum as_code rc = mail_addr_parse(list[i], &a, err);
        if (rc) {
            as_err_prefix(err, "%s", what);
            return rc;
        }
        int dup = 0;
        for (size_t j = 0; j < p->n_envelope && !dup; j++)
            dup = strcasecmp(p->envelope[j], a.addr) == 0;
        if (!dup) {
            if (p->n_envelope >= MAX_ADDRESSES) {
                mail_addr_clear(&a);
                return as_errf(err, AS_ELIMIT, "more than %d recipients", MAX_ADDRESSES);
            }
            p->envelope[p->n_envelope++] = a.addr;
            a.addr = NULL;
        }
        mail_addr_clear(&a);
    }
    return AS_OK;
}

static enum as_code prepare(struct app *app, const struct mail_msg *msg, const char **from_out,
                            struct prepared *p, struct as_err *err)
{
    enum as_code rc;
    memset(p, 0, sizeof *p);
    const char *from = msg->from && *msg->from ? msg->from : config_str(app->cfg, "mail_from");
    *from_out = from;
    if (!msg->to || !msg->to[0])
        return as_errf(err, AS_EINVAL, "no recipient (to)");
    if ((rc = mail_addr_parse(from, &p->from, err))) {
        as_err_prefix(err, "from");
        return rc;
    }
    if ((rc = add_envelope(p, msg->to, "to", err)) || (rc = add_envelope(p, msg->cc, "cc", err)))
        return rc;
    p->envelope[p->n_envelope] = NULL;
    return mail_mime_message_id(msg->idempotency_key, mail_addr_domain(&p->from), p->message_id,
                                sizeof p->message_id, err);
}

static enum as_code build(const struct mail_msg *msg, const char *from, const char *message_id,
                          int64_t date_ms, char **text, size_t *len, struct as_err *err)
{
    struct mail_mime_in in = {
        .from = from,
        .to = msg->to,
        .cc = msg->cc,
        .reply_to = msg->reply_to,
        .subject = msg->subject,
        .text = msg->text,
        .html = msg->html,
        .message_id = message_id,
        .date_ms = date_ms,
    };
    return mail_mime_build(&in, text, len, err);
}

/* ---- transports ---------------------------------------------------------- */

static enum as_code send_file(struct app *app, const struct prepared *p, const char *message,
                              size_t len, json_t **recipients, struct as_err *err)
{
    char *path = NULL;
    enum as_code rc = mail_file_write(config_str(app->cfg, "mail_dir"), p->message_id, message,
                                      len, &path, err);
    if (rc)
        return rc;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char reply[512];
    snprintf(reply, sizeof reply, "250 written to %s", base);
    json_t *list = json_array();
    for (size_t i = 0; list && i < p->n_envelope; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:s}", "address", p->envelope[i],
                                              "status", "accepted", "code", 250, "reply", reply));
    free(path);
    if (!list)
        return as_errf(err, AS_ENOMEM, "out of memory");
    *recipients = list;
    return AS_OK;
}

static enum as_code send_smtp(struct app *app, const struct prepared *p, const char *message,
                              json_t **recipients, struct as_err *err)
{
    struct mail_smtp_opts o = {
        .url = config_str(app->cfg, "smtp_url"),
        .user = config_str(app->cfg, "smtp_user"),
        .password_file = config_str(app->cfg, "smtp_password_file"),
        .ca_file = config_str(app->cfg, "smtp_ca_file"),
        .timeout_ms = (long)config_int(app->cfg, "smtp_timeout_seconds") * 1000,
    };
    return mail_smtp_send(&o, p->from.addr, (const char *const *)p->envelope, message, recipients,
                          err);
}

/* ---- mail_send ----------------------------------------------------------- */

static int64_t lease_ms(struct app *app)
{
    /* Long enough for a slow but live send to finish: libESMTP's timeouts
     * apply per phase (greeting, envelope, data, transfer, final reply);
     * a Graph send is bounded by http_timeout_seconds. */
    long long t = config_int(app->cfg, "smtp_timeout_seconds");
    long long h = config_int(app->cfg, "http_timeout_seconds");
    return 10000 + 6 * 1000 * (t > h ? t : h);
}

enum as_code mail_render(struct app *app, const struct mail_msg *msg, char **message_id,
                         char **message, struct as_err *err)
{
    struct prepared p;
    const char *from;
    *message_id = *message = NULL;
    enum as_code rc = prepare(app, msg, &from, &p, err);
    if (!rc)
        rc = build(msg, from, p.message_id, time_now_ms(), message, NULL, err);
    if (!rc && !(*message_id = strdup(p.message_id))) {
        free(*message);
        *message = NULL;
        rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    prepared_clear(&p);
    return rc;
}

/* Transports of higher layers (mail_transport_register); few, set at start. */
static const struct mail_transport *transports[4];

void mail_transport_register(const struct mail_transport *t)
{
    for (size_t i = 0; i < sizeof transports / sizeof *transports; i++) {
        if (transports[i] && strcmp(transports[i]->name, t->name) == 0)
            return;
        if (!transports[i]) {
            transports[i] = t;
            return;
        }
    }
    abort(); /* a programming error: more transports than slots */
}

enum as_code mail_once(struct app *app, const char *key, const char *transport,
                       enum as_code (*send)(void *ud, json_t **answer, struct as_err *err),
                       void *ud, json_t **result, struct as_err *err)
{
    struct db_mail_claim claim = {0};
    char owner[sizeof owner_id], id[80], hex[65];
    json_t *answer = NULL;
    enum as_code rc;
    *result = NULL;
    if (!app->db || !key || !*key)
        return as_errf(err, AS_EINVAL, "sending once needs the database and a key");
    owner_current(owner, sizeof owner);
    encode_sha256_hex(key, strlen(key), hex);
    snprintf(id, sizeof id, "%s:%.32s", transport, hex);
    int64_t now = time_now_ms();
    rc = db_mail_claim(app->db, key, id, transport, now, owner, now, now + lease_ms(app),
                       MAX_CRASH_RESENDS, owner_alive, owner, &claim, err);
    if (rc)
        return rc;
    switch (claim.action) {
    case DB_MAIL_DONE:
        json_object_set_new(claim.result, "deduplicated", json_true());
        *result = claim.result;
        claim.result = NULL;
        goto out;
    case DB_MAIL_BUSY:
        rc = as_errf(err, AS_ETRANSIENT, "%s %s is being sent by another worker", transport, id);
        goto out;
    case DB_MAIL_GIVEUP:
        rc = as_errf(err, AS_EPERMANENT,
                     "%s %s: the sender died %d times while sending it; whether it arrived is "
                     "unknown, so it is not sent again",
                     transport, id, claim.resends);
        goto out;
    case DB_MAIL_RESEND:
        LOG_WARN("mail", "%s %s was being sent when a process died; sending it once more",
                 transport, id);
        break;
    case DB_MAIL_SEND:
        break;
    }
    rc = send(ud, &answer, err);
    json_t *res = json_pack("{s:s, s:s, s:o, s:b}", "message_id", id, "transport", transport,
                            "answer", answer ? json_incref(answer) : json_null(), "deduplicated",
                            0);
    struct as_err ferr = {0};
    if (!res) {
        /* Sent or not, the answer cannot be kept: leave 'sending' (at most one re-send). */
        rc = rc ? rc : as_errf(err, AS_ENOMEM, "out of memory");
        goto out;
    }
    if (db_mail_finish(app->db, key, rc ? "failed" : "sent", res, rc ? err->msg : NULL,
                       time_now_ms(), &ferr))
        LOG_ERROR("mail", "%s %s: cannot record the send: %s", transport, id, ferr.msg);
    if (rc)
        json_decref(res);
    else
        *result = res;
out:
    json_decref(answer);
    db_mail_claim_clear(&claim);
    return rc;
}

static const struct mail_transport *transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof transports / sizeof *transports && transports[i]; i++)
        if (strcmp(transports[i]->name, name) == 0)
            return transports[i];
    return NULL;
}

/* One message on its way (mail.h): built, then claimed, sent, recorded. */
struct mail_job {
    struct app *app;
    const struct mail_msg *msg; /* borrowed until mail_job_free */
    struct prepared p;
    const char *from;
    const char *transport;
    char *text;
    size_t len;
    int64_t now;
    char owner[sizeof owner_id];
    struct db_mail_claim claim;
    int claimed;     /* the row says 'sending' for us: finish must record */
    int to_send;     /* claimed, and the transport not yet called */
    enum as_code rc; /* the send's */
    struct as_err send_err;
    json_t *recipients;
    json_t *answer;  /* what the send gave, recorded by finish */
    json_t *result;  /* what the caller gets */
};

enum as_code mail_job_new(struct app *app, const struct mail_msg *msg, struct mail_job **out,
                          struct as_err *err)
{
    *out = NULL;
    if (msg->idempotency_key && !app->db)
        return as_errf(err, AS_EINVAL, "an idempotency key needs the database");
    struct mail_job *j = calloc(1, sizeof *j);
    if (!j)
        return as_errf(err, AS_ENOMEM, "out of memory");
    j->app = app;
    j->msg = msg;
    j->transport = config_str(app->cfg, "mail_transport");
    j->now = time_now_ms();
    owner_current(j->owner, sizeof j->owner);
    /* Refuse a bad message before anything is recorded. */
    enum as_code rc = prepare(app, msg, &j->from, &j->p, err);
    if (!rc)
        rc = build(msg, j->from, j->p.message_id, j->now, &j->text, &j->len, err);
    if (rc) {
        mail_job_free(j);
        return rc;
    }
    j->to_send = 1;
    *out = j;
    return AS_OK;
}

enum as_code mail_job_claim(struct mail_job *j, struct as_err *err)
{
    const char *key = j->msg->idempotency_key;
    if (!key)
        return AS_OK;
    struct app *app = j->app;
    /* Again after the transaction that held the last claim was undone (a
     * group commit retried): start from nothing. */
    db_mail_claim_clear(&j->claim);
    json_decref(j->result);
    j->result = NULL;
    j->claimed = 0;
    j->rc = AS_OK;
    j->to_send = 1;
    enum as_code rc = db_mail_claim(app->db, key, j->p.message_id, j->transport, j->now, j->owner,
                                    j->now, j->now + lease_ms(app), MAX_CRASH_RESENDS,
                                    owner_alive, j->owner, &j->claim, err);
    if (rc)
        return rc;
    switch (j->claim.action) {
    case DB_MAIL_DONE:
        json_object_set_new(j->claim.result, "deduplicated", json_true());
        j->result = j->claim.result;
        j->claim.result = NULL;
        j->to_send = 0;
        LOG_INFO("mail", "%s already sent; not sending again", j->claim.message_id);
        return AS_OK;
    case DB_MAIL_BUSY: {
        char until[40];
        time_format_iso(j->claim.lease_until, until, sizeof until);
        return as_errf(err, AS_ETRANSIENT,
                       "message %s is being sent by another worker (lease until %s)",
                       j->claim.message_id, until);
    }
    case DB_MAIL_GIVEUP:
        return as_errf(err, AS_EPERMANENT,
                       "message %s: the sender died %d times while sending it; whether it "
                       "arrived is unknown, so it is not sent again",
                       j->claim.message_id, j->claim.resends);
    case DB_MAIL_RESEND:
        LOG_WARN("mail", "%s was being sent when a process died; sending it once more",
                 j->claim.message_id);
        /* fall through */
    case DB_MAIL_SEND:
        j->claimed = 1;
        if (j->claim.date_ms != j->now || strcmp(j->claim.message_id, j->p.message_id) != 0) {
            /* The identical message: its first Date and Message-ID. */
            free(j->text);
            j->text = NULL;
            snprintf(j->p.message_id, sizeof j->p.message_id, "%s", j->claim.message_id);
            rc = build(j->msg, j->from, j->claim.message_id, j->claim.date_ms, &j->text, &j->len,
                       err);
            if (rc) {
                j->rc = rc; /* not sent: finish records 'failed' */
                j->send_err = *err;
                j->to_send = 0;
                return rc;
            }
        }
        break;
    }
    return AS_OK;
}

enum as_code mail_job_send(struct mail_job *j, struct as_err *err)
{
    if (!j->to_send)
        return j->rc ? (*err = j->send_err, j->rc) : AS_OK;
    struct app *app = j->app;
    const struct mail_transport *extra;
    enum as_code rc;
    j->to_send = 0;
    if (strcmp(j->transport, "file") == 0)
        rc = send_file(app, &j->p, j->text, j->len, &j->recipients, err);
    else if (strcmp(j->transport, "smtp") == 0)
        rc = send_smtp(app, &j->p, j->text, &j->recipients, err);
    else if ((extra = transport_find(j->transport)))
        rc = extra->send(app, j->p.from.addr, j->msg, j->text, j->len,
                         (const char *const *)j->p.envelope, &j->recipients, err);
    else
        rc = as_errf(err, AS_EINVAL, "unknown mail_transport \"%s\"", j->transport);
    json_t *res = json_pack("{s:s, s:s, s:o, s:b}", "message_id", j->p.message_id, "transport",
                            j->transport, "recipients",
                            j->recipients ? json_incref(j->recipients) : json_array(),
                            "deduplicated", 0);
    if (!res) {
        if (!rc) {
            /* Sent, but the answer cannot be kept: leave the row 'sending'
             * (at most one re-send later) rather than call it failed. */
            j->claimed = 0;
            rc = as_errf(err, AS_ENOMEM, "out of memory after sending %s", j->p.message_id);
        }
        j->rc = rc;
        j->send_err = *err;
        return rc;
    }
    j->rc = rc;
    j->answer = res;
    if (rc) {
        j->send_err = *err;
        LOG_WARN("mail", "%s via %s failed: %s", j->p.message_id, j->transport, err->msg);
        if (j->recipients)
            j->result = json_incref(res);
        return rc;
    }
    size_t n_rej = 0, idx;
    json_t *r;
    json_array_foreach(j->recipients, idx, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "status")), "accepted") != 0)
            n_rej++;
    }
    LOG_INFO("mail", "%s sent via %s to %zu recipient(s), %zu rejected", j->p.message_id,
             j->transport, json_array_size(j->recipients) - n_rej, n_rej);
    j->result = json_incref(res);
    return AS_OK;
}

enum as_code mail_job_finish(struct mail_job *j, struct as_err *err)
{
    if (!j->claimed)
        return AS_OK;
    enum as_code rc = db_mail_finish(j->app->db, j->msg->idempotency_key, j->rc ? "failed" : "sent",
                                     j->answer, j->rc ? j->send_err.msg : NULL, time_now_ms(), err);
    if (rc)
        /* The answer is not recorded: a retry would find 'sending' and
         * re-send once, which is the documented worst case. */
        LOG_ERROR("mail", "%s: cannot record the send: %s", j->p.message_id, err->msg);
    return rc;
}

json_t *mail_job_result(struct mail_job *j)
{
    json_t *r = j->result;
    j->result = NULL;
    return r;
}

const char *mail_job_message_id(const struct mail_job *j)
{
    return j->p.message_id;
}

void mail_job_free(struct mail_job *j)
{
    if (!j)
        return;
    json_decref(j->recipients);
    json_decref(j->answer);
    json_decref(j->result);
    db_mail_claim_clear(&j->claim);
    prepared_clear(&j->p);
    free(j->text);
    free(j);
}

enum as_code mail_send(struct app *app, const struct mail_msg *msg, json_t **result,
                       struct as_err *err)
{
    struct mail_job *j = NULL;
    struct as_err local_err = {0};
    if (!err)
        err = &local_err;
    *result = NULL;
    enum as_code rc = mail_job_new(app, msg, &j, err);
    if (rc)
        return rc;
    rc = mail_job_claim(j, err);
    if (!rc || j->claimed)
        rc = rc ? rc : mail_job_send(j, err);
    if (j->claimed) {
        struct as_err ferr = {0};
        if (mail_job_finish(j, &ferr) != AS_OK) {
            /* Logged there; the send's own result stands. */
        }
    }
    *result = mail_job_result(j);
    mail_job_free(j);
    return rc;
}

enum as_code mail_config_check(const struct config *cfg, struct as_err *err)
{
    enum as_code rc;
    struct mail_addr from;
    const char *transport = config_str(cfg, "mail_transport");
    if ((rc = mail_addr_parse(config_str(cfg, "mail_from"), &from, err))) {
        as_err_prefix(err, "mail_from");
        return rc;
    }
    mail_addr_clear(&from);
    if (strcmp(transport, "file") == 0) {
        if (!*config_str(cfg, "mail_dir"))
            return as_errf(err, AS_EINVAL, "mail_dir is empty (mail_transport is file)");
        /* The messages hold approval links: the folder is created 0700
         * (mail_file.c); an existing one open to others is only named. */
        secret_dir_warn(config_str(cfg, "mail_dir"), "the mail (approval links)");
        return AS_OK;
    }
    const struct mail_transport *extra = transport_find(transport);
    if (extra) {
        if ((rc = extra->check(cfg, err)))
            as_err_prefix(err, "mail_transport %s", transport);
        return rc;
    }
    if (strcmp(transport, "smtp") != 0)
        return as_errf(err, AS_EINVAL, "mail_transport \"%s\" is not available in this program",
                       transport);
    struct mail_smtp_url url;
    if ((rc = mail_smtp_parse_url(config_str(cfg, "smtp_url"), &url, err)))
        return rc;
    const char *user = config_str(cfg, "smtp_user");
    if (*user) {
        const char *pw = config_str(cfg, "smtp_password_file");
        char *secret = NULL;
        if (!*pw)
            return as_errf(err, AS_EINVAL, "smtp_user is set but smtp_password_file is not");
        if ((rc = secret_file_read(pw, 4096, 1, &secret, NULL, err)))
            return rc;
        secret_free(secret);
        if (url.tls == MAIL_SMTP_PLAIN && strcmp(url.host, "localhost") != 0 &&
            strncmp(url.host, "127.", 4) != 0 && strcmp(url.host, "::1") != 0)
            return as_errf(err, AS_EINVAL,
                           "smtp_user with smtp:// would send the password in clear; use "
                           "smtp+starttls:// or smtps://");
    }
    const char *ca = config_str(cfg, "smtp_ca_file");
    if (*ca) {
        SSL_CTX *ctx = NULL;
        if ((rc = mail_tls_client_ctx(ca, &ctx, err)))
            return rc;
        SSL_CTX_free(ctx);
    }
    return AS_OK;
}
