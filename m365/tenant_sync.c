/*
 * tenant_sync.c - the tenant sync (see tenant_sync.h).
 *
 * Each section streams items from the client into a small buffer; at a page
 * boundary (no request in flight) a full buffer is written in one write
 * transaction.  The sections run in dependency order: users (mailboxes are
 * matched to them), transport config, CAS mailboxes, usage, sign-ins,
 * Conditional Access, mailbox plans and the organisation config.
 */
#include "m365/tenant_sync.h"

#include <stdlib.h>
#include <string.h>

#include "db/db_events.h"
#include "db/db_evidence.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "m365/m365.h"

#define DAY_MS (86400000LL)

struct progress {
    FILE *f;
    int tty;
    const char *phase;
    long done, total;
    long next_line;     /* plain mode: print at this count */
    int64_t last_draw;  /* tty mode: last redraw (mono ms) */
    int64_t started;
};

static void progress_start(struct progress *p, const char *phase, long total)
{
    p->phase = phase;
    p->done = 0;
    p->total = total;
    p->next_line = 10000;
    p->last_draw = 0;
    p->started = time_mono_ms();
}

static void progress_draw(struct progress *p, int final)
{
    if (!p->f)
        return;
    if (p->tty) {
        int64_t now = time_mono_ms();
        if (!final && now - p->last_draw < 100)
            return;
        p->last_draw = now;
        if (p->total > 0) {
            long done = p->done > p->total ? p->total : p->done;
            int width = 30, fill = (int)(done * width / p->total);
            char bar[32];
            for (int i = 0; i < width; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[width] = '\0';
            fprintf(p->f, "\r  %-10s [%s] %3ld%% %ld/%ld", p->phase, bar, done * 100 / p->total,
                    p->done, p->total);
        } else {
            fprintf(p->f, "\r  %-10s %ld", p->phase, p->done);
        }
        if (final)
            fprintf(p->f, "  (%.1f s)\n", (double)(time_mono_ms() - p->started) / 1000.0);
        fflush(p->f);
    } else if (final) {
        fprintf(p->f, "sync: %s: %ld done (%.1f s)\n", p->phase, p->done,
                (double)(time_mono_ms() - p->started) / 1000.0);
        fflush(p->f);
    } else if (p->done >= p->next_line) {
        if (p->total > 0)
            fprintf(p->f, "sync: %s: %ld/%ld\n", p->phase, p->done, p->total);
        else
            fprintf(p->f, "sync: %s: %ld\n", p->phase, p->done);
        fflush(p->f);
        p->next_line = p->done + 10000;
    }
}

/* Items collected between writes. */
struct batch {
    struct app *app;
    int64_t sync_id, now;
    json_t *items; /* array */
    int max;
    struct progress *prog;
    long stored, skipped;
    enum as_code (*put)(struct batch *b, struct db_conn *c, const json_t *item, struct as_err *err);
};

static enum as_code batch_flush(struct batch *b, struct as_err *err)
{
    if (json_array_size(b->items) == 0)
        return AS_OK;
    struct db_conn *c;
    enum as_code rc = db_write_begin(b->app->db, &c, err);
    if (rc)
        return rc;
    size_t i;
    json_t *item;
    json_array_foreach(b->items, i, item)
    {
        rc = b->put(b, c, item, err);
        if (rc)
            break;
    }
    rc = db_write_end(b->app->db, rc, err);
    if (!rc)
        json_array_clear(b->items);
    return rc;
}

/* Listing callback: collect; at a page boundary write a full buffer. */
static enum as_code batch_item(const json_t *item, void *ud, struct as_err *err)
{
    struct batch *b = ud;
    if (!item) {
        if ((int)json_array_size(b->items) >= b->max)
            return batch_flush(b, err);
        return AS_OK;
    }
    if (json_array_append(b->items, (json_t *)item) != 0)
        return as_errf(err, AS_ENOMEM, "out of memory");
    b->prog->done++;
    progress_draw(b->prog, 0);
    return AS_OK;
}

/* Count one stored row: a row the service sent that Assent cannot use
 * (AS_EINVAL from the db layer) is skipped, not fatal; any other failure is. */
static enum as_code count_put(struct batch *b, enum as_code rc, const struct as_err *e2,
                              struct as_err *err)
{
    if (rc == AS_EINVAL) {
        b->skipped++;
        return AS_OK;
    }
    if (rc) {
        if (err)
            *err = *e2;
        return rc;
    }
    b->stored++;
    return AS_OK;
}

static enum as_code put_user(struct batch *b, struct db_conn *c, const json_t *item,
                             struct as_err *err)
{
    struct as_err e2 = {0};
    return count_put(b, db_tenant_user_put(c, b->sync_id, b->now, item, &e2), &e2, err);
}

static enum as_code put_cas(struct batch *b, struct db_conn *c, const json_t *item,
                            struct as_err *err)
{
    int matched = 0;
    enum as_code rc = db_tenant_cas_put(c, b->sync_id, b->now, item, &matched, err);
    if (rc)
        return rc;
    if (matched)
        b->stored++;
    else
        b->skipped++;
    return AS_OK;
}

static enum as_code put_signin(struct batch *b, struct db_conn *c, const json_t *item,
                               struct as_err *err)
{
    struct as_err e2 = {0};
    return count_put(b, db_tenant_signin_put(c, b->sync_id, item, &e2), &e2, err);
}

static void warn(struct tenant_sync_result *res, const char *what, const char *detail)
{
    char msg[1400];
    snprintf(msg, sizeof msg, "%s: %s", what, detail);
    json_array_append_new(res->warnings, json_string(msg));
    LOG_WARN("sync", "%s", msg);
}

/* Usage rows come from a local file: written straight, committed every max rows. */
struct usage_ctx {
    struct app *app;
    struct db_conn *c;
    int64_t sync_id, now;
    int n, max;
    struct progress *prog;
    long stored;
};

static enum as_code usage_row(const struct m365_usage_row *row, void *ud, struct as_err *err)
{
    struct usage_ctx *u = ud;
    enum as_code rc;
    if (row->is_deleted)
        return AS_OK;
    if (!u->c) {
        rc = db_write_begin(u->app->db, &u->c, err);
        if (rc)
            return rc;
    }
    rc = db_tenant_usage_put(u->c, u->sync_id, u->now, row->upn, row->pop3, row->imap4, row->smtp,
                             row->last_activity, row->refresh_date, err);
    if (rc)
        return rc;
    u->stored++;
    u->prog->done++;
    progress_draw(u->prog, 0);
    if (++u->n >= u->max) {
        u->n = 0;
        u->c = NULL;
        return db_write_end(u->app->db, AS_OK, err);
    }
    return AS_OK;
}

static enum as_code sync_usage(struct app *app, struct m365 *m, struct tenant_sync_result *res,
                               struct progress *prog, int max, int64_t now)
{
    struct as_err e = {0};
    int concealed = 0;
    enum as_code rc = m365_report_settings(m, &concealed, &e);
    if (rc == AS_OK && concealed) {
        warn(res, "usage report skipped", m365_concealed_help);
        return AS_OK;
    }
    if (rc)
        LOG_INFO("sync", "cannot read report settings (%s); checking the report's names instead",
                 e.msg);
    progress_start(prog, "usage", -1);
    struct usage_ctx u = {.app = app, .sync_id = res->sync_id, .now = now, .max = max,
                          .prog = prog};
    memset(&e, 0, sizeof e);
    rc = m365_usage_report(m, "D30", usage_row, &u, &concealed, &e);
    if (!rc) {
        if (!u.c)
            rc = db_write_begin(app->db, &u.c, &e);
        if (!rc)
            rc = db_tenant_usage_done(u.c, res->sync_id, now, &e);
    }
    /* A transaction still open (a batch under way, or the final one) is
     * committed when the report and its last write went well, else rolled
     * back. */
    if (u.c) {
        u.c = NULL;
        rc = db_write_end(app->db, rc, &e);
    }
    progress_draw(prog, 1);
    if (rc) {
        if (rc == AS_EDB || rc == AS_ENOMEM)
            return rc;
        warn(res, "usage report not synced (pop3_30d/imap4_30d/smtp_30d keep their previous "
                  "values)", e.msg);
        return AS_OK;
    }
    res->usage_rows = u.stored;
    return AS_OK;
}

/* One write in a transaction of its own: op(conn, ud, err), then commit. */
typedef enum as_code (*write_op)(struct db_conn *c, void *ud, struct as_err *err);

static enum as_code write_once(struct app *app, write_op op, void *ud, struct as_err *err)
{
    struct db_conn *c;
    enum as_code rc = db_write_begin(app->db, &c, err);
    if (rc)
        return rc;
    return db_write_end(app->db, op(c, ud, err), err);
}

/* The state of one sync, shared by its phases. */
struct sync_run {
    struct app *app;
    struct m365 *m;
    struct tenant_sync_result *res;
    struct batch b;
    struct progress prog;
    int64_t now, signins_since;
    json_t *transport;
};

/* A listing phase: the list call streams items into the batch. */
typedef enum as_code (*list_fn)(struct sync_run *s, struct as_err *e);

/*
 * Stream one listing into the database through `put`, in batches.  Returns
 * the listing's code (its message in e); AS_OK when every item was stored.
 */
static enum as_code list_phase(struct sync_run *s, const char *label, long total,
                               enum as_code (*put)(struct batch *, struct db_conn *,
                                                   const json_t *, struct as_err *),
                               list_fn list, struct as_err *e)
{
    progress_start(&s->prog, label, total);
    s->b.put = put;
    s->b.stored = s->b.skipped = 0;
    json_array_clear(s->b.items);
    memset(e, 0, sizeof *e);
    enum as_code rc = list(s, e);
    if (!rc)
        rc = batch_flush(&s->b, e);
    progress_draw(&s->prog, 1);
    if (rc)
        json_array_clear(s->b.items);
    return rc;
}

static enum as_code list_users(struct sync_run *s, struct as_err *e)
{
    return m365_users_list(s->m, NULL, batch_item, &s->b, e);
}

static enum as_code list_cas(struct sync_run *s, struct as_err *e)
{
    return m365_cas_list(s->m, batch_item, &s->b, e);
}

static enum as_code list_signins(struct sync_run *s, struct as_err *e)
{
    return m365_signins_legacy(s->m, s->signins_since, NULL, batch_item, &s->b, e);
}

static enum as_code prune_users(struct db_conn *c, void *ud, struct as_err *err)
{
    struct sync_run *s = ud;
    return db_tenant_users_prune(c, s->res->sync_id, &s->res->users_removed, err);
}

static enum as_code store_transport(struct db_conn *c, void *ud, struct as_err *err)
{
    struct sync_run *s = ud;
    return db_tenant_org_put_transport(c, s->now, s->transport, err);
}

/*
 * After a complete mailbox listing (never after a failed or partial one:
 * unknown is not drift), in the same transaction: prune, then compare with
 * what Assent turned off and audit each protocol that drifted or came back.
 */
static enum as_code prune_cas(struct db_conn *c, void *ud, struct as_err *err)
{
    struct sync_run *s = ud;
    json_t *changes = NULL, *ch;
    size_t i;
    enum as_code rc = db_tenant_cas_prune(c, s->res->sync_id, err);
    if (!rc)
        rc = db_drift_scan(c, s->now, &changes, err);
    json_array_foreach(changes, i, ch)
    {
        if (rc)
            break;
        int drift = json_is_true(json_object_get(ch, "drift"));
        json_t *data = json_pack("{s:O, s:O, s:I}", "upn", json_object_get(ch, "upn"), "protocol",
                                 json_object_get(ch, "protocol"), "sync_id",
                                 (json_int_t)s->res->sync_id);
        rc = data ? db_event_append(c, 0, 0, drift ? "m365.drift" : "m365.drift_resolved", data,
                                    err)
                  : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(data);
        if (!rc && drift) {
            s->res->drift++;
            LOG_WARN("sync", "drift: %s is on again for %s (Assent turned it off; no exception)",
                     json_string_value(json_object_get(ch, "protocol")),
                     json_string_value(json_object_get(ch, "upn")));
        }
    }
    json_decref(changes);
    return rc;
}

static enum as_code signins_done(struct db_conn *c, void *ud, struct as_err *err)
{
    struct sync_run *s = ud;
    return db_tenant_signins_done(c, s->signins_since, s->now, err);
}

/* 1. Users: everything else hangs off them.  Any failure fails the sync. */
static enum as_code sync_users(struct sync_run *s, struct as_err *err)
{
    struct as_err e = {0};
    long long total = -1;
    if (m365_users_count(s->m, &total, &e) != AS_OK)
        total = -1; /* only for the progress bar */
    enum as_code rc = list_phase(s, "users", (long)total, put_user, list_users, &e);
    if (rc)
        return as_errf(err, rc, "users: %s", e.msg);
    s->res->users = s->b.stored;
    if (s->b.skipped)
        LOG_WARN("sync", "%ld users without id or userPrincipalName skipped", s->b.skipped);
    return write_once(s->app, prune_users, s, err);
}

/* 2. Transport config: the org-wide SMTP AUTH switch.  A failed read is a warning. */
static enum as_code sync_transport(struct sync_run *s, struct as_err *err)
{
    struct as_err e = {0};
    if (m365_transport_get(s->m, &s->transport, &e) != AS_OK) {
        warn(s->res, "transport config not synced (the organisation's SMTP AUTH setting keeps "
                     "its previous value)", e.msg);
        return AS_OK;
    }
    enum as_code rc = write_once(s->app, store_transport, s, err);
    if (!rc)
        s->res->transport_synced = 1;
    return rc;
}

/*
 * 3. CAS mailboxes and 5. legacy sign-ins: a failed listing is a warning
 * (the section keeps its previous values), a failed store fails the sync;
 * after a complete listing `done` closes the section.
 */
static enum as_code sync_section(struct sync_run *s, const char *label,
                                 enum as_code (*put)(struct batch *, struct db_conn *,
                                                     const json_t *, struct as_err *),
                                 list_fn list, write_op done, const char *warning,
                                 struct as_err *err)
{
    struct as_err e = {0};
    enum as_code rc = list_phase(s, label, -1, put, list, &e);
    if (rc == AS_EDB || rc == AS_ENOMEM)
        return as_errf(err, rc, "%s: %s", label, e.msg);
    if (rc) {
        warn(s->res, warning, e.msg);
        return AS_OK;
    }
    return write_once(s->app, done, s, err);
}

enum as_code tenant_sync_run(struct app *app, struct m365 *m, const struct tenant_sync_opts *opts,
                             struct tenant_sync_result *res, struct as_err *err)
{
    int64_t t0 = time_mono_ms();
    int max = opts && opts->batch_rows > 0 ? opts->batch_rows : 5000;
    int days = opts && opts->signin_days > 0 ? opts->signin_days : 30;
    struct sync_run s = {.app = app, .m = m, .res = res, .now = time_now_ms()};
    s.signins_since = s.now - days * DAY_MS;
    s.prog = (struct progress){.f = opts ? opts->progress : NULL, .tty = opts ? opts->tty : 0};
    s.b = (struct batch){.app = app, .now = s.now, .max = max, .prog = &s.prog};

    memset(res, 0, sizeof *res);
    snprintf(res->status, sizeof res->status, "failed");
    res->warnings = json_array();
    s.b.items = json_array();
    if (!res->warnings || !s.b.items) {
        json_decref(s.b.items);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    enum as_code rc = db_tenant_sync_start(app->db, s.now, &res->sync_id, err);
    if (rc) {
        json_decref(s.b.items);
        return rc;
    }
    s.b.sync_id = res->sync_id;

    rc = sync_users(&s, err);
    if (!rc)
        rc = sync_transport(&s, err);
    if (!rc) {
        rc = sync_section(&s, "mailboxes", put_cas, list_cas, prune_cas,
                          "CAS mailboxes not synced (protocol columns keep their previous values)",
                          err);
        res->mailboxes = s.b.stored;
        res->mailboxes_unmatched = s.b.skipped;
    }
    /* 4. Email-app usage, last 30 days. */
    if (!rc && (rc = sync_usage(app, m, res, &s.prog, max, s.now)) != AS_OK)
        as_errf(err, rc, "usage: storing failed");
    if (!rc) {
        rc = sync_section(&s, "sign-ins", put_signin, list_signins, signins_done,
                          "legacy sign-ins not synced", err);
        res->signins = s.b.stored;
    }
    /* 6. Conditional Access policies that concern legacy authentication. */
    if (!rc) {
        struct as_err le = {0};
        rc = tenant_sync_ca(app, m, res->sync_id, s.now, &res->ca_policies, &le, err);
        if (rc == AS_EUNSUPPORTED) {
            warn(res, "Conditional Access policies not synced (`assent report policies` keeps "
                      "the previous ones)", le.msg);
            res->ca_policies = -1;
            rc = AS_OK;
        }
    }
    /* 7. CAS mailbox plans and the organisation config (EWS). */
    if (!rc)
        rc = tenant_sync_org(app, m, res->sync_id, s.now, &res->mailbox_plans,
                             &res->org_config_synced, res->warnings, err);
    if (!rc)
        snprintf(res->status, sizeof res->status, "%s",
                 json_array_size(res->warnings) ? "partial" : "ok");

    res->duration_ms = time_mono_ms() - t0;
    struct m365_stats st;
    m365_get_stats(m, &st);
    res->requests = st.requests;
    json_t *summary = tenant_sync_result_json(res);
    struct as_err e3 = {0};
    if (db_tenant_sync_finish(app->db, res->sync_id, time_now_ms(), res->status, summary,
                              rc ? (err ? err->msg : "failed") : NULL, &e3) != AS_OK)
        LOG_ERROR("sync", "cannot record the end of sync %lld: %s", (long long)res->sync_id,
                  e3.msg);
    json_decref(summary);
    json_decref(s.transport);
    json_decref(s.b.items);
    return rc;
}

json_t *tenant_sync_result_json(const struct tenant_sync_result *res)
{
    return json_pack("{s:I, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:o, s:I, s:i, s:I, s:I, "
                     "s:b}",
                     "sync_id",
                     (json_int_t)res->sync_id, "status", res->status, "users", (int)res->users,
                     "users_removed", (int)res->users_removed, "mailboxes", (int)res->mailboxes,
                     "mailboxes_unmatched", (int)res->mailboxes_unmatched, "usage_rows",
                     (int)res->usage_rows, "signins", (int)res->signins, "drift", (int)res->drift, "transport",
                     res->transport_synced, "warnings",
                     res->warnings ? json_incref(res->warnings) : json_array(), "duration_ms",
                     (json_int_t)res->duration_ms, "requests", (int)res->requests,
                     "ca_policies", (json_int_t)res->ca_policies, "mailbox_plans",
                     (json_int_t)res->mailbox_plans, "org_config", res->org_config_synced);
}

void tenant_sync_result_free(struct tenant_sync_result *res)
{
    json_decref(res->warnings);
    res->warnings = NULL;
}
