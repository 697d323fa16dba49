#!/usr/bin/env bash
# `memtriage report --format pprof`, read back by `go tool pprof` (Debian
# golang-go; skipped without go): the profile must tell what the text report
# tells.  On fx_inline (tests/fixtures/fx_inline.c) and `sim leak`:
#  - the sums of each sample type equal the text report's SUMMARY exactly
#    (calls, bytes allocated, leaked bytes and blocks, peak heap);
#  - the stack with the largest inuse_space, alloc_objects and peak_space
#    has the frames of the text report's #1 stack by leaked bytes, by calls
#    and at the peak; `-top` puts its leaf first and inuse_space is the
#    default type, as in a Go heap profile;
#  - fx_inline's inline chain is one location with three lines, innermost
#    first, and `-top` marks the inlined functions "(inline)";
#  - the executable's mapping carries its GNU build-id;
#  - the output is gzip, the same through stdout as with -o, and refused on
#    a terminal and with --diff (usage errors, exit status 2).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

command -v go >/dev/null 2>&1 || skip "go is not installed (Debian package golang-go)"
# go tool pprof reads a local file offline; keep go's caches in the test's directory
export HOME="$T" GOCACHE="$T/gocache" GOPATH="$T/gopath" GOPROXY=off GOFLAGS= GO111MODULE=off

pprof()
{
	go tool pprof -symbolize=none "$@" 2>"$T/pprof.err" || {
		cat "$T/pprof.err" >&2
		fail "go tool pprof $* failed"
	}
}

# Column COL (1-based, in sample_type order) of every sample in `pprof -raw` output, summed.
raw_sum()
{
	awk -v col="$2" '
		/^Samples:/ { s = 1; getline; next }
		/^Locations/ { s = 0 }
		s && /^ *[0-9]+( +[0-9]+)*:/ { sub(/:.*/, ""); split($0, v, " "); t += v[col] }
		END { printf "%.0f\n", t }
	' "$1"
}

# Function names of the sample with the largest value in column COL of
# `pprof -raw` output, leaf first, inlined functions before their caller.
raw_top_frames()
{
	awk -v col="$2" '
		/^Samples:/    { sec = "s"; getline; next }
		/^Locations/   { sec = "l"; next }
		/^Mappings/    { sec = "m"; next }
		sec == "s" && /^ *[0-9]+( +[0-9]+)*:/ {
			split($0, half, ":"); split(half[1], v, " ")
			if (!have || v[col] + 0 > best) { best = v[col] + 0; ids = half[2]; have = 1 }
		}
		sec == "l" && /^ *[0-9]+: 0x/ { id = $1 + 0; n[id] = 0; sub(/^ *[0-9]+: 0x[0-9a-f]+ M=[0-9]+ */, "") }
		sec == "l" && NF {
			sub(/^ +/, ""); sub(/ [^ ]*:-?[0-9]+ s=.*$/, "")
			if ($0 != "") fn[id, ++n[id]] = $0
		}
		END {
			k = split(ids, l, " ")
			for (i = 1; i <= k; i++)
				for (j = 1; j <= n[l[i] + 0]; j++) print fn[l[i] + 0, j]
		}
	' "$1"
}

# Function names of entry #1 of a text report's top list (lib.sh's top_stack).
text_top_frames()
{
	top_stack "$1" "$2" 1 | sed -n 's/^ *at \([^ ]*\).*/\1/p' | grep -v '^0x' || true
}

# The text report's frames must begin the profile's top stack (the text
# report stops at MT_REPORT_FRAMES frames).
check_top()
{
	local name="$1" list="$2" col="$3" want got
	want=$(text_top_frames "$T/$name.txt" "$list")
	got=$(raw_top_frames "$T/$name.raw" "$col" | head -n "$(printf '%s\n' "$want" | wc -l)")
	[ -n "$want" ] || fail "$name: the text report has no $list #1 stack"
	[ "$want" = "$got" ] || fail "$name: top stack by sample type $col differs from the text
report's $list #1:
--- text:
$want
--- pprof:
$got"
}

bytes_allocated()
{
	sed -n 's/^bytes allocated: \([0-9][0-9]*\) bytes.*/\1/p' "$1"
}

