/*
 * cmd_kpi.c - `assent kpi`, `assent exception` and `assent trigger`: saved
 * KPIs over the synced tenant, protocol exceptions, and starting a workflow
 * for each row of a KPI.  The logic lives in m365/kpi.c, m365/trigger.c
 * and db/db_kpi.c; this file parses flags and prints.  Formats: docs/kpis.md.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "base/config.h"
#include "base/cron.h"
#include "base/expr.h"
#include "m365/kpi.h"
#include "base/timeutil.h"
#include "m365/trigger.h"
#include "base/tz.h"
#include "engine/workflow.h"

#define HISTORY_DEFAULT 30

/* ---- small helpers ---- */

static void fmt_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    time_format_iso(ms, buf, size);
    /* Seconds are enough for people: "2026-01-05T06:00:00Z". */
    char *dot = strchr(buf, '.');
    if (dot)
        snprintf(dot, size - (size_t)(dot - buf), "Z");
}

/* Reset getopt for a subcommand's argv (argv[0] is the subcommand). */
static void getopt_reset(void)
{
    optind = 0;
    opterr = 1;
}

/* Join names of a JSON string array with ", " into buf. */
static void join_array(const json_t *arr, char *buf, size_t size)
{
    size_t used = 0, i;
    json_t *v;
    buf[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         json_is_string(v) ? json_string_value(v) : "?");
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/*
 * Make a relative trigger.workflow absolute, resolved against base_dir (the
 * directory of the KPI file, or "." for flags), so the scheduler finds it
 * whatever directory `assent serve` runs in.
 */
static int absolutize_workflow(json_t *def, const char *base_dir)
{
    json_t *trig = json_object_get(def, "trigger");
    const char *wf = json_string_value(json_object_get(trig, "workflow"));
    if (!wf || wf[0] == '/')
        return 0;
    char joined[PATH_MAX], real[PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", base_dir, wf);
    if (!realpath(joined, real)) {
        fprintf(stderr, "assent kpi: trigger.workflow %s: cannot read it (%s)\n", joined,
                strerror(errno));
        return -1;
    }
    json_object_set_new(trig, "workflow", json_string(real));
    return 0;
}

/* ---- assent kpi ---- */

static void kpi_usage(FILE *f)
{
    fprintf(f,
            "usage: assent kpi create NAME --filter EXPR [options]\n"
            "       assent kpi create --from FILE [--replace]\n"
            "       assent kpi list\n"
            "       assent kpi show NAME [--limit N]\n"
            "       assent kpi eval NAME [--rows] [--no-record]\n"
            "       assent kpi delete NAME\n"
            "\n"
            "A KPI is a saved filter over a report of the last `assent sync`; evaluating it\n"
            "stores the count with a timestamp, so `kpi show` can draw the trend.\n"
            "Users with an active exception for the KPI's protocols are left out.\n"
            "\n"
            "create options:\n"
            "  --from FILE             the KPI as JSON (one object or an array of them);\n"
            "                          a relative trigger.workflow is relative to FILE\n"
            "  --report users|signins  which report (default users)\n"
            "  --filter EXPR           expression over the report's columns, e.g.\n"
            "                          'pop_enabled || imap_enabled || !smtp_client_auth_disabled'\n"
            "  --description TEXT\n"
            "  --protocols LIST        protocols it concerns, for exceptions (default pop,imap,smtp)\n"
            "  --group-by COLUMN       also count per value of COLUMN (e.g. client_app)\n"
            "  --schedule CRON         evaluate (and trigger) on a 5-field cron schedule\n"
            "  --timezone ZONE         IANA zone of the schedule (default: config timezone)\n"
            "  --trigger-workflow FILE workflow to start per row when the schedule fires\n"
            "  --trigger-input JSON    extra input, values may use ${row.x} and ${kpi.name}\n"
            "  --max-open N            at most N open runs of that workflow (0 = no limit)\n"
            "  --replace               replace a KPI of the same name (history is kept)\n"
            "\n"
            "eval options:\n"
            "  --rows       print the rows found (user, exempt protocols)\n"
            "  --no-record  do not append the value to the history\n"
            "\n"
            "Format and shipped KPIs: docs/kpis.md (workflows/kpis/*.json).\n");
}

static int kpi_store(struct cli *cli, json_t *in, int replace)
{
    struct as_err err = {0};
    json_t *def = NULL;
    int64_t id = 0;
    enum as_code rc = kpi_save(&cli->app, in, replace, NULL, &id, &def, &err);
    if (rc == AS_EINVAL)
        return cli_error(EXIT_USAGE, "kpi", "%s", err.msg);
    if (rc)
        return cli_error(rc == AS_ECONFLICT ? EXIT_FAIL : cli_exit_for(rc), "kpi", "%s%s", err.msg,
                         rc == AS_ECONFLICT ? " (use --replace to change it)" : "");
    const char *name = json_string_value(json_object_get(def, "name"));
    if (cli->json) {
        json_t *o = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)id, "name", name, "definition", def);
        cli_print_json("kpi", o);
        json_decref(o);
    } else {
        printf("KPI %s saved (id %lld)%s\n", name, (long long)id,
               json_object_get(def, "schedule") ? ", scheduled" : "");
    }
    json_decref(def);
    return EXIT_OK;
}

