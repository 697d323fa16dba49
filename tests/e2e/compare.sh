#!/bin/bash
# memtriage compare: one run per allocator configuration, RSS from /proc.
#
#  - the frontend sim under glibc, arena2 and jemalloc: three rows with an
#    RSS after each of the 3 cycles, and arena2's final RSS below 0.8x
#    glibc's (about half on a 2-core machine: fewer arenas, less
#    fragmentation; the baseline's arena count is 8 x cores);
#  - a --config row, a "not installed" row for a missing allocator;
#  - usage errors: one line on stderr, exit status 2; a failing command: 1;
#  - SIGINT stops the current run, its process group included: exit 130.
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
"$MT" compare --configs glibc,arena2,jemalloc --config custom:MALLOC_ARENA_MAX=1 -- "${SIM[@]}" \
	>"$T/cmp.txt" 2>"$T/cmp.err" || { cat "$T/cmp.txt" "$T/cmp.err" >&2; fail "compare failed"; }
cat "$T/cmp.txt"
num='[0-9][0-9.]*'
for name in glibc arena2 custom $([ $have_jemalloc = 1 ] && echo jemalloc); do
	row "$name" "$T/cmp.txt" | grep -Eq "^$name +$num +$num +$num +$num +$num +[-+]$num +$num"x ||
		fail "no row with 3 cycles for '$name': '$(row "$name" "$T/cmp.txt")'"
done
[ $have_jemalloc = 1 ] || row jemalloc "$T/cmp.txt" | grep -q 'not installed' ||
	fail "jemalloc is missing but its row does not say 'not installed'"
grep -q '^RSS (MiB) .*cycle 3 ' "$T/cmp.txt" || fail "no 'cycle 3' column"
grep -q '^recommendation: ' "$T/cmp.txt" || fail "no recommendation"
awk 'length > 100 { exit 1 }' "$T/cmp.txt" || fail "a line is wider than 100 columns"
final() { row "$1" "$T/cmp.txt" | awk '{ print $6 }'; }
awk -v g="$(final glibc)" -v a="$(final arena2)" 'BEGIN { exit !(a < 0.8 * g) }' ||
	fail "arena2's final RSS $(final arena2) MiB is not below 0.8x glibc's $(final glibc) MiB"

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
sleep 0.2
# killed ones may stay zombies when init does not reap: count the living
left=$(ps -eo pid=,pgid=,stat= | awk -v g="$child" '$2 == g && $3 !~ /^Z/ { print $1 }')
[ -z "$left" ] || { kill -9 -- "-$child" 2>/dev/null; fail "processes left after SIGINT: $left"; }
echo "compare.sh: ok"
