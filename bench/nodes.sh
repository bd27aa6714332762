#!/usr/bin/env bash
# Several nodes on one PostgreSQL database: bench_engine --nodes K for K = 1,
# 2, 3, each on a fresh database of one private durable server (fsync and
# synchronous_commit on).  Prints one line per run.
#   bench/nodes.sh [BUILD_DIR] [RUNS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
runs=${2:-5000}
rounds=${3:-3}
state=$(mktemp -d)
trap 'scripts/pg.sh stop "$state" >/dev/null 2>&1 || true' EXIT
uri=$(scripts/pg.sh start "$state" --durable)
export PGPASSFILE=$state/pgpass
for r in $(seq 1 "$rounds"); do
  for k in 1 2 3; do
    db="nodes_${r}_${k}"
    psql -q "$uri" -c "CREATE DATABASE $db" >/dev/null
    "$build/bench/bench_engine" --db "${uri%/*}/$db" --runs "$runs" --nodes "$k" --workers 2
  done
done
