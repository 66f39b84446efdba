#!/usr/bin/env bats
# librfork.so, the fork wrapper (lib/preload/): policy, the shared-memory
# rule, the local fallback, and the decision path up to rf-stub, on this host
# alone: a dead host exercises the fallback, tests/fake-rf-send and
# build/tests/fakestub the decision, build/tests/forkwire a remote side here.
# Each fork that tries the remote path and stays local logs one line.
# Real remote forks between test hosts: tests/rfork.bats, tests/rfork-tree.bats.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	D=$BATS_TEST_TMPDIR
	LIB=$ROOT/build/lib/librfork.so
	F=$TESTS/forker
	MARK=librfork-$$-$BATS_TEST_NUMBER
	DEAD=127.0.0.1:1
	BG=
}

teardown() {
	[ -z "$BG" ] || kill -KILL "$BG" 2>/dev/null || true
	kill -KILL $(marked "$MARK") 2>/dev/null || true
}

# pre CMD...: CMD with the library, marked, pointing at the dead host.
pre() {
	env RFTEST_MARK="$MARK" LD_PRELOAD="$LIB" RFORK_BINDIR="${BINDIR:-$BIN}" \
	    RFORK_HOSTS="${HOSTS-$DEAD}" "$@"
}

# fakebin: a tool directory with the real rf-snap, tests/fake-rf-send and
# the fake stub; BINDIR points there.
fakebin() {
	mkdir -p "$D/bin"
	ln -sf "$BIN/rf-snap" "$D/bin/rf-snap"
	ln -sf "$ROOT/tests/fake-rf-send" "$D/bin/rf-send"
	ln -sf "$TESTS/fakestub" "$D/bin/rf-stub"
	BINDIR=$D/bin
	export FAKE_DIR=$D FAKE_BIN=$BIN
}

# wire: the remote side on this host: the fake rf-send starts
# build/tests/forkwire (rf-restore's fork mode, the proxy in a pid namespace)
# and build/tests/stubdial connects S's real rf-stub to it.
wire() {
	fakebin
	ln -sf "$TESTS/stubdial" "$D/bin/rf-stub"
	# rf-restore -C takes whole images: no post-copy here (rf-server's part)
	export FAKE_SEND=wire FAKE_TESTS=$TESTS RFORK_POSTCOPY=0
}

# local_lines: the number of "fork stays local" lines in $stderr.
local_lines() {
	grep -c '^rfork: pid [0-9]*: fork stays local: ' <<<"$stderr" || true
}

@test "librfork: exports fork, _Fork and mmap only, needs only libc" {
	run nm -D --defined-only "$LIB"
	[ "$(awk '{ print $3 }' <<<"$output" | sort | tr '\n' ' ')" = "_Fork fork mmap mmap64 " ]
	run ldd "$LIB"
	[ "$(grep -c '=>' <<<"$output")" -eq 1 ]
	[[ "$output" == *libc.so.6* ]]
}

@test "librfork: policy none forks plainly: no helper runs, nothing logged" {
	RFORK_POLICY=none run --separate-stderr pre "$F" basic 5
	[ "$status" -eq 0 ]
	[ "$output" = "ok basic" ]
	[ -z "$stderr" ]
	none_marked "$MARK"
}

@test "librfork: mmap in a process with no proxy is the kernel's, its errors too" {
	mkdir "$BATS_TEST_TMPDIR/map"
	RFORK_POLICY=none run --separate-stderr pre "$TESTS/mapfile" "$BATS_TEST_TMPDIR/map"
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^fd file$' <<<"$output")" -eq 2 ]
	# on one host the O_RDWR file maps shared and writable, as it should
	[ "$(grep '^FAIL' <<<"$output")" = "FAIL shared-read-stays mprotect"$'\n'"FAIL shared-write-refused mapped" ]
	# the write-only fd's EACCES is the kernel's, passed through
	for t in private shared-read private-write write-only-refused relative file-unchanged; do
		grep -qx "ok $t" <<<"$output"
	done
	[ -z "$stderr" ]
}

