#!/usr/bin/env bash
# fx_realloc: realloc(NULL, n), growth past the mmap threshold, shrink,
# realloc(p, 0), reallocarray, a failed realloc that leaves its block live,
# malloc(0).  Ground truth in tests/fixtures/fx_realloc.c; dhat agrees on
# t-gmax 300,000 B and t-end 3,000 B in 1 block (it counts neither the
# failed call nor realloc(p, 0) as a block: 19 blocks).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_realloc)
record realloc "$fx"
same_stdout_as_bare realloc "$fx"
#             calls peak    leaked blocks temporary
check_summary realloc 21  300000  3000   1      1
grep -q '^failed allocations: 1 ' "$T/realloc.txt" ||
	fail "expected 'failed allocations: 1' (the realloc to SIZE_MAX / 2)"
grep -q '^reallocarray  *2 ' "$T/realloc.txt" || fail "ALLOCATION FUNCTIONS: expected 2 reallocarray calls"
echo "realloc: ok"
