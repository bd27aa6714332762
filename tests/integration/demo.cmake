# demo.cmake - `assent demo` against its generated tenant (test_demo.c): the
# configuration file it writes works for other commands while it runs, and
# the outbox page's highlighting shows in headless Chromium
# (outbox_browser.py; skipped inside the test when Chromium is missing).
add_executable(test_demo ${CMAKE_CURRENT_LIST_DIR}/test_demo.c)
target_link_libraries(test_demo PRIVATE assent_testlib)
add_dependencies(test_demo assent assent-tenant-sim)
add_test(NAME integration.demo COMMAND test_demo)
set_tests_properties(integration.demo PROPERTIES
  ENVIRONMENT "${ASSENT_TEST_ENV};ASSENT_SIM_BIN=$<TARGET_FILE:assent-tenant-sim>"
  TIMEOUT 900 LABELS integration)
