/*
 * The plateau analysis of a watched process: is its RSS growing, did it
 * level off after a warm-up, or neither?
 *
 * What /proc can show is RSS and its split (anonymous, file-backed, shared,
 * swapped) and the threads; not the live heap.  So the verdicts here are
 * about RSS: "growing", "plateau after warm-up", "no significant growth".
 * Whether anonymous growth is a leak, allocator retention or mappings
 * outside malloc ("non-heap growth") needs the allocator's view, which
 * only `memtriage run` records; the report says so instead of guessing.
 *
 * The rules, each threshold named in watch.h:
 *
 *   growing    on the later window (the plateau when one was found, else
 *              the last half of the samples), all four hold:
 *                - Mann-Kendall finds an increasing trend at MT_WATCH_ALPHA;
 *                - the Theil-Sen slope times the window's duration (its
 *                  rise) is at least MT_WATCH_GROWTH_RATIO of the window's
 *                  mean RSS;
 *                - the slope is at least MT_WATCH_FLOOR_BYTES_PER_H;
 *                - the rise is at least MT_WATCH_FLOOR_BYTES.
 *   plateau after warm-up
 *              not growing, mt_phases() found a plateau covering at least
 *              MT_WATCH_PLATEAU_MIN_FRACTION of the samples, and the plateau's
 *              mean is above the starting RSS by both the ratio and the
 *              floor (a warm-up worth naming).  "Flat" for mt_phases is
 *              the same magnitude test as growth's: a Theil-Sen slope below
 *              the larger of MT_WATCH_FLOOR_BYTES_PER_H and
 *              MT_WATCH_GROWTH_RATIO of the level over the whole watch.
 *   no significant growth
 *              otherwise (flat from the start, falling, or noisy without a
 *              trend); with fewer than MT_WATCH_MIN_POINTS samples,
 *              "too few samples".
 *
 * Why these values:
 *
 *   MT_WATCH_ALPHA 0.01: Mann-Kendall assumes independent samples, and RSS
 *     sampled every second is strongly autocorrelated, which makes the test
 *     over-confident; 1% instead of the textbook 5% keeps part of the
 *     margin, and the slope floors below do the rest.
 *   MT_WATCH_GROWTH_RATIO 0.05 (of the level, over the window): pools,
 *     arenas and page reclaim move a steady process's RSS by a few percent
 *     (seed 003: a plateau of 3878 MB with sd 97 MB and a fitted drift of
 *     ~110 MB, 2.9%, over the plateau).  A rise smaller than 5% of the
 *     level within the window cannot be told from that oscillation from
 *     outside.  Measured over the window, not per hour, because a window of
 *     any length can only vouch for what changed within it.
 *   MT_WATCH_FLOOR_BYTES_PER_H 1 MiB/h: below it a process needs six weeks
 *     to grow by 1 GiB; not what anyone means by "growing".
 *   MT_WATCH_FLOOR_BYTES 1 MiB: RSS moves in allocator steps (glibc grows
 *     its heap by at least 128 KiB and maps blocks of 128 KiB and more on
 *     their own), so in a small process a few steps are 5% without any
 *     growth; 1 MiB is eight such steps.
 *   MT_WATCH_PHASE_ALPHA DBL_MIN: makes the Mann-Kendall condition of
 *     mt_phases() inert, so a plateau is found by magnitude alone.  RSS
 *     creeps in allocator-sized steps (a dict resize, a new arena: 64 KiB
 *     on 33 MiB), and a rank test finds a staircase of three such steps as
 *     "significant" (Z ~ 9) as a leak; a plateau with that creep is still a
 *     plateau.  The trend test keeps its role where it matters: no
 *     "growing" without it.  (Only a perfectly monotone series of several
 *     hundred points has p underflow to 0, and its slope is not flat then.)
 *   MT_WATCH_PLATEAU_MIN_FRACTION 0.2: a level held for less than a fifth
 *     of the watch may be a pause in growth, not a plateau.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "watch/watch.h"

const char *mt_watch_verdict_name(enum mt_watch_verdict v)
{
	switch (v) {
	case MT_WATCH_GROWING:   return "growing";
	case MT_WATCH_PLATEAU:   return "plateau after warm-up";
	case MT_WATCH_NO_GROWTH: return "no significant growth";
	case MT_WATCH_TOO_FEW:   break;
	}
	return "too few samples";
}

/* The working arrays: raw RSS samples and the points the statistics use. */
struct work {
	size_t n, m;          /* samples, points */
	uint64_t *t, *pt;
	double *v, *pv;
};

