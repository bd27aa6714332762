/*
 * m365_register.h - the Microsoft 365 domain's entry point for a program:
 * registers its step types (manage_cas, manage_transport, cas_lookup,
 * graph_users, exception) and the "graph" mail transport.
 */
#ifndef ASSENT_M365_REGISTER_H
#define ASSENT_M365_REGISTER_H

void m365_register(void);

#endif