@test "librfork: policy all with the host down: every fork is one local child, once" {
	run --separate-stderr pre "$F" basic 5
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok basic" ]
	[ "$(local_lines)" -eq 5 ]
	[ "$(wc -l <<<"$stderr")" -eq 5 ]
	# the line names the forking process
	pid=$(sed -n '1s/^rfork: pid \([0-9]*\):.*/\1/p' <<<"$stderr")
	[ "$(grep -c "^rfork: pid $pid: " <<<"$stderr")" -eq 5 ]
	none_marked "$MARK"
}

@test "librfork: every:N and first:N choose which forks try the remote path" {
	RFORK_POLICY=every:3 run --separate-stderr pre "$F" basic 7
	[ "$status" -eq 0 ]
	[ "$(local_lines)" -eq 2 ]
	RFORK_POLICY=every:1 run --separate-stderr pre "$F" basic 4
	[ "$(local_lines)" -eq 4 ]
	RFORK_POLICY=first:2 run --separate-stderr pre "$F" basic 5
	[ "$status" -eq 0 ]
	[ "$(local_lines)" -eq 2 ]
	RFORK_POLICY=first:0 run --separate-stderr pre "$F" basic 3
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	RFORK_POLICY=all run --separate-stderr pre "$F" basic 2
	[ "$(local_lines)" -eq 2 ]
}

@test "librfork: a bad RFORK_POLICY, or no RFORK_HOSTS: said once, forks stay local" {
	for p in sometimes every:0 every:x first: every; do
		RFORK_POLICY=$p run --separate-stderr pre "$F" basic 3
		[ "$status" -eq 0 ]
		[ "$stderr" = "rfork: pid ${stderr#rfork: pid }" ]
		[ "$(wc -l <<<"$stderr")" -eq 1 ]
		[[ "$stderr" == *"RFORK_POLICY=$p: not all, none, every:N or first:N; forks stay local" ]]
	done
	HOSTS= run --separate-stderr pre "$F" basic 3
	[ "$status" -eq 0 ]
	[[ "$stderr" == *": RFORK_HOSTS not set: forks stay local" ]]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
}

@test "librfork: a MAP_SHARED mapping keeps the fork local, sharing intact, and says so" {
	fakebin
	run --separate-stderr pre "$F" shared
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok shared" ]
	[[ "$stderr" =~ ^rfork:\ pid\ [0-9]+:\ fork\ stays\ local:\ MAP_SHARED\ mapping\ at\ [0-9a-f]+-[0-9a-f]+\ /dev/zero\ \(deleted\)$ ]]
	# nothing was shipped
	[ ! -e "$D/send" ]
}

@test "librfork: System V shared memory keeps the fork local too" {
	fakebin
	run --separate-stderr pre "$F" sysv
	[ "$status" -eq 0 ]
	[ "$output" = "ok sysv" ]
	[[ "$stderr" =~ ^rfork:\ pid\ [0-9]+:\ fork\ stays\ local:\ MAP_SHARED\ mapping\ at\ [0-9a-f-]+\ /SYSV ]]
	[ ! -e "$D/send" ]
}

@test "librfork: RFORK_STRICT=1 with shared memory: fork fails with EAGAIN" {
	for m in shared sysv; do
		RFORK_STRICT=1 run --separate-stderr pre "$F" $m
		[ "$status" -eq 11 ]
		[ "$output" = "fork failed: EAGAIN" ]
		[[ "$stderr" == *"fork fails (RFORK_STRICT=1): MAP_SHARED mapping at "* ]]
	done
	# strict changes nothing for a process without shared memory
	RFORK_STRICT=1 run --separate-stderr pre "$F" basic 2
	[ "$status" -eq 0 ]
	[ "$(local_lines)" -eq 2 ]
	# nor under policy none
	RFORK_STRICT=1 RFORK_POLICY=none run --separate-stderr pre "$F" shared
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
}

