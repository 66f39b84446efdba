#!/usr/bin/env bats
# rf-agent, rf-run's shipper of fork children (docs/FORK.md "The agent"),
# between the test hosts: forks go to host 2 through it without an rf-snap
# or rf-send, it ends with the program, it refuses what is not its own, and
# when it is gone or cannot help, librfork starts the tools as before.

load net
load helpers

setup_file() {
	th_up 2 "3 -R"
	# tools where rf-snap and rf-send only fail, loudly; rf-run still
	# starts the real agent (its own directory's)
	mkdir -p "$TDIR/notools"
	for t in rf-snap rf-send; do
		printf '#!/bin/sh\necho "%s must not run" >&2\nexit 70\n' "$t" > "$TDIR/notools/$t"
		chmod +x "$TDIR/notools/$t"
	done
	ln -s "$BIN/rf-stub" "$TDIR/notools/rf-stub"
}

teardown_file() {
	th_down
}

setup() {
	MARK=agent$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
	SPID= APID= CG= RMEM=
}

teardown() {
	local p
	[ -z "$SPID" ] || kill -KILL "$SPID" 2>/dev/null || true
	[ -z "$APID" ] || kill -KILL "$APID" 2>/dev/null || true
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -z "$RMEM" ] || inh 2 sysctl -qw net.ipv4.tcp_rmem="$RMEM"
	# a freezer cgroup of a test: thawed, so that the kills land; empty
	# once its server is gone
	if [ -n "$CG" ]; then
		echo THAWED > "$CG/freezer.state" 2>/dev/null || true
		for _ in $(seq 100); do
			rmdir "$CG" 2>/dev/null && break
			sleep 0.05
		done
	fi
}

# rrun PROG ARGS...: PROG under rf-run in host 1, forks to $RHOST (host 2).
rrun() {
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "${RHOST:-$(addr 2)}" "$@" > "$OUT"
}

# twice.py GO [FIRST]: forks a child that prints its host; waits for the
# file GO (printing "waiting" and RFORK_AGENT); forks another.  With FIRST,
# waits for that file before the first fork, printing "ready".
twice_py() {
	cat > "$TDIR/twice.py" <<'PY'
import os, socket, sys, time
def child():
    pid = os.fork()
    if pid == 0:
        print("child", socket.gethostname(), flush=True)
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    assert st == 0
def wait(path, *say):
    print(*say, flush=True)
    while not os.path.exists(path):
        time.sleep(0.01)
if len(sys.argv) > 2:
    wait(sys.argv[2], "ready")
child()
wait(sys.argv[1], "waiting", os.environ.get("RFORK_AGENT", "-"))
child()
PY
}

# refused_here WHO: twice.py's two children ran here, each fork logged as
# refused by the server in WHO's words; then the own server stops, and
# nothing of ours is left in host 2.
refused_here() {
	cat "$OUT" "$OUT.err"
	[ "$(grep -c "^child ${PFX}1$" "$OUT")" -eq 2 ]
	[ "$(grep -c "fork stays local: $1: .*root" "$OUT.err")" -eq 2 ]
	none_marked "$MARK"
	kill -TERM "$SPID"
	wait "$SPID" || true
	SPID=
	[ -z "$(ip netns pids "${PFX}2" | xargs -r ps -o comm= -p | grep -vxE 'rf-server(-idle)?')" ]
}

# agent_pids NAME: the agent's processes (master and workers) by socket name.
agent_pids() { pgrep -f -- "-l $1( |$)" || true; }

@test "rf-agent: under rf-run a fork goes remote without rf-snap or rf-send; RFORK_AGENT=0 needs them" {
	run --separate-stderr rrun env RFORK_BINDIR="$TDIR/notools" "$TESTS/rforkhost" 7
	echo "$stderr"
	cat "$OUT"
	[ "$status" -eq 0 ]
	grep -q "^child .* host ${PFX}2$" "$OUT"
	grep -q "status exit 7$" "$OUT"
	[[ "$stderr" != *"must not run"* ]]
	grep -q "stub connected on the fork's connection" "$LOGDIR/${PFX}2.log"
	# the same without the agent: the tools are started, and fail
	run --separate-stderr rrun env RFORK_AGENT=0 RFORK_BINDIR="$TDIR/notools" \
	    "$TESTS/rforkhost" 7
	echo "$stderr"
	[ "$status" -eq 0 ]
	grep -q "^child .* host ${PFX}1$" "$OUT"
	[[ "$stderr" == *"fork stays local: rf-send must not run"* ]]
	none_marked "$MARK"
}

@test "rf-agent: it ends with the program, and its held connections with it" {
	local before name
	before=$(busy_children 2 | wc -l)
	twice_py
	touch "$TDIR/go.$BATS_TEST_NUMBER"
	run rrun /usr/bin/python3 "$TDIR/twice.py" "$TDIR/go.$BATS_TEST_NUMBER"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(grep -c "^child ${PFX}2$" "$OUT")" -eq 2 ]
	name=$(awk '/^waiting/ { print $2 }' "$OUT")
	[[ "$name" == @rfork-agent.* ]]
	for _ in $(seq 50); do
		[ -z "$(agent_pids "$name")" ] && break
		sleep 0.1
	done
	[ -z "$(agent_pids "$name")" ]
	# the server's handlers of held connections end as the agent does
	for _ in $(seq 50); do
		[ "$(busy_children 2 | wc -l)" -le "$before" ] && break
		sleep 0.1
	done
	[ "$(busy_children 2 | wc -l)" -le "$before" ]
	none_marked "$MARK"
}

