#!/usr/bin/env bash
# memtriage against its peers, heaptrack and valgrind's dhat, on real
# programs: a Python interpreter, `git log`, the gcc driver and a
# multi-threaded C program (tests/e2e/peers/mt.c).  For each one it checks
# that (a) `memtriage run` leaves stdout, stderr and the exit status as a
# bare run has them, and (b) memtriage's totals -- calls to allocation
# functions, peak heap, leaked at exit -- agree with heaptrack's and dhat's
# within 1%, and exactly with the ground truth where the program knows it
# (mt).  Both peers are installed by `make deps` (TEST_DEPS), so a missing
# peer fails the test.  If heaptrack itself breaks on a program (Debian 12's
# heaptrack 1.4.0 crashes on some big workloads), that program is compared
# with dhat only and the output says so.
#
# How the peers are read:
# * heaptrack 1.4.0 (`heaptrack -o FILE CMD` writes FILE.zst, or FILE.gz
#   without zstd).  heaptrack_print shows the peak and the leak only in
#   rounded units ("6.19M", base 1000), so the test reads the data file
#   itself: `a SIZE TRACE` defines allocation info #n (hex), `+ n` is an
#   allocation with info n, `- n` a free of one.  Its counts are checked
#   against heaptrack_print's: calls exactly, peak and leak within the
#   printed rounding (printed leak + "suppressed leaks" = all leaked bytes).
# * dhat (valgrind 3.19) prints exact figures: "Total: X bytes in Y blocks"
#   (Y = calls), "At t-gmax: X bytes" (peak), "At t-end: X bytes in Y
#   blocks" (leaked).  It runs with --run-libc-freeres=no and
#   --run-cxx-freeres=no: by default valgrind makes glibc and libstdc++ free
#   their internal blocks at exit, which leaves t-end without the blocks a
#   real run leaks (python's locale tables, thread DTVs: dhat's t-end was 0
#   for python, and mt's 544 B of DTVs disappeared).
#
# Definition differences, measured here (Debian 12, glibc 2.36, x86-64):
# * heaptrack preloads libstdc++, whose start-up emergency EH pool is one
#   72,704 B malloc: heaptrack counts one more call and 72,704 B more at
#   the peak in every program, even /bin/true (1 call, peak 72,704 B, where
#   memtriage and dhat see 0).  Its atexit handler calls
#   __gnu_cxx::__freeres(), which frees the pool, so its leak is
#   unaffected.  The test subtracts the pool when the data file's first
#   allocation is that 72,704 B block.
# * heaptrack counts only successful calls and ignores realloc(p, 0) (which
#   frees p in glibc: heaptrack keeps p live) and memalign/pvalloc (not
#   hooked); dhat counts neither failed calls nor realloc(p, 0) as blocks
#   and aborts on pvalloc.  memtriage counts every call (README).  None of
#   these programs fails an allocation (their reports have no "failed
#   allocations" line) or calls memalign/pvalloc.
# * glibc's pthread_create callocs a DTV per thread, 16 x (max TLS module
#   id + 16) bytes, kept (and so leaked) while the thread's stack is
#   cached.  Each tool's preloaded libraries change the module count: the
#   DTV is 272 B bare and under dhat, 304 B under memtriage, 320 B under
#   heaptrack.  mt prints the DTV size of the process it runs in, so its
#   expected figures are exact for every tool: calls + 2, peak + 2 x DTV,
#   leaked + 2 x DTV (heaptrack: + 1 call and + 72,704 B at the peak).
# * The environment differs: memtriage leaves LD_PRELOAD= (empty) and
#   MEMTRIAGE_OUTPUT in it (2 variables more than a bare run), heaptrack
#   unsets both of its own (none more), valgrind adds LD_PRELOAD,
#   LD_LIBRARY_PATH, GLIBCXX_FORCE_NEW and GLIBCPP_FORCE_NEW (4 more).
#   Programs that copy it see that: git and the gcc driver setenv(), which
#   reallocates environ at 8 B per variable, so heaptrack's peak and leak
#   are 16 B below memtriage's and dhat's 16 B above; python builds
#   os.environ, so heaptrack counts 3 calls fewer and dhat 3 more.
# * Python hashes by address in places (even with PYTHONHASHSEED=0), so its
#   peak moves by a few hundred bytes from run to run.
# * Children: all three tools record only the process they start.  gcc is
#   a driver that runs cc1 and as: memtriage removes itself from LD_PRELOAD
#   inside CMD, heaptrack unsets LD_PRELOAD and its output pipe at start-up
#   (and stops recording in fork children), valgrind runs with
#   --trace-children=no.  So all three see the driver's 265 calls, where
#   cc1 alone makes millions.  (cc1 itself is no good for a 1% comparison:
#   its GC page table (ggc-page.cc) callocs a 32 KiB second-level table for
#   each 16 MiB-aligned address range its pages fall in, so with ASLR its
#   calls vary by 0-2 and its peak by 0-64 KiB (1-2%) between runs of the
#   same tool.  In a run with dhat's 260,744 calls memtriage had dhat's
#   peak, 2,587,180 B, exactly.)
#
# Figures of two runs (calls / peak / leaked; heaptrack less its pool):
#   python  memtriage 79,987 / 6,132,618-6,132,946 / 8,160
#           heaptrack 79,984 / 6,132,560-6,132,772 / 8,160
#           dhat      79,990 / 6,131,963           / 8,160
#   git log memtriage 15,852 / 932,553 / 919,727   heaptrack 15,852 /
#           932,537 / 919,711   dhat 15,852 / 932,569 / 919,743
#   gcc     memtriage 265 / 176,575 / 171,952      heaptrack 265 /
#           176,559 / 171,936   dhat 265 / 176,591 / 171,968
#   mt      TRUTH 40,096 / 6,297,778 / 6,322 (+ 2 DTVs): memtriage 40,098 /
#           6,298,386 / 6,930, heaptrack 40,098 / 6,298,418 / 6,962, dhat
#           40,098 / 6,298,322 / 6,866; each exact for its DTV size
set -euo pipefail
. "$(dirname "$0")/lib.sh"

