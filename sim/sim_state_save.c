/*
 * sim_state_save.c - writing the tenant state file: JSON streamed by hand
 * into a temporary file in the same folder, then renamed over the old one,
 * so a reader sees the old or the new state, never half of one.
 */
#include "sim/sim_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- saving ------------------------------------------------------------------ */

/* Flush b to f when it holds more than a megabyte (or always when force). */
static int flush(struct strbuf *b, FILE *f, int force)
{
    if (b->failed)
        return -1;
    if (!force && b->len < (1u << 20))
        return 0;
    if (b->len && fwrite(b->p, 1, b->len, f) != b->len)
        return -1;
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
    return 0;
}

static void write_user(struct strbuf *b, const struct sim_user *u)
{
    strbuf_add(b, "{\"id\":");
    sbuf_json_str(b, u->id);
    strbuf_add(b, ",\"userPrincipalName\":");
    sbuf_json_str(b, u->upn);
    strbuf_add(b, ",\"displayName\":");
    sbuf_json_str(b, u->display_name);
    strbuf_add(b, ",\"givenName\":");
    sbuf_json_str(b, u->given_name);
    strbuf_add(b, ",\"surname\":");
    sbuf_json_str(b, u->surname);
    strbuf_add(b, ",\"mail\":");
    sbuf_json_str(b, u->mail);
    strbuf_add(b, ",\"jobTitle\":");
    sbuf_json_str(b, u->job_title);
    strbuf_add(b, ",\"officeLocation\":");
    sbuf_json_str(b, u->office_location);
    strbuf_add(b, ",\"mobilePhone\":");
    sbuf_json_str(b, u->mobile_phone);
    strbuf_add(b, ",\"preferredLanguage\":");
    sbuf_json_str(b, u->preferred_language);
    strbuf_add(b, ",\"businessPhones\":[");
    if (u->business_phone)
        sbuf_json_str(b, u->business_phone);
    strbuf_add(b, "],\"userType\":");
    sbuf_json_str(b, u->user_type);
    strbuf_addf(b, ",\"accountEnabled\":%s,\"assignedLicenses\":[",
                u->account_enabled ? "true" : "false");
    for (size_t i = 0; i < u->n_skus; i++) {
        strbuf_add(b, i ? ",{\"disabledPlans\":[],\"skuId\":" : "{\"disabledPlans\":[],\"skuId\":");
        sbuf_json_str(b, u->skus[i]);
        strbuf_addc(b, '}');
    }
    strbuf_add(b, "],\n  \"mailbox\":");
    if (u->mbx) {
        char when[40];
        fmt_iso_s(u->mbx->when_changed_ms, when, sizeof when);
        strbuf_add(b, "{\"Name\":");
        sbuf_json_str(b, u->mbx->name);
        strbuf_add(b, ",\"ExchangeGuid\":");
        sbuf_json_str(b, u->mbx->exchange_guid);
        strbuf_add(b, ",\"WhenChanged\":");
        sbuf_json_str(b, when);
        for (size_t p = 0; p < sim_n_cas_props; p++) {
            strbuf_addc(b, ',');
            sbuf_json_key(b, sim_cas_props[p].name);
            sim_cas_value_json(b, u->mbx, (int)p);
        }
        strbuf_addc(b, '}');
    } else {
        strbuf_add(b, "null");
    }
    strbuf_add(b, ",\n  \"usage\":");
    if (u->usage) {
        strbuf_add(b, "{\"lastActivityDate\":");
        sbuf_json_str(b, u->usage->last_activity[0] ? u->usage->last_activity : NULL);
        for (int a = 0; a < SIM_N_USAGE_APPS; a++) {
            if (!u->usage->apps[a])
                continue;
            strbuf_addc(b, ',');
            sbuf_json_key(b, sim_usage_apps[a]);
            sbuf_json_str(b, u->usage->apps[a]);
        }
        strbuf_addc(b, '}');
    } else {
        strbuf_add(b, "null");
    }
    strbuf_addc(b, '}');
}

