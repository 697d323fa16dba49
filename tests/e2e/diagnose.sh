#!/usr/bin/env bash
# The verdict of a report (src/analyze/verdict.c, docs/verdict.md) on the
# built-in workloads, each recorded for a few seconds with 20 ms samples:
#
#   sim leak       LIVE-HEAP GROWTH, top owner cache_insert_unbounded
#   sim plateau    POOLING PLATEAU (the cache fills in the first cycle of 12)
#   sim nonheap    NON-HEAP GROWTH (mmaps and thread stacks; the heap is flat)
#   sim frontend   ALLOCATOR RETENTION with MALLOC_ARENA_MAX=2 and malloc_trim
#                  among the first remedies; with jemalloc preloaded, the
#                  verdict says it used RSS minus live heap instead of mallinfo2
#
# The verdict rules judge magnitudes against floors and ratios far from
# these workloads' figures (docs/verdict.md), so a loaded machine, which
# only stretches time, does not change the class.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# rec NAME ARGS...: `memtriage run --interval 20` of `memtriage sim ARGS...`.
RUN_OPTS=${RUN_OPTS:-}
rec()
{
	local name="$1" rc=0
	shift
	"$MT" run --interval 20 $RUN_OPTS -o "$T/$name.trace" --report "$T/$name.txt" -- "$MT" sim "$@" \
		>"$T/$name.out" 2>"$T/$name.err" || rc=$?
	[ "$rc" = 0 ] && [ -s "$T/$name.txt" ] || {
		cat "$T/$name.err" >&2
		fail "memtriage run of 'sim $*' failed (exit status $rc)"
	}
}

# verdict NAME: the class of the report's "verdict:" line.
verdict()
{
	sed -n 's/^verdict: \(.*\), confidence [a-z]*$/\1/p' "$T/$1.txt"
}

# expect_verdict NAME CLASS: fail with the report's verdict sections unless CLASS.
expect_verdict()
{
	local got
	got=$(verdict "$1")
	[ "$got" = "$2" ] || {
		sed -n '/^VERDICT$/,/^SUMMARY$/p' "$T/$1.txt" >&2
		fail "$1: verdict '$got', expected '$2'"
	}
	echo "  $1: $(grep -A1 '^verdict: ' "$T/$1.txt" | tr -s ' \n' ' ')"
}

# bytes "1.23 MiB": the size in bytes (B, KiB, MiB, GiB).
bytes()
{
	awk '{ m = $2 == "GiB" ? 2^30 : $2 == "MiB" ? 2^20 : $2 == "KiB" ? 1024 : 1; printf "%.0f\n", $1 * m }' <<<"$1"
}

# section NAME TITLE: the lines of a report section, up to the next blank line.
section()
{
	sed -n "/^$2/,/^\$/p" "$T/$1.txt"
}

# ---- leak ---------------------------------------------------------------------
rec leak leak --cycles 10 --requests 300 --hold-ms 5
expect_verdict leak "LIVE-HEAP GROWTH (leak or unbounded cache)"
grep -q '^  owner #1 .* cache_insert_unbounded' "$T/leak.txt" ||
	fail "leak: the first owner is not cache_insert_unbounded: $(grep '^  owner' "$T/leak.txt")"
section leak REMEDIES | grep -q 'cache_insert_unbounded' || fail "leak: no remedy names the owner"

# ---- plateau ------------------------------------------------------------------
rec plateau plateau --cycles 12 --requests 300 --cache-entries 500 --entry-bytes 48K --hold-ms 5
expect_verdict plateau "POOLING PLATEAU"
section plateau REMEDIES | grep -q 'size the memory limit' || fail "plateau: no limit remedy"

# ---- nonheap ------------------------------------------------------------------
rec nonheap nonheap --cycles 12 --requests 200 --hold-ms 5 --mmap-bytes 4M \
	--threads-per-cycle 4 --stack-touch 256K
expect_verdict nonheap "NON-HEAP GROWTH"
section nonheap REMEDIES | grep -q '^1\. threads: ' || fail "nonheap: no thread remedy first"

