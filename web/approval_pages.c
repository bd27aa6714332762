/* approval_pages.c - GET shows, POST decides: the pages of /a/{token} (see approval_pages.h). */
#include "web/approval_pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "approvals/approval_decide.h"
#include "db/db.h"
#include "db/db_approvals.h"
#include "engine/app.h"
#include "engine/engine.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "web/form.h"
#include "web/ratelimit.h"
#include "web/routes.h"
#include "web/server.h"
#include "approvals/approval_render.h"
#include "approvals/token.h"
#include "db/db_events.h"
#include "m365/oidc.h"
#include "web/signin.h"

#define COMMENT_MAX_BYTES 4000

static void row(struct html_buf *b, const char *label, const char *value)
{
    html_raw(b, "<tr><th scope=\"row\">");
    html_text(b, label);
    html_raw(b, "</th><td>");
    html_text(b, value);
    html_raw(b, "</td></tr>\n");
}

/* "Any one of 2 approvers decides" etc. */
static void policy_text(const json_t *view, char *buf, size_t size)
{
    const char *policy = json_string_value(json_object_get(view, "policy"));
    size_t n = json_array_size(json_object_get(view, "approvers"));
    if (n <= 1)
        snprintf(buf, size, "You alone");
    else if (policy && strcmp(policy, "all") == 0)
        snprintf(buf, size, "All %zu approvers must approve; one rejection rejects", n);
    else if (policy && strcmp(policy, "sequential") == 0)
        snprintf(buf, size, "%zu approvers in turn; one rejection rejects", n);
    else
        snprintf(buf, size, "The first of %zu approvers to answer decides", n);
}

