# The http step and the generic steps, end to end: the real `assent` binary
# runs workflows against a local HTTP server (http_echo_server.c, inside the
# test program) that injects failures and records Idempotency-Key headers.
# The unit test of the generic steps uses the same server in-process.
target_sources(test_steps_generic PRIVATE ${CMAKE_CURRENT_LIST_DIR}/http_echo_server.c)
