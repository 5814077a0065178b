#!/usr/bin/env bash
# cfnlint.sh lints every CloudFormation template of the repository
# (template.yaml and org/*.yaml) with cfn-lint, which also runs the SAM
# transform on the SAM templates and lints its result. cfn-lint is a Python
# package this machine image ships, pinned to $version; pip cannot reach its
# registry here, so it is checked, never installed.
#
#   scripts/cfnlint.sh check   # status 0 when cfn-lint $version is present
#   scripts/cfnlint.sh         # lint the templates
#
# Where the AWS SAM CLI is installed, the SAM templates also go through
# `sam validate --lint`; it is not needed, and its absence is only noted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=1.51.0

check() {
	if ! command -v cfn-lint >/dev/null 2>&1; then
		echo "cfnlint.sh: cfn-lint not found: linting the templates needs cfn-lint $version (python3 -m pip install 'cfn-lint==$version' where a registry is reachable)" >&2
		return 1
	fi
	local have
	have="$(cfn-lint --version 2>/dev/null | awk '{print $2}')"
	if [[ "$have" != "$version" ]]; then
		echo "cfnlint.sh: cfn-lint ${have:-of unknown version} found, the lint is pinned to $version (python3 -m pip install 'cfn-lint==$version')" >&2
		return 1
	fi
}

lint() {
	check
	local templates=(template.yaml org/*.yaml) sam=()
	cfn-lint "${templates[@]}"
	echo "cfnlint.sh: cfn-lint $version passes ${templates[*]}" >&2
	if ! command -v sam >/dev/null 2>&1; then
		echo "cfnlint.sh: sam not found; sam validate --lint skipped (cfn-lint has linted the SAM transform's output)" >&2
		return 0
	fi
	local t
	for t in "${templates[@]}"; do
		if grep -q '^Transform: AWS::Serverless-2016-10-31' "$t"; then
			sam+=("$t")
		fi
	done
	for t in "${sam[@]}"; do
		sam validate --lint --template-file "$t"
	done
}

case "${1:-lint}" in
check) check ;;
lint) lint ;;
*)
	echo "usage: scripts/cfnlint.sh [check|lint]" >&2
	exit 2
	;;
esac