for tool in heaptrack heaptrack_print valgrind git gcc python3; do
	command -v "$tool" >/dev/null ||
		fail "'$tool' is not installed (make deps installs the test dependencies)"
done
command -v zstd >/dev/null || command -v gzip >/dev/null || fail "neither zstd nor gzip is installed"
valgrind --tool=dhat --help >/dev/null 2>&1 || fail "valgrind has no dhat tool"

HT_POOL_SIZE=72704
BAD=""          # every disagreement, reported together at the end
HT_USED=0       # programs compared with heaptrack
START=$SECONDS

# ---- running a program bare and under each tool ---------------------------
# Each takes NAME and the command, with the caller's stdin.

# Bare run: $T/NAME.bare.out, .bare.err, exit status in BARE_RC.
bare()
{
	local name="$1"
	shift
	BARE_RC=0
	"$@" >"$T/$name.bare.out" 2>"$T/$name.bare.err" || BARE_RC=$?
}

# (a): the `record`ed run's exit status, stdout and stderr equal the bare
# run's.  From stderr, memtriage's own lines ("memtriage: ...") are dropped,
# and so is mt's "dtv=" figure, which the recorder changes by design.
same_io_as_bare()
{
	local name="$1" f
	expect_eq "$name: exit status under memtriage run (bare run: $BARE_RC)" "$BARE_RC" "$RC"
	cmp -s "$T/$name.bare.out" "$T/$name.out" || {
		diff "$T/$name.bare.out" "$T/$name.out" | head -20 >&2
		fail "$name: stdout under memtriage run differs from the bare run"
	}
	for f in bare.err err; do
		sed -e '/^memtriage: /d' -e 's/ dtv=[0-9]*$//' "$T/$name.$f" >"$T/$name.$f.cmp"
	done
	cmp -s "$T/$name.bare.err.cmp" "$T/$name.err.cmp" || {
		diff "$T/$name.bare.err.cmp" "$T/$name.err.cmp" | head -20 >&2
		fail "$name: stderr under memtriage run differs from the bare run"
	}
}

