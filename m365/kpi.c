/*
 * kpi.c - KPI definitions, exemptions and evaluation (see kpi.h).
 *
 * Evaluation streams: each report row is read, judged and handed on, so a
 * KPI over 100,000 users holds one row at a time.  Exemptions are loaded
 * once per evaluation into a hash keyed by lower-cased user name.
 */
#include "m365/kpi.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "db/db_events.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "base/cron.h"
#include "base/expr.h"
#include "base/timeutil.h"
#include "base/tz.h"

/* Distinct group_by values kept per evaluation; the rest count as "(other)". */
#define KPI_MAX_GROUPS 1000

/* ---- protocols ---- */

static const struct {
    const char *name;
    unsigned bit;
} protos[] = {
    {"pop", KPI_P_POP}, {"imap", KPI_P_IMAP}, {"smtp", KPI_P_SMTP},
    {"activesync", KPI_P_ACTIVESYNC}, {"ews", KPI_P_EWS},
};
#define N_PROTOS (sizeof protos / sizeof protos[0])

/* Per protocol: its users-report columns, its Set-CASMailbox property and
 * how people call it.  In the order of protos[]. */
static const struct proto_field {
    unsigned bit;
    const char *name, *field, *used, *cas, *cas_current;
    int on_value; /* the field's (and the CAS property's) value when the protocol is on */
    const char *display;
} proto_fields[] = {
    {KPI_P_POP, "pop", "pop_enabled", "pop3_30d", "PopEnabled", "pop_enabled", 1, "POP"},
    {KPI_P_IMAP, "imap", "imap_enabled", "imap4_30d", "ImapEnabled", "imap_enabled", 1, "IMAP"},
    {KPI_P_SMTP, "smtp", "smtp_client_auth_disabled", "smtp_30d",
     "SmtpClientAuthenticationDisabled", "smtp_client_auth_disabled_mailbox", 0, "SMTP AUTH"},
    {KPI_P_ACTIVESYNC, "activesync", "activesync_enabled", NULL, "ActiveSyncEnabled",
     "activesync_enabled", 1, "Exchange ActiveSync"},
    {KPI_P_EWS, "ews", "ews_enabled", NULL, "EwsEnabled", "ews_enabled", 1,
     "Exchange Web Services"},
};

unsigned kpi_cas_protocol(const char *property)
{
    for (size_t i = 0; i < N_PROTOS; i++)
        if (strcmp(proto_fields[i].cas, property) == 0)
            return proto_fields[i].bit;
    return 0;
}

int kpi_cas_turns_off(const char *property, const json_t *value)
{
    for (size_t i = 0; i < N_PROTOS; i++)
        if (strcmp(proto_fields[i].cas, property) == 0)
            return json_is_boolean(value) && json_is_true(value) != proto_fields[i].on_value;
    return 0;
}

const char *kpi_protocol_name(unsigned bit)
{
    for (size_t i = 0; i < N_PROTOS; i++)
        if (protos[i].bit == bit)
            return protos[i].name;
    return NULL;
}

const char *kpi_protocol_cas(unsigned bit, const char **display)
{
    for (size_t i = 0; i < N_PROTOS; i++) {
        if (proto_fields[i].bit == bit) {
            if (display)
                *display = proto_fields[i].display;
            return proto_fields[i].cas;
        }
    }
    return NULL;
}

int kpi_protocol_on(unsigned bit, const json_t *mailbox, const json_t *org)
{
    for (size_t i = 0; i < N_PROTOS; i++) {
        if (proto_fields[i].bit != bit)
            continue;
        const json_t *v = json_object_get(mailbox, proto_fields[i].cas);
        /* SMTP AUTH: null on the mailbox follows the organisation. */
        if (bit == KPI_P_SMTP && (!v || json_is_null(v)))
            v = json_object_get(org, proto_fields[i].cas);
        if (!json_is_boolean(v))
            return -1;
        return json_is_true(v) == proto_fields[i].on_value;
    }
    return -1;
}

enum as_code kpi_exemption_now(struct app *app, const char *upn, int64_t now, unsigned *mask,
                               json_t **reasons, struct as_err *err)
{
    json_t *list = NULL;
    *mask = 0;
    if (reasons)
        *reasons = NULL;
    enum as_code rc = db_exception_list(app->db, DB_EXC_ACTIVE, upn, now, &list, err);
    if (rc)
        return rc;
    json_t *why = reasons ? json_array() : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        unsigned m = 0;
        struct as_err perr = {0};
        /* A stored list we cannot read exempts from nothing (as kpi_exemptions_load). */
        if (kpi_protocols_parse(json_object_get(e, "protocols"), &m, &perr) != AS_OK)
            continue;
        *mask |= m;
        if (why)
            json_array_append_new(why, json_pack("{s:O, s:O, s:O, s:O, s:O}", "id",
                                                 json_object_get(e, "id"), "protocols",
                                                 json_object_get(e, "protocols"), "reason",
                                                 json_object_get(e, "reason"), "granted_by",
                                                 json_object_get(e, "granted_by"), "expires_at",
                                                 json_object_get(e, "expires_at")));
    }
    json_decref(list);
    if (reasons)
        *reasons = why;
    return AS_OK;
}

