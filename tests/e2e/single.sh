#!/usr/bin/env bash
# fx_single under `memtriage run`: the exact SUMMARY of a one-thread program
# (tests/fixtures/fx_single.c states the ground truth; valgrind dhat agrees:
# 459,690 bytes in 1,128 blocks, t-gmax 412,000, t-end 28,000 in 7),
# unchanged stdout and exit status, and the leak's call stack by name.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_single)
record single "$fx"
same_stdout_as_bare single "$fx"
#             calls  peak    leaked blocks temporary
check_summary single 1128   412000  28000  7      100
top_stack "$T/single.txt" LEAKED 1 | grep -q '^ *at leak_block ' ||
	fail "top leaked stack does not name leak_block: $(top_stack "$T/single.txt" LEAKED 1)"
top_stack "$T/single.txt" TEMPORARY 1 | grep -q '^ *at temporary ' ||
	fail "top temporary stack does not name temporary(): $(top_stack "$T/single.txt" TEMPORARY 1)"
grep -q '^calloc  *10 ' "$T/single.txt" || fail "ALLOCATION FUNCTIONS: expected 10 calloc calls"
grep -q '^realloc  *5 ' "$T/single.txt" || fail "ALLOCATION FUNCTIONS: expected 5 realloc calls"
echo "single: ok"
