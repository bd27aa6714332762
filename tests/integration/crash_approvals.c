/*
 * crash_approvals.c - kill -9 the engine while it creates approvals and
 * mails their links, and check that every approver ends up with exactly
 * one email whose link works, and nothing else.
 *
 * A workflow with one approval step (three approvers, policy all) is
 * started for a few runs each round (in this process, through the store),
 * then `assent worker` (file transport) is started and killed with SIGKILL
 * after a random 10-200 ms: before, inside and after the group commits
 * that record a new approval with its links and claims, and its sends
 * (approvals/step_approval.c), and while emails are written.  Finally a
 * worker runs until every approver of every run has been mailed.  Then,
 * exactly:
 *   - one approval per run, each step executed once (one execution each);
 *   - every approver marked mailed, every send recorded 'sent';
 *   - one email file per approver in the outbox (a crash re-send writes
 *     the same Message-ID, so it replaces the file rather than adding one),
 *     each addressed to its approver, whose link's token the store finds
 *     (by its hash) for that approver: the link works;
 *   - some kills interrupted claimed steps (step.recovered events);
 *   - `assent audit verify` finds the event chain intact.
 * ASSENT_CRASH_SEED reproduces a sequence; ASSENT_CRASH_ROUNDS changes its
 * length.
 */
#include "tests/testutil.h"

#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "approvals/token.h"
#include "db/db_approvals.h"
#include "db/db_events.h"
#include "db/db_mail.h"
#include "db/db_runs.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "engine/workflow.h"
#include "cli/cli.h"

static const char workflow[] =
    "{\"name\": \"ask-three\", \"version\": \"1\","
    " \"input\": {\"n\": {\"type\": \"integer\", \"required\": true}},"
    " \"steps\": {"
    "  \"ask\": {\"type\": \"approval\", \"params\": {"
    "     \"approvers\": [\"ann@example.org\", \"bob@example.org\", \"cy@example.org\"],"
    "     \"policy\": \"all\", \"subject\": \"Change ${input.n}\","
    "     \"message\": \"Approve change ${input.n}.\", \"expiry\": \"P7D\"},"
    "     \"next\": {\"approved\": \"done\", \"rejected\": \"done\", \"expired\": \"done\"}},"
    "  \"done\": {\"type\": \"log\", \"params\": {\"message\": \"decided ${input.n}\"}}"
    " }}";

static const char *const approvers[] = {"ann@example.org", "bob@example.org", "cy@example.org"};
#define N_APPROVERS 3
#define LINK_PREFIX "http://assent.test/a/"


static void submit(struct db *db, struct workflow *wf, int first, int count)
{
    struct app app = {.db = db};
    struct as_err err = {0};
    for (int i = 0; i < count; i++) {
        json_t *input = json_pack("{s:i}", "n", first + i);
        struct engine_run_req req = {.input = input};
        int64_t id = 0;
        TU_CHECK(engine_submit_runs(&app, wf, &req, 1, NULL, &id, NULL, NULL, &err) == AS_OK,
              "submit: %s", err.msg);
        json_decref(input);
    }
}

/* The store's approvals and their approvers not yet mailed. */
struct count {
    int64_t approvals, rows, unsent;
};

static int count_state(struct db *db, struct count *c)
{
    struct as_err err = {0};
    json_t *list = NULL;
    struct db_approvals_filter f = {.all = 1, .limit = 100000};
    memset(c, 0, sizeof *c);
    if (db_approvals_list_where(db, &f, &list, &err) != AS_OK) {
        fprintf(stderr, "list approvals: %s\n", err.msg);
        return -1;
    }
    size_t i;
    json_t *a;
    int64_t last = -1;
    json_array_foreach(list, i, a)
    {
        int64_t id = json_integer_value(json_object_get(a, "approval_id"));
        c->approvals += id != last;
        last = id;
        c->rows++;
        c->unsent += json_integer_value(json_object_get(a, "asked_at")) == 0;
    }
    json_decref(list);
    return 0;
}

/* The runs, and per run its executions: one each, of the approval step,
 * whose sends the mail log must hold as 'sent'. */
struct runs {
    int64_t *ids;
    size_t n, cap;
    int64_t execs, other_than_one, in_run, mail_not_sent, resent;
    struct db *db;
};

static int list_run(void *ud, const struct db_run_info *r)
{
    struct runs *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        int64_t *v = realloc(c->ids, c->cap * sizeof *v);
        if (!v)
            return 1;
        c->ids = v;
    }
    c->ids[c->n++] = r->id;
    return 0;
}

