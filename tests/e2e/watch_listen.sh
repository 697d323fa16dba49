#!/bin/bash
# memtriage watch --listen: /metrics in OpenMetrics while watching.
#
#  - unit tests (tests/e2e/watch/metrics_unit.c, built with the system's cc):
#    the --listen syntax, both exposition formats, label escaping;
#  - errors: a malformed address, a host that does not resolve and a port in
#    use each give one line and exit status 2;
#  - `sim leak` watched with --listen 127.0.0.1:0: every scrape is valid
#    OpenMetrics (tests/e2e/watch/om.py check) with the right Content-Type,
#    the 0.0.4 text a client gets with 'Accept: text/plain' passes
#    `promtool check metrics`; RSS is within 10% of VmRSS read right after,
#    its split adds up, threads match, the verdict reaches growing (exactly
#    one class at 1) with a positive slope; /other is 404, POST 405; a
#    client stuck mid-request does not slow the sampling, idle clients in
#    every slot do not keep a scrape out; SIGTERM ends it
#    all (forwarded to the command: 143), the command gone, the port closed;
#  - `sim plateau` reaches plateau_after_warmup, growing 0: the two differ;
#  - docs/alerts.yml passes `promtool check rules`, and its unit tests
#    (tests/e2e/watch/alerts_test.yml) pass `promtool test rules`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

W="$MT_SRC/tests/e2e/watch"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"
command -v promtool >/dev/null || skip "promtool not found (Debian package prometheus)"
OM() { "$PY" "$W/om.py" "$@"; }

# ---- unit tests --------------------------------------------------------------
CC=${CC:-cc}
if command -v "$CC" >/dev/null; then
	"$CC" -std=c11 -O2 -D_GNU_SOURCE -I"$MT_SRC/src" -o "$T/metrics_unit" "$W/metrics_unit.c" \
		"$MT_SRC/src/watch/metrics.c" "$MT_SRC/src/watch/listen.c" \
		"$MT_SRC/src/watch/series.c" "$MT_SRC/src/watch/analyze.c" \
		"$MT_SRC/src/stats/stats.c" -lm || fail "tests/e2e/watch/metrics_unit.c does not build"
	"$T/metrics_unit" || fail "unit tests of src/watch/metrics.c and listen.c failed"
fi

# ---- the alerting rules --------------------------------------------------------
promtool check rules "$MT_SRC/docs/alerts.yml" >"$T/rules.out" 2>&1 ||
	{ cat "$T/rules.out" >&2; fail "promtool check rules docs/alerts.yml"; }
(cd "$W" && promtool test rules alerts_test.yml) >"$T/rtest.out" 2>&1 ||
	{ cat "$T/rtest.out" >&2; fail "promtool test rules tests/e2e/watch/alerts_test.yml"; }

# ---- errors ----------------------------------------------------------------------
sleep 30 &
idle=$!
trap 'kill $idle ${watcher:-} 2>/dev/null || true; rm -rf "$T"' EXIT

# expect_error PATTERN ARGS...: exit status 2, one line on stderr matching PATTERN
expect_error()
{
	local pattern="$1" rc=0
	shift
	"$MT" watch "$@" >"$T/err.out" 2>"$T/err.txt" </dev/null || rc=$?
	expect_eq "exit status of 'watch $*'" 2 "$rc"
	expect_eq "lines on stderr of 'watch $*'" 1 "$(wc -l <"$T/err.txt")"
	grep -q -- "$pattern" "$T/err.txt" ||
		fail "'watch $*' said '$(cat "$T/err.txt")', expected '$pattern'"
}
for bad in 9100 ::1:9100 '[::1]9100' 127.0.0.1:65536 127.0.0.1:x; do
	esc=$(printf '%s' "$bad" | sed -e 's/[.[]/\\&/g' -e 's/]/\\]/g')
	expect_error "^memtriage: invalid value '$esc' for --listen: expected HOST:PORT" \
		--listen "$bad" "$idle"
