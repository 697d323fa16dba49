#!/usr/bin/env bash
# fx_dlopen: allocations and a leak inside a dlopen()ed library, named in the
# report by function, also after dlclose() unmapped it
# (tests/fixtures/fx_dlopen.c, libfxplugin.c).
#
# The dynamic linker allocates too, and some of its blocks hold the
# plugin's path, so the plugin is copied to a path of exactly 99 characters.
# Measured on Debian 12 (glibc 2.36) with valgrind dhat (same totals and
# t-gmax) and memtriage, for that path length:
#   107 calls (100 by the plugin), 29,564 bytes allocated, peak 4,468 B;
#   leaked at exit 2,560 B in 2 blocks with --close (the plugin's 256 B and
#   a 2,304 B _dl_find_object segment that glibc never frees), 4,212 B in
#   7 blocks without (link map, scope, version and search-path blocks too).
# dhat's t-end differs: valgrind runs glibc's __libc_freeres at exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fx=$(fixture fx_dlopen)
plugin="$MT_BIN/tests/libfxplugin.so"
[ -f "$plugin" ] || fail "'$plugin' is not built"
pad=$((99 - ${#T} - 2 - 14))
[ $pad -ge 1 ] || skip "temporary directory path '$T' is too long"
dir="$T/$(printf '%*s' $pad '' | tr ' ' p)"
mkdir "$dir"
cp "$plugin" "$dir/libfxplugin.so"
path="$dir/libfxplugin.so"
expect_eq "plugin path length" 99 "${#path}"

check_plugin_leak()
{
	local name="$1" n e
	for n in 1 2 3 4 5; do
		e=$(top_stack "$T/$name.txt" LEAKED $n)
		if grep -q '^ *at fxplugin_work ' <<<"$e"; then
			grep -q '256 B leaked in 1 block' <<<"$e" ||
				fail "$name: the plugin's leak should be 256 B in 1 block: $e"
			grep -q '^ *at fxplugin_leak_one ' <<<"$e" ||
				fail "$name: the plugin's leak stack lacks fxplugin_leak_one: $e"
			return 0
		fi
	done
	sed -n '/^TOP STACKS BY BYTES LEAKED/,/^TOP STACKS BY ALLOC/p' "$T/$name.txt" >&2
	fail "$name: no top leaked stack names fxplugin_work"
}

record dlclose "$fx" "$path" --close
same_stdout_as_bare dlclose "$fx" "$path" --close
#             calls peak  leaked blocks temporary
check_summary dlclose 107 4468  2560   2      0
check_plugin_leak dlclose

record dlopen "$fx" "$path"
same_stdout_as_bare dlopen "$fx" "$path"
check_summary dlopen 107 4468  4212   7      0
check_plugin_leak dlopen
echo "dlopen: ok"
