/*
 * console.c - the admin console's routing, sessions and layout (see
 * console.h): the route table with each page's least role, the checks a
 * request gets before its page, login with a token and logout, and the
 * page shell (stylesheet, CSP, navigation) and helpers the pages share.
 *
 * Sessions.  Logging in takes an API token (or the admin_token_file token)
 * typed into a form; the session gets a new random cookie (32 bytes from
 * the CSPRNG, base64url), stored only as its SHA-256 (db/db_sessions.h), so
 * every node sharing the database knows it.  The cookie is HttpOnly,
 * SameSite=Strict, Path=/console, with Max-Age, and Secure when the server
 * speaks TLS or public_url is https.  A session has the token's name and
 * role; it ends after console_session_hours (never after its token
 * expires), when its token is revoked, or at logout, which deletes it.
 *
 * CSRF.  Every state-changing request is a POST of a form carrying a token
 * HMAC'd with the installation's CSRF secret (shared by the nodes through
 * the database) over the session's hash and the time (approvals/token.h).
 * The login form has no session yet: its token is bound to a random
 * pre-login cookie (WEB_AUTH_LOGIN_COOKIE) set by the login page, so a
 * login form posted from another site fails.  Posts must also come from
 * this origin (Sec-Fetch-Site, Origin) as a urlencoded form.
 */
#include "web/console.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "approvals/token.h"
#include "base/config.h"
#include "base/encode.h"
#include "base/log.h"
#include "db/db_sessions.h"
#include "engine/app.h"
#include "web/approval_pages.h"
#include "web/ratelimit.h"
#include "web/routes.h"
#include "web/signin.h"

#define COOKIE_BYTES 32
#define LOGIN_COOKIE_MAX_AGE_S 3600
#define LOGIN_CSRF_MAX_AGE_MS (3600 * 1000LL)
#define ARG_MAX 256

/*
 * The console's stylesheet, inline and allowed by its hash (console_csp).
 * Colours meet WCAG AA on white; tables scroll sideways on a phone.
 */
