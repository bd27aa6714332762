# timeout_scale.cmake - read by ctest (not by cmake) before the tests of this
# directory are defined: when ASSENT_TEST_TIMEOUT_SCALE is set to a positive
# integer, every test's TIMEOUT is multiplied by it.  The TIMEOUTs in the
# .cmake files are hang guards sized for an idle machine; valgrind (20-50x
# slower) or a machine busy with other builds needs more, and that is known
# only when ctest runs, not when cmake configures (libuv does the same with
# UV_TEST_TIMEOUT_MULTIPLIER).  The same variable scales the tests' own hang
# guards (tu_run, tu_wait_exit, tu_wait_port in tests/testutil.c).
#
# ctest includes this file before the add_test/set_tests_properties lines of
# the generated CTestTestfile.cmake, so it wraps set_tests_properties; each
# argument is passed on as a bracket argument so that list values such as
# ENVIRONMENT keep their semicolons.
set(_assent_scale "$ENV{ASSENT_TEST_TIMEOUT_SCALE}")
if(_assent_scale STREQUAL "")
  return()
endif()
if(NOT _assent_scale MATCHES "^[1-9][0-9]*$")
  message(FATAL_ERROR "ASSENT_TEST_TIMEOUT_SCALE must be a positive integer, not '${_assent_scale}'")
endif()
function(set_tests_properties)
  set(call "_set_tests_properties(")
  set(scale_next FALSE)
  math(EXPR last "${ARGC} - 1")
  foreach(i RANGE 0 ${last})
    set(arg "${ARGV${i}}")
    if(scale_next)
      math(EXPR arg "${arg} * ${_assent_scale}")
      set(scale_next FALSE)
    elseif(arg STREQUAL "TIMEOUT")
      set(scale_next TRUE)
    endif()
    string(APPEND call " [==[${arg}]==]")
  endforeach()
  cmake_language(EVAL CODE "${call})")
endfunction()
