/*
 * tenant_sync.c - the tenant sync (see tenant_sync.h).
 *
 * Each section streams items from the client into a small buffer; at a page
 * boundary (no request in flight) a full buffer is written in one write
 * transaction.  The sections run in dependency order: users (mailboxes are
 * matched to them), transport config, CAS mailboxes, usage, sign-ins.
 */
#include "steps/tenant_sync.h"

#include <stdlib.h>
#include <string.h>

#include "db/db_tenant.h"
#include "engine/app.h"
#include "engine/log.h"
#include "engine/timeutil.h"
#include "steps/m365.h"

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
        if (rc) {
            db_write_rollback(b->app->db);
            return rc;
        }
    }
    rc = db_write_commit(b->app->db, err);
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
        return db_write_commit(u->app->db, err);
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
        if (!rc) {
            u.c = NULL;
            rc = db_write_commit(app->db, &e);
        }
    }
    if (u.c)
        db_write_rollback(app->db);
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

enum as_code tenant_sync_run(struct app *app, struct m365 *m, const struct tenant_sync_opts *opts,
                             struct tenant_sync_result *res, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct as_err e = {0};
    int64_t t0 = time_mono_ms();
    int64_t now = time_now_ms();
    int max = opts && opts->batch_rows > 0 ? opts->batch_rows : 5000;
    int days = opts && opts->signin_days > 0 ? opts->signin_days : 30;
    struct progress prog = {.f = opts ? opts->progress : NULL, .tty = opts ? opts->tty : 0};
    struct batch b = {.app = app, .now = now, .max = max, .prog = &prog};
    json_t *transport = NULL;

    memset(res, 0, sizeof *res);
    snprintf(res->status, sizeof res->status, "failed");
    res->warnings = json_array();
    b.items = json_array();
    if (!res->warnings || !b.items) {
        json_decref(b.items);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    rc = db_tenant_sync_start(app->db, now, &res->sync_id, err);
    if (rc) {
        json_decref(b.items);
        return rc;
    }
    b.sync_id = res->sync_id;

    /* 1. Users: everything else hangs off them. */
    long long total = -1;
    if (m365_users_count(m, &total, &e) != AS_OK)
        total = -1; /* only for the progress bar */
    progress_start(&prog, "users", (long)total);
    b.put = put_user;
    memset(&e, 0, sizeof e);
    rc = m365_users_list(m, NULL, batch_item, &b, &e);
    if (!rc)
        rc = batch_flush(&b, &e);
    progress_draw(&prog, 1);
    if (rc) {
        as_errf(err, rc, "users: %s", e.msg);
        goto finish;
    }
    res->users = b.stored;
    if (b.skipped)
        LOG_WARN("sync", "%ld users without id or userPrincipalName skipped", b.skipped);
    {
        struct db_conn *c;
        rc = db_write_begin(app->db, &c, err);
        if (!rc) {
            rc = db_tenant_users_prune(c, res->sync_id, &res->users_removed, err);
            if (rc)
                db_write_rollback(app->db);
            else
                rc = db_write_commit(app->db, err);
        }
        if (rc)
            goto finish;
    }

    /* 2. Transport config: the org-wide SMTP AUTH switch. */
    memset(&e, 0, sizeof e);
    enum as_code trc = m365_transport_get(m, &transport, &e);
    if (trc == AS_OK) {
        struct db_conn *c;
        rc = db_write_begin(app->db, &c, err);
        if (!rc) {
            rc = db_tenant_org_put_transport(c, now, transport, err);
            if (rc)
                db_write_rollback(app->db);
            else
                rc = db_write_commit(app->db, err);
        }
        if (rc)
            goto finish;
        res->transport_synced = 1;
    } else {
        warn(res, "transport config not synced (the organisation's SMTP AUTH setting keeps its "
                  "previous value)", e.msg);
    }

    /* 3. CAS mailboxes. */
    progress_start(&prog, "mailboxes", -1); /* not every user has a mailbox: no total */
    b.put = put_cas;
    b.stored = b.skipped = 0;
    json_array_clear(b.items);
    memset(&e, 0, sizeof e);
    enum as_code crc = m365_cas_list(m, batch_item, &b, &e);
    if (!crc)
        crc = batch_flush(&b, &e);
    progress_draw(&prog, 1);
    if (crc == AS_EDB || crc == AS_ENOMEM) {
        rc = as_errf(err, crc, "mailboxes: %s", e.msg);
        goto finish;
    }
    if (crc) {
        json_array_clear(b.items);
        warn(res, "CAS mailboxes not synced (protocol columns keep their previous values)",
             e.msg);
    } else {
        res->mailboxes = b.stored;
        res->mailboxes_unmatched = b.skipped;
        struct db_conn *c;
        rc = db_write_begin(app->db, &c, err);
        if (!rc) {
            rc = db_tenant_cas_prune(c, res->sync_id, err);
            if (rc)
                db_write_rollback(app->db);
            else
                rc = db_write_commit(app->db, err);
        }
        if (rc)
            goto finish;
    }

    /* 4. Email-app usage, last 30 days. */
    rc = sync_usage(app, m, res, &prog, max, now);
    if (rc) {
        as_errf(err, rc, "usage: storing failed");
        goto finish;
    }

    /* 5. Legacy sign-ins. */
    progress_start(&prog, "sign-ins", -1);
    b.put = put_signin;
    b.stored = b.skipped = 0;
    json_array_clear(b.items);
    memset(&e, 0, sizeof e);
    enum as_code src = m365_signins_legacy(m, now - days * DAY_MS, NULL, batch_item, &b, &e);
    if (!src)
        src = batch_flush(&b, &e);
    progress_draw(&prog, 1);
    if (src == AS_EDB || src == AS_ENOMEM) {
        rc = as_errf(err, src, "sign-ins: %s", e.msg);
        goto finish;
    }
    if (src) {
        json_array_clear(b.items);
        warn(res, "legacy sign-ins not synced", e.msg);
    } else {
        res->signins = b.stored;
        struct db_conn *c;
        rc = db_write_begin(app->db, &c, err);
        if (!rc) {
            rc = db_tenant_signins_done(c, now - days * DAY_MS, now, err);
            if (rc)
                db_write_rollback(app->db);
            else
                rc = db_write_commit(app->db, err);
        }
        if (rc)
            goto finish;
    }
    snprintf(res->status, sizeof res->status, "%s",
             json_array_size(res->warnings) ? "partial" : "ok");

finish:
    res->duration_ms = time_mono_ms() - t0;
    {
        struct m365_stats st;
        m365_get_stats(m, &st);
        res->requests = st.requests;
        json_t *summary = tenant_sync_result_json(res);
        struct as_err e3 = {0};
        if (db_tenant_sync_finish(app->db, res->sync_id, time_now_ms(), res->status, summary,
                                  rc ? (err ? err->msg : "failed") : NULL, &e3) != AS_OK)
            LOG_ERROR("sync", "cannot record the end of sync %lld: %s",
                      (long long)res->sync_id, e3.msg);
        json_decref(summary);
    }
    json_decref(transport);
    json_decref(b.items);
    return rc;
}

json_t *tenant_sync_result_json(const struct tenant_sync_result *res)
{
    return json_pack("{s:I, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:o, s:I, s:i}", "sync_id",
                     (json_int_t)res->sync_id, "status", res->status, "users", (int)res->users,
                     "users_removed", (int)res->users_removed, "mailboxes", (int)res->mailboxes,
                     "mailboxes_unmatched", (int)res->mailboxes_unmatched, "usage_rows",
                     (int)res->usage_rows, "signins", (int)res->signins, "transport",
                     res->transport_synced, "warnings",
                     res->warnings ? json_incref(res->warnings) : json_array(), "duration_ms",
                     (json_int_t)res->duration_ms, "requests", (int)res->requests);
}

void tenant_sync_result_free(struct tenant_sync_result *res)
{
    json_decref(res->warnings);
    res->warnings = NULL;
}
