#!/usr/bin/env bash
# bench/run.sh: memtriage overhead, trace-size, analysis-speed and correctness benchmark.
# Invoked by 'make bench'; see bench/README.md for what it measures and the knobs.
#
#   bash bench/run.sh                 full sizes (anchors README), ~10-15 min on 2 cores
#   BENCH_QUICK=1 bash bench/run.sh   1/10 sizes, ~1-2 min (not comparable with the goals)
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))
cd "$ROOT" || exit 1

# ---- configuration -----------------------------------------------------------------------
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MT=$BUILD/memtriage
LIB=$BUILD/libmemtriage.so
WORK=${BENCH_WORK:-$BUILD/bench}
WL_SRC=${BENCH_WORKLOADS:-$ROOT/../shared/anchors/workloads}
ANCHORS_README=${BENCH_ANCHORS_README:-$WL_SRC/../README.md}
QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=
if [ -n "$QUICK" ]; then
    RUNS=${BENCH_RUNS:-3}; HT_RUNS=${BENCH_HT_RUNS:-1}; REPORT_RUNS=${BENCH_REPORT_RUNS:-1}
    OUT=${BENCH_OUT:-$WORK/RESULTS-quick.md}
    declare -A ARGS=([churn]="2000000" [mt]="500000" [bigtree]="200000 5" [frontend]="--requests 300")
else
    RUNS=${BENCH_RUNS:-5}; HT_RUNS=${BENCH_HT_RUNS:-3}; REPORT_RUNS=${BENCH_REPORT_RUNS:-3}
    OUT=${BENCH_OUT:-$ROOT/bench/RESULTS.md}
    declare -A ARGS=([churn]="20000000" [mt]="5000000" [bigtree]="2000000 5" [frontend]="")
fi
FLAVOURS=${BENCH_FLAVOURS:-"nofp fp"}
WORKLOADS=${BENCH_ONLY:-"churn mt bigtree frontend"}
HT_ARGS=${BENCH_HT_ARGS:-}
declare -A CFLAGS=([nofp]="-O2 -g" [fp]="-O2 -g -fno-omit-frame-pointer")
mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 8388608)
# heaptrack_interpret of Debian's 1.4.0 grows to 18 GiB before dying of bad_alloc on churn and
# bigtree: cap heaptrack's address space so it dies early instead of pushing the machine into OOM.
HT_VMEM_MB=${BENCH_HT_VMEM_MB:-$(( mem_kb / 2048 < 6144 ? mem_kb / 2048 : 6144 ))}

