#!/usr/bin/env bats
# rf-restore: rebuild processes dumped by rf-snap (build/tests/restore_victim
# checks its own state once restored), and refuse bad images cleanly.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	D=$BATS_TEST_TMPDIR
	VPID= RPID= NDIR= P= S=
	head -c 16384 /dev/zero | tr '\0' d > "$D/data"
}

teardown() {
	[ -z "$VPID" ] || kill -KILL "$VPID" 2>/dev/null || true
	[ -z "$RPID" ] || kill -KILL "$RPID" 2>/dev/null || true
	[ -z "$P$S" ] || kill -KILL $P $S 2>/dev/null || true
	[ -z "$NDIR" ] || rm -rf "$NDIR"
	exec 7>&- || true
}

# start MODE [CMD...]: restore_victim MODE (under CMD, e.g. setpriv) writing
# to $D/log, stdin from $VIN; waits for its "ready" line.
start() {
	local mode=$1
	shift
	"$@" "$TESTS/restore_victim" "$mode" "$D" > "$D/log" 2>&1 < "${VIN:-/dev/null}" 3>&- &
	VPID=$!
	wait_line "$D/log" '^ready'
}

# snap [CMD...]: wait for the victim's stop, dump it (rf-snap under CMD) to
# $D/img, and kill the original: every restore here runs after it died.
snap() {
	wait_state "$VPID" T
	"$@" "$BIN/rf-snap" "$VPID" > "$D/img"
	kill -KILL "$VPID"
	wait "$VPID" 2> /dev/null || true
	VPID=
}

# passed: the restored copy printed only PASS lines and got to "done".
passed() {
	grep -q '^PASS' "$D/log"
	! grep '^FAIL' "$D/log"
	grep -qx done "$D/log"
}

# no_copies: no restore_victim is left, not even a zombie.
no_copies() {
	! pgrep -x restore_victim
}

# bad_image EXIT REGEX < IMG: rf-restore refuses it with that exit code and
# one line on stderr, prints nothing, and leaves no process behind.
bad_image() {
	run --separate-stderr "$BIN/rf-restore"
	echo "status $status: $stderr"
	[ "$status" -eq "$1" ]
	[ -z "$output" ]
	[ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ]
	[[ "$stderr" =~ ^rf-restore:\ .*$2 ]]
	no_copies
}

imgtool() { "$TESTS/imgtool" "$@"; }

# remeta JQ-FILTER: $D/img with its metadata passed through jq, as $D/bad.
remeta() {
	"$TESTS/imgtool" meta < "$D/img" | jq -c "$1" > "$D/meta.json"
	"$TESTS/imgtool" remeta "$D/meta.json" < "$D/img" > "$D/bad"
}

@test "memory, heap, stack, brk, sparse and file mappings, clocks, rseq, cwd, limits survive" {
	start mem
	snap
	run --separate-stderr "$BIN/rf-restore" -w -i "$D/img"
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
	[ "$(tr -d '\0' < "$D/shared" | tr -s '\n')" = beforeafter ]
	[ "$(jq -r '.exe' <<< "$output")" = true ]
	[ "$(jq -r '.pid | type' <<< "$output")" = number ]
}

@test "the vdso block moves back through a bounce area when ours overlaps it" {
	# Without randomisation the block sits below the stack gap, which
	# follows the stack limit: 8 KiB more limit, the block 8 KiB lower.
	vdso() { (ulimit -s "$1"; setarch -R cat /proc/self/maps) | awk '/\[vvar\]/ { print $1 }'; }
	a=$(vdso 204800)
	b=$(vdso 204808)
	[ -n "$a" ] && [ "$a" != "$b" ] || skip "no overlapping vdso layouts here ($a, $b)"
	(ulimit -s 204800; start mem setarch -R)
	VPID=$(pgrep -x restore_victim)
	snap
	[ "$("$BIN/rf-restore" -n -i "$D/img" | jq -r '.vmas[] | select(.kind == "vvar") | .start')" = "0x${a%-*}" ]
	run --separate-stderr bash -c "ulimit -s 204808; exec setarch -R '$BIN/rf-restore' -w -i '$D/img'"
	echo "$stderr"
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
}

