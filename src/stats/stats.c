/*
 * Statistics on memory time series.  stats.h has the contract; this file
 * says how each estimator is computed and where it comes from.
 *
 * Three building blocks carry everything:
 *  - select_kth: Hoare's FIND for medians (no full sort);
 *  - count_pairs: one merge sort that tells how the pairs i < j of a
 *    sequence compare (Knight's trick), which gives Mann-Kendall's S and,
 *    applied to v - c*t, how many Theil-Sen slopes lie below c;
 *  - ts_points: the points Theil-Sen works on (block medians when large).
 * Phase detection adds a Fenwick tree, for Mann-Kendall on every suffix in
 * one pass.
 */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1e9
#define SQRT2 1.41421356237309504880
/* 1 / Phi^-1(3/4): turns a MAD into a normal standard deviation (Hampel 1974). */
#define MAD_TO_SD 1.482602218505602
/* Merge sort: runs this short are sorted by insertion first (four fewer merge passes). */
#define INSERTION_RUN 16

static size_t min_z(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_z(size_t a, size_t b) { return a > b ? a : b; }

/* ---- input checks ---------------------------------------------------------- */

/* True when v[0..n) holds no NaN and no infinity (true for n == 0). */
static bool all_finite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

/* True when t[0..n) never decreases. */
static bool time_ordered(const uint64_t *t, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (t[i] < t[i - 1])
			return false;
	return true;
}

/*
 * Seconds from t0 to t, signed (least squares accepts unordered times).
 * Relative to the first sample, so a wall clock in ns (~1.7e18, beyond
 * double's 2^53) loses no precision.
 */
static double secs(uint64_t t, uint64_t t0)
{
	return (double)(int64_t)(t - t0) / NS_PER_S;
}

/* ---- selection (Hoare 1961) ------------------------------------------------ */

static uint64_t xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double median3(double a, double b, double c)
{
	if (a > b) { double x = a; a = b; b = x; }
	return c < a ? a : c > b ? b : c;
}

/*
 * Moves the k-th smallest (0-based) of a[0..n) to a[k], with no greater
 * value before it and no smaller one after, and returns it; n >= 1, k < n.
 * Hoare's FIND: partition around a pivot, keep only the side holding k;
 * expected O(n).  The pivot is the median of three elements at positions
 * drawn from a fixed-seed generator, so ordinary inputs (sorted, or the
 * row-by-row pattern of pairwise slopes) cannot make it quadratic and
 * results never depend on a seed.  Both scans stop on values equal to the
 * pivot, so long runs of equal values (an exact line gives all-equal
 * slopes) split evenly.
 */
static double select_kth(double *a, size_t n, size_t k)
{
	uint64_t seed = 0x9e3779b97f4a7c15u;
	ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;

	while (lo < hi) {
		uint64_t span = (uint64_t)(hi - lo + 1);
		double pivot = median3(a[lo + (ptrdiff_t)(xorshift64(&seed) % span)],
		                       a[lo + (ptrdiff_t)(xorshift64(&seed) % span)],
		                       a[lo + (ptrdiff_t)(xorshift64(&seed) % span)]);
		ptrdiff_t i = lo, j = hi;
		while (i <= j) {
			while (a[i] < pivot) i++;
			while (a[j] > pivot) j--;
			if (i <= j) {
				double x = a[i]; a[i] = a[j]; a[j] = x;
				i++, j--;
			}
		}
		/* now a[lo..j] <= pivot <= a[i..hi], and a[j+1..i-1] == pivot */
		if (kk <= j)
			hi = j;
		else if (kk >= i)
			lo = i;
		else
			break;
	}
	return a[kk];
}

/* Median of a[0..n), n >= 1 (mean of the two middle values when n is even); reorders a. */
static double median_inplace(double *a, size_t n)
{
	size_t h = n / 2;
	double upper = select_kth(a, n, h);
	if (n & 1)
		return upper;
	double lower = a[0];  /* the largest of a[0..h), all <= upper */
	for (size_t i = 1; i < h; i++)
		if (a[i] > lower)
			lower = a[i];
	return 0.5 * lower + 0.5 * upper;
}

/* ---- pair counting (Knight 1966) ----------------------------------------- */

/* Insertion sort of a[0..n); returns the strict inversions it undid (one per shift). */
static uint64_t insertion_count(double *a, size_t n)
{
	uint64_t inv = 0;
	for (size_t i = 1; i < n; i++) {
		double x = a[i];
		size_t j = i;
		while (j > 0 && a[j - 1] > x) {
			a[j] = a[j - 1];
			j--;
		}
		inv += i - j;
		a[j] = x;
	}
	return inv;
}

/*
 * Merges the sorted runs src[lo..mid) and src[mid..hi) into dst[lo..hi).
 * Returns the pairs (left, right) with left > right: each right element
 * taken before the left run is exhausted passes all the left elements
 * still waiting.  Ties take the left element first, so they never count.
 */
static uint64_t merge_count(const double *src, double *dst, size_t lo, size_t mid, size_t hi)
{
	uint64_t inv = 0;
	size_t i = lo, j = mid, k = lo;
	while (i < mid && j < hi) {
		if (src[j] < src[i]) {
			inv += mid - i;
			dst[k++] = src[j++];
		} else {
			dst[k++] = src[i++];
		}
	}
	memcpy(dst + k, src + i, (mid - i) * sizeof *src);
	k += mid - i;
	memcpy(dst + k, src + j, (hi - j) * sizeof *src);
	return inv;
}

/*
 * Sorts a[0..n) ascending (tmp: n doubles) and returns the number of pairs
 * i < j of the original order with a[i] > a[j].  Bottom-up merge sort,
 * O(n log n), no recursion and no allocation.
 */
static uint64_t sort_count_inversions(double *a, double *tmp, size_t n)
{
	uint64_t inv = 0;
	for (size_t lo = 0; lo < n; lo += INSERTION_RUN)
		inv += insertion_count(a + lo, min_z(INSERTION_RUN, n - lo));

	double *src = a, *dst = tmp;
	for (size_t w = INSERTION_RUN; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w)
			inv += merge_count(src, dst, lo, min_z(lo + w, n), min_z(lo + 2 * w, n));
		double *x = src; src = dst; dst = x;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
	return inv;
}

/* How the n(n-1)/2 pairs i < j of a sequence compare. */
struct pair_counts {
	uint64_t asc;       /* w[i] < w[j] */
	uint64_t desc;      /* w[i] > w[j] */
	uint64_t ties;      /* w[i] == w[j] */
	double tie_term;    /* sum over groups of t equal values of t(t-1)(2t+5) */
};

/*
 * Counts the pairs of w[0..n) (n >= 0; w is left sorted; tmp: n doubles).
 * Knight (1966): the descending pairs are the inversions a merge sort
 * undoes; ties are read from runs of equal values in the sorted result;
 * the rest ascend.  The same runs give the Mann-Kendall tie term.
 */
static void count_pairs(double *w, double *tmp, size_t n, struct pair_counts *c)
{
	c->desc = sort_count_inversions(w, tmp, n);
	c->ties = 0;
	c->tie_term = 0;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && w[j] == w[i]; j++)
			;
		uint64_t g = j - i;
		c->ties += g * (g - 1) / 2;
		c->tie_term += (double)g * (double)(g - 1) * (double)(2 * g + 5);
	}
	c->asc = (uint64_t)n * (n - 1) / 2 - c->desc - c->ties;
}