static int kpi_create(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, 0, 'f'},      {"report", required_argument, 0, 'r'},
        {"filter", required_argument, 0, 'F'},    {"description", required_argument, 0, 'd'},
        {"protocols", required_argument, 0, 'p'}, {"group-by", required_argument, 0, 'g'},
        {"schedule", required_argument, 0, 's'},  {"timezone", required_argument, 0, 'z'},
        {"trigger-workflow", required_argument, 0, 'w'},
        {"trigger-input", required_argument, 0, 'i'},
        {"max-open", required_argument, 0, 'm'},  {"replace", no_argument, 0, 'R'},
        {0, 0, 0, 0},
    };
    const char *from = NULL, *report = NULL, *filter = NULL, *desc = NULL, *protocols = NULL,
               *group = NULL, *schedule = NULL, *tzname = NULL, *wf = NULL, *tinput = NULL,
               *max_open = NULL;
    int replace = 0, c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': from = optarg; break;
        case 'r': report = optarg; break;
        case 'F': filter = optarg; break;
        case 'd': desc = optarg; break;
        case 'p': protocols = optarg; break;
        case 'g': group = optarg; break;
        case 's': schedule = optarg; break;
        case 'z': tzname = optarg; break;
        case 'w': wf = optarg; break;
        case 'i': tinput = optarg; break;
        case 'm': max_open = optarg; break;
        case 'R': replace = 1; break;
        default: kpi_usage(stderr); return EXIT_USAGE;
        }
    }
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    if (from) {
        if (optind < argc || filter || report || schedule || wf)
            return cli_error(EXIT_USAGE, "kpi", "create --from FILE takes no NAME or other flags but --replace");
        json_error_t jerr;
        json_t *doc = json_load_file(from, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
            return cli_error(EXIT_USAGE, "kpi", "%s:%d:%d: %s", from, jerr.line, jerr.column, jerr.text);
        char dircopy[PATH_MAX];
        snprintf(dircopy, sizeof dircopy, "%s", from);
        const char *dir = dirname(dircopy);
        json_t *list = json_is_array(doc) ? json_incref(doc) : json_pack("[O]", doc);
        size_t i;
        json_t *item;
        rc = EXIT_OK;
        json_array_foreach(list, i, item)
        {
            if (json_is_object(item) && absolutize_workflow(item, dir)) {
                rc = EXIT_USAGE;
                break;
            }
            rc = kpi_store(cli, item, replace);
            if (rc)
                break;
        }
        json_decref(list);
        json_decref(doc);
        return rc;
    }
    if (optind >= argc)
        return cli_error(EXIT_USAGE, "kpi", "create needs a NAME (or --from FILE); see `assent kpi --help`");
    json_t *def = json_pack("{s:s}", "name", argv[optind]);
    if (report)
        json_object_set_new(def, "report", json_string(report));
    if (filter)
        json_object_set_new(def, "filter", json_string(filter));
    if (desc)
        json_object_set_new(def, "description", json_string(desc));
    if (protocols)
        json_object_set_new(def, "protocols", json_string(protocols));
    if (group)
        json_object_set_new(def, "group_by", json_string(group));
    if (schedule)
        json_object_set_new(def, "schedule",
                            json_pack("{s:s, s:s}", "cron", schedule, "timezone",
                                      tzname ? tzname : config_str(cli->app.cfg, "timezone")));
    else if (tzname) {
        json_decref(def);
        return cli_error(EXIT_USAGE, "kpi", "--timezone needs --schedule");
    }
    if (wf || tinput || max_open) {
        if (!wf) {
            json_decref(def);
            return cli_error(EXIT_USAGE, "kpi", "--trigger-input and --max-open need --trigger-workflow");
        }
        json_t *trig = json_pack("{s:s}", "workflow", wf);
        if (tinput) {
            json_error_t jerr;
            json_t *in = json_loads(tinput, JSON_REJECT_DUPLICATES, &jerr);
            if (!in) {
                json_decref(trig);
                json_decref(def);
                return cli_error(EXIT_USAGE, "kpi", "--trigger-input: %s", jerr.text);
            }
            json_object_set_new(trig, "input", in);
        }
        if (max_open) {
            char *end;
            long long n = strtoll(max_open, &end, 10);
            if (*end || end == max_open || n < 0) {
                json_decref(trig);
                json_decref(def);
                return cli_error(EXIT_USAGE, "kpi", "--max-open must be a whole number >= 0");
            }
            json_object_set_new(trig, "max_open", json_integer(n));
        }
        json_object_set_new(def, "trigger", trig);
        if (absolutize_workflow(def, ".")) {
            json_decref(def);
            return EXIT_USAGE;
        }
    }
    rc = kpi_store(cli, def, replace);
    json_decref(def);
    return rc;
}

