#!/usr/bin/env bash
# The remedies side by side on `memtriage sim frontend`, the model of seed
# report 000's LLM frontend, with `memtriage compare`; writes
# bench/RESULTS-compare.md (the markdown also goes to stdout).
#
#   1. payload 1 MB, concurrency 96, 3 cycles of 1000 requests, under every
#      built-in configuration (seed 000's table);
#   2. a sweep over concurrency 2..96 at 1 KB and 200 KB payloads under
#      glibc (seed 002's concurrency-scaling table).
#
# About 4 minutes on 2 cores.  Usage: bash bench/compare.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MT=$PWD/$BUILD/memtriage
OUT=bench/RESULTS-compare.md
[ -x "$MT" ] || { echo "compare.sh: build first ($MT missing)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "compare.sh: 1/2 configurations (about 1 min)" >&2
"$MT" compare --configs glibc,arena2,arena2-trim,trim,jemalloc,mimalloc,tcmalloc \
	-o "$tmp/configs.json" -- "$MT" sim frontend --payload 1M --concurrency 96 --cycles 3 \
	>"$tmp/configs.txt"
echo "compare.sh: 2/2 concurrency sweep (about 3 min)" >&2
"$MT" compare --configs glibc --sweep concurrency=2,4,8,16,32,64,96 --sweep payload=1K,200K \
	-o "$tmp/sweep.json" -- "$MT" sim frontend --concurrency '{concurrency}' \
	--payload '{payload}' --requests 1000 --cycles 3 >"$tmp/sweep.txt"

{
	echo "# memtriage compare on sim frontend"
	echo
	echo "Measured $(date -u +%Y-%m-%d) on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo |
		cut -d: -f2 | sed 's/^ *//')), $(ldd --version | head -1 | sed 's/.*) //;s/^/glibc /'),"
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'). Rerun: \`bash bench/compare.sh\`."
	echo "RSS is sampled from /proc (no recording); throughput on a 2-core machine moves"
	echo "by ±20% between runs, RSS by ±10%."
	echo
	echo "## Allocator configurations: payload 1 MB, concurrency 96, 3 cycles of 1000 requests"
	echo
	echo '```'
	cat "$tmp/configs.txt"
	echo '```'
	echo
	echo "## Concurrency scaling at 1 KB and 200 KB payloads (glibc, 3 cycles of 1000 requests)"
	echo
	echo '```'
	sed -n '/^Scaling over/,/^$/p' "$tmp/sweep.txt"
	echo '```'
	echo
	echo "<details><summary>every run of the sweep</summary>"
	echo
	echo '```'
	cat "$tmp/sweep.txt"
	echo '```'
	echo "</details>"
} | tee "$OUT"
