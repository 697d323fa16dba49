/*
 * The verdict: which of the four growth classes (DESIGN.md) the timeline
 * shows, from named evidence.  docs/verdict.md is the prose version of
 * this file: every rule, every threshold, its ratio, floor, unit and why.
 *
 * The window.  Growth is judged after warm-up and before the exit: on the
 * timeline points [win_first, win_end), win_first = MT_V_WARMUP_FRACTION
 * of the points.  Start-up (loading, first requests, threads starting,
 * caches filling) is growth nobody means by "it keeps growing"; the exit
 * (workers joined, caches freed) is a fall nobody means by "it is flat".
 * win_end is where the exit begins (teardown_start()).
 *
 * Allocator evidence.  With mallinfo2 on MT_V_MI_COVERAGE of the window's
 * points, allocator-held free and non-heap are told apart; otherwise
 * (another allocator preloaded, or the recorder stopped sampling mallinfo2)
 * both are "RSS - live heap - recorder", the non-heap rule is not applied
 * (it cannot be told from retention), and the report says so.
 *
 * The rules, in the order they decide (the first that holds wins, except
 * that non-heap growth beats retention when it grew more than the
 * allocator's free memory did):
 *
 *   live-heap growth    on the window's live heap: Mann-Kendall increasing
 *                       at MT_V_ALPHA, Theil-Sen slope >= MT_V_SLOPE_FLOOR,
 *                       rise (slope x window) >= MT_V_GROWTH_RATIO of the
 *                       window's mean live heap and >= MT_V_RISE_FLOOR.
 *   non-heap growth     live heap not growing; the window's non-heap
 *                       series (RSS - allocator footprint - recorder):
 *                       increasing at MT_V_ALPHA, rise >= MT_V_GROWTH_RATIO
 *                       of the window's mean RSS and >= MT_V_NONHEAP_FLOOR.
 *   allocator retention live heap not growing; over the window, the mean
 *                       memory the allocator holds free >= MT_V_FREE_RATIO
 *                       x the mean live heap (utilization <= 1 / (1 +
 *                       ratio)) and >= MT_V_FREE_FLOOR.
 *   pooling plateau     no growth above; mt_phases() on the live heap finds
 *                       a plateau covering >= MT_V_PLATEAU_MIN_FRACTION of
 *                       the points, after a warm-up rise >= MT_V_GROWTH_RATIO
 *                       of the plateau's mean and >= MT_V_RISE_FLOOR.
 *   no significant growth  otherwise; "too short to tell" below
 *                       MT_V_MIN_POINTS points.
 *
 * Confidence: how far the deciding figures clear their thresholds, the
 * smallest of value / threshold (alpha / p for the trend test): high from
 * MT_V_CONF_HIGH, medium from MT_V_CONF_MEDIUM, else low.  Retention
 * judged without mallinfo2 (RSS minus live heap) is at most medium: that
 * figure also holds mappings outside malloc.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "analyze/analysis.h"
#include "stats/stats.h"

#define MT_V_MIN_POINTS          10        /* samples for any verdict (the trend test's least useful n) */
#define MT_V_WARMUP_FRACTION     0.25      /* of the points: start-up, not judged for growth */
#define MT_V_ALPHA               0.01      /* Mann-Kendall significance level (autocorrelated samples) */
#define MT_V_SLOPE_FLOOR         (1048576.0 / 3600)  /* bytes/s: 1 MiB per hour */
#define MT_V_GROWTH_RATIO        0.10      /* rise over the window / the window's mean level */
#define MT_V_RISE_FLOOR          1048576.0 /* bytes: 1 MiB over the window */
#define MT_V_NONHEAP_FLOOR       (4.0 * 1048576)     /* bytes: non-heap rise worth naming */
/* without allocator statistics: an excess rise above this many times the peak live heap is
   more than an allocator's arenas could hold free (each holds at most what was live in it) */
#define MT_V_NONHEAP_PEAK_RATIO  8.0
#define MT_V_FREE_RATIO          1.0       /* allocator-held free / live heap: utilization <= 50% */
#define MT_V_FREE_FLOOR          (32.0 * 1048576)    /* bytes held free: worth a tuning change */
#define MT_V_PLATEAU_MIN_FRACTION 0.3      /* of the points: a level held this long is a plateau */
#define MT_V_MI_COVERAGE         0.8       /* of the window's points with mallinfo2, else RSS - heap */
#define MT_V_CONF_HIGH           3.0       /* every figure at least 3x its threshold */
#define MT_V_TEARDOWN_DROP       0.5       /* threads fell to half their most or fewer: exit */
#define MT_V_TEARDOWN_MAX_FRACTION 0.1     /* of the points, at most, left out as teardown */
#define MT_V_CONF_MEDIUM         1.5
#define MT_V_LOW_UTIL_WARN       0.5       /* arena section: warn below 50% utilization */
#define MT_V_KEEPCOST_WARN       8.0       /* ... and when fordblks > 8 x keepcost (trim can't reach it) */
#define MT_V_PLATEAU_LIMIT       1.5       /* plateau remedy: memory limit = 1.5 x the plateau's max */
#define MT_V_PLATEAU_ALERT       1.2       /* plateau remedy: alert above 1.2 x the plateau's max */