done
expect_error "^memtriage: cannot listen on 'no-such-host.invalid:1': " \
	--listen no-such-host.invalid:1 "$idle"

# start_watch LOG ARGS...: run watch in the background (pid in $watcher), URL in $url
start_watch()
{
	local log="$1" i
	shift
	"$MT" watch "$@" >"$log.out" 2>"$log" &
	watcher=$!
	for i in $(seq 200); do
		url=$(sed -n 's|^memtriage: serving metrics on \(http://.*/metrics\)$|\1|p' "$log")
		[ -n "$url" ] && return 0
		kill -0 "$watcher" 2>/dev/null || break
		sleep 0.05
	done
	cat "$log" >&2
	fail "'watch $*' did not say where it serves metrics"
}

start_watch "$T/idle.err" --interval 100ms --listen 127.0.0.1:0 "$idle"
port=${url##*:}
port=${port%%/*}
expect_error "^memtriage: cannot listen on '127\\.0\\.0\\.1:$port': Address already in use$" \
	--listen "127.0.0.1:$port" "$idle"
kill -INT "$watcher"
wait "$watcher" || fail "watch of an idle process did not exit 0 after SIGINT"
watcher=

# ---- sim leak ----------------------------------------------------------------------
# scrape NAME: GET $url into $T/NAME.om, valid OpenMetrics, right Content-Type
scrape()
{
	local got
	got=$(OM get "$url" "$T/$1.om") || fail "cannot fetch $url"
	expect_eq "status and Content-Type of $url" \
		"200 application/openmetrics-text; version=1.0.0; charset=utf-8" "$got"
	OM check "$T/$1.om" || { cat "$T/$1.om" >&2; fail "$url is not valid OpenMetrics"; }
}
value() { OM value "$T/$1.om" "${@:2}" || fail "no single sample $2 $3 in $1"; }

# wait_verdict NAME CLASS: scrape until the verdict is CLASS (40 s at most)
wait_verdict()
{
	local i
	for i in $(seq 130); do
		scrape "$1"
		[ "$(value "$1" memtriage_verdict "$2")" = 1 ] && return 0
		kill -0 "$watcher" 2>/dev/null || break
		sleep 0.3
	done
	cat "$T/$1.om" "$T/$1.err" >&2
	fail "$1: the verdict never became $2"
}

# check_verdict NAME CLASS: CLASS at 1, the other three at 0
check_verdict()
{
	local c sum=0
	for c in growing plateau_after_warmup no_significant_growth too_few_samples; do
		v=$(value "$1" memtriage_verdict "$c")
		case "$v" in 0|1) sum=$((sum + v)) ;; *) fail "$1: verdict $c is '$v'" ;; esac
	done
	expect_eq "$1: classes at 1" 1 "$sum"
	expect_eq "$1: verdict $2" 1 "$(value "$1" memtriage_verdict "$2")"
}

# stop_watch NAME PID: SIGTERM (forwarded to the command), status 143, nothing left
stop_watch()
{
	local rc=0 i
	kill -TERM "$watcher"
	wait "$watcher" || rc=$?
	watcher=
	expect_eq "$1: exit status after SIGTERM (the command's, killed by it)" 143 "$rc"
	for i in $(seq 50); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$2" 2>/dev/null && fail "$1: the watched command (pid $2) outlived memtriage"
	grep -q '^VERDICT: ' "$T/$1.err" || { cat "$T/$1.err" >&2; fail "$1: no report"; }
	OM get "$url" "$T/closed.om" >/dev/null 2>&1 && fail "$1: $url still answers after exit"
	return 0
}

start_watch "$T/leak.err" --interval 100ms --listen 127.0.0.1:0 -- \
	"$MT" sim leak --cycles 60
wait_verdict leak growing
check_verdict leak growing
pid=$(OM label "$T/leak.om" memtriage_rss_bytes pid) || fail "no pid label"
# RSS against VmRSS read just after the scrape, once RSS is past 16 MiB: the
# sample is up to one interval old, and sim leak grows ~5 MiB/s
for i in $(seq 100); do
	vmrss=$(OM rss "$url" "$T/leak.om" "$pid") || fail "cannot fetch $url"
	[ "$vmrss" -ge $((16 << 20)) ] && break
	sleep 0.2
done
OM check "$T/leak.om" || fail "$url is not valid OpenMetrics"
threads=$(sed -n 's/^Threads:[^0-9]*//p' "/proc/$pid/status")
rss=$(value leak memtriage_rss_bytes)
[ $((rss * 10)) -ge $((vmrss * 9)) ] && [ $((rss * 10)) -le $((vmrss * 11)) ] ||
	fail "leak: memtriage_rss_bytes $rss is not within 10% of VmRSS $vmrss"
parts=$(($(value leak memtriage_rss_anon_bytes) + $(value leak memtriage_rss_file_bytes) +
	$(value leak memtriage_rss_shmem_bytes)))
expect_eq "leak: anon + file + shmem" "$rss" "$parts"
expect_eq "leak: threads" "$threads" "$(value leak memtriage_threads)"
"$PY" -c 'import sys; sys.exit(not float(sys.argv[1]) > 0)' \
	"$(value leak memtriage_rss_growth_bytes_per_second)" || fail "leak: slope is not positive"
grep -q '^memtriage_heap_live_bytes' "$T/leak.om" && fail "leak: watch claims a live heap"
grep -q "^memtriage_rss_bytes{pid=\"$pid\",command=\".*memtriage sim leak --cycles 60\"} " \
	"$T/leak.om" || fail "leak: no pid and command labels"

# the 0.0.4 text, for clients that ask for it, is what promtool reads
got=$(OM get "$url" "$T/leak.prom" "text/plain;version=0.0.4") || fail "cannot fetch $url"
expect_eq "Content-Type with Accept: text/plain" \
	"200 text/plain; version=0.0.4; charset=utf-8" "$got"
promtool check metrics <"$T/leak.prom" >"$T/lint.out" 2>&1 ||
	{ cat "$T/lint.out" >&2; fail "promtool check metrics finds problems"; }
[ ! -s "$T/lint.out" ] || { cat "$T/lint.out" >&2; fail "promtool check metrics complains"; }

expect_eq "GET /other" "404" "$(OM get "${url%/metrics}/other" "$T/x" | cut -d' ' -f1)"
code=$("$PY" - "$url" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"x", method="POST"), timeout=10)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("Allow"))
EOF
)
expect_eq "POST /metrics" "405 GET" "$code"

