/*
 * test_mail_send.c - mail_send() against a real SMTP server (aiosmtpd,
 * tests/integration/smtp_test_server.py) on 127.0.0.1, with a temporary
 * database: what the server received (headers decoded by Python's email
 * package, both parts, envelope), rejected and temporarily failing
 * recipients, a server that is down or drops the connection, STARTTLS with
 * a test CA (and an untrusted or wrong-host certificate refused), implicit
 * TLS, AUTH, idempotency (dedupe, and the re-send after a crash between
 * sending and recording), and the file transport.
 */
#include "tests/testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_mail.h"
#include "engine/app.h"
#include "base/config.h"
#include "base/encode.h"
#include "steps/mail.h"
#include "tests/integration/sim_harness.h"
#include "cli/cli.h"

/* assert_int_equal that shows the error message when the code differs. */
#define ASSERT_RC(call, expect)                                                   \
    do {                                                                          \
        enum as_code rc_ = (call);                                                \
        if (rc_ != (expect))                                                      \
            print_error("%s -> %d (%s)\n", #call, (int)rc_, err.msg);             \
        assert_int_equal(rc_, (expect));                                          \
    } while (0)

static char *g_dir;   /* per-program temp dir */
static char *g_certs; /* CA and server certificates */

struct server {
    pid_t pid;
    int port;
    char *dir;
};

/* Servers still running; a failed assertion leaves a test early, and the
 * teardown stops what it started. */
static pid_t g_pids[16];

static void track(pid_t pid)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (!g_pids[i]) {
            g_pids[i] = pid;
            return;
        }
}

static const char *script(void)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/tests/integration/smtp_test_server.py", tu_source_dir());
    return path;
}

static char *cert(const char *name)
{
    return tu_path(g_certs, name);
}

/* Start the test server; extra: NULL-terminated options after --port/--dir. */
static void server_start(struct server *s, const char *tag, const char *const *extra)
{
    char portstr[16];
    s->port = tu_free_port();
    snprintf(portstr, sizeof portstr, "%d", s->port);
    s->dir = tu_path(g_dir, tag);
    char *argv[20] = {"/usr/bin/python3", (char *)script(), "--port", portstr, "--dir", s->dir};
    int n = 6;
    for (size_t i = 0; extra && extra[i] && n < 19; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    char *log = tu_path(g_dir, "server.log");
    s->pid = tu_spawn(argv, NULL, log);
    free(log);
    assert_true(s->pid > 0);
    track(s->pid);
    assert_int_equal(tu_wait_port(s->port, 15000), 0);
}

static void server_stop(struct server *s)
{
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] == s->pid)
            g_pids[i] = 0;
    tu_stop(s->pid, SIGTERM);
    free(s->dir);
    s->dir = NULL;
}

/* The n-th (1-based) message the server saved, or NULL if there is none. */
static json_t *received(const struct server *s, int n)
{
    char name[32];
    snprintf(name, sizeof name, "%06d.json", n);
    char *p = tu_path(s->dir, name);
    json_t *j = json_load_file(p, 0, NULL);
    free(p);
    return j;
}

static const char *hdr(const json_t *msg, const char *name)
{
    return json_string_value(json_array_get(json_object_get(json_object_get(msg, "headers"), name), 0));
}

struct env {
    struct app app;
    char *dbpath;
};

static void env_open(struct env *e, const char *transport, const char *smtp_url)
{
    struct as_err err = {0};
    memset(e, 0, sizeof *e);
    e->app.cfg = config_defaults();
    assert_non_null(e->app.cfg);
    assert_int_equal(config_set(e->app.cfg, "mail_transport", transport, &err), AS_OK);
    if (smtp_url)
        assert_int_equal(config_set(e->app.cfg, "smtp_url", smtp_url, &err), AS_OK);
    assert_int_equal(config_set(e->app.cfg, "smtp_timeout_seconds", "5", &err), AS_OK);
    assert_int_equal(config_set(e->app.cfg, "mail_from", "Assent <assent@example.org>", &err),
                     AS_OK);
    char *md = tu_path(g_dir, "maildir");
    assert_int_equal(config_set(e->app.cfg, "mail_dir", md, &err), AS_OK);
    free(md);
    e->dbpath = tu_path(g_dir, "assent.db");
    assert_int_equal(db_open(e->dbpath, "NORMAL", &e->app.db, &err), AS_OK);
}

static void env_set(struct env *e, const char *key, const char *value)
{
    struct as_err err = {0};
    assert_int_equal(config_set(e->app.cfg, key, value, &err), AS_OK);
}

static void env_close(struct env *e)
{
    db_close(e->app.db);
    config_free(e->app.cfg);
    free(e->dbpath);
}

static void expected_id(const char *key, const char *domain, char *out, size_t size)
{
    char hex[ENCODE_SHA256_HEX_SIZE];
    assert_int_equal(encode_sha256_hex(key, strlen(key), hex), 0);
    snprintf(out, size, "<%.32s@assent.%s>", hex, domain); /* the first 16 bytes */
}

