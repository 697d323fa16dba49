#!/usr/bin/env bash
# The verdict (src/analyze/verdict.c, docs/verdict.md) of every built-in
# workload under every allocator configuration: 4 workloads x 4 configs,
# each recorded for 2-5 s with 20 ms samples (the parameters of diagnose.sh).
#
#   config     environment of `memtriage run`
#   glibc      MALLOC_ARENA_MAX=16 (glibc's default on 2 cores, forced so the
#              result does not depend on this machine's cores)
#   arena2     MALLOC_ARENA_MAX=2
#   jemalloc   MALLOC_ARENA_MAX=16 LD_PRELOAD=libjemalloc.so.2 (skipped if absent)
#   mimalloc   MALLOC_ARENA_MAX=16 LD_PRELOAD=libmimalloc.so.2 (skipped if absent)
#
# Expected class, the workload's ground truth whatever the allocator:
#   leak      LIVE-HEAP GROWTH     (the live heap comes from the trace, not
#                                   the allocator, so it holds under all four)
#   plateau   POOLING PLATEAU
#   nonheap   NON-HEAP GROWTH      (mmaps and parked threads; the heap is flat)
#   frontend  ALLOCATOR RETENTION  (--concurrency 48 --payload 200K) under
#             glibc, jemalloc and mimalloc (measured: 197-276 MiB free or
#             RSS - live heap against a 55-68 MiB live heap).
#   frontend under arena2: much less retention.  Measured on 2 cores:
#             allocator-held free 64-81 MiB against a 58-74 MiB live heap,
#             free / live 1.04-1.58 over 7 runs: at the rule's threshold
#             (1.0, utilization <= 50%), so the class may be ALLOCATOR
#             RETENTION at low or medium confidence (never high: free is
#             < 3 x the 32 MiB floor), POOLING PLATEAU or NO SIGNIFICANT
#             GROWTH.  What is asserted: one of those, not high, and its
#             allocator-held free at most 60% of the glibc (16 arenas) run's.
#
# Under jemalloc and mimalloc there is no mallinfo2: every report must say
# "allocator statistics unavailable: evidence from RSS minus live heap" and
# have no GLIBC ARENAS section; under glibc it must have mallinfo2 evidence
# unless the recorder stopped sampling it (then the same line, with the reason).
#
# Every cell is checked, then all the wrong ones are listed together.
# About 60 s on 2 idle cores.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LEAK="LIVE-HEAP GROWTH (leak or unbounded cache)"
RETENTION="ALLOCATOR RETENTION (fragmentation)"
PLATEAU="POOLING PLATEAU"
NONHEAP="NON-HEAP GROWTH"
NOGROWTH="NO SIGNIFICANT GROWTH"
FALLBACK='^allocator statistics unavailable: evidence from RSS minus live heap'

declare -A ARGS=(
	[leak]="leak --cycles 10 --requests 300 --hold-ms 5"
	[plateau]="plateau --cycles 12 --requests 300 --cache-entries 500 --entry-bytes 48K --hold-ms 5"
	[nonheap]="nonheap --cycles 12 --requests 200 --hold-ms 5 --mmap-bytes 4M --threads-per-cycle 4 --stack-touch 256K"
	[frontend]="frontend --concurrency 48 --payload 200K"
)
declare -A WANT=([leak]="$LEAK" [plateau]="$PLATEAU" [nonheap]="$NONHEAP" [frontend]="$RETENTION")

find_lib()
{
	local d
	for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return; }
	done
	echo ""
}
declare -A PRELOAD=([glibc]="" [arena2]="" [jemalloc]="$(find_lib libjemalloc.so.2)"
                    [mimalloc]="$(find_lib libmimalloc.so.2)")

# rec CONFIG WORKLOAD: record `memtriage sim ARGS` under CONFIG into $T/CONFIG.WORKLOAD.*
rec()
{
	local cfg="$1" w="$2" name="$1.$2" rc=0 try
	local -a env=(MALLOC_ARENA_MAX=16)
	case "$cfg" in
	arena2)            env=(MALLOC_ARENA_MAX=2) ;;
	jemalloc|mimalloc) env+=("LD_PRELOAD=${PRELOAD[$cfg]}") ;;
	esac
	# shellcheck disable=SC2086
	env "${env[@]}" "$MT" run --interval 20 -o "$T/$name.trace" --report "$T/$name.txt" \
		-- "$MT" sim ${ARGS[$w]} >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	[ "$rc" = 0 ] && [ -s "$T/$name.txt" ] || {
		cat "$T/$name.err" >&2
		fail "$name: memtriage run of 'sim ${ARGS[$w]}' failed (exit status $rc)"
	}
	rm -f "$T/$name.trace"
}

# The report's "verdict: CLASS, confidence C" line, split.
verdict()    { sed -n 's/^verdict: \(.*\), confidence [a-z]*$/\1/p' "$T/$1.txt"; }
confidence() { sed -n 's/^verdict: .*, confidence \([a-z]*\)$/\1/p' "$T/$1.txt"; }

