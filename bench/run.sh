#!/usr/bin/env bash
# bench/run.sh - build Assent in release mode and run the benchmarks
# (bench/README.md): raw SQLite commit rate, engine throughput at
# synchronous=NORMAL and FULL, and the memory of runs parked in a wait.
#
#   bench/run.sh [BUILD_DIR]
#
# Environment: BENCH_DIR (databases; default var/bench, on the disk Assent
# uses), BENCH_RUNS (default 10000), BENCH_WORKERS (2), BENCH_WAITING
# (runs parked for the memory check; default 200000, 0 skips it),
# BENCH_SECONDS / BENCH_REPEAT (bench_sqlite: 2 s x 3), BENCH_APPROVALS /
# BENCH_CONNS (bench_decisions: 2000 approvals over 64 connections),
# BENCH_HOLD / BENCH_HOLD_WORKERS (bench_decisions --hold: 20000 approvals
# created by 16 workers and held; 1000000 for the full check; 0 skips it).
# Not part of ctest: the figures depend on the machine and its load.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-bench}"
dir="${BENCH_DIR:-$root/var/bench}"
runs="${BENCH_RUNS:-10000}"
workers="${BENCH_WORKERS:-2}"
waiting="${BENCH_WAITING:-200000}"
seconds="${BENCH_SECONDS:-2}"
repeat="${BENCH_REPEAT:-3}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target bench_sqlite bench_engine bench_decisions assent >/dev/null
mkdir -p "$dir"

echo "== machine: $(nproc) cores, $(uname -sr), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "== raw SQLite (bench_sqlite)"
raw_json="$("$build/bench/bench_sqlite" --dir "$dir" --seconds "$seconds" --repeat "$repeat" --json)"
echo "$raw_json"
raw_normal="$(printf '%s' "$raw_json" | sed -n 's/.*"normal_single_rows_per_s": \([0-9]*\).*/\1/p')"
[ -n "$raw_normal" ] || { echo "bench/run.sh: no NORMAL rate from bench_sqlite" >&2; exit 1; }

for sync in NORMAL FULL; do
  echo "== engine, synchronous=$sync (bench_engine)"
  "$build/bench/bench_engine" --dir "$dir" --sync "$sync" --runs "$runs" --workers "$workers" \
    --raw "$raw_normal"
done

if [ "$waiting" -gt 0 ]; then
  echo "== waiting runs (bench_engine --waiting $waiting)"
  "$build/bench/bench_engine" --dir "$dir" --sync NORMAL --workers "$workers" --batch 2000 \
    --waiting "$waiting"
fi

echo "== approval decisions: assent serve against a bare server (bench_decisions)"
for trial in 1 2 3; do
  "$build/bench/bench_decisions" --dir "$dir" --approvals "${BENCH_APPROVALS:-2000}" \
    --conns "${BENCH_CONNS:-64}" --json
done

hold="${BENCH_HOLD:-20000}"
if [ "$hold" -gt 0 ]; then
  echo "== waiting approvals created and held by assent serve (bench_decisions --hold $hold)"
  "$build/bench/bench_decisions" --dir "$dir" --approvals "$hold" \
    --workers "${BENCH_HOLD_WORKERS:-16}" --hold --json
fi
