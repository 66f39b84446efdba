#!/usr/bin/env bats
# rf-snap: dump stopped processes (build/tests/snap_victim), leave them as found.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	D=$BATS_TEST_TMPDIR
	VPID= ZPID= NDIR=
}

teardown() {
	[ -z "$VPID" ] || kill -KILL "$VPID" 2>/dev/null || true
	[ -z "$ZPID" ] || kill -KILL "$ZPID" 2>/dev/null || true
	[ -z "$NDIR" ] || rm -rf "$NDIR"
	exec 5>&- || true
}

# victim MODE [CMD...]: start snap_victim MODE (under CMD, e.g. setpriv) with
# its files in $D and $VMIB MiB of data; wait for its "ready" line and parse it into R_* variables.
victim() {
	local mode=$1 kv
	shift
	VOUT=$D/victim.out
	"$@" "$TESTS/snap_victim" "$mode" "$D" "${VMIB:-0}" > "$VOUT" 2>&1 < "${VIN:-/dev/null}" &
	VPID=$!
	wait_line "$VOUT" '^(ready|FAIL)'
	grep -q '^ready' "$VOUT"
	for kv in $(head -1 "$VOUT" | cut -d' ' -f2-); do
		eval "R_${kv%%=*}=${kv#*=}"
	done
	[ "$R_pid" = "$VPID" ]
}

# stop_victim: SIGSTOP and wait for the group stop.
stop_victim() {
	kill -STOP "$VPID"
	wait_state "$VPID" T
}

# finish_victim EXPECTED: SIGCONT, wait for it to end, its last line is EXPECTED.
finish_victim() {
	kill -CONT "$VPID" 2>/dev/null || true	# a spinner may be done already
	wait "$VPID"
	VPID=
	[ "$(tail -1 "$VOUT")" = "$1" ]
}

# nobody_dir: a directory nobody can use becomes $D; $nobody runs as nobody.
nobody_dir() {
	NDIR=$(mktemp -d)
	chmod 777 "$NDIR"
	D=$NDIR
	nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
}

# meta: rf-snap -M of the victim into $D/m.json.
meta() {
	"$BIN/rf-snap" -M "$VPID" > "$D/m.json"
}

# vma ADDR FIELD: a field of the mapping starting at ADDR in $D/m.json.
vma() {
	jq -r --arg a "$1" ".vmas[] | select(.start == \$a) | .$2" "$D/m.json"
}

# fingerprint PID: what must not change while rf-snap looks at a stopped process.
fingerprint() {
	pstate "$1"
	cat "/proc/$1/syscall"
	grep -E '^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt|TracerPid|VmRSS)' "/proc/$1/status"
	cat "/proc/$1/maps"
}