static const json_t *my_row(const json_t *view)
{
    return json_array_get(json_object_get(view, "approvers"),
                          (size_t)json_integer_value(json_object_get(view, "me")));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static long long num(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* Append a part that was kept. */
static void add_part(struct html_buf *b, const struct approval_part *part)
{
    if (part->b.len)
        html_rawn(b, part->b.p, part->b.len);
}


/* The confirmation page: everything about the request, and the form. */
static void render_confirm(struct web_req *req, struct web_resp *resp, const json_t *view,
                           const char *link_hash, const char *error, int status,
                           const char *signed_in_as)
{
    struct html_buf b = {0};
    char when[48], policy[128], csrf[96];
    const json_t *me = my_row(view);
    size_t secret_len = 0;
    const unsigned char *secret = web_server_csrf_secret(req->server, &secret_len);
    token_csrf_issue(secret, secret_len, link_hash, req->now_ms, csrf, sizeof csrf);

    html_page_begin(&b, str(view, "subject"));
    html_raw(&b, "<h1>");
    html_text(&b, str(view, "subject"));
    html_raw(&b, "</h1>\n");
    if (error) {
        html_raw(&b, "<p class=\"status bad error\" role=\"alert\">");
        html_text(&b, error);
        html_raw(&b, "</p>\n");
    }
    if (signed_in_as) {
        html_raw(&b, "<p class=\"note\" id=\"signed-in\">Signed in as ");
        html_text(&b, signed_in_as);
        html_raw(&b, ".</p>\n");
    }
    html_raw(&b, "<p>Your decision is requested. Nothing happens until you press a button below.</p>\n");

    /* What the workflow put in the approval, each part rendered on its own
     * so that the page stays small whatever its size (see
     * APPROVAL_SHOW_MAX). */
    enum { P_MESSAGE, P_DETAILS, P_CHANGE, P_REQUEST, N_PARTS };
    struct approval_part parts[N_PARTS] = {
        [P_MESSAGE] = {.name = "message"},
        [P_DETAILS] = {.name = "details"},
        [P_CHANGE] = {.name = "configuration change"},
        [P_REQUEST] = {.name = "request"},
    };
    html_text(&parts[P_MESSAGE].b, str(view, "message"));
    const json_t *details = json_object_get(view, "details");
    if (json_object_size(details))
        approval_render_details(&parts[P_DETAILS].b, details);
    approval_render_change(&parts[P_CHANGE].b, view);
    char *request = json_dumps(json_object_get(view, "request"), JSON_INDENT(2) | JSON_SORT_KEYS);
    html_text(&parts[P_REQUEST].b, request ? request : "");
    free(request);
    approval_fit_parts(parts, N_PARTS, APPROVAL_SHOW_MAX, num(view, "id"));
    const char *hash = str(view, "request_hash");

    if (*str(view, "message")) {
        html_raw(&b, "<h2>What is asked</h2>\n");
        if (parts[P_MESSAGE].dropped) {
            approval_render_too_large(&b, "message", hash, 1);
        } else {
            html_raw(&b, "<p class=\"msg\">");
            add_part(&b, &parts[P_MESSAGE]);
            html_raw(&b, "</p>\n");
        }
    }
    html_raw(&b, "<h2>About this request</h2>\n<table>\n");
    row(&b, "Asked of", str(me, "email"));
    if (*str(view, "requested_by"))
        row(&b, "Requested by", str(view, "requested_by"));
    approval_format_time(num(view, "created_at"), when, sizeof when);
    row(&b, "Asked on", when);
    approval_format_time(num(view, "expires_at"), when, sizeof when);
    row(&b, "Decide by", when);
    policy_text(view, policy, sizeof policy);
    row(&b, "Who decides", policy);
    html_raw(&b, "</table>\n");

    if (json_object_size(details)) {
        html_raw(&b, "<h2>Details</h2>\n");
        if (parts[P_DETAILS].dropped)
            approval_render_too_large(&b, "details", hash, 1);
        else
            add_part(&b, &parts[P_DETAILS]);
    }
    html_raw(&b, "<h2>Exactly what will change</h2>\n");
    if (parts[P_CHANGE].dropped)
        approval_render_too_large(&b, "configuration change", hash, 1);
    else
        add_part(&b, &parts[P_CHANGE]);
    if (parts[P_REQUEST].dropped) {
        approval_render_too_large(&b, "request", hash, 1);
    } else {
        html_raw(&b, "<pre>");
        add_part(&b, &parts[P_REQUEST]);
        html_raw(&b, "</pre>\n");
    }
    for (int i = 0; i < N_PARTS; i++)
        html_buf_free(&parts[i].b);
    html_raw(&b, "<p class=\"note\">Fingerprint of this request (SHA-256): <code>");
    html_text(&b, hash);
    html_raw(&b, "</code>. What is executed later is checked against it.</p>\n");

    int comment_required = json_is_true(json_object_get(view, "require_comment_on_reject"));
    html_raw(&b, "<form method=\"post\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
    html_text(&b, csrf);
    html_raw(&b, "\">\n<label for=\"comment\">Comment");
    html_raw(&b, comment_required ? " (required to reject)" : " (optional)");
    html_rawf(&b, "</label>\n<textarea id=\"comment\" name=\"comment\" maxlength=\"%d\" rows=\"4\">"
                  "</textarea>\n",
              COMMENT_MAX_BYTES);
    html_raw(&b, "<div class=\"actions\">\n"
                 "<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"approve\">Approve</button>\n"
                 "<button type=\"submit\" name=\"decision\" value=\"reject\" class=\"reject\">Reject</button>\n"
                 "</div>\n</form>\n"
                 "<p class=\"note\">Opening this page decides nothing; only the buttons do. "
                 "This link is personal to you: please do not forward it.</p>\n");
    html_page_end(&b);
    web_resp_html(resp, status, &b);
}

/* A page that states an outcome: decided, expired, withdrawn. */
static void render_state(struct web_resp *resp, int status, const char *title, const char *css,
                         const char *line1, const char *comment, const json_t *view)
{
    struct html_buf b = {0};
    html_page_begin(&b, title);
    html_raw(&b, "<h1>");
    html_text(&b, title);
    html_rawf(&b, "</h1>\n<p class=\"status %s\">", css);
    html_text(&b, line1);
    html_raw(&b, "</p>\n");
    if (comment && *comment) {
        html_raw(&b, "<p>Comment:</p>\n<p class=\"msg\">");
        html_text(&b, comment);
        html_raw(&b, "</p>\n");
    }
    if (view) {
        html_raw(&b, "<h2>The request</h2>\n<p class=\"msg\">");
        html_text(&b, str(view, "subject"));
        html_raw(&b, "</p>\n");
    }
    html_page_end(&b);
    web_resp_html(resp, status, &b);
}

/* The page of a link that needs its approver signed in, to someone who is not. */
static void render_sign_in(struct web_req *req, struct web_resp *resp, const json_t *view)
{
    const json_t *me = my_row(view);
    struct html_buf b = {0};
    if (!web_signin_enabled(req)) {
        web_resp_page(resp, 503, "Sign-in unavailable",
                      "This request needs you to sign in with Microsoft, which this server does "
                      "not offer now. Ask the administrator of Assent.");
        return;
    }
    html_page_begin(&b, str(view, "subject"));
    html_raw(&b, "<h1>");
    html_text(&b, str(view, "subject"));
    html_raw(&b, "</h1>\n<p id=\"sign-in-needed\">This request is for ");
    html_text(&b, str(me, "email"));
    html_raw(&b, ". Sign in with your Microsoft work account to see it and answer. Opening this "
                 "page decides nothing.</p>\n");
    char ret[64];
    snprintf(ret, sizeof ret, "/a/%s", req->param);
    web_signin_button(&b, ret);
    html_page_end(&b);
    web_resp_html(resp, 200, &b);
}

static int run_open(const json_t *view)
{
    const char *s = str(view, "run_status");
    return strcmp(s, "running") == 0 || strcmp(s, "waiting") == 0;
}

/*
 * Show the state of a link: form, decided, expired or withdrawn.  Returns 1
 * when the link is open (the form was rendered), 0 when a state page was.
 * for_post: a POST to a link that is no longer open answers 409 where a GET
 * shows the decision with 200.
 */
static int show(struct web_req *req, struct web_resp *resp, const json_t *view,
                const char *link_hash, const char *error, int error_status, int for_post)
{
    char line[512], when[48];
    const json_t *me = my_row(view);
    const char *status = str(view, "status");
    /* Decisions first (they stand whatever happened to the run since), then
     * expiry, then a run that ended without a decision. */
    if (strcmp(status, "approved") == 0 || strcmp(status, "rejected") == 0) {
        approval_format_time(num(view, "decided_at"), when, sizeof when);
        snprintf(line, sizeof line, "%s by %s on %s.",
                 strcmp(status, "approved") == 0 ? "Approved" : "Rejected", str(view, "decided_by"),
                 when);
        render_state(resp, for_post ? 409 : 200, "Already decided",
                     strcmp(status, "approved") == 0 ? "ok" : "bad", line, str(view, "comment"),
                     view);
        return 0;
    }
    if (strcmp(status, "expired") == 0 ||
        (strcmp(status, "pending") == 0 && req->now_ms >= num(view, "expires_at"))) {
        approval_format_time(num(view, "expires_at"), when, sizeof when);
        snprintf(line, sizeof line,
                 "This link expired on %s without a decision. Ask the requester for a new one if "
                 "it is still needed.",
                 when);
        render_state(resp, 410, "Link expired", "bad", line, NULL, view);
        return 0;
    }
    if (!run_open(view)) {
        if (strcmp(str(view, "run_status"), "superseded") == 0)
            snprintf(line, sizeof line,
                     "This request is no longer needed: the tenant changed since it was sent "
                     "(see the run's timeline). Nothing will be done with an answer here.");
        else
            snprintf(line, sizeof line,
                     "This request was withdrawn: its workflow run was %s. Nothing will be done "
                     "with an answer here.",
                     str(view, "run_status"));
        render_state(resp, 410, "Request withdrawn", "bad", line, NULL, view);
        return 0;
    }
    const char *mine = str(me, "status");
    if (strcmp(mine, "approved") == 0 || strcmp(mine, "rejected") == 0) {
        approval_format_time(num(me, "decided_at"), when, sizeof when);
        snprintf(line, sizeof line,
                 "You %s this request on %s. It waits for the other approvers.", mine, when);
        render_state(resp, for_post ? 409 : 200, "Your answer is recorded", "ok", line,
                     str(me, "comment"), view);
        return 0;
    }
    if (strcmp(mine, "pending") != 0) {
        render_state(resp, 409, "Not open", "bad", "This link cannot be used now.", NULL, view);
        return 0;
    }
    /* An approval that asks for sign-in shows its form only to its approver,
     * signed in; anyone else (a mail scanner too) sees the sign-in page. */
    const char *signed_in_as = NULL;
    struct db_signin_session ss;
    if (json_is_true(json_object_get(view, "require_sign_in"))) {
        int found = web_signin_session(req, &ss);
        if (found < 0) {
            web_resp_page(resp, 503, "Try again", "Please try again in a minute.");
            return 1;
        }
        if (!found) {
            render_sign_in(req, resp, view);
            return 1;
        }
        if (!oidc_identity_is(str(me, "email"), ss.upn, ss.oid)) {
            snprintf(line, sizeof line, "Signed in as %s; this request is for %s.",
                     ss.upn[0] ? ss.upn : ss.oid, str(me, "email"));
            web_resp_page(resp, 403, "Not your request", line);
            return 1;
        }
        signed_in_as = ss.upn[0] ? ss.upn : ss.oid;
    }
    render_confirm(req, resp, view, link_hash, error, error ? error_status : 200, signed_in_as);
    return 1;
}

static void too_many(struct web_resp *resp, int retry_after)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after);
    web_resp_header(resp, "Retry-After", ra);
    web_resp_page(resp, 429, "Too many attempts",
                  "Too many invalid links were tried from your address. Wait a while and try again.");
}

static void unknown_link(struct web_req *req, struct web_resp *resp)
{
    ratelimit_fail(web_server_ratelimit(req->server), req->client_addr, req->now_ms);
    web_resp_page(resp, 404, "Unknown link",
                  "This approval link is not known. Check that the whole link was copied from "
                  "the email.");
}

/*
 * Is this POST from a page of ours?  Sec-Fetch-Site (sent by current
 * browsers) must be same-origin or none.  Origin, when given, must be
 * public_url's origin, except "null": our own pages carry
 * Referrer-Policy: no-referrer, under which Chromium sends "Origin: null"
 * for their form posts, so null passes only together with
 * Sec-Fetch-Site: same-origin.  Clients that send neither (curl, older
 * browsers) pass: the CSRF token is the real check.
 */
static int same_origin(const char *site, const char *origin, const char *public_origin)
{
    int site_same = site && strcasecmp(site, "same-origin") == 0;
    if (site && !site_same && strcasecmp(site, "none") != 0)
        return 0; /* cross-site, same-site (another subdomain) */
    if (!origin)
        return 1;
    if (strcmp(origin, "null") == 0)
        return site_same;
    char norm[512];
    if (web_url_origin(origin, norm, sizeof norm) != 0)
        return 0;
    return strcmp(norm, public_origin) == 0;
}

int approval_same_origin(const char *sec_fetch_site, const char *origin,
                         const char *public_origin)
{
    return same_origin(sec_fetch_site, origin, public_origin);
}

int approval_post_check(const char *sec_fetch_site, const char *origin,
                        const char *public_origin, const char *content_type)
{
    if (!same_origin(sec_fetch_site, origin, public_origin))
        return 403;
    if (!content_type ||
        strncasecmp(content_type, "application/x-www-form-urlencoded", 33) != 0)
        return 415;
    return 0;
}

int approval_answer_check(const struct form *form, const char **decision, const char **comment)
{
    *decision = form_get(form, "decision");
    *comment = form_get(form, "comment");
    if (!*decision || (strcmp(*decision, "approve") != 0 && strcmp(*decision, "reject") != 0))
        return 1;
    if (*comment && strlen(*comment) > COMMENT_MAX_BYTES)
        return 2;
    return 0;
}

/*
 * When the link is unknown or no longer open (decided, expired, withdrawn),
 * put the page a GET of it shows now into resp, with the POST's status
 * (404, 409 or 410), and return 1; else 0 (a read failure answers 503 and
 * counts as 1).
 */
static int closed_link(struct web_req *req, struct web_resp *resp, const char *link_hash)
{
    struct as_err err = {0};
    json_t *view = NULL;
    enum as_code rc = db_approvals_by_token(req->app->db, link_hash, &view, &err);
    if (rc == AS_ENOTFOUND) {
        unknown_link(req, resp);
        return 1;
    }
    if (rc) {
        LOG_ERROR("approval", "reading an approval failed: %s", err.msg);
        web_resp_page(resp, 503, "Try again", "Please try again in a minute.");
        return 1;
    }
    snprintf(resp->log_note, sizeof resp->log_note, "approval=%lld", num(view, "id"));
    struct web_resp probe = {0};
    int open = show(req, &probe, view, link_hash, NULL, 200, 1);
    json_decref(view);
    if (open) {
        free(probe.body);
        return 0;
    }
    web_resp_take(resp, probe.status, probe.content_type, probe.body, probe.body_len);
    return 1;
}

/* The answer to a decision approval_decide (or the engine) has recorded or refused. */
static void answer(struct web_req *req, struct web_resp *resp, const char *link_hash,
                   const char *decision, const char *comment, enum as_code rc,
                   const struct approval_decision_result *res, const struct as_err *err,
                   const struct db_signin_session *ss)
{
    char line[600], when[48];
    struct as_err rerr = {0};
    json_t *view = NULL;
    snprintf(resp->log_note, sizeof resp->log_note, "approval=%lld", (long long)res->approval_id);
    /* Refused because the link is no longer open: the page it shows now. */
    if ((rc == AS_ENOTFOUND || rc == AS_ECONFLICT || rc == AS_EEXPIRED || rc == AS_ECANCELLED) &&
        closed_link(req, resp, link_hash))
        return;
    switch (rc) {
    case AS_OK:
        if (res->resumed)
            engine_wake(req->app->engine);
        LOG_INFO("approval", "approval %lld: %s chose %s on the web (now %s)",
                 (long long)res->approval_id, res->approver, decision, res->status);
        if (strcmp(res->status, "pending") == 0)
            snprintf(line, sizeof line,
                     "You %s this request. It now waits for the other approvers.",
                     strcmp(decision, "approve") == 0 ? "approved" : "rejected");
        else
            snprintf(line, sizeof line, "You %s this request. The workflow continues.",
                     strcmp(decision, "approve") == 0 ? "approved" : "rejected");
        render_state(resp, 200, "Thank you", strcmp(decision, "approve") == 0 ? "ok" : "bad",
                     line, comment, NULL);
        break;
    case AS_ENOTFOUND:
        unknown_link(req, resp);
        break;
    case AS_ECONFLICT:
        approval_format_time(res->decided_at, when, sizeof when);
        if (strcmp(res->decided_what, "expired") == 0)
            snprintf(line, sizeof line, "This request expired on %s.", when);
        else
            snprintf(line, sizeof line, "This request was already %s by %s on %s.",
                     res->decided_what[0] ? res->decided_what : "decided",
                     res->decided_by[0] ? res->decided_by : "someone", when);
        render_state(resp, 409, "Already decided", "bad", line, NULL, NULL);
        break;
    case AS_EEXPIRED:
        render_state(resp, 410, "Link expired", "bad",
                     "This link expired without a decision. Nothing was recorded.", NULL, NULL);
        break;
    case AS_EAUTH:
        /* Sign-in required and missing, or someone else signed in. */
        if (ss) {
            const char *who = ss->upn[0] ? ss->upn : ss->oid;
            json_t *ev = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s?, s:s}",
                                   "approval_id", (json_int_t)res->approval_id, "run_id",
                                   (json_int_t)res->run_id, "approver", res->approver, "identity",
                                   ss->upn, "oid", ss->oid, "tid", ss->tid, "client_addr",
                                   req->client_addr, "user_agent",
                                   web_req_header(req, "User-Agent"), "actor", who);
            struct as_err aerr = {0};
            if (!ev || db_audit_append(req->app->db, "approval.sign_in_refused", ev, &aerr))
                LOG_ERROR("approval", "recording a refused decision failed: %s", aerr.msg);
            json_decref(ev);
            snprintf(line, sizeof line, "Signed in as %s; this request is for %s. Nothing was "
                     "recorded.", who, res->approver);
            web_resp_page(resp, 403, "Not your request", line);
        } else {
            web_resp_page(resp, 403, "Sign in first",
                          "This request needs you to sign in with Microsoft before you answer. "
                          "Open the link from your email again. Nothing was recorded.");
        }
        break;
    case AS_ECANCELLED:
        render_state(resp, 410, "Request withdrawn", "bad",
                     "This request was withdrawn: its workflow run has ended. Nothing was recorded.",
                     NULL, NULL);
        break;
    case AS_EINVAL:
        /* e.g. a comment is required to reject: show the form again. */
        if (db_approvals_by_token(req->app->db, link_hash, &view, &rerr) == AS_OK)
            show(req, resp, view, link_hash, "A comment is required to reject this request.", 400, 0);
        else
            web_resp_page(resp, 400, "Bad request", "The answer could not be recorded.");
        json_decref(view);
        break;
    default:
        LOG_ERROR("approval", "recording a decision failed: %s", err->msg);
        web_resp_page(resp, 503, "Try again",
                      "Your answer could not be recorded right now. Please try again in a minute.");
        break;
    }
}

