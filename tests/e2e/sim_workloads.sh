#!/usr/bin/env bash
# `memtriage sim leak | plateau | nonheap`: their output format and options,
# and that each shows the memory behaviour built into it, bare (the RSS
# lines they print) and under `memtriage run` (the report's SUMMARY against
# the model's own figures, which -v prints on stderr):
#
#   leak     RSS grows with the requests; leaked at exit = the cache, to
#            the byte and the block, from cache_insert_unbounded
#   plateau  RSS and the model's cache rise during warm-up, then stay level;
#            nothing leaked (the cache is freed at exit)
#   nonheap  RSS grows by the mmaps and parked thread stacks while the peak
#            heap stays at the requests' temporaries; nothing leaked
#
# The workers run on stacks the workloads map themselves, so glibc frees
# their DTVs at join: no pthread_create DTVs among the leaks either.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# rss FILE CYCLE: the MB printed after CYCLE (0: the initial line).
rss()
{
	local v
	if [ "$2" = 0 ]; then
		v=$(sed -n 's/^initial: rss=\([0-9][0-9]*\) MB$/\1/p' "$1")
	else
		v=$(sed -n "s/^cycle $2: rss=\([0-9][0-9]*\) MB .*/\1/p" "$1")
	fi
	[ -n "$v" ] || fail "no RSS for cycle $2 in $1: $(cat "$1")"
	echo "$v"
}

# model FILE KEY: KEY=N of the 'model:' line that -v prints on stderr.
model()
{
	local v
	v=$(sed -n "s/^model: \(.* \)\{0,1\}$2=\([0-9][0-9]*\)\( .*\)\{0,1\}\$/\2/p" "$1")
	[ -n "$v" ] || fail "no model figure '$2' in $1: $(cat "$1")"
	echo "$v"
}

# check_format FILE CYCLES REQUESTS: "initial: rss=N MB", then one line per cycle.
check_format()
{
	local c
	grep -Eq '^initial: rss=[0-9]+ MB$' <(sed -n 1p "$1") || fail "$1: first line: $(sed -n 1p "$1")"
	for c in $(seq "$2"); do
		grep -Eq "^cycle $c: rss=[0-9]+ MB requests=$3 throughput=[0-9]+ req/s\$" "$1" ||
			fail "$1: no well-formed 'cycle $c:' line in: $(cat "$1")"
	done
	expect_eq "$1: lines of output" $(($2 + 1)) "$(wc -l <"$1")"
}

# bare NAME ARGS...: runs `memtriage sim ARGS...` bare, stdout $T/NAME.out, stderr $T/NAME.err.
bare()
{
	local name="$1" rc=0
	shift
	"$MT" sim "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	[ "$rc" = 0 ] || { cat "$T/$name.err" >&2; fail "sim $* exited with $rc"; }
}

# ---- CLI --------------------------------------------------------------------
"$MT" sim --help >"$T/help.out"
for w in leak plateau nonheap; do
	grep -q "^  $w " "$T/help.out" || fail "'sim --help' does not list $w"
	"$MT" sim $w --help >"$T/$w.help" || fail "sim $w --help failed"
	grep -q "^usage: memtriage sim $w" "$T/$w.help" || fail "sim $w --help: $(head -1 "$T/$w.help")"
	for o in --cycles --requests --workers --payload --hold-ms --seed --verbose; do
		grep -q -- "$o" "$T/$w.help" || fail "sim $w --help does not mention $o"
	done
	RC=0
	"$MT" sim $w --no-such-option 2>"$T/err" || RC=$?
	expect_eq "sim $w --no-such-option: exit status" 2 "$RC"
	grep -q "unknown option '--no-such-option'" "$T/err" || fail "sim $w: $(cat "$T/err")"
	RC=0
	"$MT" sim $w --cycles 0 2>"$T/err" || RC=$?
	expect_eq "sim $w --cycles 0: exit status" 2 "$RC"
done
RC=0
"$MT" sim leak --leak-bytes 5 2>/dev/null || RC=$?
expect_eq "sim leak --leak-bytes 5 (less than an entry): exit status" 2 "$RC"

