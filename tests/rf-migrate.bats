#!/usr/bin/env bats
# rf-migrate: stop, snap, send, and only then kill; between test hosts.

load net

MIG=$ROOT/sh/rf-migrate

setup_file() {
	th_up 2
}

teardown_file() {
	th_down
}

teardown() {
	inh 1 ip link set eth0 up 2>/dev/null || true
	inh 1 tc qdisc del dev eth0 root 2>/dev/null || true
	[ -z "$MPID" ] || kill -KILL "$MPID" 2>/dev/null || true
	[ -z "$RPID" ] || kill -KILL "$RPID" 2>/dev/null || true
}

@test "rf-migrate: moves a running process to h2 and kills the original" {
	migrant 1 4
	run --separate-stderr inh 1 "$MIG" -K "$KEY" "$MPID" "$(addr 2)"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	[ "$(jq -r .host <<<"$output")" = "${PFX}2" ]
	[[ "$stderr" == *"$MPID: stopped"*"sending to"*"running on ${PFX}2 as pid $RPID"*"original killed"* ]]
	check_ok "$RPID" "${PFX}2"
	sleep 0.2
	[ -z "$(pstate "$MPID")" ] || [ "$(pstate "$MPID")" = Z ]
}

@test "rf-migrate: -k keeps the original stopped" {
	migrant 1 1
	run --separate-stderr inh 1 "$MIG" -k -K "$KEY" "$MPID" "$(addr 2)"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	[[ "$stderr" == *"original kept stopped"* ]]
	[ "$(pstate "$MPID")" = T ]
	check_ok "$RPID" "${PFX}2"
}

@test "rf-migrate: -n writes the image to a file and the original goes on" {
	migrant 1 1
	run --separate-stderr inh 1 "$MIG" -n -o "$TDIR/m.img" "$MPID"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"image written to $TDIR/m.img"* ]]
	[ "$(pstate "$MPID")" != T ]
	check_ok "$MPID" "${PFX}1"
	"$BIN/rf-restore" -n -i "$TDIR/m.img" | jq -e . > /dev/null
}

@test "rf-migrate: a wrong key fails with 77 and the original resumes unchanged" {
	migrant 1 1
	head -c 32 /dev/urandom > "$TDIR/wrong"
	chmod 600 "$TDIR/wrong"
	run --separate-stderr inh 1 "$MIG" -K "$TDIR/wrong" "$MPID" "$(addr 2)"
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"original resumed"* ]]
	[ "$(pstate "$MPID")" != T ]
	check_ok "$MPID" "${PFX}1"
	only_server 2
}

@test "rf-migrate: no server (69); a process stopped before stays stopped" {
	migrant 1 1
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr inh 1 "$MIG" -K "$KEY" "$MPID" "$(addr 2):7099"
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"already stopped"*"left stopped"* ]]
	[ "$(pstate "$MPID")" = T ]
	kill -CONT "$MPID"
	check_ok "$MPID" "${PFX}1"
}

@test "rf-migrate: the link going down mid-transfer: 69, and the original goes on unchanged" {
	migrant 1 64
	inh 1 tc qdisc replace dev eth0 root tbf rate 40mbit burst 32kbit latency 400ms
	( sleep 1.5; inh 1 ip link set eth0 down ) &
	downer=$!
	run --separate-stderr inh 1 "$MIG" -t 2 -K "$KEY" "$MPID" "$(addr 2)"
	wait "$downer"
	inh 1 ip link set eth0 up
	inh 1 tc qdisc del dev eth0 root
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"original resumed"* ]]
	[ "$(pstate "$MPID")" != T ]
	check_ok "$MPID" "${PFX}1"
	wait_log 2 "aborted after"
	only_server 2
}

@test "rf-migrate: no such process 66, usage 64" {
	run "$MIG" 999999999 h2
	[ "$status" -eq 66 ]
	run "$MIG" 1
	[ "$status" -eq 64 ]
	run "$MIG" -h
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-migrate"* ]]
	run "$MIG" notapid h2
	[ "$status" -eq 64 ]
}
