/* test_approval_token.c - link tokens, CSRF tokens, the request hash, HTML
 * escaping of approval pages, the rate limiter and URL helpers. */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/encode.h"
#include "web/approval_pages.h"
#include "base/html.h"
#include "web/ratelimit.h"
#include "base/netaddr.h"
#include "web/server.h"
#include "approvals/approval_render.h"
#include "approvals/token.h"

static void test_link_tokens(void **state)
{
    (void)state;
    char t1[TOKEN_LEN + 1], h1[TOKEN_HASH_LEN + 1], t2[TOKEN_LEN + 1], h2[TOKEN_HASH_LEN + 1];
    struct as_err err = {0};
    assert_int_equal(token_new(t1, sizeof t1, h1, sizeof h1, &err), AS_OK);
    assert_int_equal(token_new(t2, sizeof t2, h2, sizeof h2, &err), AS_OK);
    assert_int_equal(strlen(t1), TOKEN_LEN);
    assert_int_equal(strlen(h1), TOKEN_HASH_LEN);
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(h1, h2);
    assert_true(token_well_formed(t1));
    /* 32 random bytes decode back from the 43 characters. */
    unsigned char raw[40];
    assert_int_equal(encode_b64_decode(t1, strlen(t1), ENCODE_B64_URL | ENCODE_B64_CANONICAL, raw,
                                       sizeof raw),
                     32);
    char hex[TOKEN_HASH_LEN + 1];
    token_hash(t1, hex);
    assert_string_equal(hex, h1);
    assert_true(token_equal(h1, hex));
    assert_false(token_equal(h1, h2));
    assert_false(token_equal(h1, "short"));

    assert_false(token_well_formed(""));
    assert_false(token_well_formed("abc"));
    char bad[TOKEN_LEN + 2];
    memcpy(bad, t1, TOKEN_LEN + 1);
    bad[5] = '/';
    assert_false(token_well_formed(bad));
    memcpy(bad, t1, TOKEN_LEN);
    bad[TOKEN_LEN] = 'A';
    bad[TOKEN_LEN + 1] = '\0';
    assert_false(token_well_formed(bad));

}

static void test_csrf(void **state)
{
    (void)state;
    unsigned char secret[CSRF_SECRET_LEN];
    memset(secret, 7, sizeof secret);
    const char *link_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *link_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    int64_t now = 1700000000000LL;
    int64_t hour = 3600 * 1000LL;
    char csrf[96];
    token_csrf_issue(secret, sizeof secret, link_a, now, csrf, sizeof csrf);
    assert_true(strlen(csrf) > 40);
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, csrf, now + 1000, hour), AS_OK);
    /* Bound to its link: another approver's link refuses it. */
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_b, csrf, now, hour), AS_EAUTH);
    /* Another installation's secret refuses it. */
    unsigned char other[CSRF_SECRET_LEN];
    memset(other, 8, sizeof other);
    assert_int_equal(token_csrf_verify(other, sizeof other, link_a, csrf, now, hour), AS_EAUTH);
    /* Too old; from the future. */
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, csrf, now + 2 * hour, hour),
                     AS_EEXPIRED);
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, csrf, now - 2 * hour, hour),
                     AS_EAUTH);
    /* Tampered, truncated, garbage, missing. */
    char t[96];
    snprintf(t, sizeof t, "%s", csrf);
    t[20] = t[20] == 'A' ? 'B' : 'A';
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, t, now, hour), AS_EAUTH);
    t[10] = '\0';
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, t, now, hour), AS_EAUTH);
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, "!!!", now, hour), AS_EAUTH);
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, NULL, now, hour), AS_EAUTH);
    assert_int_equal(token_csrf_verify(secret, sizeof secret, link_a, "", now, hour), AS_EAUTH);
}