static int kpi_list(struct cli *cli)
{
    struct as_err err = {0};
    json_t *list = NULL;
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    if (db_kpi_list(cli->app.db, &list, &err) != AS_OK)
        return cli_error(EXIT_DB, "kpi", "%s", err.msg);
    if (cli->json) {
        cli_print_json("kpi", list);
        json_decref(list);
        return EXIT_OK;
    }
    if (json_array_size(list) == 0) {
        printf("no KPIs yet: `assent kpi create --from workflows/kpis/legacy-enabled.json`\n");
        json_decref(list);
        return EXIT_OK;
    }
    printf("%-28s %-8s %8s %7s  %-21s %s\n", "NAME", "REPORT", "VALUE", "EXEMPT", "EVALUATED",
           "SCHEDULE");
    size_t i;
    json_t *k;
    json_array_foreach(list, i, k)
    {
        char when[40], value[32], exempt[32], sched[160];
        fmt_time(json_integer_value(json_object_get(k, "last_ts")), when, sizeof when);
        const json_t *v = json_object_get(k, "last_value");
        snprintf(value, sizeof value, json_is_integer(v) ? "%lld" : "-",
                 (long long)json_integer_value(v));
        v = json_object_get(k, "last_exempt");
        snprintf(exempt, sizeof exempt, json_is_integer(v) ? "%lld" : "-",
                 (long long)json_integer_value(v));
        const char *cron = json_string_value(json_object_get(k, "schedule"));
        if (cron)
            snprintf(sched, sizeof sched, "%s (%s)", cron,
                     json_string_value(json_object_get(k, "timezone")) ?: "UTC");
        else
            snprintf(sched, sizeof sched, "-");
        printf("%-28s %-8s %8s %7s  %-21s %s\n", json_string_value(json_object_get(k, "name")),
               json_string_value(json_object_get(k, "report")), value, exempt, when, sched);
    }
    json_decref(list);
    return EXIT_OK;
}

static int kpi_show(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"limit", required_argument, 0, 'n'}, {0, 0, 0, 0}};
    int limit = HISTORY_DEFAULT, c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'n') {
            kpi_usage(stderr);
            return EXIT_USAGE;
        }
        char *end;
        long n = strtol(optarg, &end, 10);
        if (*end || n < 1 || n > 100000)
            return cli_error(EXIT_USAGE, "kpi", "--limit must be from 1 to 100000");
        limit = (int)n;
    }
    if (optind >= argc)
        return cli_error(EXIT_USAGE, "kpi", "show needs a NAME");
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct as_err err = {0};
    json_t *shown = NULL;
    enum as_code arc = kpi_show_json(&cli->app, argv[optind], limit, time_now_ms(), &shown, &err);
    if (arc)
        return cli_error(cli_exit_for(arc), "kpi", "%s", err.msg);
    if (cli->json) {
        cli_print_json("kpi", shown);
        json_decref(shown);
        return EXIT_OK;
    }
    const json_t *k = json_object_get(shown, "kpi"), *values = json_object_get(shown, "values"),
                 *runs = json_object_get(shown, "schedule_runs");
    const json_t *def = json_object_get(k, "definition");
    const json_t *sched = json_object_get(def, "schedule");
    int64_t next = json_integer_value(json_object_get(shown, "next_fire_at"));
    char buf[512], t1[40];
    const char *desc = json_string_value(json_object_get(def, "description"));
    printf("%s%s%s\n", json_string_value(json_object_get(k, "name")), desc && *desc ? ": " : "",
           desc ? desc : "");
    printf("  report:    %s\n", json_string_value(json_object_get(def, "report")));
    printf("  filter:    %s\n", json_string_value(json_object_get(def, "filter")));
    join_array(json_object_get(def, "protocols"), buf, sizeof buf);
    printf("  protocols: %s\n", buf);
    if (json_object_get(def, "group_by"))
        printf("  group by:  %s\n", json_string_value(json_object_get(def, "group_by")));
    if (sched) {
        fmt_time(next, t1, sizeof t1);
        printf("  schedule:  %s (%s), next %s\n", json_string_value(json_object_get(sched, "cron")),
               json_string_value(json_object_get(sched, "timezone")), t1);
    }
    const json_t *trig = json_object_get(def, "trigger");
    if (trig) {
        json_int_t mo = json_integer_value(json_object_get(trig, "max_open"));
        printf("  trigger:   %s", json_string_value(json_object_get(trig, "workflow")));
        if (mo)
            printf(" (at most %lld open runs)", (long long)mo);
        printf("\n");
    }
    const json_t *dl = json_object_get(shown, "deadline");
    if (dl) {
        long long days = (long long)json_integer_value(json_object_get(dl, "days_left"));
        const char *date = json_string_value(json_object_get(dl, "date"));
        if (json_is_true(json_object_get(dl, "passed")))
            printf("  deadline:  %s: passed", date);
        else
            printf("  deadline:  %s: %lld day%s left", date, days, days == 1 ? "" : "s");
        if (json_array_size(values))
            printf(", %lld to go: %lld per week needed\n",
                   (long long)json_integer_value(json_object_get(dl, "remaining")),
                   (long long)json_integer_value(json_object_get(dl, "needed_per_week")));
        else
            printf("\n");
    }
    size_t n = json_array_size(values);
    if (n == 0) {
        printf("\n  never evaluated: `assent kpi eval %s`\n", json_string_value(json_object_get(k, "name")));
        goto out;
    }
    int64_t *series = calloc(n, sizeof *series);
    if (!series) {
        rc = cli_error(EXIT_FAIL, "kpi", "out of memory");
        goto out;
    }
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        series[i] = json_integer_value(json_object_get(json_array_get(values, i), "value"));
        lo = series[i] < lo ? series[i] : lo;
        hi = series[i] > hi ? series[i] : hi;
    }
    char spark[3 * 4 * 1024];
    kpi_sparkline(series, n, spark, sizeof spark);
    printf("  trend:     %s  now %lld, min %lld, max %lld over %zu evaluation%s\n\n", spark,
           (long long)series[n - 1], (long long)lo, (long long)hi, n, n == 1 ? "" : "s");
    free(series);
    printf("  %-21s %8s %7s %8s  %s\n", "EVALUATED", "VALUE", "EXEMPT", "CHANGE", "BREAKDOWN");
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(values, i);
        int64_t val = json_integer_value(json_object_get(v, "value"));
        char change[32] = "";
        if (i > 0)
            snprintf(change, sizeof change, "%+lld", (long long)(val - prev));
        prev = val;
        fmt_time(json_integer_value(json_object_get(v, "ts")), t1, sizeof t1);
        char *bd = NULL;
        const json_t *b = json_object_get(v, "breakdown");
        if (json_is_object(b))
            bd = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        printf("  %-21s %8lld %7lld %8s  %s\n", t1, (long long)val,
               (long long)json_integer_value(json_object_get(v, "exempt")), change, bd ? bd : "");
        free(bd);
    }
    if (json_array_size(runs)) {
        printf("\n  recent schedule runs:\n");
        size_t i;
        json_t *r;
        json_array_foreach(runs, i, r)
        {
            fmt_time(json_integer_value(json_object_get(r, "scheduled_for")), t1, sizeof t1);
            char *res = NULL;
            const json_t *result = json_object_get(r, "result");
            if (json_is_object(result))
                res = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
            json_int_t missed = json_integer_value(json_object_get(r, "missed"));
            printf("  %-21s %-7s", t1, json_string_value(json_object_get(r, "status")));
            if (missed)
                printf(" (caught up %lld missed)", (long long)missed);
            const char *e = json_string_value(json_object_get(r, "error"));
            printf(" %s\n", e ? e : res ? res : "");
            free(res);
        }
    }
