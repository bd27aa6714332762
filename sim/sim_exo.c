/*
 * sim_exo.c - Exchange Online's admin REST endpoint as the ExchangeOnline
 * PowerShell module v3 uses it:
 *
 *   POST /adminapi/beta/{tenant}/InvokeCommand[?$select=A,B]
 *   {"CmdletInput":{"CmdletName":"Get-CASMailbox","Parameters":{...}}}
 *
 * Cmdlets: Get-CASMailbox (Identity, ResultSize; pages with @odata.nextLink
 * that the client answers by re-POSTing the same body), Set-CASMailbox,
 * Get-TransportConfig, Set-TransportConfig; the mailbox plans and the
 * organisation config are in sim_exo_org.c.  Objects carry @odata.type /
 * @data.type annotations mixed in with the data, as the real service's
 * output does.  Errors use the envelope of the shared reference:
 * error.message "Invalid Operation", details[0].message
 * "|Dotted.Exception.Type|text".  Every answer carries Rate-Limit-* and
 * Request-Id headers.  The endpoint is undocumented; what the simulator
 * assumes is listed in docs/simulator.md.
 */
#include "sim/sim.h"
#include "sim/sim_exo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EX_NOT_FOUND "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
#define EX_AMBIGUOUS "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException"
#define EX_AMBIG_PARAM "System.Management.Automation.AmbiguousParameterSetException"

