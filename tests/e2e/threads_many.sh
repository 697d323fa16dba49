#!/usr/bin/env bash
# fx_threads_many: 2000 short-lived threads in 40 batches of 50, each
# allocating and freeing 3 blocks around a batch barrier
# (tests/fixtures/fx_threads_many.c).  Thread stacks are cached and reused,
# so glibc callocs exactly 50 DTVs of D bytes (reported through FX_INFO),
# live at the peak and at exit.  dhat agrees: 6,052 blocks, t-gmax
# 1,048,576 + 50 x 272 B.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_threads_many)
FX_INFO="$T/many.info" record many "$fx"
same_stdout_as_bare many "$fx"
d=$(info "$T/many.info" dtv_bytes)
#             calls peak                    leaked             blocks temporary
check_summary many 6052 $((1048576 + 50 * d)) $((4096 + 50 * d)) 51     2001
threads=$(sed -n 's/^process: .*, \([0-9][0-9]*\) threads.*/\1/p' "$T/many.txt")
expect_eq "threads in the report header" 2001 "$threads"
echo "threads_many: ok (D = $d B)"