out:
    json_decref(shown);
    return rc;
}

struct eval_print {
    int json;
    json_t *rows;
    long printed;
};

static int eval_print_row(void *ud, json_t *row)
{
    struct eval_print *ep = ud;
    if (ep->json) {
        json_array_append(ep->rows, row);
        return 0;
    }
    if (ep->printed++ == 0)
        printf("%-40s %-24s %s\n", "USER", "EXEMPT FROM", "");
    char ex[256];
    join_array(json_object_get(row, "exempt_protocols"), ex, sizeof ex);
    printf("%-40s %-24s\n", json_string_value(json_object_get(row, "upn")) ?: "?", *ex ? ex : "-");
    return 0;
}

static int kpi_eval_cmd(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"rows", no_argument, 0, 'r'}, {"no-record", no_argument, 0, 'n'}, {0, 0, 0, 0}};
    int rows = 0, record = 1, c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r')
            rows = 1;
        else if (c == 'n')
            record = 0;
        else {
            kpi_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_error(EXIT_USAGE, "kpi", "eval needs a NAME");
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct as_err err = {0};
    struct kpi *k = NULL;
    struct kpi_result res = {0};
    struct eval_print ep = {cli->json, cli->json ? json_array() : NULL, 0};
    enum as_code arc = kpi_load(&cli->app, argv[optind], &k, &err);
    if (!arc)
        arc = kpi_eval(&cli->app, k, time_now_ms(), NULL, rows ? eval_print_row : NULL, &ep, &res,
                       &err);
    if (!arc && record)
        arc = kpi_record(&cli->app, k, &res, &err);
    if (arc) {
        rc = cli_error(cli_exit_for(arc), "kpi", "%s", err.msg);
        goto out;
    }
    if (cli->json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "name", k->name, "value",
                              (json_int_t)res.value, "exempt", (json_int_t)res.exempt, "scanned",
                              (json_int_t)res.scanned, "ts", (json_int_t)res.ts, "recorded", record);
        if (res.breakdown)
            json_object_set(o, "breakdown", res.breakdown);
        if (rows)
            json_object_set(o, "rows", ep.rows);
        cli_print_json("kpi", o);
        json_decref(o);
    } else {
        if (rows && ep.printed)
            printf("\n");
        printf("%s = %lld  (%lld exempt, %lld rows read)%s\n", k->name, (long long)res.value,
               (long long)res.exempt, (long long)res.scanned, record ? "" : " [not recorded]");
        if (res.breakdown) {
            const char *key;
            json_t *v;
            json_object_foreach(res.breakdown, key, v)
            {
                printf("  %-32s %lld\n", key, (long long)json_integer_value(v));
            }
        }
    }
out:
    json_decref(ep.rows);
    kpi_result_clear(&res);
    kpi_free(k);
    return rc;
}

