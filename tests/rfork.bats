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
	SPID=
}

teardown() {
	local p
	inh 2 ip link set eth0 up 2>/dev/null || true
	[ -z "$SPID" ] || kill -KILL "$SPID" 2>/dev/null || true
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# rrun PROG ARGS...: PROG under rf-run in host 1, forks to host 2; stdout in $OUT.
# A caller's locals change it: AS (an array: the wrapper to run it as another
# user), RKEY (the key), RHOST (the server).
rrun() {
	inh 1 ${RTIMEOUT:+timeout "$RTIMEOUT"} "${AS[@]}" env RFTEST_MARK="$MARK" \
	    RFORK_POLICY=all "$ROOT/sh/rf-run" -k "${RKEY:-$KEY}" -H "${RHOST:-$(addr 2)}" \
	    "$@" > "$OUT"
}

# ran_there CODE: $OUT (tests/victims/rforkhost) shows the parent in host 1
# and its child in host 2, with the pid fork returned and the parent's as
# its parent, ending with exit CODE; sets ppid and cpid.
ran_there() {
	local phost chost cppid fpid how code
	read -r _ ppid _ phost < <(grep '^parent ' "$OUT")
	read -r _ cpid _ cppid _ chost < <(grep '^child ' "$OUT")
	read -r _ fpid _ how code < <(grep '^forked ' "$OUT")
	[ "$phost" = "${PFX}1" ]
	[ "$chost" = "${PFX}2" ]
	[ "$cpid" = "$fpid" ]
	[ "$cppid" = "$ppid" ]
	[ "$how $code" = "exit $1" ]
}

@test "rfork: the child runs in host 2 with the parent's pids, stdout and exit code" {
	local agent
	# by rf-run's agent, and by rf-snap and rf-send (RFORK_AGENT=0)
	for agent in "" 0; do
		run rrun env ${agent:+RFORK_AGENT=$agent} "$TESTS/rforkhost" 7
		[ "$status" -eq 0 ]
		cat "$OUT"
		ran_there 7
		grep -q "fork: pid $cpid (parent $ppid) waits for its stub" "$LOGDIR/${PFX}2.log"
		# rf-send -H: the stub took the fork's own connection, it did not dial
		grep -q "stub connected on the fork's connection" "$LOGDIR/${PFX}2.log"
		none_marked "$MARK"
	done
}

@test "rfork: forker's checks hold for 3 remote children in a row" {
	local before
	before=$(stubs 2)
	run rrun "$TESTS/forker" basic 3
	cat "$OUT"
	[ "$(stubs 2)" -eq $((before + 3)) ]
	[ "$status" -eq 0 ]
	grep -q '^ok basic' "$OUT"
	none_marked "$MARK"
}

@test "rfork: rf-stub with a token no child waits for, or no server, dies of SIGKILL; rf-send -F needs -p" {
	# a child that never ran is a child lost: SIGKILL, never an exit code
	run -137 inh 1 "$BIN/rf-stub" -k "$KEY" "$(addr 2)" 0123456789abcdef0123456789abcdef
	[[ "$output" == *"no child waits for this token"* ]]
	run -137 inh 1 "$BIN/rf-stub" -k "$KEY" "$(addr 2):7099" 0123456789abcdef0123456789abcdef
	[[ "$output" == *"refused"* ]]
	run -64 inh 1 "$BIN/rf-send" -F 3 -k "$KEY" "$(addr 2)" < /dev/null
	run -64 inh 1 "$BIN/rf-stub" -k "$KEY" "$(addr 2)"
	# -H hands the connection over on stdout, a unix socket; not for -c
	run -64 inh 1 "$BIN/rf-send" -F 3 -p 2 -H -k "$KEY" "$(addr 2)" < /dev/null
	[[ "$output" == *"not a unix socket"* ]]
	run -64 inh 1 "$BIN/rf-send" -F 3 -p 2 -c 5 -H -k "$KEY" "$(addr 2)" < /dev/null
	run -64 inh 1 "$BIN/rf-stub" -C 3
	# a handed-over connection without its channel state is a child lost
	run -137 inh 1 "$BIN/rf-stub" -C 0:0 < /dev/null
	[[ "$output" == *"no channel state"* ]]
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
	for _ in $(seq 100); do
		[ "$(awk '{ print $3 }' "/proc/$pid/stat")" = T ] && break
		sleep 0.02
	done
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

@test "rfork: 4 threads fork 3 times each at once, all children in host 2" {
	local before
	before=$(stubs 2)
	run rrun "$TESTS/forker" threads
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "ok threads" ]
	[ "$(stubs 2)" -eq $((before + 12)) ]
	none_marked "$MARK"
}

@test "rfork: python3 os.fork with pipes, SIGCHLD and exit codes, children in host 2" {
	cat > "$TDIR/fork.py" <<'PY'
import os, signal, socket
got = []
signal.signal(signal.SIGCHLD, lambda s, f: got.append(s))
kids = {}
for i in range(3):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"%d %d %s\n" % (os.getpid(), os.getppid(), socket.gethostname().encode()))
        os._exit(10 + i)
    os.close(w)
    kids[pid] = (r, 10 + i)
for pid, (r, code) in kids.items():
    data = b""
    while True:
        b = os.read(r, 100)
        if not b:
            break
        data += b
    c, p, h = data.split()
    assert (int(c), int(p)) == (pid, os.getpid()), (c, p, pid)
    print(h.decode())
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == code
assert got
print("ok python")
PY
	run rrun /usr/bin/python3 "$TDIR/fork.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2"$'\n'"${PFX}2"$'\n'"${PFX}2"$'\n'"ok python" ]
	none_marked "$MARK"
}

