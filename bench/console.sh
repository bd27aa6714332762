#!/usr/bin/env bash
# bench/console.sh - render times of the admin console over a big tenant.
#
#   bench/console.sh [BUILD_DIR] [USERS]      (defaults: build, 100000)
#
# Generates a tenant of USERS users with the simulator (seed 7), syncs it
# into a fresh database with `assent sync`, creates the legacy-enabled KPI
# and evaluates it, makes an admin token, starts `assent serve`, signs in to
# the console and times each page with curl (REPEAT times; the median and
# the slowest): the users report's first page (100 rows), a page in the
# middle and the last page (by the offset cursor of the API and by the
# console's keyset cursor), 1000 rows, a filter,
# the whole CSV, the overview.  Everything lives in BENCH_DIR (default
# var/bench/console) and is removed at the end unless BENCH_KEEP=1.
# Not a test: the figures depend on the machine and its load.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
USERS=${2:-100000}
REPEAT=${REPEAT:-5}
DIR=${BENCH_DIR:-var/bench/console}
ASSENT=$(realpath "$BUILD/assent")
SIM=$(realpath "$BUILD/sim/assent-tenant-sim")
mkdir -p "$DIR"
chmod 700 "$DIR"
DIR=$(realpath "$DIR")
rm -f "$DIR"/assent.db* "$DIR"/tenant.json "$DIR"/sim.port
printf 'bench~%s' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$DIR/secret"
chmod 600 "$DIR/secret"

SIM_PID=
SERVE_PID=
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT

t0=$(date +%s.%N)
"$SIM" generate --users "$USERS" --seed 7 --out "$DIR/tenant.json" --app-secret-file "$DIR/secret" \
  > "$DIR/generate.json"
TENANT=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["tenant_id"])' "$DIR/generate.json")
CLIENT=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["client_id"])' "$DIR/generate.json")
"$SIM" --listen 127.0.0.1:0 --state "$DIR/tenant.json" --port-file "$DIR/sim.port" > "$DIR/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 600); do [ -s "$DIR/sim.port" ] && break; sleep 0.1; done
SIM_URL="http://127.0.0.1:$(cat "$DIR/sim.port")"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ASSENT_DB="$DIR/assent.db" ASSENT_LOGIN_URL="$SIM_URL" ASSENT_GRAPH_URL="$SIM_URL" \
  ASSENT_EXCHANGE_URL="$SIM_URL" ASSENT_TENANT_ID="$TENANT" ASSENT_CLIENT_ID="$CLIENT" \
  ASSENT_CLIENT_SECRET_FILE="$DIR/secret" ASSENT_LISTEN="127.0.0.1:$PORT" \
  ASSENT_PUBLIC_URL="http://127.0.0.1:$PORT" ASSENT_MAIL_TRANSPORT=file \
  ASSENT_MAIL_DIR="$DIR/mail" ASSENT_SCHEDULER=false ASSENT_LOG_LEVEL=warn
"$ASSENT" sync > "$DIR/sync.log"
t1=$(date +%s.%N)
"$ASSENT" kpi create --from workflows/kpis/legacy-enabled.json > /dev/null
"$ASSENT" kpi eval legacy-enabled > /dev/null
TOKEN=$("$ASSENT" token create --name bench --role admin 2>/dev/null)
"$ASSENT" serve > "$DIR/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
printf 'set-up: %d users generated, served and synced in %.0f s\n' "$USERS" "$(echo "$t1 - $t0" | bc)"

U="http://127.0.0.1:$PORT/console"
JAR="$DIR/cookies"
curl -s -c "$JAR" -b "$JAR" "$U/login" -o "$DIR/login.html"
CSRF=$(grep -o 'name="csrf" value="[^"]*"' "$DIR/login.html" | head -1 | sed 's/.*value="//;s/"//')
curl -s -c "$JAR" -b "$JAR" -o /dev/null "$U/login" --data-urlencode "csrf=$CSRF" \
  --data-urlencode "token=$TOKEN"

measure() { # NAME PATH
  local times=()
  for _ in $(seq "$REPEAT"); do
    times+=("$(curl -s -b "$JAR" -o "$DIR/page" -w '%{http_code} %{time_total} %{size_download}' "$U/$2")")
  done
  printf '%s\n' "${times[@]}" | python3 -c '
import sys
name = sys.argv[1]
rows = [l.split() for l in sys.stdin if l.strip()]
codes = ",".join(sorted({r[0] for r in rows}))
t = sorted(float(r[1]) * 1000 for r in rows)
print(f"{name:<34} {t[len(t) // 2]:8.0f} ms median {t[-1]:8.0f} ms max "
      f"{int(rows[-1][2]) / 1024:9.0f} KiB  HTTP {codes}")' "$1"
}
LAST=$((USERS - 100))
MID=$((USERS / 2))
# The keyset cursors of the same pages: the UPN of the row before each.
curl -s -b "$JAR" "$U/users.csv" | tail -n +2 | cut -d, -f1 | tr -d '"' > "$DIR/upns"
AFTER_MID=$(sed -n "${MID}p" "$DIR/upns")
AFTER_LAST=$(sed -n "${LAST}p" "$DIR/upns")
measure "users, first page (100 rows)" "users"
measure "users, page at $MID" "users?cursor=$MID"
measure "users, last page (at $LAST)" "users?cursor=$LAST"
measure "users, page at $MID (keyset)" "users?after=$AFTER_MID"
measure "users, last page (keyset)" "users?after=$AFTER_LAST"
measure "users, 1000 rows" "users?limit=1000"
measure "users, filter pop_enabled" "users?where=pop_enabled"
measure "users, filter, sort by last sign-in" "users?where=pop_enabled&sort=last_legacy_signin,desc"
measure "users.csv (every user)" "users.csv"
measure "overview" "overview"
measure "KPIs" "kpis"
