#!/usr/bin/env bash
# Build Assent and run every test, in phases: a normal build and its tests,
# its unit tests under valgrind, an ASan+UBSan build and its tests, and the
# fuzz targets (tests/fuzz/, clang + libFuzzer) for a short bounded time
# each.  Installs missing Debian packages first.
#
# Every phase runs even when an earlier one failed (a phase that needs a
# failed build is reported as skipped); the failures are listed at the end
# and the exit status is 1 if there was any.
#
# Test TIMEOUTs are hang guards sized for an idle machine.  They are scaled
# (ASSENT_TEST_TIMEOUT_SCALE, tests/timeout_scale.cmake) so that a loaded
# machine does not trip them: by 3 by default, by 10 under valgrind.
# ASSENT_FUZZ_SECONDS sets the time per fuzz target (default 15).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test || { echo "test.sh: installing packages failed" >&2; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
scale=${ASSENT_TEST_TIMEOUT_SCALE:-3}
valgrind_scale=${ASSENT_VALGRIND_TIMEOUT_SCALE:-10}
fuzz_seconds=${ASSENT_FUZZ_SECONDS:-15}
started=$(date +%s)
failed=()
report=()

# phase NAME COMMAND...: run a phase, record its outcome and duration.
phase() {
  local name=$1 t0 rc
  shift
  echo "== $name =="
  t0=$(date +%s)
  "$@"
  rc=$?
  if [ $rc -eq 0 ]; then
    report+=("ok      $name ($(($(date +%s) - t0)) s)")
  else
    report+=("FAILED  $name ($(($(date +%s) - t0)) s)")
    failed+=("$name")
  fi
  return $rc
}

skip() {
  echo "== $1: skipped ($2) =="
  report+=("skipped $1 ($2)")
  failed+=("$1 (skipped)")
}

build() { # DIR cmake-args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -DBUILD_TESTING=ON "$@" >/dev/null && cmake --build "$dir" -j"$jobs"
}

tests() { # DIR SCALE
  (cd "$1" && ASSENT_TEST_TIMEOUT_SCALE=$2 ctest --output-on-failure -j"$jobs" --timeout 900)
}

valgrind_tests() {
  local rc=0
  (cd build && ASSENT_TEST_TIMEOUT_SCALE=$valgrind_scale \
     ctest -T memcheck -L unit --output-on-failure -j"$jobs" --timeout 3000 >memcheck.log 2>&1) ||
    { tail -50 build/memcheck.log; rc=1; }
  if grep -q "Defects:" build/memcheck.log; then
    grep -A20 "Defects:" build/memcheck.log
    echo "valgrind found defects" >&2
    rc=1
  fi
  tail -3 build/memcheck.log
  return $rc
}

fuzz_build() {
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASSENT_FUZZ=ON \
    -DBUILD_TESTING=OFF >/dev/null && cmake --build build-fuzz -j"$jobs" --target fuzz
}

if phase "build (RelWithDebInfo, -Werror)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  phase "tests" tests build "$scale"
  phase "unit tests under valgrind" valgrind_tests
else
  skip "tests" "build failed"
  skip "unit tests under valgrind" "build failed"
fi

if phase "build with ASan+UBSan" build build-asan -DCMAKE_BUILD_TYPE=Debug -DASSENT_SANITIZE=ON; then
  phase "tests under ASan+UBSan" tests build-asan "$scale"
else
  skip "tests under ASan+UBSan" "build failed"
fi

if phase "fuzz targets build (clang, libFuzzer, ASan+UBSan)" fuzz_build; then
  phase "fuzz targets, ${fuzz_seconds} s each" scripts/fuzz.sh --all "$fuzz_seconds" build-fuzz
else
  skip "fuzz targets" "build failed"
fi

echo
echo "== summary ($(($(date +%s) - started)) s) =="
printf '%s\n' "${report[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: ${#failed[@]} phase(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all phases passed"
