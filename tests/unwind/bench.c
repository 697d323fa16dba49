/*
 * unwind_bench: nanoseconds per stack capture, mt_unwind_capture (without
 * and with memo) against libunwind's unw_backtrace and glibc's backtrace().
 * Built -O2 without frame pointers.  usage: unwind_bench [scale]
 *
 *   fixed-20, fixed-50   the same stack captured again and again, 20 or 50
 *                        frames: the memo's best case, and the plain cost
 *                        per frame for the others
 *   leaf-20, leaf-50     the three innermost frames alternate between two
 *                        paths, like malloc called from different places
 *                        under one deep caller
 *   tree                 a bigtree-like walk: a capture at each node of a
 *                        random binary tree, 20 frames below main, so
 *                        consecutive stacks share a varying outer part
 *   first                the very first capture of 50 frames (rules computed
 *                        from .eh_frame), microseconds
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define UNW_LOCAL_ONLY
#include <execinfo.h>
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "record/unwind.h"

#define NOI __attribute__((noinline, noclone))
#define MAXF 256
#define REPS 7

static volatile uint64_t sink;
static struct mt_unwind_thread ut_cold, ut_memo;
static long scale = 1;
static int last_frames;   /* frames of the latest capture */

enum method { M_MT_COLD, M_MT_MEMO, M_UNW, M_GLIBC, M_COUNT };
static const char *const method_name[M_COUNT] = {
	"mt_unwind (no memo)", "mt_unwind (memo)", "unw_backtrace", "glibc backtrace",
};
static const long method_iters[M_COUNT] = { 1000000, 1000000, 200000, 200000 };

