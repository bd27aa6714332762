#!/usr/bin/env bash
# Build Assent and run every test: a normal build (with valgrind on the unit
# tests) and an ASan+UBSan build.  Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo, -Werror) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests =="
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

echo "== unit tests under valgrind =="
(cd build && ctest -T memcheck -L unit --output-on-failure -j"$jobs" --timeout 1800 >memcheck.log 2>&1) ||
  { tail -50 build/memcheck.log; exit 1; }
if grep -q "Defects:" build/memcheck.log; then
  grep -A20 "Defects:" build/memcheck.log; echo "valgrind found defects" >&2; exit 1
fi
tail -3 build/memcheck.log

echo "== build with ASan+UBSan =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DASSENT_SANITIZE=ON -DBUILD_TESTING=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan+UBSan =="
(cd build-asan && ctest --output-on-failure -j"$jobs" --timeout 1800)
