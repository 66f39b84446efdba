#!/usr/bin/env bats
# Post-copy (docs/FORK.md "Post-copy"): a remote child starts before the
# pages of its big private anonymous mappings have come; they follow on the
# stub's page connection, faulted ones first.  tests/victims/lazymem fills
# 32 MiB with a pattern (every 5th page never touched), forks, and its child
# checks every page from inside, after doing to its memory what the mode says.

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
	MARK=postcopy$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
	ERR=$TDIR/err.$BATS_TEST_NUMBER
	BG=
}

teardown() {
	local p
	inh 1 tc qdisc del dev eth0 root 2> /dev/null || true
	[ -z "$BG" ] || kill -KILL "$BG" 2> /dev/null || true
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2> /dev/null || true
	done
}

# lrun MODE [VAR=VALUE...]: lazymem 32 MODE under rf-run in host 1, its child
# in host 2 (RHOST: another server); stdout in $OUT, stderr in $ERR.
lrun() {
	local mode=$1
	shift
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$@" "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "${RHOST:-$(addr 2)}" "$TESTS/lazymem" 32 "$mode" > "$OUT" 2> "$ERR" < /dev/null
}

# log_since N: host 2's server log from line N on.
log_since() {
	tail -n +"$1" "$LOGDIR/${PFX}2.log"
}

loglines() {
	wc -l < "$LOGDIR/${PFX}2.log"
}

# ok_child: the child saw the parent's memory, and ended well
ok_child() {
	local sum
	sum=$(sed -n 's/^parent \([0-9]*\)$/\1/p' "$OUT")
	[ -n "$sum" ]
	grep -qx "child ok $sum" "$OUT"
	grep -qx "status 0" "$OUT"
}

@test "postcopy: the child sees every page as at the fork, in address, reverse and random order" {
	local mode n pid bytes
	for mode in seq back rand; do
		n=$(($(loglines) + 1))
		lrun "$mode"
		cat "$OUT" "$ERR"
		ok_child
		[ ! -s "$ERR" ]
		# the image carried the rest of the process, not the 32 MiB
		bytes=$(log_since "$n" | sed -n 's/.*waits for its stub: \([0-9]*\) bytes.*/\1/p')
		[ "$bytes" -lt $((2 << 20)) ]
		# 32 MiB less the untouched fifth is 6554 pages (a few less when the
		# mapping joins the TLS block's: those near the thread pointer come
		# with the image), all put in after it started (logged once the
		# child is gone, a moment after the parent knows)
		pid=$(sed -n 's/^forked //p' "$OUT")
		wait_line "$LOGDIR/${PFX}2.log" \
		    "pid $pid: post-copy: (65[0-9][0-9]) pages: \\1 came after it started, 0 it dropped first" 20
	done
	none_marked "$MARK"
}

@test "postcopy: a system call whose buffer is still on its way (write from it into a pipe)" {
	lrun write
	cat "$OUT" "$ERR"
	ok_child
	grep -qx "parent read ok" "$OUT"
	none_marked "$MARK"
}

@test "postcopy: the child moves (mremap), drops (MADV_DONTNEED) and unmaps memory still on its way" {
	local mode pid
	# 200 Mbit/s: the 32 MiB take over a second, so most are still to come
	inh 1 tc qdisc add dev eth0 root tbf rate 200mbit burst 64kb latency 1s
	for mode in remap dontneed unmap; do
		lrun "$mode"
		cat "$OUT" "$ERR"
		grep -qx "status 0" "$OUT"
		pid=$(sed -n 's/^forked //p' "$OUT")
		if [ "$mode" = remap ]; then
			ok_child
			# each page crossed once: none asked for again while the
			# move was under way (it once was, over and over: 600 MB)
			wait_line "$LOGDIR/${PFX}2.log" "pid $pid: post-copy: .* asked again" 20
			grep -E "pid $pid: post-copy: .* 0 asked again$" "$LOGDIR/${PFX}2.log"
			continue
		fi
		# the dropped half reads as zeros, the rest as it was
		grep -qx "child ok half" "$OUT"
		# and what was still to come of it was not put in (the proxy
		# logs once its child is gone: a moment after the parent knows)
		wait_line "$LOGDIR/${PFX}2.log" "pid $pid: post-copy: 65[0-9][0-9] pages: " 20 ||
		    { tail -5 "$LOGDIR/${PFX}2.log"; false; }
		grep -E "pid $pid: post-copy: 65[0-9][0-9] pages: " "$LOGDIR/${PFX}2.log" |
		    grep -vq " 0 it dropped first"
	done
	none_marked "$MARK"
}

@test "postcopy: four threads of the child fault on memory still on its way, at once" {
	lrun threads
	cat "$OUT" "$ERR"
	ok_child
	[ ! -s "$ERR" ]
	none_marked "$MARK"
}