int cmd_kpi(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        kpi_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    if (cli_wants_help(argc, argv)) {
        kpi_usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(sub, "create") == 0)
        return kpi_create(cli, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return kpi_list(cli);
    if (strcmp(sub, "show") == 0)
        return kpi_show(cli, argc - 1, argv + 1);
    if (strcmp(sub, "eval") == 0)
        return kpi_eval_cmd(cli, argc - 1, argv + 1);
    if (strcmp(sub, "delete") == 0) {
        if (argc != 3)
            return cli_error(EXIT_USAGE, "kpi", "delete needs exactly one NAME");
        int rc = cli_open_db(cli);
        if (rc)
            return rc;
        struct as_err err = {0};
        enum as_code arc = db_kpi_delete(cli->app.db, argv[2], &err);
        if (arc)
            return cli_error(cli_exit_for(arc), "kpi", "%s", err.msg);
        if (!cli->json)
            printf("KPI %s deleted with its history\n", argv[2]);
        return EXIT_OK;
    }
    fprintf(stderr, "assent kpi: unknown subcommand \"%s\"\n\n", sub);
    kpi_usage(stderr);
    return EXIT_USAGE;
}

/* ---- assent exception ---- */

static void exception_usage(FILE *f)
{
    fprintf(f,
            "usage: assent exception add --user UPN --protocols LIST --reason TEXT --granted-by WHO\n"
            "                            [--expires P90D|DATE]\n"
            "       assent exception list [--expired|--removed|--all] [--user UPN]\n"
            "       assent exception remove ID --reason TEXT [--by WHO]\n"
            "\n"
            "An exception exempts a user from some legacy protocols (pop, imap, smtp,\n"
            "activesync, ews, or all) until it expires (default 90 days): KPIs and triggers\n"
            "leave the user out for those protocols.  Expired exceptions stop applying by\n"
            "themselves; removed ones are kept for the record (`list --removed`).\n"
            "--granted-by is the address of whoever decided.  Adding and removing go into\n"
            "the audit chain (events exception.added / exception.removed).\n");
}

/* name@domain.tld: one '@', something before it, a dot after it, no spaces. */
static int address_like(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == ',' || *p == '<' || *p == '>')
            return 0;
    return at[1] != '.' && s[strlen(s) - 1] != '.';
}

/* Warn (stderr) when the last sync does not know the user: a typo exempts nobody. */
static void warn_unknown_user(struct cli *cli, const char *user)
{
    struct as_err err = {0};
    json_t *row = NULL;
    enum as_code rc = db_tenant_user_row(cli->app.db, user, &row, &err);
    if (rc == AS_ENOTFOUND || (!rc && !row))
        fprintf(stderr,
                "assent exception: warning: %s is not in the last tenant sync (a typo, or a "
                "user created since?); the exception is recorded anyway\n",
                user);
    json_decref(row);
}

static int exception_add(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, 0, 'u'},       {"protocols", required_argument, 0, 'p'},
        {"reason", required_argument, 0, 'r'},     {"granted-by", required_argument, 0, 'g'},
        {"expires", required_argument, 0, 'e'},    {0, 0, 0, 0},
    };
    const char *user = NULL, *protocols = NULL, *reason = NULL, *granted = NULL, *expires = "P90D";
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'p': protocols = optarg; break;
        case 'r': reason = optarg; break;
        case 'g': granted = optarg; break;
        case 'e': expires = optarg; break;
        default: exception_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_error(EXIT_USAGE, "exception", "unexpected argument \"%s\"", argv[optind]);
    if (!user || !*user || !strchr(user, '@'))
        return cli_error(EXIT_USAGE, "exception", "--user needs a user principal name (name@domain)");
    if (!protocols)
        return cli_error(EXIT_USAGE, "exception", "--protocols is required (e.g. pop,imap or all)");
    if (!reason || !*reason)
        return cli_error(EXIT_USAGE, "exception", "--reason is required: say why the user needs it");
    if (!granted || !*granted)
        return cli_error(EXIT_USAGE, "exception", "--granted-by is required: who decided");
    if (!address_like(granted))
        return cli_error(EXIT_USAGE, "exception",
                         "--granted-by \"%s\" is not an address: give the email address of "
                         "whoever decided (name@domain)", granted);
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    warn_unknown_user(cli, user);
    struct as_err err = {0};
    json_t *pj = json_string(protocols), *ex = NULL;
    enum as_code arc = kpi_exception_grant(&cli->app, user, pj, reason, granted, expires, "cli",
                                           time_now_ms(), &ex, &err);
    json_decref(pj);
    if (arc)
        return cli_error(arc == AS_EINVAL ? EXIT_USAGE : cli_exit_for(arc), "exception", "%s%s",
                         arc == AS_EINVAL ? "--" : "", err.msg);
    if (cli->json) {
        json_t *o = json_pack("{s:O, s:s, s:O, s:O}", "id", json_object_get(ex, "id"), "user",
                              user, "protocols", json_object_get(ex, "protocols"), "expires_at",
                              json_object_get(ex, "expires_at"));
        cli_print_json("kpi", o);
        json_decref(o);
    } else {
        char t[40];
        fmt_time(json_integer_value(json_object_get(ex, "expires_at")), t, sizeof t);
        printf("exception %lld: %s exempt from %s until %s\n",
               (long long)json_integer_value(json_object_get(ex, "id")), user, protocols, t);
    }
    json_decref(ex);
    return EXIT_OK;
}