void exo_error(struct sim_resp *o, int status, const char *code, const char *type,
                      const char *fmt, ...)
{
    char text[1024], detail[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(detail, sizeof detail, "|%s|%s", type, text);
    struct strbuf *b = &o->body;
    strbuf_free(b);
    strbuf_add(b, "{\"error\":{\"code\":");
    sbuf_json_str(b, code);
    strbuf_add(b, ",\"message\":\"Invalid Operation\",\"details\":[{\"code\":\"Context\","
                 "\"target\":\"\",\"message\":");
    sbuf_json_str(b, detail);
    strbuf_add(b, "}],\"innererror\":{\"message\":");
    sbuf_json_str(b, text);
    strbuf_add(b, ",\"type\":\"Microsoft.Exchange.Admin.OData.Core.ODataServiceException\","
                 "\"internalexception\":{\"message\":");
    sbuf_json_str(b, text);
    strbuf_add(b, "}}}}");
    o->status = status;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

/* Start a successful collection answer: context + warnings. */
void exo_begin(struct sim_req *r, struct strbuf *b, const char *tenant, const char *warning)
{
    strbuf_free(b);
    strbuf_addf(b, "{\"@odata.context\":\"%s/adminapi/beta/", r->base_url);
    sbuf_url_encode(b, tenant);
    strbuf_add(b, "/$metadata#Collection(Exchange.GenericHashTable)\","
                 "\"adminapi.warnings@odata.type\":\"#Collection(String)\",\"@adminapi.warnings\":[");
    if (warning)
        sbuf_json_str(b, warning);
    strbuf_add(b, "]");
}

/* ---- $select -------------------------------------------------------------------- */

void exo_select_parse(struct exo_select *sel, const char *text)
{
    memset(sel, 0, sizeof *sel);
    if (!text || !*text || !(sel->buf = strdup(text)))
        return;
    char *save = NULL;
    for (char *t = strtok_r(sel->buf, ",", &save); t && sel->n < 64; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t)
            sel->names[sel->n++] = t;
    }
}

int exo_want(const struct exo_select *sel, const char *name)
{
    if (sel->n == 0)
        return 1;
    for (int i = 0; i < sel->n; i++)
        if (!strcasecmp(sel->names[i], name))
            return 1;
    return 0;
}

/* Emit "Name@odata.type":"#T" (and @data.type when given) then "Name": */
void exo_key_annot(struct strbuf *b, int *first, const char *name, const char *odata,
                      const char *data)
{
    if (!*first)
        strbuf_addc(b, ',');
    *first = 0;
    if (data)
        strbuf_addf(b, "\"%s@data.type\":\"%s\",", name, data);
    if (odata)
        strbuf_addf(b, "\"%s@odata.type\":\"%s\",", name, odata);
    sbuf_json_key(b, name);
}

/*
 * One CAS mailbox in Get-CASMailbox's output shape (state read-locked).
 * Confirmed: the property names, annotations mixed into the data.  Assumed
 * [?]: ExternalDirectoryObjectId in the default output, Identity = alias,
 * the DistinguishedName/ExchangeVersion values, the annotation set.
 */
static void cas_object(struct strbuf *b, const struct sim_state *st, const struct sim_user *u,
                       const struct exo_select *sel)
{
    const struct sim_mailbox *m = u->mbx;
    int first = 1;
    char when[40];
    fmt_iso_s(m->when_changed_ms, when, sizeof when);
    strbuf_addc(b, '{');
    if (exo_want(sel, "Identity")) {
        exo_key_annot(b, &first, "Identity", NULL, NULL);
        sbuf_json_str(b, m->name);
    }
    if (exo_want(sel, "Name")) {
        exo_key_annot(b, &first, "Name", NULL, NULL);
        sbuf_json_str(b, m->name);
    }
    if (exo_want(sel, "DisplayName")) {
        exo_key_annot(b, &first, "DisplayName", NULL, NULL);
        sbuf_json_str(b, u->display_name);
    }
    if (exo_want(sel, "ExternalDirectoryObjectId")) {
        exo_key_annot(b, &first, "ExternalDirectoryObjectId", NULL, NULL);
        sbuf_json_str(b, u->id);
    }
    if (exo_want(sel, "Guid")) {
        exo_key_annot(b, &first, "Guid", "#Guid", "System.Guid");
        sbuf_json_str(b, m->exchange_guid);
    }
    if (exo_want(sel, "PrimarySmtpAddress")) {
        exo_key_annot(b, &first, "PrimarySmtpAddress", NULL, NULL);
        sbuf_json_str(b, u->mail ? u->mail : u->upn);
    }
    if (exo_want(sel, "EmailAddresses")) {
        exo_key_annot(b, &first, "EmailAddresses", "#Collection(String)", NULL);
        strbuf_add(b, "[\"SMTP:");
        struct strbuf t = {0};
        sbuf_json_str(&t, u->mail ? u->mail : u->upn);
        if (t.p && t.len >= 2)
            strbuf_addn(b, t.p + 1, t.len - 2);
        strbuf_free(&t);
        strbuf_add(b, "\",");
        char alias[600];
        snprintf(alias, sizeof alias, "smtp:%s@%s", m->name, st->initial_domain);
        sbuf_json_str(b, alias);
        strbuf_addc(b, ']');
    }
    if (exo_want(sel, "DistinguishedName")) {
        char dn[700];
        snprintf(dn, sizeof dn,
                 "CN=%s,OU=%s,OU=Microsoft Exchange Hosted Organizations,DC=NAMPR00A001,DC=PROD,"
                 "DC=OUTLOOK,DC=COM",
                 m->name, st->initial_domain);
        exo_key_annot(b, &first, "DistinguishedName", NULL, NULL);
        sbuf_json_str(b, dn);
    }
    for (size_t p = 0; p < sim_n_cas_props; p++) {
        if (!exo_want(sel, sim_cas_props[p].name))
            continue;
        exo_key_annot(b, &first, sim_cas_props[p].name, NULL, NULL);
        sim_cas_value_json(b, m, (int)p);
    }
    if (exo_want(sel, "WhenChanged")) {
        exo_key_annot(b, &first, "WhenChanged", "#DateTimeOffset", "System.DateTime");
        sbuf_json_str(b, when);
    }
    if (exo_want(sel, "ExchangeVersion")) {
        exo_key_annot(b, &first, "ExchangeVersion", NULL, NULL);
        strbuf_add(b, "\"0.20 (15.0.0.0)\"");
    }
    if (exo_want(sel, "IsValid")) {
        exo_key_annot(b, &first, "IsValid", NULL, NULL);
        strbuf_add(b, "true");
    }
    if (exo_want(sel, "ObjectState")) {
        exo_key_annot(b, &first, "ObjectState", NULL, NULL);
        strbuf_add(b, "\"Unchanged\"");
    }
    strbuf_addc(b, '}');
}

/*
 * The exception text is confirmed (a captured real error); the 404 status and
 * the "NotFound" code are assumed [?].
 */
void exo_not_found(struct sim_resp *o, const char *identity, int ambiguous)
{
    if (ambiguous)
        exo_error(o, 400, "BadRequest", EX_AMBIGUOUS,
                  "The operation couldn't be performed because '%.300s' matches multiple entries.",
                  identity);
    else
        exo_error(o, 404, "NotFound", EX_NOT_FOUND,
                  "The operation couldn't be performed because object '%.300s' couldn't be found "
                  "on '" EXO_SERVER "'.",
                  identity);
}

void exo_unknown_param(struct sim_resp *o, const char *cmdlet, const char *param)
{
    exo_error(o, 400, "BadRequest", EX_AMBIG_PARAM,
              "Parameter set cannot be resolved using the specified named parameters. A "
              "parameter cannot be found that matches parameter name '%.100s' on %.64s.",
              param, cmdlet);
}

/* ---- Get-CASMailbox --------------------------------------------------------------- */

/* Page size: Prefer/X-Prefer odata.maxpagesize (as the module sends), else the state's (1000) [assumed]. */
static int page_size(struct sim *s, struct sim_req *r)
{
    const char *hs[] = {sim_req_header(r, "Prefer"), sim_req_header(r, "X-Prefer")};
    for (int i = 0; i < 2; i++) {
        const char *p = hs[i] ? strstr(hs[i], "odata.maxpagesize=") : NULL;
        int64_t n;
        char num[16];
        if (!p)
            continue;
        p += 18;
        size_t k = 0;
        while (p[k] >= '0' && p[k] <= '9' && k < sizeof num - 1) {
            num[k] = p[k];
            k++;
        }
        num[k] = '\0';
        if (parse_i64(num, 1, 1000, &n) == 0)
            return (int)n;
    }
    return s->st.exo_page_size;
}

static void get_cas(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                    json_t *params)
{
    const char *identity = NULL;
    int64_t result_size = -1; /* -1 unlimited */
    int rs_given = 0;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        if (!strcasecmp(key, "Identity")) {
            if (!json_is_string(v) || !*json_string_value(v)) {
                exo_error(o, 400, "BadRequest", EX_PARAM,
                          "Cannot bind parameter 'Identity': expected a non-empty string.");
                return;
            }
            identity = json_string_value(v);
        } else if (!strcasecmp(key, "ResultSize")) {
            rs_given = 1;
            if (json_is_string(v) && !strcasecmp(json_string_value(v), "Unlimited"))
                result_size = -1;
            else if (json_is_integer(v) && json_integer_value(v) > 0)
                result_size = json_integer_value(v);
            else if (json_is_string(v) && parse_i64(json_string_value(v), 1, INT32_MAX, &result_size) == 0)
                ;
            else {
                exo_error(o, 400, "BadRequest", EX_PARAM,
                          "Cannot bind parameter 'ResultSize'. Cannot convert value to type "
                          "\"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\". Use "
                          "\"Unlimited\" or a positive integer.");
                return;
            }
        } else if (!strcasecmp(key, "ProtocolSettings") ||
                   !strcasecmp(key, "ReadIsOptimizedForAccessibility")) {
            /* switches that do not change the simulated output */
        } else {
            exo_unknown_param(o, "Get-CASMailbox", key);
            return;
        }
    }
    if (!rs_given)
        result_size = 1000; /* the cmdlet's default ResultSize; the warning text is assumed [?] */
    struct exo_select sel;
    exo_select_parse(&sel, sim_req_query(r, "$select"));
    struct strbuf *b = &o->body;
    int64_t pos = 0, emitted = 0;
    const char *sk = sim_req_query(r, "$skiptoken");
    if (sk && sim_skiptoken_parse(sk, "cas", &pos, &emitted) != 0) {
        free(sel.buf);
        exo_error(o, 400, "BadRequest", "System.ArgumentException", "Invalid $skiptoken.");
        return;
    }
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    if (identity) {
        int idx = sim_state_find_user(st, identity);
        if (idx < 0 || !st->users[idx].mbx) {
            pthread_rwlock_unlock(&s->lock);
            free(sel.buf);
            exo_not_found(o, identity, idx == HIDX_AMBIGUOUS);
            return;
        }
        exo_begin(r, b, tenant, NULL);
        strbuf_add(b, ",\"value\":[");
        cas_object(b, st, &st->users[idx], &sel);
        strbuf_add(b, "]}");
        pthread_rwlock_unlock(&s->lock);
        free(sel.buf);
        o->status = 200;
        str_copy(o->content_type, sizeof o->content_type, EXO_CT);
        return;
    }
    int per_page = page_size(s, r);
    struct strbuf items = {0};
    int64_t n = 0;
    size_t i;
    int more = 0, truncated = 0;
    for (i = (size_t)pos; i < st->n_users; i++) {
        const struct sim_user *u = &st->users[i];
        if (!u->mbx)
            continue;
        if (result_size >= 0 && emitted + n >= result_size) {
            truncated = 1;
            break;
        }
        if (n == per_page) {
            more = 1;
            break;
        }
        if (n)
            strbuf_addc(&items, ',');
        cas_object(&items, st, u, &sel);
        n++;
    }
    pthread_rwlock_unlock(&s->lock);
    free(sel.buf);
    exo_begin(r, b, tenant,
              truncated && !rs_given
                  ? "There are more results available than are currently displayed. To view "
                    "them, increase the value for the ResultSize parameter."
                  : NULL);
    strbuf_add(b, ",\"value\":[");
    if (items.p)
        strbuf_addn(b, items.p, items.len);
    strbuf_addc(b, ']');
    strbuf_free(&items);
    if (more) {
        char tok[200];
        sim_skiptoken_make("cas", (int64_t)i, emitted + n, tok, sizeof tok);
        strbuf_addf(b, ",\"@odata.nextLink\":\"%s/adminapi/beta/", r->base_url);
        sbuf_url_encode(b, tenant);
        strbuf_add(b, "/InvokeCommand?");
        const char *sq = sim_req_query(r, "$select");
        if (sq) {
            strbuf_add(b, "$select=");
            sbuf_url_encode(b, sq);
            strbuf_addc(b, '&');
        }
        strbuf_addf(b, "$skiptoken=%s\"", tok);
    }
    strbuf_addc(b, '}');
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

/* ---- Set-CASMailbox ---------------------------------------------------------------- */

static int check_value(struct sim_resp *o, const char *cmdlet, const char *key, int prop,
                       json_t *v)
{
    enum sim_cas_type t = sim_cas_props[prop].type;
    if (json_is_null(v)) {
        if (t == SIM_CAS_BOOL) {
            exo_error(o, 400, "BadRequest",
                      "System.Management.Automation.ParameterBindingValidationException",
                      "Cannot bind argument to parameter '%s' because it is null.",
                      sim_cas_props[prop].name);
            return -1;
        }
        return 0;
    }
    if ((t == SIM_CAS_STR && !json_is_string(v)) || (t != SIM_CAS_STR && !json_is_boolean(v))) {
        exo_error(o, 400, "BadRequest",
                  "System.Management.Automation.ParameterBindingArgumentTransformationException",
                  "Cannot process argument transformation on parameter '%s'. Cannot convert "
                  "value to type \"%s\" (%s).",
                  sim_cas_props[prop].name, t == SIM_CAS_STR ? "System.String" : "System.Boolean",
                  cmdlet);
        return -1;
    }
    (void)key;
    return 0;
}


int sim_mailbox_apply(struct sim_state *st, struct sim_mailbox *m, const json_t *params)
{
    const char *key;
    json_t *v;
    int changed = 0;
    json_object_foreach((json_t *)params, key, v) {
        int p = sim_cas_prop_find(key);
        if (p < 0)
            continue;
        if (sim_cas_props[p].type == SIM_CAS_STR) {
            const char *nv = json_is_null(v) ? NULL : intern_str(&st->pool, json_string_value(v));
            if ((nv == NULL) != (m->s[p] == NULL) || (nv && strcmp(nv, m->s[p]) != 0)) {
                m->s[p] = nv;
                changed = 1;
            }
        } else {
            signed char nv = json_is_null(v) ? -1 : (signed char)json_is_true(v);
            if (m->b[p] != nv) {
                m->b[p] = nv;
                changed = 1;
            }
        }
    }
    if (changed)
        m->when_changed_ms = now_ms();
    return changed;
}

static void set_cas(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                    json_t *params)
{
    const char *identity = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        if (!strcasecmp(key, "Identity")) {
            if (!json_is_string(v) || !*json_string_value(v)) {
                exo_error(o, 400, "BadRequest", EX_PARAM,
                          "Cannot bind parameter 'Identity': expected a non-empty string.");
                return;
            }
            identity = json_string_value(v);
            continue;
        }
        int p = sim_cas_prop_find(key);
        if (p < 0) {
            exo_unknown_param(o, "Set-CASMailbox", key);
            return;
        }
        if (check_value(o, "Set-CASMailbox", key, p, v) != 0)
            return;
    }
    if (!identity) {
        exo_error(o, 400, "BadRequest", EX_PARAM,
                  "Cannot process command because of one or more missing mandatory parameters: "
                  "Identity.");
        return;
    }
    pthread_rwlock_wrlock(&s->lock);
    struct sim_state *st = &s->st;
    int idx = sim_state_find_user(st, identity);
    if (idx < 0 || !st->users[idx].mbx) {
        pthread_rwlock_unlock(&s->lock);
        exo_not_found(o, identity, idx == HIDX_AMBIGUOUS);
        return;
    }
    struct sim_mailbox *m = st->users[idx].mbx;
    int changed = sim_mailbox_apply(st, m, params);
    char name[300];
    str_copy(name, sizeof name, m->name);
    uint64_t gen = changed ? ++s->gen : 0;
    pthread_rwlock_unlock(&s->lock);
    if (changed && sim_persist(s, gen) != 0) {
        exo_error(o, 500, "InternalServerError", "System.IO.IOException",
                  "The simulator could not save its state.");
        return;
    }
    char warn[400];
    snprintf(warn, sizeof warn,
             "The command completed successfully but no settings of '%s' have been modified.",
             name);
    exo_begin(r, &o->body, tenant, changed ? NULL : warn);
    strbuf_add(&o->body, ",\"value\":[]}");
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

/* ---- transport config ---------------------------------------------------------------- */

/* Name and SmtpClientAuthenticationDisabled are confirmed; the other properties are assumed [?]. */
static void get_transport(struct sim *s, struct sim_req *r, struct sim_resp *o,
                          const char *tenant, json_t *params)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        if (strcasecmp(key, "Identity") != 0) {
            exo_unknown_param(o, "Get-TransportConfig", key);
            return;
        }
    }
    struct exo_select sel;
    exo_select_parse(&sel, sim_req_query(r, "$select"));
    struct strbuf *b = &o->body;
    exo_begin(r, b, tenant, NULL);
    strbuf_add(b, ",\"value\":[{");
    int first = 1;
    char when[40];
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    fmt_iso_s(st->transport_when_changed_ms, when, sizeof when);
    if (exo_want(&sel, "Identity")) {
        exo_key_annot(b, &first, "Identity", NULL, NULL);
        strbuf_add(b, "\"Transport Settings\"");
    }
    if (exo_want(&sel, "Name")) {
        exo_key_annot(b, &first, "Name", NULL, NULL);
        strbuf_add(b, "\"Transport Settings\"");
    }
    if (exo_want(&sel, "SmtpClientAuthenticationDisabled")) {
        exo_key_annot(b, &first, "SmtpClientAuthenticationDisabled", NULL, NULL);
        strbuf_add(b, st->smtp_auth_disabled_org ? "true" : "false");
    }
    if (exo_want(&sel, "AllowLegacyTLSClients")) {
        exo_key_annot(b, &first, "AllowLegacyTLSClients", NULL, NULL);
        strbuf_add(b, st->allow_legacy_tls ? "true" : "false");
    }
    if (exo_want(&sel, "MaxSendSize")) {
        exo_key_annot(b, &first, "MaxSendSize", NULL, NULL);
        strbuf_add(b, "\"35 MB (36,700,160 bytes)\"");
    }
    if (exo_want(&sel, "MaxReceiveSize")) {
        exo_key_annot(b, &first, "MaxReceiveSize", NULL, NULL);
        strbuf_add(b, "\"36 MB (37,748,736 bytes)\"");
    }
    if (exo_want(&sel, "InternalSMTPServers")) {
        exo_key_annot(b, &first, "InternalSMTPServers", "#Collection(String)", NULL);
        strbuf_add(b, "[]");
    }
    if (exo_want(&sel, "Guid")) {
        exo_key_annot(b, &first, "Guid", "#Guid", "System.Guid");
        sbuf_json_str(b, st->tenant_id);
    }
    if (exo_want(&sel, "WhenChanged")) {
        exo_key_annot(b, &first, "WhenChanged", "#DateTimeOffset", "System.DateTime");
        sbuf_json_str(b, when);
    }
    if (exo_want(&sel, "IsValid")) {
        exo_key_annot(b, &first, "IsValid", NULL, NULL);
        strbuf_add(b, "true");
    }
    pthread_rwlock_unlock(&s->lock);
    free(sel.buf);
    strbuf_add(b, "}]}");
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