@test "rfork: perl fork and bash \$(hostname): the children run in host 2" {
	run rrun /usr/bin/perl -e '
		pipe(R, W) or die; my $pid = fork(); defined $pid or die "fork: $!";
		if ($pid == 0) { close R; print W "$$ ", getppid(), "\n"; close W; exit 9 }
		close W; my $l = <R>; waitpid($pid, 0) == $pid or die; my $st = $? >> 8;
		my ($c, $p) = split " ", $l;
		($c == $pid && $p == $$ && $st == 9) or die "got $l status $st";
		print "ok perl\n"'
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "ok perl" ]
	run rrun /bin/bash -c 'h=$(hostname); x=$(exit 3); echo "$h $? $HOSTNAME"'
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2 3 ${PFX}1" ]
	none_marked "$MARK"
}

@test "rfork: the parent's kill reaches the remote child, the child's kill reaches the parent" {
	cat > "$TDIR/sig.py" <<'PY'
import os, signal, time, socket
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    def on(s, f):
        os.write(w, b"got %d on %s\n" % (s, socket.gethostname().encode()))
        os._exit(5)
    signal.signal(signal.SIGUSR2, on)
    os.kill(os.getppid(), signal.SIGUSR1)
    while True:
        time.sleep(1)
os.close(w)
signal.sigwait([signal.SIGUSR1])
os.kill(pid, signal.SIGUSR2)
print(os.read(r, 100).decode().strip())
_, st = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(st))
PY
	run rrun /usr/bin/python3 "$TDIR/sig.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "got $(kill -l SIGUSR2 2>/dev/null || echo 12) on ${PFX}2"$'\n'"exit 5" ]
	none_marked "$MARK"
}

@test "rfork: handlers, alternate stack, ignored set and mask carry over; raise and gettid; no SIGCONT of the fork's own; abort() reaches waitpid as SIGABRT, with SIGCHLD" {
	run rrun "$TESTS/rforksig"
	cat "$OUT"
	[ "$status" -eq 0 ]
	read -r _ cpid _ chost _ < <(grep '^child ' "$OUT")
	[ "$chost" = "${PFX}2:" ]
	grep -qx "child $cpid on ${PFX}2: handler ok, onstack ok, ignored ok, mask ok, tid ok, cont ok" "$OUT"
	grep -qx "parent: child $cpid killed by 6 (SIGCHLD 1)" "$OUT"
	none_marked "$MARK"
}

@test "rfork: a thread waiting at home for the parent's answer does not hold back another thread's question" {
	# served one call at a time, the two threads would wait for each other
	RTIMEOUT=20 run rrun "$TESTS/threadqa"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'parent got question\nchild got 7: answer\nstatus 0' ]
	none_marked "$MARK"
}

@test "rfork: two threads waiting at home for input on two pipes: the one whose answer comes first gets it first; a third's write and a signal meanwhile" {
	# one wait for input at home at a time, the first reader would hold back
	# the second, whose answer is waiting, and the parent would never answer
	# the first
	RTIMEOUT=20 run rrun "$TESTS/tworeaders"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'parent got c\nparent got b done\nchild: a got 2: a\nchild: b got 2: b\nchild: 1 signal\nstatus 0' ]
	none_marked "$MARK"
}

@test "rfork: a thread waiting at home in accept() holds back neither another thread's write nor another's read" {
	RTIMEOUT=20 run rrun "$TESTS/acceptwait"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'parent got b\nparent got c done\nchild: a got a\nstatus 0' ]
	none_marked "$MARK"
}

@test "rfork: a thread waiting at home in poll() or epoll_wait() does not hold back another thread's write; a time limit still holds" {
	# epoll: a set the child makes (emulated); epollhome: one made before the fork
	for how in poll epoll epollhome; do
		RTIMEOUT=20 run rrun "$TESTS/pollwait" "$how"
		echo "$how:"; cat "$OUT"
		[ "$status" -eq 0 ]
		[ "$(cat "$OUT")" = $'parent got b\nchild: a ready 1, read a\nchild: timeout ok\nstatus 0' ]
	done
	none_marked "$MARK"
}

@test "rfork: an epoll set made before the fork is shared: the child waits on it and adds to it, the parent sees that; an fd of the child's host cannot join" {
	RTIMEOUT=20 run rrun "$TESTS/epollinherit"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'child: first 1 1111\nchild: second 1 2222\nchild: eventfd: Operation not supported\nparent: shared 1 2222\nstatus 0' ]
	none_marked "$MARK"
}

@test "rfork: job control: SIGTSTP stops the remote child and its stub, waitpid(WUNTRACED) sees it, SIGCONT resumes both" {
	cat > "$TDIR/tstp.py" <<'PY'
import os, select, signal, socket, sys, time
signal.alarm(30)                  # a stop never seen fails, not hangs
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    cont = []
    signal.signal(signal.SIGCONT, lambda *a: cont.append(1))
    n = 0
    while True:
        os.write(w, b"%s\n" % socket.gethostname().encode())
        time.sleep(0.02)
        if cont:
            n += 1
            if n >= 5:
                os._exit(3)
os.close(w)
def lines(t):
    end, got = time.time() + t, b""
    while time.time() < end:
        if select.select([r], [], [], max(0, end - time.time()))[0]:
            got += os.read(r, 65536)
    return got.decode().split()
first = os.read(r, 100).decode().split()[0]
os.kill(pid, signal.SIGTSTP)
_, st = os.waitpid(pid, os.WUNTRACED)
print("stopped", os.WIFSTOPPED(st) and os.WSTOPSIG(st) == signal.SIGTSTP)
lines(0.3)                        # what was on its way
print("quiet", lines(0.5) == [])  # nothing while stopped
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, os.WCONTINUED)
print("continued", os.WIFCONTINUED(st))
_, st = os.waitpid(pid, 0)
print("exit", os.WEXITSTATUS(st), "host", first)
PY
	# in a process group of its own whose parent is in the same session, as
	# a shell's job is: in an orphaned one (this suite run by a daemon, say)
	# the kernel would drop the stub's SIGTSTP, as it would a local child's
	run --separate-stderr inh 1 setsid bash -c 'set -m; "$@" & wait $!' rrun env RFTEST_MARK="$MARK" \
	    RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2)" /usr/bin/python3 \
	    "$TDIR/tstp.py"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'stopped True\nquiet True\ncontinued True\nexit 3 host %s2' "$PFX")" ]
	none_marked "$MARK"
}

