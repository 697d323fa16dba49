/*
 * Statistics on memory time series: the evidence behind a growth verdict.
 *
 * A series is n samples (t_ns[i], v[i]) in time order (t_ns non-decreasing),
 * v in bytes.  All functions are pure: no global state, thread-safe (not
 * async-signal-safe: some allocate), inputs borrowed and unchanged, outputs
 * written only on success.  They return 0, or -EINVAL for n too small
 * (documented per function), a NULL pointer, a NaN or infinite value, or
 * times out of order where the function needs the order; or -ENOMEM.
 * Times are used as seconds from the series' first sample, so absolute
 * clocks (CLOCK_REALTIME in ns) lose no precision.
 *
 * Sources (each cited again where used, in stats.c):
 *  - least squares: the ordinary estimator of the slope.
 *  - Theil-Sen: H. Theil (1950), "A rank-invariant method of linear and
 *    polynomial regression analysis"; P. K. Sen (1968), "Estimates of the
 *    regression coefficient based on Kendall's tau", JASA 63:1379-1389.
 *  - Mann-Kendall trend test: H. B. Mann (1945), Econometrica 13:245-259;
 *    M. G. Kendall (1975), Rank Correlation Methods; variance with the tie
 *    correction as in Hipel & McLeod (1994), Time Series Modelling of Water
 *    Resources and Environmental Systems, ch. 23.
 *  - S in O(n log n) by counting inversions with a merge sort: W. R. Knight
 *    (1966), "A computer method for calculating Kendall's tau with
 *    ungrouped data", JASA 61:436-439.
 *  - S of every suffix in one pass, counting with a Fenwick tree: P. M.
 *    Fenwick (1994), "A new data structure for cumulative frequency
 *    tables", Software: Practice and Experience 24:327-336.
 *  - medians by selection, not sorting: C. A. R. Hoare (1961), "Algorithm
 *    65: Find", CACM 4(7):321-322.
 *  - "how many pairwise slopes lie below c" as an inversion count of
 *    v - c*t, used by the phase scan: R. Cole, J. Salowe, W. Steiger,
 *    E. Szemeredi (1989), "An optimal-time algorithm for slope selection",
 *    SIAM J. Comput. 18:792-810.
 *  - median absolute deviation as a robust spread, scaled by 1.4826 to a
 *    normal standard deviation: F. R. Hampel (1974), "The influence curve
 *    and its role in robust estimation", JASA 69:383-393.
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
	double intercept;     /* bytes at t_ns = 0 (an extrapolation when t_ns is a wall clock) */
	double r2;            /* least squares only (1 when v is constant: the line is exact); NaN for Theil-Sen */
};
/*
 * Ordinary least squares; n >= 2 with at least two distinct times.  Times
 * need not be ordered here.
 */
int mt_fit_least_squares(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out);
/*
 * Theil-Sen: the median of all pairwise slopes (intercept: median of
 * v - slope * t).  Pairs with equal times have no slope and are left out.
 * Robust to up to 29% outliers.  n >= 2 with at least two distinct times;
 * t_ns non-decreasing.  Exact, in O(n^2) memory and time, up to
 * MT_STATS_THEIL_SEN_EXACT_MAX samples; above it, the series is first
 * reduced to that many consecutive blocks (sizes differing by at most one),
 * each becoming one point (median time, median value): an approximation
 * that stays robust, since a block median ignores outliers inside its
 * block.  Allocates once (16 MB at the limit).  The median of an even
 * number of values is the mean of the two middle ones.
 */
#define MT_STATS_THEIL_SEN_EXACT_MAX 2000
int mt_fit_theil_sen(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out);

/* Mann-Kendall test for a monotonic trend in v (time order = index order). */
struct mt_trend {
	double s;             /* the statistic S = sum of sign(v[j] - v[i]), i < j */
	double var_s;         /* its variance under no trend, tie-corrected */
	double z;             /* normal score with continuity correction: (S-1)/sd, (S+1)/sd, or 0 */
	double p_two_sided;   /* p-value of "no trend"; 1 when var_s is 0 (all values equal) */
	int direction;        /* +1 increasing, -1 decreasing, 0 not significant at alpha */
};
/*
 * n >= 3; 0 < alpha < 1 is the significance level (for example 0.05):
 * direction is the sign of S when p_two_sided < alpha.  Exact for every n:
 * S comes from one merge sort (O(n log n), 16 bytes of scratch per
 * sample), so no reduction is needed.
 */
int mt_mann_kendall(const double *v, size_t n, double alpha, struct mt_trend *out);

