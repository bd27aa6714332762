/*
 * sim_graph.c - the Microsoft Graph endpoints of the simulator:
 *   GET  /v1.0/users                       ($select, $top <= 999, $count, nextLink paging)
 *   GET  /v1.0/users/{id|upn}
 *   POST /v1.0/users/{id|upn}/sendMail     (202, message stored in the state)
 *   GET  /v1.0/reports/getEmailAppUsageUserDetail(period='D30')  (302 to /data/download/..)
 *   GET  /data/download/{id}               (the CSV with a BOM; no Authorization needed)
 *   GET|PATCH /v1.0/admin/reportSettings
 *   GET  /v1.0/auditLogs/signIns           ($filter, $top <= 1000, newest first, nextLink;
 *                                          interactive sign-ins only)
 *   GET  /beta/auditLogs/signIns           (the same, plus signInEventTypes/any(...) to list
 *                                          the non-interactive stream)
 * Shapes follow the shared M365 reference; what is assumed is listed in
 * docs/simulator.md.  Large pages are written straight into a buffer.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "base/encode.h"
#include "sim/sim_filter.h"

/* ---- skip tokens ---------------------------------------------------------------
 * Opaque to clients (base64url); inside: "<kind>|<position>|<extra>".  The
 * real format is unknown [assumed] and irrelevant: clients must only echo the link. */

void sim_skiptoken_make(const char *kind, int64_t pos, int64_t extra, char *out, size_t size)
{
    char raw[96];
    int n = snprintf(raw, sizeof raw, "%s|%lld|%lld", kind, (long long)pos, (long long)extra);
    encode_b64url(raw, (size_t)n, out, size);
}

int sim_skiptoken_parse(const char *tok, const char *kind, int64_t *pos, int64_t *extra)
{
    size_t n;
    if (!tok || strlen(tok) > 128)
        return -1;
    unsigned char *raw = b64_decode(tok, strlen(tok), 0, &n);
    if (!raw)
        return -1;
    char txt[130];
    if (n >= sizeof txt) {
        free(raw);
        return -1;
    }
    memcpy(txt, raw, n);
    txt[n] = '\0';
    free(raw);
    size_t kl = strlen(kind);
    if (strncmp(txt, kind, kl) != 0 || txt[kl] != '|')
        return -1;
    char *p = txt + kl + 1;
    char *bar = strchr(p, '|');
    if (!bar)
        return -1;
    *bar = '\0';
    if (parse_i64(p, 0, INT64_MAX, pos) != 0 || parse_i64(bar + 1, 0, INT64_MAX, extra) != 0)
        return -1;
    return 0;
}

/* The request's query minus $skiptoken, re-encoded, plus a new $skiptoken. */
struct nl_ctx {
    struct strbuf *b;
    int first;
};

static void nl_add(void *ud, const char *key, const char *value)
{
    struct nl_ctx *c = ud;
    if (!strcasecmp(key, "$skiptoken"))
        return;
    strbuf_addc(c->b, c->first ? '?' : '&');
    c->first = 0;
    strbuf_add(c->b, key); /* "$select" etc: kept readable, as Graph does */
    if (value) {
        strbuf_addc(c->b, '=');
        sbuf_url_encode(c->b, value);
    }
}

static void next_link(struct strbuf *b, const struct sim_req *r, const char *skiptoken)
{
    strbuf_add(b, ",\"@odata.nextLink\":\"");
    struct strbuf link = {0};
    strbuf_add(&link, r->base_url);
    strbuf_add(&link, r->path);
    struct nl_ctx c = {&link, 1};
    sim_req_query_each(r, nl_add, &c);
    strbuf_addc(&link, c.first ? '?' : '&');
    strbuf_add(&link, "$skiptoken=");
    strbuf_add(&link, skiptoken);
    /* the link is plain ASCII with no quotes or backslashes: safe to embed */
    if (link.p)
        strbuf_add(b, link.p);
    strbuf_free(&link);
    strbuf_addc(b, '"');
}

