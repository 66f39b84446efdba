#!/bin/bash
# bench/migrate.sh [MIB] - move a MIB MiB process (default 1024) between two
# test hosts with rf-snap | rf-send -> rf-server -> rf-restore, beside the same
# run's baselines over the same veth link: socat carrying as many bytes into
# fresh memory, and rf-send -> rf-recv (our transport alone) into the same sink.
# Then the latency of moving a small process.  Needs root (test hosts).
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
cd "$(dirname "$0")/.." || exit 70
mib=${1:-1024}
runs=${RUNS:-3}
P=bm$$
TH="sh/rf-testhosts -p $P"
B=build/bin
trap 'kill -KILL $hog 2>/dev/null; wait $hog 2>/dev/null; $TH down' EXIT
# root runs the benchmark, so its hog is root's: let the servers take it
$TH -s -R up 2 > /dev/null || exit
KEY=$($TH dir)/key
inh() { local h=$1; shift; $TH exec "$P$h" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }
calc() { awk "BEGIN { printf \"%.4f\\n\", $1 }"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

hog=
start_hog() {
	# not through inh(): $! must be hog itself (rf-testhosts execs it)
	$TH exec "${P}1" build/bench/hog "$1" < /dev/null > /dev/null 2>&1 &
	hog=$!
	for _ in $(seq 600); do
		[ "$(awk '{sub(/.*\) /, ""); print substr($0,1,1)}' /proc/$hog/stat)" = T ] && return
		sleep 0.05
	done
	echo "hog did not stop" >&2
	exit 1
}

start_hog "$mib"
bytes=$($B/rf-snap "$hog" | wc -c)
echo "image of a $mib MiB process: $bytes bytes; best and median of $runs runs"

base=() ours=() xport=()
for r in $(seq "$runs"); do
	# baseline: socat over the link into fresh memory
	inh 2 sh -c "socat -b 1048576 -u TCP-LISTEN:7090,reuseaddr STDOUT | build/bench/sink $bytes" > /dev/null &
	sp=$!
	while ! inh 2 ss -ltnH | grep -q ':7090 '; do sleep 0.02; done
	t0=$(now)
	inh 1 socat -b 1048576 -u OPEN:/dev/zero,readbytes="$bytes" TCP:10.77.0.2:7090
	wait $sp
	base+=("$(secs "$t0" "$(now)")")

	# our transport alone: rf-send -> rf-recv into the same sink
	inh 2 sh -c "$B/rf-recv -k $KEY -l 10.77.0.2:7091 | build/bench/sink $bytes" > /dev/null &
	sp=$!
	while ! inh 2 ss -ltnH | grep -q ':7091 '; do sleep 0.02; done
	t0=$(now)
	head -c "$bytes" /dev/zero | inh 1 $B/rf-send -k "$KEY" 10.77.0.2:7091 > /dev/null
	wait $sp
	xport+=("$(secs "$t0" "$(now)")")

	# the real thing: snapshot, send, restore into a new process on h2
	t0=$(now)
	out=$($B/rf-snap "$hog" | inh 1 $B/rf-send -k "$KEY" 10.77.0.2)
	t1=$(now)
	rpid=$(echo "$out" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
	[ -n "$rpid" ] || { echo "migration failed: $out" >&2; exit 1; }
	ours+=("$(secs "$t0" "$t1")")
	kill -CONT "$rpid"	# hog checks every page and exits 0
	for _ in $(seq 100); do
		grep -q "pid $rpid exited" "$($TH dir)/${P}2.log" && break
		sleep 0.1
	done
	grep -q "pid $rpid exited with status 0" "$($TH dir)/${P}2.log" ||
	    { echo "restored copy $rpid did not verify" >&2; exit 1; }
done
kill -KILL "$hog"
wait "$hog" 2>/dev/null

row() {
	local name=$1
	shift
	local best med
	best=$(printf '%s\n' "$@" | sort -n | head -1)
	med=$(printf '%s\n' "$@" | median)
	printf '%-44s %7.3f s  %7.3f s  %6.0f MiB/s\n' "$name" "$best" "$med" \
	    "$(calc "$bytes / 1048576 / $best")"
}
printf '%-44s %9s  %9s  %s\n' "" best median "(best)"
row "socat -> fresh memory (baseline)" "${base[@]}"
b=$(printf '%s\n' "${base[@]}" | sort -n | head -1)
row "rf-send -> rf-recv -> fresh memory" "${xport[@]}"
row "rf-snap | rf-send -> rf-server/rf-restore" "${ours[@]}"
o=$(printf '%s\n' "${ours[@]}" | sort -n | head -1)
bm=$(printf '%s\n' "${base[@]}" | median)
om=$(printf '%s\n' "${ours[@]}" | median)
printf 'migration / baseline: %.2f x best to best, %.2f x median to median (target <= 1.5 x)\n' \
    "$(calc "$o / $b")" "$(calc "$om / $bm")"

# small process: latency of a whole migration (rf-snap, rf-send, restore,
# commit), p50 and p99; rf-send runs in h1 by nsenter alone, so no shell
# start-up is counted.  srv: the server's own share (its total_ms).
start_hog 1
lat=() srv=()
for r in $(seq "${SMALL:-30}"); do
	t0=$(now)
	out=$($B/rf-snap "$hog" | nsenter --net=/run/netns/${P}1 $B/rf-send -k "$KEY" 10.77.0.2)
	t1=$(now)
	rpid=$(echo "$out" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
	[ -n "$rpid" ] && kill -KILL "$rpid" 2>/dev/null
	lat+=("$(calc "($t1 - $t0) * 1000")")
	srv+=("$(echo "$out" | sed -n 's/.*"total_ms":\([0-9]*\).*/\1/p')")
done
p99() { sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99+0.5)]}'; }
printf 'small process (1 MiB hog, %d bytes image): p50 %.1f ms, p99 %.1f ms (server side p50 %s ms)\n' \
    "$($B/rf-snap "$hog" | wc -c)" \
    "$(printf '%s\n' "${lat[@]}" | median)" "$(printf '%s\n' "${lat[@]}" | p99)" \
    "$(printf '%s\n' "${srv[@]}" | median)"