static void work_free(struct work *w)
{
	free(w->t);
	free(w->v);
	free(w->pt);
	free(w->pv);
}

/* First sample of point i: points are consecutive buckets of samples. */
static size_t bucket_first(size_t n, size_t m, size_t i)
{
	return i >= m ? n : i * n / m;
}

/*
 * Reduces t[0..n), v[0..n) to m <= n points, each the mean time and mean
 * value of a bucket of consecutive samples (m == n copies).
 */
static void reduce(const uint64_t *t, const double *v, size_t n, size_t m, uint64_t *pt,
                   double *pv)
{
	for (size_t i = 0; i < m; i++) {
		size_t a = bucket_first(n, m, i), b = bucket_first(n, m, i + 1);
		double st = 0, sv = 0;
		for (size_t j = a; j < b; j++) {
			st += (double)(t[j] - t[a]);
			sv += v[j];
		}
		pt[i] = t[a] + (uint64_t)(st / (double)(b - a));
		pv[i] = sv / (double)(b - a);
	}
}

/* Extracts RSS and its points; -ENOMEM. */
static int work_init(struct work *w, const struct mt_watch_series *sr)
{
	memset(w, 0, sizeof(*w));
	w->n = sr->n;
	w->m = w->n < MT_WATCH_POINTS_MAX ? w->n : MT_WATCH_POINTS_MAX;
	w->t = malloc((w->n + 1) * sizeof(*w->t));
	w->v = malloc((w->n + 1) * sizeof(*w->v));
	w->pt = malloc((w->m + 1) * sizeof(*w->pt));
	w->pv = malloc((w->m + 1) * sizeof(*w->pv));
	if (!w->t || !w->v || !w->pt || !w->pv) {
		work_free(w);
		return -ENOMEM;
	}
	mt_watch_series_field(sr, MT_WF_RSS, w->t, w->v);  /* every sample has RSS */
	reduce(w->t, w->v, w->n, w->m, w->pt, w->pv);
	return 0;
}

/* Fills span [first, first + n) of the raw samples; n == 0 leaves it absent. */
static int span_set(struct mt_watch_span *sp, const struct work *w, size_t first, size_t n)
{
	memset(sp, 0, sizeof(*sp));
	if (!n)
		return 0;
	sp->first = first;
	sp->n = n;
	sp->t0_ns = w->t[first];
	sp->t1_ns = w->t[first + n - 1];
	return mt_summary(w->v + first, n, &sp->rss);
}

/*
 * Mann-Kendall on v[0..n), with a constant window answered directly: no
 * trend (its variance is 0 and the test's z is undefined).
 */
static int trend(const double *v, size_t n, struct mt_trend *out)
{
	int constant = 1;
	for (size_t i = 1; i < n && constant; i++)
		constant = v[i] == v[0];
	if (constant) {
		memset(out, 0, sizeof(*out));
		out->p_two_sided = 1;
		return 0;
	}
	return mt_mann_kendall(v, n, MT_WATCH_ALPHA, out);
}

/* ---- phases ------------------------------------------------------------ */

/*
 * Runs mt_phases on the points and fills the spans when it finds a
 * plateau.  Sets *later to the first point of the later window: the
 * plateau's, or the middle one when there is none.
 */