static void json_ok(struct sim_resp *o, int status)
{
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type,
             "application/json;odata.metadata=minimal;odata.streaming=true;"
             "IEEE754Compatible=false;charset=utf-8");
}

static int unsupported_query(struct sim_req *r, struct sim_resp *o, const char *const *allowed)
{
    static const char *const known[] = {"$filter", "$search", "$orderby", "$expand", "$skip",
                                        "$format", "$select", "$top", "$skiptoken", "$count"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (!sim_req_query(r, known[i]))
            continue;
        int ok = 0;
        for (size_t j = 0; allowed[j]; j++)
            ok |= !strcmp(allowed[j], known[i]);
        if (!ok) {
            char msg[160];
            snprintf(msg, sizeof msg, "The query option '%s' is not supported by the simulator "
                                      "on this resource.", known[i]);
            sim_resp_graph_error(o, r, 400, "Request_UnsupportedQuery", msg);
            return -1;
        }
    }
    return 0;
}

/* ---- users -------------------------------------------------------------------- */

enum uprop {
    UP_BUSINESS_PHONES, UP_DISPLAY_NAME, UP_GIVEN_NAME, UP_JOB_TITLE, UP_MAIL, UP_MOBILE_PHONE,
    UP_OFFICE_LOCATION, UP_PREFERRED_LANGUAGE, UP_SURNAME, UP_UPN, UP_ID,
    /* only with $select: */
    UP_ACCOUNT_ENABLED, UP_ASSIGNED_LICENSES, UP_USER_TYPE,
    UP_N
};
#define UP_N_DEFAULT 11

static const char *const uprop_names[UP_N] = {
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
    "accountEnabled", "assignedLicenses", "userType",
};

static void user_prop(struct strbuf *b, const struct sim_user *u, enum uprop p)
{
    sbuf_json_key(b, uprop_names[p]);
    switch (p) {
    case UP_BUSINESS_PHONES:
        strbuf_addc(b, '[');
        if (u->business_phone)
            sbuf_json_str(b, u->business_phone);
        strbuf_addc(b, ']');
        break;
    case UP_DISPLAY_NAME: sbuf_json_str(b, u->display_name); break;
    case UP_GIVEN_NAME: sbuf_json_str(b, u->given_name); break;
    case UP_JOB_TITLE: sbuf_json_str(b, u->job_title); break;
    case UP_MAIL: sbuf_json_str(b, u->mail); break;
    case UP_MOBILE_PHONE: sbuf_json_str(b, u->mobile_phone); break;
    case UP_OFFICE_LOCATION: sbuf_json_str(b, u->office_location); break;
    case UP_PREFERRED_LANGUAGE: sbuf_json_str(b, u->preferred_language); break;
    case UP_SURNAME: sbuf_json_str(b, u->surname); break;
    case UP_UPN: sbuf_json_str(b, u->upn); break;
    case UP_ID: sbuf_json_str(b, u->id); break;
    case UP_ACCOUNT_ENABLED: strbuf_add(b, u->account_enabled ? "true" : "false"); break;
    case UP_ASSIGNED_LICENSES:
        strbuf_addc(b, '[');
        for (size_t i = 0; i < u->n_skus; i++) {
            strbuf_add(b, i ? ",{\"disabledPlans\":[],\"skuId\":" : "{\"disabledPlans\":[],\"skuId\":");
            sbuf_json_str(b, u->skus[i]);
            strbuf_addc(b, '}');
        }
        strbuf_addc(b, ']');
        break;
    case UP_USER_TYPE: sbuf_json_str(b, u->user_type); break;
    case UP_N: break;
    }
}

