#!/bin/bash
# Runs real programs under libunwcmp.so (shim.c) in compare mode: every
# malloc/calloc/realloc captures its stack with mt_unwind_capture and with
# unw_backtrace, and the lists are compared.  Prints one line per process
# and a total.  usage: realworld.sh [build dir] [memo: 0|1|2, default 2 =
# the memo on every capture, so that reuse is checked as much as possible]
set -u
OUT=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/unwind-tests}
SHIM=$OUT/libunwcmp.so
export UNWCMP_MEMO=${2:-2}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LOG=$OUT/realworld.log
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
rm -f "$LOG"
PY=$(python3 -c 'import sys; print(sys.executable)')

run() {   # run <label> <command...>
	echo "== $1" >>"$LOG"
	shift
	UNWCMP_MODE=compare UNWCMP_OUT=$LOG LD_PRELOAD=$SHIM "$@" >/dev/null 2>>"$TMP/err" ||
		echo "   (exit status $?)" >>"$LOG"
}

run "python: objects, exceptions, json, re, threads (PYTHONMALLOC=malloc)" \
	env PYTHONMALLOC=malloc "$PY" -c '
import json, re, threading, collections
class A:
    def __init__(s, i): s.i = i; s.l = [i] * 3
def rec(n):
    if n == 0:
        try: raise ValueError("x")
        except ValueError: return [A(i) for i in range(5)]
    return rec(n - 1) + [str(n)]
out = [rec(k % 40) for k in range(300)]
s = json.dumps([{"a": i, "b": str(i) * 3} for i in range(20000)])
c = collections.Counter(re.findall(r"\d", s))
def w():
    for k in range(200): rec(k % 30)
ts = [threading.Thread(target=w) for _ in range(3)]
[t.start() for t in ts]; [t.join() for t in ts]
'
run "python: import the standard library" env PYTHONMALLOC=malloc "$PY" -c '
import email.parser, http.client, xml.dom.minidom, sqlite3, decimal, asyncio, unittest
xml.dom.minidom.parseString("<a>" + "<b x=\"1\">t</b>" * 2000 + "</a>").toxml()
'
run "gcc -O2 -c (cc1: C++ code without frame pointers)" \
	gcc -O2 -g -c "$SRC/src/analyze/analyze.c" -I"$SRC/src" -D_GNU_SOURCE -o "$TMP/a.o"
run "gcc -O2 -c unwind.c" gcc -O2 -g -c "$SRC/src/record/unwind.c" -I"$SRC/src" -o "$TMP/b.o"
run "g++ -O2 -c (cc1plus, templates)" \
	g++ -O2 -c "$SRC/tests/unwind/scen_cxx.cc" -I"$SRC/src" -o "$TMP/x.o"
run "perl" perl -e 'my %h; for my $i (1..200000) { $h{"k$i"} = [$i, "v" x ($i % 7)] } my @k = sort keys %h; print scalar(@k)'
run "sort + awk + sed" bash -c "seq 1 200000 | awk '{print \$1 % 977, \$1}' | sort -n | sed 's/1/x/' | uniq -c | tail -1"
run "unwind_test (C, C++ exceptions, qsort, threads, signals)" "$OUT/unwind_test" 3000
echo "per process:"
grep -E '^(==|unwcmp pid|   \(exit)' "$LOG" | sed -E 's/ pid=[0-9]+//; s/ mode=1//'
echo
awk '/^unwcmp pid/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^(captures|frames|mismatches|fallbacks|memo_hits|frames_reused)$/) t[kv[1]] += kv[2] } n++ }
     END { printf "TOTAL processes=%d captures=%d frames=%d mismatches=%d fallbacks=%d memo_hits=%d frames_reused=%d\n",
           n, t["captures"], t["frames"], t["mismatches"], t["fallbacks"], t["memo_hits"], t["frames_reused"] }' "$LOG"
echo "fallback sites:"
grep '^unwcmp-fallback' "$LOG" | sort | uniq -c | sort -rn | head -20
grep -A40 'MISMATCH' "$LOG" | head -60
# exit status: 1 if any list differed or nothing was captured
awk '/^unwcmp pid/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); t[kv[1]] += kv[2] } }
     END { exit (t["mismatches"] > 0 || t["captures"] == 0) }' "$LOG"
