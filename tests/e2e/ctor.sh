#!/usr/bin/env bash
# fx_ctor: allocations before main, in the constructor of the executable and
# in that of libfxctor.so, which runs before the recorder's own constructor
# (tests/fixtures/fx_ctor.c, libfxctor.c).  dhat agrees: 7,562 B in 6 blocks,
# t-gmax 7,306 B.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_ctor)
record ctor "$fx"
same_stdout_as_bare ctor "$fx"
#             calls peak  leaked blocks temporary
check_summary ctor  6    7306  3333   1      0
top_stack "$T/ctor.txt" LEAKED 1 | grep -q '^ *at early_init ' ||
	fail "top leaked stack does not name early_init: $(top_stack "$T/ctor.txt" LEAKED 1)"
echo "ctor: ok"
