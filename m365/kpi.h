/*
 * kpi.h - KPIs: named, saved filters over a report, evaluated into a count
 * with a timestamp (the trend), leaving out users exempted by exceptions.
 * Definition format and semantics: docs/kpis.md.
 *
 *   {"name": "legacy-enabled", "description": "...", "report": "users",
 *    "filter": "pop_enabled || imap_enabled || !smtp_client_auth_disabled",
 *    "protocols": ["pop", "imap", "smtp"],
 *    "group_by": "last_legacy_client_app",                 (optional)
 *    "schedule": {"cron": "0 6 * * mon-fri", "timezone": "Europe/Berlin"},  (optional)
 *    "trigger": {"workflow": "workflows/legacy-protocols.json",
 *                "input": {"approvers": ["owner@example.com"]}, "max_open": 500}}  (optional)
 *
 * Exceptions.  A user with an active exception for some protocols is judged
 * as if those protocols were off: the row's fields for each exempt protocol
 * the KPI concerns are masked (pop -> pop_enabled/pop3_30d false, imap ->
 * imap_enabled/imap4_30d false, smtp -> smtp_client_auth_disabled true and
 * smtp_30d false, activesync -> activesync_enabled false, ews -> ews_enabled
 * false) and the filter is evaluated again.  If it no longer matches, the
 * row is left out and counted as exempt; if it still matches (say exempt
 * for POP but IMAP is on), the row is kept, unmasked, with the user's
 * exemptions listed in "exempt_protocols".  For sign-in rows, a row whose
 * client app belongs to an exempt protocol is left out.  Expired or removed
 * exceptions are ignored: "active" is decided against `now` at evaluation.
 *
 * What a found users row carries besides its columns (for workflows):
 *   "exempt_protocols"   the user's active exemptions (["pop"], ["all"], [])
 *   "exempt_reason"      their reasons, or null
 *   "protocols_enabled"  the KPI's protocols that are on for the user and not
 *                        exempt: what a workflow should turn off
 *   "protocols_used_30d" those of them used in the last 30 days
 *   "protocols_text", "protocols_used_text"  the same for people: "POP, SMTP AUTH"
 *                        ("none" when nothing was used)
 *   "cas_settings"       the Set-CASMailbox settings that turn them off, e.g.
 *                        {"PopEnabled": false, "SmtpClientAuthenticationDisabled": true}
 *   "cas_expect"         the mailbox's synced values of those settings (the
 *                        state the change is based on; SMTP: the mailbox
 *                        value, null when it follows the organisation)
 */
#ifndef ASSENT_KPI_H
#define ASSENT_KPI_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct app;
struct expr;

/* Protocols an exception or KPI can name. */
enum kpi_proto {
    KPI_P_POP = 1 << 0,
    KPI_P_IMAP = 1 << 1,
    KPI_P_SMTP = 1 << 2,
    KPI_P_ACTIVESYNC = 1 << 3,
    KPI_P_EWS = 1 << 4,
    KPI_P_ALL = (1 << 5) - 1,
};

/*
 * Parse protocol names from a JSON array of strings or a comma-separated
 * string ("pop,imap", "all") into a mask.  Unknown names are AS_EINVAL with
 * the list of known ones.  An empty list is an error.
 */
enum as_code kpi_protocols_parse(const json_t *v, unsigned *mask, struct as_err *err) AS_WUR;

/* Names of the mask as a new JSON array (["all"] for KPI_P_ALL). */
json_t *kpi_protocols_json(unsigned mask);

/* ---- protocols and Set-CASMailbox properties ---- */

/* The protocol bit a CAS property switches ("PopEnabled" -> KPI_P_POP), 0 for others. */
unsigned kpi_cas_protocol(const char *property);

/* 1 when setting `property` to `value` turns its protocol off
 * (PopEnabled false, SmtpClientAuthenticationDisabled true, ...), else 0. */
int kpi_cas_turns_off(const char *property, const json_t *value);