/* A decision handed to the engine's writer, until its answer is sent. */
struct later {
    char link_hash[TOKEN_HASH_LEN + 1];
    char decision[8];
    char *comment;
    enum as_code rc;
    struct as_err err;
    struct approval_decision_result res;
    struct web_deferred *deferred;
    int signed_in;
    struct db_signin_session ss; /* the approver's sign-in, when signed_in */
};

static void later_drop(void *ud)
{
    struct later *l = ud;
    free(l->comment);
    free(l);
}

/* On the dispatcher thread, once the decision is durable (or refused). */
static void later_decided(void *ud, enum as_code rc, const struct approval_decision_result *res,
                          const struct as_err *err)
{
    struct later *l = ud;
    l->rc = rc;
    l->res = *res;
    if (err)
        l->err = *err;
    web_deferred_ready(l->deferred);
}

/* On a web thread: the answer page. */
static void later_finish(struct web_req *req, struct web_resp *resp, void *ud)
{
    struct later *l = ud;
    answer(req, resp, l->link_hash, l->decision, l->comment, l->rc, &l->res, &l->err,
           l->signed_in ? &l->ss : NULL);
}

/*
 * With the engine in this process (and SQLite's one writer), the decision
 * goes to the dispatcher: it is recorded in the engine's next group commit
 * and the waiting step ends in the same transaction, while this web thread
 * serves other requests (web_req_defer).  1 when it was handed over (the
 * answer comes later), 0 when it is to be recorded here.
 */
