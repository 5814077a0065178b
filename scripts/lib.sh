# lib.sh holds what scripts/dynalite.sh, goaws.sh and moto.sh share: checking
# whether their emulator already runs, waiting for a new one to answer, and
# stopping it. It is sourced, not run.
#
# Before sourcing it, a script sets `server` to the emulator's name (its
# PID, port and log files under .run/ take that name, its messages start
# with "$server.sh:"). After, it defines two functions:
#
#   ours PID     whether PID is a live emulator this script started
#   ready PORT   status 0 when the emulator on PORT serves, 1 when it does
#                not yet, 2 when it never will (having said why on stderr)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="$root/.run"
pidfile="$run/$server.pid"
portfile="$run/$server.port"
logfile="$run/$server.log"

# listening reports whether something accepts TCP connections on the port.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# running checks PORT and reports whether our emulator already runs,
# printing its endpoint if so; it exits when PORT is not a port or another
# process holds it. A stale PID file is removed: ours makes sure it never
# makes us signal an unrelated process that reused the number. It is called
# as a condition, where set -e does not apply, so it exits on failures
# itself.
running() {
	local port="$1"
	if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		echo "$server.sh: bad port: $port" >&2
		exit 2
	fi
	mkdir -p "$run" || exit

	if [[ -f "$pidfile" ]]; then
		local pid active
		pid="$(cat "$pidfile")" || exit
		if ours "$pid"; then
			active="$(cat "$portfile" 2>/dev/null || echo "$port")"
			if [[ "$active" != "$port" ]]; then
				echo "$server.sh: already running on port $active (PID $pid); stop it first to change port" >&2
			fi
			echo "http://127.0.0.1:$active"
			return 0
		fi
		rm -f "$pidfile" "$portfile" || exit
	fi

	if listening "$port"; then
		echo "$server.sh: port $port is already in use by another process" >&2
		exit 1
	fi
	return 1
}

# await records PID, the emulator just started in the background, as
# serving PORT, and waits until it is ready, printing its endpoint. If it
# does not become ready it prints the log, stops the emulator and exits.
await() {
	local pid="$1" port="$2"
	echo "$pid" >"$pidfile"
	echo "$port" >"$portfile"

	# Both emulators start in well under a second; 10 s covers a loaded
	# machine.
	local i status
	for ((i = 0; i < 100; i++)); do
		status=0
		ready "$port" || status=$?
		if ((status == 0)); then
			echo "http://127.0.0.1:$port"
			return 0
		fi
		if ((status == 2)) || ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "$server.sh: $server did not start on port $port; log follows" >&2
	cat "$logfile" >&2 || true
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" || true
	fi
	rm -f "$pidfile" "$portfile"
	exit 1
}

# stop stops our emulator, if it runs, and forgets it.
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