@test "rf-agent: host 2's server restarted between two forks: both children run there" {
	local go=$TDIR/go.$BATS_TEST_NUMBER
	twice_py
	own_server 7191 -- -R -k "$KEY"
	RHOST=$(addr 2):7191 rrun /usr/bin/python3 "$TDIR/twice.py" "$go" &
	bg=$!
	wait_line "$OUT" "^waiting"
	# the agent's connections, held for the next fork, die with the server
	kill -TERM "$SPID"
	wait "$SPID" || true
	own_server 7191 -- -R -k "$KEY"
	touch "$go"
	wait "$bg"
	cat "$OUT"
	[ "$(grep -c "^child ${PFX}2$" "$OUT")" -eq 2 ]
	grep -q "stub connected" "$SLOG"
	none_marked "$MARK"
}

@test "rf-agent: refused after its image (root, to a server without -R): local children, nothing left there" {
	local go=$TDIR/go.$BATS_TEST_NUMBER
	twice_py
	# without the early stub the agent hears the no (the credentials are
	# checked on the metadata) and says it to the shipper
	own_server 7192 -- -k "$KEY"
	touch "$go"
	RHOST=$(addr 2):7192 rrun env RFORK_EARLY_STUB=0 /usr/bin/python3 "$TDIR/twice.py" \
	    "$go" 2> "$OUT.err"
	refused_here "rf-agent: $(addr 2):7192"
}

# held N: wait up to 5 s until host 2's own server (port 7193) has N
# connections open, the agent's held ones once a fork is over.
held() {
	local _
	for _ in $(seq 100); do
		[ "$(inh 2 ss -Htn state established '( sport = :7193 )' | wc -l)" -eq "$1" ] &&
		    return 0
		sleep 0.05
	done
	inh 2 ss -tn >&2; cat "$SLOG" "$OUT" "$OUT.err" >&2
	return 1
}

# stub_holds: wait up to 5 s until an rf-stub in host 1 has a connection to
# the own server (the agent handed it over).
stub_holds() {
	local _
	for _ in $(seq 100); do
		inh 1 ss -Htnp state established '( dport = :7193 )' | grep -q '"rf-stub"' &&
		    return 0
		sleep 0.05
	done
	inh 1 ss -tnp >&2
	return 1
}

@test "rf-agent: refused once the stub has the connection: the stub hears the no, ends unseen; local children" {
	local go=$TDIR/go.$BATS_TEST_NUMBER step bg
	[ -d /sys/fs/cgroup/freezer ] || skip "no freezer cgroup (v1) to stop the server with"
	twice_py
	# the server stopped from the fork's request until the agent has handed
	# the connection to the early stub (docs/FORK.md "The agent", step 5):
	# its no comes after that, whatever the load. The image waits in host
	# 2's kernel meanwhile: its sockets take 16 MiB unread.
	RMEM=$(inh 2 sysctl -n net.ipv4.tcp_rmem)
	inh 2 sysctl -qw net.ipv4.tcp_rmem="4096 16777216 33554432"
	own_server 7193 -- -k "$KEY"
	CG=/sys/fs/cgroup/freezer/rfagent$$.$BATS_TEST_NUMBER
	mkdir "$CG"
	echo "$SPID" > "$CG/cgroup.procs"
	RHOST=$(addr 2):7193 rrun /usr/bin/python3 "$TDIR/twice.py" "$go" "$go.1" 2> "$OUT.err" &
	bg=$!
	# each fork: its line, then the file it waits for
	for step in ready:.1 waiting:; do
		wait_line "$OUT" "^${step%%:*}" 10
		held 2	# the agent's two workers' (rf-agent -n)
		echo FROZEN > "$CG/freezer.state"
		touch "$go${step#*:}"
		stub_holds
		echo THAWED > "$CG/freezer.state"
	done
	wait "$bg"
	# the stub's words (the server's, its host before them), not the agent's
	refused_here "$(addr 2):7193"
}

@test "rf-agent: the agent killed: the next fork starts rf-snap and rf-send and still goes remote" {
	local go=$TDIR/go.$BATS_TEST_NUMBER name
	twice_py
	rrun /usr/bin/python3 "$TDIR/twice.py" "$go" &
	bg=$!
	wait_line "$OUT" "^waiting"
	name=$(awk '/^waiting/ { print $2 }' "$OUT")
	[ -n "$(agent_pids "$name")" ]
	kill -KILL $(agent_pids "$name")
	touch "$go"
	wait "$bg"
	cat "$OUT"
	[ "$(grep -c "^child ${PFX}2$" "$OUT")" -eq 2 ]
	none_marked "$MARK"
}

