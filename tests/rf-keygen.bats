#!/usr/bin/env bats
# rf-keygen: key files the transport accepts.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	KG=$ROOT/sh/rf-keygen
}

@test "rf-keygen: 32 random bytes, mode 0600, in a directory it creates" {
	run "$KG" "$BATS_TEST_TMPDIR/d/key"
	[ "$status" -eq 0 ]
	[ "$output" = "$BATS_TEST_TMPDIR/d/key" ]
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/d/key")" = 600 ]
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/d/key")" -eq 32 ]
	"$KG" "$BATS_TEST_TMPDIR/d/key2"
	! cmp -s "$BATS_TEST_TMPDIR/d/key" "$BATS_TEST_TMPDIR/d/key2"
	# rf-send takes it (and fails only later: nobody listens there)
	run "$ROOT/build/bin/rf-send" -k "$BATS_TEST_TMPDIR/d/key" 127.0.0.1:1 < /dev/null
	[ "$status" -eq 69 ]
}

@test "rf-keygen: never overwrites without -f; defaults to RFORK_KEY, then HOME" {
	"$KG" "$BATS_TEST_TMPDIR/key"
	cp "$BATS_TEST_TMPDIR/key" "$BATS_TEST_TMPDIR/old"
	run "$KG" "$BATS_TEST_TMPDIR/key"
	[ "$status" -eq 1 ]
	[[ "$output" == *"exists"* ]]
	cmp "$BATS_TEST_TMPDIR/key" "$BATS_TEST_TMPDIR/old"
	run "$KG" -f "$BATS_TEST_TMPDIR/key"
	[ "$status" -eq 0 ]
	! cmp -s "$BATS_TEST_TMPDIR/key" "$BATS_TEST_TMPDIR/old"
	RFORK_KEY=$BATS_TEST_TMPDIR/env.key run "$KG"
	[ "$output" = "$BATS_TEST_TMPDIR/env.key" ]
	HOME=$BATS_TEST_TMPDIR/home RFORK_KEY= run "$KG"
	[ "$output" = "$BATS_TEST_TMPDIR/home/.config/rfork/key" ]
	[ -f "$BATS_TEST_TMPDIR/home/.config/rfork/key" ]
}

@test "rf-keygen: usage" {
	run "$KG" -h
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: rf-keygen"* ]]
	run "$KG" a b
	[ "$status" -eq 64 ]
}
