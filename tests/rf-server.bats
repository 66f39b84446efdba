#!/usr/bin/env bats
# rf-server: serving many peers, bad peers, stopping, credentials.

load net
load helpers

setup_file() {
	th_up 2
}

teardown_file() {
	th_down
}

teardown() {
	local p
	for p in $MPID $RPID ${MPIDS[@]} ${RPIDS[@]}; do
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -z "$SPID" ] || kill -KILL "$SPID" 2>/dev/null || true
}

# own_server [ARGS]: a second server in host 2 on port 7078; sets SPID, SLOG.
own_server() {
	SLOG=$TDIR/own.$BATS_TEST_NUMBER.log
	bgin 2 "$BIN/rf-server" -k "$KEY" -l "$(addr 2):7078" "$@" 2> "$SLOG"
	SPID=$BGPID
	for _ in $(seq 100); do
		grep -q listening "$SLOG" && return 0
		sleep 0.05
	done
	cat "$SLOG" >&2
	return 1
}

@test "rf-server: listens on loopback unless told otherwise" {
	bgin 2 "$BIN/rf-server" -k "$KEY" 2> "$TDIR/lo.log"
	SPID=$BGPID
	sleep 0.3
	run inh 2 ss -ltnH
	[[ "$output" == *"127.0.0.1:7077 "* ]]
	grep -q "listening on 127.0.0.1:7077" "$TDIR/lo.log"
	run inh 1 "$BIN/rf-send" -t 2 -k "$KEY" "$(addr 2):7077" < /dev/null
	[ "$status" -eq 66 ]	# that was the test host's own server on 10.77.0.2
	kill "$SPID"
	wait "$SPID" || true
	# ":PORT" is every address
	bgin 2 "$BIN/rf-server" -k "$KEY" -l :7079 2> "$TDIR/any.log"
	SPID=$BGPID
	sleep 0.3
	run inh 2 ss -ltnH
	[[ "$output" == *"0.0.0.0:7079 "* ]]
	run inh 1 "$BIN/rf-send" -t 2 -k "$KEY" "$(addr 2):7079" < /dev/null
	[ "$status" -eq 66 ]
}

@test "rf-server: a silent peer times out and is logged; others are served meanwhile" {
	bgin 1 bash -c "exec 3<>/dev/tcp/$(addr 2)/7077; sleep 6"
	quiet=$BGPID
	sleep 0.2
	migrant 1 1
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr bash -c "'$BIN/rf-snap' $MPID | '$TH' -p $PFX exec ${PFX}1 '$BIN/rf-send' -k '$KEY' $(addr 2)"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	check_ok "$RPID" "${PFX}2"
	wait_log 2 "handshake: .*timed out"
	kill "$quiet" 2>/dev/null || true
	wait "$quiet" || true
	serving 2
}

@test "rf-server: a huge frame length is refused with 76 before anything is allocated" {
	run --separate-stderr inh 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2)" hugelen
	[ "$status" -eq 76 ]
	[[ "$output" == *"frame length 4294967280 out of range"* ]]
	wait_log 2 "frame length 4294967280 out of range"
	only_server 2
	serving 2
}

@test "rf-server: a forged frame after the handshake is refused with 76" {
	run inh 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2)" forged
	[ "$status" -eq 76 ]
	[[ "$output" == *"fails authentication"* ]]
	only_server 2
	serving 2
}

@test "rf-server: an unknown request is refused with 76" {
	run inh 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2)" op frobnicate
	[ "$status" -eq 76 ]
	[[ "$output" == *'unknown request \"frobnicate\"'* ]]
	serving 2
}

@test "rf-server: a sender that stalls mid-image is dropped and its restore undone" {
	migrant 1 2
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	bgin 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2)" stall < "$TDIR/img"
	wait_log 2 "aborted after 4096 bytes: receive: .*timed out"
	wait "$BGPID" || true
	only_server 2
	serving 2
}

