#!/usr/bin/env bash
# A trace cut short (crash, SIGKILL, a full disk) is read up to its last
# complete block: `memtriage report` succeeds and the report says it was cut.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# A trace of several blocks: ~1.2 M events from the built-in workload.
record full "$MT" sim frontend --requests 300 --cycles 1 --payload 64K --concurrency 8 --workers 4
expect_eq "sim exit status" 0 "$RC"
if grep -q 'WARNING: the trace was cut' "$T/full.txt"; then fail "a complete trace is reported as cut"; fi
size=$(stat -c %s "$T/full.trace")
full_calls=$(summary "$T/full.txt" calls)

cut_at()
{
	local name="$1" bytes="$2" rc=0
	head -c "$bytes" "$T/full.trace" >"$T/$name.trace"
	"$MT" report "$T/$name.trace" >"$T/$name.txt" 2>"$T/$name.err" || rc=$?
	expect_eq "exit status of 'memtriage report' on a trace cut at $bytes of $size bytes" 0 "$rc"
	grep -q 'WARNING: the trace was cut' "$T/$name.txt" ||
		fail "the report of a trace cut at $bytes of $size bytes does not say it was cut"
}

cut_at half $((size / 2))
half_calls=$(summary "$T/half.txt" calls)
[ "$half_calls" -gt 0 ] && [ "$half_calls" -lt "$full_calls" ] ||
	fail "a trace cut at half: expected 0 < calls < $full_calls, got $half_calls"
cut_at last_byte $((size - 1))
cut_at header_only 32
expect_eq "calls in a header-only trace" 0 "$(summary "$T/header_only.txt" calls)"

# A process killed by SIGKILL leaves such a trace behind.
command -v python3 >/dev/null || skip "python3 is not installed"
py=$(python3 -c 'import sys; print(sys.executable)')
RC=0
"$MT" run -o "$T/killed.trace" --no-report -- "$py" -c '
import os
keep = [bytearray(1000) for _ in range(100000)]
os.kill(os.getpid(), 9)' >/dev/null 2>&1 || RC=$?
expect_eq "exit status of a command killed by SIGKILL" 137 "$RC"
rc=0
"$MT" report "$T/killed.trace" >"$T/killed.txt" 2>"$T/killed.err" || rc=$?
expect_eq "exit status of 'memtriage report' on a SIGKILLed trace" 0 "$rc"
grep -q 'WARNING: the trace was cut' "$T/killed.txt" ||
	fail "the report of a SIGKILLed process does not say the trace was cut"
echo "truncated: ok (trace of $size bytes, $full_calls calls; half: $half_calls)"