static int decide_later(struct web_req *req, const struct approval_decision *d,
                        const struct db_signin_session *ss)
{
    struct app *app = req->app;
    if (!app->engine || strcmp(db_backend_name(app->db), "SQLite") != 0)
        return 0;
    struct later *l = calloc(1, sizeof *l);
    if (!l || !(l->comment = strdup(d->comment ? d->comment : ""))) {
        free(l);
        return 0;
    }
    snprintf(l->link_hash, sizeof l->link_hash, "%s", d->token_hash);
    snprintf(l->decision, sizeof l->decision, "%s", d->decision);
    if (ss) {
        l->signed_in = 1;
        l->ss = *ss;
    }
    l->deferred = web_req_defer(req, later_finish, later_drop, l);
    if (!l->deferred) {
        later_drop(l);
        return 0;
    }
    struct as_err err = {0};
    if (approval_decide_submit(app->engine, app->db, d, later_decided, l, &err) != AS_OK) {
        /* The engine is stopping: recorded here, answered at once. */
        memset(&err, 0, sizeof err);
        l->rc = approval_decide(app->db, d, &l->res, &l->err);
        web_deferred_ready(l->deferred);
    }
    return 1;
}

static void decide(struct web_req *req, struct web_resp *resp, const char *link_hash)
{
    struct as_err err = {0};
    struct form *form = NULL;
    json_t *view = NULL;

    int st = approval_post_check(web_req_header(req, "Sec-Fetch-Site"),
                                 web_req_header(req, "Origin"),
                                 web_server_public_origin(req->server),
                                 web_req_header(req, "Content-Type"));
    if (st == 403) {
        web_resp_page(resp, 403, "Refused",
                      "This form was sent from another site. Open the link from your email and "
                      "answer on this page.");
        return;
    }
    if (st) {
        web_resp_page(resp, 415, "Unsupported form", "The answer must be sent by the form on this page.");
        return;
    }
    if (form_parse(req->body, req->body_len, &form, &err) != AS_OK) {
        web_resp_page(resp, err.code == AS_ELIMIT ? 413 : 400, "Bad request", err.msg);
        return;
    }
    /* The form is checked first and the decision recorded at once: the
     * approval is read (and a state page rendered) only when something is
     * wrong, not on every decision.  A link that is no longer open still
     * says so (409/410) whatever the form holds (closed_link below): the
     * token already proves it is the approver's link. */
    size_t secret_len = 0;
    const unsigned char *secret = web_server_csrf_secret(req->server, &secret_len);
    enum as_code crc = token_csrf_verify(secret, secret_len, link_hash, form_get(form, "csrf"),
                                         req->now_ms, APPROVAL_CSRF_MAX_AGE_MS);
    const char *decision = NULL, *comment = NULL;
    int bad = crc == AS_OK ? approval_answer_check(form, &decision, &comment) : 0;
    if (crc != AS_OK || bad) {
        if (closed_link(req, resp, link_hash))
            goto out;
        if (crc == AS_EEXPIRED) {
            web_resp_page(resp, 403, "Form expired",
                          "This page was open too long. Open the link again and answer on the new page.");
        } else if (crc != AS_OK) {
            ratelimit_fail(web_server_ratelimit(req->server), req->client_addr, req->now_ms);
            web_resp_page(resp, 403, "Refused",
                          "The form does not belong to this link. Open the link from your email and "
                          "answer on that page.");
        } else if (bad == 1) {
            web_resp_page(resp, 400, "Bad request", "Press Approve or Reject.");
        } else {
            web_resp_page(resp, 400, "Comment too long", "Please shorten the comment.");
        }
        goto out;
    }
    /* The approver's sign-in session, when this browser has one: the
     * decision records the identity, and refuses a link of an approval that
     * asks for sign-in without it or for someone else (approval_decide). */
    struct db_signin_session ss;
    int signed_in = web_signin_session(req, &ss);
    if (signed_in < 0) {
        web_resp_page(resp, 503, "Try again", "Please try again in a minute.");
        goto out;
    }
    struct approval_decision d = {
        .token_hash = link_hash,
        .identity = signed_in ? ss.upn : NULL,
        .identity_oid = signed_in ? ss.oid : NULL,
        .identity_tid = signed_in ? ss.tid : NULL,
        .decision = decision,
        .comment = comment,
        .via = "web",
        .client_addr = req->client_addr,
        .user_agent = web_req_header(req, "User-Agent"),
        .now = req->now_ms,
    };
    if (decide_later(req, &d, signed_in ? &ss : NULL))
        goto out; /* answered once the engine has committed it */
    struct approval_decision_result res;
    enum as_code rc = approval_decide(req->app->db, &d, &res, &err);
    answer(req, resp, link_hash, decision, comment, rc, &res, &err, signed_in ? &ss : NULL);
out:
    json_decref(view);
    form_free(form);
}

