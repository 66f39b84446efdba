#!/usr/bin/env bats
# The remote-fork steps of `make demo` (sh/demo steps 3 and 4): demo/workers
# under rf-run in host 1 forks 4 workers onto hosts 2 and 3, round robin; they
# report host, pid, ppid and a partial sum over their pipes and the parent waits
# for them.  demo/generations.py: remote children forking in turn.

load net
load helpers

setup_file() {
	# the program runs as root: its images need -R
	th_up 3 "3 -R"
}

teardown_file() {
	th_down
}

setup() {
	MARK=demo$$.$BATS_TEST_NUMBER
	OUT=$TDIR/out.$BATS_TEST_NUMBER
}

teardown() {
	local p
	for p in $(marked "$MARK"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# workers HOSTS [N]: demo/workers under rf-run in host 1; its stdout in $OUT.
workers() {
	inh 1 env RFTEST_MARK="$MARK" "$ROOT/sh/rf-run" -k "$KEY" -H "$1" \
	    "$ROOT/build/demo/workers" ${2:+"$2"} > "$OUT"
}

# row K: worker K's line of the table, fields: k host getpid getppid numbers
# sum fork() what-the-pid-is-on-host-1 waitpid-status.
row() {
	awk -v k="$1" '$1 == k' "$OUT"
}

@test "demo: 4 workers on hosts 2 and 3 in turn, with pids real in host 1, waited for" {
	local before2 before3 ppid k host pid wppid fpid what how code
	before2=$(stubs 2)
	before3=$(stubs 3)
	run workers "$(addr 2),$(addr 3)" 4
	cat "$OUT"
	echo "stderr: $output"
	[ "$status" -eq 0 ]
	read -r _ _ ppid _ phost _ < <(grep '^parent: ' "$OUT")
	[ "$phost" = "${PFX}1;" ]
	grep -q "^worker .* on ${PFX}1 " "$OUT"
	for k in 0 1 2 3; do
		read -r _ host pid wppid _ _ fpid what how code < <(row $k)
		[ "$host" = "${PFX}$((k % 2 + 2))" ]
		[ "$pid" = "$fpid" ]
		[ "$wppid" = "$ppid" ]
		[ "$what" = rf-stub ]
		[ "$how $code" = "exit 0" ]
	done
	[ "$(row 0 | awk '{print $5, $6}')" = "1..250000 31250125000" ]
	[ "$(row 3 | awk '{print $5, $6}')" = "750001..1000000 218750125000" ]
	grep -qx "total 500000500000, expected 500000500000 (1+...+1000000): ok" "$OUT"
	! grep -q BAD "$OUT"
	[ "$(stubs 2)" -eq $((before2 + 2)) ]
	[ "$(stubs 3)" -eq $((before3 + 2)) ]
	none_marked "$MARK"
	only_server 2
	only_server 3
}

@test "demo: a host that refuses gets no worker: those fork locally and the sum still holds" {
	local k host pid fpid what
	# host 3 has no server on port 7078: connection refused, local fallback
	run workers "$(addr 2),$(addr 3):7078" 4
	cat "$OUT"
	echo "stderr: $output"
	[ "$status" -eq 0 ]
	for k in 0 1 2 3; do
		read -r _ host pid _ _ _ fpid what _ < <(row $k)
		[ "$pid" = "$fpid" ]
		if [ $((k % 2)) -eq 0 ]; then
			[ "$host $what" = "${PFX}2 rf-stub" ]
		else
			[ "$host $what" = "${PFX}1 workers" ]
		fi
	done
	grep -q ": ok$" "$OUT"
	[[ "$output" == *"fork stays local"* ]]
	none_marked "$MARK"
	only_server 2
}

@test "demo: workers refuses a bad count" {
	run -64 "$ROOT/build/demo/workers" 0
	[[ "$output" == "usage: workers"* ]]
	run -64 "$ROOT/build/demo/workers" 17
	run -64 "$ROOT/build/demo/workers" 2 2
}

@test "demo: four generations of python forks, each remote one under its parent's stub in host 1" {
	run inh 1 env RFTEST_MARK="$MARK" "$ROOT/sh/rf-run" -k "$KEY" -H "$(addr 2),$(addr 3)" \
	    /usr/bin/python3 "$ROOT/demo/generations.py"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "^gen 0: pid [0-9]* on ${PFX}1$" <<<"$output"
	grep -q "^gen 1: pid [0-9]*, parent [0-9]*, on ${PFX}2$" <<<"$output"
	grep -q "^gen 2: pid [0-9]*, parent [0-9]*, on ${PFX}3$" <<<"$output"
	grep -q "^gen 3: pid [0-9]*, parent [0-9]*, on ${PFX}2$" <<<"$output"
	# each generation's parent is the one before, and so is its stub's in host 1
	for n in 1 2 3; do
		pid=$(sed -n "s/^gen $n: pid \([0-9]*\), parent \([0-9]*\),.*/\1/p" <<<"$output")
		ppid=$(sed -n "s/^gen $n: pid \([0-9]*\), parent \([0-9]*\),.*/\2/p" <<<"$output")
		prev=$(sed -n "s/^gen $((n - 1)): pid \([0-9]*\)[, ].*/\1/p" <<<"$output")
		[ "$ppid" = "$prev" ]
		grep -q "$pid (rf-stub, parent $ppid)" <<<"$output"
		grep -q "^gen $((n - 1)): my child $pid ended with $n$" <<<"$output"
	done
	none_marked "$MARK"
}