/* Parse $select into an ordered list of props; -1 with a 400 in o on an unknown name. */
static int parse_select(struct sim_req *r, struct sim_resp *o, enum uprop *sel, int *n_sel,
                        struct strbuf *ctx_sel)
{
    const char *s = sim_req_query(r, "$select");
    *n_sel = 0;
    if (!s) {
        for (int i = 0; i < UP_N_DEFAULT; i++)
            sel[(*n_sel)++] = (enum uprop)i;
        return 0;
    }
    char *copy = strdup(s);
    if (!copy) {
        sim_resp_graph_error(o, r, 500, "generalException", "Out of memory.");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        int found = -1;
        for (int i = 0; i < UP_N; i++)
            if (!strcasecmp(t, uprop_names[i]))
                found = i;
        if (found < 0) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "Could not find a property named '%.80s' on type 'microsoft.graph.user'.", t);
            sim_resp_graph_error(o, r, 400, "BadRequest", msg);
            rc = -1;
            break;
        }
        int dup = 0;
        for (int i = 0; i < *n_sel; i++)
            dup |= sel[i] == (enum uprop)found;
        if (!dup && *n_sel < UP_N) {
            sel[(*n_sel)++] = (enum uprop)found;
            if (ctx_sel->len)
                strbuf_addc(ctx_sel, ',');
            strbuf_add(ctx_sel, uprop_names[found]);
        }
    }
    free(copy);
    return rc;
}

static void users_list(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    static const char *const allowed[] = {"$select", "$top", "$skiptoken", "$count", NULL};
    if (unsupported_query(r, o, allowed) != 0)
        return;
    int64_t top = 100, pos = 0, extra = 0;
    const char *t = sim_req_query(r, "$top");
    if (t && parse_i64(t, 1, 999, &top) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Invalid page size specified: '%.20s'. Must be between 1 and 999 inclusive.", t);
        sim_resp_graph_error(o, r, 400, "Request_UnsupportedQuery", msg);
        return;
    }
    const char *sk = sim_req_query(r, "$skiptoken");
    if (sk && sim_skiptoken_parse(sk, "users", &pos, &extra) != 0) {
        sim_resp_graph_error(o, r, 400, "Directory_ExpiredPageToken",
                             "The specified page token value has expired and can no longer be "
                             "included in your request.");
        return;
    }
    const char *count = sim_req_query(r, "$count");
    int want_count = count && !strcasecmp(count, "true");
    if (want_count && !str_ieq(sim_req_header(r, "ConsistencyLevel"), "eventual")) {
        sim_resp_graph_error(o, r, 400, "Request_BadRequest",
                             "$count is not currently supported without the ConsistencyLevel: "
                             "eventual header.");
        return;
    }
    enum uprop sel[UP_N];
    int n_sel;
    struct strbuf ctx_sel = {0};
    if (parse_select(r, o, sel, &n_sel, &ctx_sel) != 0) {
        strbuf_free(&ctx_sel);
        return;
    }
    struct strbuf *b = &o->body;
    strbuf_free(b);
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    strbuf_addf(b, "{\"@odata.context\":\"%s/v1.0/$metadata#users", r->base_url);
    if (ctx_sel.len)
        strbuf_addf(b, "(%s)", ctx_sel.p);
    strbuf_addc(b, '"');
    if (want_count)
        strbuf_addf(b, ",\"@odata.count\":%zu", st->n_users);
    size_t end = (size_t)pos + (size_t)top;
    if ((size_t)pos < st->n_users && end < st->n_users) {
        char tok[200];
        sim_skiptoken_make("users", (int64_t)end, 0, tok, sizeof tok);
        next_link(b, r, tok);
    }
    strbuf_add(b, ",\"value\":[");
    for (size_t i = (size_t)pos; i < st->n_users && i < end; i++) {
        strbuf_add(b, i > (size_t)pos ? ",{" : "{");
        for (int k = 0; k < n_sel; k++) {
            if (k)
                strbuf_addc(b, ',');
            user_prop(b, &st->users[i], sel[k]);
        }
        strbuf_addc(b, '}');
    }
    pthread_rwlock_unlock(&s->lock);
    strbuf_add(b, "]}");
    strbuf_free(&ctx_sel);
    json_ok(o, 200);
}