static const json_t *rcpt(const json_t *result, size_t i)
{
    return json_array_get(json_object_get(result, "recipients"), i);
}

/* ---- tests --------------------------------------------------------------- */

static void test_multipart_received(void **state)
{
    (void)state;
    struct server s;
    struct env e;
    server_start(&s, "plain", NULL);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);

    const char *to[] = {"Jürgen Müller <juergen@example.org>", "ops@example.org", NULL};
    const char *cc[] = {"\"Audit, Team\" <audit@example.org>", NULL};
    const char *subject = "Genehmigung erforderlich: Protokolle für Jürgen Müller "
                          "abschalten — bitte bis Freitag prüfen ✅";
    const char *text = "Hallo Jürgen,\n\n"
                       ".a line starting with a dot\n"
                       "From here on, a long line: "
                       "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789 end\n"
                       "trailing space \n"
                       "Grüße\n";
    const char *html = "<p>Hallo J&uuml;rgen,</p><p>Bitte <a href=\"https://a.example/x?a=1&amp;b=2\">"
                       "prüfen</a>.</p>";
    struct mail_msg m = {.from = "Ässent Bot <bot@example.org>", .to = to, .cc = cc,
                         .subject = subject, .text = text, .html = html,
                         .idempotency_key = "run:1:notify", .reply_to = "help@example.org"};
    json_t *res = NULL;
    struct as_err err = {0};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);

    char id[128];
    expected_id("run:1:notify", "example.org", id, sizeof id);
    assert_string_equal(json_string_value(json_object_get(res, "message_id")), id);
    assert_string_equal(json_string_value(json_object_get(res, "transport")), "smtp");
    assert_true(json_is_false(json_object_get(res, "deduplicated")));
    assert_int_equal(json_array_size(json_object_get(res, "recipients")), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(json_string_value(json_object_get(rcpt(res, i), "status")), "accepted");
        assert_int_equal(json_integer_value(json_object_get(rcpt(res, i), "code")), 250);
    }
    assert_string_equal(json_string_value(json_object_get(rcpt(res, 0), "address")),
                        "juergen@example.org");

    json_t *got = received(&s, 1);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "mail_from")), "bot@example.org");
    json_t *env = json_object_get(got, "rcpt_tos");
    assert_int_equal(json_array_size(env), 3);
    assert_string_equal(json_string_value(json_array_get(env, 0)), "juergen@example.org");
    assert_string_equal(json_string_value(json_array_get(env, 1)), "ops@example.org");
    assert_string_equal(json_string_value(json_array_get(env, 2)), "audit@example.org");
    assert_string_equal(hdr(got, "subject"), subject);
    assert_string_equal(hdr(got, "from"), "Ässent Bot <bot@example.org>");
    assert_string_equal(hdr(got, "to"), "Jürgen Müller <juergen@example.org>, ops@example.org");
    assert_string_equal(hdr(got, "cc"), "\"Audit, Team\" <audit@example.org>");
    assert_string_equal(hdr(got, "reply-to"), "help@example.org");
    assert_string_equal(hdr(got, "message-id"), id);
    assert_string_equal(hdr(got, "mime-version"), "1.0");
    assert_non_null(hdr(got, "date"));
    assert_non_null(strstr(hdr(got, "date"), "+0000"));
    assert_string_equal(json_string_value(json_object_get(got, "content_type")),
                        "multipart/alternative");
    /* Header and body lines are short, and every line ends in CRLF. */
    assert_true(json_integer_value(json_object_get(got, "max_line")) <= 78);
    assert_int_equal(json_integer_value(json_object_get(got, "bare_lf")), 0);
    json_t *parts = json_object_get(got, "parts");
    assert_int_equal(json_array_size(parts), 2);
    json_t *p0 = json_array_get(parts, 0), *p1 = json_array_get(parts, 1);
    assert_string_equal(json_string_value(json_object_get(p0, "content_type")), "text/plain");
    assert_string_equal(json_string_value(json_object_get(p0, "charset")), "utf-8");
    assert_string_equal(json_string_value(json_object_get(p0, "content")), text);
    assert_string_equal(json_string_value(json_object_get(p1, "content_type")), "text/html");
    assert_string_equal(json_string_value(json_object_get(p1, "content")), html);
    assert_null(received(&s, 2));

    json_decref(got);
    json_decref(res);
    env_close(&e);
    server_stop(&s);
}

