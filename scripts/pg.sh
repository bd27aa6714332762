#!/usr/bin/env bash
# A private PostgreSQL server for Assent's tests and benchmarks: its own
# cluster in a temporary directory (initdb), listening on 127.0.0.1 on a
# random free port, with a database `assent` owned by a role `assent` that is
# not a superuser (it has CREATEDB so that each test can make a database of
# its own; Assent itself needs only to own its database).  The role is also
# in pg_signal_backend: a test's DROP DATABASE ... WITH (FORCE) must be able
# to end an autovacuum worker that happens to be in that database, which
# PostgreSQL 15 refuses to a role without it ("must be a member of the role
# whose process is being terminated").  Run as root, the
# server runs as the unprivileged user `nobody` (PostgreSQL refuses root).
#
#   scripts/pg.sh start STATE_DIR [--durable]
#       start a server and print its URI; STATE_DIR receives
#         uri      postgresql://assent@127.0.0.1:PORT/assent
#         pgpass   the role's password in libpq's password file format (0600):
#                  point PGPASSFILE at it (the password is never on a command line)
#         datadir  where the cluster lives (removed by stop)
#       A server left running in STATE_DIR by an interrupted run is stopped
#       first.  On failure STATE_DIR/error says why and the exit status is 1.
#   scripts/pg.sh stop STATE_DIR
#       stop that server and remove its cluster and STATE_DIR.
#   scripts/pg.sh run [--durable] -- COMMAND [ARG...]
#       start a server in a temporary STATE_DIR, run COMMAND with
#       ASSENT_TEST_PG_URI and PGPASSFILE set, stop it; exits with COMMAND's status.
#
# Tests need no durability, so the server runs with fsync=off unless
# --durable is given (benchmarks: fsync on, synchronous_commit on).
# PG_BINDIR overrides where initdb, pg_ctl and psql are looked for.
set -euo pipefail

die() {
  echo "pg.sh: $*" >&2
  if [ -n "${state:-}" ] && [ -d "$state" ]; then
    printf '%s\n' "$*" >"$state/error"
  fi
  exit 1
}

find_bindir() {
  local d
  for d in "${PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" \
           $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/psql" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# as_server CMD...: run CMD as the user that owns the cluster.
as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

stop_server() { # STATE_DIR
  local st=$1 data bindir
  [ -f "$st/datadir" ] || return 0
  data=$(cat "$st/datadir")
  bindir=$(find_bindir) || bindir=""
  if [ -n "$bindir" ] && [ -f "$data/db/postmaster.pid" ]; then
    as_server "$bindir/pg_ctl" -D "$data/db" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      as_server "$bindir/pg_ctl" -D "$data/db" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  case "$data" in
    */assent-pg.*) rm -rf "$data" ;;
  esac
  rm -f "$st/datadir"
}

start() { # STATE_DIR [--durable]
  state=$1
  local durable=${2:-}
  mkdir -p "$state"
  stop_server "$state"
  rm -f "$state/uri" "$state/pgpass" "$state/error"

  local bindir
  bindir=$(find_bindir) ||
    die "PostgreSQL server binaries (initdb, pg_ctl, psql) not found: install Debian's postgresql-15 (scripts/deps.sh test; scripts/test.sh does it)"
  [ "$(id -u)" -ne 0 ] || command -v runuser >/dev/null ||
    die "running as root needs runuser (util-linux) to start PostgreSQL as nobody"

  local data
  data=$(mktemp -d "${TMPDIR:-/tmp}/assent-pg.XXXXXX")
  echo "$data" >"$state/datadir"
  if [ "$(id -u)" -eq 0 ]; then
    chown nobody "$data"
  fi
  chmod 700 "$data"

  # The local socket lives in the cluster's own 0700 folder, so trusting it
  # trusts only the server's user; TCP needs the password (SCRAM).
  as_server "$bindir/initdb" -D "$data/db" -U assent_admin -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$data/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -5 "$data/initdb.log" | tr '\n' ' ')"

  local fsync="-c fsync=off -c full_page_writes=off"
  [ "$durable" = "--durable" ] && fsync="-c fsync=on -c synchronous_commit=on"
  local port="" try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if as_server "$bindir/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
         -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data \
             -c max_connections=300 $fsync" start >/dev/null 2>&1; then
      break
    fi
    # Another program may have taken the port: try another one.
    grep -q "could not bind\|Address already in use" "$data/server.log" 2>/dev/null ||
      die "PostgreSQL did not start: $(tail -5 "$data/server.log" 2>/dev/null | tr '\n' ' ')"
    port=""
  done
  [ -n "$port" ] || die "PostgreSQL found no free port on 127.0.0.1"

  local password
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  as_server "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U assent_admin \
    -d postgres >"$data/psql.log" 2>&1 <<SQL ||
CREATE ROLE assent LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD '$password';
GRANT pg_signal_backend TO assent;
CREATE DATABASE assent OWNER assent;
SQL
    die "creating the role and database failed: $(tail -5 "$data/psql.log" | tr '\n' ' ')"

  (umask 077 && printf '127.0.0.1:%s:*:assent:%s\n' "$port" "$password" >"$state/pgpass")
  printf 'postgresql://assent@127.0.0.1:%s/assent\n' "$port" >"$state/uri"
  cat "$state/uri"
}

stop() { # STATE_DIR
  local st=$1
  stop_server "$st"
  rm -f "$st/uri" "$st/pgpass" "$st/error"
  rmdir "$st" 2>/dev/null || true
}

run() { # [--durable] -- COMMAND...
  local durable=""
  if [ "${1:-}" = "--durable" ]; then
    durable=--durable
    shift
  fi
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "run: no command"
  local rc=0
  run_state=$(mktemp -d "${TMPDIR:-/tmp}/assent-pg-state.XXXXXX")
  trap 'stop "$run_state"' EXIT
  start "$run_state" $durable >/dev/null
  ASSENT_TEST_PG_URI=$(cat "$run_state/uri") PGPASSFILE="$run_state/pgpass" "$@" || rc=$?
  return $rc
}

case "${1:-}" in
  start) [ $# -ge 2 ] || die "usage: pg.sh start STATE_DIR [--durable]"; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || die "usage: pg.sh stop STATE_DIR"; stop "$2" ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/pg.sh start STATE_DIR [--durable] | stop STATE_DIR | run [--durable] -- COMMAND..." >&2; exit 2 ;;
esac