@test "postcopy: the child forks before its memory is all there: the grandchild's is whole" {
	lrun fork
	cat "$OUT" "$ERR"
	ok_child
	grep -qx "grandchild status 0" "$OUT"
	none_marked "$MARK"
}

@test "postcopy: the child execs while its pages still come: not killed for it" {
	local n
	n=$(($(loglines) + 1))
	lrun exec
	cat "$OUT" "$ERR"
	grep -qx "status 0" "$OUT"
	! log_since "$n" | grep -q "killed"
	none_marked "$MARK"
}

@test "postcopy: RFORK_POSTCOPY=0 sends the whole image first" {
	local n bytes
	n=$(($(loglines) + 1))
	lrun seq RFORK_POSTCOPY=0
	cat "$OUT" "$ERR"
	ok_child
	bytes=$(log_since "$n" | sed -n 's/.*waits for its stub: \([0-9]*\) bytes.*/\1/p')
	[ "$bytes" -gt $((25 << 20)) ]
	! log_since "$n" | grep -q "post-copy"
	none_marked "$MARK"
}

# slow_link: host 1's pages cross at 8 Mbit/s (32 MiB: about half a minute)
slow_link() {
	inh 1 tc qdisc add dev eth0 root tbf rate 8mbit burst 32kb latency 2s
}

# bg_hold: lazymem in the background on the slow link, until its child runs;
# sets STUB (the child's pid at home: its stub) and SRC (the page source)
bg_hold() {
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" "$TESTS/lazymem" 32 hold > "$OUT" 2> "$ERR" < /dev/null &
	BG=$!
	wait_line "$OUT" '^child ready'
	STUB=$(sed -n 's/^forked //p' "$OUT")
	[ -n "$STUB" ]
	[ "$(cat "/proc/$STUB/comm")" = rf-stub ]
	SRC=$(pgrep -P "$STUB")
	[ -n "$SRC" ]
	# the pages are still coming
	! grep -q '^child ok' "$OUT"
}

@test "postcopy: the stub killed while pages still come: the parent sees SIGKILL, nothing is left" {
	slow_link
	bg_hold
	kill -KILL "$STUB"
	wait "$BG"
	BG=
	cat "$OUT" "$ERR"
	grep -qx "status 137" "$OUT"
	none_marked "$MARK"
}

@test "postcopy: the page source killed: the child is lost (SIGKILL), said on both sides" {
	slow_link
	bg_hold
	kill -KILL "$SRC"
	wait "$BG"
	BG=
	cat "$OUT" "$ERR"
	grep -qx "status 137" "$OUT"
	grep -q "^rf-stub: pid $STUB: post-copy: page source $SRC" "$ERR"
	none_marked "$MARK"
	# the proxy ends after its child; its log line may come a moment later
	wait_line "$LOGDIR/${PFX}2.log" "pid $STUB killed: post-copy: "
}

@test "postcopy: a server that cannot (no CAP_SYS_PTRACE): the whole image, said once" {
	local RHOST pid
	# a second server in host 2 without the capability userfaultfd needs
	# to take kernel faults (vm.unprivileged_userfaultfd=0)
	[ "$(cat /proc/sys/vm/unprivileged_userfaultfd)" = 0 ] || skip "unprivileged userfaultfd on"
	inh 2 setpriv --bounding-set -sys_ptrace "$BIN/rf-server" -R -t 3 -k "$KEY" \
	    -l "$(addr 2):7078" > "$TDIR/nocap.log" 2>&1 &
	pid=$!
	RHOST=$(addr 2):7078
	wait_line "$TDIR/nocap.log" 'listening'
	lrun seq
	kill "$pid"
	wait "$pid" || true
	cat "$OUT" "$ERR" "$TDIR/nocap.log"
	ok_child
	# the child ran there, from the whole image (a second try when S had
	# already become the stub: the early stub, docs/FORK.md "Limits")
	grep -q "fork: pid $(sed -n 's/^forked //p' "$OUT") (parent [0-9]*) waits for its stub" \
	    "$TDIR/nocap.log"
	[ "$(grep -c 'no post-copy on ' "$ERR")" -eq 1 ]
	grep -q "CAP_SYS_PTRACE" "$ERR"
	! grep -q "post-copy: [0-9]* pages" "$TDIR/nocap.log"
	none_marked "$MARK"
}

@test "postcopy: the server's child for a page connection is free again after, and takes the next connection" {
	local st=$TDIR/strace.$BATS_TEST_NUMBER sp _
	# a first fork whose child reads its pages: its stub's page connection
	# leaves a child free
	lrun seq
	grep -q "^child ok" "$OUT"
	for _ in $(seq 50); do
		ps -o comm= --ppid "$(srvpid 2)" | grep -qx rf-server-idle && break
		sleep 0.05
	done
	ps -o comm= --ppid "$(srvpid 2)" | grep -qx rf-server-idle
	# a second: the server passes a connection to it (SCM_RIGHTS) rather
	# than forking for every one
	strace -p "$(srvpid 2)" -e trace=sendmsg,clone,clone3 -o "$st" 2> "$st.err" &
	sp=$!
	for _ in $(seq 100); do
		grep -q attached "$st.err" && break
		sleep 0.02
	done
	lrun seq
	grep -q "^child ok" "$OUT"
	kill "$sp"
	wait "$sp" || true
	cat "$st"
	grep -q 'SCM_RIGHTS' "$st"
	none_marked "$MARK"
}