@test "librfork: system, popen, posix_spawn and vfork never take the remote path" {
	run --separate-stderr pre "$F" spawn
	[ "$status" -eq 0 ]
	[ "$output" = "ok spawn" ]
	[ -z "$stderr" ]
	none_marked "$MARK"
}

@test "librfork: a program that ignores SIGCHLD" {
	run --separate-stderr pre "$F" ignored
	[ "$status" -eq 0 ]
	[ "$output" = "ok ignored" ]
	[ "$(local_lines)" -eq 1 ]
	wire
	run --separate-stderr pre "$F" ignored
	[ "$status" -eq 0 ]
	[ "$output" = "ok ignored" ]
	[ -z "$stderr" ]
	none_marked "$MARK"
}

@test "librfork: _Fork is wrapped like fork" {
	run --separate-stderr pre "$F" Fork
	[ "$status" -eq 0 ]
	[ "$output" = "ok Fork" ]
	[ "$(local_lines)" -eq 1 ]
}

@test "librfork: threads forking at once each get their one child" {
	run --separate-stderr pre "$F" threads
	[ "$status" -eq 0 ]
	[ "$output" = "ok threads" ]
	[ "$(local_lines)" -eq 12 ]
	none_marked "$MARK"
}

@test "librfork: hosts are taken round robin" {
	fakebin
	HOSTS=h1,h2:7100,,h3 FAKE_SEND=fail run --separate-stderr pre "$F" basic 4
	[ "$status" -eq 0 ]
	[ "$(local_lines)" -eq 4 ]
	[[ "$stderr" == *"fork stays local: rf-send: fakehost: connection refused"* ]]
	[ "$(awk '{ print $NF }' "$D/send" | tr '\n' ' ')" = "h1 h2:7100 h3 h1 " ]
}

@test "librfork: remote decision: S becomes rf-stub with its fds, the child never runs here" {
	fakebin
	RFORK_KEY=/some/key HOSTS=h1:9 run --separate-stderr pre "$F" once
	echo "$output"; echo "$stderr"; cat "$D/send" "$D/stub"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "$output" != *"child ran"* ]]
	[[ "$output" == *"child status exit 7"* ]]
	spid=$(sed -n 's/^forked //p' <<<"$output")
	fds=$(sed -n 's/^fds //p' <<<"$output")
	cloexec=$(tr ' ' '\n' <<<"$fds" | sed -n 's/c$//p' | paste -sd,)
	[ -n "$cloexec" ]
	# rf-send got the fork request (-H: hand the connection over if it can;
	# this one does not, so rf-stub dials); S's image passed rf-restore -n
	grep -qx "args -F [0-9]* -p $(sed -n 's/^parent //p' <<<"$output") -H -t 10 -k /some/key -- h1:9" "$D/send"
	grep -qx "image ok" "$D/send"
	[ "$(jq .pid "$D/meta.json")" -eq "$spid" ]
	# rf-stub: S's pid and parent, every fd of the fork (not K), close-on-exec
	# ones cleared and listed, host and token, no librfork.so
	grep -qx "args -k /some/key -x $cloexec -- h1:9 tok-123" "$D/stub"
	grep -qx "pid $spid ppid $(sed -n 's/^parent //p' <<<"$output")" "$D/stub"
	grep -qx "fds ${fds//c/}" "$D/stub"
	grep -qx "env LD_PRELOAD=" "$D/stub"
	none_marked "$MARK"
}

