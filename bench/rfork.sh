#!/bin/bash
# bench/rfork.sh - remote fork between two test hosts of its own: the parent
# (bench/rforkrun) under rf-run in host 1, its children forked to host 2.
# Each figure beside its same-run baseline, with the ratio and the target of
# issue 4: fork to first byte (local fork), 1 byte out to the parent and 1
# back (raw TCP ping-pong between the same hosts, bench/rawtcp), bulk writes into a
# home pipe (raw TCP bulk, same byte count), getpid (here).  Needs root.
#	N=forks (200)  TRIPS=round trips (5000)  MIB=bulk MiB (256)
#	BIGMIB=the big process of item 1 (256), forked 10 times, and 5 times
#	with the child reading all of it
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"
cd "$(dirname "$0")/.." || exit 70
[ "$(id -u)" -eq 0 ] || { echo "rfork.sh: needs root (test hosts), skipped"; exit 0; }
n=${N:-200}
trips=${TRIPS:-5000}
mib=${MIB:-256}
P=rfb$$
TH="sh/rf-testhosts -p $P"
B=build/bench
A2=10.77.0.2
raw=
cleanup() {
	trap - EXIT INT TERM
	[ -n "$raw" ] && kill -KILL "$raw" 2> /dev/null && wait "$raw" 2> /dev/null
	$TH down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# the parent runs as root, so its children's images are root's: -R
$TH -s -R up 2 > /dev/null || exit
KEY=$($TH dir)/key
inh() { local h=$1; shift; $TH exec "$P$h" "$@"; }
# rrun POLICY ARGS...: rforkrun ARGS under rf-run in host 1, children to host 2
# (WB: RFORK_WRITE_BEHIND for them, PC: RFORK_POSTCOPY, when set).
rrun() {
	local pol=$1
	shift
	inh 1 timeout -k 5 90 env RFORK_POLICY="$pol" ${WB:+RFORK_WRITE_BEHIND=$WB} \
	    ${PC:+RFORK_POSTCOPY=$PC} sh/rf-run -k "$KEY" -H "$A2" $B/rforkrun "$@" ||
	    { echo "rfork.sh: rforkrun $* (policy $pol) failed" >&2; exit 1; }
}
# field KEY N: the Nth number of the line KEY in $out
field() { awk -v k="$1" -v i="$2" '$1 == k { print $(i + 1); exit }' <<< "$out"; }
calc() { awk "BEGIN { printf \"%.2f\\n\", $1 }"; }
verdict() { awk "BEGIN { print ($1) ? \"met\" : \"NOT met\" }"; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }

# not through inh(): $! must be rawtcp itself (rf-testhosts execs it)
$TH exec "${P}2" $B/rawtcp serve "$A2:7190" > /dev/null &
raw=$!

echo "# two test hosts ${P}1 -> ${P}2 (veth, bridge); remote = RFORK_POLICY=all under rf-run"

# 1. fork to the first byte back, 8 MiB touched; local: the same program, policy none
out=$(rrun none fork -n "$n" -m 8) || exit
lp50=$(field fork 1) lp99=$(field fork 2)
out=$(rrun all fork -n "$n" -m 8) || exit
rp50=$(field fork 1) rp99=$(field fork 2) rret=$(field forkret 1)
printf '1 fork to first byte, 8 MiB, %d forks: remote p50 %.2f ms p99 %.2f ms | local p50 %.3f ms p99 %.3f ms | %.0f x | target p50 < 3 ms: %s\n' \
    "$n" "$(calc "$rp50 / 1000")" "$(calc "$rp99 / 1000")" "$(calc "$lp50 / 1000")" \
    "$(awk "BEGIN { printf \"%.3f\", $lp99 / 1000 }")" "$(calc "$rp50 / $lp50")" \
    "$(verdict "$rp50 < 3000")"
printf '  (of which to fork() returning in the parent: p50 %.2f ms)\n' "$(calc "$rret / 1000")"
# the same with the whole image sent first (no post-copy), and at 256 MiB
# (the 8 MiB hold one byte, which LZ4 shrinks to nothing once it travels:
# -r fills them with random bytes instead, so the whole image's cost is seen)
out=$(PC=0 rrun all fork -n "$n" -m 8) || exit
wo=$out
out=$(PC=0 rrun all fork -n "$n" -m 8 -r) || exit
printf '  whole image first (RFORK_POSTCOPY=0): p50 %.2f ms p99 %.2f ms; the 8 MiB random (-r): p50 %.2f ms p99 %.2f ms\n' \
    "$(calc "$(out=$wo field fork 1) / 1000")" "$(calc "$(out=$wo field fork 2) / 1000")" \
    "$(calc "$(field fork 1) / 1000")" "$(calc "$(field fork 2) / 1000")"
out=$(rrun all fork -n "$n" -m 8 -r) || exit
printf '  post-copy, the 8 MiB random (-r): p50 %.2f ms p99 %.2f ms\n' \
    "$(calc "$(field fork 1) / 1000")" "$(calc "$(field fork 2) / 1000")"
big=${BIGMIB:-256} bn=$(( n < 10 ? n : 10 ))
out=$(rrun none fork -n "$bn" -m "$big") || exit
blp50=$(field fork 1)
out=$(rrun all fork -n "$bn" -m "$big" -r) || exit
bp50=$(field fork 1)
out=$(PC=0 rrun all fork -n "$bn" -m "$big" -r) || exit
bwp50=$(field fork 1)
printf '  %d MiB touched (random, -r), %d forks: post-copy p50 %.2f ms | whole image first p50 %.1f ms | local p50 %.3f ms\n' \
    "$big" "$bn" "$(calc "$bp50 / 1000")" "$(calc "$bwp50 / 1000")" "$(calc "$blp50 / 1000")"
# the child then reads a word of each of its pages before its byte: all of
# its memory has come (post-copy: pages asked in address order, and on a
# fault); beside raw TCP moving the same bytes, and a local fork doing the same
an=$(( n < 5 ? n : 5 ))
out=$(rrun all fork -n "$an" -m "$big" -r -a) || exit
ap50=$(field fork 1)
out=$(PC=0 rrun all fork -n "$an" -m "$big" -r -a) || exit
awp50=$(field fork 1)
out=$(rrun none fork -n "$an" -m "$big" -r -a) || exit
alp50=$(field fork 1)
out=$(inh 1 timeout -k 5 60 $B/rawtcp bulk "$A2:7190" "$big") || exit
araw=$(field rawbulk 1)
printf '  the same, the child reading every page before its byte, %d forks: post-copy p50 %.1f ms (%.0f MiB/s) | whole image first p50 %.1f ms | local p50 %.1f ms | raw TCP of %d MiB %.1f ms (%.0f MiB/s)\n' \
    "$an" "$(calc "$ap50 / 1000")" "$(calc "$big / ($ap50 / 1e6)")" "$(calc "$awp50 / 1000")" \
    "$(calc "$alp50 / 1000")" "$big" "$(calc "$big / $araw * 1000")" "$araw"

# 2. 1 byte out to the parent and 1 back (a posted write and a forwarded
# read) against the raw TCP ping-pong (1 out, 1 back); a write alone (posted:
# no round trip) and a synchronous write (RFORK_WRITE_BEHIND=0) beside it.
# 2 rounds alternated with the ping-pong, each side's round of lower p50
pp50= ep50= sp50=
for _ in 1 2; do
	out=$(inh 1 timeout -k 5 60 $B/rawtcp ping "$A2:7190" "$trips") || exit
	if [ -z "$pp50" ] || awk "BEGIN { exit !($(field ping 1) < $pp50) }"; then
		pp50=$(field ping 1) pp99=$(field ping 2)
	fi
	out=$(rrun all rtt -n "$trips") || exit
	if [ -z "$ep50" ] || awk "BEGIN { exit !($(field echo 1) < $ep50) }"; then
		wp50=$(field write 1) wp99=$(field write 2) ep50=$(field echo 1) ep99=$(field echo 2)
	fi
	out=$(WB=0 rrun all rtt -n "$trips") || exit
	if [ -z "$sp50" ] || awk "BEGIN { exit !($(field write 1) < $sp50) }"; then
		sp50=$(field write 1) sp99=$(field write 2) sep50=$(field echo 1)
	fi
done
printf '2 1 byte out to the parent and 1 back (posted write + forwarded read), %d trips (better of 2): remote p50 %.1f us p99 %.1f us | raw TCP ping-pong p50 %.1f us p99 %.1f us | %.2f x | target < 2 x: %s\n' \
    "$trips" "$ep50" "$ep99" "$pp50" "$pp99" "$(calc "$ep50 / $pp50")" \
    "$(verdict "$ep50 < 2 * $pp50")"
printf '  a 1-byte write alone (posted, no round trip): p50 %.1f us p99 %.1f us\n' "$wp50" "$wp99"
printf '  a synchronous 1-byte write (RFORK_WRITE_BEHIND=0): p50 %.1f us p99 %.1f us, %.2f x the ping-pong (1 out and 1 back: %.1f us)\n' \
    "$sp50" "$sp99" "$(calc "$sp50 / $pp50")" "$sep50"

# 3. bulk, best of 2 each, alternated
rb=() bb=()
for _ in 1 2; do
	out=$(inh 1 timeout -k 5 60 $B/rawtcp bulk "$A2:7190" "$mib") || exit
	rb+=("$(field rawbulk 1)")
	out=$(rrun all bulk -m "$mib") || exit
	bb+=("$(field bulk 1)")
done
rbest=$(max "${rb[@]}") bbest=$(max "${bb[@]}")
printf '3 bulk 64 KiB writes into a home pipe, %d MiB (best of 2): remote %.0f MiB/s | raw TCP %.0f MiB/s | %.2f x | target >= 0.7 x: %s\n' \
    "$mib" "$bbest" "$rbest" "$(calc "$bbest / $rbest")" "$(verdict "$bbest >= 0.7 * $rbest")"

# 4. getpid in the remote child beside the parent's own
out=$(rrun all getpid) || exit
gh=$(field getpid-here 1) gc=$(field getpid-child 1)
printf '4 getpid: remote child %.0f ns | here %.0f ns | %.2f x | target < 1 us: %s\n' \
    "$gc" "$gh" "$(calc "$gc / $gh")" "$(verdict "$gc < 1000")"
