/*
 * sim_exo_org.c - the organisation-level Exchange cmdlets of the simulator:
 *
 *   Get-CASMailboxPlan [-Identity]    the CAS mailbox plans: the protocol
 *                                     defaults a new mailbox gets when a
 *                                     licence is assigned
 *   Set-CASMailboxPlan -Identity ...  PopEnabled, ImapEnabled, ...
 *   Get-OrganizationConfig [-RetrieveEwsOperationAccessPolicy]
 *   Set-OrganizationConfig -EwsAllowedAppIDs "id1,id2" | -EwsEnabled ...
 *
 * Plans and the organisation config are kept as JSON in the state
 * (st->mailbox_plans, st->org_config).  A Set-OrganizationConfig change does
 * not show at once: it is held as "pending" and becomes visible to
 * Get-OrganizationConfig org_config_delay_ms later (settings; default 300),
 * because in the real service such a change propagates (EwsAllowedAppIDs:
 * "up to 24 hours").  Which of the output's details are confirmed and which
 * assumed is in docs/simulator.md and docs/m365.md.
 */
#include "sim/sim_exo.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_APP_IDS 500

/* The settable boolean properties of a CAS mailbox plan (Set-CASMailboxPlan). */
static const char *const plan_bools[] = {"ActiveSyncEnabled", "ECPEnabled", "EwsEnabled",
                                         "ImapEnabled",       "MAPIEnabled", "OWAEnabled",
                                         "PopEnabled",        NULL};

static int plan_bool_index(const char *name)
{
    for (int i = 0; plan_bools[i]; i++)
        if (!strcasecmp(plan_bools[i], name))
            return i;
    return -1;
}

/* A GUID that depends only on the tenant id and the plan's name. */
static void plan_guid(const char *tenant_id, const char *name, char out[37])
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = tenant_id ? tenant_id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    struct sim_rng r;
    rng_seed(&r, h);
    rng_guid(&r, out);
}

static json_t *plan_new(const char *tenant_id, const char *display, int pop, int imap,
                        int64_t when)
{
    char guid[37], name[200], iso[40];
    plan_guid(tenant_id, display, guid);
    snprintf(name, sizeof name, "%s-%s", display, guid);
    fmt_iso_s(when, iso, sizeof iso);
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:s}", "Name", name,
                     "DisplayName", display, "Guid", guid, "ActiveSyncEnabled", 1, "ImapEnabled",
                     imap, "PopEnabled", pop, "OWAEnabled", 1, "MAPIEnabled", 1, "ECPEnabled", 1,
                     "EwsEnabled", 1, "OwaMailboxPolicy", "OwaMailboxPolicy-Default",
                     "WhenChanged", iso);
}

void sim_state_org_defaults(struct sim_state *st)
{
    int64_t when = 1704067200000LL; /* 2024-01-01: a tenant's plans predate everything else */
    if (!st->mailbox_plans) {
        /* POP and IMAP are on in every plan but ExchangeOnlineDeskless (IMAP
         * off): the documented defaults of Set-CASMailboxPlan. */
        st->mailbox_plans = json_array();
        json_array_append_new(st->mailbox_plans,
                              plan_new(st->tenant_id, "ExchangeOnline", 1, 1, when));
        json_array_append_new(st->mailbox_plans,
                              plan_new(st->tenant_id, "ExchangeOnlineEnterprise", 1, 1, when));
        json_array_append_new(st->mailbox_plans,
                              plan_new(st->tenant_id, "ExchangeOnlineEssentials", 1, 1, when));
        json_array_append_new(st->mailbox_plans,
                              plan_new(st->tenant_id, "ExchangeOnlineDeskless", 1, 0, when));
    }
    if (!st->org_config) {
        char iso[40];
        fmt_iso_s(when, iso, sizeof iso);
        /* EwsEnabled unset ($null) is the documented default. */
        st->org_config = json_pack("{s:n, s:n, s:n, s:n, s:[], s:s}", "EwsEnabled",
                                   "EwsApplicationAccessPolicy", "EwsAllowList", "EwsBlockList",
                                   "EwsAllowedAppIDs", "WhenChanged", iso);
    }
}

