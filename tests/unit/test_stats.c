/*
 * Statistics tests (src/stats): exact answers on series whose answer is
 * known by hand, the O(n log n) Mann-Kendall against a brute-force count,
 * robustness of Theil-Sen, and phase detection on synthetic memory series
 * (warm-up then level, leaks, pooling sawtooth) with a fixed-seed noise.
 *
 * `test_stats --bench` also prints the time of mt_phases on 100k samples.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* clock_gettime; the build defines it too */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats/stats.h"

#define MB (1024.0 * 1024)
#define NS 1000000000ull
#define PHASE_TOLERANCE 2       /* samples: the brief's +-2 on a ramp's end */
#define BIG_N 100000            /* "a long watch": phase detection must stay fast */
#define BIG_N_BUDGET_S 1.0      /* and well under a second; asserted with margin */

/* ---- helpers ----------------------------------------------------------------- */

/* |a - b| <= eps, with both values printed on failure (cmocka 1.1.5 compares floats only). */
#define assert_near(a, b, eps) near_((a), (b), (eps), #a, __FILE__, __LINE__)
static void near_(double a, double b, double eps, const char *what, const char *file, int line)
{
	if (fabs(a - b) <= eps)
		return;
	print_error("%s = %.17g, expected %.17g +- %g\n", what, a, b, eps);
	_fail(file, line);
}

static uint64_t g_rng;
static int g_bench;  /* --bench: print the timings of the 100k-sample runs */

static void rng_seed(uint64_t s) { g_rng = s * 0x9e3779b97f4a7c15ull + 1; }

static double rng_uniform(void)  /* (0, 1) */
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)  /* Box-Muller */
{
	return sqrt(-2 * log(rng_uniform())) * cos(2 * 3.14159265358979323846 * rng_uniform());
}

/* Times t0 + i * step_ns. */
static uint64_t *times(size_t n, uint64_t t0, uint64_t step_ns)
{
	uint64_t *t = malloc(n * sizeof *t);
	assert_non_null(t);
	for (size_t i = 0; i < n; i++)
		t[i] = t0 + i * step_ns;
	return t;
}