@test "rf-snap -M: mappings, registers, xstate, mm, attributes" {
	victim sleep
	stop_victim
	meta
	jq -e '[.vmas[].name] | index("[heap]") and index("[stack]") and index("[vdso]") and index("[vvar]")' "$D/m.json"
	if grep -q '\[vvar_vclock\]' "/proc/$VPID/maps"; then
		jq -e '[.vmas[] | select(.kind == "vvar_vclock")] | length == 1' "$D/m.json"
	fi
	jq -e '.vmas[] | select(.name == "[stack]") | .growsdown and .kind == "stack"' "$D/m.json"
	# MAP_GROWSDOWN, which maps does not show: asked of the process itself
	[ "$(vma "$R_grows" growsdown)" = true ]
	[ "$(vma "$R_lone" growsdown)" = false ]
	[ "$(vma "$R_sparse" growsdown)" = false ]
	jq -e '.vmas[] | select(.kind == "vsyscall") | .pages == 0' "$D/m.json"
	[ "$(jq '[.vmas[] | select(.kind == "vdso" or .kind == "vvar") | .pages] | add' "$D/m.json")" = 0 ]
	# rip inside an executable mapping, TLS base set
	rip=$(jq -r .regs.rip "$D/m.json")
	jq -r '.vmas[] | select(.prot | test("x")) | "\(.start) \(.end)"' "$D/m.json" > "$D/x"
	found=0
	while read -r start end; do
		[ $((rip)) -ge $((start)) ] && [ $((rip)) -lt $((end)) ] && found=1
	done < "$D/x"
	[ "$found" = 1 ]
	[ "$(jq -r .regs.fs_base "$D/m.json")" != 0x0 ]
	jq -e '.xstate.size > 512 and (.xstate.data | length) > 512' "$D/m.json"
	[ "$(jq -r .mm.brk "$D/m.json")" = "$R_brk" ]
	jq -e '(.auxv | length) % 2 == 0 and (.auxv | length) > 10 and .auxv[-2:] == ["0x0", "0x0"] and (.auxv | index(["0x6", "0x1000"])) % 2 == 0' "$D/m.json"
	jq -e --arg d "$D" --argjson p "$VPID" \
	    '.pid == $p and .comm == "snap_victim" and .cwd == $d and .umask == 23 and .nice == 5 and .rlimits.nofile[0] == 123' "$D/m.json"
	jq -e '.exe | endswith("/snap_victim")' "$D/m.json"
	jq -e --argjson u "$(id -u)" --argjson g "$(id -g)" '.creds.uid == [$u, $u, $u, $u] and .creds.gid[0] == $g' "$D/m.json"
	jq -e '.rseq.len >= 32 and .rseq.ptr != "0x0" and .rseq.sig != "0x0"' "$D/m.json"
	[ "$(jq -r .host "$D/m.json")" = "$(uname -n)" ]
	[ "$(pstate "$VPID")" = T ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap -M: signal actions, mask, pending, alternate stack" {
	victim sleep
	stop_victim
	kill -USR1 "$VPID"	# caught, pending while stopped: must not be lost
	kill -USR2 "$VPID"	# blocked
	meta
	jq -e --arg h "$R_handler" \
	    '.signals.actions[] | select(.sig == 10) | .handler == $h and .mask == "0x800" and .restorer != "0x0"' "$D/m.json"
	# SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_RESTORER
	[ "$(jq -r '.signals.actions[] | select(.sig == 10) | .flags' "$D/m.json")" = 0x1c000004 ]
	jq -e '.signals.actions[] | select(.sig == 13) | .handler == "0x1"' "$D/m.json"
	jq -e '[.signals.actions[].sig] | index(15) == null' "$D/m.json"
	jq -e '.signals.blocked == "0x800" and .signals.pending == "0xa00"' "$D/m.json"
	jq -e --arg sp "$R_altstack" '.signals.altstack == {"sp": $sp, "size": 65536, "flags": 0}' "$D/m.json"
	finish_victim "ok usr1=2 pending=usr2"
}

@test "rf-snap -M: open files with flags, position and identity" {
	victim sleep
	stop_victim
	meta
	jq -e --arg p "$D/data" --argjson ino "$(stat -c %i "$D/data")" \
	    '.fds[] | select(.path == $p) | .kind == "file" and .pos == 5 and .ino == $ino and .cloexec == false and (.flags % 4) == 2' "$D/m.json"
	jq -e '.fds[] | select(.fd == 0) | .kind == "chr" and .path == "/dev/null"' "$D/m.json"
	[ "$(jq '.fds | length' "$D/m.json")" = "$(ls "/proc/$VPID/fd" | wc -l)" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: stopped inside nanosleep, left stopped and unchanged" {
	victim sleep
	stop_victim
	kill -USR1 "$VPID"
	kill -USR2 "$VPID"
	before=$(fingerprint "$VPID")
	"$BIN/rf-snap" "$VPID" > "$D/img"
	[ "$(head -c 8 "$D/img")" = RFORKIMG ]
	[ "$(fingerprint "$VPID")" = "$before" ]
	sleep 0.2
	[ "$(pstate "$VPID")" = T ]
	finish_victim "ok usr1=2 pending=usr2"
}

@test "rf-snap: stopped inside read(2), it goes on reading" {
	mkfifo "$D/in"
	exec 5<>"$D/in"
	VIN=$D/in victim read
	stop_victim
	before=$(fingerprint "$VPID")
	"$BIN/rf-snap" "$VPID" > /dev/null
	[ "$(fingerprint "$VPID")" = "$before" ]
	kill -CONT "$VPID"
	echo go >&5
	wait "$VPID"
	VPID=
	[ "$(tail -1 "$VOUT")" = "ok usr1=1 pending=none" ]
}

@test "rf-snap: busy floating point loop keeps its registers" {
	victim spin
	for _ in 1 2 3; do
		stop_victim
		before=$(fingerprint "$VPID")
		"$BIN/rf-snap" "$VPID" > /dev/null
		[ "$(fingerprint "$VPID")" = "$before" ]
		kill -CONT "$VPID"
		sleep 0.05
	done
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap -s stops a running process first and leaves it stopped" {
	victim sleep
	run --separate-stderr "$BIN/rf-snap" -s -M "$VPID"
	[ "$status" -eq 0 ]
	jq -e --argjson p "$VPID" '.pid == $p' <<<"$output"
	[ "$(pstate "$VPID")" = T ]
	sleep 0.1
	[ "$(pstate "$VPID")" = T ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap -w waits for a process to stop; one that does not: exit 75, untouched" {
	local snap
	victim sleep
	# started before the stop (as librfork starts it beside its child's)
	"$BIN/rf-snap" -w 5 -M "$VPID" > "$D/m.json" 2> "$D/err" &
	snap=$!
	sleep 0.1
	kill -0 "$snap"
	# asleep, untouched (under load it may take a moment to be back asleep)
	wait_state "$VPID" S
	kill -STOP "$VPID"
	wait "$snap"
	jq -e --argjson p "$VPID" '.pid == $p' "$D/m.json"
	[ "$(pstate "$VPID")" = T ]
	finish_victim "ok usr1=1 pending=none"
	sleep 30 &
	ZPID=$!
	run --separate-stderr "$BIN/rf-snap" -w 1 "$ZPID"
	[ "$status" -eq 75 ]
	[ "$stderr" = "rf-snap: pid $ZPID did not stop" ]
	[ -z "$output" ]
	grep -q '^TracerPid:	0$' "/proc/$ZPID/status"
	[ "$(pstate "$ZPID")" = S ]
}

@test "rf-snap: a sparse 1 GiB mapping with 3 pages written gives a small image" {
	victim sleep
	stop_victim
	"$BIN/rf-snap" -U -o "$D/img" "$VPID"
	meta
	[ "$(vma "$R_sparse" pages)" = 3 ]
	[ "$(vma "$R_sparse" end)" = "$(printf '%#x' $((R_sparse + (1 << 30))))" ]
	[ "$(stat -c %s "$D/img")" -lt $((1 << 20)) ]
	# uncompressed (-U), the image holds the pages the metadata counts, and little more
	pages=$(jq '[.vmas[].pages] | add' "$D/m.json")
	size=$(stat -c %s "$D/img")
	[ "$size" -gt $((pages * 4096)) ]
	[ "$size" -lt $((pages * 4096 * 102 / 100 + $(stat -c %s "$D/m.json"))) ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: pages that read as zeros are not carried, but with -z" {
	victim sleep
	stop_victim
	meta
	# 64 pages: 16 written with zeros, 16 with data, 16 only read
	[ "$(vma "$R_zero" end)" = "$(printf '%#x' $((R_zero + 64 * 4096)))" ]
	[ "$(vma "$R_zero" pages)" = 16 ]
	# -z carries them too (the 32 written and the zero pages read; the
	# image streams without reading ahead), and the restore is intact
	"$BIN/rf-snap" -z "$VPID" > "$D/zimg"
	"$BIN/rf-restore" -n < "$D/zimg" > "$D/z.json"
	zpages=$(jq -r --arg a "$R_zero" '.vmas[] | select(.start == $a) | .pages' "$D/z.json")
	[ "$zpages" -ge 32 ]
	[ "$(jq '[.vmas[].pages] | add' "$D/z.json")" -gt "$(jq '[.vmas[].pages] | add' "$D/m.json")" ]
	kill -KILL "$VPID"
	wait "$VPID" || true
	VPID=
	run --separate-stderr timeout 20 "$BIN/rf-restore" -w < "$D/zimg"
	[ "$status" -eq 0 ]
	[ "$(tail -1 "$VOUT")" = "ok usr1=1 pending=none" ]
}

@test "rf-snap: a private file mapping carries only its written page" {
	victim sleep
	stop_victim
	meta
	[ "$(vma "$R_cow" pages)" = 1 ]
	[ "$(vma "$R_cow" file_pages)" = false ]
	[ "$(vma "$R_cow" file.path)" = "$D/cow" ]
	[ "$(vma "$R_cow" file.ino)" = "$(stat -c %i "$D/cow")" ]
	[ "$(vma "$R_cow" file.size)" = 65536 ]
	[ "$(vma "$R_cow" file.mtime_sec)" = "$(stat -c %Y "$D/cow")" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: written pages made PROT_NONE are carried" {
	victim sleep
	stop_victim
	meta
	[ "$(vma "$R_hidden" prot)" = --- ]
	[ "$(vma "$R_hidden" pages)" = 2 ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: a mapping of a removed file carries every page" {
	victim sleep
	stop_victim
	meta
	[ "$(vma "$R_gone" file_pages)" = true ]
	[ "$(vma "$R_gone" pages)" = 4 ]
	[ "$(vma "$R_gone" name)" = "$D/gone (deleted)" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: pagemap entries give the same pages as PAGEMAP_SCAN" {
	victim sleep
	stop_victim
	meta
	RFORK_PAGEMAP=read "$BIN/rf-snap" -M "$VPID" > "$D/m2.json"
	[ "$(jq -c '[.vmas[] | [.start, .pages]]' "$D/m.json")" = "$(jq -c '[.vmas[] | [.start, .pages]]' "$D/m2.json")" ]
	[ "$(vma "$R_sparse" pages)" = 3 ]
	finish_victim "ok usr1=1 pending=none"
}

# lazymem_victim MIB: tests/victims/lazymem in stripes, stopped; lazymem_done ends it
lazymem_victim() {
	mkfifo "$D/in"
	"$TESTS/lazymem" "$1" pause < "$D/in" > "$D/lz.out" &
	VPID=$!
	exec 7> "$D/in"
	wait_line "$D/lz.out" '^ready'
	stop_victim
}

lazymem_done() {
	kill -CONT "$VPID"
	exec 7>&-
	wait "$VPID"
	VPID=
}

@test "rf-snap: thousands of pagemap regions: the image is the one pagemap entries give" {
	# 32 MiB in stripes (every 5th page never touched): Linux 6.18's
	# PAGEMAP_SCAN was seen to report regions past its walk_end, which
	# made rf-snap read past the stack ("read memory at ...: I/O error")
	lazymem_victim 32
	"$BIN/rf-snap" -U "$VPID" > "$D/scan.img"
	RFORK_PAGEMAP=read "$BIN/rf-snap" -U "$VPID" > "$D/read.img"
	# the same pages (not the same bytes: the injected calls let the kernel
	# update the rseq area's cpu number)
	"$BIN/rf-restore" -n < "$D/scan.img" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/scan.j"
	"$BIN/rf-restore" -n < "$D/read.img" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/read.j"
	cmp "$D/scan.j" "$D/read.j"
	[ "$(stat -c %s "$D/scan.img")" = "$(stat -c %s "$D/read.img")" ]
	# 32 MiB less the untouched fifth, and the rest of the process
	[ "$(jq '[.[][1]] | add' "$D/scan.j")" -ge 6553 ]
	lazymem_done
}

@test "rf-snap -l: big private anonymous mappings go as LAZY records; rf-restore refuses, -n checks" {
	lazymem_victim 8
	"$BIN/rf-snap" -l "$VPID" > "$D/l.img"
	"$BIN/rf-snap" "$VPID" > "$D/w.img"
	# the 8 MiB (less the untouched fifth) are not in it, only their place
	[ "$(stat -c %s "$D/l.img")" -lt $(( $(stat -c %s "$D/w.img") - (6 << 20) )) ]
	"$BIN/rf-restore" -n < "$D/l.img" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/l.j"
	"$BIN/rf-restore" -n < "$D/w.img" | jq -c '[.vmas[] | [.start, .pages]]' > "$D/w.j"
	cmp "$D/l.j" "$D/w.j"
	run --separate-stderr "$BIN/rf-restore" < "$D/l.img"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"come later from a page source (a post-copy fork image)"* ]]
	[ "$(wc -l <<< "$stderr")" -eq 1 ]
	lazymem_done
}

@test "rf-snap: own process as an unprivileged user" {
	nobody_dir
	victim sleep "${nobody[@]}"
	stop_victim
	run --separate-stderr "${nobody[@]}" "$BIN/rf-snap" -M "$VPID"
	[ "$status" -eq 0 ]
	jq -e '.creds.uid[0] == 65534 and .creds.groups == []' <<<"$output"
	jq -e --arg h "$R_handler" '.signals.actions[] | select(.sig == 10) | .handler == $h' <<<"$output"
	run "${nobody[@]}" sh -c "'$BIN/rf-snap' -U $VPID | wc -c"
	[ "$status" -eq 0 ]
	[ "$output" -gt 100000 ]
	[ "$(pstate "$VPID")" = T ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: a process under seccomp: filter suspended as root, refused (77) without" {
	victim seccomp
	stop_victim
	run --separate-stderr "$BIN/rf-snap" -M "$VPID"
	[ "$status" -eq 0 ]
	jq -e --arg h "$R_handler" '.signals.actions[] | select(.sig == 10) | .handler == $h' <<<"$output"
	finish_victim "ok usr1=1 pending=none"

	nobody_dir
	victim seccomp "${nobody[@]}"
	stop_victim
	before=$(fingerprint "$VPID")
	run --separate-stderr "${nobody[@]}" "$BIN/rf-snap" "$VPID"
	[ "$status" -eq 77 ]
	[ "$stderr" = "rf-snap: pid $VPID runs under seccomp: dumping it needs CAP_SYS_ADMIN" ]
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: someone else's process: exit 77, untouched" {
	victim sleep
	stop_victim
	before=$(fingerprint "$VPID")
	run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN/rf-snap" "$VPID"
	[ "$status" -eq 77 ]
	[ "$stderr" = "rf-snap: pid $VPID: not permitted to trace it" ]
	run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups "$BIN/rf-snap" -s "$VPID"
	[ "$status" -eq 77 ]
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: a running process: exit 1, it runs on untouched" {
	victim sleep
	run --separate-stderr "$BIN/rf-snap" "$VPID"
	[ "$status" -eq 1 ]
	[ "$stderr" = "rf-snap: pid $VPID is running; stop it (kill -STOP) or use -s" ]
	[ -z "$output" ]
	grep -q '^TracerPid:	0$' "/proc/$VPID/status"
	wait "$VPID"
	VPID=
	[ "$(tail -1 "$VOUT")" = "ok usr1=1 pending=none" ]
}

@test "rf-snap: a multi-threaded process: exit 1" {
	victim thread
	stop_victim
	before=$(fingerprint "$VPID")
	run --separate-stderr "$BIN/rf-snap" "$VPID"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "rf-snap: pid $VPID has 2 threads"* ]]
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: a zombie: exit 1" {
	# the child ends after its parent has become sleep 30, which never reaps
	# it (sleep 0 could end first, and sh reap it before its exec)
	sh -c 'sleep 0.3 & echo $! > "$1"; exec sleep 30' sh "$D/zpid" &
	ZPID=$!
	wait_line "$D/zpid" .
	zombie=$(cat "$D/zpid")
	wait_state "$zombie" Z
	run --separate-stderr "$BIN/rf-snap" "$zombie"
	[ "$status" -eq 1 ]
	[ "$stderr" = "rf-snap: pid $zombie is a zombie" ]
}

@test "rf-snap: a kernel thread: exit 1" {
	[ "$(cat /proc/2/comm 2>/dev/null)" = kthreadd ] || skip "no kthreadd in this pid namespace"
	run --separate-stderr "$BIN/rf-snap" 2
	[ "$status" -eq 1 ]
	[ "$stderr" = "rf-snap: pid 2 is a kernel thread" ]
}

@test "rf-snap: a mapping of a kernel object (secretmem): exit 1, untouched" {
	"$TESTS/snap_victim" secret "$D" > "$D/probe" 2>&1 &
	VPID=$!
	wait_line "$D/probe" '^(ready|FAIL)'
	kill -KILL "$VPID"
	wait "$VPID" || true
	grep -q '^ready' "$D/probe" || skip "no memfd_secret here"
	victim secret
	stop_victim
	before=$(fingerprint "$VPID")
	run --separate-stderr "$BIN/rf-snap" "$VPID"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "rf-snap: pid $VPID: mapping 0x"*" /secretmem (deleted): kernel object that cannot be rebuilt" ]]
	[ -z "$output" ]
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: no such process: exit 66" {
	pid=$(($(cat /proc/sys/kernel/pid_max) + 1))
	run --separate-stderr "$BIN/rf-snap" "$pid"
	[ "$status" -eq 66 ]
	[ "$stderr" = "rf-snap: pid $pid: no such process" ]
	run --separate-stderr "$BIN/rf-snap" -s "$pid"
	[ "$status" -eq 66 ]
	[[ "$stderr" == "rf-snap: pid $pid"* ]]
}

@test "rf-snap: usage errors: exit 64" {
	for args in "" "1 2" "abc" "0" "-x 1" "-o" "-- -5" "-h"; do
		run --separate-stderr "$BIN/rf-snap" $args
		[ "$status" -eq 64 ]
		[ -z "$output" ]
	done
	[[ "$stderr" == "usage: rf-snap "* ]]
	# an image is no output for a terminal
	run script -qec "'$BIN/rf-snap' $$" /dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"rf-snap: will not write an image to a terminal; use -o file or a pipe"* ]]
}

