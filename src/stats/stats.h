/*
 * Statistics on memory time series: the evidence behind a growth verdict.
 *
 * A series is n samples (t_ns[i], v[i]) in time order, v in bytes.  All
 * functions are pure: no global state, thread-safe, inputs borrowed and
 * unchanged.  They return 0, or -EINVAL for n too small (documented per
 * function) or NaN input, or -ENOMEM.
 *
 * Sources (each cited again where used):
 *  - least squares: the ordinary estimator of the slope.
 *  - Theil-Sen: H. Theil (1950), "A rank-invariant method of linear and
 *    polynomial regression analysis"; P. K. Sen (1968), "Estimates of the
 *    regression coefficient based on Kendall's tau", JASA 63:1379-1389.
 *  - Mann-Kendall trend test: H. B. Mann (1945), Econometrica 13:245-259;
 *    M. G. Kendall (1975), Rank Correlation Methods; variance with the tie
 *    correction as in Hipel & McLeod (1994), Time Series Modelling of Water
 *    Resources and Environmental Systems, ch. 23.
 */
#ifndef MT_STATS_H
#define MT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Mean, standard deviation (sample, n-1), min, max of v[0..n); n >= 1 (sd 0 when n == 1). */
struct mt_summary {
	size_t n;
	double mean, sd, min, max;
};
int mt_summary(const double *v, size_t n, struct mt_summary *out);

/* Slope of v over t: bytes per second, and the intercept at t = 0. */
struct mt_fit {
	double slope_per_s;   /* bytes per second */
	double intercept;     /* bytes at t_ns = 0 */
	double r2;            /* least squares only; NaN for Theil-Sen */
};
/* Ordinary least squares; n >= 2 with at least two distinct times. */
int mt_fit_least_squares(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out);
/*
 * Theil-Sen: the median of all pairwise slopes (intercept: median of
 * v - slope * t).  Robust to up to 29% outliers.  n >= 2.  O(n^2) memory
 * and time up to MT_STATS_THEIL_SEN_EXACT_MAX samples; above it, the
 * series is first reduced to that many block medians (documented
 * approximation).
 */
#define MT_STATS_THEIL_SEN_EXACT_MAX 2000
int mt_fit_theil_sen(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out);

/* Mann-Kendall test for a monotonic trend in v (time order = index order). */
struct mt_trend {
	double s;             /* the statistic S = sum of sign(v[j] - v[i]), i < j */
	double var_s;         /* its variance under no trend, tie-corrected */
	double z;             /* normal score with continuity correction */
	double p_two_sided;   /* p-value of "no trend" */
	int direction;        /* +1 increasing, -1 decreasing, 0 not significant at alpha */
};
/* n >= 3; alpha is the significance level (for example 0.05). */
int mt_mann_kendall(const double *v, size_t n, double alpha, struct mt_trend *out);

/* Block averages: v split into consecutive blocks of `block` samples (last may be shorter). */
struct mt_block {
	size_t first, n;      /* sample indices [first, first + n) */
	uint64_t t0_ns, t1_ns;
	double mean, min, max;
};
/* Writes at most max_blocks blocks; returns the number written in *n_out.  block >= 1. */
int mt_blocks(const uint64_t *t_ns, const double *v, size_t n, size_t block,
              struct mt_block *out, size_t max_blocks, size_t *n_out);

/*
 * Phases of a memory series: warm-up (rising fast), settling, plateau
 * (no significant trend).  Detected from the data: the plateau starts at
 * the earliest index p such that the Mann-Kendall test on v[p..n) finds no
 * increasing trend at alpha and the Theil-Sen slope over v[p..n) is below
 * `flat_slope_per_s` in magnitude (or below `flat_rel_per_s` times the mean
 * of v[p..n)); warm-up ends where the running level first reaches 90% of
 * the plateau mean (or p itself when v never rises).  When no such p
 * exists with at least `min_plateau` samples, plateau_start = n (none).
 */
struct mt_phases {
	size_t warmup_end;       /* index: [0, warmup_end) is warm-up */
	size_t plateau_start;    /* index: [plateau_start, n) is the plateau; n = none */
	struct mt_summary plateau;  /* of v over the plateau (n = 0 when none) */
	struct mt_fit plateau_fit;  /* Theil-Sen over the plateau */
	struct mt_trend plateau_trend;
};
struct mt_phase_opts {
	double alpha;               /* e.g. 0.05 */
	double flat_slope_per_s;    /* absolute floor, bytes/s, e.g. 64 KiB/s */
	double flat_rel_per_s;      /* relative floor, fraction of level per second, e.g. 0.001 */
	size_t min_plateau;         /* samples, e.g. 10 */
};
int mt_phases(const uint64_t *t_ns, const double *v, size_t n, const struct mt_phase_opts *o,
              struct mt_phases *out);

#endif
