# tests/helpers.bash - shared by the bats files (load helpers): paths, process
# states, waiting.  Append what others need; keep it small.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=$ROOT/build/bin
TESTS=$ROOT/build/tests

# pstate PID: the state letter of /proc/PID/stat, empty if the process is gone.
pstate() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	s=${s##*) }
	echo "${s%% *}"
}

# wait_state PID LETTER: wait up to 5 s for that state.
wait_state() {
	local _
	for _ in $(seq 500); do
		[ "$(pstate "$1")" = "$2" ] && return 0
		sleep 0.01
	done
	return 1
}

# wait_line FILE REGEX [S]: wait up to S s (5) for a matching line in FILE.
wait_line() {
	local _
	for _ in $(seq $((${3:-5} * 100))); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# wait_gone PID: wait up to 10 s for PID to be gone (reaped).
wait_gone() {
	local _
	for _ in $(seq 1000); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.01
	done
	return 1
}

# flip_byte FILE OFFSET: invert the byte at OFFSET in place.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 0xff)))" |
	    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# marked MARK: pids of processes whose environment holds RFTEST_MARK=MARK
# (start a command with that variable to find everything it left behind).
marked() {
	grep -lzxF "RFTEST_MARK=$1" /proc/[0-9]*/environ 2>/dev/null |
	    sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}

# none_marked MARK: wait up to 5 s until no process holds MARK.
none_marked() {
	local _ left
	for _ in $(seq 100); do
		left=$(marked "$1")
		[ -z "$left" ] && return 0
		sleep 0.05
	done
	echo "left behind:" >&2
	ps -o pid,stat,cmd -p $left >&2
	return 1
}