static int check_exec(void *ud, const struct db_exec_info *x)
{
    struct runs *c = ud;
    c->execs++;
    c->in_run++;
    for (int k = 0; k < N_APPROVERS; k++) {
        char key[600];
        json_t *row = NULL;
        struct as_err err = {0};
        snprintf(key, sizeof key, "%s/%s", x->idempotency_key, approvers[k]);
        if (db_mail_get(c->db, key, &row, &err) != AS_OK || !row ||
            strcmp(json_string_value(json_object_get(row, "state")), "sent") != 0) {
            fprintf(stderr, "the send of %s is not recorded 'sent'\n", key);
            c->mail_not_sent++;
        }
        /* Killed between claiming the send and recording it: sent again. */
        c->resent += json_integer_value(json_object_get(row, "resends")) > 0;
        json_decref(row);
    }
    return 0;
}

/* Every email in dir: its recipient's link must be found by its token's hash
 * for that very approver.  Returns the number of emails; *bad the tu_failures. */
static int check_emails(struct db *db, const char *dir, int *bad, int *tmp_left)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    *bad = *tmp_left = 0;
    while (d && (e = readdir(d))) {
        if (strstr(e->d_name, ".tmp")) {
            (*tmp_left)++; /* a write cut short by a kill: never renamed, never sent */
            continue;
        }
        if (!strstr(e->d_name, ".eml"))
            continue;
        n++;
        char *path = tu_path(dir, e->d_name);
        char *text = tu_read_file(path);
        free(path);
        const char *link = text ? strstr(text, LINK_PREFIX) : NULL;
        if (!link) {
            fprintf(stderr, "%s: no link\n", e->d_name);
            (*bad)++;
            free(text);
            continue;
        }
        char token[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
        snprintf(token, sizeof token, "%s", link + strlen(LINK_PREFIX));
        token_hash(token, hash);
        json_t *view = NULL;
        struct as_err err = {0};
        if (db_approvals_by_token(db, hash, &view, &err) != AS_OK) {
            fprintf(stderr, "%s: its link is not found: %s\n", e->d_name, err.msg);
            (*bad)++;
        } else {
            json_t *me = json_array_get(json_object_get(view, "approvers"),
                                        json_integer_value(json_object_get(view, "me")));
            char to[300];
            snprintf(to, sizeof to, "To: %s", json_string_value(json_object_get(me, "email")));
            if (!strstr(text, to)) {
                fprintf(stderr, "%s: its link belongs to another approver\n", e->d_name);
                (*bad)++;
            }
        }
        json_decref(view);
        free(text);
    }
    if (d)
        closedir(d);
    return n;
}

static int count_recovered(void *ud, const struct db_event_info *ev)
{
    *(int64_t *)ud += strcmp(ev->type, "step.recovered") == 0;
    return 0;
}