/* ---- mailbox plans ------------------------------------------------------------------ */

/* Index of the plan named by identity (Name, DisplayName or Guid; case-insensitive),
 * -1 when none, -2 when several.  Lock held. */
static int plan_find(const struct sim_state *st, const char *identity)
{
    size_t i;
    json_t *p;
    int found = -1;
    json_array_foreach(st->mailbox_plans, i, p)
    {
        const char *keys[] = {"Name", "DisplayName", "Guid"};
        for (int k = 0; k < 3; k++) {
            const char *v = json_string_value(json_object_get(p, keys[k]));
            if (v && !strcasecmp(v, identity)) {
                if (found >= 0 && found != (int)i)
                    return -2;
                found = (int)i;
            }
        }
    }
    return found;
}

/*
 * One plan in Get-CASMailboxPlan's shape.  Confirmed: Name
 * (<DisplayName>-<GUID>), DisplayName and the protocol properties; assumed:
 * Identity = Name, the annotation set, ExchangeVersion.
 */
static void plan_object(struct strbuf *b, const json_t *p, const struct exo_select *sel)
{
    int first = 1;
    strbuf_addc(b, '{');
    const char *name = json_string_value(json_object_get(p, "Name"));
    if (exo_want(sel, "Identity")) {
        exo_key_annot(b, &first, "Identity", NULL, NULL);
        sbuf_json_str(b, name);
    }
    if (exo_want(sel, "Name")) {
        exo_key_annot(b, &first, "Name", NULL, NULL);
        sbuf_json_str(b, name);
    }
    if (exo_want(sel, "DisplayName")) {
        exo_key_annot(b, &first, "DisplayName", NULL, NULL);
        sbuf_json_str(b, json_string_value(json_object_get(p, "DisplayName")));
    }
    if (exo_want(sel, "Guid")) {
        exo_key_annot(b, &first, "Guid", "#Guid", "System.Guid");
        sbuf_json_str(b, json_string_value(json_object_get(p, "Guid")));
    }
    for (int i = 0; plan_bools[i]; i++) {
        if (!exo_want(sel, plan_bools[i]))
            continue;
        json_t *v = json_object_get(p, plan_bools[i]);
        exo_key_annot(b, &first, plan_bools[i], NULL, NULL);
        strbuf_add(b, json_is_boolean(v) ? (json_is_true(v) ? "true" : "false") : "true");
    }
    if (exo_want(sel, "OwaMailboxPolicy")) {
        exo_key_annot(b, &first, "OwaMailboxPolicy", NULL, NULL);
        sbuf_json_str(b, json_string_value(json_object_get(p, "OwaMailboxPolicy")));
    }
    if (exo_want(sel, "WhenChanged")) {
        exo_key_annot(b, &first, "WhenChanged", "#DateTimeOffset", "System.DateTime");
        sbuf_json_str(b, json_string_value(json_object_get(p, "WhenChanged")));
    }
    if (exo_want(sel, "ExchangeVersion")) {
        exo_key_annot(b, &first, "ExchangeVersion", NULL, NULL);
        strbuf_add(b, "\"0.20 (15.0.0.0)\"");
    }
    if (exo_want(sel, "IsValid")) {
        exo_key_annot(b, &first, "IsValid", NULL, NULL);
        strbuf_add(b, "true");
    }
    strbuf_addc(b, '}');
}

static int bad_identity(struct sim_resp *o, json_t *v)
{
    if (json_is_string(v) && *json_string_value(v))
        return 0;
    exo_error(o, 400, "BadRequest", EX_PARAM,
              "Cannot bind parameter 'Identity': expected a non-empty string.");
    return -1;
}

