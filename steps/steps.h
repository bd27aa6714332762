/*
 * steps.h - the generic step types: log, condition, delay, fail, http and
 * email.  A program registers them once at start, before it loads a
 * workflow; the approval step (approvals/) and the Microsoft 365 steps
 * (m365/) register themselves the same way.
 */
#ifndef ASSENT_STEPS_H
#define ASSENT_STEPS_H

void steps_register(void);

#endif