const char *mt_verdict_name(enum mt_verdict_class c)
{
	switch (c) {
	case MT_V_NO_GROWTH:        return "NO SIGNIFICANT GROWTH";
	case MT_V_LIVE_HEAP_GROWTH: return "LIVE-HEAP GROWTH (leak or unbounded cache)";
	case MT_V_ALLOC_RETENTION:  return "ALLOCATOR RETENTION (fragmentation)";
	case MT_V_PLATEAU:          return "POOLING PLATEAU";
	case MT_V_NON_HEAP_GROWTH:  return "NON-HEAP GROWTH";
	case MT_V_TOO_SHORT:        break;
	}
	return "TOO SHORT TO TELL";
}

const char *mt_confidence_name(enum mt_confidence c)
{
	return c == MT_CONF_HIGH ? "high" : c == MT_CONF_MEDIUM ? "medium" : "low";
}

/* ---- series over the window --------------------------------------------- */

enum field { F_HEAP, F_RSS, F_NONHEAP, F_FREE };

/* RSS beyond the live heap and the recorder: free memory held plus non-heap (signed). */
static double excess(const struct mt_timeline_point *p)
{
	return (double)p->rss - (double)p->heap_bytes - (double)p->recorder;
}

/* Field f of p; with use_mi 0, the allocator's parts are unknown and both are the excess. */
static double field_of(const struct mt_timeline_point *p, enum field f, int use_mi)
{
	switch (f) {
	case F_HEAP:    return (double)p->heap_bytes;
	case F_RSS:     return (double)p->rss;
	case F_NONHEAP: return use_mi ? (double)p->non_heap : excess(p);
	default:        return use_mi ? (double)p->alloc_free : excess(p);
	}
}

/* How one series moved over a window. */
struct move {
	size_t n;
	double mean, slope, rise, p;
	int up;                   /* Mann-Kendall: increasing at MT_V_ALPHA */
};

/*
 * Fits field f over points [first, n) with a live heap (and mallinfo when
 * need_mi, which also picks the allocator's figures over the excess);
 * move->n 0 when fewer than 3.
 */
static int move_of(const struct mt_analysis *a, size_t first, size_t end, enum field f,
                   int need_mi, struct move *m)
{
	size_t n = end - first, k = 0;
	uint64_t *t = malloc((n + 1) * sizeof(*t));
	double *v = malloc((n + 1) * sizeof(*v));
	int rc = 0;
	memset(m, 0, sizeof(*m));
	m->p = 1;
	if (!t || !v) {
		rc = -ENOMEM;
		goto out;
	}
	/*
	 * Non-heap = RSS - footprint, with the footprint from mallinfo2: between
	 * two mallinfo2 samples it is extrapolated, and the error swings the
	 * difference by tens of MiB on a busy heap (a 103 MiB false rise was
	 * seen on the frontend when slow mallinfo2 calls spaced the samples out).
	 * So non-heap is judged only on points with a mallinfo2 sample of their
	 * own; with fewer than 3 there is no non-heap evidence.
	 */
	int fresh_only = f == F_NONHEAP && need_mi;
	for (size_t i = first; i < end; i++) {
		const struct mt_timeline_point *p = &a->timeline[i];
		if (!p->have_heap || (need_mi && !p->have_mi) || (fresh_only && p->mi_age_ns))
			continue;
		t[k] = p->t_ns;
		v[k++] = field_of(p, f, need_mi);
	}
	if (k < 3 || t[k - 1] == t[0])
		goto out;
	struct mt_summary s;
	struct mt_fit fit;
	struct mt_trend tr;
	if (mt_summary(v, k, &s) || mt_fit_theil_sen(t, v, k, &fit))
		goto out;
	m->n = k;
	m->mean = s.mean;
	m->slope = fit.slope_per_s;
	m->rise = fit.slope_per_s * (double)(t[k - 1] - t[0]) / 1e9;
	if (s.max > s.min && !mt_mann_kendall(v, k, MT_V_ALPHA, &tr)) {
		m->p = tr.p_two_sided;
		m->up = tr.direction > 0 && tr.p_two_sided < MT_V_ALPHA;
	}
out:
	free(t);
	free(v);
	return rc;
}

