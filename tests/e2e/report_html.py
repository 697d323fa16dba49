#!/usr/bin/python3
"""Checks memtriage's HTML report in headless Chromium (driven by report_html.sh).

usage: report_html.py REPORT.html REPORT.json REPORT.txt [COMPARE.html COMPARE.json]

REPORT.html, REPORT.json and REPORT.txt are the html, json and text reports
of one trace of `memtriage sim leak`.  The page must need no network, load
without console errors, show the JSON's verdict, draw the four timeline
series, and have a flame graph whose totals are the text report's, that
zooms into a clicked frame and measures a search.  A compare page must show
the compare document's recommendation and tables.  Exit status 0, or 1 with
"FAIL: ..." lines on stderr.
"""
import json
import os
import re
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SVG_NS = "http://www.w3.org/2000/svg"   # a name, never fetched


def fail(msg):
    print("FAIL: report_html: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(what, want, got):
    if want != got:
        fail("%s: expected %r, got %r" % (what, want, got))


def browser():
    opts = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def self_contained(path):
    """No URL but the SVG namespace, and no element that loads a file."""
    text = open(path, encoding="utf-8").read()
    urls = set(re.findall(r"(?:https?|ftp)://[^\s\"'<>)]*", text)) - {SVG_NS}
    if urls:
        fail("%s names URLs: %s" % (path, sorted(urls)[:5]))
    if re.search(r"<(?:link|img|iframe|object|embed)\b|<script[^>]*\bsrc\s*=|@import|url\(", text, re.I):
        fail("%s loads a resource (link, img, script src, @import or url())" % path)


def load(d, path):
    d.get("file://" + os.path.abspath(path))
    WebDriverWait(d, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "body[data-ready]"))
    severe = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    if severe:
        fail("console errors on %s:\n  %s" % (path, "\n  ".join(e["message"] for e in severe)))


def text_summary(txt):
    """The text report's leaked bytes, its size in parentheses, and its allocation calls."""
    m = re.search(r"^leaked at exit: (\d+) bytes in \d+ blocks \(([^)]+)\)", txt, re.M)
    c = re.search(r"^calls to allocation functions: (\d+)", txt, re.M)
    if not m or not c:
        fail("the text report has no 'leaked at exit' or 'calls' line")
    return int(m.group(1)), m.group(2), int(c.group(1))


def stacks_through(doc, pred):
    """Stacks of the JSON that pass through a frame satisfying pred."""
    fr = doc["frames"]
    return [s for s in doc["stacks"] if any(pred(fr[i]) for i in s["frames"])]


def flame_root(d):
    return d.find_element(By.CSS_SELECTOR, "#fg-svg g.fr[data-depth='0']")


def svg_width(d):
    return float(d.find_element(By.ID, "fg-svg").get_attribute("width"))


def rect_width(g):
    return float(g.find_element(By.TAG_NAME, "rect").get_attribute("width"))


def pick_metric(d, name):
    d.find_element(By.CSS_SELECTOR, "#fg-metrics button[data-metric='%s']" % name).click()
    expect("metric %s pressed" % name, "true",
           d.find_element(By.CSS_SELECTOR, "#fg-metrics button[data-metric='%s']" % name).get_attribute("aria-pressed"))


def check_header_and_verdict(d, doc):
    expect("verdict title", doc["verdict"]["title"], d.find_element(By.ID, "verdict-title").text)
    cmd = d.find_element(By.ID, "hdr-title").text
    if "sim leak" not in cmd:
        fail("header command %r lacks 'sim leak'" % cmd)
    owners = d.find_elements(By.CSS_SELECTOR, "#owners li")
    expect("owners listed", len(doc["verdict"]["owners"]), len(owners))
    if owners and "cache_insert_unbounded" not in owners[0].text:
        fail("owner #1 %r is not cache_insert_unbounded" % owners[0].text)


def check_timeline(d, doc):
    paths = d.find_elements(By.CSS_SELECTOR, "#tl-chart svg path.series")
    expect("timeline series paths", 4, len(paths))
    for p in paths:
        if not (p.get_attribute("d") or "").startswith("M"):
            fail("timeline series %s is empty" % p.get_attribute("data-series"))
    # the RSS line has one vertex per sample (the chart thins only beyond 2 per pixel)
    rss = d.find_element(By.CSS_SELECTOR, "path.series[data-series='rss']").get_attribute("d")
    expect("RSS vertices", len(doc["timeline"]), len(re.findall(r"[ML]", rss)))


def check_flame_totals(d, leaked, leaked_text, calls):
    pick_metric(d, "leaked")
    expect("flame graph root, leaked bytes", str(leaked), flame_root(d).get_attribute("data-value"))
    total = d.find_element(By.ID, "fg-total").text
    if leaked_text not in total:
        fail("flame graph total %r does not show the text report's %r" % (total, leaked_text))
    pick_metric(d, "calls")
    expect("flame graph root, calls", str(calls), flame_root(d).get_attribute("data-value"))


