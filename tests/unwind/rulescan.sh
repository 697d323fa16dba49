#!/bin/bash
# Static survey: for every call instruction in the given shared libraries,
# would a stack through its return address fall back?  (rulescan.c)
# usage: rulescan.sh [build dir] [lib...]
OUT=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/unwind-tests}
shift
LIBS=${*:-/lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libstdc++.so.6
	/lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libm.so.6
	/lib64/ld-linux-x86-64.so.2}
for lib in $LIBS; do
	real=$(readlink -f "$lib")
	# "addr: call ..." followed by the next instruction's address = return address
	objdump -d --no-show-raw-insn "$real" | awk '
		/^[0-9a-f]+ <.*>:$/ { fn = $2; gsub(/[<>:]/, "", fn); next }
		/^ *[0-9a-f]+:/ { addr = $1; sub(":", "", addr)
			if (pending) { print addr, pfn; pending = 0 }
			if ($2 ~ /^call/) { pending = 1; pfn = fn } }' |
		"$OUT/rulescan" "$lib"
done
