#!/usr/bin/env bats
# rf-recv: one-shot receiver for pipelines, between test hosts.

load net

setup_file() {
	th_up 2
}

teardown_file() {
	th_down
}

teardown() {
	[ -z "$MPID" ] || kill -KILL "$MPID" 2>/dev/null || true
	[ -z "$RPID" ] || kill -KILL "$RPID" 2>/dev/null || true
	[ -z "$LPID" ] || kill -KILL "$LPID" 2>/dev/null || true
}

# recv_to CMD: rf-recv in host 2 on port 7079 piped into CMD; sets LPID, ROUT, RERR.
recv_to() {
	ROUT=$TDIR/r$BATS_TEST_NUMBER.out RERR=$TDIR/r$BATS_TEST_NUMBER.err
	bgin 2 bash -c "'$BIN/rf-recv' -t 3 -k '$KEY' -l $(addr 2):7079 | $1" > "$ROUT" 2> "$RERR"
	LPID=$BGPID
	for _ in $(seq 100); do
		inh 2 ss -ltnH | grep -q ":7079 " && return 0
		sleep 0.05
	done
	return 1
}

@test "rf-recv: rf-recv | rf-restore runs the process sent by rf-send" {
	recv_to "'$BIN/rf-restore'"
	migrant 1 2
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr bash -c "'$BIN/rf-snap' $MPID | '$TH' -p $PFX exec ${PFX}1 '$BIN/rf-send' -k '$KEY' $(addr 2):7079"
	[ "$status" -eq 0 ]
	[ "$(jq -r .host <<<"$output")" = "${PFX}2" ]
	[ "$(jq -r .bytes <<<"$output")" -gt $((2 << 20)) ]
	wait "$LPID"
	LPID=
	RPID=$(jq -r .pid "$ROUT")
	check_ok "$RPID" "${PFX}2"
}

@test "rf-recv: writes exactly the bytes sent, and turns away a wrong key first" {
	recv_to "cat"
	head -c 32 /dev/urandom > "$TDIR/wrong"
	chmod 600 "$TDIR/wrong"
	head -c 3000000 /dev/urandom > "$TDIR/data"
	run inh 1 "$BIN/rf-send" -k "$TDIR/wrong" "$(addr 2):7079" < "$TDIR/data"
	[ "$status" -eq 77 ]
	run inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2):7079" < "$TDIR/data"
	[ "$status" -eq 0 ]
	[ "$(jq -r .bytes <<<"$output")" -eq 3000000 ]
	wait "$LPID"
	LPID=
	cmp "$TDIR/data" "$ROUT"
	grep -q "authentication failed: wrong key" "$RERR"
}

@test "rf-recv: a reader that quits early is reported to the sender (74)" {
	recv_to "head -c 10 > /dev/null"
	head -c 5000000 /dev/urandom > "$TDIR/data"
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2):7079" < "$TDIR/data"
	[ "$status" -eq 74 ]
	[[ "$stderr" == *"output"* ]]
	rc=0
	wait "$LPID" || rc=$?
	LPID=
	grep -q "rf-recv: output" "$RERR"
}

@test "rf-recv: a huge frame length or a sender that dies mid-image is a protocol error" {
	recv_to "cat > /dev/null; echo \${PIPESTATUS[0]} >&2"
	run inh 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2):7079" hugelen
	[ "$status" -eq 76 ]
	wait "$LPID" || true
	LPID=
	grep -q "frame length 4294967280 out of range" "$RERR"
	[ "$(tail -1 "$RERR")" = 76 ]

	recv_to "cat > /dev/null; echo \${PIPESTATUS[0]} >&2"
	head -c 100000 /dev/urandom > "$TDIR/data"
	bgin 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2):7079" stall < "$TDIR/data"
	sleep 0.5
	kill -KILL "$BGPID"
	wait "$LPID" || true
	LPID=
	grep -q "before the end of the image" "$RERR"
	[ "$(tail -1 "$RERR")" = 76 ]
}

@test "rf-recv: usage 64, bad key 77" {
	run "$BIN/rf-recv" -h
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-recv"* ]]
	run "$BIN/rf-recv" foo
	[ "$status" -eq 64 ]
	cp "$KEY" "$TDIR/okey"
	chmod 604 "$TDIR/okey"
	run "$BIN/rf-recv" -k "$TDIR/okey"
	[ "$status" -eq 77 ]
}
