#!/bin/bash
# Cost of one stack capture inside real allocation-heavy programs: runs
# each workload under libunwcmp.so (shim.c) with no capture, mt_unwind
# without memo, mt_unwind (adaptive memo, the default), mt_unwind with the
# memo always on, and unw_backtrace; prints user-mode cycles per capture
# above the no-capture run (the fastest of REPS runs: the machine may be
# shared).  Workloads: churn and bigtree from the peer anchors, built as
# Debian builds (-O2 -g, no frame pointers), and a Python program with
# PYTHONMALLOC=malloc.  usage: workloads.sh [build dir] [anchors dir]
set -u
OUT=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/unwind-tests}
W=${2:-/work/shared/anchors/workloads}
REPS=${REPS:-5}
SHIM=$OUT/libunwcmp.so
PY=$(python3 -c 'import sys; print(sys.executable)')
for w in churn bigtree; do
	gcc -O2 -g -fomit-frame-pointer -I"$W" "$W/$w.c" -o "$OUT/$w-nofp" || exit 1
done
cat >"$OUT/pywork.py" <<'PY'
import json
class A:
    def __init__(s, i): s.i = i; s.l = [i] * 3
def rec(n):
    if n == 0:
        return [A(i) for i in range(5)]
    return rec(n - 1) + [str(n)]
out = [rec(k % 40) for k in range(3000)]
s = json.dumps([{"a": i, "b": str(i) * 3} for i in range(50000)])
PY

cycles() {   # cycles <mode> <memo> <command...>: fastest of REPS, user cycles
	local mode=$1 memo=$2 best=0 c
	shift 2
	for _ in $(seq "$REPS"); do
		c=$(UNWCMP_MODE=$mode UNWCMP_MEMO=$memo LD_PRELOAD=$SHIM perf stat -x, -e cycles:u \
			"$@" 2>&1 >/dev/null | grep cycles:u | cut -d, -f1)
		[ "$best" = 0 ] || [ "$c" -lt "$best" ] && best=$c
	done
	echo "$best"
}

captures() {   # captures <command...>: captures and frames per capture
	UNWCMP_MODE=compare UNWCMP_MEMO=1 LD_PRELOAD=$SHIM "$@" 2>&1 >/dev/null |
		awk '/^unwcmp pid/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		     printf "%d %.1f %.1f\n", v["captures"], v["frames"] / v["captures"], v["frames_reused"] / v["captures"] }'
}

printf "%-8s %9s %7s %7s | cycles per capture: %8s %8s %8s %8s\n" workload captures frames reused* \
	"no memo" adaptive "memo on" unw_bt
run() {   # run <name> <command...>
	local name=$1
	shift
	read -r n frames reused < <(captures "$@")
	local none cold mt always unw
	none=$(cycles none 1 "$@")
	cold=$(cycles cold 1 "$@")
	mt=$(cycles mt 1 "$@")
	always=$(cycles mt 2 "$@")
	unw=$(cycles unw 1 "$@")
	printf "%-8s %9d %7s %7s | %28.0f %8.0f %8.0f %8.0f\n" "$name" "$n" "$frames" "$reused" \
		"$(((cold - none) / n))" "$(((mt - none) / n))" "$(((always - none) / n))" "$(((unw - none) / n))"
}
run churn "$OUT/churn-nofp" 2000000
run bigtree "$OUT/bigtree-nofp" 500000 2
run python env PYTHONMALLOC=malloc "$PY" "$OUT/pywork.py"
echo "* frames reused per capture with the adaptive memo (the default)"
