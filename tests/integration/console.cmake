# The admin console: a real `assent serve` on 127.0.0.1 with a temporary
# database, driven over HTTP with libcurl (test_console.c: login, cookies,
# CSRF, roles, logout, GETs that change nothing, two nodes on one
# database), and a headless Chromium following a campaign through it with
# the tenant simulator (console_browser.py, started by test_console_browser.c).
add_executable(test_console
  ${CMAKE_CURRENT_LIST_DIR}/test_console.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c)
target_link_libraries(test_console PRIVATE assent_testlib)
add_test(NAME integration.console COMMAND test_console)
set_tests_properties(integration.console PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
  LABELS integration)

add_executable(test_console_browser
  ${CMAKE_CURRENT_LIST_DIR}/test_console_browser.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_console_browser PRIVATE assent_testlib)
add_dependencies(test_console_browser assent assent-tenant-sim)
add_test(NAME integration.console_browser COMMAND test_console_browser)
set_tests_properties(integration.console_browser PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 1200 SKIP_RETURN_CODE 77 LABELS integration)

# Sign-in with Entra ID (test_signin.c): the tenant simulator as the OpenID
# provider, the console's sign-in and an approval with require_sign_in.
add_executable(test_signin
  ${CMAKE_CURRENT_LIST_DIR}/test_signin.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_signin PRIVATE assent_testlib)
add_dependencies(test_signin assent assent-tenant-sim)
add_test(NAME integration.signin COMMAND test_signin)
set_tests_properties(integration.signin PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
  LABELS integration)

# The same in a headless Chromium (signin_browser.py, started by
# test_signin_browser.c): the provider's forwarding pages as a browser
# follows them, the approver's link with the wrong person then the
# approver, and the console's "Sign in with Microsoft".
add_executable(test_signin_browser
  ${CMAKE_CURRENT_LIST_DIR}/test_signin_browser.c ${CMAKE_CURRENT_LIST_DIR}/web_harness.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_signin_browser PRIVATE assent_testlib)
add_dependencies(test_signin_browser assent assent-tenant-sim)
add_test(NAME integration.signin_browser COMMAND test_signin_browser)
set_tests_properties(integration.signin_browser PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
  TIMEOUT 1800 SKIP_RETURN_CODE 77 LABELS integration)