static void test_rejections(void **state)
{
    (void)state;
    struct server s;
    struct env e;
    server_start(&s, "reject", NULL);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    json_t *res = NULL;
    struct as_err err = {0};

    /* One recipient refused: the message goes to the other; reported per recipient. */
    const char *to1[] = {"ok@example.org", "reject-me@example.org", NULL};
    struct mail_msg m = {.to = to1, .subject = "partial", .text = "x\n",
                         .idempotency_key = "rej:1"};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(rcpt(res, 0), "status")), "accepted");
    assert_string_equal(json_string_value(json_object_get(rcpt(res, 1), "status")), "rejected");
    assert_int_equal(json_integer_value(json_object_get(rcpt(res, 1), "code")), 550);
    assert_non_null(strstr(json_string_value(json_object_get(rcpt(res, 1), "reply")),
                           "User unknown"));
    json_decref(res);
    json_t *got = received(&s, 1);
    assert_int_equal(json_array_size(json_object_get(got, "rcpt_tos")), 1);
    json_decref(got);

    /* Every recipient refused with 5xx: permanent, with the server's reply. */
    const char *to2[] = {"reject1@example.org", "reject2@example.org", NULL};
    m.to = to2;
    m.idempotency_key = "rej:2";
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "550 5.1.1"));
    assert_non_null(strstr(err.msg, "User unknown"));
    assert_non_null(res); /* the per-recipient answers */
    assert_int_equal(json_integer_value(json_object_get(rcpt(res, 1), "code")), 550);
    json_decref(res);
    json_t *row = NULL;
    assert_int_equal(db_mail_get(e.app.db, "rej:2", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "failed");
    json_decref(row);

    /* Refused with 4xx (and 5xx): worth retrying. */
    const char *to3[] = {"tempfail@example.org", "reject3@example.org", NULL};
    m.to = to3;
    m.idempotency_key = "rej:3";
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "451"));
    json_decref(res);

    /* DATA refused for good / for now; sender refused. */
    const char *to4[] = {"datafail@example.org", NULL};
    m.to = to4;
    m.idempotency_key = NULL;
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "554 5.6.0"));
    json_decref(res);
    const char *to5[] = {"datatemp@example.org", NULL};
    m.to = to5;
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "452"));
    json_decref(res);
    m.to = to1;
    m.from = "blocked@example.org";
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "550 5.7.1"));
    json_decref(res);
    assert_null(received(&s, 2)); /* none of these delivered anything */

    env_close(&e);
    server_stop(&s);
}

