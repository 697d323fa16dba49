#!/usr/bin/env bash
# fx_fork: the parent allocates, forks; the child allocates, frees some of
# the parent's blocks and calls exit() (destructors and atexit handlers run
# in the child).  Only the parent is recorded, and the child must neither
# add events to the parent's trace nor finish it (tests/fixtures/fx_fork.c).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_fork)
record fork "$fx"
same_stdout_as_bare fork "$fx"
#             calls peak   leaked blocks temporary
check_summary fork  11   14321  4321   1      0
top_stack "$T/fork.txt" LEAKED 1 | grep -q '^ *at parent_leak ' ||
	fail "top leaked stack does not name parent_leak: $(top_stack "$T/fork.txt" LEAKED 1)"
if grep -q 'WARNING: the trace was cut' "$T/fork.txt"; then
	fail "the parent's trace is reported as cut (did the child close it?)"
fi
# The trace must still read cleanly on its own.
"$MT" report "$T/fork.trace" >"$T/fork2.txt" || fail "memtriage report of the fork trace failed"
expect_eq "report twice: calls" 11 "$(summary "$T/fork2.txt" calls)"
echo "fork: ok"
