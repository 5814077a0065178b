#!/usr/bin/env bash
# Runs the reliability drills (internal/drills, docs/reliability.md): the
# real detector bootstrap under the Lambda Runtime Interface Emulator against
# dynalite and goaws, with faults injected between them. The drills start
# their own emulators on free loopback ports and stop them by PID, so they
# can run beside `make test` or a `make local` session.
#
#   scripts/drills.sh                                  # all drills
#   scripts/drills.sh -run TestFaultMatrix -v          # go test flags
#   scripts/drills.sh -run TestFaultMatrix -v -args -faults stall,restart
#   scripts/drills.sh -run TestFaultMatrix -args -update   # rewrite the matrix in docs/reliability.md
#
# They take about two minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh
export ANONWATCH_BIN="$PWD/.bin"
exec go test -race -count=1 -timeout 15m -tags integration ./internal/drills/ "$@"
