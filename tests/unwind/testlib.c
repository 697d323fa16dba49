/* libunwtestlib.so: recursion inside a shared library that calls back into
   the program (built -O2 -fomit-frame-pointer like the program). */
#include <stdint.h>

volatile uint64_t lib_sink;

__attribute__((noinline)) int lib_recurse(int depth, uint64_t *s, int (*cb)(int, uint64_t *))
{
	uint64_t x = *s ^ (uint64_t)depth;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	int r;
	if (depth > 0 && (x & 3))
		r = lib_recurse(depth - 1, s, cb);
	else
		r = cb(depth > 0 ? depth - 1 : 0, s);
	lib_sink += x;
	return r + 1;
}