/* ---- evidence ------------------------------------------------------------- */

struct judge {
	struct mt_analysis *a;
	struct mt_verdict *v;
	size_t w0, w1;            /* the window: points [w0, w1) */
	struct move heap, rss, nonheap, freem;
	int heap_grows, nonheap_grows, retains, plateau;
	int nonheap_beyond_alloc;  /* no allocator statistics, and the excess outgrew any arena */
	size_t ev_heap, ev_nonheap, ev_free, ev_plateau;   /* first evidence index of each rule */
	struct mt_phases ph;
	int have_ph;
};

static void ev_add(struct mt_verdict *v, const char *what, double value, const char *op,
                   double threshold, enum mt_ev_unit unit)
{
	if (v->n_ev >= MT_V_EVIDENCE_MAX)
		return;
	int met = !strcmp(op, ">=") ? value >= threshold : value < threshold;
	v->ev[v->n_ev++] = (struct mt_evidence){ what, value, threshold, unit, op, met };
}

static int ev_all(const struct mt_verdict *v, size_t from, size_t n)
{
	for (size_t i = from; i < from + n && i < v->n_ev; i++)
		if (!v->ev[i].met)
			return 0;
	return 1;
}

/* Smallest margin by which evidence [from, from + n) clears its thresholds. */
static double ev_margin(const struct mt_verdict *v, size_t from, size_t n)
{
	double m = INFINITY;
	for (size_t i = from; i < from + n && i < v->n_ev; i++) {
		const struct mt_evidence *e = &v->ev[i];
		double r;
		if (!strcmp(e->op, ">="))
			r = e->threshold > 0 ? e->value / e->threshold : INFINITY;
		else
			r = e->value > 0 ? e->threshold / e->value : INFINITY;
		m = r < m ? r : m;
	}
	return m;
}

static enum mt_confidence conf_of(double margin)
{
	return margin >= MT_V_CONF_HIGH ? MT_CONF_HIGH :
	       margin >= MT_V_CONF_MEDIUM ? MT_CONF_MEDIUM : MT_CONF_LOW;
}

static void rule_heap(struct judge *j)
{
	struct mt_verdict *v = j->v;
	j->ev_heap = v->n_ev;
	ev_add(v, "live heap after warm-up: Mann-Kendall p (increasing)", j->heap.up ? j->heap.p : 1,
	       "<", MT_V_ALPHA, MT_U_P);
	ev_add(v, "live heap after warm-up: Theil-Sen slope", j->heap.slope, ">=", MT_V_SLOPE_FLOOR,
	       MT_U_BYTES_PER_S);
	ev_add(v, "live heap after warm-up: rise / mean live heap", j->heap.mean > 0 ?
	       j->heap.rise / j->heap.mean : 0, ">=", MT_V_GROWTH_RATIO, MT_U_RATIO);
	ev_add(v, "live heap after warm-up: rise", j->heap.rise, ">=", MT_V_RISE_FLOOR, MT_U_BYTES);
	j->heap_grows = ev_all(v, j->ev_heap, 4);
}

static void rule_nonheap(struct judge *j)
{
	struct mt_verdict *v = j->v;
	j->ev_nonheap = v->n_ev;
	ev_add(v, v->allocator_stats ? "non-heap (RSS - allocator footprint): Mann-Kendall p" :
	       "RSS - live heap - recorder: Mann-Kendall p", j->nonheap.up ? j->nonheap.p : 1, "<",
	       MT_V_ALPHA, MT_U_P);
	ev_add(v, "non-heap rise after warm-up / mean RSS", j->rss.mean > 0 ?
	       j->nonheap.rise / j->rss.mean : 0, ">=", MT_V_GROWTH_RATIO, MT_U_RATIO);
	ev_add(v, "non-heap rise after warm-up", j->nonheap.rise, ">=", MT_V_NONHEAP_FLOOR, MT_U_BYTES);
	if (v->allocator_stats) {
		j->nonheap_grows = !j->heap_grows && ev_all(v, j->ev_nonheap, 3);
		return;
	}
	/*
	 * Without mallinfo2 the excess holds both the allocator's free memory and
	 * non-heap memory.  An allocator can only hold free what was live once:
	 * its free memory stays within a few arenas' worth of the peak live heap.
	 * A rise far beyond that (MT_V_NONHEAP_PEAK_RATIO x the peak) is non-heap.
	 */
	ev_add(v, "RSS - live heap rise / peak live heap (no allocator statistics)",
	       j->a->peak_bytes ? j->nonheap.rise / (double)j->a->peak_bytes : 0, ">=",
	       MT_V_NONHEAP_PEAK_RATIO, MT_U_RATIO);
	j->nonheap_grows = j->nonheap_beyond_alloc = !j->heap_grows && ev_all(v, j->ev_nonheap, 4);
}