@test "signal handlers (raise, outside kill), alternate stack, blocked, ignored, pending" {
	start sig
	snap
	run --separate-stderr "$BIN/rf-restore" -i "$D/img"
	[ "$status" -eq 0 ]
	RPID=$(jq .pid <<< "$output")
	wait_line "$D/log" '^waiting'
	kill -USR1 "$RPID"
	wait_gone "$RPID"
	cat "$D/log"
	passed
}

@test "x87, SSE, AVX, AVX-512 and general registers and the rounding mode survive" {
	start fpu
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
}

@test "a file written on both sides of the restore: no gap, no overlap; 2>&1 keeps one offset" {
	start file
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 0 ]
	diff <(seq -f 'line %g' 1000) "$D/out"
	cat "$D/log"
	[ "$(sed 1d "$D/log")" = "$(printf 'PASS file written\nstderr line\ndone')" ]
}

@test "a sleep interrupted by the dump completes after the restore" {
	start sleep
	sleep 0.1
	kill -STOP "$VPID"
	wait_state "$VPID" T
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
}

@test "-F N gives the process our fd N: a read stopped midway gets its line" {
	mkfifo "$D/in"
	exec 7<> "$D/in"
	VIN=/dev/fd/7 start read
	sleep 0.1
	kill -STOP "$VPID"
	wait_state "$VPID" T
	snap
	(sleep 0.2; echo hello >&7) &
	run --separate-stderr "$BIN/rf-restore" -w -F 0 -i "$D/img" 0<&7
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
	grep -qx 'got hello' "$D/log"
	[ "$(jq -c '[.replaced[] | select(. == 0)]' <<< "$output")" = '[]' ]
}

@test "an fd that cannot be reopened becomes /dev/null, with a warning, listed in the reply" {
	mkfifo "$D/in"
	exec 7<> "$D/in"
	VIN=/dev/fd/7 start exit42
	snap
	run --separate-stderr "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 42 ]
	[ "$(jq -c '[.replaced[] | select(. == 0)]' <<< "$output")" = '[0]' ]
	[[ "$stderr" == *"fd 0 (fifo $D/in): cannot be reopened, replaced by /dev/null (-F 0 supplies one)"* ]]
}