static int exception_list(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"expired", no_argument, 0, 'e'}, {"removed", no_argument, 0, 'r'},
        {"all", no_argument, 0, 'a'},     {"user", required_argument, 0, 'u'},
        {"active", no_argument, 0, 'A'},  {0, 0, 0, 0},
    };
    enum db_exception_filter filter = DB_EXC_ACTIVE;
    const char *user = NULL;
    int c;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e': filter = DB_EXC_EXPIRED; break;
        case 'r': filter = DB_EXC_REMOVED; break;
        case 'a': filter = DB_EXC_ALL; break;
        case 'A': filter = DB_EXC_ACTIVE; break;
        case 'u': user = optarg; break;
        default: exception_usage(stderr); return EXIT_USAGE;
        }
    }
    int rc = cli_open_db(cli);
    if (rc)
        return rc;
    struct as_err err = {0};
    json_t *list = NULL;
    if (db_exception_list(cli->app.db, filter, user, time_now_ms(), &list, &err) != AS_OK)
        return cli_error(EXIT_DB, "exception", "%s", err.msg);
    if (cli->json) {
        cli_print_json("kpi", list);
        json_decref(list);
        return EXIT_OK;
    }
    if (!json_array_size(list)) {
        printf("no %sexceptions\n", filter == DB_EXC_ACTIVE ? "active " : filter == DB_EXC_EXPIRED
                                                                  ? "expired "
                                                                  : filter == DB_EXC_REMOVED ? "removed " : "");
        json_decref(list);
        return EXIT_OK;
    }
    printf("%-5s %-32s %-22s %-8s %-21s %-20s %s\n", "ID", "USER", "PROTOCOLS", "STATE", "EXPIRES",
           "GRANTED BY", "REASON");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        char protos[128], t[40];
        join_array(json_object_get(e, "protocols"), protos, sizeof protos);
        fmt_time(json_integer_value(json_object_get(e, "expires_at")), t, sizeof t);
        printf("%-5lld %-32s %-22s %-8s %-21s %-20s %s\n",
               (long long)json_integer_value(json_object_get(e, "id")),
               json_string_value(json_object_get(e, "upn")), protos,
               json_string_value(json_object_get(e, "state")), t,
               json_string_value(json_object_get(e, "granted_by")),
               json_string_value(json_object_get(e, "reason")));
    }
    json_decref(list);
    return EXIT_OK;
}