@test "librfork: S's own record of its signal actions, altstack and break is what ptrace finds (RFORK_SELFREC=0)" {
	fakebin
	# the same addresses in both runs: no address space randomization
	setarch "$(uname -m)" -R env RFTEST_MARK="$MARK" LD_PRELOAD="$LIB" \
	    RFORK_BINDIR="$BINDIR" RFORK_HOSTS="$DEAD" "$F" once > "$D/out.a"
	cp "$D/meta.json" "$D/rec.json"
	setarch "$(uname -m)" -R env RFTEST_MARK="$MARK" LD_PRELOAD="$LIB" \
	    RFORK_BINDIR="$BINDIR" RFORK_HOSTS="$DEAD" RFORK_SELFREC=0 "$F" once > "$D/out.b"
	cp "$D/meta.json" "$D/ptrace.json"
	cat "$D/out.a" "$D/send"
	grep -qx "ok once" "$D/out.a"
	grep -qx "ok once" "$D/out.b"
	[ "$(grep -c "^image ok" "$D/send")" -eq 2 ]
	# once's SIGUSR1 handler and ignored SIGPIPE, the same in both
	jq -e '.signals.actions[] | select(.sig == 10) | .handler != "0x0" and .mask != "0x0"' "$D/rec.json"
	jq -e '.signals.actions[] | select(.sig == 13) | .handler == "0x1"' "$D/rec.json"
	[ "$(jq -cS '.signals, .mm.brk' "$D/rec.json")" = "$(jq -cS '.signals, .mm.brk' "$D/ptrace.json")" ]
}

# norm_meta FILE: what S's record and /proc must agree on, in a form two
# runs share: pipe, socket and anon inode numbers become the order in which
# the fds first show them, and the numbers in their names N.
norm_meta() {
	jq -S '
	    def unnamed: .kind == "fifo" or .kind == "socket" or .kind == "anon";
	    (reduce (.fds[] | select(unnamed) | .ino) as $i ([];
	        if any(.[]; . == $i) then . else . + [$i] end)) as $inos
	    | {auxv, creds, cwd, exe, personality, rlimits, umask,
	       vmas: [.vmas[] | {start, growsdown}],
	       fds: [.fds[] | if unnamed then
	           (.ino as $i | .ino = ($inos | to_entries | map(select(.value == $i)) | .[0].key)
	            | .path = (.path | sub("[0-9]+"; "N"))) else . end]}' "$1"
}

@test "librfork: S's own record of its fds, limits, cwd, exe, auxv and MAP_GROWSDOWN is what /proc and ptrace show (RFORK_SELFREC=0)" {
	fakebin
	# rf-snap under strace: which of the two it read, and whether it ran
	# calls in S (PTRACE_SETREGS around each)
	rm "$D/bin/rf-snap"
	printf '#!/bin/sh\nexec strace -qq -f -e trace=openat,readlinkat,readlink,ptrace -o "%s" "%s" "$@"\n' \
	    "$D/strace" "$BIN/rf-snap" > "$D/bin/rf-snap"
	chmod +x "$D/bin/rf-snap"
	cd "$D"
	# the same stack and the same stdout in both (auxv points into the stack)
	setarch "$(uname -m)" -R env RFTEST_MARK="$MARK" LD_PRELOAD="$LIB" \
	    RFORK_BINDIR="$BINDIR" RFORK_HOSTS="$DEAD" RFORK_SELFREC=1 "$F" kinds > "$D/out"
	grep -qx "ok kinds" "$D/out"
	cp "$D/meta.json" "$D/rec.json"
	# the record, not /proc: no fd, fdinfo, limits, cwd, exe or auxv there,
	# and no call run in S
	[ "$(grep -cE '/proc/[0-9]+/(fd|fdinfo|limits|cwd|exe|auxv|personality)"' "$D/strace")" -eq 0 ]
	[ "$(grep -c 'PTRACE_SETREGS' "$D/strace")" -eq 0 ]
	# (nothing printed till the second run: bats's own fds would move)
	setarch "$(uname -m)" -R env RFTEST_MARK="$MARK" LD_PRELOAD="$LIB" \
	    RFORK_BINDIR="$BINDIR" RFORK_HOSTS="$DEAD" RFORK_SELFREC=0 "$F" kinds > "$D/out"
	grep -qx "ok kinds" "$D/out"
	cp "$D/meta.json" "$D/proc.json"
	grep -q '/proc/[0-9]*/limits' "$D/strace"
	grep -q '/proc/[0-9]*/fdinfo' "$D/strace"
	grep -q 'PTRACE_SETREGS' "$D/strace"
	# every kind is there: file at 100, dir, chr, fifo (pipe and named),
	# socket, anon; close-on-exec as opened
	jq -e '[.fds[] | select(.kind == "file" and .pos == 100)] | length == 1' "$D/rec.json"
	jq -e '[.fds[] | .kind] | (index("dir") and index("chr") and index("socket")
	    and index("anon")) != null' "$D/rec.json"
	jq -e '[.fds[] | select(.kind == "fifo" and (.path | startswith("/tmp/forker-fifo")))]
	    | length == 1' "$D/rec.json"
	jq -e '[.fds[] | select(.path == "anon_inode:[eventfd]" and .cloexec)] | length == 1' \
	    "$D/rec.json"
	jq -e '.cwd == "'"$D"'"' "$D/rec.json"
	grows=$(awk '$1 == "grows" { print $2 }' "$D/out")
	lone=$(awk '$1 == "lone" { print $2 }' "$D/out")
	jq -e --arg a "$grows" '.vmas[] | select(.start == $a) | .growsdown' "$D/rec.json"
	jq -e --arg a "$lone" '.vmas[] | select(.start == $a) | .growsdown | not' "$D/rec.json"
	diff <(norm_meta "$D/rec.json") <(norm_meta "$D/proc.json")
}

