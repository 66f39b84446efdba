#!/usr/bin/env bats
# rf-run: the environment PROG gets, exit statuses, and the private rf-server
# it starts on loopback when no host is given.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	D=$BATS_TEST_TMPDIR
	RUN=$ROOT/sh/rf-run
	LIB=$ROOT/build/lib/librfork.so
	mkdir -p "$D/tmp"
	export TMPDIR=$D/tmp
	unset RFORK_HOSTS RFORK_KEY RFORK_BINDIR LD_PRELOAD
	BG=
}

teardown() {
	[ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null || true
}

@test "rf-run: usage errors are 64, -h prints the synopsis" {
	for args in "" "-h" "-x true" "-H" "-H , true" "-H a,,b true" "-H a, true" "-k"; do
		run $RUN $args
		[ "$status" -eq 64 ]
		[ "${lines[-1]}" = "usage: rf-run [-H host[,host...]] [-k key] [--] prog [arg ...]" ]
	done
}

@test "rf-run: a missing program is 127, a missing key file 66, no temporary directory 71" {
	run -127 --separate-stderr "$RUN" -H h1 /nonexistent/prog
	[ "$status" -eq 127 ]
	[ "$stderr" = "rf-run: /nonexistent/prog: not found" ]
	run --separate-stderr "$RUN" -H h1 -k "$D/nokey" true
	[ "$status" -eq 66 ]
	[[ "$stderr" == "rf-run: $D/nokey: no such key file"* ]]
	TMPDIR=$D/nonexistent run --separate-stderr "$RUN" true
	[ "$status" -eq 71 ]
	[ "$stderr" = "rf-run: cannot make a temporary directory" ]
}

@test "rf-run: with hosts it becomes PROG with the library, hosts, key and tools set" {
	touch "$D/key"
	cd "$D"
	"$RUN" -H h1,h2:7100 -k key -- sh -c 'echo "$$ $RFORK_HOSTS $RFORK_KEY $LD_PRELOAD $RFORK_BINDIR"' \
	    > "$D/out" &
	pid=$!
	wait "$pid"
	[ "$(cat "$D/out")" = "$pid h1,h2:7100 $D/key $LIB $BIN" ]
	# no server of its own
	[ -z "$(ls -A "$D/tmp")" ]
}

@test "rf-run: RFORK_HOSTS from the environment; -H wins over it" {
	RFORK_HOSTS=h9 run "$RUN" sh -c 'echo $RFORK_HOSTS'
	[ "$output" = h9 ]
	RFORK_HOSTS=h9 run "$RUN" -H h1 sh -c 'echo $RFORK_HOSTS'
	[ "$output" = h1 ]
}

@test "rf-run: LD_PRELOAD is appended to, never doubled" {
	libc=$(ldd /bin/true | awk '/libc.so/ { print $3 }')
	LD_PRELOAD=$libc run "$RUN" -H h1 sh -c 'echo $LD_PRELOAD'
	[ "$output" = "$libc:$LIB" ]
	RFORK_POLICY=none run "$RUN" -H h1 "$RUN" -H h2 sh -c 'echo $LD_PRELOAD'
	[ "$output" = "$LIB" ]
}

@test "rf-run: PROG's exit status passes, with hosts and with the private server" {
	for h in "-H 127.0.0.1:1" ""; do
		run "$RUN" $h sh -c 'exit 3'
		[ "$status" -eq 3 ]
		run "$RUN" $h sh -c 'kill -TERM $$'
		[ "$status" -eq 143 ]
		run "$RUN" $h sh -c 'kill -KILL $$'
		[ "$status" -eq 137 ]
		run "$RUN" $h true
		[ "$status" -eq 0 ]
	done
	[ -z "$(ls -A "$D/tmp")" ]
}

@test "rf-run: no host: a private rf-server on loopback for the run, gone afterwards" {
	RFORK_POLICY=none run --separate-stderr "$RUN" sh -c '
		echo "hosts $RFORK_HOSTS"
		echo "key $RFORK_KEY $(stat -c %a "$RFORK_KEY") $(stat -c %s "$RFORK_KEY")"
		echo "server $(pgrep -o -f -- "-k $RFORK_KEY ")"'
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "$output" =~ hosts\ 127\.0\.0\.1:([0-9]+) ]]
	port=${BASH_REMATCH[1]}
	[[ "$output" =~ key\ ($D/tmp/rf-run\.[^/]*/key)\ 600\ 32 ]]
	key=${BASH_REMATCH[1]}
	srv=$(sed -n 's/^server //p' <<<"$output")
	[ -n "$srv" ]
	# the server, its key and its directory are gone; nothing listens there
	! kill -0 "$srv" 2>/dev/null
	[ ! -e "$key" ]
	[ -z "$(ls -A "$D/tmp")" ]
	! ss -ltnH "sport = :$port" | grep -q .
}

@test "rf-run: the private server listens for PROG, not for the terminal's signals" {
	RFORK_POLICY=none "$RUN" sh -c 'echo "$RFORK_HOSTS $RFORK_KEY"; exec sleep 30' > "$D/out" &
	BG=$!
	wait_line "$D/out" '^127'
	read -r hp key < "$D/out"
	srv=$(pgrep -o -f -- "-k $key ")
	ss -ltnH "sport = :${hp#*:}" | grep -q .
	# its own session: a ^C to the job does not reach it
	[ "$(ps -o sid= -p "$srv")" -eq "$srv" ]
	[ "$(ps -o sid= -p "$BG")" -ne "$srv" ]
	kill -TERM "$BG"
	st=0
	wait "$BG" || st=$?
	BG=
	# TERM went on to PROG, which it killed
	[ "$st" -eq 143 ]
	! kill -0 "$srv" 2>/dev/null
	[ -z "$(ls -A "$D/tmp")" ]
}

@test "rf-run: TERM to rf-run reaches PROG, whose status rf-run returns" {
	"$RUN" sh -c 'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.05; done' \
	    > "$D/out" &
	BG=$!
	wait_line "$D/out" '^ready'
	kill -TERM "$BG"
	st=0
	wait "$BG" || st=$?
	BG=
	[ "$st" -eq 5 ]
	grep -qx "got TERM" "$D/out"
	[ -z "$(ls -A "$D/tmp")" ]
}

@test "rf-run: PROG keeps stdin, and ignores the signals rf-run's caller ignored, no more" {
	run "$RUN" cat <<<"hello"
	[ "$output" = hello ]
	run grep SigIgn /proc/self/status
	plain=$output
	run "$RUN" grep SigIgn /proc/self/status
	[ "$output" = "$plain" ]
	run sh -c 'trap "" USR2; exec grep SigIgn /proc/self/status'
	plain=$output
	[ "$plain" != "$(grep SigIgn /proc/self/status)" ]
	run sh -c 'trap "" USR2; exec "$0" grep SigIgn /proc/self/status' "$RUN"
	[ "$output" = "$plain" ]
}

@test "rf-run: a forking program works under the private server" {
	run --separate-stderr "$RUN" "$TESTS/forker" basic 3
	[ "$status" -eq 0 ]
	[ "$output" = "ok basic" ]
	[ -z "$(ls -A "$D/tmp")" ]
}
