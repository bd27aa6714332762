# m365.cmake - the Microsoft 365 client and tenant commands against the
# tenant simulator over real HTTP.
#  - unit.m365_client and unit.m365_steps (tests/unit/) need the simulator built.
#  - integration.m365: `assent sync`, `report`, `plan`, a manage_cas run, partial
#    syncs and removals, with the real `assent` binary (tests/integration/it_m365.c).
add_dependencies(test_m365_client assent-tenant-sim)
add_dependencies(test_m365_steps assent-tenant-sim)
add_executable(it_m365 ${CMAKE_CURRENT_LIST_DIR}/it_m365.c)
target_link_libraries(it_m365 PRIVATE assent_testlib)
add_dependencies(it_m365 assent assent-tenant-sim)
add_test(NAME integration.m365 COMMAND it_m365)
set_tests_properties(integration.m365 PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
                     LABELS integration)

# integration.playbook: evidence of Basic use (non-interactive sign-ins, the
# SMTP AUTH clients report import), drift after the simulator turns a
# protocol on again, KPI deadlines (tests/integration/it_playbook.c).
add_executable(it_playbook ${CMAKE_CURRENT_LIST_DIR}/it_playbook.c)
target_link_libraries(it_playbook PRIVATE assent_testlib)
add_dependencies(it_playbook assent assent-tenant-sim)
add_test(NAME integration.playbook COMMAND it_playbook)
set_tests_properties(integration.playbook PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
                     TIMEOUT 600 LABELS integration)

# integration.plans: mailbox plans and the EWS allow list end to end
# (sync, reports, workflows/mailbox-plans.json and ews-allowlist.json with a
# worker and `assent decide`; tests/integration/it_plans.c).
add_executable(it_plans ${CMAKE_CURRENT_LIST_DIR}/it_plans.c)
target_link_libraries(it_plans PRIVATE assent_testlib)
add_dependencies(it_plans assent assent-tenant-sim)
add_test(NAME integration.plans COMMAND it_plans)
set_tests_properties(integration.plans PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
                     TIMEOUT 600 LABELS integration)
