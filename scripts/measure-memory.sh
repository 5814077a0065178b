#!/usr/bin/env bash
# measure-memory.sh measures the detector's memory on the largest
# subscription deliveries (internal/perf): first in process, each delivery
# in a fresh process (Go heap and peak RSS, through decode+aggregate and
# through the whole handler with in-memory state), then the real bootstrap
# under the Lambda Runtime Interface Emulator against a dynalite and a
# goaws the test starts on free ports of its own (peak RSS).
#
#   scripts/measure-memory.sh
#
# docs/performance.md records and explains the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -count=1 -run '^TestMemoryEnvelope$' -v ./internal/perf/
ANONWATCH_BIN="$PWD/.bin" go test -count=1 -timeout 30m -tags integration -run '^TestBootstrapPeakRSS$' -v ./internal/perf/
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
