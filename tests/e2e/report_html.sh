#!/bin/bash
# memtriage report --format html: a self-contained page, checked in headless
# Chromium by report_html.py (no console errors, the verdict, the timeline,
# flame graph totals, zoom and search, tables), and the page of a compare
# result.  Skips without chromium, chromedriver or python3-selenium.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Debian's python3, which has python3-selenium (PATH's python3 may be another one)
PY=/usr/bin/python3
[ -x "$PY" ] || skip "no $PY"
command -v chromium >/dev/null || skip "chromium is not installed"
[ -x /usr/bin/chromedriver ] || skip "chromium-driver is not installed"
"$PY" -c 'import selenium' 2>/dev/null || skip "python3-selenium is not installed"

record leak "$MT" sim leak --cycles 3 --requests 500
"$MT" report --format html -o "$T/leak.html" "$T/leak.trace" || fail "report --format html failed"
"$MT" report --format json -o "$T/leak.json" "$T/leak.trace" || fail "report --format json failed"
head -c 15 "$T/leak.html" | grep -q '<!DOCTYPE html>' || fail "leak.html does not start with a doctype"

# A compare result with markup in it: the page must show it as text.
cat >"$T/compare.json" <<'JSON'
{"schema":"memtriage-compare","version":1,"command":["./server","--port","8080"],
 "tables":[
  {"title":"RSS after each cycle","note":"RSS sampled when the workload printed a cycle line.",
   "columns":["config","RSS start","cycle 1","cycle 2","growth/cycle"],
   "rows":[["glibc","57.0 MiB","5.97 GiB","7.40 GiB","1.07 GiB"],
           ["arena2","57.0 MiB","4.22 GiB","4.33 GiB","58.0 MiB"],
           ["jemalloc <b>x</b>","55.1 MiB","3.10 GiB","3.12 GiB","20.0 MiB"]]},
  {"title":"Throughput","note":"",
   "columns":["config","requests/s","ratio"],
   "rows":[["glibc","1631","1.00"],["arena2","1580","0.97"]]}],
 "recommendation":"Use MALLOC_ARENA_MAX=2: RSS 4.33 GiB instead of 7.40 GiB. </script><script>alert(1)</script>"}
JSON
"$MT" report --format html -o "$T/compare.html" "$T/compare.json" 2>"$T/compare.err" ||
	{ cat "$T/compare.err" >&2; fail "report --format html of a compare result failed"; }
cmp_args=("$T/compare.html" "$T/compare.json")

"$PY" "$MT_SRC/tests/e2e/report_html.py" "$T/leak.html" "$T/leak.json" "$T/leak.txt" "${cmp_args[@]}"
