/*
 * cmd_web.c - `assent serve` (engine workers + scheduler + web server),
 * `assent approvals` (list pending approvals) and `assent decide` (an
 * administrator's decision from the terminal, recorded as such).
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "approvals/approval_decide.h"
#include "db/db_approvals.h"
#include "base/config.h"
#include "engine/engine.h"
#include "base/log.h"
#include "engine/run_title.h"
#include "m365/scheduler.h"
#include "base/timeutil.h"
#include "steps/mail.h"
#include "approvals/approval_render.h"
#include "web/approval_pages.h"
#include "web/server.h"
#include "approvals/token.h"

/* ---- assent serve ------------------------------------------------------------ */

/*
 * The KPI scheduler's place in `assent serve` (config `scheduler`): it
 * starts after the engine (it submits runs) and stops before it.
 */
static int serve_scheduler_start(struct cli *cli, struct as_err *err)
{
    return scheduler_start(&cli->app, err) == AS_OK ? 0 : -1;
}

static void serve_scheduler_stop(struct cli *cli)
{
    (void)cli;
    scheduler_stop();
}

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: assent serve [--listen ADDRESS:PORT] [--public-url URL]\n\n"
               "Run the engine's workers, the KPI scheduler and the web server (approval pages,\n"
               "REST API, /metrics, /healthz) until SIGTERM or SIGINT.\n"
               "  --listen       overrides config listen (ASSENT_LISTEN), e.g. 127.0.0.1:8080\n"
               "  --public-url   overrides config public_url (ASSENT_PUBLIC_URL): the base of\n"
               "                 every link in emails, e.g. https://assent.example.org\n");
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
    struct as_err err = {0};
    struct engine *engine = NULL;
    struct web_server *ws = NULL;
    int rc = EXIT_OK;
    if (cli_wants_help(argc, argv)) {
        serve_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        const char *key = NULL;
        if (strcmp(argv[i], "--listen") == 0)
            key = "listen";
        else if (strcmp(argv[i], "--public-url") == 0)
            key = "public_url";
        if (!key || i + 1 >= argc) {
            serve_usage(stderr);
            return EXIT_USAGE;
        }
        if (config_set(cli->app.cfg, key, argv[++i], &err) != AS_OK)
            return cli_error(EXIT_CONFIG, "serve", "%s", err.msg);
    }
    /* Approval steps mail their approvers: refuse to start if that would fail. */
    if (mail_config_check(cli->app.cfg, &err) != AS_OK)
        return cli_error(EXIT_CONFIG, "serve", "bad mail configuration: %s", err.msg);
    int db_rc = cli_open_db(cli);
    if (db_rc)
        return db_rc;

    /* Threads inherit the signal mask: block first, then wait in sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (engine_start(&cli->app, (int)config_int(cli->app.cfg, "workers"), &engine, &err) != AS_OK)
        return cli_error(EXIT_FAIL, "serve", "cannot start the engine: %s", err.msg);
    int scheduler_on = config_bool(cli->app.cfg, "scheduler");
    if (scheduler_on && serve_scheduler_start(cli, &err) != 0) {
        rc = cli_error(EXIT_FAIL, "serve", "cannot start the scheduler: %s", err.msg);
        goto out;
    }
    if (web_server_start(&cli->app, &ws, &err) != AS_OK) {
        rc = cli_error(err.code == AS_EINVAL ? EXIT_CONFIG : EXIT_FAIL, "serve", "%s", err.msg);
        goto out;
    }
    LOG_INFO("serve", "ready (pid %d)", (int)getpid());

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    LOG_INFO("serve", "signal %d: shutting down", sig);
out:;
    int64_t grace = config_int(cli->app.cfg, "shutdown_grace_seconds") * 1000;
    web_server_stop(ws, (int)(grace < 5000 ? grace : 5000));
    if (scheduler_on)
        serve_scheduler_stop(cli);
    if (engine_stop(engine, grace) == AS_ETIMEOUT)
        LOG_WARN("serve", "steps still running after %lld ms keep their lease and run again "
                          "on the next start", (long long)grace);
    return rc;
}

/* ---- assent approvals -------------------------------------------------------- */