static void test_request_hash(void **state)
{
    (void)state;
    struct as_err err = {0};
    char hex[TOKEN_HASH_LEN + 1], hex2[TOKEN_HASH_LEN + 1];
    char *canonical = NULL;
    json_t *a = json_loads("{\"b\": 1, \"a\": {\"d\": 2, \"c\": [1, \"x\"]}}", 0, NULL);
    json_t *b = json_loads("{\"a\": {\"c\": [1, \"x\"], \"d\": 2}, \"b\": 1}", 0, NULL);
    json_t *c = json_loads("{\"a\": {\"c\": [\"x\", 1], \"d\": 2}, \"b\": 1}", 0, NULL);
    assert_int_equal(token_request_hash(a, hex, &canonical, &err), AS_OK);
    /* The contract with manage_cas: sorted keys, compact, SHA-256 hex. */
    assert_string_equal(canonical, "{\"a\":{\"c\":[1,\"x\"],\"d\":2},\"b\":1}");
    assert_string_equal(hex, "5a2436890fe644750d30f634d5f96492935bfc9b8939c896c3354f9db792d0dd");
    free(canonical);
    assert_int_equal(token_request_hash(b, hex2, NULL, &err), AS_OK);
    assert_string_equal(hex, hex2); /* key order does not matter */
    assert_int_equal(token_request_hash(c, hex2, NULL, &err), AS_OK);
    assert_string_not_equal(hex, hex2); /* array order does */
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static void test_html_escaping(void **state)
{
    (void)state;
    struct html_buf b = {0};
    html_text(&b, "<script>alert('x')</script> & \"q\"");
    html_text(&b, "\x01\x7f ok\t\n");
    html_text(&b, "bad \xff\xfe utf8 \xc3\xa9");
    html_text(&b, NULL);
    size_t len = 0;
    char *out = html_buf_take(&b, &len);
    assert_string_equal(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
                             " ok\t\nbad \xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9");
    assert_int_equal(len, strlen(out));
    free(out);

    /* The cap latches: nothing more is added and take() reports failure. */
    struct html_buf big = {0};
    char *chunk = malloc(HTML_BUF_MAX / 2 + 1);
    memset(chunk, 'x', HTML_BUF_MAX / 2);
    chunk[HTML_BUF_MAX / 2] = '\0';
    html_raw(&big, chunk);
    assert_true(html_buf_ok(&big));
    html_raw(&big, chunk);
    html_raw(&big, chunk);
    assert_false(html_buf_ok(&big));
    assert_null(html_buf_take(&big, &len));
    free(chunk);

    const char *csp = html_csp();
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "style-src 'sha256-"));
    assert_non_null(strstr(csp, "form-action 'self'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
    assert_null(strstr(csp, "script-src"));
}

static void test_details_rendering(void **state)
{
    (void)state;
    json_t *details = json_loads(
        "{\"user\": \"<b>mallory</b>@example.org\", \"protocols\": [\"POP3\", \"IMAP\", \"SMTP\"],"
        " \"used_last_30_days\": [\"imap\"], \"mailbox\": {\"size\": 12, \"archived\": false}}",
        0, NULL);
    struct html_buf b = {0};
    approval_render_details(&b, details);
    size_t len;
    char *out = html_buf_take(&b, &len);
    assert_non_null(strstr(out, "&lt;b&gt;mallory&lt;/b&gt;@example.org"));
    assert_null(strstr(out, "<b>"));
    assert_non_null(strstr(out, "<span class=\"chip used\">IMAP &ndash; used in the last 30 days</span>"));
    assert_non_null(strstr(out, "<span class=\"chip\">POP3</span>"));
    assert_null(strstr(out, ">used_last_30_days<")); /* folded into the protocols row */
    assert_non_null(strstr(out, "<th scope=\"row\">archived</th><td>no</td>"));
    free(out);
    json_decref(details);

    char when[48];
    approval_format_time(0, when, sizeof when);
    assert_string_equal(when, "1970-01-01 00:00 UTC");
}

static void test_ratelimit(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(3, 10000, NULL);
    int retry = 0;
    assert_false(ratelimit_blocked(rl, "10.0.0.1", 1000, &retry));
    for (int i = 0; i < 3; i++)
        ratelimit_fail(rl, "10.0.0.1", 1000 + i);
    assert_true(ratelimit_blocked(rl, "10.0.0.1", 2000, &retry));
    assert_int_equal(retry, 9);
    /* Other addresses are not affected. */
    assert_false(ratelimit_blocked(rl, "10.0.0.2", 2000, &retry));
    /* The window ends. */
    assert_false(ratelimit_blocked(rl, "10.0.0.1", 11001, &retry));
    ratelimit_fail(rl, "10.0.0.1", 11001);
    assert_false(ratelimit_blocked(rl, "10.0.0.1", 11002, &retry));
    /* Many addresses: memory stays bounded and recent offenders stay blocked. */
    char addr[32];
    for (int i = 0; i < 3 * RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "192.0.%d.%d", i / 256, i % 256);
        ratelimit_fail(rl, addr, 20000);
    }
    for (int i = 0; i < 3; i++)
        ratelimit_fail(rl, "203.0.113.9", 20001);
    assert_true(ratelimit_blocked(rl, "203.0.113.9", 20002, &retry));
    ratelimit_free(rl);
}

/* A blocked client stays blocked for its whole window however many other
 * clients fail meanwhile (the table used to evict the oldest window). */
