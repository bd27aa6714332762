/*
 * sim_gen.c - the synthetic tenant generator (see sim_gen.h).  The mix of
 * settings is invented to look like a mid-size tenant part-way through
 * retiring basic auth; the fractions are constants at the top of the file.
 */
#include "sim/sim_gen.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_NO_MAILBOX 0.04     /* guests and unlicensed service accounts */
#define P_SHARED 0.02         /* shared mailboxes: account disabled, no licence */
#define P_LEGACY_PROFILE 0.30 /* mailboxes that still allow some legacy protocol */
#define P_USAGE_ACTIVE 0.88
#define P_MODERN_SIGNINS 0.15
#define DAY_MS 86400000LL
#define SIGNIN_WINDOW_DAYS 29

static const char *const first_names[] = {
    "Adele", "Alex", "Allan", "Amara", "Ana", "Ben", "Bianca", "Carlos", "Chen", "Chloe",
    "Christie", "Daniel", "Debra", "Diego", "Elena", "Emily", "Enrico", "Fatima", "Grady",
    "Hana", "Henrietta", "Irvin", "Isaiah", "Jakob", "Johanna", "Joni", "Jordan", "Kenji",
    "Lars", "Lee", "Lidia", "Lynne", "Maria", "Megan", "Miriam", "Mohammed", "Nestor", "Nia",
    "Olga", "Omar", "Patti", "Pradeep", "Priya", "Quinn", "Rafael", "Raul", "Sakura", "Samuel",
    "Sofia", "Tariq", "Thomas", "Uma", "Victor", "Wei", "Xavier", "Yara", "Yuki", "Zoe",
};
static const char *const last_names[] = {
    "Abbott", "Adams", "Alvarez", "Bauer", "Bianchi", "Brown", "Chen", "Cohen", "Costa",
    "Dubois", "Eriksson", "Fernandes", "Fischer", "Garcia", "Gupta", "Hansen", "Hernandez",
    "Ito", "Jansen", "Johnson", "Kaur", "Kim", "Kowalski", "Larsen", "Lopez", "Martin",
    "Meyer", "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak", "Okafor", "Olsen", "Patel",
    "Petrov", "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Suzuki",
    "Tanaka", "Taylor", "Vargas", "Wagner", "Walker", "Wilson", "Wong", "Young", "Zhang",
};
static const char *const titles[] = {
    "Account Manager", "Accountant", "Buyer", "Developer", "Director", "Engineer",
    "HR Manager", "IT Admin", "Marketing Assistant", "Office Manager", "Paralegal",
    "Product Manager", "Retail Manager", "Sales Representative", "Support Engineer",
    "Warehouse Supervisor",
};

struct office {
    const char *name, *city, *state, *country, *lang, *phone_prefix;
};
static const struct office offices[] = {
    {"Seattle", "Seattle", "Washington", "US", "en-US", "+1 425 555 0"},
    {"New York", "New York", "New York", "US", "en-US", "+1 212 555 0"},
    {"London", "London", "England", "GB", "en-GB", "+44 20 7946 0"},
    {"Munich", "Munich", "Bavaria", "DE", "de-DE", "+49 89 5550 "},
    {"Paris", "Paris", "Ile-de-France", "FR", "fr-FR", "+33 1 5550 "},
    {"Tokyo", "Tokyo", "Tokyo", "JP", "ja-JP", "+81 3 5550 "},
    {"Sydney", "Sydney", "New South Wales", "AU", "en-AU", "+61 2 5550 "},
    {"Toronto", "Toronto", "Ontario", "CA", "en-CA", "+1 416 555 0"},
};
#define N_OFFICES (sizeof offices / sizeof offices[0])

/* Real SKU ids: Microsoft 365 E3, E5, Business Premium, F3. */
static const char *const skus[] = {
    "05e9a617-0261-4cee-bb44-138d3ef5d965", "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
    "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "66b55226-6b4f-492c-910c-a3b7a3c9d993",
};

#define EXO_APP_ID "00000002-0000-0ff1-ce00-000000000000"

struct gen {
    struct sim_state *st;
    const struct sim_gen_opts *o;
    struct hidx upns;
    struct sim_signin *si;
    size_t n_si, cap_si;
    int failed;
};

#define PICK(r, arr) ((arr)[rng_below((r), sizeof(arr) / sizeof((arr)[0]))])

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* ---- sign-ins ------------------------------------------------------------------- */

