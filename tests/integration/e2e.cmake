# e2e.cmake - the whole chain over real HTTP and real SMTP (test_e2e.c): the
# tenant simulator, `assent sync`, exceptions, the shipped KPI and workflow,
# `assent trigger`, `assent serve` (killed with -9 once), an aiosmtpd server
# (smtp_test_server.py), approval links from the emails, the final tenant
# state.  Uses tests/integration/sim_harness.c to run the simulator.
add_executable(test_e2e ${CMAKE_CURRENT_LIST_DIR}/test_e2e.c ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_e2e PRIVATE assent_testlib)
add_dependencies(test_e2e assent assent-tenant-sim)
add_test(NAME integration.e2e COMMAND test_e2e)
set_tests_properties(integration.e2e PROPERTIES
  ENVIRONMENT "${ASSENT_TEST_ENV};ASSENT_SIM_BIN=$<TARGET_FILE:assent-tenant-sim>"
  TIMEOUT 900 LABELS integration)