static void user_get(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *key)
{
    static const char *const allowed[] = {"$select", NULL};
    if (unsupported_query(r, o, allowed) != 0)
        return;
    enum uprop sel[UP_N];
    int n_sel;
    struct strbuf ctx_sel = {0};
    if (parse_select(r, o, sel, &n_sel, &ctx_sel) != 0) {
        strbuf_free(&ctx_sel);
        return;
    }
    strbuf_free(&ctx_sel);
    pthread_rwlock_rdlock(&s->lock);
    int idx = sim_state_find_user(&s->st, key);
    if (idx >= 0 && strcasecmp(key, s->st.users[idx].id) && strcasecmp(key, s->st.users[idx].upn))
        idx = -1; /* Graph resolves id or userPrincipalName only */
    if (idx < 0) {
        pthread_rwlock_unlock(&s->lock);
        char msg[400];
        snprintf(msg, sizeof msg,
                 "Resource '%.200s' does not exist or one of its queried reference-property "
                 "objects are not present.",
                 key);
        sim_resp_graph_error(o, r, 404, "Request_ResourceNotFound", msg);
        return;
    }
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_addf(b, "{\"@odata.context\":\"%s/v1.0/$metadata#users/$entity\"", r->base_url);
    for (int k = 0; k < n_sel; k++) {
        strbuf_addc(b, ',');
        user_prop(b, &s->st.users[idx], sel[k]);
    }
    pthread_rwlock_unlock(&s->lock);
    strbuf_addc(b, '}');
    json_ok(o, 200);
}

/* ---- sendMail ------------------------------------------------------------------ */