static const char console_css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1a1a1a;background:#f4f5f7}"
    "header{background:#12355b;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;"
    "align-items:center;gap:.25rem 1rem}"
    "header a{color:#fff;text-decoration:none;padding:.2rem .4rem;border-radius:3px}"
    "header a.on{background:#fff;color:#12355b;font-weight:600}"
    "header .brand{font-weight:700;margin-right:1rem}"
    "header .who{margin-left:auto;font-size:.85rem}"
    "header form{display:inline;margin:0}"
    "header button{background:transparent;color:#fff;border:1px solid #fff;padding:.15rem .6rem;"
    "min-width:0;font-weight:400}"
    "main{max-width:80rem;margin:0 auto;padding:1rem;background:#fff;min-height:100vh}"
    "h1{font-size:1.4rem;margin:.25rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}"
    "table{border-collapse:collapse;width:100%;font-size:.9rem}"
    ".scroll{overflow-x:auto}"
    "th,td{text-align:left;vertical-align:top;padding:.3rem .45rem;border-bottom:1px solid #d0d4da}"
    "th{font-weight:600;color:#333;background:#f0f2f5}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".p-on{color:#8a1c1c;font-weight:600}.p-off{color:#4a4a4a}"
    "pre{background:#f0f2f5;padding:.6rem;overflow-x:auto;font-size:.85rem;border-radius:4px}"
    "code{word-break:break-all}"
    "label{font-weight:600;margin-right:.3rem}"
    "input[type=text],input[type=password],input[type=search],select,textarea{font:inherit;"
    "padding:.3rem .4rem;border:1px solid #6b7280;border-radius:4px}"
    "input[type=text].wide,input[type=search].wide{width:min(40rem,100%)}"
    "textarea{width:100%;min-height:6rem;font-family:ui-monospace,monospace;font-size:.85rem}"
    "button{font:inherit;font-weight:600;padding:.4rem 1rem;border:0;border-radius:4px;"
    "color:#fff;background:#0b5394;cursor:pointer}"
    "button.danger{background:#8a1c1c}button.ok{background:#0b6e2e}"
    "button:focus,a:focus,input:focus{outline:3px solid #1a1a1a;outline-offset:2px}"
    ".filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:.5rem 0 1rem}"
    ".filters div{display:flex;flex-direction:column}"
    ".actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:.75rem 0}"
    ".box{border:1px solid #d0d4da;border-radius:4px;padding:.75rem 1rem;margin:.75rem 0}"
    ".kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}"
    ".kpi .value{font-size:1.8rem;font-weight:700}"
    ".note{color:#4a4a4a;font-size:.85rem}"
    ".notice{padding:.6rem 1rem;border:1px solid #0b6e2e;background:#e6f4ea;border-radius:4px}"
    ".error{padding:.6rem 1rem;border:1px solid #8a1c1c;background:#fbeaea;border-radius:4px;"
    "color:#8a1c1c;font-weight:600}"
    ".pager{margin:1rem 0}"
    "svg{max-width:100%;height:auto}"
    "table.source td{padding:0 .45rem;border:0}table.source code{white-space:pre-wrap}"
    "table.source .diag{display:block;white-space:normal}"
    ".line-bad{background:#fbeaea}";

static pthread_once_t csp_once = PTHREAD_ONCE_INIT;
static char csp_value[512];

static void csp_init(void)
{
    html_csp_for(console_css, sizeof console_css - 1, csp_value, sizeof csp_value);
}

/* The console's Content-Security-Policy: no script at all, its stylesheet by hash. */
static const char *console_csp(void)
{
    pthread_once(&csp_once, csp_init);
    return csp_value;
}

/* ---- routes ---- */

struct console_route {
    unsigned method;    /* WEB_GET (HEAD too) or WEB_POST */
    const char *path;   /* below /console/; "{}" matches one segment */
    enum api_role role; /* the least role (API_ROLE_NONE: no session needed) */
    console_handler handler;
};

static void console_login(struct console_call *c);
static void console_login_post(struct console_call *c);
static void console_logout(struct console_call *c);
static void console_logout_post(struct console_call *c);

/* A literal segment is listed before "{}" (the first match wins). */
static const struct console_route console_routes[] = {
    {WEB_GET, "login", API_ROLE_NONE, console_login},
    {WEB_POST, "login", API_ROLE_NONE, console_login_post},
    {WEB_GET, "logout", API_ROLE_VIEWER, console_logout},
    {WEB_POST, "logout", API_ROLE_VIEWER, console_logout_post},
    {WEB_GET, "overview", API_ROLE_VIEWER, console_overview},
    {WEB_GET, "users", API_ROLE_VIEWER, console_users},
    {WEB_GET, "users.csv", API_ROLE_VIEWER, console_users_csv},
    /* A preview changes nothing; starting runs or granting exceptions checks
     * operator inside. */
    {WEB_POST, "users/bulk", API_ROLE_VIEWER, console_bulk},
    {WEB_GET, "runs", API_ROLE_VIEWER, console_runs},
    {WEB_GET, "runs/{}", API_ROLE_VIEWER, console_run},
    {WEB_POST, "runs/{}/cancel", API_ROLE_OPERATOR, console_run_cancel},
    {WEB_POST, "runs/{}/retry", API_ROLE_OPERATOR, console_run_retry},
    {WEB_GET, "approvals", API_ROLE_VIEWER, console_approvals},
    {WEB_GET, "approvals/{}", API_ROLE_VIEWER, console_approval},
    {WEB_POST, "approvals/{}/decide", API_ROLE_OPERATOR, console_approval_decide},
    {WEB_GET, "kpis", API_ROLE_VIEWER, console_kpis},
    {WEB_GET, "kpis/{}", API_ROLE_VIEWER, console_kpi},
    {WEB_POST, "kpis/{}/evaluate", API_ROLE_OPERATOR, console_kpi_evaluate},
    {WEB_POST, "kpis/{}/trigger", API_ROLE_OPERATOR, console_kpi_trigger},
    {WEB_GET, "exceptions", API_ROLE_VIEWER, console_exceptions},
    {WEB_POST, "exceptions", API_ROLE_OPERATOR, console_exception_add},
    {WEB_POST, "exceptions/{}/remove", API_ROLE_OPERATOR, console_exception_remove},
    {WEB_GET, "workflows", API_ROLE_VIEWER, console_workflows},
    {WEB_GET, "workflows/validate", API_ROLE_VIEWER, console_workflow_validate},
    /* Validating changes nothing; it is a POST because a workflow is long. */
    {WEB_POST, "workflows/validate", API_ROLE_VIEWER, console_workflow_validate},
    {WEB_GET, "tokens", API_ROLE_ADMIN, console_tokens},
    {WEB_POST, "tokens", API_ROLE_ADMIN, console_token_add},
    {WEB_POST, "tokens/revoke", API_ROLE_ADMIN, console_token_revoke},
};

#define N_ROUTES (sizeof console_routes / sizeof console_routes[0])

/* ---- cookies and CSRF ---- */

/* 1 when cookies must be Secure: TLS here, an https public_url, or a
 * trusted proxy saying the client came over https (web_req.https). */
static int cookies_secure(struct web_req *req)
{
    return req->https;
}

static void set_cookie(struct console_call *c, const char *name, const char *value,
                       int64_t max_age_s)
{
    char h[400];
    snprintf(h, sizeof h, "%s=%s; Path=/console; Max-Age=%lld; HttpOnly; SameSite=Strict%s", name,
             value, (long long)max_age_s, cookies_secure(c->req) ? "; Secure" : "");
    web_resp_header(c->resp, "Set-Cookie", h);
}

/* A new random cookie value (COOKIE_BYTES, base64url) into out; 0 or -1. */
static int new_cookie(char *out, size_t size)
{
    unsigned char raw[COOKIE_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    size_t n = encode_b64url(raw, sizeof raw, out, size);
    OPENSSL_cleanse(raw, sizeof raw);
    return n ? 0 : -1;
}

/* What a form's CSRF token is bound to: the session, or the login cookie. */
static void csrf_binding(const char *kind, const char *hash, char *out, size_t size)
{
    snprintf(out, size, "console-%s:%s", kind, hash);
}

static void csrf_issue(struct console_call *c, const char *kind, const char *hash)
{
    char bind[128];
    size_t secret_len = 0;
    const unsigned char *secret = web_server_csrf_secret(c->req->server, &secret_len);
    csrf_binding(kind, hash, bind, sizeof bind);
    token_csrf_issue(secret, secret_len, bind, c->req->now_ms, c->csrf, sizeof c->csrf);
}

static enum as_code csrf_check(struct console_call *c, const char *kind, const char *hash,
                               int64_t max_age_ms)
{
    char bind[128];
    size_t secret_len = 0;
    const unsigned char *secret = web_server_csrf_secret(c->req->server, &secret_len);
    const char *presented = c->form ? form_get(c->form, "csrf") : NULL;
    if (!presented)
        return AS_EAUTH;
    csrf_binding(kind, hash, bind, sizeof bind);
    return token_csrf_verify(secret, secret_len, bind, presented, c->req->now_ms, max_age_ms);
}

static int64_t session_max_ms(struct web_req *req)
{
    return config_int(req->app->cfg, "console_session_hours") * 3600 * 1000;
}

/* ---- layout ---- */

static void page_head(struct html_buf *b, const char *title)
{
    html_raw(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<meta name=\"referrer\" content=\"no-referrer\">"
                "<meta name=\"robots\" content=\"noindex, nofollow\"><title>");
    html_text(b, title);
    html_raw(b, " - Assent console</title><style>");
    html_raw(b, console_css);
    html_raw(b, "</style></head>\n<body>\n");
}

void console_page_begin(struct console_call *c, struct html_buf *b, const char *title,
                        const char *current)
{
    static const struct {
        const char *key, *label;
    } nav[] = {
        {"overview", "Overview"}, {"users", "Users"},           {"runs", "Runs"},
        {"approvals", "Approvals"}, {"kpis", "KPIs"},           {"exceptions", "Exceptions"},
        {"workflows", "Workflows"},
    };
    page_head(b, title);
    html_raw(b, "<header><span class=\"brand\">Assent console</span>\n<nav>");
    for (size_t i = 0; i < sizeof nav / sizeof nav[0]; i++)
        html_rawf(b, "<a href=\"/console/%s\"%s>%s</a> ", nav[i].key,
                  current && strcmp(current, nav[i].key) == 0 ? " class=\"on\" aria-current=\"page\""
                                                              : "",
                  nav[i].label);
    if (c->who.role >= API_ROLE_ADMIN)
        html_rawf(b, "<a href=\"/console/tokens\"%s>Tokens</a> ",
                  current && strcmp(current, "tokens") == 0 ? " class=\"on\" aria-current=\"page\""
                                                            : "");
    html_raw(b, "</nav>\n<span class=\"who\">");
    html_text(b, c->who.name);
    html_rawf(b, " (%s) ", api_role_name(c->who.role));
    console_form_begin(c, b, "/console/logout");
    html_raw(b, "<button type=\"submit\">Log out</button></form></span></header>\n<main>\n<h1>");
    html_text(b, title);
    html_raw(b, "</h1>\n");
    console_notice(c, b);
}

void console_page_end(struct console_call *c, struct html_buf *b, int status)
{
    html_raw(b, "\n</main></body></html>\n");
    web_resp_html(c->resp, status, b);
}

void console_form_begin(struct console_call *c, struct html_buf *b, const char *action)
{
    html_raw(b, "<form method=\"post\" action=\"");
    html_text(b, action);
    html_raw(b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
    html_text(b, c->csrf);
    html_raw(b, "\">");
}

void console_message(struct console_call *c, int status, const char *title, const char *message)
{
    struct html_buf b = {0};
    if (c->who.role != API_ROLE_NONE) {
        console_page_begin(c, &b, title, NULL);
    } else {
        page_head(&b, title);
        html_raw(&b, "<main>\n<h1>");
        html_text(&b, title);
        html_raw(&b, "</h1>\n");
    }
    html_raw(&b, status >= 400 ? "<p class=\"error\" role=\"alert\">" : "<p>");
    html_text(&b, message);
    html_raw(&b, "</p>\n<p><a href=\"/console/overview\">Back to the overview</a></p>\n");
    console_page_end(c, &b, status);
}

void console_redirect(struct console_call *c, const char *location)
{
    web_resp_header(c->resp, "Location", location);
    web_resp_take(c->resp, 303, "text/plain; charset=utf-8", strdup("See Other"), 9);
}

int console_need(struct console_call *c, enum api_role need)
{
    if (c->who.role >= need)
        return 1;
    char msg[256];
    snprintf(msg, sizeof msg, "Your session (%s) has the role %s; this needs %s.", c->who.name,
             api_role_name(c->who.role), api_role_name(need));
    console_message(c, 403, "Not allowed", msg);
    return 0;
}

/* ---- values ---- */

const char *console_param(struct console_call *c, const char *name)
{
    const char *v = c->form ? form_get(c->form, name) : NULL;
    if (!v)
        v = web_req_query(c->req, name);
    return v && *v ? v : NULL;
}

int console_int_param(struct console_call *c, const char *name, int64_t dflt, int64_t max,
                      int64_t *out)
{
    const char *v = console_param(c, name);
    *out = dflt;
    if (!v)
        return 1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 1 || n > max)
        return 0;
    *out = n;
    return 1;
}

void console_url_value(struct html_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char enc[4];
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p)) {
            html_rawn(b, (const char *)p, 1);
        } else {
            enc[0] = '%';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            enc[3] = '\0';
            html_raw(b, enc);
        }
    }
}