@test "rfork: job control: a remote child that stops itself is seen stopped by SIGSTOP at home" {
	cat > "$TDIR/self.py" <<'PY'
import os, signal
signal.alarm(30)                  # a stop never seen fails, not hangs
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(4)
_, st = os.waitpid(pid, os.WUNTRACED)
print("stopped", os.WIFSTOPPED(st) and os.WSTOPSIG(st) == signal.SIGSTOP)
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, 0)
print("exit", os.WEXITSTATUS(st))
PY
	run rrun /usr/bin/python3 "$TDIR/self.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'stopped True\nexit 4' ]
	none_marked "$MARK"
}

@test "rfork: job control: in an orphaned process group SIGTSTP stops neither the stub nor the remote child" {
	cat > "$TDIR/orphan.py" <<'PY'
import os, select, signal, time
signal.alarm(30)
os.setsid()                       # our group: orphaned (our parent is outside the session)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    while True:
        os.write(w, b"t\n")
        time.sleep(0.02)
os.close(w)
os.read(r, 2)
os.kill(pid, signal.SIGTSTP)
time.sleep(0.5)
print("stopped", os.waitpid(pid, os.WUNTRACED | os.WNOHANG) != (0, 0))
got, end = b"", time.time() + 0.5
while time.time() < end:
    if select.select([r], [], [], 0.1)[0]:
        got += os.read(r, 65536)
print("running", len(got) >= 6)
os.kill(pid, signal.SIGTERM)
_, st = os.waitpid(pid, 0)
print("signal", os.WTERMSIG(st))
PY
	run rrun /usr/bin/python3 "$TDIR/orphan.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'stopped False\nrunning True\nsignal 15' ]
	none_marked "$MARK"
}

@test "rfork: RFORK_LOCAL names more paths the remote child opens on its own host" {
	mkdir -p "$TDIR/loc/sub"
	echo data > "$TDIR/loc/sub/f"
	cat > "$TDIR/local.py" <<'PY'
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    print(os.read(fd, 4).decode(), os.readlink("/proc/self/fd/%d" % fd), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
PY
	# by default at home: the child's fd is a placeholder there
	run rrun /usr/bin/python3 "$TDIR/local.py" "$TDIR/loc/sub/f"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[[ "$(cat "$OUT")" == "data pipe:"* ]]
	# named local (a directory and all under it): opened on host 2 itself
	local AS=(env "RFORK_LOCAL=/nonexistent*:relative/:$TDIR/loc/")
	run rrun /usr/bin/python3 "$TDIR/local.py" "$TDIR/loc/sub/../sub/f"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "data $TDIR/loc/sub/f" ]
	none_marked "$MARK"
}

@test "rfork: files at home mapped by the remote child: private, shared read-only, at an offset, past the end; shared writable refused, said on stderr" {
	mkdir -p "$TDIR/map"
	# one file unlinked before the fork: only the fd, at home, reaches it
	run rrun "$TESTS/mapfile" "$TDIR/map"
	cat "$OUT"
	echo "$output"
	[ "$status" -eq 0 ]
	ran_there 0
	[ "$(grep -c '^fd placeholder$' "$OUT")" -eq 2 ]
	for t in private shared-read shared-read-stays private-write shared-write-refused \
	    write-only-refused relative file-unchanged; do
		grep -qx "ok $t" "$OUT"
	done
	! grep -q FAIL "$OUT"
	[[ "$output" =~ "rfork: pid $cpid: mmap of fd "[0-9]+": a shared writable mapping of a file at home cannot span hosts (ENODEV)" ]]
	# python3's mmap module, read-only (MAP_SHARED), in its own remote child
	printf 'mapped at home\n' > "$TDIR/map/p.txt"
	cat > "$TDIR/map.py" <<'PY'
import mmap, os, socket, sys
f = open(sys.argv[1], "rb")
pid = os.fork()
if pid == 0:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print(socket.gethostname(), m[:].decode().strip(), os.readlink("/proc/self/fd/%d" % f.fileno())[:5], flush=True)
    os._exit(0)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
PY
	run rrun /usr/bin/python3 "$TDIR/map.py" "$TDIR/map/p.txt"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2 mapped at home pipe:" ]
	# a program that bash's remote subshell execs keeps librfork (git maps
	# its files so): it opens the file at home (a relative path) and maps it
	run rrun /bin/bash -c "cd '$TDIR/map' && (exec /usr/bin/python3 -c 'import mmap, socket; f = open(\"p.txt\", \"rb\"); print(socket.gethostname(), mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)[:].decode().strip())')"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2 mapped at home" ]
	none_marked "$MARK"
}

@test "rfork: times, owners, nodes, extended attributes and statfs of files at home: utimensat, utimes, utime, chown, lchown, fchownat, mknod, *xattr, futimens, statfs, fstatfs go home" {
	mkdir -p "$TDIR/attr"
	# the child's home cwd is attr/sub, its own attr: only home may change
	run rrun "$TESTS/fileattr" "$TDIR/attr"
	cat "$OUT"
	[ "$status" -eq 0 ]
	ran_there 0
	for t in futimens fchownat-fd t1 t2 t3 o1 o2 o3 n1 fd-changed setxattr listxattr \
	    getxattr-size removexattr fsetxattr x1 x3 fd-xattr; do
		grep -qx "ok $t" "$OUT"
	done
	! grep -q FAIL "$OUT"
	grep -qx 'getxattr at home' "$OUT"
	grep -qx 'fgetxattr by fd' "$OUT"
	# the unlinked file's file system, not the placeholder's (pipefs)
	[ "$(awk '$1 == "fstatfs" { print $2 }' "$OUT")" = "$(awk '$1 == "here" { print $2 }' "$OUT")" ]
	grep -q '^statfs ' "$OUT"
	# touch -d in a remote bash
	echo x > "$TDIR/attr/touched"
	run rrun /bin/bash -c "(touch -d 2001-09-09T01:46:40Z '$TDIR/attr/touched')"
	[ "$status" -eq 0 ]
	[ "$(stat -c %Y "$TDIR/attr/touched")" = 1000000000 ]
	none_marked "$MARK"
}

