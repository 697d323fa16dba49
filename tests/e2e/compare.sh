#!/bin/bash
# memtriage compare: one run per allocator configuration, RSS from /proc.
#
#  - the frontend sim under glibc, arena2, trim and jemalloc: rows with an
#    RSS after each of the 3 cycles; arena2's final RSS below 0.8x glibc's
#    (about half on a 2-core machine: fewer arenas, less fragmentation; the
#    baseline's arena count is 8 x cores) and trim's (malloc_trim(0) every
#    10 ms from libmemtriage_trim.so) below 0.8x (0.23-0.6x measured);
#  - a --config row, a "not installed" row for a missing allocator;
#  - the JSON results: runs and tables, the figures of the text table;
#  - --sweep: the scaling table with growth over the first row and the
#    ratio column; --record: a trace and a verdict per run;
#  - --server/--load with the built-in server and load generator;
#  - usage errors: one line on stderr, exit status 2; a failing command: 1;
#  - SIGINT stops the current run, its process group included, zombies
#    too (memtriage is the subreaper): exit 130.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

unset MALLOC_ARENA_MAX MALLOC_TRIM_THRESHOLD_ MALLOC_MMAP_THRESHOLD_ LD_PRELOAD
SIM=("$MT" sim frontend --concurrency 48 --payload 200K --cycles 3 --requests 300)

# row NAME FILE: the first line of the RSS table for configuration NAME
row()
{
	awk -v n="$1" '$1 == n { print; exit }' "$2"
}

"$MT" compare --help | grep -q '^usage: memtriage compare' || fail "'compare --help' shows no usage"
"$MT" --help | grep -q '^  compare ' || fail "'memtriage --help' does not list compare"

# ---- the comparison ------------------------------------------------------------
have_jemalloc=0
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
	[ -r "$d/libjemalloc.so.2" ] && have_jemalloc=1
done
"$MT" compare --configs glibc,arena2,trim,jemalloc --trim-interval 10ms \
	--config custom:MALLOC_ARENA_MAX=1 -o "$T/cmp.json" -- "${SIM[@]}" \
	>"$T/cmp.txt" 2>"$T/cmp.err" || { cat "$T/cmp.txt" "$T/cmp.err" >&2; fail "compare failed"; }
cat "$T/cmp.txt"
num='[0-9][0-9.]*'
for name in glibc arena2 trim custom $([ $have_jemalloc = 1 ] && echo jemalloc); do
	row "$name" "$T/cmp.txt" | grep -Eq "^$name +$num +$num +$num +$num +$num +[-+]$num +$num"x ||
		fail "no row with 3 cycles for '$name': '$(row "$name" "$T/cmp.txt")'"
done
[ $have_jemalloc = 1 ] || row jemalloc "$T/cmp.txt" | grep -q 'not installed' ||
	fail "jemalloc is missing but its row does not say 'not installed'"
grep -q '^run .*cycle 3 ' "$T/cmp.txt" || fail "no 'cycle 3' column"
grep -q '^recommendation: ' "$T/cmp.txt" || fail "no recommendation"
awk 'length > 100 { exit 1 }' "$T/cmp.txt" || fail "a line is wider than 100 columns"
final() { row "$1" "$T/cmp.txt" | awk '{ print $6 }'; }
awk -v g="$(final glibc)" -v a="$(final arena2)" 'BEGIN { exit !(a < 0.8 * g) }' ||
	fail "arena2's final RSS $(final arena2) MiB is not below 0.8x glibc's $(final glibc) MiB"
awk -v g="$(final glibc)" -v a="$(final trim)" 'BEGIN { exit !(a < 0.8 * g) }' ||
	fail "trim's final RSS $(final trim) MiB is not below 0.8x glibc's $(final glibc) MiB"

# the JSON results hold the same figures as the table
/usr/bin/python3 - "$T/cmp.json" "$(final glibc)" <<'PY' || fail "JSON results: see above"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "memtriage-compare" and d["version"] == 1, d.get("schema")
runs = {r["config"]: r for r in d["runs"]}
g = runs["glibc"]
assert len(g["cycle_rss_bytes"]) == 3, g
mib = g["final_rss_bytes"] / 2**20
want = float(sys.argv[2])
assert abs(mib - want) <= max(0.5, want * 0.01), (mib, want)
assert g["ok"] and g["status"] == "ran", g
titles = [t["title"] for t in d["tables"]]
assert any(t.startswith("RSS (MiB)") for t in titles), titles
rows = d["tables"][0]["rows"]
assert [r[0] for r in rows][:3] == ["glibc", "arena2", "trim"], rows
assert d["recommendation"], d
PY

