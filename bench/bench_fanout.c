/*
 * bench_fanout.c - how fast a KPI over N synced users starts N workflow
 * runs, and whether memory stays flat while it does.
 *
 *   build/bench/bench_fanout [N] [--sync FULL|NORMAL] [--batch B] [--dir DIR]
 *
 * Set-up (not timed): a fresh database under DIR (default a temporary
 * directory, removed afterwards) with N users in the tenant tables as
 * `assent sync` leaves them, every one with POP enabled, and the KPI
 * "pop" (pop_enabled).  Timed: trigger_kpi() of a one-step workflow over
 * that KPI, as `assent trigger` and the scheduler do it: stream the rows
 * from SQLite, judge each, map it to a run input and submit runs in
 * batches through engine_submit_runs().  Then the same again, which must
 * start nothing (every user has an open run: dedupe).
 *
 * Prints runs/s and the process's resident memory before, at its peak
 * during, and after the fan-out (sampled every 1,000 rows).  Flat memory
 * means the peak does not grow with N: compare N = 10000 and 100000.
 */
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_kpi.h"
#include "db/db_tenant.h"
#include "engine/app.h"
#include "base/config.h"
#include "m365/kpi.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "m365/trigger.h"
#include "cli/cli.h"

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct sampler {
    long peak;
    long n;
};

static void sample(void *ud, const char *upn, const json_t *input, enum trigger_what what,
                   int64_t run_id, const char *why)
{
    struct sampler *s = ud;
    if (++s->n % 1000 == 0) {
        long r = rss_kib();
        if (r > s->peak)
            s->peak = r;
    }
}

static int populate(struct db *db, long n, struct as_err *err)
{
    int64_t sync_id = 0, now = time_now_ms();
    if (db_tenant_sync_start(db, now, &sync_id, err) != AS_OK)
        return -1;
    for (long i = 0; i < n;) {
        struct db_conn *c;
        enum as_code rc = db_write_begin(db, &c, err);
        if (rc != AS_OK)
            return -1;
        for (long j = 0; j < 5000 && i < n && !rc; j++, i++) {
            char id[64], upn[64];
            snprintf(id, sizeof id, "00000000-0000-0000-0000-%012ld", i);
            snprintf(upn, sizeof upn, "user%06ld@bench.example", i);
            json_t *u = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "userPrincipalName", upn,
                                  "displayName", upn, "mail", upn, "accountEnabled", 1);
            json_t *m = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:b}",
                                  "ExternalDirectoryObjectId", id, "PrimarySmtpAddress", upn,
                                  "Identity", upn, "ActiveSyncEnabled", 1, "OWAEnabled", 1,
                                  "PopEnabled", 1, "ImapEnabled", (int)(i % 2), "MAPIEnabled", 1,
                                  "EwsEnabled", 1, "SmtpClientAuthenticationDisabled", 1);
            int matched = 0;
            rc = db_tenant_user_put(c, sync_id, now, u, err);
            if (!rc)
                rc = db_tenant_cas_put(c, sync_id, now, m, &matched, err);
            json_decref(u);
            json_decref(m);
        }
        if (db_write_end(db, rc, err) != AS_OK)
            return -1;
    }
    json_t *summary = json_object();
    int rc = db_tenant_sync_finish(db, sync_id, time_now_ms(), "ok", summary, NULL, err) == AS_OK ? 0 : -1;
    json_decref(summary);
    return rc;
}

static const char *workflow_text =
    "{\"name\": \"fanout\", \"version\": \"1\",\n"
    " \"input\": {\"user\": {\"type\": \"string\", \"required\": true},\n"
    "           \"display_name\": {\"type\": \"string\"},\n"
    "           \"pop_enabled\": {\"type\": \"boolean\"},\n"
    "           \"imap_enabled\": {\"type\": \"boolean\"}},\n"
    " \"steps\": {\"note\": {\"type\": \"log\", \"params\": {\"message\": \"${input.user}\"}}}}\n";

