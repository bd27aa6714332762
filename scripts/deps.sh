#!/usr/bin/env bash
# Install the Debian 12 packages Assent needs, only those that are missing.
#   scripts/deps.sh build   - to build and run
#   scripts/deps.sh test    - also what the tests use (cmocka, SMTP server, Chromium, valgrind,
#                             clang with libFuzzer for the fuzz targets, a PostgreSQL 15
#                             server for the tests of the PostgreSQL store)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libcurl4-openssl-dev libjansson-dev
            libmicrohttpd-dev libsqlite3-dev libpq-dev libesmtp-dev libssl-dev libcsv-dev sqlite3)
test_pkgs=(libcmocka-dev python3-aiosmtpd valgrind chromium chromium-driver python3-selenium
           curl procps python3-jsonschema openssl clang libclang-rt-14-dev
           postgresql-15 util-linux)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