static struct sim_signin *new_signin(struct gen *g)
{
    if (g->n_si == g->cap_si) {
        size_t ncap = g->cap_si ? g->cap_si * 2 : 1024;
        struct sim_signin *n = realloc(g->si, ncap * sizeof *n);
        if (!n) {
            g->failed = 1;
            return NULL;
        }
        g->si = n;
        g->cap_si = ncap;
    }
    struct sim_signin *s = &g->si[g->n_si++];
    memset(s, 0, sizeof *s);
    return s;
}

/* One event for user u with client app `app` at a random time in the window. */
static void add_signin(struct gen *g, struct sim_rng *r, const struct sim_user *u,
                       const struct office *off, const char *app, int legacy)
{
    struct sim_signin *s = new_signin(g);
    if (!s)
        return;
    struct intern *P = &g->st->pool;
    char guid[37], text[48], iso[40];
    int64_t span = SIGNIN_WINDOW_DAYS * DAY_MS;
    s->created_ms = g->o->now_ms - 1 - (int64_t)rng_below(r, (uint64_t)span);
    fmt_iso_s(s->created_ms, iso, sizeof iso);
    /* seven fractional digits, as Graph writes them */
    snprintf(text, sizeof text, "%.19s.%03d%04dZ", iso, (int)(s->created_ms % 1000),
             (int)rng_below(r, 10000));
    s->created = strdup(text);
    rng_guid(r, guid);
    s->id = strdup(guid);
    rng_guid(r, guid);
    s->correlation_id = strdup(guid);
    s->user_display_name = intern_str(P, u->display_name);
    s->upn = intern_str(P, u->upn);
    s->user_id = intern_str(P, u->id);
    s->client_app = intern_str(P, app);
    if (legacy) {
        s->app_id = intern_str(P, EXO_APP_ID);
        s->app_display_name = intern_str(P, "Office 365 Exchange Online");
        s->resource_display_name = intern_str(P, "Office 365 Exchange Online");
        s->is_interactive = 0;
        s->os = intern_str(P, rng_chance(r, 0.5) ? "Windows" : "");
        s->browser = intern_str(P, "");
    } else {
        int browser = !strcmp(app, "Browser");
        s->app_id = intern_str(P, browser ? "4765445b-32c6-49b0-83e6-1d93765276ca"
                                          : "d3590ed6-52b3-4102-aeff-aad2292ab01c");
        s->app_display_name = intern_str(P, browser ? "OfficeHome" : "Microsoft Office");
        s->resource_display_name = intern_str(P, "Office 365 Exchange Online");
        s->is_interactive = 1;
        s->os = intern_str(P, PICK(r, ((const char *const[]){"Windows 10", "Windows 11", "MacOs",
                                                              "Ios", "Android"})));
        s->browser = intern_str(P, browser ? "Edge 124.0.0" : "");
    }
    int foreign = legacy && rng_chance(r, 0.08);
    snprintf(text, sizeof text, "%s.%d",
             foreign ? "198.51.100" : (rng_chance(r, 0.5) ? "203.0.113" : "192.0.2"),
             (int)rng_below(r, 254) + 1);
    s->ip = intern_str(P, text);
    s->city = intern_str(P, foreign ? "Lagos" : off->city);
    s->region = intern_str(P, foreign ? "Lagos" : off->state);
    s->country = intern_str(P, foreign ? "NG" : off->country);
    s->ca_status = intern_str(P, "notApplied");
    if (legacy && rng_chance(r, foreign ? 0.9 : 0.12)) {
        s->error_code = 50126;
        s->failure_reason =
            intern_str(P, "Error validating credentials due to invalid username or password.");
    } else if (!legacy && rng_chance(r, 0.05)) {
        s->error_code = 50074;
        s->failure_reason = intern_str(P, "Strong Authentication is required.");
    }
    if (!s->created || !s->id || !s->correlation_id)
        g->failed = 1;
}