@test "rfork: POSIX shared memory and semaphores a remote child makes are its host's: python's multiprocessing pool runs there" {
	cat > "$TDIR/pool.py" <<'PY'
import multiprocessing, os, socket
pid = os.fork()
if pid == 0:
    with multiprocessing.Pool(2) as p:
        print(socket.gethostname(), sum(p.map(abs, range(-5, 5))), flush=True)
    os._exit(0)
_, st = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(st))
PY
	run --separate-stderr rrun /usr/bin/python3 "$TDIR/pool.py"
	cat "$OUT"
	echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2 25"$'\n'"exit 0" ]
	# the workers share the pool's semaphores: their forks stay on host 2, said so
	[[ "$stderr" == *"fork stays local: MAP_SHARED mapping at "*" /dev/shm/sem."* ]]
	none_marked "$MARK"
}

@test "rfork: a remote child polling a home pipe and its own signalfd wakes for the signal" {
	local RTIMEOUT=30
	run rrun "$TESTS/sigfdpoll"
	cat "$OUT"
	[ "$status" -eq 0 ]
	ran_there 0
	# the signalfd is polled by the proxy on a copy, which would say the
	# proxy's signals: the child's are looked at (before: poll timed out, 20 s)
	grep -qx 'poll 1 pipe 0 signalfd 1' "$OUT"
	grep -qx 'signal 10' "$OUT"
	none_marked "$MARK"
}

@test "rfork: real-time signals queue and sigqueue's values travel, to the remote child and back" {
	run rrun "$TESTS/rtsig"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "parent got 42 from child, child status 0" ]
	none_marked "$MARK"
}

@test "rfork: epoll in the remote child: home and local fds in one set, each ready when it is, no spinning" {
	cat > "$TDIR/epoll.py" <<'PY'
import os, select, signal, time
signal.alarm(30)
r, w = os.pipe()      # parent -> child, at home
r2, w2 = os.pipe()    # child -> parent, at home
pid = os.fork()
if pid == 0:
    os.close(w); os.close(r2)
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    lr, lw = os.pipe()                    # the child's own, on its host
    ep.register(lr, select.EPOLLIN)
    c0 = time.process_time()
    out = ["idle", ep.poll(0.5) == []]
    os.write(lw, b"x")
    out += ["local", ep.poll(2) == [(lr, select.EPOLLIN)]]
    os.read(lr, 1)
    os.write(w2, b"go\n")                 # the parent writes after a moment
    out += ["home", ep.poll(5) == [(r, select.EPOLLIN)], os.read(r, 5) == b"hello"]
    ep.modify(r, select.EPOLLIN | select.EPOLLONESHOT)
    os.write(w2, b"go\n")
    out += ["oneshot", ep.poll(5) == [(r, select.EPOLLIN)], ep.poll(0.2) == []]
    ep.modify(r, select.EPOLLIN)
    out += ["rearmed", ep.poll(1) == [(r, select.EPOLLIN)]]
    ep.unregister(r)
    out += ["gone", ep.poll(0.2) == []]
    try:
        ep.register(r, select.EPOLLIN); ep.register(r, select.EPOLLIN); out += ["EEXIST", False]
    except FileExistsError:
        out += ["EEXIST", True]
    out += ["cpu", time.process_time() - c0 < 0.3]
    os.write(w2, (" ".join(map(str, out)) + "\n").encode())
    os._exit(0)
os.close(r); os.close(w2)
f = os.fdopen(r2)
assert f.readline() == "go\n"
time.sleep(0.3)
os.write(w, b"hello")
assert f.readline() == "go\n"
time.sleep(0.1)
os.write(w, b"again")
print(f.readline().strip())
os.waitpid(pid, 0)
PY
	run rrun /usr/bin/python3 "$TDIR/epoll.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "idle True local True home True True oneshot True True rearmed True gone True EEXIST True cpu True" ]
	none_marked "$MARK"
}

# aio ROUNDS GAP: under rf-run, a remote child runs ROUNDS asyncio loops
# (each asyncio.run a new epoll set), each waiting for a line the parent
# writes on an inherited non-blocking pipe GAP seconds apart; it counts its
# wake-ups and its CPU time.
aio() {
	cat > "$TDIR/aio.py" <<'PY'
import asyncio, os, signal, sys, time
rounds, gap = int(sys.argv[1]), float(sys.argv[2])
signal.alarm(60)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.set_blocking(r, False)             # as asyncio's pipe transports have it
    calls, lines = [], []
    async def one():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        def readable():
            calls.append(1)
            try:
                data = os.read(r, 100)
            except BlockingIOError:
                return
            if not got.done():
                got.set_result(data)
        loop.add_reader(r, readable)
        return await got
    c0 = time.process_time()
    for i in range(rounds):
        lines.append(asyncio.run(one()))
    cpu = time.process_time() - c0
    print("lines", len(lines), "wakeups", "few" if len(calls) <= 2 * rounds else len(calls),
        "cpu", "low" if cpu < 0.2 + 0.02 * rounds else "%.2f s" % cpu, flush=True)
    os._exit(0)
os.close(r)
for i in range(rounds):
    time.sleep(gap)
    os.write(w, b"l\n")
os.waitpid(pid, 0)
PY
	rrun /usr/bin/python3 "$TDIR/aio.py" "$@"
}

@test "rfork: asyncio in the remote child waits for a line on an inherited pipe without spinning" {
	run aio 1 1
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "lines 1 wakeups few cpu low" ]
	none_marked "$MARK"
}

