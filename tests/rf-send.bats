#!/usr/bin/env bats
# rf-send: images between test hosts (network namespaces), and every way it can fail.

load net

setup_file() {
	th_up 2
}

teardown_file() {
	th_down
}

teardown() {
	inh 1 tc qdisc del dev eth0 root 2>/dev/null || true
	[ -z "$MPID" ] || kill -KILL "$MPID" 2>/dev/null || true
	[ -z "$RPID" ] || kill -KILL "$RPID" 2>/dev/null || true
}

# snapsend ARGS...: rf-snap $MPID | rf-send ARGS from host 1.
snapsend() {
	"$BIN/rf-snap" "$MPID" | inh 1 "$BIN/rf-send" "$@"
}

@test "rf-send: moves a process from h1 to h2; it runs there with its memory intact" {
	migrant 1 4
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr snapsend -k "$KEY" "$(addr 2)"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	[ "$(jq -r .host <<<"$output")" = "${PFX}2" ]
	[ "$(jq -r .bytes <<<"$output")" -gt $((4 << 20)) ]
	[ "$RPID" -ne "$MPID" ]
	[ "$(pstate "$RPID")" != T ]
	check_ok "$RPID" "${PFX}2"
	# the restored copy has the image's user, not the server's root
	[ "$(stat -c %U "/proc/$RPID")" = nobody ]
	# the original is untouched: still stopped, and fine once resumed
	[ "$(pstate "$MPID")" = T ]
	kill -CONT "$MPID"
	check_ok "$MPID" "${PFX}1"
	wait_log 2 "pid $RPID runs"
}

@test "rf-send: -P shows bytes, rate and ETA on stderr, nothing on stdout but the reply" {
	migrant 1 8
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr snapsend -P -k "$KEY" "$(addr 2)"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *" of "*"/s, ETA "* ]]
	check_ok "$RPID" "${PFX}2"
}

@test "rf-send: a wrong key is refused with 77, nothing runs, the server logs it" {
	migrant 1 1
	kill -STOP "$MPID"
	wait_state "$MPID" T
	head -c 32 /dev/urandom > "$TDIR/wrong"
	chmod 600 "$TDIR/wrong"
	run --separate-stderr snapsend -k "$TDIR/wrong" "$(addr 2)"
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"authentication failed"* ]]
	wait_log 2 "authentication failed: wrong key"
	only_server 2
	[ "$(pstate "$MPID")" = T ]
	serving 2
}

@test "rf-send: a key file others can read is refused with 77 before connecting" {
	cp "$KEY" "$TDIR/open"
	chmod 644 "$TDIR/open"
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$TDIR/open" "$(addr 2)" < /dev/null
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"group or others"* ]]
	head -c 16 /dev/urandom > "$TDIR/short"
	chmod 600 "$TDIR/short"
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$TDIR/short" "$(addr 2)" < /dev/null
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"need 32"* ]]
	run inh 1 "$BIN/rf-send" -k "$TDIR/nonexistent" "$(addr 2)" < /dev/null
	[ "$status" -eq 66 ]
}

@test "rf-send: the key comes from RFORK_KEY when -k is not given" {
	run --separate-stderr env RFORK_KEY="$TDIR/nonexistent" "$BIN/rf-send" "$(addr 2)" < /dev/null
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"$TDIR/nonexistent"* ]]
	run env RFORK_KEY="$KEY" "$TH" -p "$PFX" exec "${PFX}1" "$BIN/rf-send" "$(addr 2)" < /dev/null
	[ "$status" -eq 66 ]	# empty image, said by the server's rf-restore
}

@test "rf-send: no server on the port is 69" {
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2):7099" < /dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"refused"* ]]
	run inh 1 "$BIN/rf-send" -t 1 -k "$KEY" 10.77.0.99 < /dev/null
	[ "$status" -eq 69 ]
}

@test "rf-send: a peer that is not an rfork server is a protocol error (76)" {
	bgin 2 timeout 10 socat TCP-LISTEN:7098,reuseaddr SYSTEM:'head -c 100 /dev/urandom'
	sleep 0.3
	run --separate-stderr inh 1 "$BIN/rf-send" -t 2 -k "$KEY" "$(addr 2):7098" < /dev/null
	[ "$status" -eq 76 ]
	[[ "$stderr" == *"does not speak rfork"* ]]
	kill "$BGPID" 2>/dev/null || true
	wait "$BGPID" || true
}

@test "rf-send: a corrupt image is rejected with 65, nothing runs there" {
	migrant 1 2
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	size=$(stat -c %s "$TDIR/img")
	printf '\x5a' | dd of="$TDIR/img" bs=1 seek=$((size / 2)) conv=notrunc status=none
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < "$TDIR/img"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"restore failed"* ]]
	only_server 2
	serving 2
}

@test "rf-send: a truncated image is rejected with 65, nothing runs there" {
	migrant 1 2
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	head -c $(($(stat -c %s "$TDIR/img") - 5000)) "$TDIR/img" > "$TDIR/trunc"
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < "$TDIR/trunc"
	[ "$status" -eq 65 ]
	only_server 2
	head -c 3000 "$TDIR/img" > "$TDIR/trunc"
	run inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < "$TDIR/trunc"
	[ "$status" -eq 65 ]
	only_server 2
	serving 2
}