# ---- leak -------------------------------------------------------------------
# 500 requests x 8 KiB = 3.9 MiB more live heap per cycle; RSS follows.
cycles=4 requests=500 leak=8192
bare leak leak -v --cycles $cycles --requests $requests --leak-bytes 8K --hold-ms 1
check_format "$T/leak.out" $cycles $requests
expect_eq "leak: model's leaked bytes" $((cycles * requests * leak)) "$(model "$T/leak.err" leaked_bytes)"
grown=$(($(rss "$T/leak.out" $cycles) - $(rss "$T/leak.out" 1)))
want=$(((cycles - 1) * requests * leak * 3 / 4 >> 20))
echo "  leak: RSS $(rss "$T/leak.out" 1) -> $(rss "$T/leak.out" $cycles) MB over cycles 1-$cycles (at least $want MB expected)"
[ "$grown" -ge "$want" ] || fail "leak: RSS grew $grown MB from cycle 1 to $cycles, expected >= $want MB"

# The control, --leak-bytes 0: the same requests, RSS flat.
bare noleak leak --cycles $cycles --requests $requests --leak-bytes 0 --hold-ms 1
grown=$(($(rss "$T/noleak.out" $cycles) - $(rss "$T/noleak.out" 1)))
[ "$grown" -le 1 ] || fail "leak --leak-bytes 0: RSS grew $grown MB from cycle 1 to $cycles"

# Recorded (default --leak-bytes 4096): leaked at exit is exactly the cache.
record leak "$MT" sim leak -v --cycles 3 --requests 300 --hold-ms 1
expect_eq "sim leak exit status" 0 "$RC"
check_format "$T/leak.out" 3 300
mbytes=$(model "$T/leak.err" leaked_bytes)
mblocks=$(model "$T/leak.err" leaked_blocks)
expect_eq "leak: model's leaked bytes" $((3 * 300 * 4096)) "$mbytes"
expect_eq "leak: model's leaked blocks" 900 "$mblocks"
check_summary leak - - "$mbytes" "$mblocks" -
e=$(top_stack "$T/leak.txt" LEAKED 1)
grep -q '^ *at cache_insert_unbounded ' <<<"$e" || fail "leak: top leaked stack lacks cache_insert_unbounded: $e"
grep -q " leaked in $mblocks blocks " <<<"$e" || fail "leak: top leaked stack does not hold all $mblocks blocks: $e"
expect_eq "leak: a second leaked stack" "" "$(top_stack "$T/leak.txt" LEAKED 2)"
peak=$(summary "$T/leak.txt" peak)
[ "$peak" -ge "$mbytes" ] || fail "leak: peak heap $peak < the leaked $mbytes"
echo "  leak: leaked at exit $mbytes bytes in $mblocks blocks = the model's; peak heap $peak"

# ---- plateau ----------------------------------------------------------------
# 500 entries of 24-72 KiB (about 24 MiB), 2000 keys: full during cycle 2,
# a full turnover of the entries every 2 cycles or so.  The model's cache
# is level from cycle 2 on; glibc's RSS creeps 2-4 MB more while entries of
# mixed sizes fragment its bins and the 4 workers' arenas settle, and is
# level after about 4 turnovers (measured on 2 cores: 16 27 28 29 29 29 29
# 30 30 30 31 31 31 31 31 31).  Judged: RSS over cycles 9-16, the model's
# cache over cycles 3-16.
cycles=16 requests=300 entries=500 from=9
bare plateau plateau -v --cycles $cycles --requests $requests --cache-entries $entries \
	--entry-bytes 48K --hold-ms 1
check_format "$T/plateau.out" $cycles $requests
expect_eq "plateau: model's entries at the end" $entries "$(model "$T/plateau.err" cache_entries)"
cache=$(model "$T/plateau.err" cache_bytes)
lo= hi= mlo= mhi=
for c in $(seq 3 $cycles); do
	m=$(sed -n "s/^cycle $c: model cache \([0-9][0-9]*\) bytes in $entries entries .*/\1/p" "$T/plateau.err")
	[ -n "$m" ] || fail "plateau: no full-cache model line for cycle $c: $(cat "$T/plateau.err")"
	if [ -z "$mlo" ]; then mlo=$m mhi=$m; fi
	if [ "$m" -lt "$mlo" ]; then mlo=$m; fi
	if [ "$m" -gt "$mhi" ]; then mhi=$m; fi
	[ "$c" -ge $from ] || continue
	r=$(rss "$T/plateau.out" $c)
	if [ -z "$lo" ]; then lo=$r hi=$r; fi
	if [ "$r" -lt "$lo" ]; then lo=$r; fi
	if [ "$r" -gt "$hi" ]; then hi=$r; fi
