# Style rules kept by tools, not by reviews.
add_test(NAME lint.banned_functions COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-banned.sh ${CMAKE_SOURCE_DIR})
add_test(NAME lint.layers COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-layers.sh ${CMAKE_SOURCE_DIR})
add_test(NAME lint.config_documented COMMAND python3 ${CMAKE_SOURCE_DIR}/scripts/config-doc.py --check ${CMAKE_SOURCE_DIR})
add_test(NAME lint.timeout_scale
         COMMAND ${CMAKE_COMMAND} -DCTEST=${CMAKE_CTEST_COMMAND} -DDIR=${CMAKE_CURRENT_BINARY_DIR}
                 -P ${CMAKE_SOURCE_DIR}/tests/check_timeout_scale.cmake)
set_tests_properties(lint.timeout_scale PROPERTIES TIMEOUT 120)
# The build's own guard: a file compiled as part of db/ sees db/ and base/
# only, so an include of the engine fails with "No such file".
add_test(NAME lint.layers_build
         COMMAND ${CMAKE_C_COMPILER} -fsyntax-only -I${CMAKE_BINARY_DIR}/layers/db
                 ${CMAKE_SOURCE_DIR}/tests/data/layers/upward.c)
set_tests_properties(lint.layers_build PROPERTIES
                     PASS_REGULAR_EXPRESSION "engine/engine.h: No such file")
