/*
 * sim_exo.h - what the Exchange InvokeCommand handlers share (private to
 * sim/): the answer envelope, the error shape, $select and the annotated
 * keys.  sim_exo.c holds the mailbox and transport cmdlets and the entry
 * point; sim_exo_org.c the mailbox plans and the organisation config.
 */
#ifndef SIM_EXO_H
#define SIM_EXO_H

#include "sim/sim.h"

#define EXO_CT                                                                                  \
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"     \
    "charset=utf-8"
#define EXO_SERVER "NAMPR00A001.PROD.OUTLOOK.COM"
#define EX_PARAM "System.Management.Automation.ParameterBindingException"
#define EX_TRANSFORM "System.Management.Automation.ParameterBindingArgumentTransformationException"

/* The error envelope: error.message "Invalid Operation", details[0].message
 * "|type|text"; replaces o's body and sets status and content type. */
void exo_error(struct sim_resp *o, int status, const char *code, const char *type,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Start a successful collection answer (context + warnings; warning may be NULL);
 * the caller appends ",\"value\":[...]}". */
void exo_begin(struct sim_req *r, struct strbuf *b, const char *tenant, const char *warning);

/* The 404 ManagementObjectNotFoundException (or 400 ambiguous) for identity. */
void exo_not_found(struct sim_resp *o, const char *identity, int ambiguous);

/* The 400 AmbiguousParameterSetException for a parameter cmdlet does not have. */
void exo_unknown_param(struct sim_resp *o, const char *cmdlet, const char *param);

/* $select=A,B: which properties to emit (n == 0: all).  Free buf. */
struct exo_select {
    char *buf;
    const char *names[64];
    int n;
};
void exo_select_parse(struct exo_select *sel, const char *text);
int exo_want(const struct exo_select *sel, const char *name);

/* Emit ["," ] "Name@data.type":..., "Name@odata.type":..., "Name": */
void exo_key_annot(struct strbuf *b, int *first, const char *name, const char *odata,
                   const char *data);

/* ---- sim_exo_org.c ---- */
void sim_exo_get_plans(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                       json_t *params);
void sim_exo_set_plan(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                      json_t *params);
void sim_exo_get_org(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                     json_t *params);
void sim_exo_set_org(struct sim *s, struct sim_req *r, struct sim_resp *o, const char *tenant,
                     json_t *params);

#endif