void console_time(int64_t ms, char *buf, size_t size)
{
    if (!ms) {
        snprintf(buf, size, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm))
        snprintf(buf, size, "%lld", (long long)ms);
}

void console_ago(int64_t now, int64_t ms, char *buf, size_t size)
{
    int64_t d = now - ms, a = d < 0 ? -d : d;
    int64_t s = a / 1000, m = s / 60, h = m / 60, days = h / 24;
    char span[64];
    if (days >= 2)
        snprintf(span, sizeof span, "%lld d %lld h", (long long)days, (long long)(h % 24));
    else if (h >= 1)
        snprintf(span, sizeof span, "%lld h %lld min", (long long)h, (long long)(m % 60));
    else if (m >= 1)
        snprintf(span, sizeof span, "%lld min", (long long)m);
    else
        snprintf(span, sizeof span, "%lld s", (long long)s);
    snprintf(buf, size, d >= 0 ? "%s ago" : "in %s", span);
}

void console_notice(struct console_call *c, struct html_buf *b)
{
    static const struct {
        const char *code, *text;
    } notices[] = {
        {"cancelled", "The run was cancelled."},
        {"retried", "The failed step was queued again."},
        {"decided", "The decision was recorded; the run goes on."},
        {"exception_added", "The exception was granted."},
        {"exception_removed", "The exception was removed."},
        {"evaluated", "The KPI was evaluated and its value recorded."},
        {"token_revoked", "The token was revoked; its sessions have ended."},
    };
    const char *done = web_req_query(c->req, "done");
    for (size_t i = 0; done && i < sizeof notices / sizeof notices[0]; i++) {
        if (strcmp(done, notices[i].code) == 0) {
            html_raw(b, "<p class=\"notice\" role=\"status\">");
            html_text(b, notices[i].text);
            html_raw(b, "</p>\n");
        }
    }
}

