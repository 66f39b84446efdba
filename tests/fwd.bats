#!/usr/bin/env bats
# The forwarding core (lib/fwd*.c, rf-stub): build/tests/fwdrun runs
# build/tests/fwd_child as the remote fork child of fwdrun, on this host, in a
# pid namespace under the proxy, with its fds held at home by rf-stub.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	D=$BATS_TEST_TMPDIR
	RUN=$TESTS/fwdrun
	CHILD=$TESTS/fwd_child
	BG=
	TOKEN=fwdtest-$$-$BATS_TEST_NUMBER
}

teardown() {
	[ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null || true
	# a failed test must not leave a stub waiting on a fifo
	[ ! -f "$D/pids" ] || kill -KILL $(awk '{ print $2 }' "$D/pids") 2>/dev/null || true
	pkill -KILL -f "$TOKEN" 2>/dev/null || true
	exec 5>&- || true
}

# stub_pid: the stub's pid from the -p file fwdrun writes.
pidof_() {
	wait_line "$D/pids" "^$1 " && awk -v k="$1" '$1 == k { print $2 }' "$D/pids"
}

# appears REGEX: wait up to 5 s until a process matches.
appears() {
	local _
	for _ in $(seq 500); do
		pgrep -f "$1" > /dev/null && return 0
		sleep 0.01
	done
	return 1
}

# gone REGEX: wait up to 5 s until no process matches.
gone() {
	local _
	for _ in $(seq 500); do
		pgrep -f "$1" > /dev/null || return 0
		sleep 0.01
	done
	return 1
}

# nofds CMD...: run CMD with only fds 0, 1, 2 (and 5 if open): bats keeps
# others open, and they would be home fds of the child too.
nofds() {
	local fd
	for fd in $(ls /proc/$BASHPID/fd); do
		[ "$fd" -le 2 ] || [ "$fd" -eq 5 ] || eval "exec $fd>&-"
	done
	"$@"
}

# wchan PID WORD: wait up to 5 s for the process to sleep in a kernel function named *WORD*.
wchan() {
	local _
	for _ in $(seq 500); do
		case $(cat "/proc/$1/wchan" 2>/dev/null) in *"$2"*) return 0 ;; esac
		sleep 0.01
	done
	return 1
}

# reading CHILD-ARGS...: run the child in the background with stdin a fifo
# (its writer is fd 5 here), output in $D/out; return once the stub waits
# in a read of it.  Sets BG and stub.
reading() {
	mkfifo "$D/fifo"
	exec 5<> "$D/fifo"
	"$RUN" -p "$D/pids" "$CHILD" "$@" < "$D/fifo" > "$D/out" &
	BG=$!
	stub=$(pidof_ stub)
	wchan "$stub" pipe_read
}

# sleeping: run the child "sleep 30 $TOKEN" in the background (fwdrun -v,
# stderr in $D/err) and return once it runs.  Sets BG.
sleeping() {
	"$RUN" -v -p "$D/pids" "$CHILD" sleep 30 "$TOKEN" 2> "$D/err" &
	BG=$!
	pidof_ init > /dev/null
	appears "$TOKEN"
}

# finish: wait for the background fwdrun; its status in st.
finish() {
	st=0
	wait "$BG" || st=$?
	BG=
}

@test "write and stdio at exit reach the home stdout" {
	run "$RUN" "$CHILD" write "one " printf "buffered, flushed by exit"
	[ "$status" -eq 0 ]
	[ "$output" = "one buffered, flushed by exit" ]
}

@test "armed at the control read, as a restored child will be" {
	run "$RUN" -k "$CHILD" write "armed " pids
	[ "$status" -eq 0 ]
	[[ "$output" == "armed pid "* ]]
}

@test "the offset of a regular file is shared with the parent" {
	( echo X; "$RUN" "$CHILD" write "B"; echo C ) > "$D/f"
	[ "$(cat "$D/f")" = "$(printf 'X\nBC')" ]
	printf '0123456789' > "$D/g"
	exec 5< "$D/g"
	"$RUN" "$CHILD" seek 5 4
	read -r -u 5 rest || :
	[ "$rest" = "456789" ]
}