@test "an fd whose file is gone becomes /dev/null; one of another inode is reopened, with a warning" {
	start exit42
	snap
	: > "$D/other"
	remeta '.fds += [{"fd": 8, "cloexec": true, "flags": 1, "kind": "file", "path":
	    "'"$D"'/other", "pos": 0, "dev": 1, "ino": 2, "rdev": 0}, {"fd": 9, "cloexec":
	    false, "flags": 0, "kind": "file", "path": "'"$D"'/nonexistent", "pos": 0,
	    "dev": 1, "ino": 2, "rdev": 0}]'
	run --separate-stderr "$BIN/rf-restore" -S -i "$D/bad"
	echo "$stderr"
	[ "$status" -eq 0 ]
	RPID=$(jq .pid <<< "$output")
	[ "$(jq -c .replaced <<< "$output")" = '[9]' ]
	[[ "$stderr" == *"fd 8 $D/other: not the file it was at dump time"* ]]
	[[ "$stderr" == *"fd 9 (file $D/nonexistent): gone, replaced by /dev/null (-F 9 supplies one)"* ]]
	[ "$(readlink "/proc/$RPID/fd/8")" = "$D/other" ]
	[ "$(readlink "/proc/$RPID/fd/9")" = /dev/null ]
	flags=$(awk '/^flags:/ { print $2 }' "/proc/$RPID/fdinfo/8")
	(( (8#$flags & 02000000) && (8#$flags & 3) == 1 ))	# O_CLOEXEC, O_WRONLY
}

@test "-F 5=7: our fd 7 becomes its fd 5" {
	start exit42
	snap
	: > "$D/extra"
	exec 7> "$D/extra"
	run --separate-stderr "$BIN/rf-restore" -S -F 5=7 -i "$D/img"
	[ "$status" -eq 0 ]
	RPID=$(jq .pid <<< "$output")
	[ "$(readlink "/proc/$RPID/fd/5")" = "$D/extra" ]
	kill -KILL "$RPID"
	run "$BIN/rf-restore" -F 5=99 -i "$D/img"
	[ "$status" -eq 66 ]
}

@test "python3 stopped mid-loop finishes with the right result" {
	python3 -c '
import sys
print("start", flush=True)
s = 0
for i in range(30000000):
    s += i
print(s, flush=True)' > "$D/py.out" 2>&1 < /dev/null 3>&- &
	VPID=$!
	wait_line "$D/py.out" '^start'
	sleep 0.3
	kill -STOP "$VPID"
	wait_state "$VPID" T
	[ "$(cat "$D/py.out")" = start ]	# mid-loop
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 0 ]
	[ "$(tail -1 "$D/py.out")" = $((30000000 * 29999999 / 2)) ]
}

@test "perl stopped mid-loop finishes with the right result" {
	perl -e '$| = 1; print "start\n"; my $s = 0;
	    for my $i (0 .. 29999999) { $s += $i } print "$s\n"' > "$D/pl.out" 2>&1 < /dev/null 3>&- &
	VPID=$!
	wait_line "$D/pl.out" '^start'
	sleep 0.3
	kill -STOP "$VPID"
	wait_state "$VPID" T
	[ "$(cat "$D/pl.out")" = start ]
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 0 ]
	[ "$(tail -1 "$D/pl.out")" = $((30000000 * 29999999 / 2)) ]
}

@test "an unprivileged user restores its own process" {
	NDIR=$(mktemp -d)
	chmod 777 "$NDIR"
	D=$NDIR
	head -c 16384 /dev/zero | tr '\0' d > "$D/data"
	: > "$D/log"
	chmod 666 "$D/log"
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	start mem "${nobody[@]}"
	snap "${nobody[@]}"
	run --separate-stderr "${nobody[@]}" "$BIN/rf-restore" -w -i "$D/img"
	echo "$stderr"
	cat "$D/log"
	[ "$status" -eq 0 ]
	passed
	[ "$(jq -r .exe <<< "$output")" = false ]	# needs CAP_CHECKPOINT_RESTORE
}

@test "credentials: root's image refused to another user and to -U; root restores nobody as nobody" {
	NDIR=$(mktemp -d)
	chmod 777 "$NDIR"
	D=$NDIR
	start exit42
	snap
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	run "${nobody[@]}" "$BIN/rf-restore" -i "$D/img"
	[ "$status" -eq 77 ]
	[[ "$output" == *"image: process of uid 0; only uid $(id -u nobody) can be restored here" ]]
	run "$BIN/rf-restore" -U -i "$D/img"
	[ "$status" -eq 77 ]
	[[ "$output" == *"refused by -U" ]]
	no_copies

	: > "$D/log"
	chmod 666 "$D/log"
	start exit42 "${nobody[@]}"
	snap "${nobody[@]}"
	run --separate-stderr "$BIN/rf-restore" -U -S -i "$D/img"
	echo "$stderr"
	[ "$status" -eq 0 ]
	RPID=$(jq .pid <<< "$output")
	[ "$(jq -r .exe <<< "$output")" = true ]
	[ "$(readlink "/proc/$RPID/exe")" = "$TESTS/restore_victim" ]
	grep -E "^Uid:\s+$(id -u nobody)\s+$(id -u nobody)\s+$(id -u nobody)\s+$(id -u nobody)$" \
	    "/proc/$RPID/status"
	grep -E '^CapEff:\s+0+$' "/proc/$RPID/status"
	grep -E '^CapPrm:\s+0+$' "/proc/$RPID/status"
}