void sim_exo_get_plans(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                       json_t *params)
{
    const char *identity = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        if (!strcasecmp(key, "Identity")) {
            if (bad_identity(o, v))
                return;
            identity = json_string_value(v);
        } else if (strcasecmp(key, "ResultSize") != 0) {
            exo_unknown_param(o, "Get-CASMailboxPlan", key);
            return;
        }
    }
    struct exo_select sel;
    exo_select_parse(&sel, sim_req_query(r, "$select"));
    struct strbuf *b = &o->body;
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    int idx = identity ? plan_find(st, identity) : -1;
    if (identity && idx < 0) {
        pthread_rwlock_unlock(&s->lock);
        free(sel.buf);
        exo_not_found(o, identity, idx == -2);
        return;
    }
    exo_begin(r, b, tenant, NULL);
    strbuf_add(b, ",\"value\":[");
    size_t i;
    json_t *p;
    int n = 0;
    json_array_foreach(st->mailbox_plans, i, p)
    {
        if (identity && (int)i != idx)
            continue;
        if (n++)
            strbuf_addc(b, ',');
        plan_object(b, p, &sel);
    }
    strbuf_add(b, "]}");
    pthread_rwlock_unlock(&s->lock);
    free(sel.buf);
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
}

int sim_plan_apply(json_t *plan, const json_t *params)
{
    const char *key;
    json_t *v;
    int changed = 0;
    json_object_foreach((json_t *)params, key, v)
    {
        int bi = plan_bool_index(key);
        const char *canon = bi >= 0 ? plan_bools[bi]
                            : !strcasecmp(key, "OwaMailboxPolicy") ? "OwaMailboxPolicy"
                                                                    : NULL;
        if (!canon)
            continue;
        json_t *nv = json_is_integer(v) ? json_boolean(json_integer_value(v) != 0)
                                        : json_incref(v);
        if (!json_equal(json_object_get(plan, canon), nv)) {
            json_object_set(plan, canon, nv);
            changed = 1;
        }
        json_decref(nv);
    }
    if (changed) {
        char iso[40];
        fmt_iso_s(now_ms(), iso, sizeof iso);
        json_object_set_new(plan, "WhenChanged", json_string(iso));
    }
    return changed;
}

void sim_exo_set_plan(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                      json_t *params)
{
    const char *identity = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        if (!strcasecmp(key, "Identity")) {
            if (bad_identity(o, v))
                return;
            identity = json_string_value(v);
            continue;
        }
        int bi = plan_bool_index(key);
        int is_policy = !strcasecmp(key, "OwaMailboxPolicy");
        if (bi < 0 && !is_policy) {
            exo_unknown_param(o, "Set-CASMailboxPlan", key);
            return;
        }
        if (json_is_null(v)) {
            exo_error(o, 400, "BadRequest",
                      "System.Management.Automation.ParameterBindingValidationException",
                      "Cannot bind argument to parameter '%s' because it is null.",
                      bi >= 0 ? plan_bools[bi] : "OwaMailboxPolicy");
            return;
        }
        /* EwsEnabled is documented as System.Int32 on this cmdlet: a number is accepted. */
        int ok = is_policy ? json_is_string(v) && *json_string_value(v)
                           : json_is_boolean(v) ||
                                 (json_is_integer(v) && !strcmp(plan_bools[bi], "EwsEnabled"));
        if (!ok) {
            exo_error(o, 400, "BadRequest", EX_TRANSFORM,
                      "Cannot process argument transformation on parameter '%s'. Cannot convert "
                      "value to type \"%s\" (Set-CASMailboxPlan).",
                      is_policy ? "OwaMailboxPolicy" : plan_bools[bi],
                      is_policy ? "Microsoft.Exchange.Configuration.Tasks.MailboxPolicyIdParameter"
                                : "System.Boolean");
            return;
        }
    }
    if (!identity) {
        exo_error(o, 400, "BadRequest", EX_PARAM,
                  "Cannot process command because of one or more missing mandatory parameters: "
                  "Identity.");
        return;
    }
    pthread_rwlock_wrlock(&s->lock);
    int idx = plan_find(&s->st, identity);
    if (idx < 0) {
        pthread_rwlock_unlock(&s->lock);
        exo_not_found(o, identity, idx == -2);
        return;
    }
    json_t *plan = json_array_get(s->st.mailbox_plans, (size_t)idx);
    int changed = sim_plan_apply(plan, params);
    char name[300];
    str_copy(name, sizeof name, json_string_value(json_object_get(plan, "Name")));
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

