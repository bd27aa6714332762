/* test_approval_policy.c - the approval policy (approvals/approval_decide.h)
 * as a pure function: what one answer does under any, all and sequential. */
#include "tests/testutil.h"

#include "approvals/approval_decide.h"

static void test_policy_table(void **state)
{
    (void)state;
    static const struct {
        const char *policy;
        int by_admin, approve;
        int64_t unapproved;
        int queued;
        enum approval_effect want;
    } cases[] = {
        {"any", 0, 1, 2, 1, APPROVAL_DECIDED},
        {"any", 0, 0, 2, 1, APPROVAL_DECIDED},
        {"all", 0, 1, 1, 0, APPROVAL_STAYS_PENDING}, /* one approver has not approved yet */
        {"all", 0, 1, 0, 0, APPROVAL_DECIDED},       /* the last approval */
        {"all", 0, 0, 2, 0, APPROVAL_DECIDED},       /* a rejection rejects */
        {"all", 1, 1, 2, 0, APPROVAL_DECIDED},       /* an administrator decides the whole */
        {"sequential", 0, 1, 2, 1, APPROVAL_ASK_NEXT},
        {"sequential", 0, 1, 0, 0, APPROVAL_DECIDED},
        {"sequential", 0, 0, 2, 1, APPROVAL_DECIDED},
        {"sequential", 1, 1, 2, 1, APPROVAL_DECIDED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum approval_effect got = approval_policy(cases[i].policy, cases[i].by_admin,
                                                   cases[i].approve, cases[i].unapproved,
                                                   cases[i].queued);
        if (got != cases[i].want)
            fail_msg("case %zu (%s admin=%d approve=%d unapproved=%lld queued=%d): %d, want %d",
                     i, cases[i].policy, cases[i].by_admin, cases[i].approve,
                     (long long)cases[i].unapproved, cases[i].queued, (int)got,
                     (int)cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