/* nftw callback: remove one entry of the temporary directory (no shell). */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    cli_register_types();
    long n = 100000, batch = 500;
    const char *sync = "NORMAL", *dir_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc)
            sync = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir_arg = argv[++i];
        else if (argv[i][0] != '-')
            n = strtol(argv[i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_fanout [N] [--sync FULL|NORMAL] [--batch B] [--dir DIR]\n");
            return 2;
        }
    }
    if (n < 1 || batch < 1 || batch > 10000) {
        fprintf(stderr, "bench_fanout: N >= 1 and 1 <= B <= 10000\n");
        return 2;
    }
    log_init(LOG_LVL_WARN, LOG_FMT_TEXT);
    json_object_seed(0);
    char tmpl[] = "/tmp/assent-fanout-XXXXXX";
    const char *dir = dir_arg ? dir_arg : mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        return 1;
    }
    char dbpath[512], wfpath[512];
    snprintf(dbpath, sizeof dbpath, "%s/fanout.db", dir);
    snprintf(wfpath, sizeof wfpath, "%s/fanout.json", dir);
    struct as_err err = {0};
    struct app app = {.cfg = config_defaults()};
    struct kpi *k = NULL;
    int status = 1;
    FILE *wf = fopen(wfpath, "w");
    if (!wf || fputs(workflow_text, wf) < 0 || fclose(wf) != 0) {
        perror(wfpath);
        goto out;
    }
    if (db_open(dbpath, sync, &app.db, &err) != AS_OK)
        goto fail;
    int64_t t0 = time_mono_ms();
    if (populate(app.db, n, &err))
        goto fail;
    printf("set-up: %ld users synced in %.1f s\n", n, (time_mono_ms() - t0) / 1000.0);
    const char *def = "{\"name\":\"pop\",\"report\":\"users\",\"filter\":\"pop_enabled\","
                      "\"protocols\":[\"pop\"]}";
    int64_t kid = 0;
    if (db_kpi_put(app.db, "pop", "users", def, NULL, NULL, 0, time_now_ms(), &kid, &err) != AS_OK ||
        kpi_load(&app, "pop", &k, &err) != AS_OK)
        goto fail;

    struct sampler s = {rss_kib(), 0};
    long before = s.peak;
    struct trigger_opts o = {.workflow_path = wfpath, .max_open = 0, .trigger = "bench",
                             .record_value = 1, .batch = (size_t)batch, .on_row = sample, .ud = &s};
    struct trigger_stats st;
    t0 = time_mono_ms();
    if (trigger_kpi(&app, k, time_now_ms(), &o, &st, &err) != AS_OK)
        goto fail;
    double secs = (time_mono_ms() - t0) / 1000.0;
    long after = rss_kib();
    printf("fan-out: %lld rows -> %lld runs started in %.2f s = %.0f runs/s "
           "(synchronous=%s, batch %ld)\n",
           (long long)st.rows, (long long)st.started, secs, secs > 0 ? st.started / secs : 0.0,
           sync, batch);
    printf("memory:  RSS before %ld KiB, peak during %ld KiB (+%ld), after %ld KiB\n", before,
           s.peak, s.peak - before, after);
    if (st.started != n) {
        fprintf(stderr, "bench_fanout: expected %ld runs, started %lld\n", n, (long long)st.started);
        goto out;
    }
    s.n = 0;
    t0 = time_mono_ms();
    if (trigger_kpi(&app, k, time_now_ms(), &o, &st, &err) != AS_OK)
        goto fail;
    secs = (time_mono_ms() - t0) / 1000.0;
    printf("again:   %lld rows -> %lld started, %lld already open (dedupe) in %.2f s\n",
           (long long)st.rows, (long long)st.started, (long long)st.duplicates, secs);
    if (st.started != 0 || st.duplicates != n) {
        fprintf(stderr, "bench_fanout: the second trigger must start nothing\n");
        goto out;
    }
    status = 0;
    goto out;
fail:
    fprintf(stderr, "bench_fanout: %s\n", err.msg);
out:
    kpi_free(k);
    db_close(app.db);
    config_free(app.cfg);
    if (!dir_arg && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "bench_fanout: could not remove %s\n", dir);
    return status;
}