static void rule_retention(struct judge *j)
{
	struct mt_verdict *v = j->v;
	double heap = j->freem.n ? j->heap.mean : 0;
	j->ev_free = v->n_ev;
	ev_add(v, v->allocator_stats ? "allocator-held free (footprint - live) / live heap" :
	       "(RSS - live heap - recorder) / live heap", heap > 0 ? j->freem.mean / heap : 0, ">=",
	       MT_V_FREE_RATIO, MT_U_RATIO);
	ev_add(v, v->allocator_stats ? "allocator-held free, mean after warm-up" :
	       "RSS - live heap - recorder, mean after warm-up", j->freem.mean, ">=", MT_V_FREE_FLOOR,
	       MT_U_BYTES);
	j->retains = !j->heap_grows && j->freem.n && ev_all(v, j->ev_free, 2);
}

/* mt_phases on the live heap, by magnitude (as `watch` does for RSS: see watch/analyze.c). */
static int rule_plateau(struct judge *j)
{
	struct mt_analysis *a = j->a;
	struct mt_verdict *v = j->v;
	size_t n = a->n_timeline, k = 0;
	uint64_t *t = malloc((n + 1) * sizeof(*t));
	double *hv = malloc((n + 1) * sizeof(*hv));
	if (!t || !hv) {
		free(t);
		free(hv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (a->timeline[i].have_heap) {
			t[k] = a->timeline[i].t_ns;
			hv[k++] = (double)a->timeline[i].heap_bytes;
		}
	double dur = k > 1 ? (double)(t[k - 1] - t[0]) / 1e9 : 0;
	size_t minp = (size_t)ceil(MT_V_PLATEAU_MIN_FRACTION * (double)k);
	struct mt_phase_opts o = {
		.alpha = DBL_MIN,
		.flat_slope_per_s = MT_V_SLOPE_FLOOR,
		.flat_rel_per_s = dur > 0 ? MT_V_GROWTH_RATIO / dur : 0,
		.min_plateau = minp < MT_V_MIN_POINTS ? MT_V_MIN_POINTS : minp,
	};
	j->have_ph = k >= o.min_plateau && dur > 0 && !mt_phases(t, hv, k, &o, &j->ph) &&
	             j->ph.plateau_start < k;
	double frac = j->have_ph ? (double)(k - j->ph.plateau_start) / (double)k : 0;
	double rise = j->have_ph ? j->ph.plateau.mean - hv[0] : 0;
	if (j->have_ph) {
		v->plateau_mean = j->ph.plateau.mean;
		v->plateau_max = j->ph.plateau.max;
		v->warmup_rise = rise;
	}
	v->plateau_fraction = frac;
	free(t);
	free(hv);
	j->ev_plateau = v->n_ev;
	ev_add(v, "live-heap plateau: share of the run", frac, ">=", MT_V_PLATEAU_MIN_FRACTION,
	       MT_U_PERCENT);
	ev_add(v, "live-heap warm-up rise / plateau mean", j->have_ph && j->ph.plateau.mean > 0 ?
	       rise / j->ph.plateau.mean : 0, ">=", MT_V_GROWTH_RATIO, MT_U_RATIO);
	ev_add(v, "live-heap warm-up rise", rise, ">=", MT_V_RISE_FLOOR, MT_U_BYTES);
	j->plateau = j->have_ph && ev_all(v, j->ev_plateau, 3);
	return 0;
}

/* ---- remedies ------------------------------------------------------------- */

static void remedy(struct mt_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void remedy(struct mt_verdict *v, const char *fmt, ...)
{
	if (v->n_remedy >= MT_V_REMEDY_MAX)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->remedy[v->n_remedy++], MT_V_TEXT_LEN, fmt, ap);
	va_end(ap);
}

/* "1.23 GiB" style, for summaries and remedies. */
static const char *sz(char *buf, double bytes)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;
	double x = bytes < 0 ? -bytes : bytes;
	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	snprintf(buf, 32, "%s%.*f %s", bytes < 0 ? "-" : "", u ? (x < 10 ? 2 : x < 100 ? 1 : 0) : 0,
	         x, unit[u]);
	return buf;
}

/* The traced command line, for remedies that rerun it. */
static void command(const struct mt_trace *tr, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; tr && i < tr->argc && o + 1 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " " : "", tr->argv[i]);
	if (!buf[0])
		snprintf(buf, cap, "CMD");
	if (o >= 120)
		snprintf(buf + 116, cap - 116, " ...");
}