static void test_server_down_and_drop(void **state)
{
    (void)state;
    struct env e;
    char url[64];
    int port = tu_free_port(); /* nobody listens */
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
    env_open(&e, "smtp", url);
    const char *to[] = {"ok@example.org", NULL};
    struct mail_msg m = {.to = to, .subject = "down", .text = "x", .idempotency_key = "down:1"};
    json_t *res = NULL;
    struct as_err err = {0};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_ETRANSIENT);
    assert_non_null(strstr(err.msg, "refused"));
    assert_null(res);
    json_t *row = NULL;
    assert_int_equal(db_mail_get(e.app.db, "down:1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "failed");
    json_decref(row);

    /* The server comes up: the retry with the same key sends. */
    struct server s;
    s.port = port;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    s.dir = tu_path(g_dir, "drop");
    char *argv[] = {"/usr/bin/python3", (char *)script(), "--port", portstr, "--dir", s.dir, NULL};
    s.pid = tu_spawn(argv, NULL, NULL);
    track(s.pid);
    assert_int_equal(tu_wait_port(port, 15000), 0);
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    json_decref(res);
    assert_int_equal(db_mail_get(e.app.db, "down:1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sent");
    assert_int_equal(json_integer_value(json_object_get(row, "attempts")), 2);
    assert_int_equal(json_integer_value(json_object_get(row, "resends")), 0);
    json_decref(row);

    /* The server drops the connection in the middle of the envelope. */
    const char *to2[] = {"ok@example.org", "drop@example.org", NULL};
    m.to = to2;
    m.idempotency_key = "drop:1";
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_ETRANSIENT);
    json_decref(res);
    assert_null(received(&s, 2));

    env_close(&e);
    server_stop(&s);
}

static void test_dedupe(void **state)
{
    (void)state;
    struct server s;
    struct env e;
    server_start(&s, "dedupe", NULL);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    const char *to[] = {"ok@example.org", NULL};
    struct mail_msg m = {.to = to, .subject = "once", .text = "only once\n",
                         .idempotency_key = "dedupe:1"};
    json_t *r1 = NULL, *r2 = NULL;
    struct as_err err = {0};
    ASSERT_RC(mail_send(&e.app, &m, &r1, &err), AS_OK);
    ASSERT_RC(mail_send(&e.app, &m, &r2, &err), AS_OK);
    assert_true(json_is_false(json_object_get(r1, "deduplicated")));
    assert_true(json_is_true(json_object_get(r2, "deduplicated")));
    assert_string_equal(json_string_value(json_object_get(r1, "message_id")),
                        json_string_value(json_object_get(r2, "message_id")));
    assert_true(json_equal(json_object_get(r1, "recipients"), json_object_get(r2, "recipients")));
    json_t *got = received(&s, 1);
    assert_non_null(got);
    assert_null(received(&s, 2)); /* the second call sent nothing */
    json_decref(got);
    json_decref(r1);
    json_decref(r2);
    env_close(&e);
    server_stop(&s);
}

/*
 * A worker process dies after the server received the message and before
 * it heard the 250: the row stays 'sending'; the next attempt re-sends the
 * identical message (same Message-ID and Date) once, and after that the key
 * is done.
 */
static void test_crash_resend(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "crash", NULL);
    char url[64], *slow = tu_path(s.dir, "slow");
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    assert_int_equal(tu_write_file(slow, ""), 0);
    const char *to[] = {"ok@example.org", NULL};
    struct mail_msg m = {.to = to, .subject = "crash", .text = "sent across a crash\n",
                         .html = "<p>sent across a crash</p>", .idempotency_key = "crash:1"};

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct env ce;
        json_t *r = NULL;
        struct as_err cerr = {0};
        env_open(&ce, "smtp", url);
        env_set(&ce, "smtp_timeout_seconds", "120");
        enum as_code rc = mail_send(&ce.app, &m, &r, &cerr);
        _exit(rc == AS_OK ? 0 : 1); /* never reached: killed while waiting */
    }
    json_t *first = NULL;
    for (int i = 0; i < 500 && !(first = received(&s, 1)); i++)
        tu_sleep_ms(20);
    assert_non_null(first);
    tu_stop(child, SIGKILL);
    assert_int_equal(unlink(slow), 0);

    struct env e;
    env_open(&e, "smtp", url);
    json_t *row = NULL;
    struct as_err err = {0};
    assert_int_equal(db_mail_get(e.app.db, "crash:1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sending");
    json_decref(row);

    json_t *res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_true(json_is_false(json_object_get(res, "deduplicated")));
    json_t *second = received(&s, 2);
    assert_non_null(second);
    assert_string_equal(hdr(second, "message-id"), hdr(first, "message-id"));
    assert_string_equal(hdr(second, "date"), hdr(first, "date"));
    assert_string_equal(json_string_value(json_object_get(second, "raw")),
                        json_string_value(json_object_get(first, "raw")));
    assert_int_equal(db_mail_get(e.app.db, "crash:1", &row, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "sent");
    assert_int_equal(json_integer_value(json_object_get(row, "resends")), 1);
    assert_int_equal(json_integer_value(json_object_get(row, "attempts")), 2);
    json_decref(row);
    json_decref(res);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_true(json_is_true(json_object_get(res, "deduplicated")));
    assert_null(received(&s, 3));

    json_decref(res);
    json_decref(first);
    json_decref(second);
    free(slow);
    env_close(&e);
    server_stop(&s);
}

struct sender_arg {
    struct app *app;
    int id;
    int ok, busy, dedup, other;
};

static void *sender_thread(void *p)
{
    struct sender_arg *a = p;
    const char *to[] = {"ok@example.org", NULL};
    for (int i = 0; i < 6; i++) {
        char key[64];
        /* Every thread's round 3 uses the same key: exactly one may send it. */
        if (i == 3)
            snprintf(key, sizeof key, "shared");
        else
            snprintf(key, sizeof key, "t%d:%d", a->id, i);
        struct mail_msg m = {.to = to, .subject = key, .text = "concurrent\n",
                             .idempotency_key = key};
        json_t *res = NULL;
        struct as_err err = {0};
        enum as_code rc = mail_send(a->app, &m, &res, &err);
        if (rc == AS_OK && json_is_true(json_object_get(res, "deduplicated")))
            a->dedup++;
        else if (rc == AS_OK)
            a->ok++;
        else if (rc == AS_ETRANSIENT && strstr(err.msg, "being sent"))
            a->busy++;
        else
            a->other++;
        json_decref(res);
    }
    return NULL;
}

/* mail_send from several threads at once: one SMTP session each, and one
 * key raced by all of them is delivered exactly once. */
static void test_concurrent_senders(void **state)
{
    (void)state;
    struct server s;
    struct env e;
    server_start(&s, "concurrent", NULL);
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    pthread_t th[4];
    struct sender_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct sender_arg){.app = &e.app, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, sender_thread, &args[i]), 0);
    }
    int ok = 0, busy = 0, dedup = 0, other = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        busy += args[i].busy;
        dedup += args[i].dedup;
        other += args[i].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, 4 * 5 + 1);       /* every own key, and "shared" once */
    assert_int_equal(busy + dedup, 3);     /* the other three saw it in flight or done */
    int n = 0, shared = 0;
    json_t *got;
    while ((got = received(&s, n + 1))) {
        if (strcmp(hdr(got, "subject"), "shared") == 0)
            shared++;
        json_decref(got);
        n++;
    }
    assert_int_equal(n, 21);
    assert_int_equal(shared, 1);
    env_close(&e);
    server_stop(&s);
}

