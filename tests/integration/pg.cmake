# The `assent` binary on PostgreSQL (it_pg_cli.c), against the tests'
# private server (the fixture "pg" of tests/CMakeLists.txt; a database per
# test): run --wait, runs, show, audit verify; two workers on one database;
# cancel, dedupe and retry; bad, unreachable and password-carrying database
# strings and a command not ported yet.
add_executable(it_pg_cli ${CMAKE_CURRENT_LIST_DIR}/it_pg_cli.c)
target_link_libraries(it_pg_cli PRIVATE assent_testlib)
add_dependencies(it_pg_cli assent)
foreach(t run_wait_runs_show_audit two_workers cancel_dedupe_retry bad_database)
  add_test(NAME pg.cli.${t} COMMAND it_pg_cli test_${t})
  set_tests_properties(pg.cli.${t} PROPERTIES ENVIRONMENT "${ASSENT_PG_TEST_ENV}"
                       FIXTURES_REQUIRED pg TIMEOUT 300 LABELS "integration;pg")
endforeach()
