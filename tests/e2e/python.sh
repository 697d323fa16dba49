#!/usr/bin/env bash
# A real interpreter under `memtriage run`: output and exit status are kept
# (sys.exit(3) -> 3, an uncaught exception -> 1 with its traceback), and the
# report sees the script's 20,000 live 4 KiB bytearrays.
#
# The interpreter is python3's sys.executable, not the `python3` found on
# PATH: that may be a wrapper script (pyenv shims, /usr/bin/env) that
# exec()s the interpreter, and memtriage records only the first image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip "python3 is not installed"
py=$(python3 -c 'import sys; print(sys.executable)')
cat >"$T/alloc.py" <<'PY'
import sys
blocks = [bytearray(4096) for _ in range(20000)]
words = {str(i): "x" * (i % 700) for i in range(50000)}
print("blocks", len(blocks), "words", len(words), "bytes", sum(len(b) for b in blocks))
sys.exit(3)
PY
record py "$py" "$T/alloc.py"
expect_eq "exit status of sys.exit(3)" 3 "$RC"
same_stdout_as_bare py "$py" "$T/alloc.py"
expect_eq "stdout" "blocks 20000 words 50000 bytes 81920000" "$(cat "$T/py.out")"
calls=$(summary "$T/py.txt" calls)
peak=$(summary "$T/py.txt" peak)
[ "$calls" -ge 20000 ] || fail "calls to allocation functions: expected >= 20000 (one per bytearray), got $calls"
[ "$peak" -ge 81920000 ] || fail "peak heap: expected >= 81920000 (20000 live x 4096 B), got $peak"
[ "$peak" -le 400000000 ] || fail "peak heap: expected well under 400 MB, got $peak"
if grep -q 'WARNING: the trace was cut' "$T/py.txt"; then fail "python's trace reported as cut"; fi

printf 'x = [bytes(100) for _ in range(1000)]\nraise ValueError("boom")\n' >"$T/raise.py"
record raise "$py" "$T/raise.py"
expect_eq "exit status of an uncaught exception" 1 "$RC"
grep -q 'ValueError: boom' "$T/raise.err" || fail "the traceback is missing from stderr"
echo "python: ok"
