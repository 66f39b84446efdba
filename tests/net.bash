# tests/net.bash - helpers for the transport tests: test hosts, victims,
# and checks that nothing was left behind.  Loaded by rf-send.bats etc.

bats_require_minimum_version 1.5.0
# pstate, wait_state and the other waits
source "$BATS_TEST_DIRNAME/helpers.bash"

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=$ROOT/build/bin
TESTS=$ROOT/build/tests
TH=$ROOT/sh/rf-testhosts

# th_up N [server args]: test hosts $PFX1..N, servers with a short timeout.
# Called from setup_file; exports PFX, KEY, TDIR.
th_up() {
	export PFX=t$(basename "$BATS_TEST_FILENAME" .bats | tr -dc a-z | cut -c1-8)$$
	# victims run as nobody: their status files need a reachable directory
	export TDIR=$(mktemp -d /tmp/rf-net.XXXXXX)
	mkdir -p "$TDIR/srvtmp" "$TDIR/st"
	chmod 755 "$TDIR"
	chmod 777 "$TDIR/st"
	TMPDIR=$TDIR/srvtmp "$TH" -p "$PFX" -s "-t ${2:-3}" up "$1" >&3
	export KEY=$("$TH" -p "$PFX" dir)/key
	export LOGDIR=$("$TH" -p "$PFX" dir)
}

th_down() {
	"$TH" -p "$PFX" down
	rm -rf "$TDIR"
}

# inh I CMD...: run CMD in test host I.
inh() {
	local i=$1
	shift
	"$TH" -p "$PFX" exec "$PFX$i" "$@"
}

# bgin I CMD...: CMD in host I in the background; BGPID is CMD's own pid
# (rf-testhosts execs it), so it can be killed and waited for.
bgin() {
	local i=$1
	shift
	"$TH" -p "$PFX" exec "$PFX$i" "$@" 0<&0 &
	BGPID=$!
}

addr() { echo "10.77.0.$1"; }

srvpid() { cat "$LOGDIR/$PFX$1.pid"; }
srvlog() { cat "$LOGDIR/$PFX$1.log"; }
# stubs I: how many remote children's stubs host I's server has taken so far.
stubs() { grep -c "stub connected" "$LOGDIR/$PFX$1.log" || true; }

# migrant I MIB [USER]: start the victim in host I; sets MPID and MST (its status file).
migrant() {
	local i=$1 mib=$2 user=${3:-nobody} n
	MST=$TDIR/st/m$BATS_TEST_NUMBER.$RANDOM
	: > "$MST"
	chmod 666 "$MST"
	if [ "$user" = root ]; then
		inh "$i" setsid "$TESTS/migrant" "$mib" "$MST" < /dev/null > /dev/null 2>&1 &
	else
		inh "$i" setsid setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
		    "$TESTS/migrant" "$mib" "$MST" < /dev/null > /dev/null 2>&1 &
	fi
	for n in $(seq 300); do
		grep -q '^ready' "$MST" && break
		sleep 0.05
	done
	MPID=$(awk '/^ready/ {print $3; exit}' "$MST")
	[ -n "$MPID" ]
}

# check_ok PID HOST: the victim PID reports an intact state from HOST.
check_ok() {
	local pid=$1 host=$2 n before
	before=$(grep -c "^ok pid $pid host $host " "$MST" || true)
	kill -USR1 "$pid"
	for n in $(seq 100); do
		[ "$(grep -c "^ok pid $pid host $host " "$MST" || true)" -gt "$before" ] && return 0
		grep -q "^BAD pid $pid" "$MST" && break
		sleep 0.05
	done
	echo "victim $pid did not report ok from $host:" >&2
	cat "$MST" >&2
	return 1
}

# busy_children I: the children of host I's server but those it keeps free
# for the next connections (rf-server-idle).
busy_children() { ps -o pid=,comm= --ppid "$(srvpid "$1")" | awk '$2 != "rf-server-idle" { print $1 }'; }
# server_fds I: the fds host I's server holds but the one to each such child.
server_fds() {
	echo $(($(ls "/proc/$(srvpid "$1")/fd" | wc -l) -
	    $(ps -o comm= --ppid "$(srvpid "$1")" | grep -cx rf-server-idle)))
}

# only_server I: host I holds no process but its rf-server (after a moment
# for the server to reap what it killed), and the server left no temp file.
only_server() {
	local i=$1 n left
	for n in $(seq 100); do
		# the server and the connection children it keeps free (rf-server-idle)
		left=$(ip netns pids "$PFX$i" | grep -vx "$(srvpid "$i")" |
		    xargs -r ps -o pid=,ppid=,comm= -p |
		    awk -v s="$(srvpid "$i")" '$2 != s || $3 != "rf-server-idle" { print $1 }' || true)
		[ -z "$left" ] && break
		sleep 0.05
	done
	if [ -n "$left" ]; then
		echo "left in $PFX$i:" >&2
		ps -o pid,stat,user,cmd -p $left >&2
		return 1
	fi
	[ -z "$(ls -A "$TDIR/srvtmp")" ]
}

# serving I: the server of host I still answers a well-behaved peer.
serving() {
	local rc=0
	kill -0 "$(srvpid "$1")" || return 1
	inh 1 "$BIN/rf-send" -k "$KEY" "$(addr "$1")" < /dev/null 2> /dev/null || rc=$?
	[ "$rc" -eq 66 ]
}

wait_log() {
	local i=$1 pat=$2 n
	for n in $(seq 200); do
		srvlog "$i" | grep -q -- "$pat" && return 0
		sleep 0.05
	done
	echo "no '$pat' in the log of $PFX$i:" >&2
	srvlog "$i" >&2
	return 1
}

# own_server PORT [WRAPPER...] -- [ARGS]: another rf-server in host 2 on PORT,
# run under WRAPPER (e.g. setpriv as another user); sets SPID and SLOG.
own_server() {
	local port=$1 w=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		w+=("$1")
		shift
	done
	[ $# -eq 0 ] || shift
	SLOG=$TDIR/own.$BATS_TEST_NUMBER.log
	bgin 2 "${w[@]}" "$BIN/rf-server" -l "$(addr 2):$port" -t 3 "$@" 2> "$SLOG"
	SPID=$BGPID
	wait_line "$SLOG" "listening on" || { cat "$SLOG" >&2; return 1; }
}
