#!/usr/bin/env bash
# `memtriage report` on a large trace (fx_churn: 30 million events) shows a
# progress line on stderr when stderr is a terminal: "\r"-rewritten text
# with a percentage, at most about 10 redraws a second, erased before the
# report.  When stderr is not a terminal nothing but the report appears.
# The terminal is a pseudo-terminal from util-linux `script` (bsdutils).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || skip "script (bsdutils) is not installed"
fx=$(fixture fx_churn)
"$MT" run --no-report -o "$T/big.trace" -- "$fx" 15000000 >/dev/null 2>"$T/run.err" ||
	fail "recording fx_churn failed: $(cat "$T/run.err")"

# the same report without a terminal: the reference, and nothing on stderr
"$MT" report "$T/big.trace" >"$T/plain.txt" 2>"$T/plain.err"
[ -s "$T/plain.txt" ] || fail "no report without a terminal"
[ ! -s "$T/plain.err" ] || fail "stderr is a file, yet something was written to it: $(od -c "$T/plain.err" | head -3)"
expect_eq "calls in the report" 15000000 "$(summary "$T/plain.txt" calls)"
! grep -q $'[\r\033]' "$T/plain.txt" || fail "the report has a carriage return or an escape"

# on a terminal: stdout and stderr both go to the pty, captured by script
start=$(date +%s%N)
script -qfec "'$MT' report '$T/big.trace'" /dev/null </dev/null >"$T/tty.raw"
end=$(date +%s%N)
tr -d '\r' <"$T/tty.raw" | sed 's/\x1b\[K//g' >"$T/tty.clean"
draws=$(grep -ao $'\rmemtriage: [a-z]* \'[^\']*\': *[0-9]*%\033\\[K' "$T/tty.raw" | wc -l)
[ "$draws" -ge 1 ] || fail "no progress line on a terminal: $(head -c 300 "$T/tty.raw" | od -c | head)"
pat=$'\r'"memtriage: analyzing '$T/big.trace': *[0-9]*%"
grep -aq "$pat" "$T/tty.raw" || fail "no 'analyzing' progress line naming the trace"
# at most 10 redraws a second, each phase (reading, analyzing) starting at once
wall_ds=$(( (end - start) / 100000000 ))
[ "$draws" -le $(( 2 * (wall_ds + 2) )) ] ||
	fail "$draws progress redraws in $wall_ds tenths of a second: more than 10 a second"
# erased: after the last redraw comes "\r\033[K", then the report's first line
tail=$(grep -ao $'%\033\\[K\r\033\\[K[A-Z]*' "$T/tty.raw" | tail -n 1)
expect_eq "what follows the last progress redraw" $'%\033[K\r\033[KMEMTRIAGE' "$tail"
# what is left once the line is erased is the report itself
diff <(sed 's/^memtriage: [a-z]* .*%//; /^$/d' "$T/tty.clean" | grep -v '^duration:\|per second') \
	<(grep -v '^duration:\|per second' "$T/plain.txt" | sed '/^$/d') >"$T/diff.out" ||
	fail "the terminal's report differs from the plain one: $(head -5 "$T/diff.out")"

# stdout a terminal, stderr a file: no progress anywhere
script -qfec "'$MT' report '$T/big.trace' 2>'$T/err.txt'" /dev/null </dev/null >"$T/tty2.raw"
[ ! -s "$T/err.txt" ] || fail "stderr is a file, yet it got: $(od -c "$T/err.txt" | head -3)"
! grep -aq 'memtriage: \(reading\|analyzing\)' "$T/tty2.raw" || fail "progress shown with stderr on a file"
grep -aq '^MEMTRIAGE REPORT' "$T/tty2.raw" || fail "no report on the terminal's stdout"
echo "progress: ok"