@test "rfork: fds cross a home unix socket (SCM_RIGHTS) both ways; a file of the child's own host cannot" {
	echo "home file" > "$TDIR/rights.txt"
	cat > "$TDIR/rights.py" <<'PY'
import errno, os, signal, socket, sys
signal.alarm(30)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
pid = os.fork()
if pid == 0:
    a.close()
    out = []
    # a file the child opens at home, sent to the parent
    fd = os.open(sys.argv[1], os.O_RDONLY)
    out.append(socket.send_fds(b, [b"file"], [fd]) == 4)
    # a pipe's read end from the parent: its bytes come through it
    msg, fds, flags, _ = socket.recv_fds(b, 100, 2)
    out.append(msg == b"pipe" and len(fds) == 1 and os.read(fds[0], 100) == b"via rights")
    # a pipe of this host cannot go
    lr, lw = os.pipe()
    try:
        socket.send_fds(b, [b"local"], [lr])
        out.append(False)
    except OSError as e:
        out.append(e.errno == errno.EOPNOTSUPP)
    b.sendall(b"done " + " ".join(map(str, out)).encode())
    os._exit(0)
b.close()
msg, fds, flags, _ = socket.recv_fds(a, 100, 2)
print("parent got", msg.decode(), os.read(fds[0], 100).decode().strip())
r, w = os.pipe()
socket.send_fds(a, [b"pipe"], [r])
os.write(w, b"via rights")
print(a.recv(100).decode())
os.waitpid(pid, 0)
PY
	run rrun /usr/bin/python3 "$TDIR/rights.py" "$TDIR/rights.txt"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = $'parent got file home file\ndone True True True' ]
	none_marked "$MARK"
}

@test "rfork: a remote child's chdir to a directory both hosts have moves its own cwd too: ./prog runs" {
	mkdir -p "$TDIR/cwd/sub"
	printf '#!/bin/sh\necho "top on $(hostname)"\n' > "$TDIR/cwd/top.sh"
	printf '#!/bin/sh\necho "sub on $(hostname)"\n' > "$TDIR/cwd/sub/s.sh"
	chmod +x "$TDIR/cwd/top.sh" "$TDIR/cwd/sub/s.sh"
	cat > "$TDIR/cwd.py" <<'PY'
import os, subprocess, sys
pid = os.fork()
if pid == 0:
    os.chdir(sys.argv[1])
    print(subprocess.run(["./top.sh"], capture_output=True, text=True).stdout.strip(), flush=True)
    os.chdir("sub")
    print(os.getcwd() == sys.argv[1] + "/sub",
        subprocess.run(["./s.sh"], capture_output=True, text=True).stdout.strip(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
PY
	run rrun /usr/bin/python3 "$TDIR/cwd.py" "$TDIR/cwd"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "$(printf 'top on %s2\nTrue sub on %s2' "$PFX" "$PFX")" ]
	none_marked "$MARK"
}

@test "rfork: an event loop made anew 24 times in the remote child still waits without spinning" {
	run aio 24 0.05
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "lines 24 wakeups few cpu low" ]
	none_marked "$MARK"
}

@test "rfork: the stub killed: the parent sees SIGKILL, nothing is left in host 2" {
	cat > "$TDIR/kill.py" <<'PY'
import os, signal, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, b"up\n")
    while True:
        time.sleep(1)
os.close(w)
assert os.read(r, 3) == b"up\n"
os.kill(pid, signal.SIGKILL)
_, st = os.waitpid(pid, 0)
print("signal", os.WTERMSIG(st) if os.WIFSIGNALED(st) else "none")
PY
	local before
	before=$(stubs 2)
	run rrun /usr/bin/python3 "$TDIR/kill.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(stubs 2)" -eq $((before + 1)) ]
	[ "$(cat "$OUT")" = "signal 9" ]
	none_marked "$MARK"
}

@test "rfork: host 2 goes silent while the child runs: the parent sees SIGKILL, host 2 cleans up" {
	cat > "$TDIR/dead.py" <<'PY'
import os, sys, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, b"up\n")
    while True:
        time.sleep(1)
os.close(w)
assert os.read(r, 3) == b"up\n"
open(sys.argv[1], "w").write("up\n")
_, st = os.waitpid(pid, 0)
print("signal", os.WTERMSIG(st) if os.WIFSIGNALED(st) else "none")
PY
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_TIMEOUT=2 "$ROOT/sh/rf-run" \
	    -k "$KEY" -H "$(addr 2)" /usr/bin/python3 "$TDIR/dead.py" "$TDIR/up" \
	    > "$OUT" 2> "$TDIR/err" &
	local rp=$!
	for _ in $(seq 200); do
		[ -s "$TDIR/up" ] && break
		sleep 0.05
	done
	[ -s "$TDIR/up" ]
	inh 2 ip link set eth0 down
	wait "$rp" || echo "rf-run: status $?"
	cat "$OUT" "$TDIR/err"
	[ "$(cat "$OUT")" = "signal 9" ]
	grep -q "rf-stub: pid [0-9]*: connection to the remote child lost" "$TDIR/err"
	for _ in $(seq 100); do
		[ -z "$(marked "$MARK")" ] && break
		sleep 0.1
	done
	none_marked "$MARK"
}

@test "rfork: memory, clocks, shared offsets, reads on demand, cwd, umask, rlimits, nice carry over" {
	mkdir -p "$TDIR/wd"
	cat > "$TDIR/state.py" <<'PY'
import os, resource, socket, time
os.chdir(os.environ["WD"])
os.umask(0o027)
os.nice(3)
resource.setrlimit(resource.RLIMIT_CORE, (4096, resource.getrlimit(resource.RLIMIT_CORE)[1]))
data = bytearray(b"x" * 100000)
data[54321] = 7
f = os.open("shared", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(f, b"a")
r, w = os.pipe()
os.write(w, b"123456")
t0 = time.time()
pid = os.fork()
if pid == 0:
    bad = []
    if socket.gethostname() == os.environ["H1"]: bad.append("local")
    if data[54321] != 7 or data[1] != ord("x"): bad.append("memory")
    if abs(time.time() - t0) > 30 or time.monotonic() <= 0: bad.append("clock")
    if os.getcwd() != os.environ["WD"]: bad.append("cwd " + os.getcwd())
    m = os.umask(0); os.umask(m)
    if m != 0o027: bad.append("umask %o" % m)
    if os.nice(0) != 3: bad.append("nice")
    if resource.getrlimit(resource.RLIMIT_CORE)[0] != 4096: bad.append("rlimit")
    os.write(f, b"b")
    if os.read(r, 3) != b"123": bad.append("pipe")
    with open("rel", "w") as g: g.write("made by the child\n")
    print("child", " ".join(bad) or "ok", flush=True)
    os._exit(0 if not bad else 1)
_, st = os.waitpid(pid, 0)
os.write(f, b"c")
os.close(w)
rest = os.read(r, 100)
print("parent", os.waitstatus_to_exitcode(st), rest.decode(), open("shared").read(),
      open("rel").read().strip(), "%o" % (os.stat("rel").st_mode & 0o777))
PY
	run rrun env WD="$TDIR/wd" H1="${PFX}1" /usr/bin/python3 "$TDIR/state.py"
	echo "$output"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "child ok"$'\n'"parent 0 456 abc made by the child 640" ]
	none_marked "$MARK"
}

