# The executor end to end with the real `assent` binary:
#  - engine.crash: kill -9 at random moments across many runs of a
#    five-step workflow (http with retries, condition, delay, http, log)
#    against a local HTTP server that records Idempotency-Key headers; then
#    every run succeeded, every step exactly once, one key per http step.
#  - engine.cli: run --wait, show, runs, cancel, retry, SIGTERM during a
#    step, --help of every command, an email template next to a workflow
#    started by a relative path, bad mail configuration refused at start by
#    worker, run --wait and serve, file modes (0700 folders, 0600 database)
#    and a config file with an inline client_secret that others can read
#    refused by every command.  (audit verify after tampering: sqlite.cmake)
add_executable(crash_engine ${CMAKE_CURRENT_LIST_DIR}/crash_engine.c
                            ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c)
target_link_libraries(crash_engine PRIVATE assent_testlib)
add_test(NAME engine.crash COMMAND crash_engine)
set_tests_properties(engine.crash PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 600
                     LABELS integration)

add_executable(it_engine_cli ${CMAKE_CURRENT_LIST_DIR}/it_engine_cli.c
                             ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c
                             ${CMAKE_CURRENT_LIST_DIR}/cli_env.c)
target_link_libraries(it_engine_cli PRIVATE assent_testlib)
add_dependencies(it_engine_cli assent)
add_dependencies(crash_engine assent)
foreach(t help bad_input_dedupe_cancel_and_runs failed_run_retry_same_key
          sigterm_finishes_running_step template_next_to_workflow
          bad_mail_config_fails_fast file_modes_and_inline_secret)
  add_test(NAME engine.cli.${t} COMMAND it_engine_cli test_${t})
  set_tests_properties(engine.cli.${t} PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 300
                       LABELS integration)
endforeach()

# engine.crash_approvals: kill -9 while approvals are created and their
# links mailed (the group-committed first execution of the approval step):
# one approval per run, every approver mailed once, each email's link works.
add_executable(crash_approvals ${CMAKE_CURRENT_LIST_DIR}/crash_approvals.c)
target_link_libraries(crash_approvals PRIVATE assent_testlib)
add_dependencies(crash_approvals assent)
add_test(NAME engine.crash_approvals COMMAND crash_approvals)
set_tests_properties(engine.crash_approvals PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}"
                     TIMEOUT 600 LABELS integration)
