#!/usr/bin/env bash
# `memtriage sim frontend --listen` and `memtriage sim load`: the seed's
# setup (a server, a load generator run N times against it, the server's
# RSS read between runs) with the frontend model as the server:
#
#   * three load runs each answer all their requests; the server's RSS
#     grows well above its initial RSS and stays above the model's own
#     live-heap peak after the load (arena retention, 16 arenas forced);
#   * SIGTERM stops it with status 0 and no process left behind;
#   * a bad request line gets "ERR ...", the connection is closed, and the
#     server goes on serving; a client stalled mid-request blocks no one;
#   * recorded under `memtriage run` it leaks nothing (its workers run on
#     stacks it maps, as sim_workloads.sh's workloads do), and the report
#     counts the model's allocations for the requests the load sent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SERVER_PID=
cleanup()
{
	[ -z "$SERVER_PID" ] || kill -KILL "$SERVER_PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# start_server NAME CMD...: runs CMD in the background (stdout $T/NAME.out,
# stderr $T/NAME.err); sets SERVER_PID, and PORT from its first line.
start_server()
{
	local name="$1" i
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	SERVER_PID=$!
	for i in $(seq 100); do
		PORT=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/$name.out")
		[ -z "$PORT" ] || return 0
		kill -0 "$SERVER_PID" 2>/dev/null || fail "$name: the server exited: $(cat "$T/$name.err")"
		sleep 0.1
	done
	fail "$name: no 'listening on 127.0.0.1:PORT' line in 10 s: $(cat "$T/$name.out")"
}

# stop_server NAME: SIGTERM; the server must exit 0 within 10 s.
stop_server()
{
	local rc=0 i
	kill -TERM "$SERVER_PID"
	for i in $(seq 100); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$SERVER_PID" 2>/dev/null && fail "$1: the server still runs 10 s after SIGTERM"
	wait "$SERVER_PID" || rc=$?
	SERVER_PID=
	expect_eq "$1: server exit status after SIGTERM" 0 "$rc"
}

rss_kb()
{
	local v
	v=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9][0-9]*\) kB$/\1/p' "/proc/$1/status")
	[ -n "$v" ] || fail "no VmRSS for pid $1"
	echo "$v"
}

# load NAME ARGS...: `memtriage sim load ARGS`, which must exit 0 and print
# "load: requests=N errors=0 ..." for the --requests N in ARGS.
load()
{
	local name="$1" rc=0 n
	shift
	"$MT" sim load "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	expect_eq "$name: load exit status ($(cat "$T/$name.err"))" 0 "$rc"
	n=$(sed -n 's/.*--requests \([0-9][0-9]*\).*/\1/p' <<<"$*")
	expect_eq "$name: lines of output" 1 "$(wc -l <"$T/$name.out")"
	grep -Eq "^load: requests=$n errors=0 seconds=[0-9]+\.[0-9]+ throughput=[0-9]+ req/s\$" "$T/$name.out" ||
		fail "$name: $(cat "$T/$name.out")"
}

# ---- CLI ----------------------------------------------------------------------
"$MT" sim --help | grep -q '^  load ' || fail "'sim --help' does not list load"
"$MT" sim load --help | grep -q -- '--connect-timeout' || fail "sim load --help lacks --connect-timeout"
"$MT" sim frontend --help | grep -q -- '--listen ADDR:PORT' || fail "sim frontend --help lacks --listen"
for bad in "load" "load --connect localhost:80" "load --connect 127.0.0.1:1 --payload 0" \
	   "frontend --listen 127.0.0.1" "frontend --listen ::1:80" \
	   "frontend --listen 127.0.0.1:0 --cycles 2"; do
	RC=0
	"$MT" sim $bad >/dev/null 2>"$T/err" || RC=$?
	expect_eq "sim $bad: exit status ($(cat "$T/err"))" 2 "$RC"
done
RC=0
"$MT" sim load --connect 127.0.0.1:1 --connect-timeout 0 --requests 3 >"$T/out" 2>"$T/err" || RC=$?
expect_eq "load with no server: exit status" 1 "$RC"
grep -q '^load: requests=3 errors=3 ' "$T/out" || fail "load with no server: $(cat "$T/out")"
grep -q "cannot connect to '127.0.0.1:1'" "$T/err" || fail "load with no server: $(cat "$T/err")"