@test "-S leaves it stopped; SIGCONT lets it go on" {
	start fpu
	snap
	run --separate-stderr "$BIN/rf-restore" -S -i "$D/img"
	[ "$status" -eq 0 ]
	RPID=$(jq .pid <<< "$output")
	wait_state "$RPID" T
	sleep 0.1
	[ "$(pstate "$RPID")" = T ]
	! grep -q done "$D/log"
	kill -CONT "$RPID"
	wait_gone "$RPID"
	passed
}

@test "-w exits with the process's code, or 128+signal" {
	start exit42
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 42 ]
	start term
	snap
	run "$BIN/rf-restore" -w -i "$D/img"
	[ "$status" -eq 143 ]
}

@test "-T PID: the process gets that pid and is the child of rf-restore's parent" {
	start fpu
	snap_keep_pid=$VPID
	snap
	# The dumped process is gone and reaped: its pid is free again.
	"$BIN/rf-restore" -S -T "$snap_keep_pid" -i "$D/img" > "$D/reply"
	RPID=$(jq .pid "$D/reply")
	[ "$RPID" -eq "$snap_keep_pid" ]
	wait_state "$RPID" T
	[ "$(awk '/^PPid:/ { print $2 }' "/proc/$RPID/status")" -eq "$BASHPID" ]
	kill -CONT "$RPID"
	wait_gone "$RPID"
	passed
}

@test "-T: a pid in use, -T with -w, -C with -n are refused" {
	start fpu
	snap
	sleep 30 &
	local busy=$!
	run --separate-stderr "$BIN/rf-restore" -T "$busy" -i "$D/img"
	kill "$busy"
	echo "status $status: $stderr"
	[ "$status" -ne 0 ]
	[[ "$stderr" =~ clone3\ pid\ $busy ]]
	[ -z "$output" ]
	no_copies
	run "$BIN/rf-restore" -T 4000 -w -i "$D/img"
	[ "$status" -eq 64 ]
	run "$BIN/rf-restore" -n -C 3 -i "$D/img"
	[ "$status" -eq 64 ]
	run "$BIN/rf-restore" -C 3=0 -C 4=0 -i "$D/img"
	[ "$status" -eq 64 ]
}

# rfork [CMD...]: start rfork_victim (under CMD) (the parent P of a fork done by hand); S, its
# child, stops itself before reading its control fd K.  Sets P, S and K.
rfork() {
	"$@" "$TESTS/rfork_victim" "$D/sock" "$BIN/rf-stub" > "$D/out" 2> "$D/err" &
	VPID=$!
	wait_line "$D/err" '^pids '
	read -r _ P S K < "$D/err"
	wait_state "$S" T
}

@test "-C K=FD: fork mode: no fd of the image but K, the filter's listener lowest, left stopped" {
	rfork
	"$BIN/rf-snap" "$S" > "$D/img"
	exec 7<> <(:)
	"$BIN/rf-restore" -C "$K=7" -i "$D/img" > "$D/reply"
	exec 7>&-
	RPID=$(jq .pid "$D/reply")
	[ "$(jq .listener "$D/reply")" -eq 0 ]
	wait_state "$RPID" T
	ls -l "/proc/$RPID/fd"
	[ "$(ls "/proc/$RPID/fd" | sort -n | tr '\n' ' ')" = "0 $K " ]
	[ "$(readlink "/proc/$RPID/fd/0")" = "anon_inode:seccomp notify" ]
	[[ "$(readlink "/proc/$RPID/fd/$K")" =~ ^pipe: ]]
	grep -E '^Seccomp:\s+2$' "/proc/$RPID/status"
	grep -E '^NoNewPrivs:\s+0$' "/proc/$RPID/status"
	kill -KILL "$RPID" "$S" "$VPID"
	wait "$VPID" 2> /dev/null || true
	VPID=
}