static int find_phases(struct mt_watch_analysis *a, const struct work *w, size_t *later)
{
	double dur_s = (double)(w->pt[w->m - 1] - w->pt[0]) / 1e9;
	size_t min_plateau = (size_t)ceil(MT_WATCH_PLATEAU_MIN_FRACTION * (double)w->m);
	struct mt_phase_opts o = {
		.alpha = MT_WATCH_PHASE_ALPHA,
		.flat_slope_per_s = MT_WATCH_FLOOR_BYTES_PER_H / 3600,
		/* "flat": would rise by less than the ratio of its level over the whole watch */
		.flat_rel_per_s = dur_s > 0 ? MT_WATCH_GROWTH_RATIO / dur_s : 0,
		.min_plateau = min_plateau < MT_WATCH_MIN_POINTS ? MT_WATCH_MIN_POINTS : min_plateau,
	};
	struct mt_phases ph;
	*later = w->m / 2;
	int rc = mt_phases(w->pt, w->pv, w->m, &o, &ph);
	if (rc)
		return rc;
	if (ph.plateau_start >= w->m)
		return 0;
	*later = ph.plateau_start;
	size_t we = ph.warmup_end < ph.plateau_start ? ph.warmup_end : ph.plateau_start;
	size_t r_we = bucket_first(w->n, w->m, we), r_ps = bucket_first(w->n, w->m, ph.plateau_start);
	a->have_plateau = 1;
	if ((rc = span_set(&a->warmup, w, 0, r_we)) ||
	    (rc = span_set(&a->settling, w, r_we, r_ps - r_we)) ||
	    (rc = span_set(&a->plateau, w, r_ps, w->n - r_ps)))
		return rc;
	a->warmup_rise = a->plateau.rss.mean - a->start_level;
	return 0;
}

/* ---- the later window ---------------------------------------------------- */

/* Fits and tests RSS over points [pf, m), the later window. */
static int test_later(struct mt_watch_analysis *a, const struct work *w, size_t pf)
{
	size_t k = w->m - pf;
	int rc;
	if ((rc = span_set(&a->later, w, bucket_first(w->n, w->m, pf),
	                   w->n - bucket_first(w->n, w->m, pf))) ||
	    (rc = mt_fit_least_squares(w->pt + pf, w->pv + pf, k, &a->later_ls)) ||
	    (rc = mt_fit_theil_sen(w->pt + pf, w->pv + pf, k, &a->later_ts)) ||
	    (rc = trend(w->pv + pf, k, &a->later_mk)))
		return rc;
	if (!a->later_is_plateau && (rc = span_set(&a->early, w, 0, a->later.first)))
		return rc;
	double dur_s = (double)(w->pt[w->m - 1] - w->pt[pf]) / 1e9;
	a->later_rise = a->later_ts.slope_per_s * dur_s;
	a->later_ratio = a->later.rss.mean > 0 ? a->later_rise / a->later.rss.mean : 0;
	if (a->later_mk.direction > 0 && a->later_mk.p_two_sided < MT_WATCH_ALPHA)
		a->growth_checks |= MT_WATCH_CHECK_TREND;
	if (a->later_ratio >= MT_WATCH_GROWTH_RATIO)
		a->growth_checks |= MT_WATCH_CHECK_RATIO;
	if (a->later_ts.slope_per_s * 3600 >= MT_WATCH_FLOOR_BYTES_PER_H)
		a->growth_checks |= MT_WATCH_CHECK_SLOPE;
	if (a->later_rise >= MT_WATCH_FLOOR_BYTES)
		a->growth_checks |= MT_WATCH_CHECK_RISE;
	return 0;
}

/* ---- the parts of RSS ------------------------------------------------------- */

static const enum mt_watch_field part_field[MT_WP_COUNT] = {
	[MT_WP_ANON] = MT_WF_RSS_ANON, [MT_WP_FILE] = MT_WF_RSS_FILE,
	[MT_WP_SHMEM] = MT_WF_RSS_SHMEM, [MT_WP_SWAP] = MT_WF_SWAP,
};

/*
 * How one part of RSS moved over the later window: Theil-Sen on the same
 * kind of points as RSS.  Leaves part->have 0 when a sample of the window
 * lacks it.  t, v, pt, pv: scratch for the window's samples and points.
 */
