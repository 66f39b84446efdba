#!/usr/bin/env bats
# rf-testhosts: namespaced test hosts, and their removal whatever happened.

load net

teardown() {
	"$TH" -p "$P" down
}

setup() {
	P=tth$$
}

@test "rf-testhosts: up 3 makes hosts with their own names, links and servers; down removes all" {
	run "$TH" -p "$P" up 3
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "${P}3 10.77.0.3" ]
	[ "$("$TH" -p "$P" exec "${P}2" hostname)" = "${P}2" ]
	[ "$(hostname)" != "${P}2" ]
	# each host reaches the others' servers over the bridge
	run "$TH" -p "$P" exec "${P}1" "$ROOT/build/bin/rf-send" -k "$("$TH" -p "$P" dir)/key" 10.77.0.3 < /dev/null
	[ "$status" -eq 66 ]
	grep -q "listening on 10.77.0.3:7077 as ${P}3" "$("$TH" -p "$P" dir)/${P}3.log"
	run "$TH" -p "$P" env
	[[ "$output" == *"RFORK_HOSTS=10.77.0.1,10.77.0.2,10.77.0.3"* ]]
	# leftovers in a host are removed too
	"$TH" -p "$P" exec "${P}2" setsid sleep 100 < /dev/null > /dev/null 2>&1 &
	sleep 0.2
	[ -n "$(ip netns pids "${P}2")" ]
	"$TH" -p "$P" down
	! ip netns list | grep -q "^$P"
	[ ! -e "/run/rfork-testhosts/$P" ]
	run "$TH" -p "$P" list
	[ "$status" -eq 66 ]
}

@test "rf-testhosts: a failed up removes what it made" {
	run "$TH" -p "$P" -s "-t nonsense" up 2
	[ "$status" -ne 0 ]
	[[ "$output" == *"did not start"* ]]
	! ip netns list | grep -q "^$P"
	[ ! -e "/run/rfork-testhosts/$P" ]
}

@test "rf-testhosts: usage" {
	run "$TH" up
	[ "$status" -eq 64 ]
	run "$TH" -p 'a b' down
	[ "$status" -eq 64 ]
	run "$TH" -p "$P" exec nohost true
	[ "$status" -eq 66 ]
}
