#!/usr/bin/env bash
# fx_threads: 4 threads, cross-thread frees through a mailbox and a queue,
# a freed address handed out again at once on another thread, a barrier-
# synchronised peak (tests/fixtures/fx_threads.c).  Besides the fixture's
# own 12,020 calls, glibc's pthread_create callocs one DTV per thread (D
# bytes, which depends on the TLS modules loaded, the recorder's included;
# the fixture reports D through FX_INFO).  dhat agrees: 12,024 blocks,
# t-gmax 2,621,440 + 4 x 272 B.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_threads)
FX_INFO="$T/threads.info" record threads "$fx"
same_stdout_as_bare threads "$fx"
d=$(info "$T/threads.info" dtv_bytes)
#             calls  peak                 leaked            blocks temporary
check_summary threads 12024 $((2621440 + 4 * d)) $((1000 + 4 * d)) 8      0
grep -q '^anomalies:' "$T/threads.txt" &&
	fail "the report shows anomalies (allocation of a live address: cross-thread order broken): $(grep '^anomalies:' "$T/threads.txt")"
grep -q '^frees of unknown blocks:' "$T/threads.txt" &&
	fail "the report shows frees of unknown blocks: $(grep '^frees of unknown' "$T/threads.txt")"
for n in 1 2; do
	e=$(top_stack "$T/threads.txt" LEAKED $n)
	if grep -q '1000 B leaked in 4 blocks' <<<"$e"; then
		grep -q '^ *at leak ' <<<"$e" || fail "the 1000 B leak's stack lacks leak(): $e"
		echo "threads: ok (D = $d B)"
		exit 0
	fi
done
fail "no '1000 B leaked in 4 blocks' entry among the top 2 leaked stacks"