static void write_password(const char *path, const char *pw)
{
    assert_int_equal(tu_write_file(path, pw), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static void test_starttls_and_auth(void **state)
{
    (void)state;
    char *crt = cert("server.pem"), *key = cert("server.key"), *ca = cert("ca.pem");
    char *other_crt = cert("other.pem"), *other_key = cert("other.key");
    const char *to[] = {"ok@example.org", NULL};
    struct mail_msg m = {.to = to, .subject = "tls", .text = "over TLS\n"};
    json_t *res = NULL;
    struct as_err err = {0};
    char url[80];
    struct server s;
    struct env e;

    /* STARTTLS with the test CA: delivered over TLS. */
    const char *tls_args[] = {"--starttls", crt, key, NULL};
    server_start(&s, "starttls", tls_args);
    snprintf(url, sizeof url, "smtp+starttls://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    env_set(&e, "smtp_ca_file", ca);
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    json_decref(res);
    json_t *got = received(&s, 1);
    assert_non_null(got);
    assert_true(json_is_true(json_object_get(got, "tls")));
    json_decref(got);
    /* Without the CA the certificate is not trusted: refused, nothing sent. */
    env_set(&e, "smtp_ca_file", "");
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "certificate"));
    json_decref(res);
    assert_null(received(&s, 2));
    env_close(&e);
    server_stop(&s);

    /* A trusted certificate for another host: refused. */
    const char *other_args[] = {"--starttls", other_crt, other_key, NULL};
    server_start(&s, "wronghost", other_args);
    snprintf(url, sizeof url, "smtp+starttls://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    env_set(&e, "smtp_ca_file", ca);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "certificate"));
    json_decref(res);
    assert_null(received(&s, 1));
    env_close(&e);
    server_stop(&s);

    /* smtp+starttls:// to a server without STARTTLS: refused, not sent in clear. */
    server_start(&s, "notls", NULL);
    snprintf(url, sizeof url, "smtp+starttls://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "STARTTLS"));
    json_decref(res);
    assert_null(received(&s, 1));
    env_close(&e);
    server_stop(&s);

    /* AUTH (PLAIN/LOGIN) after STARTTLS with the password from a 0600 file. */
    const char *auth_args[] = {"--starttls", crt, key, "--auth", "mailer", "s3cret pw", NULL};
    server_start(&s, "auth", auth_args);
    snprintf(url, sizeof url, "smtp+starttls://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    env_set(&e, "smtp_ca_file", ca);
    env_set(&e, "smtp_user", "mailer");
    char *pwfile = tu_path(g_dir, "smtp.pw");
    write_password(pwfile, "s3cret pw\n");
    env_set(&e, "smtp_password_file", pwfile);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    json_decref(res);
    got = received(&s, 1);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "auth_login")), "mailer");
    json_decref(got);
    /* A wrong password: the server then refuses the sender (530), for good. */
    write_password(pwfile, "wrong");
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "530"));
    assert_null(strstr(err.msg, "wrong")); /* the password never shows */
    json_decref(res);
    assert_null(received(&s, 2));
    /* A password file others can read is refused. */
    assert_int_equal(chmod(pwfile, 0644), 0);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EINVAL);
    json_decref(res);
    env_close(&e);
    server_stop(&s);

    /* AUTH over plain SMTP to a remote host would expose the password. */
    env_open(&e, "smtp", "smtp://mail.example.org:25");
    env_set(&e, "smtp_user", "mailer");
    env_set(&e, "smtp_password_file", pwfile);
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "in clear"));
    env_close(&e);

    free(pwfile);
    free(crt);
    free(key);
    free(ca);
    free(other_crt);
    free(other_key);
}

static void test_smtps(void **state)
{
    (void)state;
    char *crt = cert("server.pem"), *key = cert("server.key"), *ca = cert("ca.pem");
    const char *to[] = {"ok@example.org", "reject@example.org", NULL};
    struct mail_msg m = {.to = to, .subject = "implicit TLS", .text = "over TLS from the start\n"};
    json_t *res = NULL;
    struct as_err err = {0};
    char url[80];
    struct server s;
    struct env e;
    const char *args[] = {"--smtps", crt, key, "--auth", "mailer", "pw", NULL};
    server_start(&s, "smtps", args);
    snprintf(url, sizeof url, "smtps://127.0.0.1:%d", s.port);
    env_open(&e, "smtp", url);
    env_set(&e, "smtp_ca_file", ca);
    env_set(&e, "smtp_user", "mailer");
    char *pwfile = tu_path(g_dir, "smtps.pw");
    write_password(pwfile, "pw");
    env_set(&e, "smtp_password_file", pwfile);
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_int_equal(json_integer_value(json_object_get(rcpt(res, 1), "code")), 550);
    json_decref(res);
    json_t *got = received(&s, 1);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "auth_login")), "mailer");
    assert_string_equal(hdr(got, "subject"), "implicit TLS");
    json_decref(got);
    /* Untrusted: refused before a byte of SMTP. */
    env_set(&e, "smtp_ca_file", "");
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    assert_non_null(strstr(err.msg, "certificate"));
    assert_null(received(&s, 2));
    env_close(&e);
    server_stop(&s);
    free(pwfile);
    free(crt);
    free(key);
    free(ca);
}