@test "rf-snap: write errors: exit 74, target left stopped" {
	VMIB=4 victim sleep	# uncompressed (-U), more than a pipe holds
	stop_victim
	before=$(fingerprint "$VPID")
	run --separate-stderr bash -c "'$BIN/rf-snap' $VPID > /dev/full"
	[ "$status" -eq 74 ]
	[ "$stderr" = "rf-snap: image: write: No space left on device" ]
	run --separate-stderr bash -c "'$BIN/rf-snap' -M $VPID > /dev/full"
	[ "$status" -eq 74 ]
	run --separate-stderr "$BIN/rf-snap" -o /dev/full "$VPID"
	[ "$status" -eq 74 ]
	[ -c /dev/full ]
	# a reader that goes away; compressed, the image (51 KB) could fit in
	# the pipe before the reader left, so this one is not
	run bash -c "'$BIN/rf-snap' -U $VPID | head -c 100 > /dev/null; echo \${PIPESTATUS[0]}"
	[ "${lines[-1]}" = 74 ]
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap: a fork's child is read without a copy of its pages: they stay shared with its parent" {
	# python3 fills 64 MiB with a pattern and forks; the child stops.
	# (process_vm_readv pins each page, and the kernel first gives a child
	# that shares it a copy of its own: 64 MiB more of its own pages)
	python3 -c '
import os, signal, time
mem = bytearray(b"rfork-mem-path!\n") * (4 << 20)
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
print(pid, flush=True)
time.sleep(60)' > "$D/py.out" &
	VPID=$!
	wait_line "$D/py.out" '^[0-9]+$'
	ZPID=$(cat "$D/py.out")
	wait_state "$ZPID" T
	own() { awk '/^Private_(Clean|Dirty):/ { k += $2 } END { print k }' "/proc/$ZPID/smaps_rollup"; }
	before=$(own)
	"$BIN/rf-snap" -U "$ZPID" > "$D/img"
	after=$(own)
	# kB: some pages of its own (windows of pages it wrote since), not 64 MiB
	[ $((after - before)) -lt 16384 ]
	# and every page of the pattern is in the image
	[ "$(grep -ao 'rfork-mem-path!' "$D/img" | wc -l)" -ge $((4 << 20)) ]
	# and again, the pages still shared, the same ones (the same size: the
	# injected calls change bytes, as rseq's cpu number)
	[ "$("$BIN/rf-snap" -U "$ZPID" | wc -c)" = "$(stat -c %s "$D/img")" ]
}