@test "rfork: a remote child's umask, and the ids it drops, are its own at home too: root's files closed to it, its new files its own (SPEC 7)" {
	d=$(mktemp -d /tmp/rfcred.XXXXXX)
	chmod 755 "$d"
	echo secret > "$d/rootonly"
	chmod 600 "$d/rootonly"
	mkdir -m 1777 "$d/pub"
	cat > "$d/drop.py" <<'EOF'
import os, sys
os.chdir(sys.argv[1])
pid = os.fork()
if pid == 0:
    print("child on", os.uname().nodename, flush=True)
    os.umask(0o077)
    os.mkdir("pub/um")
    print("mode", oct(os.stat("pub/um").st_mode & 0o777), flush=True)
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
    try:
        open("rootonly").read()
        print("read root's file", flush=True)
    except PermissionError:
        print("EACCES", flush=True)
    os.close(os.open("pub/new", os.O_CREAT | os.O_WRONLY, 0o644))
    print("owner", os.stat("pub/new").st_uid, flush=True)
    try:
        os.kill(os.getppid(), 0)
        print("may signal root's process", flush=True)
    except PermissionError:
        print("kill EPERM", flush=True)
    os._exit(0)
os.waitpid(pid, 0)
st = os.stat("pub/new")
print("parent sees", st.st_uid, st.st_gid, open("rootonly").read().strip(), flush=True)
EOF
	run rrun python3 "$d/drop.py" "$d"
	cat "$OUT"
	rm -rf "$d"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "child on ${PFX}2
mode 0o700
EACCES
owner 65534
kill EPERM
parent sees 65534 65534 secret" ]
	none_marked "$MARK"
}

@test "rfork: a remote child in a background process group that blocks or ignores SIGTTOU takes the terminal (tcsetpgrp), as an interactive shell does" {
	cat > "$TDIR/tty.py" <<'EOF'
import os, signal, sys
pid = os.fork()
if pid == 0:
    fd = os.open("/dev/tty", os.O_RDWR)
    os.setpgid(0, 0)
    if sys.argv[1] == "block":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTTOU])
    else:
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(fd, os.getpgrp())
    print("tcsetpgrp", sys.argv[1], "ok on", os.uname().nodename, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
EOF
	# script(1) at home gives the run a terminal
	for how in block ignore; do
		inh 1 timeout 30 script -qec "env RFTEST_MARK=$MARK RFORK_POLICY=all $ROOT/sh/rf-run -k $KEY -H $(addr 2) python3 $TDIR/tty.py $how" /dev/null < /dev/null > "$OUT"
		cat "$OUT"
		[ "$(tr -d '\r' < "$OUT")" = "tcsetpgrp $how ok on ${PFX}2" ]
	done
	none_marked "$MARK"
}

@test "rfork: setpriority and prlimit of its parent from a remote child act on the parent at home (the parent's pid there is the proxy's)" {
	cat > "$TDIR/nice.py" <<'EOF'
import os, resource
if os.fork() == 0:
    os.setpriority(os.PRIO_PROCESS, os.getppid(), 7)
    print("child sees", os.getpriority(os.PRIO_PROCESS, os.getppid()), flush=True)
    hard = resource.prlimit(os.getppid(), resource.RLIMIT_CORE)[1]
    resource.prlimit(os.getppid(), resource.RLIMIT_CORE, (4096, hard))
    print("child sees core", resource.prlimit(os.getppid(), resource.RLIMIT_CORE)[0], flush=True)
    os._exit(0)
os.wait()
print("parent is", os.getpriority(os.PRIO_PROCESS, 0), resource.getrlimit(resource.RLIMIT_CORE)[0], flush=True)
EOF
	run rrun python3 "$TDIR/nice.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "child sees 7
child sees core 4096
parent is 7 4096" ]
	none_marked "$MARK"
}

@test "rfork: a remote child's write past the parent's file size limit at home dies of SIGXFSZ, as a local one" {
	mkdir -p "$TDIR/fsz"
	printf '%s\n' "cd $TDIR/fsz" 'ulimit -f 1' '( head -c 10000 /dev/zero > big; echo "rc=$?" )' 'stat -c %s big' > "$TDIR/fsz.sh"
	run rrun bash "$TDIR/fsz.sh"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "rc=153
1024" ]
	none_marked "$MARK"
}

