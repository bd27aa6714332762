/* m365_register.c - registers the Microsoft 365 step types and mail transport. */
#include "m365/m365_register.h"

#include "engine/step.h"
#include "m365/mail_graph.h"
#include "steps/mail.h"

extern const struct step_type step_type_manage_cas, step_type_manage_transport,
    step_type_cas_lookup, step_type_graph_users, step_type_exception, step_type_manage_cas_each,
    step_type_smtp_auth_impact, step_type_ca_plan, step_type_ca_policy,
    step_type_mailbox_plans_read, step_type_manage_mailbox_plans, step_type_ews_allowlist_read,
    step_type_manage_ews_allowlist;

void m365_register(void)
{
    static const struct step_type *const types[] = {
        &step_type_manage_cas,  &step_type_manage_transport, &step_type_cas_lookup,
        &step_type_graph_users, &step_type_exception,        &step_type_manage_cas_each,
        &step_type_smtp_auth_impact, &step_type_ca_plan,     &step_type_ca_policy,
        &step_type_mailbox_plans_read, &step_type_manage_mailbox_plans,
        &step_type_ews_allowlist_read, &step_type_manage_ews_allowlist,
        NULL,
    };
    step_types_register(types);
    mail_transport_register(&mail_transport_graph);
}
