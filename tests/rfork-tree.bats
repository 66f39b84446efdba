#!/usr/bin/env bats
# A remote child forks (SPEC "Fork semantics" 8): under rf-run in host 1, P
# forks C onto host 2 (or 3), C forks G.  G's pid is real in host 1, under
# C's stub; G's fds are home; docs/FORK.md "Grandchildren".

load net
load helpers

setup_file() {
	th_up 3 "3 -R"
}

teardown_file() {
	th_down
}

setup() {
	MARK=rftree$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
	ERR=$TDIR/err.$BATS_TEST_NUMBER
	PY=/usr/bin/python3
	[ -x "$PY" ] || PY=$(command -v python3)
}

teardown() {
	local p
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# trun HOSTS PROG ARGS...: PROG under rf-run in host 1 forking to HOSTS
# (host numbers, comma separated); stdout in $OUT, stderr in $ERR.
trun() {
	local hosts=$1 h list=
	shift
	for h in ${hosts//,/ }; do
		list=$list${list:+,}$(addr "$h")
	done
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_STRICT="${STRICT:-0}" \
	    "$ROOT/sh/rf-run" -k "$KEY" -H "$list" "$@" > "$OUT" 2> "$ERR"
}

# field LINE-PREFIX N: the Nth word of the first line starting with the prefix.
field() {
	awk -v p="$1" -v n="$2" 'index($0, p) == 1 { print $n; exit }' "$OUT"
}

@test "rfork-tree: the grandchild's pid is real at home, under the child's; raise, signals both ways, exit status, SIGCHLD" {
	run trun 2 "$TESTS/rforktree" 5 7
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	! grep -q '^BAD' "$OUT"
	c=$(field "child " 2)
	g=$(field "grand " 2)
	[ "$(field "child " 6)" = "${PFX}2" ]
	# the grandchild: on host 2, its parent the child, its tid its pid
	[ "$(field "grand " 4)" = "$c" ]
	[ "$(field "grand " 6)" = "$g" ]
	[ "$(field "grand " 8)" = "${PFX}2" ]
	[ "$(field "grand " 10)" = ok ]
	# at home: a process with the grandchild's pid whose parent is the child's
	[ "$(field "parent-saw " 3)" = "$g" ]
	[ "$(field "parent-saw " 5)" = "$c" ]
	# the child: fork's answer, waitpid's status, SIGCHLD, G's kill(getppid())
	grep -qx "child-saw grand $g exit 5 sigchld [1-9] usr2-from-grand 1" "$OUT"
	grep -qx "forked $c exit 7" "$OUT"
	wait_log 2 "fork: pid $g (parent $c) waits for its stub"
	[ ! -s "$ERR" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: round robin: the child on host 2 forks its child onto host 3" {
	run trun 2,3 "$TESTS/rforktree" 0 3
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(field "child " 6)" = "${PFX}2" ]
	[ "$(field "grand " 8)" = "${PFX}3" ]
	g=$(field "grand " 2)
	grep -qx "child-saw grand $g exit 0 sigchld [1-9] usr2-from-grand 1" "$OUT"
	grep -q "^forked [0-9]* exit 3$" "$OUT"
	wait_log 3 "fork: pid $g (parent $(field "child " 2)) waits for its stub"
	none_marked "$MARK"
	only_server 2
	only_server 3
}

@test "rfork-tree: python3, four generations, each on host 2 with its parent's pid at home" {
	cat > "$TDIR/gen.py" <<'EOF'
import os, socket, sys
def show(tag):
    print(tag, os.getpid(), os.getppid(), socket.gethostname(), flush=True)
def gen(n):
    show("gen%d" % n)
    if n == 3:
        os._exit(30)
    pid = os.fork()
    if pid == 0:
        gen(n + 1)
    _, st = os.waitpid(pid, 0)
    print("gen%d reaped %d %d" % (n, pid, os.waitstatus_to_exitcode(st)), flush=True)
    os._exit(10 * n if n else 0)
gen(0)
EOF
	run trun 2 "$PY" "$TDIR/gen.py"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	for n in 1 2 3; do
		pid=$(field "gen$n " 2)
		[ "$(field "gen$n " 3)" = "$(field "gen$((n - 1)) " 2)" ]
		[ "$(field "gen$n " 4)" = "${PFX}2" ]
		grep -qx "gen$((n - 1)) reaped $pid $((10 * n))" "$OUT"
	done
	[ "$(field "gen0 " 4)" = "${PFX}1" ]
	[ "$(grep -c "waits for its stub" "$LOGDIR/${PFX}2.log")" -ge 3 ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: a child that forks with a pipe of its own host: the grandchild is born there, sharing the pipe, its pid real at home" {
	cat > "$TDIR/pipe.py" <<'EOF'
import os, socket, sys
if os.fork() == 0:
    r, w = os.pipe()          # a pipe of host 2: the grandchild must share it
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, ("%d %d %s" % (os.getpid(), os.getppid(), socket.gethostname())).encode())
        os._exit(6)
    os.close(w)
    print("grand said", os.read(r, 100).decode(), "child", os.getpid(), "fork", pid, flush=True)
    _, st = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(st))
_, st = os.waitpid(-1, 0)
print("exit", os.waitstatus_to_exitcode(st))
EOF
	# round robin would say host 3: the pipe keeps the grandchild on host 2
	run trun 2,3 "$PY" "$TDIR/pipe.py"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	read -r _ _ gp gpp ghost _ cpid _ fpid < <(grep '^grand said' "$OUT")
	[ "$gp" = "$fpid" ]
	[ "$gpp" = "$cpid" ]
	[ "$ghost" = "${PFX}2" ]
	grep -qx "exit 6" "$OUT"
	wait_log 2 "fork: pid $gp (parent $cpid) waits for its stub"
	[ ! -s "$ERR" ]
	# a shell's pipeline in a remote child: its processes share a local pipe
	run trun 2 /bin/bash -c 'x=$(echo "a $(hostname)" | tr a b); echo "$x"'
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "b ${PFX}2" ]
	[ ! -s "$ERR" ]
	none_marked "$MARK"
	only_server 2
	only_server 3
}

@test "rfork-tree: a grandchild reading a pipe of its host to its end sees the end once its parent closed the pipe" {
	# nothing on host 2 may keep a copy of the pipe's write end: the
	# grandchild's proxy restored it with the fds it came with
	cat > "$TDIR/eof.py" <<'EOF'
import os, socket
if os.fork() == 0:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        data = b""
        while True:
            b = os.read(r, 100)
            if not b:
                break
            data += b
        print("grandchild", socket.gethostname(), data.decode(), flush=True)
        os._exit(0)
    os.close(r)
    os.write(w, b"to the end")
    os.close(w)
    _, st = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(st))
_, st = os.waitpid(-1, 0)
print("exit", os.waitstatus_to_exitcode(st))
EOF
	run inh 1 timeout 20 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" "$PY" "$TDIR/eof.py"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "grandchild ${PFX}2 to the end"$'\n'"exit 0" ]
	# a program exec'd in a remote child keeps librfork: GNU tar's fork of
	# its compressor reads the archive through such a pipe
	mkdir -p "$TDIR/tar"
	echo data > "$TDIR/tar/f"
	run inh 1 timeout 20 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2)" /bin/bash -c "(cd '$TDIR/tar' && tar czf ../t.tgz f && tar tzf ../t.tgz && hostname)"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "f"$'\n'"${PFX}2" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: a program the remote child execs forks with fds of its host: the grandchildren are born there, pids real at home" {
	# bash exec'd in the remote child: each command substitution makes a
	# pipe of host 2 and forks with it open, so the grandchild must be born
	# on host 2; librfork, loaded anew by the exec, has the host's name
	# (as home names it) from the proxy
	local n
	n=$(($(wc -l < "$LOGDIR/${PFX}2.log") + 1))
	cat > "$TDIR/exec.py" <<'EOF'
import os
if os.fork() == 0:
    # python's own copy of the environment keeps librfork.so preloaded
    os.execve("/bin/bash", ["bash", "-c", 'a=$(echo 1); b=$(echo 2); c=$(echo 3); echo "$a$b$c $(hostname)"'], os.environ)
_, st = os.waitpid(-1, 0)
print("exit", os.waitstatus_to_exitcode(st))
EOF
	run trun 2 "$PY" "$TDIR/exec.py"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	grep -qx "123 ${PFX}2" "$OUT"
	grep -qx "exit 0" "$OUT"
	[ ! -s "$ERR" ]
	# the child and its four command substitutions, each a remote child there
	[ "$(tail -n +"$n" "$LOGDIR/${PFX}2.log" | grep -c 'waits for its stub')" -eq 5 ]
	none_marked "$MARK"
}