done
echo "  plateau: RSS $(for c in $(seq 0 $cycles); do printf '%s ' "$(rss "$T/plateau.out" $c)"; done)MB"
echo "  plateau: cycles $from-$cycles: RSS $lo-$hi MB; cycles 3-$cycles: model cache $mlo-$mhi bytes"
tol=$((hi * 6 / 100))
[ "$tol" -ge 2 ] || tol=2
[ $((hi - lo)) -le "$tol" ] || fail "plateau: RSS of cycles $from-$cycles spans $lo-$hi MB, more than $tol MB"
[ $(((mhi - mlo) * 100)) -le $((mhi * 5)) ] ||
	fail "plateau: the model's cache spans $mlo-$mhi bytes in cycles 3-$cycles, more than 5%"
# It rose during warm-up: by most of the cache, and cycle 1 was below the level.
[ $((($(rss "$T/plateau.out" $cycles) - $(rss "$T/plateau.out" 0)) << 20)) -ge $((cache * 8 / 10)) ] ||
	fail "plateau: RSS rose less than 80% of the cache's $cache bytes"
[ "$(rss "$T/plateau.out" 1)" -lt "$lo" ] || fail "plateau: no warm-up: cycle 1 already at $(rss "$T/plateau.out" 1) MB"

# Recorded: nothing leaked; the peak heap is the cache's peak plus what the
# workers hold (per worker: body, response, an entry built and one evicted).
record plateau "$MT" sim plateau -v --cycles 4 --requests 300 --cache-entries 300 \
	--entry-bytes 16K --hold-ms 1
expect_eq "sim plateau exit status" 0 "$RC"
check_format "$T/plateau.out" 4 300
check_summary plateau - - 0 0 -
mpeak=$(model "$T/plateau.err" cache_peak_bytes)
peak=$(summary "$T/plateau.txt" peak)
slack=$((4 * (16384 * 5 / 4 + 2 * 24576)))
[ "$peak" -ge "$mpeak" ] && [ "$peak" -le $((mpeak + slack)) ] ||
	fail "plateau: peak heap $peak, expected the model's cache peak $mpeak + at most $slack"
echo "  plateau: leaked at exit 0; peak heap $peak = model's cache peak $mpeak + $((peak - mpeak))"

# ---- nonheap ----------------------------------------------------------------
# Per cycle 8 MiB of mmap and 8 threads x 256 KiB of stack: RSS +10 MiB.
cycles=4
args=(sim nonheap -v --cycles $cycles --requests 200 --mmap-bytes 8M --threads-per-cycle 8
      --stack-touch 256K --hold-ms 1)
bare nonheap "${args[@]:1}"
check_format "$T/nonheap.out" $cycles 200
expect_eq "nonheap: model's mmap'd bytes" $((cycles << 23)) "$(model "$T/nonheap.err" mmap_bytes)"
expect_eq "nonheap: model's threads" $((cycles * 8)) "$(model "$T/nonheap.err" threads)"
for c in $(seq 1 $cycles); do
	d=$(($(rss "$T/nonheap.out" $c) - $(rss "$T/nonheap.out" $((c - 1)))))
	[ "$d" -ge 8 ] || fail "nonheap: RSS grew $d MB in cycle $c, expected about 10"
done
echo "  nonheap: RSS $(for c in $(seq 0 $cycles); do printf '%s ' "$(rss "$T/nonheap.out" $c)"; done)MB"

# Recorded: RSS grows as bare while the peak heap stays at the requests'
# temporaries (plus the threads' DTVs, a few hundred bytes each); nothing leaked.
record nonheap "$MT" "${args[@]}"
expect_eq "sim nonheap exit status" 0 "$RC"
check_format "$T/nonheap.out" $cycles 200
check_summary nonheap - - 0 0 -
peak=$(summary "$T/nonheap.txt" peak)
hmax=$(model "$T/nonheap.err" request_heap_max)
grown=$((($(rss "$T/nonheap.out" $cycles) - $(rss "$T/nonheap.out" 0)) << 20))
[ "$grown" -ge $((cycles * 8 << 20)) ] || fail "nonheap: RSS grew $grown bytes under memtriage run"
[ "$peak" -le $((hmax + 65536)) ] ||
	fail "nonheap: peak heap $peak, expected at most the requests' $hmax + 64 KiB"
[ $((peak * 20)) -le "$grown" ] || fail "nonheap: peak heap $peak not small beside the RSS growth $grown"
echo "  nonheap: RSS +$((grown >> 20)) MB under memtriage run, peak heap $peak (requests at most $hmax)"
echo "sim_workloads: ok"