# memtriage's SUMMARY of $T/NAME.txt -> MT_CALLS, MT_PEAK, MT_LEAKED, MT_BLOCKS.
mt_figures()
{
	local r="$T/$1.txt"
	MT_CALLS=$(summary "$r" calls)
	MT_PEAK=$(summary "$r" peak)
	MT_LEAKED=$(summary "$r" leaked)
	MT_BLOCKS=$(summary "$r" leaked_blocks)
	if grep -q '^failed allocations:' "$r"; then
		fail "$1: the program failed allocations, which the peers do not count: $(grep '^failed allocations:' "$r")"
	fi
}

# heaptrack_print's "X.YYU" (base 1000) -> "bytes half_ulp" in integers.
ht_units()
{
	awk -v s="$1" 'BEGIN {
		u = substr(s, length(s)); v = substr(s, 1, length(s) - 1)
		m = (u == "B") ? 1 : (u == "K") ? 1e3 : (u == "M") ? 1e6 : (u == "G") ? 1e9 : (u == "T") ? 1e12 : -1
		if (m < 0 || v !~ /^[0-9]+(\.[0-9]+)?$/) { print "bad"; exit }
		d = index(v, ".") ? length(v) - index(v, ".") : 0
		printf "%.0f %.0f\n", v * m, (m == 1) ? 0 : m * 0.5 / 10 ^ d + 1
	}'
}

# Runs CMD under heaptrack and reads its data file -> HT_OK (0 when
# heaptrack failed: HT_WHY says why), HT_CALLS, HT_PEAK, HT_LEAKED,
# HT_BLOCKS (the pool taken out of calls and peak, see the top), HT_POOL,
# and HT_ERR (the output of the run, the program's stderr included).
ht_run()
{
	local name="$1" rc=0 data figs printed v
	shift
	HT_OK=0
	HT_WHY=""
	HT_ERR="$T/$name.ht.log"
	heaptrack -o "$T/$name.ht" "$@" >"$HT_ERR" 2>&1 || rc=$?
	data=$(ls "$T/$name.ht".zst "$T/$name.ht".gz 2>/dev/null | head -n 1 || true)
	if [ "$rc" != "$BARE_RC" ]; then
		HT_WHY="exit status $rc (bare run: $BARE_RC)"
		return 0
	fi
	if [ -z "$data" ]; then
		HT_WHY="no data file"
		return 0
	fi
	case "$data" in
	*.zst) zstd -dcq "$data" >"$T/$name.ht.txt" 2>/dev/null || true ;;
	*.gz)  gzip -dc "$data" >"$T/$name.ht.txt" 2>/dev/null || true ;;
	esac
	# heaptrack_interpret ends a complete file with "# ips: N".
	if ! tail -n 2 "$T/$name.ht.txt" | grep -q '^# ips: '; then
		HT_WHY="data file incomplete (heaptrack_interpret crashed?)"
		return 0
	fi
	figs=$(awk -v pool="$HT_POOL_SIZE" '
		function hex(s,   i, v) {
			v = 0; s = tolower(s)
			for (i = 1; i <= length(s); i++)
				v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
			return v
		}
		$1 == "a" { size[n++] = hex($2) }
		$1 == "+" { s = size[hex($2)]; if (!calls) first = s
		            calls++; live++; cur += s; if (cur > peak) peak = cur }
		$1 == "-" { live--; cur -= size[hex($2)] }
		END {
			p = (calls && first == pool) ? pool : 0
			printf "%d %d %d %d %d %d\n", calls, peak, cur, live, p, (p ? calls - 1 : calls)
		}' "$T/$name.ht.txt")
	read -r HT_CALLS HT_PEAK HT_LEAKED HT_BLOCKS HT_POOL _ <<<"$figs"
	# The same figures as heaptrack's own analyzer, to its printed precision.
	printed=$(heaptrack_print -f "$data" -p 0 -a 0 -T 0 -l 0 2>/dev/null) || {
		HT_WHY="heaptrack_print failed on its data file"
		return 0
	}
	v=$(sed -n 's/^calls to allocation functions: \([0-9]*\) .*/\1/p' <<<"$printed")
	if [ -z "$v" ]; then
		HT_WHY="heaptrack_print printed no totals"
		return 0
	fi
	[ "$v" = "$HT_CALLS" ] ||
		fail "$name: heaptrack data file read as $HT_CALLS calls, heaptrack_print says '$v'"
	ht_check_printed "$name" peak "$HT_PEAK" "$(sed -n 's/^peak heap memory consumption: //p' <<<"$printed")" 0
	ht_check_printed "$name" leaked "$HT_LEAKED" "$(sed -n 's/^total memory leaked: //p' <<<"$printed")" \
		"$(sed -n 's/^suppressed leaks: //p' <<<"$printed")"
	HT_CALLS=$((HT_CALLS - (HT_POOL ? 1 : 0)))
	HT_PEAK=$((HT_PEAK - HT_POOL))
	HT_OK=1
	HT_USED=$((HT_USED + 1))
}

