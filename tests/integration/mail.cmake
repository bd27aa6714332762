# Email: mail_send() against a real SMTP server (aiosmtpd via
# tests/integration/smtp_test_server.py) on 127.0.0.1 with a temporary
# database; plain SMTP, STARTTLS, implicit TLS, AUTH, rejections, drops,
# idempotency across a killed sender, and the file transport.
add_executable(test_mail_send ${CMAKE_CURRENT_LIST_DIR}/test_mail_send.c)
target_link_libraries(test_mail_send PRIVATE assent_testlib)
add_test(NAME integration.mail COMMAND test_mail_send)
set_tests_properties(integration.mail PROPERTIES ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 300
  LABELS integration)
