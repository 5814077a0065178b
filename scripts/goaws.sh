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

server=goaws
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin="$root/.bin/goaws"
pkg="github.com/Admiral-Piett/goaws/app/cmd@v0.4.5"
stamp="$root/.bin/.goaws.version" # the same stamp scripts/tools.sh keeps
config="$root/scripts/goaws.yaml"
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

# ours reports whether the PID is a live goaws started by this script.
ours() {
	local pid="$1"
	[[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$bin -config $runconfig"
}

# ready reports whether goaws answers with the findings topic loaded.
ready() {
	healthy "$1" || return 1
	# goaws falls back to an empty default setup, silently, when it cannot
	# read its config: make sure the topic is there.
	if has_topic "$1"; then
		return 0
	fi
	echo "goaws.sh: goaws started without the topic from $runconfig" >&2
	return 2
}

start() {
	local port="${1:-4100}"
	if running "$port"; then
		return 0
	fi

	install
	sed "s/^  Port: .*/  Port: \"$port\"/" "$config" >"$runconfig"

	# setsid detaches goaws from this shell so it outlives the script and a
	# Ctrl-C in the caller's terminal.
	setsid "$bin" -config "$runconfig" Local </dev/null >"$logfile" 2>&1 &
	await $! "$port"
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