# ---- three load runs against one server ---------------------------------------
MALLOC_ARENA_MAX=16 start_server srv "$MT" sim frontend -v --listen 127.0.0.1:0 --concurrency 16 --payload 200K
expect_eq "server: lines on stdout" 1 "$(wc -l <"$T/srv.out")"
rss0=$(rss_kb "$SERVER_PID")
rss=()
for i in 1 2 3; do
	load load$i --connect "127.0.0.1:$PORT" --requests 300 --concurrency 16 --payload 200K
	rss+=("$(rss_kb "$SERVER_PID")")
done
echo "  server RSS: initial $((rss0 >> 10)) MB, after each load run ${rss[*]/%/ kB}"
# 16 requests in flight hold at least 16 x (payload + its copy) = 6.4 MB.
[ "${rss[2]}" -ge $((rss0 + 6400)) ] ||
	fail "server RSS grew from $rss0 kB to only ${rss[2]} kB over the load runs"

# A bad request line: ERR, then the server closes the connection.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'HELLO\n' >&3
line=
read -r -t 10 line <&3 || true
grep -q '^ERR ' <<<"$line" || fail "bad request line: expected 'ERR ...', got '$line'"
rest=$(timeout 10 cat <&3) || fail "bad request line: the connection was not closed"
expect_eq "bytes after the ERR line" "" "$rest"
exec 3>&-
# A payload over the server's --payload: ERR too.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'REQ 999999999\n' >&3
read -r -t 10 line <&3 || true
grep -q '^ERR .*payload' <<<"$line" || fail "oversized payload: expected 'ERR ...payload...', got '$line'"
exec 3>&-

# A client stalled halfway through a payload holds its slot and nothing else.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'REQ 1000\nabc' >&3
load stalled --connect "127.0.0.1:$PORT" --requests 100 --concurrency 15 --payload 200K --timeout 20
exec 3>&-

stop_server srv
grep -q '^frontend: served 1000 requests (2 refused); model live heap peak [0-9]* MB' "$T/srv.err" ||
	fail "server -v: $(cat "$T/srv.err")"
peak=$(sed -n 's/.* model live heap peak \([0-9]*\) MB.*/\1/p' "$T/srv.err")
echo "  model live heap peak $peak MB; server RSS after the load runs $((rss[2] >> 10)) MB"
# Allocator retention: what the arenas keep after the load exceeds what was
# ever live at once (measured 2.5-3 x with 48 connections on 2 cores).
[ $((rss[2] >> 10)) -ge "$peak" ] ||
	fail "server RSS $((rss[2] >> 10)) MB after the load is below the model's peak $peak MB"

# ---- recorded under memtriage run -------------------------------------------
start_server rec "$MT" run -o "$T/rec.trace" --report "$T/rec.txt" -- \
	"$MT" sim frontend --listen 127.0.0.1:0 --concurrency 8 --payload 64K
child=$(ps -o pid= --ppid "$SERVER_PID" | tr -d ' ')
[ -n "$child" ] || fail "recorded: no server process under memtriage run"
load recload --connect "127.0.0.1:$PORT" --requests 100 --concurrency 8 --payload 64K
stop_server rec
kill -0 "$child" 2>/dev/null && fail "recorded: server $child still runs after memtriage run exited"
[ -s "$T/rec.txt" ] || fail "recorded: no report: $(cat "$T/rec.err")"
check_summary rec - - 0 0 -
# Per request: request, payload, body, node array, 1024 nodes, 2-5 chunks.
calls=$(summary "$T/rec.txt" calls)
[ "$calls" -ge $((100 * 1030)) ] && [ "$calls" -le $((100 * 1033 + 100)) ] ||
	fail "recorded: expected about 100 x 1030-1033 allocation calls, got $calls"
peak=$(summary "$T/rec.txt" peak)
[ "$peak" -ge $((2 * 65536)) ] || fail "recorded: peak heap $peak, below one request's payload and copy"
echo "  recorded: $calls calls, peak heap $peak bytes, leaked at exit 0"
echo "sim_server: ok"
