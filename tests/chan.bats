#!/usr/bin/env bats
# lib/chan.c: the channel's two AES-256-GCM implementations interoperate
# (rf-send and rf-stub seal with libsodium's while OpenSSL starts).

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

setup() {
	K=$(mktemp -d /tmp/rf-chan.XXXXXX)
	"$ROOT/sh/rf-keygen" "$K/key" > /dev/null
}

teardown() {
	rm -rf "$K"
}

@test "chan: frames sealed by OpenSSL open with libsodium and back, before and after the switch" {
	run "$ROOT/build/tests/chanx" "$K/key"
	[ "$status" -eq 0 ]
	[[ "$output" == "skip: "* ]] && skip "$output"
	[ "$output" = "ok 40 frames" ]
}
