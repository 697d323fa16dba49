#!/usr/bin/env bash
# bench/sampling.sh: what the recorder's periodic sampling costs (see bench/README.md).
#
#   bash bench/sampling.sh            5 + 5 alternating runs, ~1 min on 2 cores
#
# 1. Wall time of `memtriage sim frontend` recorded at the default interval (100 ms: RSS,
#    mallinfo2, every 10th sample malloc_info) against the same recording with sampling
#    effectively off (--interval 3600000), runs alternating A B A B ..., median of each, ratio.
#    Goal: < 2% extra.
# 2. The cost of one mallinfo2() and one malloc_info() call on a heap shaped like the
#    frontend's (THREADS threads x 4000 blocks of 16 B-4 KiB, half freed, under
#    MALLOC_ARENA_MAX=1, 2, 16): median of 200 calls, and its share of a 100 ms period.
# Appends a table with the date and machine to bench/RESULTS-sampling.md (SAMPLING_OUT).
#
# Knobs: SAMPLING_RUNS (5), SAMPLING_ARGS (frontend arguments, default: the sim's defaults),
#        SAMPLING_ARENAS (16: MALLOC_ARENA_MAX of the timed runs, so the figure does not depend
#        on the cores), SAMPLING_OUT, BUILD (build).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MT=$BUILD/memtriage
WORK=$BUILD/bench/sampling
RUNS=${SAMPLING_RUNS:-5}
ARENAS=${SAMPLING_ARENAS:-16}
OUT=${SAMPLING_OUT:-$ROOT/bench/RESULTS-sampling.md}
read -r -a FE_ARGS <<< "${SAMPLING_ARGS:-}"
OFF_MS=3600000

