#!/usr/bin/env bash
# dynalite.sh starts and stops dynalite, the local DynamoDB stand-in used by
# the integration tests (see internal/dynamostate).
#
#   scripts/dynalite.sh start [PORT]   # default 4567; prints the endpoint
#   scripts/dynalite.sh stop
#
# Both commands are idempotent. The server listens on 127.0.0.1 only and keeps
# its tables in memory; its PID, port and log live under .run/ (gitignored).
set -euo pipefail

server=dynalite
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
tools="$root/tools/node"

# ours reports whether the PID is a live dynalite we started.
ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'dynalite/cli.js'
}

# ready reports whether dynalite accepts connections.
ready() {
	listening "$1"
}

start() {
	local port="${1:-4567}"
	if running "$port"; then
		return 0
	fi

	if [[ ! -f "$tools/node_modules/dynalite/cli.js" ]]; then
		(cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund >&2)
	fi

	# setsid detaches the server from this shell so it outlives the script
	# and a Ctrl-C in the caller's terminal.
	(cd "$tools" && exec setsid node node_modules/dynalite/cli.js \
		--host 127.0.0.1 --port "$port" \
		--createTableMs 0 --deleteTableMs 0 --updateTableMs 0 \
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