@test "rfork-tree: a wait for any child in a remote child with children on its host and at home: the first to end answers" {
	cat > "$TDIR/mixwait.py" <<'EOF'
import os, subprocess, time
# the remote child: a child of its own host (posix_spawn stays local) and a
# remote grandchild; wait() for any must give the first to end, each once
if os.fork() == 0:
    sp = subprocess.Popen(["sleep", "0.6"])
    g = os.fork()
    if g == 0:
        time.sleep(0.1)
        os._exit(3)
    order = []
    for _ in range(2):
        pid, st = os.wait()
        who = "grand" if pid == g else "local" if pid == sp.pid else "other"
        order.append("%s %d" % (who, os.waitstatus_to_exitcode(st)))
    # and once both are reaped, nothing is left to wait for, here or at home
    try:
        os.wait()
        order.append("a third")
    except ChildProcessError:
        order.append("ECHILD")
    print(" then ".join(order), flush=True)
    os._exit(0)
os.wait()
EOF
	run trun 2 "$PY" "$TDIR/mixwait.py"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "grand 3 then local 0 then ECHILD" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: the remote child's own children end as on its host: SIGCHLD's code, pid and status, waits by pid and for any, stops and continues" {
	run trun 2 "$TESTS/grandwait"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	! grep -q '^BAD' "$OUT"
	c=$(field "child " 2)
	[ "$(field "child " 4)" = "${PFX}2" ]
	for n in 1 2 3 4; do
		g[n]=$(field "grand $n " 3)
		[ "$(field "grand $n " 5)" = "${PFX}2" ]
		# a real grandchild: its pid at home, under the child's
		wait_log 2 "fork: pid ${g[n]} (parent $c) waits for its stub"
	done
	# CLD_EXITED 1, CLD_KILLED 2, from the grandchild's pid, with its status
	grep -qx "sigchld 1 code 1 pid ${g[1]} status 7" "$OUT"
	grep -qx "wait 1 ${g[1]} exit 7" "$OUT"
	grep -qx "sigchld 2 code 2 pid ${g[2]} status 15" "$OUT"
	grep -qx "wait 2 ${g[2]} killed 15" "$OUT"
	grep -qx "sigchld 3 code 1 pid ${g[3]} status 3" "$OUT"
	grep -qx "wait 3 ${g[3]} exit 3" "$OUT"
	grep -qx "wait 4 ${g[4]} stopped 19" "$OUT"
	grep -qx "wait 4 ${g[4]} continued" "$OUT"
	grep -qx "wait 4 ${g[4]} killed 9" "$OUT"
	grep -qx "no-children ECHILD" "$OUT"
	grep -qx "forked $c exit 0" "$OUT"
	[ ! -s "$ERR" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: script(1) in a remote child, its command a remote grandchild, ends when the command does, with its status" {
	run trun 2 timeout 60 bash -c '( script -qec "hostname; exit 3" /dev/null ); echo "script $?"'
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(tr -d '\r' < "$OUT")" = "${PFX}2
script 3" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: a shell that lowered its fd limit below an fd it still holds (a script's 255): its children's children are born remote all the same" {
	cat > "$TDIR/lim.sh" <<'EOF'
ulimit -n 100
( ( hostname ); echo "t=$?" )
( x=$(echo 2); echo "x=$x" )
EOF
	run trun 2 bash "$TDIR/lim.sh"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2
t=0
x=2" ]
	[ ! -s "$ERR" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: /dev/fd/N, /dev/stdin of a pipe of the child's own host open that pipe there: process substitution in subshells and pipelines" {
	cat > "$TDIR/devfd.sh" <<'EOF'
( cat < <(echo hi) )
( mapfile -t a < <(seq 3); echo "${#a[@]}" )
( echo d | cat /dev/stdin )
seq 5 | tee >(wc -l > "$1") | md5sum
sleep 0.3; cat "$1"
EOF
	run trun 2 bash "$TDIR/devfd.sh" "$TDIR/devfd.n"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "hi
3
d
$(seq 5 | md5sum)
5" ]
	[ ! -s "$ERR" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: pidfds in a remote child: of its own child (a stand-in here) they signal and wait for the grandchild; of its parent at home, ENOSYS, never the proxy" {
	cat > "$TDIR/pidfd.py" <<'EOF'
import os, select, signal, time
if os.fork() == 0:
    try:
        os.pidfd_open(os.getppid())
        print("parent pidfd", flush=True)
    except OSError as e:
        print("parent pidfd", e.strerror, flush=True)
    g = os.fork()
    if g == 0:
        print("grand on", os.uname().nodename, flush=True)
        time.sleep(30)
        os._exit(0)
    time.sleep(0.5)
    fd = os.pidfd_open(g)
    signal.pidfd_send_signal(fd, signal.SIGTERM)
    r, _, _ = select.select([fd], [], [], 20)
    pid, st = os.waitpid(g, 0)
    print("grand", "ended" if r else "hangs", "killed", os.WTERMSIG(st), flush=True)
    os._exit(0)
pid, st = os.wait()
print("child exit", os.waitstatus_to_exitcode(st), flush=True)
EOF
	run trun 2 "$PY" "$TDIR/pidfd.py"
	cat "$OUT" "$ERR"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "parent pidfd Function not implemented
grand on ${PFX}2
grand ended killed 15
child exit 0" ]
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: the grandchild's host refuses: it is born on the child's host instead; the new stub at home ends unseen" {
	# host 3 answers on 7077 only: port 7079 refuses at once
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2),$(addr 3):7079" "$TESTS/rforktree" 5 7 > "$OUT" 2> "$ERR" || true
	cat "$OUT" "$ERR"
	c=$(field "child " 2)
	g=$(field "grand " 2)
	[ "$(field "grand " 8)" = "${PFX}2" ]
	[ "$(field "grand " 4)" = "$c" ]
	# the local grandchild: no process under the child's stub at home
	! grep -q '^parent-saw' "$OUT"
	# exactly one SIGCHLD: the new stub's end was not passed on
	grep -qx "child-saw grand $g exit 5 sigchld 1 usr2-from-grand 1" "$OUT"
	grep -qx "forked $c exit 7" "$OUT"
	grep -q "rfork: pid $c: fork stays on this host: rf-send: .*refused" "$ERR"
	none_marked "$MARK"
	only_server 2
}

@test "rfork-tree: rf-send -c without -F is a usage error" {
	run "$BIN/rf-send" -c 5 127.0.0.1
	[ "$status" -eq 64 ]
}

@test "rfork-tree: an unprivileged server (nobody, user namespace): grandchildren too, and no capability the program lacked" {
	local as=(setpriv --reuid=nobody --regid=nogroup --clear-groups) slog=$TDIR/nobody.log spid
	cp "$KEY" "$TDIR/nkey"
	chown nobody "$TDIR/nkey"
	bgin 2 "${as[@]}" "$BIN/rf-server" -l "$(addr 2):7079" -t 3 -k "$TDIR/nkey" 2> "$slog"
	spid=$BGPID
	wait_line "$slog" "listening on"
	inh 1 "${as[@]}" env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" \
	    -k "$TDIR/nkey" -H "$(addr 2):7079" "$TESTS/rforktree" 5 7 > "$OUT" 2> "$ERR" || true
	cat "$OUT" "$ERR" "$slog"
	c=$(field "child " 2)
	g=$(field "grand " 2)
	[ "$(field "grand " 8)" = "${PFX}2" ]
	[ "$(field "parent-saw " 3)" = "$g" ]
	grep -qx "child-saw grand $g exit 5 sigchld [1-9] usr2-from-grand 1" "$OUT"
	grep -qx "forked $c exit 7" "$OUT"
	grep -q "fork: pid $g (parent $c) waits for its stub (user namespace)" "$slog"
	[ ! -s "$ERR" ]
	# the remote child holds no capability (all in its user namespace before)
	inh 1 "${as[@]}" env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" \
	    -k "$TDIR/nkey" -H "$(addr 2):7079" "$PY" -c '
import os
if os.fork() == 0:
    print(*[l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapPrm", "CapEff"))])
    os._exit(0)
os.wait()' > "$OUT"
	[ "$(cat "$OUT")" = "0000000000000000 0000000000000000" ]
	kill "$spid"
	wait "$spid" || true
	none_marked "$MARK"
}