static void approvals_usage(FILE *f)
{
    fprintf(f, "usage: assent approvals [--all] [--status S] [--limit N] [--json]\n\n"
               "List approvers still asked (approval pending, run open), newest first, each\n"
               "with whom the run is about (the workflow's title, else the input's user).\n"
               "  --all       every approver of every approval, with its status\n"
               "  --status S  every approver of the approvals with status S: pending, approved,\n"
               "              rejected, expired or withdrawn (still pending when its run ended)\n");
}

int cmd_approvals(struct cli *cli, int argc, char **argv)
{
    struct as_err err = {0};
    struct db_approvals_filter f = {.limit = 200};
    long limit = 200;
    if (cli_wants_help(argc, argv)) {
        approvals_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            f.all = 1;
        } else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc) {
            f.status = argv[++i];
            if (!db_approvals_status_known(f.status))
                return cli_error(EXIT_USAGE, "approvals", "--status must be pending, approved, "
                                 "rejected, expired or withdrawn, not \"%s\"", f.status);
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            limit = strtol(argv[++i], &end, 10);
            if (errno || *end || limit < 1 || limit > 100000) {
                approvals_usage(stderr);
                return EXIT_USAGE;
            }
            f.limit = (int)limit;
        } else {
            approvals_usage(stderr);
            return EXIT_USAGE;
        }
    }
    int all = f.all || f.status;
    int db_rc = cli_open_db(cli);
    if (db_rc)
        return db_rc;
    json_t *list = NULL;
    if (db_approvals_list_where(cli->app.db, &f, &list, &err) != AS_OK ||
        run_titles_annotate(cli->app.db, list, &err) != AS_OK) {
        json_decref(list);
        return cli_error(EXIT_DB, "approvals", "%s", err.msg);
    }
    if (cli->json) {
        cli_print_json("approvals", list);
        json_decref(list);
        return EXIT_OK;
    }
    if (json_array_size(list) == 0) {
        printf(f.status ? "no %s approvals\n" : all ? "no approvals\n" : "no pending approvals\n",
               f.status);
        json_decref(list);
        return EXIT_OK;
    }
    /* Whom each is about: the title, else the user; a column only when
     * some row has one. */
    size_t i;
    json_t *row;
    int width = 0;
    json_array_foreach(list, i, row)
    {
        const json_t *title = json_object_get(row, "title");
        const json_t *label = json_is_string(title) ? title : json_object_get(row, "user");
        int n = json_is_string(label) ? (int)json_string_length(label) : 0;
        if (n > width)
            width = n;
    }
    printf("%-6s %-6s %-18s %-30s %-20s %-20s", "ID", "RUN", "STEP", "APPROVER", "ASKED", "EXPIRES");
    /* USER is padded only when STATUS follows it. */
    if (width)
        printf(" %-*s", all ? width : 0, "USER");
    printf("%s\n", all ? " STATUS" : "");
    json_array_foreach(list, i, row)
    {
        char asked[48] = "(not yet)", expires[48];
        long long asked_at = json_integer_value(json_object_get(row, "asked_at"));
        if (asked_at)
            approval_format_time(asked_at, asked, sizeof asked);
        approval_format_time(json_integer_value(json_object_get(row, "expires_at")), expires,
                             sizeof expires);
        printf("%-6lld %-6lld %-18s %-30s %-20s %-20s",
               (long long)json_integer_value(json_object_get(row, "approval_id")),
               (long long)json_integer_value(json_object_get(row, "run_id")),
               json_string_value(json_object_get(row, "step")),
               json_string_value(json_object_get(row, "approver")), asked, expires);
        if (width) {
            const json_t *title = json_object_get(row, "title");
            const json_t *label = json_is_string(title) ? title : json_object_get(row, "user");
            printf(" %-*s", all ? width : 0, json_is_string(label) ? json_string_value(label) : "");
        }
        if (all)
            printf(" %s/%s (run %s)", json_string_value(json_object_get(row, "status")),
                   json_string_value(json_object_get(row, "approver_status")),
                   json_string_value(json_object_get(row, "run_status")));
        printf("\n");
    }
    json_decref(list);
    return EXIT_OK;
}