RAW=$WORK/raw.tsv
T0=$(date +%s)
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
rec() {   # one tab-separated record; fields lose their own tabs and newlines
    local -a f=() a
    for a in "$@"; do a=${a//$'\n'/ }; f+=("${a//$'\t'/ }"); done
    local IFS=$'\t'; printf '%s\n' "${f[*]}" >> "$RAW"
}

# ---- prerequisites -------------------------------------------------------------------------
if [ ! -d "$WL_SRC" ] || [ ! -f "$WL_SRC/churn.c" ]; then
    die "anchor workloads not found in '$WL_SRC' (expected churn.c, mt.c, bigtree.c, common.h);
       set BENCH_WORKLOADS=/path/to/anchors/workloads"
fi
command -v gcc >/dev/null || die "gcc not found"
command -v python3 >/dev/null || die "python3 not found (needed to summarize; see Makefile DEPS)"

ensure_built() {
    [ -x "$MT" ] && [ -f "$LIB" ] && return 0
    log "memtriage binaries missing in $BUILD; rebuilding"
    if [ -f "$BUILD/CMakeCache.txt" ]; then
        cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" >&2
    else
        make -C "$ROOT" build BUILD="$BUILD" >&2
    fi
    [ -x "$MT" ] && [ -f "$LIB" ] || die "cannot build $MT and $LIB"
}
ensure_built

mkdir -p "$WORK"/{nofp,fp,traces,logs,reports,ht} || die "cannot create $WORK"
: > "$RAW"

TIMERUN=$WORK/timerun
gcc -O2 -o "$TIMERUN" "$HERE/timerun.c" || die "cannot build bench/timerun.c"

log "building workloads from $WL_SRC"
for fl in $FLAVOURS; do
    [ -n "${CFLAGS[$fl]:-}" ] || die "unknown flavour '$fl' (nofp, fp)"
    for w in churn mt bigtree; do
        # shellcheck disable=SC2086
        gcc ${CFLAGS[$fl]} -o "$WORK/$fl/$w" "$WL_SRC/$w.c" -pthread \
            || die "cannot build $w ($fl)"
    done
done

NOREPORT=(--no-report)
if ! "$MT" run --help 2>&1 | grep -q -- '--no-report'; then
    NOREPORT=(--report /dev/null)
    log "memtriage run has no --no-report: using --report /dev/null (timing includes analysis)"
fi

HT=
if [ "$HT_RUNS" -gt 0 ] && command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null; then
    HT=heaptrack
    if [ -z "$HT_ARGS" ] && heaptrack --help 2>&1 | grep -q -- '--record-only'; then
        HT_ARGS=--record-only
    fi
fi

FE_OK=
if [[ " $WORKLOADS " == *" frontend "* ]]; then
    if "$MT" sim frontend --help >/dev/null 2>&1 \
        && "$TIMERUN" "$WORK/fe.probe" 120 "$MT" sim frontend --requests 20 --cycles 1 \
            >"$WORK/logs/fe.probe.out" 2>&1; then
        FE_OK=1
    else
        log "'memtriage sim frontend' does not work yet: skipping the frontend row"
        rec note frontend "skipped: 'memtriage sim frontend' failed (see $WORK/logs/fe.probe.out)"
    fi
fi

# ---- metadata ----------------------------------------------------------------------------
cmdline="bash bench/run.sh"
for v in BUILD BENCH_QUICK BENCH_RUNS BENCH_HT_RUNS BENCH_REPORT_RUNS BENCH_FLAVOURS BENCH_ONLY \
         BENCH_WORKLOADS BENCH_HT_ARGS BENCH_HT_VMEM_MB BENCH_OUT; do
    [ -n "${!v+x}" ] && [ "$v" != BUILD ] && cmdline="$v=${!v} $cmdline"
done
[ -n "${MAKELEVEL:-}" ] && cmdline="$cmdline   (via make bench)"
rec meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
rec meta command "$cmdline"
rec meta nproc "$(nproc 2>/dev/null)"
rec meta cpu "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
rec meta memory "$(awk '/^MemTotal:/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
rec meta kernel "$(uname -sr)"
rec meta glibc "$(ldd --version 2>&1 | head -1)"
rec meta gcc "$(gcc --version | head -1)"
rec meta memtriage "$("$MT" --version 2>&1 | head -1)"
rec meta revision "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit'), $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths modified or untracked"
rec meta heaptrack "$([ -n "$HT" ] && { heaptrack --version 2>&1 | head -1; } || echo 'not run')"
rec meta heaptrack_args "${HT_ARGS:-(default: record + interpret, zstd)}; address space capped at ${HT_VMEM_MB} MiB"
rec meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta quick "${QUICK:-0}"
rec meta runs "$RUNS"
rec meta ht_runs "$HT_RUNS"
rec meta report_runs "$REPORT_RUNS"
rec meta flavours "$FLAVOURS"
rec meta record_mode "memtriage run -o TRACE ${NOREPORT[*]} -- CMD"
rec meta workloads_src "$WL_SRC"
rec meta anchors_readme "$ANCHORS_README"
for w in churn mt bigtree frontend; do rec meta "args_$w" "${ARGS[$w]}"; done

# ---- one timed run -----------------------------------------------------------------------
# timed TIMEOUT STDOUT STDERR CMD...   sets T_WALL T_RSS T_RC T_PID T_CPU T_WATCH
# (shell variable WATCH=NAME: also the peak RSS of the process NAME in the command's tree)
timed() {
    local to=$1 so=$2 se=$3; shift 3
    local res=$WORK/timerun.res
    local -a w=()
    [ -n "${WATCH:-}" ] && w=(-w "$WATCH")
    rm -f "$res"
    "$TIMERUN" "${w[@]}" "$res" "$to" "$@" >"$so" 2>"$se"
    if [ -s "$res" ]; then read -r T_WALL T_RSS T_RC T_PID T_CPU T_WATCH < "$res"
    else T_WALL=0; T_RSS=0; T_RC=2; T_PID=0; T_CPU=0; T_WATCH=0; fi
}

# cmd_for TOOL WORKLOAD FLAVOUR -> CMD array
cmd_for() {
    local tool=$1 w=$2 fl=$3 prog
    local -a a
    read -r -a a <<< "${ARGS[$w]}"
    if [ "$w" = frontend ]; then prog=("$MT" sim frontend "${a[@]}" -v)
    else prog=("$WORK/$fl/$w" "${a[@]}" -v); fi
    case $tool in
        bare)      CMD=("${prog[@]}") ;;
        memtriage) CMD=("$MT" run -o "$WORK/traces/$w.$fl.trace" "${NOREPORT[@]}" -- "${prog[@]}") ;;
        heaptrack) # shellcheck disable=SC2206
                   CMD=(bash -c 'ulimit -v "$0" && exec "$@"' "$((HT_VMEM_MB * 1024))"
                        heaptrack -o "$WORK/ht/$w.$fl" $HT_ARGS "${prog[@]}") ;;
    esac
}