/* A legacy clientAppUsed value, sometimes in one of the casings seen in the wild. */
static const char *legacy_name(struct sim_rng *r, const char *canonical)
{
    static const char *const variants[][2] = {
        {"Autodiscover", "AutoDiscover"},
        {"MAPI over HTTP", "MAPI Over HTTP"},
        {"POP3", "Pop3"},
        {"IMAP4", "imap4"},
        {"Exchange ActiveSync", "Exchange Activesync"},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
        if (!strcmp(canonical, variants[i][0]))
            return rng_chance(r, i < 2 ? 0.5 : 0.06) ? variants[i][1] : canonical;
    return canonical;
}

static void add_legacy(struct gen *g, struct sim_rng *r, const struct sim_user *u,
                       const struct office *off, const char *app)
{
    int n = 1 + (int)rng_below(r, 6);
    for (int i = 0; i < n; i++)
        add_signin(g, r, u, off, legacy_name(r, app), 1);
}

/* ---- users ------------------------------------------------------------------------- */

static int make_user(struct gen *g, size_t k, struct sim_user *u)
{
    struct sim_state *st = g->st;
    struct intern *P = &st->pool;
    struct sim_rng r;
    rng_seed(&r, g->o->seed * 0x9e3779b97f4a7c15ULL + k * 0xbf58476d1ce4e5b9ULL + 1);
    char guid[37], buf[512];
    rng_guid(&r, guid);
    u->id = strdup(guid);
    const char *given = PICK(&r, first_names);
    const char *sur = PICK(&r, last_names);
    const struct office *off = &offices[rng_below(&r, N_OFFICES)];
    double kind = rng_unit(&r);
    int guest = kind < P_NO_MAILBOX / 2;
    int service = !guest && kind < P_NO_MAILBOX;
    int shared = !guest && !service && kind < P_NO_MAILBOX + P_SHARED;

    /* the UPN's local part: first.last, numbered on collision */
    char local[160], base[160];
    if (service)
        snprintf(base, sizeof base, "svc-%s%zu", PICK(&r, ((const char *const[]){"scanner", "backup", "crm", "erp", "printer", "sync"})), k);
    else if (shared)
        snprintf(base, sizeof base, "%s",
                 PICK(&r, ((const char *const[]){"info", "sales", "support", "hr", "finance",
                                                  "reception", "billing", "orders"})));
    else
        snprintf(base, sizeof base, "%s.%s", given, sur);
    char *lb = lower_dup(base);
    if (!lb)
        return -1;
    str_copy(local, sizeof local, lb);
    for (int n = 2; hidx_get(&g->upns, local) >= 0; n++)
        snprintf(local, sizeof local, "%s%d", lb, n);
    free(lb);
    if (hidx_put(&g->upns, local, (int)k) != 0)
        return -1;

    if (guest) {
        snprintf(buf, sizeof buf, "%s_fabrikam.com#EXT#@%s", local, st->initial_domain);
        u->upn = strdup(buf);
        snprintf(buf, sizeof buf, "%s@fabrikam.com", local);
        u->mail = strdup(buf);
        u->user_type = intern_str(P, "Guest");
    } else {
        snprintf(buf, sizeof buf, "%s@%s", local, g->o->domain);
        u->upn = strdup(buf);
        u->mail = service ? NULL : strdup(buf);
        u->user_type = intern_str(P, "Member");
    }
    if (service) {
        snprintf(buf, sizeof buf, "Service account %s", local);
    } else if (shared) {
        snprintf(buf, sizeof buf, "%c%s (shared)", toupper((unsigned char)local[0]), local + 1);
    } else {
        snprintf(buf, sizeof buf, "%s %s", given, sur);
        u->given_name = strdup(given);
        u->surname = strdup(sur);
        u->job_title = intern_str(P, PICK(&r, titles));
        u->office_location = intern_str(P, off->name);
        u->preferred_language = intern_str(P, off->lang);
        snprintf(buf + 300, 100, "%s%03d", off->phone_prefix, (int)rng_below(&r, 1000));
        u->business_phone = strdup(buf + 300);
        if (rng_chance(&r, 0.6)) {
            snprintf(buf + 300, 100, "%s%03d", off->phone_prefix, (int)rng_below(&r, 1000));
            u->mobile_phone = strdup(buf + 300);
        }
        snprintf(buf, sizeof buf, "%s %s", given, sur);
    }
    u->display_name = strdup(buf);
    u->account_enabled = !shared && !rng_chance(&r, 0.02);
    if (!u->upn || !u->display_name)
        return -1;
    int has_mailbox = !guest && !service;
    if (has_mailbox && !shared) {
        u->skus = calloc(1, sizeof *u->skus);
        if (!u->skus)
            return -1;
        u->skus[0] = intern_str(P, skus[rng_below(&r, 4)]);
        u->n_skus = 1;
    }
    if (!has_mailbox)
        return 0;

    struct sim_mailbox *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    u->mbx = m;
    sim_mailbox_defaults(m);
    m->name = strdup(local);
    rng_guid(&r, m->exchange_guid);
    m->when_changed_ms = g->o->now_ms - (int64_t)rng_below(&r, 400) * DAY_MS -
                         (int64_t)rng_below(&r, (uint64_t)DAY_MS);
    int ipop = sim_cas_prop_find("PopEnabled"), iimap = sim_cas_prop_find("ImapEnabled"),
        ieas = sim_cas_prop_find("ActiveSyncEnabled"), iews = sim_cas_prop_find("EwsEnabled"),
        ismtp = sim_cas_prop_find("SmtpClientAuthenticationDisabled"),
        iowa = sim_cas_prop_find("OWAEnabled"), imapi = sim_cas_prop_find("MAPIEnabled");
    int legacy = shared ? rng_chance(&r, 0.5) : rng_chance(&r, P_LEGACY_PROFILE);
    if (legacy) {
        m->b[ipop] = (signed char)rng_chance(&r, 0.45);
        m->b[iimap] = (signed char)rng_chance(&r, 0.55);
        m->b[ieas] = (signed char)rng_chance(&r, 0.6);
        m->b[iews] = (signed char)rng_chance(&r, 0.5);
        double x = rng_unit(&r);
        m->b[ismtp] = x < 0.35 ? 0 : x < 0.85 ? -1 : 1;
        if (m->b[ipop] + m->b[iimap] + m->b[ieas] + m->b[iews] == 0 && m->b[ismtp] != 0)
            m->b[iimap] = 1; /* the legacy profile keeps at least one legacy door open */
    } else {
        m->b[ipop] = m->b[iimap] = m->b[ieas] = m->b[iews] = 0;
        m->b[ismtp] = rng_chance(&r, 0.8) ? -1 : 1;
    }
    m->b[iowa] = (signed char)!rng_chance(&r, 0.01);
    m->b[imapi] = (signed char)!rng_chance(&r, 0.005);
    int smtp_on = m->b[ismtp] == 0 || (m->b[ismtp] < 0 && !st->smtp_auth_disabled_org);

    /* 30-day usage */
    struct sim_usage *us = calloc(1, sizeof *us);
    if (!us)
        return -1;
    u->usage = us;
    if (rng_chance(&r, P_USAGE_ACTIVE) || (legacy && rng_chance(&r, 0.5))) {
        static const double p_app[6] = {0.04, 0.08, 0.65, 0.45, 0.06, 0.5};
        /* cell text: real cells hold version lists or "Undetermined" [assumed] */
        static const char *const cell[6] = {"Undetermined", "16.84", "16.0.17328.20142",
                                            "4.2416.0", "Undetermined", "Undetermined"};
        int any = 0;
        for (int a = 0; a < 6; a++) {
            double p = p_app[a] + (a == 4 && m->b[ieas] == 1 ? 0.35 : 0);
            if (rng_chance(&r, p)) {
                us->apps[a] = intern_str(P, cell[a]);
                any = 1;
            }
        }
        if (rng_chance(&r, m->b[ipop] == 1 ? 0.5 : 0.01))
            us->apps[6] = intern_str(P, "Undetermined");
        if (rng_chance(&r, m->b[iimap] == 1 ? 0.5 : 0.01))
            us->apps[7] = intern_str(P, "Undetermined");
        if (smtp_on && rng_chance(&r, 0.5))
            us->apps[8] = intern_str(P, "Undetermined");
        if (!any && !us->apps[6] && !us->apps[7] && !us->apps[8])
            us->apps[5] = intern_str(P, "Undetermined");
        fmt_date(g->o->now_ms - 1 - (int64_t)rng_below(&r, 28) * DAY_MS, us->last_activity,
                 sizeof us->last_activity);
    }

    /* sign-ins */
    if (us->apps[6])
        add_legacy(g, &r, u, off, "POP3");
    if (us->apps[7])
        add_legacy(g, &r, u, off, "IMAP4");
    if (us->apps[8])
        add_legacy(g, &r, u, off, "Authenticated SMTP");
    if (m->b[ieas] == 1 && rng_chance(&r, 0.35))
        add_legacy(g, &r, u, off, "Exchange ActiveSync");
    if (m->b[iews] == 1 && rng_chance(&r, 0.25))
        add_legacy(g, &r, u, off, "Exchange Web Services");
    if (legacy && rng_chance(&r, 0.1))
        add_legacy(g, &r, u, off,
                   PICK(&r, ((const char *const[]){"Other clients", "Autodiscover",
                                                    "MAPI over HTTP", "Offline Address Book",
                                                    "Outlook Anywhere (RPC over HTTP)"})));
    if (rng_chance(&r, P_MODERN_SIGNINS)) {
        int n = 1 + (int)rng_below(&r, 2);
        for (int i = 0; i < n; i++)
            add_signin(g, &r, u, off,
                       rng_chance(&r, 0.5) ? "Browser" : "Mobile Apps and Desktop clients", 0);
    }
    return m->name ? 0 : -1;
}

int sim_gen_build(struct sim_state *st, const struct sim_gen_opts *o, char *err, size_t err_size)
{
    struct gen g = {st, o, {0}, NULL, 0, 0, 0};
    sim_state_init(st);
    const char *domain = o->domain && *o->domain ? o->domain : "contoso.com";
    struct sim_gen_opts local = *o;
    local.domain = domain;
    g.o = &local;
    struct sim_rng r;
    rng_seed(&r, o->seed);
    char guid[37], buf[300];
    rng_guid(&r, guid);
    st->tenant_id = strdup(guid);
    char label[100];
    str_copy(label, sizeof label, domain);
    char *dot = strchr(label, '.');
    if (dot)
        *dot = '\0';
    snprintf(buf, sizeof buf, "%s.onmicrosoft.com", label);
    st->initial_domain = lower_dup(buf);
    label[0] = (char)toupper((unsigned char)label[0]);
    st->tenant_name = strdup(label);
    st->domains = calloc(3, sizeof *st->domains);
    if (!st->tenant_id || !st->initial_domain || !st->tenant_name || !st->domains)
        goto oom;
    st->domains[st->n_domains++] = lower_dup(domain);
    st->domains[st->n_domains++] = strdup(st->initial_domain);
    st->transport_when_changed_ms = o->now_ms - 200 * DAY_MS;

    st->apps = calloc(1, sizeof *st->apps);
    if (!st->apps)
        goto oom;
    st->n_apps = 1;
    struct sim_app *app = &st->apps[0];
    rng_guid(&r, guid);
    app->client_id = strdup(o->app_id ? o->app_id : guid);
    app->display_name = strdup("Assent");
    app->secrets = calloc(1, sizeof *app->secrets);
    if (!app->client_id || !app->display_name || !app->secrets)
        goto oom;
    if (o->app_secret) {
        app->secrets[0] = strdup(o->app_secret);
    } else {
        snprintf(buf, sizeof buf, "sim~%016llx%016llx", (unsigned long long)rng_next(&r),
                 (unsigned long long)rng_next(&r));
        app->secrets[0] = strdup(buf);
    }
    if (!app->secrets[0])
        goto oom;
    app->n_secrets = 1;
    if (o->app_cert_pem) {
        char kerr[200];
        if (sim_app_add_key(app, o->app_cert_pem, kerr, sizeof kerr) != 0) {
            snprintf(err, err_size, "--app-cert: %s", kerr);
            goto fail;
        }
    }

    if (o->n_users) {
        st->users = calloc(o->n_users, sizeof *st->users);
        if (!st->users)
            goto oom;
        st->cap_users = o->n_users;
    }
    for (size_t k = 0; k < o->n_users; k++) {
        st->n_users++;
        if (make_user(&g, k, &st->users[k]) != 0 || g.failed)
            goto oom;
    }
    st->signins = g.si;
    st->n_signins = g.n_si;
    g.si = NULL;
    sim_state_sort_signins(st);
    hidx_free(&g.upns);
    if (sim_state_reindex(st) != 0)
        goto oom;
    sim_state_org_defaults(st);
    return 0;
oom:
    snprintf(err, err_size, "out of memory while generating the tenant");
fail:
    if (g.si) {
        for (size_t i = 0; i < g.n_si; i++) {
            free(g.si[i].id);
            free(g.si[i].correlation_id);
            free(g.si[i].created);
        }
        free(g.si);
    }
    hidx_free(&g.upns);
    return -1;
}