@test "rf-snap killed halfway through the pages: target back in its stop, intact" {
	VMIB=8 victim sleep
	stop_victim
	before=$(fingerprint "$VPID")
	mkfifo "$D/slow"
	exec 5<>"$D/slow"	# a reader that never reads: rf-snap blocks once the pipe is full
	"$BIN/rf-snap" -U "$VPID" > "$D/slow" &
	spid=$!
	wait_line "/proc/$VPID/status" '^TracerPid:	[1-9]'
	sleep 0.2
	grep -q '^State:	t' "/proc/$VPID/status"
	# meanwhile another rf-snap finds it taken
	run --separate-stderr "$BIN/rf-snap" -M "$VPID"
	[ "$status" -eq 1 ]
	[ "$stderr" = "rf-snap: pid $VPID is traced by pid $spid" ]
	kill -KILL "$spid"
	wait "$spid" || true
	wait_state "$VPID" T
	[ "$(fingerprint "$VPID")" = "$before" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap -o: writes the image; removes a file it made when it fails" {
	victim sleep
	run --separate-stderr "$BIN/rf-snap" -o "$D/img" "$VPID"
	[ "$status" -eq 1 ]
	[ ! -e "$D/img" ]
	stop_victim
	# uncompressed (-U): a compressed record's size follows the bytes,
	# which the injected calls may change (rseq's cpu number)
	"$BIN/rf-snap" -U -o "$D/img" "$VPID"
	"$BIN/rf-snap" -U "$VPID" > "$D/img2"
	[ "$(head -c 8 "$D/img")" = RFORKIMG ]
	[ "$(stat -c %s "$D/img")" = "$(stat -c %s "$D/img2")" ]
	run --separate-stderr "$BIN/rf-snap" -o "$D/nodir/img" "$VPID"
	[ "$status" -eq 74 ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap | rf-restore: the victim goes on in a new process, state intact" {
	for mode in sleep spin; do
		VMIB=2 victim "$mode"
		stop_victim
		kill -USR1 "$VPID"
		kill -USR2 "$VPID"
		"$BIN/rf-snap" "$VPID" > "$D/img"
		kill -KILL "$VPID"
		wait "$VPID" || true
		VPID=
		run --separate-stderr timeout 20 "$BIN/rf-restore" -w < "$D/img"
		[ "$status" -eq 0 ]
		[ "$(tail -1 "$VOUT")" = "ok usr1=2 pending=usr2" ]
	done
}

@test "rf-snap -c: a fork's child's own record of its signal actions, altstack and brk stands for injected calls; another fork's does not" {
	victim sleep
	stop_victim
	"$BIN/rf-snap" -M "$VPID" > "$D/inj.json"
	"$BIN/rf-snap" -M -c "$R_rec:7" "$VPID" > "$D/rec.json"
	"$BIN/rf-snap" -M -c "$R_rec:8" "$VPID" > "$D/other.json"
	# the record's break is planted a page high: it shows where brk came from
	[ "$(jq -r .mm.brk "$D/inj.json")" = "$R_brk" ]
	[ "$(jq -r .mm.brk "$D/rec.json")" = "$(printf '%#x' $((R_brk + 4096)))" ]
	[ "$(jq -r .mm.brk "$D/other.json")" = "$R_brk" ]
	# and the rest is what the injected calls find
	[ "$(jq -cS .signals "$D/rec.json")" = "$(jq -cS .signals "$D/inj.json")" ]
	jq -e --arg h "$R_handler" '.signals.actions[] | select(.handler == $h)' "$D/rec.json"
	run "$BIN/rf-snap" -M -c "$R_rec" "$VPID"
	[ "$status" -eq 64 ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap | rf-restore -n: the image checks and carries the same metadata" {
	victim sleep
	stop_victim
	meta
	"$BIN/rf-snap" "$VPID" | "$BIN/rf-restore" -n > "$D/n.json"
	[ "$(jq -cS . "$D/m.json")" = "$(jq -cS . "$D/n.json")" ]
	finish_victim "ok usr1=1 pending=none"
}

@test "rf-snap -M and the image: odd names (quotes, backslashes, control characters, non-ASCII) round trip" {
	local odd dir exe
	# (maps shows a newline in a name as \012)
	odd=$(printf 'q"b\\s \001\037\177\tn\nl é€😀')
	dir=$D/$odd
	mkdir "$dir"
	exe=$dir/sl$odd
	cp "$(command -v sleep)" "$exe"
	: > "$dir/f$odd"
	(cd "$dir" && exec "$exe" 600 5< "$dir/f$odd" < /dev/null > /dev/null 2>&1 3>&- 4>&-) &
	VPID=$!
	wait_state "$VPID" S
	kill -STOP "$VPID"
	wait_state "$VPID" T
	meta
	jq -e --arg d "$dir" --arg x "$exe" --arg f "$dir/f$odd" \
	    '.cwd == $d and .exe == $x and (.fds[] | select(.fd == 5) | .path) == $f and
	     ([.vmas[] | select(.name == ($x | gsub("\n"; "\\012")))] | length) > 0' "$D/m.json"
	"$BIN/rf-snap" "$VPID" | "$BIN/rf-restore" -n > "$D/n.json"
	[ "$(jq -cS . "$D/m.json")" = "$(jq -cS . "$D/n.json")" ]
	# the same text as the image's own metadata, indented
	cmp "$D/m.json" "$D/n.json"
	[ "$(pstate "$VPID")" = T ]
}

@test "rf-snap: file names that are not UTF-8 travel as \\uDCXX and come back as the same bytes" {
	local bad rpid
	bad=$D/$(printf 'bad\377na\xc3me\xe2\x82')
	: > "$bad"
	sleep 600 5< "$bad" < /dev/null > /dev/null 2>&1 &
	VPID=$!
	wait_state "$VPID" S
	kill -STOP "$VPID"
	wait_state "$VPID" T
	meta
	grep -qF 'bad\uDCFFna\uDCC3me\uDCE2\uDC82"' "$D/m.json"
	"$BIN/rf-snap" "$VPID" | "$BIN/rf-restore" -n > "$D/n.json"
	cmp "$D/m.json" "$D/n.json"
	# and restored: fd 5 is that very file again
	"$BIN/rf-snap" -o "$D/img" "$VPID"
	kill -KILL "$VPID"
	wait "$VPID" 2> /dev/null || true
	VPID=
	run --separate-stderr "$BIN/rf-restore" < "$D/img"
	[ "$status" -eq 0 ]
	rpid=$(jq .pid <<< "$output")
	[ "$(readlink "/proc/$rpid/fd/5")" = "$bad" ]
	kill -KILL "$rpid"
}

@test "rf-snap -M: an fd whose fdinfo is long (epoll of 100 pipes) still has its flags and position" {
	python3 -c '
import os, select, signal, sys
ep = select.epoll(flags=select.EPOLL_CLOEXEC)
for _ in range(100):
    ep.register(os.pipe()[0], select.EPOLLIN)
print(ep.fileno(), flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
' > "$D/ep" < /dev/null 2> /dev/null 3>&- 4>&- &
	VPID=$!
	wait_state "$VPID" T
	[ "$(wc -c < "/proc/$VPID/fdinfo/$(cat "$D/ep")")" -gt 4096 ]
	meta
	jq -e --argjson fd "$(cat "$D/ep")" '.fds[] | select(.fd == $fd) |
	    .kind == "anon" and .path == "anon_inode:[eventpoll]" and .pos == 0 and
	    .cloexec == true and (.flags % 4) == 2' "$D/m.json"
	[ "$(jq '.fds | length' "$D/m.json")" = "$(ls "/proc/$VPID/fd" | wc -l)" ]
}
