#!/usr/bin/env bash
# fx_aligned: posix_memalign, aligned_alloc, memalign, valloc and pvalloc
# each counted with their requested size (tests/fixtures/fx_aligned.c).
# dhat aborts on pvalloc and heaptrack hooks neither memalign nor pvalloc,
# so the truth is the fixture's own; the other calls agree with both.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_aligned)
record aligned "$fx"
same_stdout_as_bare aligned "$fx"
#             calls peak   leaked blocks temporary
check_summary aligned 6   17196  2000   1      1
for f in posix_memalign aligned_alloc memalign valloc pvalloc; do
	grep -q "^$f  *[0-9]" "$T/aligned.txt" || fail "ALLOCATION FUNCTIONS: no line for $f"
done
grep -q '^posix_memalign  *2 ' "$T/aligned.txt" || fail "ALLOCATION FUNCTIONS: expected 2 posix_memalign calls"
echo "aligned: ok"
