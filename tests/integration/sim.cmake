# sim.cmake - integration test of the tenant simulator (assent-tenant-sim):
# test_sim starts the real binary on free ports and talks HTTP to it.
# ASSENT_SIM_BIN names the binary; tests/integration/sim_harness.c (start,
# stop, token) can be compiled into other test programs that need a tenant.
add_executable(test_sim ${CMAKE_CURRENT_LIST_DIR}/test_sim.c ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_sim PRIVATE assent_testlib)
add_dependencies(test_sim assent-tenant-sim)
add_test(NAME integration.sim COMMAND test_sim)
set_tests_properties(integration.sim PROPERTIES
  ENVIRONMENT "${ASSENT_TEST_ENV};ASSENT_SIM_BIN=$<TARGET_FILE:assent-tenant-sim>"
  TIMEOUT 300 LABELS integration)