@test "rf-agent: its workers hung, then killed: the fork waits RFORK_TIMEOUT, starts the tools, goes remote" {
	local go=$TDIR/go.$BATS_TEST_NUMBER name p t0
	twice_py
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_TIMEOUT=2 "$ROOT/sh/rf-run" \
	    -k "$KEY" -H "$(addr 2)" /usr/bin/python3 "$TDIR/twice.py" "$go" > "$OUT" &
	bg=$!
	wait_line "$OUT" "^waiting"
	name=$(awk '/^waiting/ { print $2 }' "$OUT")
	for p in $(agent_pids "$name"); do
		kill -STOP "$p"
	done
	t0=$(date +%s%N)
	touch "$go"
	sleep 1
	kill -KILL $(agent_pids "$name")
	wait "$bg"
	cat "$OUT"
	[ "$(grep -c "^child ${PFX}2$" "$OUT")" -eq 2 ]
	# it waited for the agent's answer (2 s, or the kill), not forever
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 900 ]
	none_marked "$MARK"
}

@test "rf-agent: 20 forks leave its workers with the fds they had" {
	local name p before after
	cat > "$TDIR/batches.py" <<'PY'
import os, socket, sys, time
def child():
    pid = os.fork()
    if pid == 0:
        os._exit(0 if socket.gethostname().endswith("2") else 1)
    _, st = os.waitpid(pid, 0)
    assert st == 0
for n, go in ((2, sys.argv[1]), (20, sys.argv[2])):
    for _ in range(n):
        child()
    print("waiting", os.environ.get("RFORK_AGENT", "-"), flush=True)
    while not os.path.exists(go):
        time.sleep(0.02)
PY
	rrun /usr/bin/python3 "$TDIR/batches.py" "$TDIR/go1.$BATS_TEST_NUMBER" \
	    "$TDIR/go2.$BATS_TEST_NUMBER" &
	bg=$!
	wait_line "$OUT" "^waiting"
	name=$(awk '/^waiting/ { print $2; exit }' "$OUT")
	# each worker's open fds (a moment after a fork: its new connection)
	sleep 0.3
	before=$(for p in $(agent_pids "$name"); do echo "$p $(ls /proc/$p/fd | wc -l)"; done)
	touch "$TDIR/go1.$BATS_TEST_NUMBER"
	for _ in $(seq 500); do
		[ "$(grep -c "^waiting" "$OUT")" -eq 2 ] && break
		sleep 0.02
	done
	[ "$(grep -c "^waiting" "$OUT")" -eq 2 ]
	sleep 0.3
	after=$(for p in $(agent_pids "$name"); do echo "$p $(ls /proc/$p/fd | wc -l)"; done)
	touch "$TDIR/go2.$BATS_TEST_NUMBER"
	wait "$bg"
	echo "before: $before"
	echo "after: $after"
	[ "$before" = "$after" ]
	none_marked "$MARK"
}

# ask NAME [WRAPPER...]: a request to the agent NAME as a shipper makes it
# (lib/rf_agent.h), from python under WRAPPER; prints the agent's answer.
ask() {
	local name=$1
	shift
	inh 1 "$@" /usr/bin/python3 -c '
import array, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\0" + sys.argv[1][1:])
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
req = struct.pack("=I8i256s33s3xQQ", 2, os.getpid(), 1, 1, 0, 3, 0, 0, 3, b"10.77.0.2", b"", 0, 0)
s.sendmsg([req], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [b.fileno()]))])
m = s.recv(600)
print(chr(m[0]), m[1:].decode())' "$name"
}

@test "rf-agent: a request from another user or another pid namespace is refused" {
	local name=@rfork-agent-test.$$
	inh 1 env RFORK_KEY="$KEY" "$BIN/rf-agent" -d -l "$name" "$(addr 2)"
	APID=$(agent_pids "$name" | head -1)
	[ -n "$APID" ]
	run ask "$name" setpriv --reuid nobody --regid nogroup --clear-groups
	echo "$output"
	[ "$output" = "e rf-agent: a request from another user" ]
	run ask "$name" unshare -p -f
	echo "$output"
	[ "$output" = "e rf-agent: a request from another pid namespace" ]
	# TERM: the agent and its workers end
	kill -TERM "$APID"
	for _ in $(seq 50); do
		[ -z "$(agent_pids "$name")" ] && break
		sleep 0.1
	done
	[ -z "$(agent_pids "$name")" ]
	APID=
}

@test "rf-agent: usage errors are 64; a -w pid that is not there 66; a name taken 75" {
	run -64 "$BIN/rf-agent" 10.77.0.2
	run -64 "$BIN/rf-agent" -n 0 -l @x
	run -66 env RFORK_KEY="$KEY" "$BIN/rf-agent" -w 2147483000 -l @rfork-agent-none.$$
	[[ "$output" == *"-w 2147483000"* ]]
	local name=@rfork-agent-taken.$$
	env RFORK_KEY="$KEY" "$BIN/rf-agent" -d -l "$name"
	APID=$(agent_pids "$name" | head -1)
	run -75 env RFORK_KEY="$KEY" "$BIN/rf-agent" -l "$name"
	[[ "$output" == *"$name: Address already in use"* ]]
}