@test "librfork: rf-send fails, or answers without a token: a local child" {
	fakebin
	FAKE_SEND=notoken run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[[ "$output" == *"child ran"*"child status exit 0"* ]]
	[[ "$stderr" == *"fork stays local: rf-send: no token in the reply" ]]
	[ ! -e "$D/stub" ]
	# S had become the stub (early) and ended unseen; the child is a new
	# fork: one child, one exit, nothing left
	[ "$(cat "$D/early")" = local ]
	[ "$(grep -c "child ran" <<<"$output")" -eq 1 ]
	none_marked "$MARK"
	rm -f "$D/early"
	RFORK_EARLY_STUB=0 FAKE_SEND=notoken run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[[ "$output" == *"child ran"*"child status exit 0"* ]]
	[ ! -e "$D/early" ]
	FAKE_SEND=fail run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[[ "$output" == *"child ran"*"child status exit 0"* ]]
	[[ "$stderr" == *"fork stays local: rf-send: fakehost: connection refused" ]]
	[ ! -e "$D/stub" ]
}

@test "librfork: rf-stub cannot be exec'd: S stays the local child" {
	fakebin
	rm "$D/bin/rf-stub"
	printf '#!/nonexistent/sh\n' > "$D/bin/rf-stub"
	chmod +x "$D/bin/rf-stub"
	run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[[ "$output" == *"child ran"*"child status exit 0"* ]]
	[[ "$stderr" == *"fork stays local: $D/bin/rf-stub: No such file or directory" ]]
}

@test "librfork: no tools: said, forks stay local" {
	mkdir "$D/empty"
	BINDIR=$D/empty run --separate-stderr pre "$F" basic 2
	[ "$status" -eq 0 ]
	[ "$(local_lines)" -eq 2 ]
	[[ "$stderr" == *"RFORK_BINDIR=$D/empty: no rf-snap there" ]]
}

@test "librfork: a hung rf-send is killed after 4 x RFORK_TIMEOUT; the child is local" {
	fakebin
	RFORK_TIMEOUT=1 FAKE_SEND=hang run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[[ "$output" == *"child ran"*"child status exit 0"* ]]
	[[ "$stderr" == *"fork stays local: rf-snap | rf-send: no answer within 4 s" ]]
	none_marked "$MARK"
}

@test "librfork: the parent dies while S is stopped: S goes on as a local child, helpers end" {
	fakebin
	# S stays S until the answer only without the early stub (the next test)
	RFORK_EARLY_STUB=0 FAKE_SEND=hang pre "$F" once > "$D/out" 2>&1 &
	BG=$!
	wait_line "$D/send" '^hang '
	p=$(sed -n 's/^parent //p' "$D/out")
	s=
	for c in $(marked "$MARK"); do
		[ "$(pstate "$c")" = T ] && s=$c
	done
	[ -n "$s" ]
	[ "$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$s/stat")" -eq "$p" ]
	kill -KILL "$p"
	wait_line "$D/out" "^child ran pid $s "
	none_marked "$MARK"
}