int sim_transport_apply(struct sim_state *st, int smtp_disabled, int allow_legacy_tls)
{
    int changed = 0;
    if (smtp_disabled >= 0 && st->smtp_auth_disabled_org != smtp_disabled) {
        st->smtp_auth_disabled_org = (signed char)smtp_disabled;
        changed = 1;
    }
    if (allow_legacy_tls >= 0 && st->allow_legacy_tls != allow_legacy_tls) {
        st->allow_legacy_tls = (signed char)allow_legacy_tls;
        changed = 1;
    }
    if (changed)
        st->transport_when_changed_ms = now_ms();
    return changed;
}

static void set_transport(struct sim *s, struct sim_req *r, struct sim_resp *o,
                          const char *tenant, json_t *params)
{
    const char *key;
    json_t *v;
    int set_smtp = -1, set_tls = -1;
    json_object_foreach(params, key, v) {
        int *slot = NULL;
        const char *canon = NULL;
        if (!strcasecmp(key, "SmtpClientAuthenticationDisabled")) {
            slot = &set_smtp;
            canon = "SmtpClientAuthenticationDisabled";
        } else if (!strcasecmp(key, "AllowLegacyTLSClients")) {
            slot = &set_tls;
            canon = "AllowLegacyTLSClients";
        } else if (!strcasecmp(key, "Identity")) {
            continue;
        } else {
            exo_unknown_param(o, "Set-TransportConfig", key);
            return;
        }
        if (json_is_null(v)) {
            exo_error(o, 400, "BadRequest",
                      "System.Management.Automation.ParameterBindingValidationException",
                      "Cannot bind argument to parameter '%s' because it is null.", canon);
            return;
        }
        if (!json_is_boolean(v)) {
            exo_error(o, 400, "BadRequest",
                      "System.Management.Automation.ParameterBindingArgumentTransformationException",
                      "Cannot process argument transformation on parameter '%s'. Cannot convert "
                      "value to type \"System.Boolean\".",
                      canon);
            return;
        }
        *slot = json_is_true(v);
    }
    pthread_rwlock_wrlock(&s->lock);
    int changed = sim_transport_apply(&s->st, set_smtp, set_tls);
    uint64_t gen = changed ? ++s->gen : 0;
    pthread_rwlock_unlock(&s->lock);
    if (changed && sim_persist(s, gen) != 0) {
        exo_error(o, 500, "InternalServerError", "System.IO.IOException",
                  "The simulator could not save its state.");
        return;
    }
    exo_begin(r, &o->body, tenant,
              changed ? NULL
                      : "The command completed successfully but no settings of 'Transport "
                        "Settings' have been modified.");
    strbuf_add(&o->body, ",\"value\":[]}");
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

/* ---- entry ------------------------------------------------------------------------ */

void sim_exo_peek_cmdlet(const char *body, size_t len, char *out, size_t size)
{
    out[0] = '\0';
    if (!body || !len)
        return;
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *name = json_string_value(
        json_object_get(json_object_get(doc, "CmdletInput"), "CmdletName"));
    if (name && strlen(name) < size && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == strlen(name))
        str_copy(out, size, name);
    json_decref(doc);
}

/* Rate-Limit-* headers; returns 0, or -1 after filling a 429 when the minute's budget is spent. */
static int rate_limit(struct sim *s, struct sim_resp *o)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&s->rl_lock);
    if (now - s->rl_window_start_ms >= 60000) {
        s->rl_window_start_ms = now;
        s->rl_used = 0;
    }
    int limit = s->st.exo_rate_limit;
    s->rl_used++;
    int remaining = limit - s->rl_used;
    int64_t reset = s->rl_window_start_ms + 60000;
    pthread_mutex_unlock(&s->rl_lock);
    char iso[40];
    fmt_iso_ms(reset, iso, sizeof iso);
    sim_resp_header(o, "Rate-Limit-Limit", "%d", limit);
    sim_resp_header(o, "Rate-Limit-Remaining", "%d", remaining < 0 ? 0 : remaining);
    sim_resp_header(o, "Rate-Limit-Reset", "%s", iso);
    if (remaining >= 0)
        return 0;
    int64_t wait_s = (reset - now + 999) / 1000;
    sim_resp_header(o, "Retry-After", "%lld", (long long)(wait_s > 0 ? wait_s : 1));
    exo_error(o, 429, "TooManyRequests", "Microsoft.Exchange.Admin.OData.Core.ThrottlingException",
              "The request was throttled: the tenant's budget of %d requests per minute is spent.",
              limit);
    return -1;
}

