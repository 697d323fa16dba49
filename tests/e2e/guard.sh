#!/bin/bash
# memtriage guard: restart a command whose RSS passes a limit.
#
#  - help and errors: one line on stderr, exit status 2; a command that
#    cannot run: 127; --max-rss 80% without a cgroup memory limit: 2;
#  - a leak (sim leak, 64 KiB per request, one worker: ~20 MiB/s) passes
#    60 MiB in ~3 s: guard stops it each time, logging an RSS just past
#    the limit, restarts it twice, then gives up with status 1;
#  - a plateau (sim plateau with a small cache, ~7 MiB) runs to its end
#    with no restart, and guard exits 0 with the command's stdout intact;
#  - exit statuses: the command's own (7), 128 + a signal that killed it;
#  - SIGINT to guard: it stops its command promptly, SIGKILLs one that
#    ignores SIGTERM after --grace, and leaves no process behind.
# About 15 s in all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# ---- help and errors ---------------------------------------------------------
"$MT" guard --help >"$T/help.txt" || fail "'guard --help' failed"
grep -q '^usage: memtriage guard' "$T/help.txt" || fail "'guard --help' shows no usage"
"$MT" --help | grep -q '^  guard ' || fail "'memtriage --help' does not list guard"

# expect_error STATUS PATTERN ARGS...: exactly one line on stderr matching PATTERN
expect_error()
{
	local want="$1" pattern="$2" rc=0
	shift 2
	"$MT" guard "$@" >"$T/err.out" 2>"$T/err.txt" </dev/null || rc=$?
	expect_eq "exit status of 'guard $*'" "$want" "$rc"
	expect_eq "lines on stderr of 'guard $*'" 1 "$(wc -l <"$T/err.txt")"
	grep -q -- "$pattern" "$T/err.txt" ||
		fail "'guard $*' said '$(cat "$T/err.txt")', expected '$pattern'"
}
expect_error 2 "missing --max-rss" -- true
expect_error 2 "missing the command to run" --max-rss 1G
expect_error 2 "unknown option '--bogus'" --bogus --max-rss 1G -- true
expect_error 2 "invalid value '1X' for --max-rss" --max-rss 1X -- true
expect_error 2 "invalid value '5ms' for --check-interval" --max-rss 1G --check-interval 5ms -- true
expect_error 2 "invalid value 'x' for --restart-limit" --max-rss 1G --restart-limit x -- true
expect_error 127 "^memtriage: cannot run 'no-such-command-mt': No such file or directory$" \
	--max-rss 1G -- no-such-command-mt

# 80% of the cgroup memory limit: an error when there is none
rc=0
"$MT" guard --max-rss 80% -- true 2>"$T/pct.err" || rc=$?
if [ "$rc" = 0 ]; then
	echo "guard.sh: this cgroup has a memory limit: '--max-rss 80%' without one not checked" >&2
else
	expect_eq "exit status of '--max-rss 80%' without a cgroup limit" 2 "$rc"
	expect_eq "lines on stderr of '--max-rss 80%'" 1 "$(wc -l <"$T/pct.err")"
	grep -q "no memory limit is set" "$T/pct.err" || fail "'--max-rss 80%' said $(cat "$T/pct.err")"
fi

# ---- a leak: restarted at the limit, then given up on -----------------------------
LIMIT_MIB=60
# One interval (50 ms) of a ~20 MiB/s leak is ~1 MiB; allow 6 MiB for a loaded machine.
SLACK_MIB=6
rc=0
"$MT" guard --max-rss ${LIMIT_MIB}M --check-interval 0.05 --grace 2 --restart-limit 2 -- \
	"$MT" sim leak --leak-bytes 65536 --workers 1 --requests 100 --cycles 200 \
	>"$T/leak.out" 2>"$T/leak.err" || rc=$?
cat "$T/leak.err" >&2
expect_eq "exit status once the restart limit is reached" 1 "$rc"
n=$(grep -c '^memtriage: guard: RSS .* > limit 60.0 MiB: sending SIGTERM to [0-9]*' "$T/leak.err" || true)
expect_eq "stops over the limit (2 restarts, then the last)" 3 "$n"
grep -q '(restart 1 of 2)$' "$T/leak.err" || fail "no 'restart 1 of 2' logged"
grep -q '(restart limit 2 reached)$' "$T/leak.err" || fail "no 'restart limit 2 reached' logged"
grep -q "^memtriage: guard: giving up on '.*memtriage': .* after 2 restarts$" "$T/leak.err" ||
	fail "no 'giving up' message"