# ---- frontend: allocator retention --------------------------------------------
# MALLOC_ARENA_MAX=16, as in sim.sh: glibc's default (8 x cores) would make
# the result depend on the machine.
MALLOC_ARENA_MAX=16 RUN_OPTS=--trim-probe rec frontend frontend --concurrency 48 --payload 200K
expect_verdict frontend "ALLOCATOR RETENTION (fragmentation)"
rem=$(section frontend REMEDIES)
grep -q '^1\. .*arenas' <<<"$rem" || fail "frontend: MALLOC_ARENA_MAX is not the first remedy: $rem"
grep -q 'export MALLOC_ARENA_MAX=2' <<<"$rem" || fail "frontend: no MALLOC_ARENA_MAX=2 line: $rem"
grep -q 'name: MALLOC_ARENA_MAX' <<<"$rem" || fail "frontend: no Kubernetes env snippet: $rem"
grep -q '^2\. call malloc_trim(0)' <<<"$rem" || fail "frontend: malloc_trim is not remedy 2: $rem"
# the trim probe's measurement: what malloc_trim(0) gave back at exit
grep -Eq 'the trim probe gave back [0-9.]+ [KMG]iB' <<<"$rem" ||
	fail "frontend: the malloc_trim remedy does not quote the trim probe: $rem"
grep -q 'memtriage compare --configs glibc,arena2,trim,jemalloc,mimalloc -- ' <<<"$rem" ||
	fail "frontend: no compare line: $rem"
# An allocator is suggested only when it is installed.
for lib in $(sed -n 's/^ *LD_PRELOAD=\([^ ]*\) .*/\1/p' <<<"$rem"); do
	[ -e "$lib" ] || fail "frontend: remedy preloads '$lib', which does not exist"
done
# The arena section: mallinfo2's free memory far above what is in use, and
# the per-arena table from malloc_info.  The recorder halves its mallinfo2
# rate whenever a call takes more than 2% of the period (48 busy arenas on a
# loaded machine); with too few samples left the verdict says it used RSS
# minus live heap instead.
if grep -q '^GLIBC ARENAS' "$T/frontend.txt"; then
	arenas=$(section frontend 'GLIBC ARENAS')
	used=$(bytes "$(sed -n 's/^  in use (uordblks): *//p' <<<"$arenas")")
	free=$(bytes "$(sed -n 's/^  free in arenas (fordblks): *//p' <<<"$arenas")")
	echo "  frontend: arenas: in use $used bytes, free $free bytes"
	grep -q '^per arena (malloc_info at .*: [0-9]* arenas for [0-9]* threads' <<<"$arenas" ||
		fail "frontend: no per-arena table from malloc_info in the arena section"
	if grep -q '^allocator statistics unavailable' "$T/frontend.txt"; then
		echo "  frontend: mallinfo2 sampling stopped early; evidence from RSS minus live heap"
	else
		awk -v u="$used" -v f="$free" 'BEGIN { exit !(f >= 2 * u) }' ||
			fail "frontend: free in arenas $free bytes not well above in use $used bytes"
	fi
else
	grep -q '^allocator statistics unavailable' "$T/frontend.txt" ||
		fail "frontend: neither an arena section nor a fallback line"
fi

# ---- frontend under jemalloc: no mallinfo2, and the report says so ------------
je=""
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
	[ -e "$d/libjemalloc.so.2" ] && { je="$d/libjemalloc.so.2"; break; }
done
if [ -n "$je" ]; then
	LD_PRELOAD="$je" rec jemalloc frontend --concurrency 48 --payload 200K
	grep -q '^allocator statistics unavailable: evidence from RSS minus live heap' \
		"$T/jemalloc.txt" || fail "jemalloc: the verdict does not say which evidence it used"
	! grep -q '^GLIBC ARENAS' "$T/jemalloc.txt" || fail "jemalloc: a glibc arena section"
	echo "  jemalloc: $(grep -A1 '^verdict: ' "$T/jemalloc.txt" | tr -s ' \n' ' ')"
else
	echo "  jemalloc: not installed, skipped"
fi

# ---- too short ------------------------------------------------------------------
rec short leak --cycles 1 --requests 10 --hold-ms 0
expect_verdict short "TOO SHORT TO TELL"
echo "diagnose: ok"
