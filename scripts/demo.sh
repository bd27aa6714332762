#!/usr/bin/env bash
# Build Assent and run the demo: a generated tenant in the simulator, a sync,
# the legacy-protocol KPI, one workflow run per user found, email to the
# file outbox, approval pages on http://127.0.0.1:8080/, and the admin console
# on http://127.0.0.1:8080/console/ (the demo prints a ready admin token).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
# Only what the demo runs: the tests (and their packages) are test.sh's.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target assent assent-tenant-sim
exec build/assent demo "$@"