/* Whether the traced process loaded a module called `lib` (then it is the allocator in use). */
static int loaded(const struct mt_trace *tr, const char *lib)
{
	for (size_t i = 0; tr && i < tr->n_modules; i++) {
		const char *base = strrchr(tr->modules[i].path, '/');
		if (!strcmp(base ? base + 1 : tr->modules[i].path, lib))
			return 1;
	}
	return 0;
}

/* Alternative allocators installed on this system (their path), other than the one in use. */
static void find_allocators(struct mt_verdict *v, const struct mt_trace *tr)
{
	static const char *const dirs[] = { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	                                    "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu",
	                                    "/usr/local/lib" };
	static const char *const libs[] = { "libjemalloc.so.2", "libmimalloc.so.2",
	                                    "libtcmalloc_minimal.so.4" };
	for (size_t l = 0; l < 3; l++)
		for (size_t d = 0; !loaded(tr, libs[l]) && d < sizeof dirs / sizeof dirs[0]; d++) {
			char p[128];
			snprintf(p, sizeof p, "%s/%s", dirs[d], libs[l]);
			if (access(p, R_OK) == 0) {
				snprintf(v->alt_alloc[v->n_alt++], sizeof v->alt_alloc[0], "%s", p);
				break;
			}
		}
}

static void remedies_retention(struct judge *j)
{
	struct mt_verdict *v = j->v;
	char cmd[160], b1[32], b2[32], b3[32];
	command(j->a->trace, cmd, sizeof cmd);
	if (v->allocator_stats)
		remedy(v, "cap glibc's arenas (one per thread group by default, up to 8 x cores, each "
		       "holding its own free memory):\n  export MALLOC_ARENA_MAX=2\n"
		       "  Kubernetes:  env:\n                 - name: MALLOC_ARENA_MAX\n"
		       "                   value: \"2\"");
	else if (v->mi_samples)
		remedy(v, "cap glibc's arenas (the trace has too few mallinfo2 samples to measure them, "
		       "but it is glibc):\n  export MALLOC_ARENA_MAX=2\n"
		       "  Kubernetes:  env:\n                 - name: MALLOC_ARENA_MAX\n"
		       "                   value: \"2\"");
	else
		remedy(v, "the allocator in use is not glibc's (no mallinfo2 in the trace): tune its own "
		       "retention (jemalloc: MALLOC_CONF=dirty_decay_ms:1000,narenas:2; mimalloc: "
		       "MIMALLOC_PURGE_DELAY=0), or compare with glibc and MALLOC_ARENA_MAX=2");
	if (!v->allocator_stats && !v->mi_samples)
		;   /* malloc_trim acts on glibc's arenas, which another allocator leaves unused */
	else if (v->have_trim)
		remedy(v, "call malloc_trim(0) when idle (between requests or batches): the trim probe "
		       "gave back %s (RSS %s -> %s)", sz(b1, (double)v->trim_before - (double)v->trim_after),
		       sz(b2, (double)v->trim_before), sz(b3, (double)v->trim_after));
	else
		remedy(v, "call malloc_trim(0) when idle (between requests or batches); measure what it "
		       "gives back:\n  memtriage run --trim-probe -- %s", cmd);
	for (size_t i = 0; i < v->n_alt; i++)
		remedy(v, "try another allocator found on this system (its effect depends on the "
		       "workload; measure it):\n  LD_PRELOAD=%s %s", v->alt_alloc[i], cmd);
	remedy(v, "measure the options on this workload side by side (RSS per cycle, throughput):\n"
	       "  memtriage compare --configs glibc,arena2,trim,jemalloc,mimalloc -- %s", cmd);
}

static void remedies_heap(struct judge *j)
{
	struct mt_verdict *v = j->v;
	const struct mt_analysis *a = j->a;
	char b1[32];
	for (size_t i = 0; i < v->n_owners; i++) {
		const struct mt_stack *s = &a->stacks[v->owners[i]];
		struct mt_frame fr[1];
		int more = 0, nf = mt_analysis_stack_frames(a, s->node, fr, 1, &more);
		remedy(v, "fix owner #%zu, %s: %s live at the end in %" PRIu64 " blocks: bound the "
		       "cache (size limit, LRU/TTL eviction) or free the object when done",
		       i + 1, nf > 0 ? fr[0].function : "(no stack)",
		       sz(b1, (double)s->st.leaked_bytes), s->st.leaked_blocks);
	}
	remedy(v, "the top stacks by live bytes at the end are listed below (TOP STACKS BY BYTES "
	       "LEAKED / LIVE); mark requests or cycles (memtriage.h) to see growth per cycle");
}

