# Style rules kept by tools, not by reviews.
add_test(NAME lint.banned_functions COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-banned.sh ${CMAKE_SOURCE_DIR})
add_test(NAME lint.config_documented COMMAND python3 ${CMAKE_SOURCE_DIR}/scripts/config-doc.py --check ${CMAKE_SOURCE_DIR})
add_test(NAME lint.timeout_scale
         COMMAND ${CMAKE_COMMAND} -DCTEST=${CMAKE_CTEST_COMMAND} -DDIR=${CMAKE_CURRENT_BINARY_DIR}
                 -P ${CMAKE_SOURCE_DIR}/tests/check_timeout_scale.cmake)
set_tests_properties(lint.timeout_scale PROPERTIES TIMEOUT 120)