@test "-C: another user's process gets the filter with no capability and no no_new_privs" {
	NDIR=$(mktemp -d)
	chmod 777 "$NDIR"
	D=$NDIR
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	rfork "${nobody[@]}"
	"$BIN/rf-snap" "$S" > "$D/img"
	exec 7<> <(:)
	"$BIN/rf-restore" -C "$K=7" -i "$D/img" > "$D/reply"
	RPID=$(jq .pid "$D/reply")
	wait_state "$RPID" T
	grep -E "^Uid:\s+$(id -u nobody)\s+$(id -u nobody)\s+" "/proc/$RPID/status"
	grep -E '^Seccomp:\s+2$' "/proc/$RPID/status"
	grep -E '^NoNewPrivs:\s+0$' "/proc/$RPID/status"
	grep -E '^CapEff:\s+0+$' "/proc/$RPID/status"
	grep -E '^CapPrm:\s+0+$' "/proc/$RPID/status"
	kill -KILL "$RPID"
	# Without CAP_SYS_ADMIN the kernel wants no_new_privs: it gets it.
	"${nobody[@]}" "$BIN/rf-restore" -C "$K=7" -i "$D/img" > "$D/reply"
	exec 7>&-
	RPID=$(jq .pid "$D/reply")
	wait_state "$RPID" T
	grep -E '^Seccomp:\s+2$' "/proc/$RPID/status"
	grep -E '^NoNewPrivs:\s+1$' "/proc/$RPID/status"
	kill -KILL "$RPID" "$S" "$VPID"
	wait "$VPID" 2> /dev/null || true
	VPID=
}

# handfork [CMD...]: the remote fork of rfork_victim by hand, forkwire (its
# options in $WIRE) and everything under CMD; checks what the child saw.
handfork() {
	rfork "$@"
	"$@" "$BIN/rf-snap" "$S" > "$D/img"
	RF_FWD_VERBOSE=1 "$@" "$TESTS/forkwire" $WIRE -i "$D/img" -s "$D/sock" -p "$P" -c "$S" \
	    -k "$K" "$BIN/rf-restore" > "$D/wire" 2> "$D/wire.err" &
	local fw=$!
	wait_line "$D/wire" '^ready'
	# S is still the stopped original; from here it becomes the stub.
	kill -USR1 "$P"
	wait "$VPID"
	VPID=
	wait "$fw"
	cat "$D/out" "$D/wire.err"
	# Remote child: resumed at its read of K, S's pid, P as parent, its
	# stdout written through the stub; its exit code reached P's waitpid.
	grep -qx "child pid $S ppid $P" "$D/out"
	grep -qx "status 42" "$D/out"
	! pgrep -x rfork_victim
}

@test "remote fork by hand: image in fork mode under a proxy in a pid namespace, rf-stub at home" {
	WIRE= handfork
	grep -q '^forkwire: rf-restore: {' "$D/wire.err"
}

@test "remote fork by hand, restored in-process by the proxy (the library, as a server does)" {
	WIRE=-L handfork
	grep -q '^forkwire: restored in-process' "$D/wire.err"
}

@test "remote fork by hand, all unprivileged: the remote tree in a user namespace" {
	NDIR=$(mktemp -d)
	chmod 777 "$NDIR"
	D=$NDIR
	WIRE=-L handfork setpriv --reuid=nobody --regid=nogroup --clear-groups
	grep -q '^forkwire: in a new user namespace' "$D/wire.err"
}

@test "remote fork by hand: a damaged image is refused there, no child runs, S is untouched" {
	rfork
	"$BIN/rf-snap" "$S" > "$D/img"
	head -c $(($(stat -c %s "$D/img") / 2)) "$D/img" > "$D/cut"
	run "$TESTS/forkwire" -i "$D/cut" -s "$D/sock" -p "$P" -c "$S" -k "$K" "$BIN/rf-restore"
	echo "$output"
	[ "$status" -eq 65 ]
	[[ "$output" =~ rf-restore:\ .*image ]]
	! grep -q ready <<< "$output"
	[ "$(pstate "$S")" = T ]
	[ "$(pgrep -x rfork_victim | wc -l)" -eq 2 ]	# P and S, nothing else
}