static void test_ratelimit_blocked_stays(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(3, 600000, NULL);
    int retry = 0;
    char addr[32];
    for (int i = 0; i < 3; i++)
        ratelimit_fail(rl, "203.0.113.9", 1000);
    assert_true(ratelimit_blocked(rl, "203.0.113.9", 1001, &retry));
    /* Ten times the table's size, one failure each, later than the block:
     * every slot of the blocked client's probe range is wanted many times. */
    for (int i = 0; i < 10 * RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "10.%d.%d.%d", i / 65536, (i / 256) % 256, i % 256);
        ratelimit_fail(rl, addr, 2000 + i / 1000);
    }
    assert_true(ratelimit_blocked(rl, "203.0.113.9", 100000, &retry));
    assert_int_equal(retry, 501);
    /* Many blocked clients: each stays blocked; clients that find no slot
     * share the overflow counter and are blocked together. */
    for (int i = 0; i < 2 * RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "172.16.%d.%d", i / 256, i % 256);
        for (int k = 0; k < 3; k++)
            ratelimit_fail(rl, addr, 200000);
    }
    int still = 0;
    for (int i = 0; i < 2 * RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "172.16.%d.%d", i / 256, i % 256);
        still += ratelimit_blocked(rl, addr, 200001, NULL);
    }
    assert_int_equal(still, 2 * RATELIMIT_SLOTS);
    assert_true(ratelimit_blocked(rl, "203.0.113.9", 200001, NULL));
    /* After the window, everyone starts afresh. */
    assert_false(ratelimit_blocked(rl, "203.0.113.9", 601000, NULL));
    assert_false(ratelimit_blocked(rl, "172.16.0.1", 800001, NULL));
    ratelimit_free(rl);
}

/* IPv6 clients are counted per /64; IPv4-mapped addresses as IPv4. */
static void test_ratelimit_ipv6_prefix(void **state)
{
    (void)state;
    char key[64];
    ratelimit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key, sizeof key);
    assert_string_equal(key, "2001:db8:1:2::/64");
    ratelimit_key("::ffff:192.0.2.7", key, sizeof key);
    assert_string_equal(key, "192.0.2.7");
    ratelimit_key("192.0.2.7", key, sizeof key);
    assert_string_equal(key, "192.0.2.7");
    struct ratelimit *rl = ratelimit_new(3, 10000, NULL);
    ratelimit_fail(rl, "2001:db8:1:2::1", 1000);
    ratelimit_fail(rl, "2001:db8:1:2:ffff::9", 1000);
    ratelimit_fail(rl, "2001:db8:1:2:1:2:3:4", 1000);
    assert_true(ratelimit_blocked(rl, "2001:db8:1:2::77", 1001, NULL));
    assert_false(ratelimit_blocked(rl, "2001:db8:1:3::1", 1001, NULL));
    for (int i = 0; i < 3; i++)
        ratelimit_fail(rl, "::ffff:198.51.100.1", 1000);
    assert_true(ratelimit_blocked(rl, "198.51.100.1", 1001, NULL));
    ratelimit_free(rl);
}

static void test_url_helpers(void **state)
{
    (void)state;
    char out[256], host[64];
    int port = 0;
    assert_int_equal(web_url_origin("https://Assent.Example.org:443/a/x?y", out, sizeof out), 0);
    assert_string_equal(out, "https://assent.example.org");
    assert_int_equal(web_url_origin("http://127.0.0.1:8080", out, sizeof out), 0);
    assert_string_equal(out, "http://127.0.0.1:8080");
    assert_int_equal(web_url_origin("http://h:80/", out, sizeof out), 0);
    assert_string_equal(out, "http://h");
    assert_int_equal(web_url_origin("null", out, sizeof out), -1);
    assert_int_equal(web_url_origin("ftp://h", out, sizeof out), -1);
    assert_int_equal(web_url_origin("http://user@h", out, sizeof out), -1);
    assert_int_equal(web_url_origin("http://", out, sizeof out), -1);

    assert_int_equal(web_parse_listen("127.0.0.1:8080", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(web_parse_listen("[::1]:9", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9);
    assert_int_equal(web_parse_listen("localhost", host, sizeof host, &port), -1);
    assert_int_equal(web_parse_listen(":80", host, sizeof host, &port), -1);
    assert_int_equal(web_parse_listen("h:70000", host, sizeof host, &port), -1);
    assert_int_equal(web_parse_listen("h:8x", host, sizeof host, &port), -1);
}

/* A trusted reverse proxy is never blocked: it speaks for many clients. */
static void test_ratelimit_exempt_proxy(void **state)
{
    (void)state;
    struct netaddr_list *proxies = NULL;
    struct as_err err = {0};
    assert_int_equal(netaddr_list_parse("10.0.0.1", &proxies, &err), AS_OK);
    struct ratelimit *rl = ratelimit_new(3, 10000, proxies);
    for (int i = 0; i < 10; i++) {
        ratelimit_fail(rl, "10.0.0.1", 1000 + i);
        ratelimit_fail(rl, "10.0.0.2", 1000 + i);
    }
    assert_false(ratelimit_blocked(rl, "10.0.0.1", 2000, NULL));
    assert_true(ratelimit_blocked(rl, "10.0.0.2", 2000, NULL));
    ratelimit_free(rl);
    netaddr_list_free(proxies);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_tokens),
        cmocka_unit_test(test_csrf),          cmocka_unit_test(test_request_hash),
        cmocka_unit_test(test_html_escaping), cmocka_unit_test(test_details_rendering),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_ratelimit_exempt_proxy),
        cmocka_unit_test(test_ratelimit_blocked_stays),
        cmocka_unit_test(test_ratelimit_ipv6_prefix),     cmocka_unit_test(test_url_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