/* ---- organisation config ------------------------------------------------------------ */

/*
 * Make a pending change visible when its time has come.  Write lock held;
 * 1 when the state changed (the caller persists).
 */
static int org_settle(struct sim_state *st, int64_t now)
{
    json_t *pending = json_object_get(st->org_config, "pending");
    if (!json_is_object(pending))
        return 0;
    int64_t at = 0;
    const char *vis = json_string_value(json_object_get(pending, "visible_at"));
    if (vis && parse_iso(vis, &at, NULL) == 0 && now < at)
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach(pending, key, v)
    {
        if (strcmp(key, "visible_at") != 0)
            json_object_set(st->org_config, key, v);
    }
    char iso[40];
    fmt_iso_s(at ? at : now, iso, sizeof iso);
    json_object_set_new(st->org_config, "WhenChanged", json_string(iso));
    json_object_del(st->org_config, "pending");
    return 1;
}

static void emit_nullable(struct strbuf *b, const json_t *v)
{
    if (json_is_true(v))
        strbuf_add(b, "true");
    else if (json_is_false(v))
        strbuf_add(b, "false");
    else if (json_is_string(v))
        sbuf_json_str(b, json_string_value(v));
    else
        strbuf_add(b, "null");
}

static void emit_strings(struct strbuf *b, const json_t *arr)
{
    size_t i;
    json_t *v;
    strbuf_addc(b, '[');
    json_array_foreach(arr, i, v)
    {
        if (i)
            strbuf_addc(b, ',');
        sbuf_json_str(b, json_string_value(v));
    }
    strbuf_addc(b, ']');
}