void console_td(struct html_buf *b, const char *text)
{
    html_raw(b, "<td>");
    html_text(b, text ? text : "");
    html_raw(b, "</td>");
}

void console_error_p(struct html_buf *b, const char *text)
{
    html_raw(b, "<p class=\"error\">");
    html_text(b, text ? text : "");
    html_raw(b, "</p>\n");
}

/* ---- login and logout ---- */

/* The login page: the form, its CSRF token bound to the pre-login cookie
 * (made now when the browser has none). */
static void login_form(struct console_call *c, int status, const char *error)
{
    char cookie[96], hash[ENCODE_SHA256_HEX_SIZE];
    if (!web_auth_cookie(c->req, WEB_AUTH_LOGIN_COOKIE, cookie, sizeof cookie) || !cookie[0] ||
        strlen(cookie) > 64) {
        if (new_cookie(cookie, sizeof cookie) != 0) {
            console_message(c, 503, "Try again", "The server could not make a login form.");
            return;
        }
        set_cookie(c, WEB_AUTH_LOGIN_COOKIE, cookie, LOGIN_COOKIE_MAX_AGE_S);
    }
    encode_sha256_hex(cookie, strlen(cookie), hash);
    csrf_issue(c, "login", hash);
    struct html_buf b = {0};
    page_head(&b, "Sign in");
    html_raw(&b, "<main>\n<h1>Assent console</h1>\n");
    if (error) {
        html_raw(&b, "<p class=\"error\" role=\"alert\">");
        html_text(&b, error);
        html_raw(&b, "</p>\n");
    }
    html_raw(&b, "<p>Sign in with an API token (<code>assent token create --name NAME --role "
                 "viewer|operator|admin</code>). The session has the token's role and ends "
                 "when the token is revoked.</p>\n");
    if (web_signin_enabled(c->req)) {
        html_raw(&b, "<h2>With your Microsoft work account</h2>\n<p>Your role comes from the "
                     "app roles Assent.Viewer, Assent.Operator or Assent.Admin.</p>\n");
        web_signin_button(&b, "/console/overview");
        html_raw(&b, "<h2>With an API token</h2>\n");
    }
    console_form_begin(c, &b, "/console/login");
    html_raw(&b, "<p><label for=\"token\">Token</label><br><input type=\"password\" id=\"token\" "
                 "name=\"token\" autocomplete=\"off\" size=\"56\" required></p>\n"
                 "<div class=\"actions\"><button type=\"submit\">Sign in</button></div></form>\n");
    console_page_end(c, &b, status);
}

