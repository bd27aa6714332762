/*
 * sim_state_load.c - reading the tenant state: the JSON file (streamed
 * element by element, so a 100,000-user file never exists as one JSON tree),
 * a parsed document, and the users and sign-ins added at run time.  Errors
 * name the JSON path ("users[12].mailbox.PopEnabled") or the line and column.
 */
#include "sim/sim_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- loading ---------------------------------------------------------------- */

struct loader {
    struct sim_state *st;
    char *err;
    size_t err_size;
};

static int lfail(struct loader *L, const char *path, const char *what)
{
    snprintf(L->err, L->err_size, "%s: %s", path, what);
    return -1;
}

/* Optional string member: *out = malloc'd copy or NULL.  Non-string non-null is an error. */
static int get_str(struct loader *L, json_t *obj, const char *key, const char *path, char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        char p[160];
        snprintf(p, sizeof p, "%s.%s", path, key);
        return lfail(L, p, "must be a string");
    }
    *out = strdup(json_string_value(v));
    return *out ? 0 : lfail(L, path, "out of memory");
}

static int get_istr(struct loader *L, json_t *obj, const char *key, const char *path,
                    const char **out)
{
    char *s = NULL;
    *out = NULL;
    if (get_str(L, obj, key, path, &s) != 0)
        return -1;
    if (s) {
        *out = intern_str(&L->st->pool, s);
        free(s);
        if (!*out)
            return lfail(L, path, "out of memory");
    }
    return 0;
}

static int get_bool(struct loader *L, json_t *obj, const char *key, const char *path, int def,
                    int *out)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        char p[160];
        snprintf(p, sizeof p, "%s.%s", path, key);
        return lfail(L, p, "must be true or false");
    }
    *out = json_is_true(v);
    return 0;
}