static void remedies_plateau(struct judge *j)
{
	struct mt_verdict *v = j->v;
	char b1[32], b2[32], b3[32];
	double rss_max = (double)j->a->peak_rss_bytes;
	remedy(v, "accept the level: the live heap holds at %s after warm-up (max %s); pools and "
	       "caches sized for the load", sz(b1, v->plateau_mean), sz(b2, v->plateau_max));
	remedy(v, "size the memory limit from the plateau: peak RSS %s, so a limit of at least %s "
	       "(%.1f x)", sz(b1, rss_max), sz(b2, MT_V_PLATEAU_LIMIT * rss_max), MT_V_PLATEAU_LIMIT);
	remedy(v, "alert above the plateau: RSS over %s (%.1f x the peak seen) means an abnormal "
	       "state; watch it with  memtriage watch PID", sz(b3, MT_V_PLATEAU_ALERT * rss_max),
	       MT_V_PLATEAU_ALERT);
}

static void remedies_nonheap(struct judge *j)
{
	struct mt_verdict *v = j->v;
	const struct mt_analysis *a = j->a;
	const struct mt_timeline_point *p0 = &a->timeline[j->w0], *p1 = &a->timeline[j->w1 - 1];
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
	if (v->threads_last > v->threads_first)
		remedy(v, "threads: %" PRIu64 " -> up to %" PRIu64 "; each keeps its stack (8 MiB reserved, "
		       "touched pages resident): join or pool them, or lower the stack size",
		       v->threads_first, v->threads_last);
	else
		remedy(v, "threads: %" PRIu64 " -> up to %" PRIu64 " (not the cause)", v->threads_first,
		       v->threads_last);
	remedy(v, "RSS split after warm-up: anon %s -> %s, file %s -> %s, shmem %s -> %s; anonymous "
	       "growth outside malloc is mmap'd memory: find it in /proc/PID/smaps",
	       sz(b1, (double)p0->rss_anon), sz(b2, (double)p1->rss_anon), sz(b3, (double)p0->rss_file),
	       sz(b4, (double)p1->rss_file), sz(b5, (double)p0->rss_shmem), sz(b6, (double)p1->rss_shmem));
	remedy(v, "unmap what is no longer used (munmap, closing mapped files, releasing GPU/driver "
	       "buffers); heap stacks do not show these mappings");
}

/* ---- decision ------------------------------------------------------------- */

static void summarize(struct judge *j)
{
	struct mt_verdict *v = j->v;
	const struct mt_analysis *a = j->a;
	char b1[32], b2[32], b3[32], b4[32];
	switch (v->cls) {
	case MT_V_LIVE_HEAP_GROWTH: {
		const char *who = "(no stack)";
		struct mt_frame fr[1];
		int more = 0;
		if (v->n_owners &&
		    mt_analysis_stack_frames(a, a->stacks[v->owners[0]].node, fr, 1, &more) > 0)
			who = fr[0].function;
		snprintf(v->summary, sizeof v->summary, "live-heap growth: the live heap grew by %s "
		         "after warm-up (%s/s) to %s; top owner %s", sz(b1, v->heap_rise),
		         sz(b2, v->heap_slope), sz(b3, v->heap_end), who);
		break;
	}
	case MT_V_ALLOC_RETENTION:
		if (v->allocator_stats)
			snprintf(v->summary, sizeof v->summary, "allocator retention, not a leak: the live "
			         "heap is flat at %s while glibc's arenas hold up to %s free (%.1f%% utilization then)",
			         sz(b1, v->heap_mean), sz(b2, v->free_end), 100 * v->util_end);
		else
			snprintf(v->summary, sizeof v->summary, "allocator retention, not a leak: the live "
			         "heap is flat at %s while RSS minus live heap is %s (allocator statistics "
			         "unavailable)", sz(b1, v->heap_mean), sz(b2, j->freem.mean));
		break;
	case MT_V_NON_HEAP_GROWTH:
		snprintf(v->summary, sizeof v->summary, "non-heap growth: RSS outside malloc grew by %s "
		         "after warm-up (threads %" PRIu64 " -> up to %" PRIu64 ") while the live heap stayed "
		         "near %s", sz(b1, v->non_heap_rise), v->threads_first, v->threads_last,
		         sz(b2, v->heap_mean));
		break;
	case MT_V_PLATEAU:
		snprintf(v->summary, sizeof v->summary, "pooling plateau, not a leak: the live heap rose "
		         "by %s during warm-up, then held at %s for %.0f%% of the run (RSS peak %s)",
		         sz(b1, v->warmup_rise), sz(b2, v->plateau_mean), 100 * v->plateau_fraction,
		         sz(b3, (double)a->peak_rss_bytes));
		break;
	case MT_V_NO_GROWTH:
		snprintf(v->summary, sizeof v->summary, "no significant growth: the live heap (mean %s) "
		         "and RSS (mean %s, rise %s) stay within their floors after warm-up",
		         sz(b1, v->heap_mean), sz(b2, v->rss_mean), sz(b4, v->rss_rise));
		break;
	default:
		snprintf(v->summary, sizeof v->summary, "too short to tell: %zu sample%s with RSS and "
		         "live heap, at least %d needed (record longer, or sample faster with "
		         "--interval MS)", a->n_timeline, a->n_timeline == 1 ? "" : "s", MT_V_MIN_POINTS);
	}
}

