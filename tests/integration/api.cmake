# REST API v1 and its tokens: a real `assent serve` on 127.0.0.1 with a
# temporary database, driven over HTTP with libcurl (test_api.c): every
# route with each role, missing/wrong/expired/revoked credentials, the bad
# inputs, the audit chain; and `assent token`.
add_executable(test_api
  ${CMAKE_CURRENT_LIST_DIR}/test_api.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_api PRIVATE assent_testlib)
add_test(NAME integration.api COMMAND test_api)
set_tests_properties(integration.api PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
  LABELS integration)
