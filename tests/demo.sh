#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# `make demo`: start a daemon on a private socket, drive it with ctl through a
# short scripted session, stop it. Every step checks its result: the demo
# fails loudly if ctld-bpf does not behave as shown.
set -euo pipefail

BUILD=${1:-build}
CTLD="$BUILD/ctld-bpf"
CTL="$BUILD/ctl"
DIR=$(mktemp -d /tmp/ctld-demo.XXXXXX)
chmod 700 "$DIR"
SOCK="$DIR/ctld.sock"
PIN="/sys/fs/bpf/ctld-demo-$$"
DAEMON_PID=

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { printf '\033[36m$ %s\033[0m\n' "$*"; }
fail() { printf '\033[31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }

cleanup() {
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT

# ctl with the demo's socket; prints the command first.
ctl() {
	show "ctl $*"
	"$CTL" -S "$SOCK" "$@"
}

# Runs ctl and checks its exit status.
expect_status() {
	local want=$1 got=0
	shift
	ctl "$@" || got=$?
	[ "$got" = "$want" ] || fail "ctl $* exited $got, expected $want"
	printf '  (exit status %s)\n' "$got"
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bold "1. Start the daemon"
MODE=()
if [ "$(id -u)" != 0 ]; then
	echo "not root: running without eBPF (exits via waitid, ports via polling)"
	MODE=(--no-bpf)
fi
show "ctld-bpf --socket $SOCK --listen none --pin-dir $PIN ${MODE[*]}"
"$CTLD" --socket "$SOCK" --listen none --pin-dir "$PIN" --ready-file "$DIR/ready" "${MODE[@]}" \
	2>"$DIR/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 200); do [ -e "$DIR/ready" ] && break; sleep 0.02; done
[ -e "$DIR/ready" ] || { cat "$DIR/daemon.log"; fail "daemon did not start"; }
grep -E 'eBPF|ready' "$DIR/daemon.log" | sed 's/^/  daemon: /'

bold "2. Run a command: output streams back, the exit status is the job's"
expect_status 0 run -- uname -sr
expect_status 3 run -- sh -c 'echo "to stdout"; echo "to stderr" >&2; exit 3'

bold "3. A program that cannot be executed: the real errno, exit 127"
expect_status 127 run -- /no/such/program

bold "4. stdin is forwarded"
show "printf 'b\\na\\nc\\n' | ctl run -- sort"
out=$(printf 'b\na\nc\n' | "$CTL" -S "$SOCK" run -- sort)
[ "$out" = "$(printf 'a\nb\nc')" ] || fail "sort gave: $out"
echo "$out"

bold "5. Start in the background, list, kill the whole tree, wait"
show "ctl start --name sleeper -- sh -c 'sleep 300 & sleep 300; wait'"
JOB=$("$CTL" -S "$SOCK" start --name sleeper -- sh -c 'sleep 300 & sleep 300; wait')
echo "$JOB"
ctl list --running
expect_status 0 kill "$JOB" --signal KILL
expect_status 137 wait "$JOB"

bold "6. Start a server through a shell; return the moment it is ready (kernel-notified)"
PORT=$(free_port)
show "ctl start --wait-port $PORT --wait-log 'Serving HTTP' --timeout 20s -- sh -c 'python3 -u -m http.server $PORT --bind 127.0.0.1'"
SERVER=$("$CTL" -S "$SOCK" start --wait-port "$PORT" --wait-log 'Serving HTTP' --timeout 20s -- \
	sh -c "/usr/bin/python3 -u -m http.server $PORT --bind 127.0.0.1") ||
	fail "server did not come up"
echo "$SERVER"
expect_status 0 run -- /usr/bin/python3 -c \
	"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/').status)"
echo "A second server on the same port: the port is someone else's, so it is not ready"
expect_status 120 start --wait-port "$PORT" --timeout 20s -- \
	/usr/bin/python3 -m http.server "$PORT" --bind 127.0.0.1
expect_status 0 kill "$SERVER"

bold "7. Wait for a file to reach a size"
LOGFILE="$DIR/growing.log"
"$CTL" -S "$SOCK" start -- sh -c "for i in \$(seq 50); do echo line \$i >> $LOGFILE; sleep 0.02; done" \
	>/dev/null
expect_status 0 watch-file "$LOGFILE" --size 200 --timeout 10s

bold "8. Machine-readable output"
expect_status 0 --json run -- echo hello

bold "9. Daemon statistics"
expect_status 0 stats

bold "10. Stop the daemon: jobs are killed, socket and pins removed"
show "kill -TERM $DAEMON_PID"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "daemon exited with $?"
DAEMON_PID=
[ ! -e "$SOCK" ] || fail "socket left behind"
[ ! -e "$PIN" ] || fail "pins left behind"
tail -n 2 "$DIR/daemon.log" | sed 's/^/  daemon: /'
bold "Demo finished: every step behaved as shown."