static int capture(enum method m)
{
	uint64_t b[MAXF];
	int n = 0;
	switch (m) {
	case M_MT_COLD: n = mt_unwind_capture(&ut_cold, b, MAXF, NULL); break;
	case M_MT_MEMO: n = mt_unwind_capture(&ut_memo, b, MAXF, NULL); break;
	case M_UNW: n = unw_backtrace((void **)b, MAXF); break;
	case M_GLIBC: n = backtrace((void **)b, MAXF); break;
	default: break;
	}
	sink += b[n - 1];
	last_frames = n;
	return n;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The fastest repetition: on a shared machine, others only add time. */
static double best(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return v[0];
}

/* ---- fixed and leaf-varying stacks ---------------------------------------- */

static enum method cur_method;
static int leaf_mode;   /* 0: fixed; 1: alternate two 3-frame leaf paths */
static long cur_iters;
static int frames_seen;
static double result_ns;

NOI static int leaf_a3(void) { return capture(cur_method) + 1; }
NOI static int leaf_a2(void) { return leaf_a3() + 1; }
NOI static int leaf_a1(void) { return leaf_a2() + 1; }
NOI static int leaf_b3(void) { return capture(cur_method) + 2; }
NOI static int leaf_b2(void) { return leaf_b3() + 2; }
NOI static int leaf_b1(void) { return leaf_b2() + 2; }
NOI static int leaf_c3(void) { return capture(cur_method) + 3; }
NOI static int leaf_c2(void) { return leaf_c3() + 3; }
NOI static int leaf_c1(void) { return leaf_c2() + 3; }

/* The measuring loop at the bottom of the stack. */
NOI static void measure(void)
{
	double r[REPS];
	for (int rep = 0; rep < REPS; rep++) {
		double t0 = now_ns();
		int n = 0;
		if (leaf_mode)
			for (long i = 0; i < cur_iters; i += 2)
				n = leaf_a1() + leaf_b1();
		else
			for (long i = 0; i < cur_iters; i++)
				n = leaf_c1();
		r[rep] = (now_ns() - t0) / (double)cur_iters;
		sink += (uint64_t)n;
	}
	frames_seen = last_frames;
	result_ns = best(r, REPS);
}

NOI static int descend(int d)
{
	if (d == 0) {
		measure();
		return 0;
	}
	int r = descend(d - 1);
	sink += (uint64_t)d;
	return r + 1;
}

/* Frames of a capture made in leaf_c3 with descend(0): the base to add to. */
static int base_frames;
NOI static void probe(void) { base_frames = capture(M_UNW) + 3; }   /* + leaf_c1..c3 */
/* probe_descend stands for descend(0): with descend(k), k more frames. */
NOI static int probe_descend(void) { probe(); return 1; }

static void run_stack(const char *name, int frames, int leaf)
{
	printf("%-9s", name);
	for (int m = 0; m < M_COUNT; m++) {
		cur_method = (enum method)m;
		leaf_mode = leaf;
		cur_iters = method_iters[m] * scale / (frames > 30 ? 2 : 1);
		sink += (uint64_t)descend(frames - base_frames - 1);
		printf("  %8.1f", result_ns);
		if (frames_seen != frames)
			printf("(%d frames!)", frames_seen);
	}
	printf("\n");
}

/* ---- bigtree-like walk ------------------------------------------------------ */

static uint64_t tree_rng;
static long tree_captures, tree_frames;

NOI static long walk(long n)
{
	if (n == 0)
		return 0;
	uint64_t x = tree_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	tree_rng = x;
	tree_frames += capture(cur_method);
	tree_captures++;
	long rest = n - 1, left = rest / 4 + (rest >= 2 ? (long)((x >> 20) % (uint64_t)(rest / 2 + 1)) : 0);
	if (left > rest)
		left = rest;
	return walk(left) + walk(rest - left) + 1;
}

NOI static void tree_measure(void);
NOI static int tree_descend(int d)
{
	if (d == 0) {
		tree_measure();
		return 0;
	}
	int r = tree_descend(d - 1);
	sink += (uint64_t)d;
	return r + 1;
}

static void run_tree(void)
{
	sink += (uint64_t)tree_descend(20);   /* like bigtree: 30..60 frames */
}

NOI static void tree_measure(void)
{
	printf("%-9s", "tree");
	double avg = 0;
	for (int m = 0; m < M_COUNT; m++) {
		cur_method = (enum method)m;
		double r[REPS];
		long nodes = (m >= M_UNW ? 50000 : 300000) * scale;
		for (int rep = 0; rep < REPS; rep++) {
			tree_rng = 0xDEADBEEFCAFEF00Dull;
			tree_captures = tree_frames = 0;
			double t0 = now_ns();
			sink += (uint64_t)walk(nodes);
			r[rep] = (now_ns() - t0) / (double)tree_captures;
		}
		avg = (double)tree_frames / (double)tree_captures;
		printf("  %8.1f", best(r, REPS));
	}
	printf("   (%.1f frames on average)\n", avg);
}

/* ---- first capture ---------------------------------------------------------- */

static double first_us;
NOI static void first_measure(void)
{
	uint64_t b[MAXF];
	struct mt_unwind_thread *ut = calloc(1, sizeof *ut);
	mt_unwind_thread_init(ut);
	double t0 = now_ns();
	frames_seen = mt_unwind_capture(ut, b, MAXF, NULL);
	first_us = (now_ns() - t0) / 1e3;
	free(ut);
}

NOI static int first_descend(int d)
{
	if (d == 0) {
		first_measure();
		return 0;
	}
	int r = first_descend(d - 1);
	sink += (uint64_t)d;
	return r + 1;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		scale = atol(argv[1]);
	mt_unwind_thread_init(&ut_cold);
	mt_unwind_thread_init(&ut_memo);
	mt_unwind_set_memo(&ut_cold, 0);
	sink += (uint64_t)first_descend(45);
	printf("first capture (rules from .eh_frame): %.1f us for %d frames\n", first_us, frames_seen);
	sink += (uint64_t)probe_descend();
	printf("ns per capture (fastest of %d repetitions)\n%-9s", REPS, "stack");
	for (int m = 0; m < M_COUNT; m++)
		printf("  %s", method_name[m]);
	printf("\n");
	run_stack("fixed-20", 20, 0);
	run_stack("fixed-50", 50, 0);
	run_stack("leaf-20", 20, 1);
	run_stack("leaf-50", 50, 1);
	run_tree();
	printf("memo: %lu captures, %lu reused, %lu of %lu frames reused; fallbacks %lu\n",
	       (unsigned long)ut_memo.stats.captures, (unsigned long)ut_memo.stats.memo_hits,
	       (unsigned long)ut_memo.stats.frames_reused, (unsigned long)ut_memo.stats.frames,
	       (unsigned long)(ut_memo.stats.fallbacks + ut_cold.stats.fallbacks));
	return 0;
}
