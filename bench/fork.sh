# bench/fork.sh - what librfork.so's wrapper costs a local fork: plain fork
# beside the wrapper with RFORK_POLICY=none, and the local fallback when the
# host is down (rf-snap | rf-send ran and failed), 8 MiB touched.
lib=build/lib/librfork.so
b="taskset -c 1 build/bench/forkcost"
command -v taskset > /dev/null || b=build/bench/forkcost
n=${N:-500}
$b -n "$n" plain
LD_PRELOAD=$lib RFORK_POLICY=none $b -n "$n" "policy none"
$b -n "$n" plain
LD_PRELOAD=$lib RFORK_POLICY=none $b -n "$n" "policy none"
LD_PRELOAD=$lib RFORK_POLICY=all RFORK_HOSTS=127.0.0.1:1 RFORK_BINDIR=build/bin \
    $b -n 50 "host down (fallback)" 2> /dev/null
