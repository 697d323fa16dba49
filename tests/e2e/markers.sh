#!/usr/bin/env bash
# Marks and requests (tests/fixtures/fx_requests.c): the marks table, the
# phases by label, per-request retention and `report --diff` with exact
# figures; then examples/markers.py under the recorder: 3 marks, 300 requests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_requests)
record req "$fx"
expect_eq "fx_requests exit status" 0 "$RC"
r="$T/req.txt"

# marks table: label, live bytes, change vs the previous mark
mark_row() { grep -E "^[0-9]+ +[^ ]+ [^ ]+ +$1 +$2 +$3 " "$r" >/dev/null || fail "MARKS: no row '$1 $2 $3'"; }
mark_row start 0 '\+0'
mark_row 'phase A' 22500 '\+500'
mark_row 'phase B' 52500 '\+30000'
mark_row end 0 '-52500'
grep -q '^marks: 10; ' "$r" || fail "MARKS: expected 10 marks"

# phases by label: count, growth per phase, total
label_row() { grep -E "^$1 +$2 +$3 +$4 " "$r" >/dev/null || fail "PHASES BY LABEL: no row '$1 $2 $3 $4'"; }
label_row 'model A' 3 '\+1000' '\+3000'
label_row 'model B' 3 '\+500' '\+1500'
label_row 'phase A' 1 '\+30000' '\+30000'

# requests: 2x payload kept by four, request 5 frees 2000 B
grep -q '^requests: 5 completed$' "$r" || fail "REQUESTS: expected 5 completed"
grep -q '^retention ratio: avg=1.52x, min=-0.40x, max=2.00x payload size' "$r" ||
	fail "REQUESTS: wrong retention ratio: $(grep '^retention ratio' "$r")"
grep -q '^live-heap change per request: avg=+3600.0, min=-2000, max=+8000 bytes' "$r" ||
	fail "REQUESTS: wrong live-heap change"
grep -Eq '^<= 4 KiB +2 +\+7000.0 ' "$r" || fail "REQUESTS: wrong '<= 4 KiB' payload row"

# diff: the stack that grew names grow_phase with exactly 10 x 3000 B; sums reconcile
"$MT" report "$T/req.trace" --diff "phase A" "phase B" >"$T/diff.txt"
d="$T/diff.txt"
grep -q '^live heap change: +30000 bytes, +10 blocks' "$d" || fail "diff: live heap change"
grep -q '^sum of stack changes: +30000 bytes, +10 blocks .*: equals the live heap change$' "$d" ||
	fail "diff: sums do not reconcile: $(grep '^sum of' "$d")"
grep -q '^RSS change - live heap change: ' "$d" || fail "diff: no RSS remainder line"
awk '/^#1 /{f=1} f' "$d" | head -2 | grep -q 'at grow_phase ' || fail "diff: #1 is not grow_phase"
grep -q '^#1  +30000 bytes' "$d" || fail "diff: #1 is not +30000 bytes"

# label#N: the second "model A" phase adds keep_model_a's 1000 B
"$MT" report "$T/req.trace" --diff "model A#2" "model B#2" >"$T/diff2.txt"
grep -q '^#1  +1000 bytes' "$T/diff2.txt" || fail "diff model A#2: #1 is not +1000 bytes"
awk '/^#1 /{f=1} f' "$T/diff2.txt" | head -2 | grep -q 'at keep_model_a ' || fail "diff: not keep_model_a"
# reversed: B before A gives the change from A to B, negative
"$MT" report "$T/req.trace" --diff "phase B" "phase A" >"$T/diff3.txt"
grep -q '^live heap change: -30000 bytes, -10 blocks' "$T/diff3.txt" || fail "reversed diff"

# an unknown label: one line listing the labels, exit 2
rc=0
"$MT" report "$T/req.trace" --diff nope "phase B" >"$T/out" 2>"$T/err" || rc=$?
expect_eq "exit status for an unknown mark" 2 "$rc"
expect_eq "lines on stderr" 1 "$(wc -l <"$T/err")"
grep -q "^memtriage: no mark 'nope' in the trace; marks: 'start', 'model A'" "$T/err" ||
	fail "unknown mark message: $(cat "$T/err")"

# examples/markers.py: 3 marks ("cycle 0-2"), 300 requests of 4096 B
command -v python3 >/dev/null || skip "python3 is not installed"
py=$(python3 -c 'import sys; print(sys.executable)')
record pym "$py" "$MT_SRC/examples/markers.py"
grep -q '^recording 300' "$T/pym.out" || fail "markers.py did not see the recorder: $(cat "$T/pym.out")"
grep -q '^marks: 3; ' "$T/pym.txt" || fail "markers.py: expected 3 marks"
for c in 0 1 2; do
	grep -Eq "^[0-9]+ +[^ ]+ [^ ]+ +cycle $c " "$T/pym.txt" || fail "markers.py: no mark 'cycle $c'"
done
grep -q '^requests: 300 completed$' "$T/pym.txt" || fail "markers.py: expected 300 requests"
grep -Eq '^<= 4 KiB +300 ' "$T/pym.txt" || fail "markers.py: expected 300 requests of <= 4 KiB"
echo "markers: ok"