/* ---- summary and least squares --------------------------------------------- */

int mt_summary(const double *v, size_t n, struct mt_summary *out)
{
	if (!v || !out || n < 1 || !all_finite(v, n))
		return -EINVAL;
	double sum = 0, lo = v[0], hi = v[0];
	for (size_t i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	double mean = sum / (double)n, ss = 0;
	for (size_t i = 0; i < n; i++)   /* second pass: no cancellation of E[v^2] - mean^2 */
		ss += (v[i] - mean) * (v[i] - mean);
	*out = (struct mt_summary){ .n = n, .mean = mean, .min = lo, .max = hi,
	                            .sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0 };
	return 0;
}

/*
 * Least squares, in two passes over centred values (means first, then the
 * sums of products), which keeps the precision that the one-pass
 * sum-of-squares formula loses on large byte counts.
 */
int mt_fit_least_squares(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out)
{
	if (!t_ns || !v || !out || n < 2 || !all_finite(v, n))
		return -EINVAL;
	double mx = 0, my = 0;
	for (size_t i = 0; i < n; i++) {
		mx += secs(t_ns[i], t_ns[0]);
		my += v[i];
	}
	mx /= (double)n;
	my /= (double)n;
	double sxx = 0, sxy = 0, syy = 0;
	for (size_t i = 0; i < n; i++) {
		double dx = secs(t_ns[i], t_ns[0]) - mx, dy = v[i] - my;
		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	if (sxx == 0)
		return -EINVAL;  /* all times equal: no slope */
	double slope = sxy / sxx;
	out->slope_per_s = slope;
	out->intercept = (my - slope * mx) - slope * ((double)t_ns[0] / NS_PER_S);
	out->r2 = syy == 0 ? 1.0 : (sxy * sxy) / (sxx * syy);
	return 0;
}

/* ---- Theil-Sen (Theil 1950, Sen 1968) ----------------------------------- */

/*
 * The points Theil-Sen works on, x in seconds from t[0]: the samples
 * themselves up to MT_STATS_THEIL_SEN_EXACT_MAX, else that many
 * consecutive blocks, each one point (median time, median value).  Blocks
 * are [b*n/B, (b+1)*n/B), at least one sample each since n > B.  t is
 * ordered, so a block's median time is its middle element(s).  scratch
 * holds ceil(n/B) doubles.  Returns the number of points.
 */
static size_t ts_points(const uint64_t *t, const double *v, size_t n,
                        double *x, double *y, double *scratch)
{
	const size_t B = MT_STATS_THEIL_SEN_EXACT_MAX;
	if (n <= B) {
		for (size_t i = 0; i < n; i++) {
			x[i] = secs(t[i], t[0]);
			y[i] = v[i];
		}
		return n;
	}
	for (size_t b = 0; b < B; b++) {
		size_t lo = b * n / B, m = (b + 1) * n / B - lo;
		x[b] = 0.5 * secs(t[lo + (m - 1) / 2], t[0]) + 0.5 * secs(t[lo + m / 2], t[0]);
		memcpy(scratch, v + lo, m * sizeof *v);
		y[b] = median_inplace(scratch, m);
	}
	return B;
}

/* Doubles of scratch mt_fit_theil_sen needs for np points: the pairs, or np, whichever is more. */
static size_t ts_scratch_len(size_t np)
{
	return max_z(np * (np - 1) / 2, np);
}

/*
 * The Theil-Sen estimate on points (x, y)[0..np): the median of the slopes
 * of all pairs with distinct x (Sen's treatment of tied times), then the
 * median of y - slope*x as the intercept at x = 0.  slopes holds
 * ts_scratch_len(np) doubles.  -EINVAL when all x are equal.
 */
static int ts_exact(const double *x, const double *y, size_t np, double *slopes,
                    double *slope, double *icpt)
{
	size_t m = 0;
	for (size_t i = 0; i < np; i++)
		for (size_t j = i + 1; j < np; j++)
			if (x[j] != x[i])
				slopes[m++] = (y[j] - y[i]) / (x[j] - x[i]);
	if (m == 0)
		return -EINVAL;
	*slope = median_inplace(slopes, m);
	for (size_t i = 0; i < np; i++)
		slopes[i] = y[i] - *slope * x[i];
	*icpt = median_inplace(slopes, np);
	return 0;
}

int mt_fit_theil_sen(const uint64_t *t_ns, const double *v, size_t n, struct mt_fit *out)
{
	if (!t_ns || !v || !out || n < 2 || !all_finite(v, n) || !time_ordered(t_ns, n))
		return -EINVAL;
	size_t np = min_z(n, MT_STATS_THEIL_SEN_EXACT_MAX);
	size_t block_max = (n + np - 1) / np;
	size_t scratch = max_z(ts_scratch_len(np), block_max);
	double *mem = malloc((2 * np + scratch) * sizeof *mem);
	if (!mem)
		return -ENOMEM;
	double *x = mem, *y = mem + np, *s = mem + 2 * np;

	double slope, icpt;
	np = ts_points(t_ns, v, n, x, y, s);
	int rc = ts_exact(x, y, np, s, &slope, &icpt);
	free(mem);
	if (rc)
		return rc;
	out->slope_per_s = slope;
	out->intercept = icpt - slope * ((double)t_ns[0] / NS_PER_S);
	out->r2 = NAN;
	return 0;
}

/* ---- Mann-Kendall (Mann 1945, Kendall 1975, Hipel & McLeod 1994) ---------- */

/*
 * The test from S and the tie term of n values (n >= 3).  Under "no trend"
 * S has mean 0 and variance [n(n-1)(2n+5) - sum t(t-1)(2t+5)] / 18 over
 * groups of t tied values; Z moves S one unit toward 0 (continuity: S
 * takes values of one parity only), and the two-sided p-value is
 * P(|N(0,1)| >= |Z|) = erfc(|Z| / sqrt 2), the normal tail written with
 * the complementary error function so that small p-values keep their
 * precision.
 */
static void mk_finish(double s, double tie_term, size_t n, double alpha, struct mt_trend *out)
{
	double dn = (double)n;
	double var = (dn * (dn - 1) * (2 * dn + 5) - tie_term) / 18;
	double z = 0;
	if (var > 0 && s > 0)
		z = (s - 1) / sqrt(var);
	else if (var > 0 && s < 0)
		z = (s + 1) / sqrt(var);
	double p = erfc(fabs(z) / SQRT2);

	out->s = s;
	out->var_s = var;
	out->z = z;
	out->p_two_sided = p;
	out->direction = p < alpha ? (s > 0) - (s < 0) : 0;
}

/*
 * The test on v[0..n), n >= 3; buf and tmp hold n doubles each.
 * S = (ascending pairs) - (descending pairs), counted by one merge sort
 * instead of n^2/2 comparisons (Knight 1966).
 */
static void mk_core(const double *v, size_t n, double alpha, double *buf, double *tmp,
                    struct mt_trend *out)
{
	struct pair_counts c;
	memcpy(buf, v, n * sizeof *v);
	count_pairs(buf, tmp, n, &c);
	mk_finish((double)c.asc - (double)c.desc, c.tie_term, n, alpha, out);
}

static bool alpha_ok(double alpha)
{
	return alpha > 0 && alpha < 1;  /* false for NaN too */
}

int mt_mann_kendall(const double *v, size_t n, double alpha, struct mt_trend *out)
{
	if (!v || !out || n < 3 || !alpha_ok(alpha) || !all_finite(v, n))
		return -EINVAL;
	double *buf = malloc(2 * n * sizeof *buf);
	if (!buf)
		return -ENOMEM;
	mk_core(v, n, alpha, buf, buf + n, out);
	free(buf);
	return 0;
}

/* ---- blocks ------------------------------------------------------------------ */

int mt_blocks(const uint64_t *t_ns, const double *v, size_t n, size_t block,
              struct mt_block *out, size_t max_blocks, size_t *n_out)
{
	if (!t_ns || !v || !n_out || block < 1 || (!out && max_blocks) || !all_finite(v, n))
		return -EINVAL;
	size_t k = 0;
	for (size_t first = 0; first < n && k < max_blocks; first += block, k++) {
		size_t m = min_z(block, n - first);
		struct mt_block *b = &out[k];
		double sum = 0;
		b->first = first;
		b->n = m;
		b->t0_ns = t_ns[first];
		b->t1_ns = t_ns[first + m - 1];
		b->min = b->max = v[first];
		for (size_t i = first; i < first + m; i++) {
			sum += v[i];
			b->min = v[i] < b->min ? v[i] : b->min;
			b->max = v[i] > b->max ? v[i] : b->max;
		}
		b->mean = sum / (double)m;
	}
	*n_out = k;
	return 0;
}

/* ---- phases ------------------------------------------------------------------ */

/*
 * One phase detection: the series, the options, and the workspace every
 * try reuses (allocated once): buf and tmp of n doubles (the block scratch
 * of ts_points, the slope counts, the band), x, y, g of up to
 * MT_STATS_THEIL_SEN_EXACT_MAX points, and the Mann-Kendall S and tie term
 * of every suffix (mk_s, mk_tie: n each; fen: n + 1 counters).
 */
struct scan {
	const uint64_t *t;
	const double *v;
	size_t n, min_plateau;
	struct mt_phase_opts o;
	double *buf, *tmp, *x, *y, *g, *mk_s, *mk_tie;
	size_t *fen;
};

/* Fenwick tree over 1-based ranks 1..d: counts added at ranks <= i. */
static size_t fen_sum(const size_t *fen, size_t i)
{
	size_t sum = 0;
	for (; i > 0; i -= i & -i)
		sum += fen[i];
	return sum;
}

static void fen_add(size_t *fen, size_t d, size_t i)
{
	for (; i <= d; i += i & -i)
		fen[i]++;
}

/* 1-based rank of x among the d distinct sorted values u (x is one of them). */
static size_t rank_of(const double *u, size_t d, double x)
{
	size_t lo = 0, hi = d;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

/*
 * Mann-Kendall's S and tie term for every suffix v[p..n), in one pass
 * from the end: putting v[p] in front of v[p+1..n) adds (later values
 * above it) - (later values below it) to S, and grows its group of equal
 * values from t to t+1, adding (t+1)t(2t+7) - t(t-1)(2t+5) to the tie
 * term.  A Fenwick tree over the ranks of the values counts the later
 * values below and up to v[p] in O(log n) (P. M. Fenwick (1994), "A new
 * data structure for cumulative frequency tables", Software: Practice and
 * Experience 24:327-336).  O(n log n) once; then each try's test is O(1),
 * where a merge sort per try would cost O(L log L).
 */
static void mk_suffixes(struct scan *sc)
{
	size_t n = sc->n, d = 0;
	double *u = sc->buf, s = 0, tie = 0;

	memcpy(u, sc->v, n * sizeof *u);
	sort_count_inversions(u, sc->tmp, n);
	for (size_t i = 0; i < n; i++)  /* the distinct values, ascending */
		if (d == 0 || u[i] != u[d - 1])
			u[d++] = u[i];
	memset(sc->fen, 0, (d + 1) * sizeof *sc->fen);

	for (size_t p = n; p-- > 0;) {
		size_t r = rank_of(u, d, sc->v[p]), later = n - 1 - p;
		size_t below = fen_sum(sc->fen, r - 1), upto = fen_sum(sc->fen, r);
		double t = (double)(upto - below);
		s += (double)(later - upto) - (double)below;
		tie += (t + 1) * t * (2 * t + 7) - t * (t - 1) * (2 * t + 5);
		fen_add(sc->fen, d, r);
		sc->mk_s[p] = s;
		sc->mk_tie[p] = tie;
	}
}

/*
 * Among the pairs i < j of (x, y)[0..np) with x[i] < x[j] (x ordered),
 * counts those whose slope is below c and above c.  Slope < c exactly when
 * y[j] - c*x[j] < y[i] - c*x[i], so the pairs below c are the inversions
 * of w = y - c*x and those above its ascending pairs (the reduction behind
 * slope selection, Cole et al. 1989): O(np log np) instead of np^2/2
 * slopes.  Pairs of equal x have no slope: counted within each run of
 * equal x on its own (in g), then taken out.  *valid: the pairs with a
 * slope.
 */
static void ts_count_around(struct scan *sc, size_t np, double c,
                            uint64_t *below, uint64_t *above, uint64_t *valid)
{
	const double *x = sc->x, *y = sc->y;
	double *w = sc->buf;
	uint64_t below_eq = 0, above_eq = 0, pairs_eq = 0;
	struct pair_counts pc;

	for (size_t i = 0; i < np; i++)
		w[i] = y[i] - c * x[i];
	for (size_t i = 0, j; i < np; i = j) {
		for (j = i + 1; j < np && x[j] == x[i]; j++)
			;
		if (j - i < 2)
			continue;
		memcpy(sc->g, w + i, (j - i) * sizeof *w);
		count_pairs(sc->g, sc->tmp, j - i, &pc);
		below_eq += pc.desc;
		above_eq += pc.asc;
		pairs_eq += pc.asc + pc.desc + pc.ties;
	}
	count_pairs(w, sc->tmp, np, &pc);
	*below = pc.desc - below_eq;
	*above = pc.asc - above_eq;
	*valid = (uint64_t)np * (np - 1) / 2 - pairs_eq;
}

/*
 * Where the median of m sorted values s lies against a bound, from the
 * number of values strictly on the good side of it: 1 on the good side,
 * 0 not, -1 when m is even and the bound falls between the two middle
 * values (their mean could be on either side).  With h = m/2: m odd,
 * s[h] is good iff count >= h+1; m even, s[h-1] and s[h] are both good iff
 * count >= h+1, neither iff count <= h-1.
 */
static int median_side(uint64_t m, uint64_t count)
{
	uint64_t h = m / 2;
	if (count >= h + 1)
		return 1;
	if ((m & 1) || count + 1 <= h)
		return 0;
	return -1;
}

/* The exact Theil-Sen slope of the points in sc->x, sc->y, for the rare undecided case. */
static int ts_exact_slope(struct scan *sc, size_t np, double *slope)
{
	double icpt, *s = malloc(ts_scratch_len(np) * sizeof *s);
	if (!s)
		return -ENOMEM;
	int rc = ts_exact(sc->x, sc->y, np, s, slope, &icpt);
	free(s);
	return rc;
}

/*
 * Whether the Theil-Sen slope of v[p..n) (on the same points as
 * mt_fit_theil_sen) lies strictly inside (-thr, thr): 1 yes, 0 no, or a
 * negative errno.  Decided from two pair counts; only when an even number
 * of slopes puts a bound between the two middle ones is the exact median
 * computed.
 */
static int ts_flat(struct scan *sc, size_t p, double thr)
{
	size_t L = sc->n - p;
	size_t np = ts_points(sc->t + p, sc->v + p, L, sc->x, sc->y, sc->buf);
	uint64_t below_hi, above_hi, below_lo, above_lo, m;

	ts_count_around(sc, np, thr, &below_hi, &above_hi, &m);
	if (m == 0)
		return 0;  /* all times equal: no slope, not a plateau */
	int under = median_side(m, below_hi);
	if (under == 0)
		return 0;
	ts_count_around(sc, np, -thr, &below_lo, &above_lo, &m);
	int over = median_side(m, above_lo);
	if (over == 0)
		return 0;
	if (under == 1 && over == 1)
		return 1;
	double slope;
	int rc = ts_exact_slope(sc, np, &slope);
	return rc < 0 ? rc : fabs(slope) < thr;
}

/*
 * The plateau criterion at start p: Theil-Sen flat against the larger
 * floor, and Mann-Kendall (from the suffix table) finding no increasing
 * trend.  Returns 1, 0, or a negative errno.
 */
static int plateau_at(struct scan *sc, size_t p)
{
	size_t L = sc->n - p;
	double sum = 0;
	for (size_t i = p; i < sc->n; i++)
		sum += sc->v[i];
	double thr = fmax(sc->o.flat_slope_per_s, sc->o.flat_rel_per_s * fabs(sum / (double)L));

	int rc = ts_flat(sc, p, thr);
	if (rc <= 0)
		return rc;
	struct mt_trend tr;
	mk_finish(sc->mk_s[p], sc->mk_tie[p], L, sc->o.alpha, &tr);
	return tr.direction != 1;
}

/* Earliest start in (lo, hi] where the criterion holds, given it fails at lo and holds at hi. */
static int bisect(struct scan *sc, size_t lo, size_t hi, size_t *start)
{
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		int rc = plateau_at(sc, mid);
		if (rc < 0)
			return rc;
		if (rc)
			hi = mid;
		else
			lo = mid;
	}
	*start = hi;
	return 0;
}

/*
 * The earliest start that holds (*start = n when none), every candidate
 * tried when they are few, else coarse steps then bisection (stats.h).
 */
static int find_start(struct scan *sc, size_t *start)
{
	size_t last = sc->n - sc->min_plateau;
	bool exact = last + 1 <= MT_STATS_PHASE_SCAN_EXACT;
	size_t steps = exact ? last + 1 : MT_STATS_PHASE_SCAN_STEPS, prev = 0;

	for (size_t k = 0; k < steps; k++) {
		size_t p = exact ? k : k * last / (steps - 1);
		int rc = plateau_at(sc, p);
		if (rc < 0)
			return rc;
		if (rc) {
			if (exact || k == 0) {
				*start = p;
				return 0;
			}
			return bisect(sc, prev, p, start);
		}
		prev = p;
	}
	*start = sc->n;
	return 0;
}

/*
 * Moves start p0 past leading samples that are still warm-up, keeping
 * min_plateau samples: those outside the plateau band (median +-
 * MT_STATS_PHASE_BAND_MADS * 1.4826 * MAD of v[p0..n)), and those lower
 * than every later sample (the tail of a rising warm-up; not "higher than
 * every later one", which would eat a decline the floors accept as flat).
 * Why: the rank test lets about 0.65*sqrt(L) warm-up samples at the head
 * of a suffix of L pass as noise (each adds at most L to S, whose sd is
 * about L^1.5/3); their distance from the level gives them away.  The band catches them under normal
 * noise; the record test under a bounded oscillation (a pool's sawtooth),
 * whose MAD-based band is wider than its range.  The median and MAD ignore
 * the warm-up samples: they are a minority.  The move is kept only if the
 * criterion still holds at the new start.
 */
static int trim_to_band(struct scan *sc, size_t p0, size_t *start)
{
	const double *v = sc->v + p0;
	size_t L = sc->n - p0, keep = L - sc->min_plateau, i = 0;
	double *rest_min = sc->tmp;

	memcpy(sc->buf, v, L * sizeof *v);
	double med = median_inplace(sc->buf, L);
	for (size_t k = 0; k < L; k++)
		sc->buf[k] = fabs(v[k] - med);
	double half = MT_STATS_PHASE_BAND_MADS * MAD_TO_SD * median_inplace(sc->buf, L);

	rest_min[L - 1] = INFINITY;  /* rest_min[k]: least of v[k+1..L) */
	for (size_t k = L - 1; k > 0; k--)
		rest_min[k - 1] = fmin(rest_min[k], v[k]);
	while (i < keep && (fabs(v[i] - med) > half || v[i] < rest_min[i]))
		i++;

	*start = p0;
	if (i == 0)
		return 0;
	int rc = plateau_at(sc, p0 + i);
	if (rc < 0)
		return rc;
	if (rc)
		*start = p0 + i;
	return 0;
}

/* Fills *out once the start is known (p == n: none). */
static int phases_fill(struct scan *sc, size_t p, struct mt_phases *out)
{
	const double *v = sc->v;
	size_t n = sc->n, from = p < n ? p : 0;
	struct mt_phases r = { .warmup_end = n, .plateau_start = p };

	int rc = mt_fit_theil_sen(sc->t + from, v + from, n - from, &r.plateau_fit);
	if (rc)
		return rc;
	mk_finish(sc->mk_s[from], sc->mk_tie[from], n - from, sc->o.alpha, &r.plateau_trend);
	if (p < n) {
		mt_summary(v + p, n - p, &r.plateau);
		double level = MT_STATS_WARMUP_LEVEL * r.plateau.mean;
		for (r.warmup_end = 0; r.warmup_end < p && v[r.warmup_end] < level; r.warmup_end++)
			;
	}
	*out = r;
	return 0;
}

static bool opts_ok(const struct mt_phase_opts *o)
{
	return alpha_ok(o->alpha) && o->flat_slope_per_s >= 0 && o->flat_rel_per_s >= 0 &&
	       (o->flat_slope_per_s > 0 || o->flat_rel_per_s > 0) &&
	       isfinite(o->flat_slope_per_s) && isfinite(o->flat_rel_per_s);
}

int mt_phases(const uint64_t *t_ns, const double *v, size_t n, const struct mt_phase_opts *o,
              struct mt_phases *out)
{
	static const struct mt_phase_opts defaults = MT_PHASE_OPTS_INIT;
	struct scan sc = { .t = t_ns, .v = v, .n = n, .o = o ? *o : defaults };

	sc.min_plateau = max_z(sc.o.min_plateau, 3);
	if (!t_ns || !v || !out || !opts_ok(&sc.o) || n < sc.min_plateau ||
	    !all_finite(v, n) || !time_ordered(t_ns, n))
		return -EINVAL;

	size_t B = min_z(n, MT_STATS_THEIL_SEN_EXACT_MAX);
	size_t n_dbl = 4 * n + 3 * B;
	double *mem = malloc(n_dbl * sizeof *mem + (n + 1) * sizeof *sc.fen);
	if (!mem)
		return -ENOMEM;
	sc.buf = mem;
	sc.tmp = sc.buf + n;
	sc.mk_s = sc.tmp + n;
	sc.mk_tie = sc.mk_s + n;
	sc.x = sc.mk_tie + n;
	sc.y = sc.x + B;
	sc.g = sc.y + B;
	sc.fen = (size_t *)(mem + n_dbl);
	mk_suffixes(&sc);

	size_t p;
	int rc = find_start(&sc, &p);
	if (rc == 0 && p < n)
		rc = trim_to_band(&sc, p, &p);
	if (rc == 0)
		rc = phases_fill(&sc, p, out);
	free(mem);
	return rc;
}