@test "rf-restore -n checks the whole image and prints its metadata, restoring nothing" {
	start mem
	snap
	run --separate-stderr "$BIN/rf-restore" -n -i "$D/img"
	[ "$status" -eq 0 ]
	jq -e '.version == 1 and .comm == "restore_victim" and
	    ([.vmas[] | select(.kind == "vdso")] | length) == 1 and
	    ([.vmas[] | select(.pages > 0)] | length) > 3' <<< "$output"
	no_copies
	head -c -100 "$D/img" > "$D/bad"
	run --separate-stderr "$BIN/rf-restore" -n -i "$D/bad"
	[ "$status" -eq 65 ]
	[ -z "$output" ]
	run "$BIN/rf-restore" -n -w
	[ "$status" -eq 64 ]
}

@test "empty input, junk, a missing file" {
	bad_image 66 'image: empty input' < /dev/null
	bad_image 65 'not an rfork image' < "$TESTS/restore_victim"
	printf 'RFORKIMG' | bad_image 65 'truncated'
	head -c 100000 /dev/urandom > "$D/junk"
	bad_image 65 'image' < "$D/junk"
	run "$BIN/rf-restore" -i "$D/nonexistent"
	[ "$status" -eq 66 ]
}

@test "a truncated image is refused wherever it ends" {
	start mem
	snap
	size=$(stat -c %s "$D/img")
	for n in 8 23 30 100 2000 $((size / 3)) $((size / 2)) $((size - 20)) $((size - 1)); do
		head -c "$n" "$D/img" | bad_image 65 'image: .*truncated'
	done
}

@test "a flipped byte is refused wherever it is" {
	start mem
	snap
	size=$(stat -c %s "$D/img")
	for off in 0 9 13 17 30 60 500 $((size / 3)) $((size / 2)) $((size - 20)) $((size - 1)); do
		cp "$D/img" "$D/bad"
		flip_byte "$D/bad" "$off"
		bad_image 65 'image: ' < "$D/bad"
	done
}

@test "page records are compressed where LZ4 shrinks them; -U writes none and restores too" {
	start mem
	wait_state "$VPID" T
	"$BIN/rf-snap" -U "$VPID" > "$D/raw"
	snap
	grep -qx 5 <(imgtool types < "$D/img")
	! grep -qx 5 <(imgtool types < "$D/raw")
	[ "$(stat -c %s "$D/img")" -lt $(($(stat -c %s "$D/raw") / 2)) ]
	# the compressed one is what every other restore here reads; this is -U's
	run --separate-stderr "$BIN/rf-restore" -w -i "$D/raw"
	[ "$status" -eq 0 ]
	passed
	# the same pages come out of both (the restored copy changed its file)
	"$BIN/rf-restore" -n -i "$D/img" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/img.j"
	"$BIN/rf-restore" -n -i "$D/raw" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/raw.j"
	cmp "$D/img.j" "$D/raw.j"
}

@test "a compressed page record that does not decode to the length it announces is refused" {
	start mem
	snap
	imgtool zlen -4096 < "$D/img" > "$D/bad"
	bad_image 65 'compressed page record [0-9]+ at 0x[0-9a-f]+: its LZ4 block does not give [0-9]+ bytes' < "$D/bad"
	imgtool zlen $((1 << 40)) < "$D/img" > "$D/bad"
	bad_image 65 'compressed page record .*: length [0-9]+ out of range' < "$D/bad"
}