static double *values(size_t n)
{
	double *v = calloc(n, sizeof *v);
	assert_non_null(v);
	return v;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Mann-Kendall by its definition: all pairs, ties by counting equal values. */
static void mk_brute(const double *v, size_t n, double *s, double *var)
{
	double S = 0, tie = 0;
	for (size_t i = 0; i < n; i++) {
		size_t eq = 0, seen_before = 0;
		for (size_t j = i + 1; j < n; j++)
			S += (v[j] > v[i]) - (v[j] < v[i]);
		for (size_t j = 0; j < n; j++) {
			eq += v[j] == v[i];
			seen_before += j < i && v[j] == v[i];
		}
		if (!seen_before)  /* the first of its group adds the group's term */
			tie += (double)eq * (eq - 1) * (2 * eq + 5);
	}
	*s = S;
	*var = ((double)n * (n - 1) * (2 * n + 5) - tie) / 18;
}

/* ---- summary ------------------------------------------------------------------- */

static void test_summary_known(void **state)
{
	/* mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32, sample sd sqrt(32/7) */
	const double v[] = { 2, 4, 4, 4, 5, 5, 7, 9 };
	struct mt_summary s;
	assert_int_equal(mt_summary(v, 8, &s), 0);
	assert_int_equal(s.n, 8);
	assert_near(s.mean, 5, 1e-12);
	assert_near(s.sd, sqrt(32.0 / 7), 1e-12);
	assert_near(s.min, 2, 0);
	assert_near(s.max, 9, 0);

	assert_int_equal(mt_summary(v + 6, 1, &s), 0);
	assert_near(s.sd, 0, 0);
	assert_near(s.mean, 7, 0);
}

static void test_summary_large_level(void **state)
{
	/* 4 GiB +- 1 byte: one-pass E[v^2]-mean^2 would lose the 1-byte spread entirely */
	const double v[] = { 4294967296.0 - 1, 4294967296.0 + 1, 4294967296.0 - 1, 4294967296.0 + 1 };
	struct mt_summary s;
	assert_int_equal(mt_summary(v, 4, &s), 0);
	assert_near(s.sd, sqrt(4.0 / 3), 1e-9);
}

static void test_summary_errors(void **state)
{
	const double v[] = { 1, NAN, 3 }, w[] = { 1, INFINITY };
	struct mt_summary s;
	assert_int_equal(mt_summary(v, 0, &s), -EINVAL);
	assert_int_equal(mt_summary(v, 3, &s), -EINVAL);
	assert_int_equal(mt_summary(w, 2, &s), -EINVAL);
	assert_int_equal(mt_summary(NULL, 3, &s), -EINVAL);
	assert_int_equal(mt_summary(v, 1, NULL), -EINVAL);
}

/* ---- fits ------------------------------------------------------------------------- */

/*
 * v = 1e6 + 250 * (seconds since the first sample), sampled every 250 ms
 * from a wall-clock origin of 1.7e18 ns (beyond double's 2^53 ns): both
 * fits give slope 250, and the intercept at t_ns = 0 is the line carried
 * back 1.7e9 s, 1e6 - 250 * 1.7e9.  Only exact if times are taken
 * relative to the first sample.
 */
static void test_fits_exact_line(void **state)
{
	const size_t n = 40;
	const uint64_t t0 = 1700000000ull * NS;
	uint64_t *t = times(n, t0, NS / 4);
	double *v = values(n);
	for (size_t i = 0; i < n; i++)
		v[i] = 1e6 + 250 * (i * 0.25);

	struct mt_fit ls, ts;
	assert_int_equal(mt_fit_least_squares(t, v, n, &ls), 0);
	assert_near(ls.slope_per_s, 250, 1e-9);
	assert_near(ls.r2, 1, 1e-12);
	assert_near(ls.intercept, 1e6 - 250 * 1.7e9, 1e-3);

	assert_int_equal(mt_fit_theil_sen(t, v, n, &ts), 0);
	assert_near(ts.slope_per_s, 250, 0);
	assert_near(ts.intercept, 1e6 - 250 * 1.7e9, 0);
	assert_true(isnan(ts.r2));

	/* from t = 0, with a constant: r2 1 by convention, slope 0 */
	for (size_t i = 0; i < n; i++) {
		t[i] = i * (NS / 4);
		v[i] = 7e8;
	}
	assert_int_equal(mt_fit_least_squares(t, v, n, &ls), 0);
	assert_near(ls.slope_per_s, 0, 0);
	assert_near(ls.intercept, 7e8, 0);
	assert_near(ls.r2, 1, 0);
	assert_int_equal(mt_fit_theil_sen(t, v, n, &ts), 0);
	assert_near(ts.slope_per_s, 0, 0);
	assert_near(ts.intercept, 7e8, 0);
	free(t);
	free(v);
}

/* Least squares on a known noisy set: x = 0..4, y = 1,3,2,5,4: slope 0.8, intercept 1.4, r2 0.64. */
static void test_least_squares_known(void **state)
{
	const uint64_t t[] = { 0, NS, 2 * NS, 3 * NS, 4 * NS };
	const double v[] = { 1, 3, 2, 5, 4 };
	struct mt_fit f;
	/* mean x 2, mean y 3; Sxy = (-2)(-2)+(-1)(0)+0+(1)(2)+(2)(1) = 8, Sxx = 10, Syy = 10 */
	assert_int_equal(mt_fit_least_squares(t, v, 5, &f), 0);
	assert_near(f.slope_per_s, 0.8, 1e-12);
	assert_near(f.intercept, 1.4, 1e-12);
	assert_near(f.r2, 0.64, 1e-12);

	/* Theil-Sen on the same: the 10 slopes 2,.5,1.33,.75, -1,1,.33, 3,1, -1; sorted
	 * -1,-1,.33,.5,.75,1,1,1.33,2,3: median (0.75+1)/2 = 0.875.
	 * Residuals y - 0.875x: 1, 2.125, 0.25, 2.375, 0.5: median 1. */
	assert_int_equal(mt_fit_theil_sen(t, v, 5, &f), 0);
	assert_near(f.slope_per_s, 0.875, 1e-12);
	assert_near(f.intercept, 1, 1e-12);
}

/*
 * 20% outliers, all late: 40 samples on y = 1000 + 100 t, then 10 at 1e7.
 * Pairs: 780 good-good (slope exactly 100), 400 good-outlier (large > 0), 45
 * outlier-outlier (slope 0).  Sorted: 45 zeros, 780 hundreds, 400 large; the
 * median (index 612 of 1225) is 100 exactly.  Least squares is dragged to
 * thousands of bytes per second.
 */
static void test_theil_sen_robust(void **state)
{
	const size_t n = 50;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	for (size_t i = 0; i < n; i++)
		v[i] = i < 40 ? 1000 + 100.0 * i : 1e7;

	struct mt_fit ls, ts;
	assert_int_equal(mt_fit_theil_sen(t, v, n, &ts), 0);
	assert_near(ts.slope_per_s, 100, 0);
	assert_near(ts.intercept, 1000, 0);
	assert_int_equal(mt_fit_least_squares(t, v, n, &ls), 0);
	assert_true(ls.slope_per_s > 100000);

	/* scattered outliers of both signs, every 5th sample, on a noisy line */
	rng_seed(7);
	for (size_t i = 0; i < n; i++)
		v[i] = 1e6 + 100.0 * i + rng_normal() * 10 + (i % 5 == 2 ? (i & 1 ? 5e5 : -5e5) : 0);
	assert_int_equal(mt_fit_theil_sen(t, v, n, &ts), 0);
	assert_true(fabs(ts.slope_per_s - 100) < 5);
	free(t);
	free(v);
}

/*
 * Above MT_STATS_THEIL_SEN_EXACT_MAX the fit runs on block medians.  On an
 * exact line every block's (median time, median value) lies on the line,
 * even for blocks of unequal sizes (7001 samples in 2000 blocks of 3 or 4).
 */
static void test_theil_sen_reduced(void **state)
{
	const size_t sizes[] = { 10000, 7001, MT_STATS_THEIL_SEN_EXACT_MAX + 1 };
	for (size_t k = 0; k < 3; k++) {
		size_t n = sizes[k];
		uint64_t *t = times(n, 5 * NS, NS / 2);
		double *v = values(n);
		for (size_t i = 0; i < n; i++)
			v[i] = 3e8 + 4096.0 * (i * 0.5);
		struct mt_fit f;
		assert_int_equal(mt_fit_theil_sen(t, v, n, &f), 0);
		assert_near(f.slope_per_s, 4096, 1e-6);
		assert_near(f.intercept, 3e8 - 4096.0 * 5, 1e-3);
		free(t);
		free(v);
	}
}

/* Equal times have no slope; a repeated timestamp must not become an infinite slope. */
static void test_theil_sen_tied_times(void **state)
{
	const uint64_t t[] = { 0, NS, NS, 2 * NS };
	const double v[] = { 0, 10, 1e9, 20 };
	/* slopes with distinct times: (0,1)=10, (0,2)=1e9, (0,3)=10, (1,3)=10, (2,3)=20-1e9 */
	struct mt_fit f;
	assert_int_equal(mt_fit_theil_sen(t, v, 4, &f), 0);
	assert_near(f.slope_per_s, 10, 0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median by sorting: the reference for the selection inside Theil-Sen. */
static double median_sorted(double *a, size_t n)
{
	qsort(a, n, sizeof *a, cmp_double);
	return n & 1 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

/* Theil-Sen against sorting all slopes, on small series full of ties (equal values, equal slopes). */
static void test_theil_sen_matches_sort(void **state)
{
	double *sl = values(60 * 59 / 2), *res = values(60), v[60];
	uint64_t t[60];
	rng_seed(9);
	for (int round = 0; round < 300; round++) {
		size_t n = 2 + round % 59, m = 0;
		for (size_t i = 0; i < n; i++) {
			t[i] = (i + (round & 1 ? i / 3 : 0)) * NS;  /* odd rounds: no tied times */
			v[i] = round % 3 == 0 ? floor(rng_uniform() * 4) : i * 10.0 + floor(rng_uniform() * 30);
		}
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				sl[m++] = (v[j] - v[i]) / ((double)(t[j] - t[i]) / 1e9);
		double slope = median_sorted(sl, m);
		for (size_t i = 0; i < n; i++)
			res[i] = v[i] - slope * ((double)t[i] / 1e9);
		struct mt_fit f;
		assert_int_equal(mt_fit_theil_sen(t, v, n, &f), 0);
		assert_near(f.slope_per_s, slope, 1e-9);
		assert_near(f.intercept, median_sorted(res, n), 1e-6);
	}
	free(sl);
	free(res);
}

static void test_fit_errors(void **state)
{
	const uint64_t same[] = { NS, NS, NS }, back[] = { 2 * NS, NS, 3 * NS };
	const double v[] = { 1, 2, 3 }, bad[] = { 1, NAN, 3 };
	struct mt_fit f;
	assert_int_equal(mt_fit_least_squares(same, v, 1, &f), -EINVAL);
	assert_int_equal(mt_fit_least_squares(same, v, 3, &f), -EINVAL);  /* one distinct time */
	assert_int_equal(mt_fit_least_squares(back, bad, 3, &f), -EINVAL);
	assert_int_equal(mt_fit_least_squares(back, v, 3, &f), 0);        /* order not needed */
	assert_int_equal(mt_fit_theil_sen(same, v, 1, &f), -EINVAL);
	assert_int_equal(mt_fit_theil_sen(same, v, 3, &f), -EINVAL);
	assert_int_equal(mt_fit_theil_sen(back, v, 3, &f), -EINVAL);      /* out of order */
	assert_int_equal(mt_fit_theil_sen(same, bad, 3, &f), -EINVAL);
	assert_int_equal(mt_fit_theil_sen(NULL, v, 3, &f), -EINVAL);
}

/* ---- Mann-Kendall --------------------------------------------------------------- */

/*
 * 1..10: every one of the 45 pairs rises, S = 45; var = 10*9*25/18 = 125;
 * Z = (45-1)/sqrt(125) = 3.93548; p = erfc(3.93548/sqrt 2) = 8.30307e-5.
 */
static void test_mk_increasing(void **state)
{
	double v[10];
	for (int i = 0; i < 10; i++)
		v[i] = i + 1;
	struct mt_trend tr;
	assert_int_equal(mt_mann_kendall(v, 10, 0.05, &tr), 0);
	assert_near(tr.s, 45, 0);
	assert_near(tr.var_s, 125, 1e-9);
	assert_near(tr.z, 3.9354796403996297, 1e-9);
	assert_near(tr.p_two_sided, 8.303070332644999e-05, 1e-12);
	assert_int_equal(tr.direction, 1);
}

/*
 * Ties, by hand: 5 7 7 6 9 7.
 *   5: vs 7 7 6 9 7 -> +5     7: vs 7 6 9 7 -> 0-1+1+0 = 0
 *   7: vs 6 9 7 -> 0          6: vs 9 7 -> +2          9: vs 7 -> -1
 * S = 6.  Value 7 three times: tie term 3*2*11 = 66, so
 * var = (6*5*17 - 66)/18 = 444/18 = 24.667 (28.333 without the correction);
 * Z = 5/sqrt(24.667) = 1.006734; p = 0.31406: no trend at 0.05.
 */
static void test_mk_ties(void **state)
{
	const double v[] = { 5, 7, 7, 6, 9, 7 };
	struct mt_trend tr;
	assert_int_equal(mt_mann_kendall(v, 6, 0.05, &tr), 0);
	assert_near(tr.s, 6, 0);
	assert_near(tr.var_s, 444.0 / 18, 1e-12);
	assert_near(tr.z, 1.0067340828210365, 1e-9);
	assert_near(tr.p_two_sided, 0.3140625788390452, 1e-9);
	assert_int_equal(tr.direction, 0);

	/*
	 * Decreasing with ties: 10 9 8 8 7 6 6 6 5 4.  45 pairs, 1 + 3 tied,
	 * all others fall: S = -41.  var = (2250 - 2*1*9 - 3*2*11)/18 = 2166/18;
	 * Z = (-41+1)/sqrt(120.333) = -3.646423.
	 */
	const double d[] = { 10, 9, 8, 8, 7, 6, 6, 6, 5, 4 };
	assert_int_equal(mt_mann_kendall(d, 10, 0.05, &tr), 0);
	assert_near(tr.s, -41, 0);
	assert_near(tr.var_s, 2166.0 / 18, 1e-12);
	assert_near(tr.z, -3.646422752776584, 1e-9);
	assert_int_equal(tr.direction, -1);
}

/* No trend: a constant (var 0: Z 0, p 1) and an alternating series. */
static void test_mk_no_trend(void **state)
{
	double c[7], a[20];
	struct mt_trend tr;
	for (int i = 0; i < 7; i++)
		c[i] = 123456789;
	assert_int_equal(mt_mann_kendall(c, 7, 0.05, &tr), 0);
	assert_near(tr.s, 0, 0);
	assert_near(tr.var_s, 0, 0);
	assert_near(tr.z, 0, 0);
	assert_near(tr.p_two_sided, 1, 0);
	assert_int_equal(tr.direction, 0);

	/*
	 * 1 2 1 2 ... (20): a 1 at even i precedes 10, 9, ..., 1 twos (55 rising
	 * pairs); a 2 at odd i precedes 9, 8, ..., 0 ones (45 falling): S = 10.
	 * Ties: two groups of 10: 2*10*9*25 = 4500; var = (20*19*45 - 4500)/18
	 * = 700; Z = 9/sqrt(700) = 0.34017.
	 */
	for (int i = 0; i < 20; i++)
		a[i] = 1 + (i & 1);
	assert_int_equal(mt_mann_kendall(a, 20, 0.05, &tr), 0);
	assert_near(tr.s, 10, 0);
	assert_near(tr.var_s, 700, 1e-9);
	assert_near(tr.z, 9 / sqrt(700), 1e-12);
	assert_int_equal(tr.direction, 0);
}

/* The merge-sort S and tie term against all pairs, on series with many ties and with none. */
static void test_mk_matches_brute_force(void **state)
{
	const size_t sizes[] = { 3, 17, 33, 1000, 3001 };
	rng_seed(42);
	for (size_t k = 0; k < 5; k++) {
		size_t n = sizes[k];
		double *v = values(n);
		for (int kind = 0; kind < 3; kind++) {
			for (size_t i = 0; i < n; i++)
				v[i] = kind == 0 ? floor(rng_uniform() * 7)            /* heavy ties */
				     : kind == 1 ? i * 0.01 + rng_normal()            /* weak trend */
				                 : floor(rng_uniform() * 50) - i * 0.02; /* ties, falling */
			double s, var;
			struct mt_trend tr;
			mk_brute(v, n, &s, &var);
			assert_int_equal(mt_mann_kendall(v, n, 0.05, &tr), 0);
			assert_near(tr.s, s, 0);
			assert_near(tr.var_s, var, var * 1e-12);
		}
		free(v);
	}
}

static void test_mk_errors(void **state)
{
	const double v[] = { 1, 2, 3 }, bad[] = { 1, NAN, 3 };
	struct mt_trend tr;
	assert_int_equal(mt_mann_kendall(v, 2, 0.05, &tr), -EINVAL);
	assert_int_equal(mt_mann_kendall(bad, 3, 0.05, &tr), -EINVAL);
	assert_int_equal(mt_mann_kendall(v, 3, 0, &tr), -EINVAL);
	assert_int_equal(mt_mann_kendall(v, 3, 1, &tr), -EINVAL);
	assert_int_equal(mt_mann_kendall(v, 3, NAN, &tr), -EINVAL);
	assert_int_equal(mt_mann_kendall(v, 3, 0.05, NULL), -EINVAL);
	assert_int_equal(mt_mann_kendall(v, 3, 0.05, &tr), 0);
}

/* ---- blocks --------------------------------------------------------------------- */

/* v = i^2 for i = 0..9 in blocks of 4: (0+1+4+9)/4 = 3.5, (16+25+36+49)/4 = 31.5, (64+81)/2 = 72.5. */
static void test_blocks(void **state)
{
	uint64_t *t = times(10, 100, 10);
	double v[10];
	for (int i = 0; i < 10; i++)
		v[i] = i * i;
	struct mt_block b[4];
	size_t nb = 99;
	assert_int_equal(mt_blocks(t, v, 10, 4, b, 4, &nb), 0);
	assert_int_equal(nb, 3);
	assert_near(b[0].mean, 3.5, 0);
	assert_near(b[1].mean, 31.5, 0);
	assert_near(b[2].mean, 72.5, 0);
	assert_int_equal(b[1].first, 4);
	assert_int_equal(b[1].n, 4);
	assert_int_equal(b[2].n, 2);
	assert_int_equal(b[1].t0_ns, 140);
	assert_int_equal(b[1].t1_ns, 170);
	assert_near(b[1].min, 16, 0);
	assert_near(b[1].max, 49, 0);

	/* the seed report's shape: 50 iterations in blocks of 10, truncated at 2 rows */
	assert_int_equal(mt_blocks(t, v, 10, 4, b, 2, &nb), 0);
	assert_int_equal(nb, 2);
	assert_int_equal(mt_blocks(t, v, 10, 20, b, 4, &nb), 0);
	assert_int_equal(nb, 1);
	assert_near(b[0].mean, 28.5, 0);  /* 285 / 10 */
	assert_int_equal(mt_blocks(t, v, 0, 4, b, 4, &nb), 0);
	assert_int_equal(nb, 0);

	v[3] = NAN;
	assert_int_equal(mt_blocks(t, v, 10, 4, b, 4, &nb), -EINVAL);
	v[3] = 9;
	assert_int_equal(mt_blocks(t, v, 10, 0, b, 4, &nb), -EINVAL);
	assert_int_equal(mt_blocks(t, v, 10, 4, NULL, 4, &nb), -EINVAL);
	assert_int_equal(mt_blocks(t, v, 10, 4, NULL, 0, &nb), 0);
	assert_int_equal(nb, 0);
	free(t);
}

/* ---- phases ------------------------------------------------------------------------ */

/*
 * Warm-up ramp from 100 MiB to `top` over `ramp` samples (1 s apart),
 * then level at `top`; normal noise of sd `noise` everywhere.  The first
 * plateau sample is index `ramp`.
 */
static void ramp_then_flat(double *v, size_t n, size_t ramp, double top, double noise)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (i < ramp ? 100 * MB + (top - 100 * MB) * i / ramp : top) + noise * rng_normal();
}

/*
 * (a) 300 samples: 100 -> 500 MiB in 60 s (6.7 MiB per sample), then level
 * with noise of sd 2 MiB.  Over 100 noise draws: the start within +-2 of
 * 60 in at least 95 (measured: 98% of 2000 draws); in the others the
 * noise itself rose significantly right after 60 (about alpha/2 = 2.5% of
 * pure-noise plateaus do), and the start is later, never earlier.
 */
static void test_phases_warmup_then_flat(void **state)
{
	const size_t n = 300, ramp = 60, draws = 100;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	size_t on_time = 0;

	for (uint64_t seed = 1; seed <= draws; seed++) {
		rng_seed(seed);
		ramp_then_flat(v, n, ramp, 500 * MB, 2 * MB);
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		assert_true(ph.plateau_start < n);
		if (ph.plateau_start + PHASE_TOLERANCE < ramp)
			fail_msg("seed %u: plateau at %zu, ramp ends at %zu", (unsigned)seed, ph.plateau_start, ramp);
		on_time += ph.plateau_start <= ramp + PHASE_TOLERANCE;
		/* 90% of 500 MiB is reached at i = 0.875 * 60 = 52.5 on the ramp */
		assert_in_range(ph.warmup_end, 50, 56);
		assert_true(ph.warmup_end <= ph.plateau_start);
		assert_int_equal(ph.plateau.n, n - ph.plateau_start);
		assert_true(fabs(ph.plateau.mean - 500 * MB) < 1 * MB);
		assert_true(fabs(ph.plateau_fit.slope_per_s) < 64 * 1024);
		assert_int_not_equal(ph.plateau_trend.direction, 1);
	}
	if (on_time < draws * 95 / 100)
		fail_msg("start within +-%d in %zu of %zu draws", PHASE_TOLERANCE, on_time, draws);
	free(t);
	free(v);
}

/* A leak that stops: 1 MiB/s for 100 s, then level; the plateau starts at 100. */
static void test_phases_leak_then_stop(void **state)
{
	const size_t n = 250;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	rng_seed(3);
	for (size_t i = 0; i < n; i++)
		v[i] = 200 * MB + (i < 100 ? i : 100) * MB + 0.3 * MB * rng_normal();
	assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
	assert_in_range(ph.plateau_start, 100 - PHASE_TOLERANCE, 100 + PHASE_TOLERANCE);
	free(t);
	free(v);
}

static void assert_no_plateau(const struct mt_phases *ph, size_t n)
{
	assert_int_equal(ph->plateau_start, n);
	assert_int_equal(ph->warmup_end, n);
	assert_int_equal(ph->plateau.n, 0);
}

/* A steady leak of 1 MiB/s from 100 MiB: no plateau; the whole-series fit says 1 MiB/s. */
static void test_phases_linear_leak(void **state)
{
	const size_t n = 300;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	for (uint64_t seed = 1; seed <= 10; seed++) {
		rng_seed(seed);
		for (size_t i = 0; i < n; i++)
			v[i] = 100 * MB + i * MB + 1 * MB * rng_normal();
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		assert_no_plateau(&ph, n);
		assert_true(fabs(ph.plateau_fit.slope_per_s - MB) < 0.02 * MB);
		assert_int_equal(ph.plateau_trend.direction, 1);
	}
	free(t);
	free(v);
}

/*
 * Pooling: after a 30 s warm-up to 500 MiB, a sawtooth of +-40 MiB
 * (a pool filling 4 MiB/s for 20 s, then released) plus noise.  Short
 * stretches rise steeply, the whole does not: a plateau, starting at the
 * end of the warm-up (+-2), with the level of the sawtooth's mean.
 */
static void test_phases_sawtooth(void **state)
{
	const size_t n = 400, ramp = 30;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	for (uint64_t seed = 1; seed <= 10; seed++) {
		rng_seed(seed);
		for (size_t i = 0; i < n; i++)
			v[i] = (i < ramp ? 50 * MB + 410 * MB * i / ramp
			                 : 460 * MB + 4 * MB * ((i - ramp) % 20)) + MB * rng_normal();
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		if (ph.plateau_start + PHASE_TOLERANCE < ramp || ph.plateau_start > ramp + PHASE_TOLERANCE)
			fail_msg("seed %u: plateau at %zu", (unsigned)seed, ph.plateau_start);
		assert_true(fabs(ph.plateau.mean - 498 * MB) < 5 * MB);
		assert_true(ph.plateau.max - ph.plateau.min > 70 * MB);  /* oscillation, kept */
		assert_true(fabs(ph.plateau_fit.slope_per_s) < 0.001 * 500 * MB);
	}
	free(t);
	free(v);
}

/*
 * A slow leak: 0.5% of a 1 GiB level per second (5.4 MB/s), with noise of
 * the same size per sample.  Above both floors (64 KiB/s; 0.1%/s of the
 * level, 2 MB/s here), even on the shortest suffixes: no plateau.
 */
static void test_phases_slow_leak(void **state)
{
	const size_t n = 200;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	for (uint64_t seed = 1; seed <= 10; seed++) {
		rng_seed(seed);
		for (size_t i = 0; i < n; i++)
			v[i] = 1024 * MB * (1 + 0.005 * i) + 0.005 * 1024 * MB * rng_normal();
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		assert_no_plateau(&ph, n);
		assert_true(fabs(ph.plateau_fit.slope_per_s / (0.005 * 1024 * MB) - 1) < 0.05);
	}
	/*
	 * The floors.  A significant rise is never a plateau, whatever its size,
	 * so they show on a falling series (no increasing trend): 0.5%/s of
	 * 4 MiB is 20 KiB/s, under the 64 KiB/s absolute floor: flat from the
	 * start.  With that floor off, it is above 0.1%/s of the level: none.
	 */
	for (size_t i = 0; i < 100; i++)
		v[i] = 4 * MB * (1 - 0.005 * i);
	assert_int_equal(mt_phases(t, v, 100, NULL, &ph), 0);
	assert_int_equal(ph.plateau_start, 0);
	assert_int_equal(ph.warmup_end, 0);
	struct mt_phase_opts o = MT_PHASE_OPTS_INIT;
	o.flat_slope_per_s = 0;
	assert_int_equal(mt_phases(t, v, 100, &o, &ph), 0);
	assert_no_plateau(&ph, 100);
	free(t);
	free(v);
}

/* A constant series is a plateau from the start; a falling one too (no increasing trend, slope small). */
static void test_phases_flat_from_start(void **state)
{
	const size_t n = 50;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	for (size_t i = 0; i < n; i++)
		v[i] = 300 * MB;
	assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
	assert_int_equal(ph.plateau_start, 0);
	assert_int_equal(ph.warmup_end, 0);
	assert_near(ph.plateau.sd, 0, 0);
	assert_near(ph.plateau_fit.slope_per_s, 0, 0);

	/* released after an overshoot: 600 -> 300 MiB at 10 MiB/s, then level; the plateau waits for the level */
	for (size_t i = 0; i < n; i++)
		v[i] = i < 30 ? 600 * MB - 10 * MB * i : 300 * MB;
	assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
	assert_in_range(ph.plateau_start, 29, 31);
	assert_int_equal(ph.warmup_end, 0);  /* never below 90%: [0, p) is settling */
	free(t);
	free(v);
}

/*
 * mt_phases takes Mann-Kendall for every suffix from one Fenwick-tree pass;
 * its plateau_trend must equal mt_mann_kendall (merge sort) on the same
 * range, ties included: RSS counted in 4 KiB pages repeats values.
 */
static void test_phases_trend_matches(void **state)
{
	const size_t n = 700;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	struct mt_trend tr;
	rng_seed(5);
	for (int kind = 0; kind < 2; kind++) {
		for (size_t i = 0; i < n; i++) {
			double level = kind == 0 ? (i < 100 ? 3 * MB * i / 100 : 3 * MB) : 1 * MB + 100000.0 * i;
			v[i] = 4096 * floor((level + 8192 * rng_normal()) / 4096);
		}
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		size_t from = ph.plateau_start < n ? ph.plateau_start : 0;
		assert_true(kind == 0 ? ph.plateau_start < n : ph.plateau_start == n);
		assert_int_equal(mt_mann_kendall(v + from, n - from, 0.05, &tr), 0);
		assert_near(ph.plateau_trend.s, tr.s, 0);
		assert_near(ph.plateau_trend.var_s, tr.var_s, tr.var_s * 1e-12);
		assert_near(ph.plateau_trend.z, tr.z, 1e-12);
		assert_int_equal(ph.plateau_trend.direction, tr.direction);
	}
	free(t);
	free(v);
}

/* The criterion of stats.h at start p, from the public functions. */
static int criterion_at(const uint64_t *t, const double *v, size_t n, size_t p)
{
	struct mt_phase_opts o = MT_PHASE_OPTS_INIT;
	struct mt_summary s;
	struct mt_fit f;
	struct mt_trend tr;
	assert_int_equal(mt_summary(v + p, n - p, &s), 0);
	assert_int_equal(mt_fit_theil_sen(t + p, v + p, n - p, &f), 0);
	assert_int_equal(mt_mann_kendall(v + p, n - p, o.alpha, &tr), 0);
	double thr = fmax(o.flat_slope_per_s, o.flat_rel_per_s * fabs(s.mean));
	return fabs(f.slope_per_s) < thr && tr.direction != 1;
}

/*
 * mt_phases against its definition, by brute force on series short enough
 * for the exact scan: the earliest start p0 where the criterion holds (or
 * none); the start reported is p0, or later with the criterion holding
 * there and every sample skipped outside the band of v[p0..n) or below
 * all later samples.  Shapes: warm-up then noise, quantized (ties),
 * sawtooth, leak, leak that stops, falling.
 */
static void test_phases_match_definition(void **state)
{
	const size_t n = 160;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n), *tmp = values(n);
	struct mt_phases ph;
	rng_seed(21);
	for (int round = 0; round < 60; round++) {
		int shape = round % 6;
		for (size_t i = 0; i < n; i++) {
			double e = rng_normal() * MB;
			v[i] = shape == 0 ? (i < 40 ? 10 * MB * i : 400 * MB) + 3 * e
			     : shape == 1 ? 4096 * floor(((i < 20 ? i : 20) * 100000.0 + 20 * MB + e) / 4096)
			     : shape == 2 ? 300 * MB + 5 * MB * (i % 13) + e
			     : shape == 3 ? 100 * MB + 0.5 * MB * i + e
			     : shape == 4 ? 100 * MB + (i < 70 ? i : 70) * 2 * MB + e
			                  : 900 * MB - 0.3 * MB * i + 2 * e;
		}
		assert_int_equal(mt_phases(t, v, n, NULL, &ph), 0);
		size_t p0 = 0;
		while (p0 + 10 <= n && !criterion_at(t, v, n, p0))
			p0++;
		if (p0 + 10 > n) {
			assert_int_equal(ph.plateau_start, n);
			continue;
		}
		if (ph.plateau_start < p0 || ph.plateau_start >= n)
			fail_msg("round %d: start %zu, definition %zu", round, ph.plateau_start, p0);
		if (ph.plateau_start == p0)
			continue;
		assert_true(criterion_at(t, v, n, ph.plateau_start));
		memcpy(tmp, v + p0, (n - p0) * sizeof *v);
		double med = median_sorted(tmp, n - p0);
		for (size_t i = p0; i < n; i++)
			tmp[i - p0] = fabs(v[i] - med);
		double half = MT_STATS_PHASE_BAND_MADS * 1.482602218505602 * median_sorted(tmp, n - p0);
		for (size_t i = p0; i < ph.plateau_start; i++) {
			double later_min = INFINITY;
			for (size_t j = i + 1; j < n; j++)
				later_min = fmin(later_min, v[j]);
			if (!(fabs(v[i] - med) > half || v[i] < later_min))
				fail_msg("round %d: sample %zu skipped but inside the band", round, i);
		}
	}
	free(t);
	free(v);
	free(tmp);
}

static void test_phases_errors(void **state)
{
	uint64_t *t = times(20, 0, NS);
	double *v = values(20);
	struct mt_phases ph;
	struct mt_phase_opts o = MT_PHASE_OPTS_INIT;
	assert_int_equal(mt_phases(t, v, 9, NULL, &ph), -EINVAL);   /* < min_plateau */
	assert_int_equal(mt_phases(t, v, 10, NULL, &ph), 0);
	o.min_plateau = 0;                                          /* counts as 3 */
	assert_int_equal(mt_phases(t, v, 2, &o, &ph), -EINVAL);
	assert_int_equal(mt_phases(t, v, 3, &o, &ph), 0);
	o = (struct mt_phase_opts)MT_PHASE_OPTS_INIT;
	o.alpha = 0;
	assert_int_equal(mt_phases(t, v, 20, &o, &ph), -EINVAL);
	o = (struct mt_phase_opts)MT_PHASE_OPTS_INIT;
	o.flat_slope_per_s = 0;
	o.flat_rel_per_s = 0;
	assert_int_equal(mt_phases(t, v, 20, &o, &ph), -EINVAL);     /* nothing could be flat */
	o.flat_rel_per_s = NAN;
	assert_int_equal(mt_phases(t, v, 20, &o, &ph), -EINVAL);
	v[5] = NAN;
	assert_int_equal(mt_phases(t, v, 20, NULL, &ph), -EINVAL);
	v[5] = 0;
	t[5] = t[4] - 1;
	assert_int_equal(mt_phases(t, v, 20, NULL, &ph), -EINVAL);   /* out of order */
	assert_int_equal(mt_phases(NULL, v, 20, NULL, &ph), -EINVAL);
	free(t);
	free(v);
}

/*
 * 100k samples (a day at one per second): the coarse scan with bisection.
 * min_plateau is a fifth of the series, as watch asks (a plateau of ten
 * samples at the end of a day says nothing).  Warm-up to 5 GiB over 5000
 * samples (1 MiB each, noise 0.25 MiB), then level: the start within +-2,
 * in well under a second.  A leak of
 * 100 kB/s: none, fast too.
 */
static void test_phases_large(void **state)
{
	const size_t n = BIG_N, ramp = 5000;
	uint64_t *t = times(n, 0, NS);
	double *v = values(n);
	struct mt_phases ph;
	struct mt_phase_opts o = MT_PHASE_OPTS_INIT;
	o.min_plateau = n / 5;

	rng_seed(11);
	ramp_then_flat(v, n, ramp, 5100 * MB, MB / 4);
	double t0 = now_s();
	assert_int_equal(mt_phases(t, v, n, &o, &ph), 0);
	double dt = now_s() - t0;
	if (ph.plateau_start + PHASE_TOLERANCE < ramp || ph.plateau_start > ramp + PHASE_TOLERANCE)
		fail_msg("plateau at %zu, ramp ends at %zu", ph.plateau_start, ramp);
	if (dt > BIG_N_BUDGET_S)
		fail_msg("mt_phases on %d samples took %.3f s", BIG_N, dt);
	if (g_bench)
		printf("mt_phases, %d samples, warm-up then level: %.1f ms\n", BIG_N, dt * 1e3);

	for (size_t i = 0; i < n; i++)
		v[i] = 100 * MB + i * 100000.0 + MB * rng_normal();
	t0 = now_s();
	assert_int_equal(mt_phases(t, v, n, &o, &ph), 0);
	dt = now_s() - t0;
	assert_no_plateau(&ph, n);
	assert_true(fabs(ph.plateau_fit.slope_per_s - 100000) < 1000);
	if (dt > BIG_N_BUDGET_S)
		fail_msg("mt_phases on a %d-sample leak took %.3f s", BIG_N, dt);
	if (g_bench)
		printf("mt_phases, %d samples, leak: %.1f ms\n", BIG_N, dt * 1e3);
	free(t);
	free(v);
}

int main(int argc, char **argv)
{
	g_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_known),
		cmocka_unit_test(test_summary_large_level),
		cmocka_unit_test(test_summary_errors),
		cmocka_unit_test(test_fits_exact_line),
		cmocka_unit_test(test_least_squares_known),
		cmocka_unit_test(test_theil_sen_robust),
		cmocka_unit_test(test_theil_sen_reduced),
		cmocka_unit_test(test_theil_sen_tied_times),
		cmocka_unit_test(test_theil_sen_matches_sort),
		cmocka_unit_test(test_fit_errors),
		cmocka_unit_test(test_mk_increasing),
		cmocka_unit_test(test_mk_ties),
		cmocka_unit_test(test_mk_no_trend),
		cmocka_unit_test(test_mk_matches_brute_force),
		cmocka_unit_test(test_mk_errors),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_phases_warmup_then_flat),
		cmocka_unit_test(test_phases_leak_then_stop),
		cmocka_unit_test(test_phases_linear_leak),
		cmocka_unit_test(test_phases_sawtooth),
		cmocka_unit_test(test_phases_slow_leak),
		cmocka_unit_test(test_phases_flat_from_start),
		cmocka_unit_test(test_phases_trend_matches),
		cmocka_unit_test(test_phases_match_definition),
		cmocka_unit_test(test_phases_errors),
		cmocka_unit_test(test_phases_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
