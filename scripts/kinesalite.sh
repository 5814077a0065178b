#!/usr/bin/env bash
# kinesalite.sh starts and stops kinesalite, the local Kinesis stand-in used by
# the fan-in tests and `make local-fanin` (see internal/esm).
#
#   scripts/kinesalite.sh start [PORT]   # default 4568; prints the endpoint
#   scripts/kinesalite.sh stop
#
# Both commands are idempotent. The server listens on 127.0.0.1 only and keeps
# its streams in memory; its PID, port and log live under .run/ (gitignored).
set -euo pipefail

server=kinesalite
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tools="$root/tools/node"

# ours reports whether the PID is a live kinesalite we started.
ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kinesalite-loopback.js'
}

# ready reports whether kinesalite accepts connections.
ready() {
	listening "$1"
}

start() {
	local port="${1:-4568}"
	if running "$port"; then
		return 0
	fi

	if [[ ! -f "$tools/node_modules/kinesalite/index.js" ]]; then
		(cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund >&2)
	fi

	# setsid detaches the server from this shell so it outlives the script
	# and a Ctrl-C in the caller's terminal.
	(cd "$tools" && exec setsid node kinesalite-loopback.js "$port" \
		</dev/null >"$logfile" 2>&1) &
	await $! "$port"
}

case "${1:-}" in
start)
	start "${2:-}"
	;;
stop)
	stop
	;;
*)
	echo "usage: $0 start [PORT] | stop" >&2
	exit 2
	;;
esac
