#!/usr/bin/python3
"""Writes a PNG screenshot of a memtriage HTML report, rendered by headless
Chromium through Debian's python3-selenium and chromium-driver.

usage: tools/screenshot.py [--width PX] [--height PX] [--full] REPORT.html OUT.png

--full grows the window to the whole page (at most 16000 px); otherwise the
first --height pixels (default 2000) are taken: the verdict, the chart and
the flame graph.  Exits 77 when Chromium or selenium is missing, 1 on error.
"""
import argparse
import os
import shutil
import sys


def driver(width, height):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("screenshot: python3-selenium is not installed", file=sys.stderr)
        sys.exit(77)
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(chromedriver) or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        print("screenshot: chromium or chromedriver is not installed", file=sys.stderr)
        sys.exit(77)
    opts = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--force-device-scale-factor=1", "--window-size=%d,%d" % (width, height)):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


def main():
    ap = argparse.ArgumentParser(description="PNG screenshot of a memtriage HTML report")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--full", action="store_true", help="the whole page")
    ap.add_argument("report")
    ap.add_argument("png")
    a = ap.parse_args()
    d = driver(a.width, a.height)
    try:
        d.get("file://" + os.path.abspath(a.report))
        d.find_element("css selector", "body[data-ready]")
        height = a.height
        if a.full:
            height = min(int(d.execute_script("return document.documentElement.scrollHeight")), 16000)
        # --window-size sets the outer size: grow it until the page's viewport is width x height
        for _ in range(2):
            inner = d.execute_script("return [window.innerWidth, window.innerHeight]")
            if inner == [a.width, height]:
                break
            outer = d.get_window_size()
            d.set_window_size(outer["width"] + a.width - inner[0], outer["height"] + height - inner[1])
        if not d.save_screenshot(a.png):
            print("screenshot: cannot write '%s'" % a.png, file=sys.stderr)
            return 1
    finally:
        d.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
