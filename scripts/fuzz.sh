#!/usr/bin/env bash
# Run Assent's libFuzzer targets (tests/fuzz/fuzz_<name>.c).
#
#   scripts/fuzz.sh TARGET SECONDS [BUILD_DIR]   one target, e.g. "mime" or "fuzz_mime"
#   scripts/fuzz.sh --all SECONDS [BUILD_DIR]    every target, one after the other
#   scripts/fuzz.sh --list [BUILD_DIR]
#
# BUILD_DIR (default build-fuzz) is configured and built here when it holds
# no targets yet: CC=clang cmake -DASSENT_FUZZ=ON.  Each run starts from the
# seed corpus tests/fuzz/corpus/<name>/ (which also holds the regression
# inputs: every crasher once fixed is added there, so each run replays it
# first) and grows a working corpus in BUILD_DIR/corpus/<name>/, which
# persists between runs.  A crasher is written to BUILD_DIR/crashes/<name>/;
# the script then fails and says how to reproduce it.  The last line per
# target reports executions and coverage (libFuzzer's cov: edges, ft:
# features).  Exit status: 0 when no target found anything.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
if [ "$1" = --list ]; then
  ls tests/fuzz/fuzz_*.c | sed 's/.*fuzz_\(.*\)\.c/\1/'
  exit 0
fi
[ $# -ge 2 ] || usage
what=$1 seconds=$2 dir=${3:-build-fuzz}
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number" >&2; exit 2 ;; esac

if [ "$what" = --all ]; then
  targets=$(ls tests/fuzz/fuzz_*.c | sed 's/.*fuzz_\(.*\)\.c/\1/')
else
  targets=${what#fuzz_}
  [ -f "tests/fuzz/fuzz_$targets.c" ] || { echo "fuzz.sh: no target tests/fuzz/fuzz_$targets.c" >&2; exit 2; }
fi

need_build=0
for t in $targets; do [ -x "$dir/tests/fuzz/fuzz_$t" ] || need_build=1; done
if [ $need_build = 1 ]; then
  command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (scripts/deps.sh test installs it)" >&2; exit 1; }
  CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASSENT_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null &&
    cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)" --target fuzz || exit 1
fi

failed=()
summary=()
for t in $targets; do
  bin="$dir/tests/fuzz/fuzz_$t"
  work="$dir/corpus/$t" crashes="$dir/crashes/$t"
  mkdir -p "$work" "$crashes"
  log="$dir/fuzz_$t.log"
  seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds=("tests/fuzz/corpus/$t")
  echo "-- fuzz_$t: ${seconds} s"
  # Leaks are findings too; a slow input (-timeout, seconds) or a large
  # allocation (-rss_limit_mb, -malloc_limit_mb) is reported as a crasher.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" "$work" "${seeds[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
  line=$(printf 'fuzz_%-10s %10s execs  cov %6s  ft %6s  corpus %s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|fuzz invariant|Test unit written' "$log" | head -20
    line="$line  FAILED (log: $log)"
    failed+=("$t")
    echo "fuzz.sh: reproduce with: $bin $crashes/<file>; once fixed, add the input to tests/fuzz/corpus/$t/" >&2
  fi
  echo "$line"
  summary+=("$line")
done

echo "== fuzz summary =="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