# Records NAME, writes its profile and the -raw and -top views; checks totals and tops.
check_profile()
{
	local name="$1" r
	shift
	record "$name" "$@"
	expect_eq "$name: exit status" 0 "$RC"
	"$MT" report --format pprof -o "$T/$name.pb.gz" "$T/$name.trace" ||
		fail "$name: report --format pprof failed"
	expect_eq "$name: gzip magic" "1f8b" "$(head -c 2 "$T/$name.pb.gz" | od -An -tx1 | tr -d ' \n')"
	"$MT" report --format pprof "$T/$name.trace" >"$T/$name.stdout.pb.gz"
	cmp -s "$T/$name.pb.gz" "$T/$name.stdout.pb.gz" || fail "$name: stdout and -o outputs differ"

	pprof -raw "$T/$name.pb.gz" >"$T/$name.raw"
	r="$T/$name.txt"
	grep -q '^alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes\[dflt\] peak_space/bytes$' \
		"$T/$name.raw" || fail "$name: sample types: $(sed -n '/^Samples:/{n;p}' "$T/$name.raw")"
	expect_eq "$name: alloc_objects = calls" "$(summary "$r" calls)" "$(raw_sum "$T/$name.raw" 1)"
	expect_eq "$name: alloc_space = bytes allocated" "$(bytes_allocated "$r")" "$(raw_sum "$T/$name.raw" 2)"
	expect_eq "$name: inuse_objects = leaked blocks" "$(summary "$r" leaked_blocks)" "$(raw_sum "$T/$name.raw" 3)"
	expect_eq "$name: inuse_space = leaked bytes" "$(summary "$r" leaked)" "$(raw_sum "$T/$name.raw" 4)"
	expect_eq "$name: peak_space = peak heap" "$(summary "$r" peak)" "$(raw_sum "$T/$name.raw" 5)"
	check_top "$name" LEAKED 4
	check_top "$name" CALLS 1
	check_top "$name" PEAK 5

	# -top with no -sample_index shows inuse_space, its leaf first
	pprof -top -nodefraction=0 "$T/$name.pb.gz" >"$T/$name.top"
	grep -q '^Type: inuse_space$' "$T/$name.top" || fail "$name: default sample type is not inuse_space"
	grep -q 'no sampling' "$T/$name.top" || fail "$name: the comments do not say the values are exact"
	local leaf
	leaf=$(sed -n '/ flat%/{n;p;q}' "$T/$name.top" | awk '{ print $6 }')
	expect_eq "$name: -top's first entry (inuse_space)" \
		"$(text_top_frames "$r" LEAKED | head -n 1)" "$leaf"
	pprof -top -nodefraction=0 -sample_index=alloc_objects "$T/$name.pb.gz" >"$T/$name.top_calls"
	leaf=$(sed -n '/ flat%/{n;p;q}' "$T/$name.top_calls" | awk '{ print $6 }')
	expect_eq "$name: -top's first entry (alloc_objects)" \
		"$(text_top_frames "$r" CALLS | head -n 1)" "$leaf"
}

# ---- fx_inline: exact figures, the inline chain, the build-id -------------
fx=$(fixture fx_inline)
check_profile inline "$fx"
#             calls  peak   leaked blocks temporary
check_summary inline 140    40000  30000  30     100
expect_eq "inline: bytes allocated" 46400 "$(bytes_allocated "$T/inline.txt")"
expect_eq "inline: top leaked stack (pprof)" "entry_alloc entry_new cache_fill main" \
	"$(raw_top_frames "$T/inline.raw" 4 | tr '\n' ' ' | sed 's/ $//')"
# one Location holds the whole chain: entry_alloc's line starts it, then two continuation lines
awk '/^ *[0-9]+: 0x.* entry_alloc /   { a = NR }
     a && NR == a + 1 && /^ +entry_new / { b = 1 }
     a && NR == a + 2 && /^ +cache_fill / && b { ok = 1 }
     END { exit !ok }' "$T/inline.raw" ||
	fail "inline: no location with lines entry_alloc, entry_new, cache_fill:
$(sed -n '/^Locations/,/^Mappings/p' "$T/inline.raw")"
grep -q '^ .*entry_alloc (inline)$' "$T/inline.top" || fail "inline: -top does not mark entry_alloc inlined"
grep -q '^ .*cache_fill$' "$T/inline.top" || fail "inline: -top lacks cache_fill"
build_id=$(readelf -n "$fx" | sed -n 's/^ *Build ID: *//p')
[ -n "$build_id" ] || fail "fx_inline has no GNU build-id"
grep -q "^[0-9][0-9]*: 0x[0-9a-f]*/0x[0-9a-f]*/0x0 $fx $build_id " "$T/inline.raw" ||
	fail "inline: no mapping of '$fx' with build-id $build_id:
$(sed -n '/^Mappings/,$p' "$T/inline.raw")"

# ---- sim leak: the leak's owner on top ------------------------------------
check_profile leak "$MT" sim leak --cycles 2 --requests 200 --workers 2 --hold-ms 1
expect_eq "leak: leaked bytes (2 x 200 x 4096)" 1638400 "$(summary "$T/leak.txt" leaked)"
top_stack "$T/leak.txt" LEAKED 1 | grep -q '^ *at cache_insert_unbounded ' ||
	fail "leak: the text report's top leaked stack lacks cache_insert_unbounded"
# every leaked byte is under cache_insert_unbounded: its cumulative share is 100%
grep -q ' 100%  cache_insert_unbounded$' "$T/leak.top" ||
	fail "leak: cache_insert_unbounded does not hold all of inuse_space:
$(cat "$T/leak.top")"

# ---- a terminal gets no binary ---------------------------------------------
rc=0
script -qec "'$MT' report --format pprof '$T/inline.trace'" /dev/null >"$T/tty.out" 2>&1 || rc=$?
expect_eq "pprof to a terminal: exit status" 2 "$rc"
grep -q "memtriage: format 'pprof' is binary" "$T/tty.out" ||
	fail "pprof to a terminal: no refusal message: $(head -c 300 "$T/tty.out")"
expect_eq "pprof to a terminal: output lines" 1 "$(grep -c . "$T/tty.out")"

rc=0
"$MT" report --format pprof --diff a b -o "$T/diff.pb.gz" "$T/inline.trace" 2>/dev/null || rc=$?
expect_eq "pprof with --diff: exit status" 2 "$rc"

echo "report_pprof: ok"
