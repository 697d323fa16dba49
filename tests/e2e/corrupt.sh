#!/usr/bin/env bash
# Input that is not a trace, or a trace damaged in the middle, gets exit
# status 2 and exactly one line on stderr ("memtriage: ..."), nothing on
# stdout, and never a crash.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

expect_error()
{
	local what="$1" file="$2" rc=0
	"$MT" report "$file" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "exit status of 'memtriage report' on $what" 2 "$rc"
	[ ! -s "$T/out" ] || fail "$what: expected nothing on stdout, got: $(head -c 300 "$T/out")"
	expect_eq "lines on stderr for $what" 1 "$(wc -l <"$T/err")"
	grep -q '^memtriage: ' "$T/err" || fail "$what: the error does not start with 'memtriage: ': $(cat "$T/err")"
	echo "  $what: $(cat "$T/err")"
}

head -c 65536 /dev/urandom >"$T/random.bin"
expect_error "random bytes" "$T/random.bin"
expect_error "an ELF file" "$MT"
: >"$T/empty"
expect_error "an empty file" "$T/empty"
printf 'hello, world\n' >"$T/text"
expect_error "a text file" "$T/text"
printf 'MEMTRACE' >"$T/magic_only"
expect_error "a file cut inside its header" "$T/magic_only"

# A real trace, then damaged copies of it.
record good "$MT" sim frontend --requests 100 --cycles 1 --payload 64K --concurrency 4 --workers 2
expect_eq "sim exit status" 0 "$RC"
size=$(stat -c %s "$T/good.trace")
[ "$size" -gt 4096 ] || fail "trace of $size bytes is too small to damage in the middle"

# Header with an unknown major version.
cp "$T/good.trace" "$T/major.trace"
printf '\x63\x00' | dd of="$T/major.trace" bs=1 seek=8 conv=notrunc status=none
expect_error "a trace of format major 99" "$T/major.trace"

# One byte flipped inside the first block's compressed data (the block and
# the file go on: this is damage, not a cut).
cp "$T/good.trace" "$T/flip.trace"
off=$((32 + 16 + 200))
byte=$(od -An -tu1 -j $off -N1 "$T/flip.trace" | tr -d ' ')
printf "\\$(printf '%03o' $(((byte + 1) % 256)))" | dd of="$T/flip.trace" bs=1 seek=$off conv=notrunc status=none
expect_error "a trace with a byte flipped in its first block" "$T/flip.trace"

# Missing file: an error too (exit status 2, the system's reason).
expect_error "a missing file" "$T/no-such.trace"
grep -q 'No such file or directory' "$T/err" || fail "missing file: the message lacks the reason: $(cat "$T/err")"
# The valid file header followed by garbage: a block header that fails its
# check with 64 KiB after it is damage, not a torn tail (format.h: the check
# exists to catch a foreign header "before we trust sizes").
{ head -c 32 "$T/good.trace"; head -c 65536 /dev/urandom; } >"$T/garbage.trace"
expect_error "a trace header followed by random bytes" "$T/garbage.trace"
echo "corrupt: ok"
