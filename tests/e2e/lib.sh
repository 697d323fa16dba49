# Helpers for the end-to-end tests (tests/e2e/*.sh).  Source it from a test
# that runs with `set -euo pipefail`:
#
#     . "$(dirname "$0")/lib.sh"
#
# Needs MT_BIN (the build directory: memtriage, libmemtriage.so, tests/fx_*)
# and MT_SRC (the source tree); ctest sets both.  Gives a private temporary
# directory $T, removed on exit, and these functions:
#
#   fail MSG...                  print "FAIL: <test>: MSG" on stderr, exit 1
#   skip MSG...                  print "SKIP: ..." and exit 77 (ctest: skipped)
#   expect_eq WHAT WANT GOT      fail "WHAT: expected WANT, got GOT" unless equal
#   record NAME CMD [ARGS...]    run CMD under `memtriage run`: trace $T/NAME.trace,
#                                report $T/NAME.txt, CMD's stdout $T/NAME.out and
#                                stderr $T/NAME.err, exit status in $RC
#   summary REPORT KEY           print one SUMMARY figure of a text report; KEY is
#                                calls | peak | leaked | leaked_blocks | temporary
#   check_summary NAME CALLS PEAK LEAKED LEAKED_BLOCKS TEMPORARY
#                                compare the SUMMARY of $T/NAME.txt to expected
#                                values ("-" skips one); on a mismatch prints
#                                every difference and the report, then fails
#   fixture NAME                 path of fixture program NAME
#   info FILE KEY                value of KEY in a fixture's $FX_INFO file
#   top_stack REPORT LIST N      entry #N of a report's top list, LIST being the
#                                title's end: LEAKED, PEAK, CALLS or TEMPORARY
#   same_stdout_as_bare NAME CMD [ARGS...]
#                                run CMD bare; fail unless its stdout and exit
#                                status equal those recorded by `record NAME`
#
# Run directly (bash tests/e2e/lib.sh, which ctest does as e2e/lib), it
# checks its own report parsers against a sample report.

: "${MT_BIN:?MT_BIN must name the build directory}"
: "${MT_SRC:?MT_SRC must name the source directory}"

MT="$MT_BIN/memtriage"
TEST_NAME="$(basename "$0" .sh)"
T="$(mktemp -d "${TMPDIR:-/tmp}/mt-e2e-$TEST_NAME.XXXXXX")"
trap 'rm -rf "$T"' EXIT
RC=0

fail()
{
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

skip()
{
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

expect_eq()
{
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

fixture()
{
	local p="$MT_BIN/tests/$1"
	[ -x "$p" ] || fail "fixture '$p' is not built"
	echo "$p"
}

[ -x "$MT" ] || fail "'$MT' is not built"

record()
{
	local name="$1"
	shift
	RC=0
	"$MT" run -o "$T/$name.trace" --report "$T/$name.txt" -- "$@" \
		>"$T/$name.out" 2>"$T/$name.err" || RC=$?
	[ -s "$T/$name.txt" ] || {
		cat "$T/$name.err" >&2
		fail "memtriage run wrote no report for '$*' (exit status $RC)"
	}
}

# The SUMMARY lines have fixed prefixes and plain integers (src/report/text.c):
#   calls to allocation functions: N ...
#   peak heap: N bytes ...
#   leaked at exit: N bytes in M blocks ...
#   temporary allocations: N ...
summary()
{
	local report="$1" key="$2" v
	case "$key" in
	calls)         v=$(sed -n 's/^calls to allocation functions: \([0-9][0-9]*\).*/\1/p' "$report") ;;
	peak)          v=$(sed -n 's/^peak heap: \([0-9][0-9]*\) bytes.*/\1/p' "$report") ;;
	leaked)        v=$(sed -n 's/^leaked at exit: \([0-9][0-9]*\) bytes in [0-9][0-9]* blocks.*/\1/p' "$report") ;;
	leaked_blocks) v=$(sed -n 's/^leaked at exit: [0-9][0-9]* bytes in \([0-9][0-9]*\) blocks.*/\1/p' "$report") ;;
	temporary)     v=$(sed -n 's/^temporary allocations: \([0-9][0-9]*\).*/\1/p' "$report") ;;
	*)             fail "summary: unknown key '$key'" ;;
	esac
	[ "$(printf '%s\n' "$v" | grep -c .)" = 1 ] ||
		fail "report '$report' has no single SUMMARY line for '$key' (got '$v')"
	echo "$v"
}

