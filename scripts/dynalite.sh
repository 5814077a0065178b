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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/tools/node"
run="$root/.run"
pidfile="$run/dynalite.pid"
portfile="$run/dynalite.port"
logfile="$run/dynalite.log"

# listening reports whether something accepts TCP connections on the port.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ours reports whether the PID is a live dynalite we started, so a stale PID
# file never makes us signal an unrelated process that reused the number.
ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'dynalite/cli.js'
}

start() {
	local port="${1:-4567}"
	if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		echo "dynalite.sh: bad port: $port" >&2
		exit 2
	fi
	mkdir -p "$run"

	if [[ -f "$pidfile" ]]; then
		local pid
		pid="$(cat "$pidfile")"
		if ours "$pid"; then
			local running
			running="$(cat "$portfile" 2>/dev/null || echo "$port")"
			if [[ "$running" != "$port" ]]; then
				echo "dynalite.sh: already running on port $running (PID $pid); stop it first to change port" >&2
			fi
			echo "http://127.0.0.1:$running"
			return 0
		fi
		rm -f "$pidfile" "$portfile"
	fi

	if listening "$port"; then
		echo "dynalite.sh: port $port is already in use by another process" >&2
		exit 1
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
	local pid=$!
	echo "$pid" >"$pidfile"
	echo "$port" >"$portfile"

	# dynalite is ready in well under a second; 10 s covers a loaded machine.
	local i
	for ((i = 0; i < 100; i++)); do
		if listening "$port"; then
			echo "http://127.0.0.1:$port"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "dynalite.sh: dynalite did not start on port $port; log follows" >&2
	cat "$logfile" >&2 || true
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" || true
	fi
	rm -f "$pidfile" "$portfile"
	exit 1
}

stop() {
	if [[ ! -f "$pidfile" ]]; then
		return 0
	fi
	local pid
	pid="$(cat "$pidfile")"
	if ours "$pid"; then
		kill "$pid"
		local i
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" || true
		fi
	fi
	rm -f "$pidfile" "$portfile"
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
