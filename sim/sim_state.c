/*
 * sim_state.c - the tenant state in memory: the CAS property table,
 * defaults, registered keys, the lookup index and run-time removal (see
 * sim_state.h; reading and writing the file live in sim_state_load.c and
 * sim_state_save.c).
 */
#include "sim/sim_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

/*
 * CAS mailbox properties.  Names and defaults follow Set-CASMailbox's
 * documentation; SmtpClientAuthenticationDisabled and MapiHttpEnabled are
 * null by default.  The EWS allow-lists and the policy defaults are
 * assumptions of the simulator.
 */
const struct sim_cas_prop sim_cas_props[] = {
    {"ActiveSyncEnabled", SIM_CAS_BOOL, 1, NULL},
    {"OWAEnabled", SIM_CAS_BOOL, 1, NULL},
    {"PopEnabled", SIM_CAS_BOOL, 1, NULL},
    {"ImapEnabled", SIM_CAS_BOOL, 1, NULL},
    {"MAPIEnabled", SIM_CAS_BOOL, 1, NULL},
    {"EwsEnabled", SIM_CAS_BOOL, 1, NULL},
    {"ECPEnabled", SIM_CAS_BOOL, 1, NULL},
    {"SmtpClientAuthenticationDisabled", SIM_CAS_NBOOL, -1, NULL},
    {"UniversalOutlookEnabled", SIM_CAS_BOOL, 1, NULL},
    {"OutlookMobileEnabled", SIM_CAS_BOOL, 1, NULL},
    {"MAPIBlockOutlookRpcHttp", SIM_CAS_BOOL, 0, NULL},
    {"MapiHttpEnabled", SIM_CAS_NBOOL, -1, NULL},
    {"OWAforDevicesEnabled", SIM_CAS_BOOL, 1, NULL},
    {"PopUseProtocolDefaults", SIM_CAS_BOOL, 1, NULL},
    {"ImapUseProtocolDefaults", SIM_CAS_BOOL, 1, NULL},
    {"EwsAllowOutlook", SIM_CAS_NBOOL, -1, NULL},
    {"EwsAllowMacOutlook", SIM_CAS_NBOOL, -1, NULL},
    {"ActiveSyncDebugLogging", SIM_CAS_BOOL, 0, NULL},
    {"ShowGalAsDefaultView", SIM_CAS_BOOL, 1, NULL},
    {"PublicFolderClientAccess", SIM_CAS_BOOL, 0, NULL},
    {"ActiveSyncMailboxPolicy", SIM_CAS_STR, -1, "Default"},
    {"OwaMailboxPolicy", SIM_CAS_STR, -1, "OwaMailboxPolicy-Default"},
};
const size_t sim_n_cas_props = sizeof sim_cas_props / sizeof sim_cas_props[0];

const char *const sim_usage_apps[SIM_N_USAGE_APPS] = {
    "Mail For Mac",     "Outlook For Mac", "Outlook For Windows", "Outlook For Mobile",
    "Other For Mobile", "Outlook For Web", "POP3 App",            "IMAP4 App",
    "SMTP App",
};

int sim_cas_prop_find(const char *name)
{
    for (size_t i = 0; i < sim_n_cas_props; i++)
        if (strcasecmp(sim_cas_props[i].name, name) == 0)
            return (int)i;
    return -1;
}

void sim_mailbox_defaults(struct sim_mailbox *m)
{
    for (size_t i = 0; i < sim_n_cas_props; i++) {
        m->b[i] = sim_cas_props[i].def_bool;
        m->s[i] = sim_cas_props[i].def_str;
    }
}

void sim_cas_value_json(struct strbuf *b, const struct sim_mailbox *m, int prop)
{
    if (sim_cas_props[prop].type == SIM_CAS_STR)
        sbuf_json_str(b, m->s[prop]);
    else
        strbuf_add(b, m->b[prop] < 0 ? "null" : m->b[prop] ? "true" : "false");
}

void sim_state_init(struct sim_state *st)
{
    memset(st, 0, sizeof *st);
    st->premium = 1;
    st->token_lifetime_s = 3599;
    st->exo_page_size = 1000;
    st->exo_rate_limit = 30000;
    st->smtp_auth_disabled_org = 1;
    st->allow_legacy_tls = 0;
    st->sent_mail = json_array();
    st->ca_policies = json_array();
    st->groups = json_array();
    st->org_config_delay_ms = 300;
    st->openid = json_object();
}

static void key_free(struct sim_key *k)
{
    free(k->pem);
    EVP_PKEY_free(k->pkey);
}

void sim_user_free(struct sim_user *u)
{
    free(u->id);
    free(u->upn);
    free(u->display_name);
    free(u->given_name);
    free(u->surname);
    free(u->mail);
    free(u->mobile_phone);
    free(u->business_phone);
    free(u->skus);
    if (u->mbx)
        free(u->mbx->name);
    free(u->mbx);
    free(u->usage);
}