/* Writes one sign-in in the Graph signIn shape (also used by sim_graph.c through the same fields). */
static void write_signin(struct strbuf *b, const struct sim_signin *s, int event_types)
{
    strbuf_add(b, "{\"id\":");
    sbuf_json_str(b, s->id);
    strbuf_add(b, ",\"createdDateTime\":");
    sbuf_json_str(b, s->created);
    strbuf_add(b, ",\"userDisplayName\":");
    sbuf_json_str(b, s->user_display_name);
    strbuf_add(b, ",\"userPrincipalName\":");
    sbuf_json_str(b, s->upn);
    strbuf_add(b, ",\"userId\":");
    sbuf_json_str(b, s->user_id);
    strbuf_add(b, ",\"appId\":");
    sbuf_json_str(b, s->app_id);
    strbuf_add(b, ",\"appDisplayName\":");
    sbuf_json_str(b, s->app_display_name);
    strbuf_add(b, ",\"ipAddress\":");
    sbuf_json_str(b, s->ip);
    strbuf_add(b, ",\"clientAppUsed\":");
    sbuf_json_str(b, s->client_app);
    strbuf_add(b, ",\"correlationId\":");
    sbuf_json_str(b, s->correlation_id);
    strbuf_add(b, ",\"conditionalAccessStatus\":");
    sbuf_json_str(b, s->ca_status);
    strbuf_addf(b, ",\"isInteractive\":%s,\"resourceDisplayName\":",
                s->is_interactive ? "true" : "false");
    sbuf_json_str(b, s->resource_display_name);
    strbuf_addf(b, ",\"status\":{\"errorCode\":%d,\"failureReason\":", s->error_code);
    sbuf_json_str(b, s->failure_reason);
    strbuf_add(b, ",\"additionalDetails\":null},\"deviceDetail\":{\"operatingSystem\":");
    sbuf_json_str(b, s->os);
    strbuf_add(b, ",\"browser\":");
    sbuf_json_str(b, s->browser);
    strbuf_add(b, "},\"location\":{\"city\":");
    sbuf_json_str(b, s->city);
    strbuf_add(b, ",\"state\":");
    sbuf_json_str(b, s->region);
    strbuf_add(b, ",\"countryOrRegion\":");
    sbuf_json_str(b, s->country);
    strbuf_addc(b, '}');
    if (event_types)
        strbuf_add(b, s->non_interactive_stream ? ",\"signInEventTypes\":[\"nonInteractiveUser\"]"
                                                : ",\"signInEventTypes\":[\"interactiveUser\"]");
    strbuf_addc(b, '}');
}

void sim_signin_json(struct strbuf *b, const struct sim_signin *s, int beta)
{
    write_signin(b, s, beta);
}