static void test_file_transport(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, "file", NULL);
    char *md = tu_path(g_dir, "maildir-file");
    env_set(&e, "mail_dir", md);
    const char *to[] = {"Zoë <zoe@example.org>", NULL};
    struct mail_msg m = {.to = to, .subject = "Fichier déposé", .text = "texte\n",
                         .html = "<b>texte</b>", .idempotency_key = "file:1"};
    json_t *res = NULL;
    struct as_err err = {0};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(res, "transport")), "file");
    const char *id = json_string_value(json_object_get(res, "message_id"));
    char name[160];
    snprintf(name, sizeof name, "%.*s.eml", (int)strlen(id) - 2, id + 1);
    char *path = tu_path(md, name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(md, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    char *argv[] = {"/usr/bin/python3", (char *)script(), "--parse", path, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, NULL, 30000, &out, NULL), 0);
    json_t *got = json_loads(out, 0, NULL);
    assert_non_null(got);
    assert_string_equal(hdr(got, "subject"), "Fichier déposé");
    assert_string_equal(hdr(got, "to"), "Zoë <zoe@example.org>");
    assert_string_equal(hdr(got, "message-id"), id);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(got, "parts"), 1), "content")),
                        "<b>texte</b>");
    json_decref(got);
    free(out);
    json_decref(res);

    /* Same key again: deduplicated; a re-send after a lost record rewrites
     * the same file rather than adding one. */
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_true(json_is_true(json_object_get(res, "deduplicated")));
    json_decref(res);
    m.idempotency_key = NULL;
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK); /* random id: a new file */
    json_decref(res);
    int n = 0;
    char *ls[] = {"/bin/ls", md, NULL};
    out = NULL;
    assert_int_equal(tu_run(ls, NULL, 5000, &out, NULL), 0);
    for (char *p = out; (p = strstr(p, ".eml")); p++)
        n++;
    assert_int_equal(n, 2);
    free(out);
    free(path);
    free(md);
    env_close(&e);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct env e;
    env_open(&e, "file", NULL);
    json_t *res = NULL;
    struct as_err err = {0};
    const char *evil[] = {"victim@example.org\r\nBcc: all@example.org", NULL};
    struct mail_msg m = {.to = evil, .subject = "x", .text = "x", .idempotency_key = "bad:1"};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "control character"));
    /* Nothing was recorded for a message that was never valid. */
    json_t *row = NULL;
    assert_int_equal(db_mail_get(e.app.db, "bad:1", &row, &err), AS_ENOTFOUND);
    const char *ok[] = {"a@example.org", NULL};
    m.to = ok;
    m.text = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EINVAL);
    m.text = "x";
    m.from = "not an address";
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EINVAL);
    assert_non_null(strstr(err.msg, "from"));
    env_set(&e, "mail_transport", "smtp");
    env_set(&e, "smtp_url", "smtp://127.0.0.1:1/");
    m.from = NULL;
    m.idempotency_key = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_ETRANSIENT);
    assert_null(res);
    env_close(&e);
}

/*
 * The email step through the real binary: `assent run --wait` renders the
 * subject, the text and an HTML template file next to the workflow (values
 * HTML-escaped there only), sends through SMTP and records the result; a
 * refused recipient fails the run with the server's reply; a dry run sends
 * nothing.
 */
static void test_email_step_end_to_end(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "step", NULL);
    char *wfdir = tu_path(g_dir, "wf"), *wf = NULL, *tpl = NULL, *db = NULL;
    assert_int_equal(mkdir(wfdir, 0700), 0);
    wf = tu_path(wfdir, "notify.json");
    tpl = tu_path(wfdir, "notify.html");
    db = tu_path(g_dir, "step.db");
    assert_int_equal(tu_write_file(wf,
        "{\"name\": \"notify\", \"version\": \"1\", \"start\": \"mail\",\n"
        " \"steps\": {\"mail\": {\"type\": \"email\", \"retry\": {\"attempts\": 2, \"backoff\": \"100ms\"},\n"
        "   \"params\": {\"to\": \"${input.to}\", \"cc\": \"${input.cc}\",\n"
        "     \"subject\": \"Protokolle für ${input.name}\",\n"
        "     \"text\": \"Hallo ${input.name},\\nbitte prüfen.\\n\",\n"
        "     \"html_file\": \"notify.html\"}}}}\n"), 0);
    assert_int_equal(tu_write_file(tpl, "<p>Hallo <b>${input.name}</b> &amp; willkommen</p>\n"), 0);

    char url[64], env_db[600], env_url[100];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", s.port);
    snprintf(env_db, sizeof env_db, "ASSENT_DB=%s", db);
    snprintf(env_url, sizeof env_url, "ASSENT_SMTP_URL=%s", url);
    char *env[] = {env_db, env_url, "ASSENT_MAIL_TRANSPORT=smtp",
                   "ASSENT_MAIL_FROM=Assent <assent@example.org>", "ASSENT_SMTP_TIMEOUT_SECONDS=5",
                   NULL};
    const char *input = "{\"name\": \"Zoë <script>alert(1)</script>\", \"to\": [\"Zoë <zoe@example.org>\", \"reject@example.org\"], \"cc\": [\"audit@example.org\"]}";
    char *argv[] = {(char *)tu_assent_bin(), "run", wf, "--input", (char *)input, "--wait", "--json", NULL};
    char *out = NULL, *errout = NULL;
    int code = tu_run(argv, env, 60000, &out, &errout);
    if (code != 0)
        print_error("assent run: %d\n%s\n%s\n", code, out, errout);
    assert_int_equal(code, 0);
    free(out);
    free(errout);

    json_t *got = received(&s, 1);
    assert_non_null(got);
    assert_string_equal(hdr(got, "subject"), "Protokolle für Zoë <script>alert(1)</script>");
    assert_string_equal(hdr(got, "to"), "Zoë <zoe@example.org>, reject@example.org");
    json_t *parts = json_object_get(got, "parts");
    assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 0), "content")),
                        "Hallo Zoë <script>alert(1)</script>,\nbitte prüfen.\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 1), "content")),
                        "<p>Hallo <b>Zoë &lt;script&gt;alert(1)&lt;/script&gt;</b> &amp; willkommen</p>\n");
    json_t *env_rcpts = json_object_get(got, "rcpt_tos");
    assert_int_equal(json_array_size(env_rcpts), 2); /* zoe and audit; reject was refused */
    json_decref(got);

    /* Every recipient refused: the run fails and says why. */
    const char *input2 = "{\"name\": \"x\", \"to\": \"reject-all@example.org\"}";
    char *argv2[] = {(char *)tu_assent_bin(), "run", wf, "--input", (char *)input2, "--wait", NULL};
    out = errout = NULL;
    code = tu_run(argv2, env, 60000, &out, &errout);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "550 5.1.1"));
    free(out);
    free(errout);

    /* A dry run renders and sends nothing. */
    char *argv3[] = {(char *)tu_assent_bin(), "run", wf, "--input", (char *)input, "--wait",
                     "--dry-run", "--json", NULL};
    out = errout = NULL;
    code = tu_run(argv3, env, 60000, &out, &errout);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "&lt;script&gt;"));
    free(out);
    free(errout);
    got = received(&s, 2);
    assert_null(got);

    server_stop(&s);
    free(wfdir);
    free(wf);
    free(tpl);
    free(db);
}

