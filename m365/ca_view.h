/*
 * ca_view.h - what the `ca_plan` and `ca_policy` steps both read before
 * deciding anything: Assent's record of the policy, the policy as it is now
 * (found again by the recorded id, else by display name), the exclusion
 * group and its members, the users with an exception in force now (the
 * members it should have), and from those the policy Assent wants and how
 * the tenant differs from it.  Reading changes nothing.
 */
#ifndef ASSENT_M365_CA_VIEW_H
#define ASSENT_M365_CA_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "base/error.h"

struct app;
struct m365;

/* What the workflow asks for (strings and the array borrowed). */
struct ca_params {
    const char *policy_name;
    const char *group_name;
    const json_t *exclude_users; /* UPNs or object ids (break-glass accounts); may be NULL */
    int enforce;
};

struct ca_view {
    json_t *record;          /* Assent's record (db/db_ca.h) or NULL */
    json_t *policy;          /* the policy as Graph returned it, or NULL (none yet) */
    json_t *policy_n;        /* ca_policy_normalize(policy), or NULL */
    const char *found_by;    /* "id", "name" or NULL */
    int managed;             /* the policy found is Microsoft-managed */
    int assent_wrote;        /* the policy found is the one Assent recorded */
    json_t *group;           /* the exclusion group or NULL (none yet) */
    const char *group_id;    /* borrowed from group, or NULL */
    json_t *members_now;     /* [{"id","userPrincipalName"}] of the group ([] without one) */
    json_t *wanted;          /* [{"id","userPrincipalName"}]: exception users found in the tenant */
    json_t *unresolved;      /* UPNs with an exception that the tenant does not know */
    json_t *exclude_ids;     /* object ids of params.exclude_users */
    json_t *add, *remove;    /* [{"id","userPrincipalName"}] to add to / remove from the group */
    json_t *desired;         /* the policy Assent wants (with the group's id, or a
                              * placeholder naming the group to be created) */
    json_t *desired_n;       /* normalized */
    json_t *outside_changes; /* ca_policy_diff: edits not made by Assent ([] when none) */
    int policy_needs_write;  /* create, or differs from desired, or edited outside */
    json_t *patch;           /* the PATCH that would make it so, or NULL (create / none) */
};

/*
 * Read everything into v (zeroed here) at `now`.  On failure *what names the
 * read that failed ("Graph GET ...", "the exceptions in force", ...) and err
 * says why; v is freed by ca_view_free() in every case.
 */
enum as_code ca_view_read(struct app *app, struct m365 *m, const struct ca_params *p, int64_t now,
                          struct ca_view *v, const char **what, struct as_err *err) AS_WUR;

void ca_view_free(struct ca_view *v);

/* The UPNs of an array of {"id","userPrincipalName"} (new reference). */
json_t *ca_view_upns(const json_t *members);

/* Check the workflow's parameters of a CA step into p; 0, or -1 with msg. */
int ca_params_from(const json_t *params, struct ca_params *p, char *msg, size_t size);

#endif