static void console_login(struct console_call *c)
{
    struct web_principal who;
    struct as_err err = {0};
    /* Signed in already: straight on. */
    if (web_auth_identify(c->req, WEB_AUTH_SESSION, &who, &err) == WEB_AUTH_OK) {
        console_redirect(c, "/console/overview");
        return;
    }
    login_form(c, 200, NULL);
}

static void console_login_post(struct console_call *c)
{
    struct as_err err = {0};
    struct ratelimit *rl = web_server_ratelimit(c->req->server);
    int retry_after = 0;
    char cookie[96], hash[ENCODE_SHA256_HEX_SIZE];
    if (ratelimit_blocked(rl, c->req->client_addr, c->req->now_ms, &retry_after)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        web_resp_header(c->resp, "Retry-After", ra);
        console_message(c, 429, "Too many attempts",
                        "Too many failed sign-ins from your address. Wait a while and try again.");
        return;
    }
    if (!web_auth_cookie(c->req, WEB_AUTH_LOGIN_COOKIE, cookie, sizeof cookie) || !cookie[0] ||
        encode_sha256_hex(cookie, strlen(cookie), hash) != 0 ||
        csrf_check(c, "login", hash, LOGIN_CSRF_MAX_AGE_MS) != AS_OK) {
        login_form(c, 403, "The form was not this server's, or it was open too long. Sign in "
                           "again on this page.");
        return;
    }
    /* A pasted token may carry spaces or a line break around it. */
    char token_buf[4100];
    const char *token = form_get(c->form, "token");
    if (token) {
        while (*token == ' ' || *token == '\t' || *token == '\r' || *token == '\n')
            token++;
        size_t tl = strnlen(token, sizeof token_buf - 1);
        while (tl && strchr(" \t\r\n", token[tl - 1]))
            tl--;
        memcpy(token_buf, token, tl);
        token_buf[tl] = '\0';
        token = token_buf;
    }
    struct web_principal who;
    memset(&who, 0, sizeof who);
    enum web_auth_found found =
        token && *token ? web_auth_token(c->req, token, &who, &err) : WEB_AUTH_REFUSED;
    if (found == WEB_AUTH_FAILED) {
        LOG_ERROR("console", "checking a token failed: %s", err.msg);
        login_form(c, 503, "The token could not be checked right now. Try again in a minute.");
        return;
    }
    if (found != WEB_AUTH_OK) {
        ratelimit_fail(rl, c->req->client_addr, c->req->now_ms);
        LOG_INFO("console", "refused a sign-in from %s: %s", c->req->client_addr,
                 token && *token ? err.msg : "no token");
        login_form(c, 401, token && *token ? "This token is unknown, revoked or expired."
                                           : "Enter a token.");
        return;
    }

    /* A new session: its cookie, stored as a hash, lasting at most as long
     * as the token does. */
    struct db_api_token t;
    memset(&t, 0, sizeof t);
    int64_t expires = c->req->now_ms + session_max_ms(c->req);
    if (who.token_id && api_token_check(c->req->app->db, token, c->req->now_ms, &t, &err) == AS_OK &&
        t.expires_at && t.expires_at < expires)
        expires = t.expires_at;
    char session[96];
    struct db_console_session s;
    memset(&s, 0, sizeof s);
    if (new_cookie(session, sizeof session) != 0 ||
        encode_sha256_hex(session, strlen(session), s.session_hash) != 0) {
        console_message(c, 503, "Try again", "The server could not make a session.");
        return;
    }
    s.token_id = who.token_id;
    snprintf(s.name, sizeof s.name, "%s", who.name);
    snprintf(s.role, sizeof s.role, "%s", api_role_name(who.role));
    s.created_at = c->req->now_ms;
    s.expires_at = expires;
    snprintf(s.client_addr, sizeof s.client_addr, "%s", c->req->client_addr);
    const char *agent = web_req_header(c->req, "User-Agent");
    snprintf(s.user_agent, sizeof s.user_agent, "%s", agent ? agent : "");
    enum as_code rc = db_console_session_add(c->req->app->db, &s, who.via, &err);
    if (rc) {
        OPENSSL_cleanse(session, sizeof session);
        LOG_ERROR("console", "storing a session failed: %s", err.msg);
        console_message(c, 503, "Try again", "The session could not be stored. Try again in a minute.");
        return;
    }
    LOG_INFO("console", "%s (%s) signed in from %s", s.name, s.role, c->req->client_addr);
    snprintf(c->resp->log_note, sizeof c->resp->log_note, "by=%s", s.name);
    set_cookie(c, WEB_AUTH_COOKIE, session, (expires - c->req->now_ms + 999) / 1000);
    set_cookie(c, WEB_AUTH_LOGIN_COOKIE, "", 0);
    OPENSSL_cleanse(session, sizeof session);
    OPENSSL_cleanse(token_buf, sizeof token_buf);
    console_redirect(c, "/console/overview");
}

