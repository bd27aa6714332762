# The `assent` binary on PostgreSQL (it_pg_cli.c), against the tests'
# private server (the fixture "pg" of tests/CMakeLists.txt; a database per
# test): run --wait, runs, show, audit verify; two workers on one database;
# cancel, dedupe and retry; bad, unreachable and password-carrying database
# strings; exceptions, KPIs and triggers; a stopped worker's step taken
# over after node_timeout.
add_executable(it_pg_cli ${CMAKE_CURRENT_LIST_DIR}/it_pg_cli.c)
target_link_libraries(it_pg_cli PRIVATE assent_testlib)
add_dependencies(it_pg_cli assent)
foreach(t run_wait_runs_show_audit two_workers cancel_dedupe_retry bad_database
          kpi_exception_trigger stopped_worker_taken_over)
  add_test(NAME pg.cli.${t} COMMAND it_pg_cli test_${t})
  set_tests_properties(pg.cli.${t} PROPERTIES ENVIRONMENT "${ASSENT_PG_TEST_ENV}"
                       FIXTURES_REQUIRED pg TIMEOUT 300 LABELS "integration;pg")
endforeach()

# Approvals over HTTP with `assent serve` on PostgreSQL (it_pg_web.c): one
# node deciding through the real page; two nodes on one database receiving
# POSTs for one approval at once (one 200, one 409).
add_executable(it_pg_web ${CMAKE_CURRENT_LIST_DIR}/it_pg_web.c
                         ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(it_pg_web PRIVATE assent_testlib)
add_dependencies(it_pg_web assent)
foreach(t decide_on_postgres two_nodes_decide_once)
  add_test(NAME pg.web.${t} COMMAND it_pg_web test_${t})
  set_tests_properties(pg.web.${t} PROPERTIES ENVIRONMENT "${ASSENT_PG_TEST_ENV}"
                       FIXTURES_REQUIRED pg TIMEOUT 300 LABELS "integration;pg")
endforeach()

# The whole web suite (test_web_approval.c, built by web.cmake) with its
# database on PostgreSQL (web_harness.c reads ASSENT_TEST_DB).
add_test(NAME pg.web.suite COMMAND test_web_approval)
set_tests_properties(pg.web.suite PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# The tenant commands end to end (it_m365.c, built by m365.cmake: sync,
# report, plan, a manage_cas run, partial syncs and removals against the
# tenant simulator) with their databases on PostgreSQL.
add_test(NAME pg.m365 COMMAND it_m365)
set_tests_properties(pg.m365 PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# The REST API and `assent token` (test_api.c, built by api.cmake: every
# route with each role, credentials, bad inputs, the audit chain) with the
# database on PostgreSQL.
add_test(NAME pg.api COMMAND test_api)
set_tests_properties(pg.api PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# The playbook's evidence and drift (it_playbook.c, built by m365.cmake) on
# PostgreSQL.
add_test(NAME pg.playbook COMMAND it_playbook)
set_tests_properties(pg.playbook PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# kill -9 at random moments with three nodes sharing the database
# (crash_engine.c, built by engine.cmake): nothing lost, no completed step
# run again, one audit chain.
add_test(NAME pg.crash COMMAND crash_engine)
set_tests_properties(pg.crash PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 900 LABELS "integration;pg")

# The admin console over HTTP (test_console.c, built by console.cmake) with
# its database, and so its sessions, on PostgreSQL.
add_test(NAME pg.console COMMAND test_console)
set_tests_properties(pg.console PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# Mailbox plans and the EWS allow list (it_plans.c, built by m365.cmake) on
# PostgreSQL.
add_test(NAME pg.plans COMMAND it_plans)
set_tests_properties(pg.plans PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")

# Sign-in with Entra ID (test_signin.c, built by console.cmake): flows, sign-in
# sessions and require_sign_in on PostgreSQL.
add_test(NAME pg.signin COMMAND test_signin)
set_tests_properties(pg.signin PROPERTIES
                     ENVIRONMENT "${ASSENT_PG_TEST_ENV};ASSENT_TEST_DB=pg"
                     FIXTURES_REQUIRED pg TIMEOUT 600 LABELS "integration;pg")