# ---- a missing allocator ---------------------------------------------------------
missing=
for lib in tcmalloc:libtcmalloc_minimal.so.4 mimalloc:libmimalloc.so.2 jemalloc:libjemalloc.so.2; do
	found=0
	for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
		[ -r "$d/${lib#*:}" ] && found=1
	done
	[ $found = 0 ] && { missing=${lib%%:*}; break; }
done
if [ -n "$missing" ]; then
	"$MT" compare --configs "glibc,$missing" -- "$MT" sim frontend --cycles 1 --requests 20 \
		>"$T/miss.txt" 2>"$T/miss.err" || fail "compare with a missing '$missing' failed"
	row "$missing" "$T/miss.txt" | grep -q "not installed (Debian package lib" ||
		fail "no 'not installed' row for '$missing': $(cat "$T/miss.txt")"
fi

# the HTML page of the results (tests/e2e/report_html.sh checks such a page in Chromium)
"$MT" report --format html -o "$T/cmp.html" "$T/cmp.json" || fail "no HTML page of the results"
grep -q '"schema":"memtriage-compare"' "$T/cmp.html" || fail "the page does not embed the results"
rc=0
"$MT" report "$T/cmp.json" >/dev/null 2>"$T/text.err" || rc=$?
expect_eq "exit status of 'report' of a results file in text form" 2 "$rc"
grep -q 'html and a json form' "$T/text.err" || fail "no clear error: $(cat "$T/text.err")"

# ---- cycles from the program's marks (include/memtriage.h), without recording ----------
# 16 MiB touched per cycle: growth/cycle +16.0 MiB under both configurations
cat >"$T/marks.py" <<'PY'
import ctypes, time
mark = ctypes.CDLL(None).memtriage_mark    # libmemtriage_marks.so, preloaded by compare
mark.argtypes = [ctypes.c_char_p]
keep = []
for i in range(1, 4):
    keep.append(bytearray(16 << 20))
    mark(b"cycle %d" % i)
    time.sleep(0.3)
PY
"$MT" compare --configs glibc,arena2 -- /usr/bin/python3 "$T/marks.py" >"$T/marks.txt" 2>&1 ||
	{ cat "$T/marks.txt"; fail "compare on marks failed"; }
cat "$T/marks.txt"
for name in glibc arena2; do
	g=$(row "$name" "$T/marks.txt" | awk '{ print $7 }')
	awk -v g="$g" 'BEGIN { exit !(g >= 15.5 && g <= 16.5) }' ||
		fail "'$name': growth/cycle from marks is '$g', expected +16.0 MiB"
done

# ---- sweeps: the scaling table and the ratio column ------------------------------------
"$MT" compare --configs glibc --sweep n=50,150 --sweep p=1K,64K -o "$T/sweep.json" \
	-- "$MT" sim frontend --cycles 1 --requests {n} --payload {p} --concurrency 8 \
	>"$T/sweep.txt" 2>"$T/sweep.err" || { cat "$T/sweep.txt" "$T/sweep.err"; fail "sweep failed"; }
cat "$T/sweep.txt"
grep -q '^Scaling over n under glibc' "$T/sweep.txt" || fail "no scaling table"
grep -Eq '^n +p=1K +growth +p=64K +growth +64K/1K$' "$T/sweep.txt" || fail "scaling table header"
grep -Eq "^50 +$num +\+0% +$num +\+0% +$num"x'$' "$T/sweep.txt" || fail "first row: growth +0%"
grep -Eq "^150 +$num +[-+][0-9]+% +$num +[-+][0-9]+% +$num"x'$' "$T/sweep.txt" || fail "second row"
for run in "glibc n=50 p=1K" "glibc n=150 p=64K"; do
	grep -q "^$run " "$T/sweep.txt" || fail "no row '$run' in the RSS table"
done
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
pts = sorted((r["point"]["n"], r["point"]["p"]) for r in d["runs"])
assert pts == [("150","1K"),("150","64K"),("50","1K"),("50","64K")], pts
' "$T/sweep.json" || fail "sweep JSON points"

# ---- --record: a trace and a verdict per run ----------------------------------------
mkdir "$T/rec"
"$MT" compare --configs glibc,arena2 --record="$T/rec" -- "$MT" sim frontend --cycles 2 \
	--requests 100 >"$T/rec.txt" 2>"$T/rec.err" || { cat "$T/rec.txt" "$T/rec.err"; fail "--record"; }
