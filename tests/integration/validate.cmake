# validate.cmake - integration test of `assent validate`: runs the real binary
# on the shipped workflows (all must be valid), on every broken workflow in
# tests/data/invalid/ (each expected "file:line:column: severity CODE" must
# be printed, with the right exit status), and on the command-line edge
# cases (--json, --strict, --help, missing file, no file).
#
# This one file does both jobs: included by tests/CMakeLists.txt it registers
# the test; run with `cmake -P` (as the test does) it performs the checks.

if(NOT CMAKE_SCRIPT_MODE_FILE)
  add_test(NAME integration.validate
           COMMAND ${CMAKE_COMMAND} -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(integration.validate PROPERTIES
    ENVIRONMENT "${ASSENT_TEST_ENV}" TIMEOUT 300 LABELS integration)
  return()
endif()

cmake_minimum_required(VERSION 3.19)
set(BIN "$ENV{ASSENT_BIN}")
set(SRC "$ENV{ASSENT_SOURCE_DIR}")
set(BUILD "$ENV{ASSENT_BUILD_DIR}")
if(NOT BIN OR NOT SRC OR NOT BUILD)
  message(FATAL_ERROR "ASSENT_BIN, ASSENT_SOURCE_DIR and ASSENT_BUILD_DIR must be set")
endif()
set(FAILURES 0)

# run(<out-var> <rc-var> args...): stdout and stderr together.
function(run out_var rc_var)
  execute_process(COMMAND ${BIN} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 60)
  set(${out_var} "${out}${err}" PARENT_SCOPE)
  set(${rc_var} "${rc}" PARENT_SCOPE)
endfunction()

# Helpers are functions, not macros: a macro would re-expand "${...}" found
# in the output (templates appear in diagnostics).
function(fail what)
  message(SEND_ERROR "FAIL: ${what}")
  math(EXPR n "${FAILURES} + 1")
  set(FAILURES ${n} PARENT_SCOPE)
endfunction()

# expect_rc(<rc> <want> <what>); the output is read from variable OUT.
function(expect_rc got want what)
  if(NOT "${got}" STREQUAL "${want}")
    message(SEND_ERROR "FAIL: ${what}: exit status ${got}, want ${want}\n${OUT}")
    math(EXPR n "${FAILURES} + 1")
    set(FAILURES ${n} PARENT_SCOPE)
  endif()
endfunction()

# expect_contains(<variable holding the text> <needle> <what>)
function(expect_contains text_var needle what)
  string(FIND "${${text_var}}" "${needle}" pos)
  if(pos EQUAL -1)
    message(SEND_ERROR "FAIL: ${what}: output lacks \"${needle}\"\n--- output:\n${${text_var}}")
    math(EXPR n "${FAILURES} + 1")
    set(FAILURES ${n} PARENT_SCOPE)
  endif()
endfunction()

# 1. Every shipped workflow is valid and summarised on one line.
file(GLOB_RECURSE SHIPPED ${SRC}/workflows/*.json)
list(FILTER SHIPPED EXCLUDE REGEX "schema\\.json$")
list(FILTER SHIPPED EXCLUDE REGEX "/workflows/kpis/")  # KPI definitions (docs/kpis.md), not workflows
list(LENGTH SHIPPED n_shipped)
if(n_shipped EQUAL 0)
  message(SEND_ERROR "FAIL: no workflows found under workflows/")
  math(EXPR FAILURES "${FAILURES} + 1")
endif()
foreach(wf ${SHIPPED})
  run(OUT RC validate ${wf})
  expect_rc("${RC}" 0 "validate ${wf}")
  expect_contains(OUT "ok: ${wf} (" "summary of ${wf}")
endforeach()
run(OUT RC validate ${SRC}/workflows/examples/resilient-http.json)
if(NOT OUT MATCHES "ok: [^\n]*resilient-http.json \\(resilient-http v1, [0-9]+ steps\\)")
  message(SEND_ERROR "FAIL: resilient-http summary line: ${OUT}")
  math(EXPR FAILURES "${FAILURES} + 1")
endif()

# 2. Every broken workflow: exit status and each expected diagnostic.
file(GLOB CASES LIST_DIRECTORIES true ${SRC}/tests/data/invalid/*)
set(n_cases 0)
foreach(dir ${CASES})
  if(NOT IS_DIRECTORY ${dir})
    continue()
  endif()
  math(EXPR n_cases "${n_cases} + 1")
  set(wf ${dir}/workflow.json)
  file(STRINGS ${dir}/expected.txt lines REGEX "^[a-z]+ [A-Z_]+ [0-9]+:[0-9]+$")
  set(want_rc 0)
  run(OUT RC validate ${wf})
  foreach(line ${lines})
    string(REGEX REPLACE "^([a-z]+) ([A-Z_]+) ([0-9]+:[0-9]+)$" "\\1;\\2;\\3" parts "${line}")
    list(GET parts 0 sev)
    list(GET parts 1 code)
    list(GET parts 2 pos)
    if(sev STREQUAL "error")
      set(want_rc 1)
    endif()
    expect_contains(OUT "${wf}:${pos}: ${sev} ${code}: " "case ${dir}")
  endforeach()
  expect_rc("${RC}" "${want_rc}" "case ${dir}")
  # and nothing more: one output line per diagnostic plus the summary line
  string(REGEX MATCHALL "\n" nl "${OUT}")
  list(LENGTH nl n_lines)
  list(LENGTH lines n_want)
  math(EXPR n_want "${n_want} + 1")
  if(NOT (n_lines EQUAL n_want))
    fail("case ${dir}: ${n_lines} output lines, want ${n_want}\n${OUT}")
  endif()
endforeach()
if(NOT (n_cases GREATER_EQUAL 20))
  fail("only ${n_cases} cases in tests/data/invalid")
endif()

# 3. --json: one array with every field, for several files at once.
run(OUT RC validate --json ${SRC}/tests/data/invalid/step_refs/workflow.json
    ${SRC}/workflows/examples/resilient-http.json)
expect_rc("${RC}" 1 "validate --json")
string(JSON n_items ERROR_VARIABLE jerr LENGTH "${OUT}")
if(NOT (NOT jerr))
  fail("--json output is not JSON: ${jerr}\n${OUT}")
endif()
if(NOT jerr)
  if(NOT (n_items EQUAL 5))
    fail("--json: ${n_items} items, want 5")
  endif()
  string(JSON code GET "${OUT}" 0 code)
  string(JSON line GET "${OUT}" 0 line)
  string(JSON col GET "${OUT}" 0 column)
  string(JSON path GET "${OUT}" 0 path)
  string(JSON sev GET "${OUT}" 0 severity)
  string(JSON file GET "${OUT}" 0 file)
  string(JSON msg GET "${OUT}" 0 message)
  if(NOT (code STREQUAL "STEP_NOT_BEFORE"))
    fail("--json code ${code}")
  endif()
  if(NOT (line EQUAL 5 AND col EQUAL 68))
    fail("--json position ${line}:${col}")
  endif()
  if(NOT (path STREQUAL "$.steps.check.params.expr"))
    fail("--json path ${path}")
  endif()
  if(NOT (sev STREQUAL "error"))
    fail("--json severity ${sev}")
  endif()
  if(NOT (file STREQUAL "${SRC}/tests/data/invalid/step_refs/workflow.json"))
    fail("--json file ${file}")
  endif()
  string(FIND "${msg}" "notify" at)
  if(NOT (at GREATER -1))
    fail("--json message ${msg}")
  endif()
endif()
# valid files under --json: an empty array, exit 0
run(OUT RC --json validate ${SRC}/workflows/examples/resilient-http.json)
expect_rc("${RC}" 0 "validate --json (valid)")
string(JSON n_items ERROR_VARIABLE jerr LENGTH "${OUT}")
if(NOT (NOT jerr AND n_items EQUAL 0))
  fail("--json on a valid file: ${OUT}")
endif()

# 4. Warnings alone pass, unless --strict.
set(tmp ${BUILD}/validate-it)
file(REMOVE_RECURSE ${tmp})
file(MAKE_DIRECTORY ${tmp})
file(WRITE ${tmp}/warn.json [=[{
  "name": "warn-only", "version": 2,
  "steps": {
    "check": {"type": "condition", "params": {"expr": "input.ok"}, "next": {"true": "done"}},
    "done": {"type": "log", "params": {"message": "done"}}
  }
}
]=])
run(OUT RC validate ${tmp}/warn.json)
expect_rc("${RC}" 0 "warnings only")
expect_contains(OUT "${tmp}/warn.json:4:76: warning UNHANDLED_OUTCOME: " "warnings only")
expect_contains(OUT "ok: ${tmp}/warn.json (warn-only v2, 2 steps, 1 warning)" "warnings only")
run(OUT RC validate --strict ${tmp}/warn.json)
expect_rc("${RC}" 1 "--strict with a warning")

# 5. Good and bad together: both reported, exit 1.
run(OUT RC validate ${SRC}/workflows/examples/resilient-http.json ${SRC}/tests/data/invalid/cycle/workflow.json)
expect_rc("${RC}" 1 "good + bad")
expect_contains(OUT "ok: ${SRC}/workflows/examples/resilient-http.json" "good + bad")
expect_contains(OUT "cycle: a -> b -> c -> a" "good + bad")
expect_contains(OUT "invalid: ${SRC}/tests/data/invalid/cycle/workflow.json: 2 errors" "good + bad")

# 6. Command line edge cases.
run(OUT RC validate ${tmp}/missing.json)
expect_rc("${RC}" 1 "missing file")
expect_contains(OUT "READ_ERROR" "missing file")
expect_contains(OUT "No such file or directory" "missing file")
run(OUT RC validate)
expect_rc("${RC}" 2 "no file")
run(OUT RC validate --bogus ${tmp}/warn.json)
expect_rc("${RC}" 2 "unknown option")
run(OUT RC validate --help)
expect_rc("${RC}" 0 "--help")
expect_contains(OUT "usage: assent validate" "--help")
file(WRITE ${tmp}/empty.json "")
run(OUT RC validate ${tmp}/empty.json)
expect_rc("${RC}" 1 "empty file")
expect_contains(OUT "${tmp}/empty.json:1:" "empty file")
expect_contains(OUT "JSON_SYNTAX" "empty file")

# 7. workflows/schema.json is a valid draft 2020-12 schema that accepts every
#    shipped workflow and refuses the broken cases a schema can express
#    (python3-jsonschema, installed by scripts/deps.sh test).
set(SCHEMA_BAD unknown_key wrong_type params input_spec names missing_field
    unknown_step_type outcomes retry_values bad_duration empty_workflow not_object)
set(bad_files "")
foreach(c ${SCHEMA_BAD})
  list(APPEND bad_files ${SRC}/tests/data/invalid/${c}/workflow.json)
endforeach()
string(REPLACE ";" "," bad_csv "${bad_files}")
string(REPLACE ";" "," good_csv "${SHIPPED};${tmp}/warn.json")
set(PY [=[
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
bad = 0
for f in sys.argv[2].split(","):
    errs = list(v.iter_errors(json.load(open(f))))
    if errs:
        print("schema refuses valid workflow", f, errs[0].message); bad += 1
for f in sys.argv[3].split(","):
    if not list(v.iter_errors(json.load(open(f)))):
        print("schema accepts broken workflow", f); bad += 1
print("schema checks:", bad, "problems")
sys.exit(1 if bad else 0)
]=])
execute_process(COMMAND /usr/bin/python3 -c "${PY}" ${SRC}/workflows/schema.json "${good_csv}" "${bad_csv}"
                RESULT_VARIABLE RC OUTPUT_VARIABLE OUT ERROR_VARIABLE ERR)
if(NOT RC EQUAL 0)
  fail("schema: ${OUT}${ERR}")
endif()

file(REMOVE_RECURSE ${tmp})
if(FAILURES GREATER 0)
  message(FATAL_ERROR "${FAILURES} check(s) failed")
endif()
message(STATUS "validate: ${n_shipped} shipped workflows valid, ${n_cases} broken cases as expected")