void sim_exo_get_org(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                     json_t *params)
{
    int retrieve_ews = 0;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        if (!strcasecmp(key, "RetrieveEwsOperationAccessPolicy")) {
            retrieve_ews = json_is_true(v) || json_is_null(v); /* a switch: present = on */
        } else if (strcasecmp(key, "Identity") != 0) {
            exo_unknown_param(o, "Get-OrganizationConfig", key);
            return;
        }
    }
    pthread_rwlock_wrlock(&s->lock);
    int settled = org_settle(&s->st, now_ms());
    uint64_t gen = settled ? ++s->gen : 0;
    pthread_rwlock_unlock(&s->lock);
    if (settled && sim_persist(s, gen) != 0) {
        exo_error(o, 500, "InternalServerError", "System.IO.IOException",
                  "The simulator could not save its state.");
        return;
    }
    struct exo_select sel;
    exo_select_parse(&sel, sim_req_query(r, "$select"));
    struct strbuf *b = &o->body;
    exo_begin(r, b, tenant, NULL);
    strbuf_add(b, ",\"value\":[{");
    int first = 1;
    pthread_rwlock_rdlock(&s->lock);
    const struct sim_state *st = &s->st;
    const json_t *oc = st->org_config;
    if (exo_want(&sel, "Identity")) {
        exo_key_annot(b, &first, "Identity", NULL, NULL);
        sbuf_json_str(b, st->initial_domain);
    }
    if (exo_want(&sel, "Name")) {
        exo_key_annot(b, &first, "Name", NULL, NULL);
        sbuf_json_str(b, st->initial_domain);
    }
    if (exo_want(&sel, "DisplayName")) {
        exo_key_annot(b, &first, "DisplayName", NULL, NULL);
        sbuf_json_str(b, st->tenant_name);
    }
    if (exo_want(&sel, "Guid")) {
        exo_key_annot(b, &first, "Guid", "#Guid", "System.Guid");
        sbuf_json_str(b, st->tenant_id);
    }
    static const char *const nullables[] = {"EwsEnabled", "EwsApplicationAccessPolicy",
                                            "EwsAllowOutlook", "EwsAllowMacOutlook",
                                            "EwsAllowEntourage", NULL};
    for (int i = 0; nullables[i]; i++) {
        if (!exo_want(&sel, nullables[i]))
            continue;
        exo_key_annot(b, &first, nullables[i], NULL, NULL);
        emit_nullable(b, json_object_get(oc, nullables[i]));
    }
    static const char *const lists[] = {"EwsAllowList", "EwsBlockList", NULL};
    for (int i = 0; lists[i]; i++) {
        if (!exo_want(&sel, lists[i]))
            continue;
        json_t *l = json_object_get(oc, lists[i]);
        exo_key_annot(b, &first, lists[i], "#Collection(String)", NULL);
        if (json_is_array(l))
            emit_strings(b, l);
        else
            strbuf_add(b, "null");
    }
    if (exo_want(&sel, "EwsAllowedAppIDs")) {
        /* Only with -RetrieveEwsOperationAccessPolicy, and then as ONE
         * comma-joined element (reported by third parties); without the
         * switch the list reads empty. */
        json_t *ids = json_object_get(oc, "EwsAllowedAppIDs");
        exo_key_annot(b, &first, "EwsAllowedAppIDs", "#Collection(String)", NULL);
        if (retrieve_ews && json_array_size(ids)) {
            struct strbuf joined = {0};
            size_t i;
            json_array_foreach(ids, i, v)
            {
                if (i)
                    strbuf_addc(&joined, ',');
                strbuf_add(&joined, json_string_value(v));
            }
            strbuf_addc(b, '[');
            sbuf_json_str(b, joined.p ? joined.p : "");
            strbuf_addc(b, ']');
            strbuf_free(&joined);
        } else {
            strbuf_add(b, "[]");
        }
    }
    if (exo_want(&sel, "OAuth2ClientProfileEnabled")) {
        exo_key_annot(b, &first, "OAuth2ClientProfileEnabled", NULL, NULL);
        strbuf_add(b, "true");
    }
    if (exo_want(&sel, "WhenChanged")) {
        exo_key_annot(b, &first, "WhenChanged", "#DateTimeOffset", "System.DateTime");
        sbuf_json_str(b, json_string_value(json_object_get(oc, "WhenChanged")));
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

static int is_guid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/*
 * "id1, id2" -> ["id1","id2"] (new array), or NULL with the bad element in
 * bad (empty elements are skipped).
 */
static json_t *split_ids(const char *text, char *bad, size_t bad_size)
{
    json_t *out = json_array();
    const char *p = text;
    while (out && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *a = p;
        while (n && isspace((unsigned char)*a)) {
            a++;
            n--;
        }
        while (n && isspace((unsigned char)a[n - 1]))
            n--;
        if (n) {
            if (!is_guid(a, n) || json_array_size(out) >= MAX_APP_IDS) {
                snprintf(bad, bad_size, "%.*s", (int)(n > 80 ? 80 : n), a);
                json_decref(out);
                return NULL;
            }
            char id[37];
            memcpy(id, a, 36);
            id[36] = '\0';
            json_array_append_new(out, json_string(id));
        }
        p = e ? e + 1 : p + strlen(p);
    }
    return out;
}

/* The value key will have once everything pending is visible (borrowed). */
static json_t *org_effective(const json_t *oc, const char *key)
{
    json_t *pending = json_object_get(oc, "pending");
    json_t *v = json_object_get(pending, key);
    return v ? v : json_object_get(oc, key);
}

int sim_org_apply(struct sim_state *st, const json_t *changes, int64_t delay_ms)
{
    int changed = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)changes, key, v)
    {
        json_t *cur = org_effective(st->org_config, key);
        if (!json_equal(cur ? cur : json_null(), v))
            changed = 1;
    }
    if (!changed)
        return 0;
    int64_t now = now_ms();
    if (delay_ms <= 0) {
        json_object_update(st->org_config, (json_t *)changes);
        char iso[40];
        fmt_iso_s(now, iso, sizeof iso);
        json_object_set_new(st->org_config, "WhenChanged", json_string(iso));
        return 1;
    }
    json_t *pending = json_object_get(st->org_config, "pending");
    if (!json_is_object(pending)) {
        pending = json_object();
        json_object_set_new(st->org_config, "pending", pending);
    }
    json_object_update(pending, (json_t *)changes);
    char iso[40];
    fmt_iso_ms(now + delay_ms, iso, sizeof iso);
    json_object_set_new(pending, "visible_at", json_string(iso));
    return 1;
}