/*
 * kill -9 of `assent run --wait` after the server got the message and
 * before it answered: `assent worker --until-done` re-runs the step at once,
 * the identical message goes out once more, the run succeeds, and nothing
 * is sent after that.
 */
static void test_email_step_crash(void **state)
{
    (void)state;
    struct server s;
    server_start(&s, "stepcrash", NULL);
    char *slow = tu_path(s.dir, "slow"), *wf = tu_path(g_dir, "crash.json");
    char *db = tu_path(g_dir, "stepcrash.db"), *log = tu_path(g_dir, "stepcrash.log");
    assert_int_equal(tu_write_file(slow, ""), 0);
    assert_int_equal(tu_write_file(wf,
        "{\"name\": \"crash\", \"version\": \"1\", \"start\": \"mail\",\n"
        " \"steps\": {\"mail\": {\"type\": \"email\", \"params\": {\"to\": \"ok@example.org\",\n"
        "   \"subject\": \"once or twice, never more\", \"text\": \"x\"}}}}\n"), 0);
    char env_db[600], env_url[100];
    snprintf(env_db, sizeof env_db, "ASSENT_DB=%s", db);
    snprintf(env_url, sizeof env_url, "ASSENT_SMTP_URL=smtp://127.0.0.1:%d", s.port);
    char *env[] = {env_db, env_url, "ASSENT_MAIL_TRANSPORT=smtp", "ASSENT_SMTP_TIMEOUT_SECONDS=120",
                   NULL};
    char *argv[] = {(char *)tu_assent_bin(), "run", wf, "--wait", NULL};
    pid_t pid = tu_spawn(argv, env, log);
    assert_true(pid > 0);
    track(pid);
    json_t *first = NULL;
    for (int i = 0; i < 1500 && !(first = received(&s, 1)); i++)
        tu_sleep_ms(20);
    assert_non_null(first);
    tu_stop(pid, SIGKILL);
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] == pid)
            g_pids[i] = 0;
    assert_int_equal(unlink(slow), 0);

    char *worker[] = {(char *)tu_assent_bin(), "worker", "--until-done", NULL};
    char *out = NULL, *errout = NULL;
    int code = tu_run(worker, env, 120000, &out, &errout);
    if (code != 0)
        print_error("worker: %d\n%s\n%s\n", code, out, errout);
    assert_int_equal(code, 0);
    free(out);
    free(errout);
    json_t *second = received(&s, 2);
    assert_non_null(second);
    assert_string_equal(hdr(second, "message-id"), hdr(first, "message-id"));
    assert_string_equal(json_string_value(json_object_get(second, "raw")),
                        json_string_value(json_object_get(first, "raw")));

    char *show[] = {(char *)tu_assent_bin(), "show", "1", "--json", NULL};
    out = NULL;
    assert_int_equal(tu_run(show, env, 30000, &out, NULL), 0);
    assert_non_null(strstr(out, "\"succeeded\""));
    free(out);
    /* Nothing left to do, nothing sent again. */
    out = errout = NULL;
    assert_int_equal(tu_run(worker, env, 60000, &out, &errout), 0);
    free(out);
    free(errout);
    assert_null(received(&s, 3));

    json_decref(first);
    json_decref(second);
    server_stop(&s);
    free(slow);
    free(wf);
    free(db);
    free(log);
}

