"""A bounded cache: an LRU of fixed capacity filled with ~10 KB objects.

RSS rises while the cache fills (the first quarter of the iterations), then
stays level: every new object replaces an evicted one of the same size, so
the allocator reuses the freed block.  Rates are per iteration, with a short
sleep between iterations, so a slow machine stretches the run but keeps its
shape.  Usage: bounded.py [ITERATIONS] (default 200, ~4 s).
"""
import collections
import sys
import time

OBJ_BYTES = 10 * 1024
PER_ITER = 40              # objects inserted per iteration
CAPACITY = 2000            # 2000 * 10 KiB = 20 MiB: full after 50 iterations
SLEEP_S = 0.02

def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cache = collections.OrderedDict()
    key = 0
    for _ in range(iterations):
        for _ in range(PER_ITER):
            # distinct content, written byte by byte: the pages are touched
            cache[key] = (b"%09d\n" % key) * (OBJ_BYTES // 10)
            key += 1
            if len(cache) > CAPACITY:
                cache.popitem(last=False)
        time.sleep(SLEEP_S)
    print("bounded: %d objects cached, %d inserted" % (len(cache), key))

main()