static void decide(struct judge *j)
{
	struct mt_verdict *v = j->v;
	double margin = 0;
	if (j->heap_grows) {
		v->cls = MT_V_LIVE_HEAP_GROWTH;
		margin = ev_margin(v, j->ev_heap, 4);
	} else if (j->nonheap_grows &&
	           (!j->retains || j->nonheap_beyond_alloc || j->nonheap.rise > j->freem.rise)) {
		v->cls = MT_V_NON_HEAP_GROWTH;
		margin = ev_margin(v, j->ev_nonheap, v->allocator_stats ? 3 : 4);
		if (!v->allocator_stats && margin > MT_V_CONF_HIGH)
			margin = MT_V_CONF_MEDIUM;
	} else if (j->retains) {
		v->cls = MT_V_ALLOC_RETENTION;
		margin = ev_margin(v, j->ev_free, 2);
		if (!v->allocator_stats && margin > MT_V_CONF_HIGH)
			margin = MT_V_CONF_MEDIUM;
	} else if (j->plateau) {
		v->cls = MT_V_PLATEAU;
		margin = ev_margin(v, j->ev_plateau, 3);
	} else {
		v->cls = MT_V_NO_GROWTH;
		margin = j->heap.n >= 3 * MT_V_MIN_POINTS ? MT_V_CONF_MEDIUM : 1;
	}
	v->confidence = conf_of(margin);
}

static void take_owners(struct judge *j)
{
	struct mt_analysis *a = j->a;
	size_t n = a->n_top[MT_TOP_LEAKED];
	for (size_t i = 0; i < n && j->v->n_owners < MT_V_OWNERS_MAX; i++)
		j->v->owners[j->v->n_owners++] = a->top[MT_TOP_LEAKED][i];
}

static void end_figures(struct judge *j)
{
	struct mt_analysis *a = j->a;
	struct mt_verdict *v = j->v;
	const struct mt_timeline_point *last = &a->timeline[j->w1 - 1];
	v->heap_end = (double)last->heap_bytes;
	v->threads_first = a->timeline[j->w0].threads;
	for (size_t i = j->w0; i < j->w1; i++)   /* the most, not the last: exit joins them */
		if (a->timeline[i].threads > v->threads_last)
			v->threads_last = a->timeline[i].threads;
	/*
	 * The allocator's state while the program ran: the sample of the window
	 * where it held the most free memory.  Not the last one: the window's end
	 * may catch the program winding down (live heap near 0, utilization 0%).
	 */
	for (size_t i = j->w0; i < j->w1; i++) {
		const struct mt_timeline_point *p = &a->timeline[i];
		if (!p->have_mi || p->mi_age_ns || (double)p->alloc_free < v->free_end)
			continue;
		v->free_end = (double)p->alloc_free;
		double fp = (double)(p->mi_arena + p->mi_hblkhd);
		v->footprint_end = fp;
		v->util_end = fp > 0 ? (double)p->mi_heap / fp : 0;
	}
	const struct mt_trace *tr = a->trace;
	for (size_t i = 0; tr && i < tr->n_samples; i++) {
		const struct mt_sample *s = &tr->samples[i];
		uint64_t b = 0, af = 0;
		int nb = 0, na = 0;
		for (uint32_t k = 0; k < s->n; k++) {
			if (s->kv[k].key == MT_S_TRIM_RSS_BEFORE)
				b = s->kv[k].value, nb = 1;
			if (s->kv[k].key == MT_S_TRIM_RSS_AFTER)
				af = s->kv[k].value, na = 1;
		}
		if (nb && na) {
			v->have_trim = 1;
			v->trim_before = b;
			v->trim_after = af;
		}
	}
}

