/* test_mail_smtp.c - smtp_url parsing and validation (the transport itself is
 * tested against a real server in tests/integration/test_mail_send.c). */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/config.h"
#include "steps/mail.h"
#include "steps/mail_smtp.h"

static void test_good_urls(void **state)
{
    (void)state;
    struct mail_smtp_url u;
    struct as_err err = {0};
    assert_int_equal(mail_smtp_parse_url("smtp://mail.example.org", &u, &err), AS_OK);
    assert_int_equal(u.tls, MAIL_SMTP_PLAIN);
    assert_string_equal(u.host, "mail.example.org");
    assert_int_equal(u.port, 25);
    assert_int_equal(mail_smtp_parse_url("smtp+starttls://smtp.office365.com:587", &u, &err), AS_OK);
    assert_int_equal(u.tls, MAIL_SMTP_STARTTLS);
    assert_int_equal(u.port, 587);
    assert_int_equal(mail_smtp_parse_url("smtp+starttls://relay", &u, &err), AS_OK);
    assert_int_equal(u.port, 587);
    assert_int_equal(mail_smtp_parse_url("SMTPS://relay.example.org/", &u, &err), AS_OK);
    assert_int_equal(u.tls, MAIL_SMTP_IMPLICIT);
    assert_int_equal(u.port, 465);
    assert_int_equal(mail_smtp_parse_url("smtp://127.0.0.1:2525", &u, &err), AS_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 2525);
    assert_int_equal(mail_smtp_parse_url("smtps://[2001:db8::1]:4650", &u, &err), AS_OK);
    assert_string_equal(u.host, "2001:db8::1");
    assert_int_equal(u.port, 4650);
}

static void test_bad_urls(void **state)
{
    (void)state;
    struct mail_smtp_url u;
    struct as_err err = {0};
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"", "empty"},
        {"mail.example.org:25", "unknown scheme"},
        {"http://mail.example.org", "unknown scheme"},
        {"smtp+tls://mail.example.org", "unknown scheme"},
        {"smtp://user:pw@mail.example.org", "smtp_password_file"},
        {"smtp://", "missing host"},
        {"smtp://:25", "missing host"},
        {"smtp://mail.example.org:0", "1-65535"},
        {"smtp://mail.example.org:65536", "1-65535"},
        {"smtp://mail.example.org:25x", "1-65535"},
        {"smtp://mail.example.org:", "1-65535"},
        {"smtp://mail.example.org/path", "no path"},
        {"smtp://mail example.org", "space"},
        {"smtp://[2001:db8::1", "']'"},
        {"smtp://mail.exa$mple.org", "bad character"},
        {"smtp://[::1]:25", "IPv6"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        if (mail_smtp_parse_url(bad[i].url, &u, &err) != AS_EINVAL)
            fail_msg("accepted \"%s\"", bad[i].url);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("\"%s\": message \"%s\" does not say \"%s\"", bad[i].url, err.msg, bad[i].says);
    }
    /* The error never repeats a password given in the URL. */
    assert_int_equal(mail_smtp_parse_url("smtp://me:hunter2@mail.example.org", &u, &err), AS_EINVAL);
    assert_null(strstr(err.msg, "hunter2"));
}

static void set(struct config *cfg, const char *k, const char *v)
{
    struct as_err err = {0};
    assert_int_equal(config_set(cfg, k, v, &err), AS_OK);
}

static void check_cfg(struct config *cfg, enum as_code want, const char *says)
{
    struct as_err err = {0};
    enum as_code rc = mail_config_check(cfg, &err);
    if (rc != want || (says && !strstr(err.msg, says)))
        fail_msg("mail_config_check: %d \"%s\", wanted %d with \"%s\"", rc, err.msg, want,
                 says ? says : "");
}

static void test_config_check(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("mailcfg");
    char *pw = tu_path(dir, "pw"), *ca = tu_path(dir, "nope.pem");
    struct config *cfg = config_defaults();
    check_cfg(cfg, AS_OK, NULL); /* the defaults: file transport */
    set(cfg, "mail_from", "not an address");
    check_cfg(cfg, AS_EINVAL, "mail_from");
    set(cfg, "mail_from", "Assent <assent@example.org>");
    set(cfg, "mail_transport", "smtp");
    set(cfg, "smtp_url", "smtp+starttls://smtp.example.org");
    check_cfg(cfg, AS_OK, NULL);
    set(cfg, "smtp_url", "smtp:/smtp.example.org");
    check_cfg(cfg, AS_EINVAL, "unknown scheme");
    set(cfg, "smtp_url", "smtp+starttls://smtp.example.org:587");
    set(cfg, "smtp_user", "mailer");
    check_cfg(cfg, AS_EINVAL, "smtp_password_file");
    assert_int_equal(tu_write_file(pw, "secret\n"), 0);
    assert_int_equal(chmod(pw, 0644), 0);
    set(cfg, "smtp_password_file", pw);
    check_cfg(cfg, AS_EINVAL, "chmod 600");
    assert_int_equal(chmod(pw, 0600), 0);
    check_cfg(cfg, AS_OK, NULL);
    set(cfg, "smtp_url", "smtp://smtp.example.org");
    check_cfg(cfg, AS_EINVAL, "in clear");
    set(cfg, "smtp_url", "smtp://127.0.0.1:2525");
    check_cfg(cfg, AS_OK, NULL);
    set(cfg, "smtp_ca_file", ca);
    check_cfg(cfg, AS_EINVAL, "smtp_ca_file");
    config_free(cfg);
    tu_rmrf(dir);
    free(pw);
    free(ca);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_urls),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_config_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