@test "O_APPEND: the child's writes go to the end whatever its offset" {
	echo first > "$D/f"
	{ echo a; "$RUN" "$CHILD" seek 1 0 write b; echo c; } >> "$D/f"
	[ "$(cat "$D/f")" = "$(printf 'first\na\nbc')" ]
}

@test "reads are on demand: the child takes 3 bytes of a pipe, the parent the rest" {
	run bash -c 'printf abcdefgh | { "$1" "$2" read 3; cat; }' _ "$RUN" "$CHILD"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'read 3: abc\ndefgh')" ]
}

@test "files the child opens are opened at home, relative to the cwd there" {
	mkdir "$D/w"
	cd "$D/w"
	run "$RUN" "$CHILD" create rel.txt "made" cat rel.txt stat rel.txt ls . cwd
	[ "$status" -eq 0 ]
	[ "$(cat "$D/w/rel.txt")" = made ]
	[ "$output" = "$(printf 'madestat rel.txt: 4\nrel.txt\ncwd %s' "$D/w")" ]
	run "$RUN" "$CHILD" chdir "$D" create there.txt x cwd
	[ "$status" -eq 0 ]
	[ -f "$D/there.txt" ]
	[ "$output" = "cwd $D" ]
	run "$RUN" "$CHILD" cat no-such-file
	[ "$status" -eq 4 ]
	[ "$output" = "cat no-such-file: No such file or directory" ]
}

@test "fds the child opens locally never take a home number" {
	# home: 0 1 2 5; /etc/ld.so.cache and /usr/... are opened on its own host
	exec 5< /dev/null
	run nofds "$RUN" "$CHILD" open /etc/ld.so.cache open /usr/lib/os-release open /proc/self/status
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'open /etc/ld.so.cache: 3\nopen /usr/lib/os-release: 4\nopen /proc/self/status: 6')" ]
}

@test "dup2 and close act on the home fds; the exec'd program sees them" {
	run nofds "$RUN" "$CHILD" dup2 1 7 close 1 exec /bin/sh -c 'echo via seven >&7; echo lost 2>/dev/null || :'
	[ "$output" = "via seven" ]
	run "$RUN" "$CHILD" getfd 1 cloexec 1 getfd 1 exec /bin/echo gone
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "getfd 1: 0" ]
	[ "${lines[1]}" = "getfd 1: 1" ]
	[[ "${lines[2]}" == *"write error"* ]]
}

@test "getpid, getppid, gettid are native and the origin's" {
	"$RUN" -p "$D/pids" "$CHILD" pids exec /bin/sh -c 'echo sh $$' > "$D/out" &
	BG=$!
	wait "$BG"
	BG=
	stub=$(pidof_ stub)
	[ "$(head -1 "$D/out")" = "pid $stub ppid $! tid $stub" ]
	[ "$(tail -1 "$D/out")" = "sh $stub" ]
}

@test "exit code and death by a signal reach the parent's waitpid" {
	run "$RUN" -v "$CHILD" exit 7
	[ "$status" -eq 7 ]
	[[ "$output" == *"fwdrun: exit 7"* ]]
	run "$RUN" -v "$CHILD" raise 15
	[ "$status" -eq 143 ]
	[[ "$output" == *"fwdrun: signal 15"* ]]
	run "$RUN" -v "$CHILD" abort
	[ "$status" -eq 134 ]
	[[ "$output" == *"fwdrun: signal 6"* ]]
}

@test "kill(getppid(), sig) in the child reaches the parent" {
	run "$RUN" -v "$CHILD" killparent 10
	[ "$status" -eq 0 ]
	[[ "$output" == *"fwdrun: parent got SIGUSR1"* ]]
}

@test "a signal to the stub reaches the child; a blocked home read restarts (SA_RESTART)" {
	reading rhandler 10 waitread
	kill -USR1 "$stub"
	wait_line "$D/out" "got 10"
	echo x >&5
	finish
	[ "$(cat "$D/out")" = "$(printf 'got 10\nwaitread 1 ')" ]
}