void sim_exo_set_org(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                     json_t *params)
{
    json_t *changes = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        if (!strcasecmp(key, "Identity"))
            continue;
        if (!strcasecmp(key, "EwsAllowedAppIDs")) {
            /* A String parameter: comma-separated GUIDs; $null empties the list. */
            if (json_is_null(v)) {
                json_object_set_new(changes, "EwsAllowedAppIDs", json_array());
                continue;
            }
            if (!json_is_string(v)) {
                exo_error(o, 400, "BadRequest", EX_TRANSFORM,
                          "Cannot process argument transformation on parameter "
                          "'EwsAllowedAppIDs'. Cannot convert value to type \"System.String\". "
                          "Give the application IDs as one comma-separated string.");
                goto out;
            }
            char bad[100] = "";
            json_t *ids = split_ids(json_string_value(v), bad, sizeof bad);
            if (!ids) {
                exo_error(o, 400, "BadRequest",
                          "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException",
                          "'%s' is not a valid application ID: EwsAllowedAppIDs takes Microsoft "
                          "Entra application (client) IDs (GUIDs), at most %d.",
                          bad, MAX_APP_IDS);
                goto out;
            }
            json_object_set_new(changes, "EwsAllowedAppIDs", ids);
        } else if (!strcasecmp(key, "EwsEnabled")) {
            if (!json_is_boolean(v) && !json_is_null(v)) {
                exo_error(o, 400, "BadRequest", EX_TRANSFORM,
                          "Cannot process argument transformation on parameter 'EwsEnabled'. "
                          "Cannot convert value to type \"System.Boolean\".");
                goto out;
            }
            json_object_set(changes, "EwsEnabled", v);
        } else if (!strcasecmp(key, "EwsApplicationAccessPolicy")) {
            const char *p = json_string_value(v);
            if (!json_is_null(v) && (!p || (strcasecmp(p, "EnforceAllowList") != 0 &&
                                            strcasecmp(p, "EnforceBlockList") != 0))) {
                exo_error(o, 400, "BadRequest", EX_TRANSFORM,
                          "Cannot process argument transformation on parameter "
                          "'EwsApplicationAccessPolicy'. The valid values are \"EnforceAllowList, "
                          "EnforceBlockList\".");
                goto out;
            }
            json_object_set_new(changes, "EwsApplicationAccessPolicy",
                                p ? json_string(!strcasecmp(p, "EnforceAllowList")
                                                    ? "EnforceAllowList"
                                                    : "EnforceBlockList")
                                  : json_null());
        } else {
            exo_unknown_param(o, "Set-OrganizationConfig", key);
            goto out;
        }
    }
    pthread_rwlock_wrlock(&s->lock);
    (void)org_settle(&s->st, now_ms());
    int changed = sim_org_apply(&s->st, changes, s->st.org_config_delay_ms);
    uint64_t gen = ++s->gen; /* settling may have changed it too */
    pthread_rwlock_unlock(&s->lock);
    if (sim_persist(s, gen) != 0) {
        exo_error(o, 500, "InternalServerError", "System.IO.IOException",
                  "The simulator could not save its state.");
        goto out;
    }
    char warn[400];
    snprintf(warn, sizeof warn,
             "The command completed successfully but no settings of '%s' have been modified.",
             s->st.initial_domain);
    exo_begin(r, &o->body, tenant, changed ? NULL : warn);
    strbuf_add(&o->body, ",\"value\":[]}");
    o->status = 200;
    str_copy(o->content_type, sizeof o->content_type, EXO_CT);