void sim_state_free(struct sim_state *st)
{
    free(st->tenant_id);
    free(st->tenant_name);
    free(st->initial_domain);
    for (size_t i = 0; i < st->n_domains; i++)
        free(st->domains[i]);
    free(st->domains);
    for (size_t i = 0; i < st->n_apps; i++) {
        struct sim_app *a = &st->apps[i];
        free(a->client_id);
        free(a->display_name);
        for (size_t j = 0; j < a->n_secrets; j++)
            free(a->secrets[j]);
        free(a->secrets);
        for (size_t j = 0; j < a->n_keys; j++)
            key_free(&a->keys[j]);
        free(a->keys);
        json_decref(a->graph_permissions);
    }
    free(st->apps);
    for (size_t i = 0; i < st->n_users; i++)
        sim_user_free(&st->users[i]);
    free(st->users);
    hidx_free(&st->by_key);
    for (size_t i = 0; i < st->n_signins; i++) {
        free(st->signins[i].id);
        free(st->signins[i].correlation_id);
        free(st->signins[i].created);
    }
    free(st->signins);
    json_decref(st->sent_mail);
    json_decref(st->ca_policies);
    json_decref(st->groups);
    json_decref(st->mailbox_plans);
    json_decref(st->org_config);
    json_decref(st->openid);
    intern_free(&st->pool);
    memset(st, 0, sizeof *st);
}

int sim_app_add_key(struct sim_app *app, const char *pem, char *err, size_t err_size)
{
    struct sim_key k = {0};
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        goto oom;
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (cert) {
        k.pkey = X509_get_pubkey(cert);
        k.has_cert = 1;
        unsigned char *der = NULL;
        int der_len = i2d_X509(cert, &der);
        if (der_len > 0) {
            SHA1(der, (size_t)der_len, k.sha1);
            SHA256(der, (size_t)der_len, k.sha256);
        }
        OPENSSL_free(der);
        X509_free(cert);
    } else {
        (void)BIO_reset(bio);
        k.pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    if (!k.pkey) {
        snprintf(err, err_size, "not a PEM certificate or public key");
        return -1;
    }
    if (EVP_PKEY_base_id(k.pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(k.pkey);
        snprintf(err, err_size, "only RSA keys are accepted");
        return -1;
    }
    k.pem = strdup(pem);
    struct sim_key *nk = realloc(app->keys, (app->n_keys + 1) * sizeof *nk);
    if (!k.pem || !nk) {
        free(k.pem);
        EVP_PKEY_free(k.pkey);
        if (nk)
            app->keys = nk;
        goto oom;
    }
    app->keys = nk;
    app->keys[app->n_keys++] = k;
    return 0;
oom:
    snprintf(err, err_size, "out of memory");
    return -1;
}

static int signin_cmp(const void *a, const void *b)
{
    const struct sim_signin *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? 1 : -1;
    return strcmp(x->id, y->id);
}

void sim_state_sort_signins(struct sim_state *st)
{
    if (st->n_signins > 1)
        qsort(st->signins, st->n_signins, sizeof *st->signins, signin_cmp);
}

/* Everything but "users" and "sign_ins" (doc borrowed). */
int sim_state_remove_user(struct sim_state *st, int idx)
{
    if (idx < 0 || (size_t)idx >= st->n_users)
        return -1;
    sim_user_free(&st->users[idx]);
    memmove(&st->users[idx], &st->users[idx + 1],
            (st->n_users - (size_t)idx - 1) * sizeof *st->users);
    st->n_users--;
    return sim_state_reindex(st);
}

/* ---- index ------------------------------------------------------------------ */

int sim_state_reindex(struct sim_state *st)
{
    hidx_free(&st->by_key);
    for (size_t i = 0; i < st->n_users; i++) {
        struct sim_user *u = &st->users[i];
        int idx = (int)i;
        if (hidx_put(&st->by_key, u->id, idx) || hidx_put(&st->by_key, u->upn, idx) ||
            hidx_put(&st->by_key, u->mail, idx))
            return -1;
        if (u->mbx && (hidx_put(&st->by_key, u->mbx->name, idx) ||
                       hidx_put(&st->by_key, u->mbx->exchange_guid, idx)))
            return -1;
    }
    return 0;
}

int sim_state_find_user(const struct sim_state *st, const char *key)
{
    if (!key)
        return -1;
    if (strncasecmp(key, "smtp:", 5) == 0)
        key += 5;
    return hidx_get(&st->by_key, key);
}

int sim_state_tenant_matches(const struct sim_state *st, const char *name)
{
    if (str_ieq(name, st->tenant_id) || str_ieq(name, st->initial_domain))
        return 1;
    for (size_t i = 0; i < st->n_domains; i++)
        if (str_ieq(name, st->domains[i]))
            return 1;
    return 0;
}