int main(void)
{
    cli_register_types();
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *s = getenv("ASSENT_CRASH_SEED");
    if (s)
        seed = (unsigned)strtoul(s, NULL, 10);
    int rounds = 24, per_round = 30; /* enough that a kill finds work in flight */
    if ((s = getenv("ASSENT_CRASH_ROUNDS")))
        rounds = (int)strtol(s, NULL, 10);
    srand(seed);
    printf("approval crash test: seed %u, %d rounds (ASSENT_CRASH_SEED=%u reproduces)\n", seed,
           rounds, seed);

    char *dir = tu_tmpdir("crashappr");
    char *db_path = tu_path(dir, "crash.db");
    char *mail_dir = tu_path(dir, "mail");
    char *log_path = tu_path(dir, "engine.log");
    struct as_err err = {0};
    struct db *db = NULL;
    struct workflow *wf = NULL;
    if (db_open(db_path, "NORMAL", &db, &err) != AS_OK ||
        wf_load_string(workflow, "ask-three", &wf, NULL, &err) != AS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    char env_db[4200], env_mail[4200];
    snprintf(env_db, sizeof env_db, "ASSENT_DB=%s", db_path);
    snprintf(env_mail, sizeof env_mail, "ASSENT_MAIL_DIR=%s", mail_dir);
    char *env[] = {env_db, env_mail, "ASSENT_MAIL_TRANSPORT=file",
                   "ASSENT_PUBLIC_URL=http://assent.test", "ASSENT_LOG_LEVEL=warn",
                   "ASSENT_WORKERS=4", "ASSENT_LEASE_SECONDS=2", "ASSENT_SCHEDULER=false",
                   NULL};
    char *bin = (char *)tu_assent_bin();
    char *worker[] = {bin, "worker", NULL};

    int n = 0, kills = 0;
    for (int r = 0; r < rounds; r++) {
        submit(db, wf, n, per_round);
        n += per_round;
        pid_t pid = tu_spawn(worker, env, log_path);
        TU_CHECK(pid > 0, "cannot start assent worker");
        tu_sleep_ms(10 + rand() % 190);
        int status = tu_stop(pid, SIGKILL);
        kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }

    /* The last worker mails what is left and a last batch, so that it
     * writes to the outbox (its first write there removes the temporary
     * files of the killed workers); it is done when nobody is left
     * unmailed (no deadline of ours: the test's own limit guards a hang). */
    submit(db, wf, n, per_round);
    n += per_round;
    pid_t pid = tu_spawn(worker, env, log_path);
    TU_CHECK(pid > 0, "cannot start assent worker");
    struct count c = {0};
    for (;;) {
        if (count_state(db, &c) != 0)
            return 1;
        if (c.approvals == n && c.rows == n * N_APPROVERS && c.unsent == 0)
            break;
        tu_sleep_ms(100);
    }
    tu_stop(pid, SIGTERM);

    TU_CHECK(c.approvals == n, "%" PRId64 " approvals for %d runs", c.approvals, n);
    TU_CHECK(c.unsent == 0, "%" PRId64 " approvers not mailed", c.unsent);

    /* One execution of the approval step per run, its sends recorded, and
     * some kills did interrupt a claimed one. */
    struct db_conn *conn = NULL;
    struct runs runs = {.db = db};
    int64_t recovered = 0;
    TU_CHECK(db_read_begin(db, &conn, &err) == AS_OK, "read: %s", err.msg);
    struct db_run_filter f = {.limit = 100000};
    TU_CHECK(db_runs_list(conn, &f, list_run, &runs, &err) == AS_OK, "runs: %s", err.msg);
    for (size_t i = 0; i < runs.n; i++) {
        runs.in_run = 0;
        TU_CHECK(db_run_execs(conn, runs.ids[i], check_exec, &runs, &err) == AS_OK, "execs: %s",
              err.msg);
        runs.other_than_one += runs.in_run != 1;
    }
    TU_CHECK(db_run_events(conn, 0, count_recovered, &recovered, &err) == AS_OK, "events: %s",
          err.msg);
    db_read_end(db, conn);
    TU_CHECK((int64_t)runs.n == n, "%zu runs for %d submitted", runs.n, n);
    TU_CHECK(runs.other_than_one == 0, "%" PRId64 " runs with other than one execution (%" PRId64
          " in all)", runs.other_than_one, runs.execs);
    TU_CHECK(runs.mail_not_sent == 0, "%" PRId64 " sends not recorded", runs.mail_not_sent);
    TU_CHECK(recovered > 0, "no kill interrupted a claimed step (%d kills)", kills);

    int bad = 0, tmp_left = 0;
    int emails = check_emails(db, mail_dir, &bad, &tmp_left);
    TU_CHECK(emails == n * N_APPROVERS, "%d emails for %d approvers", emails, n * N_APPROVERS);
    TU_CHECK(bad == 0, "%d emails whose link does not work for their approver", bad);
    TU_CHECK(tmp_left == 0, "%d temporary files of killed workers left in the outbox", tmp_left);

    char *audit[] = {bin, "audit", "verify", NULL};
    char *aout = NULL;
    int code = tu_run(audit, env, 60000, &aout, NULL);
    TU_CHECK(code == 0, "audit verify exited %d: %s", code, aout ? aout : "");
    free(aout);

    printf("approval crash test: %d rounds, %d kills, %d approvals x %d approvers, each "
           "mailed once with a working link; %" PRId64 " claims recovered from killed "
           "processes; %" PRId64 " emails re-sent after a kill between their claim and "
           "its record; %d temporary files left in the outbox\n",
           rounds, kills, n, N_APPROVERS, recovered, runs.resent, tmp_left);
    free(runs.ids);
    wf_free(wf);
    db_close(db);
    if (tu_failures) {
        fprintf(stderr, "%d check(s) failed; files kept in %s\n", tu_failures, dir);
        return 1;
    }
    tu_rmrf(dir);
    free(db_path);
    free(mail_dir);
    free(log_path);
    free(dir);
    return 0;
}