static int check_recipients(json_t *msg, const char *field, int *n, char *bad, size_t bad_size)
{
    json_t *list = json_object_get(msg, field);
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return -1;
    size_t i;
    json_t *rc;
    json_array_foreach(list, i, rc) {
        const char *addr = json_string_value(json_object_get(json_object_get(rc, "emailAddress"),
                                                             "address"));
        if (!addr || !strchr(addr, '@') || strchr(addr, ' ')) {
            str_copy(bad, bad_size, addr ? addr : "(missing emailAddress.address)");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void write_mail_file(struct sim *s, const char *id, json_t *entry)
{
    if (!s->mail_dir)
        return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.json", s->mail_dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(entry, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "assent-tenant-sim: cannot write %s\n", path);
        remove(tmp);
    }
}

/*
 * 202 with an empty body and the MIME variant's ErrorMimeContentInvalidBase64String
 * are documented; the other error codes and texts are assumed [?].
 */
static void send_mail(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *key)
{
    json_t *doc = NULL, *entry = NULL;
    char *mime = NULL;
    const char *ct = sim_req_header(r, "Content-Type");
    int is_mime = ct && strncasecmp(ct, "text/plain", 10) == 0;
    if (r->body_len == 0) {
        sim_resp_graph_error(o, r, 400, "ErrorInvalidRequest", "Empty Payload. JSON content expected.");
        goto out;
    }
    if (is_mime) {
        /* MIME variant: the body is the base64 of an RFC 822 message */
        size_t n;
        const char *p = r->body;
        size_t len = r->body_len;
        while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
            len--;
        unsigned char *raw = b64_decode(p, len, 1, &n);
        if (!raw) {
            sim_resp_graph_error(o, r, 400, "ErrorMimeContentInvalidBase64String",
                                 "Invalid base64 string for MIME content.");
            goto out;
        }
        mime = malloc(n + 1);
        if (mime) {
            memcpy(mime, raw, n);
            mime[n] = '\0';
        }
        free(raw);
        if (!mime) {
            sim_resp_graph_error(o, r, 500, "generalException", "Out of memory.");
            goto out;
        }
    } else {
        json_error_t je;
        doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(doc)) {
            sim_resp_graph_error(o, r, 400, "BadRequest",
                                 "Unable to read JSON request payload. Please ensure Content-Type "
                                 "header is set and payload is of valid JSON format.");
            goto out;
        }
        json_t *msg = json_object_get(doc, "message");
        if (!json_is_object(msg)) {
            sim_resp_graph_error(o, r, 400, "ErrorInvalidRequest",
                                 "The request is invalid: the 'message' property is required.");
            goto out;
        }
        json_t *save = json_object_get(doc, "saveToSentItems");
        if (save && !json_is_boolean(save) && !json_is_null(save)) {
            sim_resp_graph_error(o, r, 400, "BadRequest",
                                 "Cannot convert the literal to the expected type 'Edm.Boolean'.");
            goto out;
        }
        json_t *body = json_object_get(msg, "body");
        if (body) {
            const char *ctype = json_string_value(json_object_get(body, "contentType"));
            if (!json_is_object(body) ||
                (ctype && strcasecmp(ctype, "text") && strcasecmp(ctype, "html"))) {
                sim_resp_graph_error(o, r, 400, "RequestBodyRead",
                                     "Requested value for body.contentType was not found: use "
                                     "Text or HTML.");
                goto out;
            }
        }
        int n = 0;
        char bad[200] = "";
        if (check_recipients(msg, "toRecipients", &n, bad, sizeof bad) ||
            check_recipients(msg, "ccRecipients", &n, bad, sizeof bad) ||
            check_recipients(msg, "bccRecipients", &n, bad, sizeof bad)) {
            char m[300];
            snprintf(m, sizeof m, "At least one recipient is not valid., Recipient '%s' is not "
                                  "resolved. All recipients must be resolved before a message "
                                  "can be submitted.", bad);
            sim_resp_graph_error(o, r, 400, "ErrorInvalidRecipients", m);
            goto out;
        }
        if (n == 0) {
            sim_resp_graph_error(o, r, 400, "ErrorInvalidRecipients",
                                 "At least one recipient isn't valid., A message can't be sent "
                                 "because it contains no recipients.");
            goto out;
        }
    }

    char id[37], when[40];
    guid_random(id);
    fmt_iso_ms(now_ms(), when, sizeof when);
    pthread_rwlock_wrlock(&s->lock);
    int idx = sim_state_find_user(&s->st, key);
    if (idx >= 0 && strcasecmp(key, s->st.users[idx].id) && strcasecmp(key, s->st.users[idx].upn))
        idx = -1;
    if (idx < 0 || !s->st.users[idx].mbx) {
        pthread_rwlock_unlock(&s->lock);
        char m[300];
        if (idx < 0) {
            snprintf(m, sizeof m, "The requested user '%.200s' is invalid.", key);
            sim_resp_graph_error(o, r, 404, "ErrorInvalidUser", m);
        } else {
            sim_resp_graph_error(o, r, 404, "MailboxNotEnabledForRESTAPI",
                                 "The mailbox is either inactive, soft-deleted, or is hosted "
                                 "on-premise.");
        }
        goto out;
    }
    entry = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "received", when, "from",
                      s->st.users[idx].upn, "user_id", s->st.users[idx].id, "request_id",
                      r->request_id);
    if (entry && is_mime)
        json_object_set_new(entry, "mime", json_string(mime));
    else if (entry) {
        json_object_set(entry, "message", json_object_get(doc, "message"));
        json_t *save = json_object_get(doc, "saveToSentItems");
        json_object_set_new(entry, "saveToSentItems", json_boolean(!save || json_is_true(save)));
    }
    if (!entry || json_array_append(s->st.sent_mail, entry) != 0) {
        pthread_rwlock_unlock(&s->lock);
        sim_resp_graph_error(o, r, 500, "generalException", "Out of memory.");
        goto out;
    }
    uint64_t gen = ++s->gen;
    pthread_rwlock_unlock(&s->lock);
    write_mail_file(s, id, entry);
    if (sim_persist(s, gen) != 0) {
        sim_resp_graph_error(o, r, 500, "generalException", "The simulator could not save its state.");
        goto out;
    }
    strbuf_free(&o->body);
    o->status = 202;
    o->content_type[0] = '\0';
out:
    json_decref(doc);
    json_decref(entry);
    free(mime);
}

/* ---- reports ------------------------------------------------------------------- */