@test "librfork: the parent dies while its early stub waits for the answer: the stub ends, nothing is left" {
	fakebin
	FAKE_SEND=hang pre "$F" once > "$D/out" 2>&1 &
	BG=$!
	wait_line "$D/send" '^hang '
	p=$(sed -n 's/^parent //p' "$D/out")
	# rf-snap has read S, so S is rf-stub already (-K), a child of P
	s=
	for _ in $(seq 100); do
		for c in $(marked "$MARK"); do
			[ "$(cat "/proc/$c/comm" 2> /dev/null)" = rf-stub ] && s=$c
		done
		[ -n "$s" ] && break
		sleep 0.05
	done
	[ -n "$s" ]
	grep -q -- " -K [0-9]" <(tr '\0' ' ' < "/proc/$s/cmdline")
	[ "$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$s/stat")" -eq "$p" ]
	kill -KILL "$p"
	none_marked "$MARK"
	! grep -q "^child ran" "$D/out"
	[ ! -e "$D/stub" ]
}

@test "librfork: remote child on this host: fork returns once, pids, exit code, one SIGCHLD" {
	wire
	run --separate-stderr pre "$F" basic 3
	echo "$output"; echo "$stderr"; cat "$D/wire.err"
	[ "$status" -eq 0 ]
	[ "$output" = "ok basic" ]
	[ -z "$stderr" ]
	# three children restored, each wrote its pids through its stub
	[ "$(grep -c '^forkwire: rf-restore: ' "$D/wire.err")" -eq 3 ]
	[ "$(grep -c '^proxy: write fd' "$D/wire.err")" -eq 3 ]
	none_marked "$MARK"
}

@test "librfork: remote child on this host: close-on-exec fds stay the child's" {
	wire
	run --separate-stderr pre "$F" once
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	p=$(sed -n 's/^parent //p' <<<"$output")
	s=$(sed -n 's/^forked //p' <<<"$output")
	[[ "$output" == *"child ran pid $s ppid $p"*"child status exit 0"* ]]
	grep -q "^proxy: write fd 1 " "$D/wire.err"
	none_marked "$MARK"
}

@test "librfork: remote children on this host, 4 threads forking at once" {
	wire
	run --separate-stderr pre "$F" threads
	[ "$status" -eq 0 ]
	[ "$output" = "ok threads" ]
	[ -z "$stderr" ]
	[ "$(grep -c '^forkwire: rf-restore: ' "$D/wire.err")" -eq 12 ]
	none_marked "$MARK"
}

@test "librfork: python3, perl and bash children on this host's remote side" {
	wire
	cat > "$D/f.py" <<'EOF'
import os, signal
got = []
signal.signal(signal.SIGCHLD, lambda s, f: got.append(s))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"%d %d" % (os.getpid(), os.getppid()))
    print("child", flush=True)
    os._exit(7)
os.close(w)
c, p = map(int, os.read(r, 100).split())
_, st = os.waitpid(pid, 0)
assert (c, p) == (pid, os.getpid()) and os.waitstatus_to_exitcode(st) == 7 and got
print("ok python")
EOF
	run --separate-stderr pre /usr/bin/python3 "$D/f.py"
	[ "$status" -eq 0 ]
	[ "$output" = $'child\nok python' ]
	[ -z "$stderr" ]
	run --separate-stderr pre /usr/bin/perl -e '
		my $pid = fork(); if ($pid == 0) { print "child $$ ", getppid(), "\n"; exit 9 }
		waitpid($pid, 0); print "parent $$ got $pid status ", $? >> 8, "\n"'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "$output" =~ ^child\ ([0-9]+)\ ([0-9]+).parent\ ([0-9]+)\ got\ ([0-9]+)\ status\ 9$ ]]
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[4]}" ]
	[ "${BASH_REMATCH[2]}" = "${BASH_REMATCH[3]}" ]
	# the command substitution's child execs hostname on the remote side
	run --separate-stderr pre /bin/bash -c 'h=$(hostname); x=$(exit 3); echo "$h $? $(echo a | tr a b)"'
	[ "$status" -eq 0 ]
	# the remote subshell's own forks would be grandchildren: the one-host
	# harness has no server for them (tests/fake-rf-send), so they stay
	# there, each saying so (tests/rfork-tree.bats has real ones)
	[ -z "$(grep -v '^rfork: pid [0-9]*: fork stays on this host: rf-send: fakehost: no grandchildren here$' <<<"$stderr")" ]
	[ "$output" = "$(uname -n) 3 b" ]
	none_marked "$MARK"
}