/* GET /console/logout: a page with the button (a GET changes nothing). */
static void console_logout(struct console_call *c)
{
    struct html_buf b = {0};
    console_page_begin(c, &b, "Log out", NULL);
    html_raw(&b, "<p>End this session? Its cookie stops working on every node at once.</p>\n");
    console_form_begin(c, &b, "/console/logout");
    html_raw(&b, "<div class=\"actions\"><button type=\"submit\">Log out</button></div></form>\n");
    console_page_end(c, &b, 200);
}

static void console_logout_post(struct console_call *c)
{
    struct as_err err = {0};
    struct db_console_session s;
    enum as_code rc = db_console_session_delete(c->req->app->db, c->who.session_hash, &s, &err);
    if (rc && rc != AS_ENOTFOUND) {
        LOG_ERROR("console", "ending a session failed: %s", err.msg);
        console_message(c, 503, "Try again", "The session could not be ended. Try again.");
        return;
    }
    LOG_INFO("console", "%s signed out", c->who.name);
    set_cookie(c, WEB_AUTH_COOKIE, "", 0);
    console_redirect(c, "/console/login");
}

/* ---- dispatch ---- */

/* Where a request without a (live) session goes: the login page, with the
 * session cookie cleared when one came. */
static void to_login(struct console_call *c, int had_cookie)
{
    if (had_cookie)
        set_cookie(c, WEB_AUTH_COOKIE, "", 0);
    console_redirect(c, "/console/login");
}