def check_zoom(d, doc):
    """Clicks cache_insert_unbounded (by bytes allocated): it fills the graph and names the view."""
    pick_metric(d, "allocated")
    name = "cache_insert_unbounded"
    want = sum(s["bytes"] for s in stacks_through(doc, lambda f: f["function"] == name))
    boxes = d.find_elements(By.CSS_SELECTOR, "#fg-svg g.fr[data-name='%s']" % name)
    if not boxes:
        fail("no flame graph frame named %s" % name)
    g = boxes[0]
    W = svg_width(d)
    if rect_width(g) > 0.5 * W:
        fail("%s is %.0f of %.0f px wide before the zoom: the test cannot see a zoom" % (name, rect_width(g), W))
    ActionChains(d).move_to_element(g.find_element(By.TAG_NAME, "rect")).perform()
    tip = d.find_element(By.ID, "tip")
    if not tip.is_displayed() or name not in tip.text:
        fail("hovering %s shows no tooltip naming it (%r)" % (name, tip.text))
    g.find_element(By.TAG_NAME, "rect").click()
    g = d.find_element(By.CSS_SELECTOR, "#fg-svg g.fr[data-name='%s']:not(.anc)" % name)
    if abs(rect_width(g) - W) > 1.5:
        fail("after the click %s is %.1f px wide, not the graph's %.1f" % (name, rect_width(g), W))
    crumbs = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#fg-crumbs a")]
    expect("last breadcrumb", name, crumbs[-1] if crumbs else None)
    expect("first breadcrumb", "all", crumbs[0] if crumbs else None)
    expect("zoomed total", str(want), d.find_element(By.ID, "fg-total").get_attribute("data-value"))
    expect("faded ancestors", len(crumbs) - 1, len(d.find_elements(By.CSS_SELECTOR, "#fg-svg g.fr.anc")))
    d.find_element(By.ID, "fg-reset").click()
    expect("after reset, breadcrumbs", ["all"], [a.text for a in d.find_elements(By.CSS_SELECTOR, "#fg-crumbs a")])


def check_search(d, doc):
    """Searching "request" (read_request, parse_request) by calls: the matched share is the JSON's, to 0.1%."""
    pick_metric(d, "calls")
    q = "request"
    hit = lambda f: q in (f.get("function") or "").lower() or q in (f.get("file") or "").lower()
    part = sum(s["calls"] for s in stacks_through(doc, hit))
    whole = sum(s["calls"] for s in doc["stacks"]) + doc["stacks_omitted"]["calls"]
    want = "%.1f%%" % (100.0 * part / whole)
    box = d.find_element(By.ID, "fg-search")
    box.clear()
    box.send_keys(q)
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "fg-match").text)
    got = d.find_element(By.ID, "fg-match").text
    if want not in got or want == "100.0%":
        fail("search %r: matched %r, expected %s of all calls" % (q, got, want))
    if not d.find_elements(By.CSS_SELECTOR, "#fg-svg g.fr.match[data-name='parse_request']"):
        fail("search %r highlights no frame" % q)


def check_tables(d, doc):
    rows = d.find_elements(By.CSS_SELECTOR, "#top-leaked table tr")
    expect("rows of the leaked top list (and its header)", len(doc["top"]["leaked"]) + 1, len(rows))
    if "cache_insert_unbounded" not in rows[1].text:
        fail("top leaked stack #1 lacks cache_insert_unbounded: %r" % rows[1].text)
    if doc.get("arenas") and not d.find_element(By.ID, "arenas").is_displayed():
        fail("the trace has arena figures but the arena panel is hidden")
    if not d.find_elements(By.CSS_SELECTOR, "#hist-table tr td"):
        fail("the size histogram is empty")


def check_report(d, html, doc, txt):
    self_contained(html)
    load(d, html)
    leaked, leaked_text, calls = text_summary(txt)
    check_header_and_verdict(d, doc)
    check_timeline(d, doc)
    check_flame_totals(d, leaked, leaked_text, calls)
    check_zoom(d, doc)
    check_search(d, doc)
    check_tables(d, doc)
    severe = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    if severe:
        fail("console errors while clicking: %s" % severe)


def check_compare(d, html, doc):
    self_contained(html)
    load(d, html)
    if not d.find_element(By.ID, "compare").is_displayed():
        fail("the compare panel is hidden")
    expect("recommendation", doc["recommendation"], d.find_element(By.ID, "compare-rec").text)
    tables = d.find_elements(By.CSS_SELECTOR, "#compare-tables table")
    expect("compare tables", len(doc["tables"]), len(tables))
    for t, want in zip(tables, doc["tables"]):
        trs = t.find_elements(By.TAG_NAME, "tr")
        expect("rows of '%s' (and its header)" % want["title"], len(want["rows"]) + 1, len(trs))
        expect("columns of '%s'" % want["title"], want["columns"],
               [th.text for th in trs[0].find_elements(By.TAG_NAME, "th")])
        for tr, row in zip(trs[1:], want["rows"]):
            expect("a row of '%s'" % want["title"], [str(c) for c in row],
                   [td.text for td in tr.find_elements(By.TAG_NAME, "td")])
    if d.find_element(By.ID, "verdict").is_displayed() or d.find_element(By.ID, "flame").is_displayed():
        fail("a compare page shows report panels")


def main():
    if len(sys.argv) not in (4, 6):
        print(__doc__, file=sys.stderr)
        return 2
    doc = json.load(open(sys.argv[2]))
    txt = open(sys.argv[3]).read()
    d = browser()
    try:
        check_report(d, sys.argv[1], doc, txt)
        if len(sys.argv) == 6:
            check_compare(d, sys.argv[4], json.load(open(sys.argv[5])))
    finally:
        d.quit()
    print("report_html: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
