#!/usr/bin/env bash
# Runs every test: installs the pinned tools, starts the emulators on
# loopback, runs `go test` with the integration tag (unit tests included),
# and stops the emulators by PID whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh

dyn_port=${ANONWATCH_DYNALITE_PORT:-4567}
sns_port=${ANONWATCH_GOAWS_PORT:-4100}
kin_port=${ANONWATCH_KINESALITE_PORT:-4568}
cleanup() {
  scripts/dynalite.sh stop >/dev/null 2>&1 || true
  scripts/kinesalite.sh stop >/dev/null 2>&1 || true
  if [[ -x scripts/goaws.sh ]]; then scripts/goaws.sh stop >/dev/null 2>&1 || true; fi
  scripts/moto.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/dynalite.sh start "$dyn_port" >/dev/null
export ANONWATCH_TEST_DYNAMODB="http://127.0.0.1:$dyn_port"
scripts/kinesalite.sh start "$kin_port" >/dev/null
export ANONWATCH_TEST_KINESIS="http://127.0.0.1:$kin_port"
if [[ -x scripts/goaws.sh ]]; then
  scripts/goaws.sh start "$sns_port" >/dev/null
  export ANONWATCH_TEST_SNS="http://127.0.0.1:$sns_port"
fi
# moto comes with the machine image, not from a registry: without it the
# tests that read history from CloudWatch Logs and S3 skip, saying why.
if scripts/moto.sh check; then
  scripts/moto.sh start "${ANONWATCH_MOTO_PORT:-4600}" >/dev/null
  export ANONWATCH_TEST_MOTO="http://127.0.0.1:${ANONWATCH_MOTO_PORT:-4600}"
fi
export ANONWATCH_BIN="$PWD/.bin"

go test -race -count=1 -tags integration "$@" ./...