ht_trace() { ls "$WORK/ht/$1.$2".* 2>/dev/null | grep -v '\.raw\.' | head -1; }

# run_one TOOL WORKLOAD FLAVOUR I TIMEOUT
run_one() {
    local tool=$1 w=$2 fl=$3 i=$4 to=$5
    local base=$WORK/logs/$w.$fl.$tool.$i
    local try
    for try in 1 2; do
        case $tool in
            memtriage) rm -f "$WORK/traces/$w.$fl.trace" ;;
            heaptrack) rm -f "$WORK/ht/$w.$fl".* ;;
        esac
        cmd_for "$tool" "$w" "$fl"
        # heaptrack: the process tree's max RSS is heaptrack_interpret's; watch the program's
        if [ "$tool" = heaptrack ]; then
            if [ "$w" = frontend ]; then WATCH=memtriage; else WATCH=$w; fi
        fi
        timed "$to" "$base.out" "$base.err" "${CMD[@]}"
        WATCH=
        # another engineer may be rebuilding build/ under us: rebuild and retry once
        if [ "$tool" != heaptrack ] && [ "$T_RC" != 0 ] && [ "$try" = 1 ] \
            && { [ ! -x "$MT" ] || [ ! -f "$LIB" ] || [ "$tool" = memtriage ]; }; then
            log "$tool $w ($fl) run $i failed (status $T_RC); rebuilding if needed and retrying"
            sleep 2; ensure_built; continue
        fi
        break
    done
    rec run "$w" "$fl" "$tool" "$i" "$T_WALL" "$T_RSS" "$T_RC" "$T_CPU" "$T_WATCH"
    local truth ck
    truth=$(grep -m1 '^TRUTH' "$base.err" | sed 's/^TRUTH [a-z]*: //')
    [ -n "$truth" ] && rec truth "$w" "$fl" "$tool" "$i" "$truth"
    ck=$(grep -m1 -E '^[0-9]+$' "$base.out")
    [ -n "$ck" ] && rec out "$w" "$fl" "$tool" "$i" "$ck"
}

# heaptrack: returns 1 (and records why) when the run failed
ht_check() {
    local w=$1 fl=$2 i=$3 base=$WORK/logs/$1.$2.heaptrack.$3 why=
    local tr; tr=$(ht_trace "$w" "$fl")
    if [ "$T_RC" = 124 ]; then why="timeout after ${T_WALL%.*} s"
    elif grep -q 'bad_alloc' "$base.err"; then why="std::bad_alloc, exit status $T_RC"
    elif grep -q -E 'terminate called|Segmentation fault|Aborted|core dumped' "$base.err"; then
        why="$(grep -m1 -E 'terminate called|Segmentation fault|Aborted|core dumped' "$base.err" | cut -c1-120), exit status $T_RC"
    elif [ "$T_RC" != 0 ]; then why="exit status $T_RC"
    elif [ "$w" != frontend ] && ! grep -q -E '^[0-9]+$' "$base.out"; then why="program output missing"
    elif [ -z "$tr" ] || [ ! -s "$tr" ]; then why="no trace written"
    fi
    rm -f "/tmp/heaptrack_fifo$T_PID" 2>/dev/null
    if [ -n "$why" ]; then rec htstatus "$w" "$fl" crashed "$why"; HT_CRASHED[$w.$fl]=1; return 1; fi
    return 0
}

declare -A HT_CRASHED=()
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