check_summary()
{
	local name="$1" report="$T/$1.txt" bad="" key want got
	shift
	for key in calls peak leaked leaked_blocks temporary; do
		want="$1"
		shift
		[ "$want" = - ] && continue
		got=$(summary "$report" "$key")
		[ "$got" = "$want" ] || bad="$bad
  $key: expected $want, got $got"
	done
	if [ -n "$bad" ]; then
		echo "---- report $report" >&2
		sed -n '1,/^SIZE HISTOGRAM/p' "$report" >&2
		fail "$name: SUMMARY differs from the ground truth:$bad"
	fi
}

# Value of KEY in a fixture's FX_INFO file (lines KEY=VALUE).
info()
{
	local v
	v=$(sed -n "s/^$2=//p" "$1" | tail -n 1)
	[ -n "$v" ] || fail "fixture info '$1' has no '$2'"
	echo "$v"
}

top_stack()
{
	local title
	case "$2" in
	LEAKED)    title="TOP STACKS BY BYTES LEAKED" ;;
	PEAK)      title="TOP STACKS BY LIVE HEAP AT THE PEAK" ;;
	CALLS)     title="TOP STACKS BY ALLOCATION CALLS" ;;
	TEMPORARY) title="TOP STACKS BY TEMPORARY" ;;
	*)         fail "top_stack: unknown list '$2'" ;;
	esac
	awk -v title="$title" -v n="#$3" '
		index($0, title) == 1 { insec = 1; next }
		insec && /^[A-Z]/     { insec = 0; inent = 0 }
		insec && /^#/         { inent = ($1 == n) }
		insec && inent        { print }
	' "$1"
}

same_stdout_as_bare()
{
	local name="$1" brc=0
	shift
	"$@" >"$T/$name.bare.out" 2>/dev/null || brc=$?
	expect_eq "$name: exit status under memtriage run (bare run: $brc)" "$brc" "$RC"
	cmp -s "$T/$name.bare.out" "$T/$name.out" || {
		diff "$T/$name.bare.out" "$T/$name.out" | head -20 >&2
		fail "$name: stdout under memtriage run differs from the bare run"
	}
}

# ---- self-test, when run as a script rather than sourced ----------------
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	cat >"$T/sample.txt" <<'SAMPLE'
MEMTRIAGE REPORT

SUMMARY
calls to allocation functions: 1128 (2,660,377 per second)
free calls: 1116
temporary allocations: 100 (8.9% of calls)
peak heap: 412000 bytes (402 KiB) in 1000 blocks at 275.5 us
leaked at exit: 28000 bytes in 7 blocks (27.3 KiB)

TOP STACKS BY BYTES LEAKED AT EXIT (27.3 KiB)
#1  27.3 KiB leaked in 7 blocks (100.0%); 7 calls, 0 B at peak
      at leak_block (fx_single.c:101)
      at main (fx_single.c:131)
#2  1 B leaked in 1 block (0.0%); 1 call, 0 B at peak
      at other (x.c:1)

TOP STACKS BY ALLOCATION CALLS
#1  1,000 calls (88.7%), 402 KiB allocated; 0 temporary, 402 KiB at peak
      at phase_a (fx_single.c:47)
SAMPLE
	cp "$T/sample.txt" "$T/sample2.txt"
	expect_eq "calls" 1128 "$(summary "$T/sample.txt" calls)"
	expect_eq "peak" 412000 "$(summary "$T/sample.txt" peak)"
	expect_eq "leaked" 28000 "$(summary "$T/sample.txt" leaked)"
	expect_eq "leaked_blocks" 7 "$(summary "$T/sample.txt" leaked_blocks)"
	expect_eq "temporary" 100 "$(summary "$T/sample.txt" temporary)"
	check_summary sample 1128 412000 28000 7 100
	check_summary sample2 - - 28000 - -
	expect_eq "leaked #1 frames" 3 "$(top_stack "$T/sample.txt" LEAKED 1 | wc -l)"
	top_stack "$T/sample.txt" LEAKED 1 | grep -q 'at leak_block ' || fail "top_stack LEAKED 1"
	top_stack "$T/sample.txt" LEAKED 2 | grep -q 'at other ' || fail "top_stack LEAKED 2"
	expect_eq "no leaked #3" "" "$(top_stack "$T/sample.txt" LEAKED 3)"
	top_stack "$T/sample.txt" CALLS 1 | grep -q 'at phase_a ' || fail "top_stack CALLS 1"
	echo "lib.sh: helpers ok"
fi