@test "rf-send: junk input is 65 and empty input 66, relayed from rf-restore" {
	run inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < /dev/null
	[ "$status" -eq 66 ]
	head -c 100000 /dev/urandom > "$TDIR/junk"
	run inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < "$TDIR/junk"
	[ "$status" -eq 65 ]
	only_server 2
}

@test "rf-send: a root server refuses a root image (77) unless started with -R" {
	migrant 1 1 root
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr snapsend -k "$KEY" "$(addr 2)"
	[ "$status" -eq 77 ]
	only_server 2
	[ "$(pstate "$MPID")" = T ]
	bgin 2 "$BIN/rf-server" -R -k "$KEY" -l "$(addr 2):7078" 2> "$TDIR/r.log"
	spid=$BGPID
	sleep 0.3
	run --separate-stderr snapsend -k "$KEY" "$(addr 2):7078"
	kill "$spid"
	wait "$spid" || true
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	check_ok "$RPID" "${PFX}2"
	[ "$(stat -c %U "/proc/$RPID")" = root ]
}

@test "rf-send: the server killed mid-stream fails the send, the original is unchanged" {
	migrant 1 64
	kill -STOP "$MPID"
	wait_state "$MPID" T
	bgin 2 "$BIN/rf-server" -k "$KEY" -l "$(addr 2):7078" 2> "$TDIR/k.log"
	spid=$BGPID
	sleep 0.3
	inh 1 tc qdisc replace dev eth0 root tbf rate 40mbit burst 32kbit latency 400ms
	( sleep 1.5; kill -KILL "$spid" ) &
	run --separate-stderr snapsend -t 5 -k "$KEY" "$(addr 2):7078"
	inh 1 tc qdisc del dev eth0 root
	[ "$status" -ne 0 ]
	[[ "$status" -eq 69 || "$status" -eq 76 ]]
	grep -q "listening" "$TDIR/k.log"
	! grep -q " runs" "$TDIR/k.log"
	only_server 2
	[ "$(pstate "$MPID")" = T ]
	kill -CONT "$MPID"
	check_ok "$MPID" "${PFX}1"
}

@test "rf-send: the sender killed mid-stream leaves nothing on the server, which keeps serving" {
	migrant 1 64
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/big" "$MPID"
	inh 1 tc qdisc replace dev eth0 root tbf rate 40mbit burst 32kbit latency 400ms
	bgin 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" < "$TDIR/big" > /dev/null 2> "$TDIR/send.err"
	spid=$BGPID
	sleep 1.5
	kill -KILL "$spid"
	wait "$spid" || true
	inh 1 tc qdisc del dev eth0 root
	wait_log 2 "aborted after"
	only_server 2
	[ "$(pstate "$MPID")" = T ]
	serving 2
}

@test "rf-send: the link going down mid-transfer fails within the timeout, nothing is left" {
	migrant 1 64
	kill -STOP "$MPID"
	wait_state "$MPID" T
	inh 1 tc qdisc replace dev eth0 root tbf rate 40mbit burst 32kbit latency 400ms
	( sleep 1.5; inh 2 ip link set eth0 down ) &
	downer=$!
	run --separate-stderr snapsend -t 3 -k "$KEY" "$(addr 2)"
	wait "$downer"
	inh 1 tc qdisc del dev eth0 root
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"timed out"* ]]
	# the server gives up too (its timeout is 3 s) and undoes the restore
	wait_log 2 "aborted after"
	only_server 2
	inh 2 ip link set eth0 up
	[ "$(pstate "$MPID")" = T ]
	kill -CONT "$MPID"
	check_ok "$MPID" "${PFX}1"
	sleep 0.5
	serving 2
}

@test "rf-send: on the wire: neither the key nor the image in clear" {
	migrant 1 1
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	bgin 1 socat -r "$TDIR/c2s" -R "$TDIR/s2c" TCP-LISTEN:7080,bind=127.0.0.1,reuseaddr \
	    TCP:"$(addr 2)":7077
	sleep 0.3
	run inh 1 "$BIN/rf-send" -k "$KEY" 127.0.0.1:7080 < "$TDIR/img"
	wait "$BGPID" || true
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	[ "$(stat -c %s "$TDIR/c2s")" -gt "$(stat -c %s "$TDIR/img")" ]
	# python: the dumps are binary
	python3 - "$TDIR" "$KEY" <<-'PY'
	import sys
	d, key = sys.argv[1], open(sys.argv[2], 'rb').read()
	wire = open(d + '/c2s', 'rb').read() + open(d + '/s2c', 'rb').read()
	img = open(d + '/img', 'rb').read()
	assert b'rfork\x00' in wire, 'no handshake captured'
	assert key not in wire, 'key on the wire'
	assert b'RFORKIMG' not in wire and img[:4096] not in wire, 'image in clear'
	assert b'"pid"' not in wire, 'reply in clear'
	PY
}

@test "rf-send: usage errors are 64, -h prints the synopsis" {
	run "$BIN/rf-send"
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-send"* ]]
	run "$BIN/rf-send" -h
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-send"* ]]
	run "$BIN/rf-send" -t 0 h2
	[ "$status" -eq 64 ]
	run "$BIN/rf-send" -k "$KEY" 'h2:99999' < /dev/null
	[ "$status" -eq 64 ]
}