@test "a signal to the stub interrupts a blocked home read (no SA_RESTART)" {
	reading handler 12 waitread
	kill -USR2 "$stub"
	finish
	[ "$(cat "$D/out")" = "$(printf 'got 12\nwaitread -1 Interrupted system call')" ]
	# nothing was taken from the pipe
	echo y >&5
	read -r -t 5 got <&5
	[ "$got" = y ]
}

@test "a signal the child blocks does not cut its home read short" {
	reading handler 10 block 10 waitread
	kill -USR1 "$stub"
	wchan "$stub" pipe_read
	echo x >&5
	finish
	[ "$(cat "$D/out")" = "waitread 1 " ]
}

@test "a signal raised on the child's host cuts its home read short (alarm)" {
	mkfifo "$D/fifo"
	exec 5<> "$D/fifo"
	run "$RUN" "$CHILD" handler 14 alarm 1 waitread < "$D/fifo"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'got 14\nwaitread -1 Interrupted system call')" ]
	echo y >&5
	read -r -t 5 got <&5
	[ "$got" = y ]
}

@test "child killed on its host during a home read: the parent sees SIGKILL" {
	reading waitread "$TOKEN"
	pkill -KILL -f "$CHILD waitread $TOKEN"
	finish
	[ "$st" -eq 137 ]
}

@test "stub killed: the remote child dies, nothing is left" {
	sleeping
	kill -KILL "$(pidof_ stub)"
	finish
	[ "$st" -eq 137 ]
	gone "$TOKEN"
}

@test "remote side gone: the stub dies by SIGKILL" {
	sleeping
	kill -KILL "$(pidof_ init)"
	finish
	[ "$st" -eq 137 ]
	grep -q "connection to the remote child lost" "$D/err"
	grep -q "fwdrun: signal 9" "$D/err"
	gone "$TOKEN"
}

@test "processes the child starts on its host have their own fd tables" {
	cd "$D"
	echo content > rel.txt
	run "$RUN" "$CHILD" exec /bin/sh -c 'cat rel.txt; x=$(echo sub | tr s S); echo "$x"; ls rel.txt | wc -l; exec 1>&-; echo no 2>/dev/null || :'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'content\nSub\n1')" ]
}

@test "a descendant's chdir is its own; getcwd is the home one" {
	mkdir "$D/w"
	cd "$D/w"
	echo here > rel.txt
	run "$RUN" "$CHILD" exec /bin/sh -c '(cd / && pwd && ls -d tmp); pwd; cat rel.txt; cd ..; pwd; cat w/rel.txt'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '/\ntmp\n%s\nhere\n%s\nhere' "$D/w" "$D")" ]
}

@test "python3 as the child: threads, os.fork with a pipe, subprocess" {
	cd "$D"
	echo abc > in.txt
	run "$RUN" /usr/bin/python3 -c '
import os, subprocess, threading
ts = [threading.Thread(target=os.write, args=(1, b"t\n")) for i in range(3)]
[t.start() for t in ts]; [t.join() for t in ts]
print(open("in.txt").read().strip(), flush=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.write(w, b"from grandchild"); os._exit(3)
os.close(w)
print(os.read(r, 100).decode(), os.waitpid(pid, 0)[1] >> 8, flush=True)
print(subprocess.run(["echo", "sub"], capture_output=True).stdout.decode().strip())'
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 't\nt\nt\nabc\nfrom grandchild 3\nsub')" ]
}

@test "sockets: the child accepts on an inherited listening socket and talks" {
	run python3 -c '
import socket, subprocess, sys
child = """
import socket
s = socket.socket(fileno=0)
print(s.type, s.getsockname()[0], s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), flush=True)
c, addr = s.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("from", addr[0], c.getpeername()[0], flush=True)
c.sendall(c.recv(4) + b" pong")
"""
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
p = subprocess.Popen([sys.argv[1], "/usr/bin/python3", "-c", child], stdin=l.fileno())
c = socket.create_connection(l.getsockname())
c.sendall(b"ping")
print(c.recv(100).decode(), flush=True)
sys.exit(p.wait())' "$RUN"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf '1 127.0.0.1 1\nfrom 127.0.0.1 127.0.0.1\nping pong')" ]
}

