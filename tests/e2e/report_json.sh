#!/usr/bin/env bash
# `memtriage report --format json` (src/report/json.c): the document of
# real traces validates against docs/report.schema.json, and its figures
# are right, not just well-formed:
#   - fx_single: the fixture's exact SUMMARY, equal to the text report's;
#     calls per function; the leak's and the temporaries' stacks by name
#   - every document: stacks (+ stacks_omitted) add up to the summary's
#     calls, peak and leaked bytes; frame and stack references resolve
#   - an argv with control characters and invalid UTF-8 comes out escaped
#     (U+FFFD for each bad byte) and parses with a strict JSON reader
#   - sim leak: leaked bytes and blocks of the model, the top leaked stack
#     names cache_insert_unbounded, the verdict is the text report's
#   - sim frontend: threads, glibc's arenas; cut in half and to its header
#     only: valid, "truncated", the same figures as the text report of the
#     same cut trace
#   - fx_stacks: 32768 stacks, 20000 listed (every one of the largest peak
#     class), the other 12768 summed in stacks_omitted
#   - report --diff: the diff section's exact figures (tests/e2e/markers.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Debian's python3 and python3-jsonschema (the python3 on PATH may be another).
PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
"$PY" -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed"
SCHEMA="$MT_SRC/docs/report.schema.json"

cat >"$T/check.py" <<'PY'
"""check.py validate FILE | check.py get FILE EXPR (a Python expression on d)."""
import json, sys

def strict_load(path):
    # json.load rejects raw control characters in strings; NaN/Infinity are refused too
    def bad_constant(name):
        raise ValueError("non-JSON constant " + name)
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_constant=bad_constant)

def validate(path, schema_path):
    import jsonschema
    with open(schema_path) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    d = strict_load(path)
    jsonschema.Draft202012Validator(schema).validate(d)
    # what a schema cannot say: references resolve, totals add up
    nf, ids = len(d["frames"]), {s["id"] for s in d["stacks"]}
    for s in d["stacks"]:
        assert all(0 <= i < nf for i in s["frames"]), "stack %d: frame index out of range" % s["id"]
    assert len(ids) == len(d["stacks"]), "duplicate stack ids"
    for k, l in d["top"].items():
        assert all(i in ids for i in l), "top.%s names a stack not in stacks" % k
    if d["verdict"]:
        assert all(i in ids for i in d["verdict"]["owners"]), "verdict owner not in stacks"
    om, sm = d["stacks_omitted"], d["summary"]
    for k, tot in (("calls", "alloc_calls"), ("peak_bytes", "peak_heap_bytes"),
                   ("leaked_bytes", "leaked_bytes"), ("leaked_blocks", "leaked_blocks"),
                   ("bytes", "bytes_allocated"), ("temporary", "temporary")):
        got = sum(s[k] for s in d["stacks"]) + om[k]
        assert got == sm[tot], "stacks' %s sum to %d, summary.%s is %d" % (k, got, tot, sm[tot])
    assert sum(d["summary"]["calls_by_function"].values()) == sm["alloc_calls"]
    assert sum(b["calls"] for b in d["histogram"]) == sm["alloc_calls"] - sm["failed_calls"]
    assert len(d["timeline"]) <= d["trace"]["samples"]
    if d["marks"] and d["marks"]["diff"]:
        for e in d["marks"]["diff"]["top"]:
            assert all(0 <= i < nf for i in e["frames"]), "diff: frame index out of range"

def get(path, expr):
    d = strict_load(path)
    by_id = {s["id"]: s for s in d["stacks"]}
    def fn(stack_id):   # function names of a stack, innermost first
        return [d["frames"][i]["function"] for i in by_id[stack_id]["frames"]]
    v = eval(expr, {"d": d, "fn": fn, "by_id": by_id})
    print(json.dumps(v) if not isinstance(v, str) else v)

if sys.argv[1] == "validate":
    try:
        validate(sys.argv[2], sys.argv[3])
    except Exception as e:
        print("%s: %s" % (type(e).__name__, str(e)[:2000]), file=sys.stderr)
        sys.exit(1)
else:
    get(sys.argv[2], sys.argv[3])
PY

# json NAME [REPORT OPTIONS...]: report --format json of $T/NAME.trace into $T/NAME.json, validated.
json()
{
	local name="$1"
	shift
	"$MT" report --format json "$@" "$T/$name.trace" >"$T/$name.json" 2>"$T/$name.json.err" || {
		cat "$T/$name.json.err" >&2
		fail "report --format json of $name failed"
	}
	"$PY" "$T/check.py" validate "$T/$name.json" "$SCHEMA" ||
		fail "$name.json does not validate against docs/report.schema.json"
}

# jget NAME EXPR: EXPR evaluated on the document of $T/NAME.json (d; fn(id): frame names).
jget()
{
	"$PY" "$T/check.py" get "$T/$1.json" "$2"
}