static int parse_period(const char *arg, int *days)
{
    /* "(period='D30')" or "(date=2024-05-01)" */
    int64_t ms;
    if (!strncmp(arg, "(period='D", 10)) {
        const char *p = arg + 10;
        char num[8];
        size_t n = 0;
        while (p[n] >= '0' && p[n] <= '9' && n < sizeof num - 1) {
            num[n] = p[n];
            n++;
        }
        num[n] = '\0';
        if (strcmp(p + n, "')") != 0)
            return -1;
        int64_t d;
        if (parse_i64(num, 1, 999, &d) != 0 || (d != 7 && d != 30 && d != 90 && d != 180))
            return -1;
        *days = (int)d;
        return 0;
    }
    if (!strncmp(arg, "(date=", 6) && parse_iso(arg + 6, &ms, NULL) == 0 &&
        strlen(arg) == 6 + 10 + 1 && arg[16] == ')') {
        *days = 1;
        return 0;
    }
    return -1;
}

static void report_redirect(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *arg)
{
    int days;
    if (parse_period(arg, &days) != 0) {
        sim_resp_graph_error(o, r, 400, "BadRequest",
                             "Invalid value for the period parameter: use period='D7', 'D30', "
                             "'D90' or 'D180', or date=YYYY-MM-DD.");
        return;
    }
    char id[48];
    sim_download_new(s, days, id);
    strbuf_free(&o->body);
    o->status = 302;
    o->content_type[0] = '\0';
    sim_resp_header(o, "Location", "%s/data/download/%s?sim=1", r->base_url, id);
}

/* A concealed name: 32 upper-case hex characters, no '@' (the exact real format is assumed [?]). */
static void conceal(const char *in, char out[33])
{
    unsigned char d[32];
    SHA256((const unsigned char *)in, strlen(in), d);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02X", d[i]);
}

void sim_graph_download(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *id)
{
    int days = sim_download_get(s, id);
    if (days < 0) {
        sim_resp_text(o, 404, "text/plain", "The download link is unknown or has expired.\n");
        return;
    }
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_add(b, "\xEF\xBB\xBF"
                 "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,"
                 "Last Activity Date,Mail For Mac,Outlook For Mac,Outlook For Windows,Outlook For "
                 "Mobile,Other For Mobile,Outlook For Web,POP3 App,IMAP4 App,SMTP App,Report "
                 "Period\r\n");
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    char refresh[11];
    if (st->report_refresh_date[0])
        str_copy(refresh, sizeof refresh, st->report_refresh_date);
    else
        fmt_date(now_ms() - 86400000LL, refresh, sizeof refresh);
    for (size_t i = 0; i < st->n_users; i++) {
        const struct sim_user *u = &st->users[i];
        if (!u->usage)
            continue;
        char hu[33], hd[33];
        strbuf_add(b, refresh);
        strbuf_addc(b, ',');
        if (st->conceal_names) {
            conceal(u->upn, hu);
            conceal(u->display_name ? u->display_name : u->upn, hd);
            strbuf_add(b, hu);
            strbuf_addc(b, ',');
            strbuf_add(b, hd);
        } else {
            sbuf_csv_field(b, u->upn);
            strbuf_addc(b, ',');
            sbuf_csv_field(b, u->display_name);
        }
        strbuf_add(b, ",False,,");
        strbuf_add(b, u->usage->last_activity);
        for (int a = 0; a < SIM_N_USAGE_APPS; a++) {
            strbuf_addc(b, ',');
            sbuf_csv_field(b, u->usage->apps[a]);
        }
        strbuf_addf(b, ",%d\r\n", days);
    }
    pthread_rwlock_unlock(&s->lock);
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, "application/octet-stream");
}

