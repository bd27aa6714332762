# The http step and the generic steps, end to end: the real `assent` binary
# runs workflows against a local HTTP server (http_echo_server.c, inside the
# test program) that injects failures and records Idempotency-Key headers.
# The unit test of the generic steps uses the same server in-process.
target_sources(test_steps_generic PRIVATE ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c)

add_executable(it_http_step ${CMAKE_CURRENT_LIST_DIR}/it_http_step.c
                            ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c)
target_link_libraries(it_http_step PRIVATE assent_testlib)
add_dependencies(it_http_step assent)
foreach(t success retries_same_key permanent_4xx condition_false dry_run_sends_nothing
          delay_survives_kill)
  add_test(NAME integration.http_step.${t} COMMAND it_http_step test_${t})
  set_tests_properties(integration.http_step.${t} PROPERTIES
    ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 300 LABELS integration)
endforeach()