sed -n 's/^memtriage: guard: RSS \([0-9.]*\) MiB > limit.*/\1/p' "$T/leak.err" >"$T/leak.rss"
expect_eq "RSS values logged in MiB" 3 "$(wc -l <"$T/leak.rss")"
awk -v lim=$LIMIT_MIB -v slack=$SLACK_MIB '$1 < lim || $1 >= lim + slack { bad = 1 }
	END { exit bad }' "$T/leak.rss" ||
	fail "RSS at a stop not within [${LIMIT_MIB}, $((LIMIT_MIB + SLACK_MIB))) MiB (one decimal): $(tr '\n' ' ' <"$T/leak.rss")"

# ---- a plateau well under the limit: no restart -----------------------------------
rc=0
"$MT" guard --max-rss ${LIMIT_MIB}M --check-interval 0.05 --grace 2 --restart-limit 2 -- \
	"$MT" sim plateau --cycles 6 --requests 200 --cache-entries 200 \
	>"$T/plateau.out" 2>"$T/plateau.err" || rc=$?
expect_eq "exit status of a plateau under the limit" 0 "$rc"
! grep -q 'RSS .* > limit' "$T/plateau.err" || fail "plateau was stopped: $(cat "$T/plateau.err")"
expect_eq "starts of the plateau" 1 "$(grep -c "guard: started" "$T/plateau.err")"
grep -q '^cycle 6: rss=' "$T/plateau.out" || fail "plateau's stdout lost: $(cat "$T/plateau.out")"

# ---- exit statuses -----------------------------------------------------------------
rc=0
"$MT" guard --max-rss 1G -- sh -c 'exit 7' 2>/dev/null || rc=$?
expect_eq "exit status of a command that exits 7" 7 "$rc"
rc=0
"$MT" guard --max-rss 1G -- sh -c 'kill -TERM $$' 2>"$T/sig.err" || rc=$?
expect_eq "exit status of a command killed by SIGTERM" 143 "$rc"
grep -q "killed by signal 15" "$T/sig.err" || fail "a killed command not reported: $(cat "$T/sig.err")"

# ---- SIGINT to guard: no process left ----------------------------------------------
# interrupt NAME GRACE CMD...: start guard in the background, SIGINT it once
# CMD runs; guard must exit 130 within GRACE + 2 s, leaving no process of
# CMD's group.
interrupt()
{
	local name="$1" grace="$2" pid gpid="" i rc=0
	shift 2
	"$MT" guard --max-rss 1G --check-interval 0.05 --grace "$grace" -- "$@" \
		2>"$T/$name.err" &
	gpid=$!
	for i in $(seq 100); do
		pid=$(sed -n "s/^memtriage: guard: started '.*' as pid \([0-9]*\)$/\1/p" "$T/$name.err")
		[ -n "$pid" ] && break
		sleep 0.05
	done
	[ -n "$pid" ] || { kill -KILL "$gpid"; fail "$name: guard did not log its command's pid"; }
	sleep 0.3   # let CMD set its traps
	kill -INT "$gpid"
	for i in $(seq $(((grace + 2) * 20))); do
		kill -0 "$gpid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$gpid" 2>/dev/null; then
		kill -KILL "$gpid" 2>/dev/null || true
		kill -KILL -- "-$pid" 2>/dev/null || true
		fail "$name: guard still runs $((grace + 2)) s after SIGINT"
	fi
	wait "$gpid" || rc=$?
	expect_eq "$name: exit status after SIGINT" 130 "$rc"
	if kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null; then
		kill -KILL -- "-$pid" 2>/dev/null || true
		fail "$name: processes of the command's group outlived guard"
	fi
}
interrupt sleep 2 sleep 30
grep -q "^memtriage: guard: Interrupt: sending SIGTERM to [0-9]*$" "$T/sleep.err" ||
	fail "sleep: no log of the SIGINT: $(cat "$T/sleep.err")"
# SIGTERM ignored by the shell and its child (inherited): SIGKILL after --grace
interrupt stubborn 1 sh -c 'trap "" TERM; sleep 30 & wait; sleep 30'
grep -q "outlived the grace period: sent SIGKILL" "$T/stubborn.err" ||
	fail "stubborn: no SIGKILL logged: $(cat "$T/stubborn.err")"
echo "guard.sh: ok"