int cmd_exception(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        exception_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (cli_wants_help(argc, argv)) {
        exception_usage(stdout);
        return EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") == 0)
        return exception_add(cli, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return exception_list(cli, argc - 1, argv + 1);
    if (strcmp(sub, "remove") == 0) {
        static const struct option opts[] = {{"by", required_argument, 0, 'b'},
                                             {"reason", required_argument, 0, 'r'},
                                             {0, 0, 0, 0}};
        const char *by = NULL, *reason = NULL;
        int c, sub_argc = argc - 1;
        char **sub_argv = argv + 1;
        getopt_reset();
        while ((c = getopt_long(sub_argc, sub_argv, "", opts, NULL)) != -1) {
            if (c == 'b')
                by = optarg;
            else if (c == 'r')
                reason = optarg;
            else {
                exception_usage(stderr);
                return EXIT_USAGE;
            }
        }
        if (sub_argc - optind != 1)
            return cli_error(EXIT_USAGE, "exception", "remove needs exactly one ID");
        if (!reason || !*reason)
            return cli_error(EXIT_USAGE, "exception",
                             "remove needs --reason: say why the exception is no longer needed");
        char *end;
        const char *idtext = sub_argv[optind];
        long long id = strtoll(idtext, &end, 10);
        if (*end || end == idtext || id <= 0)
            return cli_error(EXIT_USAGE, "exception", "remove needs a numeric ID (see `exception list`)");
        int rc = cli_open_db(cli);
        if (rc)
            return rc;
        struct as_err err = {0};
        const char *who = by ? by : getenv("USER");
        enum as_code arc =
            db_exception_remove(cli->app.db, id, who ? who : "cli", reason, time_now_ms(), &err);
        if (arc)
            return cli_error(cli_exit_for(arc), "exception", "%s", err.msg);
        if (!cli->json)
            printf("exception %lld removed\n", id);
        return EXIT_OK;
    }
    fprintf(stderr, "assent exception: unknown subcommand \"%s\"\n\n", sub);
    exception_usage(stderr);
    return EXIT_USAGE;
}

/* ---- assent trigger ---- */

static void trigger_usage(FILE *f)
{
    fprintf(f,
            "usage: assent trigger WORKFLOW --kpi NAME [--dry-run] [--dry-run-runs]\n"
            "                      [--input JSON] [--max-open N] [--batch N] [--quiet]\n"
            "                      [--allow-stale] [--keep-superseded]\n"
            "\n"
            "Evaluate KPI NAME and start one run of WORKFLOW (a file) per row found, with\n"
            "input mapped from the row (\"user\"/\"upn\" and the row's columns the workflow\n"
            "declares) plus --input (values may use ${row.x}).  Each run's dedupe key is\n"
            "\"<workflow>:<upn>\": users who have an open run of the workflow are skipped,\n"
            "so triggering twice starts nothing twice.  Runs execute under `assent serve`\n"
            "(or `assent worker`).\n"
            "\n"
            "  --dry-run       start nothing: list the runs that would start, with inputs,\n"
            "                  their approvers and the first email the first one sends\n"
            "  --dry-run-runs  start the runs in dry-run mode (side-effecting steps record\n"
            "                  what they would do without acting)\n"
            "  --input JSON    extra input for every run (overrides the KPI's trigger.input)\n"
            "  --max-open N    keep at most N runs of the workflow open (default: the KPI's\n"
            "                  trigger.max_open, else no limit)\n"
            "  --batch N       runs per database transaction (default 500)\n"
            "  --quiet         print only the summary\n"
            "  --allow-stale   start runs even from a sync older than max_sync_age\n"
            "                  (default PT24H; without it such a trigger exits 3)\n"
            "  --keep-superseded  leave open runs whose user the KPI no longer finds\n"
            "                  (default: end them as superseded, unless the KPI says\n"
            "                  \"close_superseded\": false)\n");
}

struct trig_print {
    int quiet, json, preview;
    json_t *rows;
    long printed;
    const struct workflow *wf; /* --dry-run: to show the first email */
    int shown_email;
};

/* The first email step reachable from the start, following every branch in
 * order (NULL when none). */
static const json_t *first_email_step(const json_t *def)
{
    const json_t *steps = json_object_get(def, "steps");
    const char *queue[64];
    size_t head = 0, tail = 0;
    json_t *seen = json_object();
    const char *start = json_string_value(json_object_get(def, "start"));
    const json_t *found = NULL;
    if (start)
        queue[tail++] = start;
    while (head < tail && !found && seen) {
        const char *name = queue[head++];
        const json_t *st = json_object_get(steps, name);
        if (!st || json_object_get(seen, name))
            continue;
        json_object_set_new(seen, name, json_true());
        if (strcmp(json_string_value(json_object_get(st, "type")) ?: "", "email") == 0) {
            found = st;
            break;
        }
        const json_t *next = json_object_get(st, "next");
        if (json_is_string(next) && tail < 64) {
            queue[tail++] = json_string_value(next);
        } else if (json_is_object(next)) {
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)next, k, v) if (json_is_string(v) && tail < 64)
                queue[tail++] = json_string_value(v);
        }
    }
    json_decref(seen);
    return found;
}

/* --dry-run: the approvers of a run and the first email it would send.
 * References to steps that have not run yet read as null (so a template
 * like `a ? a : input.x` shows its fallback). */
static void preview_email(struct trig_print *tp, const json_t *input)
{
    const json_t *approvers = json_object_get(input, "approvers");
    char list[512];
    join_array(approvers, list, sizeof list);
    printf("             approvers: %s\n", json_array_size(approvers) ? list : "(none)");
    if (tp->shown_email || !tp->wf)
        return;
    tp->shown_email = 1;
    json_t *def = json_loads(tp->wf->canonical, 0, NULL);
    const json_t *st = first_email_step(def);
    json_t *scope = json_pack("{s:O, s:{}}", "input", input, "steps");
    json_t *params = NULL;
    struct as_err err = {0};
    if (!st) {
        printf("             (the workflow sends no email)\n");
    } else if (scope &&
               tmpl_resolve(json_object_get(st, "params"), scope, &params, &err) == AS_OK) {
        char to[512];
        join_array(json_object_get(params, "to"), to, sizeof to);
        printf("\n--- first email (of the first run) ---\nTo: %s\nSubject: %s\n\n%s\n"
               "--- end of email ---\n\n",
               to, json_string_value(json_object_get(params, "subject")) ?: "",
               json_string_value(json_object_get(params, "text")) ?: "(HTML or template file)");
    } else {
        printf("             (first email: %s)\n", err.msg);
    }
    json_decref(params);
    json_decref(scope);
    json_decref(def);
}

static void trigger_print_row(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                              int64_t run_id, const char *why)
{
    struct trig_print *tp = ud;
    if (tp->json) {
        if (json_array_size(tp->rows) < 1000)
            json_array_append_new(tp->rows,
                                  trigger_row_json(upn, input, what, run_id, why, tp->preview));
        return;
    }
    if (tp->quiet || (!tp->preview && what != TRIGGER_INVALID && tp->printed >= 50))
        return;
    tp->printed++;
    if (what == TRIGGER_WOULD_START) {
        char *in = json_dumps(input, JSON_COMPACT | JSON_SORT_KEYS);
        printf("would start  %-36s %s\n", upn, in ? in : "");
        free(in);
        preview_email(tp, input);
    } else if (what == TRIGGER_SUPERSEDED || what == TRIGGER_WOULD_SUPERSEDE) {
        printf("%-12s %-36s run %lld: %s\n", what == TRIGGER_SUPERSEDED ? "superseded" : "would end",
               upn, (long long)run_id, why ? why : "");
    } else if (what == TRIGGER_INVALID) {
        printf("invalid      %-36s %s\n", upn, why ? why : "");
    } else if (run_id) {
        printf("%-12s %-36s run %lld\n", trigger_what_name(what), upn, (long long)run_id);
    } else {
        printf("%-12s %s\n", trigger_what_name(what), upn);
    }
}

