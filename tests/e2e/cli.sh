#!/usr/bin/env bash
# The command line: help and version exit 0 and print on stdout; usage
# errors exit 2 with a one-line message on stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

expect_ok()
{
	local rc=0
	"$MT" "$@" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "exit status of 'memtriage $*'" 0 "$rc"
	[ -s "$T/out" ] || fail "'memtriage $*' printed nothing on stdout"
}

expect_usage_error()
{
	local rc=0
	"$MT" "$@" >"$T/out" 2>"$T/err" || rc=$?
	expect_eq "exit status of 'memtriage $*'" 2 "$rc"
	[ ! -s "$T/out" ] || fail "'memtriage $*' printed on stdout: $(head -c 200 "$T/out")"
	grep -q '^memtriage: ' "$T/err" || fail "'memtriage $*': no 'memtriage: ' message: $(cat "$T/err")"
}

expect_ok --help
grep -q '^usage: memtriage' "$T/out" || fail "'memtriage --help' lacks a usage line"
for c in run report sim; do
	grep -q "^  $c " "$T/out" || fail "'memtriage --help' does not list '$c'"
done
expect_ok --version
grep -Eq '^memtriage [0-9]+\.[0-9]+' "$T/out" || fail "'memtriage --version': expected 'memtriage X.Y...', got: $(cat "$T/out")"
expect_ok run --help
grep -q 'usage: memtriage run' "$T/out" || fail "'memtriage run --help' lacks its usage line"
expect_ok report --help
grep -q 'usage: memtriage report' "$T/out" || fail "'memtriage report --help' lacks its usage line"
expect_ok sim --help
grep -q '^  frontend ' "$T/out" || fail "'memtriage sim --help' does not list 'frontend'"
expect_ok sim frontend --help
for o in --payload --concurrency --requests --cycles --workers --hold-ms --seed; do
	grep -q -- "$o" "$T/out" || fail "'memtriage sim frontend --help' does not describe $o"
done
expect_ok help run

expect_usage_error no-such-command
expect_usage_error run
expect_usage_error report
expect_usage_error sim no-such-workload
expect_usage_error sim frontend --payload 12Q
expect_usage_error sim frontend --concurrency 0
expect_usage_error sim frontend --no-such-option
expect_usage_error sim frontend extra-argument
echo "cli: ok"