/* ---- assent decide ------------------------------------------------------------ */

static void decide_usage(FILE *f)
{
    fprintf(f, "usage: assent decide TOKEN_OR_ID approve|reject [--comment TEXT] [--as NAME]\n\n"
               "Record a decision from the terminal (decided_via \"cli\", by your OS user, or\n"
               "\"NAME (OS user ...)\" with --as NAME), through the same checks as the web page.\n"
               "Anyone who can write the database can decide: keep it readable by Assent's\n"
               "operators only.\n"
               "  TOKEN   a link token (or the whole link): answer as that link's approver\n"
               "  ID      an approval id from `assent approvals`: decide the whole approval\n"
               "          as an administrator, whatever its policy\n");
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

int cmd_decide(struct cli *cli, int argc, char **argv)
{
    struct as_err err = {0};
    const char *target = NULL, *decision = NULL, *comment = NULL, *as = NULL;
    if (cli_wants_help(argc, argv)) {
        decide_usage(stdout);
        return EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--comment") == 0 && i + 1 < argc) {
            comment = argv[++i];
        } else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
            as = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            decide_usage(stderr);
            return EXIT_USAGE;
        } else if (!target) {
            target = argv[i];
        } else if (!decision) {
            decision = argv[i];
        } else {
            decide_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!target || !decision || (strcmp(decision, "approve") && strcmp(decision, "reject"))) {
        decide_usage(stderr);
        return EXIT_USAGE;
    }

    struct approval_decision d = {.decision = decision, .comment = comment, .via = "cli",
                                  .now = time_now_ms()};
    char hash[TOKEN_HASH_LEN + 1];
    const char *slash = strstr(target, "/a/");
    const char *token = slash ? slash + 3 : target;
    if (all_digits(target)) {
        char *end;
        errno = 0;
        d.approval_id = strtoll(target, &end, 10);
        if (errno || d.approval_id <= 0)
            return cli_error(EXIT_USAGE, "decide", "bad approval id %s", target);
    } else if (token_well_formed(token)) {
        token_hash(token, hash);
        d.token_hash = hash;
    } else {
        return cli_error(EXIT_USAGE, "decide", "neither an approval id nor a link token");
    }

    /* The OS user is always recorded: --as names who answered (e.g. an approver
     * on the phone), it cannot hide who typed the command. */
    char os_user[64], user[256];
    cli_os_user(os_user, sizeof os_user);
    if (as && *as)
        snprintf(user, sizeof user, "%.160s (OS user %s)", as, os_user);
    else
        snprintf(user, sizeof user, "%s", os_user);
    d.actor = user;

    int db_rc = cli_open_db(cli);
    if (db_rc)
        return db_rc;
    struct approval_decision_result res;
    enum as_code rc = approval_decide(cli->app.db, &d, &res, &err);
    if (rc) {
        int code = rc == AS_ENOTFOUND ? EXIT_NOTFOUND
                   : rc == AS_EDB     ? EXIT_DB
                                      : EXIT_FAIL;
        return cli_error(code, "decide", "%s", err.msg);
    }
    LOG_INFO("approval", "approval %lld: %s chose %s from the terminal (now %s)",
             (long long)res.approval_id, user, decision, res.status);
    if (cli->json) {
        json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:b}", "approval_id",
                              (json_int_t)res.approval_id, "run_id", (json_int_t)res.run_id,
                              "decision", decision, "status", res.status, "decided_by", user,
                              "resumed", res.resumed);
        cli_print_json("decide", o);
        json_decref(o);
    } else {
        printf("approval %lld: %s recorded as %s (via cli); approval is now %s\n",
               (long long)res.approval_id, decision, user, res.status);
    }
    return EXIT_OK;
}