static int get_int(struct loader *L, json_t *obj, const char *key, const char *path, int min,
                   int max, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char p[160], m[80];
        snprintf(p, sizeof p, "%s.%s", path, key);
        snprintf(m, sizeof m, "must be an integer in [%d, %d]", min, max);
        return lfail(L, p, m);
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int load_mailbox(struct loader *L, json_t *jm, const char *path, struct sim_user *u)
{
    if (!json_is_object(jm))
        return lfail(L, path, "must be an object or null");
    struct sim_mailbox *m = calloc(1, sizeof *m);
    if (!m)
        return lfail(L, path, "out of memory");
    u->mbx = m;
    sim_mailbox_defaults(m);
    if (get_str(L, jm, "Name", path, &m->name) != 0)
        return -1;
    if (!m->name) {
        /* the alias defaults to the UPN's local part */
        const char *at = strchr(u->upn, '@');
        m->name = strndup(u->upn, at ? (size_t)(at - u->upn) : strlen(u->upn));
        if (!m->name)
            return lfail(L, path, "out of memory");
    }
    json_t *g = json_object_get(jm, "ExchangeGuid");
    if (g && !json_is_string(g))
        return lfail(L, path, "ExchangeGuid must be a string");
    str_copy(m->exchange_guid, sizeof m->exchange_guid, g ? json_string_value(g) : u->id);
    json_t *wc = json_object_get(jm, "WhenChanged");
    if (wc && json_is_string(wc) && parse_iso(json_string_value(wc), &m->when_changed_ms, NULL) != 0)
        return lfail(L, path, "WhenChanged is not an ISO 8601 time");
    const char *key;
    json_t *v;
    json_object_foreach(jm, key, v) {
        if (!strcmp(key, "Name") || !strcmp(key, "ExchangeGuid") || !strcmp(key, "WhenChanged"))
            continue;
        int p = sim_cas_prop_find(key);
        char pp[200];
        snprintf(pp, sizeof pp, "%s.%s", path, key);
        if (p < 0)
            return lfail(L, pp, "unknown CAS mailbox property");
        switch (sim_cas_props[p].type) {
        case SIM_CAS_BOOL:
            if (!json_is_boolean(v))
                return lfail(L, pp, "must be true or false");
            m->b[p] = (signed char)json_is_true(v);
            break;
        case SIM_CAS_NBOOL:
            if (!json_is_boolean(v) && !json_is_null(v))
                return lfail(L, pp, "must be true, false or null");
            m->b[p] = json_is_null(v) ? -1 : (signed char)json_is_true(v);
            break;
        case SIM_CAS_STR:
            if (!json_is_string(v) && !json_is_null(v))
                return lfail(L, pp, "must be a string or null");
            m->s[p] = json_is_null(v) ? NULL : intern_str(&L->st->pool, json_string_value(v));
            break;
        }
    }
    return 0;
}

static int load_usage(struct loader *L, json_t *ju, const char *path, struct sim_user *u)
{
    if (!json_is_object(ju))
        return lfail(L, path, "must be an object or null");
    struct sim_usage *us = calloc(1, sizeof *us);
    if (!us)
        return lfail(L, path, "out of memory");
    u->usage = us;
    const char *key;
    json_t *v;
    json_object_foreach(ju, key, v) {
        char pp[200];
        snprintf(pp, sizeof pp, "%s.%s", path, key);
        if (!strcmp(key, "lastActivityDate")) {
            int64_t ms;
            if (json_is_null(v))
                continue;
            if (!json_is_string(v) || parse_iso(json_string_value(v), &ms, NULL) != 0)
                return lfail(L, pp, "must be a YYYY-MM-DD date or null");
            fmt_date(ms, us->last_activity, sizeof us->last_activity);
            continue;
        }
        int a = -1;
        for (int i = 0; i < SIM_N_USAGE_APPS; i++)
            if (!strcmp(key, sim_usage_apps[i]))
                a = i;
        if (a < 0)
            return lfail(L, pp, "unknown usage column (use the report's column names)");
        if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
            continue;
        if (!json_is_string(v))
            return lfail(L, pp, "must be a string (the report cell) or null");
        us->apps[a] = intern_str(&L->st->pool, json_string_value(v));
    }
    return 0;
}

static int load_user(struct loader *L, json_t *ju, size_t idx, struct sim_user *u)
{
    char path[64];
    snprintf(path, sizeof path, "users[%zu]", idx);
    if (!json_is_object(ju))
        return lfail(L, path, "must be an object");
    if (get_str(L, ju, "id", path, &u->id) || get_str(L, ju, "userPrincipalName", path, &u->upn) ||
        get_str(L, ju, "displayName", path, &u->display_name) ||
        get_str(L, ju, "givenName", path, &u->given_name) ||
        get_str(L, ju, "surname", path, &u->surname) || get_str(L, ju, "mail", path, &u->mail) ||
        get_str(L, ju, "mobilePhone", path, &u->mobile_phone) ||
        get_istr(L, ju, "jobTitle", path, &u->job_title) ||
        get_istr(L, ju, "officeLocation", path, &u->office_location) ||
        get_istr(L, ju, "preferredLanguage", path, &u->preferred_language) ||
        get_istr(L, ju, "userType", path, &u->user_type) ||
        get_bool(L, ju, "accountEnabled", path, 1, &u->account_enabled))
        return -1;
    if (!u->id)
        return lfail(L, path, "id is required");
    if (!u->upn)
        return lfail(L, path, "userPrincipalName is required");
    if (!u->user_type)
        u->user_type = intern_str(&L->st->pool, "Member");
    json_t *bp = json_object_get(ju, "businessPhones");
    if (bp && !json_is_array(bp))
        return lfail(L, path, "businessPhones must be an array");
    if (bp && json_array_size(bp) > 0) {
        json_t *p0 = json_array_get(bp, 0);
        if (!json_is_string(p0))
            return lfail(L, path, "businessPhones[0] must be a string");
        u->business_phone = strdup(json_string_value(p0));
    }
    json_t *lic = json_object_get(ju, "assignedLicenses");
    if (lic && !json_is_array(lic))
        return lfail(L, path, "assignedLicenses must be an array");
    if (lic && json_array_size(lic) > 0) {
        u->skus = calloc(json_array_size(lic), sizeof *u->skus);
        if (!u->skus)
            return lfail(L, path, "out of memory");
        size_t i;
        json_t *l;
        json_array_foreach(lic, i, l) {
            json_t *sku = json_object_get(l, "skuId");
            if (!json_is_string(sku))
                return lfail(L, path, "assignedLicenses[].skuId must be a string");
            u->skus[u->n_skus++] = intern_str(&L->st->pool, json_string_value(sku));
        }
    }
    json_t *jm = json_object_get(ju, "mailbox");
    if (jm && !json_is_null(jm)) {
        char mp[80];
        snprintf(mp, sizeof mp, "%s.mailbox", path);
        if (load_mailbox(L, jm, mp, u) != 0)
            return -1;
    }
    json_t *us = json_object_get(ju, "usage");
    if (us && !json_is_null(us)) {
        char up[80];
        snprintf(up, sizeof up, "%s.usage", path);
        if (load_usage(L, us, up, u) != 0)
            return -1;
    }
    return 0;
}

static const char *sub_str(json_t *obj, const char *a, const char *b)
{
    json_t *o = json_object_get(obj, a);
    json_t *v = b ? json_object_get(o, b) : o;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_signin(struct loader *L, json_t *js, size_t idx, struct sim_signin *s)
{
    char path[64];
    snprintf(path, sizeof path, "sign_ins[%zu]", idx);
    if (!json_is_object(js))
        return lfail(L, path, "must be an object");
    struct intern *P = &L->st->pool;
    const char *created = sub_str(js, "createdDateTime", NULL);
    if (!created || parse_iso(created, &s->created_ms, NULL) != 0)
        return lfail(L, path, "createdDateTime must be an ISO 8601 time");
    s->created = strdup(created);
    s->id = str_dup(sub_str(js, "id", NULL));
    s->correlation_id = str_dup(sub_str(js, "correlationId", NULL));
    if (!s->id)
        return lfail(L, path, "id is required");
    s->user_display_name = intern_str(P, sub_str(js, "userDisplayName", NULL));
    s->upn = intern_str(P, sub_str(js, "userPrincipalName", NULL));
    s->user_id = intern_str(P, sub_str(js, "userId", NULL));
    s->app_id = intern_str(P, sub_str(js, "appId", NULL));
    s->app_display_name = intern_str(P, sub_str(js, "appDisplayName", NULL));
    s->ip = intern_str(P, sub_str(js, "ipAddress", NULL));
    s->client_app = intern_str(P, sub_str(js, "clientAppUsed", NULL));
    s->ca_status = intern_str(P, sub_str(js, "conditionalAccessStatus", NULL));
    s->resource_display_name = intern_str(P, sub_str(js, "resourceDisplayName", NULL));
    s->failure_reason = intern_str(P, sub_str(js, "status", "failureReason"));
    s->os = intern_str(P, sub_str(js, "deviceDetail", "operatingSystem"));
    s->browser = intern_str(P, sub_str(js, "deviceDetail", "browser"));
    s->city = intern_str(P, sub_str(js, "location", "city"));
    s->region = intern_str(P, sub_str(js, "location", "state"));
    s->country = intern_str(P, sub_str(js, "location", "countryOrRegion"));
    json_t *ii = json_object_get(js, "isInteractive");
    s->is_interactive = json_is_true(ii);
    json_t *types = json_object_get(js, "signInEventTypes"), *t;
    size_t k;
    json_array_foreach(types, k, t)
        if (json_is_string(t) && !strcasecmp(json_string_value(t), "nonInteractiveUser"))
            s->non_interactive_stream = 1;
    json_t *ec = json_object_get(json_object_get(js, "status"), "errorCode");
    s->error_code = json_is_integer(ec) ? (int)json_integer_value(ec) : 0;
    return 0;
}

static int load_app(struct loader *L, json_t *ja, size_t idx, struct sim_app *a)
{
    char path[64];
    snprintf(path, sizeof path, "apps[%zu]", idx);
    if (!json_is_object(ja))
        return lfail(L, path, "must be an object");
    if (get_str(L, ja, "client_id", path, &a->client_id) ||
        get_str(L, ja, "display_name", path, &a->display_name))
        return -1;
    if (!a->client_id)
        return lfail(L, path, "client_id is required");
    json_t *secrets = json_object_get(ja, "secrets");
    if (secrets && !json_is_array(secrets))
        return lfail(L, path, "secrets must be an array of strings");
    size_t i;
    json_t *v;
    if (secrets) {
        a->secrets = calloc(json_array_size(secrets) + 1, sizeof *a->secrets);
        if (!a->secrets)
            return lfail(L, path, "out of memory");
        json_array_foreach(secrets, i, v) {
            if (!json_is_string(v))
                return lfail(L, path, "secrets must be an array of strings");
            a->secrets[a->n_secrets++] = strdup(json_string_value(v));
        }
    }
    json_t *perms = json_object_get(ja, "graph_permissions");
    if (perms && !json_is_null(perms)) {
        size_t k;
        json_t *p;
        if (!json_is_array(perms))
            return lfail(L, path, "graph_permissions must be an array of permission names or null");
        json_array_foreach(perms, k, p) if (!json_is_string(p)) return lfail(
            L, path, "graph_permissions must be an array of permission names or null");
        a->graph_permissions = json_deep_copy(perms);
    }
    json_t *certs = json_object_get(ja, "certificates");
    if (certs && !json_is_array(certs))
        return lfail(L, path, "certificates must be an array of PEM strings");
    json_array_foreach(certs, i, v) {
        char e[128], p[96];
        snprintf(p, sizeof p, "%s.certificates[%zu]", path, i);
        if (!json_is_string(v))
            return lfail(L, p, "must be a PEM string");
        if (sim_app_add_key(a, json_string_value(v), e, sizeof e) != 0)
            return lfail(L, p, e);
    }
    return 0;
}

static int load_head(struct loader *Lp, json_t *doc)
{
    struct loader L = *Lp;
    struct sim_state *st = L.st;
    json_t *fmt = json_object_get(doc, "format");
    if (fmt && (!json_is_string(fmt) || strcmp(json_string_value(fmt), SIM_STATE_FORMAT) != 0))
        return lfail(&L, "format", "must be \"" SIM_STATE_FORMAT "\"");
    json_t *t = json_object_get(doc, "tenant");
    if (!json_is_object(t))
        return lfail(&L, "tenant", "is required (an object)");
    if (get_str(&L, t, "id", "tenant", &st->tenant_id) ||
        get_str(&L, t, "name", "tenant", &st->tenant_name) ||
        get_str(&L, t, "initial_domain", "tenant", &st->initial_domain) ||
        get_bool(&L, t, "premium", "tenant", 1, &st->premium))
        return -1;
    if (!st->tenant_id)
        return lfail(&L, "tenant.id", "is required");
    if (!st->initial_domain)
        return lfail(&L, "tenant.initial_domain", "is required");
    json_t *doms = json_object_get(t, "domains");
    if (doms && !json_is_array(doms))
        return lfail(&L, "tenant.domains", "must be an array of strings");
    st->domains = calloc(json_array_size(doms) + 1, sizeof *st->domains);
    if (!st->domains)
        return lfail(&L, "tenant.domains", "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(doms, i, v) {
        if (!json_is_string(v))
            return lfail(&L, "tenant.domains", "must be an array of strings");
        st->domains[st->n_domains++] = strdup(json_string_value(v));
    }

    json_t *s = json_object_get(doc, "settings");
    if (s && !json_is_object(s))
        return lfail(&L, "settings", "must be an object");
    if (s) {
        char *rrd = NULL;
        if (get_int(&L, s, "token_lifetime_s", "settings", 1, 86400, &st->token_lifetime_s) ||
            get_int(&L, s, "exo_page_size", "settings", 1, 1000, &st->exo_page_size) ||
            get_int(&L, s, "exo_rate_limit_per_minute", "settings", 1, 1000000,
                    &st->exo_rate_limit) ||
            get_int(&L, s, "org_config_delay_ms", "settings", 0, 86400000,
                    &st->org_config_delay_ms) ||
            get_str(&L, s, "report_refresh_date", "settings", &rrd))
            return -1;
        if (rrd) {
            int64_t ms;
            int bad = parse_iso(rrd, &ms, NULL) != 0;
            if (!bad)
                fmt_date(ms, st->report_refresh_date, sizeof st->report_refresh_date);
            free(rrd);
            if (bad)
                return lfail(&L, "settings.report_refresh_date", "must be YYYY-MM-DD");
        }
    }
    json_t *rs = json_object_get(doc, "report_settings");
    if (rs && get_bool(&L, rs, "displayConcealedNames", "report_settings", 0, &st->conceal_names))
        return -1;
    json_t *tc = json_object_get(doc, "transport_config");
    if (tc) {
        int a = 1, b = 0;
        if (!json_is_object(tc))
            return lfail(&L, "transport_config", "must be an object");
        if (get_bool(&L, tc, "SmtpClientAuthenticationDisabled", "transport_config", 1, &a) ||
            get_bool(&L, tc, "AllowLegacyTLSClients", "transport_config", 0, &b))
            return -1;
        st->smtp_auth_disabled_org = (signed char)a;
        st->allow_legacy_tls = (signed char)b;
        json_t *wc = json_object_get(tc, "WhenChanged");
        if (json_is_string(wc))
            (void)parse_iso(json_string_value(wc), &st->transport_when_changed_ms, NULL);
    }

    json_t *apps = json_object_get(doc, "apps");
    if (apps && !json_is_array(apps))
        return lfail(&L, "apps", "must be an array");
    if (apps && json_array_size(apps)) {
        st->apps = calloc(json_array_size(apps), sizeof *st->apps);
        if (!st->apps)
            return lfail(&L, "apps", "out of memory");
        json_array_foreach(apps, i, v) {
            st->n_apps++;
            if (load_app(&L, v, i, &st->apps[i]) != 0)
                return -1;
        }
    }

    json_t *ca = json_object_get(doc, "conditional_access");
    if (ca && !json_is_object(ca))
        return lfail(&L, "conditional_access", "must be an object");
    if (ca) {
        json_t *pol = json_object_get(ca, "policies"), *grp = json_object_get(ca, "groups");
        if ((pol && !json_is_array(pol)) || (grp && !json_is_array(grp)))
            return lfail(&L, "conditional_access", "policies and groups must be arrays");
        json_array_foreach(pol, i, v) if (!json_is_object(v) ||
                                          !json_is_string(json_object_get(v, "id")))
            return lfail(&L, "conditional_access.policies", "each must be an object with an id");
        json_array_foreach(grp, i, v) if (!json_is_object(v) ||
                                          !json_is_string(json_object_get(v, "id")))
            return lfail(&L, "conditional_access.groups", "each must be an object with an id");
        if (pol) {
            json_decref(st->ca_policies);
            st->ca_policies = json_deep_copy(pol);
        }
        if (grp) {
            json_decref(st->groups);
            st->groups = json_deep_copy(grp);
        }
    }
    json_t *plans = json_object_get(doc, "mailbox_plans");
    if (plans) {
        if (!json_is_array(plans))
            return lfail(&L, "mailbox_plans", "must be an array");
        json_array_foreach(plans, i, v) if (!json_is_object(v) ||
                                            !json_is_string(json_object_get(v, "Name")) ||
                                            !json_is_string(json_object_get(v, "DisplayName")))
            return lfail(&L, "mailbox_plans", "each must be an object with Name and DisplayName");
        st->mailbox_plans = json_deep_copy(plans);
    }
    json_t *oc = json_object_get(doc, "organization_config");
    if (oc) {
        json_t *ids = json_object_get(oc, "EwsAllowedAppIDs");
        if (!json_is_object(oc) || (ids && !json_is_array(ids)))
            return lfail(&L, "organization_config",
                         "must be an object; EwsAllowedAppIDs an array of application ids");
        st->org_config = json_deep_copy(oc);
        if (!ids)
            json_object_set_new(st->org_config, "EwsAllowedAppIDs", json_array());
    }
    sim_state_org_defaults(st);
    json_t *oid = json_object_get(doc, "openid");
    if (oid && (!json_is_object(oid) ||
                (json_object_get(oid, "users") && !json_is_object(json_object_get(oid, "users"))) ||
                (json_object_get(oid, "password") &&
                 !json_is_string(json_object_get(oid, "password")))))
        return lfail(&L, "openid", "must be {\"password\": string, \"users\": {upn: {\"roles\": "
                                   "[...], \"password\": string}}}");
    if (oid) {
        json_decref(st->openid);
        st->openid = json_deep_copy(oid);
    }
    json_t *mail = json_object_get(doc, "sent_mail");
    if (mail && !json_is_array(mail))
        return lfail(&L, "sent_mail", "must be an array");
    if (mail) {
        json_decref(st->sent_mail);
        st->sent_mail = json_incref(mail);
    }
    return 0;
}

static int add_user(struct loader *L, json_t *ju)
{
    struct sim_state *st = L->st;
    if (st->n_users == st->cap_users) {
        size_t ncap = st->cap_users ? st->cap_users * 2 : 1024;
        struct sim_user *nu = realloc(st->users, ncap * sizeof *nu);
        if (!nu)
            return lfail(L, "users", "out of memory");
        st->users = nu;
        st->cap_users = ncap;
    }
    struct sim_user *u = &st->users[st->n_users++];
    memset(u, 0, sizeof *u);
    return load_user(L, ju, st->n_users - 1, u);
}

static int add_signin(struct loader *L, json_t *js, size_t *cap)
{
    struct sim_state *st = L->st;
    if (st->n_signins == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        struct sim_signin *ns = realloc(st->signins, ncap * sizeof *ns);
        if (!ns)
            return lfail(L, "sign_ins", "out of memory");
        st->signins = ns;
        *cap = ncap;
    }
    struct sim_signin *si = &st->signins[st->n_signins++];
    memset(si, 0, sizeof *si);
    return load_signin(L, js, st->n_signins - 1, si);
}

/* After all members: sign-ins sorted, index built. */
static int load_finish(struct loader *L)
{
    sim_state_sort_signins(L->st);
    if (sim_state_reindex(L->st) != 0)
        return lfail(L, "users", "out of memory while indexing");
    return 0;
}

int sim_state_add_user_json(struct sim_state *st, json_t *ju, char *err, size_t err_size)
{
    struct loader L = {st, err, err_size};
    if (!json_is_object(ju))
        return lfail(&L, "user", "must be an object");
    const char *keys[] = {"id", "userPrincipalName", "mail"};
    for (int k = 0; k < 3; k++) {
        const char *v = json_string_value(json_object_get(ju, keys[k]));
        if (v && sim_state_find_user(st, v) != -1) {
            snprintf(err, err_size, "user: %s '%s' is already taken", keys[k], v);
            return -1;
        }
    }
    size_t before = st->n_users;
    if (add_user(&L, ju) != 0) {
        if (st->n_users > before) {
            sim_user_free(&st->users[st->n_users - 1]);
            st->n_users--;
        }
        return -1;
    }
    if (sim_state_reindex(st) != 0)
        return lfail(&L, "user", "out of memory while indexing");
    return 0;
}

int sim_state_add_signin_json(struct sim_state *st, json_t *js, char *err, size_t err_size)
{
    struct loader L = {st, err, err_size};
    size_t cap = st->n_signins; /* full: add_signin grows the array */
    size_t before = st->n_signins;
    if (add_signin(&L, js, &cap) != 0) {
        if (st->n_signins > before) {
            struct sim_signin *si = &st->signins[st->n_signins - 1];
            free(si->id);
            free(si->correlation_id);
            free(si->created);
            st->n_signins--;
        }
        return -1;
    }
    sim_state_sort_signins(st);
    return 0;
}

int sim_state_from_json(struct sim_state *st, json_t *doc, char *err, size_t err_size)
{
    struct loader L = {st, err, err_size};
    sim_state_init(st);
    if (!json_is_object(doc))
        return lfail(&L, "$", "the state must be a JSON object");
    if (load_head(&L, doc) != 0)
        return -1;
    json_t *users = json_object_get(doc, "users");
    json_t *sis = json_object_get(doc, "sign_ins");
    if (users && !json_is_array(users))
        return lfail(&L, "users", "must be an array");
    if (sis && !json_is_array(sis))
        return lfail(&L, "sign_ins", "must be an array");
    size_t i, cap = 0;
    json_t *v;
    json_array_foreach(users, i, v) {
        if (add_user(&L, v) != 0)
            return -1;
    }
    json_array_foreach(sis, i, v) {
        if (add_signin(&L, v, &cap) != 0)
            return -1;
    }
    return load_finish(&L);
}

/*
 * Streaming load: the top-level object is walked by hand and each element
 * of "users" and "sign_ins" is parsed on its own (jansson with
 * JSON_DISABLE_EOF_CHECK stops right after the element's closing brace), so
 * a 100,000-user file never exists as one JSON tree in memory.
 */
struct cursor {
    const char *p, *end, *start;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int cfail(struct loader *L, struct cursor *c, const char *what)
{
    int line = 1, col = 1;
    for (const char *q = c->start; q < c->p; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char where[64];
    snprintf(where, sizeof where, "line %d, column %d", line, col);
    return lfail(L, where, what);
}

/* Parse one JSON value at the cursor (containers exactly; scalars by scanning their extent). */
static json_t *parse_value(struct loader *L, struct cursor *c)
{
    json_error_t je;
    skip_ws(c);
    if (c->p >= c->end) {
        cfail(L, c, "unexpected end of file");
        return NULL;
    }
    size_t len;
    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    if (*c->p == '{' || *c->p == '[') {
        flags |= JSON_DISABLE_EOF_CHECK;
        len = (size_t)(c->end - c->p);
    } else if (*c->p == '"') {
        const char *q = c->p + 1;
        while (q < c->end && *q != '"')
            q += *q == '\\' ? 2 : 1;
        if (q >= c->end) {
            cfail(L, c, "unterminated string");
            return NULL;
        }
        len = (size_t)(q + 1 - c->p);
    } else {
        const char *q = c->p;
        while (q < c->end && !strchr(",}] \t\r\n", *q))
            q++;
        len = (size_t)(q - c->p);
    }
    json_t *v = json_loadb(c->p, len, flags, &je);
    if (!v) {
        char m[200];
        snprintf(m, sizeof m, "invalid JSON: %s", je.text);
        if (je.position > 0 && (size_t)je.position <= len)
            c->p += je.position;
        cfail(L, c, m);
        return NULL;
    }
    c->p += (flags & JSON_DISABLE_EOF_CHECK) ? (size_t)je.position : len;
    return v;
}

/* Walk the "users" or "sign_ins" array, loading element by element; 0 or -1. */
static int stream_array(struct loader *L, struct cursor *c, int is_users, size_t *cap)
{
    const char *name = is_users ? "users" : "sign_ins";
    char m[80];
    skip_ws(c);
    if (c->p >= c->end || *c->p != '[') {
        snprintf(m, sizeof m, "%s must be an array", name);
        return cfail(L, c, m);
    }
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p != '{') {
            snprintf(m, sizeof m, "%s: each element must be an object", name);
            return cfail(L, c, m);
        }
        json_t *v = parse_value(L, c);
        if (!v)
            return -1;
        int rc = is_users ? add_user(L, v) : add_signin(L, v, cap);
        json_decref(v);
        if (rc != 0)
            return -1;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
        return cfail(L, c, "expected ',' or ']'");
    }
}

static int load_text(struct loader *L, const char *text, size_t len)
{
    struct cursor c = {text, text + len, text};
    json_t *head = json_object();
    int rc = -1, saw_users = 0, saw_signins = 0;
    size_t cap = 0;
    if (!head)
        return lfail(L, "$", "out of memory");
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        cfail(L, &c, "the state must be a JSON object");
        goto out;
    }
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            skip_ws(&c);
            if (c.p >= c.end || *c.p != '"') {
                cfail(L, &c, "expected a member name");
                goto out;
            }
            json_t *k = parse_value(L, &c);
            if (!k)
                goto out;
            char key[64];
            str_copy(key, sizeof key, json_string_value(k) ? json_string_value(k) : "");
            json_decref(k);
            skip_ws(&c);
            if (c.p >= c.end || *c.p != ':') {
                cfail(L, &c, "expected ':'");
                goto out;
            }
            c.p++;
            int is_users = !strcmp(key, "users"), is_signins = !strcmp(key, "sign_ins");
            if (json_object_get(head, key) || (is_users && saw_users) ||
                (is_signins && saw_signins)) {
                char m[100];
                snprintf(m, sizeof m, "duplicate member '%s'", key);
                cfail(L, &c, m);
                goto out;
            }
            if (is_users || is_signins) {
                saw_users |= is_users;
                saw_signins |= is_signins;
                if (stream_array(L, &c, is_users, &cap) != 0)
                    goto out;
            } else {
                json_t *v = parse_value(L, &c);
                if (!v)
                    goto out;
                json_object_set_new(head, key, v);
            }
            skip_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == '}') {
                c.p++;
                break;
            }
            cfail(L, &c, "expected ',' or '}'");
            goto out;
        }
    }
    skip_ws(&c);
    if (c.p != c.end) {
        cfail(L, &c, "text after the state object");
        goto out;
    }
    if (load_head(L, head) != 0)
        goto out;
    rc = load_finish(L);
out:
    json_decref(head);
    return rc;
}

int sim_state_load(struct sim_state *st, const char *path, char *err, size_t err_size)
{
    char inner[400];
    struct loader L = {st, inner, sizeof inner};
    sim_state_init(st);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct strbuf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        strbuf_addn(&b, chunk, n);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err || b.failed) {
        strbuf_free(&b);
        snprintf(err, err_size, "%s: %s", path, rd_err ? "read error" : "out of memory");
        return -1;
    }
    int rc = load_text(&L, b.p ? b.p : "", b.len);
    strbuf_free(&b);
    if (rc != 0)
        snprintf(err, err_size, "%s: %s", path, inner);
    return rc;
}
