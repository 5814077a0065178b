#!/usr/bin/env bash
# goaws.sh installs, starts and stops goaws v0.4.5, the local SNS (and SQS)
# stand-in, with the topic and queues in scripts/goaws.yaml.
#
#   scripts/goaws.sh install          # into .bin/goaws, if missing
#   scripts/goaws.sh start [PORT]     # default 4100; prints the endpoint
#   scripts/goaws.sh stop
#
# All three are idempotent. goaws listens on all interfaces (it has no bind
# option): send it loopback traffic only. Its PID, port, generated config and
# log live under .run/ (gitignored). The snspub integration test starts a
# goaws of its own from .bin/goaws; it needs only `install`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.bin/goaws"
pkg="github.com/Admiral-Piett/goaws/app/cmd@v0.4.5"
stamp="$root/.bin/.goaws.version" # the same stamp scripts/tools.sh keeps
config="$root/scripts/goaws.yaml"
run="$root/.run"
pidfile="$run/goaws.pid"
portfile="$run/goaws.port"
logfile="$run/goaws.log"
runconfig="$run/goaws.yaml"

install() {
	if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$pkg" ]]; then
		return 0
	fi
	if [[ -x "$bin" ]] && go version -m "$bin" 2>/dev/null | grep -q 'goaws[[:space:]]*v0\.4\.5[[:space:]]'; then
		echo "$pkg" >"$stamp"
		return 0
	fi
	echo "goaws.sh: installing $pkg" >&2
	local tmp
	tmp="$(mktemp -d)"
	# The package is named cmd, and so is the binary go install writes.
	GOBIN="$tmp" go install "$pkg"
	mkdir -p "$root/.bin"
	mv "$tmp/cmd" "$bin"
	rmdir "$tmp"
	echo "$pkg" >"$stamp"
}

# listening reports whether something accepts TCP connections on the port.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# request sends one HTTP/1.0 request to 127.0.0.1:PORT and prints the
# answer; it needs neither curl nor wget.
request() { # port method path [form-body]
	local port="$1" method="$2" path="$3" body="${4:-}"
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		if [[ -n "$body" ]]; then
			printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s' \
				"$method" "$path" "${#body}" "$body" >&3
		else
			printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$method" "$path" >&3
		fi
		timeout 5 cat <&3
	) 2>/dev/null
}

# healthy reports whether goaws answers its health check. The answer is
# captured whole, not piped, so no SIGPIPE can fail the test under pipefail.
healthy() {
	local resp
	resp="$(request "$1" GET /health)" || return 1
	[[ "$resp" == "HTTP/1."[01]" 200 "* ]]
}

# has_topic reports whether goaws loaded the findings topic.
has_topic() {
	local resp
	resp="$(request "$1" POST / "Action=ListTopics")" || return 1
	[[ "$resp" == *":anonwatch-findings<"* ]]
}

# ours reports whether the PID is a live goaws started by this script, so a
# stale PID file never makes us signal an unrelated process.
ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$bin -config $runconfig"
}

start() {
	local port="${1:-4100}"
	if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		echo "goaws.sh: bad port: $port" >&2
		exit 2
	fi
	mkdir -p "$run"

	if [[ -f "$pidfile" ]]; then
		local pid running
		pid="$(cat "$pidfile")"
		if ours "$pid"; then
			running="$(cat "$portfile" 2>/dev/null || echo "$port")"
			if [[ "$running" != "$port" ]]; then
				echo "goaws.sh: already running on port $running (PID $pid); stop it first to change port" >&2
			fi
			echo "http://127.0.0.1:$running"
			return 0
		fi
		rm -f "$pidfile" "$portfile"
	fi

	if listening "$port"; then
		echo "goaws.sh: port $port is already in use by another process" >&2
		exit 1
	fi

	install
	sed "s/^  Port: .*/  Port: \"$port\"/" "$config" >"$runconfig"

	# setsid detaches goaws from this shell so it outlives the script and a
	# Ctrl-C in the caller's terminal.
	setsid "$bin" -config "$runconfig" Local </dev/null >"$logfile" 2>&1 &
	local pid=$!
	echo "$pid" >"$pidfile"
	echo "$port" >"$portfile"

	# goaws is up in milliseconds; 10 s covers a loaded machine.
	local i
	for ((i = 0; i < 100; i++)); do
		if healthy "$port"; then
			# goaws falls back to an empty default setup, silently, when it
			# cannot read its config: make sure the topic is there.
			if has_topic "$port"; then
				echo "http://127.0.0.1:$port"
				return 0
			fi
			echo "goaws.sh: goaws started without the topic from $runconfig" >&2
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "goaws.sh: goaws did not start on port $port; log follows" >&2
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
install)
	install
	;;
start)
	start "${2:-}"
	;;
stop)
	stop
	;;
*)
	echo "usage: $0 install | start [PORT] | stop" >&2
	exit 2
	;;
esac