@test "rfork: a remote child's next fd has the number a local child's would (no filter listener left in it), and its name is the program's; a grandchild's too" {
	cat > "$TDIR/nextfd.py" <<'EOF'
import os
def link(n):
    try:
        return os.readlink("/proc/self/fd/" + n)
    except OSError:
        return ""       # the listing's own fd, closed by now
def report(who):
    c = os.open("/proc/self/comm", os.O_RDONLY)
    name = os.read(c, 64).decode().strip()
    os.close(c)
    fd = os.open("/dev/null", os.O_RDONLY)
    seccomp = [n for n in os.listdir("/proc/self/fd") if link(n).startswith("anon_inode:seccomp")]
    print(who, "next fd", fd, "listeners", len(seccomp), "name", name, flush=True)
    os.close(fd)
report("parent")
if os.fork() == 0:
    report("child")
    if os.fork() == 0:
        report("grandchild")
        os._exit(0)
    os.wait()
    os._exit(0)
os.wait()
EOF
	run rrun python3 "$TDIR/nextfd.py"
	cat "$OUT"
	[ "$status" -eq 0 ]
	# the parent's next fd is whatever bats left open below it
	n=$(awk '$1 == "parent" { print $4 }' "$OUT")
	[ "$(cat "$OUT")" = "parent next fd $n listeners 0 name python3
child next fd $n listeners 0 name python3
grandchild next fd $n listeners 0 name python3" ]
	none_marked "$MARK"
}

@test "rfork: a confined process (no_new_privs, a seccomp filter of its own, a smaller bounding set, dropped capabilities) forks locally and says so (EAGAIN when strict)" {
	cat > "$TDIR/filter.py" <<'EOF'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
# sysinfo (99) fails with EPERM, the rest is allowed
ins = [(0x20, 0, 0, 0), (0x15, 0, 1, 99), (0x06, 0, 0, 0x00050001), (0x06, 0, 0, 0x7fff0000)]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in ins))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(ins), ctypes.addressof(code))
if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:    # PR_SET_SECCOMP, filter
    sys.exit("seccomp: %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
EOF
	cat > "$TDIR/capdrop.py" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)      # _LINUX_CAPABILITY_VERSION_3, this process
data = (ctypes.c_uint32 * 6)()                  # effective, permitted, inheritable; twice
if libc.capget(hdr, data) != 0:
    sys.exit("capget: %d" % ctypes.get_errno())
data[0] &= ~(1 << 13)                           # CAP_NET_RAW out of effective
data[1] &= ~(1 << 13)                           # and permitted
if libc.capset(hdr, data) != 0:
    sys.exit("capset: %d" % ctypes.get_errno())
# an exec would give root its capabilities back: this process forks
pid = os.fork()
if pid == 0:
    print("child %d ppid %d host %s" % (os.getpid(), os.getppid(), os.uname().nodename), flush=True)
    os._exit(4)
print("forked %d status exit %d" % (pid, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])), flush=True)
EOF
	for how in "setpriv --no-new-privs" "setpriv --bounding-set -net_raw" \
	    "python3 $TDIR/capdrop.py" "python3 $TDIR/filter.py"; do
		run --separate-stderr rrun $how "$TESTS/rforkhost" 4
		echo "$how: $(cat "$OUT") / $stderr"
		[ "$status" -eq 0 ]
		[ "$(grep -c "^child .* host ${PFX}1$" "$OUT")" -eq 1 ]
		grep -q "status exit 4" "$OUT" 
		[[ "$stderr" == *"fork stays local: the process is confined ("*"), which a remote child would not keep"* ]]
	done
	run --separate-stderr inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_STRICT=1 \
	    "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2)" setpriv --no-new-privs "$TESTS/rforkhost" 4
	echo "$output / $stderr"
	[ "$status" -ne 0 ]
	! grep -q '^child ' <<<"$output"
	[[ "$stderr" == *"fork fails (RFORK_STRICT=1): the process is confined (no_new_privs)"* ]]
	none_marked "$MARK"
}

@test "rfork: MAP_SHARED stays local (EAGAIN when strict); a host that is down gets a local child" {
	run --separate-stderr rrun "$TESTS/forker" shared
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "ok shared" ]
	[[ "$stderr" == *"fork stays local: MAP_SHARED"* ]]
	run --separate-stderr inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_STRICT=1 \
	    "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2)" "$TESTS/forker" shared
	[ "$status" -eq 11 ]
	run --separate-stderr inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all RFORK_TIMEOUT=2 \
	    "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 9)" "$TESTS/rforkhost" 4
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c "^child .* host ${PFX}1$" <<<"$output")" -eq 1 ]
	[[ "$output" == *"status exit 4"* ]]
	none_marked "$MARK"
}

@test "rfork: a home fd above the parent's lowered RLIMIT_NOFILE does not break the remote child" {
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2)" \
	    prlimit --nofile=100: "$TESTS/rforkhost" 6 > "$OUT" 250> /dev/null
	cat "$OUT"
	grep -q "^child .* host ${PFX}2$" "$OUT"
	grep -q "status exit 6$" "$OUT"
	none_marked "$MARK"
}

@test "rfork: 100 remote forks in a row leave no fds or processes behind on either host" {
	local before fds
	before=$(stubs 2)
	fds=$(server_fds 2)
	run rrun "$TESTS/forker" basic 100
	cat "$OUT"
	[ "$status" -eq 0 ]
	grep -q '^ok basic' "$OUT"
	# the server logs a stub's coming as it lets the child go: the last may lag
	for _ in $(seq 50); do
		[ "$(stubs 2)" -ge $((before + 100)) ] && break
		sleep 0.1
	done
	[ "$(stubs 2)" -eq $((before + 100)) ]
	none_marked "$MARK"
	[ "$(server_fds 2)" -eq "$fds" ]
	for _ in $(seq 50); do
		[ "$(grep -c "tree ended" "$LOGDIR/${PFX}2.log")" -ge $((before + 100)) ] && break
		sleep 0.1
	done
	[ "$(grep -c "tree ended" "$LOGDIR/${PFX}2.log")" -ge $((before + 100)) ]
}

@test "rfork: 16 remote children at once" {
	cat > "$TDIR/many.py" <<'PY'
import os, socket, time
kids = {}
r, w = os.pipe()
for i in range(16):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        time.sleep(0.5)
        os.write(w, b"%d %s\n" % (os.getpid(), socket.gethostname().encode()))
        os._exit(i)
    kids[pid] = i
os.close(w)
lines = b""
while True:
    b = os.read(r, 4096)
    if not b:
        break
    lines += b
hosts = set()
for l in lines.decode().split("\n")[:-1]:
    p, h = l.split()
    assert int(p) in kids
    hosts.add(h)
for pid, i in kids.items():
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == i
print(len(lines.decode().split("\n")) - 1, " ".join(sorted(hosts)))
PY
	run rrun /usr/bin/python3 "$TDIR/many.py"
	echo "$output"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "16 ${PFX}2" ]
	none_marked "$MARK"
}

