# ca.cmake - Conditional Access end to end: workflows/block-legacy-auth.json
# with the real `assent` binary against the tenant simulator
# (tests/integration/it_ca.c).
add_executable(it_ca ${CMAKE_CURRENT_LIST_DIR}/it_ca.c)
target_link_libraries(it_ca PRIVATE assent_testlib)
add_dependencies(it_ca assent assent-tenant-sim)
add_test(NAME integration.m365_ca COMMAND it_ca)
set_tests_properties(integration.m365_ca PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
                     LABELS integration)
# The same with the store on PostgreSQL (db/postgres/ca.c).
add_test(NAME pg.m365_ca COMMAND it_ca)
set_tests_properties(pg.m365_ca PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")
