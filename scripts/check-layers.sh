#!/usr/bin/env bash
# Fail when a layer includes a layer above it, or when SQLite leaks out of
# its implementation (docs/architecture.md).  Run by ctest as lint.layers.
# The build enforces the first rule too (each layer compiles against a view
# of the folders below it); this names every offence at once.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
layers=(base db engine steps m365 approvals web cli)
bad=0
for i in "${!layers[@]}"; do
  low=${layers[$i]}
  for high in "${layers[@]:$((i + 1))}"; do
    if hits=$(git ls-files -- "$low/*.c" "$low/*.h" | xargs -r grep -nE "^#include \"$high/" ); then
      echo "$low/ includes $high/ (a layer above it):"
      echo "$hits"
      bad=1
    fi
  done
done
# The simulator links only base/.
if hits=$(git ls-files -- 'sim/*.c' 'sim/*.h' | xargs -r grep -nE '^#include "(db|engine|steps|m365|approvals|web|cli)/'); then
  echo "sim/ includes more than base/:"
  echo "$hits"
  bad=1
fi
# <sqlite3.h> and sqlite3_ types only in the SQLite store's private headers.
if hits=$(git ls-files -- '*.h' | grep -v '^db/sqlite/' | xargs -r grep -nE 'sqlite3'); then
  echo "SQLite named in a header outside db/sqlite/:"
  echo "$hits"
  bad=1
fi
[ $bad -eq 0 ] && echo "layers: no upward include; SQLite only behind db/"
exit $bad