# Fails unless heaptrack_print's rounded PRINTED (+ SUPPRESSED) is within
# the rounding of the printed digits of the figure we read, GOT.
ht_check_printed()
{
	local name="$1" what="$2" got="$3" a b v sum=0 tol=0
	for v in "$4" "$5"; do
		[ "$v" = 0 ] || [ -z "$v" ] && continue
		read -r a b <<<"$(ht_units "$v")"
		[ "$a" = bad ] && fail "$name: cannot read heaptrack_print's $what '$v'"
		sum=$((sum + a))
		tol=$((tol + b))
	done
	[ -n "$4" ] || fail "$name: heaptrack_print printed no $what"
	local d=$((got - sum))
	[ "${d#-}" -le "$tol" ] ||
		fail "$name: heaptrack data file read as $what $got B, heaptrack_print says '$4'${5:+ + '$5' suppressed}"
}

# Runs CMD under dhat -> DH_CALLS, DH_PEAK, DH_LEAKED, DH_BLOCKS; the
# program's stderr in DH_ERR, valgrind's in $T/NAME.dhat.log.
dh_run()
{
	local name="$1" rc=0 log="$T/$1.dhat.log"
	shift
	DH_ERR="$T/$name.dhat.err"
	valgrind --tool=dhat --run-libc-freeres=no --run-cxx-freeres=no \
		--dhat-out-file=/dev/null --log-file="$log" "$@" >"$T/$name.dhat.out" 2>"$DH_ERR" || rc=$?
	[ "$rc" = "$BARE_RC" ] || {
		tail -n 20 "$log" >&2
		fail "$name: exit status $rc under dhat (bare run: $BARE_RC)"
	}
	DH_CALLS=$(sed -n 's/^==[0-9]*== Total: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$log" | tr -d ,)
	DH_PEAK=$(sed -n 's/^==[0-9]*== At t-gmax: *\([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
	DH_LEAKED=$(sed -n 's/^==[0-9]*== At t-end: *\([0-9,]*\) bytes.*/\1/p' "$log" | tr -d ,)
	DH_BLOCKS=$(sed -n 's/^==[0-9]*== At t-end: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' "$log" | tr -d ,)
	[ -n "$DH_CALLS" ] && [ -n "$DH_PEAK" ] && [ -n "$DH_LEAKED" ] && [ -n "$DH_BLOCKS" ] || {
		tail -n 20 "$log" >&2
		fail "$name: no totals in dhat's output"
	}
}

# ---- comparing -------------------------------------------------------------

# within1 WHAT PEER WANT GOT: GOT (memtriage) within 1% of WANT (PEER's).
within1()
{
	local d=$(($4 - $3))
	if [ $((100 * ${d#-})) -gt "$3" ] && [ "$d" != 0 ]; then
		BAD="$BAD
  $1: memtriage $4, $2 $3 (differs by $d, more than 1%)"
	fi
}

# exact WHAT WHO WANT GOT
exact()
{
	[ "$3" = "$4" ] || BAD="$BAD
  $1: $2 expected $3, got $4"
}

# The three totals of memtriage against both peers within 1%, and a line
# of figures.
compare_peers()
{
	local name="$1" ht="heaptrack: failed, $HT_WHY"
	if [ "$HT_OK" = 1 ]; then
		within1 "$name calls" heaptrack "$HT_CALLS" "$MT_CALLS"
		within1 "$name peak" heaptrack "$HT_PEAK" "$MT_PEAK"
		within1 "$name leaked" heaptrack "$HT_LEAKED" "$MT_LEAKED"
		ht="heaptrack $HT_CALLS / $HT_PEAK / $HT_LEAKED"
	fi
	within1 "$name calls" dhat "$DH_CALLS" "$MT_CALLS"
	within1 "$name peak" dhat "$DH_PEAK" "$MT_PEAK"
	within1 "$name leaked" dhat "$DH_LEAKED" "$MT_LEAKED"
	echo "peers: $name (calls / peak / leaked): memtriage $MT_CALLS / $MT_PEAK / $MT_LEAKED;" \
		"$ht; dhat $DH_CALLS / $DH_PEAK / $DH_LEAKED"
	[ "$HT_OK" = 1 ] || echo "peers: NOTE: heaptrack failed on $name ($HT_WHY); compared with dhat only"
}

# All four: bare, memtriage, heaptrack, dhat; then (a) and (b).
run_all()
{
	local name="$1" in="$2"
	shift 2
	bare "$name" "$@" <"$in"
	record "$name" "$@" <"$in"
	same_io_as_bare "$name"
	mt_figures "$name"
	ht_run "$name" "$@" <"$in"
	dh_run "$name" "$@" <"$in"
}

# ---- 1. python3 -c ---------------------------------------------------------
# The interpreter itself: python3 on PATH may be a shim that execs it.
# pymalloc off so every object is a malloc; -S (no site) keeps dhat's run
# near 2 s.  A one-line script: heaptrack writes the command line into its
# data file, one line per line.
py=$(python3 -c 'import sys; print(sys.executable)')
[ -x "$py" ] || fail "python3's sys.executable '$py' is not executable"
printf 'alpha beta\ngamma\ndelta epsilon zeta\n' >"$T/words"
script='import sys; words = sys.stdin.read().split(); '
script+='d = {str(i): [i] * (i % 50) for i in range(10000)}; '
script+='keep = [bytearray(1000 + i) for i in range(1000)]; del d; '
script+='print(len(words), len(keep), sum(map(len, keep))); sys.exit(3)'
export PYTHONMALLOC=malloc PYTHONHASHSEED=0
run_all python "$T/words" "$py" -S -c "$script"
unset PYTHONMALLOC PYTHONHASHSEED
expect_eq "python: exit status" 3 "$RC"
expect_eq "python: stdout" "6 1000 1499500" "$(cat "$T/python.out")"
[ "$MT_CALLS" -ge 20000 ] || fail "python: expected >= 20000 calls (10,000 lists and strings), got $MT_CALLS"
compare_peers python

# ---- 2. git log --------------------------------------------------------------
# 300 commits with fixed dates, each changing one of 20 files, made in one
# fast-import process.
export GIT_CONFIG_NOSYSTEM=1 HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config"
mkdir -p "$HOME" "$T/repo"
git init -q -b main "$T/repo"
awk 'BEGIN {
	for (i = 1; i <= 300; i++) {
		t = 1700000000 + 60 * i
		printf "commit refs/heads/main\nauthor A U Thor <author@example.com> %d +0000\n", t
		printf "committer C O Mitter <committer@example.com> %d +0000\n", t
		printf "data <<EOT\nchange %d\n\nbody of change %d\nEOT\n", i, i
		c = sprintf("line %d of file %d\n", i, i % 20)
		printf "M 644 inline f%02d.txt\ndata %d\n%s\n", i % 20, length(c), c
	}
}' | git -C "$T/repo" fast-import --quiet
run_all git /dev/null git -C "$T/repo" --no-pager log --stat
expect_eq "git: commits logged" 300 "$(grep -c '^commit ' "$T/git.out")"
compare_peers git

# ---- 3. gcc -O2 -c -----------------------------------------------------------
# 2000 functions and one warning (stderr).  The driver runs cc1 and as as
# children; every tool records the driver only (see the top).
awk 'BEGIN {
	print "int warns(void) { int unused; return 0; }"
	for (i = 0; i < 2000; i++)
		printf "int f%d(int x) { return x * %d + %d; }\n", i, i % 97 + 1, i
}' >"$T/big.c"
cd "$T"
bare gcc gcc -O2 -Wall -c big.c -o gcc.bare.o </dev/null
record gcc gcc -O2 -Wall -c big.c -o gcc.mt.o </dev/null
same_io_as_bare gcc
cmp -s gcc.bare.o gcc.mt.o || fail "gcc: the object file under memtriage run differs from the bare run's"
grep -q 'warning: unused variable' "$T/gcc.err" || fail "gcc: the warning is missing from stderr"
mt_figures gcc
ht_run gcc gcc -O2 -Wall -c big.c -o gcc.ht.o </dev/null
dh_run gcc gcc -O2 -Wall -c big.c -o gcc.dh.o </dev/null
cd - >/dev/null
[ "$MT_CALLS" -lt 5000 ] ||
	fail "gcc: $MT_CALLS calls: more than the driver makes (265); were its children recorded?"
compare_peers gcc

# ---- 4. multi-threaded: peers/mt ---------------------------------------------
# Exact: its TRUTH line (stderr, printed in the process each tool ran, with
# that process's DTV size) against all three tools.
gcc -O2 -g -pthread -o "$T/mt" "$MT_SRC/tests/e2e/peers/mt.c" || fail "cannot build peers/mt.c"
run_all mt /dev/null "$T/mt" 20000
truth()
{
	local v
	v=$(sed -n "s/^TRUTH .*\\b$2=\\([0-9]*\\).*/\\1/p" "$1" | tail -n 1)
	[ -n "$v" ] || fail "mt: no TRUTH $2= in $1"
	echo "$v"
}
c=$(truth "$T/mt.err" calls)
d=$(truth "$T/mt.err" dtv)
p=$(truth "$T/mt.err" peak)
l=$(truth "$T/mt.err" leaked)
b=$(truth "$T/mt.err" leaked_blocks)
[ "$c" -ge 40000 ] || fail "mt: TRUTH calls=$c, expected >= 40000"
exact "mt calls" memtriage $((c + 2)) "$MT_CALLS"
exact "mt peak" memtriage $((p + 2 * d)) "$MT_PEAK"
exact "mt leaked" memtriage $((l + 2 * d)) "$MT_LEAKED"
exact "mt leaked blocks" memtriage $((b + 2)) "$MT_BLOCKS"
if [ "$HT_OK" = 1 ]; then
	hd=$(truth "$HT_ERR" dtv)
	[ "$HT_POOL" = "$HT_POOL_SIZE" ] || BAD="$BAD
  mt: heaptrack's data file does not start with the ${HT_POOL_SIZE} B libstdc++ pool"
	exact "mt calls" heaptrack $((c + 2)) "$HT_CALLS"
	exact "mt peak" heaptrack $((p + 2 * hd)) "$HT_PEAK"
	exact "mt leaked" heaptrack $((l + 2 * hd)) "$HT_LEAKED"
	exact "mt leaked blocks" heaptrack $((b + 2)) "$HT_BLOCKS"
fi
dd=$(truth "$DH_ERR" dtv)
exact "mt calls" dhat $((c + 2)) "$DH_CALLS"
exact "mt peak" dhat $((p + 2 * dd)) "$DH_PEAK"
exact "mt leaked" dhat $((l + 2 * dd)) "$DH_LEAKED"
exact "mt leaked blocks" dhat $((b + 2)) "$DH_BLOCKS"
echo "peers: mt TRUTH calls=$c peak=$p leaked=$l; DTV $d B under memtriage," \
	"${hd:-?} B under heaptrack, $dd B under dhat"
compare_peers mt

[ "$HT_USED" -gt 0 ] || BAD="$BAD
  heaptrack failed on every program"
[ -z "$BAD" ] || fail "memtriage disagrees with its peers:$BAD"
echo "peers: ok ($((SECONDS - START)) s)"