/* The Graph transport: sendMail as the sender's mailbox on the simulator. */
static void test_graph_transport(void **state)
{
    (void)state;
    struct sim_harness h;
    assert_int_equal(sim_harness_start(&h, 5, 7, NULL), 0);
    json_t *st = sim_harness_state(&h);
    const char *sender = NULL;
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(st, "users"), i, u)
    {
        if (json_is_object(json_object_get(u, "mailbox")) && !sender)
            sender = json_string_value(json_object_get(u, "userPrincipalName"));
    }
    assert_non_null(sender);
    char from[300];
    snprintf(from, sizeof from, "Assent Bot <%s>", sender);

    struct env e;
    env_open(&e, "graph", NULL);
    const char *kv[][2] = {{"tenant_id", h.tenant_id}, {"client_id", h.client_id},
                           {"client_secret_file", h.secret_path}, {"login_url", h.url},
                           {"graph_url", h.url}, {"exchange_url", h.url},
                           {"http_timeout_seconds", "5"}, {"m365_backoff_initial_ms", "10"},
                           {"mail_from", from}};
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
        env_set(&e, kv[k][0], kv[k][1]);
    const char *to[] = {"Zoë <zoe@example.org>", NULL};
    const char *cc[] = {"audit@example.org", NULL};
    struct mail_msg m = {.to = to, .cc = cc, .subject = "Über Graph", .text = "text",
                         .html = "<p>html</p>", .idempotency_key = "graph:1",
                         .reply_to = "help@example.org"};
    json_t *res = NULL;
    struct as_err err = {0};
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_string_equal(json_string_value(json_object_get(res, "transport")), "graph");
    assert_int_equal(json_integer_value(json_object_get(rcpt(res, 0), "code")), 202);
    assert_int_equal(json_array_size(json_object_get(res, "recipients")), 2);
    char id[128];
    expected_id("graph:1", strchr(sender, '@') + 1, id, sizeof id);
    assert_string_equal(json_string_value(json_object_get(res, "message_id")), id);
    json_decref(res);

    /* What the service received. */
    json_decref(st);
    st = sim_harness_state(&h);
    json_t *sent = json_object_get(st, "sent_mail");
    assert_int_equal(json_array_size(sent), 1);
    json_t *msg = json_object_get(json_array_get(sent, 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "subject")), "Über Graph");
    assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "body"), "contentType")), "HTML");
    assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "body"), "content")), "<p>html</p>");
    json_t *ea = json_object_get(json_array_get(json_object_get(msg, "toRecipients"), 0), "emailAddress");
    assert_string_equal(json_string_value(json_object_get(ea, "address")), "zoe@example.org");
    assert_string_equal(json_string_value(json_object_get(ea, "name")), "Zoë");
    assert_string_equal(json_string_value(json_object_get(msg, "internetMessageId")), id);
    assert_true(json_is_false(json_object_get(json_array_get(sent, 0), "saveToSentItems")));

    /* The same key again sends nothing; an unknown mailbox fails for good. */
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_OK);
    assert_true(json_is_true(json_object_get(res, "deduplicated")));
    json_decref(res);
    m.from = "ghost@example.org";
    m.idempotency_key = "graph:2";
    res = NULL;
    ASSERT_RC(mail_send(&e.app, &m, &res, &err), AS_EPERMANENT);
    json_decref(st);
    st = sim_harness_state(&h);
    assert_int_equal(json_array_size(json_object_get(st, "sent_mail")), 1);
    json_decref(st);
    env_close(&e);
    assert_int_equal(sim_harness_stop(&h), 0);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    g_dir = tu_tmpdir("mail");
    g_certs = tu_path(g_dir, "certs");
    char *argv[] = {"/usr/bin/python3", (char *)script(), "--make-certs", g_certs, NULL};
    return tu_run(argv, NULL, 60000, NULL, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_certs);
    return 0;
}

/* Each test uses its own database file name so they stay independent. */
static int test_setup(void **state)
{
    (void)state;
    char *db = tu_path(g_dir, "assent.db");
    char *wal = tu_path(g_dir, "assent.db-wal"), *shm = tu_path(g_dir, "assent.db-shm");
    unlink(db);
    unlink(wal);
    unlink(shm);
    free(db);
    free(wal);
    free(shm);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i]) {
            tu_stop(g_pids[i], SIGTERM);
            g_pids[i] = 0;
        }
    return 0;
}

int main(void)
{
    cli_register_types();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multipart_received, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_rejections, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_server_down_and_drop, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_dedupe, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_crash_resend, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_senders, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_starttls_and_auth, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_smtps, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_file_transport, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_email_step_end_to_end, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_graph_transport, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_email_step_crash, test_setup, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
