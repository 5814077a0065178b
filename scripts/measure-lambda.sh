#!/usr/bin/env bash
# measure-lambda.sh measures the detector Lambda as deployed: the size of the
# arm64 bootstrap, and, through the Lambda Runtime Interface Emulator with
# dynalite and goaws, init duration, first- and warm-invoke latency and the
# bootstrap's peak memory, each a median over COUNT cold starts (default 10).
# See BenchmarkInvoke and BenchmarkPeakRSS in internal/e2e.
#
#   scripts/measure-lambda.sh
#   COUNT=20 scripts/measure-lambda.sh
#
# It starts dynalite and goaws unless they already run, and stops only what
# it started.
set -euo pipefail
cd "$(dirname "$0")/.."

count="${COUNT:-10}"
dyn_port="${ANONWATCH_DYNALITE_PORT:-4567}"
sns_port="${ANONWATCH_GOAWS_PORT:-4100}"

scripts/tools.sh

started=()
cleanup() {
	local s
	for s in "${started[@]}"; do scripts/"$s".sh stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# running reports whether a scripts/<name>.sh server is already up.
running() {
	[[ -f ".run/$1.pid" ]] && kill -0 "$(cat ".run/$1.pid")" 2>/dev/null
}
running dynalite || started+=(dynalite)
running goaws || started+=(goaws)
dyn_url="$(scripts/dynalite.sh start "$dyn_port")"
sns_url="$(scripts/goaws.sh start "$sns_port")"

tmp="$(mktemp -d)"
trap 'cleanup; rm -rf "$tmp"' EXIT
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' \
	-o "$tmp/bootstrap" ./functions/detector
echo "arm64 bootstrap (-tags lambda.norpc -trimpath -ldflags='-s -w'): $(stat -c %s "$tmp/bootstrap") bytes"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

ANONWATCH_TEST_DYNAMODB="$dyn_url" ANONWATCH_TEST_SNS="$sns_url" ANONWATCH_BIN="$PWD/.bin" \
	go test -count=1 -tags integration -run '^$' -bench . -benchtime "${count}x" ./internal/e2e/
