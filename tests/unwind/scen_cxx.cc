// C++ frames for unwind_test: exception tables (personality + LSDA), throws
// and catches at varying depths, captures in catch blocks and in
// destructors run during exception propagation, std::sort and
// std::function callbacks.
#include <algorithm>
#include <functional>
#include <stdexcept>
#include <vector>
#include "cmp.h"

static volatile uint64_t cx_sink;

namespace {

struct Guard {
	uint64_t x;
	~Guard()
	{
		if ((x & 7) == 1)
			cx_sink += cmp_here();   // also runs during exception propagation
	}
};

int cx_dispatch(int depth, uint64_t *s);

NOI int cx_throw(int depth, uint64_t *s)
{
	Guard g{rng_next(s)};
	if (depth == 0 || (g.x & 3) == 0) {
		cx_sink += cmp_here();
		throw std::runtime_error("unwind test");
	}
	return cx_dispatch(depth - 1, s) + 1;
}

NOI int cx_catch(int depth, uint64_t *s)
{
	std::vector<int> v(3, depth);
	try {
		return cx_dispatch(depth > 0 ? depth - 1 : 0, s) + v[1];
	} catch (const std::exception &e) {
		int r = cmp_here();
		if (depth > 2)
			r += cx_dispatch(depth / 2, s);   // deep again, from inside the handler
		return r + (int)v.size();
	}
}

NOI int cx_sort(int depth, uint64_t *s)
{
	std::vector<uint64_t> v;
	for (int i = 0; i < 12; i++)
		v.push_back(rng_next(s) & 1023);
	bool once = false;
	int r = 0;
	std::sort(v.begin(), v.end(), [&](uint64_t a, uint64_t b) {
		if (!once) {
			once = true;
			r += depth > 0 ? cx_dispatch(depth - 1, s) : cmp_here();
		}
		return a < b;
	});
	return r + (int)v[0];
}

NOI int cx_function(int depth, uint64_t *s)
{
	std::function<int(int)> f = [s](int d) { return d > 0 ? scen_dispatch(d - 1, s) : cmp_here(); };
	return f(depth) + 1;
}

NOI int cx_dispatch(int depth, uint64_t *s)
{
	uint64_t x = rng_next(s);
	switch ((x >> 17) & 7) {
	case 0: case 1: return cx_throw(depth, s);
	case 2: case 3: return cx_catch(depth, s);
	case 4: return cx_sort(depth, s);
	case 5: return cx_function(depth, s);
	default: return scen_dispatch(depth, s);   // back to C frames (no throw can reach them:
	                                            // every throw is below a cx_catch or cxx_entry)
	}
}

}  // namespace

extern "C" NOI int cxx_entry(int depth, uint64_t *s)
{
	try {
		return cx_dispatch(depth, s);
	} catch (...) {
		return cmp_here();
	}
}
