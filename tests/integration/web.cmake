# Web + approvals: a real `assent serve` on 127.0.0.1 with a temporary
# database, driven over HTTP with libcurl (test_web_approval.c), the example
# workflow through a real SMTP server (test_web_example.c), and a headless
# Chromium loading the page like a link scanner and clicking Approve
# (web_browser.py).
add_executable(test_web_approval
  ${CMAKE_CURRENT_LIST_DIR}/test_web_approval.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_web_approval PRIVATE assent_testlib)
add_test(NAME integration.web COMMAND test_web_approval)
set_tests_properties(integration.web PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
  LABELS integration)

add_executable(test_web_browser
  ${CMAKE_CURRENT_LIST_DIR}/test_web_browser.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_web_browser PRIVATE assent_testlib)
add_test(NAME integration.web_browser COMMAND test_web_browser)
set_tests_properties(integration.web_browser PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS integration)

add_executable(test_web_example
  ${CMAKE_CURRENT_LIST_DIR}/test_web_example.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_web_example PRIVATE assent_testlib)
add_test(NAME integration.web_example COMMAND test_web_example)
set_tests_properties(integration.web_example PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS integration)

# Behind a reverse proxy (test_web_proxy.c): trusted_proxies decide whose
# X-Forwarded-For / Forwarded is believed, for the audit record and the
# rate limiter.
add_executable(test_web_proxy
  ${CMAKE_CURRENT_LIST_DIR}/test_web_proxy.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_web_proxy PRIVATE assent_testlib)
add_test(NAME integration.web_proxy COMMAND test_web_proxy)
set_tests_properties(integration.web_proxy PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 300 LABELS integration)

# Approvals posted to a Teams channel (test_web_teams.c): the Adaptive Card
# a local HTTP server receives as the Workflows webhook, once.
add_executable(test_web_teams
  ${CMAKE_CURRENT_LIST_DIR}/test_web_teams.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c
  ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c)
target_link_libraries(test_web_teams PRIVATE assent_testlib)
add_test(NAME integration.web_teams COMMAND test_web_teams)
set_tests_properties(integration.web_teams PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 300 LABELS integration)
