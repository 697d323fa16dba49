#!/usr/bin/env bash
# `memtriage run -- CMD` must be transparent: CMD's stdout, stdin, argv and
# exit status are those of a bare run; a signal death maps to 128 + signal
# like a shell's; a command that cannot run gives 127 (not found) or 126
# (not executable), as sh, env and timeout do.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

record status sh -c 'echo out; echo err >&2; exit 7'
same_stdout_as_bare status sh -c 'echo out; echo err >&2; exit 7'
grep -q '^err$' "$T/status.err" || fail "CMD's stderr line 'err' is missing from memtriage run's stderr"

record argv printf '%s|' 'a b' '*' '' "\$HOME" 'é'
same_stdout_as_bare argv printf '%s|' 'a b' '*' '' "\$HOME" 'é'

printf 'line 1\nline 2\n' >"$T/in.txt"
RC=0
"$MT" run -o "$T/stdin.trace" --report "$T/stdin.txt" -- cat <"$T/in.txt" >"$T/stdin.out" 2>/dev/null || RC=$?
expect_eq "cat exit status" 0 "$RC"
cmp -s "$T/in.txt" "$T/stdin.out" || fail "stdin did not reach the command unchanged"

record killed sh -c 'kill -TERM $$'
expect_eq "exit status of a command killed by SIGTERM" 143 "$RC"
grep -q 'WARNING: the trace was cut' "$T/killed.txt" ||
	fail "the report of a command killed by SIGTERM does not say the trace was cut"

RC=0
"$MT" run -o "$T/nf.trace" --no-report -- "$T/no-such-program" >/dev/null 2>"$T/nf.err" || RC=$?
expect_eq "exit status for a command not found" 127 "$RC"
grep -q "^memtriage: .*no-such-program" "$T/nf.err" || fail "no error message naming the missing command: $(cat "$T/nf.err")"

# Every fixture's stdout and status were compared in its own test; a whole
# program with a large output: memtriage's own help, recorded.
record help "$MT" --help
same_stdout_as_bare help "$MT" --help
printf '#!/bin/sh\necho hi\n' >"$T/noexec"
chmod -x "$T/noexec"
RC=0
"$MT" run -o "$T/nx.trace" --no-report -- "$T/noexec" >/dev/null 2>"$T/nx.err" || RC=$?
expect_eq "exit status for a command that is not executable (sh, env: 126)" 126 "$RC"

echo "passthrough: ok"