/*
 * Where the exit begins: the point after the last one with the run's most
 * threads, when the count then fell to MT_V_TEARDOWN_DROP of it or below
 * (workers joined, caches freed: not the steady state), leaving out at
 * most MT_V_TEARDOWN_MAX_FRACTION of the points.  n when there is none.
 */
static size_t teardown_start(const struct mt_analysis *a)
{
	size_t n = a->n_timeline, last = 0;
	uint64_t most = 0;
	for (size_t i = 0; i < n; i++)
		if (a->timeline[i].threads >= most) {
			most = a->timeline[i].threads;
			last = i;
		}
	size_t cut = last + 1, keep = n - (size_t)(MT_V_TEARDOWN_MAX_FRACTION * (double)n);
	if (cut >= n || (double)a->timeline[n - 1].threads > MT_V_TEARDOWN_DROP * (double)most)
		return n;
	return cut > keep ? cut : keep;
}

static int judge_all(struct judge *j)
{
	struct mt_analysis *a = j->a;
	struct mt_verdict *v = j->v;
	int rc;
	size_t mi = 0;
	j->w0 = (size_t)(MT_V_WARMUP_FRACTION * (double)a->n_timeline);
	j->w1 = teardown_start(a);
	v->win_first = j->w0;
	v->win_end = j->w1;
	for (size_t i = j->w0; i < j->w1; i++)
		mi += a->timeline[i].have_mi;
	for (size_t i = 0; i < a->n_timeline; i++)
		v->mi_samples += a->timeline[i].have_mi && !a->timeline[i].mi_age_ns;
	v->allocator_stats = (double)mi >= MT_V_MI_COVERAGE * (double)(j->w1 - j->w0);
	if ((rc = move_of(a, j->w0, j->w1, F_HEAP, 0, &j->heap)) ||
	    (rc = move_of(a, j->w0, j->w1, F_RSS, 0, &j->rss)) ||
	    (rc = move_of(a, j->w0, j->w1, F_NONHEAP, v->allocator_stats, &j->nonheap)) ||
	    (rc = move_of(a, j->w0, j->w1, F_FREE, v->allocator_stats, &j->freem)))
		return rc;
	v->heap_mean = j->heap.mean;
	v->heap_slope = j->heap.slope;
	v->heap_rise = j->heap.rise;
	v->rss_mean = j->rss.mean;
	v->rss_slope = j->rss.slope;
	v->rss_rise = j->rss.rise;
	v->non_heap_rise = j->nonheap.rise;
	end_figures(j);
	rule_heap(j);
	rule_nonheap(j);
	rule_retention(j);
	return rule_plateau(j);
}

int mt_verdict_build(struct mt_analysis *a)
{
	struct mt_verdict *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	a->verdict = v;
	size_t heap_points = 0;
	for (size_t i = 0; i < a->n_timeline; i++)
		heap_points += a->timeline[i].have_heap;
	v->cls = MT_V_TOO_SHORT;
	if (heap_points < MT_V_MIN_POINTS) {
		summarize(&(struct judge){ .a = a, .v = v });
		return 0;
	}
	struct judge j = { .a = a, .v = v };
	int rc = judge_all(&j);
	if (rc)
		return rc;
	decide(&j);
	switch (v->cls) {
	case MT_V_LIVE_HEAP_GROWTH:
		take_owners(&j);
		remedies_heap(&j);
		break;
	case MT_V_ALLOC_RETENTION:
		find_allocators(v, a->trace);
		remedies_retention(&j);
		break;
	case MT_V_PLATEAU:
		remedies_plateau(&j);
		break;
	case MT_V_NON_HEAP_GROWTH:
		remedies_nonheap(&j);
		break;
	default:
		break;
	}
	summarize(&j);
	return 0;
}

/* Warnings of the arena section: see MT_V_LOW_UTIL_WARN and MT_V_KEEPCOST_WARN. */
int mt_verdict_arena_warn_util(double util)
{
	return util < MT_V_LOW_UTIL_WARN;
}

int mt_verdict_arena_warn_keepcost(uint64_t fordblks, uint64_t keepcost)
{
	return (double)fordblks > MT_V_KEEPCOST_WARN * (double)keepcost && fordblks >= MT_V_FREE_FLOOR;
}
