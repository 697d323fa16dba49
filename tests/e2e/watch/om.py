#!/usr/bin/python3
"""HTTP and OpenMetrics helpers for tests/e2e/watch_listen.sh (stdlib only).

  om.py get URL OUT [ACCEPT]   fetch URL; body to OUT; print "STATUS CONTENT-TYPE"
  om.py check FILE             validate an OpenMetrics 1.0 text exposition:
                               exit 1 naming the first problem
  om.py value FILE NAME [CLASS]
                               print the value of sample NAME (with class=CLASS)
  om.py label FILE NAME LABEL  print label LABEL of sample NAME
  om.py rss URL OUT PID        fetch URL into OUT, then at once print VmRSS of PID in bytes
  om.py stall URL SECONDS      hold a connection that sent half a request line
"""
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
DESCR = re.compile(r"^# (TYPE|HELP|UNIT) (%s)(?: (.*))?$" % NAME)
TYPES = {"counter", "gauge", "info", "stateset", "histogram", "gaugehistogram", "summary",
         "unknown"}
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")


def get(url, out, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
    with open(out, "wb") as f:
        f.write(body)
    print(status, ctype)


def check(path):
    """The rules of the OpenMetrics 1.0 text format that an exposer can break."""
    text = open(path, "rb").read().decode("utf-8")       # must be UTF-8
    if not text.endswith("# EOF\n"):
        return "does not end with '# EOF' and a newline"
    lines = text[:-len("# EOF\n")].split("\n")
    if lines[-1] != "":
        return "no newline before '# EOF'"
    families, fam, seen = {}, None, set()
    for n, line in enumerate(lines[:-1], 1):
        d = DESCR.match(line)
        if d:
            kind, name, arg = d.groups()
            if fam is None or fam["name"] != name:
                if name in families:
                    return "line %d: family %s is split or repeated" % (n, name)
                fam = families[name] = {"name": name, "samples": 0}
            if fam["samples"]:
                return "line %d: %s after the samples of %s" % (n, kind, name)
            if kind in fam:
                return "line %d: second %s of %s" % (n, kind, name)
            fam[kind] = arg or ""
            if kind == "TYPE" and fam[kind] not in TYPES:
                return "line %d: unknown type %r" % (n, arg)
            if kind == "UNIT" and not name.endswith("_" + fam[kind]):
                return "line %d: %s does not end with its unit %r" % (n, name, arg)
            continue
        s = SAMPLE.match(line)
        if not s:
            return "line %d: neither a descriptor nor a sample: %r" % (n, line)
        sname, labels, value = s.groups()
        if fam is None:
            return "line %d: sample %s outside a family" % (n, sname)
        ftype = fam.get("TYPE", "unknown")
        want = fam["name"] + ("_total" if ftype == "counter" else "")
        if sname != want:
            return "line %d: sample %s in family %s (%s)" % (n, sname, fam["name"], ftype)
        if not VALUE.match(value):
            return "line %d: bad value %r" % (n, value)
        if ftype == "counter" and (value.startswith("-") or "NaN" in value):
            return "line %d: a counter must not be negative or NaN" % n
        if (sname, labels) in seen:
            return "line %d: repeated sample %s%s" % (n, sname, labels or "")
        seen.add((sname, labels))
        fam["samples"] += 1
    for name, fam in families.items():
        if "TYPE" not in fam or "HELP" not in fam or not fam["HELP"]:
            return "family %s lacks a TYPE or a HELP" % name
        if name.endswith("_total"):
            return "family %s: the _total suffix belongs to a counter's samples" % name
        if name.endswith("_bytes") and fam.get("UNIT") != "bytes":
            return "family %s ends in _bytes but has no '# UNIT %s bytes'" % (name, name)
    return None


def samples(path):
    for line in open(path, encoding="utf-8"):
        s = SAMPLE.match(line.rstrip("\n"))
        if s:
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                     s.group(2) or ""))
            yield s.group(1), labels, s.group(3)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "get" and len(argv) in (4, 5):
        get(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
    elif cmd == "check" and len(argv) == 3:
        problem = check(argv[2])
        if problem:
            print("%s: %s" % (argv[2], problem), file=sys.stderr)
            return 1
    elif cmd == "value" and len(argv) in (4, 5):
        got = [v for name, labels, v in samples(argv[2])
               if name == argv[3] and (len(argv) == 4 or labels.get("class") == argv[4])]
        if len(got) != 1:
            print("%s: %d samples of %s" % (argv[2], len(got), argv[3]), file=sys.stderr)
            return 1
        print(got[0])
    elif cmd == "label" and len(argv) == 5:
        got = {labels.get(argv[4]) for name, labels, v in samples(argv[2]) if name == argv[3]}
        if len(got) != 1 or None in got:
            return 1
        print(got.pop())
    elif cmd == "rss" and len(argv) == 5:
        with urllib.request.urlopen(argv[2], timeout=10) as r:
            body = r.read()
        with open("/proc/%s/status" % argv[4]) as f:
            kb = [line.split()[1] for line in f if line.startswith("VmRSS:")]
        with open(argv[3], "wb") as f:
            f.write(body)
        print(int(kb[0]) * 1024)
    elif cmd == "stall" and len(argv) == 4:
        u = urllib.parse.urlsplit(argv[2])
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            s.sendall(b"GET /metr")
            time.sleep(float(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
