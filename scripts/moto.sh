#!/usr/bin/env bash
# moto.sh starts and stops moto's server, the AWS emulator (CloudWatch Logs,
# S3, Kinesis and more on one port) that the backfill tests read history
# from. moto is a Python package this machine image ships, pinned to
# $version; pip cannot reach its registry here, so it is checked, never
# installed.
#
#   scripts/moto.sh check             # status 0 when moto $version is present
#   scripts/moto.sh start [PORT]      # default 4600; prints the endpoint
#   scripts/moto.sh stop
#
# start and stop are idempotent. Its PID, port and log live under .run/.
set -euo pipefail

server=moto
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
version=5.2.1

check() {
	if ! command -v moto_server >/dev/null 2>&1; then
		echo "moto.sh: moto_server not found: the backfill tests against CloudWatch Logs and S3 need moto $version (python3 -m pip install 'moto[server]==$version' where a registry is reachable)" >&2
		return 1
	fi
	local have
	have="$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || true)"
	if [[ "$have" != "$version" ]]; then
		echo "moto.sh: moto ${have:-of unknown version} found, the tests are pinned to $version" >&2
		return 1
	fi
}

ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'moto_server'
}

ready() {
	listening "$1"
}

start() {
	local port="${1:-4600}"
	if running "$port"; then
		return 0
	fi
	check
	(exec setsid moto_server -H 127.0.0.1 -p "$port" </dev/null >"$logfile" 2>&1) &
	await $! "$port"
}

case "${1:-}" in
check)
	check
	;;
start)
	start "${2:-}"
	;;
stop)
	stop
	;;
*)
	echo "usage: $0 check | start [PORT] | stop" >&2
	exit 2
	;;
esac