@test "rf-server: a process whose sender never commits is killed, never runs" {
	migrant 1 2
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	run inh 1 "$TESTS/netpeer" -k "$KEY" "$(addr 2)" nocommit < "$TDIR/img"
	[ "$status" -eq 0 ]
	p=$(jq -r .pid <<<"$output")
	[ "$p" -gt 0 ]
	wait_log 2 "pid $p killed: no commit"
	only_server 2
	# it never ran: the victim's status file has only the original's line
	[ "$(grep -c . "$MST")" -eq 1 ]
}

@test "rf-server: 8 concurrent migrations to one server all arrive intact" {
	MPIDS=() RPIDS=() MSTS=()
	for i in $(seq 8); do
		migrant 1 4
		kill -STOP "$MPID"
		wait_state "$MPID" T
		MPIDS+=("$MPID") MSTS+=("$MST")
	done
	MPID=
	senders=()
	for i in $(seq 8); do
		( "$BIN/rf-snap" "${MPIDS[i-1]}" |
		    inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2)" > "$TDIR/c$i.out" 2>&1
		  echo $? > "$TDIR/c$i.rc" ) &
		senders+=($!)
	done
	wait "${senders[@]}"
	for i in $(seq 8); do
		[ "$(cat "$TDIR/c$i.rc")" -eq 0 ] || { cat "$TDIR/c$i.out"; false; }
		RPIDS+=("$(jq -r .pid "$TDIR/c$i.out")")
		[ "$(jq -r .host "$TDIR/c$i.out")" = "${PFX}2" ]
	done
	[ "$(printf '%s\n' "${RPIDS[@]}" | sort -u | wc -l)" -eq 8 ]
	for i in $(seq 8); do
		MST=${MSTS[i-1]} check_ok "${RPIDS[i-1]}" "${PFX}2"
	done
}

@test "rf-server: SIGTERM stops it cleanly; the processes it started keep running" {
	own_server
	migrant 1 1
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr bash -c "'$BIN/rf-snap' $MPID | '$TH' -p $PFX exec ${PFX}1 '$BIN/rf-send' -k '$KEY' $(addr 2):7078"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	kill -TERM "$SPID"
	rc=0
	wait "$SPID" || rc=$?
	[ "$rc" -eq 0 ]
	SPID=
	grep -q "stopped$" "$SLOG"
	check_ok "$RPID" "${PFX}2"
	run inh 1 "$BIN/rf-send" -k "$KEY" "$(addr 2):7078" < /dev/null
	[ "$status" -eq 69 ]
}

@test "rf-server: SIGTERM during a transfer undoes that restore" {
	own_server
	migrant 1 64
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/big" "$MPID"
	inh 1 tc qdisc add dev eth0 root tbf rate 40mbit burst 32kbit latency 400ms
	bgin 1 "$BIN/rf-send" -k "$KEY" "$(addr 2):7078" < "$TDIR/big" > /dev/null 2> "$TDIR/s.err"
	cpid=$BGPID
	sleep 1.5
	kill -TERM "$SPID"
	rc=0
	wait "$SPID" || rc=$?
	[ "$rc" -eq 0 ]
	SPID=
	rc=0
	wait "$cpid" || rc=$?
	inh 1 tc qdisc del dev eth0 root
	[ "$rc" -ne 0 ]
	grep -q "aborted after" "$SLOG"
	only_server 2
}

@test "rf-server: a server not run as root restores only its own user's processes" {
	cp "$KEY" "$TDIR/nkey"
	chown nobody "$TDIR/nkey"
	SLOG=$TDIR/nobody.log
	bgin 2 setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$BIN/rf-server" -k "$TDIR/nkey" -l "$(addr 2):7078" 2> "$SLOG"
	SPID=$BGPID
	sleep 0.3
	grep -q "restores only its own user's processes" "$SLOG"
	migrant 1 1 root
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr bash -c "'$BIN/rf-snap' $MPID | '$TH' -p $PFX exec ${PFX}1 '$BIN/rf-send' -k '$KEY' $(addr 2):7078"
	[ "$status" -eq 77 ]
	grep -q "restore failed (exit 77)" "$SLOG"
	kill -KILL "$MPID"
	# its own user's process it restores
	migrant 1 1 nobody
	kill -STOP "$MPID"
	wait_state "$MPID" T
	run --separate-stderr bash -c "'$BIN/rf-snap' $MPID | '$TH' -p $PFX exec ${PFX}1 '$BIN/rf-send' -k '$KEY' $(addr 2):7078"
	[ "$status" -eq 0 ]
	RPID=$(jq -r .pid <<<"$output")
	check_ok "$RPID" "${PFX}2"
	[ "$(stat -c %U "/proc/$RPID")" = nobody ]
	kill -KILL "$RPID"
	kill "$SPID"
	wait "$SPID" || true
	SPID=
	only_server 2
	[ "$(pstate "$MPID")" = T ]
}