# ---- the runs ----------------------------------------------------------------------------
analyze() {   # analyze WORKLOAD FLAVOUR: analysis speed of the last traces
    local w=$1 fl=$2 tr=$WORK/traces/$1.$2.trace i htr
    if [ -s "$tr" ]; then
        rec trace "$w" "$fl" memtriage "$(stat -c %s "$tr")"
        for ((i = 1; i <= REPORT_RUNS; i++)); do
            timed 900 "$WORK/reports/$w.$fl.memtriage.txt" "$WORK/logs/$w.$fl.report.$i.err" \
                "$MT" report "$tr"
            rec analysis "$w" "$fl" memtriage "$i" "$T_WALL" "$T_RSS" "$T_RC" "$T_CPU"
            [ "$T_RC" != 0 ] && rec anerr "$w" "$fl" memtriage \
                "status $T_RC: $(grep -m1 . "$WORK/logs/$w.$fl.report.$i.err" | cut -c1-300)"
        done
        rec reportfile "$w" "$fl" "$WORK/reports/$w.$fl.memtriage.txt"
    fi
    htr=$(ht_trace "$w" "$fl")
    if [ -n "$HT" ] && [ -n "$htr" ] && [ -s "$htr" ] && [ -z "${HT_CRASHED[$w.$fl]:-}" ]; then
        rec trace "$w" "$fl" heaptrack "$(stat -c %s "$htr")"
        case $htr in *.raw.*) return ;; esac
        for ((i = 1; i <= REPORT_RUNS; i++)); do
            timed 900 "$WORK/reports/$w.$fl.heaptrack.txt" "$WORK/logs/$w.$fl.htprint.$i.err" \
                heaptrack_print "$htr"
            rec analysis "$w" "$fl" heaptrack "$i" "$T_WALL" "$T_RSS" "$T_RC" "$T_CPU"
            [ "$T_RC" != 0 ] && rec anerr "$w" "$fl" heaptrack \
                "status $T_RC: $(grep -m1 . "$WORK/logs/$w.$fl.htprint.$i.err" | cut -c1-300)"
        done
        rec reportfile "$w" "$fl" "$WORK/reports/$w.$fl.heaptrack.txt" heaptrack
    fi
}

bench_one() {   # bench_one WORKLOAD FLAVOUR: A B [C] A B [C] ...
    local w=$1 fl=$2 i to_mt to_ht ht_ok=$HT first bare_wall
    log "$w ($fl): $RUNS x bare / memtriage${HT:+ ($HT_RUNS x heaptrack)}, args: ${ARGS[$w]:-(defaults)}"
    for ((i = 1; i <= RUNS; i++)); do
        run_one bare "$w" "$fl" "$i" 600
        [ "$i" = 1 ] && first=$T_WALL
        bare_wall=$T_WALL
        to_mt=$(max 120 "$(awk -v b="$first" 'BEGIN { print int(40 * b) }')")
        to_ht=$(max 120 "$(awk -v b="$first" 'BEGIN { print int(30 * b) }')")
        run_one memtriage "$w" "$fl" "$i" "$to_mt"
        log "  run $i: bare $bare_wall s, memtriage $T_WALL s (status $T_RC)"
        if [ -n "$ht_ok" ] && [ "$i" -le "$HT_RUNS" ]; then
            run_one heaptrack "$w" "$fl" "$i" "$to_ht"
            if ! ht_check "$w" "$fl" "$i"; then
                log "  heaptrack crashed on $w ($fl): $(tail -n 1 "$RAW" | cut -f5-)"
                ht_ok=
            else
                log "  heaptrack run $i: $T_WALL s"
            fi
        fi
    done
    analyze "$w" "$fl"
}

for w in $WORKLOADS; do
    case $w in
        frontend) [ -n "$FE_OK" ] && bench_one frontend project ;;
        churn|mt|bigtree) for fl in $FLAVOURS; do bench_one "$w" "$fl"; done ;;
        *) die "unknown workload '$w' (churn mt bigtree frontend)" ;;
    esac
done

rec meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta duration_s "$(( $(date +%s) - T0 ))"

# ---- summary -----------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
python3 "$HERE/summarize.py" "$RAW" "$OUT" || die "summarize.py failed; raw results in $RAW"
log "wrote $OUT (raw results: $RAW) in $(( $(date +%s) - T0 )) s"