static enum as_code proto_one(const char *s, size_t len, unsigned *mask, struct as_err *err)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 3 && strncasecmp(s, "all", 3) == 0) {
        *mask |= KPI_P_ALL;
        return AS_OK;
    }
    for (size_t i = 0; i < N_PROTOS; i++) {
        if (strlen(protos[i].name) == len && strncasecmp(s, protos[i].name, len) == 0) {
            *mask |= protos[i].bit;
            return AS_OK;
        }
    }
    return as_errf(err, AS_EINVAL,
                   "unknown protocol \"%.*s\" (known: pop, imap, smtp, activesync, ews, all)",
                   (int)(len > 64 ? 64 : len), s);
}

enum as_code kpi_protocols_parse(const json_t *v, unsigned *mask, struct as_err *err)
{
    *mask = 0;
    enum as_code rc;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            size_t n = strcspn(s, ",");
            rc = proto_one(s, n, mask, err);
            if (rc)
                return rc;
            s += n + (s[n] == ',');
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item))
                return as_errf(err, AS_EINVAL, "protocols must be a list of names");
            rc = proto_one(json_string_value(item), json_string_length(item), mask, err);
            if (rc)
                return rc;
        }
    } else {
        return as_errf(err, AS_EINVAL, "protocols must be a list of names or \"all\"");
    }
    if (!*mask)
        return as_errf(err, AS_EINVAL, "no protocols given (known: pop, imap, smtp, activesync, ews, all)");
    return AS_OK;
}

json_t *kpi_protocols_json(unsigned mask)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    if ((mask & KPI_P_ALL) == KPI_P_ALL) {
        json_array_append_new(a, json_string("all"));
        return a;
    }
    for (size_t i = 0; i < N_PROTOS; i++)
        if (mask & protos[i].bit)
            json_array_append_new(a, json_string(protos[i].name));
    return a;
}

/* ---- definitions ---- */

static const char *const def_keys[] = {"name",     "description", "report",  "filter",
                                       "protocols", "group_by",   "schedule", "trigger",
                                       "close_superseded", "deadline", NULL};
static const char *const deadline_keys[] = {"date", "target", "at", NULL}; /* "at": computed */
static const char *const trigger_keys[] = {"workflow", "input", "max_open", "close_superseded",
                                           NULL};
static const char *const schedule_keys[] = {"cron", "timezone", "sync", NULL};

static int key_known(const char *const *keys, const char *k)
{
    for (size_t i = 0; keys[i]; i++)
        if (strcmp(keys[i], k) == 0)
            return 1;
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return isalnum((unsigned char)s[0]);
}

#define DEF_ERR(...)                                                                             \
    do {                                                                                         \
        rc = as_errf(err, AS_EINVAL, __VA_ARGS__);                                               \
        goto fail;                                                                               \
    } while (0)

/*
 * When a deadline's date falls due (ms): a bare date "YYYY-MM-DD" at the end
 * of that day (00:00 UTC of the next), a date-time as given.  -1 when it is
 * neither (also 2026-02-30: no such day).
 */
static int deadline_due(const char *date, int64_t *at)
{
    if (!date || time_parse_iso(date, at) != AS_OK)
        return -1;
    if (strlen(date) != 10)
        return 0;
    char back[40];
    time_format_iso(*at, back, sizeof back);
    if (strncmp(back, date, 10) != 0)
        return -1; /* normalised into the next month: not a date */
    *at += 86400000LL;
    return 0;
}

json_t *kpi_deadline_json(const json_t *def, int64_t value, int64_t now)
{
    const json_t *dl = json_object_get(def, "deadline");
    const char *date = json_string_value(json_object_get(dl, "date"));
    int64_t at, target = json_integer_value(json_object_get(dl, "target"));
    if (!date || deadline_due(date, &at) != 0)
        return NULL;
    int64_t left_ms = at - now, remaining = value > target ? value - target : 0;
    int64_t days_left = left_ms > 0 ? (left_ms + 86400000LL - 1) / 86400000LL : 0;
    /* What must go per week to reach the target in time: all of it when
     * less than a week is left (or the deadline has passed). */
    int64_t per_week = remaining;
    if (left_ms >= 7 * 86400000LL && remaining > 0) {
        double weeks = (double)left_ms / (7.0 * 86400000.0);
        per_week = (int64_t)((double)remaining / weeks + 0.999999);
    }
    return json_pack("{s:s, s:I, s:I, s:I, s:b, s:I, s:I}", "date", date, "due_at",
                     (json_int_t)at, "target", (json_int_t)target, "days_left",
                     (json_int_t)days_left, "passed", left_ms <= 0, "remaining",
                     (json_int_t)remaining, "needed_per_week", (json_int_t)per_week);
}

