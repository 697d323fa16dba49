#!/bin/bash
# memtriage watch: sampling processes from /proc, without injection.
#
#  - unit tests (tests/e2e/watch/unit.c, built here with the system's C
#    compiler): the /proc parsers on strings, the series' thinning, the
#    verdicts on synthetic series (seed 003's shape included);
#  - help and errors: one line on stderr, exit status 2; a command that
#    cannot run: 127; CMD's exit status and death by a signal passed on;
#  - the verdicts on two Python programs (plain stdlib): an unbounded cache
#    (RSS grows linearly, ~117 MiB) is "growing", a bounded LRU cache (RSS
#    rises, then holds) is "plateau after warm-up".  Their rates are per
#    iteration with a sleep in between, so a loaded machine stretches them
#    without changing their shape, and 50 ms samples give ~80 per run;
#  - watching a PID it did not start: --duration, SIGINT and the process
#    exiting each end the watch with a report, and the process is never
#    signalled.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

W="$MT_SRC/tests/e2e/watch"
command -v python3 >/dev/null || skip "python3 not found"

# ---- unit tests: parsers, series, verdicts on synthetic series ------------------
CC=${CC:-cc}
if command -v "$CC" >/dev/null; then
	"$CC" -std=c11 -O2 -D_GNU_SOURCE -I"$MT_SRC/src" -o "$T/unit" "$W/unit.c" \
		"$MT_SRC/src/watch/sample.c" "$MT_SRC/src/watch/series.c" \
		"$MT_SRC/src/watch/analyze.c" "$MT_SRC/src/stats/stats.c" -lm ||
		fail "tests/e2e/watch/unit.c does not build"
	"$T/unit" || fail "unit tests of src/watch failed"
else
	echo "watch.sh: no C compiler ('$CC'): unit tests of src/watch not run" >&2
fi

# ---- help and errors ---------------------------------------------------------
"$MT" watch --help >"$T/help.txt" || fail "'watch --help' failed"
grep -q '^usage: memtriage watch' "$T/help.txt" || fail "'watch --help' shows no usage"
"$MT" help watch >/dev/null || fail "'help watch' failed"
"$MT" --help | grep -q '^  watch ' || fail "'memtriage --help' does not list watch"

# expect_error STATUS PATTERN ARGS...: exactly one line on stderr matching PATTERN, nothing on stdout
expect_error()
{
	local want="$1" pattern="$2" rc=0
	shift 2
	"$MT" watch "$@" >"$T/err.out" 2>"$T/err.txt" </dev/null || rc=$?
	expect_eq "exit status of 'watch $*'" "$want" "$rc"
	expect_eq "lines on stderr of 'watch $*'" 1 "$(wc -l <"$T/err.txt")"
	grep -q -- "$pattern" "$T/err.txt" ||
		fail "'watch $*' said '$(cat "$T/err.txt")', expected '$pattern'"
	[ ! -s "$T/err.out" ] || fail "'watch $*' wrote on stdout"
}
expect_error 2 "^memtriage: cannot watch pid 999999999: no such process$" 999999999
expect_error 2 "missing the process id" 
expect_error 2 "'abc' is not a process id" abc
expect_error 2 "'0' is not a process id" 0
expect_error 2 "too many arguments" 1 2
expect_error 2 "missing the command to run" --
expect_error 2 "invalid value '5ms' for --interval" --interval 5ms 1
expect_error 2 "invalid value '1x' for --interval" --interval 1x 1
expect_error 2 "invalid value '-1s' for --duration" --duration -1s 1
expect_error 2 "unknown option '--bogus'" --bogus 1
expect_error 2 "option '--interval' needs a value" --interval
expect_error 127 "^memtriage: cannot run 'no-such-command-mt': No such file or directory$" \
	-- no-such-command-mt

# CMD's status is passed on, and so is a death by signal (128 + 15)
rc=0
"$MT" watch --interval 10ms -- sh -c 'sleep 0.3; exit 7' >/dev/null 2>"$T/st.err" || rc=$?
expect_eq "exit status of a command that exits 7" 7 "$rc"
rc=0
"$MT" watch --interval 10ms -- sh -c 'sleep 0.3; kill -TERM $$' >/dev/null 2>"$T/sig.err" || rc=$?
expect_eq "exit status of a command killed by SIGTERM" 143 "$rc"
grep -q "^ended:    the command was killed by signal 15" "$T/sig.err" ||
	fail "report of a killed command does not say so: $(cat "$T/sig.err")"

# ---- verdicts ------------------------------------------------------------------
# check_report FILE: a report at most 100 columns wide with one VERDICT line
check_report()
{
	[ -s "$1" ] || fail "no report in '$1'"
	local long
	long=$(awk 'length($0) > 100' "$1")
	[ -z "$long" ] || fail "report '$1' has lines over 100 columns: $long"
	expect_eq "VERDICT lines in '$1'" 1 "$(grep -c '^VERDICT: ' "$1")"
}

# show_and_fail FILE MSG: print the report, then fail
show_and_fail()
{
	echo "---- $1" >&2
	cat "$1" >&2
	fail "$2"
}

# unbounded: report on stderr (the default with a command), CMD's stdout and status kept
rc=0
"$MT" watch --interval 50ms -- python3 "$W/unbounded.py" >"$T/unbounded.out" \
	2>"$T/unbounded.txt" || rc=$?