void web_approval_page(struct web_req *req, struct web_resp *resp)
{
    struct as_err err = {0};
    int retry_after = 0;
    if (ratelimit_blocked(web_server_ratelimit(req->server), req->client_addr, req->now_ms,
                          &retry_after)) {
        too_many(resp, retry_after);
        return;
    }
    const char *token = req->param;
    if (!token_well_formed(token)) {
        unknown_link(req, resp);
        return;
    }
    char link_hash[TOKEN_HASH_LEN + 1];
    token_hash(token, link_hash);

    if (strcmp(req->method, "POST") == 0) {
        decide(req, resp, link_hash);
        return;
    }
    json_t *view = NULL;
    enum as_code rc = db_approvals_by_token(req->app->db, link_hash, &view, &err);
    if (rc == AS_ENOTFOUND) {
        unknown_link(req, resp);
        return;
    }
    if (rc) {
        LOG_ERROR("approval", "reading an approval failed: %s", err.msg);
        web_resp_page(resp, 503, "Try again", "This page cannot be shown right now. Please try again in a minute.");
        return;
    }
    snprintf(resp->log_note, sizeof resp->log_note, "approval=%lld", num(view, "id"));
    show(req, resp, view, link_hash, NULL, 200, 0);
    json_decref(view);
}

void web_index(struct web_req *req, struct web_resp *resp)
{
    web_resp_page(resp, 200, "Assent",
                  "This server shows approval requests sent by email. Open the link from your email "
                  "to answer one.");
}
