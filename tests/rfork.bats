#!/usr/bin/env bats
# Remote fork between the test hosts: a program under rf-run in host 1 forks,
# the child is born in host 2 (rf-send -F, rf-server ops fork and stub,
# rf-stub HOST TOKEN), and SPEC "Fork semantics" holds.

load net
load helpers

setup_file() {
	# the programs here run as root: their images need -R
	th_up 2 "3 -R"
}

teardown_file() {
	th_down
}

setup() {
	MARK=rfork$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
}

teardown() {
	local p
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# rrun PROG ARGS...: PROG under rf-run in host 1, forks to host 2; stdout in $OUT.
rrun() {
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" "$@" > "$OUT"
}

@test "rfork: the child runs in host 2 with the parent's pids, stdout and exit code" {
	run rrun "$TESTS/rforkhost" 7
	[ "$status" -eq 0 ]
	cat "$OUT"
	read -r _ ppid _ phost < <(grep '^parent ' "$OUT")
	read -r _ cpid _ cppid _ chost < <(grep '^child ' "$OUT")
	read -r _ fpid _ how code < <(grep '^forked ' "$OUT")
	[ "$phost" = "${PFX}1" ]
	[ "$chost" = "${PFX}2" ]
	[ "$cpid" = "$fpid" ]
	[ "$cppid" = "$ppid" ]
	[ "$how $code" = "exit 7" ]
	grep -q "fork: pid $cpid (parent $ppid) waits for its stub" "$LOGDIR/${PFX}2.log"
	grep -q "stub connected" "$LOGDIR/${PFX}2.log"
	none_marked "$MARK"
}

@test "rfork: forker's checks hold for 3 remote children in a row" {
	local before
	before=$(grep -c "stub connected" "$LOGDIR/${PFX}2.log" || true)
	run rrun "$TESTS/forker" basic 3
	cat "$OUT"
	[ "$(grep -c "stub connected" "$LOGDIR/${PFX}2.log")" -eq $((before + 3)) ]
	[ "$status" -eq 0 ]
	grep -q '^ok basic' "$OUT"
	none_marked "$MARK"
}

@test "rfork: rf-stub with a token no child waits for fails, and rf-send -F needs -p" {
	run -66 inh 1 "$BIN/rf-stub" -k "$KEY" "$(addr 2)" 0123456789abcdef0123456789abcdef
	[[ "$output" == *"no child waits for this token"* ]]
	run -64 inh 1 "$BIN/rf-send" -F 3 -k "$KEY" "$(addr 2)" < /dev/null
	run -64 inh 1 "$BIN/rf-stub" -k "$KEY" "$(addr 2)"
}

@test "rfork: a child whose stub never comes is killed after the timeout" {
	inh 1 env RFTEST_MARK="$MARK" sleep 100 < /dev/null > /dev/null 2>&1 &
	local sp=$! pid
	for _ in $(seq 100); do
		pid=$(marked "$MARK" | head -n 1)
		[ -n "$pid" ] && break
		sleep 0.02
	done
	kill -STOP "$pid"
	"$BIN/rf-snap" -o "$TDIR/img" "$pid"
	run inh 1 "$BIN/rf-send" -F 9 -p 4321 -k "$KEY" "$(addr 2)" < "$TDIR/img"
	kill -KILL "$pid"
	wait "$sp" || true
	[ "$status" -eq 0 ]
	[[ "$output" == *'"token":'* ]]
	[[ "$output" == *"\"pid\":$pid"* ]]
	for _ in $(seq 100); do
		grep -q "pid $pid killed: no stub within" "$LOGDIR/${PFX}2.log" && break
		sleep 0.1
	done
	grep -q "pid $pid killed: no stub within" "$LOGDIR/${PFX}2.log"
	none_marked "$MARK"
}