int cmd_trigger(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kpi", required_argument, 0, 'k'},   {"dry-run", no_argument, 0, 'd'},
        {"dry-run-runs", no_argument, 0, 'D'}, {"input", required_argument, 0, 'i'},
        {"max-open", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
        {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
        {"allow-stale", no_argument, 0, 'S'}, {"keep-superseded", no_argument, 0, 'K'},
        {0, 0, 0, 0},
    };
    const char *kpi_name = NULL, *input = NULL;
    int preview = 0, dry_runs = 0, quiet = 0, allow_stale = 0, keep = 0, c;
    long long max_open = -1, batch = 0;
    getopt_reset();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'k': kpi_name = optarg; break;
        case 'd': preview = 1; break;
        case 'D': dry_runs = 1; break;
        case 'i': input = optarg; break;
        case 'q': quiet = 1; break;
        case 'S': allow_stale = 1; break;
        case 'K': keep = 1; break;
        case 'h': trigger_usage(stdout); return EXIT_OK;
        case 'm':
            max_open = strtoll(optarg, &end, 10);
            if (*end || end == optarg || max_open < 0)
                return cli_error(EXIT_USAGE, "trigger", "--max-open must be a whole number >= 0");
            break;
        case 'b':
            batch = strtoll(optarg, &end, 10);
            if (*end || end == optarg || batch < 1 || batch > 10000)
                return cli_error(EXIT_USAGE, "trigger", "--batch must be from 1 to 10000");
            break;
        default: trigger_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !kpi_name) {
        trigger_usage(stderr);
        return EXIT_USAGE;
    }
    const char *wf_path = argv[optind];
    json_t *input_map = NULL;
    if (input) {
        json_error_t jerr;
        input_map = json_loads(input, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(input_map)) {
            json_decref(input_map);
            return cli_error(EXIT_USAGE, "trigger", "--input must be a JSON object%s%s",
                             input_map ? "" : ": ", input_map ? "" : jerr.text);
        }
    }
    int rc = cli_open_db(cli);
    if (rc) {
        json_decref(input_map);
        return rc;
    }
    struct as_err err = {0};
    struct kpi *k = NULL;
    struct trig_print tp = {quiet, cli->json, preview, cli->json ? json_array() : NULL, 0, NULL, 0};
    struct workflow *pwf = NULL;
    if (preview && !cli->json && !quiet) {
        struct diag_list diags = {0};
        if (wf_load_file(wf_path, &pwf, &diags, &err) != AS_OK)
            pwf = NULL; /* trigger_kpi reports the workflow's errors */
        diag_free(&diags);
        tp.wf = pwf;
    }
    struct trigger_opts o = {
        .workflow_path = wf_path,
        .input_map = input_map,
        .max_open = max_open,
        .preview = preview,
        .dry_run = dry_runs,
        .trigger = "cli",
        .record_value = 1,
        .batch = (size_t)batch,
        .on_row = trigger_print_row,
        .ud = &tp,
        .allow_stale = allow_stale,
        .keep_superseded = keep,
    };
    struct trigger_stats st;
    enum as_code arc = kpi_load(&cli->app, kpi_name, &k, &err);
    if (!arc)
        arc = trigger_kpi(&cli->app, k, time_now_ms(), &o, &st, &err);
    if (arc) {
        rc = cli_error(cli_exit_for(arc), "trigger", "%s", err.msg);
        goto out;
    }
    if (cli->json) {
        json_t *o2 = trigger_stats_json(&st);
        json_object_set_new(o2, "preview", json_boolean(preview));
        json_object_set(o2, "rows_detail", tp.rows);
        cli_print_json("kpi", o2);
        json_decref(o2);
    } else {
        if (tp.printed)
            printf("\n");
        if (preview)
            printf("%s: %lld row(s); would start %lld run(s) of %s and end %lld superseded "
                   "(nothing started: --dry-run)\n",
                   k->name, (long long)st.rows, (long long)st.started, wf_path,
                   (long long)st.superseded);
        else
            printf("%s: %lld row(s); started %lld run(s)%s, %lld already open, %lld deferred "
                   "(max open), %lld invalid; %lld user(s) exempt; %lld superseded\n",
                   k->name, (long long)st.rows, (long long)st.started,
                   dry_runs ? " in dry-run mode" : "", (long long)st.duplicates,
                   (long long)st.deferred, (long long)st.invalid, (long long)st.exempt,
                   (long long)st.superseded);
        if (!preview && st.started && !cli->app.engine)
            printf("runs execute under `assent serve` (or `assent worker`)\n");
    }
    if (st.invalid)
        rc = EXIT_FAIL;
out:
    json_decref(tp.rows);
    json_decref(input_map);
    wf_free(pwf);
    kpi_free(k);
    return rc;
}