enum as_code kpi_def_normalize(const json_t *in, json_t **out, struct as_err *err)
{
    enum as_code rc = AS_OK;
    struct expr *filter = NULL;
    json_t *def = NULL;
    *out = NULL;
    if (!json_is_object(in))
        return as_errf(err, AS_EINVAL, "a KPI definition must be a JSON object");
    const json_t *jname = json_object_get(in, "name");
    const char *name = json_string_value(jname);
    if (!name || !name_ok(name))
        return as_errf(err, AS_EINVAL,
                       "kpi: name is required: 1-64 letters, digits, '-', '_' or '.', starting "
                       "with a letter or digit");
    def = json_deep_copy(in);
    if (!def)
        return as_errf(err, AS_ENOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(def, key, val)
    {
        if (!key_known(def_keys, key))
            DEF_ERR("kpi \"%s\": unknown key \"%s\" (known: name, description, report, filter, "
                    "protocols, group_by, schedule, trigger, close_superseded, deadline)", name, key);
    }
    /* "deadline": the date by which the value should be down to "target"
     * (default 0); a bare date string is {"date": ...}.  Shown on the
     * console's charts. */
    json_t *dl = json_object_get(def, "deadline");
    if (dl && json_is_null(dl)) {
        json_object_del(def, "deadline");
    } else if (dl) {
        if (json_is_string(dl)) {
            json_object_set_new(def, "deadline", json_pack("{s:s}", "date", json_string_value(dl)));
            dl = json_object_get(def, "deadline");
        }
        if (!json_is_object(dl))
            DEF_ERR("kpi \"%s\": deadline must be {\"date\": \"2026-09-30\", \"target\": 0}", name);
        json_object_foreach(dl, key, val)
        {
            if (!key_known(deadline_keys, key))
                DEF_ERR("kpi \"%s\": deadline: unknown key \"%s\" (known: date, target)", name, key);
        }
        const char *date = json_string_value(json_object_get(dl, "date"));
        int64_t at = 0;
        if (deadline_due(date, &at) != 0)
            DEF_ERR("kpi \"%s\": deadline.date must be a date or time (2026-09-30, "
                    "2026-09-30T17:00:00Z)", name);
        json_t *target = json_object_get(dl, "target");
        if (target && (!json_is_integer(target) || json_integer_value(target) < 0))
            DEF_ERR("kpi \"%s\": deadline.target must be a whole number >= 0", name);
        if (!target)
            json_object_set_new(dl, "target", json_integer(0));
        json_object_set_new(dl, "at", json_integer(at));
    }
    json_t *close = json_object_get(def, "close_superseded");
    if (close && !json_is_boolean(close))
        DEF_ERR("kpi \"%s\": close_superseded must be true or false", name);
    json_t *desc = json_object_get(def, "description");
    if (!desc)
        json_object_set_new(def, "description", json_string(""));
    else if (!json_is_string(desc))
        DEF_ERR("kpi \"%s\": description must be a string", name);
    const char *report = json_string_value(json_object_get(def, "report"));
    if (!report)
        json_object_set_new(def, "report", json_string(report = "users"));
    else if (strcmp(report, "users") && strcmp(report, "signins"))
        DEF_ERR("kpi \"%s\": report must be \"users\" or \"signins\", got \"%s\"", name, report);
    const char *ftext = json_string_value(json_object_get(def, "filter"));
    if (!ftext || !*ftext)
        DEF_ERR("kpi \"%s\": filter is required (an expression over the report's columns, "
                "e.g. \"pop_enabled || imap_enabled\")", name);
    rc = expr_compile(ftext, &filter, err);
    if (rc) {
        as_err_prefix(err, "kpi \"%s\": filter", name);
        goto fail;
    }
    json_t *protocols = json_object_get(def, "protocols");
    unsigned mask = KPI_P_POP | KPI_P_IMAP | KPI_P_SMTP;
    if (protocols) {
        rc = kpi_protocols_parse(protocols, &mask, err);
        if (rc) {
            as_err_prefix(err, "kpi \"%s\": protocols", name);
            goto fail;
        }
    }
    json_object_set_new(def, "protocols", kpi_protocols_json(mask));
    json_t *group = json_object_get(def, "group_by");
    if (group && !json_is_null(group) && (!json_is_string(group) || !json_string_length(group)))
        DEF_ERR("kpi \"%s\": group_by must be the name of a column", name);
    if (group && json_is_null(group))
        json_object_del(def, "group_by");
    json_t *sched = json_object_get(def, "schedule");
    if (sched && json_is_null(sched)) {
        json_object_del(def, "schedule");
    } else if (sched) {
        if (json_is_string(sched)) {
            json_object_set_new(def, "schedule",
                                json_pack("{s:s}", "cron", json_string_value(sched)));
            sched = json_object_get(def, "schedule");
        }
        if (!json_is_object(sched))
            DEF_ERR("kpi \"%s\": schedule must be {\"cron\": \"...\", \"timezone\": \"...\"}", name);
        json_object_foreach(sched, key, val)
        {
            if (!key_known(schedule_keys, key))
                DEF_ERR("kpi \"%s\": schedule: unknown key \"%s\" (known: cron, timezone, sync)", name,
                        key);
        }
        json_t *jsync = json_object_get(sched, "sync");
        if (jsync && !json_is_boolean(jsync))
            DEF_ERR("kpi \"%s\": schedule.sync must be true or false", name);
        const char *cron_text = json_string_value(json_object_get(sched, "cron"));
        json_t *jtz = json_object_get(sched, "timezone");
        if (jtz && !json_is_string(jtz))
            DEF_ERR("kpi \"%s\": schedule.timezone must be an IANA zone name", name);
        if (!jtz)
            json_object_set_new(sched, "timezone", json_string("UTC"));
        struct cron c;
        struct tz_zone *zone = NULL;
        if (!cron_text)
            DEF_ERR("kpi \"%s\": schedule.cron is required", name);
        rc = cron_parse(cron_text, &c, err);
        if (!rc)
            rc = tz_load(json_string_value(json_object_get(sched, "timezone")), &zone, err);
        tz_free(zone);
        if (rc) {
            as_err_prefix(err, "kpi \"%s\": schedule", name);
            goto fail;
        }
    }
    json_t *trig = json_object_get(def, "trigger");
    if (trig && json_is_null(trig)) {
        json_object_del(def, "trigger");
    } else if (trig) {
        if (!json_is_object(trig))
            DEF_ERR("kpi \"%s\": trigger must be an object {\"workflow\": FILE, \"input\": {...}, "
                    "\"max_open\": N}", name);
        json_object_foreach(trig, key, val)
        {
            if (!key_known(trigger_keys, key))
                DEF_ERR("kpi \"%s\": trigger: unknown key \"%s\" (known: workflow, input, max_open, "
                        "close_superseded)", name, key);
        }
        json_t *tclose = json_object_get(trig, "close_superseded");
        if (tclose && !json_is_boolean(tclose))
            DEF_ERR("kpi \"%s\": trigger.close_superseded must be true or false", name);
        const char *wf = json_string_value(json_object_get(trig, "workflow"));
        if (!wf || !*wf)
            DEF_ERR("kpi \"%s\": trigger.workflow (a workflow file) is required", name);
        json_t *tin = json_object_get(trig, "input");
        if (tin && !json_is_object(tin))
            DEF_ERR("kpi \"%s\": trigger.input must be an object", name);
        if (tin) {
            rc = tmpl_check(tin, NULL, err);
            if (rc) {
                as_err_prefix(err, "kpi \"%s\": trigger.input", name);
                goto fail;
            }
        }
        json_t *mo = json_object_get(trig, "max_open");
        if (mo && (!json_is_integer(mo) || json_integer_value(mo) < 0))
            DEF_ERR("kpi \"%s\": trigger.max_open must be a whole number >= 0 (0 = no limit)", name);
    }
    expr_free(filter);
    *out = def;
    return AS_OK;
fail:
    expr_free(filter);
    json_decref(def);
    return rc;
}

#undef DEF_ERR

enum as_code kpi_compile(const json_t *def, struct kpi **out, struct as_err *err)
{
    *out = NULL;
    struct kpi *k = calloc(1, sizeof *k);
    if (!k)
        return as_errf(err, AS_ENOMEM, "out of memory");
    k->def = json_incref((json_t *)def);
    k->name = strdup(json_string_value(json_object_get(def, "name")) ?: "");
    k->report = strdup(json_string_value(json_object_get(def, "report")) ?: "users");
    enum as_code rc = AS_OK;
    if (!k->name || !k->report) {
        rc = as_errf(err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    const char *ftext = json_string_value(json_object_get(def, "filter"));
    rc = expr_compile(ftext ? ftext : "", &k->filter, err);
    if (rc)
        goto fail;
    rc = kpi_protocols_parse(json_object_get(def, "protocols"), &k->protocols, err);
    if (rc)
        goto fail;
    k->group_by = json_string_value(json_object_get(def, "group_by"));
    k->trigger = json_object_get(def, "trigger");
    *out = k;
    return AS_OK;
fail:
    kpi_free(k);
    return rc;
}

enum as_code kpi_load(struct app *app, const char *name, struct kpi **out, struct as_err *err)
{
    json_t *row = NULL;
    *out = NULL;
    enum as_code rc = db_kpi_get(app->db, name, &row, err);
    if (rc)
        return rc;
    rc = kpi_compile(json_object_get(row, "definition"), out, err);
    if (!rc)
        (*out)->id = json_integer_value(json_object_get(row, "id"));
    else
        as_err_prefix(err, "stored KPI \"%s\"", name);
    json_decref(row);
    return rc;
}

void kpi_free(struct kpi *k)
{
    if (!k)
        return;
    free(k->name);
    free(k->report);
    expr_free(k->filter);
    json_decref(k->def);
    free(k);
}

/* ---- exemptions ---- */

struct exemption {
    char *upn; /* lower case */
    unsigned mask;
    char *reason;
    struct exemption *next;
};

struct kpi_exemptions {
    size_t n_buckets;
    struct exemption **buckets;
};

static uint64_t hash_lower(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 1099511628211ULL;
    return h;
}

static struct exemption *ex_find(const struct kpi_exemptions *ex, const char *upn)
{
    if (!ex || !upn)
        return NULL;
    struct exemption *e = ex->buckets[hash_lower(upn) % ex->n_buckets];
    for (; e; e = e->next)
        if (strcasecmp(e->upn, upn) == 0)
            return e;
    return NULL;
}

struct load_ctx {
    struct kpi_exemptions *ex;
    enum as_code rc;
    struct as_err *err;
};

static int load_one(void *ud, const char *upn, const char *protocols, const char *reason,
                    const char *granted_by, int64_t expires_at)
{
    struct load_ctx *lc = ud;
    json_t *pj = json_loads(protocols, 0, NULL);
    unsigned mask = 0;
    struct as_err perr = {0};
    /* A stored list we cannot read exempts from nothing rather than everything. */
    if (!pj || kpi_protocols_parse(pj, &mask, &perr) != AS_OK)
        mask = 0;
    json_decref(pj);
    if (!mask)
        return 0;
    char until[40];
    time_format_iso(expires_at, until, sizeof until);
    until[10] = '\0';
    char text[1024];
    snprintf(text, sizeof text, "%s (granted by %s, until %s)", reason, granted_by, until);
    struct exemption *e = ex_find(lc->ex, upn);
    if (e) {
        e->mask |= mask;
        size_t old = strlen(e->reason), add = strlen(text);
        char *r = realloc(e->reason, old + add + 3);
        if (!r)
            goto oom;
        memcpy(r + old, "; ", 2);
        memcpy(r + old + 2, text, add + 1);
        e->reason = r;
        return 0;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        goto oom;
    e->upn = strdup(upn);
    e->reason = strdup(text);
    e->mask = mask;
    if (!e->upn || !e->reason) {
        free(e->upn);
        free(e->reason);
        free(e);
        goto oom;
    }
    size_t b = hash_lower(upn) % lc->ex->n_buckets;
    e->next = lc->ex->buckets[b];
    lc->ex->buckets[b] = e;
    return 0;
oom:
    lc->rc = as_errf(lc->err, AS_ENOMEM, "out of memory");
    return 1;
}

enum as_code kpi_exemptions_load(struct app *app, int64_t now, struct kpi_exemptions **out,
                                 struct as_err *err)
{
    *out = NULL;
    struct kpi_exemptions *ex = calloc(1, sizeof *ex);
    if (!ex)
        return as_errf(err, AS_ENOMEM, "out of memory");
    ex->n_buckets = 1024;
    ex->buckets = calloc(ex->n_buckets, sizeof *ex->buckets);
    if (!ex->buckets) {
        free(ex);
        return as_errf(err, AS_ENOMEM, "out of memory");
    }
    struct load_ctx lc = {ex, AS_OK, err};
    enum as_code rc = db_exception_foreach_active(app->db, now, load_one, &lc, err);
    if (!rc)
        rc = lc.rc;
    if (rc) {
        kpi_exemptions_free(ex);
        return rc;
    }
    *out = ex;
    return AS_OK;
}

unsigned kpi_exemptions_mask(const struct kpi_exemptions *ex, const char *upn, const char **reason)
{
    struct exemption *e = ex_find(ex, upn);
    if (reason)
        *reason = e ? e->reason : NULL;
    return e ? e->mask : 0;
}

void kpi_exemptions_annotate(const struct kpi_exemptions *ex, json_t *row)
{
    const char *reason = NULL;
    unsigned mask = kpi_exemptions_mask(ex, json_string_value(json_object_get(row, "upn")), &reason);
    json_object_set_new(row, "exempt", mask ? kpi_protocols_json(mask) : json_array());
    json_object_set_new(row, "exempt_reason", reason ? json_string(reason) : json_null());
}

void kpi_exemptions_free(struct kpi_exemptions *ex)
{
    if (!ex)
        return;
    for (size_t i = 0; i < ex->n_buckets; i++) {
        struct exemption *e = ex->buckets[i];
        while (e) {
            struct exemption *next = e->next;
            free(e->upn);
            free(e->reason);
            free(e);
            e = next;
        }
    }
    free(ex->buckets);
    free(ex);
}

/* ---- evaluation ---- */

struct source_ctx {
    kpi_row_cb cb;
    void *ud;
};

static int source_row(const json_t *row, void *ud)
{
    struct source_ctx *sc = ud;
    /* Rows are borrowed read-only; evaluation copies before changing. */
    return sc->cb(sc->ud, (json_t *)row);
}

enum as_code kpi_source_tenant(struct app *app, const char *report, kpi_row_cb cb, void *ud,
                               struct as_err *err)
{
    struct source_ctx sc = {cb, ud};
    if (strcmp(report, "users") == 0)
        return db_tenant_users_foreach(app->db, source_row, &sc, err);
    if (strcmp(report, "signins") == 0) {
        /* The sign-ins report covers the last 30 days. */
        struct db_tenant_signin_query q = {.since_ms = time_now_ms() - 30LL * 86400000};
        return db_tenant_signins_foreach(app->db, &q, source_row, &sc, err);
    }
    return as_errf(err, AS_EINVAL, "unknown report \"%s\" (users or signins)", report);
}

/* Pretend the exempt protocols are off in a users row (a shallow copy). */
static void mask_users_row(json_t *row, unsigned mask)
{
    /* A count that is known stays a number (0), one never synced stays null. */
#define ZERO_COUNT(key)                                                                          \
    do {                                                                                         \
        if (json_is_integer(json_object_get(row, key)))                                          \
            json_object_set_new(row, key, json_integer(0));                                      \
    } while (0)
    if (mask & KPI_P_POP) {
        json_object_set_new(row, "pop_enabled", json_false());
        json_object_set_new(row, "pop3_30d", json_false());
        ZERO_COUNT("pop3_signins_30d");
    }
    if (mask & KPI_P_IMAP) {
        json_object_set_new(row, "imap_enabled", json_false());
        json_object_set_new(row, "imap4_30d", json_false());
        ZERO_COUNT("imap4_signins_30d");
    }
    if (mask & KPI_P_SMTP) {
        json_object_set_new(row, "smtp_client_auth_disabled", json_true());
        json_object_set_new(row, "smtp_30d", json_false());
        ZERO_COUNT("smtp_signins_30d");
        ZERO_COUNT("smtp_basic_30d");
    }
    if (mask & KPI_P_ACTIVESYNC) {
        json_object_set_new(row, "activesync_enabled", json_false());
        ZERO_COUNT("activesync_signins_30d");
    }
    if (mask & KPI_P_EWS) {
        json_object_set_new(row, "ews_enabled", json_false());
        ZERO_COUNT("ews_signins_30d");
    }
#undef ZERO_COUNT
    if ((mask & KPI_P_ALL) == KPI_P_ALL) {
        /* The totals and "other clients" are not one protocol; only "all" clears them. */
        json_object_set_new(row, "legacy_signins_30d", json_integer(0));
        json_object_set_new(row, "last_legacy_signin", json_null());
        json_object_set_new(row, "last_legacy_client_app", json_null());
    }
}

/* Protocol a sign-in's client app belongs to (case-insensitive), 0 if none. */
static unsigned client_app_proto(const char *app)
{
    static const struct {
        const char *name;
        unsigned bit;
    } apps[] = {{"POP3", KPI_P_POP},
                {"IMAP4", KPI_P_IMAP},
                {"Authenticated SMTP", KPI_P_SMTP},
                {"Exchange ActiveSync", KPI_P_ACTIVESYNC},
                {"Exchange Web Services", KPI_P_EWS}};
    if (!app)
        return 0;
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++)
        if (strcasecmp(app, apps[i].name) == 0)
            return apps[i].bit;
    return 0;
}

static const char *row_upn(const json_t *row)
{
    const char *u = json_string_value(json_object_get(row, "upn"));
    if (!u)
        u = json_string_value(json_object_get(row, "user_principal_name"));
    if (!u)
        u = json_string_value(json_object_get(row, "userPrincipalName"));
    return u;
}

static const char *row_client_app(const json_t *row)
{
    const char *a = json_string_value(json_object_get(row, "client_app"));
    if (!a)
        a = json_string_value(json_object_get(row, "client_app_used"));
    if (!a)
        a = json_string_value(json_object_get(row, "clientAppUsed"));
    return a;
}

/*
 * For a users row: which of `mask`'s protocols are on, which of those were
 * used in the last 30 days, and the CAS settings (with the values they
 * replace) that turn them off.  Returns -1 out of memory.
 */
static int add_change(json_t *out, const json_t *row, unsigned mask)
{
    const struct proto_field *map = proto_fields;
    char text[256] = "", used_text[256] = "";
    size_t n_text = 0, n_used = 0;
    json_t *enabled = json_array(), *used = json_array(), *settings = json_object(),
           *expect = json_object();
    if (!enabled || !used || !settings || !expect)
        goto oom;
    for (size_t i = 0; i < N_PROTOS; i++) {
        if (!(mask & map[i].bit))
            continue;
        const json_t *v = json_object_get(row, map[i].field);
        if (!json_is_boolean(v) || json_is_true(v) != map[i].on_value)
            continue;
        json_array_append_new(enabled, json_string(map[i].name));
        n_text += (size_t)snprintf(text + n_text, n_text < sizeof text ? sizeof text - n_text : 0,
                                   "%s%s", n_text ? ", " : "", map[i].display);
        if (map[i].used && json_is_true(json_object_get(row, map[i].used))) {
            json_array_append_new(used, json_string(map[i].name));
            n_used += (size_t)snprintf(used_text + n_used,
                                       n_used < sizeof used_text ? sizeof used_text - n_used : 0,
                                       "%s%s", n_used ? ", " : "", map[i].display);
        }
        json_object_set_new(settings, map[i].cas, json_boolean(!map[i].on_value));
        const json_t *cur = json_object_get(row, map[i].cas_current);
        json_object_set_new(expect, map[i].cas, cur ? json_incref((json_t *)cur) : json_null());
    }
    json_object_set_new(out, "protocols_enabled", enabled);
    json_object_set_new(out, "protocols_used_30d", used);
    json_object_set_new(out, "cas_settings", settings);
    json_object_set_new(out, "cas_expect", expect);
    json_object_set_new(out, "protocols_text", json_string(text));
    json_object_set_new(out, "protocols_used_text", json_string(n_used ? used_text : "none"));
    return 0;
oom:
    json_decref(enabled);
    json_decref(used);
    json_decref(settings);
    json_decref(expect);
    return -1;
}

struct eval_ctx {
    const struct kpi *k;
    struct kpi_exemptions *ex;
    kpi_row_cb cb;
    void *ud;
    struct kpi_result *res;
    enum as_code rc;
    struct as_err *err;
    int stopped;
};

static int eval_row(void *ud, json_t *row)
{
    struct eval_ctx *ec = ud;
    const struct kpi *k = ec->k;
    ec->res->scanned++;
    int match = 0;
    const char *upn = row_upn(row);
    enum as_code rc = expr_eval_bool(k->filter, row, &match, ec->err);
    if (rc)
        goto fail;
    if (!match)
        return 0;
    const char *reason = NULL;
    unsigned user_mask = kpi_exemptions_mask(ec->ex, upn, &reason);
    unsigned mask = user_mask & k->protocols;
    if ((user_mask & KPI_P_ALL) == KPI_P_ALL)
        mask = KPI_P_ALL; /* "all" exempts from whatever the KPI concerns */
    if (mask) {
        if (strcmp(k->report, "signins") == 0) {
            unsigned p = client_app_proto(row_client_app(row));
            if ((p && (mask & p)) || mask == KPI_P_ALL) {
                ec->res->exempt++;
                return 0;
            }
        } else {
            json_t *masked = json_copy(row);
            if (!masked) {
                rc = as_errf(ec->err, AS_ENOMEM, "out of memory");
                goto fail;
            }
            mask_users_row(masked, mask);
            rc = expr_eval_bool(k->filter, masked, &match, ec->err);
            json_decref(masked);
            if (rc)
                goto fail;
            if (!match) {
                ec->res->exempt++;
                return 0;
            }
        }
    }
    ec->res->value++;
    if (k->group_by) {
        json_t *g = json_object_get(row, k->group_by);
        char key[256];
        if (json_is_string(g))
            snprintf(key, sizeof key, "%s", json_string_value(g));
        else if (json_is_integer(g))
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(g));
        else if (json_is_boolean(g))
            snprintf(key, sizeof key, "%s", json_is_true(g) ? "true" : "false");
        else
            snprintf(key, sizeof key, "(none)");
        /* Values that differ only in case count together ("MAPI over HTTP"
         * and "MAPI Over HTTP" both occur); the first spelling seen names it. */
        const char *existing = NULL, *bk;
        json_t *bv;
        json_object_foreach(ec->res->breakdown, bk, bv)
        {
            if (strcasecmp(bk, key) == 0) {
                existing = bk;
                break;
            }
        }
        if (!existing && json_object_size(ec->res->breakdown) >= KPI_MAX_GROUPS)
            snprintf(key, sizeof key, "(other)");
        else if (existing)
            snprintf(key, sizeof key, "%s", existing);
        json_t *cnt = json_object_get(ec->res->breakdown, key);
        json_object_set_new(ec->res->breakdown, key,
                            json_integer((cnt ? json_integer_value(cnt) : 0) + 1));
    }
    if (!ec->cb)
        return 0;
    /* The consumer sees the row as it is, plus the user's exemptions. */
    json_t *out = json_copy(row);
    if (!out) {
        rc = as_errf(ec->err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    json_object_set_new(out, "exempt_protocols", user_mask ? kpi_protocols_json(user_mask) : json_array());
    json_object_set_new(out, "exempt_reason", reason ? json_string(reason) : json_null());
    if (strcmp(k->report, "users") == 0 && add_change(out, row, k->protocols & ~user_mask)) {
        json_decref(out);
        rc = as_errf(ec->err, AS_ENOMEM, "out of memory");
        goto fail;
    }
    int stop = ec->cb(ec->ud, out);
    json_decref(out);
    if (stop)
        ec->stopped = 1;
    return stop;
fail:
    as_err_prefix(ec->err, "kpi \"%s\" on row %s", k->name, upn ? upn : "(no upn)");
    ec->rc = rc;
    return 1;
}

enum as_code kpi_eval(struct app *app, const struct kpi *k, int64_t now, kpi_source_fn src,
                      kpi_row_cb cb, void *ud, struct kpi_result *res, struct as_err *err)
{
    memset(res, 0, sizeof *res);
    res->ts = now;
    if (k->group_by) {
        res->breakdown = json_object();
        if (!res->breakdown)
            return as_errf(err, AS_ENOMEM, "out of memory");
    }
    struct kpi_exemptions *ex = NULL;
    enum as_code rc = kpi_exemptions_load(app, now, &ex, err);
    if (rc)
        goto fail;
    struct eval_ctx ec = {k, ex, cb, ud, res, AS_OK, err, 0};
    rc = (src ? src : kpi_source_tenant)(app, k->report, eval_row, &ec, err);
    if (!rc)
        rc = ec.rc;
    else if (ec.rc)
        rc = ec.rc;
    kpi_exemptions_free(ex);
    if (rc)
        goto fail;
    return AS_OK;
fail:
    kpi_result_clear(res);
    return rc;
}

enum as_code kpi_record(struct app *app, const struct kpi *k, const struct kpi_result *res,
                        struct as_err *err)
{
    if (!k->id)
        return as_errf(err, AS_EINVAL, "kpi \"%s\" is not stored", k->name);
    return db_kpi_value_add(app->db, k->id, res->ts, res->value, res->exempt, res->breakdown, err);
}

void kpi_result_clear(struct kpi_result *res)
{
    json_decref(res->breakdown);
    res->breakdown = NULL;
}

void kpi_sparkline(const int64_t *values, size_t n, char *buf, size_t size)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    if (!size)
        return;
    buf[0] = '\0';
    if (!n)
        return;
    int64_t lo = values[0], hi = values[0];
    for (size_t i = 1; i < n; i++) {
        if (values[i] < lo)
            lo = values[i];
        if (values[i] > hi)
            hi = values[i];
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        int level = hi == lo ? (hi ? 4 : 0) : (int)((values[i] - lo) * 7 / (hi - lo));
        size_t len = strlen(bars[level]);
        if (used + len + 1 > size)
            break;
        memcpy(buf + used, bars[level], len);
        used += len;
        buf[used] = '\0';
    }
}

/* ---- saving ---- */

enum as_code kpi_save(struct app *app, json_t *in, int replace, const char *actor, int64_t *id,
                      json_t **def_out, struct as_err *err)
{
    json_t *def = NULL;
    char *text = NULL;
    int64_t kpi_id = 0;
    if (def_out)
        *def_out = NULL;
    if (!json_is_object(in))
        return as_errf(err, AS_EINVAL, "a KPI is a JSON object (docs/kpis.md)");
    /* A schedule without a zone is in the configured default zone. */
    json_t *sched_in = json_object_get(in, "schedule");
    const char *default_tz = config_str(app->cfg, "timezone");
    if (json_is_string(sched_in))
        json_object_set_new(in, "schedule", json_pack("{s:s, s:s}", "cron",
                                                      json_string_value(sched_in), "timezone",
                                                      default_tz));
    else if (json_is_object(sched_in) && !json_object_get(sched_in, "timezone"))
        json_object_set_new(sched_in, "timezone", json_string(default_tz));
    enum as_code rc = kpi_def_normalize(in, &def, err);
    if (rc)
        return rc;
    const char *name = json_string_value(json_object_get(def, "name"));
    const json_t *sched = json_object_get(def, "schedule");
    text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    rc = text ? db_kpi_put(app->db, name, json_string_value(json_object_get(def, "report")), text,
                           json_string_value(json_object_get(sched, "cron")),
                           json_string_value(json_object_get(sched, "timezone")), replace,
                           time_now_ms(), &kpi_id, err)
              : as_errf(err, AS_ENOMEM, "out of memory");
    if (!rc && actor) {
        json_t *ev = json_pack("{s:I, s:s, s:b, s:s}", "id", (json_int_t)kpi_id, "name", name,
                               "replaced", replace, "actor", actor);
        rc = ev ? db_audit_append(app->db, "kpi.saved", ev, err)
                : as_errf(err, AS_ENOMEM, "out of memory");
        json_decref(ev);
    }
    free(text);
    if (rc) {
        json_decref(def);
        return rc;
    }
    if (id)
        *id = kpi_id;
    if (def_out)
        *def_out = def;
    else
        json_decref(def);
    return AS_OK;
}

enum as_code kpi_show_json(struct app *app, const char *name, int limit, int64_t now,
                           json_t **out, struct as_err *err)
{
    json_t *k = NULL, *values = NULL, *runs = NULL;
    *out = NULL;
    enum as_code rc = db_kpi_get(app->db, name, &k, err);
    if (!rc)
        rc = db_kpi_values(app->db, json_integer_value(json_object_get(k, "id")), limit, &values,
                           err);
    if (!rc)
        rc = db_sched_runs(app->db, json_integer_value(json_object_get(k, "id")), 5, &runs, err);
    if (!rc) {
        *out = json_pack("{s:O, s:O, s:O}", "kpi", k, "values", values, "schedule_runs", runs);
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    size_t nv = json_array_size(values);
    json_t *dl = !rc && nv ? kpi_deadline_json(json_object_get(k, "definition"),
                                              json_integer_value(json_object_get(
                                                  json_array_get(values, nv - 1), "value")),
                                              now)
                           : NULL;
    if (!rc && !dl && !nv)
        dl = kpi_deadline_json(json_object_get(k, "definition"), 0, now);
    if (dl)
        json_object_set_new(*out, "deadline", dl);
    const json_t *sched = json_object_get(json_object_get(k, "definition"), "schedule");
    int64_t next = 0;
    if (!rc && sched) {
        struct as_err cerr = {0};
        if (cron_next_spec(json_string_value(json_object_get(sched, "cron")),
                           json_string_value(json_object_get(sched, "timezone")), now, &next,
                           &cerr) == AS_OK &&
            next)
            json_object_set_new(*out, "next_fire_at", json_integer(next));
    }
    json_decref(k);
    json_decref(values);
    json_decref(runs);
    return rc;
}

/* ---- granting exceptions ---- */

enum as_code kpi_exception_grant(struct app *app, const char *user, const json_t *protocols,
                                 const char *reason, const char *granted_by, const char *expires,
                                 const char *source, int64_t now, json_t **out,
                                 struct as_err *err)
{
    unsigned mask = 0;
    int64_t until = 0;
    if (out)
        *out = NULL;
    if (!user || !*user || !strchr(user, '@'))
        return as_errf(err, AS_EINVAL, "user: give a user principal name (name@domain)");
    if (!reason || !*reason)
        return as_errf(err, AS_EINVAL, "reason: say why the user needs the exception");
    if (!granted_by || !*granted_by)
        return as_errf(err, AS_EINVAL, "granted_by: say who decided");
    if (kpi_protocols_parse(protocols, &mask, err) != AS_OK) {
        as_err_prefix(err, "protocols");
        return AS_EINVAL;
    }
    if (time_parse_expiry(expires ? expires : "P90D", now, &until, err) != AS_OK) {
        as_err_prefix(err, "expires");
        return AS_EINVAL;
    }
    json_t *list = kpi_protocols_json(mask);
    char *ptext = list ? json_dumps(list, JSON_COMPACT) : NULL;
    struct db_exception ex = {.upn = user, .protocols = ptext, .reason = reason,
                              .granted_by = granted_by, .created_at = now, .expires_at = until,
                              .source = source};
    int64_t id = 0;
    enum as_code rc = ptext ? db_exception_add(app->db, &ex, &id, NULL, err)
                            : as_errf(err, AS_ENOMEM, "out of memory");
    free(ptext);
    if (!rc && out) {
        *out = json_pack("{s:I, s:s, s:O, s:s, s:s, s:I}", "id", (json_int_t)id, "user", user,
                         "protocols", list, "reason", reason, "granted_by", granted_by,
                         "expires_at", (json_int_t)until);
        if (!*out)
            rc = as_errf(err, AS_ENOMEM, "out of memory");
    }
    json_decref(list);
    return rc;
}