@test "rf-server: bad options and bad keys" {
	run "$BIN/rf-server" -h
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-server"* ]]
	run "$BIN/rf-server" extra
	[ "$status" -eq 64 ]
	run "$BIN/rf-server" -t x -k "$KEY"
	[ "$status" -eq 64 ]
	cp "$KEY" "$TDIR/gkey"
	chmod 640 "$TDIR/gkey"
	run "$BIN/rf-server" -k "$TDIR/gkey"
	[ "$status" -eq 77 ]
	[[ "$output" == *"group or others"* ]]
	run inh 2 "$BIN/rf-server" -k "$KEY" -l "$(addr 2):7077"
	[ "$status" -eq 75 ]	# the test host's server has it
	[[ "$output" == *"in use"* ]]
}

# fork_img MIB [USER]: a stopped victim's image in $TDIR/img (for rf-send -F).
fork_img() {
	migrant 1 "$1" "${2:-nobody}"
	kill -STOP "$MPID"
	wait_state "$MPID" T
	"$BIN/rf-snap" -o "$TDIR/img" "$MPID"
	kill -KILL "$MPID"
}

# The fork op restores C while its image still arrives (docs/FORK.md step 6):
# whatever goes wrong mid-stream, the sender hears why and host 2 keeps nothing.
@test "rf-server: a fork image cut short or corrupt is refused with 65; nothing is left" {
	fork_img 4
	size=$(stat -c %s "$TDIR/img")
	head -c $((size / 2)) "$TDIR/img" > "$TDIR/half"
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" -F 3 -p 4242 "$(addr 2)" < "$TDIR/half"
	[ "$status" -eq 65 ]
	[[ "$stderr" == "rf-send: "*"image"* ]]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
	only_server 2
	flip_byte "$TDIR/img" $((size - 8192))
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" -F 3 -p 4242 "$(addr 2)" < "$TDIR/img"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"checksum"* ]]
	only_server 2
	serving 2
}

@test "rf-server: a fork image refused at its first bytes: the rest is read, the sender hears why" {
	fork_img 8 root
	run --separate-stderr inh 1 "$BIN/rf-send" -k "$KEY" -F 3 -p 4242 "$(addr 2)" < "$TDIR/img"
	[ "$status" -eq 77 ]
	[[ "$stderr" == *"root"* ]]
	only_server 2
	serving 2
}

@test "rf-server: a fork sender killed mid-image: the half-built tree goes, nothing is left" {
	fork_img 8
	mkfifo "$TDIR/fifo"
	{ head -c 3000000 "$TDIR/img"; sleep 30; } > "$TDIR/fifo" &
	feeder=$!
	bgin 1 "$BIN/rf-send" -k "$KEY" -F 3 -p 4242 "$(addr 2)" < "$TDIR/fifo"
	# the handler, init and the proxy, rebuilding C from the first bytes
	for _ in $(seq 100); do
		[ "$(ip netns pids "${PFX}2" | grep -cvx "$(srvpid 2)")" -ge 3 ] && break
		sleep 0.05
	done
	[ "$(ip netns pids "${PFX}2" | grep -cvx "$(srvpid 2)")" -ge 3 ]
	kill -KILL "$BGPID"
	wait_log 2 "fork: aborted after"
	kill "$feeder"
	pkill -P "$feeder" sleep || true
	only_server 2
	serving 2
}