log() { printf '[sampling %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'sampling: %s\n' "$*" >&2; exit 1; }

for i in 1 2 3 4 5 6 7 8 9 10; do   # someone may be rebuilding build/
    [ -x "$MT" ] && [ -f "$BUILD/libmemtriage.so" ] && break
    sleep 3
done
[ -x "$MT" ] || die "$MT is not built (cmake --build build)"
command -v gcc >/dev/null || die "gcc not found"
mkdir -p "$WORK" || die "cannot create $WORK"

TIMERUN=$BUILD/bench/timerun
if [ ! -x "$TIMERUN" ] || [ "$HERE/timerun.c" -nt "$TIMERUN" ]; then
    gcc -O2 -o "$TIMERUN" "$HERE/timerun.c" || die "cannot build bench/timerun.c"
fi

# ---- 1. recorded wall time, sampling on vs off ----------------------------------------------
# timed NAME INTERVAL: one recorded run; prints its wall seconds
timed() {
    local name=$1 iv=$2 res=$WORK/$1.res try w rc
    for try in 1 2; do
        rm -f "$res" "$WORK/$name.trace"
        MALLOC_ARENA_MAX=$ARENAS "$TIMERUN" "$res" 300 "$MT" run --interval "$iv" \
            -o "$WORK/$name.trace" --no-report -- "$MT" sim frontend "${FE_ARGS[@]}" \
            >"$WORK/$name.out" 2>"$WORK/$name.err"
        read -r w _ rc _ < "$res" 2>/dev/null || rc=2
        [ "$rc" = 0 ] && { echo "$w"; return 0; }
        log "$name failed (status $rc); retrying once"; sleep 3
    done
    die "$name failed twice: see $WORK/$name.err"
}
samples() {   # samples TRACE: timeline points of a trace, from its report's verdict
    "$MT" report "$1" 2>/dev/null | sed -n -e 's/^after warm-up: samples [0-9]*-[0-9]* of \([0-9]*\).*/\1/p' \
        -e 's/^too short to tell: \([0-9]*\) samples\{0,1\} .*/\1/p' | head -1
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
log "frontend ${FE_ARGS[*]:-(defaults)}, MALLOC_ARENA_MAX=$ARENAS: $RUNS x (interval 100, interval $OFF_MS)"
timed warmup 100 >/dev/null
ON=() OFF=()
for ((i = 1; i <= RUNS; i++)); do
    if ((i % 2)); then   # alternate which goes first, so a drift in load hits both
        ON+=("$(timed on.$i 100)"); OFF+=("$(timed off.$i $OFF_MS)")
    else
        OFF+=("$(timed off.$i $OFF_MS)"); ON+=("$(timed on.$i 100)")
    fi
    log "  run $i: interval 100 ${ON[-1]} s, interval $OFF_MS ${OFF[-1]} s"
done
m_on=$(printf '%s\n' "${ON[@]}" | median)
m_off=$(printf '%s\n' "${OFF[@]}" | median)
extra=$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%+.1f", 100 * (a / b - 1) }')
pass=$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { print (a / b - 1 < 0.02) ? "PASS" : "MISS" }')
n_on=$(samples "$WORK/on.$RUNS.trace"); n_off=$(samples "$WORK/off.$RUNS.trace")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
log "median: interval 100 $m_on s, off $m_off s: $extra% ($pass)"

# ---- 2. one mallinfo2 / malloc_info call ------------------------------------------------------
cat > "$WORK/mallinfo_cost.c" <<'C'
/* mallinfo_cost THREADS CALLS: build a heap like the frontend's (each thread allocates 4000
 * blocks of 16 B - 4 KiB and frees every other one, so the bins hold free chunks), keep the
 * threads' arenas, then time CALLS mallinfo2() and CALLS/10 malloc_info() calls.
 * Prints: arenas_bytes mallinfo2_median_us mallinfo2_max_us malloc_info_median_us */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static pthread_barrier_t bar;
static void *work(void *arg) {
	unsigned s = (unsigned)(size_t)arg;
	void **p = malloc(4000 * sizeof *p);
	for (int i = 0; i < 4000; i++) p[i] = malloc(16 + rand_r(&s) % 4080);
	for (int i = 0; i < 4000; i += 2) free(p[i]);
	pthread_barrier_wait(&bar);   /* all hold their blocks while the arenas are spread */
	pthread_barrier_wait(&bar);
	return NULL;
}
int main(int argc, char **argv) {
	int nt = atoi(argv[1]), calls = atoi(argv[2]);
	pthread_t t[256];
	pthread_barrier_init(&bar, NULL, nt + 1);
	for (int i = 0; i < nt; i++) pthread_create(&t[i], NULL, work, (void *)(size_t)(i + 1));
	pthread_barrier_wait(&bar);
	double *d = malloc(calls * sizeof *d), *e = malloc(calls * sizeof *e);
	struct mallinfo2 mi = mallinfo2();
	for (int i = 0; i < calls; i++) { double a = now_us(); mi = mallinfo2(); d[i] = now_us() - a; }
	FILE *null = fopen("/dev/null", "w");
	int ncalls = calls / 10 ? calls / 10 : 1;
	for (int i = 0; i < ncalls; i++) { double a = now_us(); malloc_info(0, null); e[i] = now_us() - a; }
	qsort(d, calls, sizeof *d, cmp); qsort(e, ncalls, sizeof *e, cmp);
	printf("%zu %.2f %.2f %.2f\n", mi.arena, d[calls / 2], d[calls - 1], e[ncalls / 2]);
	pthread_barrier_wait(&bar);
	for (int i = 0; i < nt; i++) pthread_join(t[i], NULL);
	return 0;
}
C
gcc -O2 -o "$WORK/mallinfo_cost" "$WORK/mallinfo_cost.c" -pthread || die "cannot build mallinfo_cost"
THREADS=48
MI_ROWS=()
for a in 1 2 16; do
    read -r ab med mx info < <(MALLOC_ARENA_MAX=$a "$WORK/mallinfo_cost" "$THREADS" 200) ||
        die "mallinfo_cost failed"
    MI_ROWS+=("$(printf '| %s | %.1f MiB | %s µs | %s µs | %s µs | %.3f%% |' "$a" \
        "$(awk -v b="$ab" 'BEGIN { print b / 1048576 }')" "$med" "$mx" "$info" \
        "$(awk -v m="$med" -v i="$info" 'BEGIN { print 100 * (m + i / 10) / 100000 }')")")
    log "  MALLOC_ARENA_MAX=$a: mallinfo2 median $med us (max $mx), malloc_info $info us"
done

# ---- results ------------------------------------------------------------------------------
{
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
    echo
    echo "\`bash bench/sampling.sh\` — $(uname -sr), $(ldd --version 2>&1 | head -1), memtriage revision $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths modified or untracked); load average $load0 at start, $load1 at end."
    echo
    echo "Recorded wall time of \`MALLOC_ARENA_MAX=$ARENAS memtriage run --no-report -- memtriage sim frontend ${FE_ARGS[*]:-(default arguments)}\`, median of $RUNS alternating runs:"
    echo
    echo "| interval | samples in the trace | runs (s) | median (s) |"
    echo "|---|---|---|---|"
    echo "| 100 ms (default) | ${n_on:-?} | ${ON[*]} | $m_on |"
    echo "| $OFF_MS ms (off) | ${n_off:-?} | ${OFF[*]} | $m_off |"
    echo
    echo "Sampling at 100 ms: **$extra%** wall time (goal < 2%: **$pass**)."
    echo
    echo "One call on a frontend-shaped heap ($THREADS threads x 4000 blocks of 16 B-4 KiB, half freed), median of 200 (malloc_info: 20); share = (mallinfo2 + malloc_info / 10) per 100 ms sample:"
    echo
    echo "| MALLOC_ARENA_MAX | arena bytes | mallinfo2 median | mallinfo2 max | malloc_info median | share of a 100 ms period |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${MI_ROWS[@]}"
} > "$WORK/section.md"
[ -f "$OUT" ] || printf '# Sampling cost (bench/sampling.sh)\n\nNewest last.  See bench/README.md, "Sampling cost".\n' > "$OUT"
cat "$WORK/section.md" >> "$OUT"
cat "$WORK/section.md"
log "appended to $OUT"