void sim_exo_invoke(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant)
{
    json_t *doc = NULL;
    if (sim_token_check(s, r, o, SIM_RES_EXO) != 0)
        return;
    if (rate_limit(s, o) != 0)
        return;
    pthread_rwlock_rdlock(&s->lock);
    int tenant_ok = sim_state_tenant_matches(&s->st, tenant);
    pthread_rwlock_unlock(&s->lock);
    if (!tenant_ok) {
        exo_error(o, 404, "NotFound", "Microsoft.Exchange.Configuration.Tasks.TenantNotFoundException",
                  "The tenant '%.200s' couldn't be found.", tenant);
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        exo_error(o, 405, "MethodNotAllowed", "System.InvalidOperationException",
                  "InvokeCommand accepts POST only.");
        return;
    }
    json_error_t je;
    doc = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &je);
    json_t *in = json_object_get(doc, "CmdletInput");
    json_t *name = json_object_get(in, "CmdletName");
    json_t *params = json_object_get(in, "Parameters");
    if (!json_is_object(doc) || !json_is_object(in) || !json_is_string(name)) {
        exo_error(o, 400, "BadRequest", "System.ArgumentException",
                  "The request body must be {\"CmdletInput\":{\"CmdletName\":\"...\","
                  "\"Parameters\":{...}}}.");
        goto out;
    }
    if (params && !json_is_object(params) && !json_is_null(params)) {
        exo_error(o, 400, "BadRequest", "System.ArgumentException",
                  "CmdletInput.Parameters must be an object.");
        goto out;
    }
    json_t *empty = json_object();
    json_t *p = json_is_object(params) ? params : empty;
    const char *cmd = json_string_value(name);
    if (!strcasecmp(cmd, "Get-CASMailbox"))
        get_cas(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Set-CASMailbox"))
        set_cas(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Get-TransportConfig"))
        get_transport(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Set-TransportConfig"))
        set_transport(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Get-CASMailboxPlan"))
        sim_exo_get_plans(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Set-CASMailboxPlan"))
        sim_exo_set_plan(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Get-OrganizationConfig"))
        sim_exo_get_org(s, r, o, tenant, p);
    else if (!strcasecmp(cmd, "Set-OrganizationConfig"))
        sim_exo_set_org(s, r, o, tenant, p);
    else
        exo_error(o, 400, "BadRequest", "System.Management.Automation.CommandNotFoundException",
                  "The term '%.100s' is not recognized as a name of a cmdlet, function, script "
                  "file, or executable program.",
                  cmd);
    json_decref(empty);
out:
    json_decref(doc);
}