/* Block averages: v split into consecutive blocks of `block` samples (last may be shorter). */
struct mt_block {
	size_t first, n;      /* sample indices [first, first + n) */
	uint64_t t0_ns, t1_ns;  /* times of the block's first and last samples */
	double mean, min, max;
};
/*
 * Writes the first min(ceil(n / block), max_blocks) blocks to out and their
 * number to *n_out.  block >= 1; n == 0 gives no block; out may be NULL
 * only when max_blocks is 0.
 */
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
 *
 * Precisely:
 *  - "flat": |Theil-Sen slope| < max(flat_slope_per_s, flat_rel_per_s *
 *    |mean of v[p..n)|): a slope counts as growth only above both the
 *    absolute floor and the relative one (so at least one must be > 0).
 *    Both conditions must hold: a significant rise is never a plateau,
 *    however slow; the floors decide where the test is silent (noise) or
 *    the series falls.
 *  - The scan: with at most MT_STATS_PHASE_SCAN_EXACT candidate starts
 *    (0 .. n - min_plateau), every one is tried in order, and p is exactly
 *    the earliest.  With more, MT_STATS_PHASE_SCAN_STEPS evenly spaced
 *    starts are tried in order, and between the last one that failed and
 *    the first that held, p is found by bisection (assuming a single
 *    change there).  Mann-Kendall for every suffix comes from one
 *    O(n log n) pass; each try then costs O(L) for the Theil-Sen points
 *    and O(P log P) for P <= MT_STATS_THEIL_SEN_EXACT_MAX points.  100k
 *    samples take tens of milliseconds.  Workspace: about 40 bytes per
 *    sample, allocated once, plus mt_fit_theil_sen's for the final fit.
 *  - The rank test tolerates a few warm-up samples at the head of a long
 *    suffix (about 0.65 * sqrt(L) of them).  So p then moves forward past
 *    leading samples that are still warm-up: outside the plateau band,
 *    median +- MT_STATS_PHASE_BAND_MADS robust standard deviations
 *    (1.4826 * MAD) of v[p..n), or lower than every later sample;
 *    at least min_plateau samples stay, and the move is kept only when the
 *    criterion still holds at the new start.
 *  - Like any test at level alpha, a plateau of pure noise shows a
 *    significant rise by chance about alpha/2 of the time; then the start
 *    found is later than the true one (past the chance rise).
 *  - warmup_end: the first index i <= p with v[i] >= MT_STATS_WARMUP_LEVEL
 *    times the plateau mean, else p.  [warmup_end, plateau_start) is the
 *    settling phase (empty when equal).
 *  - None: plateau_start = warmup_end = n, plateau.n = 0, and plateau_fit
 *    and plateau_trend describe the whole series (the growth evidence).
 * Requires n >= min_plateau (a shorter series cannot tell): -EINVAL
 * otherwise.  `o` NULL means MT_PHASE_OPTS_INIT.
 */
struct mt_phases {
	size_t warmup_end;       /* index: [0, warmup_end) is warm-up */
	size_t plateau_start;    /* index: [plateau_start, n) is the plateau; n = none */
	struct mt_summary plateau;  /* of v over the plateau (n = 0 when none) */
	struct mt_fit plateau_fit;  /* Theil-Sen over the plateau (the whole series when none) */
	struct mt_trend plateau_trend;  /* Mann-Kendall over the plateau (the whole series when none) */
};
struct mt_phase_opts {
	double alpha;               /* e.g. 0.05; 0 < alpha < 1 */
	double flat_slope_per_s;    /* absolute floor, bytes/s, e.g. 64 KiB/s; >= 0 */
	double flat_rel_per_s;      /* relative floor, fraction of level per second, e.g. 0.001; >= 0 */
	size_t min_plateau;         /* samples, e.g. 10; values below 3 (the test's least) count as 3 */
	/*
	 * min_plateau is the defence against a false plateau at the very end
	 * of a noisy leak: a few samples alone often show neither a
	 * significant trend nor a slope above the floors.  Make it a good
	 * share of the series (a fifth, say) rather than a constant.
	 */
};
#define MT_PHASE_OPTS_INIT { .alpha = 0.05, .flat_slope_per_s = 65536.0, \
                             .flat_rel_per_s = 0.001, .min_plateau = 10 }

#define MT_STATS_PHASE_SCAN_EXACT 512  /* candidate starts tried one by one (~10 ms at most) */
#define MT_STATS_PHASE_SCAN_STEPS 32   /* coarse starts above that, then bisection */
#define MT_STATS_PHASE_BAND_MADS  3.0  /* plateau band half-width in robust sd: 0.3% of normal noise falls outside */
#define MT_STATS_WARMUP_LEVEL     0.9  /* warm-up ends at this fraction of the plateau mean */

int mt_phases(const uint64_t *t_ns, const double *v, size_t n, const struct mt_phase_opts *o,
              struct mt_phases *out);

#endif
