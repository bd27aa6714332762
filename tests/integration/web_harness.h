/*
 * web_harness.h - what the web integration tests share: a real `assent
 * serve` started on a free port with a temporary database and the file mail
 * transport, runs submitted straight into its database, emails read back
 * from the mail directory, links and CSRF tokens taken out of emails and
 * pages, and a fingerprint of the database to prove that GETs change
 * nothing.
 */
#ifndef ASSENT_WEB_HARNESS_H
#define ASSENT_WEB_HARNESS_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/app.h"

struct wh_server {
    char *dir;
    char *db_path;      /* a SQLite file in dir, or a PostgreSQL URI (pg) */
    int pg;             /* wh_init_pg: a database of the tests' PostgreSQL server */
    char *mail_dir;
    char *log_path;
    char *admin_file;   /* NULL: no admin token */
    int port;
    char url[64];       /* http://127.0.0.1:PORT = public_url */
    pid_t pid;
    pid_t helper;       /* another process of the test (SMTP server), killed at cleanup */
    struct app app;     /* this test process's own view of the database */
    char extra_env[12][256]; /* "K=V" entries; they override the defaults */
    int n_extra_env;
};

/* Make the directories and pick a port (no process yet).  `tag` names the dir.
 * The database is assent.db in that directory, or with ASSENT_TEST_DB=pg
 * in the environment a database of the tests' PostgreSQL server (as
 * wh_init_pg), so that the same tests run on either backend. */
void wh_init(struct wh_server *s, const char *tag, int with_admin_token);

/* The same with the database on the tests' PostgreSQL server (a new one,
 * dropped by wh_cleanup; tu_pg_db_new), which `assent serve` is given as
 * its db setting. */
void wh_init_pg(struct wh_server *s, const char *tag, int with_admin_token);

/* Start `assent serve` (fake_offset_ms > 0 moves its clock forward). */
void wh_start(struct wh_server *s, long long fake_offset_ms);

/* Stop it with sig (SIGTERM: graceful, must exit 0; SIGKILL: a crash). */
void wh_stop(struct wh_server *s, int sig);

/* Kill (SIGKILL) if still running, close the database, remove everything.
 * Safe on a server never initialised. */
void wh_cleanup(struct wh_server *s);

/* cmocka fixtures: *state = a zeroed struct wh_server, cleaned up after the
 * test even when it fails half-way (no server is left running). */
int wh_setup(void **state);
int wh_teardown(void **state);

/* A workflow "web-test" of one approval step (then log steps per outcome).
 * NULL arguments leave the parameter out.  Caller frees. */
char *wh_workflow(const char *policy, const char *expiry, const char *reminder_every,
                  const char *escalate_to, int require_comment);

/* The status of the run's latest execution of `step` ("" if none), into buf. */
void wh_step_status(struct wh_server *s, int64_t run_id, const char *step, char *buf,
                    size_t size);

/* Submit a run of workflow_json with input (JSON text) into the server's
 * database; returns the run id. */
int64_t wh_submit(struct wh_server *s, const char *workflow_json, const char *input_json);

/* The run's status ("running", "waiting", "succeeded", ...) into buf. */
void wh_run_status(struct wh_server *s, int64_t run_id, char *buf, size_t size);

/* Wait up to timeout_ms for the run to reach `status`; 0 when it did. */
int wh_wait_run(struct wh_server *s, int64_t run_id, const char *status, int timeout_ms);

/* The outcome of the run's latest execution of `step` ("" if none), into buf. */
void wh_step_outcome(struct wh_server *s, int64_t run_id, const char *step, char *buf,
                     size_t size);

/*
 * Wait up to timeout_ms until at least n emails to `to` whose subject starts
 * with subject_prefix are in the mail directory; return the approval link
 * (public_url/a/TOKEN, malloc'd) of the newest-by-count one in *link (may be
 * NULL), and the number found.  Bodies are decoded (quoted-printable).
 */
int wh_wait_mail(struct wh_server *s, const char *to, const char *subject_prefix, int n,
                 int timeout_ms, char **link);

/*
 * The same for messages received by tests/integration/smtp_test_server.py in
 * smtp_dir (one JSON file per message; rcpt_tos, decoded headers and
 * parts).  *link (may be NULL) gets the approval link of the last match.
 */
int wh_wait_smtp(struct wh_server *s, const char *smtp_dir, const char *to,
                 const char *subject_prefix, int n, int timeout_ms, char **link);

/* Number of emails to `to` (any subject). */
int wh_count_mail(struct wh_server *s, const char *to);

/* The value of the csrf hidden field in a page, malloc'd, or NULL. */
char *wh_csrf(const char *page);

/* A fingerprint of every approval, approver, link, step execution, run and
 * the number of events (malloc'd): db_testing_state_digest through the
 * test's own connection to the store. */
char *wh_db_fingerprint(struct wh_server *s);

/* POST a form body to url with optional extra header lines (NULL-terminated). */
long wh_post(const char *url, const char *body, char *const extra_headers[], char **page);

/* GET (or HEAD) url; returns the status, *page the body (may be NULL). */
long wh_get(const char *method, const char *url, char **page, char **headers);

/* The server's log as text (malloc'd). */
char *wh_log(struct wh_server *s);

#endif
