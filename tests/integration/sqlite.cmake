# The SQLite store's own integration test (the other tests reach the store
# only through db/*.h and the `assent` binary):
#  - sqlite.audit_verify_tampering: edit, delete and cut records of the
#    event log in the database file behind Assent's back; `assent audit
#    verify` reports each, and verifies again once the record is back.
add_executable(sqlite_tamper ${CMAKE_CURRENT_LIST_DIR}/sqlite_tamper.c
                             ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c
                             ${CMAKE_CURRENT_LIST_DIR}/cli_env.c)
target_link_libraries(sqlite_tamper PRIVATE assent_testlib)
add_dependencies(sqlite_tamper assent)
add_test(NAME sqlite.audit_verify_tampering COMMAND sqlite_tamper test_audit_verify_tampering)
set_tests_properties(sqlite.audit_verify_tampering PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
                     TIMEOUT 300 LABELS integration)