@test "postcopy: 20 forks whose children end at once: every tree ends, nothing is left" {
	local n i
	n=$(($(loglines) + 1))
	for i in $(seq 20); do
		lrun exit
		cat "$OUT" "$ERR"
		grep -qx "status 0" "$OUT"
		[ ! -s "$ERR" ]
	done
	none_marked "$MARK"
	# each connection's handler goes with its tree at once, not after -t (3 s)
	# with a pager still waiting for a page connection that will never come
	for _ in $(seq 50); do
		[ -z "$(busy_children 2)" ] && break
		sleep 0.02
	done
	[ -z "$(busy_children 2)" ]
	[ "$(log_since "$n" | grep -c 'post-copy: [0-9]* pages')" -eq 20 ]
	[ "$(log_since "$n" | grep -c "tree ended")" -eq 20 ]
	# the page sources were reaped by their stubs, not left to init
	! ps -eo stat=,comm= | grep -q '^Z.*lazymem'
}

@test "postcopy: four threads fork at once, each rewriting its memory at once after: every child sees its own as at its fork" {
	local pid
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" "$TESTS/threadpost" 3 > "$OUT" 2> "$ERR"
	cat "$OUT" "$ERR"
	grep -qx ok "$OUT"
	[ "$(grep -c "^child [0-3]\.[0-2] ${PFX}2 [0-9]*$" "$OUT")" -eq 12 ]
	[ ! -s "$ERR" ]
	# each one's pages came after it started (its proxy logs as it ends)
	for pid in $(awk '/^child / { print $4 }' "$OUT"); do
		wait_line "$LOGDIR/${PFX}2.log" "pid $pid: post-copy: [0-9]+ pages: " 10
	done
	none_marked "$MARK"
}

@test "postcopy: python3's 64 MiB of random bytes hash the same in the remote child" {
	local n pid
	n=$(($(loglines) + 1))
	cat > "$TDIR/hash.py" <<'PY'
import hashlib, os
data = bytearray(os.urandom(64 << 20))
objs = [os.urandom(100) for _ in range(100000)]	# python's own arenas too
want = hashlib.sha256(data + b"".join(objs)).hexdigest()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, hashlib.sha256(data + b"".join(objs)).hexdigest().encode())
    os._exit(0)
os.close(w)
data[0] ^= 1	# the parent's copy changes: the child's must not
got = os.read(r, 100).decode()
_, st = os.waitpid(pid, 0)
print("forked", pid)
print("same" if got == want else "DIFFERENT", os.waitstatus_to_exitcode(st))
PY
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" /usr/bin/python3 "$TDIR/hash.py" > "$OUT" 2> "$ERR"
	cat "$OUT" "$ERR"
	grep -qx "same 0" "$OUT"
	[ ! -s "$ERR" ]
	# it went remote, most of it after the child started
	pid=$(sed -n 's/^forked //p' "$OUT")
	wait_line "$LOGDIR/${PFX}2.log" "pid $pid: post-copy: [0-9]{5,} pages: " 20
	none_marked "$MARK"
}

@test "postcopy: the page source's end is no SIGCHLD for the remote child, which has no child" {
	cat > "$TDIR/srcchld.py" <<'PY'
import os, signal, socket, time
got = []
signal.signal(signal.SIGCHLD, lambda s, f: got.append(s))
big = bytearray(32 << 20)
for i in range(0, len(big), 4096):
    big[i] = 1
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    # every page here: the page source has served its last and is killed
    total = sum(big[i] for i in range(0, len(big), 4096))
    time.sleep(0.5)
    os.write(w, b"%s pages %d sigchld %d\n" % (socket.gethostname().encode(), total, len(got)))
    os._exit(0)
os.close(w)
print(os.read(r, 200).decode().strip())
_, st = os.waitpid(pid, 0)
print("status", os.waitstatus_to_exitcode(st), "parent sigchld", len(got) > 0)
PY
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" /usr/bin/python3 "$TDIR/srcchld.py" > "$OUT" 2> "$ERR"
	cat "$OUT" "$ERR"
	# the stub ends its page source once the pages are all there; the
	# kernel then sends it SIGCHLD (it exec'd since it made it), which was
	# passed on to the child and cut short its next call (a close: EINTR)
	grep -qx "${PFX}2 pages 8192 sigchld 0" "$OUT"
	grep -qx "status 0 parent sigchld True" "$OUT"
	[ ! -s "$ERR" ]
	none_marked "$MARK"
}