@test "librfork: a remote child keeps librfork.so in its environ, for the programs it execs" {
	wire
	libm=$(ldd /usr/bin/perl | awk '/libm.so/ { print $3 }')
	LD_PRELOAD="$LIB $libm" run --separate-stderr env RFTEST_MARK="$MARK" RFORK_BINDIR="$BINDIR" \
	    RFORK_HOSTS=h1 /usr/bin/perl -e '
		if (fork() == 0) { exec "/bin/sh", "-c", "echo child [\$LD_PRELOAD]" }
		wait; print "parent [$ENV{LD_PRELOAD}]\n"'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = "child [$LIB $libm]"$'\n'"parent [$LIB $libm]" ]
	grep -q '^forkwire: rf-restore: ' "$D/wire.err"
	none_marked "$MARK"
}

@test "librfork: python3 os.fork with pipes, under rf-run, host down" {
	cat > "$D/fork.py" <<'EOF'
import os, signal
got = []
signal.signal(signal.SIGCHLD, lambda s, f: got.append(s))
kids = {}
for i in range(3):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, b"%d %d\n" % (os.getpid(), os.getppid()))
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
    c, p = map(int, data.split())
    assert (c, p) == (pid, os.getpid()), (c, p, pid)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == code
assert got
print("ok python")
EOF
	run --separate-stderr env RFTEST_MARK="$MARK" "$ROOT/sh/rf-run" -H "$DEAD" /usr/bin/python3 "$D/fork.py"
	echo "$output"; echo "$stderr"
	[ "$status" -eq 0 ]
	[ "$output" = "ok python" ]
	[ "$(local_lines)" -eq 3 ]
	# glibc's read-only shared iconv cache does not count as shared memory
	[[ "$stderr" != *MAP_SHARED* ]]
	none_marked "$MARK"
}

@test "librfork: perl fork under rf-run, host down" {
	run --separate-stderr env RFTEST_MARK="$MARK" "$ROOT/sh/rf-run" -H "$DEAD" /usr/bin/perl -e '
		pipe(R, W) or die; my $pid = fork(); defined $pid or die "fork: $!";
		if ($pid == 0) { close R; print W "$$ ", getppid(), "\n"; close W; exit 9 }
		close W; my $l = <R>; waitpid($pid, 0) == $pid or die; my $st = $? >> 8;
		my ($c, $p) = split " ", $l;
		($c == $pid && $p == $$ && $st == 9) or die "got $l status $st";
		print "ok perl\n"'
	[ "$status" -eq 0 ]
	[ "$output" = "ok perl" ]
	[ "$(local_lines)" -eq 1 ]
	none_marked "$MARK"
}

@test "librfork: bash command substitution under rf-run, host down" {
	run --separate-stderr env RFTEST_MARK="$MARK" "$ROOT/sh/rf-run" -H "$DEAD" bash -c '
		h=$(hostname); x=$(exit 3); rc=$?
		[ "$h" = "$(uname -n)" ] && echo "ok bash $rc $(echo a | tr a b)"'
	[ "$status" -eq 0 ]
	[ "$output" = "ok bash 3 b" ]
	[ "$(local_lines)" -ge 4 ]
	none_marked "$MARK"
}