for c in glibc arena2; do
	[ -s "$T/rec/compare.$c.trace" ] || fail "no trace for '$c'"
	grep -Eq "^$c +[A-Z][A-Z -]+ \((low|medium|high)\) +$T/rec/compare.$c.trace" "$T/rec.txt" ||
		fail "no verdict row for '$c': $(cat "$T/rec.txt")"
done
"$MT" report "$T/rec/compare.arena2.trace" >"$T/rec.report" || fail "the recorded trace does not read"
grep -q 'calls to allocation functions' "$T/rec.report" || fail "no summary in the recorded report"

# ---- --server/--load: the built-in server, the load run 3 times against it ------------
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MT" compare --configs glibc,arena2 --ready 0.3s -o "$T/srv.json" \
	--server "'$MT' sim frontend --listen 127.0.0.1:$port --concurrency 16 --payload 200K" \
	--load "'$MT' sim load --connect 127.0.0.1:$port --requests 200 --concurrency 16 --payload 200K" \
	>"$T/srv.txt" 2>"$T/srv.err" || { cat "$T/srv.txt" "$T/srv.err"; fail "server mode failed"; }
cat "$T/srv.txt"
for name in glibc arena2; do
	row "$name" "$T/srv.txt" | grep -Eq "^$name +$num +$num +$num +$num +$num +[-+]$num +$num"x ||
		fail "no server row with 3 load runs for '$name': '$(row "$name" "$T/srv.txt")'"
done
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["runs"]:
    assert r["ok"] and r["status"] == "ran", r
    assert len(r["cycle_rss_bytes"]) == 3, r
    assert r["cycle_rss_bytes"][0] > r["start_rss_bytes"] + 16 * 2**20, r   # the load grew it
    assert r["throughput"] > 0, r
' "$T/srv.json" || fail "server-mode JSON"
pgrep -f "sim frontend --listen 127.0.0.1:$port" >/dev/null && fail "the server outlived compare"

# ---- errors --------------------------------------------------------------------
expect_error()
{
	local want="$1" pattern="$2" rc=0
	shift 2
	"$MT" compare "$@" >"$T/err.out" 2>"$T/err.txt" </dev/null || rc=$?
	expect_eq "exit status of 'compare $*'" "$want" "$rc"
	expect_eq "lines on stderr of 'compare $*'" 1 "$(wc -l <"$T/err.txt")"
	grep -q -- "$pattern" "$T/err.txt" || fail "'compare $*' said '$(cat "$T/err.txt")'"
}
expect_error 2 "unknown configuration 'nosuch'" --configs glibc,nosuch -- true
expect_error 2 "invalid --config" --config 'bad name:X=1' -- true
expect_error 2 "missing the command" --configs glibc
expect_error 2 "invalid value '1ns' for --interval" --interval 1ns -- true
expect_error 1 "'glibc': the command exited with status 3" --configs glibc -- sh -c 'exit 3'
expect_error 2 "invalid --sweep" --sweep novalue -- true
expect_error 2 "no command has '{x}'" --sweep x=1,2 -- true
expect_error 2 "--server and --load go together" --server 'sleep 1'
expect_error 2 "either CMD" --server 'sleep 1' --load true -- true
expect_error 2 "invalid --cycle-pattern" --cycle-pattern '(' -- true
expect_error 1 "'glibc': a load run failed (status 3)" --configs glibc --ready 0 \
	--server 'sleep 30' --load 'exit 3'

# ---- Ctrl-C: the run and its process group stop, exit 130 ------------------------
{ exec "$MT" compare --configs glibc -- sh -c 'sleep 60 & sleep 60' >"$T/int.out" 2>"$T/int.err"; } &
pid=$!
for _ in $(seq 50); do
	child=$(pgrep -P "$pid" || true)
	[ -n "$child" ] && [ "$(pgrep -g "$child" | wc -l)" -ge 3 ] && break
	sleep 0.1
done
[ -n "$child" ] || fail "compare started no command"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_eq "exit status after SIGINT" 130 "$rc"
grep -q 'interrupted' "$T/int.err" || fail "no 'interrupted' message: $(cat "$T/int.err")"
# memtriage is the subreaper and reaps what it killed: not even a zombie is left
left=$(ps -eo pid=,pgid=,stat= | awk -v g="$child" '$2 == g { print $1 "/" $3 }')
[ -z "$left" ] || { kill -9 -- "-$child" 2>/dev/null; fail "processes left after SIGINT: $left"; }
echo "compare.sh: ok"