# nspid_in I PID: the processes of host I whose pid in their own namespace is PID.
nspid_in() {
	local p
	for p in $(ip netns pids "$PFX$1"); do
		[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$p/status" 2>/dev/null)" != "$2" ] || echo "$p"
	done
}

# upwait.py STATUSFILE: forks one child that runs until killed; says "up" in
# STATUSFILE once the child runs, then prints how waitpid saw it end.
upwait_py() {
	cat > "$TDIR/upwait.py" <<'PY'
import os, sys, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, b"up\n")
    while True:
        time.sleep(1)
os.close(w)
assert os.read(r, 3) == b"up\n"
open(sys.argv[1], "w").write("up %d\n" % pid)
_, st = os.waitpid(pid, 0)
print("signal", os.WTERMSIG(st) if os.WIFSIGNALED(st) else "none")
PY
}

# killed_midway: upwait.py under rf-run as rrun runs it, host 2's server
# $SPID killed outright while the child runs there: the parent must see
# SIGKILL, and nothing may be left in host 2.
killed_midway() {
	local up=$TDIR/st/up.$BATS_TEST_NUMBER err=$TDIR/err.$BATS_TEST_NUMBER rp cpid rc=0
	upwait_py
	inh 1 "${AS[@]}" env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" \
	    -k "${RKEY:-$KEY}" -H "${RHOST:-$(addr 2)}" /usr/bin/python3 "$TDIR/upwait.py" "$up" \
	    > "$OUT" 2> "$err" &
	rp=$!
	wait_line "$up" '^up [0-9]+$'
	read -r _ cpid < "$up"
	wait_line "$SLOG" "fork: pid $cpid \(parent [0-9]+\) waits for its stub"
	# the child runs in host 2, where its pid is its stub's
	[ -n "$(nspid_in 2 "$cpid")" ]
	kill -KILL "$SPID"
	wait "$SPID" || true
	SPID=
	wait_gone "$rp"
	wait "$rp" || rc=$?
	cat "$OUT" "$err"
	[ "$rc" -eq 0 ]
	[ "$(cat "$OUT")" = "signal 9" ]
	grep -q "rf-stub: pid $cpid: connection to the remote child lost" "$err"
	only_server 2
	none_marked "$MARK"
}

@test "rfork: host 2's rf-server killed while the child runs: the parent sees SIGKILL, nothing is left in host 2" {
	local RHOST=$(addr 2):7078
	own_server 7078 -- -k "$KEY" -R
	killed_midway
}

@test "rfork: SIGTERM to host 2's rf-server: children that end within its timeout end as they would, the rest are killed" {
	local up=$TDIR/up.$BATS_TEST_NUMBER go=$TDIR/go.$BATS_TEST_NUMBER rp rc=0
	cat > "$TDIR/term.py" <<'PY'
import os, sys, time
r, w = os.pipe()
kids = {}
for name in "ab":
    pid = os.fork()
    if pid == 0:
        os.write(w, b"up\n")
        while name == "b" or not os.path.exists(sys.argv[2]):
            time.sleep(0.05)
        os._exit(5)
    kids[pid] = name
os.close(w)
got = b""
while len(got) < 6:
    b = os.read(r, 6 - len(got))
    assert b
    got += b
open(sys.argv[1], "w").write("up\n")
for _ in kids:
    pid, st = os.wait()
    print(kids[pid], "exit %d" % os.WEXITSTATUS(st) if os.WIFEXITED(st) else
          "signal %d" % os.WTERMSIG(st), flush=True)
PY
	own_server 7078 -- -k "$KEY" -R
	inh 1 env RFTEST_MARK="$MARK" RFORK_POLICY=all "$ROOT/sh/rf-run" -k "$KEY" \
	    -H "$(addr 2):7078" /usr/bin/python3 "$TDIR/term.py" "$up" "$go" > "$OUT" &
	rp=$!
	wait_line "$up" '^up$'
	kill -TERM "$SPID"
	wait_line "$SLOG" "stopping on signal 15"
	touch "$go"
	wait "$SPID" || rc=$?
	SPID=
	wait_gone "$rp"
	wait "$rp"
	cat "$OUT" "$SLOG"
	[ "$rc" -eq 0 ]
	[ "$(cat "$OUT")" = "a exit 5"$'\n'"b signal 9" ]
	grep -q "1 connections left after 3 s: killed, with their remote children" "$SLOG"
	grep -q "stopped$" "$SLOG"
	only_server 2
	none_marked "$MARK"
}

@test "rfork: host 2's rf-server as nobody: nobody's program forks there (user namespace); killed, it takes the child along" {
	local AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	local RKEY=$TDIR/nkey RHOST=$(addr 2):7079
	cp "$KEY" "$RKEY"
	chown nobody "$RKEY"
	own_server 7079 "${AS[@]}" -- -k "$RKEY"
	grep -q "restores only its own user's processes" "$SLOG"
	run rrun "$TESTS/rforkhost" 7
	cat "$OUT" "$SLOG"
	[ "$status" -eq 0 ]
	ran_there 7
	wait_line "$SLOG" "fork: pid $cpid \(parent $ppid\) waits for its stub \(user namespace\)"
	wait_line "$SLOG" "fork: pid $cpid's tree ended \(exit 0\)"
	run rrun "$TESTS/forker" basic 3
	cat "$OUT"
	[ "$status" -eq 0 ]
	grep -q '^ok basic' "$OUT"
	# the remote child forks too (SPEC 8)
	run --separate-stderr rrun /bin/bash -c 'x=$(echo $(hostname) $(id -un)); echo "$x $HOSTNAME"'
	echo "$stderr"
	cat "$OUT"
	[ "$status" -eq 0 ]
	[ "$(cat "$OUT")" = "${PFX}2 nobody ${PFX}1" ]
	none_marked "$MARK"
	# killed outright, it takes its children with it too
	killed_midway
}