static void report_settings(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    if (!strcmp(r->method, "PATCH")) {
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, NULL);
        json_t *v = json_object_get(doc, "displayConcealedNames");
        if (!json_is_object(doc) || !json_is_boolean(v) || json_object_size(doc) != 1) {
            json_decref(doc);
            sim_resp_graph_error(o, r, 400, "BadRequest",
                                 "Expected {\"displayConcealedNames\": true|false}.");
            return;
        }
        pthread_rwlock_wrlock(&s->lock);
        s->st.conceal_names = json_is_true(v);
        uint64_t gen = ++s->gen;
        pthread_rwlock_unlock(&s->lock);
        json_decref(doc);
        if (sim_persist(s, gen) != 0) {
            sim_resp_graph_error(o, r, 500, "generalException", "The simulator could not save its state.");
            return;
        }
        strbuf_free(&o->body);
        o->status = 204;
        o->content_type[0] = '\0';
        return;
    }
    pthread_rwlock_rdlock(&s->lock);
    int c = s->st.conceal_names;
    pthread_rwlock_unlock(&s->lock);
    strbuf_free(&o->body);
    strbuf_addf(&o->body,
                "{\"@odata.context\":\"%s/v1.0/$metadata#admin/reportSettings/$entity\","
                "\"displayConcealedNames\":%s}",
                r->base_url, c ? "true" : "false");
    json_ok(o, 200);
}

/* ---- sign-ins ------------------------------------------------------------------ */

static void sign_ins(struct sim *s, struct sim_req *r, struct sim_resp *o, int beta)
{
    static const char *const allowed[] = {"$filter", "$top", "$skiptoken", "$orderby", NULL};
    if (unsupported_query(r, o, allowed) != 0)
        return;
    pthread_rwlock_rdlock(&s->lock);
    int premium = s->st.premium;
    pthread_rwlock_unlock(&s->lock);
    if (!premium) {
        sim_resp_graph_error(o, r, 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                             "Tenant is not a B2C tenant and doesn't have premium license");
        return;
    }
    const char *ob = sim_req_query(r, "$orderby");
    if (ob && strcasecmp(ob, "createdDateTime desc") != 0) {
        sim_resp_graph_error(o, r, 400, "Request_UnsupportedQuery",
                             "The simulator orders sign-ins by createdDateTime desc only.");
        return;
    }
    int64_t top = 1000, pos = 0, extra = 0;
    const char *t = sim_req_query(r, "$top");
    if (t && parse_i64(t, 1, 1000, &top) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid page size specified: '%.20s'. Must be between 1 and "
                                  "1000 inclusive.", t);
        sim_resp_graph_error(o, r, 400, "Request_UnsupportedQuery", msg);
        return;
    }
    const char *sk = sim_req_query(r, "$skiptoken");
    if (sk && sim_skiptoken_parse(sk, "signins", &pos, &extra) != 0) {
        sim_resp_graph_error(o, r, 400, "Request_BadRequest", "Invalid $skiptoken.");
        return;
    }
    struct sim_filter *f = NULL;
    const char *ft = sim_req_query(r, "$filter");
    if (ft) {
        char err[300];
        if (sim_filter_parse(ft, &f, err, sizeof err) != 0) {
            sim_resp_graph_error(o, r, 400, "BadRequest", err);
            return;
        }
    }
    if (!beta && sim_filter_names_event_types(f)) {
        sim_filter_free(f);
        sim_resp_graph_error(o, r, 400, "BadRequest",
                             "Could not find a property named 'signInEventTypes' on type "
                             "'microsoft.graph.signIn'.");
        return;
    }
    /* Without a signInEventTypes clause both versions list interactive sign-ins only. */
    int interactive_only = !sim_filter_names_event_types(f);
    int64_t floor = f ? sim_filter_time_floor(f) : INT64_MIN;
    struct strbuf items = {0};
    int64_t n = 0;
    size_t i;
    int more = 0;
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    for (i = (size_t)pos; i < st->n_signins; i++) {
        const struct sim_signin *si = &st->signins[i];
        if (si->created_ms < floor)
            break; /* newest first: nothing older can match */
        if ((f && !sim_filter_match(f, si)) || (interactive_only && si->non_interactive_stream))
            continue;
        if (n == top) {
            more = 1;
            break;
        }
        if (n)
            strbuf_addc(&items, ',');
        sim_signin_json(&items, si, beta);
        n++;
    }
    pthread_rwlock_unlock(&s->lock);
    sim_filter_free(f);
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_addf(b, "{\"@odata.context\":\"%s/%s/$metadata#auditLogs/signIns\"", r->base_url,
                beta ? "beta" : "v1.0");
    if (more) {
        char tok[200];
        sim_skiptoken_make("signins", (int64_t)i, 0, tok, sizeof tok);
        next_link(b, r, tok);
    }
    strbuf_add(b, ",\"value\":[");
    if (items.p)
        strbuf_addn(b, items.p, items.len);
    strbuf_add(b, "]}");
    strbuf_free(&items);
    json_ok(o, 200);
}

