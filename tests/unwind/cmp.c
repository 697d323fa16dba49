/* cmp_here: three captures at one point, compared (see cmp.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmp.h"
#include "record/unwind.h"

#define MAXF MT_UNWIND_MAX_FRAMES
#define MAX_REPORTS 8

struct cmp_thread {
	struct mt_unwind_thread memo, cold, adaptive, small;
	uint64_t prev[MAXF];
	int prev_n;
	struct cmp_totals t;
};

static __thread struct cmp_thread *ct;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cmp_totals total;
static int n_reports;
static long corrupt_every;   /* UNWTEST_CORRUPT=N: damage every Nth memo list */

__attribute__((constructor)) static void cmp_init(void)
{
	const char *e = getenv("UNWTEST_CORRUPT");
	corrupt_every = e ? atol(e) : 0;
}

static void print_frame(const char *tag, int i, uint64_t ip)
{
	Dl_info info;
	const char *sym = "?", *obj = "?";
	uint64_t off = 0;
	if (dladdr((void *)(uintptr_t)(ip - 1), &info)) {
		if (info.dli_sname) {
			sym = info.dli_sname;
			off = ip - (uint64_t)(uintptr_t)info.dli_saddr;
		}
		if (info.dli_fname)
			obj = strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
	}
	fprintf(stderr, "  %s %2d %#lx %s+%#lx (%s)\n", tag, i, (unsigned long)ip, sym,
	        (unsigned long)off, obj);
}

static void report(const char *what, const uint64_t *a, int n, void *const *b, int m)
{
	pthread_mutex_lock(&total_lock);
	if (n_reports++ < MAX_REPORTS) {
		fprintf(stderr, "MISMATCH (%s): mt %d frames, libunwind %d frames\n", what, n, m);
		for (int i = 0; i < n || i < m; i++) {
			if (i < n)
				print_frame("mt ", i, a[i]);
			if (i < m)
				print_frame("unw", i, (uint64_t)(uintptr_t)b[i]);
		}
	}
	pthread_mutex_unlock(&total_lock);
}

static int same(const uint64_t *a, int n, void *const *b, int m)
{
	if (n != m || n < 1)
		return n == m;
	for (int i = 1; i < n; i++)
		if (a[i] != (uint64_t)(uintptr_t)b[i])
			return 0;
	return 1;
}

static struct cmp_thread *thread_state(void)
{
	if (!ct) {
		ct = calloc(1, sizeof *ct);
		mt_unwind_set_memo(&ct->memo, 2);
		mt_unwind_set_memo(&ct->small, 2);
		mt_unwind_set_memo(&ct->cold, 0);
	}
	return ct;
}

NOI int cmp_here(void)
{
	struct cmp_thread *c = thread_state();
	uint64_t a[MAXF], k[MAXF], d[MAXF];
	void *b[MAXF];
	int reused = -1, reused_cold = -1, reused_adaptive = -1;
	int n = mt_unwind_capture(&c->memo, a, MAXF, &reused);
	int nk = mt_unwind_capture(&c->cold, k, MAXF, &reused_cold);
	int nd = mt_unwind_capture(&c->adaptive, d, MAXF, &reused_adaptive);
	int m = unw_backtrace(b, MAXF);
	/* Truncated captures: max frames, the first `small_max` of the same list. */
	int small_max = 2 + (int)(c->t.captures % 9);
	uint64_t sm[16];
	int ns = mt_unwind_capture(&c->small, sm, small_max, NULL);
	c->t.captures++;
	if (corrupt_every && c->t.captures % (uint64_t)corrupt_every == 0 && n > 2)
		a[n / 2] ^= 0x10;   /* self-test of the checker: must be reported */
	c->t.frames += (uint64_t)m;
	if (!same(a, n, b, m)) {
		c->t.mismatches++;
		report("memo", a, n, b, m);
	} else if (!same(k, nk, b, m)) {
		c->t.mismatches++;
		report("cold", k, nk, b, m);
	} else if (!same(d, nd, b, m)) {
		c->t.mismatches++;
		report("adaptive", d, nd, b, m);
	} else if (!same(sm, ns, b, m < small_max ? m : small_max)) {
		c->t.mismatches++;
		report("truncated", sm, ns, b, m < small_max ? m : small_max);
	}
	if (reused_cold != 0 || reused < 0 || reused > n || reused > c->prev_n)
		c->t.reuse_errors++;
	for (int i = 0; i < reused && i < n && i < c->prev_n; i++)
		if (a[n - 1 - i] != c->prev[c->prev_n - 1 - i]) {
			c->t.reuse_errors++;
			break;
		}
	memcpy(c->prev, a, sizeof a[0] * (size_t)n);
	c->prev_n = n;
	return n;
}

static void add(struct cmp_totals *to, const struct cmp_thread *c)
{
	const struct cmp_totals *t = &c->t;
	to->captures += t->captures;
	to->frames += t->frames;
	to->mismatches += t->mismatches;
	to->reuse_errors += t->reuse_errors;
	to->fallbacks += c->memo.stats.fallbacks + c->cold.stats.fallbacks + c->adaptive.stats.fallbacks;
	to->memo_hits += c->memo.stats.memo_hits;
	to->frames_reused += c->memo.stats.frames_reused;
	for (int w = 0; w < MT_UNWIND_WHY_COUNT && w < 32; w++)
		to->by_why[w] += c->memo.stats.by_why[w] + c->cold.stats.by_why[w] +
		                 c->adaptive.stats.by_why[w];
}

void cmp_thread_done(void)
{
	if (!ct)
		return;
	pthread_mutex_lock(&total_lock);
	add(&total, ct);
	pthread_mutex_unlock(&total_lock);
	free(ct);
	ct = NULL;
}

void cmp_totals(struct cmp_totals *out)
{
	pthread_mutex_lock(&total_lock);
	*out = total;
	pthread_mutex_unlock(&total_lock);
	if (ct)
		add(out, ct);
}