# a client that never finishes its request does not hold up the sampling
OM stall "$url" 3 &
staller=$!
sleep 0.5
scrape stall1
n1=$(value stall1 memtriage_samples_total)
sleep 2
scrape stall2
n2=$(value stall2 memtriage_samples_total)
wait "$staller" || fail "the stalled client could not connect"
[ $((n2 - n1)) -ge 10 ] || fail "sampling slowed while a client stalled: $n1 then $n2 samples in 2 s"

# idle clients filling every slot (8) do not keep a scrape out: the oldest gives way
"$PY" - "$url" <<'EOF' || fail "a scrape did not get through 12 idle connections"
import socket, sys, time, urllib.parse, urllib.request
u = urllib.parse.urlparse(sys.argv[1])
idle = [socket.create_connection((u.hostname, u.port)) for _ in range(12)]
time.sleep(0.3)
body = urllib.request.urlopen(sys.argv[1], timeout=3).read()
assert b"memtriage_rss_bytes" in body, body[:200]
EOF
stop_watch leak "$pid"

# ---- sim plateau: not "growing" ----------------------------------------------------
start_watch "$T/plateau.err" --interval 100ms --listen 127.0.0.1:0 -- \
	"$MT" sim plateau --cycles 60
wait_verdict plateau plateau_after_warmup
check_verdict plateau plateau_after_warmup
pid=$(OM label "$T/plateau.om" memtriage_rss_bytes pid) || fail "no pid label"
stop_watch plateau "$pid"

echo "watch_listen: ok"