@test "rf-snap -U writes a version 1 image, read as before; a compressed record in one is refused" {
	start mem
	wait_state "$VPID" T
	"$BIN/rf-snap" -U "$VPID" > "$D/v1"
	[ "$(od -An -tu4 -j8 -N4 "$D/v1" | tr -d ' ')" = 1 ]	# -U: a version 1 image
	snap
	run --separate-stderr "$BIN/rf-restore" -n -i "$D/v1"
	[ "$status" -eq 0 ]
	imgtool version 1 < "$D/img" > "$D/bad"
	bad_image 65 'record 1: unknown type 5' < "$D/bad"
}

@test "a newer format version, and data after the end, are refused" {
	start exit42
	snap
	"$TESTS/imgtool" version 3 < "$D/img" > "$D/bad"
	bad_image 65 'format version 3, this program reads 1 and 2' < "$D/bad"
	cat "$D/img" "$D/img" | bad_image 65 'data after the end'
}

@test "a mapped file that changed or vanished is named and refused" {
	start mem
	snap
	touch -d '2001-01-01' "$D/data"
	bad_image 65 "mapping 0x[0-9a-f]+-0x[0-9a-f]+ $D/data: file changed" < "$D/img"
	echo more >> "$D/data"
	bad_image 65 "$D/data: file changed \(size 16384, now 16389\)" < "$D/img"
	rm "$D/data"
	bad_image 65 "$D/data: file vanished" < "$D/img"
}

@test "shared anonymous and System V memory are refused, naming the mapping" {
	start shm
	snap
	bad_image 65 'mapping 0x[0-9a-f]+-0x[0-9a-f]+ .*: shared anonymous memory' < "$D/img"
	start sysv
	snap
	bad_image 65 'mapping 0x[0-9a-f]+-0x[0-9a-f]+ .*: shared anonymous memory' < "$D/img"
}

@test "a colliding layout is refused" {
	start exit42
	snap
	remeta '.vmas[1].start = .vmas[0].start'
	bad_image 65 'overlaps' < "$D/bad"
	remeta '.vmas[0].start = "0x1000" | .vmas[0].end = "0x2000"'
	bad_image 65 'outside the addresses a process can map' < "$D/bad"
	remeta '(.vmas[] | select(.kind == "vvar_vclock")) |= (.kind = "anon")'
	bad_image 65 'vdso block is not in one piece' < "$D/bad"
}

# rawmeta SED-SCRIPT: $D/img with its metadata (compact JSON) edited by sed, as $D/bad.
rawmeta() {
	"$TESTS/imgtool" meta < "$D/img" | jq -c . | sed "$1" > "$D/meta.json"
	"$TESTS/imgtool" remeta "$D/meta.json" < "$D/img" > "$D/bad"
}