/* The name of one protocol bit ("pop"), NULL for a bit that is not one protocol. */
const char *kpi_protocol_name(unsigned bit);

/* The CAS property of one protocol bit ("PopEnabled"); *display (may be NULL)
 * gets its name for people ("POP").  NULL for a bit that is not one protocol. */
const char *kpi_protocol_cas(unsigned bit, const char **display);

/*
 * Whether protocol `bit` is on for a mailbox as Get-CASMailbox returned it:
 * 1 on, 0 off, -1 unknown (the property is missing).  For SMTP AUTH a
 * mailbox value of null follows `org` (Get-TransportConfig; may be NULL).
 */
int kpi_protocol_on(unsigned bit, const json_t *mailbox, const json_t *org);

/*
 * The exceptions in force for `upn` at `now`, read from the database now (not
 * from a cache): *mask the protocols they exempt (0 if none); *reasons (may
 * be NULL) a new array [{"id","protocols","reason","granted_by","expires_at"}].
 */
enum as_code kpi_exemption_now(struct app *app, const char *upn, int64_t now, unsigned *mask,
                               json_t **reasons, struct as_err *err) AS_WUR;

/* A compiled KPI.  Immutable; may be shared by threads. */
struct kpi {
    int64_t id;           /* 0 when not stored */
    char *name;
    char *report;         /* "users" or "signins" */
    json_t *def;          /* normalized definition (owned) */
    struct expr *filter;
    unsigned protocols;   /* the protocols the KPI concerns */
    const char *group_by; /* borrowed from def, or NULL */
    const json_t *trigger;/* borrowed from def, or NULL */
};

/*
 * Check a definition and return it normalized (new reference): defaults
 * filled ("description": "", "protocols": the legacy set, no group_by),
 * unknown keys refused, the filter compiled, protocols known, the schedule's
 * cron and time zone valid, the trigger's workflow file loadable.  Every
 * error names the key: "kpi \"x\": filter: ...".
 */
enum as_code kpi_def_normalize(const json_t *in, json_t **out, struct as_err *err) AS_WUR;

/*
 * Check and store a KPI definition as `assent kpi create` and POST
 * /api/v1/kpis do: a schedule without a time zone (or given as a bare cron
 * string) takes config `timezone`; then kpi_def_normalize and db_kpi_put
 * (replace: update a KPI of the same name in place, keeping its history).
 * in is borrowed and may be completed so.  *id (may be NULL) receives the
 * KPI's id, *def (may be NULL) the normalized definition (new reference).
 * With actor set, "kpi.saved" {id, name, replaced, actor} goes into the
 * audit chain after it.  AS_EINVAL for a bad definition (the message names
 * the key), AS_ECONFLICT when the name exists and replace is 0.
 */
enum as_code kpi_save(struct app *app, json_t *in, int replace, const char *actor, int64_t *id,
                      json_t **def, struct as_err *err) AS_WUR;

/*
 * A KPI's deadline (definition key "deadline": {"date", "target"}; a bare
 * date is due at the end of that day, UTC) against its latest value:
 * {"date", "due_at" (ms), "target", "days_left", "passed", "remaining" (to
 * go down to the target), "needed_per_week" (what must go each week to get
 * there in time)}, or NULL when the KPI has none.  New reference.
 */
json_t *kpi_deadline_json(const json_t *def, int64_t value, int64_t now);

/*
 * KPI `name` as `assent kpi show --json` prints it and GET
 * /api/v1/kpis/{name} answers: {"kpi": (db_kpi_get), "values": the last
 * `limit` values oldest first, "schedule_runs": the last 5, "next_fire_at"
 * (when scheduled)}.  New reference.  AS_ENOTFOUND when there is no such KPI.
 */
enum as_code kpi_show_json(struct app *app, const char *name, int limit, int64_t now,
                           json_t **out, struct as_err *err) AS_WUR;