# bytes "1.23 MiB": the size in bytes (B, KiB, MiB, GiB).
bytes()
{
	awk '{ m = $2 == "GiB" ? 2^30 : $2 == "MiB" ? 2^20 : $2 == "KiB" ? 1024 : 1; printf "%.0f\n", $1 * m }' <<<"$1"
}

# evidence NAME LABEL: the measured figure of the EVIDENCE line whose figure starts with LABEL.
evidence()
{
	awk -v label="$2" '
		/^EVIDENCE$/ { on = 1; next }
		on && /^$/   { exit }
		on && ($1 == "yes" || $1 == "no") {
			line = $0
			sub(/^(yes|no) +/, "", line)
			if (index(line, label) != 1) next
			if (substr(line, length(label) + 1) !~ /^ +[-0-9.]/) next
			sub(/ +(>=|<) .*$/, "", line)
			n = split(line, f, / +/)
			if (f[n] ~ /^(B|KiB|MiB|GiB)$/) print f[n - 1], f[n]; else print f[n]
			exit
		}' "$T/$1.txt"
}

# Retention figures (the ratio and the mean, whichever evidence the report used).
free_ratio()
{
	local v
	v=$(evidence "$1" "allocator-held free (footprint - live) / live heap")
	[ -n "$v" ] || v=$(evidence "$1" "(RSS - live heap - recorder) / live heap")
	echo "$v"
}
free_mean()
{
	local v
	v=$(evidence "$1" "allocator-held free, mean after warm-up")
	[ -n "$v" ] || v=$(evidence "$1" "RSS - live heap - recorder, mean after warm-up")
	bytes "$v"
}

BAD=""
bad()
{
	BAD="$BAD
  $1: $2"
	{
		echo "---- $1: $2"
		sed -n '/^VERDICT$/,/^REMEDIES$/p' "$T/$1.txt"
	} >&2
}

# key figures of a cell, for the log
figures()
{
	local n="$1" rss
	rss=$(sed -n 's/^peak RSS: [0-9]* bytes (\(.*\))$/\1/p' "$T/$n.txt")
	printf 'heap rise/mean %s, nonheap rise %s, free/live %s, free mean %s MiB, plateau %s, peak RSS %s' \
		"$(evidence "$n" "live heap after warm-up: rise / mean live heap")" \
		"$(evidence "$n" "non-heap rise after warm-up")" \
		"$(free_ratio "$n")" "$(awk -v b="$(free_mean "$n")" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$(evidence "$n" "live-heap plateau: share of the run")" "$rss"
}

for cfg in glibc arena2 jemalloc mimalloc; do
	if [[ "$cfg" = jemalloc || "$cfg" = mimalloc ]] && [ -z "${PRELOAD[$cfg]}" ]; then
		echo "  $cfg: not installed, skipped"
		continue
	fi
	for w in leak plateau nonheap frontend; do
		n="$cfg.$w"
		rec "$cfg" "$w"
		got=$(verdict "$n")
		conf=$(confidence "$n")
		echo "  $n: $got, $conf; $(figures "$n")"
		# the evidence the verdict used
		case "$cfg" in
		jemalloc|mimalloc)
			grep -q "$FALLBACK" "$T/$n.txt" ||
				bad "$n" "no mallinfo2, but no 'allocator statistics unavailable' line"
			grep -A1 "$FALLBACK" "$T/$n.txt" | grep -q 'not glibc' ||
				bad "$n" "the fallback line does not say the allocator is not glibc's"
			! grep -q '^GLIBC ARENAS' "$T/$n.txt" || bad "$n" "a GLIBC ARENAS section"
			;;
		*)
			# the recorder may stop sampling mallinfo2 (a call over 5 ms, e.g. 48
			# busy arenas on a loaded machine): then the report must say so
			grep -q '^GLIBC ARENAS' "$T/$n.txt" || grep -q "$FALLBACK" "$T/$n.txt" ||
				bad "$n" "neither a GLIBC ARENAS section nor the fallback line"
			;;
		esac
		if [ "$n" = arena2.frontend ]; then
			case "$got" in
			"$RETENTION"|"$PLATEAU"|"$NOGROWTH") ;;
			*) bad "$n" "verdict '$got': expected little or no retention" ;;
			esac
			[ "$conf" != high ] || bad "$n" "verdict '$got' at high confidence"
		elif [ "$got" != "${WANT[$w]}" ]; then
			bad "$n" "verdict '$got' ($conf), expected '${WANT[$w]}'"
		fi
	done
done

# Fewer arenas, much less free memory held (measured: 64-81 MiB against 197-280 MiB).
f16=$(free_mean glibc.frontend)
f2=$(free_mean arena2.frontend)
echo "  frontend free memory after warm-up: 16 arenas $f16 bytes, 2 arenas $f2 bytes"
awk -v a="$f2" -v b="$f16" 'BEGIN { exit !(b > 0 && a <= 0.6 * b) }' ||
	BAD="$BAD
  arena2.frontend: free held $f2 bytes, not well below 16 arenas' $f16 bytes"

[ -z "$BAD" ] || fail "wrong cells:$BAD"
echo "diagnose_matrix: ok"
