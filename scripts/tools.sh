#!/usr/bin/env bash
# Installs the pinned tools the tests need into .bin (Go) and tools/node
# (npm). Every version is pinned here or in tools/node/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/.bin
mkdir -p "$bin"

goinstall() { # name package@version
  local name=$1 pkg=$2 stamp="$bin/.$1.version"
  if [[ -x $bin/$name && -f $stamp && $(cat "$stamp") == "$pkg" ]]; then return; fi
  echo "tools: installing $pkg" >&2
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install "$pkg"
  mv "$tmp"/* "$bin/$name"
  rmdir "$tmp"
  echo "$pkg" > "$stamp"
}

goinstall goaws github.com/Admiral-Piett/goaws/app/cmd@v0.4.5
goinstall aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
goinstall staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2

if [[ ! -d tools/node/node_modules/dynalite || ! -d tools/node/node_modules/kinesalite ]]; then
  echo "tools: installing dynalite and kinesalite (npm ci)" >&2
  (cd tools/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# qemu-user lets the end-to-end test run the arm64 bootstrap that is
# deployed, not only the amd64 one. Debian packages it; where it cannot be
# installed (not root, no apt), that one test says so and skips the run.
if ! command -v qemu-aarch64 >/dev/null 2>&1 && [[ $(uname -m) != aarch64 ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "tools: installing qemu-user (apt)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user; } >/dev/null 2>&1 \
      || echo "tools: qemu-user not installed; the arm64 end-to-end run will be skipped" >&2
  fi
fi

# moto 5.2.1 (scripts/moto.sh pins it) comes with the machine image: pip
# cannot reach its registry here, so it is checked, not installed. Without
# it the backfill tests against CloudWatch Logs and S3 skip, saying why.
scripts/moto.sh check || echo "tools: moto missing; the backfill tests against CloudWatch Logs and S3 will be skipped" >&2

# cfn-lint (scripts/cfnlint.sh pins it) comes with the machine image too, and
# is checked the same way; `make lint` needs it for the templates.
scripts/cfnlint.sh check || echo "tools: cfn-lint missing; make lint will fail at the templates" >&2