@test "poll and large writes on home fds; loopback TCP between stub and proxy" {
	run "$RUN" "$CHILD" poll 0 1000 < /dev/null
	[ "$output" = "poll 1 0x1" ]
	run bash -c 'sleep 2 | "$1" "$2" poll 0 50' _ "$RUN" "$CHILD"
	[ "$output" = "poll 0 0" ]
	[ "$("$RUN" -t "$CHILD" bulk 3145728 | wc -c)" -eq 3145728 ]
	run "$RUN" -t "$CHILD" write tcp
	[ "$output" = tcp ]
}

@test "rf-stub: usage, bad fd, garbage from the peer" {
	run "$BIN/rf-stub"
	[ "$status" -eq 64 ]
	[[ "$output" == usage:* ]]
	run "$BIN/rf-stub" -h
	[ "$status" -eq 64 ]
	run "$BIN/rf-stub" -c 77
	[ "$status" -eq 64 ]
	run "$BIN/rf-stub" -x 3,zz -c 0
	[ "$status" -eq 64 ]
	# a peer that answers HELLO with junk: the stub dies as if the child were lost
	run python3 -c '
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen([sys.argv[1], "-c", str(a.fileno())], pass_fds=[a.fileno()])
a.close()
b.recv(4096)
b.sendall(b"\xff" * 64)
sys.exit(-p.wait())' "$BIN/rf-stub"
	[ "$status" -eq 9 ]
	[[ "$output" == *"rf-stub: "* ]]
}

@test "proxy: a stub that says nothing, or junk, gets the child killed before it runs" {
	run "$RUN" -v -s /bin/true "$CHILD" create "$D/never" x
	[[ "$output" == *"fwdrun: proxy 69"* ]]
	[ ! -e "$D/never" ]
	printf '#!/bin/sh\nprintf "\\001\\000\\000\\000\\010\\000\\000\\000%%040d" 0 >&$2\nsleep 5\n' > "$D/junkstub"
	chmod +x "$D/junkstub"
	run "$RUN" -v -s "$D/junkstub" "$CHILD" create "$D/never" x
	[[ "$output" == *"fwdrun: proxy 76"* ]]
	[ ! -e "$D/never" ]
}

@test "poll and select mixing home and local fds: whichever side is ready first answers" {
	cat > "$BATS_TEST_TMPDIR/mix.py" <<'EOF'
import os, select, sys, threading, time
r, w = os.pipe()                      # a local pipe; stdin is home
mode = sys.argv[1]
if mode == "local":
    threading.Timer(0.2, lambda: os.write(w, b"x")).start()
t0 = time.monotonic()
if sys.argv[2] == "poll":
    p = select.poll()
    p.register(0, select.POLLIN)
    p.register(r, select.POLLIN)
    got = sorted("home" if fd == 0 else "local" for fd, ev in p.poll(3000 if mode != "none" else 100))
else:
    rd, _, _ = select.select([0, r], [], [], 3 if mode != "none" else 0.1)
    got = sorted("home" if fd == 0 else "local" for fd in rd)
print(mode, sys.argv[2], " ".join(got) or "none", "fast" if time.monotonic() - t0 < 2 else "slow")
EOF
	for how in poll select; do
		# stdin: a home pipe that stays quiet (or speaks after 0.2 s); its
		# writer is not waited for
		run bash -c '"$1" /usr/bin/python3 "$2" local "$3" < <(exec sleep 4 2>/dev/null)' _ "$RUN" "$BATS_TEST_TMPDIR/mix.py" $how
		[ "$output" = "local $how local fast" ]
		run bash -c '"$1" /usr/bin/python3 "$2" home "$3" < <(sleep 0.2; echo hi; exec sleep 4 2>/dev/null)' _ "$RUN" "$BATS_TEST_TMPDIR/mix.py" $how
		[ "$output" = "home $how home fast" ]
		run bash -c '"$1" /usr/bin/python3 "$2" none "$3" < <(exec sleep 4 2>/dev/null)' _ "$RUN" "$BATS_TEST_TMPDIR/mix.py" $how
		[ "$output" = "none $how none fast" ]
	done
}