static int part_over(struct mt_watch_part *part, const struct mt_watch_series *sr,
                     const struct mt_watch_span *win, uint64_t *t, double *v, uint64_t *pt,
                     double *pv)
{
	size_t n = win->n;
	for (size_t i = 0; i < n; i++) {
		const struct mt_watch_sample *s = &sr->s[win->first + i];
		if (!mt_watch_has(s, part->field))
			return 0;
		t[i] = s->t_ns;
		v[i] = (double)s->v[part->field];
	}
	size_t m = n < MT_WATCH_POINTS_MAX ? n : MT_WATCH_POINTS_MAX;
	reduce(t, v, n, m, pt, pv);
	struct mt_fit fit;
	int rc = mt_fit_theil_sen(pt, pv, m, &fit);
	if (rc)
		return rc;
	part->have = 1;
	part->first = v[0];
	part->last = v[n - 1];
	part->slope_per_s = fit.slope_per_s;
	part->rise = fit.slope_per_s * (double)(pt[m - 1] - pt[0]) / 1e9;
	return 0;
}

static int split_parts(struct mt_watch_analysis *a, const struct mt_watch_series *sr)
{
	size_t n = a->later.n, m = n < MT_WATCH_POINTS_MAX ? n : MT_WATCH_POINTS_MAX;
	uint64_t *t = malloc(n * sizeof(*t)), *pt = malloc(m * sizeof(*pt));
	double *v = malloc(n * sizeof(*v)), *pv = malloc(m * sizeof(*pv));
	int rc = t && pt && v && pv ? 0 : -ENOMEM;
	for (int i = 0; i < MT_WP_COUNT && !rc; i++) {
		a->parts[i].field = part_field[i];
		if (n >= 2)
			rc = part_over(&a->parts[i], sr, &a->later, t, v, pt, pv);
	}
	free(t);
	free(pt);
	free(v);
	free(pv);
	return rc;
}

static void count_threads(struct mt_watch_analysis *a, const struct mt_watch_series *sr)
{
	for (size_t i = 0; i < sr->n; i++) {
		const struct mt_watch_sample *s = &sr->s[i];
		if (!mt_watch_has(s, MT_WF_THREADS))
			continue;
		uint64_t th = s->v[MT_WF_THREADS];
		if (!a->have_threads)
			a->threads_first = th;
		a->have_threads = 1;
		a->threads_last = th;
		if (th > a->threads_max)
			a->threads_max = th;
	}
}

/* ---- the verdict ------------------------------------------------------------ */

static enum mt_watch_verdict decide(const struct mt_watch_analysis *a)
{
	if (a->growth_checks == MT_WATCH_CHECK_ALL)
		return MT_WATCH_GROWING;
	if (a->have_plateau && a->warmup_rise >= MT_WATCH_GROWTH_RATIO * a->plateau.rss.mean &&
	    a->warmup_rise >= MT_WATCH_FLOOR_BYTES)
		return MT_WATCH_PLATEAU;
	return MT_WATCH_NO_GROWTH;
}

/* What needs only the raw samples: the summary, the ends, the blocks. */
static int describe(struct mt_watch_analysis *a, const struct work *w)
{
	a->duration_ns = w->t[w->n - 1] - w->t[0];
	a->rss_first = w->v[0];
	a->rss_last = w->v[w->n - 1];
	a->block_size = (w->n + MT_WATCH_BLOCKS - 1) / MT_WATCH_BLOCKS;
	int rc = mt_summary(w->v, w->n, &a->rss);
	if (!rc)
		rc = mt_blocks(w->t, w->v, w->n, a->block_size, a->blocks, MT_WATCH_BLOCKS,
		               &a->n_blocks);
	return rc;
}

int mt_watch_analyze(const struct mt_watch_series *sr, struct mt_watch_analysis *a)
{
	struct work w;
	int rc;

	memset(a, 0, sizeof(*a));
	a->verdict = MT_WATCH_TOO_FEW;
	a->n_samples = sr->n;
	count_threads(a, sr);
	if (!sr->n)
		return 0;
	if ((rc = work_init(&w, sr)))
		return rc;
	a->n_points = w.m;
	a->start_level = w.pv[0];
	rc = describe(a, &w);
	if (!rc && w.n >= MT_WATCH_MIN_POINTS) {
		size_t pf;
		rc = find_phases(a, &w, &pf);
		a->later_is_plateau = a->have_plateau;
		if (!rc)
			rc = test_later(a, &w, pf);
		if (!rc)
			rc = split_parts(a, sr);
		if (!rc)
			a->verdict = decide(a);
	}
	work_free(&w);
	return rc;
}
