/*
 * memtriage HTML report: draws the report from the JSON document embedded
 * in <script id="mt-data"> (the `--format json` document, schema
 * "memtriage-report", or a `memtriage compare` result, schema
 * "memtriage-compare").  Vanilla JS, no network.  Every string from the
 * data goes into the page through textContent, never as markup.  A section
 * whose data is missing stays hidden; a section that fails to draw logs
 * one console error and leaves the others standing.
 */
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";

  /* ---- formatting: the text report's units (src/report/report.c) ------- */

  var UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

  /* "123 B", "1.18 MiB": binary units, 3 significant digits, like mt_fmt_size. */
  function fmtSize(b) {
    if (b === null || b === undefined || isNaN(b)) return "-";
    if (b < 0) return "-" + fmtSize(-b);
    if (b < 1024) return Math.round(b) + " B";
    var v = b / 1024, u = 0;
    while (v >= 1024 && u < 5) { v /= 1024; u++; }
    var prec = v < 10 ? 2 : v < 100 ? 1 : 0;
    if (prec === 0 && v >= 1023.5 && u < 5) { v /= 1024; u++; prec = 2; }
    return v.toFixed(prec) + " " + UNITS[u];
  }

  function fmtCount(n) {
    if (n === null || n === undefined || isNaN(n)) return "-";
    var s = String(Math.round(Math.abs(n))), o = "";
    for (var i = 0; i < s.length; i++) {
      if (i && (s.length - i) % 3 === 0) o += ",";
      o += s[i];
    }
    return (n < 0 ? "-" : "") + o;
  }

  /* Like mt_fmt_duration: "850 ns", "12.3 ms", "1.234 s", "2 min 03 s". */
  function fmtDur(ns) {
    if (ns === null || ns === undefined || isNaN(ns)) return "-";
    var s = Math.floor(ns / 1e9);
    if (ns < 1e3) return Math.round(ns) + " ns";
    if (ns < 1e6) return (ns / 1e3).toFixed(1) + " us";
    if (ns < 1e9) return (ns / 1e6).toFixed(1) + " ms";
    if (s < 120) return (ns / 1e9).toFixed(3) + " s";
    if (s < 7200) return Math.floor(s / 60) + " min " + pad2(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad2(Math.floor(s / 60) % 60) + " min";
  }

  function pad2(n) { return (n < 10 ? "0" : "") + n; }

  /* "2026-11-21 02:35:40" in the reader's time zone, like the text report's header. */
  function fmtDate(ns) {
    var t = new Date(ns / 1e6);
    return t.getFullYear() + "-" + pad2(t.getMonth() + 1) + "-" + pad2(t.getDate()) + " " +
      pad2(t.getHours()) + ":" + pad2(t.getMinutes()) + ":" + pad2(t.getSeconds());
  }

  /* printf's %.Ng: "0.01", "1.13", "2.7e-08". */
  function fmtG(v, n) {
    var s = String(Number(Number(v).toPrecision(n)));
    return s.replace(/e([+-])(\d)$/, "e$10$2");
  }

  function fmtPct(part, whole) {
    if (!whole) return "-";
    return (100 * part / whole).toFixed(1) + "%";
  }

  /* An evidence figure in its unit (text.c's fmt_ev). */
  function fmtEv(v, unit) {
    if (v === null || v === undefined) return "-";
    switch (unit) {
      case "bytes": return fmtSize(v);
      case "bytes_per_second": return fmtSize(v) + "/s";
      case "ratio": return fmtG(v, 3);
      case "fraction": return (100 * v).toFixed(0) + "%";
      case "p_value": return fmtG(v, 2);
      default: return fmtCount(v);
    }
  }

  /* ---- DOM helpers ------------------------------------------------------ */

  function $(id) { return document.getElementById(id); }

  /* el("td", {class: "num"}, "text" | node | [children]) */
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function svg(tag, attrs, kids) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }

  function setAttrs(e, attrs) {
    for (var k in attrs || {})
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
  }

  function append(e, kids) {
    if (kids === null || kids === undefined) return;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (k) {
      if (k === null || k === undefined) return;
      e.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
    });
  }

  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  function show(id) { $(id).hidden = false; }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fact(dl, k, v) {
    if (v === null || v === undefined || v === "") return;
    dl.appendChild(el("div", null, [el("dt", null, k), el("dd", null, v)]));
  }

  /* ---- tooltip, shared by the charts ------------------------------------ */

  var tip = null;

  function tipShow(ev, nodes) {
    clear(tip);
    append(tip, nodes);
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + w > window.innerWidth - 8) x = Math.max(8, ev.clientX - w - 14);
    if (y + h > window.innerHeight - 8) y = Math.max(8, ev.clientY - h - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function tipHide() { tip.hidden = true; }

  /* ---- header ----------------------------------------------------------- */

  function commandLine(tr) {
    if (Array.isArray(tr.command) && tr.command.length) return tr.command.join(" ");
    return tr.exe || tr.path || "(unknown command)";
  }

  function renderHeader(d) {
    var tr = d.trace || {}, s = d.summary || {}, dl = $("hdr-facts");
    var cmd = commandLine(tr);
    $("hdr-title").textContent = cmd;
    document.title = "memtriage: " + cmd;
    if (tr.pid) fact(dl, "pid", String(tr.pid));
    if (isNum(tr.threads)) fact(dl, "threads", fmtCount(tr.threads));
    if (isNum(tr.start_realtime_ns) && tr.start_realtime_ns > 0)
      fact(dl, "started", fmtDate(tr.start_realtime_ns));
    if (isNum(tr.duration_ns)) fact(dl, "duration", fmtDur(tr.duration_ns));
    var size = isNum(tr.file_bytes) ? fmtSize(tr.file_bytes) : null;
    var evs = isNum(tr.events) ? fmtCount(tr.events) + " events" : null;
    var extra = [size, evs].filter(Boolean).join(", ");
    if (tr.path) fact(dl, "trace", tr.path + (extra ? " (" + extra + ")" : ""));
    if (tr.allocator) fact(dl, "allocator", String(tr.allocator));
    var warn = $("hdr-warn");
    if (tr.truncated || tr.end === "cut")
      warn.appendChild(el("p", { class: "warn" }, "The trace was cut (the process crashed, was killed, " +
        "or is still running): figures cover what was recorded until then."));
    else if (tr.end === "exec")
      warn.appendChild(el("p", { class: "warn" }, "The process called exec(); the new program was not recorded."));
    var lost = (tr.lost_events || 0) + (tr.dropped_records || 0);
    if (lost)
      warn.appendChild(el("p", { class: "warn" }, fmtCount(lost) +
        " events were lost or dropped by the recorder: figures are approximate."));
  }

  /* ---- verdict ---------------------------------------------------------- */

  /* Colour of a verdict class, by the words in its name. */
  function verdictColour(cls) {
    var c = String(cls || "").toLowerCase();
    if (/non.?heap/.test(c)) return "#8e44ad";
    if (/live.?heap|leak/.test(c)) return "#c92a2a";
    if (/retention|allocator|fragment/.test(c)) return "#d9730d";
    if (/plateau/.test(c)) return "#1f6fbf";
    if (/no.?growth|none/.test(c)) return "#2b8a3e";
    return "#6d7585";
  }

  /* Frames of stack `id` as [{function, file, line, ...}], innermost first. */
  function stackFrames(ctx, id) {
    var s = ctx.stackById[id];
    if (!s) return [];
    return (s.frames || []).map(function (fi) {
      return (ctx.frames[fi]) || { function: "??" };
    });
  }

  /* "file.c:12"; else "module+0x1f0" unless the function's name already says it. */
  function frameLoc(f) {
    if (f.file) return f.file + (f.line ? ":" + f.line : "");
    if (!f.module || String(f["function"] || "").indexOf(f.module + "+") === 0) return "";
    return f.module + (isNum(f.offset) ? "+0x" + f.offset.toString(16) : "");
  }

  function renderVerdict(d, ctx) {
    var v = d.verdict;
    if (!v) return;
    show("verdict");
    var colour = verdictColour(v["class"]);
    $("verdict").style.setProperty("--vc", colour);
    $("verdict-class").textContent = String(v.class_name || v["class"] || "verdict").replace(/_/g, " ");
    if (v.confidence) $("verdict-conf").textContent = "confidence " + v.confidence;
    $("verdict-title").textContent = v.title || String(v["class"] || "");
    if (v.summary && v.summary !== v.title) $("verdict-summary").textContent = v.summary;
    if (v.allocator_stats === false)
      $("verdict-note").textContent = "Allocator statistics unavailable: the evidence uses RSS minus the live heap.";
    renderWindow(v);
    renderEvidence(v.evidence || []);
    renderRemedies(v.remedies || []);
    renderOwners(v.owners || [], ctx);
  }

  function renderWindow(v) {
    var w = v.window;
    if (!w || !isNum(w.first_t_ns)) return;
    $("verdict-window").textContent = "Judged after warm-up: samples from " + fmtDur(w.first_t_ns) + " to " +
      fmtDur(w.last_t_ns) + (w.before_exit ? ", before the exit" : "") + " (shaded on the chart).";
  }

  function renderEvidence(ev) {
    var t = $("evidence");
    if (!ev.length) { t.appendChild(el("tr", null, el("td", null, "(no evidence: too few samples)"))); return; }
    t.appendChild(el("tr", null, [el("th", null, "met"), el("th", null, "figure"),
      el("th", { class: "num" }, "measured"), el("th", null, ""), el("th", { class: "num" }, "threshold")]));
    ev.forEach(function (e) {
      var met = !!e.met;
      t.appendChild(el("tr", { class: met ? "met" : "unmet" }, [
        el("td", { class: met ? "met-yes" : "met-no" }, met ? "yes" : "no"),
        el("td", null, e.what || e.figure || ""),
        el("td", { class: "num" }, e.value_text || fmtEv(e.value, e.unit)),
        el("td", { class: "mono" }, e.op || ""),
        el("td", { class: "num" }, e.threshold_text || fmtEv(e.threshold, e.unit))]));
    });
  }

  /* A remedy's first line is prose; lines that start with spaces are commands or snippets. */
  function renderRemedies(rs) {
    var ol = $("remedies");
    if (!rs.length) { ol.appendChild(el("li", null, "None needed.")); return; }
    rs.forEach(function (r) {
      var text = typeof r === "string" ? r : (r.text || "");
      var lines = text.split("\n"), li = el("li", null, lines[0]);
      var code = lines.slice(1).filter(function (l) { return l.trim() !== ""; });
      if (code.length) li.appendChild(el("pre", null, code.map(function (l) { return l.replace(/^ {0,4}/, ""); }).join("\n")));
      ol.appendChild(li);
    });
  }

  function renderOwners(owners, ctx) {
    if (!owners.length) return;
    $("owners-box").hidden = false;
    var ol = $("owners");
    owners.forEach(function (o) {
      var id = typeof o === "object" ? o.stack : o, s = ctx.stackById[id];
      if (!s) return;
      var fr = stackFrames(ctx, id).slice(0, 5);
      var li = el("li", null, [el("b", null, fmtSize(s.leaked_bytes)), " " + ctx.liveWord + " in " +
        fmtCount(s.leaked_blocks) + " blocks: "]);
      li.appendChild(frameChain(fr, ctx));
      ol.appendChild(li);
    });
  }

  /* "f < g < h", each name a link that searches the flame graph. */
  function frameChain(fr, ctx) {
    var span = el("span", { class: "frames" });
    if (!fr.length) span.appendChild(document.createTextNode("(no call stack recorded)"));
    fr.forEach(function (f, i) {
      if (i) span.appendChild(document.createTextNode(" < "));
      span.appendChild(fnLink(f, ctx));
    });
    return span;
  }

  function fnLink(f, ctx) {
    var name = f["function"] || "??";
    var a = el("span", { class: "fn", title: "find in the flame graph" }, name);
    a.addEventListener("click", function () { if (ctx.flame) ctx.flame.searchFor(name); });
    return a;
  }

  /* ---- summary ---------------------------------------------------------- */

  function card(box, k, v, s) {
    box.appendChild(el("div", { class: "card" }, [el("div", { class: "k" }, k), el("div", { class: "v" }, v),
      s ? el("div", { class: "s" }, s) : null]));
  }

  function renderSummary(d, ctx) {
    var s = d.summary;
    if (!s) return;
    show("summary");
    var box = $("summary-cards");
    card(box, "allocation calls", fmtCount(s.alloc_calls),
      isNum(s.calls_per_second) ? fmtCount(s.calls_per_second) + " per second" : null);
    card(box, "bytes allocated", fmtSize(s.bytes_allocated), fmtCount(s.bytes_allocated) + " bytes");
    card(box, "temporary allocations", fmtCount(s.temporary), fmtPct(s.temporary, s.alloc_calls) + " of calls");
    card(box, "free calls", fmtCount(s.free_calls), null);
    card(box, "peak heap", fmtSize(s.peak_heap_bytes), fmtCount(s.peak_heap_blocks) + " blocks at " + fmtDur(s.peak_t_ns));
    card(box, "peak RSS", isNum(s.peak_rss_bytes) ? fmtSize(s.peak_rss_bytes) : "n/a",
      isNum(s.peak_rss_bytes) ? null : "no RSS samples in the trace");
    card(box, ctx.liveTitle, fmtSize(s.leaked_bytes), fmtCount(s.leaked_blocks) + " blocks");
    var omitted = (d.stacks_omitted || {}).count || 0;
    card(box, "call stacks", fmtCount((d.stacks || []).length + omitted),
      omitted ? fmtCount(omitted) + " smaller ones summed in one box" : "distinct stacks that allocated");
    var f = s.calls_by_function;
    if (f && typeof f === "object") {
      var parts = Object.keys(f).filter(function (k) { return f[k]; }).sort(function (a, b) { return f[b] - f[a]; })
        .map(function (k) { return k + " " + fmtCount(f[k]); });
      if (parts.length) $("summary-funcs").textContent = "Calls by function: " + parts.join(", ") + ".";
    }
  }

  /* ---- timeline chart --------------------------------------------------- */

  var SERIES = [
    { key: "rss", name: "RSS", colour: "var(--c-rss)" },
    { key: "heap_bytes", name: "live heap", colour: "var(--c-heap)" },
    { key: "alloc_free", name: "allocator-held free", colour: "var(--c-free)" },
    { key: "non_heap", name: "non-heap", colour: "var(--c-nonheap)" }
  ];

  /* Round tick steps: 1, 2, 2.5, 5 x 10^k of the unit. */
  function niceStep(span, n) {
    var raw = span / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var m = [1, 2, 2.5, 5, 10].find(function (x) { return x * p >= raw; });
    return m * p;
  }

  function byteUnit(max) {
    var u = [["B", 1], ["KiB", 1024], ["MiB", 1048576], ["GiB", 1073741824], ["TiB", 1099511627776]], i = 0;
    while (i < u.length - 1 && max >= u[i + 1][1]) i++;
    return { name: u[i][0], div: u[i][1] };
  }

  /* v with as many decimals as the step has (0.25 -> 2), so ticks never repeat. */
  function tickLabel(v, step) {
    var dec = 0;
    while (dec < 6 && Math.abs(step * Math.pow(10, dec) - Math.round(step * Math.pow(10, dec))) > 1e-6) dec++;
    return v.toFixed(dec);
  }

  function renderTimeline(d) {
    var tl = d.timeline;
    if (!Array.isArray(tl) || tl.length < 1) return;
    show("timeline");
    var legend = $("tl-legend");
    SERIES.forEach(function (s) {
      var has = tl.some(function (p) { return isNum(p[s.key]); });
      legend.appendChild(el("span", { class: has ? null : "na" },
        [el("i", { style: "background:" + s.colour }), s.name + (has ? "" : " (n/a)")]));
    });
    var draw = function () { drawTimeline(d, $("tl-chart")); };
    draw();
    onResize(draw);
    var v = d.verdict || {};
    $("tl-note").textContent = "Allocator-held free: memory glibc's arenas keep after free (from mallinfo2, " +
      "sampled at most once a second); non-heap: RSS outside malloc (mappings, thread stacks, the recorder's " +
      "own memory excluded)." + (v.allocator_stats === false ? "  Without allocator statistics non-heap is RSS minus live heap." : "");
  }

  function drawTimeline(d, box) {
    var tl = d.timeline, W = Math.max(600, box.clientWidth || 1180), H = 320;
    var m = { l: 64, r: 16, t: 26, b: 36 }, pw = W - m.l - m.r, ph = H - m.t - m.b;
    var tmax = Math.max(tl[tl.length - 1].t_ns, (d.trace || {}).duration_ns || 0, 1) / 1e9;
    var lo = 0, hi = 1;
    tl.forEach(function (p) {
      SERIES.forEach(function (s) {
        var v = p[s.key];
        if (isNum(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
    });
    var unit = byteUnit(Math.max(hi, -lo)), ystep = niceStep((hi - lo) / unit.div, 7);
    var y0 = Math.floor(lo / unit.div / ystep) * ystep, y1 = Math.ceil(hi / unit.div / ystep) * ystep || ystep;
    var X = function (t) { return m.l + t / tmax * pw; };
    var Y = function (b) { return m.t + ph - (b / unit.div - y0) / (y1 - y0) * ph; };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
      "aria-label": "RSS, live heap, allocator-held free and non-heap memory over time" });
    drawWindow(root, d, X, m, ph);
    drawAxes(root, { X: X, Y: Y, m: m, pw: pw, ph: ph, tmax: tmax, y0: y0, y1: y1, ystep: ystep, unit: unit });
    drawMarks(root, d, X, m, ph);
    SERIES.forEach(function (s) {
      root.appendChild(svg("path", { class: "series", "data-series": s.key, stroke: s.colour,
        d: seriesPath(tl, s.key, X, Y, pw) }));
    });
    var cursor = svg("line", { class: "cursor", y1: m.t, y2: m.t + ph, visibility: "hidden" });
    root.appendChild(cursor);
    clear(box);
    box.appendChild(root);
    hoverTimeline(root, tl, cursor, X, W, m);
  }

  /* Path of one series; gaps where a point has no value.  Long series keep min and max per pixel. */
  function seriesPath(tl, key, X, Y, pw) {
    var out = [], pen = false, step = tl.length > 2 * pw ? tl.length / pw : 1;
    for (var b = 0; b < tl.length; b += step) {
      var lo = null, hi = null, end = Math.min(tl.length, Math.floor(b + step));
      for (var i = Math.floor(b); i < end; i++) {
        var v = tl[i][key];
        if (!isNum(v)) { pen = false; continue; }
        if (lo === null || v < lo.v) lo = { v: v, i: i };
        if (hi === null || v > hi.v) hi = { v: v, i: i };
      }
      if (lo === null) continue;
      var pts = lo.i <= hi.i ? [lo, hi] : [hi, lo];
      if (lo.i === hi.i) pts = [lo];
      pts.forEach(function (p) {
        out.push((pen ? "L" : "M") + X(tl[p.i].t_ns / 1e9).toFixed(1) + "," + Y(p.v).toFixed(1));
        pen = true;
      });
    }
    return out.join("");
  }

  function drawAxes(root, a) {
    var g = svg("g", { class: "axis" });
    for (var v = a.y0; v <= a.y1 + a.ystep / 2; v += a.ystep) {
      var y = a.Y(v * a.unit.div);
      g.appendChild(svg("line", { class: "gridline", x1: a.m.l, x2: a.m.l + a.pw, y1: y, y2: y }));
      g.appendChild(svg("text", { x: a.m.l - 6, y: y + 4, "text-anchor": "end" }, tickLabel(v, a.ystep) + " " + a.unit.name));
    }
    var tstep = niceStep(a.tmax, Math.max(4, Math.floor(a.pw / 110)));
    for (var t = 0; t <= a.tmax + 1e-9; t += tstep) {
      var x = a.X(t);
      g.appendChild(svg("line", { x1: x, x2: x, y1: a.m.t + a.ph, y2: a.m.t + a.ph + 5 }));
      g.appendChild(svg("text", { x: x, y: a.m.t + a.ph + 18, "text-anchor": "middle" }, tickLabel(t, tstep)));
    }
    g.appendChild(svg("text", { x: a.m.l + a.pw, y: a.m.t + a.ph + 32, "text-anchor": "end" }, "time (s)"));
    g.appendChild(svg("line", { x1: a.m.l, x2: a.m.l + a.pw, y1: a.Y(0), y2: a.Y(0), stroke: "#9aa1ad" }));
    root.appendChild(g);
  }

  /* The window the verdict judged (after warm-up), shaded. */
  function drawWindow(root, d, X, m, ph) {
    var w = (d.verdict || {}).window;
    if (!w || !isNum(w.first_t_ns) || !isNum(w.last_t_ns)) return;
    var x0 = X(w.first_t_ns / 1e9), x1 = X(w.last_t_ns / 1e9);
    root.appendChild(svg("rect", { class: "window", x: x0, y: m.t, width: Math.max(0, x1 - x0), height: ph }));
    root.appendChild(svg("text", { class: "mark-label", x: x0 + 4, y: m.t + ph - 6 }, "judged after warm-up"));
  }

  /* Marks (kind "mark") as dashed lines; labels where they do not overlap.  Also the heap peak. */
  function drawMarks(root, d, X, m, ph) {
    var pts = markPoints(d), lastX = -1e9;
    var s = d.summary || {};
    if (isNum(s.peak_t_ns) && s.peak_heap_bytes) {
      var px = X(s.peak_t_ns / 1e9);
      root.appendChild(svg("line", { class: "peak-line", x1: px, x2: px, y1: m.t, y2: m.t + ph }));
      root.appendChild(svg("text", { class: "mark-label", x: px - 4, y: m.t + 10, "text-anchor": "end", fill: "var(--c-heap)" }, "heap peak"));
    }
    pts.forEach(function (p) {
      var x = X(p.t_ns / 1e9);
      root.appendChild(svg("line", { class: "mark-line", x1: x, x2: x, y1: m.t - 4, y2: m.t + ph }));
      if (x - lastX < 60) return;
      lastX = x;
      root.appendChild(svg("text", { class: "mark-label", x: x + 3, y: m.t - 8 }, shorten(p.label || "mark", 14)));
    });
  }

  function markPoints(d) {
    var mk = d.marks, pts = mk && (Array.isArray(mk) ? mk : mk.points);
    if (!Array.isArray(pts)) return [];
    return pts.filter(function (p) { return p.kind === undefined || p.kind === "mark" || p.kind === 0; });
  }

  function shorten(s, n) { return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }

  function nearest(tl, t) {
    var lo = 0, hi = tl.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (tl[mid].t_ns < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && t - tl[lo - 1].t_ns < tl[lo].t_ns - t) lo--;
    return tl[lo];
  }

  function hoverTimeline(root, tl, cursor, X, W, m) {
    var tmaxX = function (ev) {
      var r = root.getBoundingClientRect();
      return (ev.clientX - r.left) * W / r.width;
    };
    root.addEventListener("mousemove", function (ev) {
      var x = tmaxX(ev), t = (x - m.l) / (X(1) - X(0)) * 1e9;
      if (x < m.l - 2 || x > W - m.r + 2) { cursor.setAttribute("visibility", "hidden"); tipHide(); return; }
      var p = nearest(tl, t), cx = X(p.t_ns / 1e9);
      cursor.setAttribute("x1", cx);
      cursor.setAttribute("x2", cx);
      cursor.setAttribute("visibility", "visible");
      var rows = [el("b", null, fmtDur(p.t_ns)), el("br")];
      SERIES.forEach(function (s) {
        if (!isNum(p[s.key])) return;
        rows.push(el("span", { class: "sw", style: "background:" + s.colour }), s.name + ": " + fmtSize(p[s.key]), el("br"));
      });
      if (isNum(p.threads) && p.threads) rows.push(el("span", { class: "dim" }, fmtCount(p.threads) + " threads"));
      tipShow(ev, rows);
    });
    root.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); tipHide(); });
  }

  var resizers = [];
  function onResize(f) { resizers.push(f); }

  /* ---- size histogram --------------------------------------------------- */

  /* "<= 8 B", "<= 2 KiB": a power of two in whole units (text.c's pow2_label). */
  function pow2Label(upper) {
    if (upper === null || upper === undefined) return "larger";
    var u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"], i = 0;
    while (upper >= 1024 && i < 6) { upper /= 1024; i++; }
    return "\u2264 " + Math.round(upper) + " " + u[i];
  }

  /*
   * The text report's rows: the analysis' power-of-two buckets (k: sizes
   * up to 2^k; the file lists the non-empty ones) grouped four sizes apart,
   * <= 8 B, <= 32 B, <= 128 B, ...; empty rows between the first and the
   * last non-empty one are kept.
   */
  function histRows(h) {
    var rows = [];
    h.forEach(function (b) {
      var up = b.upper_bytes, k = up === null || up === undefined ? 64 : Math.max(0, Math.round(Math.log2(up)));
      var r = k <= 3 ? 0 : (k - 2) >> 1;
      if (!rows[r]) rows[r] = { calls: 0, bytes: 0 };
      rows[r].calls += b.calls || 0;
      rows[r].bytes += b.bytes || 0;
    });
    var out = [];
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r] || { calls: 0, bytes: 0 };
      row.upper = r === 0 ? 8 : r >= 31 ? null : Math.pow(2, 2 * r + 3);
      out.push(row);
    }
    while (out.length && !out[0].calls) out.shift();
    return out;
  }

  function bar(cls, v, max) {
    return el("div", { class: "bar " + cls }, el("i", { style: "width:" + (max ? 100 * v / max : 0).toFixed(2) + "%" }));
  }

  function renderHistogram(d) {
    if (!Array.isArray(d.histogram)) return;
    var rows = histRows(d.histogram);
    if (!rows.length) return;
    show("hist");
    var t = $("hist-table"), mc = 0, mb = 0, tc = 0, tb = 0;
    rows.forEach(function (r) { mc = Math.max(mc, r.calls); mb = Math.max(mb, r.bytes); tc += r.calls; tb += r.bytes; });
    t.appendChild(el("tr", null, [el("th", null, "size"), el("th", { class: "num" }, "allocations"),
      el("th", { class: "num" }, "%"), el("th", null, ""), el("th", { class: "num" }, "bytes allocated"),
      el("th", { class: "num" }, "%"), el("th", null, "")]));
    rows.forEach(function (r) {
      t.appendChild(el("tr", null, [el("td", { class: "mono" }, pow2Label(r.upper)),
        el("td", { class: "num" }, fmtCount(r.calls)), el("td", { class: "num" }, fmtPct(r.calls, tc)),
        el("td", { class: "barcell" }, bar("calls", r.calls, mc)),
        el("td", { class: "num" }, fmtSize(r.bytes)), el("td", { class: "num" }, fmtPct(r.bytes, tb)),
        el("td", { class: "barcell" }, bar("bytes", r.bytes, mb))]));
    });
  }

  /* ---- flame graph ------------------------------------------------------ */

  /* Metrics of the flame graph and the top tables: index into a node's v[]. */
  var METRICS = [
    { key: "peak_bytes", name: "peak", title: "live bytes at the heap peak", size: true, total: "peak_heap_bytes" },
    { key: "leaked_bytes", name: "leaked", title: "bytes live at the end", size: true, total: "leaked_bytes" },
    { key: "bytes", name: "allocated", title: "bytes allocated", size: true, total: "bytes_allocated" },
    { key: "calls", name: "calls", title: "allocation calls", size: false, total: "alloc_calls" },
    { key: "temporary", name: "temporary", title: "temporary allocations", size: false, total: "temporary" }
  ];

  function fmtMetric(mi, v) { return METRICS[mi].size ? fmtSize(v) : fmtCount(v); }

  /* A frame's class for colour: the program, a shared library, or unknown. */
  function frameKind(f) {
    if (!f || !f["function"] || f["function"] === "??") return "unknown";
    var mod = String(f.module || "");
    return /\.so(\.|$)/.test(mod) ? "lib" : "prog";
  }

  function hash(s) {
    var h = 2166136261;
    for (var i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    return (h >>> 0) / 4294967296;
  }

  function frameColour(name, kind) {
    var r = hash(name);
    if (kind === "unknown") return "hsl(220,6%," + (74 + 8 * r).toFixed(0) + "%)";
    if (kind === "lib") return "hsl(" + (195 + 25 * r).toFixed(0) + ",55%," + (70 + 10 * r).toFixed(0) + "%)";
    return "hsl(" + (8 + 42 * r).toFixed(0) + ",82%," + (60 + 10 * hash(name + "#")).toFixed(0) + "%)";
  }

  function newNode(name, frame, parent) {
    return { name: name, frame: frame, parent: parent, kids: null, v: [0, 0, 0, 0, 0],
      depth: parent ? parent.depth + 1 : 0, match: false };
  }

  function addValues(n, vals) { for (var i = 0; i < 5; i++) n.v[i] += vals[i]; }

  /*
   * The call tree, outermost frame at the root: one pass over the stacks,
   * children keyed by function name (several lines of one function merge,
   * as in folded stacks).  O(total frames): 20000 stacks of depth 50 are a
   * million map look-ups.
   */
  function buildTree(d) {
    var frames = d.frames || [], key = [], ids = new Map();
    frames.forEach(function (f, i) {
      var name = f && f["function"] ? f["function"] : (f && f.module ? f.module + "+0x" + (f.offset || 0).toString(16) : "??");
      if (!ids.has(name)) ids.set(name, ids.size);
      key[i] = ids.get(name);
    });
    var root = newNode("all", null, null);
    (d.stacks || []).forEach(function (s) {
      var vals = METRICS.map(function (m) { return +s[m.key] || 0; }), n = root, fr = s.frames || [];
      addValues(root, vals);
      if (!fr.length) fr = [-1];
      for (var i = fr.length - 1; i >= 0; i--) {
        var fi = fr[i], k = fi < 0 ? -1 : key[fi];
        if (k === undefined) k = -2;
        if (!n.kids) n.kids = new Map();
        var c = n.kids.get(k);
        if (!c) {
          var f = frames[fi];
          c = newNode(fi < 0 ? "[no call stack]" : (f && f["function"]) || (f && f.module ? f.module + "+0x" + (f.offset || 0).toString(16) : "??"), f || null, n);
          n.kids.set(k, c);
        }
        addValues(c, vals);
        n = c;
      }
    });
    addOmitted(root, d);
    return root;
  }

  /* Stacks left out of the file (stacks_omitted: their count and sums) still count: one box holds them. */
  function addOmitted(root, d) {
    var o = d.stacks_omitted || {}, rest = METRICS.map(function (m) { return +o[m.key] || 0; });
    if (!o.count || !rest.some(function (x) { return x > 0; })) return;
    var c = newNode("[" + fmtCount(o.count) + " smaller stacks not in this file]", null, root);
    if (!root.kids) root.kids = new Map();
    root.kids.set(-3, c);
    addValues(c, rest);
    addValues(root, rest);
  }

  function kidsBy(n, mi) {
    if (!n.kids) return [];
    var a = [];
    n.kids.forEach(function (c) { if (c.v[mi] > 0) a.push(c); });
    return a.sort(function (x, y) { return y.v[mi] - x.v[mi] || (x.name < y.name ? -1 : 1); });
  }

  function pathOf(n) {
    var p = [];
    for (; n; n = n.parent) p.unshift(n);
    return p;
  }

  var ROW = 18, MIN_W = 0.5, TEXT_W = 36, CHAR_W = 6.9, MAX_BOXES = 12000;

  function Flame(d, ctx) {
    this.d = d;
    this.ctx = ctx;
    this.root = buildTree(d);
    this.focus = this.root;
    this.mi = this.defaultMetric(d);
    this.query = "";
    this.box = $("fg-chart");
    this.drawn = [];
  }

  /* Leaks: the leaked bytes; otherwise the live heap at its peak. */
  Flame.prototype.defaultMetric = function (d) {
    var cls = String((d.verdict || {})["class"] || "");
    if (/live.?heap|leak/i.test(cls) && this.root.v[1] > 0) return 1;
    if (this.root.v[0] > 0) return 0;
    return this.root.v[1] > 0 ? 1 : 2;
  };

  Flame.prototype.setup = function () {
    var self = this, seg = $("fg-metrics");
    METRICS.forEach(function (m, i) {
      var b = el("button", { type: "button", "data-metric": m.name, title: m.title }, m.name);
      b.addEventListener("click", function () { self.setMetric(i); });
      seg.appendChild(b);
    });
    $("fg-reset").addEventListener("click", function () { self.zoom(self.root); });
    var timer = null;
    $("fg-search").addEventListener("input", function (ev) {
      clearTimeout(timer);
      timer = setTimeout(function () { self.search(ev.target.value); }, 120);
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && document.activeElement !== $("fg-search")) self.zoom(self.root);
    });
    this.box.addEventListener("click", function (ev) { self.onClick(ev); });
    this.box.addEventListener("mousemove", function (ev) { self.onHover(ev); });
    this.box.addEventListener("mouseleave", tipHide);
    onResize(function () { self.draw(); });
    this.setMetric(this.mi);
  };

  Flame.prototype.setMetric = function (mi) {
    this.mi = mi;
    Array.prototype.forEach.call($("fg-metrics").children, function (b, i) {
      b.setAttribute("aria-pressed", i === mi ? "true" : "false");
    });
    this.draw();
  };

  Flame.prototype.zoom = function (n) {
    this.focus = n;
    this.draw();
  };

  Flame.prototype.searchFor = function (name) {
    $("fg-search").value = name;
    this.search(name);
    $("flame").scrollIntoView({ behavior: "smooth", block: "start" });
  };

  /* Marks every node whose function or file holds the query (case-insensitive). */
  Flame.prototype.search = function (q) {
    this.query = q.trim().toLowerCase();
    var query = this.query;
    (function walk(n) {
      if (n.lname === undefined) n.lname = n.name.toLowerCase();
      n.match = !!query && n.depth > 0 && (n.lname.indexOf(query) >= 0 ||
        (n.frame && n.frame.file && String(n.frame.file).toLowerCase().indexOf(query) >= 0));
      if (n.kids) n.kids.forEach(walk);
    })(this.root);
    this.draw();
  };

  /* Sum of the metric over matched nodes not under another matched node. */
  Flame.prototype.matched = function () {
    var mi = this.mi, sum = 0, frames = 0;
    (function walk(n) {
      if (n.match) { sum += n.v[mi]; frames++; return; }
      if (n.kids) n.kids.forEach(walk);
    })(this.root);
    return { value: sum, frames: frames };
  };

  Flame.prototype.draw = function () {
    var mi = this.mi, total = this.focus.v[mi];
    if (this.focus !== this.root && total <= 0) this.focus = this.root;
    this.drawCrumbs();
    this.drawTotal();
    this.drawMatch();
    this.drawBoxes();
  };

  Flame.prototype.drawCrumbs = function () {
    var self = this, box = $("fg-crumbs");
    clear(box);
    pathOf(this.focus).forEach(function (n, i) {
      if (i) box.appendChild(el("span", { class: "sep" }, "\u203a"));
      var a = el("a", { "data-depth": i }, n.name);
      a.addEventListener("click", function () { self.zoom(n); });
      box.appendChild(a);
    });
  };

  Flame.prototype.drawTotal = function () {
    var m = METRICS[this.mi], f = this.focus, r = this.root.v[this.mi];
    var txt = (f === this.root ? "All stacks" : f.name) + ": " + fmtMetric(this.mi, f.v[this.mi]) + " " + m.title;
    if (f !== this.root) txt += " (" + fmtPct(f.v[this.mi], r) + " of all)";
    $("fg-total").textContent = txt;
    $("fg-total").setAttribute("data-value", String(f.v[this.mi]));
  };

  Flame.prototype.drawMatch = function () {
    var info = $("fg-match");
    if (!this.query) { info.textContent = ""; return; }
    var mt = this.matched(), r = this.root.v[this.mi];
    info.textContent = mt.frames ? "matched: " + fmtPct(mt.value, r) + " of all (" + fmtMetric(this.mi, mt.value) + ")"
      : "no match";
    info.setAttribute("data-value", String(mt.value));
  };

  /*
   * Lays out the focus full width, its ancestors above it (full width,
   * faded), its descendants below scaled to it.  Boxes narrower than
   * MIN_W pixels are not drawn (their parent's box covers them), and the
   * box count is capped, so a big tree costs what is visible.
   */
  Flame.prototype.drawBoxes = function () {
    var mi = this.mi, W = Math.max(600, this.box.clientWidth || 1180), focus = this.focus;
    var total = focus.v[mi], anc = pathOf(focus).slice(0, -1), drawn = [], maxDepth = anc.length;
    if (total <= 0) {
      clear(this.box);
      this.box.appendChild(el("div", { class: "fg-empty" }, "No " + METRICS[mi].title + " in this trace."));
      return;
    }
    anc.forEach(function (n, i) { drawn.push({ n: n, x: 0, w: W, row: i, anc: true }); });
    var queue = [{ n: focus, x: 0, w: W, row: anc.length }], minW = MIN_W;
    while (queue.length) {
      var next = [];
      for (var q = 0; q < queue.length; q++) {
        var b = queue[q];
        drawn.push(b);
        maxDepth = Math.max(maxDepth, b.row);
        var x = b.x;
        kidsBy(b.n, mi).forEach(function (c) {
          var w = c.v[mi] / total * W;
          if (w >= minW) next.push({ n: c, x: x, w: w, row: b.row + 1 });
          x += w;
        });
      }
      if (drawn.length + next.length > MAX_BOXES) next = next.filter(function (b) { return b.w >= 3; });
      queue = next;
    }
    this.render(drawn, W, (maxDepth + 1) * ROW);
  };

  Flame.prototype.render = function (drawn, W, H) {
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, id: "fg-svg" }), frag = document.createDocumentFragment();
    drawn.forEach(function (b, i) {
      var n = b.n, cls = "fr" + (b.anc ? " anc" : "") + (n.match ? " match" : "");
      var g = svg("g", { class: cls, "data-i": i, "data-name": n.name, "data-depth": n.depth, "data-value": n.v[this.mi] });
      var fill = n === this.root ? "hsl(220,10%,82%)" : frameColour(n.name, frameKind(n.frame));
      g.appendChild(svg("rect", { x: b.x.toFixed(2), y: b.row * ROW, width: Math.max(0.5, b.w - 0.4).toFixed(2), height: ROW - 1, fill: fill }));
      if (b.w >= TEXT_W) {
        var label = n === this.root ? "all (" + fmtMetric(this.mi, n.v[this.mi]) + ")" : n.name;
        var room = Math.floor((b.w - 6) / CHAR_W);
        g.appendChild(svg("text", { x: (b.x + 3).toFixed(2), y: b.row * ROW + 12.5 }, shorten(label, room)));
      }
      frag.appendChild(g);
    }, this);
    root.appendChild(frag);
    this.drawn = drawn;
    clear(this.box);
    this.box.appendChild(root);
  };

  Flame.prototype.boxAt = function (ev) {
    var g = ev.target.closest ? ev.target.closest("g.fr") : null;
    return g ? this.drawn[+g.getAttribute("data-i")] : null;
  };

  Flame.prototype.onClick = function (ev) {
    var b = this.boxAt(ev);
    if (b) this.zoom(b.n);
  };

  Flame.prototype.onHover = function (ev) {
    var b = this.boxAt(ev);
    if (!b) { tipHide(); return; }
    var n = b.n, mi = this.mi, f = n.frame, self = n.v[mi];
    kidsBy(n, mi).forEach(function (c) { self -= c.v[mi]; });
    var rows = [el("b", null, n.name), el("br")];
    if (f && frameLoc(f)) rows.push(el("span", { class: "dim" }, frameLoc(f) + (f.inlined ? " (inlined)" : "")), el("br"));
    if (f && f.module && f.file) rows.push(el("span", { class: "dim" }, f.module), el("br"));
    rows.push(fmtMetric(mi, n.v[mi]) + " " + METRICS[mi].title + ": " + fmtPct(n.v[mi], this.root.v[mi]) + " of all");
    if (this.focus !== this.root) rows.push(", " + fmtPct(n.v[mi], this.focus.v[mi]) + " of the zoomed frame");
    if (n.kids && self > 0) rows.push(el("br"), el("span", { class: "dim" }, "allocated here directly: " + fmtMetric(mi, self)));
    tipShow(ev, rows);
  };

  /* ---- top stacks ------------------------------------------------------- */

  var TOP_LISTS = [
    { key: "peak", metric: 0, title: "by live heap at the peak" },
    { key: "leaked", metric: 1, title: "by bytes live at the end" },
    { key: "calls", metric: 3, title: "by allocation calls" },
    { key: "temporary", metric: 4, title: "by temporary allocations" }
  ];

  /* The analysis' top list (respects --top), else the 10 largest stacks by the metric. */
  function topIds(d, list) {
    var t = d.top && d.top[list.key];
    if (Array.isArray(t)) return t;
    var k = METRICS[list.metric].key;
    return (d.stacks || []).filter(function (s) { return s[k] > 0; })
      .sort(function (a, b) { return b[k] - a[k]; }).slice(0, 10).map(function (s) { return s.id; });
  }

  function renderTop(d, ctx) {
    if (!Array.isArray(d.stacks) || !d.stacks.length) return;
    show("top");
    var tabs = $("top-tabs"), body = $("top-body"), divs = [];
    if (ctx.endKind !== "exit") TOP_LISTS[1].title = "by bytes " + ctx.liveWord;
    TOP_LISTS.forEach(function (l, i) {
      var div = el("div", { id: "top-" + l.key });
      div.appendChild(el("h3", null, "Top stacks " + l.title));
      div.appendChild(topTable(d, ctx, l));
      body.appendChild(div);
      divs.push(div);
      var b = el("button", { type: "button", "data-list": l.key }, l.key === "leaked" ? ctx.liveShort : l.key);
      b.addEventListener("click", function () { pick(i); });
      tabs.appendChild(b);
    });
    function pick(k) {
      divs.forEach(function (dv, i) { dv.hidden = i !== k; });
      Array.prototype.forEach.call(tabs.children, function (b, i) { b.setAttribute("aria-pressed", i === k ? "true" : "false"); });
    }
    pick(ctx.flame ? [0, 1, 3, 3, 4][ctx.flame.mi] : 0);
  }

  function topTable(d, ctx, l) {
    var ids = topIds(d, l), s = d.summary || {}, mk = METRICS[l.metric];
    if (!ids.length) return el("p", { class: "note" }, "(none)");
    var t = el("table", { class: "grid" });
    t.appendChild(el("tr", null, [el("th", { class: "num" }, "#"), el("th", { class: "num" }, mk.name),
      el("th", { class: "num" }, "%"), el("th", { class: "num" }, "calls"), el("th", { class: "num" }, "allocated"),
      el("th", { class: "num" }, "at peak"), el("th", { class: "num" }, ctx.liveShort), el("th", null, "call stack (innermost first)")]));
    ids.forEach(function (id, r) {
      var st = ctx.stackById[id];
      if (!st) return;
      t.appendChild(el("tr", null, [el("td", { class: "num" }, String(r + 1)),
        el("td", { class: "num" }, el("b", null, fmtMetric(l.metric, st[mk.key]))),
        el("td", { class: "num" }, fmtPct(st[mk.key], s[mk.total])),
        el("td", { class: "num" }, fmtCount(st.calls)), el("td", { class: "num" }, fmtSize(st.bytes)),
        el("td", { class: "num" }, fmtSize(st.peak_bytes)),
        el("td", { class: "num" }, fmtSize(st.leaked_bytes) + (st.leaked_blocks ? " / " + fmtCount(st.leaked_blocks) + " bl." : "")),
        el("td", null, frameList(stackFrames(ctx, id), ctx))]));
    });
    return t;
  }

  /* Frames, 12 shown (the text report's MT_REPORT_FRAMES), the rest behind "more". */
  function frameList(fr, ctx) {
    var ul = el("ul", { class: "frames" }), shown = 12;
    if (!fr.length) ul.appendChild(el("li", null, "(no call stack recorded)"));
    var item = function (f) {
      var loc = frameLoc(f);
      return el("li", null, [fnLink(f, ctx), loc ? el("span", { class: "loc" }, "  " + loc) : null,
        f.inlined ? el("span", { class: "inl" }, " (inlined)") : null]);
    };
    fr.slice(0, shown).forEach(function (f) { ul.appendChild(item(f)); });
    if (fr.length <= shown) return ul;
    var more = el("details", { class: "more" }, el("summary", null, (fr.length - shown) + " more frames"));
    var rest = el("ul", { class: "frames" });
    fr.slice(shown).forEach(function (f) { rest.appendChild(item(f)); });
    more.appendChild(rest);
    return el("div", null, [ul, more]);
  }

  /* ---- arenas and marks ------------------------------------------------- */

  function kvTable(rows) {
    var t = el("table", { class: "grid" });
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined) return;
      t.appendChild(el("tr", null, [el("td", null, r[0]), el("td", { class: "num" }, r[1]), el("td", { class: "note" }, r[2] || "")]));
    });
    return t;
  }

  function renderArenas(d) {
    var a = d.arenas;
    if (!a || typeof a !== "object") return;
    show("arenas");
    var body = $("arenas-body"), mi = a.malloc_info;
    var sz = function (k) { return isNum(a[k]) ? fmtSize(a[k]) : null; };
    var left = el("div", null, [el("h3", null, "mallinfo2" + (isNum(a.t_ns) ? " at " + fmtDur(a.t_ns) : "") +
      ", the last sample before the exit"), kvTable([
      ["arena (non-mmap)", sz("arena"), "what the arenas hold from the system"],
      ["in use (uordblks)", sz("uordblks")],
      ["free in arenas (fordblks)", sz("fordblks"), "held by glibc, not by the program"],
      ["releasable (keepcost)", sz("keepcost"), "what malloc_trim can give back from the top"],
      ["mmap regions (hblks)", isNum(a.hblks) ? fmtCount(a.hblks) : null, isNum(a.hblkhd) ? "holding " + fmtSize(a.hblkhd) : ""],
      ["live heap", sz("heap_bytes"), isNum(a.utilization) ? "utilization " + (100 * a.utilization).toFixed(1) + "% of arena + hblkhd" : ""],
      ["threads", isNum(a.threads) ? fmtCount(a.threads) : null]])]);
    var cols = el("div", { class: "cols" }, left);
    if (mi && Array.isArray(mi.arenas) && mi.arenas.length) {
      cols.appendChild(el("div", null, [el("h3", null, "Per arena (malloc_info" + (isNum(mi.t_ns) ? " at " + fmtDur(mi.t_ns) : "") + ")"),
        el("p", { class: "note" }, fmtCount(mi.arena_count || mi.arenas.length) + " arenas" +
          (isNum(a.threads) ? " for " + fmtCount(a.threads) + " threads" : "") + "; mmap'd chunks: " +
          fmtCount(mi.mmap_chunks) + " holding " + fmtSize(mi.mmap_bytes)),
        perArenaTable(mi.arenas)]));
    }
    body.appendChild(cols);
    if (a.warn_low_utilization)
      body.appendChild(el("p", { class: "warn" }, "Low utilization: " + (100 * a.utilization).toFixed(1) + "% of what glibc holds is live."));
    if (a.warn_free_not_releasable)
      body.appendChild(el("p", { class: "warn" }, "Most free memory sits below the top of the heap: malloc_trim's keepcost (" +
        fmtSize(a.keepcost) + ") is far below the free total (" + fmtSize(a.fordblks) + ")."));
  }

  /* Arenas holding the most free memory first, 10 rows (the text report's MT_ARENAS_SHOWN). */
  function perArenaTable(per) {
    var t = el("table", { class: "grid" });
    t.appendChild(el("tr", null, ["arena", "holds", "free", "free chunks", "in use"].map(function (h, i) {
      return el("th", { class: i ? "num" : null }, h);
    })));
    per.slice().sort(function (x, y) { return (y.free_bytes || 0) - (x.free_bytes || 0); }).slice(0, 10).forEach(function (r) {
      var hold = r.system_bytes, free = r.free_bytes;
      t.appendChild(el("tr", null, [el("td", null, String(r.nr)),
        el("td", { class: "num" }, fmtSize(hold)), el("td", { class: "num" }, fmtSize(free)),
        el("td", { class: "num" }, fmtCount(r.free_chunks)),
        el("td", { class: "num" }, hold ? (100 * (hold - free) / hold).toFixed(1) + "%" : "-")]));
    });
    if (per.length > 10) t.appendChild(el("tr", null, el("td", { colspan: 5, class: "note" }, (per.length - 10) + " more arenas")));
    return t;
  }

  function renderMarks(d) {
    var pts = markPoints(d);
    if (!pts.length) return;
    show("marks");
    var t = $("marks-table"), prev = null, limit = 200;
    t.appendChild(el("tr", null, ["mark", "time", "label", "live heap", "change", "RSS", "RSS change"].map(function (h, i) {
      return el("th", { class: i === 2 ? null : "num" }, h);
    })));
    pts.forEach(function (p, i) {
      if (i < limit) {
        var dh = prev ? p.heap_bytes - prev.heap_bytes : p.heap_bytes;
        t.appendChild(el("tr", null, [el("td", { class: "num" }, String(i + 1)), el("td", { class: "num" }, fmtDur(p.t_ns)),
          el("td", null, p.label || ""), el("td", { class: "num" }, fmtSize(p.heap_bytes)),
          el("td", { class: "num" }, (dh >= 0 ? "+" : "") + fmtSize(dh)),
          el("td", { class: "num" }, isNum(p.rss) ? fmtSize(p.rss) : "-"),
          el("td", { class: "num" }, prev && isNum(p.rss) && isNum(prev.rss) ? (p.rss >= prev.rss ? "+" : "") + fmtSize(p.rss - prev.rss) : "-")]));
      }
      prev = p;
    });
    $("marks-note").textContent = (pts.length > limit ? "First " + limit + " of " + pts.length + " marks. " : "") +
      "Live heap when each mark was written; RSS from the nearest sample.";
  }

  function renderOverhead(d) {
    var o = d.overhead;
    if (!o || typeof o !== "object") return;
    show("overhead");
    var dl = $("overhead-facts");
    if (isNum(o.events_recorded)) fact(dl, "events recorded", fmtCount(o.events_recorded));
    if (isNum(o.trace_bytes)) fact(dl, "trace size", fmtSize(o.trace_bytes) +
      (isNum(o.bytes_per_event) ? ", " + o.bytes_per_event.toFixed(2) + " bytes per event" : ""));
    if (isNum(o.raw_bytes)) fact(dl, "before compression", fmtSize(o.raw_bytes));
    if (isNum(o.recorder_peak_bytes)) fact(dl, "recorder memory at its peak", fmtSize(o.recorder_peak_bytes) +
      (isNum(o.recorder_fraction_of_peak_rss) && o.recorder_fraction_of_peak_rss <= 1 ?
        " (" + (100 * o.recorder_fraction_of_peak_rss).toFixed(1) + "% of peak RSS)" : ""));
    if (o.dropped_records || o.lost_events) fact(dl, "dropped / lost", fmtCount(o.dropped_records) + " / " + fmtCount(o.lost_events));
    if (isNum(o.trie_nodes)) fact(dl, "call stacks", fmtCount(o.trie_nodes) + " trie nodes, " + fmtCount(o.stacks) + " distinct stacks");
    if (!dl.children.length) $("overhead").hidden = true;
  }

  /* ---- compare results -------------------------------------------------- */

  function renderCompare(d) {
    show("compare");
    var cmd = Array.isArray(d.command) ? d.command.join(" ") : d.server ? "server: " + d.server : "memtriage compare";
    $("hdr-title").textContent = cmd;
    document.title = "memtriage compare: " + cmd;
    var dl = $("hdr-facts");
    if (d.load) fact(dl, "load", String(d.load));
    if (isNum(d.cycles) && d.cycles) fact(dl, d.server ? "load runs" : "cycles", fmtCount(d.cycles));
    if (d.recommendation) $("compare-rec").textContent = d.recommendation;
    else $("compare-rec").hidden = true;
    var box = $("compare-tables");
    (d.tables || []).forEach(function (tb) { compareTable(box, tb); });
    if (Array.isArray(d.configs) && d.configs.length) compareTable($("compare-configs"), { title: "Configurations",
      columns: ["config", "what it is", "environment"], rows: d.configs.map(function (c) {
        var env = c.env && typeof c.env === "object" ? Object.keys(c.env).map(function (k) { return k + "=" + c.env[k]; }).join(" ") : "";
        return [c.name, c.summary || "", env];
      }), left: true });
  }

  /* One table of a compare result: the first column names the row, the others are figures. */
  function compareTable(box, tb) {
    box.appendChild(el("h3", null, tb.title || ""));
    var t = el("table", { class: "grid compare" }), cols = tb.columns || [];
    var cls = function (i) { return i && !tb.left ? "num" : null; };
    t.appendChild(el("tr", null, cols.map(function (c, i) { return el("th", { class: cls(i) }, String(c)); })));
    (tb.rows || []).forEach(function (r) {
      t.appendChild(el("tr", null, (r || []).map(function (c, i) {
        var txt = c === null || c === undefined ? "-" : typeof c === "number" ? fmtNumber(c) : String(c);
        return el("td", { class: cls(i) }, txt);
      })));
    });
    box.appendChild(t);
    if (tb.note) box.appendChild(el("p", { class: "note" }, tb.note));
  }

  function fmtNumber(v) {
    if (Number.isInteger(v)) return fmtCount(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  /* ---- the page --------------------------------------------------------- */

  /* What report sections share: frames, stacks by id, the word for "live at the end". */
  function context(d) {
    var ctx = { frames: d.frames || [], stackById: Object.create(null), flame: null };
    (d.stacks || []).forEach(function (s) { ctx.stackById[s.id] = s; });
    var end = (d.trace || {}).end;
    ctx.endKind = end === "cut" || end === "exec" ? end : "exit";
    ctx.liveWord = { exit: "leaked", exec: "live at exec", cut: "live when the trace was cut" }[ctx.endKind];
    ctx.liveShort = ctx.endKind === "exit" ? "leaked" : "live at end";
    ctx.liveTitle = { exit: "leaked at exit", exec: "live at exec", cut: "live when cut" }[ctx.endKind];
    return ctx;
  }

  /* Runs one section's renderer; a failure is logged and hides nothing else. */
  function guarded(name, f) {
    try { f(); } catch (e) { console.error("memtriage: cannot draw the " + name + ": " + (e && e.stack || e)); }
  }

  function renderReport(d) {
    var ctx = context(d);
    guarded("header", function () { renderHeader(d); });
    guarded("flame graph", function () {
      if (!Array.isArray(d.stacks) || !d.stacks.length) return;
      show("flame");
      ctx.flame = new Flame(d, ctx);
      ctx.flame.setup();
    });
    guarded("verdict", function () { renderVerdict(d, ctx); });
    guarded("timeline", function () { renderTimeline(d); });
    guarded("summary", function () { renderSummary(d, ctx); });
    guarded("top stacks", function () { renderTop(d, ctx); });
    guarded("histogram", function () { renderHistogram(d); });
    guarded("arenas", function () { renderArenas(d); });
    guarded("marks", function () { renderMarks(d); });
    guarded("overhead", function () { renderOverhead(d); });
    window.memtriage = { data: d, flame: ctx.flame };
  }

  function main() {
    tip = $("tip");
    var d;
    try {
      d = JSON.parse($("mt-data").textContent);
    } catch (e) {
      console.error("memtriage: the embedded report data is not valid JSON: " + e);
      return;
    }
    if (d && d.schema === "memtriage-compare") guarded("comparison", function () { renderCompare(d); });
    else renderReport(d || {});
    var t = null;
    window.addEventListener("resize", function () {
      clearTimeout(t);
      t = setTimeout(function () { resizers.forEach(function (f) { guarded("resize", f); }); }, 150);
    });
    document.body.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