static void write_head(struct strbuf *b, const struct sim_state *st)
{
    strbuf_add(b, "{\"format\":\"" SIM_STATE_FORMAT "\",\n\"tenant\":{\"id\":");
    sbuf_json_str(b, st->tenant_id);
    strbuf_add(b, ",\"name\":");
    sbuf_json_str(b, st->tenant_name);
    strbuf_add(b, ",\"initial_domain\":");
    sbuf_json_str(b, st->initial_domain);
    strbuf_add(b, ",\"domains\":[");
    for (size_t i = 0; i < st->n_domains; i++) {
        if (i)
            strbuf_addc(b, ',');
        sbuf_json_str(b, st->domains[i]);
    }
    strbuf_addf(b, "],\"premium\":%s},\n", st->premium ? "true" : "false");
    strbuf_addf(b,
                "\"settings\":{\"token_lifetime_s\":%d,\"exo_page_size\":%d,"
                "\"exo_rate_limit_per_minute\":%d,\"org_config_delay_ms\":%d,"
                "\"report_refresh_date\":",
                st->token_lifetime_s, st->exo_page_size, st->exo_rate_limit,
                st->org_config_delay_ms);
    sbuf_json_str(b, st->report_refresh_date[0] ? st->report_refresh_date : NULL);
    strbuf_addf(b, "},\n\"report_settings\":{\"displayConcealedNames\":%s},\n",
                st->conceal_names ? "true" : "false");
    char when[40];
    fmt_iso_s(st->transport_when_changed_ms, when, sizeof when);
    strbuf_addf(b,
                "\"transport_config\":{\"SmtpClientAuthenticationDisabled\":%s,"
                "\"AllowLegacyTLSClients\":%s,\"WhenChanged\":\"%s\"},\n\"apps\":[",
                st->smtp_auth_disabled_org ? "true" : "false",
                st->allow_legacy_tls ? "true" : "false", when);
    for (size_t i = 0; i < st->n_apps; i++) {
        const struct sim_app *a = &st->apps[i];
        strbuf_add(b, i ? ",\n {\"client_id\":" : "\n {\"client_id\":");
        sbuf_json_str(b, a->client_id);
        strbuf_add(b, ",\"display_name\":");
        sbuf_json_str(b, a->display_name);
        strbuf_add(b, ",\"secrets\":[");
        for (size_t j = 0; j < a->n_secrets; j++) {
            if (j)
                strbuf_addc(b, ',');
            sbuf_json_str(b, a->secrets[j]);
        }
        strbuf_add(b, "],\"certificates\":[");
        for (size_t j = 0; j < a->n_keys; j++) {
            if (j)
                strbuf_addc(b, ',');
            sbuf_json_str(b, a->keys[j].pem);
        }
        strbuf_addc(b, ']');
        if (a->graph_permissions) {
            char *p = json_dumps(a->graph_permissions, JSON_COMPACT);
            strbuf_add(b, ",\"graph_permissions\":");
            strbuf_add(b, p ? p : "[]");
            free(p);
        }
        strbuf_addc(b, '}');
    }
    strbuf_add(b, "],\n\"users\":[");
}

int sim_state_save(const struct sim_state *st, const char *path, char *err, size_t err_size)
{
    static unsigned counter;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    struct strbuf b = {0};
    int rc = 0;
    write_head(&b, st);
    for (size_t i = 0; i < st->n_users && rc == 0; i++) {
        strbuf_add(&b, i ? ",\n " : "\n ");
        write_user(&b, &st->users[i]);
        rc = flush(&b, f, 0);
    }
    strbuf_add(&b, "],\n\"sign_ins\":[");
    for (size_t i = 0; i < st->n_signins && rc == 0; i++) {
        strbuf_add(&b, i ? ",\n " : "\n ");
        write_signin(&b, &st->signins[i], 1);
        rc = flush(&b, f, 0);
    }
    strbuf_add(&b, "],\n\"conditional_access\":{\"policies\":");
    char *ca = json_dumps(st->ca_policies, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_add(&b, ca ? ca : "[]");
    free(ca);
    strbuf_add(&b, ",\"groups\":");
    ca = json_dumps(st->groups, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_add(&b, ca ? ca : "[]");
    free(ca);
    strbuf_add(&b, "},\n\"mailbox_plans\":");
    ca = st->mailbox_plans ? json_dumps(st->mailbox_plans, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    strbuf_add(&b, ca ? ca : "[]");
    free(ca);
    strbuf_add(&b, ",\n\"organization_config\":");
    ca = st->org_config ? json_dumps(st->org_config, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    strbuf_add(&b, ca ? ca : "{}");
    free(ca);
    strbuf_add(&b, ",\n\"openid\":");
    ca = json_dumps(st->openid, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_add(&b, ca ? ca : "{}");
    free(ca);
    strbuf_add(&b, ",\n\"sent_mail\":");
    char *mail = json_dumps(st->sent_mail, JSON_COMPACT | JSON_ENCODE_ANY);
    strbuf_add(&b, mail ? mail : "[]");
    free(mail);
    strbuf_add(&b, "\n}\n");
    if (rc == 0)
        rc = flush(&b, f, 1);
    strbuf_free(&b);
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, err_size, "saving %s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
    }
    return rc;
}
