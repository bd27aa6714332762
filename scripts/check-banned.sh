#!/usr/bin/env bash
# Fail when C sources use functions the style guide bans (unbounded string
# functions and friends).  Run by ctest as lint.banned_functions.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
pattern='\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\('
if hits=$(git ls-files -- '*.c' '*.h' 2>/dev/null | xargs -r grep -nE "$pattern" | grep -vE '^\S+:[0-9]+:\s*(/?\*|//)'); then
  if [ -n "$hits" ]; then
    echo "banned functions (use snprintf, explicit lengths, strtol):"
    echo "$hits"
    exit 1
  fi
fi
echo "no banned functions"
