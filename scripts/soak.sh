#!/usr/bin/env bash
# The event-time property test at length (docs/semantics.md): the detector
# over memstate and over dynalite, against the one-event-at-a-time oracle,
# with a random seed unless SOAK_SEED is set. The seed is printed; a failure
# replays with SOAK_SEED=<seed>.
#
#   make soak                                   # 50,000 cases in memory, 600 on dynalite
#   SOAK_CASES=200000 SOAK_DYNAMO_CASES=2000 make soak
#   SOAK_SEED=1796514154931744410 make soak     # replay a failure
set -euo pipefail
cd "$(dirname "$0")/.."

seed=${SOAK_SEED:-random}
if [[ $seed == random ]]; then seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' '); fi
echo "soak: seed $seed"

scripts/tools.sh
port=${ANONWATCH_DYNALITE_PORT:-4567}
trap 'scripts/dynalite.sh stop >/dev/null 2>&1 || true' EXIT
scripts/dynalite.sh start "$port" >/dev/null
export ANONWATCH_TEST_DYNAMODB="http://127.0.0.1:$port"
export ANONWATCH_PROPERTY_SEED=$seed

ANONWATCH_PROPERTY_CASES=${SOAK_CASES:-50000} \
  go test -count=1 -timeout 60m -run '^TestProperty$' -v ./internal/memstate/ | grep -v '^=== '
ANONWATCH_PROPERTY_CASES=${SOAK_DYNAMO_CASES:-600} \
  go test -count=1 -timeout 60m -tags integration -run '^TestProperty$' -v ./internal/dynamostate/ | grep -v '^=== '