out:
    json_decref(changes);
}

/* ---- admin endpoints ---------------------------------------------------------------- */

static void admin_json(struct sim_resp *o, int status, json_t *doc)
{
    char *t = json_dumps(doc, JSON_COMPACT);
    sim_resp_text(o, status, "application/json", t ? t : "{}");
    free(t);
    json_decref(doc);
}

void sim_org_admin(struct sim *s, struct sim_req *r, struct sim_resp *o)
{
    const char *m = r->method;
    json_t *doc = NULL;
    if (r->body_len)
        doc = json_loadb(r->body, r->body_len, 0, NULL);
    if (!strcmp(r->path, "/_sim/organization_config")) {
        if (!strcmp(m, "GET")) {
            pthread_rwlock_rdlock(&s->lock);
            json_t *copy = json_deep_copy(s->st.org_config);
            pthread_rwlock_unlock(&s->lock);
            admin_json(o, 200, copy);
        } else if (!strcmp(m, "PATCH") && json_is_object(doc)) {
            /* changed outside Assent, visible at once */
            pthread_rwlock_wrlock(&s->lock);
            int changed = sim_org_apply(&s->st, doc, 0);
            uint64_t gen = changed ? ++s->gen : 0;
            pthread_rwlock_unlock(&s->lock);
            if (changed && sim_persist(s, gen) != 0)
                sim_resp_text(o, 500, "application/json", "{\"error\":\"state not saved\"}");
            else
                admin_json(o, 200, json_pack("{s:b}", "changed", changed));
        } else {
            sim_resp_text(o, 400, "application/json",
                          "{\"error\":\"GET, or PATCH with a JSON object\"}");
        }
        json_decref(doc);
        return;
    }
    /* /_sim/mailbox_plans[/{identity}] */
    const char *id = r->path + strlen("/_sim/mailbox_plans");
    if (*id == '/')
        id++;
    int status = 200;
    json_t *answer = NULL;
    uint64_t gen = 0;
    pthread_rwlock_wrlock(&s->lock);
    struct sim_state *st = &s->st;
    int idx = *id ? plan_find(st, id) : -1;
    if (!*id && !strcmp(m, "GET")) {
        answer = json_deep_copy(st->mailbox_plans);
    } else if (!*id && !strcmp(m, "POST") && json_is_object(doc) &&
               json_is_string(json_object_get(doc, "DisplayName"))) {
        /* a new plan: the defaults of its kind, then what is given */
        const char *display = json_string_value(json_object_get(doc, "DisplayName"));
        json_t *p = plan_new(st->tenant_id, display, 1, 1, now_ms());
        json_object_update(p, doc);
        json_array_append(st->mailbox_plans, p);
        answer = p;
        status = 201;
        gen = ++s->gen;
    } else if (*id && idx < 0) {
        status = 404;
        answer = json_pack("{s:s}", "error", "no such mailbox plan");
    } else if (*id && !strcmp(m, "PATCH") && json_is_object(doc)) {
        int changed = sim_plan_apply(json_array_get(st->mailbox_plans, (size_t)idx), doc);
        gen = changed ? ++s->gen : 0;
        answer = json_pack("{s:b}", "changed", changed);
    } else if (*id && !strcmp(m, "DELETE")) {
        json_array_remove(st->mailbox_plans, (size_t)idx);
        gen = ++s->gen;
        status = 204;
    } else {
        status = 400;
        answer = json_pack("{s:s}", "error",
                           "GET or POST /_sim/mailbox_plans; PATCH or DELETE "
                           "/_sim/mailbox_plans/{name|display name|guid}");
    }
    pthread_rwlock_unlock(&s->lock);
    json_decref(doc);
    if (gen && sim_persist(s, gen) != 0) {
        json_decref(answer);
        sim_resp_text(o, 500, "application/json", "{\"error\":\"state not saved\"}");
        return;
    }
    if (status == 204)
        sim_resp_text(o, 204, "application/json", "");
    else
        admin_json(o, status, answer ? answer : json_object());
}
