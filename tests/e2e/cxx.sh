#!/usr/bin/env bash
# fx_cxx: new/delete, new[]/delete[], std::vector growth and std::string
# reach the recorder through libstdc++'s operator new -> malloc, and so does
# libstdc++'s 72,704 B emergency pool, allocated by a libstdc++ constructor
# before the recorder's own constructor runs (tests/fixtures/fx_cxx.cc).
# dhat: 17 blocks, t-gmax 79,900 B (it frees the pool at exit, we do not).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_cxx)
record cxx "$fx"
same_stdout_as_bare cxx "$fx"
#             calls peak   leaked blocks temporary
check_summary cxx  17   79900  73481  2      0
# The 777 B leak: operator new called from leak_chars().
found=0
for n in 1 2; do
	e=$(top_stack "$T/cxx.txt" LEAKED $n)
	if grep -q '777 B leaked in 1 block' <<<"$e"; then
		grep -q '^ *at leak_chars ' <<<"$e" || fail "the 777 B leak's stack lacks leak_chars: $e"
		grep -q 'operator new' <<<"$e" || fail "the 777 B leak's stack lacks operator new: $e"
		found=1
	fi
done
[ $found = 1 ] || fail "no '777 B leaked in 1 block' entry in the top leaked stacks"
echo "cxx: ok"
