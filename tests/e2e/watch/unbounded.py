"""An unbounded cache: keeps every ~10 KB object it makes, at a steady rate.

RSS grows linearly by ~117 MiB over the run (12000 objects of 10 KiB).
Rates are per iteration, with a short sleep between iterations, so a slow
machine stretches the run but keeps its shape.  Exits with status 3 so the
test can check that `memtriage watch -- CMD` passes the status on.
Usage: unbounded.py [ITERATIONS] (default 200, ~4 s).
"""
import sys
import time

OBJ_BYTES = 10 * 1024
PER_ITER = 60
SLEEP_S = 0.02

def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cache = []
    for i in range(iterations):
        for j in range(PER_ITER):
            key = i * PER_ITER + j
            cache.append((b"%09d\n" % key) * (OBJ_BYTES // 10))
        time.sleep(SLEEP_S)
    print("unbounded: %d objects cached" % len(cache))
    sys.exit(3)

main()