@test "the metadata is read strictly: its JSON, every key once, every type" {
	start exit42
	snap
	remeta '.extra = 1'
	bad_image 65 'metadata: top level: unknown key "extra"' < "$D/bad"
	remeta 'del(.umask)'
	bad_image 65 'metadata: top level: missing "umask"' < "$D/bad"
	remeta '.vmas[2].bogus = null'
	bad_image 65 'metadata: vmas.2.: unknown key "bogus"' < "$D/bad"
	remeta 'del(.fds[0].rdev)'
	bad_image 65 'metadata: fds.0.: missing "rdev"' < "$D/bad"
	remeta '.pid = 1.5'
	bad_image 65 'metadata: .pid: expected an integer' < "$D/bad"
	remeta '.pid = "1"'
	bad_image 65 'metadata: .pid: expected an integer' < "$D/bad"
	remeta '.umask = 512'
	bad_image 65 'metadata: .umask: 512 out of range' < "$D/bad"
	remeta '.regs.rip = "0x10000000000000000"'
	bad_image 65 'metadata: regs.rip: expected a "0x..." hex string' < "$D/bad"
	remeta '.vmas[0].shared = 0'
	bad_image 65 'metadata: vmas.0..shared: expected true or false' < "$D/bad"
	remeta '.rseq = []'
	bad_image 65 'metadata: rseq: expected an object' < "$D/bad"
	remeta '.xstate.data = "!!"'
	bad_image 65 'metadata: xstate.data: not [0-9]+ bytes of base64' < "$D/bad"
	rawmeta 's/"umask":/"umask":18,"umask":/'
	bad_image 65 'metadata: top level: duplicate key "umask"' < "$D/bad"
	rawmeta 's/"umask":[0-9]*/"umask":99999999999999999999/'
	bad_image 65 'metadata: line 1 column [0-9]+: too big integer' < "$D/bad"
	rawmeta 's/$/x/'
	bad_image 65 'metadata: line 1 column [0-9]+: end of file expected' < "$D/bad"
	rawmeta 's/}$//'
	bad_image 65 'metadata: line [0-9]+ column [0-9]+: .*expected' < "$D/bad"
	rawmeta 's/"comm":"[^"]*"/"comm":"a\\u0000b"/'
	bad_image 65 'metadata: line 1 column [0-9]+: \\u0000 is not allowed' < "$D/bad"
	rawmeta 's/"comm":"[^"]*"/"comm":"a\xffb"/'
	bad_image 65 'metadata: line 1 column [0-9]+: invalid UTF-8' < "$D/bad"
	rawmeta 's/"comm":"[^"]*"/"comm":"a\x01b"/'
	bad_image 65 'metadata: line 1 column [0-9]+: control character' < "$D/bad"
	rawmeta 's/"comm":"[^"]*"/"comm":"\\ud800x"/'
	bad_image 65 'metadata: line 1 column [0-9]+: .*surrogate' < "$D/bad"
	rawmeta 's/"comm":"[^"]*"/"comm":"\\udc7fx"/'
	bad_image 65 'metadata: line 1 column [0-9]+: .*lone low surrogate' < "$D/bad"
	rawmeta 's/"pid":/"pid":01,"x":/'
	bad_image 65 'metadata: line 1 column [0-9]+: invalid number' < "$D/bad"
	rawmeta 's/"nice":[0-9-]*/"nice":tru/'
	bad_image 65 'metadata: line 1 column [0-9]+: invalid token' < "$D/bad"
}

@test "escapes in the metadata's strings are decoded" {
	start exit42
	snap
	rawmeta 's|"comm":"[^"]*"|"comm":"q\\"b\\\\s\\/n\\nt\\t\\u00e9\\ud83d\\ude00 \xc3\xa9"|'
	run --separate-stderr "$BIN/rf-restore" -n -i "$D/bad"
	[ "$status" -eq 0 ]
	[ "$(jq -r .comm <<< "$output")" = "$(printf 'q"b\\s/n\nt\t\xc3\xa9\xf0\x9f\x98\x80 \xc3\xa9')" ]
}

@test "metadata that cannot describe a process here is refused" {
	start exit42
	snap
	remeta '.regs.rip = "0x10"'
	bad_image 65 'rip 0x10 outside every mapping' < "$D/bad"
	remeta '.regs.cs = "0x23"'
	bad_image 65 'not a 64-bit process' < "$D/bad"
	remeta ".xstate.size = 4096 | .xstate.data = \"$(head -c 4096 /dev/zero | base64 -w0)\""
	bad_image 65 'CPU state of 4096 bytes' < "$D/bad"
	remeta '.rseq.ptr = "0x1234"'
	bad_image 65 'rseq area' < "$D/bad"
	remeta '.personality = 8'
	bad_image 65 'personality' < "$D/bad"
	remeta '.vmas as $v | ($v | map(.kind) | index("vvar_vclock")) as $i |
	    .vmas = ($v[:$i] | .[-1].end = $v[$i].end) + $v[$i + 1:]'
	bad_image 65 'vdso block of [0-9+]+ bytes; this kernel.s is' < "$D/bad"
	remeta '.fds = [.fds[0], .fds[0]]'
	bad_image 65 'fds.1.: fd 0 ' < "$D/bad"
	remeta '.vmas |= map(if .kind == "heap" then .shared = true else . end)'
	bad_image 65 'shared anonymous memory' < "$D/bad"
}
