# Email: mail_send() against a real SMTP server (aiosmtpd via
# tests/integration/smtp_test_server.py) on 127.0.0.1 with a temporary
# database; plain SMTP, STARTTLS, implicit TLS, AUTH, rejections, drops,
# idempotency across a killed sender, and the file transport.
# The Graph transport is tested against the tenant simulator (sim_harness.c).
add_executable(test_mail_send ${CMAKE_CURRENT_LIST_DIR}/test_mail_send.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_harness.c)
target_link_libraries(test_mail_send PRIVATE assent_testlib)
add_dependencies(test_mail_send assent assent-tenant-sim)
add_test(NAME integration.mail COMMAND test_mail_send)
set_tests_properties(integration.mail PROPERTIES
  ENVIRONMENT "${ASSENT_TEST_ENV};ASSENT_SIM_BIN=$<TARGET_FILE:assent-tenant-sim>"
  TIMEOUT 300 LABELS integration)
