#!/usr/bin/env bash
# Runs every fuzz target in the module, one at a time, for DURATION each
# (default 30s; any `go test -fuzztime` value, such as 1m or 5000x).
# Inputs that fail are written to the package's testdata/fuzz/<Target>/, as
# go test does, so that plain `go test` replays them from then on. Exits
# non-zero if any target fails. Not run in CI: it is slow by design.
#
#   scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-30s}
if [[ $# -gt 1 || ! $duration =~ ^[0-9]+(ns|us|µs|ms|s|m|h|x)$ && ! $duration =~ ^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$ ]]; then
  echo "usage: scripts/fuzz.sh [DURATION]   (e.g. 30s, 2m, 10000x)" >&2
  exit 2
fi

# Each package's fuzz targets, as "package target" lines. go test -list
# prints the matching names, then "ok <package> ..." for each package.
list=$(go test -list '^Fuzz' ./... 2>&1) || { echo "$list" >&2; exit 1; }
targets=$(awk '
  /^Fuzz/ { names[++n] = $1; next }
  /^ok / { for (i = 1; i <= n; i++) print $2, names[i]; n = 0 }
' <<<"$list")
if [[ -z $targets ]]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

failed=()
count=0
while read -r pkg target; do
  count=$((count + 1))
  echo "fuzz: $pkg $target for $duration" >&2
  # -run keeps the package's other tests out; ^...$ keeps a target from
  # matching another whose name it prefixes. -parallel is go's default.
  if ! go test -run "^${target}\$" -fuzz "^${target}\$" -fuzztime "$duration" "$pkg"; then
    failed+=("$pkg $target")
  fi
done <<<"$targets"

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: ${#failed[@]} of $count targets failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  echo "fuzz: the failing inputs are under the packages' testdata/fuzz/; go test replays them" >&2
  exit 1
fi
echo "fuzz: all $count targets ran for $duration without a failure" >&2