/* The checks of a POST before its page: origin, media type, form, CSRF.
 * 1 when it may go on; else 0 with the answer given. */
static int post_checks(struct console_call *c, int login)
{
    struct as_err err = {0};
    const char *ct = web_req_header(c->req, "Content-Type");
    if (!approval_same_origin(web_req_header(c->req, "Sec-Fetch-Site"),
                              web_req_header(c->req, "Origin"),
                              web_server_public_origin(c->req->server))) {
        console_message(c, 403, "Refused", "This form was sent from another site.");
        return 0;
    }
    /* A form, or a form with a file (the workflow to validate). */
    int multipart = ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
    if (!multipart && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
        console_message(c, 415, "Unsupported form", "Send the forms of these pages only.");
        return 0;
    }
    enum as_code frc =
        multipart ? form_parse_multipart(c->req->body, c->req->body_len, ct, CONSOLE_MAX_BODY,
                                         CONSOLE_MAX_FIELDS, &c->form, &err)
                  : form_parse_max(c->req->body, c->req->body_len, CONSOLE_MAX_BODY,
                                   CONSOLE_MAX_FIELDS, &c->form, &err);
    if (frc != AS_OK) {
        console_message(c, err.code == AS_ELIMIT ? 413 : 400, "Bad request", err.msg);
        return 0;
    }
    if (login)
        return 1; /* checked against the login cookie by the login page */
    enum as_code crc = csrf_check(c, "session", c->who.session_hash, session_max_ms(c->req));
    if (crc == AS_EEXPIRED) {
        console_message(c, 403, "Form expired", "This page was open too long. Reload it and try again.");
        return 0;
    }
    if (crc != AS_OK) {
        console_message(c, 403, "Refused",
                        "The form has no valid CSRF token for this session. Reload the page and "
                        "try again.");
        return 0;
    }
    return 1;
}

void web_console(struct web_req *req, struct web_resp *resp)
{
    char arg[ARG_MAX] = "";
    struct console_call c = {.req = req, .resp = resp, .arg = arg};
    resp->csp = console_csp();
    const char *path = req->param;
    /* /console and /console/ lead to the login page (which goes on to the
     * overview when signed in). */
    if (!*path) {
        console_redirect(&c, "/console/login");
        return;
    }
    unsigned method = strcmp(req->method, "POST") == 0 ? WEB_POST : WEB_GET;
    const struct console_route *route = NULL;
    int path_known = 0;
    for (size_t i = 0; i < N_ROUTES && !route; i++) {
        char a[ARG_MAX] = "";
        if (!web_route_match(console_routes[i].path, path, a, sizeof a))
            continue;
        path_known = 1;
        if (console_routes[i].method == method) {
            route = &console_routes[i];
            memcpy(arg, a, sizeof arg);
        }
    }
    if (!route) {
        if (path_known) {
            web_resp_header(resp, "Allow", method == WEB_POST ? "GET, HEAD" : "POST");
            console_message(&c, 405, "Method not allowed", "This address does not take that method.");
        } else {
            console_message(&c, 404, "Not found", "There is no console page at this address.");
        }
        return;
    }
    if (route->role != API_ROLE_NONE) {
        struct as_err err = {0};
        char probe[128];
        int had_cookie = web_auth_cookie(req, WEB_AUTH_COOKIE, probe, sizeof probe);
        switch (web_auth_identify(req, WEB_AUTH_SESSION, &c.who, &err)) {
        case WEB_AUTH_OK:
            break;
        case WEB_AUTH_FAILED:
            LOG_ERROR("console", "checking a session failed: %s", err.msg);
            console_message(&c, 503, "Try again", "The session could not be checked right now.");
            return;
        default:
            to_login(&c, had_cookie);
            return;
        }
        snprintf(resp->log_note, sizeof resp->log_note, "by=%s", c.who.name);
        csrf_issue(&c, "session", c.who.session_hash);
        if (!console_need(&c, route->role))
            return;
    }
    if (method == WEB_POST && !post_checks(&c, route->role == API_ROLE_NONE))
        goto out;
    route->handler(&c);
out:
    form_free(c.form);
}
