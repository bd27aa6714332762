/*
 * cmd_tenant.c - the tenant commands:
 *   assent sync                      pull the tenant into the database
 *   assent report users|signins ...  report from the last sync
 *   assent plan WORKFLOW ...         the changes a workflow's manage_cas and
 *                                    manage_transport steps would make, as a
 *                                    reviewable PowerShell script
 *
 * Report columns are defined once, in the tables below; the rows come from
 * db_tenant (one row builder for every consumer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db_tenant.h"
#include "base/config.h"
#include "base/expr.h"
#include "m365/kpi.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "engine/workflow.h"
#include "m365/m365.h"
#include "engine/step.h"
#include "m365/tenant_sync.h"
#include "m365/report.h"
#include "base/strbuf.h"

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 and *out set; -1 value missing; 0 no match. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

/* ------------------------------------------------------------------ sync */

static void sync_usage(FILE *f)
{
    fprintf(f, "usage: assent sync [--quiet]\n\n"
               "Pull users, CAS mailbox settings, the transport config, 30-day email-app usage\n"
               "and legacy sign-ins of the last 30 days from the tenant into the database.\n"
               "Credentials and endpoints come from the configuration (docs/m365.md).\n"
               "  --quiet   no progress output\n");
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
    int quiet = 0, rc = EXIT_OK;
    struct as_err err = {0};
    struct m365 *m = NULL;
    struct tenant_sync_result res = {0};

    if (cli_wants_help(argc, argv)) {
        sync_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0)
            quiet = 1;
        else {
            sync_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (m365_new(cli->app.cfg, &m, &err) != AS_OK)
        return cli_error(EXIT_CONFIG, "sync", "%s", err.msg);
    int open_rc = cli_open_db(cli);
    if (open_rc) {
        m365_free(m);
        return open_rc;
    }
    struct tenant_sync_opts opts = {.progress = quiet ? NULL : stderr, .tty = isatty(2)};
    enum as_code src = tenant_sync_run(&cli->app, m, &opts, &res, &err);
    if (cli->json) {
        json_t *j = tenant_sync_result_json(&res);
        if (src)
            json_object_set_new(j, "error", json_string(err.msg));
        cli_print_json("sync", j);
        json_decref(j);
    } else {
        printf("sync %lld %s in %.1f s (%ld requests)\n", (long long)res.sync_id, res.status,
               (double)res.duration_ms / 1000.0, res.requests);
        printf("  users       %8ld  (removed %ld)\n", res.users, res.users_removed);
        printf("  mailboxes   %8ld  (without a synced user: %ld)\n", res.mailboxes,
               res.mailboxes_unmatched);
        printf("  transport   %8s\n", res.transport_synced ? "synced" : "not synced");
        printf("  usage rows  %8ld\n", res.usage_rows);
        printf("  sign-ins    %8ld  (legacy clients, last 30 days)\n", res.signins);
        if (res.ca_policies >= 0)
            printf("  CA policies %8ld  (blocking legacy authentication)\n", res.ca_policies);
        if (res.mailbox_plans >= 0)
            printf("  mailbox plans %6ld\n", res.mailbox_plans);
        printf("  org config  %8s  (EWS settings)\n", res.org_config_synced ? "synced" : "not synced");
        size_t i;
        json_t *w;
        if (json_array_size(res.warnings))
            printf("warnings:\n");
        json_array_foreach(res.warnings, i, w) printf("  - %s\n", json_string_value(w));
    }
    if (src) {
        cli_error(EXIT_FAIL, "sync", "%s", err.msg);
        rc = src == AS_EINVAL ? EXIT_CONFIG : src == AS_EDB ? EXIT_DB : EXIT_FAIL;
    } else if (strcmp(res.status, "partial") == 0) {
        /* Complete enough to record, not enough to trust blindly: cron should notice. */
        fprintf(stderr, "assent sync: partial: some sections could not be read (see the warnings); "
                        "exit code %d\n", EXIT_PARTIAL);
        rc = EXIT_PARTIAL;
    }
    tenant_sync_result_free(&res);
    m365_free(m);
    return rc;
}

/* ---------------------------------------------------------------- report */

/* Columns, cells, CSV and the rows of a query: m365/report.h. */

enum report_format { RF_TABLE, RF_CSV, RF_JSON };

struct report_print {
    enum report_kind kind;
    const struct report_col *cols;
    size_t n_cols;
    long limit;
    enum report_format fmt;
    int pass;             /* table: 1 = measure, 2 = print */
    int widths[32];
    long matched;
};

static int report_print_row(void *ud, const json_t *row)
{
    struct report_print *r = ud;
    if (r->limit >= 0 && r->matched >= r->limit)
        return 1;
    r->matched++;
    if (r->fmt == RF_JSON) {
        char *text = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s  %s", r->matched > 1 ? ",\n" : "", text ? text : "null");
        free(text);
        return 0;
    }
    if (r->fmt == RF_CSV) {
        struct strbuf b = {0};
        report_csv_row(&b, r->kind, row);
        char *line = strbuf_take(&b);
        fputs(line ? line : "\n", stdout);
        free(line);
        return 0;
    }
    char cell[512];
    for (size_t i = 0; i < r->n_cols; i++) {
        report_cell_text(&r->cols[i], row, cell, sizeof cell);
        if (r->pass == 1) {
            int w = (int)strlen(cell);
            if (w > r->widths[i])
                r->widths[i] = w;
            continue;
        }
        printf("%s%-*s", i ? "  " : "", i + 1 < r->n_cols ? r->widths[i] : 0, cell);
    }
    if (r->pass != 1)
        putchar('\n');
    return 0;
}

static void report_usage(FILE *f)
{
    fprintf(f,
            "usage: assent report users [--where EXPR] [--sort COL[,desc]] [--format table|csv|json] [--limit N]\n"
            "       assent report signins [--client-app APP] [--since DURATION] [--upn UPN]\n"
            "                             [--where EXPR] [--format table|csv|json] [--limit N]\n"
            "       assent report policies [--where EXPR] [--format table|csv|json] [--limit N]\n"
            "       assent report plans [--where EXPR] [--format table|csv|json]\n"
            "       assent report org [--format table|csv|json]\n\n"
            "Rows come from the last `assent sync`.  --where takes an expression over the row\n"
            "(docs/expressions.md), e.g. --where 'pop_enabled || imap_enabled'.  Row keys:\n"
            "  id upn display_name mail account_enabled has_mailbox activesync_enabled owa_enabled\n"
            "  pop_enabled imap_enabled mapi_enabled ews_enabled smtp_client_auth_disabled\n"
            "  smtp_client_auth_disabled_mailbox pop3_30d imap4_30d smtp_30d legacy_signins_30d\n"
            "  last_legacy_signin last_legacy_client_app smtp_signins_30d pop3_signins_30d\n"
            "  imap4_signins_30d activesync_signins_30d ews_signins_30d other_signins_30d\n"
            "  noninteractive_signins_30d smtp_basic_30d drift synced_at\n"
            "--sort takes a row key or a column header (e.g. POP, last_legacy_signin,desc).\n"
            "Sign-ins: --since defaults to 30d (ISO 8601 or 7d/12h); --client-app compares\n"
            "case-insensitively (IMAP4, POP3, \"Authenticated SMTP\", ...).\n"
            "Policies: the Conditional Access policies that block legacy authentication\n"
            "(clientAppTypes exchangeActiveSync/other, grant block), Microsoft-managed ones\n"
            "included; keys id display_name state managed assent client_app_types\n"
            "grant_controls modified_at synced_at policy.\n"
            "Plans: the CAS mailbox plans (the protocols new mailboxes get); legacy_on when POP\n"
            "or IMAP is on; keys name display_name guid pop_enabled imap_enabled\n"
            "activesync_enabled owa_enabled mapi_enabled ews_enabled owa_mailbox_policy\n"
            "legacy_on synced_at plan.\n"
            "Org: the organisation's EWS settings: EWSEnabled (true, false, or unset, which\n"
            "Microsoft treats as false from 1 October 2026), the application allow list\n"
            "EwsAllowedAppIDs and an allow list Assent wrote that a read does not show yet;\n"
            "keys ews_enabled ews_application_access_policy ews_allowed_app_ids ews_allow_list\n"
            "ews_block_list pending_app_ids pending_since synced_at config.\n");
}

/* Sync header on stderr for the human formats; error when there was none. */
static int report_sync_note(struct cli *cli, enum report_format fmt)
{
    struct as_err err = {0};
    json_t *last = NULL;
    if (db_tenant_last_sync(cli->app.db, &last, &err) != AS_OK)
        return cli_error(EXIT_DB, "report", "%s", err.msg);
    if (!last)
        return cli_error(EXIT_NOTFOUND, "report", "no tenant data yet: run `assent sync` first");
    if (fmt == RF_TABLE) {
        json_t *w = json_object_get(json_object_get(last, "summary"), "warnings");
        fprintf(stderr, "tenant as of sync %lld (%s, finished %s)%s\n",
                (long long)json_integer_value(json_object_get(last, "id")),
                json_string_value(json_object_get(last, "status")),
                json_is_string(json_object_get(last, "finished_at"))
                    ? json_string_value(json_object_get(last, "finished_at"))
                    : "not finished",
                json_array_size(w) ? "; it had warnings, see `assent sync --json`" : "");
    }
    json_decref(last);
    return EXIT_OK;
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
    const char *format = NULL, *limit = NULL, *since = NULL;
    struct report_query q = {0};
    struct report_print r = {.limit = -1};
    struct report *rep = NULL;
    struct as_err err = {0};
    int rc = EXIT_OK;

    if (cli_wants_help(argc, argv) || argc < 2) {
        report_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *what = argv[1];
    int users = strcmp(what, "users") == 0;
    int policies = strcmp(what, "policies") == 0;
    int plans = strcmp(what, "plans") == 0;
    int org = strcmp(what, "org") == 0;
    int signins = strcmp(what, "signins") == 0;
    if (!users && !policies && !plans && !org && !signins) {
        report_usage(stderr);
        return EXIT_USAGE;
    }
    q.kind = users ? REPORT_USERS : policies ? REPORT_POLICIES : plans ? REPORT_PLANS
             : org ? REPORT_ORG : REPORT_SIGNINS;
    for (int i = 2; i < argc; i++) {
        int m;
        if ((m = opt_value(argc, argv, &i, "--where", &q.where)) ||
            (m = opt_value(argc, argv, &i, "--sort", &q.sort)) ||
            (m = opt_value(argc, argv, &i, "--format", &format)) ||
            (m = opt_value(argc, argv, &i, "--limit", &limit)) ||
            (signins && ((m = opt_value(argc, argv, &i, "--client-app", &q.client_app)) ||
                        (m = opt_value(argc, argv, &i, "--since", &since)) ||
                        (m = opt_value(argc, argv, &i, "--upn", &q.upn))))) {
            if (m < 0)
                return cli_error(EXIT_USAGE, "report", "%s needs a value", argv[i]);
            continue;
        }
        report_usage(stderr);
        return EXIT_USAGE;
    }
    r.kind = q.kind;
    r.fmt = cli->json ? RF_JSON : RF_TABLE;
    if (format) {
        if (strcmp(format, "table") == 0)
            r.fmt = RF_TABLE;
        else if (strcmp(format, "csv") == 0)
            r.fmt = RF_CSV;
        else if (strcmp(format, "json") == 0)
            r.fmt = RF_JSON;
        else
            return cli_error(EXIT_USAGE, "report", "--format must be table, csv or json");
    }
    if (limit) {
        char *end;
        r.limit = strtol(limit, &end, 10);
        if (*end || end == limit || r.limit < 0)
            return cli_error(EXIT_USAGE, "report", "--limit must be a number >= 0");
    }
    int64_t now = time_now_ms();
    if (since) {
        int64_t ms = 0;
        if (time_parse_duration(since, &ms, &err) != AS_OK)
            return cli_error(EXIT_USAGE, "report", "--since: %s", err.msg);
        q.since_ms = now - ms;
    }

    rc = cli_open_db(cli);
    if (rc)
        return rc;
    /* The query is checked before the database is read: a bad --where or
     * --sort is a usage error (exit 2) whatever the data. */
    enum as_code arc = report_open(&cli->app, &q, now, &rep, &err);
    if (arc) {
        rc = cli_error(arc == AS_EINVAL ? EXIT_USAGE : cli_exit_for(arc), "report", "%s%s",
                       arc == AS_EINVAL ? "--" : "", err.msg);
        goto out;
    }
    rc = report_sync_note(cli, r.fmt);
    if (rc)
        goto out;

    r.cols = report_columns(q.kind, &r.n_cols);
    for (size_t i = 0; i < r.n_cols; i++)
        r.widths[i] = (int)strlen(r.cols[i].header);
    if (r.fmt == RF_TABLE) {
        r.pass = 1;
        arc = report_foreach(rep, report_print_row, &r, &err);
        if (arc)
            goto done;
        r.pass = 2;
        r.matched = 0;
        for (size_t i = 0; i < r.n_cols; i++)
            printf("%s%-*s", i ? "  " : "", i + 1 < r.n_cols ? r.widths[i] : 0, r.cols[i].header);
        putchar('\n');
    } else if (r.fmt == RF_CSV) {
        struct strbuf b = {0};
        report_csv_header(&b, q.kind);
        char *line = strbuf_take(&b);
        fputs(line ? line : "\n", stdout);
        free(line);
    } else {
        printf("[\n");
    }
    arc = report_foreach(rep, report_print_row, &r, &err);
    if (r.fmt == RF_JSON)
        printf("%s]\n", r.matched ? "\n" : "");
done:
    if (arc && report_row_failed(rep)) {
        rc = cli_error(EXIT_FAIL, "report", "--%s", err.msg);
    } else if (arc) {
        rc = cli_error(arc == AS_EINVAL ? EXIT_USAGE : EXIT_DB, "report", "%s%s",
                       arc == AS_EINVAL ? "--" : "", err.msg);
    } else if (r.fmt == RF_TABLE) {
        fprintf(stderr, "%ld %s\n", r.matched,
                users      ? "users"
                : policies ? "Conditional Access policies"
                : plans    ? "mailbox plans"
                : org      ? "organisation (EWS settings)"
                           : "sign-ins");
    }
out:
    report_free(rep);
    return rc;
}

/* ------------------------------------------------------------------ plan */

/* CAS property -> the synced row key holding the mailbox's current value. */
static const char *row_key_of(const char *prop)
{
    static const char *const map[][2] = {
        {"ActiveSyncEnabled", "activesync_enabled"},
        {"OWAEnabled", "owa_enabled"},
        {"PopEnabled", "pop_enabled"},
        {"ImapEnabled", "imap_enabled"},
        {"MAPIEnabled", "mapi_enabled"},
        {"EwsEnabled", "ews_enabled"},
        {"SmtpClientAuthenticationDisabled", "smtp_client_auth_disabled_mailbox"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], prop) == 0)
            return map[i][1];
    return NULL;
}

/* Text for a "# ..." line of the plan: tenant data (a UPN, an error quoting
 * one) with its control characters replaced by '?', so a CR or LF cannot end
 * the comment and put a command of its own into the script. */
static const char *plan_comment_text(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; s && *s && o + 1 < size; s++)
        out[o++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    out[o] = '\0';
    return s ? out : "(none)";
}

struct plan_run {
    struct cli *cli;
    struct workflow *wf;
    struct expr *where;
    const struct wf_step *cas_steps[16];
    size_t n_cas;
    long rows, commands, compliant, no_mailbox, refused, unresolved;
    char unresolved_why[600];
    int failed;
    struct as_err err;
};

/* The run input a trigger would build from a row (m365/trigger.c): the
 * row's non-null keys the workflow declares, plus user and upn, with the
 * workflow's input defaults applied when the result is a valid input. */
static json_t *plan_input(const struct workflow *wf, const json_t *row)
{
    json_t *input = json_object();
    const char *key;
    json_t *v;
    if (!input)
        return NULL;
    json_object_foreach((json_t *)row, key, v)
    {
        if (json_is_null(v) || (wf->input && !json_object_get(wf->input, key)))
            continue;
        json_object_set(input, key, v);
    }
    json_t *upn = json_object_get(row, "upn");
    if (upn && (!wf->input || json_object_get(wf->input, "user")))
        json_object_set(input, "user", upn);
    if (upn && (!wf->input || json_object_get(wf->input, "upn")))
        json_object_set(input, "upn", upn);
    json_t *prepared = NULL;
    struct as_err e = {0};
    if (wf_input_prepare(wf, input, &prepared, &e) == AS_OK) {
        json_decref(input);
        return prepared;
    }
    return input; /* e.g. required inputs only a KPI trigger supplies: plan anyway */
}

static int plan_row(const json_t *row, void *ud)
{
    struct plan_run *p = ud;
    if (p->where) {
        int keep = 0;
        if (expr_eval_bool(p->where, row, &keep, &p->err) != AS_OK) {
            const char *u = json_string_value(json_object_get(row, "upn"));
            as_err_prefix(&p->err, "--where on %s", u ? u : "a row");
            p->failed = 1;
            return 1;
        }
        if (!keep)
            return 0;
    }
    p->rows++;
    const char *upn = json_string_value(json_object_get(row, "upn"));
    char shown[400];
    plan_comment_text(upn, shown, sizeof shown);
    if (!json_is_true(json_object_get(row, "has_mailbox"))) {
        p->no_mailbox++;
        printf("# %s: no mailbox in the last sync, nothing to change\n", shown);
        return 0;
    }
    json_t *input = plan_input(p->wf, row);
    json_t *scope = input ? json_pack("{s:o, s:{}, s:{s:s, s:b}}", "input", input, "steps", "run",
                                      "workflow", p->wf->name, "dry_run", 1)
                          : NULL;
    if (!scope) {
        as_errf(&p->err, AS_ENOMEM, "out of memory");
        p->failed = 1;
        return 1;
    }
    int compliant = 1;
    for (size_t s = 0; s < p->n_cas; s++) {
        const struct wf_step *st = p->cas_steps[s];
        json_t *params = NULL;
        struct as_err e = {0};
        if (tmpl_resolve(st->params, scope, &params, &e) != AS_OK) {
            if (!p->unresolved_why[0])
                snprintf(p->unresolved_why, sizeof p->unresolved_why, "step %s: %s", st->name,
                         e.msg);
            p->unresolved++;
            compliant = 0;
            continue;
        }
        const char *identity = json_string_value(json_object_get(params, "identity"));
        if (!identity || !*identity)
            identity = upn; /* e.g. taken from an earlier step's output at run time */
        json_t *settings = json_object_get(params, "settings");
        if (!json_is_object(settings)) {
            if (!p->unresolved_why[0])
                snprintf(p->unresolved_why, sizeof p->unresolved_why,
                         "step %s takes its settings from the run (%s)", st->name,
                         json_is_string(json_object_get(st->params, "settings"))
                             ? json_string_value(json_object_get(st->params, "settings"))
                             : "not an object");
            p->unresolved++;
            compliant = 0;
            json_decref(params);
            continue;
        }
        json_t *set = json_object();
        const char *k;
        json_t *want;
        int refused = 0;
        json_object_foreach(settings, k, want)
        {
            if ((strcmp(k, "OWAEnabled") == 0 || strcmp(k, "MAPIEnabled") == 0) &&
                json_is_false(want) && !json_is_true(json_object_get(params, "allow_lockout")))
                refused = 1;
            const char *rk = row_key_of(k);
            json_t *have = rk ? json_object_get(row, rk) : NULL;
            if (rk && json_equal(have ? have : json_null(), want))
                continue;
            json_object_set(set, k, want);
        }
        if (refused) {
            printf("# %s: step %s would refuse: it disables OWA or MAPI without allow_lockout\n",
                   shown, st->name);
            p->refused++;
            compliant = 0;
        } else if (json_object_size(set)) {
            json_object_set_new(set, "Identity", json_string(identity));
            char *cmd = m365_powershell_command("Set-CASMailbox", set);
            printf("%s\n", cmd ? cmd : "# (out of memory)");
            free(cmd);
            p->commands++;
            compliant = 0;
        }
        json_decref(set);
        json_decref(params);
    }
    p->compliant += compliant;
    json_decref(scope);
    return 0;
}

/* kpi_eval hands each row the KPI finds (with cas_settings, cas_expect, ...). */
static int plan_kpi_row(void *ud, json_t *row)
{
    return plan_row(row, ud);
}

/* manage_transport steps: compare with the synced organisation settings. */
static void plan_transport(struct plan_run *p, const json_t *org)
{
    for (size_t i = 0; i < p->wf->n_steps; i++) {
        const struct wf_step *st = &p->wf->steps[i];
        if (!st->type || strcmp(st->type->name, "manage_transport") != 0)
            continue;
        json_t *settings = json_object_get(st->params, "settings");
        if (!json_is_object(settings)) {
            printf("# step %s: settings are decided at run time\n", st->name);
            continue;
        }
        json_t *set = json_object();
        const char *k;
        json_t *want;
        json_object_foreach(settings, k, want)
        {
            json_t *have = org ? json_object_get(org, k) : NULL;
            if (!org || !json_equal(have ? have : json_null(), want))
                json_object_set(set, k, want);
        }
        if (json_object_size(set)) {
            char *cmd = m365_powershell_command("Set-TransportConfig", set);
            printf("%s%s\n", cmd ? cmd : "# (out of memory)",
                   org ? "" : "   # the organisation settings were not synced");
            free(cmd);
            p->commands++;
        } else {
            printf("# step %s: the organisation already has these transport settings\n", st->name);
        }
        json_decref(set);
    }
}

static void plan_usage(FILE *f)
{
    fprintf(f,
            "usage: assent plan WORKFLOW [--kpi NAME] [--where EXPR]\n\n"
            "Print, for the users of the last sync, the exact changes WORKFLOW's manage_cas and\n"
            "manage_transport steps would make, as a PowerShell script for Exchange Online.\n"
            "  --kpi NAME    the users KPI NAME finds, with the settings it computes for each\n"
            "                (what `assent trigger` would start runs for; exempt users left out)\n"
            "  --where EXPR  only rows where EXPR (over the report row) is true\n"
            "Only settings that differ from the synced state are listed.  Nothing is changed.\n");
}

int cmd_plan(struct cli *cli, int argc, char **argv)
{
    const char *path = NULL, *where = NULL, *kpi = NULL;
    struct plan_run p = {.cli = cli};
    struct kpi *k = NULL;
    struct diag_list diags = {0};
    json_t *last = NULL, *org = NULL;
    int rc = EXIT_OK;

    if (cli_wants_help(argc, argv)) {
        plan_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = opt_value(argc, argv, &i, "--where", &where)) ||
            (m = opt_value(argc, argv, &i, "--kpi", &kpi))) {
            if (m < 0)
                return cli_error(EXIT_USAGE, "plan", "%s needs a value", argv[i]);
        } else if (argv[i][0] == '-' || path) {
            plan_usage(stderr);
            return EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        plan_usage(stderr);
        return EXIT_USAGE;
    }
    if (where && expr_compile(where, &p.where, &p.err) != AS_OK)
        return cli_error(EXIT_USAGE, "plan", "--where: %s", p.err.msg);
    if (wf_load_file(path, &p.wf, &diags, &p.err) != AS_OK) {
        wf_diags_print(&diags, path, cli->json, stderr);
        rc = cli_error(EXIT_FAIL, "plan", "%s: %s", path, p.err.msg[0] ? p.err.msg : "invalid workflow");
        goto out;
    }
    int transport = 0;
    for (size_t i = 0; i < p.wf->n_steps; i++) {
        const struct wf_step *st = &p.wf->steps[i];
        if (st->type && strcmp(st->type->name, "manage_cas") == 0 &&
            p.n_cas < sizeof p.cas_steps / sizeof p.cas_steps[0])
            p.cas_steps[p.n_cas++] = st;
        if (st->type && strcmp(st->type->name, "manage_transport") == 0)
            transport = 1;
    }
    if (!p.n_cas && !transport) {
        rc = cli_error(EXIT_FAIL, "plan", "workflow %s has no manage_cas or manage_transport step: "
                                          "it changes no Exchange settings", p.wf->name);
        goto out;
    }
    rc = cli_open_db(cli);
    if (rc)
        goto out;
    if (db_tenant_last_sync(cli->app.db, &last, &p.err) != AS_OK ||
        db_tenant_org_transport(cli->app.db, &org, &p.err) != AS_OK) {
        rc = cli_error(EXIT_DB, "plan", "%s", p.err.msg);
        goto out;
    }
    if (!last) {
        rc = cli_error(EXIT_NOTFOUND, "plan", "no tenant data yet: run `assent sync` first");
        goto out;
    }
    if (kpi) {
        if (kpi_load(&cli->app, kpi, &k, &p.err) != AS_OK) {
            rc = cli_error(p.err.code == AS_ENOTFOUND ? EXIT_NOTFOUND : EXIT_FAIL, "plan", "%s",
                           p.err.msg);
            goto out;
        }
        if (strcmp(k->report, "users") != 0) {
            rc = cli_error(EXIT_USAGE, "plan", "KPI %s reports %s, not users", kpi, k->report);
            goto out;
        }
    }
    char now[40], filter_text[512];
    time_format_iso(time_now_ms(), now, sizeof now);
    printf("# Assent plan for workflow \"%s\" version %s (sha256 %.12s), generated %s\n",
           p.wf->name, p.wf->version, p.wf->hash, now);
    printf("# Tenant state: sync %lld (%s, finished %s).%s%s\n",
           (long long)json_integer_value(json_object_get(last, "id")),
           json_string_value(json_object_get(last, "status")),
           json_is_string(json_object_get(last, "finished_at"))
               ? json_string_value(json_object_get(last, "finished_at"))
               : "not finished",
           where ? " Filter: " : "", where ? plan_comment_text(where, filter_text, sizeof filter_text) : "");
    printf("# Only settings that differ from that state are listed. Nothing has been changed.\n"
           "# To apply by hand: Connect-ExchangeOnline, then run the lines below.\n");
    if (kpi)
        printf("# Users: the rows KPI \"%s\" finds (exempt users left out).\n", kpi);
    plan_transport(&p, org);
    if (p.n_cas) {
        enum as_code dbrc;
        if (k) {
            struct kpi_result kres = {0};
            dbrc = kpi_eval(&cli->app, k, time_now_ms(), NULL, plan_kpi_row, &p, &kres, &p.err);
            kpi_result_clear(&kres);
        } else {
            dbrc = db_tenant_users_foreach(cli->app.db, plan_row, &p, &p.err);
        }
        if (p.failed) {
            rc = cli_error(EXIT_FAIL, "plan", "%s", p.err.msg);
            goto out;
        }
        if (dbrc) {
            rc = cli_error(dbrc == AS_EDB ? EXIT_DB : EXIT_FAIL, "plan", "%s", p.err.msg);
            goto out;
        }
    }
    char why[sizeof p.unresolved_why];
    if (p.unresolved)
        printf("# %ld user(s) not planned: %s%s\n", p.unresolved,
               plan_comment_text(p.unresolved_why, why, sizeof why),
               kpi ? "" : "; with --kpi NAME the KPI supplies per-user settings");
    printf("# %ld command(s); %ld user(s) considered, %ld already as requested, %ld without a "
           "mailbox%s\n",
           p.commands, p.rows, p.compliant, p.no_mailbox, p.refused ? ", some refused (see comments)" : "");
out:
    json_decref(last);
    json_decref(org);
    diag_free(&diags);
    kpi_free(k);
    wf_free(p.wf);
    expr_free(p.where);
    return rc;
}