/* ---- routing ------------------------------------------------------------------- */

#define USAGE_REPORT "/v1.0/reports/getEmailAppUsageUserDetail"

const char *sim_graph_label(const char *method, const char *path)
{
    if (!strcmp(path, "/v1.0/users"))
        return "graph.users";
    if (str_starts(path, "/v1.0/users/")) {
        const char *slash = strchr(path + 12, '/');
        if (slash && !strcasecmp(slash, "/sendMail"))
            return "graph.sendMail";
        return "graph.user";
    }
    if (str_starts(path, USAGE_REPORT))
        return "graph.reports.emailAppUsage";
    if (!strcmp(path, "/v1.0/admin/reportSettings"))
        return "graph.reportSettings";
    if (!strcmp(path, "/v1.0/auditLogs/signIns") || !strcmp(path, "/beta/auditLogs/signIns"))
        return "graph.signIns";
    const char *ca = sim_ca_label(method, path);
    if (ca)
        return ca;
    return "graph.other";
}

static void method_not_allowed(struct sim_req *r, struct sim_resp *o)
{
    sim_resp_graph_error(o, r, 405, "Request_BadRequest",
                         "The HTTP method is not allowed on this resource.");
}

void sim_graph_route(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *path = r->path;
    int get = !strcmp(r->method, "GET");
    if (sim_token_check(s, r, o, SIM_RES_GRAPH) != 0)
        return;
    if (sim_ca_route(s, r, o))
        return; /* Conditional Access policies and groups: sim_ca.c */
    if (!strcmp(path, "/v1.0/users")) {
        if (!get)
            {
            method_not_allowed(r, o);
            return;
        }
        {
            users_list(s, r, o);
            return;
        }
    }
    if (str_starts(path, "/v1.0/users/")) {
        char key[320];
        const char *rest = path + 12;
        const char *slash = strchr(rest, '/');
        size_t kl = slash ? (size_t)(slash - rest) : strlen(rest);
        if (kl == 0 || kl >= sizeof key) {
            sim_resp_graph_error(o, r, 400, "BadRequest", "Invalid user identifier.");
            return;
        }
        memcpy(key, rest, kl);
        key[kl] = '\0';
        if (!slash) {
            if (!get)
                {
            method_not_allowed(r, o);
            return;
        }
            {
            user_get(s, r, o, key);
            return;
        }
        }
        if (!strcasecmp(slash, "/sendMail")) {
            if (strcmp(r->method, "POST") != 0)
                {
            method_not_allowed(r, o);
            return;
        }
            {
            send_mail(s, r, o, key);
            return;
        }
        }
    }
    if (str_starts(path, USAGE_REPORT)) {
        if (!get)
            {
            method_not_allowed(r, o);
            return;
        }
        {
            report_redirect(s, r, o, path + strlen(USAGE_REPORT));
            return;
        }
    }
    if (!strcmp(path, "/v1.0/admin/reportSettings")) {
        if (!get && strcmp(r->method, "PATCH") != 0)
            {
            method_not_allowed(r, o);
            return;
        }
        {
            report_settings(s, r, o);
            return;
        }
    }
    if (!strcmp(path, "/v1.0/auditLogs/signIns") || !strcmp(path, "/beta/auditLogs/signIns")) {
        if (!get) {
            method_not_allowed(r, o);
            return;
        }
        sign_ins(s, r, o, path[1] == 'b');
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "Resource not found for the segment '%.200s'.", path + 6);
    sim_resp_graph_error(o, r, 400, "BadRequest", msg);
}