/*
 * Grant an exception as `assent exception add` and POST /api/v1/exceptions
 * do: user (a user principal name, name@domain), protocols (a JSON array of
 * names or a comma-separated string, kpi_protocols_parse), reason and
 * granted_by (not empty), expires (time_parse_expiry from now; NULL:
 * "P90D"), source ("cli", "api").  Appends "exception.added" to the audit
 * chain (db_exception_add).  *out (may be NULL) receives {"id", "user",
 * "protocols", "reason", "granted_by", "expires_at"}.  AS_EINVAL with a
 * message that starts with the field at fault ("protocols: ...").
 */
enum as_code kpi_exception_grant(struct app *app, const char *user, const json_t *protocols,
                                 const char *reason, const char *granted_by, const char *expires,
                                 const char *source, int64_t now, json_t **out,
                                 struct as_err *err) AS_WUR;

/* Compile a normalized definition (borrowed; a reference is kept). */
enum as_code kpi_compile(const json_t *def, struct kpi **out, struct as_err *err) AS_WUR;

/* Load and compile KPI `name` from the database.  AS_ENOTFOUND if absent. */
enum as_code kpi_load(struct app *app, const char *name, struct kpi **out, struct as_err *err) AS_WUR;

void kpi_free(struct kpi *k);

/* ---- exemptions ---- */

/* Active exceptions, indexed by user (case-insensitive). */
struct kpi_exemptions;

enum as_code kpi_exemptions_load(struct app *app, int64_t now, struct kpi_exemptions **out,
                                 struct as_err *err) AS_WUR;

/* Protocol mask the user is exempt from (0 if none); *reason (may be NULL)
 * gets a borrowed "reason (granted by X, until DATE)" text. */
unsigned kpi_exemptions_mask(const struct kpi_exemptions *ex, const char *upn, const char **reason);

/*
 * Add "exempt" (array of protocol names, [] when none) and "exempt_reason"
 * (string or null) to a users-report row (keyed by its "upn").  For the
 * report: who is exempt and why.
 */
void kpi_exemptions_annotate(const struct kpi_exemptions *ex, json_t *row);

void kpi_exemptions_free(struct kpi_exemptions *ex);

/* ---- evaluation ---- */

/* Receives each row found (borrowed: json_incref to keep it).  Nonzero stops. */
typedef int (*kpi_row_cb)(void *ud, json_t *row);

/*
 * Where rows come from: call cb for each row of `report`, stopping when it
 * returns nonzero.  The default reads the last tenant sync from the database.
 */
typedef enum as_code (*kpi_source_fn)(struct app *app, const char *report, kpi_row_cb cb, void *ud,
                                      struct as_err *err);

enum as_code kpi_source_tenant(struct app *app, const char *report, kpi_row_cb cb, void *ud,
                               struct as_err *err) AS_WUR;

struct kpi_result {
    int64_t ts;        /* evaluation time */
    int64_t value;     /* rows found */
    int64_t exempt;    /* rows left out because of exceptions */
    int64_t scanned;   /* rows read */
    json_t *breakdown; /* {"group": count} when the KPI groups, else NULL (owned) */
};

/*
 * Evaluate k at `now`: stream the report's rows from src (NULL = the
 * tenant database), apply the filter and the exemptions, and hand each row
 * found to cb (may be NULL) with "exempt_protocols" (array) and
 * "exempt_reason" added.  Memory stays flat: rows are never collected.
 * If cb stops early the result counts only the rows seen.  A filter that
 * fails on a row (type error) fails the evaluation with the row's upn.
 */
enum as_code kpi_eval(struct app *app, const struct kpi *k, int64_t now, kpi_source_fn src,
                      kpi_row_cb cb, void *ud, struct kpi_result *res, struct as_err *err) AS_WUR;

/* Append res to the KPI's history (k->id must be set). */
enum as_code kpi_record(struct app *app, const struct kpi *k, const struct kpi_result *res,
                        struct as_err *err) AS_WUR;

void kpi_result_clear(struct kpi_result *res);

/* Render values (oldest first) as a Unicode sparkline "▁▂▃▄▅▆▇█" into buf. */
void kpi_sparkline(const int64_t *values, size_t n, char *buf, size_t size);

#endif