expect_eq "exit status of unbounded.py under watch" 3 "$rc"
expect_eq "stdout of unbounded.py" "unbounded: 12000 objects cached" "$(cat "$T/unbounded.out")"
check_report "$T/unbounded.txt"
grep -q '^VERDICT: growing$' "$T/unbounded.txt" ||
	show_and_fail "$T/unbounded.txt" "unbounded cache: verdict is not 'growing'"
grep -q '^  The growth is in anonymous memory' "$T/unbounded.txt" ||
	show_and_fail "$T/unbounded.txt" "unbounded cache: growth not placed in anonymous memory"
grep -q '^ended:    the command exited with status 3$' "$T/unbounded.txt" ||
	show_and_fail "$T/unbounded.txt" "unbounded cache: 'ended:' line"
grep -q $'\r' "$T/unbounded.txt" && fail "a live status line was drawn on a stderr that is no tty"

# bounded: report into a file
rc=0
"$MT" watch --interval 50ms -o "$T/bounded.txt" -- python3 "$W/bounded.py" >"$T/bounded.out" \
	2>"$T/bounded.err" || rc=$?
expect_eq "exit status of bounded.py under watch" 0 "$rc"
[ ! -s "$T/bounded.err" ] || fail "watch -o wrote on stderr: $(cat "$T/bounded.err")"
check_report "$T/bounded.txt"
grep -q '^VERDICT: plateau after warm-up$' "$T/bounded.txt" ||
	show_and_fail "$T/bounded.txt" "bounded cache: verdict is not 'plateau after warm-up'"
for section in 'MEMORY BY BLOCKS' 'PHASES' 'REGRESSION ON THE PLATEAU' 'FIGURES'; do
	grep -q "^$section" "$T/bounded.txt" ||
		show_and_fail "$T/bounded.txt" "bounded cache: no '$section' section"
done
grep -q '^plateau ' "$T/bounded.txt" || show_and_fail "$T/bounded.txt" "no plateau row"

# ---- watching a PID ------------------------------------------------------------
# wait_watching WATCHER TARGET: wait until memtriage (pid WATCHER) has TARGET's
# /proc/TARGET/status open, which it does after blocking SIGINT (so a SIGINT
# sent then is never lost to the SIG_IGN a shell gives background jobs)
wait_watching()
{
	local i
	for i in $(seq 200); do
		ls -l "/proc/$1/fd" 2>/dev/null | grep -q "/proc/$2/status\$" && return 0
		sleep 0.05
	done
	fail "memtriage watch (pid $1) never opened /proc/$2/status"
}

python3 "$W/bounded.py" 100000 >/dev/null &
target=$!
trap 'kill $target 2>/dev/null || true; rm -rf "$T"' EXIT

rc=0
"$MT" watch --interval 50ms --duration 1s "$target" >"$T/pid.txt" 2>"$T/pid.err" || rc=$?
expect_eq "exit status of 'watch --duration 1s PID'" 0 "$rc"
check_report "$T/pid.txt"
grep -q "^pid:      $target$" "$T/pid.txt" || show_and_fail "$T/pid.txt" "header lacks the pid"
# the header shows the command line, or, when it does not fit 100 columns (a deep
# checkout path), a start of it followed by "..."; where it is cut depends on the path
full=$(tr '\0' ' ' <"/proc/$target/cmdline" | sed 's/ $//')
shown=$(sed -n 's/^command:  //p' "$T/pid.txt")
case "$shown" in
"$full") ;;
*...) [ "${full#"${shown%...}"}" != "$full" ] && [ ${#shown} -le 90 ] &&
	[[ "$shown" == *python3* ]] || show_and_fail "$T/pid.txt" "command line cut wrongly" ;;
*) show_and_fail "$T/pid.txt" "header lacks the command line" ;;
esac
grep -q '^ended:    --duration passed$' "$T/pid.txt" || show_and_fail "$T/pid.txt" "'ended:' line"
kill -0 "$target" 2>/dev/null || fail "the watched process did not survive --duration"

"$MT" watch --interval 50ms "$target" >"$T/int.txt" 2>"$T/int.err" &
watcher=$!
wait_watching "$watcher" "$target"
sleep 0.5
kill -INT "$watcher"
rc=0
wait "$watcher" || rc=$?
expect_eq "exit status of 'watch PID' stopped by SIGINT" 0 "$rc"
check_report "$T/int.txt"
grep -q '^ended:    interrupted (SIGINT)$' "$T/int.txt" || show_and_fail "$T/int.txt" "'ended:' line"
kill -0 "$target" 2>/dev/null || fail "the watched process did not survive SIGINT to watch"
kill "$target"
wait "$target" 2>/dev/null || true

# a PID that exits on its own ends the watch
python3 -c 'import time; time.sleep(1.5)' &
target=$!
rc=0
"$MT" watch --interval 50ms "$target" >"$T/exit.txt" 2>"$T/exit.err" || rc=$?
expect_eq "exit status of 'watch PID' when the process exits" 0 "$rc"
check_report "$T/exit.txt"
grep -q '^ended:    the process exited$' "$T/exit.txt" || show_and_fail "$T/exit.txt" "'ended:' line"
wait "$target" || true

echo "watch: ok"
