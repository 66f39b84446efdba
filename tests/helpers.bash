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

# wait_line FILE REGEX: wait up to 5 s for a matching line in FILE.
wait_line() {
	local _
	for _ in $(seq 500); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}
