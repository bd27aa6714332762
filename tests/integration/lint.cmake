# Style rules kept by tools, not by reviews.
add_test(NAME lint.banned_functions COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-banned.sh ${CMAKE_SOURCE_DIR})
