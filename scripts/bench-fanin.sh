#!/usr/bin/env bash
# The fan-in load generator (internal/perf, BenchmarkFanin; docs/scale.md):
# N simulated busy clusters in four accounts, one address scanning them
# all, their deliveries as Kinesis records through the real handler
# against a dynalite the benchmark starts on a free port. Prints, per N,
# throughput, DynamoDB calls and capacity per record, latency per
# invocation and the hottest partition keys.
#
#   CLUSTERS=1,10,50 RECORDS=600 BATCH=100 LANES=1 DELAY=0 scripts/bench-fanin.sh
#
# dynalite comes from make tools (tools/node), or ANONWATCH_DYNALITE_CLI.
# Each N takes under a minute on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANONWATCH_FANIN_CLUSTERS=${CLUSTERS:-1,10,50}
export ANONWATCH_FANIN_RECORDS=${RECORDS:-600}
export ANONWATCH_FANIN_BATCH=${BATCH:-100}
export ANONWATCH_FANIN_LANES=${LANES:-1}
export ANONWATCH_FANIN_DELAY=${DELAY:-0s}
echo "machine: $(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3); $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -tags integration -run '^$' -bench '^BenchmarkFanin$' -benchtime 1x -timeout 30m ./internal/perf/
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
