#!/usr/bin/env bash
# report --format folded: folded stacks for flame graphs.  On fx_single
# (exact known figures) the values of every metric add up to the text
# report's SUMMARY, every line follows the folded grammar and flamegraph.pl's
# reading of it, and the allocation sites appear outermost first.  The diff
# form on fx_requests gives live bytes at mark A and B that add up to the
# live heap at each mark.  Debian ships no flame graph renderer, so the
# consumer's rules are checked here instead (see check_lines).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Every line of folded file $1 has $2 value columns; fails otherwise.
# Grammar: frames of no ';' nor newline, joined by ';', then " VALUE" per
# column.  flamegraph.pl splits a line at its last blank-separated number,
# and once more for a second column: a stack that itself ended in a number
# would be misread, so the stack part must not.
check_lines()
{
	local f="$1" cols="$2" re='^[^;]+(;[^;]+)*'
	for _ in $(seq "$cols"); do re="$re [0-9]+"; done
	[ -s "$f" ] || fail "'$f' is empty"
	grep -Evq "$re\$" "$f" && fail "'$f': lines outside the grammar: $(grep -Ev "$re\$" "$f" | head -3)"
	awk -v cols="$cols" '{ s = $0; for (i = 0; i < cols; i++) sub(/ [0-9]+$/, "", s)
	                       if (s ~ /[ \t][0-9]+(\.[0-9]*)?$/) { print; exit 1 } }' "$f" ||
		fail "'$f': a stack ends in a number, which flamegraph.pl would read as a value"
	return 0
}

# Sum of value column $2 (1 = the first value) of folded file $1.
col_sum()
{
	awk -v c="$2" '{ s += $(NF - (ncol - c)) } END { printf "%d\n", s }' ncol="$3" "$1"
}

fx=$(fixture fx_single)
record single "$fx"
check_summary single 1128 412000 28000 7 100
allocated=$(sed -n 's/^bytes allocated: \([0-9]*\) bytes.*/\1/p' "$T/single.txt")
expect_eq "bytes allocated in the text report" 459690 "$allocated"

for m in peak leaked allocated calls temporary; do
	"$MT" report -f folded --metric "$m" "$T/single.trace" >"$T/$m.folded"
	check_lines "$T/$m.folded" 1
	! grep -q ' 0$' "$T/$m.folded" || fail "$m: a line with value 0"
	case "$m" in
	allocated) want=$allocated ;;
	*)         want=$(summary "$T/single.txt" "$m") ;;
	esac
	expect_eq "$m: sum of the folded values vs the SUMMARY" "$want" "$(col_sum "$T/$m.folded" 1 1)"
done
# the default metric is peak
"$MT" report -f folded "$T/single.trace" | cmp -s - "$T/peak.folded" || fail "the default metric is not peak"

# allocation sites by name, outermost first: main calls phase_f calls leak_block
grep -Eq '(^|;)main;phase_f;leak_block 28000$' "$T/leaked.folded" ||
	fail "leaked: no 'main;phase_f;leak_block 28000': $(cat "$T/leaked.folded")"
expect_eq "leaked: stacks" 1 "$(wc -l <"$T/leaked.folded")"
grep -Eq '(^|;)main;phase_e;temporary 100$' "$T/temporary.folded" ||
	fail "temporary: no 'main;phase_e;temporary 100': $(cat "$T/temporary.folded")"
grep -Eq '(^|;)main;phase_a 1000$' "$T/calls.folded" || fail "calls: no 'main;phase_a 1000'"
# every stack, not a top list: phase_a..phase_f all allocate
for f in phase_a phase_c phase_d phase_e phase_f; do
	grep -q ";$f[; ]" "$T/calls.folded" || fail "calls: no stack through $f"
done

# diff: "STACK A B", live bytes at the marks; sums are the live heap at A and B
fxr=$(fixture fx_requests)
record req "$fxr"
"$MT" report --diff "phase A" "phase B" "$T/req.trace" >"$T/diff.txt"
"$MT" report -f folded --diff "phase A" "phase B" "$T/req.trace" >"$T/diff.folded"
check_lines "$T/diff.folded" 2
heap_at() { sed -n "s/^mark $1: .*: live heap \([0-9]*\) bytes in .*/\1/p" "$T/diff.txt"; }
expect_eq "diff: live heap at A" 22500 "$(heap_at A)"
expect_eq "diff: live heap at B" 52500 "$(heap_at B)"
expect_eq "diff: column A sum" "$(heap_at A)" "$(col_sum "$T/diff.folded" 1 2)"
expect_eq "diff: column B sum" "$(heap_at B)" "$(col_sum "$T/diff.folded" 2 2)"
change=$(sed -n 's/^live heap change: +*\(-*[0-9]*\) bytes.*/\1/p' "$T/diff.txt")
expect_eq "diff: B - A vs the text diff's change" "$change" \
	"$(awk '{ s += $NF - $(NF-1) } END { print s }' "$T/diff.folded")"
grep -Eq '(^|;)main(;[^;]+)*;grow_phase 0 30000$' "$T/diff.folded" ||
	fail "diff: no 'main;...;grow_phase 0 30000': $(cat "$T/diff.folded")"
# reversed: the columns swap
"$MT" report -f folded --diff "phase B" "phase A" "$T/req.trace" >"$T/rdiff.folded"
grep -Eq ';grow_phase 30000 0$' "$T/rdiff.folded" || fail "reversed diff: no 'grow_phase 30000 0'"

# a C++ program: demangled names with spaces, parentheses and templates stay parseable
"$MT" run -o "$T/cxx.trace" --no-report -- "$(fixture fx_cxx)" >/dev/null 2>&1 || true
if [ -s "$T/cxx.trace" ]; then
	for m in calls allocated; do
		"$MT" report -f folded --metric "$m" "$T/cxx.trace" >"$T/cxx.$m.folded"
		check_lines "$T/cxx.$m.folded" 1
	done
	expect_eq "fx_cxx: calls sum" "$("$MT" report "$T/cxx.trace" | sed -n 's/^calls to allocation functions: \([0-9]*\).*/\1/p')" \
		"$(col_sum "$T/cxx.calls.folded" 1 1)"
fi

# --metric: an unknown one, another format, or a diff are usage errors
for args in "-f folded --metric bytes" "--metric calls" "-f folded --metric calls --diff start end"; do
	rc=0
	# shellcheck disable=SC2086
	"$MT" report $args "$T/req.trace" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "exit status of 'report $args'" 2 "$rc"
	expect_eq "'report $args': lines on stderr" 1 "$(wc -l <"$T/err")"
	[ ! -s "$T/out" ] || fail "'report $args' wrote to stdout"
done
grep -q "^memtriage: --metric does not apply to --diff" "$T/err" || fail "diff + metric message: $(cat "$T/err")"
echo "report_folded: ok"