# same_summary NAME: the JSON summary equals the text report's SUMMARY of the same trace.
same_summary()
{
	local name="$1" key field
	"$MT" report "$T/$name.trace" >"$T/$name.text.txt"
	for key in calls:alloc_calls peak:peak_heap_bytes leaked:leaked_bytes \
	           leaked_blocks:leaked_blocks temporary:temporary; do
		field=${key#*:}
		key=${key%%:*}
		if [ "$key" = leaked ] || [ "$key" = leaked_blocks ]; then
			[ "$(jget "$name" 'd["trace"]["end"]')" = exit ] || continue   # "live when cut": other line
		fi
		expect_eq "$name: summary.$field vs the text SUMMARY" \
			"$(summary "$T/$name.text.txt" "$key")" "$(jget "$name" "d[\"summary\"][\"$field\"]")"
	done
}

# ---- fx_single: exact figures ----------------------------------------------
record single "$(fixture fx_single)"
json single
same_summary single
expect_eq "single: alloc_calls" 1128 "$(jget single 'd["summary"]["alloc_calls"]')"
expect_eq "single: peak_heap_bytes" 412000 "$(jget single 'd["summary"]["peak_heap_bytes"]')"
expect_eq "single: peak_heap_blocks" 1000 "$(jget single 'd["summary"]["peak_heap_blocks"]')"
expect_eq "single: leaked" "[28000, 7]" \
	"$(jget single '[d["summary"]["leaked_bytes"], d["summary"]["leaked_blocks"]]')"
expect_eq "single: temporary" 100 "$(jget single 'd["summary"]["temporary"]')"
expect_eq "single: bytes_allocated" 459690 "$(jget single 'd["summary"]["bytes_allocated"]')"
expect_eq "single: free_calls" 1116 "$(jget single 'd["summary"]["free_calls"]')"
expect_eq "single: calloc, realloc calls" "[10, 5]" \
	"$(jget single '[d["summary"]["calls_by_function"][f] for f in ("calloc", "realloc")]')"
expect_eq "single: end" exit "$(jget single 'd["trace"]["end"]')"
expect_eq "single: truncated" false "$(jget single 'd["trace"]["truncated"]')"
expect_eq "single: top leaked stack's leak" "[28000, 7]" \
	"$(jget single '[by_id[d["top"]["leaked"][0]][k] for k in ("leaked_bytes", "leaked_blocks")]')"
expect_eq "single: top leaked stack's innermost frame" leak_block \
	"$(jget single 'fn(d["top"]["leaked"][0])[0]')"
expect_eq "single: top temporary stack's innermost frame" temporary \
	"$(jget single 'fn(d["top"]["temporary"][0])[0]')"
expect_eq "single: top peak stack holds the whole peak" 412000 \
	"$(jget single 'by_id[d["top"]["peak"][0]]["peak_bytes"]')"
expect_eq "single: frames of the leak name their file" fx_single.c \
	"$(jget single 'd["frames"][by_id[d["top"]["leaked"][0]]["frames"][0]]["file"].rsplit("/", 1)[-1]')"
expect_eq "single: stacks omitted" 0 "$(jget single 'd["stacks_omitted"]["count"]')"
# -o writes the same document as stdout
"$MT" report --format json -o "$T/single2.json" "$T/single.trace"
cmp -s "$T/single.json" "$T/single2.json" || fail "single: report -o FILE differs from stdout"

# ---- escaping: control characters and invalid UTF-8 in argv ------------------
weird=$'tab\there "q" \\ \x01 <\xff> \xc3( \xed\xa0\x80 caf\xc3\xa9'
RC=0
"$MT" run -o "$T/weird.trace" --no-report -- /bin/sh -c 'exit 0' sh "$weird" >/dev/null 2>&1 || RC=$?
expect_eq "weird: exit status" 0 "$RC"
json weird
expect_eq "weird: argv escaped, bad bytes as U+FFFD" \
	'["tab\there \"q\" \\ \u0001 <\ufffd> \ufffd( \ufffd\ufffd\ufffd caf\u00e9"]' \
	"$(jget weird 'd["trace"]["command"][4:]')"

# ---- sim leak: the leak's owner and the verdict ------------------------------
RC=0
"$MT" run --interval 20 -o "$T/leak.trace" --report "$T/leak.txt" -- \
	"$MT" sim leak --cycles 3 --requests 300 --hold-ms 1 >/dev/null 2>"$T/leak.err" || RC=$?
expect_eq "sim leak: exit status" 0 "$RC"
json leak
same_summary leak
expect_eq "leak: leaked bytes and blocks (the model's cache)" "[$((3 * 300 * 4096)), 900]" \
	"$(jget leak '[d["summary"]["leaked_bytes"], d["summary"]["leaked_blocks"]]')"
expect_eq "leak: top leaked stack names cache_insert_unbounded" true \
	"$(jget leak '"cache_insert_unbounded" in fn(d["top"]["leaked"][0])')"
expect_eq "leak: verdict title = the text report's" \
	"$(sed -n 's/^verdict: \(.*\), confidence [a-z]*$/\1/p' "$T/leak.txt")" \
	"$(jget leak 'd["verdict"]["title"]')"
expect_eq "leak: verdict class names the title" true \
	"$(jget leak '{"live_heap_growth": "LIVE-HEAP", "too_short": "TOO SHORT", "no_significant_growth": "NO SIGNIFICANT", "allocator_retention": "ALLOCATOR", "pooling_plateau": "POOLING", "non_heap_growth": "NON-HEAP"}[d["verdict"]["class"]] in d["verdict"]["title"]')"
expect_eq "leak: timeline = the samples" true \
	"$(jget leak 'len(d["timeline"]) == d["trace"]["samples"] > 1')"
expect_eq "leak: timeline in time order, heap ends at the leak" true \
	"$(jget leak 'all(a["t_ns"] <= b["t_ns"] for a, b in zip(d["timeline"], d["timeline"][1:])) and d["timeline"][-1]["heap_bytes"] >= d["summary"]["leaked_bytes"]')"

# ---- threads and arenas; a cut trace, and one with nothing but its header ----
# (a trace of several blocks, as in truncated.sh: a cut keeps the complete ones)
record fe "$MT" sim frontend --requests 300 --cycles 1 --payload 64K --concurrency 8 --workers 4
expect_eq "sim frontend: exit status" 0 "$RC"
json fe
same_summary fe
expect_eq "fe: several threads, glibc's arenas" "[true, \"glibc\", true]" \
	"$(jget fe '[d["trace"]["threads"] > 1, d["trace"]["allocator"], d["arenas"] is not None]')"
size=$(stat -c %s "$T/fe.trace")
head -c $((size / 2)) "$T/fe.trace" >"$T/half.trace"
json half
same_summary half
expect_eq "half: truncated, end" "[true, \"cut\"]" "$(jget half '[d["trace"]["truncated"], d["trace"]["end"]]')"
calls=$(jget half 'd["summary"]["alloc_calls"]')
[ "$calls" -gt 0 ] && [ "$calls" -lt "$(jget fe 'd["summary"]["alloc_calls"]')" ] ||
	fail "half: expected 0 < alloc_calls < the full trace's, got $calls"
head -c 32 "$T/fe.trace" >"$T/header.trace"
json header
expect_eq "header: no calls, no stacks" "[0, 0]" \
	"$(jget header '[d["summary"]["alloc_calls"], len(d["stacks"])]')"

# ---- more stacks than listed: the best ranked are kept, the rest summed ----------
record stacks "$(fixture fx_stacks)"
json stacks
same_summary stacks
expect_eq "stacks: listed, omitted, in all" "[20000, 12768, 32768]" \
	"$(jget stacks '[len(d["stacks"]), d["stacks_omitted"]["count"], d["overhead"]["stacks"]]')"
expect_eq "stacks: every stack of the largest peak class (112 B) is listed" 4681 \
	"$(jget stacks 'sum(1 for s in d["stacks"] if s["peak_bytes"] == 112)')"

# ---- report --diff ------------------------------------------------------------
record req "$(fixture fx_requests)"
json req --diff "phase A" "phase B"
expect_eq "diff: marks" "[\"phase A\", \"phase B\"]" \
	"$(jget req '[d["marks"]["diff"]["a"]["label"], d["marks"]["diff"]["b"]["label"]]')"
expect_eq "diff: live heap change" "[30000, 10, true]" \
	"$(jget req '[d["marks"]["diff"][k] for k in ("heap_change_bytes", "heap_change_blocks", "sums_match")]')"
expect_eq "diff: #1 grew" "[30000, 10]" \
	"$(jget req '[d["marks"]["diff"]["top"][0][k] for k in ("bytes", "blocks")]')"
expect_eq "diff: #1 is grow_phase" grow_phase \
	"$(jget req 'd["frames"][d["marks"]["diff"]["top"][0]["frames"][0]]["function"]')"
expect_eq "marks: 10 marks, model A 3 times" "[10, 3]" \
	"$(jget req '[d["marks"]["marks"], [l["count"] for l in d["marks"]["labels"] if l["label"] == "model A"][0]]')"
expect_eq "requests: 5 completed, heap change min/max" "[5, -2000, 8000]" \
	"$(jget req '[d["marks"]["requests"]["completed"], d["marks"]["requests"]["heap_change_bytes"]["min"], d["marks"]["requests"]["heap_change_bytes"]["max"]]')"
json req   # without --diff: no diff section
expect_eq "no --diff: diff is null" null "$(jget req 'd["marks"]["diff"]')"

# a typo'd field fails validation: the schema is strict
"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["summary"]["alloc_cals"] = 1; json.dump(d, open(sys.argv[2], "w"))' \
	"$T/single.json" "$T/typo.json"
if "$PY" "$T/check.py" validate "$T/typo.json" "$SCHEMA" 2>/dev/null; then
	fail "a document with an unknown summary field validates"
fi
echo "report_json: ok ($(stat -c %s "$T/leak.json") bytes for sim leak)"
