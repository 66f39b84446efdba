#!/usr/bin/env bats
# Write-behind between the test hosts (docs/FORK.md "Posted writes"): the
# parent under rf-run in host 1, its child forked to host 2 writes into a
# pipe of the parent's (tests/victims/fwdpost.c).

load net
load helpers

setup_file() {
	th_up 2 "3 -R"
}

teardown_file() {
	th_down
}

setup() {
	MARK=rfpost$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
	STUBS=$(stubs 2)
}

teardown() {
	local p
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# prun ARGS...: fwdpost ARGS under rf-run in host 1, its child in host 2
# (WB: RFORK_WRITE_BEHIND for it, when set); stdout in $OUT.
prun() {
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all ${WB:+RFORK_WRITE_BEHIND=$WB} \
	    "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2)" "$TESTS/fwdpost" "$@" > "$OUT"
}

# the child ran in host 2: one more stub connected there
remote() {
	[ "$(stubs 2)" -gt "$STUBS" ]
}

@test "fwd-post: 24 MiB of odd-sized writes and writevs arrive whole and in order; the child's end waits for its data" {
	run prun bulk 24
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	grep -qx "bulk: 25165824 bytes in order, then EOF" "$OUT"
	grep -qx "bulk: child exit 0" "$OUT"
	! grep -q BAD "$OUT"
}

@test "fwd-post: the child writes 1 MiB and exits at once: every byte, then EOF, then exit status 0" {
	run prun bulk 1
	echo "$output"
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	[ "$(cat "$OUT")" = "bulk: 1048576 bytes in order, then EOF"$'\n'"bulk: child exit 0" ]
}

@test "fwd-post: write then kill(parent): the parent's handler finds the data in the pipe, 50 rounds" {
	run prun kill 50
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	[ "$(cat "$OUT")" = "kill: 50 rounds, the data was there each time"$'\n'"kill: child exit 0" ]
}

@test "fwd-post: poll after posted writes sees the pipe full; close after them: every byte, then EOF, the child still running" {
	run prun closepoll
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	[ "$(cat "$OUT")" = "closepoll: poll on the full pipe: 0 0"$'\n'"closepoll: 1114112 bytes, then EOF, the child still running"$'\n'"closepoll: child exit 0" ]
}

@test "fwd-post: reader gone, SIGPIPE ignored: one posted write succeeds late, the next call fails with EPIPE" {
	run prun epipe ign
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	grep -qx "epipe: write1 1 " "$OUT"
	grep -qx "epipe: write2 -1 Broken pipe" "$OUT"
	grep -qx "epipe: child exit 0" "$OUT"
}

@test "fwd-post: reader gone, SIGPIPE default: the child dies of SIGPIPE at the write after the late one" {
	run prun epipe dfl
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	[ "$(cat "$OUT")" = "epipe: write1 1 "$'\n'"epipe: child killed by 13" ]
}

@test "fwd-post: reader gone, 64 KiB writes in a loop: SIGPIPE, at most a window (2 MiB) of writes late" {
	local late
	run prun epipeloop
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	grep -qx "epipeloop: child killed by 13" "$OUT"
	late=$(grep -o '^epipeloop: [0-9]* late' "$OUT" | tail -1 | tr -dc 0-9)
	[ "${late:-0}" -le 40 ]
}

@test "fwd-post: O_NONBLOCK write end (set before the fork, by the parent later, by the child): EAGAIN exactly when the pipe is full" {
	local w
	for w in before later child; do
		run prun nonblock "$w"
		cat "$OUT"
		[ "$status" -eq 0 ]
		remote
		grep -qx "nonblock $w: 65536 of 65536 bytes, then Resource temporarily unavailable" "$OUT"
		grep -qx "nonblock: child exit 0" "$OUT"
	done
}

@test "fwd-post: RFORK_WRITE_BEHIND=0: every write synchronous, the first write after the reader closed fails; bulk still whole" {
	local WB=0
	run prun epipe ign
	cat "$OUT"
	[ "$status" -eq 0 ]
	remote
	grep -qx "epipe: write1 -1 Broken pipe" "$OUT"
	grep -qx "epipe: write2 -1 Broken pipe" "$OUT"
	run prun epipe dfl
	cat "$OUT"
	[ "$(cat "$OUT")" = "epipe: child killed by 13" ]
	run prun bulk 4
	cat "$OUT"
	[ "$status" -eq 0 ]
	grep -qx "bulk: 4194304 bytes in order, then EOF" "$OUT"
	grep -qx "bulk: child exit 0" "$OUT"
}
